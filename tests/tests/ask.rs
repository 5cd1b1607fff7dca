//! `POST /ask` and `Idempotency-Key`, end to end: the real send and actions handlers, fed real
//! Function URL events, against a moto server and a Slack stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::config::{Env, SecretBundle, SendConfig};
use harness::World;
use harness::events::{function_url_event, http_request};
use harness::slack::Reply;
use harness::slack_events::{block_actions, click};
use serde_json::{Value, json};
use std::sync::Arc;

const TOKEN: &str = "pipeline-t0ken-7Hq2Zr";
const WEEK1: &str = "2026-11-24T00:00:00Z";
const WEEK2: &str = "2026-12-01T00:00:00Z";
const ANN: (&str, &str) = ("U0ANN", "ann");
const QUALITY: &str = r#"{"reason":"Model quality dropped","metric":"recall@10","value":0.81,"threshold":0.85,"source":"eval-step"}"#;

fn sender(w: &World) -> send::LiveSender {
    let env = Env::from_pairs([
        ("STATE_TABLE", w.table.clone()),
        ("SLACK_WEBHOOK_URL", w.slack.webhook_url()),
        ("SEND_URL_AUTH", "NONE".to_owned()),
        ("SEND_TOKEN", TOKEN.to_owned()),
    ]);
    let config = SendConfig::from_env(&env, &SecretBundle::default()).expect("valid send config");
    send::LiveSender::live(config, &w.sdk).expect("sender")
}

fn post(path: &str, content_type: &str, body: &[u8], key: Option<&str>) -> lambda_http::Request {
    let bearer = format!("Bearer {TOKEN}");
    let mut headers = vec![("content-type", content_type), ("authorization", &bearer)];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    let base64 = content_type.starts_with("application/x-www");
    http_request(function_url_event("POST", path, &headers, body, base64))
}

struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

async fn call(s: &send::LiveSender, req: lambda_http::Request) -> Answer {
    let resp = send::handle(s, req).await.expect("an Ok response");
    Answer {
        status: resp.status().as_u16(),
        body: serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
        replayed: resp.headers().contains_key("idempotent-replayed"),
    }
}

async fn ask(s: &send::LiveSender, body: &str) -> Answer {
    call(s, post("/ask", "application/json", body.as_bytes(), None)).await
}

/// GIVEN `n` objects under embedding and a weekly seek: returns the data request's id.
async fn seek_asks(w: &World, n: usize, week: &str) -> String {
    let before = w.number("dataset#embedding", "seeked").await.unwrap_or(0) as usize;
    w.put("train/embedding/", before, n - before).await;
    w.weekly_seek(week).await.request_id.expect("seek asked")
}

async fn decide(w: &World, choice: &str, id: &str, response: &str) -> u16 {
    let app = w.actions();
    let resp = actions::handle(
        &app,
        click(&block_actions(
            choice,
            id,
            ANN,
            &w.slack.response_url(response),
        )),
    )
    .await
    .unwrap();
    resp.status().as_u16()
}

#[tokio::test]
async fn a_quality_ask_is_posted_with_its_reason_and_train_moves_trained_to_its_snapshot() {
    // GIVEN seek counted 40 objects (below the threshold: no question)
    let w = World::new().await;
    w.put("train/embedding/", 0, 40).await;
    assert!(w.weekly_seek(WEEK1).await.request_id.is_none());
    let s = sender(&w);
    // WHEN an evaluation step asks on falling quality
    let a = ask(&s, QUALITY).await;
    // THEN 201 with the request id, and the question leads with the reason, with buttons
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["kind"], "quality");
    let id = a.body["request_id"].as_str().unwrap().to_owned();
    let channel = w.slack.channel();
    let question = &channel.last().unwrap().body;
    assert_eq!(
        question["text"],
        "Model quality dropped: recall@10 is 0.81, below 0.85 (from eval-step). \
         Would you like to train models?"
    );
    assert!(question.to_string().contains(&format!("train:{id}")));
    assert!(
        question.to_string().contains(
            "40 new (120 B), nothing trained yet; 40 objects, 120 B now · threshold 100 objects"
        ),
        "{question}"
    );
    // and the request is stored with its kind, as the newest
    assert_eq!(
        w.string(&format!("request#{id}"), "request_kind")
            .await
            .as_deref(),
        Some("quality")
    );
    assert_eq!(
        w.string("latest_request", "request_id").await,
        Some(id.clone())
    );
    // and /status shows the kind and reason
    let st = call(&s, {
        let bearer = format!("Bearer {TOKEN}");
        http_request(function_url_event(
            "GET",
            "/status",
            &[("authorization", &bearer)],
            b"",
            false,
        ))
    })
    .await;
    assert_eq!(st.body["latest_request"]["kind"], "quality");
    assert_eq!(
        st.body["latest_request"]["signal"]["reason"],
        "Model quality dropped"
    );
    assert_eq!(st.body["latest_request"]["signal"]["value"], 0.81);
    // WHEN ann clicks Train!
    assert_eq!(decide(&w, "train", &id, "q1").await, 200);
    // THEN trained moved to the snapshot's count, as a seek's request would
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(40));
    let replaced = &w.slack.responses("q1")[0].body;
    assert!(
        replaced.to_string().contains("Model quality dropped"),
        "{replaced}"
    );
    assert!(replaced.to_string().contains("Approved"), "{replaced}");
}

