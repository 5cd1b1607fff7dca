//! send, end to end: the real handler, fed real Function URL events (payload 2.0, form bodies
//! base64-encoded as Function URLs deliver them), against a moto server and a Slack stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DecisionStore, DynamoStore};
use ct_shared::config::{Env, SecretBundle, SendConfig};
use ct_shared::domain::{Choice, Decision, Person};
use harness::World;
use harness::events::{function_url_event, http_request};
use harness::slack::{Post, Reply, WEBHOOK_TOKEN};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN: &str = "pipeline-t0ken-7Hq2Zr";
const TUESDAY: &str = "2026-11-24T00:00:00Z";
const FORM: &str = "application/x-www-form-urlencoded";
const IAM_CALLER: &str = "arn:aws:sts::111122223333:assumed-role/kubeflow-pipeline/step-1";

/// send's environment as template.yaml sets it, plus the token when one is configured.
fn send_env(w: &World, auth: &str, token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("STATE_TABLE".to_owned(), w.table.clone()),
        ("SLACK_WEBHOOK_URL".to_owned(), w.slack.webhook_url()),
        ("SEND_URL_AUTH".to_owned(), auth.to_owned()),
    ];
    if let Some(t) = token {
        env.push(("SEND_TOKEN".to_owned(), t.to_owned()));
    }
    env
}

