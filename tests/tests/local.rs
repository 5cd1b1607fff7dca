//! `scripts/run`'s program, ct-local, as a newcomer meets it: usage, settings taken from the
//! environment, a function that cannot start, a busy port, and the console's HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// ct-local with only the given settings: none inherited from whoever runs the tests, and its
/// own moto server.
fn ct_local(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ct-local"));
    cmd.args(args);
    for name in ["DATASETS", "DATA_INTERVAL", "SLACK_WEBHOOK_URL", "MOTO_URL"] {
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
async fn finish(mut cmd: Command, within: Duration) -> (i32, String, String) {
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

#[tokio::test]
async fn help_prints_usage_and_a_wrong_argument_shows_it() {
    let (code, out, _) = finish(ct_local(&["--help"], &[]), Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{out}");
    for word in [
        "usage: scripts/run",
        "--port",
        "seek",
        "DATASETS",
        "DATA_INTERVAL",
        "SLACK_WEBHOOK_URL",
    ] {
        assert!(out.contains(word), "{word} missing from:\n{out}");
    }
    let (code, _, err) = finish(ct_local(&["sek"], &[]), Duration::from_secs(10)).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("\"sek\"") && err.contains("usage: scripts/run"),
        "{err}"
    );
}

#[tokio::test]
async fn a_function_that_cannot_start_fails_the_run_at_once_in_its_own_words() {
    // GIVEN a webhook that is not a URL: seek refuses to start
    let (code, out, err) = finish(
        ct_local(&["seek"], &[("SLACK_WEBHOOK_URL", "not-a-url")]),
        Duration::from_secs(60),
    )
    .await;
    // THEN ct-local fails (long before its 120 s wait) showing seek's own error
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("seek stopped (exit status: 2)")
            && err.contains("SLACK_WEBHOOK_URL: is not an http(s) URL"),
        "{err}"
    );
    assert!(!err.contains("did not answer"), "{err}");
    // AND the same in `up`, for a threshold typo
    let (code, out, err) = finish(
        ct_local(
            &["up", "--port", "0"],
            &[("DATASETS", "faiss=train/faiss/:5OO")],
        ),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("seek stopped") && err.contains("DATASETS") && err.contains("\"5OO\""),
        "{err}"
    );
}

#[tokio::test]
async fn seek_takes_datasets_and_interval_from_the_environment_and_says_so() {
    let (code, out, err) = finish(
        ct_local(
            &["seek"],
            &[
                ("DATASETS", "faiss=train/fiass/,embedding=train/embedding/"),
                ("DATA_INTERVAL", "150"),
            ],
        ),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "DATASETS=faiss=train/fiass/,embedding=train/embedding/ (yours, from the environment)"
        ),
        "{out}"
    );
    assert!(
        out.contains("DATA_INTERVAL=150 (yours, from the environment)"),
        "{out}"
    );
    // 190 objects under a threshold of 150 is worth asking; the misspelt prefix is flagged,
    // in the message and in seek's log.
    assert!(
        out.contains("0 new objects in faiss, 190 in embedding. Would you like to train models?"),
        "{out}"
    );
    assert!(out.contains("train/fiass/` is empty: a typo?"), "{out}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("[seek]") && l.contains("`train/fiass/` is empty: a typo?")),
        "{err}"
    );
}

#[tokio::test]
async fn a_busy_port_names_the_command_as_the_readme_does() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = finish(
        ct_local(&["up", "--port", &port], &[]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 1, "{err}");
    let hint = "`scripts/run --port 0`";
    assert!(err.contains(hint), "{err}");
    let readme = std::fs::read_to_string(harness::repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(hint),
        "the README names the command differently"
    );
}

/// `ct-local up`, running: its console URL and the lines it printed until then.
struct Up {
    child: Child,
    console: String,
    printed: Vec<String>,
}

impl Up {
    async fn start() -> Self {
        let mut child = ct_local(&["up", "--port", "0"], &[]).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
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
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            console,
            printed,
        }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // Ctrl-C, as a user stops it; ct-local then stops its functions.
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
    }
}

