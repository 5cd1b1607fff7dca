//! Slack's Block Kit limits, checked: what Slack would refuse with `invalid_blocks`. Every
//! message template is tested against this, at its largest (50 datasets, long names).
//!
//! The limits are Slack's published ones for the blocks ct-trigger sends: at most 50 blocks; a
//! section's text and a context element's text at most 3,000 characters; at most 10 elements
//! in a context block and 25 in an actions block; a button's text at most 75 characters and its
//! value 2,000; a `block_id` or `action_id` at most 255; a confirm dialog's title 100, text 300,
//! and button texts 30; a message's top-level `text` at most 40,000.

use serde_json::Value;

const MAX_BLOCKS: usize = 50;
const MAX_TEXT: usize = 3000;
const MAX_MESSAGE_TEXT: usize = 40_000;

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn text_object(v: &Value, max: usize, plain_only: bool, at: &str) -> Result<(), String> {
    let kind = v["type"].as_str().unwrap_or_default();
    let ok_kind = kind == "plain_text" || (!plain_only && kind == "mrkdwn");
    if !ok_kind {
        return Err(format!("{at}: a text object of type {kind:?}"));
    }
    let n = chars(&v["text"]);
    if v["text"].as_str().is_none() || n == 0 {
        return Err(format!("{at}: an empty or missing text"));
    }
    if n > max {
        return Err(format!("{at}: {n} characters, over {max}"));
    }
    Ok(())
}

fn id(v: &Value, name: &str, at: &str) -> Result<(), String> {
    match v.get(name) {
        None => Ok(()),
        Some(s) if s.is_string() && (1..=255).contains(&chars(s)) => Ok(()),
        Some(_) => Err(format!("{at}: {name} is not 1 to 255 characters")),
    }
}

fn button(b: &Value, at: &str) -> Result<(), String> {
    text_object(&b["text"], 75, true, &format!("{at}.text"))?;
    id(b, "action_id", at)?;
    if let Some(v) = b.get("value")
        && chars(v) > 2000
    {
        return Err(format!("{at}: its value is over 2,000 characters"));
    }
    if let Some(style) = b.get("style")
        && style != "primary"
        && style != "danger"
    {
        return Err(format!("{at}: style {style}"));
    }
    if let Some(c) = b.get("confirm") {
        text_object(&c["title"], 100, true, &format!("{at}.confirm.title"))?;
        text_object(&c["text"], 300, false, &format!("{at}.confirm.text"))?;
        text_object(&c["confirm"], 30, true, &format!("{at}.confirm.confirm"))?;
        text_object(&c["deny"], 30, true, &format!("{at}.confirm.deny"))?;
    }
    Ok(())
}

/// Checks one message (what a webhook, `response_url` or `chat.postMessage` is sent) against
/// Block Kit's rules; the error says which block breaks which.
pub fn check(message: &Value) -> Result<(), String> {
    let text = chars(&message["text"]);
    let blocks = message.get("blocks").and_then(Value::as_array);
    if text == 0 && blocks.is_none_or(|b| b.is_empty()) {
        return Err("a message with neither text nor blocks".into());
    }
    if text > MAX_MESSAGE_TEXT {
        return Err(format!(
            "text is {text} characters, over {MAX_MESSAGE_TEXT}"
        ));
    }
    let Some(blocks) = blocks else { return Ok(()) };
    if blocks.len() > MAX_BLOCKS {
        return Err(format!("{} blocks, over {MAX_BLOCKS}", blocks.len()));
    }
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("block {i}");
        id(b, "block_id", &at)?;
        match b["type"].as_str().unwrap_or_default() {
            "section" => {
                text_object(&b["text"], MAX_TEXT, false, &format!("{at} (section)"))?;
                if let Some(acc) = b.get("accessory") {
                    button(acc, &format!("{at}.accessory"))?;
                }
            }
            "context" => {
                let els = b["elements"]
                    .as_array()
                    .ok_or(format!("{at}: no elements"))?;
                if els.is_empty() || els.len() > 10 {
                    return Err(format!("{at}: {} context elements (1 to 10)", els.len()));
                }
                for (j, e) in els.iter().enumerate() {
                    text_object(e, MAX_TEXT, false, &format!("{at}.elements[{j}]"))?;
                }
            }
            "actions" => {
                let els = b["elements"]
                    .as_array()
                    .ok_or(format!("{at}: no elements"))?;
                if els.is_empty() || els.len() > 25 {
                    return Err(format!("{at}: {} action elements (1 to 25)", els.len()));
                }
                for (j, e) in els.iter().enumerate() {
                    if e["type"] != "button" {
                        return Err(format!("{at}.elements[{j}]: not a button"));
                    }
                    button(e, &format!("{at}.elements[{j}]"))?;
                }
            }
            "divider" => {}
            "header" => text_object(&b["text"], 150, true, &format!("{at} (header)"))?,
            other => return Err(format!("{at}: unknown block type {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_what_slack_refuses() {
        let long = "x".repeat(3001);
        for (bad, says) in [
            (json!({}), "neither"),
            (
                json!({"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": long}}]}),
                "over 3000",
            ),
            (
                json!({"text": "t", "blocks": [{"type": "context", "elements": []}]}),
                "0 context",
            ),
            (
                json!({"text": "t", "blocks": [{"type": "image"}]}),
                "unknown block",
            ),
            (
                json!({"text": "t", "blocks": (0..51).map(|_| json!({"type": "divider"})).collect::<Vec<_>>()}),
                "51 blocks",
            ),
            (
                json!({"text": "t", "blocks": [{"type": "actions", "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "b"}}]}]}),
                "type \"mrkdwn\"",
            ),
        ] {
            let err = check(&bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(check(&json!({"text": "plain"})).is_ok());
    }
}