/// The real sender, built the way `main` builds it.
fn sender(w: &World, auth: &str, token: Option<&str>) -> send::LiveSender {
    let env = Env::from_pairs(send_env(w, auth, token));
    let config = SendConfig::from_env(&env, &SecretBundle::default()).expect("valid send config");
    send::LiveSender::live(config, &w.sdk).expect("sender")
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// A form post as a Function URL delivers it: body base64-encoded.
fn form_post(path: &str, auth: Option<&str>, pairs: &[(&str, &str)]) -> Value {
    let mut headers = vec![("content-type", FORM)];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    function_url_event("POST", path, &headers, &form(pairs), true)
}

fn json_post(path: &str, auth: Option<&str>, body: &Value) -> Value {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    function_url_event("POST", path, &headers, body.to_string().as_bytes(), false)
}

/// What a Function URL with `AuthType: AWS_IAM` adds once it has verified the SigV4 signature.
fn signed(mut event: Value) -> Value {
    event["requestContext"]["authorizer"] = json!({
        "iam": {
            "accessKey": "ASIAEXAMPLEKEY",
            "accountId": "111122223333",
            "callerId": "AROAEXAMPLEID:step-1",
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": IAM_CALLER,
            "userId": "AROAEXAMPLEID:step-1"
        }
    });
    event
}

struct Answer {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn call(s: &send::LiveSender, event: Value) -> Answer {
    let resp = send::handle(s, http_request(event))
        .await
        .expect("every expected outcome is an Ok response");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.body().to_vec(),
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every section of every post, in the order Slack received them.
fn sections(posts: &[Post]) -> Vec<String> {
    posts
        .iter()
        .flat_map(|p| p.body["blocks"].as_array().cloned().unwrap())
        .map(|b| {
            assert_eq!(b["type"], "section");
            assert_eq!(b["text"]["type"], "mrkdwn");
            b["text"]["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Checks Slack's limits on what was delivered, and that nothing unescaped got through.
fn assert_within_slack_limits(posts: &[Post]) {
    for p in posts {
        let blocks = p.body["blocks"].as_array().unwrap();
        assert!(
            !blocks.is_empty() && blocks.len() <= 50,
            "{} blocks",
            blocks.len()
        );
    }
    for s in sections(posts) {
        assert!(
            s.chars().count() <= 3000,
            "{} characters",
            s.chars().count()
        );
        assert!(!s.contains('<') && !s.contains('>'), "unescaped mrkdwn");
        assert_eq!(
            s.matches('&').count(),
            s.matches("&amp;").count() + s.matches("&lt;").count() + s.matches("&gt;").count(),
            "every & starts an escape"
        );
    }
}

/// A deterministic report with everything a step's output may hold: mentions, links,
/// ampersands, newlines, multibyte characters.
fn report(chars: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.chars().count() < chars {
        out.push_str(&format!(
            "line {i:05}: loss=0.{i:04} <!channel> a&b <https://x.example/?q={i}&r=1|link> ☃ é\n"
        ));
        i += 1;
    }
    out.chars().take(chars).collect()
}

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
// Authentication

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_and_nothing_is_posted() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let wrong = format!("Bearer {TOKEN}x");
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let basic = "Basic cGlwZWxpbmU6dDBrZW4=";
    let raw = TOKEN;
    for auth in [
        None,
        Some(wrong.as_str()),
        Some(short.as_str()),
        Some(basic),
        Some(raw),
    ] {
        for event in [
            form_post("/send", auth, &[("text", "hello")]),
            json_post("/", auth, &json!({"text": "hello"})),
            {
                let h: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
                function_url_event("GET", "/status", &h, b"", false)
            },
            {
                let h: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
                function_url_event("GET", "/anything-else", &h, b"", false)
            },
        ] {
            let a = call(&s, event).await;
            assert_eq!(a.status, 401, "{auth:?}: {}", a.text());
            assert!(a.json()["error"].is_string());
            assert_eq!(a.header("www-authenticate"), Some("Bearer"));
            assert!(!a.text().contains(TOKEN));
        }
    }
    assert!(w.slack.received().is_empty(), "nothing reached Slack");
    // Even signed (AWS_IAM in front), a configured token is still required.
    let a = call(&s, signed(form_post("/send", None, &[("text", "hello")]))).await;
    assert_eq!(a.status, 401);
    assert!(w.slack.received().is_empty());
}

#[tokio::test]
async fn aws_iam_without_a_token_takes_signed_requests_and_refuses_unsigned_ones() {
    // GIVEN SEND_URL_AUTH=AWS_IAM and no token: SigV4 at the URL is the gate
    let w = World::new().await;
    let s = sender(&w, "AWS_IAM", None);
    // WHEN the URL verified the caller's signature
    let a = call(
        &s,
        signed(form_post("/send", None, &[("text", "signed hello")])),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    let a = call(
        &s,
        signed(function_url_event("GET", "/status", &[], b"", false)),
    )
    .await;
    assert_eq!(a.status, 200);
    // WHEN the request context names no IAM caller (the URL's auth type disagrees with
    // SEND_URL_AUTH): refused, fail closed
    let a = call(&s, form_post("/send", None, &[("text", "unsigned hello")])).await;
    assert_eq!(a.status, 401, "{}", a.text());
    assert!(a.json()["error"].as_str().unwrap().contains("SigV4"));
    assert_eq!(a.header("www-authenticate"), None);
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text(), "signed hello");
}

#[tokio::test]
async fn aws_iam_with_a_token_needs_the_signature_and_the_token_beside_it() {
    // GIVEN AWS_IAM and a token (the template's generated secret has one)
    let w = World::new().await;
    let s = sender(&w, "AWS_IAM", Some(TOKEN));
    let sigv4 = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY/20261128/us-east-1/lambda/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-send-token, Signature=0123abcd";
    let post = |headers: &[(&str, &str)]| {
        let mut h = vec![("content-type", FORM)];
        h.extend_from_slice(headers);
        function_url_event("POST", "/send", &h, &form(&[("text", "both")]), true)
    };
    // SigV4 holds Authorization, so the token rides in X-Send-Token
    let a = call(
        &s,
        signed(post(&[("authorization", sigv4), ("x-send-token", TOKEN)])),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    for (event, why) in [
        (
            signed(post(&[("authorization", sigv4)])),
            "signed, no token",
        ),
        (
            signed(post(&[("authorization", sigv4), ("x-send-token", "guess")])),
            "signed, wrong token",
        ),
        (post(&[("x-send-token", TOKEN)]), "token, not signed"),
        (post(&[("authorization", &bearer())]), "bearer, not signed"),
    ] {
        let a = call(&s, event).await;
        assert_eq!(a.status, 401, "{why}: {}", a.text());
    }
    assert_eq!(w.slack.channel().len(), 1);
    assert_eq!(w.slack.received().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[tokio::test]
async fn every_refusal_has_its_status_a_json_error_and_posts_nothing() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let auth = bearer();
    let with = |method: &str, path: &str, ct: Option<&str>, body: &[u8], b64: bool| {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        function_url_event(method, path, &h, body, b64)
    };
    let big = form(&[("text", &"x".repeat(64 * 1024))]);
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with("POST", "/send", Some(FORM), b"", true),
            400,
            "empty form",
        ),
        (
            with("POST", "/send", Some(FORM), &form(&[("text", "")]), true),
            400,
            "empty text",
        ),
        (
            with(
                "POST",
                "/send",
                Some(FORM),
                &form(&[("text", " \n ")]),
                true,
            ),
            400,
            "blank text",
        ),
        (
            with(
                "POST",
                "/send",
                Some(FORM),
                &form(&[("text2", "only")]),
                true,
            ),
            400,
            "no text",
        ),
        (
            with("POST", "/send", Some("application/json"), b"{}", false),
            400,
            "json no text",
        ),
        (
            with(
                "POST",
                "/send",
                Some("application/json"),
                br#"{"text":""}"#,
                false,
            ),
            400,
            "json empty",
        ),
        (
            with(
                "POST",
                "/send",
                Some("application/json"),
                br#"{"text":7}"#,
                false,
            ),
            400,
            "json number",
        ),
        (
            with(
                "POST",
                "/send",
                Some("application/json"),
                b"{\"text\":",
                false,
            ),
            400,
            "bad json",
        ),
        (
            with("POST", "/send", Some("application/json"), b"[1]", false),
            400,
            "json array",
        ),
        (
            with("POST", "/send", Some("text/plain"), b"text=hi", false),
            415,
            "text/plain",
        ),
        (
            with(
                "POST",
                "/send",
                Some("multipart/form-data; boundary=x"),
                b"--x--",
                false,
            ),
            415,
            "multipart",
        ),
        (
            with("POST", "/send", None, b"text=hi", false),
            415,
            "no content type",
        ),
        (
            with(
                "POST",
                "/send",
                Some("application/json; charset=utf-16"),
                b"{}",
                false,
            ),
            415,
            "utf-16",
        ),
        (
            with("POST", "/send", Some(FORM), &big, true),
            413,
            "over 64 KiB",
        ),
        (with("GET", "/send", None, b"", false), 405, "GET /send"),
        (
            with("PUT", "/", Some(FORM), b"text=hi", false),
            405,
            "PUT /",
        ),
        (
            with("POST", "/status", Some(FORM), b"text=hi", false),
            405,
            "POST /status",
        ),
        (with("GET", "/nope", None, b"", false), 404, "unknown route"),
        (
            with("POST", "/send/extra", Some(FORM), b"text=hi", false),
            404,
            "unknown route",
        ),
    ];
    for (event, status, why) in cases {
        let a = call(&s, event).await;
        assert_eq!(a.status, status, "{why}: {}", a.text());
        assert!(
            a.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{why}"
        );
        assert_eq!(a.header("content-type"), Some("application/json"));
    }
    assert!(w.slack.received().is_empty());
    let a = call(&s, with("GET", "/send", None, b"", false)).await;
    assert_eq!(a.header("allow"), Some("POST"));
}

#[tokio::test]
async fn the_64_kib_limit_is_on_the_decoded_body() {
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let auth = bearer();
    // Exactly 64 KiB once decoded, about 87 KiB as base64: accepted.
    let mut body = b"text=".to_vec();
    body.resize(64 * 1024, b'y');
    let event = function_url_event(
        "POST",
        "/send",
        &[("authorization", &auth), ("content-type", FORM)],
        &body,
        true,
    );
    assert!(event["body"].as_str().unwrap().len() > 64 * 1024);
    let a = call(&s, event).await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert_eq!(
        sections(&w.slack.channel()).concat(),
        "y".repeat(64 * 1024 - 5)
    );
    // One byte more: 413, nothing posted.
    body.push(b'y');
    let a = call(
        &s,
        function_url_event(
            "POST",
            "/send",
            &[("authorization", &auth), ("content-type", FORM)],
            &body,
            true,
        ),
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.text());
    assert_eq!(w.slack.received().len(), w.slack.channel().len());
    assert_eq!(
        w.slack.channel().len(),
        1,
        "only the first request's message"
    );
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
        json!({"datasets": [], "latest_request": null, "last_decision": null, "latest_run": null})
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
            .decide(&request, &decision, &trained_now, "test-click")
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

// ---------------------------------------------------------------------------------------------
// Logging and secrets

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn every_request_is_one_log_line_without_the_token_or_the_text() {
    use lambda_http::tracing::instrument::WithSubscriber;
    let w = World::new().await;
    let s = sender(&w, "NONE", Some(TOKEN));
    let secret_text = "confidential-metrics-QX7";
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = lambda_http::tracing::subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(lambda_http::tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    let dispatch = lambda_http::tracing::Dispatch::new(subscriber);
    let events = vec![
        form_post(
            "/send",
            Some(&bearer()),
            &[("text", secret_text), ("text2", secret_text)],
        ),
        json_post(
            "/send",
            Some(&format!("Bearer {TOKEN}-wrong")),
            &json!({"text": secret_text}),
        ),
        signed(function_url_event(
            "GET",
            "/status",
            &[("authorization", &bearer())],
            b"",
            false,
        )),
        function_url_event(
            "GET",
            &format!("/{TOKEN}"),
            &[("authorization", &bearer())],
            b"",
            false,
        ),
    ];
    let mut statuses = Vec::new();
    for e in events {
        statuses.push(call(&s, e).with_subscriber(dispatch.clone()).await.status);
    }
    assert_eq!(statuses, vec![204, 401, 200, 404]);
    let lines = logs.lines();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 4, "one line per request: {lines:#?}");
    let first = requests[0];
    assert_eq!(first["caller"], "127.0.0.1");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["route"], "/send");
    assert_eq!(first["status"], 204);
    assert!(first["bytes_in"].as_u64().unwrap() > 2 * secret_text.len() as u64);
    assert_eq!(first["bytes_out"], 0);
    assert!(first["latency_ms"].is_u64());
    assert_eq!(requests[1]["status"], 401);
    assert_eq!(
        requests[2]["caller"], IAM_CALLER,
        "the IAM caller when the URL verified one"
    );
    assert_eq!(
        requests[3]["route"], "other",
        "a free-form path is not logged"
    );
    let all = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!all.contains(TOKEN), "token in logs: {all}");
    assert!(!all.contains(secret_text), "text in logs: {all}");
    assert!(!all.contains(WEBHOOK_TOKEN), "webhook in logs: {all}");
}

#[tokio::test]
async fn the_token_and_webhook_never_show_in_debug_output() {
    let w = World::new().await;
    let env = Env::from_pairs(send_env(&w, "NONE", Some(TOKEN)));
    let config = SendConfig::from_env(&env, &SecretBundle::default()).unwrap();
    let s = sender(&w, "NONE", Some(TOKEN));
    let shown = format!("{config:?} {s:?} {env:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains(WEBHOOK_TOKEN), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Any input

#[test]
fn arbitrary_function_url_requests_never_panic_and_post_only_when_valid() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(World::new());
    let s = sender(&w, "NONE", Some(TOKEN));
    let strategy = (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
        prop::sample::select(vec!["/", "/send", "/status", "/x"]),
        prop::option::of(prop_oneof![
            Just(FORM.to_owned()),
            Just("application/json".to_owned()),
            "[ -~]{0,30}",
        ]),
        prop::collection::vec(any::<u8>(), 0..3000),
        any::<bool>(),
        prop::option::of(prop_oneof![Just(bearer()), "[ -~]{0,30}"]),
    );
    let mut runner = TestRunner::new(Config::with_cases(48));
    runner
        .run(&strategy, |(method, path, ct, body, b64, auth)| {
            w.slack.clear();
            let mut h = Vec::new();
            if let Some(ct) = &ct {
                h.push(("content-type", ct.as_str()));
            }
            if let Some(a) = &auth {
                h.push(("authorization", a.as_str()));
            }
            // A text body is what the Function URL received as UTF-8; a binary one is base64.
            let event = function_url_event(method, path, &h, &body, b64);
            let a = rt.block_on(call(&s, event));
            prop_assert!(
                (200..300).contains(&a.status) || (400..500).contains(&a.status),
                "{}",
                a.status
            );
            let posted = w.slack.received().len();
            prop_assert_eq!(posted > 0, a.status == 204);
            if auth.as_deref() != Some(bearer().as_str()) {
                prop_assert_eq!(a.status, 401);
            }
            Ok(())
        })
        .unwrap();
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
