//! CloudWatch metrics in Embedded Metric Format: one JSON line per set of dimension values,
//! written to stdout, where CloudWatch Logs extracts the metrics. No API calls.
//!
//! Every line carries the `Stack` dimension. A line has at most [`MAX_METRICS`] metrics and
//! one dimension set (e.g. `[Stack, Dataset]`); the dimension values are top-level keys.

use crate::Timestamp;
use serde_json::{Map, Value, json};
use std::io::Write;

/// The namespace every metric lives in.
pub const NAMESPACE: &str = "ct-trigger";
/// CloudWatch's limit of metrics per EMF line.
pub const MAX_METRICS: usize = 100;

/// A metric's unit, as CloudWatch spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
    Bytes,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// One EMF line in the making: dimension values, then metric values.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

impl Line {
    /// A line with the `Stack` dimension.
    pub fn new(stack: &str) -> Self {
        Line {
            dimensions: vec![("Stack", stack.to_owned())],
            metrics: Vec::new(),
        }
    }

    /// Adds a dimension (e.g. `Dataset`, `Reason`).
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    /// Adds a metric value. A name added twice keeps the last value; past [`MAX_METRICS`]
    /// further names are dropped with a warning rather than making CloudWatch reject the line.
    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        if let Some(m) = self.metrics.iter_mut().find(|m| m.0 == name) {
            *m = (name, unit, value);
        } else if self.metrics.len() < MAX_METRICS {
            self.metrics.push((name, unit, value));
        } else {
            tracing::warn!(
                metric = name,
                "more than 100 metrics on one EMF line; dropped"
            );
        }
        self
    }

    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.metric(name, Unit::Count, value as f64)
    }

    /// The JSON object CloudWatch reads, stamped at `at`.
    pub fn to_json(&self, at: Timestamp) -> Value {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.secs().saturating_mul(1000),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [self.dimensions.iter().map(|d| d.0).collect::<Vec<_>>()],
                    "Metrics": self.metrics.iter()
                        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), Value::from(value.as_str()));
        }
        for (name, _, value) in &self.metrics {
            root.insert((*name).into(), json!(value));
        }
        Value::Object(root)
    }

    /// Writes the line to stdout in one write, so it stays a log event of its own. An empty
    /// line is not written.
    pub fn emit(&self, at: Timestamp) {
        if self.metrics.is_empty() {
            return;
        }
        let mut text = self.to_json(at).to_string();
        text.push('\n');
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            tracing::warn!("could not write an EMF line to stdout");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_line_names_its_namespace_dimensions_and_metrics_and_carries_their_values() {
        let line = Line::new("prod")
            .dimension("Dataset", "embedding")
            .count("Objects", 120)
            .metric("CountSeconds", Unit::Seconds, 0.25)
            .count("Objects", 130);
        let v = line.to_json(Timestamp::from_secs(1_764_000_000));
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_764_000_000_000_i64);
        assert_eq!(directive["Namespace"], "ct-trigger");
        assert_eq!(directive["Dimensions"], json!([["Stack", "Dataset"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Objects", "Unit": "Count"}, {"Name": "CountSeconds", "Unit": "Seconds"}])
        );
        assert_eq!(v["Stack"], "prod");
        assert_eq!(v["Dataset"], "embedding");
        assert_eq!(v["Objects"], 130.0);
        assert_eq!(v["CountSeconds"], 0.25);
    }

    #[test]
    fn a_line_never_holds_more_than_100_metrics() {
        let mut line = Line::new("s");
        for i in 0..MAX_METRICS + 3 {
            let name: &'static str = Box::leak(format!("M{i}").into_boxed_str());
            line = line.count(name, 1);
        }
        let v = line.to_json(Timestamp::from_secs(0));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            MAX_METRICS
        );
        assert!(v.get("M100").is_none());
    }
}
