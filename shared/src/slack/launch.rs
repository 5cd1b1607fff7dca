//! Slack messages about a training run's launch: started (with its link), could not start
//! (with a Retry button), and the approval message once its run exists.

use super::escape;
use super::interaction::retry_value;
use super::messages::{decided_request, ephemeral, grounds, slack_date};
use crate::domain::{ApprovalRequest, Decision};
use serde_json::{Value, json};

/// The `block_id` of the Retry button's actions block.
pub const RETRY_BLOCK: &str = "ct_trigger_launch";

fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}})
}

/// Which request a launch is for: its question's date and what it offered.
pub fn request_phrase(request: &ApprovalRequest) -> String {
    format!(
        "the question of {}: {}",
        slack_date(request.created_at),
        grounds(request)
    )
}

/// The channel notice once the run exists, naming the request it is for.
pub fn training_started(link: &str, run_id: &str, request: &ApprovalRequest) -> Value {
    let what = request_phrase(request);
    json!({
        "text": format!("Training started: {link} (for {what})"),
        "blocks": [section(&format!(
            "Training started: <{link}|run {}> for {what}",
            escape(run_id)
        ))]
    })
}

/// The channel notice after the last attempt failed: the reason, and Retry.
pub fn launch_failed(request_id: &str, reason: &str) -> Value {
    let text = format!("Could not start the training run: {reason}");
    json!({
        "text": text,
        "blocks": [
            section(&format!("Could not start the training run: {}", escape(reason))),
            {
                "type": "actions",
                "block_id": RETRY_BLOCK,
                "elements": [{
                    "type": "button",
                    "action_id": "retry",
                    "text": {"type": "plain_text", "text": "Retry"},
                    "value": retry_value(request_id)
                }]
            }
        ]
    })
}

/// The approval message, replaced once its run exists: "Approved by @ann · run <id>".
pub fn approved_with_run(request: &ApprovalRequest, decision: &Decision, run_id: &str) -> Value {
    let mut message = decided_request(request, decision);
    let suffix = format!(" · run {}", escape(run_id));
    if let Some(text) = message["text"].as_str() {
        message["text"] = Value::from(format!("{text}{suffix}"));
    }
    if let Some(last) = message["blocks"].as_array_mut().and_then(|b| b.last_mut())
        && let Some(text) = last["text"]["text"].as_str()
    {
        last["text"]["text"] = Value::from(format!("{text}{suffix}"));
    }
    message
}

/// Told to someone pressing Retry on a launch that is not waiting for one.
pub fn retry_not_needed(why: &str) -> Value {
    ephemeral(why)
}

/// The Retry message, once the retried job could not start the run either: no stale "Starting
/// the training run again…" is left; the channel has the new failure with its own Retry.
pub fn retry_failed(by_id: &str, reason: &str) -> Value {
    json!({
        "replace_original": true,
        "text": format!(
            "Retry by <@{}> did not start the run: {} (see the newer message to retry again)",
            escape(by_id),
            escape(reason)
        ),
    })
}

/// Told to someone who pressed Retry: the run is being started again.
pub fn retrying(by_id: &str) -> Value {
    json!({
        "replace_original": true,
        "text": format!("Starting the training run again (Retry by <@{}>)…", escape(by_id)),
    })
}
