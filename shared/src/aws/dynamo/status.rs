//! The status view: every dataset's counts, the newest request, the last decision, and the run
//! the latest approval launched.

use super::history::history_from;
use super::launch::{LaunchState, LaunchStore};
use super::{
    DatasetState, DecisionStore, DynamoStore, LAST_DECISION, Reader, StoreError, dataset_from,
    dynamo_err, s,
};
use super::{HISTORY_KEEP, HistoryEntry};
use crate::domain::{ApprovalRequest, Choice, Decision};
use std::collections::BTreeMap;
use std::future::Future;

/// What the status view reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub datasets: Vec<DatasetState>,
    pub latest_request: Option<ApprovalRequest>,
    pub last_decision: Option<Decision>,
    pub latest_run: Option<RunRecord>,
    /// Per dataset, its last [`HISTORY_KEEP`] windows, newest first.
    pub history: BTreeMap<String, Vec<HistoryEntry>>,
}

/// An approved request's launch, for the status view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub request_id: String,
    pub launch: Option<LaunchState>,
}

pub trait StatusStore: Send + Sync {
    fn status(&self) -> impl Future<Output = Result<Status, StoreError>> + Send;
}

impl DynamoStore {
    /// Every dataset item, in name order.
    /// Every dataset item, and each dataset's last windows (newest first).
    pub(super) async fn scan_datasets(
        &self,
    ) -> Result<(Vec<DatasetState>, BTreeMap<String, Vec<HistoryEntry>>), StoreError> {
        let mut datasets = Vec::new();
        let mut history: BTreeMap<String, Vec<HistoryEntry>> = BTreeMap::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("#kind IN (:dataset, :history)")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":dataset", s("dataset"))
            .expression_attribute_values(":history", s("history"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(dynamo_err("Scan"))?;
            for item in page.items() {
                if item
                    .get("kind")
                    .and_then(|k| k.as_s().ok())
                    .map(String::as_str)
                    == Some("history")
                {
                    let (name, entry) = history_from(item)?;
                    history.entry(name).or_default().push(entry);
                } else {
                    datasets.push(dataset_from(item)?);
                }
            }
        }
        for entries in history.values_mut() {
            entries.sort_by_key(|e| std::cmp::Reverse(e.at));
            entries.truncate(HISTORY_KEEP);
        }
        datasets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((datasets, history))
    }
}

impl StatusStore for DynamoStore {
    async fn status(&self) -> Result<Status, StoreError> {
        let (datasets, history) = self.scan_datasets().await?;
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
            history,
        })
    }
}
