//! The channel ct-trigger talks in: through Slack's Web API with a bot token (post, edit a
//! message, reply in its thread), or through an incoming webhook (post only). Callers say what
//! they want; without a bot token, an edit is not made (the state it shows is still recorded)
//! and a thread reply is a plain post.

use super::client::{RetryPolicy, SlackError, SlackPoster, WebApi};
use crate::Secret;
use serde_json::Value;

/// How to reach the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An incoming webhook (`SLACK_WEBHOOK_URL`): posts only.
    Webhook(Secret),
    /// The Web API (`SLACK_BOT_TOKEN`, `SLACK_CHANNEL`): posts, edits, threads.
    Api { api: WebApi, channel: String },
}

pub use crate::domain::Posted;

/// The channel, through one Slack client.
#[derive(Debug, Clone, Copy)]
pub struct Channel<'a, P> {
    pub slack: &'a P,
    pub route: &'a Route,
}

/// A message as the Web API takes it: a response_url's own fields left out.
fn api_body(message: &Value, channel: &str) -> Value {
    let mut body = message.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("replace_original");
        o.remove("response_type");
        o.remove("delete_original");
        o.insert("channel".into(), Value::from(channel));
    }
    body
}

fn posted_from(answer: &Value, channel: &str) -> Option<Posted> {
    Some(Posted {
        channel: answer
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or(channel)
            .to_owned(),
        ts: answer.get("ts")?.as_str()?.to_owned(),
    })
}

impl<'a, P: SlackPoster> Channel<'a, P> {
    pub fn new(slack: &'a P, route: &'a Route) -> Self {
        Self { slack, route }
    }

    /// Whether messages can be edited and replied to in threads (a bot token is configured).
    pub fn edits(&self) -> bool {
        matches!(self.route, Route::Api { .. })
    }

    /// Posts a message to the channel; where it is, when the Web API posted it.
    pub async fn post(
        &self,
        message: &Value,
        policy: RetryPolicy,
    ) -> Result<Option<Posted>, SlackError> {
        self.reply(None, message, policy).await
    }

    /// Posts a message in `thread` (a question's), or to the channel when there is none or
    /// only a webhook.
    pub async fn reply(
        &self,
        thread: Option<&Posted>,
        message: &Value,
        policy: RetryPolicy,
    ) -> Result<Option<Posted>, SlackError> {
        match self.route {
            Route::Webhook(url) => {
                self.slack.post(url.expose(), message, policy).await?;
                Ok(None)
            }
            Route::Api { api, channel } => {
                let mut body = api_body(message, channel);
                if let Some(t) = thread {
                    body["channel"] = Value::from(t.channel.as_str());
                    body["thread_ts"] = Value::from(t.ts.as_str());
                }
                let answer = self
                    .slack
                    .call(api, "chat.postMessage", &body, policy)
                    .await?;
                Ok(posted_from(&answer, channel))
            }
        }
    }

    /// Replaces the message at `at` with `message` (its buttons with it). `false`: only a
    /// webhook is configured, and nothing was edited.
    pub async fn edit(
        &self,
        at: &Posted,
        message: &Value,
        policy: RetryPolicy,
    ) -> Result<bool, SlackError> {
        match self.route {
            Route::Webhook(_) => Ok(false),
            Route::Api { api, .. } => {
                let mut body = api_body(message, &at.channel);
                body["ts"] = Value::from(at.ts.as_str());
                // chat.update keeps the old blocks unless it is given blocks: none is an empty list.
                if body.get("blocks").is_none() {
                    body["blocks"] = Value::Array(Vec::new());
                }
                self.slack
                    .call(api, "chat.update", &body, policy)
                    .await
                    .map(|_| true)
            }
        }
    }
}
