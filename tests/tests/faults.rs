//! Lost DynamoDB answers, throttling and 5xx, through the real binaries: seek and actions run
//! as Lambda runs them, their DynamoDB calls going through the fault-injecting proxy
//! (`AWS_ENDPOINT_URL_DYNAMODB`) while S3 and Secrets Manager talk to moto directly.
//!
//! Each test asserts what a person sees: one weekly post, never two; one decision, told to its
//! clicker as theirs; the Kubeflow notice exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::dynamo_proxy::{DynamoProxy, Fault};
use harness::events::scheduled_event;
use harness::runtime::Function;
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::Value;
use std::time::{Duration, Instant};

const WEEK: &str = "2026-11-24T00:00:00Z";

/// A function binary whose DynamoDB calls go through `proxy`.
struct Running;

impl Running {
    async fn start(name: &str, mut extra: Vec<(String, String)>, proxy: &DynamoProxy) -> Function {
        extra.push(proxy.env());
        Function::start(name, extra).await
    }
}

/// Delivers the weekly event as Lambda does: the same request id again after an error, up to
/// three times. Returns every outcome.
async fn deliver(seek: &Function, request_id: &str) -> Vec<Result<Value, Value>> {
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let outcome = seek.invoke(request_id, scheduled_event(WEEK)).await;
        let done = outcome.is_ok();
        outcomes.push(outcome);
        if done {
            break;
        }
    }
    outcomes
}

/// seek with `fault` on the `pass`+1-th..`pass`+`n`-th call of `op`: one post, marked posted,
/// and a second delivery of the window finds it posted.
async fn seek_survives(op: &str, pass: usize, fault: Fault, n: usize) -> Vec<Result<Value, Value>> {
    let w = World::new().await;
    w.put("train/embedding/", 0, 120).await;
    let proxy = DynamoProxy::in_front_of_moto().await;
    let seek = Running::start(
        "seek",
        w.seek_env("embedding=train/embedding/", 100),
        &proxy,
    )
    .await;
    proxy.fail_after(op, pass, fault, n);
    let outcomes = deliver(&seek, "delivery-1").await;
    let case = format!("{op} #{} {fault:?} x{n}", pass + 1);
    assert_eq!(
        proxy.injected(),
        n,
        "{case}: the faults were not all injected"
    );
    let last = outcomes.last().unwrap().clone();
    let last = last.unwrap_or_else(|e| panic!("{case}: still failing after retries: {e}"));
    assert_eq!(last["result"], "posted", "{case}: {last}");
    let again = seek.invoke("delivery-2", scheduled_event(WEEK)).await;
    assert_eq!(again.unwrap()["result"], "duplicate", "{case}");
    let posts = w.slack.channel();
    assert_eq!(posts.len(), 1, "{case}: posted {} times", posts.len());
    assert_eq!(
        posts[0].text(),
        "120 new objects in embedding. Would you like to train models?"
    );
    let window = format!("window#scheduled#{WEEK}");
    assert_eq!(
        w.string(&window, "state").await.as_deref(),
        Some("posted"),
        "{case}"
    );
    assert_eq!(w.number("dataset#embedding", "seeked").await, Some(120));
    outcomes
}

#[tokio::test]
async fn seek_prepares_once_when_the_transaction_answer_is_lost_throttled_or_500() {
    for fault in Fault::ALL {
        let outcomes = seek_survives("TransactWriteItems", 0, fault, 1).await;
        assert_eq!(outcomes.len(), 1, "{fault:?}: the SDK's retry should do");
    }
    // The answer lost twice: the retry fails its own condition, then recognises its write.
    seek_survives("TransactWriteItems", 0, Fault::CommitThenLose, 2).await;
}

#[tokio::test]
async fn seek_takes_its_lease_once_when_the_answer_is_lost_throttled_or_500() {
    for fault in Fault::ALL {
        let outcomes = seek_survives("UpdateItem", 0, fault, 1).await;
        assert_eq!(outcomes.len(), 1, "{fault:?}: {outcomes:?}");
    }
    seek_survives("UpdateItem", 0, Fault::CommitThenLose, 3).await;
}

