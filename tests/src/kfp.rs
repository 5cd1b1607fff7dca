//! A stand-in for the Kubeflow Pipelines v2beta1 REST API: pipelines with versions, runs created
//! and listed (with the `display_name` filter), and a run page for the console. It records every
//! request and can be told to fail the next calls of a kind: an HTTP status, a redirect to a
//! login page, a slow answer, or (for create-run) creating the run and then cutting the answer off.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which calls a planned fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Any,
    CreateRun,
    ListRuns,
    GetRun,
    GetPipeline,
    ListVersions,
}

/// How the stand-in fails one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with a KFP-shaped error body.
    Status(u16, String),
    /// 302 to an oauth2-proxy login page.
    LoginRedirect,
    /// Do the call, but answer only after this long.
    Slow(Duration),
    /// Create the run, then cut the answer off mid-body (the client never learns the run id).
    CreateThenDrop,
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Value,
    pub authorization: Option<String>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub run_id: String,
    pub display_name: String,
    pub pipeline_id: String,
    pub pipeline_version_id: String,
    pub experiment_id: Option<String>,
    pub parameters: Value,
}

#[derive(Default)]
struct Inner {
    /// (pipeline id, name, versions oldest first)
    pipelines: Vec<(String, String, Vec<String>)>,
    /// Parameters the pipelines accept; empty: any.
    accepted: Vec<String>,
    runs: Vec<StoredRun>,
    seen: Vec<Seen>,
    plan: VecDeque<(Call, Fault)>,
    token: Option<String>,
}

#[derive(Clone)]
pub struct KfpStandIn {
    /// The API base (`KFP_ENDPOINT`) and the UI base for run links.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn error(status: StatusCode, message: &str) -> Response {
    let code = match status.as_u16() {
        400 => 3,
        404 => 5,
        401 => 16,
        403 => 7,
        _ => 13,
    };
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

fn run_json(r: &StoredRun) -> Value {
    json!({
        "run_id": r.run_id,
        "display_name": r.display_name,
        "experiment_id": r.experiment_id,
        "pipeline_version_reference": {
            "pipeline_id": r.pipeline_id, "pipeline_version_id": r.pipeline_version_id
        },
        "runtime_config": {"parameters": r.parameters},
        "state": "PENDING",
        "storage_state": "AVAILABLE",
    })
}

impl Inner {
    /// Records the call and takes the first planned fault that applies to it.
    fn begin(
        &mut self,
        call: Call,
        method: &Method,
        path: &str,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Option<Fault> {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.seen.push(Seen {
            method: method.to_string(),
            path: path.to_owned(),
            query: query.clone(),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
            authorization,
        });
        let at = self
            .plan
            .iter()
            .position(|(c, _)| *c == Call::Any || *c == call)?;
        self.plan.remove(at).map(|(_, f)| f)
    }

    fn authorized(&self) -> bool {
        match &self.token {
            None => true,
            Some(t) => {
                self.seen.last().and_then(|s| s.authorization.as_deref())
                    == Some(format!("Bearer {t}").as_str())
            }
        }
    }

    fn create(&mut self, body: &Value) -> Result<StoredRun, (StatusCode, String)> {
        let reference = &body["pipeline_version_reference"];
        let pid = reference["pipeline_id"].as_str().unwrap_or_default();
        let vid = reference["pipeline_version_id"]
            .as_str()
            .unwrap_or_default();
        let Some((_, _, versions)) = self.pipelines.iter().find(|(id, _, _)| id == pid) else {
            return Err((StatusCode::NOT_FOUND, format!("pipeline {pid} not found")));
        };
        if !versions.iter().any(|v| v == vid) {
            return Err((
                StatusCode::NOT_FOUND,
                format!("pipeline version {vid} not found"),
            ));
        }
        let Some(name) = body["display_name"].as_str().filter(|n| !n.is_empty()) else {
            return Err((StatusCode::BAD_REQUEST, "display_name is required".into()));
        };
        let parameters = body["runtime_config"]["parameters"].clone();
        if !self.accepted.is_empty()
            && let Some(map) = parameters.as_object()
            && let Some(bad) = map.keys().find(|k| !self.accepted.contains(k))
        {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("unknown input parameter {bad:?}"),
            ));
        }
        let run = StoredRun {
            run_id: format!("run-{}", self.runs.len() + 1),
            display_name: name.to_owned(),
            pipeline_id: pid.to_owned(),
            pipeline_version_id: vid.to_owned(),
            experiment_id: body["experiment_id"].as_str().map(str::to_owned),
            parameters,
        };
        self.runs.push(run.clone());
        Ok(run)
    }
}

