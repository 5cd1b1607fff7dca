//! ct-trigger on one machine: moto for S3 and DynamoDB, the real function binaries behind a
//! local Lambda runtime, and a Slack stand-in. See `scripts/run` and `--help`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::events::scheduled_event;
use harness::runtime::{LambdaRuntime, lambda_env, spawn};
use harness::slack::SlackStandIn;
use harness::terminal::Terminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

const BUCKET: &str = "ct-trigger-demo";
const TABLE: &str = "ct-trigger-demo-state";
const DEMO_DATASETS: &str = "embedding=train/embedding/,faiss=train/faiss/:500";
const DEMO_INTERVAL: &str = "100";
const DEMO_KFP_PARAMETERS: &str =
    r#"{"request": "${request_id}", "approved_by": "${approved_by}"}"#;
/// The objects the demo bucket starts with, by prefix.
const DEMO_OBJECTS: [(&str, usize); 2] = [("train/embedding/", 190), ("train/faiss/", 10)];

const USAGE: &str = "\
usage: scripts/run [up] [--port N] [--verbose] [--web-api]
                                    the whole system and the local Slack console
                                    (port 8787 by default; --port 0 picks a free one;
                                    --web-api posts as a bot would: questions edited to
                                    their outcome, what follows in their thread)
       scripts/run seek [--verbose] one weekly seek over the demo data; prints the message
       scripts/run --help           this text

The functions' metric (EMF) lines are shown as one short line each (`metrics ...`);
--verbose shows them as the functions print them, for CloudWatch.

