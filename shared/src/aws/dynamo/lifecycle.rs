//! A question's life after it is posted, on its request's item:
//!
//! | attribute                     | meaning                                                    |
//! |-------------------------------|------------------------------------------------------------|
//! | `slack_channel`, `slack_ts`   | where the Web API posted the question                      |
//! | `status` `expired`, `expired_at`, `expired_by` | nobody decided it within `REQUEST_TTL`; who recorded that |
//! | `reminded_at`, `reminded_by`, `reminder_posted_at` | its one reminder: taken by whom, and posted |
//! | `edit_due`, `superseded_at`   | the question's message still has to be edited to `decided`, `expired` or `superseded` (by a question of that time) |
//!
//! Each state change is a conditional write naming its writer, so an expiry racing a click has
//! one winner, a reminder is sent once under retries, and an edit that failed is tried again by
//! a later sweep (a page of the table a sweep, from where the last one stopped).

use super::launch::Launch;
use super::{
    DynamoStore, Item, Mine, Reader, StoreError, Update, dynamo_err, key, n, request_key, s,
};
use crate::Timestamp;
use crate::domain::Posted;
use aws_sdk_dynamodb::types::AttributeValue;
use std::future::Future;

/// What a question's message still has to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Decided,
    Expired,
    /// Superseded by the question asked at this time.
    Superseded {
        by_at: Timestamp,
    },
}

impl Edit {
    pub fn as_str(self) -> &'static str {
        match self {
            Edit::Decided => "decided",
            Edit::Expired => "expired",
            Edit::Superseded { .. } => "superseded",
        }
    }
}

/// A question whose message still has to be edited, with its launch (an approval's message
/// names its run).
#[derive(Debug, Clone, PartialEq)]
pub struct EditDue {
    pub launch: Launch,
    pub edit: Edit,
}

/// The sweep's place in the table between runs.
const SWEEP_CURSOR: &str = "sweep_cursor";
/// Items a sweep reads for due edits at most (one Scan page).
pub const SWEEP_PAGE: i32 = 500;

