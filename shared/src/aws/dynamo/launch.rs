//! A training run's launch, kept on its approval request's item, so the request and what became
//! of it are read together:
//!
//! | attribute          | meaning                                                      |
//! |--------------------|--------------------------------------------------------------|
//! | `launch_state`     | `launching`, `started`, `failed`, or `retry` (asked again)   |
//! | `launch_owner`     | the launch job that holds (or held) the launch               |
//! | `launch_until`     | when that job's lease ends (epoch seconds)                   |
//! | `run_id`, `run_version`, `run_state`, `launched_at` | the run, once started   |
//! | `launch_reason`, `launch_attempts` | why it failed, after how many attempts       |
//! | `launch_announced` | the job whose outcome Slack was told about                   |
//!
//! Every change is a conditional update naming its job, and a condition that failed because this
//! very job already wrote counts as success.

/// Attempts at recording a started run while other approvals' runs move the baseline.
const BASELINE_ATTEMPTS: usize = 3;

use super::decision::request_from;
use super::{DynamoStore, Mine, Reader, StoreError, Update, n, request_key, s};
use crate::Timestamp;
use crate::domain::ApprovalRequest;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;

/// Where a request's launch stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LaunchState {
    Launching {
        owner: String,
        /// The invocation (Lambda request id) that took it: two deliveries of one job differ.
        attempt: String,
        until: Timestamp,
    },
    Started {
        owner: String,
        run_id: String,
        pipeline_version_id: String,
        run_state: String,
        at: Timestamp,
    },
    Failed {
        owner: String,
        reason: String,
        attempts: u32,
        at: Timestamp,
    },
    /// Someone pressed Retry after a failure; the next launch job may take it.
    RetryRequested { by: String },
}

/// An approved request and its launch, read together.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub request: ApprovalRequest,
    pub approved: bool,
    pub state: Option<LaunchState>,
    /// The job whose outcome was posted to Slack, if any.
    pub announced: Option<String>,
}

