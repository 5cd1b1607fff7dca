//! The invariants: Slack's posts and the table checked, `--self-check`'s sabotage, nothing lost.

use super::Round;
use super::faults::dynamo_fault_name;
use super::model::{Ctx, Item, Req, attr_n, attr_s, req_from};
use crate::tally::Tally;
use harness::slack::Post;
use serde_json::Value;
use std::collections::BTreeMap;

/// The request id of a question's Train! button, if the message is one.
fn question_id(body: &Value) -> Option<String> {
    body["blocks"]
        .as_array()?
        .iter()
        .filter(|b| b["type"] == "actions")
        .filter_map(|b| b["elements"].as_array())
        .flatten()
        .find_map(|e| {
            e["value"]
                .as_str()?
                .strip_prefix("train:")
                .map(str::to_owned)
        })
}

fn is_recorded_answer(text: &str) -> bool {
    !text.starts_with("Already")
        && (text.contains("Approved by <@") || text.contains("Declined by <@"))
}

impl Round {
    // -----------------------------------------------------------------------------------------
    // What Slack was given

    /// Counts what reached the stand-ins since last time, on behalf of `ctx`.
    pub(super) fn absorb(&mut self, ctx: &Ctx, t: &mut Tally) {
        let calls = self.proxy.calls();
        for c in &calls[self.calls_seen.min(calls.len())..] {
            if let Some(f) = c.fault {
                t.fault(dynamo_fault_name(f));
            }
        }
        self.calls_seen = calls.len();
        let posts = self.w.slack.received();
        let new: Vec<Post> = posts[self.posts_seen.min(posts.len())..].to_vec();
        self.posts_seen = posts.len();
        for p in new {
            self.classify(&p, ctx, t);
        }
    }

    fn classify(&mut self, p: &Post, ctx: &Ctx, t: &mut Tally) {
        match p.status {
            429 => t.fault("slack: 429 rate limited"),
            500..=599 => t.fault("slack: 500"),
            _ => {}
        }
        if !p.delivered() {
            return;
        }
        let text = p.text().to_owned();
        let to_channel = p.path.starts_with("/services/") || p.path == "/api/chat.postMessage";
        let edit = p.path == "/api/chat.update";
        if to_channel {
            if let Some(id) = question_id(&p.body) {
                let n = bump(&mut self.ledger.questions, &id);
                if n > 1 {
                    self.violate(
                        t,
                        "question-once",
                        &id,
                        format!("the question of request {id} was posted {n} times"),
                    );
                }
                match ctx {
                    Ctx::Seek { window } => self.window_posted(window.clone(), t),
                    Ctx::Ask { key: Some(key) } => {
                        let n = bump(&mut self.ledger.questions_by_key, key);
                        if n > 1 {
                            self.violate(
                                t,
                                "question-once",
                                key,
                                format!(
                                    "/ask calls with Idempotency-Key {key} posted {n} questions"
                                ),
                            );
                        }
                    }
                    Ctx::Ask { key: None } => {}
                    other => {
                        let what = format!("a question posted while {other:?}");
                        t.outcome(what);
                    }
                }
            } else if text.starts_with("No need to train") {
                match ctx {
                    Ctx::Seek { window } => self.window_posted(window.clone(), t),
                    other => t.outcome(format!("a no-need notice posted while {other:?}")),
                }
            } else if text.starts_with("Here is Kubeflow URL") {
                match ctx {
                    Ctx::Click { request, .. } => {
                        let n = bump(&mut self.ledger.notices, request);
                        if n > 1 {
                            self.violate(
                                t,
                                "notice-once",
                                request,
                                format!(
                                    "the Kubeflow notice of request {request} was posted {n} times"
                                ),
                            );
                        }
                    }
                    other => t.outcome(format!("a Kubeflow notice posted while {other:?}")),
                }
            } else if text.starts_with("Training started: ") {
                match ctx {
                    Ctx::Job { request } => {
                        let n = bump(&mut self.ledger.started, request);
                        if n > 1 {
                            self.violate(
                                t,
                                "started-once",
                                request,
                                format!("\"Training started\" for request {request} was posted {n} times"),
                            );
                        }
                    }
                    other => t.outcome(format!("\"Training started\" posted while {other:?}")),
                }
            } else if text.starts_with("Could not start the training run") {
                t.outcome("posted: could not start the training run");
            } else if text.starts_with("notice ") {
                let n = bump(&mut self.ledger.sends, &text);
                if n > 1 {
                    self.violate(
                        t,
                        "send-once",
                        &text,
                        format!("the /send notice {text:?} was posted {n} times"),
                    );
                }
            } else {
                let head: String = text.chars().take(40).collect();
                t.outcome(format!("posted, other: {head}"));
            }
        }
        if let Ctx::Click {
            request,
            response,
            user,
        } = ctx
        {
            let to_clicker =
                p.path == format!("/actions/{response}") && p.body["replace_original"] == true;
            if (to_clicker || edit) && is_recorded_answer(&text) {
                let told = self
                    .ledger
                    .told_recorded
                    .entry(request.clone())
                    .or_default();
                told.push(user.clone());
                let told = told.clone();
                if told.len() > 1 {
                    self.violate(
                        t,
                        "decision-told-once",
                        request,
                        format!(
                            "{} clicks were each told they decided request {request}: {told:?}",
                            told.len()
                        ),
                    );
                }
            }
        }
    }

