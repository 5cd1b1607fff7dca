//! Benchmarks that print numbers: cold start of each function binary, and seek's counting
//! throughput and peak memory as the number of objects grows (it must stay flat: counting
//! streams one page at a time).
//!
//! `cargo build --release --bins && target/release/ct-bench` (or `--bin-dir target/debug`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::fake_s3::{FakeS3, Layout};
use harness::runtime::{LambdaRuntime, lambda_env};
use harness::slack::SlackStandIn;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn spawn_in(dir: &std::path::Path, name: &str, env: &[(String, String)]) -> tokio::process::Child {
    tokio::process::Command::new(dir.join(name))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}; build it first", dir.join(name).display()))
}

fn base_env(function: &str, api: &str, table: &str, webhook: &str) -> Vec<(String, String)> {
    let mut env = lambda_env(function, Some(api), harness::moto::url());
    for (k, v) in [
        ("STATE_TABLE", table),
        ("SLACK_WEBHOOK_URL", webhook),
        ("DATA_BUCKET", "bench"),
        ("DATASETS", "bench=train/bench/"),
        ("DATA_INTERVAL", "100"),
        ("SLACK_SIGNING_SECRET", "bench-secret"),
        ("KUBEFLOW_URL", "https://kubeflow.example.com/"),
        ("SEND_URL_AUTH", "NONE"),
        ("SEND_TOKEN", "bench-token"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ] {
        env.push((k.into(), v.into()));
    }
    env
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "median {:7.1} ms  min {:7.1}  max {:7.1}  (n={})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let dir = PathBuf::from(arg("--bin-dir").unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent().unwrap().display().to_string()
    }));
    let sdk = harness::moto::sdk().await;
    let table = harness::unique("bench");
    harness::moto::create_table(&sdk, &table).await;
    let slack = SlackStandIn::start().await;
    println!("binaries: {}", dir.display());
    for name in ["seek", "actions", "send"] {
        let size = std::fs::metadata(dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        println!("  {name:8} {:6.2} MiB", size as f64 / 1_048_576.0);
    }

    let cold: &[&str] = if args.iter().any(|a| a == "--no-cold-start") {
        &[]
    } else {
        &["seek", "actions", "send"]
    };
    if !cold.is_empty() {
        println!("\ncold start (process start until it first polls for an event), 7 runs each:");
    }
    for &name in cold {
        let mut times = Vec::new();
        let mut rss = 0;
        for _ in 0..7 {
            let rt = LambdaRuntime::start().await;
            let started = Instant::now();
            let child = spawn_in(
                &dir,
                name,
                &base_env(name, &rt.api, &table, &slack.webhook_url()),
            );
            while rt.first_poll().is_none() && started.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let first = rt.first_poll().expect("the function polled for an event");
            times.push((first - started).as_secs_f64() * 1000.0);
            rss = rss.max(peak_rss_kib(child.id().unwrap()).unwrap_or(0));
            drop(child);
        }
        println!(
            "  {name:8} {}   peak RSS after init {:5.1} MiB",
            stats(times),
            rss as f64 / 1024.0
        );
    }

    counting(&args_of(&args), &dir, &table, &slack).await;
}

struct CountArgs {
    sizes: Vec<u64>,
    latency: Duration,
    layouts: Vec<Layout>,
    quota_mb: Option<u64>,
    compare: Option<PathBuf>,
    concurrency: Option<String>,
    /// TOKIO_WORKER_THREADS for seek (unset: seek sizes its runtime from its memory).
    worker_threads: Option<String>,
    slowdown_every: u64,
    /// List through a TLS front (S3 is HTTPS): the simulated S3 behind the tests' TLS
    /// terminator, its test authority trusted by seek alone.
    tls: bool,
}

fn args_of(args: &[String]) -> CountArgs {
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    CountArgs {
        sizes: arg("--sizes")
            .unwrap_or_else(|| "10000,1000000".into())
            .split(',')
            .map(|s| s.parse().expect("sizes are numbers"))
            .collect(),
        latency: Duration::from_millis(
            arg("--latency-ms").map_or(30, |v| v.parse().expect("milliseconds")),
        ),
        layouts: arg("--layouts").map_or(Layout::ALL.to_vec(), |v| {
            v.split(',')
                .map(|n| {
                    *Layout::ALL
                        .iter()
                        .find(|l| l.name() == n)
                        .expect("a known layout")
                })
                .collect()
        }),
        quota_mb: arg("--memory-mb").map(|v| v.parse().expect("megabytes")),
        compare: arg("--compare-venv").map(PathBuf::from),
        concurrency: arg("--list-concurrency"),
        worker_threads: arg("--worker-threads"),
        slowdown_every: arg("--slowdown-every").map_or(0, |v| v.parse().expect("a number")),
        tls: args.iter().any(|a| a == "--tls"),
    }
}

