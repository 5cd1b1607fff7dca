//! A dataset's item (`dataset#<name>`): its latest count and its trained baseline.
//!
//! | attribute             | meaning                                                         |
//! |-----------------------|-----------------------------------------------------------------|
//! | `seeked`, `seeked_at` | objects in the latest count, and when it was stored             |
//! | `count`               | the latest count in full (JSON: bytes, new, removed, fingerprint, when it began) |
//! | `threshold`           | the latest count's threshold, when it is in objects              |
//! | `trained`, `trained_at` | the baseline's objects, and when it became the baseline       |
//! | `trained_bytes`, `trained_fingerprint`, `trained_snapshot_at` | the baseline's bytes and fingerprint, and when its count began |
//!
//! Items written before change detection have no `count` and no baseline beyond `trained`:
//! their next count is compared by count ([`Baseline::by_count`]).
//!
//! The baseline moves in one place, [`baseline_update`]: never backwards (by the snapshot's
//! time), and only if it is still what was read.

use super::{Item, KEY, Reader, StoreError, build, dataset_key, key, n, s};
use crate::Timestamp;
use crate::domain::{Baseline, Count, Threshold};
use crate::fingerprint::Fingerprint;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

/// A dataset's stored state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DatasetState {
    pub name: String,
    pub prefix: String,
    pub seeked: u64,
    pub seeked_at: Option<Timestamp>,
    pub trained: u64,
    pub trained_at: Option<Timestamp>,
    /// The threshold seek applied when it last counted (absent on items older than that).
    pub threshold: Option<Threshold>,
    /// The latest count in full; `None` on items from before change detection.
    pub latest: Option<Count>,
    /// What the next count compares with.
    pub baseline: Baseline,
}

impl DatasetState {
    /// As a request's snapshot entry (`POST /ask`): the latest count, against the baseline as
    /// it is now. A latest count the baseline has caught up with (it was approved, or an older
    /// one was) offers nothing new.
    pub fn count(&self) -> Count {
        match &self.latest {
            Some(latest) => {
                let mut c = latest.clone();
                let caught_up = match (self.baseline.snapshot_at, latest.counted_at) {
                    (Some(b), Some(l)) => b >= l,
                    _ => false,
                };
                if caught_up {
                    c.trained = self.baseline.objects;
                    c.new_objects = Some(0);
                    c.new_bytes = 0;
                    c.trained_bytes = self.baseline.bytes;
                    c.trained_fingerprint = self.baseline.fingerprint;
                    c.baseline_at = self.baseline.snapshot_at;
                }
                c
            }
            None => Count {
                name: self.name.clone(),
                prefix: self.prefix.clone(),
                seeked: self.seeked,
                trained: self.trained,
                threshold: self.threshold.unwrap_or(Threshold::Objects(0)),
                bytes: 0,
                new_objects: None,
                new_bytes: 0,
                fingerprint: None,
                counted_at: None,
                trained_bytes: None,
                trained_fingerprint: None,
                baseline_at: None,
            },
        }
    }
}

pub(in crate::aws) fn dataset_from(item: &Item) -> Result<DatasetState, StoreError> {
    let r = Reader { item };
    let latest: Option<Count> = match r.opt_s("count") {
        Some(_) => Some(r.json("count")?),
        None => None,
    };
    let fingerprint = match r.opt_s("trained_fingerprint") {
        Some(text) => {
            Some(Fingerprint::parse(text).ok_or_else(|| r.corrupt("trained_fingerprint"))?)
        }
        None => None,
    };
    let trained = r.opt_n("trained")?.unwrap_or(0);
    let threshold = match &latest {
        Some(c) => Some(c.threshold),
        None => r.opt_n("threshold")?.map(Threshold::Objects),
    };
    Ok(DatasetState {
        name: r.str("name")?.to_owned(),
        prefix: r.opt_s("prefix").unwrap_or_default().to_owned(),
        seeked: r.opt_n("seeked")?.unwrap_or(0),
        seeked_at: r.opt_n("seeked_at")?.map(Timestamp::from_secs),
        trained,
        trained_at: r.opt_n("trained_at")?.map(Timestamp::from_secs),
        threshold,
        latest,
        baseline: Baseline {
            objects: trained,
            bytes: r.opt_n("trained_bytes")?,
            fingerprint,
            snapshot_at: r.opt_n("trained_snapshot_at")?.map(Timestamp::from_secs),
        },
    })
}

/// The condition that the item's baseline is still `read` (`None`: there was no item): a
/// count measured against one baseline is never stored over another.
fn still(upd: UpdateBuilder, read: Option<&Baseline>) -> UpdateBuilder {
    let upd = upd.expression_attribute_names("#trained", "trained");
    match read {
        None => upd
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", KEY),
        Some(b) => {
            let upd = upd
                .expression_attribute_values(":read_trained", n(b.objects))
                .expression_attribute_names("#tsa", "trained_snapshot_at");
            match b.snapshot_at {
                Some(at) => upd
                    .condition_expression("#trained = :read_trained AND #tsa = :read_tsa")
                    .expression_attribute_values(":read_tsa", n(at.secs())),
                None => upd.condition_expression(
                    "#trained = :read_trained AND attribute_not_exists(#tsa)",
                ),
            }
        }
    }
}

