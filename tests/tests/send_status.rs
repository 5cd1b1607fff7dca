//! send's status view, end to end (see `send.rs`): `GET /status` before and after an approval,
//! and when the table cannot be read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DecisionStore, DynamoStore};
use ct_shared::config::{Env, SecretBundle, SendConfig};
use ct_shared::domain::{Choice, Decision, Person};
use harness::World;
use harness::events::function_url_event;
use harness::send_api::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Status

#[tokio::test]
async fn status_before_anything_happened_is_empty() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let get = |accept: Option<&str>| {
        let auth = bearer();
        let mut h = vec![("authorization", auth)];
        if let Some(a) = accept {
            h.push(("accept", a.to_owned()));
        }
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        function_url_event("GET", "/status", &h, b"", false)
    };
    let a = call(&s, get(None)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.json(),
        json!({"datasets": [], "latest_request": null, "last_decision": null, "latest_approval": null, "latest_run": null})
    );
    let a = call(&s, get(Some("text/plain"))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        a.text(),
        "No dataset counted yet.\nNo approval request yet.\nNo decision yet.\n"
    );
}

#[tokio::test]
async fn status_before_and_after_an_approval() {
    // GIVEN a seek that asked about 150 new objects
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let id = w
        .weekly_seek(TUESDAY)
        .await
        .request_id
        .expect("a pending request");
    let s = sender(&w, "AWS_IAM", None);
    let status = |accept: &str| {
        signed(function_url_event(
            "GET",
            "/status",
            &[("accept", accept)],
            b"",
            false,
        ))
    };

    // THEN before the approval: counts seen, nothing trained, the request pending
    let before = call(&s, status("application/json")).await;
    assert_eq!(before.status, 200, "{}", before.text());
    let v = before.json();
    let d = &v["datasets"][0];
    assert_eq!(
        (
            &d["name"],
            &d["prefix"],
            &d["seeked"],
            &d["trained"],
            &d["new_objects"]
        ),
        (
            &json!("embedding"),
            &json!("train/embedding/"),
            &json!(150),
            &json!(0),
            &json!(150)
        )
    );
    assert!(d["seeked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(d["trained_at"], Value::Null);
    assert_eq!(v["latest_request"]["id"], id.as_str());
    assert_eq!(v["latest_request"]["state"], "pending");
    assert_eq!(v["latest_request"]["decision"], Value::Null);
    assert_eq!(v["latest_request"]["snapshot"][0]["seeked"], 150);
    assert_eq!(v["last_decision"], Value::Null);
    let text = call(&s, status("text/plain")).await.text();
    assert!(
        text.contains("embedding (train/embedding/): 150 seen at "),
        "{text}"
    );
    assert!(
        text.contains(&format!("Latest request {id} (data; asked at ")),
        "{text}"
    );
    assert!(text.contains("): pending\n"), "{text}");
    assert!(text.contains("No decision yet."), "{text}");

    // WHEN ann approves it (recorded as actions records it)
    let store = DynamoStore::new(&w.sdk, w.table.clone());
    let request = DecisionStore::request(&store, &id).await.unwrap().unwrap();
    let trained_now = DecisionStore::datasets(&store, &["embedding".to_owned()])
        .await
        .unwrap();
    let decision = Decision {
        request_id: id.clone(),
        choice: Choice::Train,
        by: Person {
            id: "U024BE7LH".into(),
            name: "ann".into(),
        },
        at: Timestamp::parse_rfc3339("2026-11-24T06:00:00Z").unwrap(),
    };
    assert!(
        store
            .decide(&request, &decision, Some(&trained_now), "test-click")
            .await
            .unwrap()
    );

    // THEN after: trained caught up, the request approved, the last decision says who and when
    let v = call(&s, status("application/json")).await.json();
    let d = &v["datasets"][0];
    assert_eq!((&d["trained"], &d["new_objects"]), (&json!(150), &json!(0)));
    assert_eq!(d["trained_at"], "2026-11-24T06:00:00Z");
    assert_eq!(v["latest_request"]["state"], "approved");
    assert_eq!(v["latest_request"]["decision"]["by"]["name"], "ann");
    let last = &v["last_decision"];
    assert_eq!(last["request_id"], id.as_str());
    assert_eq!(last["choice"], "train");
    assert_eq!(last["outcome"], "approved");
    assert_eq!(last["by"], json!({"id": "U024BE7LH", "name": "ann"}));
    assert_eq!(last["at"], "2026-11-24T06:00:00Z");
    let text = call(&s, status("text/plain")).await.text();
    assert!(
        text.contains("approved by ann (U024BE7LH) at 2026-11-24T06:00:00Z"),
        "{text}"
    );
    assert!(text.contains("Last decision: approved by ann"), "{text}");
    assert!(
        text.contains("150 trained at 2026-11-24T06:00:00Z, 0 new"),
        "{text}"
    );
}

#[tokio::test]
async fn status_answers_502_when_the_table_cannot_be_read() {
    let w = World::new().await;
    let mut env = send_env(&w, "NONE", Some(TOKEN));
    env.retain(|(k, _)| k != "STATE_TABLE");
    env.push(("STATE_TABLE".into(), "no-such-table-here".into()));
    let config = SendConfig::from_env(&Env::from_pairs(env), &SecretBundle::default()).unwrap();
    let s = send::LiveSender::live(config, &w.sdk).unwrap();
    let auth = bearer();
    let a = call(
        &s,
        function_url_event("GET", "/status", &[("authorization", &auth)], b"", false),
    )
    .await;
    assert_eq!(a.status, 502, "{}", a.text());
    assert_eq!(a.json(), json!({"error": "could not read the state table"}));
}
