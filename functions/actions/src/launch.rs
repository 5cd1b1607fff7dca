//! Launch jobs: after Train! is durable, actions queues itself an asynchronous invocation naming
//! the request (Slack Bolt's pattern on Lambda). The job starts exactly one Kubeflow Pipelines run
//! for the approval and says so in Slack. Lambda retries a job that fails twice, then hands it to
//! the on-failure destination; a job retried after a crash continues where it stopped.
//!
//! Exactly one run per approval, though KFP has no idempotency key:
//! - one job at a time holds the launch (a lease on the request item, re-entrant for its own
//!   retries); a duplicate job finds it held, or done, and stops;
//! - every attempt first looks for a run named after the request, so a create whose answer was
//!   lost is found rather than repeated;
//! - the outcome is recorded by conditional write before Slack is told, and told once.

use ct_shared::Timestamp;
use ct_shared::aws::SdkConfig;
use ct_shared::aws::dynamo::{DynamoStore, Launch, LaunchState, LaunchStore, StoreError};
use ct_shared::config::ActionsConfig;
use ct_shared::domain::Choice;
use ct_shared::kfp::{
    KfpClient, KfpConfig, KfpError, LaunchContext, NewRun, PipelineRef, Pipelines, Run,
    display_name, run_link,
};
use ct_shared::slack::{
    Channel, RetryPolicy, Route, SlackClient, SlackError, SlackPoster, launch as msg,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The key that marks an event as a launch job rather than an HTTP request.
pub const JOB_KEY: &str = "ct_trigger_launch";
/// Attempts at starting the run within one job, when KFP is unavailable.
pub const ATTEMPTS: u32 = 3;
/// A job's lease lasts until its invocation's deadline plus this: past it, the job cannot be
/// running any more (Lambda stops it at the deadline), so another may take over safely.
pub const LEASE_MARGIN_SECS: i64 = 5;

/// Why a job was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    /// Train! on the approval message (whose `response_url` the job may use once).
    Approval,
    /// Retry after a failed launch, by this Slack user.
    Retry { by: String },
}

/// The job: small, and naming the request rather than carrying its snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchJob {
    pub request_id: String,
    /// Unique per queued job; Lambda's retries of one job keep it. The lease's owner.
    pub job_id: String,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

impl LaunchJob {
    pub fn new(request_id: &str, origin: Origin, response_url: Option<String>) -> Self {
        Self {
            request_id: request_id.to_owned(),
            job_id: ct_shared::domain::new_request_id(),
            origin,
            response_url,
        }
    }

    /// The event queued for it.
    pub fn to_event(&self) -> Value {
        serde_json::json!({ JOB_KEY: self })
    }

    /// `None`: not a launch job. `Some(Err)`: a launch job that cannot be read.
    pub fn from_event(event: &Value) -> Option<Result<Self, String>> {
        let job = event.get(JOB_KEY)?;
        Some(serde_json::from_value(job.clone()).map_err(|e| format!("malformed launch job: {e}")))
    }
}

/// What a job came to (its invocation's result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "launch")]
pub enum LaunchOutcome {
    Started {
        run_id: String,
        link: String,
    },
    Failed {
        reason: String,
    },
    /// Done by an earlier job: nothing to do.
    AlreadyStarted {
        run_id: String,
    },
    AlreadyFailed,
    /// Another job holds the launch.
    Busy,
    /// Nothing to launch (unknown, not approved, or declined).
    Skipped {
        why: String,
    },
}

/// Why a job failed: Lambda retries it.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("telling Slack about the launch: {0}")]
    Slack(#[from] SlackError),
    /// Another delivery of this same job holds the launch: Lambda retries this one later, by
    /// when the other has finished (or its lease has run out).
    #[error("another delivery of launch job {0} is running; retry later")]
    InProgress(String),
}

/// The launch's dependencies, built once at cold start (only when KFP is configured).
pub struct Launcher<S, K, P> {
    pub kfp_config: KfpConfig,
    pub kubeflow_url: String,
    /// The channel: the Web API with a bot token, or the incoming webhook.
    pub route: Route,
    pub store: S,
    pub kfp: K,
    pub slack: P,
    /// The first wait between attempts; it doubles.
    pub backoff: Duration,
}

pub type LiveLauncher = Launcher<DynamoStore, KfpClient, SlackClient>;

impl LiveLauncher {
    /// `None` without KFP settings.
    pub fn live(
        config: &ActionsConfig,
        sdk: &SdkConfig,
    ) -> Result<Option<Self>, ct_shared::slack::client::HttpError> {
        let Some(kfp_config) = config.kfp.clone() else {
            return Ok(None);
        };
        let kfp = KfpClient::new(
            &kfp_config.endpoint,
            kfp_config.namespace.clone(),
            kfp_config.experiment_id.clone(),
            kfp_config.token.clone(),
            kfp_config.timeout,
        )?;
        Ok(Some(Launcher {
            kfp_config,
            kubeflow_url: config.kubeflow_url.clone(),
            route: config.common.slack.clone(),
            store: DynamoStore::new(sdk, config.common.state_table.clone()),
            kfp,
            slack: SlackClient::new()?,
            backoff: Duration::from_millis(500),
        }))
    }
}

