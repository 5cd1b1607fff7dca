//! The local Slack console: a web page that shows the channel as Slack lays it out, and sends
//! correctly signed interactivity payloads to the local `actions` function when a button is
//! clicked, with a working `response_url` (the Slack stand-in).

use crate::runtime::LambdaRuntime;
use crate::slack::SlackStandIn;

mod view;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
pub use view::{Ephemeral, SlashAnswer, ThreadReply, ViewMessage, channel_view};
use view::{SlashSent, millis, slash_answers};

/// Everything the console drives.
#[derive(Clone)]
pub struct Console {
    pub slack: SlackStandIn,
    pub actions_url: String,
    pub signing_secret: String,
    pub seek: LambdaRuntime,
    pub sdk: aws_config::SdkConfig,
    pub bucket: String,
    /// (name, prefix) of each dataset.
    pub datasets: Vec<(String, String)>,
    pub users: Vec<(String, String)>,
    pub send_url: String,
    pub send_token: String,
    /// The next free object number under each prefix, so added objects never overwrite others.
    pub next_object: Arc<Mutex<HashMap<String, usize>>>,
    pub http: reqwest::Client,
    pub jobs: Jobs,
    /// The Kubeflow Pipelines stand-in, when Train! starts runs (ct-local always has one).
    pub kfp: Option<crate::kfp::KfpStandIn>,
}

/// The most objects one Add puts.
pub const MAX_ADD: u64 = 5_000;
/// Puts in flight at once while adding objects. moto serves one request at a time, so more
/// would not be faster (5,000 objects took about 40 s with 1 or 16 on a busy 2-core machine);
/// a few overlap this side's signing and sending with moto's work.
const ADD_IN_FLIGHT: usize = 4;

/// Work the console does on the server, so that a closed page cannot cut it short unseen and
/// a double click cannot do it twice.
#[derive(Clone, Default)]
pub struct Jobs {
    /// The Add in progress, or the last one.
    adding: Arc<Mutex<Option<Adding>>>,
    /// Held while a seek runs: "Run seek now" meanwhile is refused rather than run twice.
    seeking: Arc<tokio::sync::Mutex<()>>,
    /// Every slash command sent, in order: the `n` of its `response_url`.
    slash: Arc<Mutex<Vec<SlashSent>>>,
}

/// An Add, as the page shows its progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adding {
    pub dataset: String,
    pub requested: usize,
    pub added: usize,
    pub done: bool,
    pub error: Option<String>,
}

impl Adding {
    /// "added 150 objects to embedding", or how far it got and why it stopped.
    pub fn summary(&self) -> String {
        match &self.error {
            None if self.done => format!("added {} objects to {}", self.added, self.dataset),
            None => format!(
                "adding objects to {}: {} of {} so far",
                self.dataset, self.added, self.requested
            ),
            Some(e) => format!(
                "added only {} of {} objects to {}: {e}",
                self.added, self.requested, self.dataset
            ),
        }
    }
}

#[derive(Deserialize)]
struct ClickRequest {
    message_id: usize,
    action_id: String,
    value: String,
    user_id: String,
}

fn err(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({"error": text.into()}))).into_response()
}

/// Every error the console answers is `{"error": "..."}`, including axum's own plain-text
/// rejections (a body that is not JSON, a wrong method, an unknown path).
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    err(status, text)
}

#[derive(Deserialize)]
struct Viewer {
    /// The user whose view this is ("Click as"): only their ephemeral answers are in it.
    user: Option<String>,
}

