//! What started a seek: the weekly schedule, a manual `{}`, the heartbeat, or a CloudWatch
//! alarm's state change, read from the event as EventBridge, Scheduler and CloudWatch deliver
//! it.

use crate::SeekError;
use ct_shared::Timestamp;
use serde_json::Value;

/// What started this seek.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// An EventBridge rule or Scheduler delivery: `time` is the scheduled time, shared by
    /// every delivery and retry of the same window.
    Scheduled { time: Timestamp, id: Option<String> },
    /// `{}`: seek now. Lambda's own retries of one invocation keep its request id.
    Manual,
    /// The heartbeat schedule (`"detail-type": "Heartbeat"`): count nothing, post nothing;
    /// report how long ago seek last succeeded (`LastSeekAge`), for the heartbeat alarm.
    Heartbeat,
    /// A model-quality alarm's state change (an EventBridge rule, or the alarm's own action):
    /// asks on it as `POST /ask` would, once per delivery.
    Alarm(ct_shared::alarm::Alarm),
}

impl Trigger {
    /// The window's time: the scheduled time, or `now` for a manual seek.
    pub fn time(&self, now: Timestamp) -> Timestamp {
        match self {
            Trigger::Scheduled { time, .. } => *time,
            Trigger::Manual | Trigger::Heartbeat | Trigger::Alarm(_) => now,
        }
    }

    /// The durable de-duplication key.
    pub fn window(&self, invocation_id: &str) -> String {
        match self {
            Trigger::Scheduled { time, .. } => format!("scheduled#{}", time.rfc3339()),
            Trigger::Manual => format!("manual#{invocation_id}"),
            Trigger::Heartbeat => format!("heartbeat#{invocation_id}"),
            Trigger::Alarm(a) => format!("alarm#{}", a.delivery),
        }
    }
}

/// Reads the event: `{}`, an EventBridge "Scheduled Event", or the same shape built by an
/// EventBridge Scheduler input template.
pub fn parse_trigger(event: &Value) -> Result<Trigger, SeekError> {
    let obj = event
        .as_object()
        .ok_or_else(|| SeekError::BadEvent("expected a JSON object".into()))?;
    if obj.is_empty() {
        return Ok(Trigger::Manual);
    }
    if ct_shared::alarm::is_alarm(event) {
        return ct_shared::alarm::parse(event)
            .map(Trigger::Alarm)
            .map_err(|e| SeekError::BadEvent(e.to_string()));
    }
    if let Some(kind) = obj.get("detail-type") {
        match kind.as_str() {
            Some("Scheduled Event") => {}
            Some("Heartbeat") => return Ok(Trigger::Heartbeat),
            _ => {
                return Err(SeekError::BadEvent(format!(
                    "detail-type {kind} is none of \"Scheduled Event\", \"Heartbeat\" and \
                     \"CloudWatch Alarm State Change\""
                )));
            }
        }
    }
    let time = obj.get("time").ok_or_else(|| {
        SeekError::BadEvent("expected {} or a Scheduled Event with a \"time\" field".into())
    })?;
    let time = time
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .ok_or_else(|| SeekError::BadEvent(format!("time {time} is not an RFC 3339 date-time")))?;
    let id = obj.get("id").and_then(Value::as_str).map(str::to_owned);
    Ok(Trigger::Scheduled { time, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_classic_rule_scheduler_and_manual_events() {
        let rule = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-24T00:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ct-trigger-weekly"], "detail": {}
        });
        let t = parse_trigger(&rule).unwrap();
        assert_eq!(t.window("r1"), "scheduled#2026-11-24T00:00:00Z");
        let scheduler = json!({"detail-type": "Scheduled Event", "id": "exec-2", "time": "2026-11-24T00:00:00Z"});
        assert_eq!(
            parse_trigger(&scheduler).unwrap().window("r2"),
            t.window("r1"),
            "same window, other delivery"
        );
        assert_eq!(parse_trigger(&json!({})).unwrap(), Trigger::Manual);
        let beat = json!({"detail-type": "Heartbeat", "source": "aws.scheduler", "time": "2026-11-24T06:00:00Z"});
        assert_eq!(parse_trigger(&beat).unwrap(), Trigger::Heartbeat);
        assert_eq!(Trigger::Manual.window("req-9"), "manual#req-9");
    }

    #[test]
    fn refuses_other_events() {
        for bad in [
            json!([]),
            json!("x"),
            json!({"detail-type": "Object Created", "time": "2026-11-24T00:00:00Z"}),
            json!({"time": "last tuesday"}),
            json!({"time": 5}),
            json!({"Records": []}),
        ] {
            assert!(
                matches!(parse_trigger(&bad), Err(SeekError::BadEvent(_))),
                "{bad}"
            );
        }
    }
}
