//! `/ask` and `/send` calls to the send function, with and without an Idempotency-Key.

use super::interactions::{Http, http_answer};
use super::model::Ctx;
use super::{Round, SEND_TOKEN};
use crate::tally::Tally;
use harness::events::{function_url_event, http_request};
use serde_json::{Value, json};

impl Round {
    /// Picks an Idempotency-Key: none, a new one, or (a client's retry) one used before.
    fn key(&mut self, prefix: &str, used: &[String], t: &mut Tally, what: &str) -> Option<String> {
        if self.rng.chance(45) {
            t.event(&format!("{what} without a key"));
            return None;
        }
        if let Some(k) = self.rng.pick(used).cloned().filter(|_| self.rng.chance(35)) {
            t.event(&format!("{what} retried with the same key"));
            return Some(k);
        }
        t.event(&format!("{what} with a new key"));
        Some(self.next_id(prefix))
    }

    pub(super) async fn ask(&mut self, t: &mut Tally) -> String {
        let keys = self.ask_keys.clone();
        let key = self.key("ask-", &keys, t, "/ask");
        if let Some(k) = &key
            && !self.ask_keys.contains(k)
        {
            self.ask_keys.push(k.clone());
        }
        let tag = key.clone().unwrap_or_else(|| self.next_id("q"));
        let body = json!({
            "reason": format!("Model quality dropped ({tag})"),
            "metric": "recall@10",
            "value": 0.81,
            "threshold": 0.85
        })
        .to_string();
        let event = self.send_event("/ask", key.as_deref(), &body);
        let ctx = Ctx::Ask { key: key.clone() };
        let copies = if key.is_some() && self.rng.chance(10) {
            2
        } else {
            1
        };
        let mut said = Vec::new();
        for i in 0..copies {
            if i > 0 {
                t.fault("lambda: the same request invoked twice");
            }
            let Some(a) = self
                .call_send(&event, &ctx, "/ask", &[201, 409, 502, 503, 504], t)
                .await
            else {
                continue;
            };
            said.push(format!(
                "{}{}",
                a.status,
                if a.replayed { " (replayed)" } else { "" }
            ));
            if a.status != 201 {
                continue;
            }
            let Some(id) = a.body["request_id"].as_str().map(str::to_owned) else {
                self.violate(
                    t,
                    "answers-as-documented",
                    "ask id",
                    format!("/ask answered 201 without a request id: {}", a.body),
                );
                continue;
            };
            self.asks_accepted.insert(id.clone());
            if !a.replayed {
                self.heard_of(&id);
            }
            if let Some(k) = &key {
                match self.ask_answers.get(k).cloned() {
                    Some(first) if first != id => self.violate(
                        t,
                        "replay-same-answer",
                        k,
                        format!("/ask with key {k} answered request {first}, then request {id}"),
                    ),
                    Some(_) => {}
                    None => {
                        self.ask_answers.insert(k.clone(), id);
                    }
                }
            }
        }
        format!("/ask key {key:?}: {}", said.join(", "))
    }

    pub(super) async fn send(&mut self, t: &mut Tally) -> String {
        let keys = self.send_keys.clone();
        let key = self.key("send-", &keys, t, "/send");
        if let Some(k) = &key
            && !self.send_keys.contains(k)
        {
            self.send_keys.push(k.clone());
        }
        let text = match &key {
            Some(k) => format!("notice {k}"),
            None => format!("notice {}", self.next_id("n")),
        };
        let body = json!({ "text": text }).to_string();
        let event = self.send_event("/send", key.as_deref(), &body);
        let copies = if key.is_some() && self.rng.chance(10) {
            2
        } else {
            1
        };
        let mut said = Vec::new();
        for i in 0..copies {
            if i > 0 {
                t.fault("lambda: the same request invoked twice");
            }
            let Some(a) = self
                .call_send(&event, &Ctx::Other, "/send", &[204, 409, 502, 503, 504], t)
                .await
            else {
                continue;
            };
            said.push(format!(
                "{}{}",
                a.status,
                if a.replayed { " (replayed)" } else { "" }
            ));
            if a.status == 204 {
                self.sends_accepted.insert(text.clone());
            }
        }
        format!("/send {text:?}: {}", said.join(", "))
    }

    fn send_event(&self, path: &str, key: Option<&str>, body: &str) -> Value {
        let bearer = format!("Bearer {SEND_TOKEN}");
        let mut headers = vec![
            ("content-type", "application/json"),
            ("authorization", bearer.as_str()),
        ];
        if let Some(k) = key {
            headers.push(("idempotency-key", k));
        }
        function_url_event("POST", path, &headers, body.as_bytes(), false)
    }

    async fn call_send(
        &mut self,
        event: &Value,
        ctx: &Ctx,
        what: &str,
        expected: &[u16],
        t: &mut Tally,
    ) -> Option<Http> {
        let answer = send::handle(&self.sender, http_request(event.clone())).await;
        self.absorb(ctx, t);
        match answer {
            Ok(resp) => {
                let a = http_answer(&resp);
                t.outcome(format!(
                    "{what} answered {}{}",
                    a.status,
                    if a.replayed { " (replayed)" } else { "" }
                ));
                if !expected.contains(&a.status) {
                    self.violate(
                        t,
                        "answers-as-documented",
                        &format!("{what} {}", a.status),
                        format!(
                            "{what} answered {} ({}), not one of {expected:?}",
                            a.status, a.body
                        ),
                    );
                }
                Some(a)
            }
            Err(e) => {
                self.violate(
                    t,
                    "handler-error",
                    &format!("{what} {e}"),
                    format!("send failed {what}: {e}"),
                );
                None
            }
        }
    }
}
