//! send: the Function URL that pipeline steps call to post a notice to Slack, and a read-only
//! status view.
//!
//! | route                | answers                                                            |
//! |----------------------|--------------------------------------------------------------------|
//! | `POST /`, `/send`    | 204 once Slack accepted every message; 502 (504 on timeout) if not |
//! | `POST /ask`          | 201 with the new approval request's id, once Slack has it          |
//! | `GET /status`        | JSON, or a few lines of text when `Accept` prefers `text/plain`    |
//!
//! `POST`s may carry an `Idempotency-Key` (see [`idempotency`]): a retry answers what the first
//! call answered, without posting again.
//!
//! Every request passes the [`auth::Gate`] first, and every request is logged as one line
//! (caller, method, route, status, bytes, latency), never with the token or the text.
//! Each message of a notice is posted once: a timeout is not retried (Slack may have posted
//! it), and after a failure the remaining messages are not posted, so the answer can say
//! exactly how many were delivered.

pub mod ask;
pub mod auth;
pub mod body;
pub mod idempotency;
pub mod metrics;
pub mod notice;
pub mod status;

use metrics::Sent;

use auth::Gate;
use ct_shared::Timestamp;
use ct_shared::aws::SdkConfig;
use ct_shared::aws::dynamo::{
    AskStore, DynamoStore, IdempotencyStore, LifecycleStore, StatusStore,
};
use ct_shared::config::SendConfig;
use ct_shared::slack::{self, Channel, RetryPolicy, SlackClient, SlackPoster, messages};
use lambda_http::http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// All of one request's posts together stay within this, inside the function's 30 s timeout.
pub const SLACK_BUDGET: Duration = Duration::from_secs(25);

/// send's dependencies, built once at cold start.
#[derive(Debug)]
pub struct Sender<P, S> {
    pub gate: Gate,
    /// The channel: the Web API with a bot token, or the incoming webhook.
    route: slack::Route,
    /// The Kubeflow Pipelines UI, for run links in `/status`.
    kubeflow_url: Option<String>,
    /// The metrics' `Stack` dimension.
    pub stack: String,
    pub slack: P,
    pub store: S,
    /// How hard to try each message (429s, 5xx, each attempt's timeout).
    pub policy: RetryPolicy,
    /// The time all of one request's messages share.
    pub budget: Duration,
}

/// The deployed shape: DynamoDB and reqwest.
pub type LiveSender = Sender<SlackClient, DynamoStore>;

impl LiveSender {
    pub fn live(
        config: SendConfig,
        sdk: &SdkConfig,
    ) -> Result<Self, ct_shared::slack::client::HttpError> {
        let store = DynamoStore::new(sdk, config.common.state_table.clone());
        Ok(Sender::new(&config, SlackClient::new()?, store))
    }
}

/// Which route a path names. Logged instead of the path, which the caller chooses freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Send,
    Ask,
    Status,
    Other,
}

impl Route {
    fn of(path: &str) -> (Self, &'static str) {
        match path {
            "/" => (Route::Send, "/"),
            "/send" => (Route::Send, "/send"),
            "/ask" => (Route::Ask, "/ask"),
            "/status" => (Route::Status, "/status"),
            _ => (Route::Other, "other"),
        }
    }
}

pub(crate) fn response(status: u16, content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(crate) fn json_response(status: u16, value: &Value) -> Response<Body> {
    response(status, "application/json", Body::from(value.to_string()))
}

pub(crate) fn error(status: u16, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": message }))
}

fn with_header(mut resp: Response<Body>, name: HeaderName, value: &'static str) -> Response<Body> {
    resp.headers_mut()
        .insert(name, HeaderValue::from_static(value));
    resp
}

/// What the request context says about the caller: the IAM principal the Function URL
/// verified (only present with `AuthType: AWS_IAM`), and the source address.
struct Caller {
    iam: Option<String>,
    source_ip: Option<String>,
}

impl Caller {
    fn of(req: &Request) -> Self {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                let iam = ctx
                    .authorizer
                    .as_ref()
                    .and_then(|a| a.iam.as_ref())
                    .map(|i| {
                        i.user_arn
                            .clone()
                            .or_else(|| i.caller_id.clone())
                            .unwrap_or_else(|| "iam".to_owned())
                    });
                Caller {
                    iam,
                    source_ip: ctx.http.source_ip.clone(),
                }
            }
            _ => Caller {
                iam: None,
                source_ip: None,
            },
        }
    }

    fn name(&self) -> &str {
        self.iam
            .as_deref()
            .or(self.source_ip.as_deref())
            .unwrap_or("-")
    }
}

/// Everything send needs from the state table.
pub trait SendStore: StatusStore + AskStore + IdempotencyStore + LifecycleStore {}
impl<T: StatusStore + AskStore + IdempotencyStore + LifecycleStore> SendStore for T {}

impl<P: SlackPoster, S: SendStore> Sender<P, S> {
    pub fn new(config: &SendConfig, slack: P, store: S) -> Self {
        Self {
            gate: Gate::new(config.url_auth, config.send_token.as_ref()),
            route: config.common.slack.clone(),
            kubeflow_url: config.kubeflow_url.clone(),
            stack: config.common.stack.clone(),
            slack,
            store,
            policy: RetryPolicy::REQUEST,
            budget: SLACK_BUDGET,
        }
    }

