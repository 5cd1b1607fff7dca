//! A question's whole life in Slack: posted through the Web API with a bot token, edited to its
//! outcome, its notices in its thread, expired when nobody answers, reminded once, and an edit
//! that failed made by a later sweep; and without a bot token, the expiry recorded and enforced.
//! The real seek and actions handlers against moto and the Slack stand-in's Web API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use harness::World;
use harness::actions_api::send;
use harness::events::{invocation, scheduled_event};
use harness::slack::{BOT_TOKEN, Reply};
use harness::slack_events::{block_actions, click};
use serde_json::{Value, json};
use std::time::Duration;

const DATASETS: &str = "embedding=train/embedding/";
const ANN: (&str, &str) = ("U0ANN", "ann");

/// seek as deployed, with these settings besides the world's (the Web API's when `api`).
fn seeker(w: &World, api: bool, extra: &[(&str, &str)]) -> seek::LiveSeeker {
    let mut env = w.seek_env(DATASETS, 100);
    if api {
        env.retain(|(k, _)| k != "SLACK_WEBHOOK_URL");
        env.extend(w.api_env());
    }
    for (k, v) in extra {
        env.retain(|(n, _)| n != k);
        env.push(((*k).into(), (*v).into()));
    }
    let config = ct_shared::config::SeekConfig::from_env(
        &ct_shared::config::Env::from_pairs(env),
        &Default::default(),
    )
    .expect("valid seek config");
    seek::LiveSeeker::live(config, &w.sdk).unwrap()
}

fn actions(w: &World, api: bool, extra: &[(&str, &str)]) -> actions::LiveActions {
    let mut env = w.actions_env();
    if api {
        env.retain(|(k, _)| k != "SLACK_WEBHOOK_URL");
        env.extend(w.api_env());
    }
    for (k, v) in extra {
        env.retain(|(n, _)| n != k);
        env.push(((*k).into(), (*v).into()));
    }
    let config = ct_shared::config::ActionsConfig::from_env(
        &ct_shared::config::Env::from_pairs(env),
        &Default::default(),
    )
    .expect("valid actions config");
    actions::LiveActions::live(config, &w.sdk).unwrap()
}

async fn weekly(s: &seek::LiveSeeker, week: &str) -> seek::Outcome {
    seek::handle(s, invocation(scheduled_event(week), week))
        .await
        .expect("seek succeeds")
}

/// One heartbeat through seek's entry point, as the schedule delivers it.
async fn beat(s: &seek::LiveSeeker, invocation_id: &str) -> Value {
    let event = json!({"detail-type": "Heartbeat", "source": "aws.scheduler", "time": "2026-11-24T06:00:00Z"});
    let answer = seek::serve(s, invocation(event, invocation_id))
        .await
        .expect("the heartbeat succeeds");
    serde_json::to_value(answer).unwrap()
}

async fn press(a: &actions::LiveActions, w: &World, choice: &str, id: &str, response: &str) -> u16 {
    send(
        a,
        click(&block_actions(
            choice,
            id,
            ANN,
            &w.slack.response_url(response),
        )),
    )
    .await
    .0
}

/// The short `REQUEST_TTL` and `REMIND_AFTER` of the tests that check a sweep both before and
/// after it. A request's age is counted in whole seconds from its `created_at`, so the sweep
/// "before" may come up to one second less than this after the seek: 4 s leaves 3 s for a
/// loaded CI machine (with 2 s, one CI run's first sweep already expired the question).
const TTL: u64 = 4;

/// Sleeps until just past `created_at + secs` of request `id`, the moment a sweep must act.
async fn sleep_past(w: &World, id: &str, secs: u64) {
    let created = w
        .number(&format!("request#{id}"), "created_at")
        .await
        .expect("the request's created_at");
    let due = Duration::from_secs(created + secs) + Duration::from_millis(150);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(due.saturating_sub(now)).await;
}

fn has_buttons(m: &Value) -> bool {
    m["blocks"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["type"] == "actions"))
}