/// seek's write of a count: the latest count, if the baseline is still the one it was measured
/// against (`read`; `None` when there was no item).
pub(super) fn count_update(
    table: &str,
    c: &Count,
    now: Timestamp,
    read: Option<&Baseline>,
) -> Result<TransactWriteItem, StoreError> {
    let mut upd = Update::builder()
        .table_name(table)
        .set_key(Some(key(dataset_key(&c.name))))
        .expression_attribute_names("#kind", "kind")
        .expression_attribute_names("#name", "name")
        .expression_attribute_names("#prefix", "prefix")
        .expression_attribute_names("#seeked", "seeked")
        .expression_attribute_names("#seeked_at", "seeked_at")
        .expression_attribute_names("#count", "count")
        .expression_attribute_names("#threshold", "threshold")
        .expression_attribute_values(":kind", s("dataset"))
        .expression_attribute_values(":name", s(c.name.clone()))
        .expression_attribute_values(":prefix", s(c.prefix.clone()))
        .expression_attribute_values(":seeked", n(c.seeked))
        .expression_attribute_values(":now", n(now.secs()))
        .expression_attribute_values(":count", s(serde_json::to_string(c).unwrap_or_default()))
        .expression_attribute_values(":zero", n(0));
    let set = "SET #kind = :kind, #name = :name, #prefix = :prefix, #seeked = :seeked, \
               #seeked_at = :now, #count = :count, #trained = if_not_exists(#trained, :zero)";
    upd = match c.threshold.objects() {
        Some(t) => upd
            .update_expression(format!("{set}, #threshold = :threshold"))
            .expression_attribute_values(":threshold", n(t)),
        None => upd.update_expression(format!("{set} REMOVE #threshold")),
    };
    let upd = still(upd, read);
    Ok(TransactWriteItem::builder()
        .update(build(upd.build())?)
        .build())
}

/// The writes that move every dataset of `snapshot` that needs it ([`baseline_update`]), each
/// against its dataset as `read`.
pub(super) fn baseline_updates(
    table: &str,
    snapshot: &[Count],
    at: Timestamp,
    read: &std::collections::HashMap<String, DatasetState>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mut items = Vec::new();
    for c in snapshot {
        let current = read.get(&c.name).map(|d| &d.baseline);
        items.extend(baseline_update(table, c, at, current)?);
    }
    Ok(items)
}

/// The one write that moves a dataset's trained baseline: to `snapshot` (a count a request
/// offered), at `at`, if that is forward from `current` (what was read; `None`: no item) and
/// `current` is still what the item holds. `None`: nothing to move (the baseline is at that
/// snapshot or past it).
///
/// Forward means a later count: by the snapshot's time when both have one. A snapshot from
/// before change detection has none; it moves a baseline that has none either, if it holds more
/// objects (the rule of then), and never one that has a time (that one is newer).
pub(super) fn baseline_update(
    table: &str,
    snapshot: &Count,
    at: Timestamp,
    current: Option<&Baseline>,
) -> Result<Option<TransactWriteItem>, StoreError> {
    let forward = match (current, snapshot.counted_at) {
        (None, _) => true,
        (Some(b), Some(counted)) => b.snapshot_at.is_none_or(|was| was < counted),
        (Some(b), None) => b.snapshot_at.is_none() && b.objects < snapshot.seeked,
    };
    if !forward {
        return Ok(None);
    }
    let mut upd = Update::builder()
        .table_name(table)
        .set_key(Some(key(dataset_key(&snapshot.name))))
        .expression_attribute_names("#kind", "kind")
        .expression_attribute_names("#name", "name")
        .expression_attribute_names("#prefix", "prefix")
        .expression_attribute_names("#trained_at", "trained_at")
        .expression_attribute_names("#tbytes", "trained_bytes")
        .expression_attribute_names("#tfp", "trained_fingerprint")
        .expression_attribute_names("#tsa", "trained_snapshot_at")
        .expression_attribute_values(":kind", s("dataset"))
        .expression_attribute_values(":name", s(snapshot.name.clone()))
        .expression_attribute_values(":prefix", s(snapshot.prefix.clone()))
        .expression_attribute_values(":trained", n(snapshot.seeked))
        .expression_attribute_values(":at", n(at.secs()));
    let set = "SET #kind = :kind, #name = :name, #prefix = if_not_exists(#prefix, :prefix), \
               #trained = :trained, #trained_at = :at";
    let baseline = snapshot.as_baseline();
    upd = match (baseline.snapshot_at, baseline.fingerprint) {
        (Some(when), Some(fp)) => upd
            .update_expression(format!(
                "{set}, #tbytes = :tbytes, #tfp = :tfp, #tsa = :tsa"
            ))
            .expression_attribute_values(":tbytes", n(baseline.bytes.unwrap_or(0)))
            .expression_attribute_values(":tfp", s(fp.to_string()))
            .expression_attribute_values(":tsa", n(when.secs())),
        _ => upd.update_expression(format!("{set} REMOVE #tbytes, #tfp, #tsa")),
    };
    let upd = still(upd, current);
    Ok(Some(
        TransactWriteItem::builder()
            .update(build(upd.build())?)
            .build(),
    ))
}
