//! One round of the soak: a world of its own (bucket, table, Slack, Kubeflow Pipelines), the
//! real seek, actions and send handlers built as `main` builds them (their DynamoDB calls going
//! through the fault-injecting proxy), and a run of random events with random faults. After
//! every event the stand-ins' records and the table are checked against the round's model; at
//! the end the faults are healed, what was owed is given its chance (Lambda's retries, a later
//! press), and nothing may be lost.
//!
//! Lambda is played here: an async invocation (a launch job, a count from `/ct-trigger seek`)
//! is queued by [`Queue`] and delivered by the round, soon or later, sometimes twice, and again
//! (same request id) after an error, as Lambda retries it.

use crate::rng::Rng;
use crate::tally::Tally;
use actions::Actions;
use actions::launch::{LaunchJob, LaunchOutcome, LiveLauncher};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DynamoStore, NOTICE_DUTY_SECS, Patience};
use ct_shared::aws::invoke::{AsyncInvoker, InvokeError};
use ct_shared::config::{ActionsConfig, Env, SecretBundle, SeekConfig, SendConfig};
use ct_shared::slack::SlackClient;
use harness::World;
use harness::dynamo_proxy::{DynamoProxy, Fault};
use harness::events::{function_url_event, http_request, invocation, scheduled_event};
use harness::kfp::{self, KfpStandIn};
use harness::slack::{Post, Reply};
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DATASETS: &str = "embedding=train/embedding/";
const PREFIX: &str = "train/embedding/";
const FORM: &str = "application/x-www-form-urlencoded";
const SEND_TOKEN: &str = "soak-send-t0ken";
const FIRST_WEEK: &str = "2026-11-24T00:00:00Z";
const WEEK_SECS: i64 = 7 * 24 * 3600;
const USERS: [(&str, &str); 3] = [("U0ANN", "ann"), ("U0BOB", "bob"), ("U0CAROL", "carol")];
const PARAMETERS: &str = r#"{"rows": "${seeked.embedding}", "fresh": "${new.embedding}", "tag": "ct-${request_id} by ${approved_by}"}"#;
const DYNAMO_OPS: [(&str, u64); 5] = [
    ("GetItem", 30),
    ("UpdateItem", 30),
    ("TransactWriteItems", 20),
    ("PutItem", 15),
    ("DeleteItem", 5),
];
/// How long a launch job's invocation may run here: its lease lasts this, plus the margin.
const JOB_SECS: i64 = 8;
/// Lambda's attempts at one async invocation: the first and two retries.
const LAMBDA_ATTEMPTS: usize = 3;

/// How the soak runs, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Also plan faults past the handlers' retries: throttling and 5xx for 8 calls, and
    /// answers slower than an attempt's timeout (the write lands after the caller gave up).
    pub outages: bool,
    /// Break things on purpose in the middle of each round (a question posted again, a second
    /// run, a decision and the trained count rewritten), to show the checks see them.
    pub self_check: bool,
    /// Print every event as it runs.
    pub verbose: bool,
}

/// The Lambda Invoke API as actions sees it: queues the payload (or refuses, as planned).
#[derive(Clone, Default)]
pub struct Queue(Arc<Mutex<QueueState>>);

#[derive(Default)]
struct QueueState {
    queued: VecDeque<Value>,
    refuse: u32,
    refused: u64,
}

impl Queue {
    fn pop(&self) -> Option<Value> {
        self.0.lock().ok()?.queued.pop_front()
    }
    fn refuse_next(&self, n: u32) {
        if let Ok(mut q) = self.0.lock() {
            q.refuse = n;
        }
    }
    fn refused(&self) -> u64 {
        self.0.lock().map(|q| q.refused).unwrap_or(0)
    }
    fn len(&self) -> usize {
        self.0.lock().map(|q| q.queued.len()).unwrap_or(0)
    }
}

impl AsyncInvoker for Queue {
    fn invoke_async(
        &self,
        payload: &Value,
    ) -> impl std::future::Future<Output = Result<(), InvokeError>> + Send {
        let refused = |reason: &str| InvokeError {
            function: "soak".into(),
            reason: reason.into(),
        };
        let answer = match self.0.lock() {
            Ok(mut q) if q.refuse > 0 => {
                q.refuse -= 1;
                q.refused += 1;
                Err(refused("Lambda answered 500 (planned by the soak)"))
            }
            Ok(mut q) => {
                q.queued.push_back(payload.clone());
                Ok(())
            }
            Err(_) => Err(refused("the queue is poisoned")),
        };
        std::future::ready(answer)
    }
}

