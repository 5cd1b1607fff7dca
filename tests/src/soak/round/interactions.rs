//! Slack's requests to actions: clicks, Retry, `/ct-trigger` commands, and their answers.

use super::model::Ctx;
use super::{FORM, Round};
use crate::tally::Tally;
use ct_shared::Timestamp;
use harness::events::http_request;
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What an HTTP handler answered.
pub(super) struct Http {
    pub(super) status: u16,
    pub(super) body: Value,
    pub(super) replayed: bool,
}

/// An answer, briefly, for the round's log.
fn said(answer: Option<&Http>) -> String {
    match answer {
        Some(a) => {
            let text: String = a.body["text"]
                .as_str()
                .or_else(|| a.body["error"].as_str())
                .unwrap_or_default()
                .chars()
                .take(70)
                .collect();
            format!("{} {text}", a.status)
        }
        None => "nothing (handler error)".into(),
    }
}

pub(super) fn http_answer(resp: &lambda_http::Response<lambda_http::Body>) -> Http {
    let bytes: &[u8] = resp.body().as_ref();
    Http {
        status: resp.status().as_u16(),
        body: serde_json::from_slice(bytes).unwrap_or(Value::Null),
        replayed: resp.headers().contains_key("idempotent-replayed"),
    }
}

impl Round {
    pub(super) async fn click(
        &mut self,
        choice: &str,
        request: &str,
        user: (&str, &str),
        twice: bool,
        t: &mut Tally,
    ) {
        let response = self.next_id("c");
        let payload = block_actions(choice, request, user, &self.w.slack.response_url(&response));
        let event = signed_event(
            SIGNING_SECRET,
            Timestamp::now().secs(),
            &form(&payload),
            FORM,
        );
        let ctx = Ctx::Click {
            request: request.to_owned(),
            response,
            user: user.0.to_owned(),
        };
        for i in 0..if twice { 2 } else { 1 } {
            if i > 0 {
                t.fault("lambda: the same request invoked twice");
            }
            let answer = self.interact(&event, &ctx, "click", &[200, 503], t).await;
            self.note(format!("    answered {}", said(answer.as_ref())));
        }
    }

    pub(super) async fn retry(&mut self, request: &str, user: (&str, &str), t: &mut Tally) {
        let response = self.next_id("r");
        let payload = block_actions(
            "retry",
            request,
            user,
            &self.w.slack.response_url(&response),
        );
        let event = signed_event(
            SIGNING_SECRET,
            Timestamp::now().secs(),
            &form(&payload),
            FORM,
        );
        let answer = self
            .interact(&event, &Ctx::Retry, "Retry", &[200, 503], t)
            .await;
        self.note(format!("    answered {}", said(answer.as_ref())));
    }

    /// One Function URL request to actions; its status, checked against `expected`.
    async fn interact(
        &mut self,
        event: &Value,
        ctx: &Ctx,
        what: &str,
        expected: &[u16],
        t: &mut Tally,
    ) -> Option<Http> {
        self.dirty = true;
        let started = Instant::now();
        let answer = actions::handle(&self.actions, http_request(event.clone())).await;
        let took = started.elapsed();
        self.absorb(ctx, t);
        if took > Duration::from_secs(3) {
            t.outcome(format!("{what} answered after Slack's 3 s"));
        }
        match answer {
            Ok(resp) => {
                let answer = http_answer(&resp);
                t.outcome(format!("{what} answered {}", answer.status));
                if !expected.contains(&answer.status) {
                    let body = answer.body.to_string();
                    self.violate(
                        t,
                        "answers-as-documented",
                        &format!("{what} {}", answer.status),
                        format!(
                            "{what} answered {} ({body}), not one of {expected:?}",
                            answer.status
                        ),
                    );
                }
                Some(answer)
            }
            Err(e) => {
                self.violate(
                    t,
                    "handler-error",
                    &format!("{what} {e}"),
                    format!("actions failed a {what}: {e}"),
                );
                None
            }
        }
    }

    pub(super) async fn slash(&mut self, text: &str, user: &str, t: &mut Tally) -> String {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("command", "/ct-trigger")
            .append_pair("text", text)
            .append_pair("user_id", user)
            .append_pair("response_url", &self.w.slack.response_url("slash"))
            .finish();
        let event = signed_event(
            SIGNING_SECRET,
            Timestamp::now().secs(),
            body.as_bytes(),
            FORM,
        );
        let what = format!("/ct-trigger {text}");
        match self.interact(&event, &Ctx::Other, &what, &[200], t).await {
            Some(a) => {
                let said: String = a.body["text"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(60)
                    .collect();
                if said.is_empty() {
                    self.violate(
                        t,
                        "answers-as-documented",
                        &what,
                        format!("{what} answered no text: {}", a.body),
                    );
                }
                said
            }
            None => String::new(),
        }
    }
}