#[tokio::test]
async fn seek_marks_posted_once_when_the_answer_is_lost_throttled_or_500() {
    for fault in Fault::ALL {
        let outcomes = seek_survives("UpdateItem", 1, fault, 1).await;
        assert_eq!(outcomes.len(), 1, "{fault:?}: {outcomes:?}");
    }
    seek_survives("UpdateItem", 1, Fault::CommitThenLose, 3).await;
}

#[tokio::test]
async fn seek_names_the_operation_and_lambdas_retry_completes_the_window() {
    // GIVEN the lease throttled past every SDK retry
    let outcomes = seek_survives("UpdateItem", 0, Fault::Throttle, 6).await;
    // THEN the first delivery failed naming the operation, and its retry posted (once)
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let err = outcomes[0].clone().unwrap_err();
    assert_eq!(err["errorType"], "seek.StateStoreFailed", "{err}");
    let message = err["errorMessage"].as_str().unwrap();
    assert!(message.contains("lease window"), "{message}");
    // AND every answer to the prepare lost, past the SDK's retries: the delivery reads its own
    // window back and goes on to post it, without waiting for Lambda's retry
    let outcomes = seek_survives("TransactWriteItems", 0, Fault::CommitThenLose, 6).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let counted = outcomes[0].clone().unwrap()["counted"].clone();
    assert_eq!(
        counted[0]["objects"], 120,
        "counted by this delivery: {counted}"
    );
}

/// A world with this week's request posted, and the actions binary behind the proxy.
async fn asked() -> (World, DynamoProxy, Function, String) {
    let w = World::new().await;
    w.put("train/embedding/", 0, 150).await;
    let id = w.weekly_seek(WEEK).await.request_id.unwrap();
    w.slack.clear();
    let proxy = DynamoProxy::in_front_of_moto().await;
    let actions = Running::start("actions", w.actions_env(), &proxy).await;
    (w, proxy, actions, id)
}

/// ann presses Train! (`press` is Slack's `action_ts`); returns the HTTP status and how long
/// actions took to answer.
async fn press(actions: &Function, w: &World, id: &str, press: &str) -> (u64, Duration) {
    let mut payload = block_actions("train", id, ("U0ANN", "ann"), &w.slack.response_url("m"));
    payload["actions"][0]["action_ts"] = press.into();
    let event = signed_event(
        SIGNING_SECRET,
        ct_shared::Timestamp::now().secs(),
        &form(&payload),
        "application/x-www-form-urlencoded",
    );
    let started = Instant::now();
    let answer = actions.invoke(&format!("click-{press}"), event).await;
    let took = started.elapsed();
    let answer = answer.expect("actions answers HTTP");
    (answer["statusCode"].as_u64().unwrap(), took)
}

fn kubeflow_notices(w: &World) -> usize {
    w.slack
        .channel()
        .iter()
        .filter(|p| p.text().starts_with("Here is Kubeflow URL"))
        .count()
}

async fn assert_approved_by_ann(w: &World, id: &str, case: &str) {
    let told = w.slack.responses("m");
    assert_eq!(told.len(), 1, "{case}: {told:?}");
    assert_eq!(told[0].body["replace_original"], true, "{case}: {told:?}");
    assert!(
        told[0].text().ends_with("Approved by <@U0ANN>"),
        "{case}: told {:?}",
        told[0].text()
    );
    assert_eq!(kubeflow_notices(w), 1, "{case}");
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved"),
        "{case}"
    );
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
}

