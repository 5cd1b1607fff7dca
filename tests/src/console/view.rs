//! What the channel shows: Slack's received posts replayed into messages (edited, deleted,
//! threaded, with the ephemeral answers the viewer got), and each user's slash command answers.

use crate::slack::Post;
use serde::Serialize;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// One message as the channel shows it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewMessage {
    /// Its position among the channel's messages; a click on it is sent with the
    /// `response_url` `/actions/{user}/{id}`.
    pub id: usize,
    pub body: Value,
    pub edited: bool,
    /// When it was posted, in milliseconds since the epoch (an edit keeps it, as in Slack).
    pub at: u64,
    /// The ephemeral answers to clicks on it ("Only visible to you") that the viewer got.
    pub ephemeral: Vec<Ephemeral>,
    /// Its `ts`, when the Web API posted it (`chat.update` edits it by this).
    pub ts: Option<String>,
    /// The replies in its thread (`chat.postMessage` with its `thread_ts`), in order.
    pub thread: Vec<ThreadReply>,
}

/// A reply in a message's thread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadReply {
    pub body: Value,
    pub at: u64,
}

/// An answer only one user sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ephemeral {
    pub user: String,
    pub body: Value,
    pub at: u64,
}

pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whom a `response_url` post answers: a click by `user` on message `id`
/// (`/actions/{user}/{id}`), or `user`'s `n`th slash command (`/actions/slash/{user}/{n}`).
#[derive(Debug, Clone, PartialEq)]
enum Answering {
    Click { user: String, id: usize },
    Slash { user: String, n: usize },
}

fn answering(path: &str) -> Option<Answering> {
    let rest = path.strip_prefix("/actions/")?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("slash"), Some(user), Some(n), None) => Some(Answering::Slash {
            user: user.to_owned(),
            n: n.parse().ok()?,
        }),
        (Some(user), Some(id), None, None) => Some(Answering::Click {
            user: user.to_owned(),
            id: id.parse().ok()?,
        }),
        _ => None,
    }
}

/// Replays what Slack received, in order, into what the channel shows `viewer`: webhook posts
/// and the Web API's `chat.postMessage` are new messages (or, with a `thread_ts`, replies in
/// that message's thread), `chat.update` edits one; `response_url` posts replace, delete, add a message, or answer the one
/// user who clicked ephemerally, which only that user (the `viewer`) sees. Slash commands'
/// later answers are in [`slash_answers`].
pub fn channel_view(posts: &[Post], viewer: Option<&str>) -> Vec<ViewMessage> {
    let mut view: Vec<ViewMessage> = Vec::new();
    let mut next_id = 0;
    let mut add = |view: &mut Vec<ViewMessage>, p: &Post| {
        view.push(ViewMessage {
            id: next_id,
            body: p.body.clone(),
            edited: false,
            at: millis(p.at),
            ephemeral: vec![],
            ts: p.ts.clone(),
            thread: vec![],
        });
        next_id += 1;
    };
    for p in posts.iter().filter(|p| p.delivered()) {
        if p.path.starts_with("/services/") {
            add(&mut view, p);
            continue;
        }
        // The Web API: a message, a reply in a message's thread, or an edit of a message.
        if let Some(method) = p.path.strip_prefix("/api/") {
            let parent = |view: &mut Vec<ViewMessage>, ts: &Value| {
                let ts = ts.as_str()?;
                view.iter().position(|m| m.ts.as_deref() == Some(ts))
            };
            match method {
                "chat.postMessage" if p.body.get("thread_ts").is_some() => {
                    if let Some(pos) = parent(&mut view, &p.body["thread_ts"]) {
                        view[pos].thread.push(ThreadReply {
                            body: p.body.clone(),
                            at: millis(p.at),
                        });
                    }
                }
                "chat.postMessage" => add(&mut view, p),
                "chat.update" => {
                    if let Some(pos) = parent(&mut view, &p.body["ts"]) {
                        view[pos].body = p.body.clone();
                        view[pos].edited = true;
                    }
                }
                _ => {}
            }
            continue;
        }
        let (user, target) = match answering(&p.path) {
            Some(Answering::Click { user, id }) => (user, id),
            // A slash command's answer for the channel is a message; any other is ephemeral.
            Some(Answering::Slash { .. }) if p.body["response_type"] == "in_channel" => {
                add(&mut view, p);
                continue;
            }
            _ => continue,
        };
        let Some(pos) = view.iter().position(|m| m.id == target) else {
            continue;
        };
        if p.body["delete_original"] == true {
            view.remove(pos);
        } else if p.body["response_type"] == "ephemeral" {
            if viewer == Some(user.as_str()) {
                view[pos].ephemeral.push(Ephemeral {
                    user,
                    body: p.body.clone(),
                    at: millis(p.at),
                });
            }
        } else if p.body["replace_original"] == true {
            view[pos].body = p.body.clone();
            view[pos].edited = true;
        } else {
            add(&mut view, p);
        }
    }
    view
}

