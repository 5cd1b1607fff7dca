//! `/ct-trigger`, Slack's slash command, posted to the same URL as clicks and verified the same
//! way. Slack sends a form with `command`, `text`, `user_id`, `response_url` and no `payload`.
//! Every answer is ephemeral and goes back in the HTTP response, well within Slack's 3 s.

use crate::Actions;
use ct_shared::aws::dynamo::{DecisionStore, StatusStore};
use ct_shared::slack::SlackPoster;
use serde_json::{Value, json};

pub const USAGE: &str = "Usage: `/ct-trigger status` (counts against thresholds, the open \
request and the last decision) or `/ct-trigger help`.";

/// A slash command's form, when the body is one (it has `command` and no `payload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub text: String,
    pub user_id: String,
}

pub fn parse(body: &[u8]) -> Option<Command> {
    let mut command = None;
    let mut text = String::new();
    let mut user_id = String::new();
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "payload" => return None,
            "command" => command = Some(v.into_owned()),
            "text" => text = v.into_owned(),
            "user_id" => user_id = v.into_owned(),
            _ => {}
        }
    }
    command.map(|_| Command { text, user_id })
}

fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "text": text})
}

impl<S: DecisionStore + StatusStore, P: SlackPoster, Q> Actions<S, P, Q> {
    pub async fn command(&self, cmd: &Command) -> Value {
        let word = cmd.text.split_whitespace().next().unwrap_or("help");
        tracing::info!(user_id = %cmd.user_id, command = word, "slash command");
        match word.to_ascii_lowercase().as_str() {
            "status" => match self.store.status().await {
                Ok(s) => ephemeral(&status_text(&s)),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the state table");
                    ephemeral("Could not read the state table; try again.")
                }
            },
            _ => ephemeral(USAGE),
        }
    }
}

fn status_text(s: &ct_shared::aws::dynamo::Status) -> String {
    let mut lines = Vec::new();
    if s.datasets.is_empty() {
        lines.push("No dataset counted yet.".to_owned());
    }
    for d in &s.datasets {
        let threshold = d.threshold.map_or("no threshold recorded".to_owned(), |t| {
            format!("threshold {t}")
        });
        lines.push(format!(
            "*{}*: {} new ({} seen, {} trained), {threshold}",
            ct_shared::slack::escape(&d.name),
            d.seeked.saturating_sub(d.trained),
            d.seeked,
            d.trained
        ));
    }
    match &s.latest_request {
        None => lines.push("No approval request yet.".to_owned()),
        Some(r) => {
            let state = match &r.decision {
                Some(d) => format!("{} by <@{}>", d.choice.verb().to_lowercase(), d.by.id),
                None => "open".to_owned(),
            };
            let why = r.signal.as_ref().map_or(String::new(), |q| {
                format!(": {}", ct_shared::slack::escape(&q.reason))
            });
            lines.push(format!(
                "Latest request ({} request{why}): {state}",
                r.kind().as_str()
            ));
        }
    }
    if let Some(d) = &s.last_decision {
        lines.push(format!(
            "Last decision: {} by <@{}> at {}",
            d.choice.verb().to_lowercase(),
            d.by.id,
            d.at.rfc3339()
        ));
    }
    lines.join("\n")
}