#[tokio::test]
async fn a_decision_whose_answer_is_lost_is_reported_to_its_clicker_as_theirs() {
    for (fault, n) in [
        (Fault::CommitThenLose, 1),
        (Fault::CommitThenLose, 2),
        (Fault::Throttle, 1),
        (Fault::ProvisionedThroughput, 2),
        (Fault::ServerError, 1),
        // Every answer lost, past the SDK's retries: the read-back still finds the click's own
        // decision.
        (Fault::CommitThenLose, 10),
    ] {
        let case = format!("{fault:?} x{n}");
        let (w, proxy, actions, id) = asked().await;
        proxy.fail_next("TransactWriteItems", fault, n);
        let (status, took) = press(&actions, &w, &id, "1795892640.000200").await;
        assert_eq!(status, 200, "{case}");
        assert!(took < Duration::from_secs(3), "{case}: took {took:?}");
        assert_eq!(proxy.injected(), n.min(3), "{case}");
        proxy.heal();
        assert_approved_by_ann(&w, &id, &case).await;
        // ann presses again: a second press is told it is already decided, nothing reposted
        let (status, _) = press(&actions, &w, &id, "1795892645.000300").await;
        assert_eq!(status, 200);
        let told = w.slack.responses("m");
        assert_eq!(told.len(), 2);
        assert!(told[1].text().starts_with("Already approved by <@U0ANN>"));
        assert_eq!(kubeflow_notices(&w), 1, "{case}: notice twice");
    }
}

#[tokio::test]
async fn a_throttled_store_answers_503_within_3_seconds_and_decides_nothing() {
    for fault in [
        Fault::Throttle,
        Fault::ProvisionedThroughput,
        Fault::ServerError,
    ] {
        let (w, proxy, actions, id) = asked().await;
        proxy.fail_next("TransactWriteItems", fault, 50);
        proxy.fail_next("GetItem", fault, 2);
        let (status, took) = press(&actions, &w, &id, "1795892640.000200").await;
        assert_eq!(status, 503, "{fault:?}");
        assert!(took < Duration::from_secs(3), "{fault:?}: took {took:?}");
        assert!(
            w.slack.received().is_empty(),
            "{fault:?}: nothing half-done"
        );
        assert_eq!(
            w.string(&format!("request#{id}"), "status")
                .await
                .as_deref(),
            Some("pending")
        );
        assert_eq!(w.number("dataset#embedding", "trained").await, Some(0));
        // WHEN DynamoDB recovers and ann presses again THEN her decision is recorded once
        proxy.heal();
        let (status, _) = press(&actions, &w, &id, "1795892650.000400").await;
        assert_eq!(status, 200);
        assert_approved_by_ann(&w, &id, &format!("{fault:?} then healed")).await;
    }
}

/// The decision committed, then DynamoDB went throttled or slow before actions heard back:
/// whether the click's own decision is found by a re-read (`GetItem` throttled: the store's own
/// read-back fails fast, and decide reads the request again) or, after the decide budget ran
/// out, by actions' bounded read-back (`GetItem` slow), ann is told it is her decision, and the
/// Kubeflow notice follows once, within Slack's 3 s.
#[tokio::test]
async fn a_decision_whose_answer_is_lost_while_reads_stall_is_still_the_clickers_own() {
    for (reads, found_by) in [
        (Fault::Throttle, "found this click's own decision"),
        (
            Fault::Slow,
            "the decision committed though its answer was lost; carrying on",
        ),
    ] {
        let case = format!("commit lost, then GetItem {reads:?}");
        let (w, proxy, actions, id) = asked().await;
        proxy.fail_next("TransactWriteItems", Fault::CommitThenLose, 1);
        // decide reads the request, the latest pointer and the dataset first; then the reads
        // after the lost answer stall.
        let stalls = if reads == Fault::Slow { 2 } else { 3 };
        proxy.fail_after("GetItem", 3, reads, stalls);
        let (status, took) = press(&actions, &w, &id, "1795892640.000200").await;
        assert_eq!(status, 200, "{case}");
        assert!(took < Duration::from_secs(3), "{case}: took {took:?}");
        let calls = proxy.calls();
        let commit = calls
            .iter()
            .position(|c| c.op == "TransactWriteItems")
            .unwrap();
        let first_stall = calls.iter().position(|c| c.fault == Some(reads)).unwrap();
        assert!(
            commit < first_stall,
            "{case}: the reads stalled after the commit"
        );
        proxy.heal();
        assert_approved_by_ann(&w, &id, &case).await;
        let logs = actions.logs.lock().unwrap().clone();
        assert!(
            logs.iter().any(|l| l.contains(found_by)),
            "{case}: expected {found_by:?} in {logs:#?}"
        );
    }
}

