//! What Slack hears after a decision is durable: the clicker's answer (the message replaced, or
//! why nothing changed) and, on Train!, the channel's notice or the queued launch.
//!
//! Without Kubeflow Pipelines, Train!'s outcome is the channel's notice. The deciding click owes
//! it (the decision records that, see `NOTICE_DUTY_SECS`) and marks it posted. If it never
//! was (every answer to the click was lost, or Slack failed the post), a later press on the
//! approved request takes the duty over, once, and posts it.

use crate::launch::{LaunchJob, Origin};
use crate::{Actions, ActionsStore, Verdict, within};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{Edit, NOTICE_DUTY_SECS};
use ct_shared::aws::invoke::AsyncInvoker;
use ct_shared::domain::{ApprovalRequest, Choice, Decision};
use ct_shared::slack::client::SlackError;
use ct_shared::slack::interaction::Click;
use ct_shared::slack::{RetryPolicy, SlackPoster, launch as launch_msg, messages};
use std::time::Duration;
use tokio::time::Instant;

/// The most noting a posted notice may take: it runs after the post, within the click's 3 s.
const MARK_BUDGET: Duration = Duration::from_millis(500);
/// The most taking over a notice may take, before the posts' 1 s.
const CLAIM_BUDGET: Duration = Duration::from_millis(500);

/// One click's handling, as the notifications need it: the click, who is handling it (see
/// `Click::identity`), and when its answer to Slack is due.
pub(crate) struct Handling<'a> {
    pub click: &'a Click,
    pub identity: &'a str,
    pub now: Timestamp,
    pub answer_by: Instant,
}