async fn state(State(c): State<Console>, Query(viewer): Query<Viewer>) -> Json<Value> {
    let users: Vec<Value> = c
        .users
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    let datasets: Vec<Value> = c
        .datasets
        .iter()
        .map(|(n, p)| json!({"name": n, "prefix": p}))
        .collect();
    let adding = c
        .jobs
        .adding
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .map(|a| json!({"summary": a.summary(), "progress": a}));
    let posts = c.slack.received();
    let viewer = viewer
        .user
        .filter(|u| c.users.iter().any(|(id, _)| id == u));
    let slash = match &viewer {
        Some(user) => {
            let sent = c.jobs.slash.lock().unwrap_or_else(|p| p.into_inner());
            slash_answers(&posts, &sent, user)
        }
        None => vec![],
    };
    Json(json!({
        "messages": channel_view(&posts, viewer.as_deref()),
        "slash": slash,
        "viewer": viewer,
        "users": users,
        "datasets": datasets,
        "send_url": c.send_url,
        "adding": adding,
        "max_add": MAX_ADD,
    }))
}

/// Signs and posts a `block_actions` payload, as Slack does when a button is clicked.
async fn click(State(c): State<Console>, Json(req): Json<ClickRequest>) -> Response {
    let Some((uid, name)) = c.users.iter().find(|(id, _)| *id == req.user_id).cloned() else {
        return err(StatusCode::BAD_REQUEST, "unknown user");
    };
    let mut payload = crate::slack_events::block_actions(
        "train",
        "x",
        (&uid, &name),
        // The user in the path: an ephemeral answer posted here is for them only.
        &c.slack.response_url(&format!("{uid}/{}", req.message_id)),
    );
    payload["actions"][0]["action_id"] = json!(req.action_id);
    payload["actions"][0]["value"] = json!(req.value);
    match signed_post(&c, crate::slack_events::form(&payload)).await {
        Ok((status, body)) => Json(json!({"status": status, "body": body})).into_response(),
        Err(e) => err(StatusCode::BAD_GATEWAY, e),
    }
}

#[derive(Deserialize)]
struct SlashRequest {
    /// What follows `/ct-trigger`, or the whole line with it.
    text: String,
    user_id: String,
}

/// Signs and posts a slash command form, as Slack does when `/ct-trigger ...` is sent. The
/// answer (ephemeral, for the sender only) comes back in actions' response, or later to the
/// command's `response_url`; the console keeps both for the sender's view only.
async fn slash(State(c): State<Console>, Json(req): Json<SlashRequest>) -> Response {
    let Some((uid, name)) = c.users.iter().find(|(id, _)| *id == req.user_id).cloned() else {
        return err(StatusCode::BAD_REQUEST, "unknown user");
    };
    let line = req.text.trim();
    let n = {
        let mut sent = c.jobs.slash.lock().unwrap_or_else(|p| p.into_inner());
        sent.push(SlashSent {
            user: uid.clone(),
            command: line.to_owned(),
            answer: None,
        });
        sent.len() - 1
    };
    let answered = |text: String, error: bool| {
        let mut sent = c.jobs.slash.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sent.get_mut(n) {
            s.answer = Some(SlashAnswer {
                user: s.user.clone(),
                command: s.command.clone(),
                text,
                error,
                at: millis(SystemTime::now()),
            });
        }
    };
    let text = match line.split_once(char::is_whitespace) {
        _ if !line.starts_with('/') => line,
        Some(("/ct-trigger", rest)) => rest.trim(),
        None if line == "/ct-trigger" => "",
        _ => {
            let why = "only /ct-trigger is installed here: try /ct-trigger help";
            answered(why.to_owned(), true);
            return err(StatusCode::BAD_REQUEST, why);
        }
    };
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "deprecated-verification-token")
        .append_pair("team_id", "T0LOCAL")
        .append_pair("channel_name", "training")
        .append_pair("user_id", &uid)
        .append_pair("user_name", &name)
        .append_pair("command", "/ct-trigger")
        .append_pair("text", text)
        .append_pair(
            "response_url",
            &c.slack.response_url(&format!("slash/{uid}/{n}")),
        )
        .append_pair("trigger_id", &uuid::Uuid::new_v4().simple().to_string())
        .finish();
    match signed_post(&c, body.into_bytes()).await {
        Ok((status, body)) => {
            let answer: Option<Value> = serde_json::from_str(&body).ok();
            let said = answer
                .as_ref()
                .and_then(|a| a.get("text"))
                .and_then(Value::as_str);
            match said {
                Some(text) if status == 200 => answered(text.to_owned(), false),
                // Slack shows nothing for an empty 200: the answer, if any, comes later.
                None if status == 200 && body.trim().is_empty() => {}
                _ => {
                    let why = answer
                        .as_ref()
                        .and_then(|a| a.get("error"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| {
                            if body.trim().is_empty() {
                                "no answer".to_owned()
                            } else {
                                body.clone()
                            }
                        });
                    answered(format!("actions answered {status}: {why}"), true);
                }
            }
            Json(json!({"status": status, "body": body})).into_response()
        }
        Err(e) => {
            answered(e.clone(), true);
            err(StatusCode::BAD_GATEWAY, e)
        }
    }
}

