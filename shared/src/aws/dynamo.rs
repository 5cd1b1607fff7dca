//! The state table: one DynamoDB table, one string hash key (`pk`), a handful of item kinds.
//!
//! | `pk`                    | what it holds                                                    |
//! |-------------------------|------------------------------------------------------------------|
//! | `dataset#<name>`        | seeked and trained counts, with their times                      |
//! | `request#<id>`          | an approval request: snapshot, status, decision                  |
//! | `latest_request`        | the id of the newest request (older pending ones are superseded) |
//! | `window#<key>`          | one schedule window: its rendered message and whether it posted  |
//! | `audit#<request id>`    | the decision on a request, as an audit record                    |
//! | `last_decision`         | the most recent decision, for the status view                    |
//!
//! Conditional writes and transactions make each step atomic; nothing is read-modify-written
//! without a condition on what was read.

use crate::Timestamp;
use crate::domain::{ApprovalRequest, Choice, Count, Decision, Verdict};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;

/// The table's only key attribute. `template.yaml` declares the same; the tests create their
/// tables from the template, so the two cannot drift apart.
pub const KEY: &str = "pk";
/// The TTL attribute (epoch seconds) on window items.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Window items are kept this long, far longer than any retry of one delivery.
pub const WINDOW_TTL_SECS: i64 = 35 * 24 * 3600;

type Item = HashMap<String, AttributeValue>;

/// A DynamoDB failure, or an item that does not have the shape we wrote.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("dynamodb {op}: {reason}")]
    Dynamo { op: &'static str, reason: String },
    #[error("item {key} is malformed: {what}")]
    Corrupt { key: String, what: String },
}

fn dynamo_err<E: std::error::Error>(op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Dynamo {
        op,
        reason: super::describe(&e),
    }
}

/// A dataset's stored counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetState {
    pub name: String,
    pub prefix: String,
    pub seeked: u64,
    pub seeked_at: Option<Timestamp>,
    pub trained: u64,
    pub trained_at: Option<Timestamp>,
}

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
}

/// Everything seek writes in one transaction before posting.
#[derive(Debug, Clone)]
pub struct Preparation {
    pub window: String,
    pub now: Timestamp,
    /// The counts just seen; `trained` is what was read, and is checked again on write.
    pub counts: Vec<Count>,
    /// Which of those datasets already had an item when read.
    pub existed: Vec<bool>,
    pub verdict: Verdict,
    pub message: Value,
    /// The new request (when asking) and the newest one it supersedes.
    pub request: Option<ApprovalRequest>,
    pub previous_request: Option<String>,
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
pub trait SeekStore: Send + Sync {
    fn datasets(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<HashMap<String, DatasetState>, StoreError>> + Send;
    fn latest_request_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn window(&self, key: &str) -> impl Future<Output = Result<Option<Window>, StoreError>> + Send;
    fn prepare(&self, p: &Preparation)
    -> impl Future<Output = Result<Prepared, StoreError>> + Send;
    /// Takes the right to post a prepared window until `until`. False if posted or leased.
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

/// What actions needs from the table.
pub trait DecisionStore: Send + Sync {
    fn request(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, StoreError>> + Send;
    fn latest_request_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn datasets(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<HashMap<String, DatasetState>, StoreError>> + Send;
    /// Records the decision atomically, if the request is still pending and still the newest,
    /// and (on Train) the trained counts are still what `trained_now` says. False: something
    /// changed; read again.
    fn decide(
        &self,
        request: &ApprovalRequest,
        decision: &Decision,
        trained_now: &HashMap<String, DatasetState>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What the status view reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub datasets: Vec<DatasetState>,
    pub latest_request: Option<ApprovalRequest>,
    pub last_decision: Option<Decision>,
}

pub trait StatusStore: Send + Sync {
    fn status(&self) -> impl Future<Output = Result<Status, StoreError>> + Send;
}

/// The DynamoDB-backed store. Build it once at cold start.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String) -> Item {
    HashMap::from([(KEY.to_owned(), s(pk))])
}

fn dataset_key(name: &str) -> String {
    format!("dataset#{name}")
}
fn request_key(id: &str) -> String {
    format!("request#{id}")
}
fn window_key(key: &str) -> String {
    format!("window#{key}")
}
const LATEST: &str = "latest_request";
const LAST_DECISION: &str = "last_decision";

struct Reader<'a> {
    item: &'a Item,
}

impl<'a> Reader<'a> {
    fn key(&self) -> String {
        self.item
            .get(KEY)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    }
    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt {
            key: self.key(),
            what: what.to_owned(),
        }
    }
    fn opt_s(&self, name: &str) -> Option<&'a str> {
        self.item
            .get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
    fn str(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_s(name).ok_or_else(|| self.corrupt(name))
    }
    fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|t| t.parse().ok())
                .map(Some)
                .ok_or_else(|| self.corrupt(name)),
        }
    }
    fn num<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_n(name)?.ok_or_else(|| self.corrupt(name))
    }
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        serde_json::from_str(self.str(name)?).map_err(|_| self.corrupt(name))
    }
}

