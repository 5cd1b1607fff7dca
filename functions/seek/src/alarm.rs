//! A model-quality alarm asks by itself: a CloudWatch alarm's move to ALARM (an EventBridge
//! rule's event, or the alarm's own Lambda action) becomes the same question `POST /ask` posts,
//! over the datasets' latest counts, with the same approval and launch.
//!
//! Once per delivery, durably: the delivery's key (EventBridge's event id, or the alarm ARN and
//! the state's time) names a window, prepared and posted exactly as a scheduled seek's is, so
//! Lambda's and EventBridge's retries post nothing twice and a retry after a failed post posts
//! the same question. While a question from the same alarm is still pending, another ALARM from
//! it posts nothing (`QualityAlarm{Outcome=held_off}`). OK and INSUFFICIENT_DATA post nothing.

use crate::{Delivery, SeekError, Seeker};
use ct_shared::Timestamp;
use ct_shared::alarm::Alarm;
use ct_shared::aws::dynamo::{Preparation, Prepared, SeekStore};
use ct_shared::aws::s3::ObjectCounter;
use ct_shared::domain::{self, Verdict};
use ct_shared::metrics::Line;
use ct_shared::slack::{SlackPoster, messages};
use serde::Serialize;
use serde_json::Value;

/// Attempts at preparing an alarm's window while other requests keep arriving.
const PREPARE_ATTEMPTS: usize = 3;

/// What an alarm's delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmResult {
    /// This delivery posted the question.
    Asked,
    /// An earlier delivery of the same state change posted it.
    Duplicate,
    /// A question from this alarm is still pending: nothing posted.
    HeldOff,
    /// OK or INSUFFICIENT_DATA: nothing to ask.
    NotAlarm,
}

impl AlarmResult {
    fn as_str(self) -> &'static str {
        match self {
            AlarmResult::Asked => "asked",
            AlarmResult::Duplicate => "duplicate",
            AlarmResult::HeldOff => "held_off",
            AlarmResult::NotAlarm => "not_alarm",
        }
    }
}

/// The invocation's answer to an alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmAnswer {
    pub alarm: String,
    pub state: String,
    pub result: AlarmResult,
    /// The question asked (this delivery's, or the pending one that held it off).
    pub request_id: Option<String>,
    pub text: String,
}

impl<C: ObjectCounter, S: SeekStore, P: SlackPoster> Seeker<C, S, P> {
    /// Asks on an alarm's state change, once per delivery.
    pub async fn on_alarm(
        &self,
        alarm: &Alarm,
        invocation_id: &str,
        now: Timestamp,
    ) -> Result<AlarmAnswer, SeekError> {
        let answer = |result, request_id, text| AlarmAnswer {
            alarm: alarm.name.clone(),
            state: alarm.state.clone(),
            result,
            request_id,
            text,
        };
        if !alarm.asks() {
            tracing::info!(alarm = %alarm.name, state = %alarm.state, "alarm state change: nothing to ask");
            return Ok(answer(AlarmResult::NotAlarm, None, String::new()));
        }
        let key = format!("alarm#{}", alarm.delivery);
        // A retry of this very delivery continues its own window, posted or not.
        let mut window = self.store.window(&key).await?;
        if window.is_none() {
            if let Some(pending) = self.pending_from(alarm, now).await? {
                tracing::warn!(
                    alarm = %alarm.name,
                    request_id = %pending.id,
                    "a question from this alarm is still pending; posting nothing"
                );
                return Ok(answer(
                    AlarmResult::HeldOff,
                    Some(pending.id),
                    String::new(),
                ));
            }
            window = Some(self.prepare_alarm(&key, alarm, invocation_id, now).await?);
        }
        let Some(window) = window else {
            return Err(SeekError::Contended);
        };
        let result = match self.deliver(&key, &window, invocation_id, now).await? {
            Delivery::Posted => AlarmResult::Asked,
            Delivery::Duplicate => AlarmResult::Duplicate,
        };
        let text = window
            .message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(answer(result, window.request_id.clone(), text))
    }

    /// The newest request, if it is still pending (undecided, and neither expired nor past
    /// `REQUEST_TTL` awaiting the sweep) and asked on this alarm.
    async fn pending_from(
        &self,
        alarm: &Alarm,
        now: Timestamp,
    ) -> Result<Option<domain::ApprovalRequest>, SeekError> {
        let Some(id) = self.store.latest_request_id().await? else {
            return Ok(None);
        };
        let source = alarm.source();
        Ok(self.store.question(&id).await?.filter(|r| {
            let past_ttl = self
                .config
                .request_ttl
                .is_some_and(|ttl| now.secs() - r.created_at.secs() >= ttl);
            r.decision.is_none()
                && r.expired_at.is_none()
                && !past_ttl
                && r.signal.as_ref().and_then(|s| s.source.as_deref()) == Some(source.as_str())
        }))
    }

    /// Stores the alarm's question (over the datasets' latest counts, superseding any pending
    /// request) and its rendered message as the delivery's window.
    async fn prepare_alarm(
        &self,
        key: &str,
        alarm: &Alarm,
        invocation_id: &str,
        now: Timestamp,
    ) -> Result<ct_shared::aws::dynamo::Window, SeekError> {
        let names: Vec<String> = self
            .config
            .datasets
            .iter()
            .map(|d| d.name.clone())
            .collect();
        for _ in 0..PREPARE_ATTEMPTS {
            let stored = self.store.datasets(&names).await?;
            let snapshot = names
                .iter()
                .filter_map(|n| stored.get(n).map(|d| d.count()))
                .collect();
            let previous_request = self.store.latest_request_id().await?;
            let request =
                domain::quality_request(alarm.signal(), snapshot, now, Some(key.to_owned()));
            let mut message = messages::ask_request(&request);
            if let Some(a) = self.store.latest_approval().await? {
                messages::note_approval(&mut message, &a);
            }
            let prep = Preparation {
                window: key.to_owned(),
                at: now,
                now,
                counts: Vec::new(),
                read: Vec::new(),
                verdict: Verdict::Ask,
                message,
                request: Some(request),
                previous_request,
                writer: invocation_id.to_owned(),
            };
            match self.store.prepare(&prep).await? {
                Prepared::Created(w) | Prepared::Exists(w) => return Ok(w),
                Prepared::Conflict => {
                    tracing::info!(
                        window = key,
                        "another request came in meanwhile; asking again"
                    );
                }
            }
        }
        Err(SeekError::Contended)
    }
}

/// The alarm's metric: `QualityAlarm` by `Outcome` (asked, duplicate, held_off, not_alarm).
pub fn metrics(stack: &str, answer: &AlarmAnswer) -> Line {
    Line::new(stack)
        .dimension("Outcome", answer.result.as_str())
        .count("QualityAlarm", 1)
}