    fn window_posted(&mut self, window: String, t: &mut Tally) {
        let n = bump(&mut self.ledger.window_posts, &window);
        if n > 1 {
            self.violate(
                t,
                "window-once",
                &window,
                format!("window {window} was posted {n} times"),
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // The table, checked

    /// The table's items, only the attributes the checks read (moto is slow to send the rest).
    async fn scan(&self) -> Vec<Item> {
        const READ: [&str; 14] = [
            "pk",
            "id",
            "status",
            "decision",
            "snapshot",
            "launch_state",
            "launch_until",
            "run_id",
            "notice_posted_at",
            "notice_until",
            "trained",
            "trained_snapshot_at",
            "request_id",
            "state",
        ];
        let client = aws_sdk_dynamodb::Client::new(&self.w.sdk);
        let projection: Vec<String> = (0..READ.len()).map(|i| format!("#a{i}")).collect();
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut scan = client
                .scan()
                .table_name(&self.w.table)
                .consistent_read(true)
                .projection_expression(projection.join(", "))
                .set_exclusive_start_key(start.take());
            for (i, name) in READ.iter().enumerate() {
                scan = scan.expression_attribute_names(format!("#a{i}"), *name);
            }
            let page = scan.send().await.expect("scan the state table");
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return items,
            }
        }
    }

    pub(super) async fn refresh(&mut self, t: &mut Tally) {
        self.dirty = false;
        let items = self.scan().await;
        let mut dataset = None;
        self.latest = None;
        self.last_approval = None;
        for item in &items {
            let pk = attr_s(item, "pk").unwrap_or_default();
            if pk.starts_with("request#") {
                let r = req_from(item);
                self.requests.insert(r.id.clone(), r);
            } else if pk == "dataset#embedding" {
                dataset = Some((
                    attr_n(item, "trained").unwrap_or(0),
                    attr_n(item, "trained_snapshot_at"),
                ));
            } else if pk == "latest_request" {
                self.latest = attr_s(item, "request_id");
            } else if pk == "last_approval" {
                self.last_approval = attr_s(item, "decision")
                    .and_then(|d| serde_json::from_str::<Value>(&d).ok())
                    .and_then(|d| d["request_id"].as_str().map(str::to_owned));
            } else if let Some(window) = pk.strip_prefix("window#") {
                self.windows
                    .insert(window.to_owned(), attr_s(item, "state").unwrap_or_default());
            }
        }
        // Every decision recorded once: once there, it never changes.
        let decided: Vec<(String, String)> = self
            .requests
            .values()
            .filter_map(|r| Some((r.id.clone(), r.decision_raw.clone()?)))
            .collect();
        for (id, raw) in decided {
            match self.decisions.get(&id) {
                Some(first) if *first != raw => {
                    let first = first.clone();
                    self.violate(
                        t,
                        "decision-once",
                        &id,
                        format!("the decision on request {id} changed from {first} to {raw}"),
                    );
                }
                Some(_) => {}
                None => {
                    self.decisions.insert(id, raw);
                }
            }
        }
        // The click told it decided is the one recorded.
        let told: Vec<(String, String)> = self
            .ledger
            .told_recorded
            .iter()
            .filter_map(|(id, users)| Some((id.clone(), users.first()?.clone())))
            .collect();
        for (id, user) in told {
            let by = self.requests.get(&id).map(|r| r.decided_by().to_owned());
            if by.as_deref() != Some(user.as_str()) {
                self.violate(
                    t,
                    "decision-told-once",
                    &format!("{id} by"),
                    format!("{user} was told their click decided request {id}, but the table says {by:?}"),
                );
            }
        }
        // The trained counts are an approved (with KFP: started) request's snapshot.
        if let Some((trained, at)) = dataset
            && !(trained == 0 && at.is_none())
        {
            let matches = self.requests.values().any(|r| {
                r.approved()
                    && (!self.kfp_mode || r.launch_state.as_deref() == Some("started"))
                    && r.snapshot.as_array().is_some_and(|s| {
                        s.iter().any(|c| {
                            c["name"] == "embedding"
                                && c["seeked"].as_i64() == Some(trained)
                                && c["counted_at"].as_i64() == at
                        })
                    })
            });
            if !matches {
                self.violate(
                    t,
                    "trained-is-approved-snapshot",
                    &format!("{trained} {at:?}"),
                    format!(
                        "dataset embedding is trained at {trained} objects (snapshot of {at:?}), \
                         which is no {} request's snapshot",
                        if self.kfp_mode { "started" } else { "approved" }
                    ),
                );
            }
        }
        // At most one run per approval, and only for approvals.
        let mut runs: BTreeMap<String, u32> = BTreeMap::new();
        for run in self.kfp.runs() {
            *runs.entry(run.display_name).or_default() += 1;
        }
        for (name, n) in runs {
            let id = name.strip_prefix("ct-trigger ").unwrap_or(&name).to_owned();
            if n > 1 {
                self.violate(
                    t,
                    "run-once",
                    &id,
                    format!("{n} Kubeflow runs for request {id}"),
                );
            }
            let approved = self.requests.get(&id).is_some_and(Req::approved);
            if !approved {
                self.violate(
                    t,
                    "run-for-approval",
                    &id,
                    format!("a Kubeflow run for request {id}, which is not approved"),
                );
            }
        }
    }

    /// `--self-check`: what the checks must see, done behind the handlers' backs.
    pub(super) async fn sabotage(&mut self, t: &mut Tally) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.note(format!(
            "e{} self-check: a question posted again, a second run, a decision and the trained \
             count rewritten",
            self.event_no
        ));
        let client = aws_sdk_dynamodb::Client::new(&self.w.sdk);
        let approved = self.requests.values().find(|r| r.approved()).cloned();
        let decided = self
            .requests
            .values()
            .find(|r| r.decision_raw.is_some())
            .cloned();
        // The latest question, posted again (as a second delivery of its window would).
        if let Some(id) = self.latest.clone() {
            let question = ct_shared::slack::messages::ask(&id, &[]);
            let ok = reqwest::Client::new()
                .post(self.w.slack.webhook_url())
                .header("content-type", "application/json")
                .body(question.to_string())
                .send()
                .await
                .is_ok();
            self.note(format!("    the question of {id} posted again: {ok}"));
            self.absorb(
                &Ctx::Seek {
                    window: "self-check".into(),
                },
                t,
            );
        }
        if let Some(r) = &approved {
            let name = ct_shared::kfp::display_name(&r.id);
            self.kfp.add_run(&name, Some("exp-1"));
            self.kfp.add_run(&name, Some("exp-1"));
        }
        if let Some(r) = &decided {
            let mut changed = r.decision.clone();
            changed["by"]["id"] = "U0MALLORY".into();
            let _ = client
                .update_item()
                .table_name(&self.w.table)
                .key("pk", AttributeValue::S(format!("request#{}", r.id)))
                .update_expression("SET decision = :d")
                .expression_attribute_values(":d", AttributeValue::S(changed.to_string()))
                .send()
                .await;
        }
        let _ = client
            .update_item()
            .table_name(&self.w.table)
            .key("pk", AttributeValue::S("dataset#embedding".into()))
            .update_expression("SET trained = :n")
            .expression_attribute_values(":n", AttributeValue::N("12345".into()))
            .send()
            .await;
    }