/// One slash command's answer as its sender sees it under the composer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlashAnswer {
    pub user: String,
    /// The command as typed.
    pub command: String,
    pub text: String,
    /// The console or actions refused it (not an answer from the app).
    pub error: bool,
    pub at: u64,
}

/// A slash command sent: who sent what, and the answer that came back at once.
#[derive(Debug, Clone)]
pub(crate) struct SlashSent {
    pub(crate) user: String,
    pub(crate) command: String,
    pub(crate) answer: Option<SlashAnswer>,
}

/// `viewer`'s slash command answers, in order: those actions gave at once, and the later ones
/// posted to the command's `response_url` (other than for the channel).
pub(crate) fn slash_answers(posts: &[Post], sent: &[SlashSent], viewer: &str) -> Vec<SlashAnswer> {
    let mut out: Vec<SlashAnswer> = sent
        .iter()
        .filter(|s| s.user == viewer)
        .filter_map(|s| s.answer.clone())
        .collect();
    for p in posts.iter().filter(|p| p.delivered()) {
        let Some(Answering::Slash { user, n }) = answering(&p.path) else {
            continue;
        };
        if user != viewer || p.body["response_type"] == "in_channel" {
            continue;
        }
        out.push(SlashAnswer {
            command: sent.get(n).map(|s| s.command.clone()).unwrap_or_default(),
            user,
            text: p.body["text"].as_str().unwrap_or_default().to_owned(),
            error: false,
            at: millis(p.at),
        });
    }
    out.sort_by_key(|a| a.at);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::slack::{Reply, SlackStandIn};
    use serde_json::json;

    /// What the Slack stand-in recorded of these posts (path, body, answered status).
    async fn received(posts: &[(&str, Value, u16)]) -> Vec<Post> {
        let slack = SlackStandIn::start().await;
        ct_shared::tls::install_provider();
        let http = reqwest::Client::new();
        for (path, body, status) in posts {
            if *status != 200 {
                slack.plan([Reply::Status(*status)]);
            }
            http.post(format!("{}{path}", slack.base))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
        }
        slack.received()
    }

    #[tokio::test]
    async fn replays_replacements_ephemerals_and_new_messages() {
        let posts = received(&[
            ("/services/T/B/x", json!({"text": "question"}), 200),
            ("/services/T/B/x", json!({"text": "failed"}), 500),
            (
                "/actions/U0ANN/0",
                json!({"text": "decided", "replace_original": true}),
                200,
            ),
            (
                "/actions/U0BOB/0",
                json!({"text": "already", "response_type": "ephemeral"}),
                200,
            ),
            ("/services/T/B/x", json!({"text": "kubeflow"}), 200),
            (
                "/actions/U0ANN/9",
                json!({"text": "nowhere", "replace_original": true}),
                200,
            ),
        ])
        .await;
        let view = channel_view(&posts, Some("U0BOB"));
        assert_eq!(view.len(), 2);
        assert_eq!(view[0].body["text"], "decided");
        assert!(view[0].edited);
        assert_eq!(view[0].ephemeral.len(), 1);
        assert_eq!(view[0].ephemeral[0].user, "U0BOB");
        assert_eq!(view[1].id, 1);
        assert_eq!(view[1].body["text"], "kubeflow");
        // The message keeps the time it was posted, not its edit's.
        assert_eq!(view[0].at, millis(posts[0].at));
        // bob's ephemeral answer is not in ann's view, nor in a view of nobody.
        for viewer in [Some("U0ANN"), None] {
            let view = channel_view(&posts, viewer);
            assert!(view[0].ephemeral.is_empty(), "{viewer:?}");
            assert_eq!(view[0].body["text"], "decided");
        }
    }

    #[tokio::test]
    async fn slash_answers_belong_to_their_sender() {
        let sent = vec![
            SlashSent {
                user: "U0BOB".into(),
                command: "/ct-trigger seek".into(),
                answer: Some(SlashAnswer {
                    user: "U0BOB".into(),
                    command: "/ct-trigger seek".into(),
                    text: "Counting now".into(),
                    error: false,
                    at: 1,
                }),
            },
            SlashSent {
                user: "U0ANN".into(),
                command: "/ct-trigger status".into(),
                answer: None,
            },
        ];
        let posts = received(&[
            (
                "/actions/slash/U0ANN/1",
                json!({"text": "later, for ann", "response_type": "ephemeral"}),
                200,
            ),
            (
                "/actions/slash/U0ANN/1",
                json!({"text": "for everyone", "response_type": "in_channel"}),
                200,
            ),
        ])
        .await;
        let ann = slash_answers(&posts, &sent, "U0ANN");
        assert_eq!(ann.len(), 1, "{ann:?}");
        assert_eq!(
            (ann[0].text.as_str(), ann[0].command.as_str()),
            ("later, for ann", "/ct-trigger status")
        );
        let bob = slash_answers(&posts, &sent, "U0BOB");
        assert_eq!(bob.len(), 1, "{bob:?}");
        assert_eq!(bob[0].text, "Counting now");
        // The in-channel answer is a message everyone sees.
        let view = channel_view(&posts, None);
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].body["text"], "for everyone");
    }
}
