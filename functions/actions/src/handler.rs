//! actions: Slack's interactivity Request URL. Turns a click on Train! or Nope! into exactly one
//! recorded decision.
//!
//! Order of work, per request: size limit, Slack's signature over the raw bytes, the form and
//! its payload, the request's standing, the decision (one DynamoDB transaction), and only then
//! the notifications, each with a short timeout. Nothing runs after the response is returned.

pub mod command;

use ct_shared::Timestamp;
use ct_shared::aws::SdkConfig;
use ct_shared::aws::dynamo::{
    ApprovalStore, DecisionStore, DynamoStore, LaunchStore, LifecycleStore, ManualSeekStore,
    Patience, StatusStore, StoreError,
};
use ct_shared::aws::invoke::{AsyncInvoker, LambdaInvoker};
use ct_shared::config::ActionsConfig;
use ct_shared::domain::{ApprovalRequest, Choice, Decision, Person, Standing};
use ct_shared::slack::interaction::{self, Click, Interaction};
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
/// The most the state store may take for one click, retries included. Slack wants the answer
/// within 3 s: this, then at most [`READ_BACK_BUDGET`], then the notifications' 1 s
/// (`RetryPolicy::INTERACTIVE`).
pub const DECIDE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1200);
/// After a decide that failed or ran out of time: how long one consistent read may take to learn
/// whether the click's own decision committed anyway (its answer lost or late).
pub const READ_BACK_BUDGET: std::time::Duration = std::time::Duration::from_millis(800);
/// When a click's answer is due: Slack waits 3 s, and the answer must still travel.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(2900);

fn answer_by(started: tokio::time::Instant) -> tokio::time::Instant {
    started + ANSWER_WITHIN
}

/// How old an approval without a launch must be before a later press queues its launch: the
/// deciding click's own time, as for its notice.
pub(crate) const RESUME_AFTER_SECS: i64 = ct_shared::aws::dynamo::NOTICE_DUTY_SECS;

pub mod launch;
mod notice;
mod retry;

use launch::LaunchJob;

/// Everything actions needs from the state table.
pub trait ActionsStore:
    DecisionStore + LaunchStore + StatusStore + ManualSeekStore + ApprovalStore + LifecycleStore
{
}
impl<T> ActionsStore for T where
    T: DecisionStore + LaunchStore + StatusStore + ManualSeekStore + ApprovalStore + LifecycleStore
{
}

/// actions' dependencies, built once at cold start.
pub struct Actions<S, P, Q> {
    pub config: ActionsConfig,
    pub store: S,
    pub slack: P,
    /// Where launch jobs are queued: `Some` when Kubeflow Pipelines is configured.
    pub launches: Option<Q>,
    /// The seek function `/ct-trigger seek` queues a count to: `Some` with `SEEK_FUNCTION_NAME`.
    pub seeks: Option<Q>,
}

/// The deployed shape: DynamoDB, reqwest and the Lambda API.
pub type LiveActions = Actions<DynamoStore, SlackClient, LambdaInvoker>;

