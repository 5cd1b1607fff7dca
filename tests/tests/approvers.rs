//! `APPROVERS`: a click by anyone else changes nothing and gets an ephemeral refusal. The real
//! seek and actions handlers, against a moto server and a Slack stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::config::{ActionsConfig, Env, SecretBundle};
use harness::World;
use harness::slack_events::{block_actions, click};

const WEEK1: &str = "2026-11-24T00:00:00Z";

fn actions_with(w: &World, approvers: &str) -> actions::LiveActions {
    let mut env = w.actions_env();
    env.push(("APPROVERS".into(), approvers.into()));
    let config = ActionsConfig::from_env(&Env::from_pairs(env), &SecretBundle::default())
        .expect("valid actions config");
    actions::LiveActions::live(config, &w.sdk).expect("actions")
}

#[tokio::test]
async fn only_approvers_decide_and_a_refusal_changes_nothing() {
    // GIVEN a pending request and APPROVERS=U0ANN,U0BOB
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let id = w.weekly_seek(WEEK1).await.request_id.unwrap();
    let app = actions_with(&w, "U0ANN, U0BOB");
    // WHEN eve clicks Train!
    let resp = actions::handle(
        &app,
        click(&block_actions(
            "train",
            &id,
            ("U0EVE", "eve"),
            &w.slack.response_url("e"),
        )),
    )
    .await
    .unwrap();
    // THEN Slack gets 200, eve alone is told who may approve, and nothing changed
    assert_eq!(resp.status(), 200);
    let told = &w.slack.responses("e")[0].body;
    assert_eq!(told["response_type"], "ephemeral");
    assert_eq!(told["replace_original"], false);
    assert_eq!(
        told["text"],
        "Only <@U0ANN>, <@U0BOB> can approve training."
    );
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("pending")
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    assert!(w.item(&format!("audit#{id}")).await.is_none());
    assert!(w.item("last_decision").await.is_none());
    assert_eq!(w.slack.channel().len(), 1, "no Kubeflow notice");
    // WHEN bob, an approver, clicks Train!
    let resp = actions::handle(
        &app,
        click(&block_actions(
            "train",
            &id,
            ("U0BOB", "bob"),
            &w.slack.response_url("b"),
        )),
    )
    .await
    .unwrap();
    // THEN it is decided
    assert_eq!(resp.status(), 200);
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
}

#[test]
fn a_user_group_or_a_malformed_id_is_a_startup_error_naming_approvers() {
    let mut env = vec![
        ("STATE_TABLE", "t"),
        ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
        ("SLACK_SIGNING_SECRET", "s"),
        ("KUBEFLOW_URL", "https://kubeflow.example/"),
    ];
    for bad in ["S0GROUP", "ann"] {
        env.push(("APPROVERS", bad));
        let e = ActionsConfig::from_env(&Env::from_pairs(env.clone()), &SecretBundle::default())
            .unwrap_err();
        assert_eq!(e.variable, "APPROVERS");
        env.pop();
    }
}
