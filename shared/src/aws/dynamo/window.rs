//! seek's items: a schedule window (its rendered message, lease and whether it posted), and the
//! transaction that prepares one together with the counts and the new request.

use super::decision::request_item;
use super::{
    DatasetState, DynamoStore, Item, KEY, LATEST, Reader, StoreError, TTL_ATTRIBUTE,
    WINDOW_TTL_SECS, build, key, n, s, window_key,
};
use super::{Mine, Update as Change};
use crate::Timestamp;
use crate::domain::{ApprovalRequest, Baseline, Count, Verdict};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;

/// Whether a window's message went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    Prepared,
    Posted,
}

/// One schedule window: the message prepared for it, and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub key: String,
    pub state: WindowState,
    pub verdict: Verdict,
    pub message: Value,
    pub request_id: Option<String>,
    pub created_at: Timestamp,
    /// The delivery that marked it posted, if it did.
    pub posted_by: Option<String>,
    /// The newest request when it was prepared, which its question supersedes.
    pub supersedes: Option<String>,
}

/// Everything seek writes in one transaction before posting.
#[derive(Debug, Clone)]
pub struct Preparation {
    pub window: String,
    /// The window's own time: the schedule's time for a scheduled seek (shared by every
    /// delivery, however late), else when it was prepared. The status history orders by it.
    pub at: Timestamp,
    pub now: Timestamp,
    /// The counts just seen, each measured against its dataset's baseline as read.
    pub counts: Vec<Count>,
    /// Those baselines (`None`: the dataset had no item), checked again on write: a count is
    /// never stored over a baseline that moved meanwhile (a decision).
    pub read: Vec<Option<Baseline>>,
    pub verdict: Verdict,
    pub message: Value,
    /// The new request (when asking) and the newest one it supersedes.
    pub request: Option<ApprovalRequest>,
    pub previous_request: Option<String>,
    /// Who prepares it: the delivery's (Lambda) request id. A retry of the same delivery
    /// recognises the window as its own.
    pub writer: String,
}

/// How a preparation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// Written: this delivery owns the window.
    Created(Window),
    /// The window already existed (another delivery got there first).
    Exists(Window),
    /// Something read has changed since (a decision, another seek): read again and retry.
    Conflict,
}

