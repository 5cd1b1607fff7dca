//! `/ct-trigger seek`'s cooldown: one item (`manual_seek`) holding who last started a count
//! from Slack, when, and until when no other may start. A count of 100 million objects costs
//! about half a dollar in LIST requests, and two counts at once would post two questions, the
//! second superseding the first; so a count started from Slack holds the next one off.

use super::{DynamoStore, Mine, Reader, StoreError, Update, n, s};
use crate::Timestamp;
use std::future::Future;

const MANUAL_SEEK: &str = "manual_seek";
/// The attribute naming the handling that started the count (see [`Mine`]).
const STARTED_BY: &str = "started_by";

/// A count started from Slack that holds the next one off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualSeek {
    /// The Slack user who started it.
    pub user: String,
    pub at: Timestamp,
    /// When the next count may start.
    pub until: Timestamp,
}

pub trait ManualSeekStore: Send + Sync {
    /// Starts a count for `user` (this handling: `handling`) unless one started since
    /// `until` of the last: `Ok(None)` when taken, `Ok(Some(that one))` when it holds this off.
    fn start_manual_seek(
        &self,
        user: &str,
        handling: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<Option<ManualSeek>, StoreError>> + Send;
    /// Gives back a start whose count could not be queued, so the next try need not wait.
    fn cancel_manual_seek(
        &self,
        handling: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl ManualSeekStore for DynamoStore {
    async fn start_manual_seek(
        &self,
        user: &str,
        handling: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<ManualSeek>, StoreError> {
        let update = Update {
            pk: MANUAL_SEEK.to_owned(),
            expression: "SET #user = :user, #at = :now, #until = :until, #by = :by",
            condition: "attribute_not_exists(#until) OR #until <= :now",
            values: vec![
                (":user", s(user)),
                (":now", n(now.secs())),
                (":until", n(until.secs())),
                (":by", s(handling)),
            ],
            names: vec![
                ("#user", "user"),
                ("#at", "at"),
                ("#until", "until"),
                ("#by", STARTED_BY),
            ],
        };
        let mine = Mine {
            pk: MANUAL_SEEK.to_owned(),
            attr: STARTED_BY,
            writer: handling,
        };
        if self
            .update_as("start manual seek (UpdateItem)", update, Some(mine))
            .await?
        {
            return Ok(None);
        }
        let item = self.get(MANUAL_SEEK.to_owned()).await?;
        let Some(item) = item else {
            return Err(StoreError::Corrupt {
                key: MANUAL_SEEK.to_owned(),
                what: "a start was refused, yet there is no item".into(),
            });
        };
        let r = Reader { item: &item };
        Ok(Some(ManualSeek {
            user: r.str("user")?.to_owned(),
            at: Timestamp::from_secs(r.num("at")?),
            until: Timestamp::from_secs(r.num("until")?),
        }))
    }

    async fn cancel_manual_seek(&self, handling: &str) -> Result<(), StoreError> {
        self.update_if(
            MANUAL_SEEK.to_owned(),
            "REMOVE #until",
            "#by = :by",
            vec![(":by", s(handling))],
            vec![("#until", "until"), ("#by", STARTED_BY)],
        )
        .await
        .map(|_| ())
    }
}
