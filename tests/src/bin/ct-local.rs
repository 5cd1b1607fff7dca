//! ct-trigger on one machine: moto for S3 and DynamoDB, the real function binaries behind a
//! local Lambda runtime, and a Slack stand-in. See `scripts/run`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::events::scheduled_event;
use harness::runtime::{LambdaRuntime, lambda_env, spawn};
use harness::slack::SlackStandIn;
use std::time::Duration;

const BUCKET: &str = "ct-trigger-demo";
const TABLE: &str = "ct-trigger-demo-state";
const DATASETS: &str = "embedding=train/embedding/,faiss=train/faiss/:500";

async fn demo_data(sdk: &aws_config::SdkConfig) {
    harness::moto::create_bucket(sdk, BUCKET).await;
    harness::moto::create_table(sdk, TABLE).await;
    harness::moto::put_key(sdk, BUCKET, "train/embedding/").await;
    harness::moto::put_objects(sdk, BUCKET, "train/embedding/", 0, 190).await;
    harness::moto::put_objects(sdk, BUCKET, "train/faiss/", 0, 10).await;
}

async fn seek_once() -> Result<(), String> {
    let sdk = harness::moto::sdk().await;
    println!("moto (S3, DynamoDB) on {}", harness::moto::url());
    demo_data(&sdk).await;
    println!(
        "demo data: s3://{BUCKET}/train/embedding/ 190 objects, train/faiss/ 10 objects; DATASETS={DATASETS}, DATA_INTERVAL=100"
    );
    let real = std::env::var("SLACK_WEBHOOK_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let stand_in = SlackStandIn::start().await;
    let webhook = real.clone().unwrap_or_else(|| stand_in.webhook_url());
    let runtime = LambdaRuntime::start().await;
    let mut env = lambda_env("seek", Some(&runtime.api), harness::moto::url());
    for (k, v) in [
        ("DATA_BUCKET", BUCKET),
        ("DATASETS", DATASETS),
        ("DATA_INTERVAL", "100"),
        ("STATE_TABLE", TABLE),
        ("SLACK_WEBHOOK_URL", webhook.as_str()),
        ("AWS_LAMBDA_LOG_FORMAT", "Text"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ] {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
    }
    let mut child = spawn("seek", &env);
    let now = ct_shared::Timestamp::now();
    let event = scheduled_event(&now.rfc3339());
    println!("invoking the seek binary with an EventBridge Scheduled Event for {now} ...");
    let outcome = runtime
        .invoke("local-1", event, Duration::from_secs(120))
        .await;
    child.kill().await.ok();
    match outcome {
        Some(Ok(result)) => println!("seek returned: {result}"),
        Some(Err(error)) => return Err(format!("seek failed: {error}")),
        None => return Err("seek did not answer within 120 s".into()),
    }
    if real.is_some() {
        println!("posted to your Slack channel (SLACK_WEBHOOK_URL).");
    } else {
        println!("\nSlack would show (no SLACK_WEBHOOK_URL set, so nothing left this machine):\n");
        for post in stand_in.channel() {
            println!("{}\n", harness::render::message(&post.body));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "seek".into());
    let result = match mode.as_str() {
        "seek" => seek_once().await,
        other => Err(format!("unknown mode {other:?}: use `seek`")),
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
