//! The domain: dataset counts, the rule that decides whether training is worth asking for,
//! and approval requests with their decisions.

mod count;

pub use count::{
    Baseline, Count, Judged, Threshold, Verdict, bytes_text, measure, snapshot_time, verdict,
};

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// The button a person clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Train,
    Nope,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Train => "train",
            Choice::Nope => "nope",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "train" => Some(Choice::Train),
            "nope" => Some(Choice::Nope),
            _ => None,
        }
    }

    /// The past tense shown in Slack and the status view.
    pub fn verb(self) -> &'static str {
        match self {
            Choice::Train => "Approved",
            Choice::Nope => "Declined",
        }
    }
}

/// Who clicked: Slack's user id and the name Slack sent with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub name: String,
}

/// A decision as recorded: which button, by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub request_id: String,
    pub choice: Choice,
    pub by: Person,
    pub at: Timestamp,
}

/// Why a request was made: new data (seek) or falling model quality (`POST /ask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Data,
    Quality,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Data => "data",
            RequestKind::Quality => "quality",
        }
    }
}

/// What an evaluation step or a monitor said when it asked: a reason, and optionally the metric
/// that fell, its value, the threshold it fell below and who measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualitySignal {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An approval request: what one message offered, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub created_at: Timestamp,
    /// The schedule window (or manual invocation, or `ask#<id>`) that created it.
    pub window: String,
    pub snapshot: Vec<Count>,
    pub decision: Option<Decision>,
    /// Set on a quality request; a data request (and any request stored before kinds) has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<QualitySignal>,
    /// Where its question is, when the Web API posted it (for edits and its thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted: Option<Posted>,
    /// When it expired, undecided (`REQUEST_TTL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<Timestamp>,
}

/// A message the Web API posted: where it is, for edits and thread replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// What a click on a request may do, given the request and the newest request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Pending and the newest: the click decides it.
    Open,
    /// Someone decided it already.
    Decided(Decision),
    /// A newer request replaced it before anyone decided.
    Superseded { newest: String },
    /// Nobody decided it within `REQUEST_TTL`.
    Expired { at: Timestamp },
}

impl ApprovalRequest {
    pub fn kind(&self) -> RequestKind {
        if self.signal.is_some() {
            RequestKind::Quality
        } else {
            RequestKind::Data
        }
    }

    pub fn standing(&self, newest_id: Option<&str>) -> Standing {
        if let Some(d) = &self.decision {
            return Standing::Decided(d.clone());
        }
        if let Some(at) = self.expired_at {
            return Standing::Expired { at };
        }
        match newest_id {
            Some(newest) if newest != self.id => Standing::Superseded {
                newest: newest.to_owned(),
            },
            _ => Standing::Open,
        }
    }
}

/// Where the latest approval's training stands. Approved is not trained: with Kubeflow
/// Pipelines, the baseline moves once the approval's run has started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Training {
    /// Its run started; `run_id` is `None` without Kubeflow Pipelines, where the click itself
    /// is the training's baseline (a person starts the run).
    Started { run_id: Option<String> },
    /// Approved; the run is being started (or was never queued, and a press will queue it).
    Starting,
    /// Its run could not be started, for this reason: the baseline stayed where it was.
    Failed { reason: String },
}

/// The latest approval, and what became of its training.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub request_id: String,
    /// When its question was asked, and its snapshot.
    pub asked_at: Timestamp,
    pub decision: Decision,
    pub training: Training,
}

impl Approval {
    /// `started`, `failed: <reason>` or `starting`.
    pub fn state(&self) -> String {
        match &self.training {
            Training::Started { .. } => "started".into(),
            Training::Starting => "starting".into(),
            Training::Failed { reason } => format!("failed: {reason}"),
        }
    }
}

/// Who may decide (`APPROVERS`): Slack user IDs. Empty means anyone in the channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approvers(Vec<String>);

impl Approvers {
    /// Parses `U123,W456`. A user-group ID (`S...`) is refused: expanding one needs Slack's
    /// `usergroups.users.list`, i.e. a bot token this app does not hold.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ids = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let well_formed = raw.len() >= 2
                && raw.len() <= 32
                && raw
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if raw.starts_with('S') && well_formed {
                return Err(format!(
                    "{raw} looks like a user group; list user IDs (U... or W...) instead: \
                     reading a group's members needs a Slack bot token this app does not have"
                ));
            }
            if !well_formed || !(raw.starts_with('U') || raw.starts_with('W')) {
                return Err(format!(
                    "{raw:?} is not a Slack user ID (U... or W..., letters and digits)"
                ));
            }
            if !ids.iter().any(|i| i == raw) {
                ids.push(raw.to_owned());
            }
        }
        Ok(Self(ids))
    }

    /// Whether `user_id` may decide: anyone when none are configured.
    pub fn allows(&self, user_id: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|i| i == user_id)
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// "<@U1>, <@U2>": Slack renders each as the person's name.
    pub fn mentions(&self) -> String {
        self.0
            .iter()
            .map(|i| format!("<@{i}>"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A question asked on a quality signal (`POST /ask`, a CloudWatch alarm) over the datasets'
/// latest counts: the same request, whoever asks. `window` names what asked (`ask#<id>` when
/// `None`).
pub fn quality_request(
    signal: QualitySignal,
    snapshot: Vec<Count>,
    now: Timestamp,
    window: Option<String>,
) -> ApprovalRequest {
    let id = new_request_id();
    ApprovalRequest {
        window: window.unwrap_or_else(|| format!("ask#{id}")),
        id,
        created_at: now,
        snapshot,
        decision: None,
        signal: Some(signal),
        posted: None,
        expired_at: None,
    }
}

/// A fresh, unguessable request id.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_are_user_ids_or_anyone() {
        let a = Approvers::parse(" U0ANN, W0BOB ,U0ANN").unwrap();
        assert!(a.allows("U0ANN") && a.allows("W0BOB"));
        assert!(!a.allows("U0EVE"));
        assert_eq!(a.mentions(), "<@U0ANN>, <@W0BOB>");
        let open = Approvers::parse("").unwrap();
        assert!(open.is_open() && open.allows("U0EVE"));
        assert!(
            Approvers::parse("S0GROUP")
                .unwrap_err()
                .contains("user group")
        );
        for bad in ["u0ann", "U0 ANN", "@ann", "C0CHAN"] {
            assert!(Approvers::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn standing_of_a_request() {
        let mut r = ApprovalRequest {
            id: "a".into(),
            created_at: Timestamp::from_secs(0),
            window: "w".into(),
            snapshot: vec![],
            decision: None,
            signal: None,
            posted: None,
            expired_at: None,
        };
        assert_eq!(r.standing(Some("a")), Standing::Open);
        assert_eq!(
            r.standing(Some("b")),
            Standing::Superseded { newest: "b".into() }
        );
        let d = Decision {
            request_id: "a".into(),
            choice: Choice::Nope,
            by: Person {
                id: "U1".into(),
                name: "ann".into(),
            },
            at: Timestamp::from_secs(5),
        };
        r.decision = Some(d.clone());
        assert_eq!(r.standing(Some("b")), Standing::Decided(d));
    }
}
