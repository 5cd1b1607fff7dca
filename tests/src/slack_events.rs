//! Interaction payloads as Slack sends them, signed as Slack signs them.

use ct_shared::Secret;
use ct_shared::slack::signature;
use serde_json::{Value, json};

/// The signing secret the tests configure.
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A Block Kit `block_actions` payload for a click on one of seek's buttons.
pub fn block_actions(
    choice: &str,
    request_id: &str,
    user: (&str, &str),
    response_url: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user.0, "username": user.1, "name": user.1, "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification-token-unused",
        "container": {"type": "message", "message_ts": "1795892638.000100", "channel_id": "C0001", "is_ephemeral": false},
        "trigger_id": "1.2.3",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C0001", "name": "training"},
        "response_url": response_url,
        "actions": [{
            "action_id": choice,
            "block_id": "ct_trigger_decision",
            "text": {"type": "plain_text", "text": if choice == "train" { "Train!" } else { "Nope!" }},
            "value": format!("{choice}:{request_id}"),
            "type": "button",
            "action_ts": "1795892640.000200"
        }]
    })
}

/// The legacy `interactive_message` payload (buttons in attachments).
pub fn interactive_message(
    choice: &str,
    request_id: &str,
    user: (&str, &str),
    response_url: &str,
) -> Value {
    json!({
        "type": "interactive_message",
        "actions": [{"name": choice, "type": "button", "value": format!("{choice}:{request_id}")}],
        "callback_id": "ct-trigger",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C0001", "name": "training"},
        "user": {"id": user.0, "name": user.1},
        "action_ts": "1795892640.000200",
        "message_ts": "1795892638.000100",
        "attachment_id": "1",
        "token": "verification-token-unused",
        "response_url": response_url
    })
}

/// `payload=<json>`, form-encoded.
pub fn form(payload: &Value) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes()
}

/// A Function URL event carrying `body`, signed with `secret` at `timestamp`.
pub fn signed_event(secret: &str, timestamp: i64, body: &[u8], content_type: &str) -> Value {
    let ts = timestamp.to_string();
    let sig = signature::sign(&Secret::new(secret), &ts, body);
    crate::events::function_url_event(
        "POST",
        "/",
        &[
            ("content-type", content_type),
            ("x-slack-request-timestamp", &ts),
            ("x-slack-signature", &sig),
        ],
        body,
        true,
    )
}

/// A correctly signed click, as Slack would post it now.
pub fn click(payload: &Value) -> lambda_http::Request {
    let now = ct_shared::Timestamp::now().secs();
    crate::events::http_request(signed_event(
        SIGNING_SECRET,
        now,
        &form(payload),
        "application/x-www-form-urlencoded",
    ))
}
