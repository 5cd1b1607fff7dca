//! actions, end to end: seek posts a question, a signed click decides it, against a moto server
//! and a Slack stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use harness::World;
use harness::actions_api::{asked, send};
use harness::slack::Reply;
use harness::slack_events::{block_actions, click, interactive_message};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WEEK1: &str = "2026-11-24T00:00:00Z";
const WEEK2: &str = "2026-12-01T00:00:00Z";
const ANN: (&str, &str) = ("U0ANN", "ann");
const BOB: (&str, &str) = ("U0BOB", "bob");

fn has_buttons(message: &Value) -> bool {
    message["blocks"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["type"] == "actions"))
}

fn all_text(message: &Value) -> String {
    message.to_string()
}

#[tokio::test]
async fn train_flow_records_replaces_the_message_posts_kubeflow_and_next_seek_says_no_need() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let app = w.actions();
    let before = Timestamp::now().secs();
    // WHEN ann clicks Train! (and confirms)
    let (status, _) = send(
        &app,
        click(&block_actions(
            "train",
            &id,
            ANN,
            &w.slack.response_url("m1"),
        )),
    )
    .await;
    // THEN the decision is durable
    assert_eq!(status, 200);
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
    let decided_at = w.number("dataset#embedding", "trained_at").await.unwrap() as i64;
    assert!(decided_at >= before);
    // and audited: request, counts offered, decision, user, time
    let audit = format!("audit#{id}");
    assert_eq!(w.string(&audit, "decision").await.as_deref(), Some("train"));
    assert_eq!(w.string(&audit, "user_id").await.as_deref(), Some("U0ANN"));
    assert_eq!(w.string(&audit, "user_name").await.as_deref(), Some("ann"));
    assert_eq!(
        w.number(&audit, "decided_at").await,
        Some(decided_at as u64)
    );
    let offered: Value =
        serde_json::from_str(&w.string(&audit, "snapshot").await.unwrap()).unwrap();
    assert_eq!(offered[0]["seeked"], 150);
    // and the message was replaced: counts, who, when, no buttons
    let replaced = w.slack.responses("m1");
    assert_eq!(replaced.len(), 1);
    let m = &replaced[0].body;
    assert_eq!(m["replace_original"], true);
    assert!(!has_buttons(m));
    assert!(all_text(m).contains("150 new objects in embedding"));
    assert!(all_text(m).contains("Approved* by <@U0ANN>"), "{m}");
    assert!(
        all_text(m).contains(&format!("<!date^{decided_at}^")),
        "{m}"
    );
    // and the Kubeflow notice went to the channel (after seek's question)
    let channel = w.slack.channel();
    assert_eq!(channel.len(), 2);
    assert_eq!(
        channel[1].text(),
        format!("Here is Kubeflow URL: {}", World::KUBEFLOW_URL)
    );
    // WHEN the next week's seek finds 10 more
    w.put("train/embedding/", 150, 10).await;
    let next = w.weekly_seek(WEEK2).await;
    // THEN there is no need to train
    assert!(
        next.text
            .starts_with("No need to train: 10 new objects in embedding"),
        "{}",
        next.text
    );
}

