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

/// Starts a function binary behind its own local runtime; the child stops with this process.
fn function(name: &str, env: &[(&str, String)], runtime: &LambdaRuntime) -> tokio::process::Child {
    let mut all = lambda_env(name, Some(&runtime.api), harness::moto::url());
    all.retain(|(k, _)| k != "AWS_LAMBDA_LOG_FORMAT");
    all.push(("AWS_LAMBDA_LOG_FORMAT".into(), "Text".into()));
    all.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let mut child = spawn(name, &all);
    // Let the function's own log lines through to this terminal.
    for stream in [
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child.stdout.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let name = name.to_owned();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{name}] {line}");
            }
        });
    }
    child
}

/// The whole system: demo data, the three functions, their Function URLs, and the console.
async fn up(port: u16) -> Result<(), String> {
    let sdk = harness::moto::sdk().await;
    demo_data(&sdk).await;
    let slack = SlackStandIn::start().await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port} ({e}); try `scripts/run up --port 0`")
        })?;
    let console_url = format!(
        "http://{}/",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let signing_secret = uuid::Uuid::new_v4().simple().to_string();
    let send_token = uuid::Uuid::new_v4().simple().to_string();
    let common = [
        ("STATE_TABLE", TABLE.to_owned()),
        ("SLACK_WEBHOOK_URL", slack.webhook_url()),
    ];
    let (seek_rt, actions_rt, send_rt) = (
        LambdaRuntime::start().await,
        LambdaRuntime::start().await,
        LambdaRuntime::start().await,
    );
    let mut seek_env = common.to_vec();
    seek_env.extend([
        ("DATA_BUCKET", BUCKET.to_owned()),
        ("DATASETS", DATASETS.to_owned()),
        ("DATA_INTERVAL", "100".to_owned()),
    ]);
    let mut actions_env = common.to_vec();
    actions_env.extend([
        ("SLACK_SIGNING_SECRET", signing_secret.clone()),
        ("KUBEFLOW_URL", format!("{console_url}kubeflow/")),
    ]);
    let mut send_env = common.to_vec();
    send_env.extend([
        ("SEND_URL_AUTH", "NONE".to_owned()),
        ("SEND_TOKEN", send_token.clone()),
    ]);
    let _children = [
        function("seek", &seek_env, &seek_rt),
        function("actions", &actions_env, &actions_rt),
        function("send", &send_env, &send_rt),
    ];
    let actions_url = harness::function_url::serve(actions_rt, "127.0.0.1:0").await;
    let send_url = harness::function_url::serve(send_rt, "127.0.0.1:0").await;
    let first_messages = slack.clone();
    let console = harness::console::Console {
        slack,
        actions_url: actions_url.clone(),
        signing_secret,
        seek: seek_rt.clone(),
        sdk,
        bucket: BUCKET.into(),
        datasets: vec![
            ("embedding".into(), "train/embedding/".into()),
            ("faiss".into(), "train/faiss/".into()),
        ],
        users: vec![
            ("U0ANN".into(), "ann".into()),
            ("U0BOB".into(), "bob".into()),
        ],
        send_url: send_url.clone(),
        send_token: send_token.clone(),
        next_object: std::sync::Arc::new(std::sync::Mutex::new(
            [("embedding".to_owned(), 190), ("faiss".to_owned(), 10)]
                .into_iter()
                .collect(),
        )),
        http: {
            ct_shared::slack::client::install_tls_provider();
            reqwest::Client::new()
        },
    };
    let app = harness::console::router(console);
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    // The first weekly seek, so the channel has a question waiting.
    let now = ct_shared::Timestamp::now();
    match seek_rt
        .invoke(
            "first-seek",
            scheduled_event(&now.rfc3339()),
            Duration::from_secs(120),
        )
        .await
    {
        Some(Ok(v)) => println!("first seek: {} ({})", v["result"], v["text"]),
        other => return Err(format!("the first seek failed: {other:?}")),
    }
    for post in first_messages.channel() {
        println!("{}", harness::render::message(&post.body));
    }
    println!("actions Function URL: {actions_url}/");
    println!(
        "send Function URL:    {send_url}/   e.g. curl -H 'Authorization: Bearer {send_token}' -d text=hello {send_url}/"
    );
    println!("console: {console_url}");
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.iter().position(|a| a == "--port") {
        Some(i) => match args.get(i + 1).and_then(|p| p.parse::<u16>().ok()) {
            Some(p) => p,
            None => {
                eprintln!("--port takes a number (0 for any free port)");
                std::process::exit(2);
            }
        },
        None => 8787,
    };
    let mode = args.first().map(String::as_str).unwrap_or("up");
    let result = match mode {
        "seek" => seek_once().await,
        "up" | "--port" => up(port).await,
        other => Err(format!(
            "unknown mode {other:?}: use `up` (the default) or `seek`"
        )),
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