/// The machine's load average over the last minute (other work competes for the CPU).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// user + system CPU seconds of a live process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// A cgroup v1 CPU quota giving a process Lambda's CPU share at `mb` (1,769 MB = 1 vCPU).
struct Quota(PathBuf);

impl Quota {
    fn new(mb: u64) -> Result<Self, String> {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/cpu/ct-bench-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let period = 100_000u64;
        std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())
            .and_then(|_| {
                std::fs::write(
                    dir.join("cpu.cfs_quota_us"),
                    (period * mb / 1769).max(1000).to_string(),
                )
            })
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    fn admit(&self, pid: u32) -> Result<(), String> {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("{}: {e}", self.0.display()))
    }
}

impl Drop for Quota {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

async fn counting(a: &CountArgs, dir: &std::path::Path, table: &str, slack: &SlackStandIn) {
    let s3 = FakeS3::start().await;
    s3.set_latency(a.latency);
    s3.set_slowdown_every(a.slowdown_every);
    let tls = a.tls.then(harness::tls::TestCa::new);
    let front = match &tls {
        Some(ca) => Some(ca.front(&s3.url).await),
        None => None,
    };
    let s3_url = front.as_ref().map_or(s3.url.clone(), |f| f.url.clone());
    let quota = a.quota_mb.map(|mb| (mb, Quota::new(mb)));
    let share = match &quota {
        None => "whole machine".to_string(),
        Some((mb, Ok(_))) => format!(
            "CPU quota of a {mb} MB Lambda ({:.2} vCPU)",
            *mb as f64 / 1769.0
        ),
        Some((mb, Err(e))) => {
            println!(
                "cannot emulate a {mb} MB Lambda's CPU share here (cgroup v1 cpu quota: {e}); whole machine instead"
            );
            "whole machine".to_string()
        }
    };
    println!(
        "\nseek counting 2 datasets of n keys each ({} ms a page, 1,000 keys a page, 1% folder markers{}{}), {share}{}{}:",
        a.latency.as_millis(),
        if a.tls { ", over TLS" } else { "" },
        if a.slowdown_every > 0 {
            format!(", 1 in {} requests 503 SlowDown", a.slowdown_every)
        } else {
            String::new()
        },
        a.worker_threads
            .as_ref()
            .map_or(String::new(), |t| format!(", {t} runtime worker threads")),
        a.concurrency.as_ref().map_or(
            ", requests in flight sized by seek".to_string(),
            |c| format!(", LIST_CONCURRENCY {c}")
        )
    );
    println!(
        "  {:8} {:>9}  {:>7}  {:>10}  {:>14}  {:>13}  {:>9}  {:>7}  {:>9}  {:>5}",
        "layout",
        "keys",
        "list s",
        "keys/s",
        "CPU s/M keys",
        "requests/M",
        "peak RSS",
        "ranges",
        "in flight",
        "load"
    );
    for &layout in &a.layouts {
        for &n in &a.sizes {
            s3.set_keys(n, layout);
            let rt = LambdaRuntime::start().await;
            let mut env = base_env("seek", &rt.api, table, &slack.webhook_url());
            env.push(("AWS_ENDPOINT_URL_S3".into(), s3_url.clone()));
            if let Some(ca) = &tls {
                env.push(("SSL_CERT_FILE".into(), ca.ca_file.display().to_string()));
                env.push(("SSL_CERT_DIR".into(), ca.empty_dir.display().to_string()));
            }
            env.retain(|(k, _)| k != "DATA_INTERVAL" && k != "DATASETS");
            env.push(("DATA_INTERVAL".into(), "100000000000".into()));
            env.push(("DATASETS".into(), "a=train/a/,b=train/b/".into()));
            if let Some(c) = &a.concurrency {
                env.push(("LIST_CONCURRENCY".into(), c.clone()));
            }
            if let Some(t) = &a.worker_threads {
                env.push(("TOKIO_WORKER_THREADS".into(), t.clone()));
            }
            // What Lambda tells a function of that size; seek sizes its runtime and its
            // requests in flight from it.
            if let Some(mb) = a.quota_mb {
                env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), mb.to_string()));
            }
            let child = spawn_in(dir, "seek", &env);
            let pid = child.id().unwrap();
            if let Some((_, Ok(q))) = &quota {
                q.admit(pid).unwrap();
            }
            while rt.first_poll().is_none() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let cpu0 = cpu_seconds(pid);
            let req0 = s3.requests().0;
            s3.take_peak_in_flight();
            let started = Instant::now();
            let out = rt
                .invoke(
                    &harness::unique("bench"),
                    json!({}),
                    Duration::from_secs(900),
                )
                .await
                .expect("seek answered")
                .expect("seek succeeded");
            let invocation = started.elapsed().as_secs_f64();
            // The listing's own time (the datasets are listed at once): the invocation also
            // stores and posts, and since change detection waits for a whole second first.
            let secs = out["counted"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["seconds"].as_f64())
                .fold(0.0, f64::max)
                .max(1e-3)
                .min(invocation);
            let cpu = cpu_seconds(pid) - cpu0;
            let requests = s3.requests().0 - req0;
            let in_flight = s3.take_peak_in_flight();
            let rss = peak_rss_kib(pid).unwrap_or(0);
            drop(child);
            let expected = 2 * Layout::objects_among(n);
            let counted: u64 = out["counted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["objects"].as_u64().unwrap())
                .sum();
            assert_eq!(counted, expected, "{out}");
            let keys = 2.0 * n as f64;
            let ranges: u64 = out["counted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["ranges"].as_u64().unwrap_or(0))
                .sum();
            println!(
                "  {:8} {:>9}  {secs:>7.2}  {:>10.0}  {:>14.2}  {:>13.0}  {:>5.1} MiB  {ranges:>7}  {in_flight:>9}  {:>5}",
                layout.name(),
                2 * n,
                keys / secs,
                cpu / keys * 1e6,
                requests as f64 / keys * 1e6,
                rss as f64 / 1024.0,
                load()
            );
        }
    }
    if let Some(venv) = &a.compare {
        let n = *a.sizes.iter().max().unwrap();
        s3.set_keys(n, Layout::Counter);
        println!(
            "\nthe same 2 x {n} keys ({} ms a page), whole machine, other listers:",
            a.latency.as_millis()
        );
        compare(venv, &s3, n).await;
    }
}