#[tokio::test]
async fn with_a_bot_token_the_question_shows_its_outcome_and_its_notices_go_in_its_thread() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(&w, true, &[]);
    // WHEN seek asks
    let out = weekly(&s, "2026-11-24T00:00:00Z").await;
    let id = out.request_id.clone().unwrap();
    // THEN the question went through chat.postMessage, in the channel, with the bot token
    let posted = w.slack.api_calls("chat.postMessage");
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].body["channel"], "C0TESTCHAN");
    assert_eq!(
        posted[0].authorization.as_deref(),
        Some(format!("Bearer {BOT_TOKEN}").as_str())
    );
    assert!(w.slack.channel().is_empty(), "no webhook post");
    let ts = w
        .string(&format!("request#{id}"), "slack_ts")
        .await
        .expect("its ts is kept");
    assert_eq!(
        w.string(&format!("request#{id}"), "slack_channel")
            .await
            .as_deref(),
        Some("C0TESTCHAN")
    );
    // WHEN ann approves (no Kubeflow Pipelines: the notice is the Kubeflow URL)
    let a = actions(&w, true, &[]);
    assert_eq!(press(&a, &w, "train", &id, "m1").await, 200);
    // THEN the question itself is edited to its outcome, with no buttons left
    let question = w.slack.api_message(&ts).unwrap();
    assert!(
        question.to_string().contains("Approved* by <@U0ANN>"),
        "{question}"
    );
    assert!(!has_buttons(&question), "{question}");
    // ... and the Kubeflow URL notice is a reply in its thread
    let replies = w.slack.thread(&ts);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].body["text"]
            .as_str()
            .unwrap()
            .starts_with("Here is Kubeflow URL")
    );
    assert!(
        !w.item(&format!("request#{id}"))
            .await
            .unwrap()
            .contains_key("edit_due"),
        "the edit is done"
    );
    for p in w.slack.received() {
        ct_shared::slack::blocks::check(&p.body).unwrap_or_else(|e| panic!("{e}: {}", p.body));
    }
}

#[tokio::test]
async fn a_newer_question_edits_the_superseded_one_through_the_web_api() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(&w, true, &[]);
    let first = weekly(&s, "2026-11-24T00:00:00Z").await.request_id.unwrap();
    let first_ts = w
        .string(&format!("request#{first}"), "slack_ts")
        .await
        .unwrap();
    w.put("train/embedding/", 150, 50).await;
    let second = weekly(&s, "2026-12-01T00:00:00Z").await.request_id.unwrap();
    let asked = w
        .number(&format!("request#{second}"), "created_at")
        .await
        .unwrap();
    let old = w.slack.api_message(&first_ts).unwrap();
    assert!(
        old.to_string()
            .contains(&format!("*Superseded* by the question of <!date^{asked}^")),
        "{old}"
    );
    assert!(!has_buttons(&old));
}

#[tokio::test]
async fn an_unanswered_question_expires_visibly_and_a_later_click_changes_nothing() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(
        &w,
        true,
        &[("REQUEST_TTL", &format!("{TTL}s")), ("REMIND_AFTER", "0")],
    );
    let id = weekly(&s, "2026-11-24T00:00:00Z").await.request_id.unwrap();
    let ts = w
        .string(&format!("request#{id}"), "slack_ts")
        .await
        .unwrap();
    // A heartbeat before the TTL changes nothing.
    assert_eq!(beat(&s, "b0").await["swept"]["expired"], 0);
    sleep_past(&w, &id, TTL).await;
    // WHEN the heartbeat sweeps after REQUEST_TTL
    let swept = beat(&s, "b1").await;
    // THEN the request is expired, its message says so, with no buttons
    assert_eq!(swept["swept"]["expired"], 1, "{swept}");
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("expired")
    );
    let question = w.slack.api_message(&ts).unwrap();
    assert!(
        question
            .to_string()
            .contains("*Expired*: nobody decided by <!date^")
            && question
                .to_string()
                .contains("`/ct-trigger seek` asks again."),
        "{question}"
    );
    assert!(!has_buttons(&question));
    ct_shared::slack::blocks::check(&question).unwrap();
    // ... and a sweep again changes nothing more
    let again = beat(&s, "b2").await;
    assert_eq!(
        (&again["swept"]["expired"], &again["swept"]["edited"]),
        (&json!(0), &json!(0))
    );
    // WHEN ann clicks Train! on it after all
    let a = actions(&w, true, &[("REQUEST_TTL", &format!("{TTL}s"))]);
    assert_eq!(press(&a, &w, "train", &id, "late").await, 200);
    // THEN she is told, only she, and nothing changes
    let told = w.slack.responses("late");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].body["response_type"], "ephemeral");
    assert!(
        told[0]
            .text()
            .starts_with("This question expired: nobody decided by"),
        "{}",
        told[0].text()
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("expired")
    );
    // ... and /status shows it expired
    let status = harness::send_api::call(
        &harness::send_api::sender(&w, "NONE", Some(harness::send_api::TOKEN)),
        harness::events::function_url_event(
            "GET",
            "/status",
            &[("authorization", &harness::send_api::bearer())],
            b"",
            false,
        ),
    )
    .await
    .json();
    assert_eq!(status["latest_request"]["state"], "expired", "{status}");
}

