//! `Idempotency-Key`s: a key, the hash of the call it first came with, and once that call
//! finished, its answer, kept 24 hours (Powertools' idempotency utility is the model).
//!
//! A call claims its key with a conditional put (an in-progress marker with the body's hash and
//! a short lease); only the claimant does the work, then stores the answer. A retry finds the
//! answer and repeats it; a concurrent retry finds the marker and is told to come back; a call
//! whose body differs is refused. A claimant that dies leaves a marker whose lease runs out, so
//! a later retry of the same call may claim it again.

use super::{DynamoStore, Item, KEY, Reader, StoreError, TTL_ATTRIBUTE, dynamo_err, key, n, s};
use crate::Timestamp;
use std::future::Future;

/// How long a key is remembered.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this call's: do the work, then [`IdempotencyStore::complete`] or
    /// [`IdempotencyStore::abandon`].
    Fresh,
    /// The same call finished before: answer what it answered.
    Replay(StoredAnswer),
    /// The same call is running now (or died less than a lease ago).
    InProgress,
    /// The key came with a different call.
    Mismatch,
}

/// A finished call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

pub trait IdempotencyStore: Send + Sync {
    fn claim(
        &self,
        key: &str,
        hash: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    fn complete(
        &self,
        key: &str,
        hash: &str,
        answer: &StoredAnswer,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives the key up after a failure, so a retry runs the call again.
    fn abandon(&self, key: &str, hash: &str)
    -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The attribute naming the call that holds (or held) the claim.
const CLAIMED_BY: &str = "claimed_by";

fn idem_key(k: &str) -> String {
    format!("idem#{k}")
}

fn read_claim(item: &Item, hash: &str, now: Timestamp) -> Result<Option<Claim>, StoreError> {
    let r = Reader { item };
    if r.opt_n::<i64>(TTL_ATTRIBUTE)?
        .is_some_and(|e| e < now.secs())
    {
        // Expired, not yet swept by TTL: as good as absent.
        return Ok(None);
    }
    if r.str("hash")? != hash {
        return Ok(Some(Claim::Mismatch));
    }
    Ok(Some(match r.str("state")? {
        "done" => Claim::Replay(StoredAnswer {
            status: r.num("status")?,
            content_type: r.opt_s("content_type").map(str::to_owned),
            body: r.opt_s("body").unwrap_or_default().to_owned(),
        }),
        _ => Claim::InProgress,
    }))
}

impl IdempotencyStore for DynamoStore {
    async fn claim(
        &self,
        k: &str,
        hash: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError> {
        // This claim's own mark: the SDK's retry of a put whose answer was lost fails its
        // condition on the marker the first attempt wrote, and the mark says it is ours.
        let claimant = crate::domain::new_request_id();
        let mut item = key(idem_key(k));
        item.insert("kind".into(), s("idempotency"));
        item.insert("hash".into(), s(hash));
        item.insert(CLAIMED_BY.into(), s(claimant.clone()));
        item.insert("state".into(), s("in_progress"));
        item.insert("lease_until".into(), n(lease_until.secs()));
        item.insert(TTL_ATTRIBUTE.into(), n(now.secs() + IDEMPOTENCY_TTL_SECS));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR #exp < :now \
                 OR (#state = :progress AND #lease < :now AND #hash = :hash)",
            )
            .expression_attribute_names("#pk", KEY)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#lease", "lease_until")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":now", n(now.secs()))
            .expression_attribute_values(":progress", s("in_progress"))
            .expression_attribute_values(":hash", s(hash))
            .send()
            .await;
        let e = match put {
            Ok(_) => return Ok(Claim::Fresh),
            Err(e) => e,
        };
        // A failed condition, or an answer that never came (a 500 or a timeout, possibly after
        // the put happened): read what is there.
        let there = match self.get(idem_key(k)).await {
            Ok(there) => there,
            Err(read) => {
                tracing::warn!(error = %read, "could not read back an idempotency claim");
                return Err(dynamo_err("PutItem")(e));
            }
        };
        if let Some(item) = &there
            && item.get(CLAIMED_BY).and_then(|v| v.as_s().ok()) == Some(&claimant)
        {
            tracing::info!("recognised this call's own idempotency claim after a lost answer");
            return Ok(Claim::Fresh);
        }
        if !e
            .as_service_error()
            .is_some_and(|se| se.is_conditional_check_failed_exception())
        {
            return Err(dynamo_err("PutItem")(e));
        }
        match there {
            Some(item) => Ok(read_claim(&item, hash, now)?.unwrap_or(Claim::InProgress)),
            // Swept between the put and the read: the caller may simply retry.
            None => Ok(Claim::InProgress),
        }
    }

    async fn complete(
        &self,
        k: &str,
        hash: &str,
        answer: &StoredAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut values = vec![
            (":done", s("done")),
            (":status", n(answer.status)),
            (":body", s(answer.body.clone())),
            (":hash", s(hash)),
            (":exp", n(now.secs() + IDEMPOTENCY_TTL_SECS)),
        ];
        let mut update =
            "SET #state = :done, #status = :status, #body = :body, #exp = :exp".to_owned();
        if let Some(ct) = &answer.content_type {
            values.push((":ct", s(ct.clone())));
            update += ", #ct = :ct";
        }
        let mut names = vec![
            ("#state", "state"),
            ("#status", "status"),
            ("#body", "body"),
            ("#hash", "hash"),
            ("#exp", TTL_ATTRIBUTE),
        ];
        if answer.content_type.is_some() {
            names.push(("#ct", "content_type"));
        }
        self.update_if(idem_key(k), &update, "#hash = :hash", values, names)
            .await
            .map(|_| ())
    }

    async fn abandon(&self, k: &str, hash: &str) -> Result<(), StoreError> {
        let del = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(idem_key(k))))
            .condition_expression("#hash = :hash AND #state = :progress")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":hash", s(hash))
            .expression_attribute_values(":progress", s("in_progress"))
            .send()
            .await;
        match del {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(dynamo_err("DeleteItem")(e)),
        }
    }
}