/// What a launch job needs from the table.
pub trait LaunchStore: Send + Sync {
    fn launch(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<Launch>, StoreError>> + Send;
    /// Takes the launch of an approved request for `owner` until `until` (the job's own deadline,
    /// after which it cannot be running): when none was tried, a retry was asked for, or a
    /// launch's lease ran out. Not re-entrant: a second delivery of the same job waits.
    fn take_launch(
        &self,
        request_id: &str,
        owner: &str,
        attempt: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records the run `owner` started (or found), and in the same transaction moves the trained
    /// baseline to the request's snapshot: approved is not trained until its run has started.
    /// True when it is recorded, this time or by an earlier attempt of the same job.
    fn record_started(
        &self,
        request: &ApprovalRequest,
        owner: &str,
        run_id: &str,
        pipeline_version_id: &str,
        run_state: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn record_failed(
        &self,
        request_id: &str,
        owner: &str,
        reason: &str,
        attempts: u32,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// After a crash between recording an outcome and telling Slack: lets the same job take the
    /// announcement again, once the crashed attempt's lease ran out.
    fn take_announcement(
        &self,
        request_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives the lease back early (a failed attempt), so Lambda's retry need not wait it out.
    fn release_launch(
        &self,
        request_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Notes that Slack was told about `owner`'s outcome.
    fn mark_announced(
        &self,
        request_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Retry on an approved request whose launch failed, was never queued, was asked to retry
    /// already, or whose job vanished (its lease ran out): false otherwise (it started, a job is
    /// working on it, or the request is not approved).
    fn request_retry(
        &self,
        request_id: &str,
        by: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A request item with its launch.
pub(super) fn launch_from(item: &super::Item) -> Result<Launch, StoreError> {
    let r = Reader { item };
    Ok(Launch {
        request: request_from(item)?,
        approved: r.opt_s("status") == Some("approved"),
        state: state_from(&r)?,
        announced: r.opt_s("launch_announced").map(str::to_owned),
    })
}

fn state_from(r: &Reader<'_>) -> Result<Option<LaunchState>, StoreError> {
    let owner = || r.opt_s("launch_owner").unwrap_or_default().to_owned();
    let at = |name: &str| -> Result<Timestamp, StoreError> {
        Ok(Timestamp::from_secs(r.opt_n(name)?.unwrap_or(0)))
    };
    Ok(match r.opt_s("launch_state") {
        None => None,
        Some("launching") => Some(LaunchState::Launching {
            owner: owner(),
            attempt: r.opt_s("launch_attempt").unwrap_or_default().to_owned(),
            until: at("launch_until")?,
        }),
        Some("started") => Some(LaunchState::Started {
            owner: owner(),
            run_id: r.str("run_id")?.to_owned(),
            pipeline_version_id: r.opt_s("run_version").unwrap_or_default().to_owned(),
            run_state: r.opt_s("run_state").unwrap_or_default().to_owned(),
            at: at("launched_at")?,
        }),
        Some("failed") => Some(LaunchState::Failed {
            owner: owner(),
            reason: r.opt_s("launch_reason").unwrap_or_default().to_owned(),
            attempts: r.opt_n("launch_attempts")?.unwrap_or(0),
            at: at("launched_at")?,
        }),
        Some("retry") => Some(LaunchState::RetryRequested {
            by: r.opt_s("launch_retry_by").unwrap_or_default().to_owned(),
        }),
        Some(_) => return Err(r.corrupt("launch_state")),
    })
}

impl DynamoStore {
    /// Writes a launch's outcome (`started` or `failed`) if `owner` still holds the launch. The
    /// write records `<owner>:<outcome>` as its writer, so after a lost answer the SDK's retry,
    /// whose condition then fails, is recognised as this job's own write: `true`.
    async fn record_outcome(
        &self,
        request_id: &str,
        owner: &str,
        outcome: &'static str,
        set: &str,
        mut values: Vec<(&'static str, AttributeValue)>,
        mut names: Vec<(&'static str, &'static str)>,
    ) -> Result<bool, StoreError> {
        let writer = format!("{owner}:{outcome}");
        values.extend([
            (":outcome", s(outcome)),
            (":launching", s("launching")),
            (":owner", s(owner)),
            (":writer", s(writer.clone())),
        ]);
        names.extend([
            ("#ls", "launch_state"),
            ("#owner", "launch_owner"),
            ("#writer", "launch_recorded_by"),
        ]);
        let expression = format!("SET #ls = :outcome, #writer = :writer, {set}");
        self.update_as(
            "record launch outcome (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: &expression,
                condition: "#ls = :launching AND #owner = :owner",
                values,
                names,
            },
            Some(Mine {
                pk: request_key(request_id),
                attr: "launch_recorded_by",
                writer: &writer,
            }),
        )
        .await
    }
}

impl LaunchStore for DynamoStore {
    async fn launch(&self, request_id: &str) -> Result<Option<Launch>, StoreError> {
        match self.get(request_key(request_id)).await? {
            Some(item) => launch_from(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn take_launch(
        &self,
        request_id: &str,
        owner: &str,
        attempt: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        // The lease names its invocation: after a lost answer, the item holding this very
        // attempt means the write whose condition failed on the SDK's retry was our own.
        self.update_as(
            "take launch (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: "SET #ls = :launching, #owner = :owner, #attempt = :attempt, \
                             #until = :until REMOVE #announced",
                condition: "#status = :approved AND (attribute_not_exists(#ls) OR #ls = :retry \
                            OR (#ls = :launching AND #until < :now))",
                values: vec![
                    (":launching", s("launching")),
                    (":retry", s("retry")),
                    (":approved", s("approved")),
                    (":owner", s(owner)),
                    (":attempt", s(attempt)),
                    (":until", n(until.secs())),
                    (":now", n(now.secs())),
                ],
                names: vec![
                    ("#ls", "launch_state"),
                    ("#owner", "launch_owner"),
                    ("#attempt", "launch_attempt"),
                    ("#until", "launch_until"),
                    ("#status", "status"),
                    ("#announced", "launch_announced"),
                ],
            },
            Some(Mine {
                pk: request_key(request_id),
                attr: "launch_attempt",
                writer: attempt,
            }),
        )
        .await
    }

    async fn record_started(
        &self,
        request: &ApprovalRequest,
        owner: &str,
        run_id: &str,
        pipeline_version_id: &str,
        run_state: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let writer = format!("{owner}:started");
        let names: Vec<String> = request.snapshot.iter().map(|c| c.name.clone()).collect();
        for _ in 0..BASELINE_ATTEMPTS {
            let read = self.read_datasets(&names).await?;
            let mut outcome = aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(super::key(request_key(&request.id))))
                .update_expression(
                    "SET #ls = :outcome, #writer = :writer, #run = :run, #version = :version, \
                     #rs = :rs, #at = :now REMOVE #reason",
                )
                .condition_expression("#ls = :launching AND #owner = :owner");
            for (k, v) in [
                (":outcome", s("started")),
                (":launching", s("launching")),
                (":owner", s(owner)),
                (":writer", s(writer.clone())),
                (":run", s(run_id)),
                (":version", s(pipeline_version_id)),
                (":rs", s(run_state)),
                (":now", n(now.secs())),
            ] {
                outcome = outcome.expression_attribute_values(k, v);
            }
            for (k, v) in [
                ("#ls", "launch_state"),
                ("#owner", "launch_owner"),
                ("#writer", "launch_recorded_by"),
                ("#run", "run_id"),
                ("#version", "run_version"),
                ("#rs", "run_state"),
                ("#at", "launched_at"),
                ("#reason", "launch_reason"),
            ] {
                outcome = outcome.expression_attribute_names(k, v);
            }
            let mut items = vec![
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .update(super::build(outcome.build())?)
                    .build(),
            ];
            items.extend(super::dataset::baseline_updates(
                &self.table,
                &request.snapshot,
                now,
                &read,
            )?);
            let mine = Mine {
                pk: request_key(&request.id),
                attr: "launch_recorded_by",
                writer: &writer,
            };
            let seed = format!("started {writer} {run_id}");
            if self
                .transact(
                    "record run started (TransactWriteItems)",
                    items,
                    mine,
                    &seed,
                )
                .await?
            {
                return Ok(true);
            }
            // Cancelled: the lease was taken over (the other job reports), or a baseline moved
            // meanwhile (another approval's run started): read again.
            let still_ours = matches!(
                LaunchStore::launch(self, &request.id).await?.and_then(|l| l.state),
                Some(LaunchState::Launching { owner: o, .. }) if o == owner
            );
            if !still_ours {
                return Ok(false);
            }
        }
        Err(StoreError::Dynamo {
            op: "record run started",
            reason: format!(
                "the trained baseline kept moving; gave up after {BASELINE_ATTEMPTS} attempts"
            ),
        })
    }

    async fn record_failed(
        &self,
        request_id: &str,
        owner: &str,
        reason: &str,
        attempts: u32,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.record_outcome(
            request_id,
            owner,
            "failed",
            "#reason = :reason, #attempts = :attempts, #at = :now",
            vec![
                (":reason", s(reason)),
                (":attempts", n(attempts)),
                (":now", n(now.secs())),
            ],
            vec![
                ("#reason", "launch_reason"),
                ("#attempts", "launch_attempts"),
                ("#at", "launched_at"),
            ],
        )
        .await
    }

    async fn take_announcement(
        &self,
        request_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.update_as(
            "take launch announcement (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: "SET #until = :until",
                condition: "#owner = :owner AND #until < :now \
                            AND attribute_not_exists(#announced) \
                            AND (#ls = :started OR #ls = :failed)",
                values: vec![
                    (":owner", s(owner)),
                    (":until", n(until.secs())),
                    (":now", n(now.secs())),
                    (":started", s("started")),
                    (":failed", s("failed")),
                ],
                names: vec![
                    ("#owner", "launch_owner"),
                    ("#until", "launch_until"),
                    ("#announced", "launch_announced"),
                    ("#ls", "launch_state"),
                ],
            },
            None,
        )
        .await
    }

    async fn release_launch(&self, request_id: &str, owner: &str) -> Result<(), StoreError> {
        self.update_as(
            "release launch (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: "SET #until = :zero",
                condition: "#owner = :owner",
                values: vec![(":owner", s(owner)), (":zero", n(0))],
                names: vec![("#owner", "launch_owner"), ("#until", "launch_until")],
            },
            None,
        )
        .await
        .map(|_| ())
    }

    async fn mark_announced(&self, request_id: &str, owner: &str) -> Result<(), StoreError> {
        self.update_as(
            "note launch announced (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: "SET #announced = :owner",
                condition: "#owner = :owner",
                values: vec![(":owner", s(owner))],
                names: vec![
                    ("#announced", "launch_announced"),
                    ("#owner", "launch_owner"),
                ],
            },
            None,
        )
        .await
        .map(|_| ())
    }

    async fn request_retry(
        &self,
        request_id: &str,
        by: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // The write names this press (who, and when), so the SDK's retry after a lost answer
        // is recognised as this press's own write; a later press is not.
        let writer = format!("{by}@{}", now.secs());
        self.update_as(
            "request launch retry (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: "SET #ls = :retry, #by = :by, #writer = :writer",
                condition: "#status = :approved AND (attribute_not_exists(#ls) OR #ls = :failed \
                            OR #ls = :retry OR (#ls = :launching AND #until < :now))",
                values: vec![
                    (":approved", s("approved")),
                    (":retry", s("retry")),
                    (":failed", s("failed")),
                    (":launching", s("launching")),
                    (":by", s(by)),
                    (":writer", s(writer.clone())),
                    (":now", n(now.secs())),
                ],
                names: vec![
                    ("#ls", "launch_state"),
                    ("#by", "launch_retry_by"),
                    ("#writer", "launch_retry_writer"),
                    ("#until", "launch_until"),
                    ("#status", "status"),
                ],
            },
            Some(Mine {
                pk: request_key(request_id),
                attr: "launch_retry_writer",
                writer: &writer,
            }),
        )
        .await
    }
}