impl<S: LaunchStore, K: Pipelines, P: SlackPoster> Launcher<S, K, P> {
    /// Runs one job at time `now`, in the invocation `attempt` (its Lambda request id), which
    /// ends by `deadline`.
    pub async fn run(
        &self,
        job: &LaunchJob,
        attempt: &str,
        now: Timestamp,
        deadline: Timestamp,
    ) -> Result<LaunchOutcome, LaunchError> {
        let id = &job.request_id;
        let until = deadline.plus_secs(LEASE_MARGIN_SECS);
        let Some(launch) = self.store.launch(id).await? else {
            return Ok(skipped(id, "no such request"));
        };
        let approved = launch.approved
            && launch
                .request
                .decision
                .as_ref()
                .is_some_and(|d| d.choice == Choice::Train);
        if !approved {
            return Ok(skipped(id, "the request is not approved"));
        }
        // Already done: if this job did it but crashed before telling Slack, tell Slack now.
        let unannounced = |owner: &String| *owner == job.job_id && launch.announced.is_none();
        match &launch.state {
            Some(LaunchState::Started { owner, run_id, .. }) => {
                if unannounced(owner) && self.store.take_announcement(id, owner, now, until).await?
                {
                    return self.announce_started(job, &launch, run_id).await;
                }
                return Ok(LaunchOutcome::AlreadyStarted {
                    run_id: run_id.clone(),
                });
            }
            Some(LaunchState::Failed { owner, reason, .. }) => {
                if unannounced(owner) && self.store.take_announcement(id, owner, now, until).await?
                {
                    return self.announce_failed(job, &launch, reason).await;
                }
                return Ok(LaunchOutcome::AlreadyFailed);
            }
            Some(LaunchState::Launching { owner, .. }) if *owner == job.job_id => {
                // A second delivery of this job while the first still holds the launch (or
                // a crashed attempt whose lease has not run out): try again later.
                if !self
                    .store
                    .take_launch(id, &job.job_id, attempt, now, until)
                    .await?
                {
                    return Err(LaunchError::InProgress(job.job_id.clone()));
                }
            }
            _ => {
                if !self
                    .store
                    .take_launch(id, &job.job_id, attempt, now, until)
                    .await?
                {
                    tracing::info!(request_id = %id, job_id = %job.job_id, "another job holds the launch");
                    return Ok(LaunchOutcome::Busy);
                }
            }
        }
        let mut attempt = 0;
        let mut backoff = self.backoff;
        let run = loop {
            attempt += 1;
            match self.attempt(&launch).await {
                Ok(run) => break Ok(run),
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::warn!(request_id = %id, attempt, error = %e, "launch attempt failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(e) => break Err(e),
            }
        };
        match run {
            Ok(run) => {
                let version = run.pipeline_version_id.clone().unwrap_or_default();
                if !self
                    .store
                    .record_started(
                        &launch.request,
                        &job.job_id,
                        &run.run_id,
                        &version,
                        &run.state,
                        now,
                    )
                    .await?
                {
                    // Our lease was taken over (we ran past it): the other job reports.
                    tracing::warn!(request_id = %id, run_id = %run.run_id, "lost the launch lease before recording the run");
                    return Ok(LaunchOutcome::Busy);
                }
                tracing::info!(request_id = %id, run_id = %run.run_id, pipeline_version_id = %version, "training run started");
                self.announce_started(job, &launch, &run.run_id).await
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(request_id = %id, attempts = attempt, reason = %reason, "could not start the training run");
                if !self
                    .store
                    .record_failed(id, &job.job_id, &reason, attempt, now)
                    .await?
                {
                    return Ok(LaunchOutcome::Busy);
                }
                self.announce_failed(job, &launch, &reason).await
            }
        }
    }

    /// One try: find the request's run, or resolve the pipeline and create it.
    async fn attempt(&self, launch: &Launch) -> Result<Run, KfpError> {
        let request = &launch.request;
        let name = display_name(&request.id);
        if let Some(run) = self.kfp.find_run(&name).await? {
            tracing::info!(request_id = %request.id, run_id = %run.run_id, "found the run an earlier attempt started");
            return Ok(run);
        }
        let cfg = &self.kfp_config;
        let pipeline_id = match &cfg.pipeline {
            PipelineRef::Id(id) => id.clone(),
            PipelineRef::Name(n) => self.kfp.pipeline_id(n).await?,
        };
        let version = match &cfg.version_id {
            Some(v) => v.clone(),
            None => self.kfp.latest_version(&pipeline_id).await?,
        };
        let approved_by = request
            .decision
            .as_ref()
            .map(|d| d.by.name.as_str())
            .unwrap_or_default();
        let parameters = cfg
            .parameters
            .fill(&LaunchContext {
                request_id: &request.id,
                approved_by,
                snapshot: &request.snapshot,
            })
            .map_err(KfpError::Parameters)?;
        let mut run = self
            .kfp
            .create_run(&NewRun {
                display_name: name,
                pipeline_id,
                pipeline_version_id: version.clone(),
                experiment_id: cfg.experiment_id.clone(),
                parameters,
            })
            .await?;
        run.pipeline_version_id.get_or_insert(version);
        Ok(run)
    }

    fn channel(&self) -> Channel<'_, P> {
        Channel::new(&self.slack, &self.route)
    }

