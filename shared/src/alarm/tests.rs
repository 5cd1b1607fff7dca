use super::*;
use serde_json::json;

/// EventBridge's "CloudWatch Alarm State Change" for a single-metric alarm, shaped as AWS's
/// documentation shows it, on a model-quality metric.
pub fn eventbridge(state: &str) -> Value {
    json!({
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-30T17:04:40Z",
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:ct-quality-recall"],
        "detail": {
            "alarmName": "ct-quality-recall",
            "configuration": {
                "description": "recall@10 of the ranking model fell",
                "metrics": [{
                    "id": "30b6c6b2-a864-43a2-4877-c09a1afc3b87",
                    "metricStat": {
                        "metric": {
                            "dimensions": {"Model": "ranker"},
                            "name": "recall@10",
                            "namespace": "ML/Quality"
                        },
                        "period": 3600,
                        "stat": "Average"
                    },
                    "returnData": true
                }]
            },
            "previousState": {
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.9 (29/11/26 16:00:00)] was not less than the threshold (0.85) (minimum 1 datapoint for ALARM -> OK transition).",
                "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2026-11-29T17:04:40.985+0000\",\"startDate\":\"2026-11-29T16:00:00.000+0000\",\"statistic\":\"Average\",\"period\":3600,\"recentDatapoints\":[0.9],\"threshold\":0.85}",
                "timestamp": "2026-11-29T17:04:40.987+0000",
                "value": "OK"
            },
            "state": {
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.81 (30/11/26 16:00:00)] was less than the threshold (0.85) (minimum 1 datapoint for OK -> ALARM transition).",
                "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2026-11-30T17:04:40.985+0000\",\"startDate\":\"2026-11-30T16:00:00.000+0000\",\"statistic\":\"Average\",\"period\":3600,\"recentDatapoints\":[0.81],\"threshold\":0.85,\"evaluatedDatapoints\":[{\"timestamp\":\"2026-11-30T16:00:00.000+0000\",\"sampleCount\":1.0,\"value\":0.81}]}",
                "timestamp": "2026-11-30T17:04:40.989+0000",
                "value": state
            }
        }
    })
}

/// What an alarm whose action invokes the function directly sends.
pub fn direct_action(state: &str) -> Value {
    json!({
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ct-quality-ndcg",
        "accountId": "123456789012",
        "time": "2026-11-30T12:36:15.490+0000",
        "region": "us-east-1",
        "alarmData": {
            "alarmName": "ct-quality-ndcg",
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 2 out of the last 2 datapoints [0.70 (30/11/26 12:30:00), 0.72 (30/11/26 12:29:00)] were less than the threshold (0.75).",
                "reasonData": "{\"version\":\"1.0\",\"queryDate\":\"2026-11-30T12:36:15.479+0000\",\"statistic\":\"Average\",\"period\":60,\"recentDatapoints\":[0.72,0.7],\"threshold\":0.75}",
                "timestamp": "2026-11-30T12:36:15.490+0000"
            },
            "previousState": {"value": "OK", "reason": "Threshold Crossed", "timestamp": "2026-11-30T11:00:00.000+0000"},
            "configuration": {
                "description": "NDCG fell",
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": {"namespace": "ML/Quality", "name": "ndcg", "dimensions": {}},
                        "period": 60,
                        "stat": "Average"
                    },
                    "returnData": true
                }]
            }
        }
    })
}

#[test]
fn an_eventbridge_state_change_reads_as_its_signal() {
    let event = eventbridge("ALARM");
    assert!(is_alarm(&event));
    let a = parse(&event).unwrap();
    assert_eq!(a.name, "ct-quality-recall");
    assert_eq!(a.delivery, "event#c4c1c1c9-6542-e61b-6ef0-8c4d36933a92");
    assert!(a.asks());
    assert_eq!(
        a.metric.as_deref(),
        Some("ML/Quality recall@10 (Model=ranker)")
    );
    assert_eq!((a.value, a.threshold), (Some(0.81), Some(0.85)));
    let s = a.signal();
    assert!(
        s.reason.starts_with(
            "CloudWatch alarm `ct-quality-recall` is in ALARM (Threshold Crossed: 1 out of"
        ),
        "{}",
        s.reason
    );
    assert_eq!(s.source.as_deref(), Some("cloudwatch:ct-quality-recall"));
}

#[test]
fn a_direct_alarm_action_reads_the_same_way_keyed_by_arn_and_state_time() {
    let event = direct_action("ALARM");
    assert!(is_alarm(&event));
    let a = parse(&event).unwrap();
    assert_eq!(a.name, "ct-quality-ndcg");
    assert_eq!(
        a.delivery,
        "action#arn:aws:cloudwatch:us-east-1:123456789012:alarm:ct-quality-ndcg#2026-11-30T12:36:15.490+0000"
    );
    assert_eq!(a.metric.as_deref(), Some("ML/Quality ndcg"));
    assert_eq!(
        (a.value, a.threshold),
        (Some(0.7), Some(0.75)),
        "the last of recentDatapoints"
    );
}

#[test]
fn ok_and_insufficient_data_do_not_ask() {
    for state in ["OK", "INSUFFICIENT_DATA"] {
        assert!(!parse(&eventbridge(state)).unwrap().asks());
        assert!(!parse(&direct_action(state)).unwrap().asks());
    }
}

#[test]
fn malformed_alarm_events_name_what_is_missing() {
    let mut no_name = eventbridge("ALARM");
    no_name["detail"]
        .as_object_mut()
        .unwrap()
        .remove("alarmName");
    let mut no_state = direct_action("ALARM");
    no_state["alarmData"]
        .as_object_mut()
        .unwrap()
        .remove("state");
    let mut no_value = eventbridge("ALARM");
    no_value["detail"]["state"]
        .as_object_mut()
        .unwrap()
        .remove("value");
    let mut no_id = eventbridge("ALARM");
    no_id.as_object_mut().unwrap().remove("id");
    for (event, says) in [
        (no_name, "no alarm name"),
        (no_state, "no state"),
        (no_value, "no state value"),
        (no_id, "no delivery id"),
        (
            json!({"detail-type": DETAIL_TYPE, "detail": "x"}),
            "neither",
        ),
    ] {
        let e = parse(&event).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
    // Garbled reasonData is not an error: the question just has no value.
    let mut garbled = eventbridge("ALARM");
    garbled["detail"]["state"]["reasonData"] = json!("{not json");
    let a = parse(&garbled).unwrap();
    assert_eq!((a.value, a.threshold), (None, None));
}
