//! What Slack hears after a decision is durable: the clicker's answer (the message replaced, or
//! why nothing changed) and, on Train!, the channel's notice or the queued launch.

use crate::launch::{LaunchJob, Origin};
use crate::{Actions, Verdict};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DecisionStore, LaunchStore};
use ct_shared::aws::invoke::AsyncInvoker;
use ct_shared::domain::{ApprovalRequest, Choice};
use ct_shared::slack::interaction::Click;
use ct_shared::slack::{RetryPolicy, SlackPoster, launch as launch_msg, messages};

impl<S: DecisionStore + LaunchStore, P: SlackPoster, Q: AsyncInvoker> Actions<S, P, Q> {
    /// Tells Slack, after the decision is durable. Each post has a short budget, the two run
    /// together, and a failure is logged: it neither undoes nor repeats the decision. Returns
    /// how many failed.
    pub(crate) async fn notify(
        &self,
        click: &Click,
        request: &ApprovalRequest,
        verdict: &Verdict,
        now: Timestamp,
    ) -> u64 {
        let policy = RetryPolicy::INTERACTIVE;
        let to_clicker = match verdict {
            Verdict::Recorded(d) => messages::decided_request(request, d),
            Verdict::AlreadyDecided(d) => {
                let mut told = messages::already_decided(d);
                if self.resume_launch(click, &request.id, d, now).await {
                    told["text"] = format!(
                        "{} No training run had started for it, so one is being started now.",
                        told["text"].as_str().unwrap_or_default()
                    )
                    .into();
                }
                told
            }
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
                Verdict::Recorded(d) if d.choice == Choice::Train => {
                    let notice = match &self.launches {
                        // The run is started by a launch job; if it cannot even be queued, say
                        // so at once, with Retry.
                        Some(queue) => {
                            let job = LaunchJob::new(
                                &request.id,
                                Origin::Approval,
                                click.response_url.clone(),
                            );
                            match queue.invoke_async(&job.to_event()).await {
                                Ok(()) => {
                                    tracing::info!(request_id = %request.id, job_id = %job.job_id, "launch queued");
                                    return Ok(());
                                }
                                Err(e) => {
                                    tracing::error!(request_id = %request.id, error = %e, "could not queue the launch");
                                    launch_msg::launch_failed(
                                        &request.id,
                                        "the launch could not be queued; press Retry",
                                    )
                                }
                            }
                        }
                        None => messages::kubeflow(&self.config.kubeflow_url),
                    };
                    self.slack
                        .post(self.config.common.slack_webhook.expose(), &notice, policy)
                        .await
                        .map_err(|e| ("channel webhook", e))
                }
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