Environment (the demo's values are the defaults):
  DATASETS           name=prefix[:N],... counted in the demo bucket, which holds
                     190 objects under train/embedding/ and 10 under train/faiss/
                     (unset: embedding=train/embedding/,faiss=train/faiss/:500;
                     set but empty is an error)
  DATA_INTERVAL      the default threshold, in new objects (unset: 100; set but empty is
                     an error)
  SLACK_WEBHOOK_URL  `seek` only: post to this real Slack channel instead of printing
                     the message (`up` always posts to the local console)
  REQUEST_TTL, REMIND_AFTER
                     `up`: when a question expires and is reminded (default 7d and 1d;
                     e.g. REQUEST_TTL=2m REMIND_AFTER=1m to watch both); when either is
                     set, a heartbeat sweeps every 10 s
";

/// A setting ct-local passes to the functions: yours from the environment, or the demo's.
struct Setting {
    name: &'static str,
    value: String,
    yours: bool,
}

impl Setting {
    /// Yours when set; the demo's only when unset. Set but empty (or blank) is a mistake, not
    /// a way to ask for the demo's: it is refused, naming the variable.
    fn read(name: &'static str, demo: &str, wanted: &str) -> Result<Self, String> {
        match std::env::var_os(name) {
            None => Ok(Self {
                name,
                value: demo.to_owned(),
                yours: false,
            }),
            Some(value) => match value.into_string() {
                Ok(value) if !value.trim().is_empty() => Ok(Self {
                    name,
                    value,
                    yours: true,
                }),
                Ok(_) => Err(format!(
                    "{name} is set but empty: set it to {wanted}, or unset it (unset {name}) to use the demo's {demo}."
                )),
                Err(_) => Err(format!("{name} is not valid UTF-8: set it to {wanted}.")),
            },
        }
    }

    /// `DATASETS=... (yours, from the environment)` or `... (the demo's; set DATASETS ...)`.
    fn said(&self) -> String {
        if self.yours {
            format!("{}={} (yours, from the environment)", self.name, self.value)
        } else {
            format!(
                "{}={} (the demo's; set {} to use your own)",
                self.name, self.value, self.name
            )
        }
    }
}

async fn demo_data(sdk: &aws_config::SdkConfig) {
    harness::moto::create_bucket(sdk, BUCKET).await;
    harness::moto::create_table(sdk, TABLE).await;
    harness::moto::put_key(sdk, BUCKET, "train/embedding/").await;
    for (prefix, n) in DEMO_OBJECTS {
        harness::moto::put_objects(sdk, BUCKET, prefix, 0, n).await;
    }
}

/// The last lines a stream printed, kept to explain an early exit.
type Said = Arc<Mutex<Vec<String>>>;

/// A function binary running behind its own local runtime, its output passed through to this
/// terminal as `[name] line`.
struct Function {
    name: &'static str,
    child: tokio::process::Child,
    stderr: Said,
    stdout: Said,
    readers: Vec<JoinHandle<()>>,
}

impl Function {
    fn start(
        name: &'static str,
        env: &[(&str, String)],
        runtime: &LambdaRuntime,
        terminal: &Terminal,
    ) -> Self {
        let mut all = lambda_env(name, Some(&runtime.api), harness::moto::url());
        all.retain(|(k, _)| k != "AWS_LAMBDA_LOG_FORMAT");
        all.push(("AWS_LAMBDA_LOG_FORMAT".into(), "Text".into()));
        all.push(("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into()));
        if !terminal.verbose {
            // lambda_runtime logs a handler's error again with Rust's Debug formatting
            // (`Slack(Unreachable { attempts: 4, .. })`) after the function has said it as a
            // sentence; a panic is still printed by Rust's panic hook.
            all.push((
                "RUST_LOG".into(),
                "warn,lambda_runtime::layers::panic=off".into(),
            ));
        }
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let mut child = spawn(name, &all);
        let (stderr, stdout) = (Said::default(), Said::default());
        let mut readers = Vec::new();
        let streams = [
            child.stderr.take().map(|s| {
                (
                    Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    &stderr,
                )
            }),
            child.stdout.take().map(|s| (Box::new(s) as _, &stdout)),
        ];
        for (stream, said) in streams.into_iter().flatten() {
            let said = said.clone();
            let terminal = terminal.clone();
            readers.push(tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    terminal.line(name, &line);
                    let mut said = said.lock().unwrap();
                    said.push(line);
                    if said.len() > 20 {
                        said.remove(0);
                    }
                }
            }));
        }
        Self {
            name,
            child,
            stderr,
            stdout,
            readers,
        }
    }

    /// Waits for the function to exit, then says so. Why is in its own words, which this
    /// terminal has already shown as `[name] ...` lines (where `main` explains a refusal to
    /// start): they are pointed at, not printed again.
    async fn exited(&mut self) -> String {
        let status = match self.child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        };
        for reader in self.readers.drain(..) {
            reader.await.ok();
        }
        let said =
            !self.stderr.lock().unwrap().is_empty() || !self.stdout.lock().unwrap().is_empty();
        let name = self.name;
        if said {
            format!("{name} stopped ({status}); the [{name}] lines above say why.")
        } else {
            format!("{name} stopped ({status}) without saying why.")
        }
    }

    async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

/// The first of three functions to exit, in its own words.
async fn first_exit(a: &mut Function, b: &mut Function, c: &mut Function) -> String {
    tokio::select! {
        why = a.exited() => why,
        why = b.exited() => why,
        why = c.exited() => why,
    }
}

const DATASETS_WANTED: &str = "name=prefix[:N],... (e.g. faiss=train/faiss/:500)";
const INTERVAL_WANTED: &str = "a threshold such as 100 (new objects)";

/// What a function answered with an error report says, as a sentence.
fn failed(what: &str, report: &serde_json::Value) -> String {
    let said = harness::console::error_report(report);
    let said = said.trim_end_matches('.');
    format!("{what} failed: {said}.")
}

/// Whether this terminal shows styles: stdout is a terminal and `NO_COLOR` is unset.
fn colors() -> harness::render::Colors {
    use std::io::IsTerminal;
    harness::render::Colors(
        std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    )
}