#[tokio::test]
async fn trained_counts_come_from_the_snapshot_not_from_what_arrived_since() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    w.put("train/embedding/", 150, 60).await; // not seen by any seek yet
    let (status, _) = send(
        &w.actions(),
        click(&block_actions(
            "train",
            &id,
            ANN,
            &w.slack.response_url("m"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
    let next = w.weekly_seek(WEEK2).await;
    assert!(
        next.text.starts_with("No need to train: 60 new objects"),
        "{}",
        next.text
    );
}

#[tokio::test]
async fn decline_flow_keeps_trained_counts_so_the_next_seek_asks_again() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let app = w.actions();
    let (status, _) = send(
        &app,
        click(&block_actions(
            "nope",
            &id,
            BOB,
            &w.slack.response_url("m1"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("declined")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    assert_eq!(
        w.string(&format!("audit#{id}"), "decision")
            .await
            .as_deref(),
        Some("nope")
    );
    let m = &w.slack.responses("m1")[0].body;
    assert!(all_text(m).contains("Declined* by <@U0BOB>"), "{m}");
    assert!(!has_buttons(m));
    assert_eq!(w.slack.channel().len(), 1, "no Kubeflow notice on Nope!");
    let next = w.weekly_seek(WEEK2).await;
    assert!(
        next.text
            .starts_with("150 new objects in embedding. Would you like"),
        "{}",
        next.text
    );
}

#[tokio::test]
async fn legacy_interactive_message_payloads_decide_too() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let (status, _) = send(
        &w.actions(),
        click(&interactive_message(
            "train",
            &id,
            BOB,
            &w.slack.response_url("m"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        w.string(&format!("audit#{id}"), "user_name")
            .await
            .as_deref(),
        Some("bob")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
}

#[tokio::test]
async fn a_second_click_changes_nothing_and_tells_the_clicker_who_decided() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let app = w.actions();
    send(
        &app,
        click(&block_actions(
            "train",
            &id,
            ANN,
            &w.slack.response_url("first"),
        )),
    )
    .await;
    let audit_before = w.item(&format!("audit#{id}")).await;
    // The same person double-clicks, then bob clicks Nope!, then Slack resends ann's click.
    for (choice, user, url) in [
        ("train", ANN, "again"),
        ("nope", BOB, "bob"),
        ("train", ANN, "resent"),
    ] {
        let (status, _) = send(
            &app,
            click(&block_actions(
                choice,
                &id,
                user,
                &w.slack.response_url(url),
            )),
        )
        .await;
        assert_eq!(status, 200);
        let told = w.slack.responses(url);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].body["response_type"], "ephemeral");
        assert_eq!(told[0].body["replace_original"], false);
        assert!(
            told[0]
                .text()
                .starts_with("Already approved by <@U0ANN> at <!date^"),
            "{}",
            told[0].text()
        );
    }
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved")
    );
    assert_eq!(w.item(&format!("audit#{id}")).await, audit_before);
    assert_eq!(
        w.slack.channel().len(),
        2,
        "one question, one Kubeflow notice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clicks_have_exactly_one_winner_and_the_losers_are_told_who_won() {
    let w = World::new().await;
    for round in 0..4 {
        let week = format!("2026-12-{:02}T00:00:00Z", round * 7 + 1);
        let id = asked(&w, 150 * (round + 1), &week).await;
        // Three warm Lambdas, three people, within the same instant.
        let people = [
            ("U0ANN", "ann", "train"),
            ("U0BOB", "bob", "nope"),
            ("U0CAT", "cat", "train"),
        ];
        let barrier = Arc::new(tokio::sync::Barrier::new(people.len()));
        let mut tasks = Vec::new();
        for (uid, name, choice) in people {
            let app = w.actions();
            let req = click(&block_actions(
                choice,
                &id,
                (uid, name),
                &w.slack.response_url(&format!("r{round}-{uid}")),
            ));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                actions::handle(&app, req).await.unwrap().status().as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        // Exactly one decision, and everyone else was told who won.
        let winner = w
            .string(&format!("audit#{id}"), "user_id")
            .await
            .expect("one decision");
        let mut replaced = 0;
        for (uid, _, _) in people {
            let told = w.slack.responses(&format!("r{round}-{uid}"));
            assert_eq!(told.len(), 1, "{uid}");
            if uid == winner {
                assert_eq!(told[0].body["replace_original"], true);
                replaced += 1;
            } else {
                assert!(
                    told[0].text().contains(&format!("by <@{winner}>")),
                    "{}",
                    told[0].text()
                );
            }
        }
        assert_eq!(replaced, 1);
        let choice = w.string(&format!("audit#{id}"), "decision").await.unwrap();
        let trained = w.number("dataset#embedding", "trained").await.unwrap();
        if choice == "train" {
            assert_eq!(trained, 150 * (round as u64 + 1));
        }
    }
    // One Kubeflow notice per approved round, never more.
    let approvals = harness::moto::scan(&w.sdk, &w.table)
        .await
        .iter()
        .filter(|i| {
            i.get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                == Some("audit")
        })
        .filter(|i| {
            i.get("decision")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                == Some("train")
        })
        .count();
    let kubeflow = w
        .slack
        .channel()
        .iter()
        .filter(|p| p.text().starts_with("Here is Kubeflow"))
        .count();
    assert_eq!(kubeflow, approvals);
}

#[tokio::test]
async fn a_superseded_request_cannot_be_decided() {
    let w = World::new().await;
    let old = asked(&w, 150, WEEK1).await;
    let new = asked(&w, 190, WEEK2).await;
    let app = w.actions();
    let (status, _) = send(
        &app,
        click(&block_actions(
            "train",
            &old,
            ANN,
            &w.slack.response_url("old"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    let told = w.slack.responses("old");
    assert!(told[0].text().contains("superseded"), "{}", told[0].text());
    assert_eq!(
        w.string(&format!("request#{old}"), "status")
            .await
            .as_deref(),
        Some("pending")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    assert!(w.item(&format!("audit#{old}")).await.is_none());
    // The newest one still works.
    send(
        &app,
        click(&block_actions(
            "train",
            &new,
            ANN,
            &w.slack.response_url("new"),
        )),
    )
    .await;
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(190));
}

#[tokio::test]
async fn a_failing_or_hanging_response_url_does_not_delay_or_undo_the_decision() {
    for (name, reply) in [
        ("fails", Reply::Status(500)),
        ("hangs", Reply::Slow(Duration::from_secs(10))),
    ] {
        let w = World::new().await;
        let id = asked(&w, 150, WEEK1).await;
        let app = w.actions();
        // The response_url (first post) fails or hangs; the channel webhook answers.
        w.slack.plan([reply.clone(), reply]);
        let started = Instant::now();
        let (status, _) = send(
            &app,
            click(&block_actions(
                "train",
                &id,
                ANN,
                &w.slack.response_url("m"),
            )),
        )
        .await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{name}");
        assert!(
            took < Duration::from_millis(2500),
            "{name}: answered in {took:?}, Slack allows 3 s"
        );
        assert_eq!(
            w.string(&format!("request#{id}"), "status")
                .await
                .as_deref(),
            Some("approved"),
            "{name}"
        );
        assert_eq!(
            w.number("dataset#embedding", "trained").await,
            Some(150),
            "{name}"
        );
        // A retry of the click does not decide again.
        w.slack.clear();
        send(
            &app,
            click(&block_actions(
                "train",
                &id,
                ANN,
                &w.slack.response_url("again"),
            )),
        )
        .await;
        assert!(
            w.slack.responses("again")[0]
                .text()
                .starts_with("Already approved"),
            "{name}"
        );
        assert!(
            w.slack.channel().is_empty(),
            "{name}: no second Kubeflow notice"
        );
    }
}

#[tokio::test]
async fn a_failing_channel_webhook_is_logged_and_the_decision_stands() {
    let w = World::new().await;
    let id = asked(&w, 150, WEEK1).await;
    let app = w.actions();
    // Both posts run together; the channel's fails every attempt, the response_url's answers.
    w.slack
        .plan([Reply::Status(503), Reply::Status(503), Reply::Status(503)]);
    let (status, _) = send(
        &app,
        click(&block_actions(
            "train",
            &id,
            ANN,
            &w.slack.response_url("m"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
}
