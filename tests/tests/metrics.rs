//! The metrics the real binaries emit: a scripted local run (seek, approve, send) behind the
//! Runtime API stand-in, every EMF line checked as CloudWatch would read it, and the values
//! compared with what happened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::emf::{self, Sample};
use harness::events::{function_url_event, scheduled_event};
use harness::runtime::{LambdaRuntime, lambda_env, logs, spawn};
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STACK: &str = "ct-metrics-test";
const TOKEN: &str = "metrics-t0ken-Zq81";
const FORM: &str = "application/x-www-form-urlencoded";

/// Starts a function binary behind its own Runtime API stand-in.
fn start(
    name: &str,
    runtime: &LambdaRuntime,
    extra: Vec<(String, String)>,
) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    let mut env = lambda_env(name, Some(&runtime.api), harness::moto::url());
    env.extend(extra);
    env.push(("STACK_NAME".into(), STACK.into()));
    let mut child = spawn(name, &env);
    let lines = logs(&mut child);
    (child, lines)
}

async fn finish(mut child: tokio::process::Child, lines: Arc<Mutex<Vec<String>>>) -> Vec<Sample> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().await.ok();
    let lines = lines.lock().unwrap().clone();
    let samples = emf::samples(&lines);
    for s in &samples {
        assert_eq!(
            s.dimensions.first(),
            Some(&("Stack".to_owned(), STACK.to_owned())),
            "{s:?}"
        );
    }
    samples
}

fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    emf::total(samples, name, with)
        .unwrap_or_else(|| panic!("no {name} {with:?} among {samples:#?}"))
}