/// The text of the answer ann's latest press got on its response_url.
fn last_told(w: &World) -> String {
    w.slack
        .responses("m")
        .last()
        .map(|p| p.text().to_owned())
        .unwrap_or_default()
}

const NOTICE_TAKEN_OVER: &str =
    "Its Kubeflow notice had not been posted, so it is being posted now.";

/// After a Train! whose notice was not posted (`lost` says how), ann presses again: at once
/// (the deciding click still owns the notice, nothing happens), then after its 10 s (the notice
/// is posted, once, and she is told so), then once more (nothing is posted again).
async fn later_presses_post_the_missing_notice_once(
    w: &World,
    actions: &Function,
    id: &str,
    lost: &str,
) {
    assert_eq!(kubeflow_notices(w), 0, "{lost}: no notice yet");
    let (status, _) = press(actions, w, id, "1795892641.000200").await;
    assert_eq!(status, 200, "{lost}");
    assert!(
        last_told(w).starts_with("Already approved by <@U0ANN>")
            && !last_told(w).contains(NOTICE_TAKEN_OVER),
        "{lost}: within the deciding click's time: {}",
        last_told(w)
    );
    assert_eq!(
        kubeflow_notices(w),
        0,
        "{lost}: the deciding click still owns it"
    );

    tokio::time::sleep(Duration::from_secs(11)).await;
    let (status, took) = press(actions, w, id, "1795892652.000200").await;
    assert_eq!(status, 200, "{lost}");
    assert!(took < Duration::from_secs(3), "{lost}: took {took:?}");
    assert!(
        last_told(w).starts_with("Already approved by <@U0ANN>")
            && last_told(w).ends_with(NOTICE_TAKEN_OVER),
        "{lost}: {}",
        last_told(w)
    );
    assert_eq!(
        kubeflow_notices(w),
        1,
        "{lost}: the notice, posted by the later press"
    );
    assert!(
        w.number(&format!("request#{id}"), "notice_posted_at")
            .await
            .is_some(),
        "{lost}: the notice is noted as posted"
    );

    let (status, _) = press(actions, w, id, "1795892653.000200").await;
    assert_eq!(status, 200, "{lost}");
    assert!(!last_told(w).contains(NOTICE_TAKEN_OVER), "{lost}");
    assert_eq!(kubeflow_notices(w), 1, "{lost}: never twice");
}

/// Without Kubeflow Pipelines, Train!'s outcome is the channel's notice. The decision
/// committed, but every answer after it was lost past actions' read-back: ann was answered 503
/// and no notice was posted. A later press posts it, once.
#[tokio::test]
async fn a_press_on_an_approval_whose_notice_was_never_posted_posts_it_once() {
    let (w, proxy, actions, id) = asked().await;
    // GIVEN Train! commits unheard, and every read after it is slow past the budgets
    proxy.fail_next("TransactWriteItems", Fault::CommitThenLose, 1);
    proxy.fail_after("GetItem", 3, Fault::Slow, 50);
    let (status, _) = press(&actions, &w, &id, "1795892640.000200").await;
    assert_eq!(status, 503);
    proxy.heal();
    assert_eq!(
        w.string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved"),
        "the decision committed"
    );
    later_presses_post_the_missing_notice_once(&w, &actions, &id, "answers lost").await;
}