async fn seek_once(verbose: bool) -> Result<(), String> {
    let datasets = Setting::read("DATASETS", DEMO_DATASETS, DATASETS_WANTED)?;
    let interval = Setting::read("DATA_INTERVAL", DEMO_INTERVAL, INTERVAL_WANTED)?;
    let real = std::env::var("SLACK_WEBHOOK_URL")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let terminal = Terminal::new(verbose);
    let sdk = harness::moto::sdk().await;
    println!("moto (S3, DynamoDB) on {}", harness::moto::url());
    demo_data(&sdk).await;
    println!(
        "demo data: s3://{BUCKET}/train/embedding/ 190 objects, train/faiss/ 10 objects\n{}\n{}\n{}",
        datasets.said(),
        interval.said(),
        if real.is_some() {
            "SLACK_WEBHOOK_URL (yours, from the environment; not shown: it is a secret)"
        } else {
            "SLACK_WEBHOOK_URL unset: a local Slack stand-in takes the message"
        }
    );
    let stand_in = SlackStandIn::start().await;
    let webhook = real.clone().unwrap_or_else(|| stand_in.webhook_url());
    let runtime = LambdaRuntime::start().await;
    let mut seek = Function::start(
        "seek",
        &[
            ("DATA_BUCKET", BUCKET.to_owned()),
            ("DATASETS", datasets.value),
            ("DATA_INTERVAL", interval.value),
            ("STATE_TABLE", TABLE.to_owned()),
            ("SLACK_WEBHOOK_URL", webhook),
        ],
        &runtime,
        &terminal,
    );
    let now = ct_shared::Timestamp::now();
    println!("invoking the seek binary with an EventBridge Scheduled Event for {now} ...");
    let outcome = tokio::select! {
        outcome = runtime.invoke("local-1", scheduled_event(&now.rfc3339()), Duration::from_secs(120)) => outcome,
        why = seek.exited() => return Err(why),
    };
    seek.stop().await;
    match outcome {
        Some(Ok(result)) => println!(
            "seek returned: {}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        ),
        Some(Err(error)) => return Err(failed("seek", &error)),
        None => return Err("seek did not answer within 120 s.".into()),
    }
    if real.is_some() {
        println!("posted to your Slack channel (SLACK_WEBHOOK_URL).");
    } else {
        println!("\nSlack would show (no SLACK_WEBHOOK_URL set, so nothing left this machine):\n");
        for post in stand_in.channel() {
            println!("{}\n", harness::render::message_in(&post.body, colors()));
        }
    }
    Ok(())
}

/// The whole system: demo data, the three functions, their Function URLs, and the console.
/// A question's lifetime from your environment (`REQUEST_TTL`, `REMIND_AFTER`), for every
/// function; with either set, ct-local beats every 10 s so that the sweep acts soon.
fn lifetime() -> Vec<(&'static str, String)> {
    ["REQUEST_TTL", "REMIND_AFTER"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name, v)))
        .collect()
}

