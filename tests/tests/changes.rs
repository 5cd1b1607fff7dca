//! seek sees what changed since the last training, not only how many objects there are:
//! rolling and rewritten datasets, bytes and percent thresholds, old-dated copies, a second
//! bucket, a table from before change detection, and the second a count begins. The real seek
//! and actions handlers against moto (objects seeded with their sizes, contents and dates) and
//! a Slack stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use ct_shared::domain::Verdict;
use harness::World;
use harness::actions_api::send;
use harness::events::{invocation, scheduled_event};
use harness::moto::{Seeded, seed_objects};
use harness::slack_events::{block_actions, click};
use serde_json::Value;

const ANN: (&str, &str) = ("U0ANN", "ann");

/// The weekly seek of `week` (`2026-12-0Nt...`), as deployed, with these datasets.
async fn seek(w: &World, datasets: &str, week: u32) -> seek::Outcome {
    let time = format!("2027-01-{week:02}T00:00:00Z");
    let seeker = w.seeker(datasets, 100);
    seek::handle(&seeker, invocation(scheduled_event(&time), &time))
        .await
        .expect("seek succeeds")
}

/// ann clicks Train! on the request.
async fn approve(w: &World, id: &str) {
    let (status, _) = send(
        &w.actions(),
        click(&block_actions("train", id, ANN, &w.slack.response_url("m"))),
    )
    .await;
    assert_eq!(status, 200);
}

fn keys(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("{prefix}part-{i:05}.jsonl"))
        .collect()
}

fn objects(keys: &[String], size: u64, last_modified: Option<i64>) -> Vec<Seeded> {
    keys.iter()
        .map(|k| Seeded::new(k.clone(), size, last_modified))
        .collect()
}

/// Ten days ago: objects that were there long before any count here.
fn long_ago() -> i64 {
    Timestamp::now().secs() - 10 * 86_400
}

/// The text of the channel's last message, blocks and all.
fn last_message(w: &World) -> String {
    w.slack
        .channel()
        .last()
        .expect("a message")
        .body
        .to_string()
}

async fn status(w: &World) -> Value {
    let sender = harness::send_api::sender(w, "NONE", Some(harness::send_api::TOKEN));
    let event = harness::events::function_url_event(
        "GET",
        "/status",
        &[("authorization", &harness::send_api::bearer())],
        b"",
        false,
    );
    harness::send_api::call(&sender, event).await.json()
}

#[tokio::test]
async fn a_rolling_dataset_whose_count_stays_flat_asks_naming_the_new_and_the_removed() {
    // GIVEN 500 objects of 4 KB, trained on
    let w = World::new().await;
    let p = "train/embedding/";
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 0..500), 4_000, Some(long_ago())),
        &[],
    )
    .await;
    let first = seek(&w, "embedding=train/embedding/", 1).await;
    approve(&w, &first.request_id.expect("500 new objects ask")).await;
    // WHEN the oldest 300 are pruned and 300 new ones land: still 500
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 500..800), 4_000, None),
        &keys(p, 0..300),
    )
    .await;
    let second = seek(&w, "embedding=train/embedding/", 8).await;
    // THEN it asks, naming the 300 new and the 300 removed
    assert_eq!(second.verdict, Verdict::Ask, "{}", second.text);
    let c = &second.counts[0];
    assert_eq!((c.seeked, c.trained), (500, 500));
    assert_eq!(
        (c.new_objects(), c.removed(), c.new_bytes),
        (300, 300, 1_200_000)
    );
    let m = last_message(&w);
    assert!(
        m.contains("300 new or rewritten (1.2 MB), 300 removed since the training of <!date^"),
        "{m}"
    );
    assert!(m.contains("500 objects, 2.0 MB now"), "{m}");
    assert!(
        second
            .text
            .starts_with("300 new objects in embedding (300 removed). Would you like"),
        "{}",
        second.text
    );
    // ... and /status shows what changed, and the approved snapshot's time
    let s = status(&w).await;
    let d = &s["datasets"][0];
    assert_eq!(
        (
            &d["objects"],
            &d["bytes"],
            &d["new_objects"],
            &d["new_bytes"],
            &d["removed"],
            &d["changed"]
        ),
        (
            &Value::from(500),
            &Value::from(2_000_000),
            &Value::from(300),
            &Value::from(1_200_000),
            &Value::from(300),
            &Value::from(true)
        ),
        "{s}"
    );
    let snapshot_at = first.counts[0].counted_at.expect("a snapshot time");
    assert_eq!(d["snapshot_at"], snapshot_at.rfc3339(), "{s}");
    assert_eq!(
        (&d["seeked"], &d["trained"]),
        (&Value::from(500), &Value::from(500))
    );
}

