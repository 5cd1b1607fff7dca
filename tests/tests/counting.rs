//! The real seek binary counting over concurrent key ranges: against moto (real ListObjectsV2
//! semantics for StartAfter and continuation tokens) and against the simulated S3 answering
//! 503 SlowDown to some requests. Counts must be exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::fake_s3::{FakeS3, Layout};
use harness::runtime::{LambdaRuntime, lambda_env, spawn};
use serde_json::{Value, json};
use std::time::Duration;

async fn run_seek(env: Vec<(String, String)>, runtime: &LambdaRuntime) -> Value {
    let mut child = spawn("seek", &env);
    let out = runtime
        .invoke("count-1", json!({}), Duration::from_secs(120))
        .await;
    child.kill().await.ok();
    out.expect("seek answered").expect("seek succeeded")
}

#[tokio::test]
async fn the_seek_binary_counts_thousands_of_moto_keys_over_several_ranges() {
    // GIVEN about 3,000 keys under one prefix: a decimal counter, non-ASCII names with
    // spaces, `+` and `%`, folder markers, keys equal to the points an open range steps to
    // (the prefix plus one character) and to the prefix itself; and keys just outside it
    let w = World::new().await;
    let mut keys: Vec<String> = (0..2_400)
        .map(|i| format!("train/a/{i:06}.jsonl"))
        .collect();
    keys.extend((0..400).map(|i| format!("train/a/데이터/ü {i:04}+%.bin")));
    keys.extend((0..150).map(|i| format!("train/a/x{i:03}/")));
    keys.extend((0..50u8).map(|i| {
        let digit = char::from(b'0' + i % 10).to_string();
        format!("train/a/{}", digit.repeat(1 + usize::from(i / 10)))
    }));
    for key in [
        "train/a/",
        "train/a/1",
        "train/a/2",
        "train/a/:",
        "train/a/\u{1F600}.jpg",
        "train/a/z/",
    ] {
        keys.push(key.to_owned());
    }
    keys.sort();
    keys.dedup();
    let objects = keys.iter().filter(|k| !k.ends_with('/')).count() as u64;
    keys.extend([
        "train/ab".to_owned(),
        "train/b/x".to_owned(),
        "train/a".to_owned(),
    ]);
    keys.extend((0..100).map(|i| format!("train/c/{i:03}")));
    harness::moto::seed_keys(&w.bucket, &keys).await;
    let runtime = LambdaRuntime::start().await;
    let mut env = lambda_env("seek", Some(&runtime.api), harness::moto::url());
    env.extend(w.seek_env("a=train/a/,c=train/c/", 1_000_000));
    env.push(("LIST_CONCURRENCY".into(), "8".into()));
    // WHEN seek counts both datasets
    let out = run_seek(env, &runtime).await;
    // THEN every object is counted once, the big prefix in several ranges
    let counted = out["counted"].as_array().expect("counted");
    let a = counted.iter().find(|c| c["dataset"] == "a").expect("a");
    let c = counted.iter().find(|c| c["dataset"] == "c").expect("c");
    assert_eq!(a["objects"], objects, "{out}");
    assert_eq!(c["objects"], 100, "{out}");
    assert!(a["ranges"].as_u64().unwrap() >= 3, "{out}");
    assert!(a["list_requests"].as_u64().unwrap() >= 4, "{out}");
    assert!(a["seconds"].as_f64().is_some(), "{out}");
}

#[tokio::test]
async fn counts_stay_exact_when_s3_answers_slowdown() {
    // GIVEN a simulated S3 whose every 7th answer is 503 SlowDown, 30,000 keys a prefix, and
    // seek with 16 requests in flight, then with as many as its memory size would have
    let s3 = FakeS3::start().await;
    s3.set_slowdown_every(7);
    s3.set_latency(Duration::from_millis(5));
    let w = World::new().await;
    for layout in [Layout::Unicode, Layout::Hashes] {
        s3.set_keys(30_000, layout);
        let runtime = LambdaRuntime::start().await;
        let mut env = lambda_env("seek", Some(&runtime.api), harness::moto::url());
        env.extend(w.seek_env("a=train/a/,b=train/b/", 1_000_000_000));
        env.push(("AWS_ENDPOINT_URL_S3".into(), s3.url.clone()));
        // A fixed gate once, then the gate sized from memory, which SlowDown cuts.
        if layout == Layout::Unicode {
            env.push(("LIST_CONCURRENCY".into(), "16".into()));
        }
        // WHEN seek counts
        let out = run_seek(env, &runtime).await;
        // THEN the SDK retried the SlowDowns and the counts are exact
        for c in out["counted"].as_array().expect("counted") {
            assert_eq!(
                c["objects"],
                Layout::objects_among(30_000),
                "{layout:?} {out}"
            );
            assert!(c["ranges"].as_u64().unwrap() > 1, "{out}");
        }
    }
    let (requests, slowdowns) = s3.requests();
    assert!(slowdowns > 0 && requests > 60, "{requests} {slowdowns}");
}

#[tokio::test]
async fn seek_fails_clearly_before_the_deadline_naming_its_progress() {
    // GIVEN 10 million keys at 100 ms a page, two requests in flight, and 4 s to count them
    let s3 = FakeS3::start().await;
    s3.set_latency(Duration::from_millis(100));
    s3.set_keys(10_000_000, Layout::Counter);
    let w = World::new().await;
    let runtime = LambdaRuntime::start().await;
    runtime.set_function_timeout(Duration::from_secs(4));
    let mut env = lambda_env("seek", Some(&runtime.api), harness::moto::url());
    env.extend(w.seek_env("a=train/a/", 1_000_000_000));
    env.push(("AWS_ENDPOINT_URL_S3".into(), s3.url.clone()));
    env.push(("LIST_CONCURRENCY".into(), "2".into()));
    let mut child = spawn("seek", &env);
    // WHEN seek counts
    let started = std::time::Instant::now();
    let out = runtime
        .invoke("deadline-1", json!({}), Duration::from_secs(30))
        .await
        .expect("seek answered");
    child.kill().await.ok();
    // THEN it gives up before the deadline, saying how far it got and what to raise
    let err = out.expect_err("seek cannot count 10M keys in 4 s");
    assert!(started.elapsed() < Duration::from_secs(4), "{err}");
    assert_eq!(err["errorType"], "seek.DeadlineNear", "{err}");
    let message = err["errorMessage"].as_str().expect("a message");
    assert!(
        message.contains("could not finish before the invocation's deadline")
            && message.contains(" objects in ")
            && message.contains("keys/s")
            && message.contains("raise seek's Timeout")
            && !message.contains(" 0 key ranges still open"),
        "{message}"
    );
    // ... and no partial count was stored
    assert!(
        w.item("dataset#a").await.is_none(),
        "a partial count was stored"
    );
}