async fn channel_len(http: &reqwest::Client, console: &str) -> usize {
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

#[tokio::test]
async fn the_console_answers_json_errors_adds_in_the_background_and_runs_one_seek_at_a_time() {
    let up = Up::start().await;
    ct_shared::tls::install_provider();
    let (http, c) = (reqwest::Client::new(), up.console.clone());
    // The start line: the result plainly, no JSON quotes.
    let first = up
        .printed
        .iter()
        .find(|l| l.starts_with("first seek: "))
        .unwrap();
    assert!(first.starts_with("first seek: posted ("), "{first}");
    assert!(
        up.printed
            .iter()
            .any(|l| l.contains("(the demo's; set DATASETS to use your own)")),
        "{:?}",
        up.printed
    );

    // A favicon, not a 404.
    let icon = http.get(format!("{c}favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    // Bad requests are answered {"error": ...} with a 4xx, whatever went wrong.
    let bad = |body: reqwest::RequestBuilder| async move {
        let r = body.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = serde_json::from_slice(&r.bytes().await.unwrap())
            .unwrap_or_else(|e| panic!("not JSON ({e})"));
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    };
    for count in [json!(-5), json!(2.5), json!(0), json!(5001), json!("150")] {
        let (status, error) = bad(http
            .post(format!("{c}api/objects"))
            .header("content-type", "application/json")
            .body(json!({"dataset": "embedding", "count": count}).to_string()))
        .await;
        assert_eq!(status, 400, "{count}: {error}");
        assert!(
            error.contains("whole number from 1 to 5000"),
            "{count}: {error}"
        );
    }
    let (status, error) = bad(http
        .post(format!("{c}api/objects"))
        .header("content-type", "application/json")
        .body(json!({"dataset": "nope", "count": 5}).to_string()))
    .await;
    assert_eq!(
        (status, error.contains("unknown dataset")),
        (400, true),
        "{error}"
    );
    let (status, error) = bad(http
        .post(format!("{c}api/click"))
        .header("content-type", "application/json")
        .body("{not json"))
    .await;
    assert!(
        (400..500).contains(&status) && !error.is_empty(),
        "{status} {error}"
    );
    let (status, error) = bad(http.get(format!("{c}api/seek"))).await;
    assert_eq!(status, 405, "{error}");
    let (status, error) = bad(http.get(format!("{c}api/nothing"))).await;
    assert_eq!(status, 404, "{error}");

    // An Add runs on the server, shows its progress, refuses a second Add meanwhile, and says
    // how many objects it actually added.
    let add = |n: u64| {
        http.post(format!("{c}api/objects"))
            .header("content-type", "application/json")
            .body(json!({"dataset": "faiss", "count": n}).to_string())
            .send()
    };
    let big = tokio::spawn(add(1500));
    let mut seen_progress = false;
    for _ in 0..200 {
        let state: Value = http
            .get(format!("{c}api/state"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        if state["adding"]["progress"]["done"] == false {
            seen_progress = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_progress, "no Add in progress in /api/state");
    let (status, error) = bad(http
        .post(format!("{c}api/objects"))
        .header("content-type", "application/json")
        .body(json!({"dataset": "embedding", "count": 5}).to_string()))
    .await;
    assert_eq!(status, 409, "{error}");
    assert!(
        error.starts_with("still adding objects to faiss"),
        "{error}"
    );
    let done: Value =
        serde_json::from_slice(&big.await.unwrap().unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(done["added"], 1500, "{done}");
    assert_eq!(done["summary"], "added 1500 objects to faiss");

    // Two "Run seek now" at once: one seek, one message.
    let before = channel_len(&http, &c).await;
    let seek = || {
        http.post(format!("{c}api/seek"))
            .header("content-type", "application/json")
            .body(json!({}).to_string())
            .send()
    };
    let (a, b) = tokio::join!(seek(), seek());
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    assert_eq!(channel_len(&http, &c).await, before + 1);
    // The one seek saw the Add: the demo's 10 and 1500 more in faiss.
    let state: Value = http
        .get(format!("{c}api/state"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    let last = state["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["body"]["text"]
            .as_str()
            .unwrap()
            .contains("1510 in faiss"),
        "{last}"
    );

    // The /ask line ct-local prints (and the README shows) works as printed, with curl.
    let ask = up
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("ask on a quality signal: "))
        .unwrap_or_else(|| panic!("no /ask line: {:?}", up.printed));
    assert!(ask.starts_with("curl "), "{ask}");
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("{ask} -sS -w ' %{{http_code}}'")])
        .output()
        .expect("sh runs (curl is needed: apt-get install -y curl)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.ends_with(" 201"),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("\"kind\":\"quality\""), "{said}");
    assert_eq!(channel_len(&http, &c).await, before + 2);
    up.stop().await;
}
