//! The read-only status view: each dataset's counts, the latest approval request and its
//! state, and the last decision. JSON for programs, a few lines of text for people.

use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DatasetState, HistoryEntry, LaunchState, RunRecord, Status};
use ct_shared::domain::{
    Approval, ApprovalRequest, Count, Decision, QualitySignal, RequestKind, Threshold, Training,
    bytes_text,
};
use serde::Serialize;

/// A request's state as the status view names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Declined,
    /// Nobody decided it within `REQUEST_TTL`.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetView {
    pub name: String,
    pub prefix: String,
    pub seeked: u64,
    pub seeked_at: Option<String>,
    pub trained: u64,
    pub trained_at: Option<String>,
    /// The latest count: its objects and bytes, and against the trained baseline, the objects
    /// new or rewritten since, their bytes, the objects removed, and whether the content
    /// changed at all (fingerprints differ).
    pub objects: u64,
    pub bytes: u64,
    pub new_objects: u64,
    pub new_bytes: u64,
    pub removed: u64,
    pub changed: bool,
    /// When the latest count began.
    pub counted_at: Option<String>,
    /// When the baseline's count began (the approved snapshot's time); `None` with nothing
    /// trained, or a baseline from before change detection.
    pub snapshot_at: Option<String>,
    /// The threshold seek last applied (absent until seek has counted with it): a number of
    /// objects, `{"percent": p}` or `{"bytes": n}`.
    pub threshold: Option<Threshold>,
    /// The same, as a person reads it ("100 objects", "2.5%", "1.0 GB").
    pub threshold_text: Option<String>,
    /// The last windows, newest first.
    pub history: Vec<WindowView>,
}

/// One dataset in one past window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowView {
    pub at: String,
    pub seeked: u64,
    pub trained: u64,
    pub asked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    pub request_id: String,
    pub choice: &'static str,
    pub outcome: RequestState,
    pub by: PersonView,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    pub id: String,
    /// `data` (seek) or `quality` (`POST /ask`).
    pub kind: RequestKind,
    /// A quality request's reason, metric, value, threshold and source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<QualitySignal>,
    pub state: RequestState,
    pub created_at: String,
    pub window: String,
    pub snapshot: Vec<Count>,
    pub decision: Option<DecisionView>,
}

/// The training run the latest approval launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunView {
    pub request_id: String,
    /// `not_launched` (no Kubeflow Pipelines configured, or not yet), `starting`, `started`,
    /// `failed` or `retrying`.
    pub launch: &'static str,
    pub run_id: Option<String>,
    /// KFP's state of the run when it was started (e.g. `PENDING`).
    pub run_state: Option<String>,
    pub pipeline_version_id: Option<String>,
    pub link: Option<String>,
    pub reason: Option<String>,
}

/// The latest approval and where its training stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalView {
    pub request_id: String,
    pub asked_at: String,
    pub approved_at: String,
    pub by: PersonView,
    /// `started`, `failed: <reason>` or `starting`: approved is not trained until its run
    /// has started.
    pub training: String,
    pub run_id: Option<String>,
}

/// `GET /status` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    pub datasets: Vec<DatasetView>,
    pub latest_request: Option<RequestView>,
    pub last_decision: Option<DecisionView>,
    pub latest_approval: Option<ApprovalView>,
    pub latest_run: Option<RunView>,
}

fn approval(a: &Approval) -> ApprovalView {
    ApprovalView {
        request_id: a.request_id.clone(),
        asked_at: a.asked_at.rfc3339(),
        approved_at: a.decision.at.rfc3339(),
        by: PersonView {
            id: a.decision.by.id.clone(),
            name: a.decision.by.name.clone(),
        },
        training: a.state(),
        run_id: match &a.training {
            Training::Started { run_id } => run_id.clone(),
            _ => None,
        },
    }
}

fn run(r: &RunRecord) -> RunView {
    let mut view = RunView {
        request_id: r.request_id.clone(),
        launch: "not_launched",
        run_id: None,
        run_state: None,
        pipeline_version_id: None,
        link: None,
        reason: None,
    };
    match &r.launch {
        None => {}
        Some(LaunchState::Launching { .. }) => view.launch = "starting",
        Some(LaunchState::RetryRequested { .. }) => view.launch = "retrying",
        Some(LaunchState::Started {
            run_id,
            pipeline_version_id,
            run_state,
            ..
        }) => {
            view.launch = "started";
            view.run_id = Some(run_id.clone());
            view.run_state = Some(run_state.clone());
            view.pipeline_version_id = Some(pipeline_version_id.clone());
        }
        Some(LaunchState::Failed { reason, .. }) => {
            view.launch = "failed";
            view.reason = Some(reason.clone());
        }
    }
    view
}

fn time(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::rfc3339)
}