#[tokio::test]
async fn a_rewrite_in_place_is_new_and_removed_and_crosses_a_percent_threshold() {
    let w = World::new().await;
    let p = "train/r/";
    let k = keys(p, 0..200);
    seed_objects(&w.bucket, &objects(&k, 100, Some(long_ago())), &[]).await;
    let first = seek(&w, "r=train/r/:50%", 1).await;
    approve(
        &w,
        &first
            .request_id
            .expect("nothing trained: any new object asks"),
    )
    .await;
    // WHEN the nightly export rewrites every object under the same key
    let rewritten: Vec<Seeded> = k
        .iter()
        .map(|key| Seeded {
            fill: "y".into(),
            ..Seeded::new(key.clone(), 100, None)
        })
        .collect();
    seed_objects(&w.bucket, &rewritten, &[]).await;
    let second = seek(&w, "r=train/r/:50%", 8).await;
    // THEN the count is flat, yet all 200 are new or rewritten and all 200 removed: 400% moved
    let c = &second.counts[0];
    assert_eq!(
        (c.seeked, c.trained, c.new_objects(), c.removed()),
        (200, 200, 200, 200)
    );
    assert_eq!(second.verdict, Verdict::Ask);
    assert!(last_message(&w).contains("200 new or rewritten (20.0 KB), 200 removed"));
}

#[tokio::test]
async fn object_bytes_and_percent_thresholds_each_ask_on_exactly_the_right_side() {
    // Objects: more than 5 new.
    let w = World::new().await;
    let p = "train/o/";
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 0..10), 10, Some(long_ago())),
        &[],
    )
    .await;
    let first = seek(&w, "o=train/o/:5", 1).await;
    approve(&w, &first.request_id.expect("10 > 5")).await;
    seed_objects(&w.bucket, &objects(&keys(p, 10..15), 10, None), &[]).await;
    assert_eq!(
        seek(&w, "o=train/o/:5", 2).await.verdict,
        Verdict::NoNeed,
        "5 new is not over 5"
    );
    seed_objects(&w.bucket, &objects(&keys(p, 15..16), 10, None), &[]).await;
    assert_eq!(
        seek(&w, "o=train/o/:5", 3).await.verdict,
        Verdict::Ask,
        "6 new is"
    );

    // Bytes: more than 1 KB new.
    let w = World::new().await;
    let p = "train/b/";
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 0..3), 500, Some(long_ago())),
        &[],
    )
    .await;
    let first = seek(&w, "b=train/b/:1KB", 1).await;
    approve(&w, &first.request_id.expect("1,500 bytes > 1 KB")).await;
    seed_objects(&w.bucket, &objects(&keys(p, 3..4), 1_000, None), &[]).await;
    let at = seek(&w, "b=train/b/:1KB", 2).await;
    assert_eq!(at.counts[0].new_bytes, 1_000);
    assert_eq!(at.verdict, Verdict::NoNeed, "1,000 bytes is not over 1 KB");
    seed_objects(&w.bucket, &objects(&keys(p, 4..5), 1, None), &[]).await;
    let over = seek(&w, "b=train/b/:1KB", 3).await;
    assert_eq!(
        (over.counts[0].new_bytes, over.verdict),
        (1_001, Verdict::Ask)
    );
    assert!(last_message(&w).contains("threshold 1.0 KB"));

    // Percent: more than 10% of the 100 trained moved (new and removed together).
    let w = World::new().await;
    let p = "train/p/";
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 0..100), 1, Some(long_ago())),
        &[],
    )
    .await;
    let first = seek(&w, "p=train/p/:10%", 1).await;
    approve(
        &w,
        &first
            .request_id
            .expect("nothing trained: any new object asks"),
    )
    .await;
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 100..105), 1, None),
        &keys(p, 0..5),
    )
    .await;
    let at = seek(&w, "p=train/p/:10%", 2).await;
    assert_eq!((at.counts[0].new_objects(), at.counts[0].removed()), (5, 5));
    assert_eq!(at.verdict, Verdict::NoNeed, "10% is not over 10%");
    seed_objects(&w.bucket, &[], &keys(p, 5..6)).await;
    let over = seek(&w, "p=train/p/:10%", 3).await;
    assert_eq!((over.counts[0].removed(), over.verdict), (6, Verdict::Ask));
}