#[tokio::test]
async fn a_seek_an_approval_and_a_notice_emit_valid_emf_with_the_values_that_happened() {
    // GIVEN 120 embedding objects and 30 text objects, threshold 100
    let w = World::new().await;
    w.put("train/embedding/", 0, 120).await;
    w.put("train/text/", 0, 30).await;

    // WHEN the seek binary runs the weekly event
    let runtime = LambdaRuntime::start().await;
    let (child, lines) = start(
        "seek",
        &runtime,
        w.seek_env("embedding=train/embedding/,text=train/text/", 100),
    );
    let outcome: Value = runtime
        .invoke(
            "s1",
            scheduled_event("2026-11-24T00:00:00Z"),
            Duration::from_secs(60),
        )
        .await
        .expect("answered")
        .expect("succeeded");
    let seek = finish(child, lines).await;
    let id = outcome["request_id"].as_str().expect("asked").to_owned();

    // THEN per dataset: objects, new objects and threshold; per run: the heartbeat and costs
    for (dataset, n) in [("embedding", 120.0), ("text", 30.0)] {
        let d = [("Dataset", dataset)];
        assert_eq!(value(&seek, "Objects", &d), n);
        assert_eq!(value(&seek, "NewObjects", &d), n);
        assert_eq!(value(&seek, "Threshold", &d), 100.0);
    }
    assert_eq!(value(&seek, "SeekSucceeded", &[]), 1.0);
    assert_eq!(value(&seek, "Asked", &[]), 1.0);
    assert!(
        value(&seek, "ListRequests", &[]) >= 2.0,
        "one list per dataset at least"
    );
    assert!(value(&seek, "CountSeconds", &[]) >= 0.0);

    // WHEN actions gets Ann's signed click, a forged click, and Bob's late click
    let runtime = LambdaRuntime::start().await;
    let (child, lines) = start("actions", &runtime, w.actions_env());
    let now = ct_shared::Timestamp::now().secs();
    let click = |who: (&str, &str)| {
        form(&block_actions(
            "train",
            &id,
            who,
            &w.slack.response_url("m"),
        ))
    };
    let ann = click(("U0ANN", "ann"));
    for (rid, secret, body, status) in [
        ("c1", SIGNING_SECRET, ann.clone(), 200),
        ("c2", "forged", ann.clone(), 401),
        ("c3", SIGNING_SECRET, click(("U0BOB", "bob")), 200),
    ] {
        let resp = runtime
            .invoke(
                rid,
                signed_event(secret, now, &body, FORM),
                Duration::from_secs(30),
            )
            .await
            .expect("answered")
            .expect("succeeded");
        assert_eq!(resp["statusCode"], status, "{rid}: {resp}");
    }
    let actions = finish(child, lines).await;

    // THEN one train decision, a signature refusal, an already-decided refusal, no failures
    assert_eq!(value(&actions, "Decisions", &[("Choice", "train")]), 1.0);
    assert!(emf::total(&actions, "Decisions", &[("Choice", "nope")]).is_none());
    assert_eq!(value(&actions, "Refused", &[("Reason", "signature")]), 1.0);
    assert_eq!(
        value(&actions, "Refused", &[("Reason", "already_decided")]),
        1.0
    );
    assert_eq!(value(&actions, "NotifyFailures", &[]), 0.0);
    let latencies: Vec<&Sample> = actions.iter().filter(|s| s.name == "Latency").collect();
    assert_eq!(latencies.len(), 3, "one per request");
    assert!(
        latencies
            .iter()
            .all(|s| s.unit == "Milliseconds" && s.value > 0.0)
    );

    // WHEN a pipeline step sends a notice, and then Slack fails one
    let runtime = LambdaRuntime::start().await;
    let send_env = vec![
        ("STATE_TABLE".to_owned(), w.table.clone()),
        ("SLACK_WEBHOOK_URL".to_owned(), w.slack.webhook_url()),
        ("SEND_URL_AUTH".to_owned(), "NONE".to_owned()),
        ("SEND_TOKEN".to_owned(), TOKEN.to_owned()),
    ];
    let (child, lines) = start("send", &runtime, send_env);
    let bearer = format!("Bearer {TOKEN}");
    let notice = json!({"text": "training finished", "text2": "accuracy 0.93"}).to_string();
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    let ok = runtime
        .invoke(
            "n1",
            function_url_event("POST", "/send", &headers, notice.as_bytes(), false),
            Duration::from_secs(30),
        )
        .await
        .expect("answered")
        .expect("succeeded");
    assert_eq!(ok["statusCode"], 204, "{ok}");
    w.slack.plan([harness::slack::Reply::Status(400)]);
    let failed = runtime
        .invoke(
            "n2",
            function_url_event("POST", "/send", &headers, notice.as_bytes(), false),
            Duration::from_secs(30),
        )
        .await
        .expect("answered")
        .expect("succeeded");
    assert_eq!(failed["statusCode"], 502, "{failed}");
    let send = finish(child, lines).await;

    // THEN one notice posted, its message count, and the failure by status
    assert_eq!(value(&send, "Notices", &[]), 1.0);
    let split: Vec<f64> = send
        .iter()
        .filter(|s| s.name == "NoticeMessages")
        .map(|s| s.value)
        .collect();
    assert_eq!(split.len(), 2);
    assert!(split.iter().all(|n| *n >= 1.0), "{split:?}");
    assert_eq!(value(&send, "SlackFailures", &[("Status", "400")]), 1.0);

    let all = [seek, actions, send].concat();
    harness::emf::record("local-run", &all);

    // AND every widget of the dashboard names a metric this run emitted, with its dimensions
    let widgets = emf::dashboard();
    assert!(widgets.len() >= 6, "{widgets:?}");
    for (title, named) in &widgets {
        assert!(!named.is_empty(), "widget {title:?} names no metric");
        for n in named {
            match n.namespace.as_str() {
                "ct-trigger" => assert!(
                    all.iter().any(|s| s.name == n.name
                        && s.dimensions.iter().map(|d| &d.0).eq(n.dimensions.iter())),
                    "widget {title:?} plots {} {:?}, which the binaries never emitted",
                    n.name,
                    n.dimensions
                ),
                "AWS/Lambda" => {
                    assert!(["Errors", "Throttles"].contains(&n.name.as_str()), "{n:?}")
                }
                "AWS/SQS" => assert_eq!(n.name, "ApproximateNumberOfMessagesVisible"),
                other => panic!("widget {title:?} uses namespace {other}"),
            }
        }
    }
    // AND the heartbeat alarm watches a metric seek emits, with missing data breaching
    let text = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let alarm = &doc["Resources"]["SeekHeartbeatAlarm"]["Properties"];
    assert_eq!(alarm["TreatMissingData"].as_str(), Some("breaching"));
    let metric = &alarm["Metrics"][0]["MetricStat"]["Metric"];
    assert_eq!(metric["Namespace"].as_str(), Some("ct-trigger"));
    let watched = metric["MetricName"].as_str().unwrap();
    assert!(
        all.iter()
            .any(|s| s.name == watched && s.dimensions.len() == 1),
        "{watched}"
    );
}

#[test]
fn a_line_that_breaks_emf_is_refused_by_the_checker() {
    let good = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"ct-trigger","Dimensions":[["Stack"]],"Metrics":[{"Name":"A","Unit":"Count"}]}]},"Stack":"s","A":1}"#;
    assert_eq!(emf::parse(good).unwrap().len(), 1);
    for bad in [
        good.replace(r#","A":1"#, ""),
        good.replace(r#""Stack":"s","#, ""),
        good.replace(r#""Timestamp":1,"#, ""),
        good.replace("CloudWatchMetrics", "Metrics"),
        good.replace(r#""Namespace":"ct-trigger","#, ""),
    ] {
        assert!(emf::parse(&bad).is_err(), "{bad}");
    }
}

/// The metric table (docs/design.md, linked from the README's operations section) is the one
/// place an on-call engineer reads the names: its `Refused` row names every reason actions can
/// emit.
#[test]
fn the_metric_table_names_every_refusal_reason() {
    let table = std::fs::read_to_string(harness::repo_root().join("docs/design.md")).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("| actions | `Refused` |"))
        .expect("docs/design.md's metric table has a Refused row");
    for reason in actions::metrics::Refusal::ALL {
        let name = format!("`{}`", reason.as_str());
        assert!(row.contains(&name), "the Refused row lacks {name}: {row}");
    }
}
