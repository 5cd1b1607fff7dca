//! What one notice came to, as metrics: `Notices`, `NoticeMessages` (how many Slack messages
//! the notice was split into) and `SlackFailures` by `Status`.

use ct_shared::metrics::Line;
use ct_shared::slack::SlackError;

/// One notice's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Messages the notice was split into.
    pub messages: u64,
    /// Why Slack did not take it: an HTTP status, `timeout` or `unreachable`; `None` if posted.
    pub failure: Option<String>,
}

/// The `Status` dimension of a Slack failure.
pub fn failure_status(e: &SlackError) -> String {
    match e {
        SlackError::Rejected { status, .. } | SlackError::Unavailable { status, .. } => {
            status.to_string()
        }
        SlackError::RateLimited { .. } => "429".into(),
        SlackError::Timeout { .. } => "timeout".into(),
        SlackError::Unreachable { .. } => "unreachable".into(),
        SlackError::Api { error, .. } => error.clone(),
    }
}

impl Sent {
    pub fn lines(&self, stack: &str) -> Vec<Line> {
        let posted = u64::from(self.failure.is_none());
        let mut lines = vec![
            Line::new(stack)
                .count("Notices", posted)
                .count("NoticeMessages", self.messages),
        ];
        if let Some(status) = &self.failure {
            lines.push(
                Line::new(stack)
                    .dimension("Status", status.as_str())
                    .count("SlackFailures", 1),
            );
        }
        lines
    }
}