#[tokio::test]
async fn old_dated_copies_are_flagged_by_the_fingerprint_and_cross_nothing() {
    let w = World::new().await;
    let p = "train/embedding/";
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 0..20), 10, Some(long_ago())),
        &[],
    )
    .await;
    let first = seek(&w, "embedding=train/embedding/:0", 1).await;
    approve(&w, &first.request_id.unwrap()).await;
    // Nothing changed: equal fingerprints, nothing new.
    let same = seek(&w, "embedding=train/embedding/:0", 2).await;
    assert!(!same.counts[0].changed(), "{:?}", same.counts[0]);
    assert_eq!(same.verdict, Verdict::NoNeed);
    // WHEN three objects arrive by replication, keeping their old dates
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 20..23), 10, Some(long_ago())),
        &[],
    )
    .await;
    let copied = seek(&w, "embedding=train/embedding/:0", 3).await;
    // THEN nothing is new and nothing removed, yet the content changed: said, and no ask
    let c = &copied.counts[0];
    assert_eq!((c.new_objects(), c.removed(), c.seeked), (0, 0, 23));
    assert!(c.changed() && c.old_dated_change());
    assert_eq!(copied.verdict, Verdict::NoNeed);
    assert!(
        last_message(&w).contains("the content changed with old dates"),
        "{}",
        last_message(&w)
    );
    assert_eq!(status(&w).await["datasets"][0]["changed"], true);
}

#[tokio::test]
async fn a_dataset_in_a_second_bucket_is_counted_there() {
    let w = World::new().await;
    let other = harness::unique("other");
    harness::moto::create_bucket(&w.sdk, &other).await;
    w.put("train/a/", 0, 3).await;
    seed_objects(&other, &objects(&keys("b/", 0..7), 1_000, None), &[]).await;
    // The same prefix in the default bucket holds something else.
    w.put("b/", 0, 2).await;
    let datasets = format!("a=train/a/,b=s3://{other}/b/");
    let out = seek(&w, &datasets, 1).await;
    let b = out.counts.iter().find(|c| c.name == "b").unwrap();
    assert_eq!((b.seeked, b.bytes), (7, 7_000));
    assert_eq!(b.prefix, format!("s3://{other}/b/"));
    assert_eq!(out.counts[0].seeked, 3);
    assert!(last_message(&w).contains(&format!("`s3://{other}/b/`")));
}

