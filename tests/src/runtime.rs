//! A stand-in for the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), so the real function
//! binaries run here as they do in Lambda: they poll for the next event and post its result.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// A function's answer to one invocation: its result, or (`Err`) its error report.
pub type Outcome = Result<Value, Value>;

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<(String, Value)>>,
    ready: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
    first_poll: Mutex<Option<std::time::Instant>>,
    /// The invocation's time limit given to the function (0: Lambda's 300 s default here).
    timeout_ms: std::sync::atomic::AtomicU64,
}

/// The runtime API for one function.
#[derive(Clone)]
pub struct LambdaRuntime {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub api: String,
    inner: Arc<Inner>,
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner
        .first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(std::time::Instant::now);
    loop {
        let notified = inner.ready.notified();
        if let Some((id, event)) = inner.queue.lock().unwrap().pop_front() {
            let limit = match inner.timeout_ms.load(std::sync::atomic::Ordering::Relaxed) {
                0 => 300_000,
                ms => u128::from(ms),
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + limit;
            return (
                StatusCode::OK,
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:000000000000:function:local".to_owned(),
                    ),
                    ("content-type", "application/json".to_owned()),
                ],
                event.to_string(),
            )
                .into_response();
        }
        notified.await;
    }
}

fn finish(inner: &Inner, id: &str, outcome: Outcome) -> StatusCode {
    match inner.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            tx.send(outcome).ok();
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

impl LambdaRuntime {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(
                    |State(i): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes| async move {
                        finish(&i, &id, Ok(json(&body)))
                    },
                ),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(
                    |State(i): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes| async move {
                        finish(&i, &id, Err(json(&body)))
                    },
                ),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|State(i): State<Arc<Inner>>, body: Bytes| async move {
                    *i.init_error.lock().unwrap() = Some(json(&body));
                    StatusCode::ACCEPTED
                }),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime api");
        let api = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { api, inner }
    }

    /// When the function first asked for an event: its init (cold start) was done by then.
    pub fn first_poll(&self) -> Option<std::time::Instant> {
        *self.inner.first_poll.lock().unwrap()
    }

    /// Queues one invocation without waiting; the receiver gets the function's answer.
    pub fn enqueue(&self, request_id: &str, event: Value) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .waiting
            .lock()
            .unwrap()
            .insert(request_id.to_owned(), tx);
        self.inner
            .queue
            .lock()
            .unwrap()
            .push_back((request_id.to_owned(), event));
        self.inner.ready.notify_waiters();
        rx
    }

    /// Queues one invocation and waits for the function's answer (`Err` is its error report).
    /// The time limit the next invocations get (their `Lambda-Runtime-Deadline-Ms`).
    pub fn set_function_timeout(&self, limit: Duration) {
        self.inner.timeout_ms.store(
            limit.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub async fn invoke(
        &self,
        request_id: &str,
        event: Value,
        timeout: Duration,
    ) -> Option<Outcome> {
        let rx = self.enqueue(request_id, event);
        tokio::time::timeout(timeout, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Where the function binaries are: `CT_BIN_DIR`, or the cargo target folder these tests run from.
pub fn binary(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("CT_BIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("current exe");
            // target/<profile>/deps/<test> or target/<profile>/<bin> -> target/<profile>
            let dir = exe.parent().expect("exe dir");
            if dir.ends_with("deps") {
                dir.parent().expect("target dir")
            } else {
                dir
            }
            .to_path_buf()
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the functions first with `cargo build --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// The environment Lambda gives a function, pointed at local stand-ins; no AWS profile files.
pub fn lambda_env(
    function: &str,
    runtime_api: Option<&str>,
    moto_url: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "local"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("PATH", "/usr/bin:/bin"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(api) = runtime_api {
        env.push(("AWS_LAMBDA_RUNTIME_API".into(), api.into()));
    }
    env
}

/// Starts a function binary with exactly this environment; output is captured.
pub fn spawn(name: &str, env: &[(String, String)]) -> tokio::process::Child {
    tokio::process::Command::new(binary(name))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn function binary")
}

/// Collects a spawned function's stdout and stderr lines (and keeps its pipes drained).
pub fn logs(child: &mut tokio::process::Child) -> Arc<Mutex<Vec<String>>> {
    use tokio::io::AsyncBufReadExt;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let streams: [Box<dyn tokio::io::AsyncRead + Send + Unpin>; 2] = [
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for stream in streams {
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
    }
    lines
}

/// A function binary running behind its own Runtime API stand-in, with the Lambda environment
/// pointed at moto plus `extra`.
pub struct Function {
    pub runtime: LambdaRuntime,
    /// What the function printed (its pipes are kept drained, so it never blocks on them).
    pub logs: Arc<Mutex<Vec<String>>>,
    _child: tokio::process::Child,
}

impl Function {
    pub async fn start(name: &str, extra: Vec<(String, String)>) -> Self {
        let runtime = LambdaRuntime::start().await;
        let mut env = lambda_env(name, Some(&runtime.api), crate::moto::url());
        env.extend(extra);
        let mut child = spawn(name, &env);
        let logs = logs(&mut child);
        Self {
            runtime,
            logs,
            _child: child,
        }
    }

    /// One invocation; panics if the function does not answer within 90 s.
    pub async fn invoke(&self, request_id: &str, event: Value) -> Outcome {
        self.runtime
            .invoke(request_id, event, Duration::from_secs(90))
            .await
            .expect("the function answered")
    }
}
