//! Every HTTPS client the functions use (the AWS SDK's clients through aws/http.rs, Slack's and
//! Kubeflow's through reqwest) shares one TLS configuration, verified against the OS's roots:
//! the real seek binary lists S3, writes DynamoDB and posts to Slack through TLS fronts, and
//! refuses a server its roots do not vouch for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::events::scheduled_event;
use harness::runtime::{LambdaRuntime, lambda_env, logs, spawn};
use harness::tls::TestCa;
use std::time::Duration;

#[tokio::test]
async fn the_seek_binary_counts_stores_and_posts_over_verified_tls() {
    // GIVEN moto and Slack behind TLS fronts whose certificate a test authority signed
    let w = World::new().await;
    w.put("train/embedding/", 0, 120).await;
    let ca = TestCa::new();
    let aws = ca.front(harness::moto::url()).await;
    let slack = ca.front(&w.slack.webhook_url()).await;
    let env_trusting = |runtime: &LambdaRuntime, ca_file: &std::path::Path| {
        let mut env = lambda_env("seek", Some(&runtime.api), &aws.url);
        env.extend(w.seek_env("embedding=train/embedding/", 100));
        env.retain(|(k, _)| k != "SLACK_WEBHOOK_URL");
        env.push((
            "SLACK_WEBHOOK_URL".into(),
            slack.rewrite(&w.slack.webhook_url()),
        ));
        // Only this authority: what a Linux machine's roots are, read by rustls-native-certs.
        env.push(("SSL_CERT_FILE".into(), ca_file.display().to_string()));
        env.push(("SSL_CERT_DIR".into(), ca.empty_dir.display().to_string()));
        env
    };

    // WHEN seek runs trusting the authority
    let runtime = LambdaRuntime::start().await;
    let mut child = spawn("seek", &env_trusting(&runtime, &ca.ca_file));
    let lines = logs(&mut child);
    let out = runtime
        .invoke(
            "tls-1",
            scheduled_event("2026-11-24T00:00:00Z"),
            Duration::from_secs(60),
        )
        .await
        .expect("answered");
    child.kill().await.ok();

    // THEN it counted, stored and posted, every call over TLS
    let out = out.unwrap_or_else(|e| panic!("{e}\n{:?}", lines.lock().unwrap()));
    assert_eq!(out["result"], "posted", "{out}");
    assert_eq!(w.slack.channel().len(), 1);
    assert!(w.slack.channel()[0].text().starts_with("120 new objects"));
    assert_eq!(w.number("dataset#embedding", "seeked").await, Some(120));
    assert!(slack.handshakes() >= 1, "Slack was not reached over TLS");
    // S3 and DynamoDB (the state store has its own timeouts, so its own connections).
    assert!(aws.handshakes() >= 2, "{} TLS handshakes", aws.handshakes());

    // WHEN seek runs trusting only another authority
    let stranger = TestCa::new();
    let before = aws.handshakes();
    let runtime = LambdaRuntime::start().await;
    let mut child = spawn("seek", &env_trusting(&runtime, &stranger.ca_file));
    let _lines = logs(&mut child);
    let refused = runtime
        .invoke(
            "tls-2",
            scheduled_event("2026-12-01T00:00:00Z"),
            Duration::from_secs(60),
        )
        .await
        .expect("answered");
    child.kill().await.ok();

    // THEN it fails before posting: no handshake completed, nothing new in Slack
    let err = refused.expect_err("the server's certificate is not trusted");
    let message = err.to_string().to_lowercase();
    assert!(message.contains("certificate"), "{err}");
    assert_eq!(aws.handshakes(), before);
    assert_eq!(w.slack.channel().len(), 1);
}