fn decision(d: &Decision) -> DecisionView {
    DecisionView {
        request_id: d.request_id.clone(),
        choice: d.choice.as_str(),
        outcome: outcome(d),
        by: PersonView {
            id: d.by.id.clone(),
            name: d.by.name.clone(),
        },
        at: d.at.rfc3339(),
    }
}

fn outcome(d: &Decision) -> RequestState {
    match d.choice {
        ct_shared::domain::Choice::Train => RequestState::Approved,
        ct_shared::domain::Choice::Nope => RequestState::Declined,
    }
}

fn dataset(d: &DatasetState, history: &[HistoryEntry]) -> DatasetView {
    let c = d.count();
    DatasetView {
        history: history
            .iter()
            .map(|h| WindowView {
                at: h.at.rfc3339(),
                seeked: h.seeked,
                trained: h.trained,
                asked: h.asked,
            })
            .collect(),
        name: d.name.clone(),
        prefix: d.prefix.clone(),
        seeked: d.seeked,
        seeked_at: time(d.seeked_at),
        trained: d.trained,
        trained_at: time(d.trained_at),
        objects: c.seeked,
        bytes: c.bytes,
        new_objects: c.new_objects(),
        new_bytes: c.new_bytes,
        removed: c.removed(),
        changed: c.changed(),
        counted_at: time(c.counted_at),
        snapshot_at: time(d.baseline.snapshot_at),
        threshold: d.threshold,
        threshold_text: d.threshold.map(|t| t.text()),
    }
}

fn request(r: &ApprovalRequest) -> RequestView {
    RequestView {
        id: r.id.clone(),
        kind: r.kind(),
        signal: r.signal.clone(),
        state: match (&r.decision, r.expired_at) {
            (Some(d), _) => outcome(d),
            (None, Some(_)) => RequestState::Expired,
            (None, None) => RequestState::Pending,
        },
        created_at: r.created_at.rfc3339(),
        window: r.window.clone(),
        snapshot: r.snapshot.clone(),
        decision: r.decision.as_ref().map(decision),
    }
}

impl StatusView {
    pub fn from_status(s: &Status) -> Self {
        Self {
            datasets: s
                .datasets
                .iter()
                .map(|d| dataset(d, s.history.get(&d.name).map_or(&[], Vec::as_slice)))
                .collect(),
            latest_request: s.latest_request.as_ref().map(request),
            last_decision: s.last_decision.as_ref().map(decision),
            latest_approval: s.latest_approval.as_ref().map(approval),
            latest_run: s.latest_run.as_ref().map(run),
        }
    }

    /// Adds the KFP UI's page to the latest run, when the UI's address is known.
    pub fn with_run_links(mut self, kubeflow_url: Option<&str>) -> Self {
        if let (Some(base), Some(r)) = (kubeflow_url, self.latest_run.as_mut())
            && let Some(id) = &r.run_id
        {
            r.link = Some(ct_shared::kfp::run_link(base, id));
        }
        self
    }

    /// The short, human-readable form (`Accept: text/plain`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.datasets.is_empty() {
            out.push_str("No dataset counted yet.\n");
        } else {
            out.push_str("Datasets:\n");
        }
        for d in &self.datasets {
            out.push_str(&format!(
                "  {} ({}): {} seen{}, {} trained{}, {} new",
                d.name,
                d.prefix,
                d.seeked,
                d.seeked_at
                    .as_ref()
                    .map_or(String::new(), |t| format!(" at {t}")),
                d.trained,
                d.trained_at
                    .as_ref()
                    .map_or(" (never)".to_owned(), |t| format!(" at {t}")),
                d.new_objects
            ));
            out.push_str(&format!(
                " ({} new or rewritten), {} removed{}{}{}; {} now\n",
                bytes_text(d.new_bytes),
                d.removed,
                d.snapshot_at
                    .as_ref()
                    .map_or(String::new(), |t| format!(" since the snapshot of {t}")),
                if d.changed { "; content changed" } else { "" },
                d.threshold_text
                    .as_ref()
                    .map_or(String::new(), |t| format!("; threshold {t}")),
                bytes_text(d.bytes),
            ));
            if !d.history.is_empty() {
                out.push_str("    window                 seeked  trained  asked\n");
            }
            for h in &d.history {
                out.push_str(&format!(
                    "    {:<22} {:>6}  {:>7}  {}\n",
                    h.at,
                    h.seeked,
                    h.trained,
                    if h.asked { "yes" } else { "no" }
                ));
            }
        }
        match &self.latest_request {
            None => out.push_str("No approval request yet.\n"),
            Some(r) => {
                let state = match &r.decision {
                    None => word(r.state).to_owned(),
                    Some(d) => format!(
                        "{} by {} ({}) at {}",
                        word(d.outcome),
                        d.by.name,
                        d.by.id,
                        d.at
                    ),
                };
                let why = match &r.signal {
                    Some(s) => format!("quality: {}; ", s.reason),
                    None => "data; ".to_owned(),
                };
                out.push_str(&format!(
                    "Latest request {} ({why}asked at {}): {state}\n",
                    r.id, r.created_at
                ));
            }
        }
        match &self.last_decision {
            None => out.push_str("No decision yet.\n"),
            Some(d) => out.push_str(&format!(
                "Last decision: {} by {} ({}) at {}, request {}\n",
                word(d.outcome),
                d.by.name,
                d.by.id,
                d.at,
                d.request_id
            )),
        }
        if let Some(a) = &self.latest_approval {
            out.push_str(&format!(
                "Latest approval: request {} (asked at {}), approved by {} ({}) at {}: {}\n",
                a.request_id, a.asked_at, a.by.name, a.by.id, a.approved_at, a.training
            ));
        }
        if let Some(r) = &self.latest_run {
            let detail = match (r.launch, &r.run_id) {
                ("started", Some(id)) => format!(
                    "run {id} ({}){}",
                    r.run_state.as_deref().unwrap_or("?"),
                    r.link.as_ref().map_or(String::new(), |l| format!(" {l}"))
                ),
                ("failed", _) => format!(
                    "could not start: {}",
                    r.reason.as_deref().unwrap_or("no reason recorded")
                ),
                (other, _) => other.replace('_', " "),
            };
            out.push_str(&format!(
                "Latest training run (request {}): {detail}\n",
                r.request_id
            ));
        }
        // Names come from Slack and the configuration: keep the view to plain lines.
        out.chars()
            .filter(|c| *c == '\n' || !c.is_control())
            .collect()
    }
}

