//! actions: Slack's interactivity Request URL. Turns a click on Train! or Nope! into exactly one
//! recorded decision.
//!
//! Order of work, per request: size limit, Slack's signature over the raw bytes, the form and
//! its payload, the request's standing, the decision (one DynamoDB transaction), and only then
//! the notifications, each with a short timeout. Nothing runs after the response is returned.

use ct_shared::Timestamp;
use ct_shared::aws::SdkConfig;
use ct_shared::aws::dynamo::{DecisionStore, DynamoStore, StoreError};
use ct_shared::config::ActionsConfig;
use ct_shared::domain::{ApprovalRequest, Choice, Decision, Standing};
use ct_shared::slack::interaction::{self, Click};
use ct_shared::slack::signature;
use ct_shared::slack::{RetryPolicy, SlackClient, SlackPoster, messages};
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

pub mod metrics;

use metrics::{Observation, Refusal};

/// Slack's payloads are small; anything larger is refused unread.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Attempts at recording a decision when a dataset's trained count moved meanwhile.
const DECIDE_ATTEMPTS: usize = 3;

/// actions' dependencies, built once at cold start.
pub struct Actions<S, P> {
    pub config: ActionsConfig,
    pub store: S,
    pub slack: P,
}

/// The deployed shape: DynamoDB and reqwest.
pub type LiveActions = Actions<DynamoStore, SlackClient>;

impl LiveActions {
    pub fn live(
        config: ActionsConfig,
        sdk: &SdkConfig,
    ) -> Result<Self, ct_shared::slack::client::HttpError> {
        Ok(Actions {
            store: DynamoStore::new(sdk, config.common.state_table.clone()),
            slack: SlackClient::new()?,
            config,
        })
    }
}

/// What a click came to, for the log line and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This click decided the request.
    Recorded(Decision),
    /// Someone decided it first: nothing changed.
    AlreadyDecided(Decision),
    /// A newer request replaced it: nothing changed.
    Superseded,
}

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn refuse(status: StatusCode, error: &str) -> Response<Body> {
    reply(status, json!({ "error": error }))
}

