//! The Retry button on a launch that could not start, and a press that finds an approval whose
//! launch was never queued: each queues one launch job (jobs are idempotent: one run).

use crate::launch::{LaunchJob, Origin};
use crate::{Actions, ActionsStore, READ_BACK_BUDGET, RESUME_AFTER_SECS, ok, refuse, within};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{Launch, LaunchState, StoreError};
use ct_shared::aws::invoke::AsyncInvoker;
use ct_shared::domain::{Choice, Decision};
use ct_shared::slack::interaction::{Click, RetryClick};
use ct_shared::slack::{RetryPolicy, SlackPoster, launch as launch_msg, messages};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

impl<S: ActionsStore, P: SlackPoster, Q: AsyncInvoker> Actions<S, P, Q> {
    /// A press on an approval whose launch was never queued: the click that decided it lost
    /// its answers past the read-back, or actions stopped between recording the decision and
    /// queueing the job. Queues the job now and says so (`true`). Launch jobs are idempotent
    /// (one run per approval), so a job queued twice still starts one run. A launch that
    /// failed is left to its Retry button.
    pub(crate) async fn resume_launch(
        &self,
        click: &Click,
        request_id: &str,
        decision: &Decision,
        now: Timestamp,
    ) -> bool {
        let Some(queue) = &self.launches else {
            return false;
        };
        // The deciding handling queues its job within a second of the decision: give it that.
        if decision.choice != Choice::Train || decision.at.plus_secs(RESUME_AFTER_SECS) > now {
            return false;
        }
        let Ok(Some(launch)) = within(READ_BACK_BUDGET, self.store.launch(request_id)).await else {
            return false;
        };
        if !launch.approved || launch.state.is_some() {
            return false;
        }
        let job = LaunchJob::new(request_id, Origin::Approval, click.response_url.clone());
        match within(READ_BACK_BUDGET, queue.invoke_async(&job.to_event())).await {
            Ok(()) => {
                tracing::warn!(request_id, job_id = %job.job_id, "queued the launch of an approval that had none");
                true
            }
            Err(e) => {
                tracing::error!(request_id, error = %e, "could not queue the missing launch");
                false
            }
        }
    }

    /// Retry on a launch that could not start: queue a new job, if the launch is waiting for one.
    pub(crate) async fn retry(&self, retry: &RetryClick, now: Timestamp) -> Response<Body> {
        let Some(queue) = &self.launches else {
            return refuse(StatusCode::CONFLICT, "launching runs is not configured");
        };
        let id = &retry.request_id;
        let unavailable = |e: StoreError, what: &str| {
            tracing::error!(error = %e, request_id = %id, "{what}");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "state store unavailable; try again",
            )
        };
        // Read first, as a decision does: a launch that started or is under way needs no job,
        // and the conditional write below then only ever races a concurrent press.
        let launch = match self.store.launch(id).await {
            Ok(Some(l)) => l,
            Ok(None) => return refuse(StatusCode::NOT_FOUND, "unknown approval request"),
            Err(e) => return unavailable(e, "could not read the launch"),
        };
        // Overtaken: a newer approval exists (whatever became of its run). Retrying this one would
        // start a second run, for data the newer approval already covers.
        let latest = match within(READ_BACK_BUDGET, self.store.latest_approval()).await {
            Ok(latest) => latest,
            Err(e) => {
                tracing::error!(error = %e, request_id = %id, "could not read the latest approval");
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "state store unavailable; try again",
                );
            }
        };
        let mut why = match latest {
            Some(a) if a.request_id != *id => {
                tracing::info!(request_id = %id, newer = %a.request_id, "refused a stale Retry");
                Some(format!(
                    "This Retry is for {}, which a newer approval overtook: {} Nothing was started.",
                    launch_msg::request_phrase(&launch.request),
                    messages::approval_line(&a)
                ))
            }
            _ => self.retry_not_needed(&launch, now),
        };
        if why.is_none() {
            match self.store.request_retry(id, &retry.by.id, now).await {
                Ok(true) => {}
                Ok(false) => {
                    why = Some(match self.store.launch(id).await {
                        Ok(Some(l)) => self
                            .retry_not_needed(&l, now)
                            .unwrap_or_else(|| "The training run is being started already.".into()),
                        Ok(None) => {
                            return refuse(StatusCode::NOT_FOUND, "unknown approval request");
                        }
                        Err(e) => return unavailable(e, "could not read the launch"),
                    })
                }
                Err(e) => return unavailable(e, "could not record the retry"),
            }
        }
        let answer = match why {
            Some(why) => launch_msg::retry_not_needed(&why),
            None => {
                // The job ends the Retry message as a first try's ends the approval's.
                let job = LaunchJob::new(
                    id,
                    Origin::Retry {
                        by: retry.by.id.clone(),
                    },
                    retry.response_url.clone(),
                );
                if let Err(e) = queue.invoke_async(&job.to_event()).await {
                    tracing::error!(request_id = %id, error = %e, "could not queue the retried launch");
                    return refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "could not queue the launch; try again",
                    );
                }
                tracing::info!(request_id = %id, user_id = %retry.by.id, job_id = %job.job_id, "launch retried");
                launch_msg::retrying(&retry.by.id)
            }
        };
        if let Some(url) = &retry.response_url
            && let Err(e) = self
                .slack
                .post(url, &answer, RetryPolicy::INTERACTIVE)
                .await
        {
            tracing::warn!(request_id = %id, error = %e, "could not answer the retry");
        }
        ok()
    }

    /// Why a Retry press needs no new launch job, if it does not.
    fn retry_not_needed(&self, launch: &Launch, now: Timestamp) -> Option<String> {
        match &launch.state {
            _ if !launch.approved => Some("This request is not approved.".into()),
            Some(LaunchState::Started { run_id, .. }) => Some(format!(
                "Training already started: <{}|run {run_id}>",
                ct_shared::kfp::run_link(&self.config.kubeflow_url, run_id)
            )),
            Some(LaunchState::Launching { until, .. }) if *until >= now => {
                Some("The training run is being started already.".into())
            }
            // Failed, never queued, a job that vanished, or a retry whose job may not have been
            // queued: one more job is harmless (one job at a time holds the launch).
            _ => None,
        }
    }
}