#[tokio::test]
async fn one_reminder_in_the_thread_naming_the_approvers_under_retries() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(
        &w,
        true,
        &[
            ("REQUEST_TTL", "1h"),
            ("REMIND_AFTER", &format!("{TTL}s")),
            ("APPROVERS", "U0ANN,U0BOB"),
        ],
    );
    let id = weekly(&s, "2026-11-24T00:00:00Z").await.request_id.unwrap();
    let ts = w
        .string(&format!("request#{id}"), "slack_ts")
        .await
        .unwrap();
    assert_eq!(beat(&s, "early").await["swept"]["reminded"], 0, "not yet");
    sleep_past(&w, &id, TTL).await;
    // GIVEN Slack fails the first reminder
    w.slack.plan([
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
    ]);
    let event = json!({"detail-type": "Heartbeat", "source": "aws.scheduler", "time": "2026-11-24T06:00:00Z"});
    assert!(
        seek::serve(&s, invocation(event, "failed")).await.is_err(),
        "the sweep fails, Lambda retries"
    );
    assert!(w.slack.thread(&ts).iter().all(|p| !p.delivered()));
    // WHEN the heartbeat runs again, is retried with its own invocation id, and runs once more
    let first = beat(&s, "beat-1").await;
    let retried = beat(&s, "beat-1").await;
    let later = beat(&s, "beat-2").await;
    // THEN one reminder was posted, in the question's thread, naming the approvers
    assert_eq!(first["swept"]["reminded"], 1, "{first}");
    assert_eq!(retried["swept"]["reminded"], 0, "{retried}");
    assert_eq!(later["swept"]["reminded"], 0);
    let reminders: Vec<_> = w
        .slack
        .thread(&ts)
        .into_iter()
        .filter(|p| p.delivered())
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    let text = reminders[0].body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Reminder: the question of <!date^")
            && text.contains("<@U0ANN>, <@U0BOB>: Train! or Nope!?")
            && text.contains("It expires"),
        "{text}"
    );
    ct_shared::slack::blocks::check(&reminders[0].body).unwrap();
}

#[tokio::test]
async fn an_expiry_racing_a_click_has_exactly_one_winner() {
    for round in 0..3 {
        let w = World::new().await;
        w.put("train/embedding/", 0, 150).await;
        let s = seeker(&w, true, &[("REQUEST_TTL", "1s"), ("REMIND_AFTER", "0")]);
        let id = weekly(&s, "2026-11-24T00:00:00Z").await.request_id.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // The click is allowed 1 h, so only the sweep's expiry races it.
        let a = actions(&w, true, &[("REQUEST_TTL", "1h")]);
        let (swept, status) = tokio::join!(beat(&s, "race"), press(&a, &w, "train", &id, "r"));
        assert_eq!(status, 200);
        let state = w.string(&format!("request#{id}"), "status").await.unwrap();
        let expired = swept["swept"]["expired"].as_u64().unwrap();
        let told = w.slack.responses("r");
        match state.as_str() {
            "expired" => {
                assert_eq!(expired, 1, "round {round}");
                assert!(w.item(&format!("audit#{id}")).await.is_none());
                assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
                assert!(
                    told.iter()
                        .any(|p| p.text().starts_with("This question expired")),
                    "{told:?}"
                );
            }
            "approved" => {
                assert_eq!(expired, 0, "round {round}");
                assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
            }
            other => panic!("round {round}: {other}"),
        }
    }
}