type Shared = Arc<Mutex<Inner>>;

/// Runs one call: records it, applies a planned fault, checks the token, then `work`.
/// One incoming call, as the routes hand it to [`serve`].
struct Incoming {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
}

async fn serve(
    inner: Shared,
    call: Call,
    req: Incoming,
    work: impl FnOnce(&mut Inner, &Value) -> Response,
) -> Response {
    let Incoming {
        method,
        path,
        query,
        headers,
        body,
    } = req;
    let fault = inner
        .lock()
        .unwrap()
        .begin(call, &method, &path, &query, &headers, &body);
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match fault {
        Some(Fault::Status(s, message)) => {
            return error(
                StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &message,
            );
        }
        Some(Fault::LoginRedirect) => {
            return (
                StatusCode::FOUND,
                [("location", "/oauth2/start?rd=%2Fpipeline")],
                "",
            )
                .into_response();
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::CreateThenDrop) => {
            let created = {
                let mut guard = inner.lock().unwrap();
                guard.create(&json_body)
            };
            if let Err((status, message)) = created {
                return error(status, &message);
            }
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"run_id\": \"")),
                Err(std::io::Error::other("connection dropped by the stand-in")),
            ];
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap();
        }
        None => {}
    }
    let mut guard = inner.lock().unwrap();
    if !guard.authorized() {
        return error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
    }
    work(&mut guard, &json_body)
}

fn list_runs(inner: &mut Inner, query: &HashMap<String, String>) -> Response {
    let wanted = query
        .get("filter")
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        .and_then(|f| {
            f["predicates"].as_array().and_then(|ps| {
                ps.iter()
                    .find(|p| p["key"] == "display_name" && p["operation"] == "EQUALS")
                    .and_then(|p| p["string_value"].as_str().map(str::to_owned))
            })
        });
    let runs: Vec<Value> = inner
        .runs
        .iter()
        .rev()
        .filter(|r| wanted.as_deref().is_none_or(|w| r.display_name == w))
        .filter(|r| {
            query
                .get("experiment_id")
                .is_none_or(|e| r.experiment_id.as_deref() == Some(e))
        })
        .map(run_json)
        .collect();
    axum::Json(json!({"runs": runs, "total_size": runs.len()})).into_response()
}

