//! Slack message templates against JSON fixtures: the exact shapes Slack receives.
//! Set UPDATE_FIXTURES=1 to rewrite them after a deliberate change, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use ct_shared::domain::{Choice, Count, Decision, Person, Threshold};
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
            threshold: Threshold::Objects(100),
            ..Count::default()
        },
        Count {
            name: "faiss".into(),
            prefix: "train/faiss/".into(),
            seeked: 510,
            trained: 500,
            threshold: Threshold::Objects(500),
            ..Count::default()
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
        threshold: Threshold::Objects(0),
        ..Count::default()
    }];
    let m = messages::ask("r", &c).to_string();
    assert!(m.contains("&lt;!channel&gt;&amp;/"), "{m}");
    assert!(!m.contains("<!channel>"));
}

/// A count measured against a baseline, as seek makes them since change detection.
fn measured(name: &str, seen: (u64, u64), new: (u64, u64), trained: u64, t: Threshold) -> Count {
    let baseline = ct_shared::domain::Baseline {
        objects: trained,
        bytes: Some(seen.1),
        fingerprint: Some(ct_shared::fingerprint::Fingerprint(1)),
        snapshot_at: (trained > 0).then(|| Timestamp::from_secs(1_795_478_400 - 7 * 86_400)),
    };
    let sums = ct_shared::ranges::Sums {
        objects: seen.0,
        bytes: seen.1,
        new_objects: new.0,
        new_bytes: new.1,
        fingerprint: ct_shared::fingerprint::Fingerprint(2),
    };
    ct_shared::domain::measure(
        ct_shared::domain::Judged {
            name,
            prefix: &format!("train/{name}/"),
            threshold: t,
        },
        &sums,
        Timestamp::from_secs(1_795_478_400),
        &baseline,
    )
}

#[test]
fn a_measured_question_says_per_dataset_what_changed_in_human_units() {
    let counts = vec![
        // A rolling dataset: 300 pruned and 300 landed, still 500.
        measured(
            "embedding",
            (500, 2_000_000_000),
            (300, 1_200_000_000),
            500,
            Threshold::Objects(100),
        ),
        measured(
            "faiss",
            (40, 4_000),
            (40, 4_000),
            0,
            Threshold::Percent(2.5),
        ),
        measured(
            "shards",
            (10, 90_000),
            (0, 0),
            10,
            Threshold::Bytes(1_000_000),
        ),
    ];
    let m = messages::ask("4f6c0d1e9a8b4c2d8e7f6a5b4c3d2e1f", &counts);
    check("ask_measured", &m);
    ct_shared::slack::blocks::check(&m).unwrap();
    let lines = m["blocks"][1]["elements"][0]["text"].as_str().unwrap();
    assert!(
        lines.contains(
            "*embedding* `train/embedding/`: 300 new or rewritten (1.2 GB), 300 removed since \
             the training of <!date^1794873600^{date_short}|17 Nov 2026>; 500 objects, 2.0 GB \
             now · threshold 100 objects"
        ),
        "{lines}"
    );
    assert!(
        lines.contains("40 new (4.0 KB), nothing trained yet"),
        "{lines}"
    );
    assert!(
        lines.contains("nothing new since the training of") && lines.contains("old dates"),
        "{lines}"
    );
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .starts_with("300 new objects in embedding (300 removed), 40 in faiss, 0 in shards.")
    );
}

#[test]
fn every_message_stays_valid_block_kit_at_50_datasets_with_long_names() {
    let long = "d".repeat(60);
    let counts: Vec<Count> = (0..50)
        .map(|i| {
            let mut c = measured(
                &format!("{long}{i:02}"),
                (1_000_000 + i, 123_456_789_012),
                (i, 1_000 * i),
                1_000_000,
                Threshold::Objects(100),
            );
            c.prefix = format!(
                "s3://a-very-long-bucket-name-for-training/{}/",
                "p".repeat(120)
            );
            if i % 10 == 0 {
                c.seeked = 0;
            }
            c
        })
        .collect();
    let request = ct_shared::domain::ApprovalRequest {
        id: "4f6c0d1e9a8b4c2d8e7f6a5b4c3d2e1f".into(),
        created_at: Timestamp::from_secs(0),
        window: String::new(),
        snapshot: counts.clone(),
        decision: None,
        signal: None,
        posted: None,
        expired_at: None,
    };
    for m in [
        messages::ask_request(&request),
        messages::no_need(&counts),
        messages::decided(&counts, &decision(Choice::Train)),
    ] {
        ct_shared::slack::blocks::check(&m).unwrap_or_else(|e| panic!("{e}: {m}"));
        let text = m.to_string();
        for i in 0..50 {
            assert!(
                text.contains(&format!("{long}{i:02}")),
                "dataset {i} is missing"
            );
        }
    }
}