#[tokio::test]
async fn the_second_a_count_begins_is_new_to_the_next_count_and_the_one_before_is_not() {
    let w = World::new().await;
    let p = "train/embedding/";
    seed_objects(
        &w.bucket,
        &objects(&keys(p, 0..150), 1, Some(long_ago())),
        &[],
    )
    .await;
    let first = seek(&w, "embedding=train/embedding/", 1).await;
    approve(&w, &first.request_id.unwrap()).await;
    let began = w
        .number("dataset#embedding", "trained_snapshot_at")
        .await
        .expect("the baseline has its snapshot's time") as i64;
    assert_eq!(
        Some(Timestamp::from_secs(began)),
        first.counts[0].counted_at
    );
    // GIVEN one object listed as written in the very second the approved count began (a
    // listing may or may not have seen it), and one written the second before
    seed_objects(
        &w.bucket,
        &[
            Seeded::new(format!("{p}in-that-second"), 5, Some(began)),
            Seeded::new(format!("{p}the-second-before"), 7, Some(began - 1)),
        ],
        &[],
    )
    .await;
    let next = seek(&w, "embedding=train/embedding/", 8).await;
    // THEN the first is new, never missed; the second was there before the count began
    let c = &next.counts[0];
    assert_eq!((c.seeked, c.new_objects(), c.new_bytes), (152, 1, 5));
}

#[tokio::test]
async fn a_table_from_the_count_only_version_keeps_working_and_is_compared_by_count_once() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    // GIVEN a dataset item as the count-only version left it: 640 seen, 640 trained
    let w = World::new().await;
    aws_sdk_dynamodb::Client::new(&w.sdk)
        .put_item()
        .table_name(&w.table)
        .item("pk", S("dataset#embedding".into()))
        .item("kind", S("dataset".into()))
        .item("name", S("embedding".into()))
        .item("prefix", S("train/embedding/".into()))
        .item("seeked", N("640".into()))
        .item("seeked_at", N("1795478400".into()))
        .item("trained", N("640".into()))
        .item("trained_at", N("1795480000".into()))
        .item("threshold", N("100".into()))
        .send()
        .await
        .unwrap();
    // ... and 700 objects now, all written just now (their dates cannot tell anything)
    let p = "train/embedding/";
    seed_objects(&w.bucket, &objects(&keys(p, 0..700), 10, None), &[]).await;
    // WHEN the first count after upgrading runs
    let first = seek(&w, "embedding=train/embedding/", 1).await;
    // THEN it compares counts, as before: 60 more than trained is under 100, and says so once
    let c = &first.counts[0];
    assert!(c.by_count());
    assert_eq!((c.new_objects(), c.removed()), (60, 0));
    assert_eq!(first.verdict, Verdict::NoNeed, "{}", first.text);
    let m = last_message(&w);
    assert_eq!(m.matches("Compared by count this once").count(), 1, "{m}");
    // 100 more: 160 over 640 asks, still by count; the approval then keeps a snapshot time
    seed_objects(&w.bucket, &objects(&keys(p, 700..800), 10, None), &[]).await;
    let second = seek(&w, "embedding=train/embedding/", 8).await;
    assert_eq!(second.counts[0].new_objects(), 160);
    approve(&w, &second.request_id.expect("160 > 100 asks")).await;
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(800));
    assert!(
        w.number("dataset#embedding", "trained_snapshot_at")
            .await
            .is_some()
    );
    // From then on, everything is measured: nothing new, nothing asked twice, no note
    let third = seek(&w, "embedding=train/embedding/", 15).await;
    let c = &third.counts[0];
    assert!(!c.by_count() && !c.changed());
    assert_eq!(
        (c.new_objects(), c.removed(), third.verdict),
        (0, 0, Verdict::NoNeed)
    );
    assert!(!last_message(&w).contains("Compared by count"));
}

