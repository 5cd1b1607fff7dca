//! The state table: one DynamoDB table, one string hash key (`pk`), a handful of item kinds.
//!
//! | `pk`                    | what it holds                                                    |
//! |-------------------------|------------------------------------------------------------------|
//! | `dataset#<name>`        | the latest count and the trained baseline (see [`dataset`])      |
//! | `request#<id>`          | an approval request: snapshot, status, decision                  |
//! | `latest_request`        | the id of the newest request (older pending ones are superseded) |
//! | `window#<key>`          | one schedule window: its rendered message and whether it posted  |
//! | `audit#<request id>`    | the decision on a request, as an audit record                    |
//! | `last_decision`         | the most recent decision, for the status view                    |
//! | `last_approval`         | the most recent Train! decision (tables from before it: `last_decision`) |
//! | `idem#<key>`            | an `Idempotency-Key`: the body's hash, then the stored answer    |
//! | `heartbeat`             | when seek last succeeded, for the heartbeat metric and alarm     |
//! | `manual_seek`           | who last started a count from Slack, and until when it holds the next off |
//!
//! Conditional writes and transactions make each step atomic; nothing is read-modify-written
//! without a condition on what was read.
//!
//! Every conditional write also records who made it (a click, a delivery's request id), so
//! that when DynamoDB commits a write and its answer is lost, the retry that then fails its own
//! condition recognises the write as its own and reports success (see [`Mine`]).

mod ask;
mod dataset;
mod decision;
mod heartbeat;
mod history;
mod idempotency;
mod launch;
mod lifecycle;
mod manual_seek;
mod status;
mod window;

pub use ask::AskStore;
pub use dataset::DatasetState;
use dataset::dataset_from;
pub use decision::{DecisionStore, NOTICE_DUTY_SECS};
pub use heartbeat::{HeartbeatStore, LastSeek};
pub use history::{HISTORY_KEEP, HistoryEntry};
pub use idempotency::{Claim, IDEMPOTENCY_TTL_SECS, IdempotencyStore, StoredAnswer};
pub use launch::{Launch, LaunchState, LaunchStore};
pub use lifecycle::{Edit, EditDue, LifecycleStore, SWEEP_PAGE};
pub use manual_seek::{ManualSeek, ManualSeekStore};
pub use status::{ApprovalStore, RunRecord, Status, StatusStore, approval};
pub use window::{Preparation, Prepared, SeekStore, Window, WindowState};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use std::collections::HashMap;
use std::time::Duration;

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
pub(super) const LAST_APPROVAL: &str = "last_approval";

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

pub(super) fn build<T, E: std::error::Error>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(dynamo_err("build request"))
}

/// How hard the DynamoDB client tries before an operation fails: attempts (throttling and 5xx
/// are retried with jittered backoff) and timeouts, so a caller knows its worst case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
}

impl Patience {
    /// actions: Slack wants the whole click answered within 3 s, notifications included, so
    /// each operation gives up within 1.2 s (the handler bounds the sum, see actions).
    pub const INTERACTIVE: Self = Self {
        attempts: 3,
        initial_backoff: Duration::from_millis(25),
        max_backoff: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_millis(600),
        operation_timeout: Duration::from_millis(1200),
    };
    /// seek and send: a scheduled run has minutes; ride out throttling rather than fail the
    /// delivery (a failed mark-posted after a post could otherwise mean a post twice).
    pub const PATIENT: Self = Self {
        attempts: 6,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(3),
        attempt_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(30),
    };
}

