//! A CloudWatch alarm's state change, in both shapes CloudWatch sends it, as a quality signal.
//!
//! - EventBridge's "CloudWatch Alarm State Change" event: `detail` holds the alarm, and the
//!   event has an `id` (the same for every retry of one delivery).
//! - A Lambda alarm action's payload: `source: aws.cloudwatch`, `alarmArn`, `alarmData` in place
//!   of `detail`, and no `id`; the alarm ARN and the state's timestamp name the delivery.
//!
//! Either becomes an [`Alarm`]: its name, the delivery's key, the state, and what the question
//! says (reason, metric, latest value, threshold), exactly as `POST /ask` would have it.

use crate::domain::QualitySignal;
use serde_json::Value;

/// What makes an event an alarm's: EventBridge's detail type.
pub const DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// An alarm's state change.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    /// The delivery's durable key: `event#<EventBridge id>`, or `action#<alarm ARN>#<state
    /// timestamp>` for a direct alarm action.
    pub delivery: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: Option<String>,
    /// The alarm's metric: namespace, name and dimensions.
    pub metric: Option<String>,
    /// The latest datapoint the alarm evaluated, and the threshold it compared with.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

/// Why an event is not an alarm state change ct-trigger can read: what is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an alarm event {0}")]
pub struct AlarmError(pub String);

/// Whether `event` claims to be an alarm state change (either shape), to be read by [`parse`].
pub fn is_alarm(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some(DETAIL_TYPE)
        || (event.get("source").and_then(Value::as_str) == Some("aws.cloudwatch")
            && event.get("alarmData").is_some())
}

/// The longest metric description kept (a name and a few dimensions).
const MAX_METRIC: usize = 200;
/// The longest reason kept: the question's sentence must stay within one Slack section.
const MAX_REASON: usize = 1000;

fn text(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// The metric the alarm watches: the first that returns data (`returnData`, or the only one),
/// as `namespace name (Dim=value, ...)`, or a math expression as `expression <expr>`.
fn metric_of(configuration: &Value) -> Option<String> {
    let metrics = configuration.get("metrics")?.as_array()?;
    let chosen = metrics
        .iter()
        .find(|m| m.get("returnData").and_then(Value::as_bool) == Some(true))
        .or_else(|| metrics.first())?;
    if let Some(stat) = chosen.get("metricStat") {
        let metric = stat.get("metric")?;
        let mut out = match (text(metric, "namespace"), text(metric, "name")) {
            (Some(ns), Some(n)) => format!("{ns} {n}"),
            (None, Some(n)) => n,
            _ => return None,
        };
        if let Some(dims) = metric.get("dimensions").and_then(Value::as_object)
            && !dims.is_empty()
        {
            let dims: Vec<String> = dims
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            out += &format!(" ({})", dims.join(", "));
        }
        return Some(clip(out, MAX_METRIC));
    }
    text(chosen, "expression").map(|e| clip(format!("expression {e}"), MAX_METRIC))
}

/// The latest evaluated datapoint and the threshold, from the state's `reasonData` (a JSON
/// document in a string). The latest is the evaluated datapoint with the newest timestamp when
/// CloudWatch lists them so, else the last of `recentDatapoints` (oldest first).
fn reason_data(state: &Value) -> (Option<f64>, Option<f64>) {
    let Some(data) = state
        .get("reasonData")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return (None, None);
    };
    let finite = |v: &Value| v.as_f64().filter(|x| x.is_finite());
    let evaluated = data
        .get("evaluatedDatapoints")
        .and_then(Value::as_array)
        .and_then(|points| {
            points
                .iter()
                .filter_map(|p| Some((p.get("timestamp")?.as_str()?, finite(p.get("value")?)?)))
                .max_by(|a, b| a.0.cmp(b.0))
                .map(|(_, v)| v)
        });
    let recent = data
        .get("recentDatapoints")
        .and_then(Value::as_array)
        .and_then(|points| points.iter().rev().find_map(finite));
    let threshold = data.get("threshold").and_then(finite);
    (evaluated.or(recent), threshold)
}

/// Reads an alarm state change of either shape. A missing alarm name or state is an error that
/// names it.
pub fn parse(event: &Value) -> Result<Alarm, AlarmError> {
    // EventBridge's event (`detail`, with an `id`), or an alarm action's payload (`alarmData`).
    let (body, eventbridge) = match (event.get("detail"), event.get("alarmData")) {
        (Some(detail), _) if detail.is_object() => (detail, true),
        (_, Some(data)) if data.is_object() => (data, false),
        _ => {
            return Err(AlarmError(
                "has neither an object \"detail\" (EventBridge) nor \"alarmData\" (an alarm \
                 action)"
                    .into(),
            ));
        }
    };
    let name = text(body, "alarmName")
        .ok_or_else(|| AlarmError("has no alarm name (alarmName)".into()))?;
    let state = body
        .get("state")
        .filter(|s| s.is_object())
        .ok_or_else(|| AlarmError(format!("for {name:?} has no state")))?;
    let value = text(state, "value")
        .ok_or_else(|| AlarmError(format!("for {name:?} has no state value (state.value)")))?;
    let delivery = if eventbridge {
        text(event, "id").map(|id| format!("event#{id}"))
    } else {
        text(event, "alarmArn").and_then(|arn| {
            let at = text(state, "timestamp").or_else(|| text(event, "time"))?;
            Some(format!("action#{arn}#{at}"))
        })
    };
    let delivery = delivery.ok_or_else(|| {
        AlarmError(format!(
            "for {name:?} has no delivery id (an EventBridge \"id\", or an alarm action's \
             \"alarmArn\" and state timestamp)"
        ))
    })?;
    let (latest, threshold) = reason_data(state);
    Ok(Alarm {
        metric: body.get("configuration").and_then(metric_of),
        reason: text(state, "reason").map(|r| clip(r, MAX_REASON)),
        value: latest,
        threshold,
        name,
        delivery,
        state: value,
    })
}

impl Alarm {
    /// Whether this change asks: only a move to ALARM (OK and INSUFFICIENT_DATA post nothing).
    pub fn asks(&self) -> bool {
        self.state == "ALARM"
    }

    /// The source the question names, and by which a pending question from this alarm is
    /// recognised: `cloudwatch:<alarm name>`.
    pub fn source(&self) -> String {
        format!("cloudwatch:{}", self.name)
    }

    /// The signal asked on, as `POST /ask` would carry it.
    pub fn signal(&self) -> QualitySignal {
        let mut reason = format!("CloudWatch alarm `{}` is in ALARM", self.name);
        if let Some(r) = &self.reason {
            reason += &format!(" ({})", r.trim_end_matches('.'));
        }
        QualitySignal {
            reason,
            metric: self.metric.clone(),
            value: self.value,
            threshold: self.threshold,
            source: Some(self.source()),
        }
    }
}

#[cfg(test)]
mod tests;
