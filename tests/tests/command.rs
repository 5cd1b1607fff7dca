//! `/ct-trigger`, end to end: a slash command form signed as Slack signs it, through the real
//! actions handler and binary, against a moto server; `seek` through a Lambda Invoke API
//! stand-in that runs the real seek binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use harness::World;
use harness::events::http_request;
use harness::slack_events::{SIGNING_SECRET, signed_event};
use lambda_http::Body;
use serde_json::Value;

/// A slash command's Function URL event, as Slack sends it for `user`.
fn slash_event(text: &str, user: &str, secret: &str, at: i64) -> Value {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("command", "/ct-trigger")
        .append_pair("text", text)
        .append_pair("user_id", user)
        .append_pair("response_url", "https://hooks.slack.com/commands/T/1/x")
        .finish();
    signed_event(
        secret,
        at,
        body.as_bytes(),
        "application/x-www-form-urlencoded",
    )
}

fn slash(text: &str, secret: &str, at: i64) -> lambda_http::Request {
    http_request(slash_event(text, "U0ANN", secret, at))
}

async fn run(app: &actions::LiveActions, req: lambda_http::Request) -> (u16, Value) {
    let resp = actions::handle(app, req).await.unwrap();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    };
    (resp.status().as_u16(), body)
}

/// seek and actions deployed as Lambda runs them, actions reaching seek through a Lambda
/// Invoke API stand-in (`SEEK_FUNCTION_NAME=ct-seek`); `extra` goes to actions.
struct Deployed {
    invoke: harness::invoke::InvokeStandIn,
    actions: harness::runtime::Function,
    _seek: harness::runtime::Function,
}

impl Deployed {
    async fn start(w: &World, extra: Vec<(String, String)>) -> Self {
        let invoke = harness::invoke::InvokeStandIn::start().await;
        let seek = harness::runtime::Function::start(
            "seek",
            w.seek_env("embedding=train/embedding/", 100),
        )
        .await;
        invoke.register("ct-seek", &seek.runtime);
        let mut env = w.actions_env();
        env.push(("SEEK_FUNCTION_NAME".into(), "ct-seek".into()));
        env.push(("AWS_ENDPOINT_URL_LAMBDA".into(), invoke.url.clone()));
        env.extend(extra);
        let actions = harness::runtime::Function::start("actions", env).await;
        Deployed {
            invoke,
            actions,
            _seek: seek,
        }
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn status_and_help_answer_ephemerally_and_forged_or_stale_commands_get_401() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    w.weekly_seek("2026-11-24T00:00:00Z")
        .await
        .request_id
        .unwrap();
    let app = w.actions();
    let now = Timestamp::now().secs();
    let (status, v) = run(&app, slash("status", SIGNING_SECRET, now)).await;
    assert_eq!(status, 200);
    assert_eq!(v["response_type"], "ephemeral");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("*embedding*: 150 new (150 seen, 0 trained), threshold 100"),
        "{text}"
    );
    assert!(
        text.contains("Latest request (data request): open"),
        "{text}"
    );
    for word in ["help", "", "frobnicate"] {
        let (status, v) = run(&app, slash(word, SIGNING_SECRET, now)).await;
        assert_eq!(status, 200);
        assert!(v["text"].as_str().unwrap().starts_with("Usage:"), "{v}");
    }
    let (status, _) = run(&app, slash("status", "not-the-secret", now)).await;
    assert_eq!(status, 401);
    let (status, _) = run(&app, slash("status", SIGNING_SECRET, now - 600)).await;
    assert_eq!(status, 401);
}

/// The first Tuesday 00:00 UTC strictly after `now`, by day arithmetic (1970-01-01 was a
/// Thursday), independent of the schedule code under test.
fn next_tuesday_midnight(now: i64) -> i64 {
    let mut day = now.div_euclid(86_400);
    loop {
        let weekday = (day + 4).rem_euclid(7); // 0 = Sunday
        if weekday == 2 && day * 86_400 > now {
            return day * 86_400;
        }
        day += 1;
    }
}

