//! A model-quality alarm asks by itself: CloudWatch's alarm state changes, in both shapes it
//! sends them, through the real seek binary behind a Runtime API stand-in, against moto and a
//! Slack stand-in; and the template's rule that routes them, read from the template itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::World;
use harness::actions_api::send;
use harness::events::{alarm_action, alarm_state_change};
use harness::runtime::Function;
use harness::slack_events::{block_actions, click};
use serde_json::Value;

const DATASETS: &str = "embedding=train/embedding/";

async fn seek(w: &World) -> Function {
    Function::start("seek", w.seek_env(DATASETS, 100)).await
}

/// The channel's questions (messages with Train!/Nope!).
fn questions(w: &World) -> Vec<Value> {
    w.slack
        .channel()
        .into_iter()
        .map(|p| p.body)
        .filter(|b| b.to_string().contains("\"action_id\":\"train\""))
        .collect()
}

fn metric_lines(f: &Function) -> Vec<harness::emf::Sample> {
    let lines = f.logs.lock().unwrap().clone();
    harness::emf::samples(&lines)
}

#[tokio::test]
async fn an_alarm_in_alarm_asks_once_naming_the_alarm_its_value_and_threshold() {
    // GIVEN a count of 40 objects stored, and the seek binary as deployed
    let w = World::new().await;
    w.put("train/embedding/", 0, 40).await;
    let f = seek(&w).await;
    f.invoke("count", serde_json::json!({})).await.unwrap();
    w.slack.clear();
    // WHEN CloudWatch's alarm goes to ALARM, delivered by EventBridge
    let event = alarm_state_change(
        "ct-quality-recall",
        "ALARM",
        "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        0.81,
        0.85,
    );
    let answer = f.invoke("d1", event.clone()).await.unwrap();
    // THEN one question, led by the alarm, its value and threshold, over the stored counts
    assert_eq!(answer["result"], "asked", "{answer}");
    let asked = questions(&w);
    assert_eq!(asked.len(), 1);
    let text = asked[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("CloudWatch alarm `ct-quality-recall` is in ALARM (Threshold Crossed:")
            && text.contains(": ML/Quality recall@10 (Model=ranker) is 0.81, below 0.85 (from cloudwatch:ct-quality-recall)")
            && text.ends_with("Would you like to train models?"),
        "{text}"
    );
    assert!(asked[0].to_string().contains("40 objects"), "{}", asked[0]);
    ct_shared::slack::blocks::check(&asked[0]).unwrap();
    let id = answer["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.string(&format!("request#{id}"), "request_kind")
            .await
            .as_deref(),
        Some("quality")
    );
    assert_eq!(
        w.string("latest_request", "request_id").await,
        Some(id.clone())
    );
    // WHEN the same delivery comes again (EventBridge's retry, Lambda's retry)
    let again = f.invoke("d1-retry", event.clone()).await.unwrap();
    let third = f.invoke("d1-third", event).await.unwrap();
    // THEN nothing more is posted
    assert_eq!(again["result"], "duplicate", "{again}");
    assert_eq!(third["result"], "duplicate");
    assert_eq!(questions(&w).len(), 1);
    // ... and the question is approved like any other: Train! moves the baseline
    let (status, _) = send(
        &w.actions(),
        click(&block_actions(
            "train",
            &id,
            ("U0ANN", "ann"),
            &w.slack.response_url("m"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(w.number("dataset#embedding", "trained").await, Some(40));
    let samples = metric_lines(&f);
    assert_eq!(
        harness::emf::total(&samples, "QualityAlarm", &[("Outcome", "asked")]),
        Some(1.0)
    );
    assert_eq!(
        harness::emf::total(&samples, "QualityAlarm", &[("Outcome", "duplicate")]),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_direct_alarm_action_asks_too_and_a_pending_question_holds_its_alarm_off() {
    let w = World::new().await;
    let f = seek(&w).await;
    // WHEN an alarm's own action invokes seek
    let first = alarm_action(
        "ct-quality-ndcg",
        "ALARM",
        "2026-11-30T12:36:15.490+0000",
        0.7,
        0.75,
    );
    let answer = f.invoke("a1", first.clone()).await.unwrap();
    assert_eq!(answer["result"], "asked", "{answer}");
    let asked = questions(&w);
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0]["text"]
            .as_str()
            .unwrap()
            .contains("ML/Quality ndcg (Model=ranker) is 0.7, below 0.75"),
        "{}",
        asked[0]
    );
    let pending = answer["request_id"].as_str().unwrap().to_owned();
    // WHEN the alarm fires again (a new state change) while its question is pending
    let later = alarm_action(
        "ct-quality-ndcg",
        "ALARM",
        "2026-11-30T13:36:15.490+0000",
        0.68,
        0.75,
    );
    let held = f.invoke("a2", later).await.unwrap();
    // THEN nothing is posted, and it says which question holds it off; a metric counts it
    assert_eq!(held["result"], "held_off", "{held}");
    assert_eq!(held["request_id"], pending.as_str());
    assert_eq!(questions(&w).len(), 1);
    assert_eq!(
        harness::emf::total(
            &metric_lines(&f),
            "QualityAlarm",
            &[("Outcome", "held_off")]
        ),
        Some(1.0)
    );
    let logs = f.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("a question from this alarm is still pending"),
        "{logs}"
    );
    // ... while another alarm still asks (and supersedes the pending question)
    let other = alarm_state_change("ct-quality-recall", "ALARM", "e-2", 0.8, 0.85);
    assert_eq!(f.invoke("a3", other).await.unwrap()["result"], "asked");
    assert_eq!(questions(&w).len(), 2);
    // ... and once the pending question is decided, the first alarm asks again
    let newest = w.string("latest_request", "request_id").await.unwrap();
    let (status, _) = send(
        &w.actions(),
        click(&block_actions(
            "nope",
            &newest,
            ("U0ANN", "ann"),
            &w.slack.response_url("n"),
        )),
    )
    .await;
    assert_eq!(status, 200);
    let again = alarm_action(
        "ct-quality-ndcg",
        "ALARM",
        "2026-11-30T14:36:15.490+0000",
        0.66,
        0.75,
    );
    assert_eq!(f.invoke("a4", again).await.unwrap()["result"], "asked");
}

/// An expired question holds its alarm off no longer: once `REQUEST_TTL` has passed, the
/// alarm's next ALARM asks again, before the sweep and after it.
#[tokio::test]
async fn an_expired_question_no_longer_holds_its_alarm_off() {
    let w = World::new().await;
    let mut env = w.seek_env(DATASETS, 100);
    env.push(("REQUEST_TTL".into(), "2s".into()));
    env.push(("REMIND_AFTER".into(), "0".into()));
    let f = Function::start("seek", env).await;
    let fire = |at: &str| alarm_action("ct-quality-ndcg", "ALARM", at, 0.7, 0.75);
    let first = f
        .invoke("b1", fire("2026-11-30T12:36:15.490+0000"))
        .await
        .unwrap();
    assert_eq!(first["result"], "asked", "{first}");
    // WHEN the TTL passes with nobody deciding, and the alarm fires again before any sweep
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let before_sweep = f
        .invoke("b2", fire("2026-11-30T13:36:15.490+0000"))
        .await
        .unwrap();
    // THEN it asks again
    assert_eq!(before_sweep["result"], "asked", "{before_sweep}");
    assert_ne!(before_sweep["request_id"], first["request_id"]);
    // AND once the sweep has expired that one too, the next ALARM asks again
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let beat = serde_json::json!({"detail-type": "Heartbeat", "source": "aws.scheduler", "time": "2026-11-30T14:00:00Z"});
    f.invoke("b3", beat).await.unwrap();
    let expired = before_sweep["request_id"].as_str().unwrap();
    assert_eq!(
        w.string(&format!("request#{expired}"), "status")
            .await
            .as_deref(),
        Some("expired"),
        "the sweep expired {expired}"
    );
    let after_sweep = f
        .invoke("b4", fire("2026-11-30T14:36:15.490+0000"))
        .await
        .unwrap();
    assert_eq!(after_sweep["result"], "asked", "{after_sweep}");
    assert_eq!(questions(&w).len(), 3);
}

#[tokio::test]
async fn ok_and_insufficient_data_post_nothing_and_succeed() {
    let w = World::new().await;
    let f = seek(&w).await;
    for (i, state) in ["OK", "INSUFFICIENT_DATA"].iter().enumerate() {
        let eb = f
            .invoke(
                &format!("ok{i}"),
                alarm_state_change("ct-quality-recall", state, &format!("ok-{i}"), 0.9, 0.85),
            )
            .await
            .unwrap();
        assert_eq!(eb["result"], "not_alarm", "{eb}");
        let direct = f
            .invoke(
                &format!("okd{i}"),
                alarm_action(
                    "ct-quality-ndcg",
                    state,
                    "2026-11-30T12:00:00.000+0000",
                    0.9,
                    0.75,
                ),
            )
            .await
            .unwrap();
        assert_eq!(direct["result"], "not_alarm");
    }
    assert!(w.slack.received().is_empty());
    assert!(
        harness::moto::scan(&w.sdk, &w.table).await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn malformed_alarm_events_fail_naming_what_is_missing_and_write_and_post_nothing() {
    let w = World::new().await;
    let f = seek(&w).await;
    let good = alarm_state_change("ct-quality-recall", "ALARM", "m-1", 0.81, 0.85);
    let mut no_name = good.clone();
    no_name["detail"]
        .as_object_mut()
        .unwrap()
        .remove("alarmName");
    let mut no_state = good.clone();
    no_state["detail"].as_object_mut().unwrap().remove("state");
    let mut no_data = alarm_action(
        "ct-quality-ndcg",
        "ALARM",
        "2026-11-30T12:00:00.000+0000",
        0.7,
        0.75,
    );
    no_data["alarmData"] = Value::String("garbled".into());
    for (i, (event, says)) in [
        (no_name, "no alarm name"),
        (no_state, "no state"),
        (no_data, "neither an object"),
    ]
    .into_iter()
    .enumerate()
    {
        let err = f.invoke(&format!("bad{i}"), event).await.unwrap_err();
        assert_eq!(err["errorType"], "seek.BadEvent", "{err}");
        let message = err["errorMessage"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert!(w.slack.received().is_empty());
    assert!(
        harness::moto::scan(&w.sdk, &w.table).await.is_empty(),
        "nothing written"
    );
}

#[test]
fn the_template_routes_quality_alarms_to_seek_with_retries_and_the_failed_seeks_queue() {
    let text = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let t: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let p = &t["Parameters"]["QualityAlarmPrefix"];
    assert_eq!(p["Default"].as_str(), Some("ct-quality-"));
    let rule = &t["Resources"]["QualityAlarmRule"];
    assert_eq!(rule["Type"].as_str(), Some("AWS::Events::Rule"));
    assert_eq!(
        rule["Condition"].as_str(),
        Some("HasQualityAlarmPrefix"),
        "empty means no rule"
    );
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(pattern["source"][0].as_str(), Some("aws.cloudwatch"));
    assert_eq!(
        pattern["detail-type"][0].as_str(),
        Some("CloudWatch Alarm State Change")
    );
    assert_eq!(
        pattern["detail"]["state"]["value"][0].as_str(),
        Some("ALARM")
    );
    let prefix = format!("{:?}", pattern["detail"]["alarmName"][0]["prefix"]);
    assert!(prefix.contains("QualityAlarmPrefix"), "{prefix}");
    let target = &rule["Properties"]["Targets"][0];
    assert!(
        format!("{:?}", target["Arn"]).contains("SeekFunction"),
        "{target:?}"
    );
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(format!("{:?}", target["DeadLetterConfig"]["Arn"]).contains("FailedSeeksQueue"));
    let permission = &t["Resources"]["QualityAlarmPermission"]["Properties"];
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(permission["Action"].as_str(), Some("lambda:InvokeFunction"));
    assert!(format!("{:?}", permission["SourceArn"]).contains("QualityAlarmRule"));
    assert!(format!("{:?}", permission["FunctionName"]).contains("SeekFunction"));
    // EventBridge may send the rule's failures to the queue, and only this rule's.
    let policy = &t["Resources"]["FailedSeeksQueuePolicy"]["Properties"]["PolicyDocument"];
    let statement = format!("{:?}", policy["Statement"]);
    for needle in [
        "events.amazonaws.com",
        "sqs:SendMessage",
        "QualityAlarmRule",
    ] {
        assert!(statement.contains(needle), "{needle} not in {statement}");
    }
}