/// What seek needs from the table.
pub trait SeekStore: super::ApprovalStore + super::LifecycleStore + Send + Sync {
    fn datasets(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<HashMap<String, DatasetState>, StoreError>> + Send;
    fn latest_request_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn window(&self, key: &str) -> impl Future<Output = Result<Option<Window>, StoreError>> + Send;
    fn prepare(&self, p: &Preparation)
    -> impl Future<Output = Result<Prepared, StoreError>> + Send;
    /// Takes the right to post a prepared window until `until`. False if posted or leased by
    /// another delivery; re-entrant for the same `owner`, so a retry of the delivery that
    /// holds it (or of a lease whose answer was lost) continues where it stopped.
    fn lease(
        &self,
        key: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives the lease back after a failed post, so a retry may post at once.
    fn release(
        &self,
        key: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn mark_posted(
        &self,
        key: &str,
        owner: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn window_from(item: &Item) -> Result<Window, StoreError> {
    let r = Reader { item };
    let state = match r.str("state")? {
        "prepared" => WindowState::Prepared,
        "posted" => WindowState::Posted,
        _ => return Err(r.corrupt("state")),
    };
    let verdict = match r.str("verdict")? {
        "ask" => Verdict::Ask,
        "no_need" => Verdict::NoNeed,
        _ => return Err(r.corrupt("verdict")),
    };
    Ok(Window {
        key: r.str("window")?.to_owned(),
        state,
        verdict,
        message: r.json("message")?,
        request_id: r.opt_s("request_id").map(str::to_owned),
        created_at: Timestamp::from_secs(r.num("created_at")?),
        posted_by: r.opt_s("posted_by").map(str::to_owned),
        supersedes: r.opt_s("supersedes").map(str::to_owned),
    })
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Ask => "ask",
        Verdict::NoNeed => "no_need",
    }
}

impl SeekStore for DynamoStore {
    async fn datasets(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, DatasetState>, StoreError> {
        self.read_datasets(names).await
    }

    async fn latest_request_id(&self) -> Result<Option<String>, StoreError> {
        self.read_latest().await
    }

    async fn window(&self, k: &str) -> Result<Option<Window>, StoreError> {
        self.get(window_key(k))
            .await?
            .as_ref()
            .map(window_from)
            .transpose()
    }

    async fn prepare(&self, p: &Preparation) -> Result<Prepared, StoreError> {
        let mut items = Vec::with_capacity(2 * p.counts.len() + 3);
        let mut window = key(window_key(&p.window));
        window.insert("kind".into(), s("window"));
        window.insert("window".into(), s(p.window.clone()));
        window.insert("state".into(), s("prepared"));
        window.insert("verdict".into(), s(verdict_str(p.verdict)));
        window.insert("message".into(), s(p.message.to_string()));
        window.insert("created_at".into(), n(p.now.secs()));
        window.insert("lease_until".into(), n(0));
        window.insert("prepared_by".into(), s(p.writer.clone()));
        window.insert(TTL_ATTRIBUTE.into(), n(p.now.secs() + WINDOW_TTL_SECS));
        if let Some(req) = &p.request {
            window.insert("request_id".into(), s(req.id.clone()));
            if let Some(prev) = &p.previous_request {
                window.insert("supersedes".into(), s(prev.clone()));
            }
        }
        items.push(
            TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(window))
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", KEY)
                        .build(),
                )?)
                .build(),
        );
        for (c, read) in p.counts.iter().zip(&p.read) {
            items.push(super::dataset::count_update(
                &self.table,
                c,
                p.now,
                read.as_ref(),
            )?);
        }
        // One history entry per dataset; the window's own condition makes it once per window.
        for c in &p.counts {
            let asked = p.request.is_some();
            items.push(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(super::history::history_item(
                                &p.window, p.at, p.now, c, asked,
                            )))
                            .build(),
                    )?)
                    .build(),
            );
        }
        if let Some(req) = &p.request {
            items.push(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(request_item(req)))
                            .condition_expression("attribute_not_exists(#pk)")
                            .expression_attribute_names("#pk", KEY)
                            .build(),
                    )?)
                    .build(),
            );
            let (condition, prev) = match &p.previous_request {
                Some(prev) => ("#rid = :prev", Some(prev)),
                None => ("attribute_not_exists(#rid)", None),
            };
            let mut upd = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(LATEST.to_owned())))
                .update_expression("SET #rid = :rid, #created_at = :now")
                .condition_expression(condition)
                .expression_attribute_names("#rid", "request_id")
                .expression_attribute_names("#created_at", "created_at")
                .expression_attribute_values(":rid", s(req.id.clone()))
                .expression_attribute_values(":now", n(p.now.secs()));
            if let Some(prev) = prev {
                upd = upd.expression_attribute_values(":prev", s(prev.clone()));
            }
            items.push(
                TransactWriteItem::builder()
                    .update(build(upd.build())?)
                    .build(),
            );
        }
        let mine = Mine {
            pk: window_key(&p.window),
            attr: "prepared_by",
            writer: &p.writer,
        };
        let seed = format!("prepare {} {} {}", p.window, p.writer, p.message);
        if self
            .transact("prepare window (TransactWriteItems)", items, mine, &seed)
            .await?
        {
            let created =
                SeekStore::window(self, &p.window)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt {
                        key: window_key(&p.window),
                        what: "missing right after it was written".into(),
                    })?;
            return Ok(Prepared::Created(created));
        }
        match SeekStore::window(self, &p.window).await? {
            Some(w) => Ok(Prepared::Exists(w)),
            None => Ok(Prepared::Conflict),
        }
    }

    async fn lease(
        &self,
        k: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        // The condition itself is re-entrant: the same owner may take its lease again. So a
        // retry whose first attempt's answer was lost succeeds, and a posted window is never
        // leased again (no read-back here: that could not tell "leased" from "posted").
        self.update_as(
            "lease window (UpdateItem)",
            Change {
                pk: window_key(k),
                expression: "SET #owner = :owner, #until = :until",
                condition: "#state = :prepared AND (#until < :now OR #owner = :owner)",
                values: vec![
                    (":owner", s(owner)),
                    (":until", n(until.secs())),
                    (":now", n(now.secs())),
                    (":prepared", s("prepared")),
                ],
                names: vec![
                    ("#owner", "lease_owner"),
                    ("#until", "lease_until"),
                    ("#state", "state"),
                ],
            },
            None,
        )
        .await
    }

    async fn release(&self, k: &str, owner: &str) -> Result<(), StoreError> {
        self.update_as(
            "release window lease (UpdateItem)",
            Change {
                pk: window_key(k),
                expression: "SET #until = :zero",
                condition: "#owner = :owner",
                values: vec![(":owner", s(owner)), (":zero", n(0))],
                names: vec![("#owner", "lease_owner"), ("#until", "lease_until")],
            },
            None,
        )
        .await
        .map(|_| ())
    }

    async fn mark_posted(&self, k: &str, owner: &str, now: Timestamp) -> Result<(), StoreError> {
        let done = self
            .update_as(
                "mark window posted (UpdateItem)",
                Change {
                    pk: window_key(k),
                    expression: "SET #state = :posted, #posted_at = :now, #posted_by = :owner",
                    condition: "#owner = :owner",
                    values: vec![
                        (":owner", s(owner)),
                        (":posted", s("posted")),
                        (":now", n(now.secs())),
                    ],
                    names: vec![
                        ("#owner", "lease_owner"),
                        ("#state", "state"),
                        ("#posted_at", "posted_at"),
                        ("#posted_by", "posted_by"),
                    ],
                },
                Some(Mine {
                    pk: window_key(k),
                    attr: "posted_by",
                    writer: owner,
                }),
            )
            .await?;
        if done {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                key: window_key(k),
                what: "the lease was lost before the window was marked posted".into(),
            })
        }
    }
}