    /// Posts the outcome (in the question's thread, with a bot token) and notes it was told; if
    /// Slack fails, gives the lease back so Lambda's retry of this job can announce at once.
    async fn tell_channel(
        &self,
        job: &LaunchJob,
        launch: &Launch,
        message: &Value,
    ) -> Result<(), LaunchError> {
        if let Err(e) = self
            .channel()
            .reply(
                launch.request.posted.as_ref(),
                message,
                RetryPolicy::SCHEDULED,
            )
            .await
        {
            if let Err(release) = self
                .store
                .release_launch(&job.request_id, &job.job_id)
                .await
            {
                tracing::warn!(request_id = %job.request_id, error = %release, "could not release the launch");
            }
            return Err(e.into());
        }
        if let Err(e) = self
            .store
            .mark_announced(&job.request_id, &job.job_id)
            .await
        {
            tracing::warn!(request_id = %job.request_id, error = %e, "could not note the announcement");
        }
        Ok(())
    }

    async fn announce_started(
        &self,
        job: &LaunchJob,
        launch: &Launch,
        run_id: &str,
    ) -> Result<LaunchOutcome, LaunchError> {
        let link = run_link(&self.kubeflow_url, run_id);
        self.tell_channel(
            job,
            launch,
            &msg::training_started(&link, run_id, &launch.request),
        )
        .await?;
        let Some(decision) = &launch.request.decision else {
            return Ok(LaunchOutcome::Started {
                run_id: run_id.to_owned(),
                link,
            });
        };
        let replaced = msg::approved_with_run(&launch.request, decision, run_id);
        // The question names its run, edited through the Web API when it posted it.
        let channel = self.channel();
        if let Some(at) = launch.request.posted.as_ref().filter(|_| channel.edits())
            && let Err(e) = channel.edit(at, &replaced, RetryPolicy::SCHEDULED).await
        {
            tracing::warn!(request_id = %job.request_id, error = %e, "could not add the run to the question");
        }
        // The message pressed (the approval, or the failure whose Retry this is) ends as a
        // first try's would: "Approved by @ann … · run <id>". Best effort: a response_url lasts
        // 30 minutes.
        if let Some(url) = &job.response_url
            && (job.origin != Origin::Approval
                || !channel.edits()
                || launch.request.posted.is_none())
            && let Err(e) = self
                .slack
                .post(url, &replaced, RetryPolicy::INTERACTIVE)
                .await
        {
            tracing::warn!(request_id = %job.request_id, error = %e, "could not add the run to the approval message");
        }
        Ok(LaunchOutcome::Started {
            run_id: run_id.to_owned(),
            link,
        })
    }

    async fn announce_failed(
        &self,
        job: &LaunchJob,
        launch: &Launch,
        reason: &str,
    ) -> Result<LaunchOutcome, LaunchError> {
        self.tell_channel(job, launch, &msg::launch_failed(&job.request_id, reason))
            .await?;
        // A Retry's "Starting the training run again…" does not stay: it says it failed too.
        if let (Origin::Retry { by }, Some(url)) = (&job.origin, &job.response_url) {
            let replaced = msg::retry_failed(by, reason);
            if let Err(e) = self
                .slack
                .post(url, &replaced, RetryPolicy::INTERACTIVE)
                .await
            {
                tracing::warn!(request_id = %job.request_id, error = %e, "could not update the Retry message");
            }
        }
        Ok(LaunchOutcome::Failed {
            reason: reason.to_owned(),
        })
    }
}

fn skipped(request_id: &str, why: &str) -> LaunchOutcome {
    tracing::warn!(request_id, why, "launch job skipped");
    LaunchOutcome::Skipped {
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_its_event_and_other_events_are_not_jobs() {
        let job = LaunchJob::new("r1", Origin::Retry { by: "U1".into() }, None);
        let back = LaunchJob::from_event(&job.to_event()).unwrap().unwrap();
        assert_eq!(back, job);
        assert!(LaunchJob::from_event(&serde_json::json!({"version": "2.0"})).is_none());
        assert!(
            LaunchJob::from_event(&serde_json::json!({JOB_KEY: {"request_id": 5}}))
                .unwrap()
                .is_err()
        );
    }
}
