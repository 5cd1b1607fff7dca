//! Interaction payloads Slack posts when a button is clicked: Block Kit `block_actions` (what
//! seek posts) and the legacy `interactive_message` (buttons in attachments).
//!
//! Call [`parse_form`] only after the signature has been verified over the same bytes.

use crate::domain::{Choice, Person};
use serde::Deserialize;

/// A click: which button, on which request, by whom, and where to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub choice: Choice,
    pub request_id: String,
    pub by: Person,
    pub response_url: Option<String>,
    /// Slack's `action_ts` for this click (per button press), when sent.
    pub action_ts: Option<String>,
    /// Slack's `trigger_id` for this interaction, when sent.
    pub trigger_id: Option<String>,
}

impl Click {
    /// This click's identity, recorded with the decision it makes: the user, the moment Slack
    /// stamped the press (`action_ts`, else the interaction's `trigger_id`), and `handling`,
    /// unique to this handling of it. The user alone is not enough: ann clicking twice is two
    /// attempts, and only the first decides; the second must hear "already approved", not be
    /// mistaken for the first. Nor is the press alone: a redelivery of the same press, or the
    /// same payload handled twice at once, must not count the first handling's decision as its
    /// own and post its notices again. Only this handling's own retries and re-reads match.
    pub fn identity(&self, handling: &str) -> String {
        let stamp = self
            .action_ts
            .as_deref()
            .or(self.trigger_id.as_deref())
            .unwrap_or("-");
        format!("{}@{stamp}#{handling}", self.by.id)
    }
}

/// A click on a failed launch's Retry button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryClick {
    pub request_id: String,
    pub by: Person,
    pub response_url: Option<String>,
}

/// What a verified interaction asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// Train! or Nope! on an approval request.
    Decide(Click),
    /// Retry on a launch that could not start.
    RetryLaunch(RetryClick),
}

/// The Retry button's value: `retry:<request id>`.
pub fn retry_value(request_id: &str) -> String {
    format!("retry:{request_id}")
}

/// Why a verified body is still not a click we understand. Each maps to a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the form has no payload field")]
    NoPayload,
    #[error("payload is not JSON")]
    NotJson,
    #[error("unknown payload type {0:?}")]
    UnknownType(String),
    #[error("payload is missing {0}")]
    Malformed(String),
    #[error("unknown button")]
    UnknownButton,
}

/// The button value seek puts on each button: `train:<request id>` or `nope:<request id>`.
pub fn button_value(choice: Choice, request_id: &str) -> String {
    format!("{}:{request_id}", choice.as_str())
}

/// The button a value names: a choice, or `None` for Retry.
fn parse_button_value(value: &str) -> Option<(Option<Choice>, String)> {
    let (verb, id) = value.split_once(':')?;
    let choice = match verb {
        "retry" => None,
        other => Some(Choice::parse(other)?),
    };
    let ok_id = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok_id.then(|| (choice, id.to_owned()))
}

#[derive(Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl From<User> for Person {
    fn from(u: User) -> Self {
        let name = u.username.or(u.name).unwrap_or_else(|| u.id.clone());
        Person { id: u.id, name }
    }
}

#[derive(Deserialize)]
struct Action {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: Option<String>,
}

#[derive(Deserialize)]
struct Body {
    user: User,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
    /// `interactive_message` puts it here; `block_actions` on the action.
    #[serde(default)]
    action_ts: Option<String>,
    #[serde(default)]
    trigger_id: Option<String>,
}

/// Decodes an `application/x-www-form-urlencoded` body's `payload` field into a [`Click`].
pub fn parse_form(body: &[u8]) -> Result<Click, PayloadError> {
    match parse_interaction(body)? {
        Interaction::Decide(click) => Ok(click),
        Interaction::RetryLaunch(_) => Err(PayloadError::UnknownButton),
    }
}

/// Decodes a form's `payload` into what the click asks for: a decision or a launch's Retry.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, PayloadError> {
    let payload = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(PayloadError::NoPayload)?;
    parse_payload(&payload)
}

/// Parses the JSON payload itself.
pub fn parse_payload(payload: &str) -> Result<Interaction, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|_| PayloadError::NotJson)?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| PayloadError::Malformed("type".into()))?;
    if kind != "block_actions" && kind != "interactive_message" {
        return Err(PayloadError::UnknownType(kind.chars().take(40).collect()));
    }
    // Both shapes carry `user`, `actions[].value` and `response_url` in the same places.
    let body: Body = serde_json::from_value(value)
        .map_err(|e| PayloadError::Malformed(format!("fields ({})", short(&e.to_string()))))?;
    let (value, action_ts) = match body.actions.as_slice() {
        [one] => (
            one.value.as_deref().ok_or(PayloadError::UnknownButton)?,
            one.action_ts.clone(),
        ),
        [] => return Err(PayloadError::Malformed("actions".into())),
        _ => return Err(PayloadError::UnknownButton),
    };
    let (choice, request_id) = parse_button_value(value).ok_or(PayloadError::UnknownButton)?;
    let by: Person = body.user.into();
    let response_url = body.response_url.filter(|u| !u.is_empty());
    Ok(match choice {
        Some(choice) => Interaction::Decide(Click {
            choice,
            request_id,
            by,
            response_url,
            action_ts: action_ts.or(body.action_ts).filter(|t| !t.is_empty()),
            trigger_id: body.trigger_id.filter(|t| !t.is_empty()),
        }),
        None => Interaction::RetryLaunch(RetryClick {
            request_id,
            by,
            response_url,
        }),
    })
}

fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(payload: &serde_json::Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    #[test]
    fn reads_block_actions() {
        let p = json!({
            "type": "block_actions",
            "user": {"id": "U123", "username": "ann", "name": "ann", "team_id": "T1"},
            "actions": [{"action_id": "train", "block_id": "decision", "type": "button",
                          "value": "train:abc123", "action_ts": "1.2"}],
            "response_url": "https://hooks.slack.com/actions/T1/1/x"
        });
        let click = parse_form(&form(&p)).unwrap();
        assert_eq!(click.choice, Choice::Train);
        assert_eq!(click.request_id, "abc123");
        assert_eq!(
            click.by,
            Person {
                id: "U123".into(),
                name: "ann".into()
            }
        );
        assert_eq!(
            click.response_url.as_deref(),
            Some("https://hooks.slack.com/actions/T1/1/x")
        );
    }

    #[test]
    fn reads_legacy_interactive_message() {
        let p = json!({
            "type": "interactive_message",
            "callback_id": "ct-trigger",
            "user": {"id": "U9", "name": "bob"},
            "actions": [{"name": "nope", "type": "button", "value": "nope:r-1"}],
            "action_ts": "1.5",
            "response_url": "https://hooks.slack.com/actions/T1/2/y"
        });
        let click = parse_form(&form(&p)).unwrap();
        assert_eq!(
            (click.choice, click.request_id.as_str()),
            (Choice::Nope, "r-1")
        );
        assert_eq!(click.by.name, "bob");
        assert_eq!(click.identity("x"), "U9@1.5#x");
    }

    #[test]
    fn a_click_is_its_user_and_its_press() {
        let press = |ts: &str, trigger: Option<&str>| {
            let mut p = json!({
                "type": "block_actions",
                "user": {"id": "U1", "username": "ann"},
                "actions": [{"value": "train:r1", "action_ts": ts}],
            });
            if let Some(t) = trigger {
                p["trigger_id"] = json!(t);
            }
            parse_form(&form(&p)).unwrap()
        };
        let first = press("100.1", Some("t1"));
        assert_eq!(first.identity("h1"), "U1@100.1#h1");
        // The same press handled twice (a redelivery) is two handlings: neither is the other.
        assert_ne!(
            first.identity("h1"),
            press("100.1", Some("t1")).identity("h2")
        );
        // A second press is another click even within one handling's name.
        assert_ne!(
            first.identity("h1"),
            press("100.2", Some("t2")).identity("h1")
        );
        assert_eq!(press("", Some("t9")).identity("h"), "U1@t9#h");
        assert_eq!(press("", None).identity("h"), "U1@-#h");
    }

    #[test]
    fn reads_a_launch_retry() {
        let p = json!({
            "type": "block_actions",
            "user": {"id": "U7", "username": "cy"},
            "actions": [{"action_id": "retry", "value": retry_value("abc"), "action_ts": "3.4"}],
            "response_url": "https://hooks.slack.com/actions/T1/3/z"
        });
        assert_eq!(
            parse_interaction(&form(&p)).unwrap(),
            Interaction::RetryLaunch(RetryClick {
                request_id: "abc".into(),
                by: Person {
                    id: "U7".into(),
                    name: "cy".into()
                },
                response_url: Some("https://hooks.slack.com/actions/T1/3/z".into()),
            })
        );
        assert_eq!(parse_form(&form(&p)), Err(PayloadError::UnknownButton));
    }

    #[test]
    fn refuses_what_is_not_a_click() {
        assert_eq!(parse_form(b"token=x"), Err(PayloadError::NoPayload));
        assert_eq!(parse_form(b"payload=%7Bnot"), Err(PayloadError::NotJson));
        assert_eq!(
            parse_form(&form(
                &json!({"type": "view_submission", "user": {"id": "U"}})
            )),
            Err(PayloadError::UnknownType("view_submission".into()))
        );
        assert!(matches!(
            parse_form(&form(&json!({"user": {"id": "U"}}))),
            Err(PayloadError::Malformed(_))
        ));
        let base = |value: serde_json::Value| json!({"type": "block_actions", "user": {"id": "U"}, "actions": [{"value": value}]});
        for bad in [
            json!("deploy:abc"),
            json!("train:"),
            json!("train"),
            json!("train:a b"),
            json!(null),
        ] {
            assert_eq!(
                parse_form(&form(&base(bad.clone()))),
                Err(PayloadError::UnknownButton),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_form(&form(
                &json!({"type": "block_actions", "user": {"id": "U"}, "actions": []})
            )),
            Err(PayloadError::Malformed(_))
        ));
    }
}
