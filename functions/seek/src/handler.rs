//! seek: count each dataset's objects, keep the counts, and ask Slack whether to train.
//!
//! One schedule window posts one message, however often it is delivered: the window is
//! prepared durably (counts, request and rendered message in one transaction), then posted
//! under a lease, then marked posted. A retry after a failed post re-posts the *same* message.

use ct_shared::Timestamp;
use ct_shared::aws::SdkConfig;
use ct_shared::aws::dynamo::{
    DynamoStore, HeartbeatStore, Patience, Preparation, Prepared, SeekStore, StoreError, Window,
    WindowState,
};
use ct_shared::aws::s3::{CountError, ObjectCounter, S3Counter, Tally};
use ct_shared::config::SeekConfig;
use ct_shared::domain::{self, ApprovalRequest, Baseline, Count, Verdict};

use ct_shared::slack::{Channel, RetryPolicy, SlackClient, SlackError, SlackPoster, messages};
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod alarm;
mod heartbeat;
mod lifecycle;
mod metrics;
mod trigger;

pub use alarm::{AlarmAnswer, AlarmResult};
pub use heartbeat::{Beat, heartbeat};
pub use lifecycle::Swept;
pub use metrics::metrics;
pub use trigger::{Trigger, parse_trigger};

/// How long one delivery may hold the right to post a window before another may take it.
pub const LEASE_SECS: i64 = 120;
/// Attempts at preparing a window when something it read changed meanwhile.
const PREPARE_ATTEMPTS: usize = 3;

/// Why seek failed. Each is returned to Lambda as an error, so an async invocation is retried.
#[derive(Debug, thiserror::Error)]
pub enum SeekError {
    #[error("unrecognised event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Count(#[from] CountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("posting to Slack: {0}")]
    Slack(#[from] SlackError),
    #[error("the state kept changing while preparing the window; try again")]
    Contended,
    /// Another delivery holds the lease on this window and has not posted yet. Failing (rather
    /// than succeeding quietly) makes Lambda retry later: if that delivery died mid-post, the
    /// retry posts once its lease expires, so the window is never lost.
    #[error("another delivery of window {0} is posting it; retry later")]
    InProgress(String),
    /// Counting would not finish before Lambda stops the invocation.
    #[error("{0}")]
    Deadline(String),
}

impl From<SeekError> for lambda_runtime::Diagnostic {
    fn from(e: SeekError) -> Self {
        let kind = match &e {
            SeekError::BadEvent(_) => "BadEvent",
            SeekError::Count(_) => "CountFailed",
            SeekError::Store(_) => "StateStoreFailed",
            SeekError::Slack(_) => "SlackFailed",
            SeekError::Contended => "Contended",
            SeekError::InProgress(_) => "InProgress",
            SeekError::Deadline(_) => "DeadlineNear",
        };
        tracing::error!(error_type = kind, error = %e, "seek failed");
        lambda_runtime::Diagnostic {
            error_type: format!("seek.{kind}"),
            error_message: e.to_string(),
        }
    }
}

/// What happened, returned as the invocation's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub window: String,
    pub result: Delivery,
    pub verdict: Verdict,
    pub request_id: Option<String>,
    /// The message's plain text, as Slack shows it in notifications.
    pub text: String,
    /// What counting cost, per dataset; empty when an earlier delivery had counted this window.
    pub counted: Vec<Counted>,
    /// The counts this invocation prepared the window with; empty when it existed already.
    pub counts: Vec<Count>,
}

/// One dataset's count in this invocation, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counted {
    pub dataset: String,
    #[serde(flatten)]
    pub tally: Tally,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// This invocation posted the message.
    Posted,
    /// An earlier delivery of this window posted it already.
    Duplicate,
}

/// seek's dependencies, built once at cold start.
pub struct Seeker<C, S, P> {
    pub config: SeekConfig,
    pub counter: C,
    pub store: S,
    pub slack: P,
}

/// The deployed shape: S3, DynamoDB and reqwest.
pub type LiveSeeker = Seeker<S3Counter, DynamoStore, SlackClient>;

