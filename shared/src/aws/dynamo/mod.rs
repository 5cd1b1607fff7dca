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

mod decision;
mod history;
mod status;
mod window;

pub use decision::DecisionStore;
pub use history::{HISTORY_KEEP, HistoryEntry};
pub use status::{Status, StatusStore};
pub use window::{Preparation, Prepared, SeekStore, Window, WindowState};

use crate::Timestamp;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;

/// The table's only key attribute. `template.yaml` declares the same; the tests create their
/// tables from the template, so the two cannot drift apart.
pub const KEY: &str = "pk";
/// The TTL attribute (epoch seconds) on window items.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Window items are kept this long, far longer than any retry of one delivery.
pub const WINDOW_TTL_SECS: i64 = 35 * 24 * 3600;

pub(super) type Item = HashMap<String, AttributeValue>;

/// A DynamoDB failure, or an item that does not have the shape we wrote.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("dynamodb {op}: {reason}")]
    Dynamo { op: &'static str, reason: String },
    #[error("item {key} is malformed: {what}")]
    Corrupt { key: String, what: String },
}

pub(super) fn dynamo_err<E: std::error::Error>(op: &'static str) -> impl FnOnce(E) -> StoreError {
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

/// The DynamoDB-backed store. Build it once at cold start.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: String) -> Item {
    HashMap::from([(KEY.to_owned(), s(pk))])
}

pub(super) fn dataset_key(name: &str) -> String {
    format!("dataset#{name}")
}
pub(super) fn request_key(id: &str) -> String {
    format!("request#{id}")
}
pub(super) fn window_key(key: &str) -> String {
    format!("window#{key}")
}
pub(super) const LATEST: &str = "latest_request";
pub(super) const LAST_DECISION: &str = "last_decision";

pub(super) struct Reader<'a> {
    pub(super) item: &'a Item,
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

pub(super) fn dataset_from(item: &Item) -> Result<DatasetState, StoreError> {
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

pub(super) fn build<T, E: std::error::Error>(r: Result<T, E>) -> Result<T, StoreError> {
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