impl LiveActions {
    pub fn live(
        config: ActionsConfig,
        sdk: &SdkConfig,
    ) -> Result<Self, ct_shared::slack::client::HttpError> {
        let launches = match (&config.kfp, &config.launch_function) {
            (Some(_), Some(function)) => Some(LambdaInvoker::new(sdk, function.clone())),
            _ => None,
        };
        let seeks = config
            .seek_function
            .as_ref()
            .map(|function| LambdaInvoker::new(sdk, function.clone()));
        Ok(Actions {
            seeks,
            store: DynamoStore::with_patience(
                sdk,
                config.common.state_table.clone(),
                Patience::INTERACTIVE,
            ),
            slack: SlackClient::new()?,
            launches,
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
    Superseded { newest: String },
    /// Nobody decided it within `REQUEST_TTL`: nothing changed.
    Expired { at: Timestamp },
}

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

pub(crate) fn refuse(status: StatusCode, error: &str) -> Response<Body> {
    reply(status, json!({ "error": error }))
}

/// Slack wants an empty 200 for a handled interaction.
pub(crate) fn ok() -> Response<Body> {
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

impl<S: ActionsStore, P: SlackPoster, Q: AsyncInvoker> Actions<S, P, Q> {
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
        let started = tokio::time::Instant::now();
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
        if let Some(cmd) = command::parse(body) {
            let (answer, observation) = self.command(&cmd, now).await;
            return (reply(StatusCode::OK, answer), observation);
        }
        let click = match interaction::parse_interaction(body) {
            Ok(Interaction::Decide(click)) => click,
            Ok(Interaction::RetryLaunch(retry)) => {
                // Retry starts a run: the same rule as Train!.
                if !self.config.approvers.allows(&retry.by.id) {
                    self.refuse_person(&retry.by, &retry.request_id, retry.response_url.as_deref())
                        .await;
                    return (ok(), Observation::refused(Refusal::NotApprover));
                }
                return (self.retry(&retry, now).await, Observation::default());
            }
            Err(e) => {
                tracing::warn!(reason = %e, "refused a payload");
                return malformed(StatusCode::BAD_REQUEST, &e.to_string());
            }
        };
        if !self.config.approvers.allows(&click.by.id) {
            self.refuse_person(&click.by, &click.request_id, click.response_url.as_deref())
                .await;
            return (ok(), Observation::refused(Refusal::NotApprover));
        }
        // Who this click is, stored with its decision: a retry, a re-read, or the read-back
        // below can then tell this click's own decision from someone else's.
        let identity = click.identity(&ct_shared::domain::new_request_id());
        let handling = notice::Handling {
            click: &click,
            identity: &identity,
            now,
            answer_by: answer_by(started),
        };
        let decided = tokio::time::timeout(DECIDE_BUDGET, self.decide(&click, &identity, now))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Dynamo {
                    op: "decide",
                    reason: format!("no answer within {DECIDE_BUDGET:?}"),
                })
            });
        let decided = match decided {
            Err(e) => self.read_back(&click, &identity, e).await,
            done => done,
        };
        match decided {
            Ok(Some((request, verdict))) => {
                let notify_failures = self.notify(&handling, &request, &verdict).await;
                let observation = match &verdict {
                    Verdict::Recorded(d) => Observation {
                        decided: Some(d.choice),
                        ..Default::default()
                    },
                    Verdict::AlreadyDecided(_) => Observation::refused(Refusal::AlreadyDecided),
                    Verdict::Superseded { .. } => Observation::refused(Refusal::Superseded),
                    Verdict::Expired { .. } => Observation::refused(Refusal::Expired),
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

    /// After a decide that failed or timed out: one bounded, consistent read. If the request is
    /// decided by this very click, the write happened and only its answer was lost or late: the
    /// decision is this click's, and its notices follow. Otherwise the failure stands.
    async fn read_back(
        &self,
        click: &Click,
        identity: &str,
        failure: StoreError,
    ) -> Result<Option<(ApprovalRequest, Verdict)>, StoreError> {
        let read = tokio::time::timeout(
            READ_BACK_BUDGET,
            self.store.request_and_decider(&click.request_id),
        )
        .await;
        match read {
            Ok(Ok(Some((request, Some(decider))))) if decider == identity => {
                match request.decision.clone() {
                    Some(d) => {
                        tracing::warn!(
                            request_id = %request.id,
                            error = %failure,
                            "the decision committed though its answer was lost; carrying on"
                        );
                        Ok(Some((request, Verdict::Recorded(d))))
                    }
                    None => Err(failure),
                }
            }
            _ => Err(failure),
        }
    }

    /// Records the click's decision if it is the first on an open request. `identity` is the
    /// click's (see `Click::identity`). `None`: no such request.
    pub async fn decide(
        &self,
        click: &Click,
        identity: &str,
        now: Timestamp,
    ) -> Result<Option<(ApprovalRequest, Verdict)>, StoreError> {
        for _ in 0..DECIDE_ATTEMPTS {
            let Some((request, decider)) =
                self.store.request_and_decider(&click.request_id).await?
            else {
                return Ok(None);
            };
            let newest = self.store.latest_request_id().await?;
            match request.standing(newest.as_deref()) {
                // Decided by this click: an earlier attempt's write committed unheard.
                Standing::Decided(d) if decider.as_deref() == Some(identity) => {
                    tracing::info!(request_id = %request.id, "found this click's own decision");
                    return Ok(Some((request, Verdict::Recorded(d))));
                }
                Standing::Decided(d) => return Ok(Some((request, Verdict::AlreadyDecided(d)))),
                Standing::Superseded { newest } => {
                    return Ok(Some((request, Verdict::Superseded { newest })));
                }
                Standing::Expired { at } => return Ok(Some((request, Verdict::Expired { at }))),
                Standing::Open => {}
            }
            // Overdue, though no sweep has recorded it yet: this click records the expiry
            // (racing a sweep or another click, one conditional write wins) and is refused.
            if let Some(ttl) = self.config.request_ttl
                && now.secs() - request.created_at.secs() >= ttl
            {
                let edit = request.posted.is_some() && self.channel().edits();
                if self.store.expire(&request.id, identity, now, edit).await? {
                    tracing::info!(request_id = %request.id, "a click found the question overdue; expired");
                    return Ok(Some((request, Verdict::Expired { at: now })));
                }
                continue; // decided or expired meanwhile: read again
            }
            let decision = Decision {
                request_id: request.id.clone(),
                choice: click.choice,
                by: click.by.clone(),
                at: now,
            };
            // Approved is not trained: with Kubeflow Pipelines, the baseline moves once the run
            // has started (the launch job records it); without, a person starts the run and the
            // click is the baseline.
            let names: Vec<String> = request.snapshot.iter().map(|c| c.name.clone()).collect();
            let baseline = match (click.choice, &self.launches) {
                (Choice::Train, None) => Some(self.store.datasets(&names).await?),
                _ => None,
            };
            if self
                .store
                .decide(&request, &decision, baseline.as_ref(), identity)
                .await?
            {
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

    /// A click by someone not in `APPROVERS`: nothing changes; only they are told, and the
    /// refusal is logged with their user id.
    async fn refuse_person(&self, by: &Person, request_id: &str, response_url: Option<&str>) {
        tracing::warn!(
            user_id = %by.id,
            request_id,
            reason = "not_approver",
            "refused a click"
        );
        let text = format!(
            "Only {} can approve training.",
            self.config.approvers.mentions()
        );
        if let Some(url) = response_url
            && let Err(e) = self
                .slack
                .post(url, &messages::ephemeral(&text), RetryPolicy::INTERACTIVE)
                .await
        {
            tracing::warn!(error = %e, "could not tell the clicker");
        }
    }
}

impl<S, P: SlackPoster, Q> Actions<S, P, Q> {
    /// The channel: the Web API with a bot token, or the incoming webhook.
    pub fn channel(&self) -> ct_shared::slack::Channel<'_, P> {
        ct_shared::slack::Channel::new(&self.slack, &self.config.common.slack)
    }
}

/// `work` within `budget`, so a slow dependency cannot hold Slack's answer past its 3 s. The
/// error says why, for the log.
pub(crate) async fn within<T, E: std::fmt::Display>(
    budget: std::time::Duration,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(budget, work).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {budget:?}")),
    }
}

/// The Lambda entry point.
pub async fn handle<S: ActionsStore, P: SlackPoster, Q: AsyncInvoker>(
    app: &Actions<S, P, Q>,
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

/// Every event: a launch job (queued by actions itself), or a Function URL request, which
/// lambda_http's own adapter turns into a [`Request`] and the answer back into its JSON.
pub async fn dispatch<S, P, Q, K>(
    app: &Actions<S, P, Q>,
    launcher: Option<&launch::Launcher<S, K, P>>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error>
where
    S: ActionsStore,
    P: SlackPoster,
    Q: AsyncInvoker,
    K: ct_shared::kfp::Pipelines,
{
    use lambda_http::Service;
    let lambda_runtime::LambdaEvent { payload, context } = event;
    if let Some(job) = LaunchJob::from_event(&payload) {
        let job = job.map_err(|e| {
            tracing::error!(error = %e, "refused a launch job");
            e
        })?;
        let Some(launcher) = launcher else {
            tracing::warn!(request_id = %job.request_id, "a launch job arrived, but KFP_ENDPOINT is not set");
            return Ok(json!({"launch": "skipped", "why": "KFP_ENDPOINT is not set"}));
        };
        let deadline = context
            .deadline
            .checked_div(1000)
            .map_or_else(Timestamp::now, |s| Timestamp::from_secs(s as i64));
        let outcome = launcher.run(&job, &context.request_id, Timestamp::now(), deadline).await.map_err(|e| {
            tracing::error!(request_id = %job.request_id, error = %e, "launch job failed; Lambda will retry it");
            e
        })?;
        return Ok(serde_json::to_value(outcome)?);
    }
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(payload)?;
    let mut adapter =
        lambda_http::Adapter::from(lambda_http::service_fn(|req: Request| handle(app, req)));
    let response = adapter
        .call(lambda_runtime::LambdaEvent::new(request, context))
        .await?;
    Ok(serde_json::to_value(response)?)
}
