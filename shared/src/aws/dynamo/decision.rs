//! actions' items: an approval request, the decision on it (with its audit record and the
//! status view's `last_decision`), the trained counts it moves, and who owes the channel its
//! notice after Train!:
//!
//! | attribute          | meaning                                                         |
//! |--------------------|-----------------------------------------------------------------|
//! | `decided_by_click` | the click (and its handling) that decided the request          |
//! | `notice_by`        | who owes the channel its Train! notice: the deciding click, then a later press that took it over |
//! | `notice_until`     | until when (epoch seconds) that duty is theirs alone            |
//! | `notice_posted_at` | when the notice was posted                                      |

use super::{
    DatasetState, DynamoStore, Item, KEY, LAST_DECISION, LATEST, Mine, Reader, StoreError, build,
    key, n, request_key, s,
};
use crate::Timestamp;
use crate::domain::{ApprovalRequest, Choice, Decision};
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use std::collections::HashMap;
use std::future::Future;

/// What actions needs from the table.
pub trait DecisionStore: Send + Sync {
    fn request(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ApprovalRequest>, StoreError>> + Send;
    /// The request, and the click that decided it (see `Click::identity`), if one did: read
    /// consistently, so a click can tell its own decision, whose answer was lost, from someone
    /// else's.
    fn request_and_decider(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(ApprovalRequest, Option<String>)>, StoreError>> + Send;
    fn latest_request_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn datasets(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<HashMap<String, DatasetState>, StoreError>> + Send;
    /// Records the decision atomically, if the request is still pending and still the newest.
    /// On Train with `baseline` (the datasets as just read), the trained baseline moves to the
    /// request's snapshot in the same transaction, if it is still what was read; without it
    /// (Kubeflow Pipelines starts the run), it moves only once the run has started
    /// ([`super::LaunchStore::record_started`]). False: something changed; read again.
    ///
    /// `click` identifies this attempt (see `Click::identity`); it is stored with the decision,
    /// so a retry whose first attempt committed unheard is recognised as this click's own
    /// decision (true), not someone else's.
    fn decide(
        &self,
        request: &ApprovalRequest,
        decision: &Decision,
        baseline: Option<&HashMap<String, DatasetState>>,
        click: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The Train! notice of `request_id` was not posted and its owner's time ran out (the
    /// deciding click lost its answers, or Slack failed it): takes the duty for `claimer` until
    /// `until`. False: it was posted, someone holds it, or the request was decided before
    /// notices were recorded (nothing is owed then). A lost answer to this very claim counts as
    /// taken.
    fn claim_notice(
        &self,
        request_id: &str,
        claimer: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Notes that the channel was given the Train! notice.
    fn mark_notice_posted(
        &self,
        request_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How long the click that decides Train! owns its notice alone: its handling answers Slack
/// within 3 s, so once this has passed, a notice not marked posted was lost.
pub const NOTICE_DUTY_SECS: i64 = 10;

/// The request item's attribute naming the click that decided it.
const DECIDED_BY_CLICK: &str = "decided_by_click";
/// Who owes the Train! notice, until when, and when it was posted.
const NOTICE_BY: &str = "notice_by";
const NOTICE_UNTIL: &str = "notice_until";
const NOTICE_POSTED_AT: &str = "notice_posted_at";

pub(super) fn request_from(item: &Item) -> Result<ApprovalRequest, StoreError> {
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
        signal: match r.opt_s("signal") {
            Some(_) => Some(r.json("signal")?),
            None => None,
        },
        posted: match (r.opt_s("slack_channel"), r.opt_s("slack_ts")) {
            (Some(channel), Some(ts)) => Some(crate::domain::Posted {
                channel: channel.to_owned(),
                ts: ts.to_owned(),
            }),
            _ => None,
        },
        expired_at: match r.opt_s("status") {
            Some("expired") => Some(Timestamp::from_secs(r.opt_n("expired_at")?.unwrap_or(0))),
            _ => None,
        },
    })
}

pub(super) fn request_item(req: &ApprovalRequest) -> Item {
    let mut item = key(request_key(&req.id));
    item.insert("kind".into(), s("request"));
    item.insert("id".into(), s(req.id.clone()));
    item.insert("created_at".into(), n(req.created_at.secs()));
    item.insert("window".into(), s(req.window.clone()));
    item.insert("status".into(), s("pending"));
    item.insert("request_kind".into(), s(req.kind().as_str()));
    if let Some(signal) = &req.signal {
        item.insert(
            "signal".into(),
            s(serde_json::to_string(signal).unwrap_or_default()),
        );
    }
    item.insert(
        "snapshot".into(),
        s(serde_json::to_string(&req.snapshot).unwrap_or_default()),
    );
    item
}

impl DecisionStore for DynamoStore {
    async fn request(&self, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
        self.get(request_key(id))
            .await?
            .as_ref()
            .map(request_from)
            .transpose()
    }

    async fn request_and_decider(
        &self,
        id: &str,
    ) -> Result<Option<(ApprovalRequest, Option<String>)>, StoreError> {
        let Some(item) = self.get(request_key(id)).await? else {
            return Ok(None);
        };
        let decider = item
            .get(DECIDED_BY_CLICK)
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(Some((request_from(&item)?, decider)))
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
        baseline: Option<&HashMap<String, DatasetState>>,
        click: &str,
    ) -> Result<bool, StoreError> {
        let decision_json = serde_json::to_string(decision).unwrap_or_default();
        let status = match decision.choice {
            Choice::Train => "approved",
            Choice::Nope => "declined",
        };
        let mut request_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(request_key(&request.id))))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#decision", "decision")
            .expression_attribute_names("#click", DECIDED_BY_CLICK)
            .expression_attribute_values(":click", s(click))
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":decision", s(decision_json.clone()));
        // A question the Web API posted is edited to its outcome; until that is done, a sweep
        // finds it due (an edit that fails is tried again).
        let due = if request.posted.is_some() {
            request_update = request_update
                .expression_attribute_names("#due", "edit_due")
                .expression_attribute_values(":due", s("decided"));
            ", #due = :due"
        } else {
            ""
        };
        request_update = match decision.choice {
            // The deciding click owes the channel its notice: for a while, it alone.
            Choice::Train => request_update
                .update_expression(format!(
                    "SET #status = :status, #decision = :decision, #click = :click, \
                     #notice_by = :click, #notice_until = :notice_until{due}"
                ))
                .expression_attribute_names("#notice_by", NOTICE_BY)
                .expression_attribute_names("#notice_until", NOTICE_UNTIL)
                .expression_attribute_values(
                    ":notice_until",
                    n(decision.at.plus_secs(NOTICE_DUTY_SECS).secs()),
                ),
            Choice::Nope => request_update.update_expression(format!(
                "SET #status = :status, #decision = :decision, #click = :click{due}"
            )),
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(build(request_update.build())?)
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
        if decision.choice == Choice::Train
            && let Some(read) = baseline
        {
            items.extend(super::dataset::baseline_updates(
                &self.table,
                &request.snapshot,
                decision.at,
                read,
            )?);
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
        // The latest approval, apart from the latest decision: a Nope after an approval must not
        // hide which approval is the latest (a Retry on an older one is then refused).
        if decision.choice == Choice::Train {
            let mut approval = key(super::LAST_APPROVAL.to_owned());
            approval.insert("decision".into(), s(decision_json.clone()));
            items.push(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(approval))
                            .build(),
                    )?)
                    .build(),
            );
        }
        let mut last = key(LAST_DECISION.to_owned());
        last.insert("decision".into(), s(decision_json.clone()));
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
        let mine = Mine {
            pk: request_key(&request.id),
            attr: DECIDED_BY_CLICK,
            writer: click,
        };
        let mut trained: Vec<(&String, u64, Option<Timestamp>)> = baseline
            .into_iter()
            .flatten()
            .map(|(k, d)| (k, d.trained, d.baseline.snapshot_at))
            .collect();
        trained.sort();
        let seed = format!("decide {click} {decision_json} {trained:?}");
        self.transact("record decision (TransactWriteItems)", items, mine, &seed)
            .await
    }

    async fn claim_notice(
        &self,
        request_id: &str,
        claimer: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let update = super::Update {
            pk: request_key(request_id),
            expression: "SET #by = :me, #until = :until",
            // `notice_by` exists only on requests decided since notices were recorded: an
            // older approval owes nothing.
            condition: "#status = :approved AND attribute_exists(#by) \
                        AND attribute_not_exists(#posted) AND #until < :now",
            values: vec![
                (":me", s(claimer)),
                (":until", n(until.secs())),
                (":now", n(now.secs())),
                (":approved", s("approved")),
            ],
            names: vec![
                ("#by", NOTICE_BY),
                ("#until", NOTICE_UNTIL),
                ("#posted", NOTICE_POSTED_AT),
                ("#status", "status"),
            ],
        };
        let mine = Mine {
            pk: request_key(request_id),
            attr: NOTICE_BY,
            writer: claimer,
        };
        self.update_as("claim notice (UpdateItem)", update, Some(mine))
            .await
    }

    async fn mark_notice_posted(&self, request_id: &str, now: Timestamp) -> Result<(), StoreError> {
        // Only on an existing request: an update would otherwise create a stray item.
        self.update_if(
            request_key(request_id),
            "SET #posted = :now",
            "attribute_exists(#status)",
            vec![(":now", n(now.secs()))],
            vec![("#posted", NOTICE_POSTED_AT), ("#status", "status")],
        )
        .await
        .map(|_| ())
    }
}