impl<S: ActionsStore, P: SlackPoster, Q: AsyncInvoker> Actions<S, P, Q> {
    /// Tells Slack, after the decision is durable. Each post has a short budget, the two run
    /// together, and a failure is logged: it neither undoes nor repeats the decision. Returns
    /// how many failed.
    pub(crate) async fn notify(
        &self,
        handling: &Handling<'_>,
        request: &ApprovalRequest,
        verdict: &Verdict,
    ) -> u64 {
        let Handling { click, now, .. } = *handling;
        let policy = RetryPolicy::INTERACTIVE;
        let mut owes_notice = false;
        let to_clicker = match verdict {
            Verdict::Recorded(d) => messages::decided_request(request, d),
            Verdict::AlreadyDecided(d) => {
                let mut told = messages::already_decided(d);
                let more = if self.resume_launch(click, &request.id, d, now).await {
                    Some("No training run had started for it, so one is being started now.")
                } else if self.take_over_notice(handling, &request.id, d).await {
                    owes_notice = true;
                    Some("Its Kubeflow notice had not been posted, so it is being posted now.")
                } else {
                    None
                };
                if let Some(more) = more {
                    told["text"] =
                        format!("{} {more}", told["text"].as_str().unwrap_or_default()).into();
                }
                told
            }
            Verdict::Expired { at } => messages::expired_click(*at),
            // Edited to say so, with no buttons left; told alone if the newer one is unreadable.
            Verdict::Superseded { newest } => {
                match within(CLAIM_BUDGET, self.store.request(newest)).await {
                    Ok(Some(n)) => messages::superseded_by(request, n.created_at),
                    _ => messages::superseded(),
                }
            }
        };
        let channel = self.channel();
        // The question itself shows its outcome: edited through the Web API when it posted it
        // (the decision noted the edit as due; a sweep makes it if this one fails), else
        // replaced through the click's response_url.
        let api_edit = match (verdict, &request.posted) {
            (Verdict::Recorded(_), Some(at)) if channel.edits() => Some(at),
            _ => None,
        };
        let response = async {
            if let Some(at) = api_edit {
                channel
                    .edit(at, &to_clicker, policy)
                    .await
                    .map_err(|e| ("chat.update", e))?;
                if let Err(e) = within(
                    MARK_BUDGET,
                    self.store.edit_done(&request.id, Edit::Decided),
                )
                .await
                {
                    tracing::warn!(request_id = %request.id, error = %e, "the question was edited but not noted; a sweep may edit it again");
                }
                return Ok(());
            }
            match &click.response_url {
                Some(url) => self
                    .slack
                    .post(url, &to_clicker, policy)
                    .await
                    .map_err(|e| ("response_url", e)),
                None => Ok(()),
            }
        };
        let notices = async {
            match verdict {
                Verdict::Recorded(d) if d.choice == Choice::Train => match &self.launches {
                    // The run is started by a launch job; if it cannot even be queued, say so
                    // at once, with Retry.
                    Some(queue) => {
                        let job = LaunchJob::new(
                            &request.id,
                            Origin::Approval,
                            click.response_url.clone(),
                        );
                        match queue.invoke_async(&job.to_event()).await {
                            Ok(()) => {
                                tracing::info!(request_id = %request.id, job_id = %job.job_id, "launch queued");
                                Ok(())
                            }
                            Err(e) => {
                                tracing::error!(request_id = %request.id, error = %e, "could not queue the launch");
                                let failed = launch_msg::launch_failed(
                                    &request.id,
                                    "the launch could not be queued; press Retry",
                                );
                                channel
                                    .reply(request.posted.as_ref(), &failed, policy)
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| ("channel", e))
                            }
                        }
                    }
                    None => self.post_notice(handling, request).await,
                },
                Verdict::AlreadyDecided(_) if owes_notice => {
                    self.post_notice(handling, request).await
                }
                _ => Ok(()),
            }
        };
        let (a, b) = tokio::join!(response, notices);
        let mut failures = 0;
        for (target, e) in [a.err(), b.err()].into_iter().flatten() {
            failures += 1;
            tracing::warn!(target, error = %e, request_id = %request.id, "notification failed; the decision stands");
        }
        failures
    }

    /// Posts Train!'s notice to the channel, then notes it posted, in the time left before the
    /// click's answer is due. A notice not noted (that note failed, or no time was left) may be
    /// posted again by a later press; one not posted will be.
    async fn post_notice(
        &self,
        handling: &Handling<'_>,
        request: &ApprovalRequest,
    ) -> Result<(), (&'static str, SlackError)> {
        let request_id = request.id.as_str();
        self.channel()
            .reply(
                request.posted.as_ref(),
                &messages::kubeflow(&self.config.kubeflow_url),
                RetryPolicy::INTERACTIVE,
            )
            .await
            .map_err(|e| ("channel", e))?;
        let budget = handling
            .answer_by
            .saturating_duration_since(Instant::now())
            .min(MARK_BUDGET);
        let marked = within(
            budget,
            self.store.mark_notice_posted(request_id, handling.now),
        )
        .await;
        if let Err(e) = marked {
            tracing::warn!(request_id, error = %e, "the notice was posted but could not be noted; a later press may post it again");
        }
        Ok(())
    }

    /// A press on an approval (without Kubeflow Pipelines) whose notice was never posted: takes
    /// the duty over from the deciding click, whose time has run out. `true`: this press now
    /// owes the notice.
    async fn take_over_notice(
        &self,
        handling: &Handling<'_>,
        request_id: &str,
        decision: &Decision,
    ) -> bool {
        if self.launches.is_some() || decision.choice != Choice::Train {
            return false;
        }
        let now = handling.now;
        let claim = self.store.claim_notice(
            request_id,
            handling.identity,
            now,
            now.plus_secs(NOTICE_DUTY_SECS),
        );
        match within(CLAIM_BUDGET, claim).await {
            Ok(true) => {
                tracing::warn!(
                    request_id,
                    "the approval's notice was never posted; posting it now"
                );
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(request_id, error = %e, "could not tell whether the notice was posted");
                false
            }
        }
    }
}
