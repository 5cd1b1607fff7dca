//! Faults planned for an event (DynamoDB, Slack, Kubeflow, Lambda), healed and counted.

use super::Round;
use crate::tally::Tally;
use harness::dynamo_proxy::Fault;
use harness::kfp;
use harness::slack::Reply;

const DYNAMO_OPS: [(&str, u64); 5] = [
    ("GetItem", 30),
    ("UpdateItem", 30),
    ("TransactWriteItems", 20),
    ("PutItem", 15),
    ("DeleteItem", 5),
];

pub(super) fn dynamo_fault_name(f: Fault) -> &'static str {
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
pub(super) struct KfpPlan {
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

impl Round {
    pub(super) fn plan_faults(&mut self) -> Vec<String> {
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
    pub(super) fn heal(&mut self, t: &mut Tally, all: bool) {
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
}
