//! `/ct-trigger`, end to end: a slash command form signed as Slack signs it, through the real
//! actions handler, against a moto server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use harness::World;
use harness::events::http_request;
use harness::slack_events::{SIGNING_SECRET, signed_event};
use lambda_http::Body;
use serde_json::Value;

fn slash(text: &str, secret: &str, at: i64) -> lambda_http::Request {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("command", "/ct-trigger")
        .append_pair("text", text)
        .append_pair("user_id", "U0ANN")
        .append_pair("response_url", "https://hooks.slack.com/commands/T/1/x")
        .finish();
    http_request(signed_event(
        secret,
        at,
        body.as_bytes(),
        "application/x-www-form-urlencoded",
    ))
}

async fn run(app: &actions::LiveActions, req: lambda_http::Request) -> (u16, Value) {
    let resp = actions::handle(app, req).await.unwrap();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    };
    (resp.status().as_u16(), body)
}

#[tokio::test]
async fn status_and_help_answer_ephemerally_and_forged_or_stale_commands_get_401() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    w.weekly_seek("2026-11-24T00:00:00Z")
        .await
        .request_id
        .unwrap();
    let app = w.actions();
    let now = Timestamp::now().secs();
    let (status, v) = run(&app, slash("status", SIGNING_SECRET, now)).await;
    assert_eq!(status, 200);
    assert_eq!(v["response_type"], "ephemeral");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("*embedding*: 150 new (150 seen, 0 trained), threshold 100"),
        "{text}"
    );
    assert!(
        text.contains("Latest request (data request): open"),
        "{text}"
    );
    for word in ["help", "", "frobnicate"] {
        let (status, v) = run(&app, slash(word, SIGNING_SECRET, now)).await;
        assert_eq!(status, 200);
        assert!(v["text"].as_str().unwrap().starts_with("Usage:"), "{v}");
    }
    let (status, _) = run(&app, slash("status", "not-the-secret", now)).await;
    assert_eq!(status, 401);
    let (status, _) = run(&app, slash("status", SIGNING_SECRET, now - 600)).await;
    assert_eq!(status, 401);
}