impl LiveSeeker {
    pub fn live(
        config: SeekConfig,
        sdk: &SdkConfig,
    ) -> Result<Self, ct_shared::slack::client::HttpError> {
        Ok(Seeker {
            counter: S3Counter::new(sdk, config.list_concurrency),
            store: DynamoStore::with_patience(
                sdk,
                config.common.state_table.clone(),
                Patience::PATIENT,
            ),
            slack: SlackClient::new()?,
            config,
        })
    }
}

impl<C, S, P: SlackPoster> Seeker<C, S, P> {
    /// The channel seek posts in.
    pub fn channel(&self) -> Channel<'_, P> {
        Channel::new(&self.slack, &self.config.common.slack)
    }
}

impl<C: ObjectCounter, S: SeekStore, P: SlackPoster> Seeker<C, S, P> {
    /// Counts every dataset at once (the counter bounds the requests in flight), each against
    /// its baseline, giving up with a clear error at `stop`, before Lambda would kill the
    /// invocation.
    async fn count_all(
        &self,
        baselines: &[Baseline],
        stop: Option<SystemTime>,
    ) -> Result<Vec<Counted>, SeekError> {
        let started = Instant::now();
        let before = self.counter.so_far();
        let datasets = self.config.datasets.iter().zip(baselines);
        let all = futures_util::future::try_join_all(datasets.map(|(d, baseline)| async {
            let started = Instant::now();
            let tally = self
                .counter
                .count(self.config.bucket_of(d), &d.prefix, baseline.since())
                .await?;
            Ok::<_, SeekError>(Counted {
                dataset: d.name.clone(),
                tally,
                seconds: started.elapsed().as_secs_f64(),
            })
        }));
        let Some(stop) = stop else {
            return all.await;
        };
        let left = stop.duration_since(SystemTime::now()).unwrap_or_default();
        match tokio::time::timeout(left, all).await {
            Ok(done) => done,
            Err(_) => {
                let now = self.counter.so_far();
                let (objects, pages) = (now.objects - before.objects, now.pages - before.pages);
                let secs = started.elapsed().as_secs_f64();
                Err(SeekError::Deadline(format!(
                    "counting could not finish before the invocation's deadline: {objects} objects \
                     in {pages} pages after {secs:.0} s ({:.0} keys/s, {} key ranges still open); \
                     raise seek's Timeout (up to 900 s) or its memory size (SeekMemorySize: more CPU, \
                     more requests in flight), or LIST_CONCURRENCY if the CPU is not busy",
                    objects as f64 / secs.max(0.001),
                    now.open_ranges
                )))
            }
        }
    }

    /// Counts, stores and renders a window, unless one exists already. Also returns what
    /// counting cost (nothing when the window existed).
    async fn prepare(
        &self,
        key: &str,
        at: Timestamp,
        invocation_id: &str,
        now: Timestamp,
        stop: Option<SystemTime>,
    ) -> Result<(Window, Vec<Counted>, Vec<Count>), SeekError> {
        let names: Vec<String> = self
            .config
            .datasets
            .iter()
            .map(|d| d.name.clone())
            .collect();
        for _ in 0..PREPARE_ATTEMPTS {
            if let Some(w) = self.store.window(key).await? {
                return Ok((w, Vec::new(), Vec::new()));
            }
            let stored = self.store.datasets(&names).await?;
            let previous_request = self.store.latest_request_id().await?;
            let approval = self.store.latest_approval().await?;
            let read: Vec<Option<Baseline>> = self
                .config
                .datasets
                .iter()
                .map(|d| stored.get(&d.name).map(|s| s.baseline))
                .collect();
            let baselines: Vec<Baseline> = read.iter().map(|b| b.unwrap_or_default()).collect();
            let counted_at = start_on_a_whole_second().await;
            let seen = self.count_all(&baselines, stop).await?;
            let counts: Vec<Count> = self
                .config
                .datasets
                .iter()
                .zip(&seen)
                .zip(&baselines)
                .map(|((d, seen), baseline)| {
                    let location = d.location();
                    let judged = domain::Judged {
                        name: &d.name,
                        prefix: &location,
                        threshold: self.config.threshold_of(d),
                    };
                    domain::measure(judged, &seen.tally.sums, counted_at, baseline)
                })
                .collect();
            for c in counts.iter().filter(|c| c.seeked == 0) {
                tracing::warn!(dataset = %c.name, "{}", messages::empty_prefix_warning(&c.prefix));
            }
            let verdict = domain::verdict(&counts);
            let request = (verdict == Verdict::Ask).then(|| ApprovalRequest {
                id: domain::new_request_id(),
                created_at: now,
                window: key.to_owned(),
                snapshot: counts.clone(),
                decision: None,
                signal: None,
                posted: None,
                expired_at: None,
            });
            let mut message = match &request {
                Some(r) => messages::ask(&r.id, &counts),
                None => messages::no_need(&counts),
            };
            if let Some(a) = &approval {
                messages::note_approval(&mut message, a);
            }
            let prep = Preparation {
                window: key.to_owned(),
                at,
                now,
                counts: counts.clone(),
                read,
                verdict,
                message,
                request,
                previous_request,
                writer: invocation_id.to_owned(),
            };
            match self.store.prepare(&prep).await? {
                Prepared::Created(w) => return Ok((w, seen, counts)),
                Prepared::Exists(w) => return Ok((w, Vec::new(), Vec::new())),
                Prepared::Conflict => {
                    tracing::info!(
                        window = key,
                        "state changed while preparing; counting again"
                    );
                }
            }
        }
        Err(SeekError::Contended)
    }