#[tokio::test]
async fn seek_counts_now_for_approvers_only_and_status_names_the_next_scheduled_seek() {
    use std::time::Duration;
    // GIVEN 150 new objects, seek and actions deployed as Lambda runs them, APPROVERS=U0ANN,
    // and the template's default schedule
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let Deployed {
        invoke, actions, ..
    } = &Deployed::start(
        &w,
        vars(&[
            ("APPROVERS", "U0ANN"),
            ("SCHEDULE_EXPRESSION", "cron(0 0 ? * TUE *)"),
            ("SCHEDULE_TIMEZONE", "UTC"),
        ]),
    )
    .await;
    let mut n = 0;
    let mut command = async |text: &str, user: &str| -> Value {
        n += 1;
        let event = slash_event(text, user, SIGNING_SECRET, Timestamp::now().secs());
        let answer = actions
            .invoke(&format!("slash-{n}"), event)
            .await
            .expect("succeeded");
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["response_type"], "ephemeral", "{body}");
        body
    };

    // WHEN eve, not an approver, asks for a count
    let refused = command("seek", "U0EVE").await;
    // THEN she is told who may, and nothing is invoked or posted
    assert_eq!(refused["text"], "Only <@U0ANN> can start a count.");
    assert!(invoke.seen().is_empty(), "{:?}", invoke.seen());

    // WHEN the Lambda API fails, the count is not started and ann is told so
    invoke.refuse(Some(500));
    let failed = command("seek", "U0ANN").await;
    assert_eq!(
        failed["text"],
        "Could not start a count; try again in a minute."
    );
    invoke.refuse(None);
    assert!(w.slack.channel().is_empty(), "nothing posted");

    // WHEN ann asks again: the failed start was given back, so she need not wait it out
    let queued = command("seek", "U0ANN").await;
    assert_eq!(
        queued["text"],
        "Counting now; the result will be posted here."
    );
    // THEN seek was invoked asynchronously with {}, ran, and posted the question once
    let finished = invoke.settle(Duration::from_secs(60)).await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    let (call, outcome) = &finished[0];
    assert_eq!(
        (call.function.as_str(), call.invocation_type.as_str()),
        ("ct-seek", "Event")
    );
    assert_eq!(call.payload, serde_json::json!({}));
    assert!(outcome.is_ok(), "{outcome:?}");
    let channel = w.slack.channel();
    assert_eq!(channel.len(), 1);
    assert!(
        channel[0]
            .text()
            .starts_with("150 new objects in embedding"),
        "{}",
        channel[0].text()
    );

    // AND status shows the open request and when the weekly seek runs next
    let before = Timestamp::now().secs();
    let status = command("status", "U0EVE").await;
    let text = status["text"].as_str().unwrap();
    assert!(
        text.contains("Latest request (data request): open"),
        "{text}"
    );
    let next = next_tuesday_midnight(before);
    assert!(
        text.contains(&format!(
            "Next scheduled seek: <!date^{next}^{{date_short_pretty}} at {{time}}|"
        )) && text.ends_with("(`cron(0 0 ? * TUE *)` in UTC)"),
        "expected {next}: {text}"
    );

    // WHEN ann asks once more, within the default 15 minutes
    let calls = invoke.seen().len();
    let held = command("seek", "U0ANN").await;
    // THEN she is told who started the last count, when, and when the next may start; nothing
    // is invoked or posted
    let text = held["text"].as_str().unwrap();
    let started = text
        .strip_prefix("<@U0ANN> started a count at <!date^")
        .and_then(|rest| rest.split('^').next())
        .and_then(|secs| secs.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        (before - 60..=before).contains(&started),
        "{started} vs {before}: {text}"
    );
    assert!(
        text.contains("; its result will be posted here. Another can start at <!date^")
            && text.contains(&format!("<!date^{}^", started + 15 * 60)),
        "{text}"
    );
    assert_eq!(invoke.seen().len(), calls, "nothing more invoked");
    assert_eq!(w.slack.channel().len(), 1, "nothing more posted");
}