async fn compare(venv: &std::path::Path, s3: &FakeS3, n: u64) {
    let creds = [
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    let boto = format!(
        "import boto3,sys\nc=boto3.client('s3',endpoint_url='{}')\nn=0\nfor p in ['train/a/','train/b/']:\n  for page in c.get_paginator('list_objects_v2').paginate(Bucket='bench',Prefix=p):\n    n+=sum(1 for o in page.get('Contents',[]) if not o['Key'].endswith('/'))\nprint(n)",
        s3.url
    );
    let runs: [(&str, Vec<String>); 2] = [
        (
            "s5cmd ls",
            // One prefix after the other, as seek's two datasets (a wildcard over `train/`
            // would list one prefix only: the simulated S3 serves n keys under any prefix).
            vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "for p in a b; do {} --endpoint-url {} ls \"s3://bench/train/$p/*\" || exit 1; done",
                    venv.join("bin/s5cmd").display(),
                    s3.url
                ),
            ],
        ),
        (
            "boto3 paginator",
            vec![
                venv.join("bin/python").display().to_string(),
                "-c".into(),
                boto,
            ],
        ),
    ];
    for (name, argv) in runs {
        let started = Instant::now();
        let out = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .envs(creds)
            .output()
            .await;
        let secs = started.elapsed().as_secs_f64();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let counted = if name.starts_with("s5cmd") {
                    text.lines()
                        .filter(|l| !l.trim_end().ends_with('/') && !l.contains(" DIR "))
                        .count() as u64
                } else {
                    text.trim().parse().unwrap_or(0)
                };
                println!(
                    "  {name:16} {:>9} keys  {secs:>7.2} s  {:>10.0} keys/s  (objects counted {counted}, expected {})",
                    2 * n,
                    2.0 * n as f64 / secs,
                    2 * Layout::objects_among(n)
                );
            }
            Ok(o) => println!(
                "  {name:16} failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
            Err(e) => println!("  {name:16} not run ({e}); scripts/bench-setup installs it"),
        }
    }
}
