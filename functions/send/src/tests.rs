//! Unit tests of the send handler (the crate root, `handler.rs`): a recording Slack poster and
//! an empty store, no network.

use super::*;
use ct_shared::aws::dynamo::{Claim, DatasetState, Status, StoreError, StoredAnswer};
use ct_shared::config::{Env, SecretBundle};
use ct_shared::domain::ApprovalRequest;
use ct_shared::slack::SlackError;
use proptest::prelude::*;
use std::sync::Mutex;

const TOKEN: &str = "tok-3f9a-SECRET";
const HOOK: &str = "https://hooks.example/services/T/B/HOOKSECRET";

/// Counts posts; answers as told.
#[derive(Debug, Default)]
struct Poster {
    posts: Mutex<Vec<Value>>,
    fail_from: Option<usize>,
}

impl SlackPoster for Poster {
    async fn post(&self, url: &str, message: &Value, _: RetryPolicy) -> Result<(), SlackError> {
        assert_eq!(url, HOOK);
        let mut posts = self.posts.lock().unwrap();
        if self.fail_from.is_some_and(|k| posts.len() >= k) {
            return Err(SlackError::Unavailable {
                status: 500,
                attempts: 4,
            });
        }
        posts.push(message.clone());
        Ok(())
    }
}

#[derive(Debug)]
struct Empty;

impl StatusStore for Empty {
    async fn status(&self) -> Result<Status, StoreError> {
        Ok(Status {
            datasets: vec![],
            latest_request: None,
            last_decision: None,
            latest_approval: None,
            latest_run: None,
            history: Default::default(),
        })
    }
}

