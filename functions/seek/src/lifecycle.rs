//! The sweep, run by every heartbeat: a pending question older than `REQUEST_TTL` expires (its
//! message says so, its buttons go); one older than `REMIND_AFTER` gets its one reminder, in its
//! thread, naming the approvers; and edits that failed before (Slack down, rate-limited) are
//! tried again, a page of the table at a time. Idempotent: every step is a conditional write,
//! so a retried heartbeat repeats nothing.

use crate::{SeekError, Seeker};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{Edit, SeekStore};
use ct_shared::metrics::Line;
use ct_shared::slack::{RetryPolicy, SlackError, SlackPoster, messages};
use serde::Serialize;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub expired: u64,
    pub reminded: u64,
    /// Question messages edited to their state (expired now, or an earlier edit that failed).
    pub edited: u64,
}

impl Swept {
    /// `Expired` and `Reminded`.
    pub fn metrics(&self, stack: &str) -> Line {
        Line::new(stack)
            .count("Expired", self.expired)
            .count("Reminded", self.reminded)
    }
}

impl<C, S: SeekStore, P: SlackPoster> Seeker<C, S, P> {
    /// One sweep at `now`, by the heartbeat `writer` (its invocation: Lambda's retries of it
    /// keep it, so a retry after a lost answer finishes what it took).
    pub async fn sweep(&self, writer: &str, now: Timestamp) -> Result<Swept, SeekError> {
        let mut swept = Swept::default();
        self.sweep_newest(writer, now, &mut swept).await?;
        self.retry_edits(&mut swept).await?;
        Ok(swept)
    }

    /// Only the newest request can still be decided (a newer one supersedes the others).
    async fn sweep_newest(
        &self,
        writer: &str,
        now: Timestamp,
        swept: &mut Swept,
    ) -> Result<(), SeekError> {
        let Some(id) = self.store.latest_request_id().await? else {
            return Ok(());
        };
        let Some(request) = self.store.question(&id).await? else {
            return Ok(());
        };
        if request.decision.is_some() || request.expired_at.is_some() {
            return Ok(());
        }
        let age = now.secs() - request.created_at.secs();
        let channel = self.channel();
        if let Some(ttl) = self.config.request_ttl
            && age >= ttl
        {
            let edit = request.posted.is_some() && channel.edits();
            if self.store.expire(&id, writer, now, edit).await? {
                swept.expired += 1;
                tracing::info!(request_id = %id, age_seconds = age, "question expired: nobody decided it");
                if let Some(at) = &request.posted
                    && edit
                {
                    match channel
                        .edit(
                            at,
                            &messages::expired(&request, now),
                            RetryPolicy::SCHEDULED,
                        )
                        .await
                    {
                        Ok(_) => {
                            swept.edited += 1;
                            self.store.edit_done(&id, Edit::Expired).await?;
                        }
                        Err(e) => {
                            tracing::warn!(request_id = %id, error = %e, "could not edit the expired question; the next sweep tries again")
                        }
                    }
                }
            }
            return Ok(());
        }
        let Some(remind) = self.config.remind_after else {
            return Ok(());
        };
        if age < remind || !self.store.claim_reminder(&id, writer, now).await? {
            return Ok(());
        }
        let expires = self
            .config
            .request_ttl
            .map(|ttl| request.created_at.plus_secs(ttl));
        let message = messages::reminder(&request, &self.config.approvers.mentions(), expires);
        match channel
            .reply(request.posted.as_ref(), &message, RetryPolicy::SCHEDULED)
            .await
        {
            Ok(_) => {
                swept.reminded += 1;
                self.store.mark_reminded(&id, now).await?;
                tracing::info!(request_id = %id, "reminded");
            }
            // Slack may have posted it: never again.
            Err(e @ SlackError::Timeout { .. }) => {
                self.store.mark_reminded(&id, now).await?;
                tracing::warn!(request_id = %id, error = %e, "the reminder may or may not have been posted; it is not sent again");
            }
            Err(e) => {
                self.store.release_reminder(&id, writer).await?;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Edits the questions whose messages still show an old state.
    async fn retry_edits(&self, swept: &mut Swept) -> Result<(), SeekError> {
        let channel = self.channel();
        if !channel.edits() {
            return Ok(());
        }
        for due in self.store.edits_due().await? {
            let id = due.launch.request.id.clone();
            let (Some(at), Some(message)) =
                (&due.launch.request.posted, ct_shared::asking::edited(&due))
            else {
                self.store.edit_done(&id, due.edit).await?;
                continue;
            };
            match channel.edit(at, &message, RetryPolicy::SCHEDULED).await {
                Ok(_) => {
                    swept.edited += 1;
                    self.store.edit_done(&id, due.edit).await?;
                    tracing::info!(request_id = %id, edit = due.edit.as_str(), "edited a question that an earlier edit missed");
                }
                Err(e) => {
                    tracing::warn!(request_id = %id, error = %e, "could not edit the question; the next sweep tries again")
                }
            }
        }
        Ok(())
    }
}
