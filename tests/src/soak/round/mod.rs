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

mod ask_send;
mod checks;
mod faults;
mod interactions;
mod lambda;
mod model;

use crate::rng::Rng;
use crate::tally::Tally;
use actions::Actions;
use actions::launch::LiveLauncher;
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{DynamoStore, NOTICE_DUTY_SECS, Patience};
use ct_shared::config::{ActionsConfig, Env, SecretBundle, SeekConfig, SendConfig};
use ct_shared::slack::SlackClient;
use faults::KfpPlan;
use harness::World;
use harness::dynamo_proxy::DynamoProxy;
use harness::kfp::KfpStandIn;
use lambda::Queue;
use model::{Ctx, Ledger, Req};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DATASETS: &str = "embedding=train/embedding/";
const PREFIX: &str = "train/embedding/";
const FORM: &str = "application/x-www-form-urlencoded";
const SEND_TOKEN: &str = "soak-send-t0ken";
const FIRST_WEEK: &str = "2026-11-24T00:00:00Z";
const WEEK_SECS: i64 = 7 * 24 * 3600;
const USERS: [(&str, &str); 3] = [("U0ANN", "ann"), ("U0BOB", "bob"), ("U0CAROL", "carol")];
const PARAMETERS: &str = r#"{"rows": "${seeked.embedding}", "fresh": "${new.embedding}", "tag": "ct-${request_id} by ${approved_by}"}"#;
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

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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
}
