//! A soak of the whole loop (issue 24 §5): the real seek, actions and send handlers, driven
//! in-process through local worlds (moto behind the fault-injecting DynamoDB proxy, the Slack
//! and Kubeflow Pipelines stand-ins, Lambda's queue and retries played here) for N random
//! events with random faults, checked after every event against the soak's own model.
//!
//! `ct-soak [--events N] [--seed S] [--round-size R] [--only-round K] [--parallel P] [--outages]
//! [--self-check] [--verbose]`
//!
//! `--outages` adds faults past the handlers' retries (8 throttled or failed calls in a row,
//! answers slower than an attempt's timeout); `--self-check` breaks things on purpose in each
//! round (a question posted again, a second run, a decision and the trained count rewritten)
//! and must report them.
//!
//! - events: scheduled seeks (some delivered again: the same window), objects added, Train! and
//!   Nope! from ann, bob and carol on the current and stale questions, Retry after failed
//!   launches, `/ask` and `/send` with and without an Idempotency-Key (and its retries),
//!   `/ct-trigger status` and `/ct-trigger seek`, and the launch jobs and counts they queue;
//! - faults: DynamoDB answers lost after the commit, throttling, 5xx (the proxy); Slack 429 and
//!   500; Kubeflow Pipelines 500, 404 and a create whose answer is dropped; the Lambda Invoke
//!   API refusing; Lambda delivering an event twice and retrying it after an error;
//! - invariants: every decision recorded once (and told to one clicker, the one recorded); no
//!   question, window, notice, "Training started" or keyed `/send` posted twice; at most one
//!   run per approval, and only for approvals; the trained counts only ever an approved (with
//!   Kubeflow Pipelines: started) request's snapshot; a keyed retry answers what the first
//!   call answered; nothing lost once the faults heal; answers as documented.
//!
//! The events run in rounds (a fresh world each, `--round-size` events, 100 by default). A
//! round's events run one at a time; `--parallel` rounds (4 by default) run at once, so that
//! their waits overlap (seek waits for a whole second before counting, Slack's retries back
//! off), but no more: moto serves one request at a time, and actions has Slack's 3 s. A
//! round's seed is derived from `--seed` and its number, so `--seed S --only-round K` replays
//! round K's events and faults (timing may still differ). It prints the counts, and exits 1 on
//! any violation.
//!
//! The handlers write their metrics (EMF JSON lines) to stdout; the soak runs itself as a
//! child and leaves those lines out (`--emf` keeps them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../soak/rng.rs"]
mod rng;
#[path = "../soak/round/mod.rs"]
mod round;
#[path = "../soak/tally.rs"]
mod tally;

use futures_util::StreamExt;
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

const CHILD: &str = "CT_SOAK_CHILD";

struct Args {
    events: u64,
    seed: u64,
    round_size: u64,
    only_round: Option<u64>,
    /// Rounds at a time: their waits (seek's whole second, Slack's backoffs) overlap.
    parallel: usize,
    settings: round::Settings,
}

fn usage() -> ! {
    eprintln!(
        "usage: ct-soak [--events N] [--seed S] [--round-size R] [--only-round K] [--parallel P] \
         [--outages] [--self-check] [--verbose] [--emf]"
    );
    std::process::exit(2)
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn args() -> Args {
    let mut a = Args {
        events: 10_000,
        seed: 0x5eed_50a4,
        round_size: 100,
        only_round: None,
        parallel: 4,
        settings: round::Settings {
            outages: false,
            self_check: false,
            verbose: false,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .as_deref()
                .and_then(number)
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--events" => a.events = value(),
            "--seed" => a.seed = value(),
            "--round-size" => a.round_size = value().max(1),
            "--only-round" => a.only_round = Some(value()),
            "--parallel" => a.parallel = value().max(1) as usize,
            "--outages" => a.settings.outages = true,
            "--self-check" => a.settings.self_check = true,
            "--verbose" => a.settings.verbose = true,
            "--emf" => {}
            _ => usage(),
        }
    }
    a
}

/// Runs this program again as a child, passing its output on without the EMF lines.
fn filter_child() -> ! {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = std::process::Command::new(exe)
        .args(std::env::args().skip(1))
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the soak");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.starts_with('{') && line.contains("\"_aws\"") {
            continue;
        }
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    let status = child.wait().expect("the soak ends");
    std::process::exit(status.code().unwrap_or(1))
}

/// One round from start to settle: its tally, and its line for the report.
async fn run_round(k: u64, events: u64, a: &Args) -> (u64, tally::Tally, String) {
    let round_started = Instant::now();
    let seed = rng::round_seed(a.seed, k);
    let mut t = tally::Tally::default();
    let mut r = match round::Round::start(k, seed, a.settings).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ct-soak: round {k} could not start: {e}");
            std::process::exit(2);
        }
    };
    for _ in 0..events {
        r.step(&mut t).await;
    }
    r.settle(&mut t).await;
    let line = format!(
        "round {k:>3} ({}, {}): {events} events, {} faults, {} violations, {:.1} s",
        if r.kfp_mode { "kfp" } else { "no kfp" },
        if r.web_api { "web api" } else { "webhook" },
        t.faults.values().sum::<u64>(),
        t.total_violations(),
        round_started.elapsed().as_secs_f64(),
    );
    (k, t, line)
}

#[tokio::main]
async fn soak(a: Args) -> tally::Tally {
    ct_shared::tls::install_provider();
    let started = Instant::now();
    let rounds = a.events.div_ceil(a.round_size);
    let mut total = tally::Tally::default();
    let range: Vec<u64> = match a.only_round {
        Some(k) => vec![k],
        None => (0..rounds).collect(),
    };
    println!(
        "ct-soak: {} events in {} rounds of {}, seed {:#x}{}",
        a.events.min(a.round_size * range.len() as u64),
        range.len(),
        a.round_size,
        a.seed,
        if a.settings.outages {
            ", with outages"
        } else {
            ""
        }
    );
    let runs = range.into_iter().map(|k| {
        let events = if a.only_round.is_some() {
            a.round_size
        } else {
            a.round_size.min(a.events - k * a.round_size)
        };
        run_round(k, events, &a)
    });
    let mut runs = futures_util::stream::iter(runs).buffer_unordered(a.parallel);
    while let Some((k, t, line)) = runs.next().await {
        println!("{line} (total {:.0} s)", started.elapsed().as_secs_f64());
        for d in &t.details {
            println!(
                "{d}\n  replay: ct-soak --seed {:#x} --round-size {} --only-round {k}{} --verbose",
                a.seed,
                a.round_size,
                if a.settings.outages { " --outages" } else { "" }
            );
        }
        total.merge(t);
    }
    println!(
        "\nct-soak: seed {:#x}, {} rounds, wall time {:.1} s\n",
        a.seed,
        total.rounds,
        started.elapsed().as_secs_f64()
    );
    print!("{}", total.report());
    total
}

fn main() {
    let a = args();
    let keep_emf = std::env::args().any(|x| x == "--emf");
    if std::env::var_os(CHILD).is_none() && !keep_emf {
        filter_child();
    }
    let total = soak(a);
    let found = total.total_violations();
    if found > 0 {
        println!("\nct-soak: {found} violations");
        std::process::exit(1);
    }
    println!("\nct-soak: no violations");
}
