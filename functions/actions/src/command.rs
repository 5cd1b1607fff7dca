//! `/ct-trigger`, Slack's slash command, posted to the same URL as clicks and verified the same
//! way. Slack sends a form with `command`, `text`, `user_id`, `response_url` and no `payload`.
//! Every answer is ephemeral and goes back in the HTTP response, well within Slack's 3 s.

use crate::Actions;
use crate::metrics::{Observation, Refusal};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DecisionStore, ManualSeekStore, StatusStore};
use ct_shared::aws::invoke::AsyncInvoker;
use ct_shared::domain::bytes_text;
use ct_shared::schedule::Next;
use ct_shared::slack::{SlackPoster, messages};
use serde_json::{Value, json};
use std::time::Duration;

pub const USAGE: &str = "Usage: `/ct-trigger status` (counts against thresholds, the open \
request, the last decision and the next scheduled seek), `/ct-trigger seek` (count now; the \
result is posted here) or `/ct-trigger help`.";

/// The most reading the status may take, so the answer still reaches Slack within its 3 s.
const QUEUE_BUDGET: Duration = Duration::from_secs(2);
/// `/ct-trigger seek`: the most each write of its cooldown may take (the start, and giving it
/// back when the count could not be queued), and queueing the count: 2.8 s in all.
const STORE_BUDGET: Duration = Duration::from_millis(500);
const SEEK_QUEUE_BUDGET: Duration = Duration::from_millis(1800);

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

impl<S: DecisionStore + StatusStore + ManualSeekStore, P: SlackPoster, Q: AsyncInvoker>
    Actions<S, P, Q>
{
    /// Answers one slash command at time `now`, and says what it came to (for the metrics).
    pub async fn command(&self, cmd: &Command, now: Timestamp) -> (Value, Observation) {
        let word = cmd.text.split_whitespace().next().unwrap_or("help");
        tracing::info!(user_id = %cmd.user_id, command = word, "slash command");
        let answer = match word.to_ascii_lowercase().as_str() {
            "status" => match tokio::time::timeout(QUEUE_BUDGET, self.store.status()).await {
                Ok(Ok(s)) => {
                    let mut text = status_text(&s);
                    if let Some(line) = self.next_seek_line(now) {
                        text.push('\n');
                        text.push_str(&line);
                    }
                    text
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "could not read the state table");
                    "Could not read the state table; try again.".to_owned()
                }
                Err(_) => {
                    tracing::error!("the state table did not answer within {QUEUE_BUDGET:?}");
                    "Could not read the state table in time; try again.".to_owned()
                }
            },
            "seek" => return self.seek_now(cmd, now).await,
            _ => USAGE.to_owned(),
        };
        (ephemeral(&answer), Observation::default())
    }

    /// `/ct-trigger seek`: queues one count of every dataset (seek invoked asynchronously with
    /// `{}`, a manual run, which posts its result like the weekly one) and answers at once.
    async fn seek_now(&self, cmd: &Command, now: Timestamp) -> (Value, Observation) {
        if !self.config.approvers.allows(&cmd.user_id) {
            tracing::warn!(user_id = %cmd.user_id, reason = "not_approver", "refused a slash command");
            let text = format!(
                "Only {} can start a count.",
                self.config.approvers.mentions()
            );
            return (ephemeral(&text), Observation::refused(Refusal::NotApprover));
        }
        let Some(seeks) = &self.seeks else {
            return (
                ephemeral("Counting from Slack is not set up here: SEEK_FUNCTION_NAME is not set."),
                Observation::default(),
            );
        };
        let could_not = || ephemeral("Could not start a count; try again in a minute.");
        // This handling, so that a start whose answer was lost is recognised as its own.
        let handling = ct_shared::domain::new_request_id();
        let cooldown = self.config.seek_cooldown_secs;
        if cooldown > 0 {
            let start =
                self.store
                    .start_manual_seek(&cmd.user_id, &handling, now, now.plus_secs(cooldown));
            match crate::within(STORE_BUDGET, start).await {
                Ok(None) => {}
                Ok(Some(held)) => {
                    tracing::info!(user_id = %cmd.user_id, started_by = %held.user, "a count started from Slack holds this one off");
                    let text = format!(
                        "<@{}> started a count at {}; its result will be posted here. Another \
                         can start at {}.",
                        ct_shared::slack::escape(&held.user),
                        messages::slack_date(held.at),
                        messages::slack_date(held.until)
                    );
                    return (ephemeral(&text), Observation::refused(Refusal::Cooldown));
                }
                Err(e) => {
                    tracing::error!(user_id = %cmd.user_id, error = %e, "could not record the count's start");
                    return (could_not(), Observation::default());
                }
            }
        }
        match crate::within(SEEK_QUEUE_BUDGET, seeks.invoke_async(&json!({}))).await {
            Ok(()) => {
                tracing::info!(user_id = %cmd.user_id, "queued a count");
                (
                    ephemeral("Counting now; the result will be posted here."),
                    Observation::default(),
                )
            }
            Err(e) => {
                tracing::error!(user_id = %cmd.user_id, error = %e, "could not queue a count");
                // Nothing was started: the next try need not wait out the cooldown.
                if cooldown > 0 {
                    let cancel = self.store.cancel_manual_seek(&handling);
                    if let Err(e) = crate::within(STORE_BUDGET, cancel).await {
                        tracing::warn!(error = %e, "could not give back the count's start; the next waits out the cooldown");
                    }
                }
                (could_not(), Observation::default())
            }
        }
    }

    /// When the next scheduled seek runs, in each reader's own time zone (Slack's date
    /// formatting), with the expression it comes from.
    fn next_seek_line(&self, now: Timestamp) -> Option<String> {
        let schedule = self.config.schedule.as_ref()?;
        // In code style: a cron expression's `*`s would otherwise read as bold.
        let how = format!("`{}` in {}", schedule.expression(), schedule.zone());
        Some(match schedule.next_after(now) {
            Next::At(t) => format!(
                "Next scheduled seek: <!date^{}^{{date_short_pretty}} at {{time}}|{}> ({how})",
                t.secs(),
                t.rfc3339()
            ),
            Next::Never => format!("No scheduled seek is left ({how})."),
            Next::Unknown => format!("Scheduled seeks: {how}."),
        })
    }
}

