//! What a successful seek emits as metrics (EMF).

use crate::Outcome;
use ct_shared::domain::Verdict;
use ct_shared::metrics::{Line, Unit};

/// The metrics of a successful seek: per dataset it counted, `Objects`, `NewObjects`,
/// `NewBytes`, `Removed` and (for a threshold in objects) `Threshold`; per run, `SeekSucceeded`
/// and `LastSeekAge` 0 (the heartbeat), and when it counted, `CountSeconds`, `ListRequests` and
/// `Asked`.
pub fn metrics(stack: &str, outcome: &Outcome) -> Vec<Line> {
    let mut lines: Vec<Line> = outcome
        .counts
        .iter()
        .map(|c| {
            let line = Line::new(stack)
                .dimension("Dataset", c.name.as_str())
                .count("Objects", c.seeked)
                .count("NewObjects", c.new_objects())
                .metric("NewBytes", Unit::Bytes, c.new_bytes as f64)
                .count("Removed", c.removed());
            match c.threshold.objects() {
                Some(t) => line.count("Threshold", t),
                None => line,
            }
        })
        .collect();
    let mut run =
        Line::new(stack)
            .count("SeekSucceeded", 1)
            .metric("LastSeekAge", Unit::Seconds, 0.0);
    if !outcome.counted.is_empty() {
        let seconds = outcome.counted.iter().map(|c| c.seconds).sum();
        let requests = outcome.counted.iter().map(|c| c.tally.list_requests).sum();
        run = run
            .metric("CountSeconds", Unit::Seconds, seconds)
            .count("ListRequests", requests)
            .count("Asked", u64::from(outcome.verdict == Verdict::Ask));
    }
    lines.push(run);
    lines
}
