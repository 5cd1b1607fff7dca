//! The heartbeat: every hour, how long ago seek last succeeded (`LastSeekAge`), for the
//! heartbeat alarm, and the questions' sweep (expiry, the reminder, edits tried again). It
//! counts nothing.

use crate::lifecycle::Swept;
use crate::{SeekError, Seeker};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{HeartbeatStore, SeekStore};
use ct_shared::metrics::{Line, Unit};
use ct_shared::slack::SlackPoster;
use serde::Serialize;

/// A heartbeat's reading: how long ago seek last succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Beat {
    /// When seek last succeeded, or (with no `window`) when the first heartbeat started the
    /// clock because none had yet.
    pub last_seek: String,
    pub window: Option<String>,
    pub age_seconds: i64,
    pub swept: Swept,
}

/// The heartbeat: reads when seek last succeeded and emits its age as `LastSeekAge`, then
/// sweeps the questions (`Expired`, `Reminded`). The age is emitted first: a sweep that fails
/// (Slack down) fails the invocation, and Lambda's retry sweeps again, but the heartbeat
/// alarm keeps its data point.
pub async fn heartbeat<C, S: HeartbeatStore + SeekStore, P: SlackPoster>(
    seeker: &Seeker<C, S, P>,
    invocation_id: &str,
    now: Timestamp,
) -> Result<Beat, SeekError> {
    let last = seeker.store.last_seek(now).await?;
    let age = now.secs().saturating_sub(last.since.secs()).max(0);
    let stack = &seeker.config.common.stack;
    Line::new(stack)
        .metric("LastSeekAge", Unit::Seconds, age as f64)
        .emit(now);
    tracing::info!(last_seek = %last.since, window = ?last.window, age_seconds = age, "heartbeat");
    let swept = seeker.sweep(invocation_id, now).await?;
    swept.metrics(stack).emit(now);
    Ok(Beat {
        last_seek: last.since.rfc3339(),
        window: last.window,
        age_seconds: age,
        swept,
    })
}