fn dataset_from(item: &Item) -> Result<DatasetState, StoreError> {
    let r = Reader { item };
    Ok(DatasetState {
        name: r.str("name")?.to_owned(),
        prefix: r.opt_s("prefix").unwrap_or_default().to_owned(),
        seeked: r.opt_n("seeked")?.unwrap_or(0),
        seeked_at: r.opt_n("seeked_at")?.map(Timestamp::from_secs),
        trained: r.opt_n("trained")?.unwrap_or(0),
        trained_at: r.opt_n("trained_at")?.map(Timestamp::from_secs),
    })
}

fn request_from(item: &Item) -> Result<ApprovalRequest, StoreError> {
    let r = Reader { item };
    let decision = match r.opt_s("decision") {
        Some(_) => Some(r.json("decision")?),
        None => None,
    };
    Ok(ApprovalRequest {
        id: r.str("id")?.to_owned(),
        created_at: Timestamp::from_secs(r.num("created_at")?),
        window: r.opt_s("window").unwrap_or_default().to_owned(),
        snapshot: r.json("snapshot")?,
        decision,
    })
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
    })
}

fn request_item(req: &ApprovalRequest) -> Item {
    let mut item = key(request_key(&req.id));
    item.insert("kind".into(), s("request"));
    item.insert("id".into(), s(req.id.clone()));
    item.insert("created_at".into(), n(req.created_at.secs()));
    item.insert("window".into(), s(req.window.clone()));
    item.insert("status".into(), s("pending"));
    item.insert(
        "snapshot".into(),
        s(serde_json::to_string(&req.snapshot).unwrap_or_default()),
    );
    item
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Ask => "ask",
        Verdict::NoNeed => "no_need",
    }
}

fn build<T, E: std::error::Error>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(dynamo_err("build request"))
}

