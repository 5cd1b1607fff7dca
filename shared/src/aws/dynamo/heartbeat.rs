//! The seek heartbeat: one item (`heartbeat`) holding when seek last succeeded. The scheduled
//! heartbeat reads it and reports its age as a metric; the alarm fires when it grows too old.
//!
//! Before any seek has succeeded, the first heartbeat starts the clock (`since` without a
//! `window`), so a stack whose first seek never succeeds still alarms.

use super::{DynamoStore, Reader, StoreError, n, s};
use crate::Timestamp;
use std::future::Future;

const HEARTBEAT: &str = "heartbeat";

/// What the age of the last successful seek is measured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSeek {
    pub since: Timestamp,
    /// The window that succeeded; `None` when no seek has succeeded yet and `since` is when
    /// the first heartbeat started the clock.
    pub window: Option<String>,
}

pub trait HeartbeatStore: Send + Sync {
    /// The last successful seek; when there is none yet, starts the clock at `now`.
    fn last_seek(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<LastSeek, StoreError>> + Send;
    /// Records that `window` succeeded at `at`. Never moves the time backwards, so a late
    /// retry of an older window changes nothing; repeating it is harmless.
    fn seek_succeeded(
        &self,
        window: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl HeartbeatStore for DynamoStore {
    async fn last_seek(&self, now: Timestamp) -> Result<LastSeek, StoreError> {
        for _ in 0..2 {
            if let Some(item) = self.get(HEARTBEAT.to_owned()).await? {
                let r = Reader { item: &item };
                return Ok(LastSeek {
                    since: Timestamp::from_secs(r.num("since")?),
                    window: r.opt_s("window").map(str::to_owned),
                });
            }
            let started = self
                .update_if(
                    HEARTBEAT.to_owned(),
                    "SET #since = :now",
                    "attribute_not_exists(#since)",
                    vec![(":now", n(now.secs()))],
                    vec![("#since", "since")],
                )
                .await?;
            if started {
                tracing::info!("no successful seek recorded yet; the heartbeat starts the clock");
                return Ok(LastSeek {
                    since: now,
                    window: None,
                });
            }
        }
        Err(StoreError::Corrupt {
            key: HEARTBEAT.to_owned(),
            what: "neither readable nor writable".into(),
        })
    }

    async fn seek_succeeded(&self, window: &str, at: Timestamp) -> Result<(), StoreError> {
        let moved = self
            .update_if(
                HEARTBEAT.to_owned(),
                "SET #since = :at, #window = :window",
                "attribute_not_exists(#since) OR attribute_not_exists(#window) OR #since <= :at",
                vec![(":at", n(at.secs())), (":window", s(window))],
                vec![("#since", "since"), ("#window", "window")],
            )
            .await?;
        if !moved {
            tracing::info!(window, "a later success is recorded already");
        }
        Ok(())
    }
}
