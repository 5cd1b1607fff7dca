//! Running ct-local as a newcomer does, for the tests of its terminal (local.rs) and of its
//! console (console.rs): the command with only the settings given, `up` running, and the
//! console's state.

// Each test crate uses its part of these.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// ct-local with only the given settings: none inherited from whoever runs the tests, and its
/// own moto server.
pub fn ct_local(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ct-local"));
    cmd.args(args);
    for name in [
        "DATASETS",
        "DATA_INTERVAL",
        "SLACK_WEBHOOK_URL",
        "MOTO_URL",
        "REQUEST_TTL",
        "REMIND_AFTER",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs ct-local to its end: (exit code, stdout, stderr).
pub async fn finish(mut cmd: Command, within: Duration) -> (i32, String, String) {
    let out = tokio::time::timeout(within, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("ct-local did not finish within {within:?}"))
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ct-local up`, running: its console URL, and what it prints.
pub struct Up {
    pub child: Child,
    pub console: String,
    /// stdout's lines until the console URL.
    pub printed: Vec<String>,
    /// stdout's lines since, as they come.
    pub later: Arc<Mutex<Vec<String>>>,
    /// stderr's lines (the functions' output), as they come.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Up {
    pub async fn start() -> Self {
        Self::start_with(&[], &[]).await
    }

    /// `ct-local up --port 0` with more arguments and settings.
    pub async fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["up", "--port", "0"];
        all.extend_from_slice(args);
        let mut child = ct_local(&all, env).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = errors.next_line().await {
                sink.lock().unwrap().push(l);
            }
        });
        let mut printed = Vec::new();
        let console = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                printed.push(line.clone());
                if let Some(url) = line.strip_prefix("console: ") {
                    return url.trim().to_owned();
                }
            }
            panic!("ct-local up stopped before printing its console URL: {printed:?}");
        })
        .await
        .expect("ct-local up printed its console URL within 120 s");
        // Keep reading, so ct-local never blocks on a full pipe.
        let later = Arc::new(Mutex::new(Vec::new()));
        let sink = later.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                sink.lock().unwrap().push(l);
            }
        });
        Self {
            child,
            console,
            printed,
            later,
            stderr,
        }
    }

    pub fn later(&self) -> Vec<String> {
        self.later.lock().unwrap().clone()
    }

    /// Ctrl-C, as a user stops it: ct-local stops its functions, says so, and exits 0.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .ok();
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        assert!(
            matches!(stopped, Ok(Ok(s)) if s.success()),
            "ct-local up did not stop cleanly on Ctrl-C: {stopped:?}"
        );
        // Its last word, once the pipe is drained.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let later = self.later();
        assert_eq!(
            later
                .iter()
                .rev()
                .find(|l| !l.is_empty())
                .map(String::as_str),
            Some("stopped."),
            "{later:?}"
        );
    }
}

pub async fn state(http: &reqwest::Client, console: &str, user: Option<&str>) -> Value {
    let url = match user {
        Some(u) => format!("{console}api/state?user={u}"),
        None => format!("{console}api/state"),
    };
    http.get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap()
}

pub async fn channel_len(http: &reqwest::Client, console: &str) -> usize {
    let state: Value = http
        .get(format!("{console}api/state"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    state["messages"].as_array().unwrap().len()
}

pub fn millis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn has_buttons(message: &Value) -> bool {
    message["body"]["blocks"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["type"] == "actions"))
}

/// Waits up to `secs` for the console's state to satisfy `done`; the last state either way.
pub async fn until(
    http: &reqwest::Client,
    console: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut s = state(http, console, None).await;
    for _ in 0..secs * 5 {
        if done(&s) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        s = state(http, console, None).await;
    }
    s
}

pub async fn json_of(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}
