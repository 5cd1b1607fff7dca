//! The status history: one item per dataset and window (`history#<dataset>#<window>`), written
//! in seek's prepare transaction (so once per window), kept with a TTL. The status scan reads
//! them and keeps the newest [`HISTORY_KEEP`] per dataset (TTL deletion is lazy).

use super::{Item, Reader, StoreError, TTL_ATTRIBUTE, key, n, s};
use crate::Timestamp;
use crate::domain::Count;

/// Windows shown per dataset.
pub const HISTORY_KEEP: usize = 12;
/// How long a history entry is kept: 12 weekly windows and a margin.
pub const HISTORY_TTL_SECS: i64 = 120 * 24 * 3600;

/// One dataset in one window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub seeked: u64,
    pub trained: u64,
    pub asked: bool,
}

/// `at` is the window's time (what the history shows and orders by); `now` starts the TTL.
pub(super) fn history_item(
    window: &str,
    at: Timestamp,
    now: Timestamp,
    c: &Count,
    asked: bool,
) -> Item {
    let mut item = key(format!("history#{}#{window}", c.name));
    item.insert("kind".into(), s("history"));
    item.insert("name".into(), s(c.name.clone()));
    item.insert("at".into(), n(at.secs()));
    item.insert("seeked".into(), n(c.seeked));
    item.insert("trained".into(), n(c.trained));
    item.insert(
        "asked".into(),
        aws_sdk_dynamodb::types::AttributeValue::Bool(asked),
    );
    item.insert(TTL_ATTRIBUTE.into(), n(now.secs() + HISTORY_TTL_SECS));
    item
}

pub(super) fn history_from(item: &Item) -> Result<(String, HistoryEntry), StoreError> {
    let r = Reader { item };
    let asked = item
        .get("asked")
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false);
    Ok((
        r.str("name")?.to_owned(),
        HistoryEntry {
            at: Timestamp::from_secs(r.num("at")?),
            seeked: r.num("seeked")?,
            trained: r.num("trained")?,
            asked,
        },
    ))
}
