//! Approved is not trained, and stale buttons do nothing: a launch that fails for good leaves
//! the baseline where it was (the next seek still asks, and every view says the run never
//! started), a Retry on an approval a newer one overtook is refused, a successful Retry ends
//! its message as a first try would, and a click on a superseded question edits it to say so.
//! The real actions binary (with Kubeflow Pipelines, behind a Runtime API stand-in) and the
//! real seek and send handlers, against moto, Slack and KFP stand-ins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::actions_api::{asked, send};
use harness::kfp::{Call, Fault};
use harness::launch_rig::{Rig, WEEK};
use harness::slack_events::{block_actions, click};
use serde_json::Value;
use std::time::Duration;

const WEEK2: &str = "2026-12-01T00:00:00Z";

fn not_found(rig: &Rig) {
    rig.kfp.plan(
        Call::GetPipeline,
        (0..5).map(|_| Fault::Status(404, "no such pipeline".into())),
    );
}

/// `/ct-trigger status` as actions answers it (in-process: the same store and views).
async fn slash_status(w: &World) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("command", "/ct-trigger")
        .append_pair("text", "status")
        .append_pair("user_id", "U0ANN")
        .finish();
    let now = ct_shared::Timestamp::now().secs();
    let event = harness::slack_events::signed_event(
        harness::slack_events::SIGNING_SECRET,
        now,
        body.as_bytes(),
        "application/x-www-form-urlencoded",
    );
    let (status, answer) = send(&w.actions(), harness::events::http_request(event)).await;
    assert_eq!(status, 200);
    answer["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_launch_that_fails_for_good_is_not_trained_and_every_view_says_so() {
    // GIVEN Kubeflow Pipelines answering 404 for the pipeline, for good
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    not_found(&rig);
    // WHEN ann approves and the launch fails
    assert_eq!(rig.click("train", &id, "m").await, 200);
    let outcomes = rig.invoke.settle(Duration::from_secs(60)).await;
    assert_eq!(outcomes[0].1.clone().unwrap()["launch"], "failed");
    // THEN nothing counts as trained
    assert_eq!(rig.w.number("dataset#embedding", "trained").await, Some(0));
    assert!(
        rig.w
            .number("dataset#embedding", "trained_snapshot_at")
            .await
            .is_none()
    );
    // ... and the next seek still asks, saying the approval's run never started
    let next = rig.w.weekly_seek(WEEK2).await;
    assert!(next.request_id.is_some(), "{}", next.text);
    assert!(
        next.text.starts_with("150 new objects in embedding"),
        "{}",
        next.text
    );
    let question = rig.w.slack.channel().last().unwrap().body.to_string();
    assert!(
        question.contains("but its run never started: pipeline \\\"retrain\\\" was not found")
            && question.contains("press Retry or `/ct-trigger seek`"),
        "{question}"
    );
    // ... as do /status (JSON and text) and /ct-trigger status
    let status = rig.status().await;
    let training = status["latest_approval"]["training"].as_str().unwrap();
    assert!(training.starts_with("failed: pipeline"), "{status}");
    assert_eq!(status["latest_approval"]["request_id"], id.as_str());
    let text = slash_status(&rig.w).await;
    assert!(
        text.contains("its run never started") && text.contains("failed: "),
        "{text}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_retry_that_starts_the_run_moves_the_baseline_and_ends_its_message_like_a_first_try() {
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    not_found(&rig);
    assert_eq!(rig.click("train", &id, "m").await, 200);
    rig.invoke.settle(Duration::from_secs(60)).await;
    // WHEN KFP is healthy again and ann presses Retry
    rig.kfp.clear_plan();
    assert_eq!(rig.click("retry", &id, "f").await, 200);
    rig.invoke.settle(Duration::from_secs(60)).await;
    let runs = rig.kfp.runs();
    assert_eq!(runs.len(), 1);
    // THEN the baseline is the approved snapshot, from the run's start on
    let snapshot: Value = serde_json::from_str(
        &rig.w
            .string(&format!("request#{id}"), "snapshot")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        rig.w.number("dataset#embedding", "trained").await,
        Some(150)
    );
    assert_eq!(
        rig.w
            .number("dataset#embedding", "trained_snapshot_at")
            .await
            .map(|t| t as i64),
        snapshot[0]["counted_at"].as_i64()
    );
    // ... "Training started" names its request: its date and what it offered
    let started = rig
        .channel()
        .into_iter()
        .find(|t| t.starts_with("Training started: "))
        .unwrap();
    assert!(
        started.contains("(for the question of <!date^")
            && started.ends_with(": 150 new objects in embedding)"),
        "{started}"
    );
    // ... the Retry message ends as a first try's: approved, with its run
    let retry = rig.w.slack.responses("f");
    assert!(
        retry[0]
            .text()
            .starts_with("Starting the training run again"),
        "{}",
        retry[0].text()
    );
    let last = retry.last().unwrap().text();
    assert!(
        last.contains("Approved by <@U0ANN>")
            && last.ends_with(&format!("· run {}", runs[0].run_id)),
        "{last}"
    );
    // ... and the next seek says there is no need, naming the started run
    let next = rig.w.weekly_seek(WEEK2).await;
    assert!(
        next.text.starts_with("No need to train: 0 new objects"),
        "{}",
        next.text
    );
    let notice = rig.w.slack.channel().last().unwrap().body.to_string();
    assert!(
        notice.contains(&format!("· run {} started", runs[0].run_id)),
        "{notice}"
    );
    assert_eq!(rig.status().await["latest_approval"]["training"], "started");
    rig.stop().await;
}

#[tokio::test]
async fn a_retry_overtaken_by_a_newer_approval_is_refused_naming_it() {
    // GIVEN request A approved, its launch failed for good
    let mut rig = Rig::start(true, 1).await;
    let a = rig.asked().await;
    not_found(&rig);
    assert_eq!(rig.click("train", &a, "m").await, 200);
    rig.invoke.settle(Duration::from_secs(60)).await;
    // ... then a newer question B, approved, whose run started
    rig.kfp.clear_plan();
    rig.w.put("train/embedding/", 150, 20).await;
    let b = rig
        .w
        .weekly_seek(WEEK2)
        .await
        .request_id
        .expect("asks again");
    assert_eq!(rig.click("train", &b, "m2").await, 200);
    rig.invoke.settle(Duration::from_secs(60)).await;
    let runs = rig.kfp.runs();
    assert_eq!(runs.len(), 1, "B's run");
    let jobs = rig.launch_jobs();
    // WHEN someone presses A's old Retry
    assert_eq!(rig.click("retry", &a, "old").await, 200);
    rig.invoke.settle(Duration::from_secs(30)).await;
    // THEN nothing starts, and the presser is told which approval overtook it, and its run
    assert_eq!(rig.kfp.runs().len(), 1);
    assert_eq!(rig.launch_jobs(), jobs, "no launch job queued");
    let told = rig.w.slack.responses("old");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].body["response_type"], "ephemeral");
    let text = told[0].text();
    assert!(
        text.contains("which a newer approval overtook")
            && text.contains(&format!("· run {} started", runs[0].run_id))
            && text.contains("Nothing was started"),
        "{text}"
    );
    // ... and the baseline is B's
    assert_eq!(
        rig.w.number("dataset#embedding", "trained").await,
        Some(170)
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_click_on_a_superseded_question_edits_it_to_say_so_without_buttons() {
    let w = World::new().await;
    let old = asked(&w, 150, WEEK).await;
    let new = asked(&w, 190, WEEK2).await;
    let (status, _) = send(
        &w.actions(),
        click(&block_actions(
            "train",
            &old,
            ("U0ANN", "ann"),
            &w.slack.response_url("old"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    let replaced = &w.slack.responses("old")[0].body;
    assert_eq!(replaced["replace_original"], true, "{replaced}");
    let created = w
        .number(&format!("request#{new}"), "created_at")
        .await
        .unwrap();
    let text = replaced.to_string();
    assert!(
        text.contains(&format!(
            "*Superseded* by the question of <!date^{created}^"
        )),
        "{text}"
    );
    assert!(
        !replaced["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "actions"),
        "no buttons left: {replaced}"
    );
    ct_shared::slack::blocks::check(replaced).unwrap();
}