/// What an event was doing when Slack was given something: to whom a post is owed.
#[derive(Debug, Clone)]
enum Ctx {
    Seek {
        window: String,
    },
    Click {
        request: String,
        response: String,
        user: String,
    },
    Retry,
    Job {
        request: String,
    },
    Ask {
        key: Option<String>,
    },
    Other,
}

/// What Slack was given (delivered), counted as the invariants need it.
#[derive(Default)]
struct Ledger {
    /// Request id: questions with its buttons posted to the channel.
    questions: BTreeMap<String, u32>,
    /// Idempotency-Key: questions posted by `/ask` calls with it.
    questions_by_key: BTreeMap<String, u32>,
    /// Window key: its message (a question or "No need to train") posted.
    window_posts: BTreeMap<String, u32>,
    /// Request id: "Here is Kubeflow URL" posted for it.
    notices: BTreeMap<String, u32>,
    /// Request id: "Training started" posted for it.
    started: BTreeMap<String, u32>,
    /// A `/send` notice's text: times posted.
    sends: BTreeMap<String, u32>,
    /// Request id: the clickers told that their click decided it.
    told_recorded: BTreeMap<String, Vec<String>>,
}

/// A request item as the table holds it.
#[derive(Debug, Clone, Default)]
struct Req {
    id: String,
    status: String,
    decision_raw: Option<String>,
    decision: Value,
    snapshot: Value,
    launch_state: Option<String>,
    launch_until: Option<i64>,
    run_id: Option<String>,
    notice_posted_at: Option<i64>,
    notice_until: Option<i64>,
}

impl Req {
    fn approved(&self) -> bool {
        self.status == "approved" && self.decision["choice"] == "train"
    }
    fn decided_at(&self) -> i64 {
        self.decision["at"].as_i64().unwrap_or(0)
    }
    fn decided_by(&self) -> &str {
        self.decision["by"]["id"].as_str().unwrap_or_default()
    }
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

fn attr_s(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn attr_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn req_from(item: &Item) -> Req {
    let decision_raw = attr_s(item, "decision");
    Req {
        id: attr_s(item, "id").unwrap_or_default(),
        status: attr_s(item, "status").unwrap_or_default(),
        decision: decision_raw
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null),
        decision_raw,
        snapshot: attr_s(item, "snapshot")
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null),
        launch_state: attr_s(item, "launch_state"),
        launch_until: attr_n(item, "launch_until"),
        run_id: attr_s(item, "run_id"),
        notice_posted_at: attr_n(item, "notice_posted_at"),
        notice_until: attr_n(item, "notice_until"),
    }
}

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

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn dynamo_fault_name(f: Fault) -> &'static str {
    match f {
        Fault::CommitThenLose => "dynamodb: committed, answer lost",
        Fault::Throttle => "dynamodb: throttled",
        Fault::ProvisionedThroughput => "dynamodb: provisioned throughput exceeded",
        Fault::ServerError => "dynamodb: 500",
        Fault::Slow => "dynamodb: slow answer",
    }
}

/// Planned Kubeflow Pipelines faults: they stay planned until launch jobs have hit them all,
/// or for a few events (a launch job may run only later).
struct KfpPlan {
    call: kfp::Call,
    n: usize,
    hits: usize,
    /// Calls the stand-in had seen when last counted.
    seen: usize,
    events: u32,
    kind: &'static str,
}

fn kfp_matches(call: kfp::Call, seen: &kfp::Seen) -> bool {
    let runs = seen.path == "/apis/v2beta1/runs";
    match call {
        kfp::Call::Any => true,
        kfp::Call::CreateRun => runs && seen.method == "POST",
        kfp::Call::ListRuns => runs && seen.method == "GET",
        kfp::Call::GetRun => seen.path.starts_with("/apis/v2beta1/runs/"),
        kfp::Call::GetPipeline => seen.path.starts_with("/apis/v2beta1/pipelines/names/"),
        kfp::Call::ListVersions => seen.path.ends_with("/versions"),
    }
}

