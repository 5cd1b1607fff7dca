//! `scripts/run`'s program, ct-local, as a newcomer meets it: usage, settings taken from the
//! environment, a function that cannot start, a busy port, what the terminal shows, and the
//! console's HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// ct-local with only the given settings: none inherited from whoever runs the tests, and its
/// own moto server.
fn ct_local(args: &[&str], env: &[(&str, &str)]) -> Command {
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
    // THEN ct-local fails (long before its 120 s wait) showing seek's own error, once
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("seek stopped (exit status: 2)")
            && err.contains(
                "[seek] seek cannot start: configuration: SLACK_WEBHOOK_URL: is not an http(s) URL"
            ),
        "{err}"
    );
    let all = format!("{out}{err}");
    assert_eq!(all.matches("is not an http(s) URL").count(), 1, "{all}");
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
    let all = format!("{out}{err}");
    assert_eq!(
        all.matches("the threshold after the last ':' is \"5OO\"")
            .count(),
        1,
        "{all}"
    );
}

#[tokio::test]
async fn a_setting_set_but_empty_is_refused_by_name_and_only_an_unset_one_is_the_demos() {
    for (name, value) in [("DATASETS", ""), ("DATASETS", "  "), ("DATA_INTERVAL", "")] {
        for args in [&["seek"][..], &["up", "--port", "0"]] {
            let (code, out, err) =
                finish(ct_local(args, &[(name, value)]), Duration::from_secs(60)).await;
            assert_eq!(code, 1, "{name}={value:?} {args:?}\n{out}\n{err}");
            assert!(
                err.contains(&format!("{name} is set but empty"))
                    && err.contains(&format!("unset {name}")),
                "{name}={value:?} {args:?}: {err}"
            );
            // Refused before anything ran.
            assert!(
                !out.contains("invoking the seek binary") && !out.contains("first seek"),
                "{out}"
            );
        }
    }
}

#[tokio::test]
async fn a_failed_seek_is_said_in_a_sentence_not_debug_output_or_json() {
    // GIVEN a Slack webhook where nothing listens
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/services/T/B/x", closed.local_addr().unwrap());
    drop(closed);
    let (code, out, err) = finish(
        ct_local(&["seek"], &[("SLACK_WEBHOOK_URL", &url)]),
        Duration::from_secs(90),
    )
    .await;
    // THEN ct-local fails saying why in words
    assert_eq!(code, 1, "{out}\n{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("seek failed: posting to Slack: could not reach Slack after"),
        "{last}\n{err}"
    );
    // AND nothing shows Rust's Debug formatting or the error report's JSON
    let all = format!("{out}{err}");
    for debug in ["Unreachable {", "{ attempts", "errorMessage", "errorType"] {
        assert!(!all.contains(debug), "{debug:?} in:\n{all}");
    }
}

/// The lines of the "Slack would show" box `scripts/run seek` prints.
fn boxed(out: &str) -> Vec<&str> {
    out.lines()
        .skip_while(|l| !l.starts_with('┌'))
        .take_while(|l| !l.starts_with('└'))
        .skip(1)
        .collect()
}

