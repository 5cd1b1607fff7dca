//! A stand-in for Slack: the incoming webhook (`/services/...`) and interaction `response_url`s
//! (`/actions/...`). It records every request and answers as planned: 200 by default, or
//! 429 with `Retry-After`, a 5xx, or a slow 200.

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
}

impl Post {
    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status)
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
}

/// The secret-looking token in the webhook path, so tests can assert it never leaks.
pub const WEBHOOK_TOKEN: &str = "XoXsEcReTwEbHoOkToKeN";

#[derive(Clone)]
pub struct SlackStandIn {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn answer(inner: Arc<Mutex<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let reply = inner.lock().unwrap().plan.pop_front().unwrap_or(Reply::Ok);
    let status = match &reply {
        Reply::Ok | Reply::Slow(_) => 200,
        Reply::Status(s) => *s,
        Reply::RateLimited { .. } => 429,
    };
    inner.lock().unwrap().posts.push(Post {
        path: uri.path().to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status,
    });
    match reply {
        Reply::Ok => (StatusCode::OK, "ok").into_response(),
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, "ok").into_response()
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
    }
}