fn status_text(s: &ct_shared::aws::dynamo::Status) -> String {
    let mut lines = Vec::new();
    if s.datasets.is_empty() {
        lines.push("No dataset counted yet.".to_owned());
    }
    for d in &s.datasets {
        let threshold = match d.threshold {
            None => "no threshold recorded".to_owned(),
            Some(t) => match t.objects() {
                Some(n) => format!("threshold {n}"),
                None => format!("threshold {t}"),
            },
        };
        let c = d.count();
        let mut line = format!(
            "*{}*: {} new ({} seen, {} trained), {threshold}",
            ct_shared::slack::escape(&d.name),
            c.new_objects(),
            d.seeked,
            d.trained
        );
        if c.counted_at.is_some() {
            line += &format!(
                "; {} new or rewritten, {} removed, {} now",
                bytes_text(c.new_bytes),
                c.removed(),
                bytes_text(c.bytes)
            );
            if let Some(at) = d.baseline.snapshot_at {
                line += &format!(" (since the training of {})", messages::short_date(at));
            }
            if c.old_dated_change() {
                line += "; the content changed with old dates";
            }
        }
        lines.push(line);
    }
    match &s.latest_request {
        None => lines.push("No approval request yet.".to_owned()),
        Some(r) => {
            let state = match (&r.decision, r.expired_at) {
                (Some(d), _) => format!("{} by <@{}>", d.choice.verb().to_lowercase(), d.by.id),
                (None, Some(at)) => {
                    format!("expired: nobody decided by {}", messages::slack_date(at))
                }
                (None, None) => "open".to_owned(),
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
            messages::slack_date(d.at)
        ));
    }
    if let Some(a) = &s.latest_approval {
        lines.push(format!(
            "{} Its training: {}.",
            messages::approval_line(a),
            ct_shared::slack::escape(&a.state())
        ));
    }
    lines.join("\n")
}