/// Posts a form to the local actions function with Slack's signature headers: actions' status
/// and body, or why it did not answer.
async fn signed_post(c: &Console, body: Vec<u8>) -> Result<(u16, String), String> {
    let ts = ct_shared::Timestamp::now().secs().to_string();
    let sig = ct_shared::slack::signature::sign(
        &ct_shared::Secret::new(c.signing_secret.clone()),
        &ts,
        &body,
    );
    let sent = c
        .http
        .post(&c.actions_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            Ok((status, resp.text().await.unwrap_or_default()))
        }
        Err(e) => Err(format!("actions did not answer: {}", e.without_url())),
    }
}

/// What a function's error report (`{"errorType": ..., "errorMessage": ...}`) says, as a
/// sentence: its message, not the JSON.
pub fn error_report(report: &Value) -> String {
    match report.get("errorMessage").and_then(Value::as_str) {
        Some(m) if !m.trim().is_empty() => m.trim().to_owned(),
        _ => match report {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

/// One manual seek at a time: a second click while one runs is refused, so a double click
/// posts one message. The seek runs to its end even if the page goes away.
async fn seek_now(State(c): State<Console>) -> Response {
    let Ok(running) = c.jobs.seeking.clone().try_lock_owned() else {
        return err(
            StatusCode::CONFLICT,
            "a seek is already running: its message will appear in the channel",
        );
    };
    let id = uuid::Uuid::new_v4().to_string();
    let seek = c.seek.clone();
    let job = tokio::spawn(async move {
        let outcome = seek.invoke(&id, json!({}), Duration::from_secs(120)).await;
        drop(running);
        outcome
    });
    match job.await.ok().flatten() {
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err(e)) => err(
            StatusCode::BAD_GATEWAY,
            format!("seek failed: {}", error_report(&e)),
        ),
        None => err(StatusCode::GATEWAY_TIMEOUT, "seek did not answer"),
    }
}

/// Fires a quality alarm: CloudWatch's alarm `ct-quality-recall` going to ALARM (recall 0.81,
/// below 0.85), delivered to seek as EventBridge delivers it, each press a new state change.
async fn fire_alarm(State(c): State<Console>) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let event = crate::events::alarm_state_change("ct-quality-recall", "ALARM", &id, 0.81, 0.85);
    match c.seek.invoke(&id, event, Duration::from_secs(120)).await {
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err(e)) => err(
            StatusCode::BAD_GATEWAY,
            format!("seek failed: {}", error_report(&e)),
        ),
        None => err(StatusCode::GATEWAY_TIMEOUT, "seek did not answer"),
    }
}

