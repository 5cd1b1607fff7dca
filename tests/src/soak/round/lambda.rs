//! Lambda, played: the Invoke API's [`Queue`], and deliveries of seeks and launch jobs.

use super::model::Ctx;
use super::{JOB_SECS, LAMBDA_ATTEMPTS, Round};
use crate::tally::Tally;
use actions::launch::{LaunchJob, LaunchOutcome};
use ct_shared::Timestamp;
use ct_shared::aws::invoke::{AsyncInvoker, InvokeError};
use harness::events::{invocation, scheduled_event};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

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
    pub(super) fn pop(&self) -> Option<Value> {
        self.0.lock().ok()?.queued.pop_front()
    }
    pub(super) fn refuse_next(&self, n: u32) {
        if let Ok(mut q) = self.0.lock() {
            q.refuse = n;
        }
    }
    pub(super) fn refused(&self) -> u64 {
        self.0.lock().map(|q| q.refused).unwrap_or(0)
    }
    pub(super) fn len(&self) -> usize {
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

impl Round {
    /// Delivers a seek event as Lambda does: again, with the same request id, after an error.
    /// True when a delivery succeeded.
    pub(super) async fn deliver_seek(
        &mut self,
        event: &Value,
        id: &str,
        window: &str,
        t: &mut Tally,
    ) -> bool {
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
    pub(super) async fn run_queued(&mut self, t: &mut Tally) {
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

    pub(super) async fn maybe_run_queued(&mut self, t: &mut Tally) {
        if self.launches.len() + self.seeks.len() > 0 && self.rng.chance(75) {
            self.run_queued(t).await;
        }
    }

    pub(super) async fn seek_window(&mut self, time: Timestamp, t: &mut Tally) -> String {
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
}
