//! A fault-injecting proxy in front of moto's DynamoDB, on loopback.
//!
//! Point a function at it with `AWS_ENDPOINT_URL_DYNAMODB` (S3 and Secrets Manager keep
//! talking to moto), or an in-process handler with [`DynamoProxy::sdk`]. Every request is
//! forwarded to moto one at a time, except where a fault is planned: per operation (the
//! `X-Amz-Target` after the dot, e.g. `TransactWriteItems`) and for its next N calls, the proxy
//! can commit and then lose the answer, throttle, or answer 500 without forwarding.
//! Requests without an `X-Amz-Target` (S3) are forwarded untouched.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How one call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Forward to moto (the write happens), then answer 500 `InternalServerError`, as if the
    /// answer was lost on the way back.
    CommitThenLose,
    /// Answer 400 `ThrottlingException` without forwarding.
    Throttle,
    /// Answer 400 `ProvisionedThroughputExceededException` without forwarding.
    ProvisionedThroughput,
    /// Answer 500 `InternalServerError` without forwarding.
    ServerError,
    /// Answer late: wait [`SLOW`], longer than actions' per-attempt timeout, then forward and
    /// answer. The caller has given up on the attempt by then (a read is harmless; a write
    /// happens after the caller stopped waiting).
    Slow,
}

/// How long a [`Fault::Slow`] answer takes.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(800);

impl Fault {
    pub const ALL: [Fault; 4] = [
        Fault::CommitThenLose,
        Fault::Throttle,
        Fault::ProvisionedThroughput,
        Fault::ServerError,
    ];

    fn answer(self) -> Response {
        let (status, kind, message) = match self {
            Fault::CommitThenLose | Fault::ServerError | Fault::Slow => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error",
            ),
            Fault::Throttle => (
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ),
            Fault::ProvisionedThroughput => (
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            ),
        };
        let body = serde_json::json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
            "message": message,
        });
        (
            status,
            [("content-type", "application/x-amz-json-1.0")],
            body.to_string(),
        )
            .into_response()
    }
}

/// One DynamoDB call the proxy saw, and the fault it injected, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub op: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    /// Per operation, how its next calls go: `None` passes, `Some` fails.
    plan: HashMap<String, VecDeque<Option<Fault>>>,
    calls: Vec<Call>,
}

struct Inner {
    upstream: String,
    http: reqwest::Client,
    state: Mutex<State>,
    /// moto is not atomic under concurrency: forward one request at a time.
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// The proxy; clones share it.
#[derive(Clone)]
pub struct DynamoProxy {
    pub url: String,
    inner: Arc<Inner>,
}

const HOP_BY_HOP: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
];

async fn forward(
    inner: &Inner,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, String> {
    let url = format!(
        "{}{}",
        inner.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut req = inner.http.request(method, url).body(body);
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            req = req.header(name, value);
        }
    }
    let _turn = inner.one_at_a_time.lock().await;
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in resp.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out_headers.insert(name.clone(), value.clone());
        }
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, out_headers, bytes).into_response())
}

async fn serve(
    inner: Arc<Inner>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op.to_owned());
    let fault = op.as_ref().and_then(|op| {
        let mut state = inner.state.lock().unwrap();
        let fault = state
            .plan
            .get_mut(op)
            .and_then(VecDeque::pop_front)
            .flatten();
        state.calls.push(Call {
            op: op.clone(),
            fault,
        });
        fault
    });
    match fault {
        Some(Fault::CommitThenLose) => {
            // The write happens; only its answer is lost.
            let _ = forward(&inner, method, &uri, &headers, body).await;
            Fault::CommitThenLose.answer()
        }
        Some(Fault::Slow) => {
            tokio::time::sleep(SLOW).await;
            forward(&inner, method, &uri, &headers, body)
                .await
                .unwrap_or_else(|_| Fault::Slow.answer())
        }
        Some(other) => other.answer(),
        None => match forward(&inner, method, &uri, &headers, body).await {
            Ok(resp) => resp,
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                format!("proxy: moto unreachable: {e}"),
            )
                .into_response(),
        },
    }
}

impl DynamoProxy {
    /// Starts on a free loopback port in front of `upstream` (moto's URL).
    pub async fn start(upstream: &str) -> Self {
        ct_shared::tls::install_provider();
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("proxy http client"),
            state: Mutex::new(State::default()),
            one_at_a_time: tokio::sync::Mutex::new(()),
        });
        let state = inner.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                serve(state.clone(), method, uri, headers, body)
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind dynamodb proxy");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { url, inner }
    }

    /// Starts in front of the shared moto server.
    pub async fn in_front_of_moto() -> Self {
        Self::start(crate::moto::url()).await
    }

    /// The next `n` calls of `op` (e.g. `"UpdateItem"`) fail with `fault`, after any already
    /// planned for it.
    pub fn fail_next(&self, op: &str, fault: Fault, n: usize) {
        self.fail_after(op, 0, fault, n);
    }

    /// Lets the next `pass` calls of `op` through, then fails `n` with `fault` (seek's lease
    /// and mark-posted are both `UpdateItem`: the second is `fail_after("UpdateItem", 1, ..)`).
    pub fn fail_after(&self, op: &str, pass: usize, fault: Fault, n: usize) {
        let mut state = self.inner.state.lock().unwrap();
        let plan = state.plan.entry(op.to_owned()).or_default();
        plan.extend(std::iter::repeat_n(None, pass));
        plan.extend(std::iter::repeat_n(Some(fault), n));
    }

    /// Plans a whole schedule for `op`: `None` passes a call, `Some` fails it.
    pub fn plan(&self, op: &str, schedule: impl IntoIterator<Item = Option<Fault>>) {
        let mut state = self.inner.state.lock().unwrap();
        state
            .plan
            .entry(op.to_owned())
            .or_default()
            .extend(schedule);
    }

    /// Forgets any faults still planned.
    pub fn heal(&self) {
        self.inner.state.lock().unwrap().plan.clear();
    }

    /// Every DynamoDB call seen, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.state.lock().unwrap().calls.clone()
    }

    /// How many faults were injected (a plan longer than the calls made injects fewer).
    pub fn injected(&self) -> usize {
        self.calls().iter().filter(|c| c.fault.is_some()).count()
    }

    /// SDK configuration that reaches DynamoDB (and, forwarded untouched, S3) through the proxy.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        crate::moto::sdk_at(&self.url).await
    }

    /// The environment entry that sends a function binary's DynamoDB calls here.
    pub fn env(&self) -> (String, String) {
        ("AWS_ENDPOINT_URL_DYNAMODB".into(), self.url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn injects_each_fault_once_then_forwards() {
        let proxy = DynamoProxy::in_front_of_moto().await;
        let sdk = proxy.sdk().await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        for fault in Fault::ALL {
            proxy.fail_next("ListTables", fault, 1);
            let err = client
                .list_tables()
                .send()
                .await
                .expect_err("fault injected");
            let text = format!("{err:?}");
            let expected = match fault {
                Fault::CommitThenLose | Fault::ServerError => "InternalServerError",
                Fault::Throttle => "ThrottlingException",
                Fault::ProvisionedThroughput => "ProvisionedThroughputExceeded",
                Fault::Slow => unreachable!("not in ALL: it answers, late"),
            };
            assert!(text.contains(expected), "{fault:?}: {text}");
            client
                .list_tables()
                .send()
                .await
                .expect("forwarded to moto");
        }
        assert_eq!(proxy.injected(), 4);
        assert_eq!(proxy.calls().len(), 8);
    }
}