#[tokio::test]
async fn without_a_bot_token_the_expiry_is_recorded_and_enforced_and_nothing_is_edited() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(&w, false, &[("REQUEST_TTL", "1s"), ("REMIND_AFTER", "0")]);
    let id = weekly(&s, "2026-11-24T00:00:00Z").await.request_id.unwrap();
    assert!(
        !w.item(&format!("request#{id}"))
            .await
            .unwrap()
            .contains_key("slack_ts")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A click past the TTL, before any sweep: refused, and the expiry recorded by the click.
    let a = actions(&w, false, &[("REQUEST_TTL", "1s")]);
    assert_eq!(press(&a, &w, "train", &id, "late").await, 200);
    assert!(
        w.slack.responses("late")[0]
            .text()
            .starts_with("This question expired")
    );
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("expired")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    // The sweep finds nothing more to do; nothing went through the Web API.
    assert_eq!(beat(&s, "b").await["swept"]["expired"], 0);
    assert!(w.slack.api_calls("chat.postMessage").is_empty());
    assert!(w.slack.api_calls("chat.update").is_empty());
    assert_eq!(
        w.slack.channel().len(),
        1,
        "only the question, through the webhook"
    );
}

#[tokio::test]
async fn a_web_api_failure_on_the_edit_leaves_the_state_right_and_a_later_sweep_makes_it() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(&w, true, &[]);
    let id = weekly(&s, "2026-11-24T00:00:00Z").await.request_id.unwrap();
    let ts = w
        .string(&format!("request#{id}"), "slack_ts")
        .await
        .unwrap();
    // GIVEN Slack's Web API fails the question's edit (both attempts)
    w.slack
        .plan_api("chat.update", [Reply::Status(500), Reply::Status(500)]);
    let a = actions(&w, true, &[]);
    assert_eq!(press(&a, &w, "nope", &id, "m").await, 200);
    // THEN the decision stands and the edit is due; the message still shows its buttons
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("declined")
    );
    assert_eq!(
        w.string(&format!("request#{id}"), "edit_due")
            .await
            .as_deref(),
        Some("decided")
    );
    assert!(has_buttons(&w.slack.api_message(&ts).unwrap()));
    // WHEN the heartbeat sweeps
    let swept = beat(&s, "b").await;
    // THEN the question shows its outcome, and nothing is due any more
    assert_eq!(swept["swept"]["edited"], 1, "{swept}");
    let question = w.slack.api_message(&ts).unwrap();
    assert!(
        question.to_string().contains("Declined* by <@U0ANN>"),
        "{question}"
    );
    assert!(!has_buttons(&question));
    assert!(
        !w.item(&format!("request#{id}"))
            .await
            .unwrap()
            .contains_key("edit_due")
    );
}

#[tokio::test]
async fn slacks_refusals_name_the_setting_to_fix_and_never_the_token_and_429_waits() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let s = seeker(&w, true, &[]);
    w.slack
        .plan_api("chat.postMessage", [Reply::ApiError("channel_not_found")]);
    let err = seek::handle(
        &s,
        invocation(scheduled_event("2026-11-24T00:00:00Z"), "r1"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("channel_not_found") && err.contains("SLACK_CHANNEL"),
        "{err}"
    );
    assert!(!err.contains(BOT_TOKEN), "{err}");
    w.slack
        .plan_api("chat.postMessage", [Reply::ApiError("invalid_auth")]);
    let err = seek::handle(
        &s,
        invocation(scheduled_event("2026-11-24T00:00:00Z"), "r2"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("SLACK_BOT_TOKEN") && !err.contains(BOT_TOKEN),
        "{err}"
    );
    // A 429 is waited out (Retry-After), then the question is posted, once.
    w.slack.plan_api(
        "chat.postMessage",
        [Reply::RateLimited {
            retry_after_secs: 1,
        }],
    );
    let started = std::time::Instant::now();
    let out = seek::handle(
        &s,
        invocation(scheduled_event("2026-11-24T00:00:00Z"), "r3"),
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(out.result, seek::Delivery::Posted);
    let delivered: Vec<_> = w
        .slack
        .api_calls("chat.postMessage")
        .into_iter()
        .filter(|p| p.delivered())
        .collect();
    assert_eq!(delivered.len(), 1);
    let _ = Timestamp::now();
}