/// The decision is recorded, but Slack fails both of the click's posts (the replaced message
/// and the channel's notice, each tried twice): a later press posts the notice, once.
#[tokio::test]
async fn a_notice_slack_failed_at_the_click_is_posted_by_a_later_press() {
    let (w, _proxy, actions, id) = asked().await;
    w.slack
        .plan(std::iter::repeat_n(harness::slack::Reply::Status(500), 4));
    let (status, _) = press(&actions, &w, &id, "1795892640.000200").await;
    assert_eq!(status, 200, "the decision stands");
    assert_eq!(w.slack.received().len(), 4, "{:?}", w.slack.received());
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(150));
    later_presses_post_the_missing_notice_once(&w, &actions, &id, "slack failed").await;
}

/// The later press's two writes, taking the notice over (`UpdateItem` 0) and noting it posted
/// (`UpdateItem` 1), each under every fault, and with the answer lost past every retry: the
/// notice is posted once, and a press after that posts nothing more. The cases run four at a
/// time: all of them at once against the one-request-at-a-time moto could outlast a press's 3 s.
#[tokio::test]
async fn taking_over_a_notice_posts_it_once_under_every_fault() {
    let mut cases: Vec<(usize, Fault, usize)> = (0..2)
        .flat_map(|pass| Fault::ALL.map(|f| (pass, f, 1)))
        .collect();
    cases.extend([
        (0, Fault::CommitThenLose, 10),
        (1, Fault::CommitThenLose, 10),
    ]);
    let runs = cases.into_iter().map(|(pass, fault, n)| async move {
        let case = format!("UpdateItem after {pass}: {fault:?} x{n}");
        let (w, proxy, actions, id) = asked().await;
        // GIVEN a Train! whose notice Slack failed
        w.slack
            .plan(std::iter::repeat_n(harness::slack::Reply::Status(500), 4));
        assert_eq!(press(&actions, &w, &id, "1795892640.000200").await.0, 200);
        assert_eq!(kubeflow_notices(&w), 0, "{case}");
        // WHEN ann presses again after the deciding click's time, and the write fails
        tokio::time::sleep(Duration::from_secs(11)).await;
        proxy.fail_after("UpdateItem", pass, fault, n);
        let (status, took) = press(&actions, &w, &id, "1795892652.000200").await;
        assert_eq!(status, 200, "{case}");
        assert!(took < Duration::from_secs(3), "{case}: took {took:?}");
        assert!(proxy.injected() > 0, "{case}: no fault was injected");
        proxy.heal();
        // THEN the notice is posted once, and she is told so
        assert_eq!(kubeflow_notices(&w), 1, "{case}");
        assert!(
            last_told(&w).ends_with(NOTICE_TAKEN_OVER),
            "{case}: {}",
            last_told(&w)
        );
        // AND a press once that press's time has passed posts nothing more
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(press(&actions, &w, &id, "1795892663.000200").await.0, 200);
        assert!(
            !last_told(&w).contains(NOTICE_TAKEN_OVER),
            "{case}: {}",
            last_told(&w)
        );
        assert_eq!(kubeflow_notices(&w), 1, "{case}: never twice");
    });
    use futures_util::StreamExt;
    futures_util::stream::iter(runs)
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// A request approved before notices were recorded (no `notice_by`): nothing is owed, and a
/// later press posts nothing, however long after.
#[tokio::test]
async fn a_press_on_an_approval_from_before_notices_were_recorded_posts_nothing() {
    let (w, _proxy, actions, id) = asked().await;
    let (status, _) = press(&actions, &w, &id, "1795892640.000200").await;
    assert_eq!(status, 200);
    assert_eq!(kubeflow_notices(&w), 1);
    assert!(
        w.number(&format!("request#{id}"), "notice_posted_at")
            .await
            .is_some(),
        "the deciding click notes its notice posted"
    );
    // Make the item look as an older version wrote it.
    aws_sdk_dynamodb::Client::new(&w.sdk)
        .update_item()
        .table_name(&w.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("request#{id}")),
        )
        .update_expression("REMOVE notice_by, notice_until, notice_posted_at")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (status, _) = press(&actions, &w, &id, "1795892652.000200").await;
    assert_eq!(status, 200);
    assert!(last_told(&w).starts_with("Already approved by <@U0ANN>"));
    assert!(
        !last_told(&w).contains(NOTICE_TAKEN_OVER),
        "{}",
        last_told(&w)
    );
    assert_eq!(kubeflow_notices(&w), 1);
}

