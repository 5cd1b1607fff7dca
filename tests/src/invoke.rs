//! A stand-in for the Lambda Invoke API (`POST /2015-03-31/functions/NAME/invocations`), for
//! functions that invoke others or themselves. The SDK reaches it through
//! `AWS_ENDPOINT_URL_LAMBDA`. An `Event` invocation answers 202 at once and hands the payload to
//! the named function's Runtime API stand-in, retrying a failed run twice as Lambda does; a
//! `RequestResponse` one waits for the answer.

use crate::runtime::{LambdaRuntime, Outcome};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One invocation as received.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    /// `Event` or `RequestResponse`.
    pub invocation_type: String,
    pub payload: Value,
}

#[derive(Default)]
struct Inner {
    targets: HashMap<String, LambdaRuntime>,
    seen: Vec<Invocation>,
    /// Async runs still going (retries included).
    running: usize,
    /// Final outcomes of async invocations, in the order they finished.
    finished: Vec<(Invocation, Outcome)>,
    /// While set, every invocation is answered with this status instead of being taken.
    refusing: Option<u16>,
    next_id: u64,
}

#[derive(Clone)]
pub struct InvokeStandIn {
    /// The value for `AWS_ENDPOINT_URL_LAMBDA`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

/// Lambda retries an asynchronous invocation that fails twice more.
const ASYNC_ATTEMPTS: usize = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

async fn invoke(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let call = Invocation {
        function: function.clone(),
        invocation_type: invocation_type.clone(),
        payload: payload.clone(),
    };
    let (target, id) = {
        let mut g = inner.lock().unwrap();
        g.seen.push(call.clone());
        if let Some(status) = g.refusing {
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [("x-amzn-errortype", "ServiceException")],
                axum::Json(json!({"Type": "Service", "message": "planned failure"})),
            )
                .into_response();
        }
        g.next_id += 1;
        (
            g.targets.get(&function).cloned(),
            format!("async-{}", g.next_id),
        )
    };
    let Some(runtime) = target else {
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            axum::Json(
                json!({"Type": "User", "message": format!("Function not found: {function}")}),
            ),
        )
            .into_response();
    };
    if invocation_type == "Event" {
        inner.lock().unwrap().running += 1;
        let inner = inner.clone();
        let request_id = id.clone();
        tokio::spawn(async move {
            let id = request_id;
            let mut outcome = Err(json!({"errorMessage": "never ran"}));
            for attempt in 0..ASYNC_ATTEMPTS {
                if attempt > 0 {
                    // Lambda waits a minute, then two; a shorter pause keeps the same order.
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                // Lambda's retries of one event keep its request id.
                outcome = runtime
                    .enqueue(&id, payload.clone())
                    .await
                    .unwrap_or_else(|_| Err(json!({"errorMessage": "runtime gone"})));
                if outcome.is_ok() {
                    break;
                }
            }
            let mut g = inner.lock().unwrap();
            g.running -= 1;
            g.finished.push((call, outcome));
        });
        return (StatusCode::ACCEPTED, [("x-amzn-requestid", id)], "").into_response();
    }
    match runtime.invoke(&id, payload, Duration::from_secs(60)).await {
        Some(Ok(v)) => (StatusCode::OK, axum::Json(v)).into_response(),
        Some(Err(e)) => (
            StatusCode::OK,
            [("x-amz-function-error", "Unhandled")],
            axum::Json(e),
        )
            .into_response(),
        None => (StatusCode::GATEWAY_TIMEOUT, "no answer").into_response(),
    }
}

impl InvokeStandIn {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind invoke stand-in");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { url, inner }
    }

    /// Invocations of `function` go to this runtime (the function binary polls it).
    pub fn register(&self, function: &str, runtime: &LambdaRuntime) {
        self.inner
            .lock()
            .unwrap()
            .targets
            .insert(function.to_owned(), runtime.clone());
    }

    /// From now on, answers every invocation with `status` (and runs none); `None` stops that.
    pub fn refuse(&self, status: Option<u16>) {
        self.inner.lock().unwrap().refusing = status;
    }

    /// Every invocation received, in order.
    pub fn seen(&self) -> Vec<Invocation> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Waits until every async invocation has run (retries included); their final outcomes.
    pub async fn settle(&self, timeout: Duration) -> Vec<(Invocation, Outcome)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let g = self.inner.lock().unwrap();
                if g.running == 0 {
                    return g.finished.clone();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "async invocations still running after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