impl ct_shared::aws::dynamo::LifecycleStore for Empty {
    async fn question(&self, _: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        Ok(None)
    }
    async fn record_message(
        &self,
        _: &str,
        _: &ct_shared::domain::Posted,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn expire(&self, _: &str, _: &str, _: Timestamp, _: bool) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn claim_reminder(&self, _: &str, _: &str, _: Timestamp) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn mark_reminded(&self, _: &str, _: Timestamp) -> Result<(), StoreError> {
        Ok(())
    }
    async fn release_reminder(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn edit_due(&self, _: &str, _: ct_shared::aws::dynamo::Edit) -> Result<(), StoreError> {
        Ok(())
    }
    async fn edit_done(&self, _: &str, _: ct_shared::aws::dynamo::Edit) -> Result<(), StoreError> {
        Ok(())
    }
    async fn edits_due(&self) -> Result<Vec<ct_shared::aws::dynamo::EditDue>, StoreError> {
        Ok(vec![])
    }
}

impl AskStore for Empty {
    async fn all_datasets(&self) -> Result<Vec<DatasetState>, StoreError> {
        Ok(vec![])
    }
    async fn newest_request_id(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    async fn open_request(&self, _: &ApprovalRequest, _: Option<&str>) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Every key is new: these tests are about parsing and posting.
impl IdempotencyStore for Empty {
    async fn claim(
        &self,
        _: &str,
        _: &str,
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Claim, StoreError> {
        Ok(Claim::Fresh)
    }
    async fn complete(
        &self,
        _: &str,
        _: &str,
        _: &StoredAnswer,
        _: Timestamp,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn abandon(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

fn sender(auth: &str, fail_from: Option<usize>) -> Sender<Poster, Empty> {
    let env = Env::from_pairs([
        ("STATE_TABLE", "t"),
        ("SLACK_WEBHOOK_URL", HOOK),
        ("SEND_URL_AUTH", auth),
        ("SEND_TOKEN", TOKEN),
    ]);
    let config = SendConfig::from_env(&env, &SecretBundle::default()).unwrap();
    Sender::new(
        &config,
        Poster {
            posts: Mutex::default(),
            fail_from,
        },
        Empty,
    )
}

fn request(method: &str, path: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body)).unwrap()
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn debug_output_never_shows_the_token_or_the_webhook() {
    let s = sender("NONE", None);
    let shown = format!("{s:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("HOOKSECRET"), "{shown}");
}

#[test]
fn a_failure_part_way_reports_what_was_delivered_and_sends_nothing_more() {
    let s = sender("NONE", Some(1));
    let auth = format!("Bearer {TOKEN}");
    // 40,000 '<' escape to 160,000 characters: two messages.
    let body = json!({ "text": "<".repeat(40_000) })
        .to_string()
        .into_bytes();
    let req = request(
        "POST",
        "/send",
        &[
            ("authorization", auth.as_bytes()),
            ("content-type", b"application/json"),
        ],
        body,
    );
    let resp = run(handle(&s, req)).unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (v["delivered"].as_u64(), v["messages"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        v["error"].as_str().unwrap().contains("message 2 of 2"),
        "{v}"
    );
    assert_eq!(s.slack.posts.lock().unwrap().len(), 1);
}

#[test]
fn out_of_time_before_a_message_is_504_and_nothing_is_posted() {
    let mut s = sender("NONE", None);
    s.budget = Duration::ZERO;
    let auth = format!("Bearer {TOKEN}");
    let req = request(
        "POST",
        "/",
        &[
            ("authorization", auth.as_bytes()),
            ("content-type", b"application/x-www-form-urlencoded"),
        ],
        b"text=late".to_vec(),
    );
    let resp = run(handle(&s, req)).unwrap();
    assert_eq!(resp.status(), 504);
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (v["delivered"].as_u64(), v["messages"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(s.slack.posts.lock().unwrap().is_empty());
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD",
    ])
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("/send".to_owned()),
        Just("/status".to_owned()),
        "/[a-z%0-9/._-]{0,20}",
    ]
}

fn content_type() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"application/x-www-form-urlencoded".to_vec()),
        Just(b"application/json".to_vec()),
        Just(b"application/json; charset=latin1".to_vec()),
        prop::collection::vec(32u8..127, 0..40),
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_filter("a header value", |v| HeaderValue::from_bytes(v).is_ok()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        ".{0,600}".prop_map(|t: String| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("text", &t)
                .finish()
                .into_bytes()
        }),
        (".{0,600}", ".{0,600}").prop_map(|(a, b): (String, String)| {
            json!({"text": a, "text2": b}).to_string().into_bytes()
        }),
        prop::collection::vec(any::<u8>(), notice::MAX_BODY - 8..notice::MAX_BODY + 8),
    ]
}

fn call(
    s: &Sender<Poster, Empty>,
    method: &str,
    path: &str,
    headers: Vec<(&str, Vec<u8>)>,
    body: Vec<u8>,
) -> Response<Body> {
    let refs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    run(handle(s, request(method, path, &refs, body))).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// An authorized POST with any content type and any body: an answer, never a panic;
    /// posted exactly when 204; every refusal a JSON error with its documented status.
    #[test]
    fn any_body_gets_an_answer_and_no_panic(
        path in prop_oneof![Just("/"), Just("/send")],
        ct in prop::option::of(content_type()),
        body in body(),
    ) {
        let s = sender("NONE", None);
        let mut headers = vec![("authorization", format!("Bearer {TOKEN}").into_bytes())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let resp = call(&s, "POST", path, headers, body);
        let status = resp.status().as_u16();
        let posted = s.slack.posts.lock().unwrap().len();
        prop_assert!([204, 400, 413, 415].contains(&status), "{}", status);
        if status == 204 {
            prop_assert!(posted >= 1);
        } else {
            prop_assert_eq!(posted, 0);
            let v: Value = serde_json::from_slice(resp.body()).unwrap();
            prop_assert!(v["error"].is_string());
        }
    }

    /// Any method, path, token and Accept header: a 2xx or 4xx answer, never a panic, and
    /// nothing posted without the right token.
    #[test]
    fn any_request_gets_an_answer_and_no_panic(
        method in method(),
        path in path(),
        ct in content_type(),
        body in body(),
        token in prop_oneof![Just(Some(TOKEN.to_owned())), Just(None), "[ -~]{0,20}".prop_map(Some)],
        accept in prop::option::of("[ -~]{0,40}"),
    ) {
        let s = sender("NONE", None);
        let mut headers: Vec<(&str, Vec<u8>)> = vec![("content-type", ct)];
        if let Some(t) = &token {
            headers.push(("authorization", format!("Bearer {t}").into_bytes()));
        }
        if let Some(a) = &accept {
            headers.push(("accept", a.clone().into_bytes()));
        }
        let Ok(uri) = path.parse::<lambda_http::http::Uri>() else { return Ok(()); };
        let resp = call(&s, method, &uri.to_string(), headers, body);
        let status = resp.status().as_u16();
        prop_assert!((200..300).contains(&status) || (400..500).contains(&status), "{}", status);
        let posted = s.slack.posts.lock().unwrap().len();
        if token.as_deref().map(str::trim) != Some(TOKEN) {
            prop_assert_eq!(status, 401);
            prop_assert_eq!(posted, 0);
        }
        prop_assert_eq!(posted > 0, status == 204);
    }
}