#[tokio::test]
async fn metric_lines_are_one_short_line_each_and_raw_only_with_verbose() {
    let (code, out, err) = finish(ct_local(&["seek"], &[]), Duration::from_secs(120)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    // No EMF JSON, but a short line per metric line: the demo's 190 objects in embedding.
    assert!(!err.contains("\"_aws\""), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("[seek] metrics Dataset=embedding: Objects=190 NewObjects=190 ")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("[seek] metrics: SeekSucceeded=1")),
        "{err}"
    );
    let short = err.lines().filter(|l| l.contains(" metrics")).count();
    let (code, out, err) = finish(
        ct_local(&["seek", "--verbose"], &[]),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let raw = err
        .lines()
        .filter(|l| l.starts_with("[seek] {") && l.contains("\"_aws\":{\"CloudWatchMetrics\""))
        .count();
    assert_eq!(raw, short, "{err}");
    assert!(!err.contains("[seek] metrics"), "{err}");
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
    // The box shows the message as Slack would: styles applied, not their marks.
    let lines = boxed(&out);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("faiss: train/fiass/ is empty: a typo?")),
        "{out}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('*') && !l.contains('`')),
        "{out}"
    );
    // The warning's emoji is in its one-column form, so every line ends in line: each
    // character here is one column wide.
    assert!(lines.iter().any(|l| l.contains('\u{26a0}')), "{out}");
    assert!(!out.contains('\u{fe0f}'), "{out}");
    let width = out
        .lines()
        .find(|l| l.starts_with('┌'))
        .unwrap()
        .chars()
        .count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "{out}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("[seek]") && l.contains("`train/fiass/` is empty: a typo?")),
        "{err}"
    );
    assert!(
        !out.contains("\x1b["),
        "no terminal styles when stdout is not a terminal"
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

/// `ct-local up`, running: its console URL, and what it prints.
struct Up {
    child: Child,
    console: String,
    /// stdout's lines until the console URL.
    printed: Vec<String>,
    /// stdout's lines since, as they come.
    later: Arc<Mutex<Vec<String>>>,
    /// stderr's lines (the functions' output), as they come.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Up {
    async fn start() -> Self {
        Self::start_with(&[], &[]).await
    }

    /// `ct-local up --port 0` with more arguments and settings.
    async fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
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

    fn later(&self) -> Vec<String> {
        self.later.lock().unwrap().clone()
    }

    /// Ctrl-C, as a user stops it: ct-local stops its functions, says so, and exits 0.
    async fn stop(mut self) {
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

async fn state(http: &reqwest::Client, console: &str, user: Option<&str>) -> Value {
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
    // An empty Add box is sent as no count: what to enter, not "not null".
    for body in [
        json!({"dataset": "embedding", "count": null}),
        json!({"dataset": "embedding"}),
    ] {
        let (status, error) = bad(http
            .post(format!("{c}api/objects"))
            .header("content-type", "application/json")
            .body(body.to_string()))
        .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error, "enter how many objects to add, 1 to 5000", "{body}");
    }
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
    // The seek's metrics were short lines, and the banner's key lines came again after them.
    let reprinted = |up: &Up| {
        let later = up.later();
        let console = later.iter().any(|l| *l == format!("console: {c}"));
        let ask = later
            .iter()
            .any(|l| l.starts_with("ask on a quality signal: curl "));
        console && ask
    };
    for _ in 0..40 {
        if reprinted(&up) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reprinted(&up), "{:?}", up.later());
    let stderr = up.stderr.lock().unwrap().clone();
    assert!(stderr.iter().all(|l| !l.contains("\"_aws\"")), "{stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|l| l.starts_with("[seek] metrics Dataset=faiss: Objects=1510 ")),
        "{stderr:?}"
    );
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

fn millis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn ephemeral_answers_are_shown_to_their_user_only_and_messages_carry_their_time() {
    let started = millis_now();
    let up = Up::start().await;
    ct_shared::tls::install_provider();
    let (http, c) = (reqwest::Client::new(), up.console.clone());
    let post = |path: &str, body: Value| {
        http.post(format!("{c}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let first = state(&http, &c, Some("U0ANN")).await;
    let question = &first["messages"][0];
    // Each message has the time it was posted.
    let at = question["at"].as_u64().unwrap();
    assert!(
        (started..=millis_now()).contains(&at),
        "{at} not since {started}"
    );
    let train = question["body"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| b["elements"].as_array())
        .and_then(|e| e.iter().find(|e| e["action_id"] == "train"))
        .cloned()
        .unwrap_or_else(|| panic!("no Train! button: {question}"));
    let click = |user: &str| {
        post(
            "api/click",
            json!({"message_id": question["id"], "action_id": "train", "value": train["value"], "user_id": user}),
        )
    };
    // ann approves; bob, on the same question, is told it was already approved: to him only.
    assert_eq!(click("U0ANN").await.unwrap().status(), 200);
    assert_eq!(click("U0BOB").await.unwrap().status(), 200);
    let ephemeral_of = |s: &Value| s["messages"][0]["ephemeral"].as_array().unwrap().clone();
    let mut bob = Value::Null;
    for _ in 0..50 {
        bob = state(&http, &c, Some("U0BOB")).await;
        if !ephemeral_of(&bob).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answers = ephemeral_of(&bob);
    assert_eq!(answers.len(), 1, "{bob}");
    assert!(
        answers[0]["body"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Already approved by <@U0ANN>"),
        "{bob}"
    );
    let ann = state(&http, &c, Some("U0ANN")).await;
    assert_eq!(ephemeral_of(&ann), Vec::<Value>::new(), "{ann}");
    assert_eq!(
        ephemeral_of(&state(&http, &c, None).await),
        Vec::<Value>::new()
    );
    // The question was replaced for both, and keeps the time it was posted.
    assert_eq!(ann["messages"][0]["edited"], true, "{ann}");
    assert_eq!(ann["messages"][0]["at"], at);

    // A slash command's answer is its sender's too.
    let sent = post(
        "api/slash",
        json!({"text": "/ct-trigger help", "user_id": "U0BOB"}),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), 200);
    let slash = |s: &Value| s["slash"].as_array().unwrap().clone();
    let bob = state(&http, &c, Some("U0BOB")).await;
    let said = slash(&bob);
    assert_eq!(said.len(), 1, "{bob}");
    assert_eq!(said[0]["command"], "/ct-trigger help");
    assert!(
        said[0]["text"].as_str().unwrap().starts_with("Usage: "),
        "{bob}"
    );
    assert_eq!(
        slash(&state(&http, &c, Some("U0ANN")).await),
        Vec::<Value>::new()
    );
    // A refused command is shown to its sender as well.
    let refused = post(
        "api/slash",
        json!({"text": "/deploy now", "user_id": "U0ANN"}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    let ann = slash(&state(&http, &c, Some("U0ANN")).await);
    assert_eq!(
        (ann.len(), ann[0]["error"].clone()),
        (1, json!(true)),
        "{ann:?}"
    );
    assert_eq!(slash(&state(&http, &c, Some("U0BOB")).await).len(), 1);

    // The approval's run link leads to a page of the console, which shows the run.
    let mut link = None;
    for _ in 0..100 {
        let s = state(&http, &c, Some("U0ANN")).await;
        link = s["messages"].as_array().unwrap().iter().find_map(|m| {
            let text = m["body"]["blocks"][0]["text"]["text"].as_str()?;
            let start = text.find("<http")? + 1;
            let end = start + text[start..].find('|')?;
            Some(text[start..end].to_owned()).filter(|l| l.contains("#/runs/details/"))
        });
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = link.expect("a Training started message with a run link");
    let (page, id) = link.split_once('#').unwrap();
    assert_eq!(page, format!("{c}kubeflow/"), "{link}");
    let html = http.get(page).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let id = id.strip_prefix("/runs/details/").unwrap();
    let run: Value = serde_json::from_slice(
        &http
            .get(format!("{c}api/kfp/runs/{id}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(run["run_id"], id, "{run}");
    assert_eq!(run["parameters"]["approved_by"], "ann", "{run}");
    up.stop().await;
}

fn has_buttons(message: &Value) -> bool {
    message["body"]["blocks"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["type"] == "actions"))
}

/// Waits up to `secs` for the console's state to satisfy `done`; the last state either way.
async fn until(
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

/// `scripts/run --web-api` with a short `REQUEST_TTL` from the environment: the console shows
/// an approved question edited to its outcome with its notices in its thread, and an
/// unanswered one edited to *Expired* by the heartbeat's sweep.
#[tokio::test]
async fn with_the_web_api_the_console_shows_outcomes_threads_and_an_expiry() {
    let up = Up::start_with(
        &["--web-api"],
        &[("REQUEST_TTL", "12s"), ("REMIND_AFTER", "0")],
    )
    .await;
    let c = up.console.clone();
    ct_shared::tls::install_provider();
    let http = reqwest::Client::new();
    let first = state(&http, &c, None).await;
    let question = first["messages"][0].clone();
    assert!(
        question["ts"].is_string(),
        "posted by the Web API: {question}"
    );
    let train = question["body"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| b["elements"].as_array())
        .and_then(|e| e.iter().find(|e| e["action_id"] == "train"))
        .cloned()
        .unwrap_or_else(|| panic!("no Train! button: {question}"));
    // WHEN ann approves it
    let clicked = http
        .post(format!("{c}api/click"))
        .header("content-type", "application/json")
        .body(json!({"message_id": question["id"], "action_id": "train", "value": train["value"], "user_id": "U0ANN"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    // THEN the question shows its outcome without buttons, and Training started is in its thread
    let s = until(&http, &c, 30, |s| {
        let q = &s["messages"][0];
        !has_buttons(q)
            && q["thread"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|r| r["body"].to_string().contains("Training started"))
            })
    })
    .await;
    let q = &s["messages"][0];
    assert!(!has_buttons(q), "{q}");
    assert!(q["body"].to_string().contains("Approved by"), "{q}");
    assert_eq!(q["edited"], true, "{q}");
    let thread = q["thread"].as_array().cloned().unwrap_or_default();
    assert!(
        thread
            .iter()
            .any(|r| r["body"].to_string().contains("Training started")),
        "{thread:?}"
    );
    assert_eq!(
        s["messages"].as_array().unwrap().len(),
        1,
        "nothing else in the channel: {s}"
    );
    // WHEN more data lands and a seek asks again, and nobody answers
    let added = http
        .post(format!("{c}api/objects"))
        .header("content-type", "application/json")
        .body(json!({"dataset": "embedding", "count": 150}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let sought = http.post(format!("{c}api/seek")).send().await.unwrap();
    assert_eq!(sought.status(), 200);
    let s = until(&http, &c, 5, |s| {
        s["messages"].as_array().is_some_and(|m| m.len() == 2)
    })
    .await;
    assert!(has_buttons(&s["messages"][1]), "a new question: {s}");
    // THEN within its 12 s and a heartbeat (every 10 s), it is edited to Expired, no buttons
    let s = until(&http, &c, 40, |s| !has_buttons(&s["messages"][1])).await;
    let expired = &s["messages"][1];
    assert!(!has_buttons(expired), "{expired}");
    assert!(
        expired["body"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Expired: nobody decided by"),
        "{expired}"
    );
    up.stop().await;
}

/// The console's *Fire a quality alarm*: CloudWatch's state change reaches seek as EventBridge
/// delivers it, and the question names the alarm, its value and threshold; pressed again while
/// that question is pending, it posts nothing.
#[tokio::test]
async fn the_console_fires_a_quality_alarm_that_asks_once_while_pending() {
    let up = Up::start().await;
    let c = up.console.clone();
    ct_shared::tls::install_provider();
    let http = reqwest::Client::new();
    let before = channel_len(&http, &c).await;
    let fire = || http.post(format!("{c}api/alarm")).send();
    let first: Value = json_of(fire().await.unwrap()).await;
    assert_eq!(first["result"], "asked", "{first}");
    let s = until(&http, &c, 5, |s| {
        s["messages"]
            .as_array()
            .is_some_and(|m| m.len() == before + 1)
    })
    .await;
    let asked = s["messages"][before]["body"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        asked.contains("ct-quality-recall") && asked.contains("0.81") && asked.contains("0.85"),
        "{asked}"
    );
    let again: Value = json_of(fire().await.unwrap()).await;
    assert_eq!(again["result"], "held_off", "{again}");
    assert_eq!(channel_len(&http, &c).await, before + 1);
    up.stop().await;
}

async fn json_of(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}