const RUN_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>Kubeflow Pipelines (stand-in)</title>
<body style="font-family:sans-serif"><h1>Kubeflow Pipelines <small>(local stand-in)</small></h1>
<pre id="run">loading…</pre><script>
const id = (location.hash.match(/#\/runs\/details\/(.+)$/) || [])[1];
fetch(id ? 'apis/v2beta1/runs/' + encodeURIComponent(id) : 'apis/v2beta1/runs')
  .then(r => r.json()).then(j => { document.getElementById('run').textContent = JSON.stringify(j, null, 2); });
</script>"#;

impl KfpStandIn {
    /// Starts on a free loopback port with one pipeline, `retrain` (`pl-1`), with versions
    /// `v-1` and `v-2` (the newest).
    pub async fn start() -> Self {
        let inner: Shared = Arc::new(Mutex::new(Inner {
            pipelines: vec![(
                "pl-1".into(),
                "retrain".into(),
                vec!["v-1".into(), "v-2".into()],
            )],
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/", get(|| async { Html(RUN_PAGE) }))
            .route(
                "/apis/v2beta1/runs",
                get({
                    let inner = inner.clone();
                    move |m: Method, Query(q): Query<HashMap<String, String>>, h: HeaderMap, b: Bytes| {
                        let q2 = q.clone();
                        serve(inner, Call::ListRuns, Incoming { method: m, path: "/apis/v2beta1/runs".into(), query: q, headers: h, body: b }, move |i, _| {
                            list_runs(i, &q2)
                        })
                    }
                })
                .post({
                    let inner = inner.clone();
                    move |m: Method, Query(q): Query<HashMap<String, String>>, h: HeaderMap, b: Bytes| {
                        serve(inner, Call::CreateRun, Incoming { method: m, path: "/apis/v2beta1/runs".into(), query: q, headers: h, body: b }, |i, body| {
                            match i.create(body) {
                                Ok(run) => axum::Json(run_json(&run)).into_response(),
                                Err((status, message)) => error(status, &message),
                            }
                        })
                    }
                }),
            )
            .route(
                "/apis/v2beta1/runs/{id}",
                get({
                    let inner = inner.clone();
                    move |m: Method, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>, h: HeaderMap, b: Bytes| {
                        let path = format!("/apis/v2beta1/runs/{id}");
                        serve(inner, Call::GetRun, Incoming { method: m, path, query: q, headers: h, body: b }, move |i, _| {
                            match i.runs.iter().find(|r| r.run_id == id) {
                                Some(r) => axum::Json(run_json(r)).into_response(),
                                None => error(StatusCode::NOT_FOUND, &format!("run {id} not found")),
                            }
                        })
                    }
                }),
            )
            .route(
                "/apis/v2beta1/pipelines/names/{name}",
                get({
                    let inner = inner.clone();
                    move |m: Method, Path(name): Path<String>, Query(q): Query<HashMap<String, String>>, h: HeaderMap, b: Bytes| {
                        let path = format!("/apis/v2beta1/pipelines/names/{name}");
                        serve(inner, Call::GetPipeline, Incoming { method: m, path, query: q, headers: h, body: b }, move |i, _| {
                            match i.pipelines.iter().find(|(_, n, _)| *n == name) {
                                Some((id, n, _)) => axum::Json(json!({"pipeline_id": id, "display_name": n})).into_response(),
                                None => error(StatusCode::NOT_FOUND, &format!("pipeline {name} not found")),
                            }
                        })
                    }
                }),
            )
            .route(
                "/apis/v2beta1/pipelines/{id}/versions",
                get({
                    let inner = inner.clone();
                    move |m: Method, Path(id): Path<String>, Query(q): Query<HashMap<String, String>>, h: HeaderMap, b: Bytes| {
                        let path = format!("/apis/v2beta1/pipelines/{id}/versions");
                        let newest_first = q.get("sort_by").is_some_and(|s| s.ends_with("desc"));
                        serve(inner, Call::ListVersions, Incoming { method: m, path, query: q, headers: h, body: b }, move |i, _| {
                            match i.pipelines.iter().find(|(p, _, _)| *p == id) {
                                Some((_, _, versions)) => {
                                    let mut vs: Vec<Value> = versions
                                        .iter()
                                        .map(|v| json!({"pipeline_id": id, "pipeline_version_id": v}))
                                        .collect();
                                    if newest_first {
                                        vs.reverse();
                                    }
                                    axum::Json(json!({"pipeline_versions": vs})).into_response()
                                }
                                None => error(StatusCode::NOT_FOUND, &format!("pipeline {id} not found")),
                            }
                        })
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind kfp stand-in");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { base, inner }
    }

    /// Fails the next calls of a kind, in order.
    pub fn plan(&self, call: Call, faults: impl IntoIterator<Item = Fault>) {
        self.inner
            .lock()
            .unwrap()
            .plan
            .extend(faults.into_iter().map(|f| (call, f)));
    }

    /// Forgets planned faults not used yet.
    pub fn clear_plan(&self) {
        self.inner.lock().unwrap().plan.clear();
    }

    /// From now on, requires `Authorization: Bearer <token>`.
    pub fn require_token(&self, token: &str) {
        self.inner.lock().unwrap().token = Some(token.to_owned());
    }

    /// From now on, refuses (400) parameters other than these.
    pub fn accept_parameters(&self, names: &[&str]) {
        self.inner.lock().unwrap().accepted = names.iter().map(|s| (*s).to_owned()).collect();
    }

    /// A run created outside any client (as by a request whose answer never arrived): its id.
    pub fn add_run(&self, display_name: &str, experiment_id: Option<&str>) -> String {
        let mut inner = self.inner.lock().unwrap();
        let run_id = format!("run-{}", inner.runs.len() + 1);
        inner.runs.push(StoredRun {
            run_id: run_id.clone(),
            display_name: display_name.to_owned(),
            pipeline_id: "pl-1".into(),
            pipeline_version_id: "v-2".into(),
            experiment_id: experiment_id.map(str::to_owned),
            parameters: json!({}),
        });
        run_id
    }

    /// Adds a newer version to pipeline `pl-1`.
    pub fn add_version(&self, version_id: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some((_, _, versions)) = inner.pipelines.first_mut() {
            versions.push(version_id.to_owned());
        }
    }

    pub fn runs(&self) -> Vec<StoredRun> {
        self.inner.lock().unwrap().runs.clone()
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Create-run requests received (whatever their answer).
    pub fn create_calls(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path == "/apis/v2beta1/runs")
            .count()
    }
}