impl DynamoStore {
    /// The store with the SDK's default retries.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(sdk),
            table: table.into(),
        }
    }

    /// The store with its own retry and timeout bounds.
    pub fn with_patience(
        sdk: &aws_config::SdkConfig,
        table: impl Into<String>,
        patience: Patience,
    ) -> Self {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(patience.attempts)
            .with_initial_backoff(patience.initial_backoff)
            .with_max_backoff(patience.max_backoff);
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(patience.connect_timeout)
            .operation_attempt_timeout(patience.attempt_timeout)
            .operation_timeout(patience.operation_timeout)
            .build();
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(retry)
            .timeout_config(timeouts)
            .build();
        Self {
            client: aws_sdk_dynamodb::Client::from_conf(config),
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

    /// The writer recorded on an item, read consistently.
    async fn stored_writer(&self, mine: &Mine<'_>) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(mine.pk.clone())
            .await?
            .and_then(|item| item.get(mine.attr).and_then(|v| v.as_s().ok()).cloned()))
    }

    /// After a failed or unanswered write: did *this* attempt write it? A failed condition
    /// (or a cancelled transaction) then reads as success; so does a 500 or a timeout whose
    /// write happened. `Ok(None)`: it did not (or could not be told), judge the failure itself.
    async fn recognise(&self, op: &'static str, mine: Option<&Mine<'_>>) -> Option<bool> {
        let mine = mine?;
        match self.stored_writer(mine).await {
            Ok(Some(w)) if w == mine.writer => {
                tracing::info!(
                    op,
                    writer = mine.writer,
                    "recognised this attempt's own write after a failed or lost answer"
                );
                Some(true)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(op, error = %e, "could not read back after a failed write");
                None
            }
        }
    }

    /// A conditional update that reports a failed condition as `false` (no writer recorded:
    /// the condition itself must make a retry of the same writer pass, see [`Self::update_as`]).
    async fn update_if(
        &self,
        pk: String,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        names: Vec<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let update = Update {
            pk,
            expression,
            condition,
            values,
            names,
        };
        self.update_as("UpdateItem", update, None).await
    }

    /// A conditional update that reports a failed condition as `false`. With `mine`, the
    /// update also records its writer, and a failure after which the item holds that writer is
    /// this attempt's own write: `true`.
    async fn update_as(
        &self,
        op: &'static str,
        update: Update<'_>,
        mine: Option<Mine<'_>>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(update.pk)))
            .update_expression(update.expression)
            .condition_expression(update.condition);
        for (k, v) in update.values {
            req = req.expression_attribute_values(k, v);
        }
        for (k, v) in update.names {
            req = req.expression_attribute_names(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                if let Some(done) = self.recognise(op, mine.as_ref()).await {
                    return Ok(done);
                }
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception())
                {
                    Ok(false)
                } else {
                    Err(dynamo_err(op)(e))
                }
            }
        }
    }

    /// Runs a transaction whose first-class item records `mine.writer` in `mine.attr`; a
    /// cancellation (a condition failed, or a conflicting write) is `false`, unless the item
    /// shows that this very attempt wrote it (its answer was lost and the retry's condition
    /// failed on its own write): then `true`. The `ClientRequestToken` is derived from
    /// `token_seed`, so real DynamoDB also recognises a retry of the same transaction within
    /// ten minutes; nothing depends on it.
    async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
        mine: Mine<'_>,
        token_seed: &str,
    ) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(request_token(token_seed))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if let Some(done) = self.recognise(op, Some(&mine)).await {
                    return Ok(done);
                }
                if e.as_service_error()
                    .is_some_and(|se| se.is_transaction_canceled_exception())
                {
                    Ok(false)
                } else {
                    Err(dynamo_err(op)(e))
                }
            }
        }
    }
}

/// Who makes a write, so that a retry can recognise it: the item `pk`, the attribute that
/// names the writer, and this attempt's identity (a click, a delivery's request id). Any
/// conditional write in the store can use it: set `attr` to `writer` in the same write.
#[derive(Debug, Clone)]
pub(super) struct Mine<'a> {
    pub(super) pk: String,
    pub(super) attr: &'static str,
    pub(super) writer: &'a str,
}

/// One conditional `UpdateItem`: key, expressions and their placeholders.
pub(super) struct Update<'a> {
    pub(super) pk: String,
    pub(super) expression: &'a str,
    pub(super) condition: &'a str,
    pub(super) values: Vec<(&'a str, AttributeValue)>,
    pub(super) names: Vec<(&'a str, &'a str)>,
}

/// A `ClientRequestToken` (at most 36 characters) that is the same for the same transaction.
pub(super) fn request_token(seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_are_deterministic_short_and_distinct() {
        let a = request_token("click U0ANN 1795892640.000200");
        assert_eq!(a, request_token("click U0ANN 1795892640.000200"));
        assert_ne!(a, request_token("click U0ANN 1795892641.000200"));
        assert!(a.len() <= 36 && !a.is_empty(), "{a}");
    }
}
