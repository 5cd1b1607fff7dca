//! The status view: every dataset's counts, the newest request, the last decision, and the run
//! the latest approval launched.

use super::history::history_from;
use super::launch::{LaunchState, LaunchStore};
use super::{
    DatasetState, DecisionStore, DynamoStore, LAST_APPROVAL, LAST_DECISION, Reader, StoreError,
    dataset_from, dynamo_err, s,
};
use super::{HISTORY_KEEP, HistoryEntry};
use crate::domain::{Approval, ApprovalRequest, Choice, Decision, Training};
use std::collections::BTreeMap;
use std::future::Future;

/// What the status view reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    pub datasets: Vec<DatasetState>,
    /// The latest approval and where its training stands.
    pub latest_approval: Option<Approval>,
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

/// The latest approval and its training, as every view shows it.
pub trait ApprovalStore: Send + Sync {
    fn latest_approval(&self) -> impl Future<Output = Result<Option<Approval>, StoreError>> + Send;
}

impl ApprovalStore for DynamoStore {
    async fn latest_approval(&self) -> Result<Option<Approval>, StoreError> {
        let item = match self.get(LAST_APPROVAL.to_owned()).await? {
            Some(item) => item,
            None => match self.get(LAST_DECISION.to_owned()).await? {
                Some(item) => item,
                None => return Ok(None),
            },
        };
        let decision: Decision = Reader { item: &item }.json("decision")?;
        if decision.choice != Choice::Train {
            return Ok(None);
        }
        let Some(launch) = LaunchStore::launch(self, &decision.request_id).await? else {
            return Ok(None);
        };
        let names: Vec<String> = launch
            .request
            .snapshot
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let datasets = self.read_datasets(&names).await?;
        Ok(Some(approval(
            launch.request,
            decision,
            launch.state.as_ref(),
            &datasets,
        )))
    }
}

/// Where an approval's training stands: its launch's state, or, with none recorded, whether the
/// baseline reached its snapshot (the click moved it: no Kubeflow Pipelines) or not (its launch
/// job has not recorded anything yet).
pub fn approval(
    request: ApprovalRequest,
    decision: Decision,
    launch: Option<&LaunchState>,
    datasets: &std::collections::HashMap<String, DatasetState>,
) -> Approval {
    let training = match launch {
        Some(LaunchState::Started { run_id, .. }) => Training::Started {
            run_id: Some(run_id.clone()),
        },
        Some(LaunchState::Failed { reason, .. }) => Training::Failed {
            reason: reason.clone(),
        },
        Some(LaunchState::Launching { .. } | LaunchState::RetryRequested { .. }) => {
            Training::Starting
        }
        None => {
            let reached = request.snapshot.iter().all(|c| {
                datasets.get(&c.name).is_some_and(|d| match c.counted_at {
                    Some(at) => d.baseline.snapshot_at.is_some_and(|b| b >= at),
                    None => d.trained >= c.seeked,
                })
            });
            if reached {
                Training::Started { run_id: None }
            } else {
                Training::Starting
            }
        }
    };
    Approval {
        request_id: request.id.clone(),
        asked_at: request.created_at,
        decision,
        training,
    }
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
        // The latest approval's run, though a Nope came after it.
        let latest_approval = ApprovalStore::latest_approval(self).await?;
        let latest_run = match &latest_approval {
            Some(a) => Some(RunRecord {
                request_id: a.request_id.clone(),
                launch: LaunchStore::launch(self, &a.request_id)
                    .await?
                    .and_then(|l| l.state),
            }),
            None => None,
        };
        Ok(Status {
            datasets,
            latest_approval,
            latest_request,
            last_decision,
            latest_run,
            history,
        })
    }
}
