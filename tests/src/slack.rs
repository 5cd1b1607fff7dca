//! A stand-in for Slack: the incoming webhook (`/services/...`), interaction `response_url`s
//! (`/actions/...`), and the Web API's `chat.postMessage` and `chat.update` (`/api/...`, with a
//! bot token: it gives each message a `ts` and keeps messages and their threads). It records
//! every request and answers as planned: 200 by default, or 429 with `Retry-After`, a 5xx, a
//! slow 200, or (Web API) `ok: false` with an error code.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the stand-in answers the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    /// Answer 200, but only after this long (Slack did take the message).
    Slow(Duration),
    /// The Web API's refusal: HTTP 200 with `{"ok": false, "error": <code>}`.
    ApiError(&'static str),
}

/// One request Slack received.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub body: Value,
    pub raw: Vec<u8>,
    pub content_type: Option<String>,
    /// The status this request was answered with (a slow 200 counts as 200).
    pub status: u16,
    /// A Web API call answered `ok: false`.
    pub refused: bool,
    /// When it arrived.
    pub at: std::time::SystemTime,
    /// The `Authorization` header (the Web API's bot token).
    pub authorization: Option<String>,
    /// The `ts` the Web API gave a posted message.
    pub ts: Option<String>,
}

impl Post {
    /// Whether Slack took it (a Web API call answered `ok: false` did not).
    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status) && !self.refused
    }
    /// The message's top-level `text`.
    pub fn text(&self) -> &str {
        self.body
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    posts: Vec<Post>,
    plan: VecDeque<Reply>,
    /// Planned answers for one Web API method, before the general plan.
    api_plan: std::collections::HashMap<String, VecDeque<Reply>>,
    /// Messages the Web API holds, by `ts`, as last posted or updated.
    messages: std::collections::BTreeMap<String, Value>,
    next_ts: u64,
}

/// The bot token the tests configure, so they can check it is sent and never leaks.
pub const BOT_TOKEN: &str = "xoxb-TeStBoTtOkEn-SeCrEt";

/// The secret-looking token in the webhook path, so tests can assert it never leaks.
pub const WEBHOOK_TOKEN: &str = "XoXsEcReTwEbHoOkToKeN";

#[derive(Clone)]
pub struct SlackStandIn {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn answer(inner: Arc<Mutex<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let method = path.strip_prefix("/api/").map(str::to_owned);
    let reply = {
        let mut i = inner.lock().unwrap();
        let planned = method
            .as_ref()
            .and_then(|m| i.api_plan.get_mut(m))
            .and_then(VecDeque::pop_front);
        planned.or_else(|| i.plan.pop_front()).unwrap_or(Reply::Ok)
    };
    let status = match &reply {
        Reply::Ok | Reply::Slow(_) | Reply::ApiError(_) => 200,
        Reply::Status(s) => *s,
        Reply::RateLimited { .. } => 429,
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // The Web API: a message posted gets a ts; an update replaces a message's content.
    let mut ts = None;
    let mut api_answer = None;
    if let Some(m) = &method
        && status == 200
    {
        let mut i = inner.lock().unwrap();
        api_answer = Some(match (&reply, m.as_str()) {
            (Reply::ApiError(code), _) => serde_json::json!({"ok": false, "error": code}),
            (_, "chat.postMessage") => {
                i.next_ts += 1;
                let t = format!("1796000000.{:06}", i.next_ts);
                i.messages.insert(t.clone(), parsed.clone());
                ts = Some(t.clone());
                serde_json::json!({"ok": true, "channel": parsed["channel"], "ts": t, "message": parsed})
            }
            (_, "chat.update") => {
                let t = parsed["ts"].as_str().unwrap_or_default().to_owned();
                if i.messages.contains_key(&t) {
                    i.messages.insert(t.clone(), parsed.clone());
                    serde_json::json!({"ok": true, "channel": parsed["channel"], "ts": t})
                } else {
                    serde_json::json!({"ok": false, "error": "message_not_found"})
                }
            }
            _ => serde_json::json!({"ok": false, "error": "unknown_method"}),
        });
    }
    let refused = api_answer.as_ref().is_some_and(|a| a["ok"] != true);
    inner.lock().unwrap().posts.push(Post {
        path,
        body: parsed,
        raw: body.to_vec(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status,
        refused,
        at: std::time::SystemTime::now(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ts,
    });
    let ok = |text: String| (StatusCode::OK, text).into_response();
    let body_of = || {
        api_answer
            .as_ref()
            .map_or("ok".to_owned(), Value::to_string)
    };
    match reply {
        Reply::Ok | Reply::ApiError(_) => ok(body_of()),
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            ok(body_of())
        }
        Reply::Status(s) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "planned failure",
        )
            .into_response(),
        Reply::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_secs.to_string())],
            "rate_limited",
        )
            .into_response(),
    }
}

impl SlackStandIn {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        Self::start_with(Router::new()).await
    }

    /// Starts with extra routes (the local console adds its page); everything else is Slack.
    pub async fn start_with(extra: Router) -> Self {
        Self::start_on(extra, "127.0.0.1:0").await
    }

    pub async fn start_on(extra: Router, addr: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = inner.clone();
        let app = extra.fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            answer(state.clone(), uri, headers, body)
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind slack stand-in");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { base, inner }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/services/T0000/B0000/{WEBHOOK_TOKEN}", self.base)
    }

    pub fn response_url(&self, name: &str) -> String {
        format!("{}/actions/{name}", self.base)
    }

    /// Queues how the next requests are answered, in order; after the plan, 200.
    pub fn plan(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().plan.extend(replies);
    }

    /// Queues how the next calls of one Web API method are answered (before the general plan).
    pub fn plan_api(&self, method: &str, replies: impl IntoIterator<Item = Reply>) {
        self.inner
            .lock()
            .unwrap()
            .api_plan
            .entry(method.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The Web API's base URL (`SLACK_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.base)
    }

    /// Every call of one Web API method, in order (refused ones too).
    pub fn api_calls(&self, method: &str) -> Vec<Post> {
        let path = format!("/api/{method}");
        self.received()
            .into_iter()
            .filter(|p| p.path == path)
            .collect()
    }

    /// A message the Web API holds, as last posted or updated.
    pub fn api_message(&self, ts: &str) -> Option<Value> {
        self.inner.lock().unwrap().messages.get(ts).cloned()
    }

    /// The replies posted in a message's thread, in order (refused ones too).
    pub fn thread(&self, ts: &str) -> Vec<Post> {
        self.api_calls("chat.postMessage")
            .into_iter()
            .filter(|p| p.body["thread_ts"] == ts)
            .collect()
    }

    /// Every request received, in order.
    pub fn received(&self) -> Vec<Post> {
        self.inner.lock().unwrap().posts.clone()
    }

    /// Requests answered 2xx (what Slack would show), in order.
    pub fn delivered(&self) -> Vec<Post> {
        self.received()
            .into_iter()
            .filter(Post::delivered)
            .collect()
    }

    /// Delivered posts to the channel's incoming webhook.
    pub fn channel(&self) -> Vec<Post> {
        self.delivered()
            .into_iter()
            .filter(|p| p.path.starts_with("/services/"))
            .collect()
    }

    /// Delivered posts to one response_url.
    pub fn responses(&self, name: &str) -> Vec<Post> {
        let path = format!("/actions/{name}");
        self.delivered()
            .into_iter()
            .filter(|p| p.path == path)
            .collect()
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.posts.clear();
        inner.plan.clear();
        inner.api_plan.clear();
    }
}