impl DynamoStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(sdk),
            table: table.into(),
        }
    }

    async fn get(&self, pk: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_err("GetItem"))?;
        Ok(out.item)
    }

    async fn read_datasets(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, DatasetState>, StoreError> {
        let mut out = HashMap::new();
        for name in names {
            if let Some(item) = self.get(dataset_key(name)).await? {
                out.insert(name.clone(), dataset_from(&item)?);
            }
        }
        Ok(out)
    }

    async fn read_latest(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(LATEST.to_owned())
            .await?
            .and_then(|i| i.get("request_id").and_then(|v| v.as_s().ok()).cloned()))
    }

    /// A conditional update that reports a failed condition as `false`.
    async fn update_if(
        &self,
        pk: String,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        names: Vec<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk)))
            .update_expression(update)
            .condition_expression(condition);
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        for (k, v) in names {
            req = req.expression_attribute_names(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(dynamo_err("UpdateItem")(e)),
        }
    }

    /// Runs a transaction; a cancellation (a condition failed, or a conflicting write) is `false`.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(dynamo_err("TransactWriteItems")(e)),
        }
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
        let mut items = Vec::with_capacity(p.counts.len() + 3);
        let mut window = key(window_key(&p.window));
        window.insert("kind".into(), s("window"));
        window.insert("window".into(), s(p.window.clone()));
        window.insert("state".into(), s("prepared"));
        window.insert("verdict".into(), s(verdict_str(p.verdict)));
        window.insert("message".into(), s(p.message.to_string()));
        window.insert("created_at".into(), n(p.now.secs()));
        window.insert("lease_until".into(), n(0));
        window.insert(TTL_ATTRIBUTE.into(), n(p.now.secs() + WINDOW_TTL_SECS));
        if let Some(req) = &p.request {
            window.insert("request_id".into(), s(req.id.clone()));
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
        for (c, existed) in p.counts.iter().zip(&p.existed) {
            let condition = if *existed {
                "#trained = :read_trained"
            } else {
                "attribute_not_exists(#pk)"
            };
            let mut upd = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(dataset_key(&c.name))))
                .update_expression(
                    "SET #kind = :kind, #name = :name, #prefix = :prefix, #seeked = :seeked, \
                     #seeked_at = :now, #trained = if_not_exists(#trained, :zero)",
                )
                .condition_expression(condition)
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_names("#name", "name")
                .expression_attribute_names("#prefix", "prefix")
                .expression_attribute_names("#seeked", "seeked")
                .expression_attribute_names("#seeked_at", "seeked_at")
                .expression_attribute_names("#trained", "trained")
                .expression_attribute_values(":kind", s("dataset"))
                .expression_attribute_values(":name", s(c.name.clone()))
                .expression_attribute_values(":prefix", s(c.prefix.clone()))
                .expression_attribute_values(":seeked", n(c.seeked))
                .expression_attribute_values(":now", n(p.now.secs()))
                .expression_attribute_values(":zero", n(0));
            if *existed {
                upd = upd.expression_attribute_values(":read_trained", n(c.trained));
            } else {
                upd = upd.expression_attribute_names("#pk", KEY);
            }
            items.push(
                TransactWriteItem::builder()
                    .update(build(upd.build())?)
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
        if self.transact(items).await? {
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
        self.update_if(
            window_key(k),
            "SET #owner = :owner, #until = :until",
            "#state = :prepared AND #until < :now",
            vec![
                (":owner", s(owner)),
                (":until", n(until.secs())),
                (":now", n(now.secs())),
                (":prepared", s("prepared")),
            ],
            vec![
                ("#owner", "lease_owner"),
                ("#until", "lease_until"),
                ("#state", "state"),
            ],
        )
        .await
    }

    async fn release(&self, k: &str, owner: &str) -> Result<(), StoreError> {
        self.update_if(
            window_key(k),
            "SET #until = :zero",
            "#owner = :owner",
            vec![(":owner", s(owner)), (":zero", n(0))],
            vec![("#owner", "lease_owner"), ("#until", "lease_until")],
        )
        .await
        .map(|_| ())
    }

    async fn mark_posted(&self, k: &str, owner: &str, now: Timestamp) -> Result<(), StoreError> {
        let done = self
            .update_if(
                window_key(k),
                "SET #state = :posted, #posted_at = :now",
                "#owner = :owner",
                vec![
                    (":owner", s(owner)),
                    (":posted", s("posted")),
                    (":now", n(now.secs())),
                ],
                vec![
                    ("#owner", "lease_owner"),
                    ("#state", "state"),
                    ("#posted_at", "posted_at"),
                ],
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

impl DecisionStore for DynamoStore {
    async fn request(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        self.get(request_key(id))
            .await?
            .as_ref()
            .map(request_from)
            .transpose()
    }

    async fn latest_request_id(&self) -> Result<Option<String>, StoreError> {
        self.read_latest().await
    }

    async fn datasets(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, DatasetState>, StoreError> {
        self.read_datasets(names).await
    }

    async fn decide(
        &self,
        request: &ApprovalRequest,
        decision: &Decision,
        trained_now: &HashMap<String, DatasetState>,
    ) -> Result<bool, StoreError> {
        let decision_json = serde_json::to_string(decision).unwrap_or_default();
        let status = match decision.choice {
            Choice::Train => "approved",
            Choice::Nope => "declined",
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(build(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(request_key(&request.id))))
                        .update_expression("SET #status = :status, #decision = :decision")
                        .condition_expression("#status = :pending")
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_names("#decision", "decision")
                        .expression_attribute_values(":status", s(status))
                        .expression_attribute_values(":pending", s("pending"))
                        .expression_attribute_values(":decision", s(decision_json.clone()))
                        .build(),
                )?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(build(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(LATEST.to_owned())))
                        .condition_expression("#rid = :rid")
                        .expression_attribute_names("#rid", "request_id")
                        .expression_attribute_values(":rid", s(request.id.clone()))
                        .build(),
                )?)
                .build(),
        ];
        if decision.choice == Choice::Train {
            for c in &request.snapshot {
                let current = trained_now.get(&c.name);
                // A trained count never goes backwards.
                if current.is_some_and(|d| d.trained >= c.seeked) {
                    continue;
                }
                let mut upd = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(dataset_key(&c.name))))
                    .update_expression(
                        "SET #kind = :kind, #name = :name, #prefix = if_not_exists(#prefix, :prefix), \
                         #trained = :trained, #trained_at = :now",
                    )
                    .expression_attribute_names("#kind", "kind")
                    .expression_attribute_names("#name", "name")
                    .expression_attribute_names("#prefix", "prefix")
                    .expression_attribute_names("#trained", "trained")
                    .expression_attribute_names("#trained_at", "trained_at")
                    .expression_attribute_values(":kind", s("dataset"))
                    .expression_attribute_values(":name", s(c.name.clone()))
                    .expression_attribute_values(":prefix", s(c.prefix.clone()))
                    .expression_attribute_values(":trained", n(c.seeked))
                    .expression_attribute_values(":now", n(decision.at.secs()));
                upd = match current {
                    Some(d) => upd
                        .condition_expression("#trained = :was")
                        .expression_attribute_values(":was", n(d.trained)),
                    None => upd.condition_expression("attribute_not_exists(#trained)"),
                };
                items.push(
                    TransactWriteItem::builder()
                        .update(build(upd.build())?)
                        .build(),
                );
            }
        }
        let mut audit = key(format!("audit#{}", request.id));
        audit.insert("kind".into(), s("audit"));
        audit.insert("request_id".into(), s(request.id.clone()));
        audit.insert("decision".into(), s(decision.choice.as_str()));
        audit.insert("user_id".into(), s(decision.by.id.clone()));
        audit.insert("user_name".into(), s(decision.by.name.clone()));
        audit.insert("decided_at".into(), n(decision.at.secs()));
        audit.insert(
            "snapshot".into(),
            s(serde_json::to_string(&request.snapshot).unwrap_or_default()),
        );
        items.push(
            TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(audit))
                        .condition_expression("attribute_not_exists(#pk)")
                        .expression_attribute_names("#pk", KEY)
                        .build(),
                )?)
                .build(),
        );
        let mut last = key(LAST_DECISION.to_owned());
        last.insert("decision".into(), s(decision_json));
        items.push(
            TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(last))
                        .build(),
                )?)
                .build(),
        );
        self.transact(items).await
    }
}

impl StatusStore for DynamoStore {
    async fn status(&self) -> Result<Status, StoreError> {
        let mut datasets = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("#kind = :dataset")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":dataset", s("dataset"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(dynamo_err("Scan"))?;
            for item in page.items() {
                datasets.push(dataset_from(item)?);
            }
        }
        datasets.sort_by(|a, b| a.name.cmp(&b.name));
        let latest_request = match self.read_latest().await? {
            Some(id) => DecisionStore::request(self, &id).await?,
            None => None,
        };
        let last_decision = match self.get(LAST_DECISION.to_owned()).await? {
            Some(item) => Some(Reader { item: &item }.json("decision")?),
            None => None,
        };
        Ok(Status {
            datasets,
            latest_request,
            last_decision,
        })
    }
}