#[tokio::test]
async fn a_quality_ask_supersedes_a_pending_data_request_and_the_reverse() {
    let w = World::new().await;
    let s = sender(&w);
    // GIVEN a pending data request from seek
    let data1 = seek_asks(&w, 150, WEEK1).await;
    // WHEN a quality ask comes in
    let a = ask(&s, r#"{"reason":"Drift detected"}"#).await;
    assert_eq!(a.status, 201);
    let quality = a.body["request_id"].as_str().unwrap().to_owned();
    // THEN a click on the data request is told it was superseded, and nothing moves
    assert_eq!(decide(&w, "train", &data1, "d1").await, 200);
    assert!(
        w.slack.responses("d1")[0]
            .body
            .to_string()
            .contains("superseded")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    assert_eq!(
        w.string(&format!("request#{data1}"), "status")
            .await
            .as_deref(),
        Some("pending")
    );
    // WHEN next week's seek asks again (more data)
    let data2 = seek_asks(&w, 300, WEEK2).await;
    // THEN the quality request is superseded in turn
    assert_eq!(decide(&w, "nope", &quality, "q1").await, 200);
    assert!(
        w.slack.responses("q1")[0]
            .body
            .to_string()
            .contains("superseded")
    );
    assert!(w.item("last_decision").await.is_none());
    // and the newest data request still decides, moving trained to its own snapshot
    assert_eq!(decide(&w, "train", &data2, "d2").await, 200);
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(300));
}

#[tokio::test]
async fn bad_asks_name_the_field_and_store_and_post_nothing() {
    let w = World::new().await;
    let s = sender(&w);
    for (body, field) in [
        (r#"{"metric":"recall"}"#, "reason"),
        (r#"{"reason":"x","value":"high"}"#, "value"),
        (r#"{"reason":"x","threshold":true}"#, "threshold"),
    ] {
        let a = ask(&s, body).await;
        assert_eq!(a.status, 400);
        assert!(
            a.body["error"].as_str().unwrap().contains(field),
            "{}",
            a.body
        );
    }
    let long = json!({ "reason": "r".repeat(3001) }).to_string();
    assert_eq!(ask(&s, &long).await.status, 400);
    assert!(w.slack.received().is_empty());
    assert!(w.item("latest_request").await.is_none());
}

#[tokio::test]
async fn a_retried_send_with_the_same_key_posts_once_and_answers_the_same() {
    let w = World::new().await;
    let s = sender(&w);
    let form = b"text=Training+done";
    let form_ct = "application/x-www-form-urlencoded";
    let first = call(&s, post("/send", form_ct, form, Some("run-42/step-7"))).await;
    assert_eq!((first.status, first.replayed), (204, false));
    // WHEN the step retries with the same key and body
    let again = call(&s, post("/send", form_ct, form, Some("run-42/step-7"))).await;
    // THEN the same answer, marked as a replay, and Slack saw one message
    assert_eq!((again.status, again.replayed), (204, true));
    assert_eq!(w.slack.channel().len(), 1);
    // WHEN the key is reused with another body
    let other = call(
        &s,
        post("/send", form_ct, b"text=other", Some("run-42/step-7")),
    )
    .await;
    // THEN 422, nothing posted
    assert_eq!(other.status, 422);
    assert!(
        other.body["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    assert_eq!(w.slack.channel().len(), 1);
    // and a key kept durably, with its 24 h expiry
    let exp = w.number("idem#run-42/step-7", "expires_at").await.unwrap();
    let now = ct_shared::Timestamp::now().secs() as u64;
    assert!(exp > now + 23 * 3600 && exp <= now + 24 * 3600 + 5, "{exp}");
    // and a malformed key is refused
    for bad in ["", &"k".repeat(129)] {
        let r = call(&s, post("/send", form_ct, form, Some(bad))).await;
        assert_eq!(r.status, 400, "{bad:?}");
    }
    assert_eq!(w.slack.channel().len(), 1);
}

#[tokio::test]
async fn a_retried_ask_answers_the_same_request_id_and_a_failed_one_runs_again() {
    let w = World::new().await;
    let s = sender(&w);
    // GIVEN Slack fails the first attempt (4 tries inside the retry policy)
    w.slack.plan([
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
    ]);
    let failed = call(
        &s,
        post("/ask", "application/json", QUALITY.as_bytes(), Some("k1")),
    )
    .await;
    assert!(failed.status >= 500, "{}", failed.body);
    // WHEN retried with the same key, Slack now fine
    let first = call(
        &s,
        post("/ask", "application/json", QUALITY.as_bytes(), Some("k1")),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!first.replayed);
    let again = call(
        &s,
        post("/ask", "application/json", QUALITY.as_bytes(), Some("k1")),
    )
    .await;
    // THEN the retry after success repeats the same id and posts nothing more
    assert_eq!(again.status, 201);
    assert!(again.replayed);
    assert_eq!(again.body["request_id"], first.body["request_id"]);
    assert_eq!(
        w.slack.channel().iter().filter(|p| p.delivered()).count(),
        1
    );
    assert_eq!(
        w.string("latest_request", "request_id").await.as_deref(),
        first.body["request_id"].as_str()
    );
}

#[tokio::test]
async fn concurrent_retries_of_one_key_post_once() {
    let w = World::new().await;
    let s = Arc::new(sender(&w));
    // Slack is slow, so the retries overlap the first call.
    w.slack
        .plan([Reply::Slow(std::time::Duration::from_millis(800))]);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            call(
                &s,
                post(
                    "/send",
                    "application/json",
                    br#"{"text":"once"}"#,
                    Some("same"),
                ),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status);
    }
    statuses.sort();
    // THEN exactly one call posted; the others were told to retry (409) or replayed (204)
    assert_eq!(w.slack.channel().len(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [204, 409].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&204));
    // and a retry afterwards replays
    let later = call(
        &s,
        post(
            "/send",
            "application/json",
            br#"{"text":"once"}"#,
            Some("same"),
        ),
    )
    .await;
    assert_eq!((later.status, later.replayed), (204, true));
    assert_eq!(w.slack.channel().len(), 1);
}
