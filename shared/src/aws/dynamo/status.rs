//! The status view: every dataset's counts, the newest request, the last decision, and the run
//! the latest approval launched.

use super::launch::{LaunchState, LaunchStore};
use super::{
    DatasetState, DecisionStore, DynamoStore, LAST_DECISION, Reader, StoreError, dataset_from,
    dynamo_err, s,
};
use crate::domain::{ApprovalRequest, Choice, Decision};
use std::future::Future;

/// What the status view reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub datasets: Vec<DatasetState>,
    pub latest_request: Option<ApprovalRequest>,
    pub last_decision: Option<Decision>,
    /// The launch of the latest approved request, when the last decision was Train!.
    pub latest_run: Option<RunRecord>,
}

/// An approved request's launch, for the status view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub request_id: String,
    /// `None`: approved, but no launch recorded (no KFP configured, or not yet).
    pub launch: Option<LaunchState>,
}

pub trait StatusStore: Send + Sync {
    fn status(&self) -> impl Future<Output = Result<Status, StoreError>> + Send;
}

impl DynamoStore {
    /// Every dataset item, in name order.
    pub(super) async fn scan_datasets(&self) -> Result<Vec<DatasetState>, StoreError> {
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
        Ok(datasets)
    }
}

impl StatusStore for DynamoStore {
    async fn status(&self) -> Result<Status, StoreError> {
        let datasets = self.scan_datasets().await?;
        let latest_request = match self.read_latest().await? {
            Some(id) => DecisionStore::request(self, &id).await?,
            None => None,
        };
        let last_decision: Option<Decision> = match self.get(LAST_DECISION.to_owned()).await? {
            Some(item) => Some(Reader { item: &item }.json("decision")?),
            None => None,
        };
        let latest_run = match &last_decision {
            Some(d) if d.choice == Choice::Train => Some(RunRecord {
                request_id: d.request_id.clone(),
                launch: LaunchStore::launch(self, &d.request_id)
                    .await?
                    .and_then(|l| l.state),
            }),
            _ => None,
        };
        Ok(Status {
            datasets,
            latest_request,
            last_decision,
            latest_run,
        })
    }
}