/// What an HTTP handler answered.
struct Http {
    status: u16,
    body: Value,
    replayed: bool,
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

fn http_answer(resp: &lambda_http::Response<lambda_http::Body>) -> Http {
    let bytes: &[u8] = resp.body().as_ref();
    Http {
        status: resp.status().as_u16(),
        body: serde_json::from_slice(bytes).unwrap_or(Value::Null),
        replayed: resp.headers().contains_key("idempotent-replayed"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AddObjects,
    Seek,
    SeekAgain,
    Click,
    ClickTwice,
    Retry,
    Jobs,
    Ask,
    Send,
    SlashStatus,
    SlashSeek,
}

const KINDS: [(Kind, u64); 11] = [
    (Kind::AddObjects, 11),
    (Kind::Seek, 7),
    (Kind::SeekAgain, 4),
    (Kind::Click, 24),
    (Kind::ClickTwice, 4),
    (Kind::Retry, 5),
    (Kind::Jobs, 7),
    (Kind::Ask, 8),
    (Kind::Send, 8),
    (Kind::SlashStatus, 4),
    (Kind::SlashSeek, 2),
];

/// A press the settle owes: who presses what, and not before when (epoch seconds).
#[derive(Debug, Clone)]
enum Press {
    Train(String),
    Retry(String),
}

pub struct Round {
    pub index: u64,
    pub seed: u64,
    rng: Rng,
    settings: Settings,
    pub kfp_mode: bool,
    pub web_api: bool,
    w: World,
    proxy: DynamoProxy,
    kfp: KfpStandIn,
    seeker: seek::LiveSeeker,
    actions: Actions<DynamoStore, SlackClient, Queue>,
    launcher: Option<LiveLauncher>,
    sender: send::LiveSender,
    launches: Queue,
    seeks: Queue,
    first_week: Timestamp,
    weeks: i64,
    objects: usize,
    counter: u64,
    /// Window key: the event and every delivery id that failed it, for Lambda's retries.
    failed: BTreeMap<String, (Value, Vec<String>)>,
    /// Window key: the request its successful delivery reported.
    windows_ok: BTreeMap<String, Option<String>>,
    windows_tried: BTreeSet<String>,
    ask_keys: Vec<String>,
    ask_answers: BTreeMap<String, String>,
    asks_accepted: BTreeSet<String>,
    send_keys: Vec<String>,
    sends_accepted: BTreeSet<String>,
    ledger: Ledger,
    requests: BTreeMap<String, Req>,
    windows: BTreeMap<String, String>,
    latest: Option<String>,
    last_approval: Option<String>,
    decisions: BTreeMap<String, String>,
    reported: BTreeSet<String>,
    posts_seen: usize,
    calls_seen: usize,
    refused_seen: u64,
    kfp_plan: Option<KfpPlan>,
    log: Vec<String>,
    event_no: u64,
    /// Something that decides, launches or moves the baseline ran since the last scan.
    dirty: bool,
    /// The event running, and its faults, for a violation's report.
    current: String,
}

fn config_error(what: &str) -> impl Fn(ct_shared::config::ConfigError) -> String + '_ {
    move |e| format!("{what} config: {e}")
}

impl Round {
    pub async fn start(index: u64, seed: u64, settings: Settings) -> Result<Self, String> {
        let mut rng = Rng::new(seed);
        let kfp_mode = rng.chance(70);
        let web_api = rng.chance(30);
        let w = World::new().await;
        let proxy = DynamoProxy::in_front_of_moto().await;
        let kfp = KfpStandIn::start().await;
        let sdk = proxy.sdk().await;
        let slack_env = |mut env: Vec<(String, String)>| {
            if web_api {
                env.retain(|(k, _)| k != "SLACK_WEBHOOK_URL");
                env.extend(w.api_env());
            }
            env
        };
        let seek_env = slack_env(w.seek_env(DATASETS, 100));
        let seek_config =
            SeekConfig::from_env(&Env::from_pairs(seek_env), &SecretBundle::default())
                .map_err(config_error("seek"))?;
        let seeker = seek::LiveSeeker::live(seek_config, &sdk).map_err(|e| e.to_string())?;

        let mut actions_env = slack_env(w.actions_env());
        for (k, v) in [
            ("SEEK_FUNCTION_NAME", "ct-seek"),
            ("SEEK_COOLDOWN_MINUTES", "0"),
        ] {
            actions_env.push((k.into(), v.into()));
        }
        if kfp_mode {
            for (k, v) in [
                ("KFP_ENDPOINT", kfp.base.as_str()),
                ("KFP_PIPELINE_NAME", "retrain"),
                ("KFP_EXPERIMENT_ID", "exp-1"),
                ("KFP_PARAMETERS", PARAMETERS),
                ("KFP_TIMEOUT_SECS", "1"),
                ("DATASETS", DATASETS),
                ("LAUNCH_FUNCTION_NAME", "ct-actions"),
            ] {
                actions_env.push((k.into(), v.into()));
            }
        }
        let config =
            ActionsConfig::from_env(&Env::from_pairs(actions_env), &SecretBundle::default())
                .map_err(config_error("actions"))?;
        let mut launcher = LiveLauncher::live(&config, &sdk).map_err(|e| e.to_string())?;
        if let Some(l) = launcher.as_mut() {
            // Between attempts at starting a run: shorter than deployed, the same order.
            l.backoff = Duration::from_millis(50);
        }
        let launches = Queue::default();
        let seeks = Queue::default();
        let actions = Actions {
            store: DynamoStore::with_patience(
                &sdk,
                config.common.state_table.clone(),
                Patience::INTERACTIVE,
            ),
            slack: SlackClient::new().map_err(|e| e.to_string())?,
            launches: config.kfp.is_some().then(|| launches.clone()),
            seeks: Some(seeks.clone()),
            config,
        };

        let send_env = slack_env(vec![
            ("STATE_TABLE".to_owned(), w.table.clone()),
            ("SLACK_WEBHOOK_URL".to_owned(), w.slack.webhook_url()),
            ("SEND_URL_AUTH".to_owned(), "NONE".to_owned()),
            ("SEND_TOKEN".to_owned(), SEND_TOKEN.to_owned()),
        ]);
        let send_config =
            SendConfig::from_env(&Env::from_pairs(send_env), &SecretBundle::default())
                .map_err(config_error("send"))?;
        let sender = send::LiveSender::live(send_config, &sdk).map_err(|e| e.to_string())?;
        let first_week = Timestamp::parse_rfc3339(FIRST_WEEK).ok_or("bad first week")?;
        Ok(Self {
            index,
            seed,
            rng,
            settings,
            kfp_mode,
            web_api,
            w,
            proxy,
            kfp,
            seeker,
            actions,
            launcher,
            sender,
            launches,
            seeks,
            first_week,
            weeks: 0,
            objects: 0,
            counter: 0,
            failed: BTreeMap::new(),
            windows_ok: BTreeMap::new(),
            windows_tried: BTreeSet::new(),
            ask_keys: Vec::new(),
            ask_answers: BTreeMap::new(),
            asks_accepted: BTreeSet::new(),
            send_keys: Vec::new(),
            sends_accepted: BTreeSet::new(),
            ledger: Ledger::default(),
            requests: BTreeMap::new(),
            windows: BTreeMap::new(),
            latest: None,
            last_approval: None,
            decisions: BTreeMap::new(),
            reported: BTreeSet::new(),
            posts_seen: 0,
            calls_seen: 0,
            refused_seen: 0,
            kfp_plan: None,
            log: Vec::new(),
            event_no: 0,
            dirty: false,
            current: String::new(),
        })
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}-{}", self.index, self.counter)
    }

    /// Records a violation once per `key` (the same duplicate is not reported at every event).
    fn violate(&mut self, t: &mut Tally, invariant: &str, key: &str, what: String) {
        if !self.reported.insert(format!("{invariant} {key}")) {
            return;
        }
        let recent: Vec<&String> = self.log.iter().rev().take(14).collect();
        let recent: Vec<String> = recent
            .into_iter()
            .rev()
            .map(|l| format!("    {l}"))
            .collect();
        t.violation(
            invariant,
            format!(
                "[{invariant}] round {} (round seed {:#x}, {}, {}) at event {}: {what}\n  \
                 during: {}\n  the round's last events:\n{}",
                self.index,
                self.seed,
                if self.kfp_mode {
                    "Kubeflow Pipelines"
                } else {
                    "no KFP"
                },
                if self.web_api { "Web API" } else { "webhook" },
                self.event_no,
                self.current,
                recent.join("\n")
            ),
        );
    }

    fn note(&mut self, line: String) {
        if self.settings.verbose {
            println!("  r{} {line}", self.index);
        }
        self.log.push(line);
    }

    // -----------------------------------------------------------------------------------------
    // Faults

    fn plan_faults(&mut self) -> Vec<String> {
        let mut planned = Vec::new();
        if !self.rng.chance(40) {
            return planned;
        }
        let how_many = if self.rng.chance(20) { 2 } else { 1 };
        for _ in 0..how_many {
            let target = self
                .rng
                .weighted(&[(0, 55), (1, 18), (2, 17), (3, 10)])
                .unwrap_or(0);
            match target {
                1 => {
                    let reply = if self.rng.chance(50) {
                        Reply::Status(500)
                    } else {
                        Reply::RateLimited {
                            retry_after_secs: u64::from(self.rng.chance(10)),
                        }
                    };
                    let n = if self.rng.chance(5) {
                        4
                    } else {
                        self.rng.between(1, 2)
                    };
                    planned.push(format!("slack {reply:?} x{n}"));
                    self.w.slack.plan(std::iter::repeat_n(reply, n as usize));
                }
                2 if self.kfp_mode && self.kfp_plan.is_none() => {
                    let seen_before = self.kfp.seen().len();
                    let (call, faults, kind) = match self.rng.below(10) {
                        0..=2 => (
                            kfp::Call::CreateRun,
                            vec![kfp::Fault::CreateThenDrop],
                            "kfp: run created, answer dropped",
                        ),
                        3 => (
                            kfp::Call::GetPipeline,
                            vec![kfp::Fault::Status(404, "no such pipeline".into())],
                            "kfp: pipeline 404",
                        ),
                        n => {
                            let call = match n {
                                4..=6 => kfp::Call::CreateRun,
                                7 | 8 => kfp::Call::ListRuns,
                                _ => kfp::Call::Any,
                            };
                            let count = self.rng.between(1, 3) as usize;
                            (
                                call,
                                vec![kfp::Fault::Status(500, "internal".into()); count],
                                "kfp: 500",
                            )
                        }
                    };
                    planned.push(format!("kfp {call:?} {:?} x{}", faults[0], faults.len()));
                    self.kfp_plan = Some(KfpPlan {
                        call,
                        n: faults.len(),
                        hits: 0,
                        seen: seen_before,
                        events: 0,
                        kind,
                    });
                    self.kfp.plan(call, faults);
                }
                3 => {
                    let queue = if self.rng.chance(60) {
                        "launch"
                    } else {
                        "seek"
                    };
                    planned.push(format!("lambda refuses the next {queue} invocation"));
                    match queue {
                        "launch" => self.launches.refuse_next(1),
                        _ => self.seeks.refuse_next(1),
                    }
                }
                _ => {
                    let op = self.rng.weighted(&DYNAMO_OPS).unwrap_or("GetItem");
                    let mut fault = *self.rng.pick(&Fault::ALL).unwrap_or(&Fault::Throttle);
                    if self.settings.outages && self.rng.chance(10) {
                        fault = Fault::Slow;
                    }
                    let n = match fault {
                        Fault::CommitThenLose if self.rng.chance(15) => 10,
                        Fault::CommitThenLose => self.rng.between(1, 2),
                        Fault::Slow => self.rng.between(1, 3),
                        _ if self.settings.outages && self.rng.chance(10) => 8,
                        _ if self.rng.chance(20) => 3,
                        _ => self.rng.between(1, 2),
                    } as usize;
                    let pass = self.rng.below(4) as usize;
                    planned.push(format!("dynamodb {op} #{} {fault:?} x{n}", pass + 1));
                    self.proxy.fail_after(op, pass, fault, n);
                }
            }
        }
        planned
    }

    /// Stops the faults planned for the event (Slack's are answered in turn, whenever Slack
    /// is next called) and counts the ones that hit.
    fn heal(&mut self, t: &mut Tally, all: bool) {
        self.proxy.heal();
        if let Some(mut plan) = self.kfp_plan.take() {
            let seen = self.kfp.seen();
            let hit = seen[plan.seen.min(seen.len())..]
                .iter()
                .filter(|s| kfp_matches(plan.call, s))
                .count()
                .min(plan.n - plan.hits);
            for _ in 0..hit {
                t.fault(plan.kind);
            }
            plan.hits += hit;
            plan.seen = seen.len();
            plan.events += 1;
            if all || plan.hits >= plan.n || plan.events >= 6 {
                self.kfp.clear_plan();
            } else {
                self.kfp_plan = Some(plan);
            }
        }
        self.launches.refuse_next(0);
        self.seeks.refuse_next(0);
        let refused = self.launches.refused() + self.seeks.refused();
        for _ in self.refused_seen..refused {
            t.fault("lambda: invoke refused (500)");
        }
        self.refused_seen = refused;
    }

    // -----------------------------------------------------------------------------------------
    // What Slack was given

    /// Counts what reached the stand-ins since last time, on behalf of `ctx`.
    fn absorb(&mut self, ctx: &Ctx, t: &mut Tally) {
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

    /// A request the soak heard of (a seek's outcome, an `/ask` answer) before the next scan.
    fn heard_of(&mut self, id: &str) {
        self.latest = Some(id.to_owned());
        self.requests.entry(id.to_owned()).or_insert_with(|| Req {
            id: id.to_owned(),
            status: "pending".into(),
            ..Req::default()
        });
    }

    async fn refresh(&mut self, t: &mut Tally) {
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

    // -----------------------------------------------------------------------------------------
    // Lambda, played

    /// Delivers a seek event as Lambda does: again, with the same request id, after an error.
    /// True when a delivery succeeded.
    async fn deliver_seek(&mut self, event: &Value, id: &str, window: &str, t: &mut Tally) -> bool {
        self.windows_tried.insert(window.to_owned());
        let ctx = Ctx::Seek {
            window: window.to_owned(),
        };
        for attempt in 0..LAMBDA_ATTEMPTS {
            if attempt > 0 {
                t.fault("lambda: retried after an error");
            }
            let result = seek::handle(&self.seeker, invocation(event.clone(), id)).await;
            self.absorb(&ctx, t);
            match result {
                Ok(outcome) => {
                    t.outcome(format!("seek: {:?}", outcome.result).to_lowercase());
                    self.note(format!(
                        "    {id}: {:?} {:?}",
                        outcome.result, outcome.request_id
                    ));
                    self.windows_ok
                        .insert(window.to_owned(), outcome.request_id);
                    self.failed.remove(window);
                    return true;
                }
                Err(e) => {
                    let kind = format!("{e}");
                    let kind = kind.split(':').next().unwrap_or_default().to_owned();
                    t.outcome(format!("seek failed: {kind}"));
                    self.note(format!("    {id}: failed: {e}"));
                }
            }
        }
        let entry = self
            .failed
            .entry(window.to_owned())
            .or_insert_with(|| (event.clone(), Vec::new()));
        entry.1.push(id.to_owned());
        false
    }

    async fn deliver_job(&mut self, job: &LaunchJob, t: &mut Tally) {
        let attempt = self.next_id("job-");
        let ctx = Ctx::Job {
            request: job.request_id.clone(),
        };
        for i in 0..LAMBDA_ATTEMPTS {
            if i > 0 {
                t.fault("lambda: retried after an error");
            }
            self.dirty = true;
            let now = Timestamp::now();
            let result = match &self.launcher {
                Some(l) => l.run(job, &attempt, now, now.plus_secs(JOB_SECS)).await,
                None => return,
            };
            self.absorb(&ctx, t);
            match result {
                Ok(outcome) => {
                    let what = match &outcome {
                        LaunchOutcome::Started { .. } => "started",
                        LaunchOutcome::Failed { .. } => "failed",
                        LaunchOutcome::AlreadyStarted { .. } => "already started",
                        LaunchOutcome::AlreadyFailed => "already failed",
                        LaunchOutcome::Busy => "busy",
                        LaunchOutcome::Skipped { .. } => "skipped",
                    };
                    t.outcome(format!("launch job: {what}"));
                    self.note(format!("    {attempt} for {}: {what}", job.request_id));
                    return;
                }
                Err(e) => {
                    t.outcome("launch job: error (Lambda retries)");
                    self.note(format!("    {attempt} for {}: error: {e}", job.request_id));
                }
            }
        }
        t.outcome("launch job: given up after Lambda's retries");
    }

    /// Delivers what was queued: launch jobs (some twice, as Lambda may) and counts.
    async fn run_queued(&mut self, t: &mut Tally) {
        while let Some(payload) = self.launches.pop() {
            match LaunchJob::from_event(&payload) {
                Some(Ok(job)) => {
                    t.event("launch job delivered");
                    self.deliver_job(&job, t).await;
                    if self.rng.chance(15) {
                        t.fault("lambda: delivered twice");
                        self.deliver_job(&job, t).await;
                    }
                }
                _ => {
                    let what = format!("queued a launch that is no launch job: {payload}");
                    self.violate(t, "answers-as-documented", "bad job", what);
                }
            }
        }
        while let Some(payload) = self.seeks.pop() {
            t.event("seek (from /ct-trigger seek)");
            let id = self.next_id("manual-");
            if payload != json!({}) {
                let what = format!("/ct-trigger seek queued {payload}, not {{}}");
                self.violate(t, "answers-as-documented", "bad seek", what);
            }
            let window = format!("manual#{id}");
            self.deliver_seek(&payload, &id, &window, t).await;
        }
    }

    async fn maybe_run_queued(&mut self, t: &mut Tally) {
        if self.launches.len() + self.seeks.len() > 0 && self.rng.chance(75) {
            self.run_queued(t).await;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Events

    /// Runs one random event with random faults, then checks.
    pub async fn step(&mut self, t: &mut Tally) {
        self.event_no += 1;
        if self.settings.self_check && self.event_no == 60 {
            self.sabotage(t).await;
            self.refresh(t).await;
            return;
        }
        let faults = self.plan_faults();
        let mut kind = self.rng.weighted(&KINDS).unwrap_or(Kind::AddObjects);
        if matches!(kind, Kind::Click | Kind::ClickTwice | Kind::Retry) && self.requests.is_empty()
        {
            kind = Kind::Seek;
        }
        if kind == Kind::Retry && !self.kfp_mode {
            kind = Kind::Click;
        }
        if kind == Kind::SeekAgain && self.weeks == 0 {
            kind = Kind::Seek;
        }
        let faults = if faults.is_empty() {
            String::new()
        } else {
            format!(" [faults: {}]", faults.join("; "))
        };
        let mark = self.log.len();
        self.current = format!("e{} {kind:?}{faults}", self.event_no);
        let started = Instant::now();
        let label = self.run_event(kind, t).await;
        let took = started.elapsed();
        t.time(&format!("{kind:?}"), took);
        let line = format!(
            "e{} ({:.2} s) {label}{faults}",
            self.event_no,
            took.as_secs_f64()
        );
        if self.settings.verbose {
            println!("  r{} {line}", self.index);
        }
        // Before the lines the event's deliveries logged.
        self.log.insert(mark.min(self.log.len()), line);
        self.absorb(&Ctx::Other, t);
        self.heal(t, false);
        if self.dirty {
            let started = Instant::now();
            self.refresh(t).await;
            t.time("checks (a scan of the table)", started.elapsed());
        }
    }

    async fn run_event(&mut self, kind: Kind, t: &mut Tally) -> String {
        match kind {
            Kind::AddObjects => {
                let n = self.rng.between(5, 80) as usize;
                let keys: Vec<String> = (self.objects..self.objects + n)
                    .map(|i| format!("{PREFIX}r{}-{i:06}.jsonl", self.index))
                    .collect();
                harness::moto::seed_keys(&self.w.bucket, &keys).await;
                self.objects += n;
                t.event("objects added");
                format!("{n} objects added ({} in all)", self.objects)
            }
            Kind::Seek => {
                let time = Timestamp::from_secs(self.first_week.secs() + self.weeks * WEEK_SECS);
                self.weeks += 1;
                t.event("seek (scheduled)");
                self.seek_window(time, t).await
            }
            Kind::SeekAgain => {
                let week = self.rng.below(self.weeks as u64) as i64;
                let time = Timestamp::from_secs(self.first_week.secs() + week * WEEK_SECS);
                t.event("seek (the same window delivered again)");
                self.seek_window(time, t).await
            }
            Kind::Click | Kind::ClickTwice => {
                let choice = if self.rng.chance(70) { "train" } else { "nope" };
                let user = *self.rng.pick(&USERS).unwrap_or(&USERS[0]);
                let ids: Vec<String> = self.requests.keys().cloned().collect();
                let current = self.latest.clone().filter(|_| self.rng.chance(70));
                let request = match current {
                    Some(id) => id,
                    None => self.rng.pick(&ids).cloned().unwrap_or_default(),
                };
                let stale = self.latest.as_deref() != Some(request.as_str());
                t.event(&format!(
                    "click {} on {} question",
                    if choice == "train" { "Train!" } else { "Nope!" },
                    if stale { "a stale" } else { "the current" }
                ));
                let twice = kind == Kind::ClickTwice;
                self.click(choice, &request, user, twice, t).await;
                self.maybe_run_queued(t).await;
                format!(
                    "{} clicks {choice} on {request}{}{}",
                    user.1,
                    if stale { " (stale)" } else { "" },
                    if twice { ", invoked twice" } else { "" }
                )
            }
            Kind::Retry => {
                let failed: Vec<String> = self
                    .requests
                    .values()
                    .filter(|r| r.launch_state.as_deref() == Some("failed"))
                    .map(|r| r.id.clone())
                    .collect();
                let any: Vec<String> = self.requests.keys().cloned().collect();
                let request = match self.rng.pick(&failed) {
                    Some(id) if self.rng.chance(80) => id.clone(),
                    _ => self.rng.pick(&any).cloned().unwrap_or_default(),
                };
                let user = *self.rng.pick(&USERS).unwrap_or(&USERS[0]);
                t.event("Retry pressed");
                self.retry(&request, user, t).await;
                self.maybe_run_queued(t).await;
                format!("{} presses Retry on {request}", user.1)
            }
            Kind::Jobs => {
                let queued = self.launches.len() + self.seeks.len();
                t.event("queued invocations delivered");
                self.run_queued(t).await;
                format!("{queued} queued invocations delivered")
            }
            Kind::Ask => self.ask(t).await,
            Kind::Send => self.send(t).await,
            Kind::SlashStatus => {
                t.event("/ct-trigger status");
                let user = *self.rng.pick(&USERS).unwrap_or(&USERS[0]);
                let answer = self.slash("status", user.0, t).await;
                format!("/ct-trigger status by {}: {answer}", user.1)
            }
            Kind::SlashSeek => {
                t.event("/ct-trigger seek");
                let user = *self.rng.pick(&USERS).unwrap_or(&USERS[0]);
                let answer = self.slash("seek", user.0, t).await;
                self.maybe_run_queued(t).await;
                format!("/ct-trigger seek by {}: {answer}", user.1)
            }
        }
    }

    async fn seek_window(&mut self, time: Timestamp, t: &mut Tally) -> String {
        let rfc = time.rfc3339();
        let window = format!("scheduled#{rfc}");
        let event = scheduled_event(&rfc);
        let id = self.next_id("delivery-");
        let ok = self.deliver_seek(&event, &id, &window, t).await;
        let mut label = format!("seek of {rfc} ({id}): {}", if ok { "ok" } else { "failed" });
        // EventBridge delivers at least once: sometimes the same window again, at once.
        if self.rng.chance(15) {
            t.fault("lambda: delivered twice");
            let again = self.next_id("delivery-");
            let ok = self.deliver_seek(&event, &again, &window, t).await;
            label += &format!(
                ", delivered again ({again}): {}",
                if ok { "ok" } else { "failed" }
            );
        }
        label
    }

    async fn click(
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

    async fn retry(&mut self, request: &str, user: (&str, &str), t: &mut Tally) {
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

    async fn slash(&mut self, text: &str, user: &str, t: &mut Tally) -> String {
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

    async fn ask(&mut self, t: &mut Tally) -> String {
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

    async fn send(&mut self, t: &mut Tally) -> String {
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

    /// `--self-check`: what the checks must see, done behind the handlers' backs.
    async fn sabotage(&mut self, t: &mut Tally) {
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

    /// Heals every fault, gives what is owed its chance (queued invocations, Lambda's retries
    /// of failed windows, a later press on approvals left without their run or notice), then
    /// checks that nothing was lost.
    pub async fn settle(&mut self, t: &mut Tally) {
        let started = Instant::now();
        self.event_no += 1;
        self.current = format!("e{} settle", self.event_no);
        self.note(format!("e{} settle: faults healed", self.event_no));
        self.heal(t, true);
        self.absorb(&Ctx::Other, t);
        // Slack's planned answers not used yet go; so does its record (counted already).
        self.w.slack.clear();
        self.posts_seen = 0;
        self.run_queued(t).await;
        let failed: Vec<(String, (Value, Vec<String>))> =
            std::mem::take(&mut self.failed).into_iter().collect();
        for (window, (event, ids)) in failed {
            t.outcome("settle: a failed window retried by Lambda");
            for id in ids.iter().rev() {
                if self.deliver_seek(&event, id, &window, t).await {
                    break;
                }
            }
        }
        self.refresh(t).await;
        for _ in 0..3 {
            let presses = self.owed_presses();
            if presses.is_empty() {
                break;
            }
            let not_before = presses.iter().map(|(at, _)| *at).max().unwrap_or(0);
            let wait = not_before as f64 - epoch_now() + 0.05;
            if wait > 0.0 {
                t.outcome("settle: waited for a press to be due");
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            for (_, press) in presses {
                t.event("a later press, at the end of a round");
                match press {
                    Press::Train(id) => {
                        self.note(format!("    settle: ann presses Train! on {id} again"));
                        self.click("train", &id, USERS[0], false, t).await;
                    }
                    Press::Retry(id) => {
                        self.note(format!("    settle: ann presses Retry on {id}"));
                        self.retry(&id, USERS[0], t).await;
                    }
                }
            }
            self.run_queued(t).await;
            self.refresh(t).await;
        }
        self.nothing_lost(t);
        t.time("settle", started.elapsed());
        t.rounds += 1;
    }

    /// The presses a person would still make: on an approval without its run (KFP) or its
    /// notice, once the deciding click's time is over.
    fn owed_presses(&self) -> Vec<(i64, Press)> {
        let mut owed = Vec::new();
        let resume_after = NOTICE_DUTY_SECS;
        for r in self.requests.values().filter(|r| r.approved()) {
            if self.kfp_mode {
                let latest = self.last_approval.as_deref() == Some(r.id.as_str());
                match r.launch_state.as_deref() {
                    None => owed.push((r.decided_at() + resume_after, Press::Train(r.id.clone()))),
                    Some("retry") if latest => owed.push((0, Press::Retry(r.id.clone()))),
                    Some("launching") if latest => {
                        owed.push((r.launch_until.unwrap_or(0) + 1, Press::Retry(r.id.clone())))
                    }
                    _ => {}
                }
            } else if r.notice_posted_at.is_none()
                && self.ledger.notices.get(&r.id).copied().unwrap_or(0) == 0
            {
                let until = r.notice_until.unwrap_or(r.decided_at() + NOTICE_DUTY_SECS);
                owed.push((until + 1, Press::Train(r.id.clone())));
            }
        }
        owed
    }

    fn nothing_lost(&mut self, t: &mut Tally) {
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
