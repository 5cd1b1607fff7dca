//! seek's events: any JSON, and EventBridge's scheduled, heartbeat and alarm events with fields
//! missing, emptied or of the wrong type, are a typed trigger or `BadEvent`; never a panic nor
//! another error.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Value, json};

#[derive(Debug, Arbitrary)]
struct Mutation {
    path: u8,
    to: u8,
    text: String,
}

fn base(kind: u8) -> Value {
    match kind % 4 {
        0 => {
            json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
                    "time": "2026-11-24T00:00:00Z", "detail": {}})
        }
        1 => {
            json!({"detail-type": "Heartbeat", "source": "aws.scheduler", "time": "2026-11-24T06:00:00Z"})
        }
        2 => {
            json!({"version": "0", "id": "e2", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
                    "detail": {"alarmName": "ct-quality-x", "state": {"value": "ALARM", "reason": "r",
                    "reasonData": "{\"recentDatapoints\":[0.8],\"threshold\":0.85}", "timestamp": "2026-11-30T17:04:40.989+0000"},
                    "configuration": {"metrics": [{"id": "m", "metricStat": {"metric": {"namespace": "n", "name": "m", "dimensions": {"a": "b"}}}, "returnData": true}]}}})
        }
        _ => {
            json!({"source": "aws.cloudwatch", "alarmArn": "arn:aws:cloudwatch:us-east-1:1:alarm:a", "time": "t",
                    "alarmData": {"alarmName": "a", "state": {"value": "ALARM", "timestamp": "t",
                    "reasonData": "{\"evaluatedDatapoints\":[{\"timestamp\":\"t\",\"value\":1}]}"}}})
        }
    }
}

/// Every object path of the event, in order.
fn paths(v: &Value, at: &mut Vec<Vec<String>>, here: Vec<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let mut p = here.clone();
            p.push(k.clone());
            at.push(p.clone());
            paths(child, at, p);
        }
    }
}

fn check(event: &Value) {
    match seek::parse_trigger(event) {
        Ok(_) | Err(seek::SeekError::BadEvent(_)) => {}
        Err(e) => panic!("not BadEvent: {e}"),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        check(&v);
    }
    let mut u = Unstructured::new(data);
    let kind: u8 = u.arbitrary().unwrap_or(0);
    let mutations: Vec<Mutation> = u.arbitrary().unwrap_or_default();
    let mut event = base(kind);
    for m in mutations.iter().take(6) {
        let mut all = Vec::new();
        paths(&event, &mut all, Vec::new());
        if all.is_empty() {
            break;
        }
        let path = &all[usize::from(m.path) % all.len()];
        let (last, parents) = path.split_last().expect("a path has a key");
        let mut node = &mut event;
        for p in parents {
            node = &mut node[p.as_str()];
        }
        let Some(obj) = node.as_object_mut() else {
            continue;
        };
        match m.to % 5 {
            0 => {
                obj.remove(last);
            }
            1 => {
                obj.insert(last.clone(), Value::String(m.text.clone()));
            }
            2 => {
                obj.insert(last.clone(), Value::Null);
            }
            3 => {
                obj.insert(last.clone(), json!([m.text.clone()]));
            }
            _ => {
                obj.insert(last.clone(), json!(m.text.len()));
            }
        }
    }
    check(&event);
});
