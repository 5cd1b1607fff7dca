//! seek, end to end: the real handler against a moto server and a Slack stand-in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::events::{invocation, scheduled_event, scheduler_event};
use harness::slack::Reply;
use seek::{Delivery, SeekError};
use serde_json::{Value, json};

const TUESDAY: &str = "2026-11-24T00:00:00Z";

async fn run(
    world: &World,
    seeker: &seek::LiveSeeker,
    event: Value,
    request_id: &str,
) -> Result<seek::Outcome, SeekError> {
    let _ = world;
    seek::handle(seeker, invocation(event, request_id)).await
}

fn buttons(post: &Value) -> Vec<Value> {
    post["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn below_threshold_posts_no_need_to_train_without_buttons() {
    // GIVEN 40 objects and a threshold of 100
    let w = World::new().await;
    w.put("train/embedding/", 0, 40).await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    // WHEN the weekly event fires
    let out = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    // THEN one notice, no buttons, counts kept, no request
    assert_eq!(out.result, Delivery::Posted);
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].text().starts_with("No need to train"),
        "{}",
        posts[0].text()
    );
    assert!(posts[0].text().contains("40 new objects in embedding"));
    assert!(buttons(&posts[0].body).is_empty());
    assert_eq!(w.number("dataset#embedding", "seeked").await, Some(40));
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
    assert!(w.item("latest_request").await.is_none());
    assert_eq!(out.request_id, None);
}

#[tokio::test]
async fn above_threshold_asks_with_train_and_nope_and_stores_the_request() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 101).await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let out = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].text(),
        "101 new objects in embedding. Would you like to train models?"
    );
    let b = buttons(&posts[0].body);
    assert_eq!(b.len(), 2);
    let id = out.request_id.clone().expect("a request");
    assert_eq!(b[0]["text"]["text"], "Train!");
    assert_eq!(b[0]["style"], "primary");
    assert_eq!(b[0]["value"], format!("train:{id}"));
    assert_eq!(b[0]["confirm"]["title"]["text"], "Are you sure?");
    assert_eq!(b[0]["confirm"]["text"]["text"], "Do Train?");
    assert_eq!(b[0]["confirm"]["confirm"]["text"], "Yes");
    assert_eq!(b[0]["confirm"]["deny"]["text"], "No");
    assert_eq!(b[1]["text"]["text"], "Nope!");
    assert_eq!(b[1]["value"], format!("nope:{id}"));
    // The request is durable, pending, with the counts it offers.
    let key = format!("request#{id}");
    assert_eq!(w.string(&key, "status").await.as_deref(), Some("pending"));
    let mut snapshot: Value =
        serde_json::from_str(&w.string(&key, "snapshot").await.unwrap()).unwrap();
    // When the count began (a whole second, after the objects were put), and what it saw.
    let counted_at = snapshot[0]["counted_at"].as_i64().expect("counted_at");
    assert!(counted_at > 1_795_000_000, "{snapshot}");
    let fingerprint = snapshot[0]["fingerprint"].as_str().expect("a fingerprint");
    assert_eq!(fingerprint.len(), 16, "{snapshot}");
    let object = snapshot[0].as_object_mut().unwrap();
    object.remove("counted_at");
    object.remove("fingerprint");
    assert_eq!(
        snapshot,
        json!([{"name": "embedding", "prefix": "train/embedding/", "seeked": 101, "trained": 0,
                "threshold": 100, "bytes": 303, "new_objects": 101, "new_bytes": 303}])
    );
    assert_eq!(w.string("latest_request", "request_id").await, Some(id));
}

#[tokio::test]
async fn several_datasets_with_their_own_thresholds() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 190).await;
    w.put("train/faiss/", 0, 10).await;
    // faiss needs 500 of its own; embedding uses the default 100.
    let seeker = w.seeker("embedding=train/embedding/,faiss=train/faiss/:500", 100);
    let out = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    assert_eq!(
        out.text,
        "190 new objects in embedding, 10 in faiss. Would you like to train models?"
    );
    assert_eq!(w.slack.channel()[0].text(), out.text);
    assert_eq!(w.number("dataset#faiss", "seeked").await, Some(10));
    assert_eq!(w.number("dataset#embedding", "seeked").await, Some(190));

    // Only faiss over 500 of its own would ask; 10 of embedding would not.
    let w2 = World::new().await;
    w2.put("train/embedding/", 0, 10).await;
    w2.put("train/faiss/", 0, 120).await;
    let seeker = w2.seeker("embedding=train/embedding/,faiss=train/faiss/:500", 100);
    let out = run(&w2, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    assert!(
        out.text
            .starts_with("No need to train: 10 new objects in embedding, 120 in faiss"),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn counts_past_one_page_and_skips_folder_markers() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 1_234).await;
    for marker in [
        "train/embedding/",
        "train/embedding/2026/",
        "train/embedding/2026/11/",
    ] {
        harness::moto::put_key(&w.sdk, &w.bucket, marker).await;
    }
    harness::moto::put_key(&w.sdk, &w.bucket, "train/embedding/2026/11/part-0.parquet").await;
    // Another prefix that merely starts alike must not count.
    w.put("train/embedding-old/", 0, 7).await;
    let seeker = w.seeker("embedding=train/embedding/", 5_000);
    run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    assert_eq!(w.number("dataset#embedding", "seeked").await, Some(1_235));
}

