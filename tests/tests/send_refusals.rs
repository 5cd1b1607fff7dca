//! send, end to end (see `send.rs`): who may call it, what it refuses, what it logs, and that
//! no input makes it panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::config::{Env, SecretBundle, SendConfig};
use harness::World;
use harness::events::function_url_event;
use harness::send_api::*;
use harness::slack::WEBHOOK_TOKEN;
use serde_json::{Value, json};

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
    // tracing caches whether each log line is wanted. While only one dispatcher is registered
    // it asks just the current thread's, so another test of this binary (another thread, no
    // subscriber) that logged a request first cached the line as unwanted everywhere: CI saw
    // all four request lines missing. With a second one registered, every one is asked.
    let _second = lambda_http::tracing::Dispatch::new(lambda_http::tracing::subscriber::registry());
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
