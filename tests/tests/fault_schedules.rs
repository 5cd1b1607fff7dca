//! Random fault schedules over the whole path, seek → click → notice, through the real
//! binaries and the fault-injecting DynamoDB proxy.
//!
//! Each schedule picks, per DynamoDB operation, which of its calls fail and how (answer lost
//! after the commit, throttled, provisioned throughput exceeded, 500). Runs of consecutive
//! faults are at most two long: within actions' three SDK attempts, so every click must be
//! answered as a decision. seek also gets a Lambda retry of its delivery after an error.
//!
//! The seed is printed on failure; `CT_FAULT_SEED` replays one, `CT_FAULT_CASES` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::dynamo_proxy::{DynamoProxy, Fault};
use harness::events::scheduled_event;
use harness::runtime::Function;
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};

const WEEK: &str = "2026-11-24T00:00:00Z";
const OPS: [&str; 3] = ["TransactWriteItems", "UpdateItem", "GetItem"];

/// xorshift64*: small, seeded, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Per operation, the fate of its next calls: `None` passes, `Some` fails.
fn schedule(rng: &mut Rng) -> Vec<(&'static str, Vec<Option<Fault>>)> {
    OPS.iter()
        .map(|op| {
            let len = rng.below(8) as usize;
            let mut plan = Vec::with_capacity(len);
            let mut run = 0;
            for _ in 0..len {
                if run < 2 && rng.below(2) == 0 {
                    plan.push(Some(Fault::ALL[rng.below(4) as usize]));
                    run += 1;
                } else {
                    plan.push(None);
                    run = 0;
                }
            }
            (*op, plan)
        })
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

async fn one_schedule(seed: u64) {
    let mut rng = Rng(seed | 1);
    let plan = schedule(&mut rng);
    let case = format!("seed {seed} (CT_FAULT_SEED={seed} replays it): {plan:?}");
    // GIVEN a week with enough new objects to ask
    let w = World::new().await;
    w.put("train/embedding/", 0, 130).await;
    let proxy = DynamoProxy::in_front_of_moto().await;
    let mut seek_env = w.seek_env("embedding=train/embedding/", 100);
    seek_env.push(proxy.env());
    let mut actions_env = w.actions_env();
    actions_env.push(proxy.env());
    let seek = Function::start("seek", seek_env).await;
    let actions = Function::start("actions", actions_env).await;
    for (op, faults) in &plan {
        proxy.plan(op, faults.iter().copied());
    }

    // WHEN the window is delivered (and retried by Lambda after an error), then delivered again
    let mut posted = None;
    let mut errors = Vec::new();
    for _ in 0..3 {
        match seek.invoke("delivery-1", scheduled_event(WEEK)).await {
            Ok(v) => {
                posted = Some(v);
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    let posted =
        posted.unwrap_or_else(|| panic!("{case}: seek never completed the window: {errors:?}"));
    assert_eq!(posted["result"], "posted", "{case}: {posted}");
    let again = seek.invoke("delivery-2", scheduled_event(WEEK)).await;
    let again = again.unwrap_or_else(|e| panic!("{case}: second delivery failed: {e}"));
    assert_eq!(again["result"], "duplicate", "{case}");
    let id = posted["request_id"].as_str().unwrap().to_owned();

    // AND ann presses Train!
    let payload = block_actions("train", &id, ("U0ANN", "ann"), &w.slack.response_url("m"));
    let click = signed_event(
        SIGNING_SECRET,
        ct_shared::Timestamp::now().secs(),
        &form(&payload),
        "application/x-www-form-urlencoded",
    );
    let answer = actions.invoke("click-1", click).await.unwrap();

    // THEN one weekly post, one decision told to ann as hers, one Kubeflow notice
    assert_eq!(answer["statusCode"], 200, "{case}: {answer}");
    let channel = w.slack.channel();
    let asks = channel
        .iter()
        .filter(|p| p.text().ends_with("Would you like to train models?"))
        .count();
    let notices = channel
        .iter()
        .filter(|p| p.text().starts_with("Here is Kubeflow URL"))
        .count();
    assert_eq!((asks, notices), (1, 1), "{case}: {channel:?}");
    let told = w.slack.responses("m");
    assert_eq!(told.len(), 1, "{case}: {told:?}");
    assert!(
        told[0].text().ends_with("Approved by <@U0ANN>"),
        "{case}: {}",
        told[0].text()
    );
    // AND the stored state is the final one
    let window = format!("window#scheduled#{WEEK}");
    assert_eq!(w.string(&window, "state").await.as_deref(), Some("posted"));
    let request = format!("request#{id}");
    assert_eq!(
        w.string(&request, "status").await.as_deref(),
        Some("approved"),
        "{case}"
    );
    assert_eq!(w.number("dataset#embedding", "seeked").await, Some(130));
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(130));
    assert!(w.item(&format!("audit#{id}")).await.is_some(), "{case}");
    assert_eq!(
        w.string("latest_request", "request_id").await.as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn random_fault_schedules_lose_no_decision_and_post_nothing_twice() {
    let first = env_u64("CT_FAULT_SEED").unwrap_or(0x5eed_0012);
    let cases = match env_u64("CT_FAULT_SEED") {
        Some(_) => 1,
        None => env_u64("CT_FAULT_CASES").unwrap_or(10),
    };
    for i in 0..cases {
        one_schedule(first.wrapping_add(i.wrapping_mul(0x9e37_79b9))).await;
    }
}
