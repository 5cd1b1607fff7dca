//! send, end to end: the real handler, fed real Function URL events (payload 2.0, form bodies
//! base64-encoded as Function URLs deliver them), against a moto server and a Slack stand-in.
//! Here: posting notices and Slack's answers, and the real binary. Refusals are in
//! `send_refusals.rs`, the status view in `send_status.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::send_api::*;
use harness::slack::{Reply, WEBHOOK_TOKEN};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Posting

#[tokio::test]
async fn a_form_post_with_the_bearer_token_posts_text_then_text2_and_answers_204() {
    // GIVEN a public URL guarded by the token
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    // WHEN a step posts the original form contract (base64, as a Function URL delivers it)
    let a = call(
        &s,
        form_post(
            "/send",
            Some(&bearer()),
            &[
                ("text", "Training finished <!here>"),
                ("text2", "loss 0.12 & acc 0.97"),
            ],
        ),
    )
    .await;
    // THEN 204 after Slack took one message: text as message text and first section
    assert_eq!(a.status, 204, "{}", a.text());
    assert!(a.body.is_empty());
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text(), "Training finished &lt;!here&gt;");
    assert_eq!(
        sections(&posts),
        vec![
            "Training finished &lt;!here&gt;",
            "loss 0.12 &amp; acc 0.97"
        ]
    );
    assert!(posts[0].path.starts_with("/services/"));
    assert_eq!(
        posts[0].content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
}

#[tokio::test]
async fn a_json_post_to_the_root_posts_the_same_notice() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let a = call(
        &s,
        json_post("/", Some(&bearer()), &json!({"text": "Deployed v42"})),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text(), "Deployed v42");
    assert_eq!(sections(&posts), vec!["Deployed v42"]);
}

#[tokio::test]
async fn a_25000_character_report_is_delivered_whole_and_in_order() {
    // GIVEN a 25,000-character report full of mrkdwn specials, posted as a base64 form
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let text = report(25_000);
    assert_eq!(text.chars().count(), 25_000);
    let a = call(&s, form_post("/send", Some(&bearer()), &[("text", &text)])).await;
    // THEN every character arrives, in order, escaped, within Slack's limits
    assert_eq!(a.status, 204, "{}", a.text());
    let posts = w.slack.channel();
    assert_eq!(w.slack.received().len(), posts.len(), "no retries needed");
    assert_within_slack_limits(&posts);
    let delivered = sections(&posts);
    assert!(
        delivered.len() >= 10,
        "split into {} sections",
        delivered.len()
    );
    assert_eq!(unescape(&delivered.concat()), text);
    assert!(
        !posts
            .iter()
            .any(|p| p.raw.windows(10).any(|w| w == b"<!channel>"))
    );
}

#[tokio::test]
async fn forty_thousand_characters_span_several_messages_in_order_and_arrive_whole() {
    // GIVEN a 40,000-character text that escapes to 160,000 characters (54 sections: more
    // than one message's 50 blocks), and a 20,000-character text2
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let text: String = "<&>".repeat(13_334).chars().take(40_000).collect();
    let text2 = report(20_000);
    let body = json!({"text": text, "text2": text2});
    assert!(body.to_string().len() <= 64 * 1024);
    let a = call(&s, json_post("/send", Some(&bearer()), &body)).await;
    // THEN two messages, in order, text's sections before text2's, nothing lost
    assert_eq!(a.status, 204, "{}", a.text());
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 2);
    assert_within_slack_limits(&posts);
    assert!(
        posts[0].text().starts_with("(1/2) &lt;&amp;&gt;"),
        "{}",
        &posts[0].text()[..40]
    );
    assert!(posts[1].text().starts_with("(2/2) "));
    let delivered = sections(&posts);
    assert_eq!(unescape(&delivered.concat()), format!("{text}{text2}"));
    // text2 starts a section of its own
    let first_of_text2 = delivered
        .iter()
        .position(|s| s.starts_with("line 00000"))
        .unwrap();
    assert_eq!(unescape(&delivered[..first_of_text2].concat()), text);
}

// ---------------------------------------------------------------------------------------------
// Slack's answers

#[tokio::test]
async fn slack_429_is_retried_after_retry_after_and_delivered_exactly_once() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    w.slack.plan([Reply::RateLimited {
        retry_after_secs: 1,
    }]);
    let started = Instant::now();
    let a = call(
        &s,
        form_post(
            "/send",
            Some(&bearer()),
            &[("text", "after the rate limit")],
        ),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(w.slack.received().len(), 2);
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1, "delivered exactly once");
    assert_eq!(posts[0].text(), "after the rate limit");
}

#[tokio::test]
async fn slack_down_is_502_never_204() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    w.slack.plan(std::iter::repeat_n(Reply::Status(500), 4));
    let a = call(
        &s,
        form_post("/send", Some(&bearer()), &[("text", "hello")]),
    )
    .await;
    assert_eq!(a.status, 502, "{}", a.text());
    let v = a.json();
    assert_eq!(v["delivered"], 0);
    assert_eq!(v["messages"], 1);
    assert!(v["error"].as_str().unwrap().contains("500"), "{v}");
    assert!(
        !a.text().contains(WEBHOOK_TOKEN),
        "the webhook URL never leaks"
    );
    assert_eq!(w.slack.received().len(), 4, "bounded retries");
    assert!(w.slack.channel().is_empty());

    // Slack refusing the message outright is not retried.
    w.slack.clear();
    w.slack.plan([Reply::Status(400)]);
    let a = call(
        &s,
        form_post("/send", Some(&bearer()), &[("text", "hello")]),
    )
    .await;
    assert_eq!(a.status, 502, "{}", a.text());
    assert_eq!(w.slack.received().len(), 1);
}

