//! The soak's figures: events by kind, faults injected by kind, violations by invariant, and
//! what the handlers answered (for reading the figures, not checked).

use std::collections::BTreeMap;

/// The invariants, as the report names them.
pub const INVARIANTS: [&str; 14] = [
    "decision-once",
    "decision-told-once",
    "question-once",
    "window-once",
    "notice-once",
    "started-once",
    "send-once",
    "run-once",
    "run-for-approval",
    "trained-is-approved-snapshot",
    "replay-same-answer",
    "nothing-lost",
    "answers-as-documented",
    "handler-error",
];

#[derive(Default)]
pub struct Tally {
    pub events: BTreeMap<String, u64>,
    pub faults: BTreeMap<String, u64>,
    pub violations: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
    /// One paragraph per violation: what, where, and the events before it.
    pub details: Vec<String>,
    pub rounds: u64,
    /// Seconds spent, by event kind.
    pub seconds: BTreeMap<String, f64>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: impl Into<String>, by: u64) {
    *map.entry(key.into()).or_default() += by;
}

impl Tally {
    pub fn event(&mut self, kind: &str) {
        bump(&mut self.events, kind, 1);
    }
    pub fn fault(&mut self, kind: impl Into<String>) {
        bump(&mut self.faults, kind, 1);
    }
    pub fn outcome(&mut self, what: impl Into<String>) {
        bump(&mut self.outcomes, what, 1);
    }
    pub fn time(&mut self, what: &str, took: std::time::Duration) {
        *self.seconds.entry(what.to_owned()).or_default() += took.as_secs_f64();
    }
    pub fn violation(&mut self, invariant: &str, detail: String) {
        bump(&mut self.violations, invariant, 1);
        self.details.push(detail);
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, v) in other.events {
            bump(&mut self.events, k, v);
        }
        for (k, v) in other.faults {
            bump(&mut self.faults, k, v);
        }
        for (k, v) in other.violations {
            bump(&mut self.violations, k, v);
        }
        for (k, v) in other.outcomes {
            bump(&mut self.outcomes, k, v);
        }
        self.details.extend(other.details);
        for (k, v) in other.seconds {
            *self.seconds.entry(k).or_default() += v;
        }
        self.rounds += other.rounds;
    }

    pub fn total_violations(&self) -> u64 {
        self.violations.values().sum()
    }

    /// The report, as printed at the end.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let section = |out: &mut String, title: &str, map: &BTreeMap<String, u64>| {
            let total: u64 = map.values().sum();
            out.push_str(&format!("{title} ({total}):\n"));
            for (k, v) in map {
                out.push_str(&format!("  {v:>7}  {k}\n"));
            }
        };
        section(&mut out, "events by kind", &self.events);
        section(&mut out, "faults injected by kind", &self.faults);
        let mut violations: BTreeMap<String, u64> =
            INVARIANTS.iter().map(|i| ((*i).to_owned(), 0)).collect();
        for (k, v) in &self.violations {
            bump(&mut violations, k.clone(), *v);
        }
        section(&mut out, "violations by invariant", &violations);
        section(&mut out, "outcomes (not checked)", &self.outcomes);
        out.push_str("seconds spent, by event kind:\n");
        for (k, v) in &self.seconds {
            out.push_str(&format!("  {v:>7.1}  {k}\n"));
        }
        out
    }
}