    /// One seek: prepare the window (once), then post it (once).
    pub async fn run(
        &self,
        trigger: &Trigger,
        invocation_id: &str,
        now: Timestamp,
    ) -> Result<Outcome, SeekError> {
        self.run_until(trigger, invocation_id, now, None).await
    }

    /// [`Seeker::run`], counting only until `deadline` less the time storing and posting need.
    pub async fn run_until(
        &self,
        trigger: &Trigger,
        invocation_id: &str,
        now: Timestamp,
        deadline: Option<SystemTime>,
    ) -> Result<Outcome, SeekError> {
        let key = trigger.window(invocation_id);
        let stop = deadline.map(counting_stops_at);
        let (window, counted, counts) = self
            .prepare(&key, trigger.time(now), invocation_id, now, stop)
            .await?;
        let result = self.deliver(&key, &window, invocation_id, now).await?;
        Ok(Outcome {
            window: key.clone(),
            result,
            verdict: window.verdict,
            request_id: window.request_id.clone(),
            text: window
                .message
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            counted,
            counts,
        })
    }

    /// Posts a prepared window once: under a lease, then marked posted. A window posted
    /// already (by this delivery, whose answer was lost, or by another) is not posted again.
    pub(crate) async fn deliver(
        &self,
        key: &str,
        window: &Window,
        invocation_id: &str,
        now: Timestamp,
    ) -> Result<Delivery, SeekError> {
        if window.state == WindowState::Posted {
            // A retry of the delivery that posted it (its answer was lost) answers as it did.
            if window.posted_by.as_deref() == Some(invocation_id) {
                tracing::info!(window = %key, "this delivery posted the window already");
                return Ok(Delivery::Posted);
            }
            tracing::info!(window = %key, "window already posted; nothing to do");
            return Ok(Delivery::Duplicate);
        }
        if !self
            .store
            .lease(key, invocation_id, now, now.plus_secs(LEASE_SECS))
            .await?
        {
            let now_stored = self.store.window(key).await?;
            if let Some(w) = &now_stored
                && w.state == WindowState::Posted
                && w.posted_by.as_deref() == Some(invocation_id)
            {
                return Ok(Delivery::Posted);
            }
            if now_stored.map(|w| w.state) == Some(WindowState::Posted) {
                tracing::info!(window = %key, "another delivery posted this window");
                return Ok(Delivery::Duplicate);
            }
            return Err(SeekError::InProgress(key.to_owned()));
        }
        let channel = self.channel();
        let posted = match channel.post(&window.message, RetryPolicy::SCHEDULED).await {
            Ok(posted) => posted,
            Err(e) => {
                if let Err(release) = self.store.release(key, invocation_id).await {
                    tracing::warn!(window = %key, error = %release, "could not release the lease");
                }
                return Err(e.into());
            }
        };
        self.store.mark_posted(key, invocation_id, now).await?;
        tracing::info!(window = %key, verdict = ?window.verdict, request_id = ?window.request_id, "posted to slack");
        if let Some(request_id) = &window.request_id {
            ct_shared::asking::after_posting(
                &self.store,
                &channel,
                request_id,
                window.created_at,
                posted.as_ref(),
                window.supersedes.as_deref(),
                RetryPolicy::SCHEDULED,
            )
            .await;
        }
        Ok(Delivery::Posted)
    }
}

