//! actions, end to end (see `actions.rs`): requests that are not Slack's, or not what Slack
//! sends, are refused with a clear 4xx and change nothing; no input makes it panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use harness::World;
use harness::actions_api::{asked, send};
use harness::events::{function_url_event, http_request};
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::{Value, json};

const WEEK1: &str = "2026-11-24T00:00:00Z";
const ANN: (&str, &str) = ("U0ANN", "ann");
const BOB: (&str, &str) = ("U0BOB", "bob");

/// Asserts a refused request changed nothing and posted nothing.
async fn assert_untouched(
    w: &World,
    before: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
    posts_before: usize,
) {
    let mut after = harness::moto::scan(&w.sdk, &w.table).await;
    let mut before = before.to_vec();
    let key = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        format!("{:?}", i.get("pk"))
    };
    after.sort_by_key(key);
    before.sort_by_key(key);
    assert_eq!(after, before, "the table changed");
    assert_eq!(
        w.slack.received().len(),
        posts_before,
        "something was posted"
    );
}

#[tokio::test]
async fn unauthentic_requests_get_401_and_change_nothing() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let app = w.actions();
    let before = harness::moto::scan(&w.sdk, &w.table).await;
    let posts = w.slack.received().len();
    let body = form(&block_actions(
        "train",
        &id,
        ANN,
        &w.slack.response_url("x"),
    ));
    let now = Timestamp::now().secs();
    let ct = "application/x-www-form-urlencoded";
    let mut forged = signed_event(SIGNING_SECRET, now, &body, ct);
    forged["headers"]["x-slack-signature"] = json!(format!("v0={}", "0".repeat(64)));
    let mut tampered = signed_event(SIGNING_SECRET, now, &body, ct);
    let other = form(&block_actions(
        "train",
        &id,
        BOB,
        &w.slack.response_url("x"),
    ));
    tampered["body"] = json!(base64_of(&other));
    let mut no_ts = signed_event(SIGNING_SECRET, now, &body, ct);
    no_ts["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-slack-request-timestamp");
    let mut no_sig = signed_event(SIGNING_SECRET, now, &body, ct);
    no_sig["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-slack-signature");
    let cases = [
        ("forged signature", forged),
        ("body swapped", tampered),
        (
            "wrong secret",
            signed_event("not-the-secret", now, &body, ct),
        ),
        (
            "stale timestamp",
            signed_event(SIGNING_SECRET, now - 301, &body, ct),
        ),
        (
            "future timestamp",
            signed_event(SIGNING_SECRET, now + 301, &body, ct),
        ),
        ("missing timestamp", no_ts),
        ("missing signature", no_sig),
        (
            "no headers at all",
            function_url_event("POST", "/", &[("content-type", ct)], &body, true),
        ),
    ];
    for (what, event) in cases {
        let (status, body) = send(&app, http_request(event)).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(body, json!({"error": "invalid Slack signature"}), "{what}");
    }
    assert_untouched(&w, &before, posts).await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let app = w.actions();
    let before = harness::moto::scan(&w.sdk, &w.table).await;
    let posts = w.slack.received().len();
    let now = Timestamp::now().secs();
    let form_ct = "application/x-www-form-urlencoded";
    let url = w.slack.response_url("x");
    let payload = |v: Value| form(&v);
    let mut unknown_button = block_actions("train", &id, ANN, &url);
    unknown_button["actions"][0]["value"] = json!(format!("deploy:{id}"));
    let huge = vec![b'a'; 1024 * 1024 + 1];
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        (
            "json body",
            block_actions("train", &id, ANN, &url)
                .to_string()
                .into_bytes(),
            "application/json",
            415,
            "expected application/x-www-form-urlencoded",
        ),
        (
            "no payload",
            b"token=x&team_id=T1".to_vec(),
            form_ct,
            400,
            "the form has no payload field",
        ),
        (
            "payload not json",
            b"payload=%7Bnope".to_vec(),
            form_ct,
            400,
            "payload is not JSON",
        ),
        (
            "unknown type",
            payload(json!({"type": "view_submission", "user": {"id": "U1"}})),
            form_ct,
            400,
            "unknown payload type \"view_submission\"",
        ),
        (
            "unknown button",
            payload(unknown_button),
            form_ct,
            400,
            "unknown button",
        ),
        (
            "unknown request",
            payload(block_actions("train", "0123456789abcdef", ANN, &url)),
            form_ct,
            404,
            "unknown approval request",
        ),
        ("over 1 MiB", huge, form_ct, 413, "body over 1 MiB"),
        (
            "empty body",
            Vec::new(),
            form_ct,
            400,
            "the form has no payload field",
        ),
    ];
    for (what, body, ct, want, error) in cases {
        let (status, got) = send(
            &app,
            http_request(signed_event(SIGNING_SECRET, now, &body, ct)),
        )
        .await;
        assert_eq!(status, want, "{what}");
        assert_eq!(got, json!({"error": error}), "{what}");
    }
    let (status, _) = send(
        &app,
        http_request(function_url_event("GET", "/", &[], b"", false)),
    )
    .await;
    assert_eq!(status, 405);
    assert_untouched(&w, &before, posts).await;
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any signed body, under any content type, gets an answer below 500; nothing panics.
        #[test]
        fn any_signed_bytes_get_a_4xx_or_200(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            payload in "[ -~]{0,200}",
            ct in prop_oneof![Just("application/x-www-form-urlencoded".to_owned()), Just("application/json".to_owned()), Just(String::new()), "[a-z/;= -]{0,30}"],
            use_payload in any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let w = shared_world().await;
                let bytes = if use_payload {
                    form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload).finish().into_bytes()
                } else {
                    body.clone()
                };
                let now = Timestamp::now().secs();
                let (status, _) = send(&w.actions(), http_request(signed_event(SIGNING_SECRET, now, &bytes, &ct))).await;
                prop_assert!(status == 200 || (400..500).contains(&status), "status {}", status);
                // And unsigned, the same bytes are refused.
                let (status, _) = send(&w.actions(), http_request(function_url_event("POST", "/", &[("content-type", ct.as_str())], &bytes, true))).await;
                prop_assert_eq!(status, 401);
                Ok(())
            })?;
        }
    }

    async fn shared_world() -> World {
        World::new().await
    }
}