#[tokio::test]
async fn the_same_window_delivered_twice_posts_once() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let first = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    // The classic rule redelivered, and a Scheduler retry with a new execution id.
    let again = run(&w, &seeker, scheduled_event(TUESDAY), "r2")
        .await
        .unwrap();
    let retry = run(
        &w,
        &seeker,
        scheduler_event("2026-11-24T00:00:00.000Z", "exec-2"),
        "r3",
    )
    .await
    .unwrap();
    // Even from another "execution environment" (a fresh seeker).
    let other = w.seeker("embedding=train/embedding/", 100);
    let elsewhere = run(&w, &other, scheduled_event(TUESDAY), "r4")
        .await
        .unwrap();
    assert_eq!(first.result, Delivery::Posted);
    for o in [&again, &retry, &elsewhere] {
        assert_eq!(o.result, Delivery::Duplicate);
        assert_eq!(o.request_id, first.request_id);
    }
    assert_eq!(w.slack.channel().len(), 1);
    // The next week is a new window.
    let next = run(&w, &seeker, scheduled_event("2026-12-01T00:00:00Z"), "r5")
        .await
        .unwrap();
    assert_eq!(next.result, Delivery::Posted);
    assert_eq!(w.slack.channel().len(), 2);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_window_post_once() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let a = w.seeker("embedding=train/embedding/", 100);
    let b = w.seeker("embedding=train/embedding/", 100);
    let c = w.seeker("embedding=train/embedding/", 100);
    let (ra, rb, rc) = tokio::join!(
        run(&w, &a, scheduled_event(TUESDAY), "a"),
        run(&w, &b, scheduler_event(TUESDAY, "exec-b"), "b"),
        run(&w, &c, scheduled_event(TUESDAY), "c"),
    );
    // One posts; the others see it posted, or fail with InProgress so Lambda retries them.
    let results: Vec<_> = [ra, rb, rc].into_iter().collect();
    let posted: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|o| o.result == Delivery::Posted)
        .collect();
    assert_eq!(posted.len(), 1, "{results:?}");
    for r in &results {
        match r {
            Ok(o) => assert_eq!(o.request_id, posted[0].request_id, "one request"),
            Err(e) => assert!(matches!(e, SeekError::InProgress(_)), "{e}"),
        }
    }
    assert_eq!(w.slack.channel().len(), 1);
    // Lambda's retry of a delivery that did not post finds the window posted (a retry of the
    // one that posted would answer posted again, as its first attempt did).
    let other = results
        .iter()
        .position(|r| !r.as_ref().is_ok_and(|o| o.result == Delivery::Posted))
        .expect("two deliveries did not post");
    let (seeker, event, id) = match other {
        0 => (&a, scheduled_event(TUESDAY), "a"),
        1 => (&b, scheduler_event(TUESDAY, "exec-b"), "b"),
        _ => (&c, scheduled_event(TUESDAY), "c"),
    };
    let retry = run(&w, seeker, event, id).await.unwrap();
    assert_eq!(retry.result, Delivery::Duplicate);
    assert_eq!(w.slack.channel().len(), 1);
}

#[tokio::test]
async fn a_delivery_that_died_mid_post_is_retried_once_its_lease_expires() {
    use ct_shared::aws::dynamo::SeekStore;
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    // GIVEN Slack failed once, and a delivery killed mid-post still holds the lease
    w.slack.plan(std::iter::repeat_n(Reply::Status(500), 4));
    run(&w, &seeker, scheduled_event(TUESDAY), "dies")
        .await
        .unwrap_err();
    let key = format!("scheduled#{TUESDAY}");
    let now = ct_shared::Timestamp::now();
    let until = now.plus_secs(seek::LEASE_SECS);
    assert!(
        seeker
            .store
            .lease(&key, "killed", now, until)
            .await
            .unwrap()
    );
    // WHEN Lambda retries within the lease: it fails again, it does not succeed quietly
    let err = run(&w, &seeker, scheduled_event(TUESDAY), "dies")
        .await
        .unwrap_err();
    assert!(matches!(err, SeekError::InProgress(_)), "{err}");
    assert!(w.slack.channel().is_empty());
    // THEN a retry after the lease expired posts, once
    let later = now.plus_secs(seek::LEASE_SECS + 1);
    let trigger = seek::parse_trigger(&scheduled_event(TUESDAY)).unwrap();
    let out = seeker.run(&trigger, "dies", later).await.unwrap();
    assert_eq!(out.result, Delivery::Posted);
    assert_eq!(w.slack.channel().len(), 1);
}