#[tokio::test]
async fn a_request_pending_from_the_count_only_version_can_still_be_approved() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let w = World::new().await;
    let client = aws_sdk_dynamodb::Client::new(&w.sdk);
    let id = "0123456789abcdef0123456789abcdef";
    // GIVEN a pending request and its dataset, as the count-only version stored them
    for (pk, attrs) in [
        (
            "dataset#embedding".to_owned(),
            vec![
                ("kind", S("dataset".into())),
                ("name", S("embedding".into())),
                ("prefix", S("train/embedding/".into())),
                ("seeked", N("190".into())),
                ("trained", N("0".into())),
                ("threshold", N("100".into())),
            ],
        ),
        (
            format!("request#{id}"),
            vec![
                ("kind", S("request".into())),
                ("id", S(id.into())),
                ("created_at", N(Timestamp::now().secs().to_string())),
                ("window", S("scheduled#2026-11-24T00:00:00Z".into())),
                ("status", S("pending".into())),
                ("request_kind", S("data".into())),
                (
                    "snapshot",
                    S(r#"[{"name":"embedding","prefix":"train/embedding/","seeked":190,"trained":0,"threshold":100}]"#.into()),
                ),
            ],
        ),
        ("latest_request".to_owned(), vec![("request_id", S(id.into()))]),
    ] {
        let mut put = client.put_item().table_name(&w.table).item("pk", S(pk));
        for (k, v) in attrs {
            put = put.item(k, v);
        }
        put.send().await.unwrap();
    }
    // WHEN ann approves it after the upgrade
    approve(&w, id).await;
    // THEN the baseline moves to its count, compared by count until the next approval
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(190));
    assert!(
        w.number("dataset#embedding", "trained_snapshot_at")
            .await
            .is_none()
    );
    w.put("train/embedding/", 0, 200).await;
    let next = seek(&w, "embedding=train/embedding/", 1).await;
    assert!(next.counts[0].by_count());
    assert_eq!(next.counts[0].new_objects(), 10);
}

#[tokio::test]
async fn the_run_is_told_which_data_was_approved() {
    use harness::launch_rig::Rig;
    let parameters = r#"{"until": "${snapshot_time}", "objects": "${objects.embedding}",
        "bytes": "${bytes.embedding}", "new": "${new.embedding}",
        "new_bytes": "${new_bytes.embedding}", "removed": "${removed.embedding}"}"#;
    let mut rig = Rig::start_with(true, 1, &[("KFP_PARAMETERS", parameters)]).await;
    let id = rig.asked().await;
    assert_eq!(rig.click("train", &id, "m").await, 200);
    let outcomes = rig.invoke.settle(std::time::Duration::from_secs(30)).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let runs = rig.kfp.runs();
    assert_eq!(runs.len(), 1);
    let snapshot: Value = serde_json::from_str(
        &rig.w
            .string(&format!("request#{id}"), "snapshot")
            .await
            .unwrap(),
    )
    .unwrap();
    let began = Timestamp::from_secs(snapshot[0]["counted_at"].as_i64().unwrap());
    assert_eq!(
        runs[0].parameters,
        serde_json::json!({"until": began.rfc3339(), "objects": 150, "bytes": 450, "new": 150,
                           "new_bytes": 450, "removed": 0})
    );
    rig.stop().await;
}

#[test]
fn the_template_grants_listing_every_other_bucket_the_datasets_name() {
    let text = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let t: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        t["Parameters"]["OtherDataBuckets"]["Type"].as_str(),
        Some("CommaDelimitedList")
    );
    let policy = &t["Resources"]["SeekOtherBucketsPolicy"];
    assert_eq!(policy["Condition"].as_str(), Some("HasOtherDataBuckets"));
    let roles = format!("{:?}", policy["Properties"]["Roles"]);
    assert!(roles.contains("SeekFunctionRole"), "{roles}");
    let statement = &policy["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(statement["Action"].as_str(), Some("s3:ListBucket"));
    // One bucket ARN per name: the list joined with the ARN prefix between, then split.
    let resource = format!("{:?}", statement["Resource"]);
    for needle in ["Split", "arn:*:s3:::", "OtherDataBuckets"] {
        assert!(resource.contains(needle), "{needle} not in {resource}");
    }
    // The default bucket stays granted on its own.
    let seek = format!(
        "{:?}",
        t["Resources"]["SeekFunction"]["Properties"]["Policies"]
    );
    assert!(
        seek.contains("arn:${AWS::Partition}:s3:::${DataBucket}"),
        "{seek}"
    );
}