#[tokio::test]
async fn slack_timing_out_is_504_and_the_message_is_not_posted_again() {
    let w = World::new().await;
    let mut s = sender(&w, "NONE", Some(TOKEN));
    // The production policy waits 5 s an attempt; a shorter one keeps the test quick.
    s.policy.attempt_timeout = Duration::from_millis(500);
    w.slack.plan([Reply::Slow(Duration::from_secs(2))]);
    let a = call(&s, form_post("/send", Some(&bearer()), &[("text", "slow")])).await;
    assert_eq!(a.status, 504, "{}", a.text());
    assert_eq!(a.json()["delivered"], 0);
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("may or may not")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.slack.received().len(), 1, "a timeout is never retried");
}

#[tokio::test]
async fn a_failure_on_the_second_message_answers_502_and_does_not_resend_the_first() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    // Two messages' worth; Slack takes the first, then is down.
    w.slack
        .plan(std::iter::once(Reply::Ok).chain(std::iter::repeat_n(Reply::Status(503), 4)));
    let text = "<".repeat(40_000);
    let a = call(
        &s,
        json_post("/send", Some(&bearer()), &json!({"text": text})),
    )
    .await;
    assert_eq!(a.status, 502, "{}", a.text());
    let v = a.json();
    assert_eq!(
        (v["delivered"].as_u64(), v["messages"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        v["error"].as_str().unwrap().contains("message 2 of 2"),
        "{v}"
    );
    assert_eq!(
        w.slack.received().len(),
        5,
        "message 1 once, message 2 four times"
    );
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].text().starts_with("(1/2) "));
}

// ---------------------------------------------------------------------------------------------
// The real binary, run as Lambda runs it (needs `cargo build --bins`, as scripts/test does)

#[tokio::test]
async fn the_send_binary_refuses_to_start_on_a_public_url_without_a_token() {
    use harness::runtime::{lambda_env, spawn};
    let w = World::new().await;
    let mut env = lambda_env("send", None, harness::moto::url());
    env.extend(send_env(&w, "NONE", None));
    let child = spawn("send", &env);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits promptly")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("SEND_TOKEN"), "{text}");
    assert!(!text.contains(WEBHOOK_TOKEN), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[tokio::test]
async fn the_send_binary_takes_its_token_from_the_secret_and_answers_function_url_events() {
    use harness::runtime::{LambdaRuntime, lambda_env, spawn};
    // GIVEN the webhook and the token only in the Secrets Manager secret, URL auth NONE
    let w = World::new().await;
    let secret = json!({
        "slack_webhook_url": w.slack.webhook_url(),
        "slack_signing_secret": "unused-here",
        "send_token": TOKEN
    });
    let arn =
        harness::moto::create_secret(&w.sdk, &harness::unique("send"), &secret.to_string()).await;
    let runtime = LambdaRuntime::start().await;
    let mut env = lambda_env("send", Some(&runtime.api), harness::moto::url());
    env.push(("STATE_TABLE".into(), w.table.clone()));
    env.push(("SEND_URL_AUTH".into(), "NONE".into()));
    env.push(("SECRETS_ARN".into(), arn));
    let mut child = spawn("send", &env);
    let lines = harness::runtime::logs(&mut child);
    let text = "posted by the binary QZ9";
    // WHEN a step posts with the token, and someone without it tries
    let ok = runtime
        .invoke(
            "req-1",
            form_post("/send", Some(&bearer()), &[("text", text)]),
            Duration::from_secs(60),
        )
        .await;
    let denied = runtime
        .invoke(
            "req-2",
            form_post("/send", Some("Bearer guessed"), &[("text", text)]),
            Duration::from_secs(60),
        )
        .await;
    child.kill().await.ok();
    // THEN 204 and one post; 401 and nothing more
    let ok = ok.expect("answered").expect("succeeded");
    assert_eq!(ok["statusCode"], 204, "{ok}");
    let denied = denied.expect("answered").expect("succeeded");
    assert_eq!(denied["statusCode"], 401, "{denied}");
    let body: Value = serde_json::from_str(denied["body"].as_str().unwrap()).unwrap();
    assert!(body["error"].is_string());
    let posts = w.slack.received();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text(), text);
    // One JSON log line per request; never the token, the text or the webhook.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = lines.lock().unwrap().clone();
    let requests = lines.iter().filter(|l| l.contains("\"request\"")).count();
    assert_eq!(requests, 2, "{lines:#?}");
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(!line.contains(TOKEN), "token in log: {line}");
        assert!(!line.contains(text), "text in log: {line}");
        assert!(!line.contains(WEBHOOK_TOKEN), "webhook in log: {line}");
    }
}