/// Slack wants an empty 200 for a handled interaction.
fn ok() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn header_str<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn is_form(req: &Request) -> bool {
    header_str(req, "content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl<S: DecisionStore, P: SlackPoster> Actions<S, P> {
    /// Answers one HTTP request at time `now`.
    pub async fn respond(&self, req: &Request, now: Timestamp) -> Response<Body> {
        self.respond_observed(req, now).await.0
    }

    /// Answers one HTTP request at time `now`, and says what it came to (for the metrics).
    pub async fn respond_observed(
        &self,
        req: &Request,
        now: Timestamp,
    ) -> (Response<Body>, Observation) {
        let malformed = |status, error| {
            (
                refuse(status, error),
                Observation::refused(Refusal::Malformed),
            )
        };
        if req.method() != Method::POST {
            return malformed(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        }
        let body: &[u8] = req.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return malformed(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB");
        }
        if let Err(e) = signature::verify(
            &self.config.signing_secret,
            header_str(req, "x-slack-request-timestamp"),
            header_str(req, "x-slack-signature"),
            body,
            now,
        ) {
            tracing::warn!(reason = %e, "refused an unverified request");
            return (
                refuse(StatusCode::UNAUTHORIZED, "invalid Slack signature"),
                Observation::refused(Refusal::from(&e)),
            );
        }
        if !is_form(req) {
            return malformed(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/x-www-form-urlencoded",
            );
        }
        let click = match interaction::parse_form(body) {
            Ok(click) => click,
            Err(e) => {
                tracing::warn!(reason = %e, "refused a payload");
                return malformed(StatusCode::BAD_REQUEST, &e.to_string());
            }
        };
        match self.decide(&click, now).await {
            Ok(Some((request, verdict))) => {
                let notify_failures = self.notify(&click, &request, &verdict).await;
                let observation = match &verdict {
                    Verdict::Recorded(d) => Observation {
                        decided: Some(d.choice),
                        ..Default::default()
                    },
                    Verdict::AlreadyDecided(_) => Observation::refused(Refusal::AlreadyDecided),
                    Verdict::Superseded => Observation::refused(Refusal::Superseded),
                };
                (
                    ok(),
                    Observation {
                        notify_failures,
                        ..observation
                    },
                )
            }
            Ok(None) => {
                tracing::warn!(request_id = %click.request_id, "click on an unknown request");
                (
                    refuse(StatusCode::NOT_FOUND, "unknown approval request"),
                    Observation::refused(Refusal::UnknownRequest),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, request_id = %click.request_id, "could not record the decision");
                (
                    refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "state store unavailable; try again",
                    ),
                    Observation::default(),
                )
            }
        }
    }

    /// Records the click's decision if it is the first on an open request.
    /// `None`: no such request.
    pub async fn decide(
        &self,
        click: &Click,
        now: Timestamp,
    ) -> Result<Option<(ApprovalRequest, Verdict)>, StoreError> {
        for _ in 0..DECIDE_ATTEMPTS {
            let Some(request) = self.store.request(&click.request_id).await? else {
                return Ok(None);
            };
            let newest = self.store.latest_request_id().await?;
            match request.standing(newest.as_deref()) {
                Standing::Decided(d) => return Ok(Some((request, Verdict::AlreadyDecided(d)))),
                Standing::Superseded { .. } => return Ok(Some((request, Verdict::Superseded))),
                Standing::Open => {}
            }
            let decision = Decision {
                request_id: request.id.clone(),
                choice: click.choice,
                by: click.by.clone(),
                at: now,
            };
            let names: Vec<String> = request.snapshot.iter().map(|c| c.name.clone()).collect();
            let trained_now = match click.choice {
                Choice::Train => self.store.datasets(&names).await?,
                Choice::Nope => Default::default(),
            };
            if self.store.decide(&request, &decision, &trained_now).await? {
                tracing::info!(
                    request_id = %request.id,
                    decision = decision.choice.as_str(),
                    user_id = %decision.by.id,
                    "decision recorded"
                );
                return Ok(Some((request, Verdict::Recorded(decision))));
            }
            // Someone else decided, a newer seek superseded it, or a trained count moved: read again.
        }
        Err(StoreError::Dynamo {
            op: "decide",
            reason: "the request kept changing; giving up after 3 attempts".into(),
        })
    }

    /// Tells Slack, after the decision is durable. Each post has a short budget, the two run
    /// together, and a failure is logged: it neither undoes nor repeats the decision. Returns
    /// how many failed.
    async fn notify(&self, click: &Click, request: &ApprovalRequest, verdict: &Verdict) -> u64 {
        let policy = RetryPolicy::INTERACTIVE;
        let to_clicker = match verdict {
            Verdict::Recorded(d) => messages::decided(&request.snapshot, d),
            Verdict::AlreadyDecided(d) => messages::already_decided(d),
            Verdict::Superseded => messages::superseded(),
        };
        let response = async {
            match &click.response_url {
                Some(url) => self
                    .slack
                    .post(url, &to_clicker, policy)
                    .await
                    .map_err(|e| ("response_url", e)),
                None => Ok(()),
            }
        };
        let channel = async {
            match verdict {
                Verdict::Recorded(d) if d.choice == Choice::Train => self
                    .slack
                    .post(
                        self.config.common.slack_webhook.expose(),
                        &messages::kubeflow(&self.config.kubeflow_url),
                        policy,
                    )
                    .await
                    .map_err(|e| ("channel webhook", e)),
                _ => Ok(()),
            }
        };
        let (a, b) = tokio::join!(response, channel);
        let mut failures = 0;
        for (target, e) in [a.err(), b.err()].into_iter().flatten() {
            failures += 1;
            tracing::warn!(target, error = %e, request_id = %request.id, "notification failed; the decision stands");
        }
        failures
    }
}

/// The Lambda entry point.
pub async fn handle<S: DecisionStore, P: SlackPoster>(
    app: &Actions<S, P>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let started = std::time::Instant::now();
    let now = Timestamp::now();
    let (resp, observation) = app.respond_observed(&req, now).await;
    let latency = started.elapsed();
    tracing::info!(
        status = resp.status().as_u16(),
        bytes = req.body().len(),
        latency_ms = latency.as_millis() as u64,
        "request"
    );
    for line in observation.lines(&app.config.common.stack, latency.as_secs_f64() * 1000.0) {
        line.emit(now);
    }
    Ok(resp)
}