/// What one invocation answers: a seek's outcome, or a heartbeat's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Seek(Outcome),
    Heartbeat(Beat),
    Alarm(AlarmAnswer),
}

/// The Lambda entry point (`main` runs this): a heartbeat, an alarm, or a seek.
pub async fn serve<C: ObjectCounter, S: SeekStore + HeartbeatStore, P: SlackPoster>(
    seeker: &Seeker<C, S, P>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Answer, SeekError> {
    match parse_trigger(&event.payload)? {
        Trigger::Heartbeat => heartbeat(seeker, &event.context.request_id, Timestamp::now())
            .await
            .map(Answer::Heartbeat),
        Trigger::Alarm(alarm) => {
            let now = Timestamp::now();
            let answer = seeker
                .on_alarm(&alarm, &event.context.request_id, now)
                .await?;
            alarm::metrics(&seeker.config.common.stack, &answer).emit(now);
            Ok(Answer::Alarm(answer))
        }
        _ => handle(seeker, event).await.map(Answer::Seek),
    }
}

/// A seek: the event, then [`Seeker::run`] at the current time; a success is recorded for the
/// heartbeat. A `Heartbeat` event is refused here ([`serve`] answers it).
pub async fn handle<C: ObjectCounter, S: SeekStore + HeartbeatStore, P: SlackPoster>(
    seeker: &Seeker<C, S, P>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Outcome, SeekError> {
    let trigger = parse_trigger(&event.payload)?;
    match &trigger {
        Trigger::Scheduled { id, time } => {
            tracing::info!(event_id = ?id, scheduled = %time, "scheduled seek")
        }
        Trigger::Heartbeat | Trigger::Alarm(_) => {
            return Err(SeekError::BadEvent(
                "a Heartbeat or alarm event is answered by seek::serve".into(),
            ));
        }
        Trigger::Manual => {}
    }
    let now = Timestamp::now();
    // lambda_runtime's deadline: milliseconds since the epoch (0 when unknown).
    let deadline = (event.context.deadline > 0)
        .then(|| UNIX_EPOCH + Duration::from_millis(event.context.deadline));
    let outcome = seeker
        .run_until(&trigger, &event.context.request_id, now, deadline)
        .await?;
    // Posted by this delivery or an earlier one: either way the window succeeded.
    seeker.store.seek_succeeded(&outcome.window, now).await?;
    for line in metrics(&seeker.config.common.stack, &outcome) {
        line.emit(now);
    }
    Ok(outcome)
}

/// Waits for the next whole second of the wall clock and returns it: the snapshot's time, when
/// this count began. S3 lists `LastModified` to the second, and the next count takes an object
/// as new when it was modified at or after this second. Listing only from a whole second on
/// makes that exact both ways: an object written before it was written before the listing
/// began (S3 lists it, so the snapshot holds it and the next count does not take it as new),
/// and one written in it or later is new to the next count even if this listing saw it too
/// (counted again, never missed). Starting at once would make every object written earlier in
/// the same second new again next week. It costs at most a second a seek.
async fn start_on_a_whole_second() -> Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let next = Duration::from_secs(now.as_secs() + 1);
    tokio::time::sleep(next.saturating_sub(now)).await;
    Timestamp::from_secs(next.as_secs() as i64)
}

/// Counting stops this long before the deadline, leaving time to store the window and post
/// it (Slack retries included): 20 s, or a fifth of the time left if that is less.
fn counting_stops_at(deadline: SystemTime) -> SystemTime {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    deadline - (left / 5).min(Duration::from_secs(20))
}