    /// One request's answer, and a note for the log line when something went wrong.
    /// One request's answer, a note for the log line when something went wrong, and what a
    /// notice came to (for the metrics).
    async fn respond(
        &self,
        req: &Request,
        caller: &Caller,
        now: Timestamp,
    ) -> (Response<Body>, Option<String>, Option<Sent>) {
        if let Err(denied) = self.gate.check(req.headers(), caller.iam.is_some()) {
            let resp = error(401, &denied.to_string());
            let resp = if self.gate.wants_token() {
                with_header(resp, WWW_AUTHENTICATE, "Bearer")
            } else {
                resp
            };
            return (resp, Some(format!("{denied:?}")), None);
        }
        let (route, _) = Route::of(req.uri().path());
        let (resp, note) = match (route, req.method()) {
            (Route::Send | Route::Ask, &Method::POST) => return self.once(req, route, now).await,
            (Route::Status, &Method::GET) => self.status(req).await,
            (Route::Send | Route::Ask, _) => {
                (with_header(error(405, "use POST"), ALLOW, "POST"), None)
            }
            (Route::Status, _) => (with_header(error(405, "use GET"), ALLOW, "GET"), None),
            (Route::Other, _) => (
                error(
                    404,
                    "no such route: POST / or /send, POST /ask, GET /status",
                ),
                None,
            ),
        };
        (resp, note, None)
    }

    /// The work behind a `POST`, once its idempotency key (if any) is settled.
    async fn run(
        &self,
        req: &Request,
        route: Route,
        now: Timestamp,
    ) -> (Response<Body>, Option<String>, Option<Sent>) {
        match route {
            Route::Ask => {
                let (resp, note) = self.ask(req, now).await;
                (resp, note, None)
            }
            _ => self.send(req).await,
        }
    }

    async fn send(&self, req: &Request) -> (Response<Body>, Option<String>, Option<Sent>) {
        let content_type = req.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes);
        let notice = match notice::parse(content_type, req.body()) {
            Ok(n) => n,
            Err(e) => {
                return (
                    error(e.status(), &e.to_string()),
                    Some(format!("{e:?}")),
                    None,
                );
            }
        };
        let messages = messages::notice(&notice.text, notice.text2.as_deref());
        let total = messages.len();
        let sent = |failure| {
            Some(Sent {
                messages: total as u64,
                failure,
            })
        };
        let deadline = Instant::now() + self.budget;
        for (delivered, message) in messages.iter().enumerate() {
            let n = delivered + 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let msg = format!("ran out of time before message {n} of {total}");
                return (
                    json_response(
                        504,
                        &json!({"error": msg, "delivered": delivered, "messages": total}),
                    ),
                    Some(msg),
                    sent(Some("timeout".into())),
                );
            }
            let policy = RetryPolicy {
                budget: self.policy.budget.min(left),
                ..self.policy
            };
            if let Err(e) = Channel::new(&self.slack, &self.route)
                .post(message, policy)
                .await
            {
                let (status, msg) = if e.is_timeout() {
                    (
                        504,
                        format!(
                            "Slack did not answer in time: message {n} of {total} may or may \
                             not have been posted ({e})"
                        ),
                    )
                } else {
                    (
                        502,
                        format!("Slack did not accept message {n} of {total}: {e}"),
                    )
                };
                return (
                    json_response(
                        status,
                        &json!({"error": msg, "delivered": delivered, "messages": total}),
                    ),
                    Some(msg),
                    sent(Some(metrics::failure_status(&e))),
                );
            }
        }
        let mut done = response(204, "application/json", Body::Empty);
        done.headers_mut().remove(CONTENT_TYPE);
        (done, None, sent(None))
    }

    async fn status(&self, req: &Request) -> (Response<Body>, Option<String>) {
        match self.store.status().await {
            Ok(s) => {
                let view = status::StatusView::from_status(&s)
                    .with_run_links(self.kubeflow_url.as_deref());
                let accept = req.headers().get(ACCEPT).map(HeaderValue::as_bytes);
                let resp = if status::wants_text(accept) {
                    response(200, "text/plain; charset=utf-8", Body::from(view.to_text()))
                } else {
                    json_response(200, &json!(view))
                };
                (resp, None)
            }
            Err(e) => (
                error(502, "could not read the state table"),
                Some(e.to_string()),
            ),
        }
    }
}

/// The Lambda entry point: one request, one answer, one log line. Every expected outcome is an
/// `Ok` response; nothing here returns `Err`.
pub async fn handle<P: SlackPoster, S: SendStore>(
    sender: &Sender<P, S>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let caller = Caller::of(&req);
    let (resp, note, sent) = sender.respond(&req, &caller, Timestamp::now()).await;
    let (_, route) = Route::of(req.uri().path());
    let status = resp.status().as_u16();
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (bytes_in, bytes_out) = (req.body().len(), resp.body().len());
    let method = req.method().as_str();
    let caller = caller.name();
    if status >= 500 {
        tracing::warn!(
            caller,
            method,
            route,
            status,
            bytes_in,
            bytes_out,
            latency_ms,
            error = note.as_deref(),
            "request"
        );
    } else {
        tracing::info!(
            caller,
            method,
            route,
            status,
            bytes_in,
            bytes_out,
            latency_ms,
            error = note.as_deref(),
            "request"
        );
    }
    if let Some(sent) = sent {
        let now = Timestamp::now();
        for line in sent.lines(&sender.stack) {
            line.emit(now);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests;
