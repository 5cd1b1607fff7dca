//! The real function binaries, run as Lambda runs them: behind a Runtime API stand-in, with
//! only the environment the template gives them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::events::scheduled_event;
use harness::runtime::{LambdaRuntime, lambda_env, logs, spawn};
use harness::slack::WEBHOOK_TOKEN;
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::{Value, json};
use std::time::Duration;

/// Runs a binary that should refuse to start; returns (exit code, stdout + stderr).
async fn refuses_to_start(name: &str, env: Vec<(String, String)>) -> (i32, String) {
    let moto = harness::moto::url();
    let mut all = lambda_env(name, None, moto);
    all.extend(env);
    // No runtime API: a binary that got past configuration would fail differently.
    let child = spawn(name, &all);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits promptly")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn without(mut env: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != name);
    env
}

fn with(mut env: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != name);
    env.push((name.into(), value.into()));
    env
}

#[tokio::test]
async fn seek_refuses_to_start_naming_the_bad_variable() {
    let w = World::new().await;
    let good = w.seek_env("embedding=train/embedding/", 100);
    let cases = [
        ("DATA_BUCKET", without(good.clone(), "DATA_BUCKET")),
        ("DATASETS", without(good.clone(), "DATASETS")),
        ("DATASETS", with(good.clone(), "DATASETS", "embedding")),
        (
            "DATASETS",
            with(good.clone(), "DATASETS", "faiss=train/faiss/:5OO"),
        ),
        (
            "DATA_INTERVAL",
            with(good.clone(), "DATA_INTERVAL", "weekly"),
        ),
        // Thresholds in no unit, and an empty bucket name.
        (
            "DATASETS",
            with(good.clone(), "DATASETS", "e=train/e/:10%%"),
        ),
        ("DATASETS", with(good.clone(), "DATASETS", "e=train/e/:5XB")),
        ("DATASETS", with(good.clone(), "DATASETS", "e=train/e/:-3")),
        ("DATASETS", with(good.clone(), "DATASETS", "e=train/e/:1.5")),
        (
            "DATASETS",
            with(good.clone(), "DATASETS", "e=s3:///train/e/"),
        ),
        ("STATE_TABLE", without(good.clone(), "STATE_TABLE")),
        (
            "SLACK_WEBHOOK_URL",
            without(good.clone(), "SLACK_WEBHOOK_URL"),
        ),
        (
            "SLACK_WEBHOOK_URL",
            with(
                good.clone(),
                "SLACK_WEBHOOK_URL",
                &format!("hooks/{WEBHOOK_TOKEN}"),
            ),
        ),
        (
            "SECRETS_ARN",
            with(
                good.clone(),
                "SECRETS_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing",
            ),
        ),
    ];
    for (variable, env) in cases {
        let entry = env
            .iter()
            .find(|(k, _)| k == "DATASETS")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let (code, text) = refuses_to_start("seek", env).await;
        assert_eq!(code, 2, "{variable}: {text}");
        assert!(text.contains(variable), "{variable} not named: {text}");
        // Said once, as a sentence: not again as a log line, nor as Rust's Debug output.
        assert_eq!(text.matches("seek cannot start: ").count(), 1, "{text}");
        assert_eq!(text.trim().lines().count(), 1, "{text}");
        assert!(!text.contains("ConfigError {"), "{text}");
        if variable == "DATASETS" && entry.starts_with("e=") {
            assert!(text.contains("entry 1"), "the entry is not named: {text}");
        }
        assert!(!text.contains(WEBHOOK_TOKEN), "secret leaked: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[tokio::test]
async fn actions_refuses_to_start_without_its_signing_secret_or_kubeflow_url() {
    let w = World::new().await;
    let good = w.actions_env();
    for (variable, env) in [
        (
            "SLACK_SIGNING_SECRET",
            without(good.clone(), "SLACK_SIGNING_SECRET"),
        ),
        ("KUBEFLOW_URL", without(good.clone(), "KUBEFLOW_URL")),
        (
            "KUBEFLOW_URL",
            with(good.clone(), "KUBEFLOW_URL", "kubeflow"),
        ),
    ] {
        let (code, text) = refuses_to_start("actions", env).await;
        assert_eq!(code, 2, "{variable}: {text}");
        assert!(text.contains(variable), "{variable} not named: {text}");
        assert!(!text.contains(SIGNING_SECRET));
    }
}

/// Collects a child's stdout lines (its logs) in the background.
#[tokio::test]
async fn the_seek_binary_runs_a_scheduled_event_reads_the_secret_and_logs_json_without_secrets() {
    // GIVEN the webhook only in a Secrets Manager secret, as the template deploys it
    let w = World::new().await;
    w.put("train/embedding/", 0, 120).await;
    let secret = json!({"slack_webhook_url": w.slack.webhook_url(), "slack_signing_secret": SIGNING_SECRET, "send_token": "tok"});
    let arn =
        harness::moto::create_secret(&w.sdk, &harness::unique("ct"), &secret.to_string()).await;
    let runtime = LambdaRuntime::start().await;
    let mut env = lambda_env("seek", Some(&runtime.api), harness::moto::url());
    env.extend(without(
        w.seek_env("embedding=train/embedding/", 100),
        "SLACK_WEBHOOK_URL",
    ));
    env.push(("SECRETS_ARN".into(), arn));
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "DEBUG".into()));
    let mut child = spawn("seek", &env);
    let lines = logs(&mut child);
    // WHEN EventBridge delivers the weekly event, twice
    let first = runtime
        .invoke(
            "req-1",
            scheduled_event("2026-11-24T00:00:00Z"),
            Duration::from_secs(60),
        )
        .await;
    let again = runtime
        .invoke(
            "req-2",
            scheduled_event("2026-11-24T00:00:00Z"),
            Duration::from_secs(60),
        )
        .await;
    let bad = runtime
        .invoke(
            "req-3",
            json!({"detail-type": "Object Created"}),
            Duration::from_secs(60),
        )
        .await;
    child.kill().await.ok();
    // THEN one post, a duplicate, and a clear error for the bad event
    let first: Value = first.expect("answered").expect("succeeded");
    assert_eq!(first["result"], "posted");
    assert_eq!(
        first["text"],
        "120 new objects in embedding. Would you like to train models?"
    );
    assert_eq!(
        again.expect("answered").expect("succeeded")["result"],
        "duplicate"
    );
    let bad = bad.expect("answered").expect_err("refused");
    assert_eq!(bad["errorType"], "seek.BadEvent", "{bad}");
    assert_eq!(w.slack.channel().len(), 1);
    // Logs are JSON, and even at DEBUG they never carry the webhook URL.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("posted to slack")),
        "{lines:?}"
    );
    for line in &lines {
        assert!(!line.contains(WEBHOOK_TOKEN), "secret in log: {line}");
        assert!(!line.contains(SIGNING_SECRET), "secret in log: {line}");
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}

#[tokio::test]
async fn the_actions_binary_answers_a_signed_function_url_click() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let id = w
        .weekly_seek("2026-11-24T00:00:00Z")
        .await
        .request_id
        .unwrap();
    let runtime = LambdaRuntime::start().await;
    let mut env = lambda_env("actions", Some(&runtime.api), harness::moto::url());
    env.extend(w.actions_env());
    let mut child = spawn("actions", &env);
    let lines = logs(&mut child);
    let now = ct_shared::Timestamp::now().secs();
    let body = form(&block_actions(
        "train",
        &id,
        ("U0ANN", "ann"),
        &w.slack.response_url("m"),
    ));
    let ok = runtime
        .invoke(
            "c1",
            signed_event(
                SIGNING_SECRET,
                now,
                &body,
                "application/x-www-form-urlencoded",
            ),
            Duration::from_secs(30),
        )
        .await
        .expect("answered")
        .expect("succeeded");
    let forged = runtime
        .invoke(
            "c2",
            signed_event("wrong", now, &body, "application/x-www-form-urlencoded"),
            Duration::from_secs(30),
        )
        .await
        .expect("answered")
        .expect("succeeded");
    child.kill().await.ok();
    assert_eq!(ok["statusCode"], 200, "{ok}");
    assert_eq!(forged["statusCode"], 401, "{forged}");
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
    assert_eq!(w.slack.responses("m").len(), 1);
    for line in lines.lock().unwrap().iter() {
        assert!(
            !line.contains(SIGNING_SECRET) && !line.contains(WEBHOOK_TOKEN),
            "secret in log: {line}"
        );
    }
}
