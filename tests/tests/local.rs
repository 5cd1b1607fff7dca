//! `scripts/run`'s program, ct-local, as a newcomer meets it: usage, settings taken from the
//! environment, a function that cannot start, a busy port and what the terminal shows. Its
//! console: console.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod run_local;

use run_local::*;
use std::time::Duration;

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