    // -----------------------------------------------------------------------------------------
    // The end of a round

    pub(super) fn nothing_lost(&mut self, t: &mut Tally) {
        let runs: BTreeMap<String, String> = self
            .kfp
            .runs()
            .into_iter()
            .map(|r| (r.display_name, r.run_id))
            .collect();
        let approved: Vec<Req> = self
            .requests
            .values()
            .filter(|r| r.approved())
            .cloned()
            .collect();
        for r in approved {
            let id = &r.id;
            if self.kfp_mode {
                match r.launch_state.as_deref() {
                    Some("started") => {
                        let name = ct_shared::kfp::display_name(id);
                        if runs.get(&name) != r.run_id.as_ref() {
                            self.violate(
                                t,
                                "nothing-lost",
                                id,
                                format!(
                                    "request {id} records run {:?}, but Kubeflow has {:?}",
                                    r.run_id,
                                    runs.get(&name)
                                ),
                            );
                        }
                        t.outcome("approval at the end: run started");
                    }
                    Some("failed") => t.outcome("approval at the end: launch failed (recorded)"),
                    state if self.last_approval.as_deref() != Some(id.as_str())
                        && state.is_some() =>
                    {
                        t.outcome(format!(
                            "approval at the end: {state:?}, overtaken by a newer approval"
                        ));
                    }
                    state => self.violate(
                        t,
                        "nothing-lost",
                        id,
                        format!("approved request {id} has neither a started run nor a recorded failure ({state:?})"),
                    ),
                }
            } else if self.ledger.notices.get(id).copied().unwrap_or(0) == 0 {
                self.violate(
                    t,
                    "nothing-lost",
                    id,
                    format!("approved request {id} never had its Kubeflow notice posted"),
                );
            }
        }
        for id in self.asks_accepted.clone() {
            let exists = self.requests.contains_key(&id);
            let asked = self.ledger.questions.get(&id).copied().unwrap_or(0);
            if !exists || asked == 0 {
                self.violate(
                    t,
                    "nothing-lost",
                    &id,
                    format!("/ask accepted request {id}, but it is stored: {exists}, posted {asked} times"),
                );
            }
        }
        for (window, request) in self.windows_ok.clone() {
            let posted = match &request {
                Some(id) => self.ledger.questions.get(id).copied().unwrap_or(0),
                None => self.ledger.window_posts.get(&window).copied().unwrap_or(0),
            };
            if posted == 0 {
                self.violate(
                    t,
                    "nothing-lost",
                    &window,
                    format!("window {window} was delivered (request {request:?}) but never posted"),
                );
            }
        }
        for window in self.windows_tried.clone() {
            let state = self.windows.get(&window).cloned();
            if state.as_deref() != Some("posted") {
                self.violate(
                    t,
                    "nothing-lost",
                    &format!("{window} state"),
                    format!("window {window} is {state:?} after Lambda's retries, not posted"),
                );
            }
        }
        for text in self.sends_accepted.clone() {
            if self.ledger.sends.get(&text).copied().unwrap_or(0) == 0 {
                self.violate(
                    t,
                    "nothing-lost",
                    &text,
                    format!("/send answered 204 for {text:?}, which was never posted"),
                );
            }
        }
    }
}

fn bump(map: &mut BTreeMap<String, u32>, key: &str) -> u32 {
    let n = map.entry(key.to_owned()).or_default();
    *n += 1;
    *n
}