/// What the lifecycle needs from the table.
pub trait LifecycleStore: Send + Sync {
    /// A request, as stored (its question's state).
    fn question(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<crate::domain::ApprovalRequest>, StoreError>> + Send;
    /// Keeps where the Web API posted a request's question.
    fn record_message(
        &self,
        request_id: &str,
        posted: &Posted,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records that a pending request expired, for `writer` (a sweep, or a click that found it
    /// overdue): true when this write made it so (or an earlier attempt of the same writer),
    /// false when it was decided or expired first. `edit`: its message has to say so.
    fn expire(
        &self,
        request_id: &str,
        writer: &str,
        now: Timestamp,
        edit: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes a pending request's one reminder for `writer`: false when taken already. Re-entrant
    /// for the same writer until [`LifecycleStore::mark_reminded`] (a retry of the same sweep
    /// whose answer was lost posts the reminder it took; a reminder posted is never taken
    /// again).
    fn claim_reminder(
        &self,
        request_id: &str,
        writer: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Notes that the reminder was posted (or may have been: Slack timed out).
    fn mark_reminded(
        &self,
        request_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives a reminder that could not be posted back, so the next sweep tries again.
    fn release_reminder(
        &self,
        request_id: &str,
        writer: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Notes that a question's message has to be edited to `edit`.
    fn edit_due(
        &self,
        request_id: &str,
        edit: Edit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Notes that the edit to `edit` was made (unless another became due meanwhile).
    fn edit_done(
        &self,
        request_id: &str,
        edit: Edit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// One page of the questions whose messages still have to be edited, from where the last
    /// call stopped.
    fn edits_due(&self) -> impl Future<Output = Result<Vec<EditDue>, StoreError>> + Send;
}

fn edit_from(r: &Reader<'_>) -> Result<Option<Edit>, StoreError> {
    Ok(match r.opt_s("edit_due") {
        None => None,
        Some("decided") => Some(Edit::Decided),
        Some("expired") => Some(Edit::Expired),
        Some("superseded") => Some(Edit::Superseded {
            by_at: Timestamp::from_secs(r.opt_n("superseded_at")?.unwrap_or(0)),
        }),
        Some(_) => return Err(r.corrupt("edit_due")),
    })
}

impl LifecycleStore for DynamoStore {
    async fn question(
        &self,
        id: &str,
    ) -> Result<Option<crate::domain::ApprovalRequest>, StoreError> {
        super::DecisionStore::request(self, id).await
    }

    async fn record_message(&self, request_id: &str, posted: &Posted) -> Result<(), StoreError> {
        self.update_if(
            request_key(request_id),
            "SET #channel = :channel, #ts = :ts",
            "attribute_exists(#status)",
            vec![
                (":channel", s(posted.channel.clone())),
                (":ts", s(posted.ts.clone())),
            ],
            vec![
                ("#channel", "slack_channel"),
                ("#ts", "slack_ts"),
                ("#status", "status"),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn expire(
        &self,
        request_id: &str,
        writer: &str,
        now: Timestamp,
        edit: bool,
    ) -> Result<bool, StoreError> {
        let expression = if edit {
            "SET #status = :expired, #at = :now, #by = :writer, #due = :due"
        } else {
            "SET #status = :expired, #at = :now, #by = :writer"
        };
        let mut values = vec![
            (":expired", s("expired")),
            (":pending", s("pending")),
            (":now", n(now.secs())),
            (":writer", s(writer)),
        ];
        let mut names = vec![
            ("#status", "status"),
            ("#at", "expired_at"),
            ("#by", "expired_by"),
        ];
        if edit {
            values.push((":due", s(Edit::Expired.as_str())));
            names.push(("#due", "edit_due"));
        }
        self.update_as(
            "expire request (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression,
                condition: "#status = :pending",
                values,
                names,
            },
            Some(Mine {
                pk: request_key(request_id),
                attr: "expired_by",
                writer,
            }),
        )
        .await
    }

    async fn claim_reminder(
        &self,
        request_id: &str,
        writer: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // Re-entrant by its condition (no read-back: that could not tell "taken by me and
        // posted" from "taken by me").
        self.update_as(
            "take reminder (UpdateItem)",
            Update {
                pk: request_key(request_id),
                expression: "SET #at = :now, #by = :writer",
                condition: "#status = :pending AND (attribute_not_exists(#at) \
                            OR (#by = :writer AND attribute_not_exists(#posted)))",
                values: vec![
                    (":now", n(now.secs())),
                    (":writer", s(writer)),
                    (":pending", s("pending")),
                ],
                names: vec![
                    ("#at", "reminded_at"),
                    ("#by", "reminded_by"),
                    ("#posted", "reminder_posted_at"),
                    ("#status", "status"),
                ],
            },
            None,
        )
        .await
    }

    async fn mark_reminded(&self, request_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.update_if(
            request_key(request_id),
            "SET #posted = :now",
            "attribute_exists(#at)",
            vec![(":now", n(now.secs()))],
            vec![("#posted", "reminder_posted_at"), ("#at", "reminded_at")],
        )
        .await
        .map(|_| ())
    }

    async fn release_reminder(&self, request_id: &str, writer: &str) -> Result<(), StoreError> {
        self.update_if(
            request_key(request_id),
            "REMOVE #at, #by",
            "#by = :writer",
            vec![(":writer", s(writer))],
            vec![("#at", "reminded_at"), ("#by", "reminded_by")],
        )
        .await
        .map(|_| ())
    }

    async fn edit_due(&self, request_id: &str, edit: Edit) -> Result<(), StoreError> {
        let (expression, mut values, mut names) = (
            "SET #due = :due",
            vec![(":due", s(edit.as_str()))],
            vec![("#due", "edit_due"), ("#status", "status")],
        );
        let expression = match edit {
            Edit::Superseded { by_at } => {
                values.push((":by_at", n(by_at.secs())));
                names.push(("#by_at", "superseded_at"));
                "SET #due = :due, #by_at = :by_at"
            }
            _ => expression,
        };
        self.update_if(
            request_key(request_id),
            expression,
            "attribute_exists(#status)",
            values,
            names,
        )
        .await
        .map(|_| ())
    }

    async fn edit_done(&self, request_id: &str, edit: Edit) -> Result<(), StoreError> {
        self.update_if(
            request_key(request_id),
            "REMOVE #due",
            "#due = :due",
            vec![(":due", s(edit.as_str()))],
            vec![("#due", "edit_due")],
        )
        .await
        .map(|_| ())
    }

    async fn edits_due(&self) -> Result<Vec<EditDue>, StoreError> {
        let start = self
            .get(SWEEP_CURSOR.to_owned())
            .await?
            .and_then(|i| i.get("after").and_then(|v| v.as_s().ok()).cloned());
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(SWEEP_PAGE)
            .filter_expression("#kind = :request AND attribute_exists(#due)")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#due", "edit_due")
            .expression_attribute_values(":request", s("request"));
        if let Some(after) = &start {
            scan = scan.exclusive_start_key(super::KEY, AttributeValue::S(after.clone()));
        }
        let page = scan.send().await.map_err(dynamo_err("Scan"))?;
        let next = page
            .last_evaluated_key()
            .and_then(|k| k.get(super::KEY))
            .and_then(|v| v.as_s().ok())
            .cloned();
        let mut cursor: Item = key(SWEEP_CURSOR.to_owned());
        cursor.insert("kind".into(), s("sweep"));
        if let Some(after) = next {
            cursor.insert("after".into(), s(after));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(cursor))
            .send()
            .await
            .map_err(dynamo_err("PutItem"))?;
        let mut due = Vec::new();
        for item in page.items() {
            let r = Reader { item };
            if let Some(edit) = edit_from(&r)? {
                due.push(EditDue {
                    launch: super::launch::launch_from(item)?,
                    edit,
                });
            }
        }
        Ok(due)
    }
}
