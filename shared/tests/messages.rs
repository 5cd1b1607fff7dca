//! Slack message templates against JSON fixtures: the exact shapes Slack receives.
//! Set UPDATE_FIXTURES=1 to rewrite them after a deliberate change, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use ct_shared::domain::{Choice, Count, Decision, Person};
use ct_shared::slack::messages;
use serde_json::Value;
use std::path::PathBuf;

fn check(name: &str, rendered: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(rendered).unwrap() + "\n",
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("fixture {} missing", path.display()));
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rendered, &expected, "{name} differs from its fixture");
}

fn counts() -> Vec<Count> {
    vec![
        Count {
            name: "embedding".into(),
            prefix: "train/embedding/".into(),
            seeked: 1190,
            trained: 1000,
            threshold: 100,
        },
        Count {
            name: "faiss".into(),
            prefix: "train/faiss/".into(),
            seeked: 510,
            trained: 500,
            threshold: 500,
        },
    ]
}

fn decision(choice: Choice) -> Decision {
    Decision {
        request_id: "4f6c0d1e9a8b4c2d8e7f6a5b4c3d2e1f".into(),
        choice,
        by: Person {
            id: "U024BE7LH".into(),
            name: "ann".into(),
        },
        at: Timestamp::from_secs(1_795_478_700),
    }
}

#[test]
fn ask_has_counts_and_train_behind_a_confirm_dialog_and_nope() {
    check(
        "ask",
        &messages::ask("4f6c0d1e9a8b4c2d8e7f6a5b4c3d2e1f", &counts()),
    );
}

#[test]
fn no_need_has_counts_and_no_buttons() {
    let mut c = counts();
    c[0].seeked = 1010;
    check("no_need", &messages::no_need(&c));
}

#[test]
fn decided_replaces_the_question_without_buttons() {
    check(
        "approved",
        &messages::decided(&counts(), &decision(Choice::Train)),
    );
    check(
        "declined",
        &messages::decided(&counts(), &decision(Choice::Nope)),
    );
}

#[test]
fn ephemeral_answers_and_the_kubeflow_notice() {
    check(
        "already_decided",
        &messages::already_decided(&decision(Choice::Train)),
    );
    check("superseded", &messages::superseded());
    check(
        "kubeflow",
        &messages::kubeflow("https://kubeflow.example.com/_/pipeline/"),
    );
}

#[test]
fn a_dataset_whose_prefix_lists_nothing_is_flagged_as_a_likely_typo() {
    let mut c = counts();
    c[1].prefix = "train/fiass/".into();
    c[1].seeked = 0;
    c[1].trained = 0;
    check(
        "ask_empty",
        &messages::ask("4f6c0d1e9a8b4c2d8e7f6a5b4c3d2e1f", &c),
    );
    let mut quiet = c.clone();
    quiet[0].seeked = 1010;
    let no_need = messages::no_need(&quiet).to_string();
    assert!(
        no_need.contains("`train/fiass/` is empty: a typo?"),
        "{no_need}"
    );
    let decided = messages::decided(&c, &decision(Choice::Nope)).to_string();
    assert!(
        decided.contains("`train/fiass/` is empty: a typo?"),
        "{decided}"
    );
    // A dataset with objects, even none new, is not flagged.
    let ask = messages::ask("r", &counts()).to_string();
    assert!(!ask.contains("typo"), "{ask}");
}

#[test]
fn names_and_prefixes_are_escaped() {
    let c = vec![Count {
        name: "a".into(),
        prefix: "<!channel>&/".into(),
        seeked: 1,
        trained: 0,
        threshold: 0,
    }];
    let m = messages::ask("r", &c).to_string();
    assert!(m.contains("&lt;!channel&gt;&amp;/"), "{m}");
    assert!(!m.contains("<!channel>"));
}