#[tokio::test]
async fn manual_invoke_with_empty_object_seeks_now() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 3).await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let one = run(&w, &seeker, json!({}), "manual-1").await.unwrap();
    let two = run(&w, &seeker, json!({}), "manual-2").await.unwrap();
    // Lambda's retry of one async invocation keeps its request id: not posted again, and it
    // answers what the first attempt did (it posted).
    let retried = run(&w, &seeker, json!({}), "manual-1").await.unwrap();
    assert_eq!(
        (one.result, two.result, retried.result),
        (Delivery::Posted, Delivery::Posted, Delivery::Posted)
    );
    assert_eq!(retried.request_id, one.request_id);
    assert_eq!(w.slack.channel().len(), 2, "the retry posted again");
}

#[tokio::test]
async fn slack_429_is_retried_after_retry_after_and_posts_once() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    w.slack.plan([Reply::RateLimited {
        retry_after_secs: 1,
    }]);
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let started = std::time::Instant::now();
    let out = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    assert_eq!(out.result, Delivery::Posted);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(w.slack.received().len(), 2);
    assert_eq!(w.slack.channel().len(), 1);
}

#[tokio::test]
async fn slack_down_fails_the_invocation_and_the_retry_posts_the_same_message_once() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    w.slack.plan(std::iter::repeat_n(Reply::Status(500), 4));
    let seeker = w.seeker("embedding=train/embedding/", 100);
    // WHEN Slack answers 500 to every attempt
    let err = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap_err();
    assert!(matches!(err, SeekError::Slack(_)), "{err}");
    assert!(
        !err.to_string().contains(harness::slack::WEBHOOK_TOKEN),
        "{err}"
    );
    assert_eq!(w.slack.received().len(), 4, "bounded retries");
    assert!(w.slack.channel().is_empty());
    // The window is prepared, not posted, and its request is stored.
    let window = format!("window#scheduled#{TUESDAY}");
    assert_eq!(
        w.string(&window, "state").await.as_deref(),
        Some("prepared")
    );
    let prepared_request = w.string(&window, "request_id").await.unwrap();
    // Meanwhile more data arrives; Lambda retries the same event.
    w.put("train/embedding/", 150, 50).await;
    let out = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    assert_eq!(out.result, Delivery::Posted);
    assert_eq!(
        out.request_id.as_deref(),
        Some(prepared_request.as_str()),
        "the same request, not a recount"
    );
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].text().starts_with("150 new objects"),
        "{}",
        posts[0].text()
    );
    // A further retry posts nothing more.
    run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    assert_eq!(w.slack.channel().len(), 1);
    assert_eq!(w.string(&window, "state").await.as_deref(), Some("posted"));
}

#[tokio::test]
async fn slack_refusing_the_message_is_not_retried() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 1).await;
    w.slack.plan([Reply::Status(404)]);
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let err = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(w.slack.received().len(), 1);
}

#[tokio::test]
async fn a_newer_request_supersedes_the_pending_one() {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let first = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap();
    w.put("train/embedding/", 150, 30).await;
    let second = run(&w, &seeker, scheduled_event("2026-12-01T00:00:00Z"), "r2")
        .await
        .unwrap();
    assert_ne!(first.request_id, second.request_id);
    assert_eq!(
        second.text,
        "180 new objects in embedding. Would you like to train models?"
    );
    assert_eq!(
        w.string("latest_request", "request_id").await,
        second.request_id
    );
}

#[tokio::test]
async fn a_missing_bucket_fails_with_a_clear_error_and_posts_nothing() {
    let w = World::new().await;
    let mut env = w.seek_env("embedding=train/embedding/", 100);
    env.retain(|(k, _)| k != "DATA_BUCKET");
    env.push(("DATA_BUCKET".into(), "no-such-bucket-here".into()));
    let config = ct_shared::config::SeekConfig::from_env(
        &ct_shared::config::Env::from_pairs(env),
        &ct_shared::config::SecretBundle::default(),
    )
    .unwrap();
    let seeker = seek::LiveSeeker::live(config, &w.sdk).unwrap();
    let err = run(&w, &seeker, scheduled_event(TUESDAY), "r1")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("s3://no-such-bucket-here/train/embedding/"),
        "{err}"
    );
    assert!(w.slack.received().is_empty());
    assert!(
        harness::moto::scan(&w.sdk, &w.table).await.is_empty(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn a_bad_event_is_refused_before_anything_is_written() {
    let w = World::new().await;
    let seeker = w.seeker("embedding=train/embedding/", 100);
    let err = run(
        &w,
        &seeker,
        json!({"detail-type": "Object Created", "time": TUESDAY}),
        "r1",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SeekError::BadEvent(_)));
    assert!(w.slack.received().is_empty());
    assert!(harness::moto::scan(&w.sdk, &w.table).await.is_empty());
}