/// `/ask` with an `Idempotency-Key` through the real send binary: returns the HTTP status, the
/// body and whether it was a replay.
async fn ask_with_key(send: &Function, n: usize, key: &str) -> (u64, Value, bool) {
    let body =
        r#"{"reason":"Model quality dropped","metric":"recall@10","value":0.81,"threshold":0.85}"#;
    let headers = [
        ("content-type", "application/json"),
        ("authorization", "Bearer ask-token"),
        ("idempotency-key", key),
    ];
    let event =
        harness::events::function_url_event("POST", "/ask", &headers, body.as_bytes(), false);
    let answer = send
        .invoke(&format!("ask-{n}"), event)
        .await
        .expect("send answers HTTP");
    let replayed = answer["headers"].as_object().is_some_and(|h| {
        h.keys()
            .any(|k| k.eq_ignore_ascii_case("idempotent-replayed"))
    });
    let body = answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (answer["statusCode"].as_u64().unwrap(), body, replayed)
}

/// Round 2's writes on send: the idempotency claim (`PutItem`), the ask's transaction and the
/// stored answer (`UpdateItem`), each under every fault once, and with the answer lost past
/// the SDK's retries too. The question is posted once, and a retry of the same key replays the
/// first answer.
#[tokio::test]
async fn an_ask_with_a_key_posts_once_when_its_writes_lose_their_answers() {
    let ops = ["PutItem", "TransactWriteItems", "UpdateItem"];
    let mut cases: Vec<(&str, Fault, usize)> = ops
        .iter()
        .flat_map(|op| Fault::ALL.map(|f| (*op, f, 1)))
        .collect();
    cases.extend([
        ("PutItem", Fault::CommitThenLose, 10),
        ("TransactWriteItems", Fault::CommitThenLose, 10),
        ("UpdateItem", Fault::CommitThenLose, 2),
    ]);
    for (op, fault, n) in cases {
        let case = format!("{op} {fault:?} x{n}");
        let w = World::new().await;
        w.put("train/embedding/", 0, 150).await;
        w.weekly_seek(WEEK).await;
        w.slack.clear();
        let proxy = DynamoProxy::in_front_of_moto().await;
        let env = vec![
            ("STATE_TABLE".to_owned(), w.table.clone()),
            ("SLACK_WEBHOOK_URL".to_owned(), w.slack.webhook_url()),
            ("SEND_URL_AUTH".to_owned(), "NONE".to_owned()),
            ("SEND_TOKEN".to_owned(), "ask-token".to_owned()),
        ];
        let send = Running::start("send", env, &proxy).await;
        proxy.fail_next(op, fault, n);
        let (status, first, _) = ask_with_key(&send, 1, "eval-42").await;
        assert_eq!(status, 201, "{case}: {first}");
        assert!(proxy.injected() > 0, "{case}: no fault was injected");
        proxy.heal();
        let asked: Vec<String> = w
            .slack
            .channel()
            .iter()
            .map(|p| p.text().to_owned())
            .collect();
        assert_eq!(asked.len(), 1, "{case}: {asked:?}");
        assert!(asked[0].starts_with("Model quality dropped"), "{case}");
        let id = first["request_id"].as_str().unwrap().to_owned();
        assert_eq!(
            w.string("latest_request", "request_id").await.as_deref(),
            Some(id.as_str()),
            "{case}"
        );
        // The client's retry of the same call: the same answer, nothing posted again.
        let (status, again, replayed) = ask_with_key(&send, 2, "eval-42").await;
        assert_eq!((status, replayed), (201, true), "{case}: {again}");
        assert_eq!(again["request_id"], first["request_id"], "{case}");
        assert_eq!(w.slack.channel().len(), 1, "{case}: posted twice");
    }
}