fn word(s: RequestState) -> &'static str {
    match s {
        RequestState::Pending => "pending",
        RequestState::Approved => "approved",
        RequestState::Declined => "declined",
        RequestState::Expired => "expired",
    }
}

/// Whether the client asked for text rather than JSON: `text/plain` weighs more than
/// `application/json` in its `Accept` header. JSON is the default, and wins ties.
pub fn wants_text(accept: Option<&[u8]>) -> bool {
    let Some(accept) = accept.and_then(|a| std::str::from_utf8(a).ok()) else {
        return false;
    };
    // The q of the most specific range that matches each candidate.
    let mut best = [(0u8, 0.0f32), (0u8, 0.0f32)]; // [json, text]: (specificity, q)
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .filter(|q| q.is_finite())
            .map_or(1.0, |q| q.clamp(0.0, 1.0));
        for (i, (ty, sub)) in [("application", "json"), ("text", "plain")]
            .iter()
            .enumerate()
        {
            let specificity = match media.split_once('/') {
                Some((t, s)) if t == *ty && s == *sub => 3,
                Some((t, "*")) if t == *ty => 2,
                Some(("*", "*")) => 1,
                _ => 0,
            };
            if specificity > best[i].0 {
                best[i] = (specificity, q);
            }
        }
    }
    best[1].1 > best[0].1
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_shared::domain::{Choice, Person};

    fn status(decided: bool) -> Status {
        let d = Decision {
            request_id: "req1".into(),
            choice: Choice::Train,
            by: Person {
                id: "U1".into(),
                name: "ann".into(),
            },
            at: Timestamp::from_secs(1_795_900_000),
        };
        Status {
            datasets: vec![DatasetState {
                name: "embedding".into(),
                prefix: "train/embedding/".into(),
                seeked: 150,
                seeked_at: Some(Timestamp::from_secs(1_795_478_400)),
                trained: if decided { 150 } else { 0 },
                trained_at: decided.then_some(d.at),
                threshold: Some(Threshold::Objects(100)),
                latest: None,
                baseline: ct_shared::domain::Baseline {
                    objects: if decided { 150 } else { 0 },
                    ..Default::default()
                },
            }],
            latest_request: Some(ApprovalRequest {
                id: "req1".into(),
                created_at: Timestamp::from_secs(1_795_478_400),
                window: "scheduled#2026-11-24T00:00:00Z".into(),
                snapshot: vec![],
                decision: decided.then(|| d.clone()),
                signal: None,
                posted: None,
                expired_at: None,
            }),
            last_decision: decided.then_some(d),
            latest_approval: None,
            latest_run: decided.then(|| RunRecord {
                request_id: "req1".into(),
                launch: Some(LaunchState::Started {
                    owner: "job".into(),
                    run_id: "run-7".into(),
                    pipeline_version_id: "v-2".into(),
                    run_state: "PENDING".into(),
                    at: Timestamp::from_secs(1_795_900_010),
                }),
            }),
            history: [(
                "embedding".to_owned(),
                vec![
                    HistoryEntry {
                        at: Timestamp::from_secs(1_795_478_400),
                        seeked: 150,
                        trained: 0,
                        asked: true,
                    },
                    HistoryEntry {
                        at: Timestamp::from_secs(1_794_873_600),
                        seeked: 40,
                        trained: 0,
                        asked: false,
                    },
                ],
            )]
            .into(),
        }
    }

    #[test]
    fn the_latest_run_is_shown_with_its_link() {
        let v = StatusView::from_status(&status(true))
            .with_run_links(Some("https://kf.example.com/pipeline/"));
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["latest_run"]["launch"], "started");
        assert_eq!(j["latest_run"]["run_id"], "run-7");
        assert_eq!(
            j["latest_run"]["link"],
            "https://kf.example.com/pipeline/#/runs/details/run-7"
        );
        assert!(
            v.to_text().contains(
                "Latest training run (request req1): run run-7 (PENDING) https://kf.example.com/pipeline/#/runs/details/run-7"
            ),
            "{}",
            v.to_text()
        );
        let mut failed = status(true);
        failed.latest_run.as_mut().unwrap().launch = Some(LaunchState::Failed {
            owner: "job".into(),
            reason: "Kubeflow needs authentication (HTTP 401)".into(),
            attempts: 1,
            at: Timestamp::from_secs(0),
        });
        let t = StatusView::from_status(&failed).to_text();
        assert!(
            t.contains("could not start: Kubeflow needs authentication"),
            "{t}"
        );
        assert!(StatusView::from_status(&status(false)).latest_run.is_none());
    }

    #[test]
    fn json_names_states_and_times() {
        let v = serde_json::to_value(StatusView::from_status(&status(false))).unwrap();
        assert_eq!(v["datasets"][0]["new_objects"], 150);
        assert_eq!(v["datasets"][0]["seeked_at"], "2026-11-24T00:00:00Z");
        assert_eq!(v["datasets"][0]["trained_at"], serde_json::Value::Null);
        assert_eq!(v["latest_request"]["state"], "pending");
        assert_eq!(v["last_decision"], serde_json::Value::Null);
        let v = serde_json::to_value(StatusView::from_status(&status(true))).unwrap();
        assert_eq!(v["latest_request"]["state"], "approved");
        assert_eq!(v["last_decision"]["by"]["name"], "ann");
        assert_eq!(v["last_decision"]["choice"], "train");
        assert_eq!(v["last_decision"]["at"], "2026-11-28T21:06:40Z");
    }

    #[test]
    fn text_is_a_few_plain_lines() {
        let empty = StatusView::from_status(&Status {
            datasets: vec![],
            latest_request: None,
            last_decision: None,
            latest_approval: None,
            latest_run: None,
            history: Default::default(),
        });
        assert_eq!(
            empty.to_text(),
            "No dataset counted yet.\nNo approval request yet.\nNo decision yet.\n"
        );
        let t = StatusView::from_status(&status(false)).to_text();
        assert!(t.contains("embedding (train/embedding/): 150 seen at 2026-11-24T00:00:00Z, 0 trained (never), 150 new"), "{t}");
        assert!(
            t.contains("Latest request req1 (data; asked at 2026-11-24T00:00:00Z): pending"),
            "{t}"
        );
        assert!(
            t.contains(
                "    window                 seeked  trained  asked\n    \
                 2026-11-24T00:00:00Z      150        0  yes\n    \
                 2026-11-17T00:00:00Z       40        0  no\n"
            ),
            "{t}"
        );
        let t = StatusView::from_status(&status(true)).to_text();
        assert!(
            t.contains("approved by ann (U1) at 2026-11-28T21:06:40Z"),
            "{t}"
        );
        assert!(t.contains("Last decision: approved by ann (U1)"), "{t}");
        let mut s = status(true);
        s.last_decision.as_mut().unwrap().by.name = "evil\u{1b}[31m\r".into();
        let t = StatusView::from_status(&s).to_text();
        assert!(!t.contains('\u{1b}') && !t.contains('\r'), "{t:?}");
    }

    #[test]
    fn accept_negotiation() {
        for (accept, text) in [
            (None, false),
            (Some("text/plain"), true),
            (Some("TEXT/PLAIN; charset=utf-8"), true),
            (Some("application/json"), false),
            (Some("*/*"), false),
            (Some("text/*"), true),
            (Some("text/plain, application/json"), false),
            (Some("application/json;q=0.5, text/plain"), true),
            (Some("text/plain;q=0.2, */*;q=0.1"), true),
            (Some("text/plain;q=0"), false),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                false,
            ),
            (Some("text/plain;q=nan"), true),
            (Some("garbage;;;==,"), false),
        ] {
            assert_eq!(wants_text(accept.map(str::as_bytes)), text, "{accept:?}");
        }
    }
}
