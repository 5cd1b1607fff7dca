//! The heartbeat: every few hours, how long ago seek last succeeded (`LastSeekAge`), for the
//! heartbeat alarm. It counts nothing and posts nothing.

use crate::{SeekError, Seeker};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::HeartbeatStore;
use ct_shared::metrics::{Line, Unit};
use serde::Serialize;

/// A heartbeat's reading: how long ago seek last succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Beat {
    /// When seek last succeeded, or (with no `window`) when the first heartbeat started the
    /// clock because none had yet.
    pub last_seek: String,
    pub window: Option<String>,
    pub age_seconds: i64,
}

/// The heartbeat: reads when seek last succeeded and emits its age as `LastSeekAge`.
pub async fn heartbeat<C, S: HeartbeatStore, P>(
    seeker: &Seeker<C, S, P>,
    now: Timestamp,
) -> Result<Beat, SeekError> {
    let last = seeker.store.last_seek(now).await?;
    let age = now.secs().saturating_sub(last.since.secs()).max(0);
    Line::new(&seeker.config.common.stack)
        .metric("LastSeekAge", Unit::Seconds, age as f64)
        .emit(now);
    tracing::info!(last_seek = %last.since, window = ?last.window, age_seconds = age, "heartbeat");
    Ok(Beat {
        last_seek: last.since.rfc3339(),
        window: last.window,
        age_seconds: age,
    })
}
