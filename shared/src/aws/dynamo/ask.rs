//! `POST /ask`'s items: a request made outside any schedule window, on a quality signal. Its
//! snapshot is the datasets' stored counts; it becomes the newest request in one transaction
//! with a condition on the previous newest, so it supersedes that one (and a later request of
//! either kind supersedes it in turn).

use super::decision::request_item;
use super::{
    DatasetState, DynamoStore, KEY, LATEST, Mine, StoreError, build, key, n, request_key, s,
};
use crate::domain::ApprovalRequest;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use std::future::Future;

/// What `/ask` needs from the table.
pub trait AskStore: Send + Sync {
    /// Every dataset's stored counts, in name order.
    fn all_datasets(&self) -> impl Future<Output = Result<Vec<DatasetState>, StoreError>> + Send;
    fn newest_request_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Stores `request` as the newest request, if `previous` still is. False: another request
    /// came in meanwhile; read again.
    fn open_request(
        &self,
        request: &ApprovalRequest,
        previous: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl AskStore for DynamoStore {
    async fn all_datasets(&self) -> Result<Vec<DatasetState>, StoreError> {
        Ok(self.scan_datasets().await?.0)
    }

    async fn newest_request_id(&self) -> Result<Option<String>, StoreError> {
        self.read_latest().await
    }

    async fn open_request(
        &self,
        request: &ApprovalRequest,
        previous: Option<&str>,
    ) -> Result<bool, StoreError> {
        let put = TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(request_item(request)))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", KEY)
                    .build(),
            )?)
            .build();
        let mut latest = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(LATEST.to_owned())))
            .update_expression("SET #rid = :rid, #created_at = :now")
            .expression_attribute_names("#rid", "request_id")
            .expression_attribute_names("#created_at", "created_at")
            .expression_attribute_values(":rid", s(request.id.clone()))
            .expression_attribute_values(":now", n(request.created_at.secs()));
        latest = match previous {
            Some(prev) => latest
                .condition_expression("#rid = :prev")
                .expression_attribute_values(":prev", s(prev)),
            None => latest.condition_expression("attribute_not_exists(#rid)"),
        };
        let latest = TransactWriteItem::builder()
            .update(build(latest.build())?)
            .build();
        // The request id is new for every ask: an item holding it is this very write (a retry
        // after a lost answer then fails its condition on its own put).
        self.transact(
            "create ask request (TransactWriteItems)",
            vec![put, latest],
            Mine {
                pk: request_key(&request.id),
                attr: "id",
                writer: &request.id,
            },
            &request.id,
        )
        .await
    }
}