/// Tells the Kubeflow stand-in how to answer the next launch: `{"fail": "none" | "401" | "404"
/// | "500" | "slow" | "login"}` (`500` fails every attempt of one launch).
async fn kfp_mode(State(c): State<Console>, body: Result<Json<Value>, JsonRejection>) -> Response {
    use crate::kfp::{Call, Fault};
    let Some(kfp) = &c.kfp else {
        return err(StatusCode::CONFLICT, "no Kubeflow stand-in in this console");
    };
    let mode = match &body {
        Ok(Json(v)) => v.get("fail").and_then(Value::as_str).unwrap_or_default(),
        Err(rejection) => return err(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    kfp.clear_plan();
    let (call, faults): (Call, Vec<Fault>) = match mode {
        "none" => (Call::Any, vec![]),
        "401" => (
            Call::Any,
            vec![Fault::Status(401, "unauthenticated".into())],
        ),
        "login" => (Call::Any, vec![Fault::LoginRedirect]),
        "404" => (
            Call::GetPipeline,
            vec![Fault::Status(404, "pipeline not found".into())],
        ),
        "500" => (
            Call::CreateRun,
            (0..3)
                .map(|_| Fault::Status(500, "internal error".into()))
                .collect(),
        ),
        "slow" => (Call::CreateRun, vec![Fault::Slow(Duration::from_secs(3))]),
        other => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("fail must be none, 401, login, 404, 500 or slow, not {other:?}"),
            );
        }
    };
    kfp.plan(call, faults);
    Json(json!({"kfp": mode})).into_response()
}

/// Adds `count` objects under a dataset's prefix, a few puts at a time, in the background: the
/// page shows the progress from `/api/state`, and this answers the number actually added.
async fn add_objects(
    State(c): State<Console>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(rejection) => return err(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if req.get("count").is_none_or(Value::is_null) {
        return err(
            StatusCode::BAD_REQUEST,
            format!("enter how many objects to add, 1 to {MAX_ADD}"),
        );
    }
    let Some(count) = req
        .get("count")
        .and_then(Value::as_u64)
        .filter(|n| (1..=MAX_ADD).contains(n))
    else {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "count must be a whole number from 1 to {MAX_ADD}, not {}",
                req.get("count").unwrap_or(&Value::Null)
            ),
        );
    };
    let count = count as usize;
    let name = req.get("dataset").and_then(Value::as_str).unwrap_or("");
    let Some((dataset, prefix)) = c.datasets.iter().find(|(n, _)| n == name).cloned() else {
        return err(StatusCode::BAD_REQUEST, format!("unknown dataset {name:?}"));
    };
    {
        let mut adding = c.jobs.adding.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = adding.as_ref().filter(|a| !a.done) {
            return err(
                StatusCode::CONFLICT,
                format!("still {}; wait for it to finish", a.summary()),
            );
        }
        *adding = Some(Adding {
            dataset,
            requested: count,
            added: 0,
            done: false,
            error: None,
        });
    }
    let start = {
        let mut next = c.next_object.lock().unwrap_or_else(|p| p.into_inner());
        let start = next.get(&prefix).copied().unwrap_or(0);
        next.insert(prefix.clone(), start + count);
        start
    };
    let job = tokio::spawn(put_objects(c.clone(), prefix, start, count));
    job.await.ok();
    let done = c
        .jobs
        .adding
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match done {
        Some(a) if a.error.is_none() => {
            Json(json!({"dataset": a.dataset, "added": a.added, "summary": a.summary()}))
                .into_response()
        }
        Some(a) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": a.summary(), "added": a.added})),
        )
            .into_response(),
        None => err(StatusCode::INTERNAL_SERVER_ERROR, "the Add was lost"),
    }
}