/// `SEEK_COOLDOWN_MINUTES=0`: every `/ct-trigger seek` counts.
#[tokio::test]
async fn without_a_cooldown_every_seek_command_counts() {
    let w = World::new().await;
    let Deployed {
        invoke, actions, ..
    } = &Deployed::start(&w, vars(&[("SEEK_COOLDOWN_MINUTES", "0")])).await;
    for n in 0..2 {
        let event = slash_event("seek", "U0ANN", SIGNING_SECRET, Timestamp::now().secs());
        let answer = actions.invoke(&format!("slash-{n}"), event).await.unwrap();
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["text"],
            "Counting now; the result will be posted here."
        );
    }
    let finished = invoke.settle(std::time::Duration::from_secs(60)).await;
    assert_eq!(finished.len(), 2, "{finished:?}");
}

#[test]
fn a_schedule_actions_cannot_read_is_a_startup_error_naming_its_variable() {
    use ct_shared::config::{ActionsConfig, Env, SecretBundle};
    let base = [
        ("STATE_TABLE", "t"),
        ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
        ("SLACK_SIGNING_SECRET", "s"),
        ("KUBEFLOW_URL", "https://kubeflow.example/"),
    ];
    for (expression, zone, variable) in [
        ("cron(0 0 * * *)", "UTC", "SCHEDULE_EXPRESSION"),
        ("every tuesday", "", "SCHEDULE_EXPRESSION"),
        (
            "cron(0 0 ? * TUE *)",
            "Europe/Atlantis",
            "SCHEDULE_TIMEZONE",
        ),
    ] {
        let mut env = base.to_vec();
        env.extend([
            ("SCHEDULE_EXPRESSION", expression),
            ("SCHEDULE_TIMEZONE", zone),
        ]);
        let e =
            ActionsConfig::from_env(&Env::from_pairs(env), &SecretBundle::default()).unwrap_err();
        assert_eq!(e.variable, variable, "{expression} in {zone}: {e}");
    }
    // Empty, as the template passes an unset parameter: no next-run line, not an error.
    let mut env = base.to_vec();
    env.push(("SCHEDULE_EXPRESSION", ""));
    let config = ActionsConfig::from_env(&Env::from_pairs(env), &SecretBundle::default()).unwrap();
    assert!(config.schedule.is_none());
}

/// The cooldown's start (`UpdateItem`) under every fault of the DynamoDB proxy, and with its
/// answer lost past every retry: the command still answers within 3 s, exactly one count is
/// queued (a start whose answer was lost is recognised as this command's own), and the next
/// command is held off.
#[tokio::test]
async fn a_seek_commands_cooldown_start_that_loses_its_answer_still_queues_one_count() {
    use harness::dynamo_proxy::{DynamoProxy, Fault};
    use std::time::{Duration, Instant};
    let mut cases: Vec<(Fault, usize)> = Fault::ALL.map(|f| (f, 1)).to_vec();
    cases.push((Fault::CommitThenLose, 10));
    for (fault, n) in cases {
        let case = format!("UpdateItem: {fault:?} x{n}");
        let w = World::new().await;
        let proxy = DynamoProxy::in_front_of_moto().await;
        let Deployed {
            invoke, actions, ..
        } = &Deployed::start(&w, vec![proxy.env()]).await;
        let command = async |name: &str| -> (String, Duration) {
            let event = slash_event("seek", "U0ANN", SIGNING_SECRET, Timestamp::now().secs());
            let started = Instant::now();
            let answer = actions.invoke(name, event).await.unwrap();
            let took = started.elapsed();
            let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
            (body["text"].as_str().unwrap_or_default().to_owned(), took)
        };
        proxy.fail_next("UpdateItem", fault, n);
        let (text, took) = command("first").await;
        assert!(proxy.injected() > 0, "{case}: no fault was injected");
        proxy.heal();
        assert_eq!(
            text, "Counting now; the result will be posted here.",
            "{case}"
        );
        assert!(took < Duration::from_secs(3), "{case}: took {took:?}");
        let (text, _) = command("second").await;
        assert!(
            text.starts_with("<@U0ANN> started a count at"),
            "{case}: {text}"
        );
        let finished = invoke.settle(Duration::from_secs(60)).await;
        assert_eq!(finished.len(), 1, "{case}: {finished:?}");
    }
}
