//! Benchmarks that print numbers: cold start of each function binary, and seek's counting
//! throughput and peak memory as the number of objects grows (it must stay flat: counting
//! streams one page at a time).
//!
//! `cargo build --release --bins && target/release/ct-bench` (or `--bin-dir target/debug`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::fake_s3::FakeS3;
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
    let sizes: Vec<u64> = arg("--sizes")
        .unwrap_or_else(|| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.parse().expect("sizes are numbers"))
        .collect();
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

    println!("\ncold start (process start until it first polls for an event), 7 runs each:");
    for name in ["seek", "actions", "send"] {
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

    println!(
        "\nseek counting one dataset through ListObjectsV2 (1,000 keys a page; 1% folder markers):"
    );
    println!(
        "  {:>10}  {:>9}  {:>12}  {:>14}",
        "keys", "seconds", "keys/second", "seek peak RSS"
    );
    let s3 = FakeS3::start().await;
    for n in sizes {
        s3.set_keys(n);
        let rt = LambdaRuntime::start().await;
        let mut env = base_env("seek", &rt.api, &table, &slack.webhook_url());
        env.push(("AWS_ENDPOINT_URL_S3".into(), s3.url.clone()));
        // A high interval: the benchmark measures counting, not posting.
        env.retain(|(k, _)| k != "DATA_INTERVAL");
        env.push(("DATA_INTERVAL".into(), "100000000".into()));
        let child = spawn_in(&dir, "seek", &env);
        let started = Instant::now();
        let out = rt
            .invoke(
                &harness::unique("bench"),
                json!({}),
                Duration::from_secs(600),
            )
            .await
            .expect("seek answered")
            .expect("seek succeeded");
        let secs = started.elapsed().as_secs_f64();
        let rss = peak_rss_kib(child.id().unwrap()).unwrap_or(0);
        drop(child);
        let expected = FakeS3::objects_among(n);
        assert!(
            out["text"]
                .as_str()
                .unwrap()
                .contains(&format!("{expected} new objects")),
            "{out}"
        );
        println!(
            "  {n:>10}  {secs:>9.2}  {:>12.0}  {:>10.1} MiB",
            n as f64 / secs,
            rss as f64 / 1024.0
        );
    }
    println!("  (pages served: {})", s3.pages_served());
}
