//! The round's model: whom a post is owed to, what Slack was given, the requests as stored.

use super::Round;
use serde_json::Value;
use std::collections::BTreeMap;

/// What an event was doing when Slack was given something: to whom a post is owed.
#[derive(Debug, Clone)]
pub(super) enum Ctx {
    Seek {
        window: String,
    },
    Click {
        request: String,
        response: String,
        user: String,
    },
    Retry,
    Job {
        request: String,
    },
    Ask {
        key: Option<String>,
    },
    Other,
}

/// What Slack was given (delivered), counted as the invariants need it.
#[derive(Default)]
pub(super) struct Ledger {
    /// Request id: questions with its buttons posted to the channel.
    pub(super) questions: BTreeMap<String, u32>,
    /// Idempotency-Key: questions posted by `/ask` calls with it.
    pub(super) questions_by_key: BTreeMap<String, u32>,
    /// Window key: its message (a question or "No need to train") posted.
    pub(super) window_posts: BTreeMap<String, u32>,
    /// Request id: "Here is Kubeflow URL" posted for it.
    pub(super) notices: BTreeMap<String, u32>,
    /// Request id: "Training started" posted for it.
    pub(super) started: BTreeMap<String, u32>,
    /// A `/send` notice's text: times posted.
    pub(super) sends: BTreeMap<String, u32>,
    /// Request id: the clickers told that their click decided it.
    pub(super) told_recorded: BTreeMap<String, Vec<String>>,
}

/// A request item as the table holds it.
#[derive(Debug, Clone, Default)]
pub(super) struct Req {
    pub(super) id: String,
    pub(super) status: String,
    pub(super) decision_raw: Option<String>,
    pub(super) decision: Value,
    pub(super) snapshot: Value,
    pub(super) launch_state: Option<String>,
    pub(super) launch_until: Option<i64>,
    pub(super) run_id: Option<String>,
    pub(super) notice_posted_at: Option<i64>,
    pub(super) notice_until: Option<i64>,
}

impl Req {
    pub(super) fn approved(&self) -> bool {
        self.status == "approved" && self.decision["choice"] == "train"
    }
    pub(super) fn decided_at(&self) -> i64 {
        self.decision["at"].as_i64().unwrap_or(0)
    }
    pub(super) fn decided_by(&self) -> &str {
        self.decision["by"]["id"].as_str().unwrap_or_default()
    }
}

pub(super) type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

pub(super) fn attr_s(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

pub(super) fn attr_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

pub(super) fn req_from(item: &Item) -> Req {
    let decision_raw = attr_s(item, "decision");
    Req {
        id: attr_s(item, "id").unwrap_or_default(),
        status: attr_s(item, "status").unwrap_or_default(),
        decision: decision_raw
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null),
        decision_raw,
        snapshot: attr_s(item, "snapshot")
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null),
        launch_state: attr_s(item, "launch_state"),
        launch_until: attr_n(item, "launch_until"),
        run_id: attr_s(item, "run_id"),
        notice_posted_at: attr_n(item, "notice_posted_at"),
        notice_until: attr_n(item, "notice_until"),
    }
}

impl Round {
    /// A request the soak heard of (a seek's outcome, an `/ask` answer) before the next scan.
    pub(super) fn heard_of(&mut self, id: &str) {
        self.latest = Some(id.to_owned());
        self.requests.entry(id.to_owned()).or_insert_with(|| Req {
            id: id.to_owned(),
            status: "pending".into(),
            ..Req::default()
        });
    }
}