async fn up(port: u16, verbose: bool, web_api: bool) -> Result<(), String> {
    let datasets = Setting::read("DATASETS", DEMO_DATASETS, DATASETS_WANTED)?;
    let interval = Setting::read("DATA_INTERVAL", DEMO_INTERVAL, INTERVAL_WANTED)?;
    // The port first: a clash is the likeliest failure, and needs nothing else started.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            format!("cannot listen on 127.0.0.1:{port} ({e}); try `scripts/run --port 0`")
        })?;
    let console_url = format!(
        "http://{}/",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    println!("{}\n{}", datasets.said(), interval.said());
    if std::env::var("SLACK_WEBHOOK_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!(
            "SLACK_WEBHOOK_URL is set but not used: in `up` the local console is the channel (`scripts/run seek` posts to it)"
        );
    }
    let terminal = Terminal::new(verbose);
    let sdk = harness::moto::sdk().await;
    demo_data(&sdk).await;
    let slack = SlackStandIn::start().await;
    let signing_secret = uuid::Uuid::new_v4().simple().to_string();
    let send_token = uuid::Uuid::new_v4().simple().to_string();
    let mut common = vec![
        ("STATE_TABLE", TABLE.to_owned()),
        ("SLACK_WEBHOOK_URL", slack.webhook_url()),
    ];
    if web_api {
        common.extend([
            ("SLACK_BOT_TOKEN", "xoxb-local-console".to_owned()),
            ("SLACK_CHANNEL", "C0LOCAL".to_owned()),
            ("SLACK_API_URL", slack.api_url()),
        ]);
    }
    let lifetime = lifetime();
    common.extend(lifetime.iter().cloned());
    let (seek_rt, actions_rt, send_rt) = (
        LambdaRuntime::start().await,
        LambdaRuntime::start().await,
        LambdaRuntime::start().await,
    );
    let mut seek_env = common.to_vec();
    seek_env.extend([
        ("DATA_BUCKET", BUCKET.to_owned()),
        ("DATASETS", datasets.value.clone()),
        ("DATA_INTERVAL", interval.value.clone()),
    ]);
    // Train! starts a run on a local Kubeflow Pipelines stand-in: actions queues the launch
    // job to itself through a local Lambda Invoke API.
    let kfp = harness::kfp::KfpStandIn::start().await;
    let invoke = harness::invoke::InvokeStandIn::start().await;
    invoke.register("actions", &actions_rt);
    // `/ct-trigger seek` from the console queues a count to the local seek the same way.
    invoke.register("seek", &seek_rt);
    // Run links lead to the console's page for the stand-in's runs.
    let kubeflow_url = format!("{console_url}kubeflow/");
    let mut actions_env = common.to_vec();
    actions_env.extend([
        ("SLACK_SIGNING_SECRET", signing_secret.clone()),
        ("KUBEFLOW_URL", kubeflow_url.clone()),
        ("KFP_ENDPOINT", kfp.base.clone()),
        ("KFP_PIPELINE_NAME", "retrain".to_owned()),
        ("KFP_PARAMETERS", DEMO_KFP_PARAMETERS.to_owned()),
        ("AWS_ENDPOINT_URL_LAMBDA", invoke.url.clone()),
        ("SEEK_FUNCTION_NAME", "seek".to_owned()),
        // A demo tries `/ct-trigger seek` again and again: a minute, unless set.
        (
            "SEEK_COOLDOWN_MINUTES",
            std::env::var("SEEK_COOLDOWN_MINUTES").unwrap_or_else(|_| "1".to_owned()),
        ),
        // The template's default schedule, for `/ct-trigger status`'s next-run line.
        ("SCHEDULE_EXPRESSION", "cron(0 0 ? * TUE *)".to_owned()),
        ("SCHEDULE_TIMEZONE", "UTC".to_owned()),
    ]);
    let mut send_env = common.to_vec();
    send_env.extend([
        ("SEND_URL_AUTH", "NONE".to_owned()),
        ("SEND_TOKEN", send_token.clone()),
        ("KUBEFLOW_URL", kubeflow_url.clone()),
    ]);
    let mut seek = Function::start("seek", &seek_env, &seek_rt, &terminal);
    let mut actions = Function::start("actions", &actions_env, &actions_rt, &terminal);
    let mut send = Function::start("send", &send_env, &send_rt, &terminal);
    let actions_url = harness::function_url::serve(actions_rt, "127.0.0.1:0").await;
    let send_url = harness::function_url::serve(send_rt, "127.0.0.1:0").await;
    let first_messages = slack.clone();
    // The console's datasets are seek's; if DATASETS is malformed, seek says so and stops.
    let console_datasets = ct_shared::config::parse_datasets(&datasets.value)
        .map(|ds| ds.into_iter().map(|d| (d.name, d.prefix)).collect())
        .unwrap_or_default();
    let console = harness::console::Console {
        slack,
        actions_url: actions_url.clone(),
        signing_secret,
        seek: seek_rt.clone(),
        sdk,
        bucket: BUCKET.into(),
        datasets: console_datasets,
        users: vec![
            ("U0ANN".into(), "ann".into()),
            ("U0BOB".into(), "bob".into()),
        ],
        send_url: send_url.clone(),
        send_token: send_token.clone(),
        next_object: Arc::new(Mutex::new(
            DEMO_OBJECTS
                .iter()
                .map(|(prefix, n)| ((*prefix).to_owned(), *n))
                .collect(),
        )),
        http: {
            ct_shared::tls::install_provider();
            reqwest::Client::new()
        },
        jobs: Default::default(),
        kfp: Some(kfp.clone()),
    };
    let app = harness::console::router(console);
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    // The first weekly seek, so the channel has a question waiting.
    let now = ct_shared::Timestamp::now();
    let first = tokio::select! {
        first = seek_rt.invoke("first-seek", scheduled_event(&now.rfc3339()), Duration::from_secs(120)) => first,
        why = first_exit(&mut seek, &mut actions, &mut send) => return Err(why),
    };
    match first {
        Some(Ok(v)) => println!(
            "first seek: {} ({})",
            v["result"].as_str().unwrap_or("?"),
            v["text"].as_str().unwrap_or_default()
        ),
        Some(Err(e)) => return Err(failed("the first seek", &e)),
        None => return Err("the first seek did not answer within 120 s.".into()),
    }
    for post in first_messages.channel() {
        println!("{}", harness::render::message_in(&post.body, colors()));
    }
    let console_line = format!("console: {console_url}");
    let ask_line = format!(
        "ask on a quality signal: curl -H 'Authorization: Bearer {send_token}' -d reason='Model quality dropped' -d metric=recall@10 -d value=0.81 -d threshold=0.85 -d source=eval-step {send_url}/ask"
    );
    terminal.banner(
        &[
            format!("actions Function URL: {actions_url}/"),
            format!(
                "send Function URL:    {send_url}/   e.g. curl -H 'Authorization: Bearer {send_token}' -d text=hello {send_url}/"
            ),
            ask_line.clone(),
            format!(
                "Kubeflow Pipelines stand-in: {kubeflow_url} (Train! starts pipeline \"retrain\" there; its API: {}/)",
                kfp.base
            ),
            console_line.clone(),
            "Ctrl-C stops everything.".to_owned(),
        ],
        vec![console_line, ask_line],
    );
    // The heartbeat, as the hourly schedule would send it, every 10 s: expiry and reminders.
    let beats = (!lifetime.is_empty()).then(|| {
        let rt = seek_rt.clone();
        tokio::spawn(async move {
            for n in 0u64.. {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let now = ct_shared::Timestamp::now().rfc3339();
                let beat = serde_json::json!({"detail-type": "Heartbeat", "source": "aws.scheduler", "time": now});
                let _ = rt.invoke(&format!("heartbeat-{n}"), beat, Duration::from_secs(60)).await;
            }
        })
    });
    let stopped = tokio::select! {
        stop = tokio::signal::ctrl_c() => stop.map_err(|e| format!("cannot wait for Ctrl-C: {e}")),
        why = first_exit(&mut seek, &mut actions, &mut send) => Err(why),
    };
    if let Some(b) = beats {
        b.abort();
    }
    for f in [seek, actions, send] {
        f.stop().await;
    }
    if stopped.is_ok() {
        // After the terminal's ^C: what it did.
        println!("\nstopped.");
    }
    stopped
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Up {
        port: u16,
        verbose: bool,
        web_api: bool,
    },
    Seek {
        verbose: bool,
    },
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut mode = None;
    let mut port = 8787;
    let mut verbose = false;
    let mut web_api = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "-v" | "--verbose" => verbose = true,
            "--web-api" => web_api = true,
            "--port" => {
                port = rest
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or("--port takes a number (0 for any free port)")?;
            }
            "up" | "seek" if mode.is_none() => mode = Some(arg.as_str()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    match mode {
        Some("seek") if port != 8787 => Err("--port is for `up`, not `seek`".into()),
        Some("seek") if web_api => Err("--web-api is for `up`, not `seek`".into()),
        Some("seek") => Ok(Command::Seek { verbose }),
        _ => Ok(Command::Up {
            port,
            verbose,
            web_api,
        }),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_args(&args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return;
        }
        Ok(Command::Seek { verbose }) => seek_once(verbose).await,
        Ok(Command::Up {
            port,
            verbose,
            web_api,
        }) => up(port, verbose, web_api).await,
        Err(e) => {
            eprint!("{e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