/// The puts behind an Add, counted into `jobs.adding` as they succeed; stops at the first error.
async fn put_objects(c: Console, prefix: String, start: usize, count: usize) {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&c.sdk)
            .force_path_style(true)
            .build(),
    );
    let mut running = tokio::task::JoinSet::new();
    let (mut next, end) = (start, start + count);
    let mut error = None;
    loop {
        while error.is_none() && next < end && running.len() < ADD_IN_FLIGHT {
            let put = s3
                .put_object()
                .bucket(&c.bucket)
                .key(format!("{prefix}{next:06}.jsonl"))
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}\n"));
            running.spawn(async move { put.send().await.map(|_| ()) });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let mut adding = c.jobs.adding.lock().unwrap_or_else(|p| p.into_inner());
        match done {
            Ok(Ok(())) => {
                if let Some(a) = adding.as_mut() {
                    a.added += 1;
                }
            }
            Ok(Err(e)) => {
                error.get_or_insert_with(|| {
                    format!(
                        "a put failed: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                });
            }
            Err(e) => {
                error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(a) = c
        .jobs
        .adding
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        a.done = true;
        a.error = error;
    }
}

async fn status(State(c): State<Console>) -> Response {
    let sent = c
        .http
        .get(format!("{}/status", c.send_url))
        .bearer_auth(&c.send_token)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let code =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap_or_default())
                .unwrap_or(Value::Null);
            (code, Json(body)).into_response()
        }
        Err(e) => err(
            StatusCode::BAD_GATEWAY,
            format!("send did not answer: {}", e.without_url()),
        ),
    }
}

fn run_view(r: &crate::kfp::StoredRun) -> Value {
    json!({
        "run_id": r.run_id,
        "display_name": r.display_name,
        "pipeline_id": r.pipeline_id,
        "pipeline_version_id": r.pipeline_version_id,
        "experiment_id": r.experiment_id,
        "parameters": r.parameters,
    })
}

/// The runs Train! started on the Kubeflow stand-in, newest first.
async fn kfp_runs(State(c): State<Console>) -> Response {
    let Some(kfp) = &c.kfp else {
        return err(
            StatusCode::NOT_FOUND,
            "no Kubeflow stand-in in this console",
        );
    };
    let runs: Vec<Value> = kfp.runs().iter().rev().map(run_view).collect();
    Json(json!({"runs": runs})).into_response()
}

async fn kfp_run(State(c): State<Console>, Path(id): Path<String>) -> Response {
    let Some(kfp) = &c.kfp else {
        return err(
            StatusCode::NOT_FOUND,
            "no Kubeflow stand-in in this console",
        );
    };
    match kfp.runs().iter().find(|r| r.run_id == id) {
        Some(r) => Json(run_view(r)).into_response(),
        None => err(
            StatusCode::NOT_FOUND,
            format!("no run {id} on the stand-in"),
        ),
    }
}

/// The Kubeflow Pipelines stand-in's pages, where run links (`KUBEFLOW_URL#/runs/details/<id>`)
/// lead: a run's name, pipeline and parameters, or the list of runs.
const KUBEFLOW_PAGE: &str = include_str!("../console/kubeflow.html");

const PAGE: &str = include_str!("../console/index.html");

/// The console's icon: a small aubergine square with "ct".
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#3f0e40"/><text x="16" y="21.5" font-family="Arial, sans-serif" font-size="15" font-weight="700" fill="#fff" text-anchor="middle">ct</text></svg>"##;

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// The console's routes.
pub fn router(console: Console) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/api/state", get(state))
        .route("/api/click", post(click))
        .route("/api/slash", post(slash))
        .route("/api/seek", post(seek_now))
        .route("/api/alarm", post(fire_alarm))
        .route("/api/kfp", post(kfp_mode))
        .route("/api/objects", post(add_objects))
        .route("/api/status", get(status))
        .route(
            "/kubeflow",
            get(|| async { Redirect::permanent("/kubeflow/") }),
        )
        .route("/kubeflow/", get(|| async { Html(KUBEFLOW_PAGE) }))
        .route("/api/kfp/runs", get(kfp_runs))
        .route("/api/kfp/runs/{id}", get(kfp_run))
        .fallback(|uri: axum::http::Uri| async move {
            err(
                StatusCode::NOT_FOUND,
                format!("no such page: {}", uri.path()),
            )
        })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(console)
}
