//! What one request to actions came to, as metrics: `Decisions` by choice, `Refused` by reason,
//! `NotifyFailures`, and `Latency`.

use ct_shared::domain::Choice;
use ct_shared::metrics::{Line, Unit};
use ct_shared::slack::signature::SignatureError;

/// Why a request changed nothing. The `Reason` dimension's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No signature, or one that does not match.
    Signature,
    /// A signature whose timestamp is outside Slack's five-minute window (a replay or a slow clock).
    Stale,
    /// Not a POST, not a form, too large, or a payload we cannot read.
    Malformed,
    /// A click on a request we never stored.
    UnknownRequest,
    /// Someone decided first.
    AlreadyDecided,
    /// A newer request replaced the one clicked.
    Superseded,
    /// `APPROVERS` is set and the clicker is not among them.
    NotApprover,
    /// `/ct-trigger seek` while a count started from Slack holds the next one off.
    Cooldown,
    /// A click on a question nobody decided within `REQUEST_TTL`.
    Expired,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Signature => "signature",
            Refusal::Stale => "stale",
            Refusal::Malformed => "malformed",
            Refusal::UnknownRequest => "unknown_request",
            Refusal::AlreadyDecided => "already_decided",
            Refusal::Superseded => "superseded",
            Refusal::NotApprover => "not_approver",
            Refusal::Cooldown => "cooldown",
            Refusal::Expired => "expired",
        }
    }

    /// Every reason, for the README table and the dashboard test.
    pub const ALL: [Refusal; 9] = [
        Refusal::Signature,
        Refusal::Stale,
        Refusal::Malformed,
        Refusal::UnknownRequest,
        Refusal::AlreadyDecided,
        Refusal::Superseded,
        Refusal::NotApprover,
        Refusal::Cooldown,
        Refusal::Expired,
    ];
}

impl From<&SignatureError> for Refusal {
    fn from(e: &SignatureError) -> Self {
        match e {
            SignatureError::OutsideWindow { .. } => Refusal::Stale,
            _ => Refusal::Signature,
        }
    }
}

/// What one request came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub decided: Option<Choice>,
    pub refused: Option<Refusal>,
    /// Slack posts after the decision that failed.
    pub notify_failures: u64,
}

impl Observation {
    pub fn refused(reason: Refusal) -> Self {
        Observation {
            refused: Some(reason),
            ..Default::default()
        }
    }

    /// One line per dimension set: the request's latency and notification failures, then the
    /// decision (by `Choice`) or the refusal (by `Reason`).
    pub fn lines(&self, stack: &str, latency_ms: f64) -> Vec<Line> {
        let mut lines = vec![
            Line::new(stack)
                .metric("Latency", Unit::Milliseconds, latency_ms)
                .count("NotifyFailures", self.notify_failures),
        ];
        if let Some(choice) = self.decided {
            lines.push(
                Line::new(stack)
                    .dimension("Choice", choice.as_str())
                    .count("Decisions", 1),
            );
        }
        if let Some(reason) = self.refused {
            lines.push(
                Line::new(stack)
                    .dimension("Reason", reason.as_str())
                    .count("Refused", 1),
            );
        }
        lines
    }
}
