//! Events in their real JSON shapes.

use base64::Engine;
use serde_json::{Value, json};

/// A classic EventBridge rule's "Scheduled Event".
pub fn scheduled_event(time: &str) -> Value {
    json!({
        "version": "0",
        "id": uuid_like(time),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ct-trigger-weekly"],
        "detail": {}
    })
}

/// What template.yaml's ScheduleV2 `Input` renders to for one Scheduler execution.
pub fn scheduler_event(time: &str, execution_id: &str) -> Value {
    json!({
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "id": execution_id,
        "time": time
    })
}

fn uuid_like(seed: &str) -> String {
    let h = seed.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffffffffffff
    )
}

/// A Lambda Function URL request, payload format 2.0. The body is base64-encoded when
/// `base64` is true, as Function URLs deliver form posts.
pub fn function_url_event(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    base64: bool,
) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("host".into(), json!("abcdefg.lambda-url.us-east-1.on.aws"));
    h.insert("x-forwarded-proto".into(), json!("https"));
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), json!(v));
    }
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let body = if base64 {
        json!(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        json!(String::from_utf8_lossy(body))
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefg",
            "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefg",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:19:03:58 +0000",
            "timeEpoch": 1_795_892_638_000u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

/// Turns a Function URL event into the request lambda_http hands a handler.
pub fn http_request(event: Value) -> lambda_http::Request {
    let req: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(event).expect("a payload 2.0 event");
    lambda_http::request::LambdaRequest::ApiGatewayV2(req).into()
}

/// A Lambda invocation of `payload` with this request id.
pub fn invocation<T>(payload: T, request_id: &str) -> lambda_runtime::LambdaEvent<T> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    lambda_runtime::LambdaEvent::new(payload, context)
}

/// EventBridge's "CloudWatch Alarm State Change" for a single-metric alarm on a model-quality
/// metric, in the shape AWS's documentation shows: `detail` with the alarm's name, its
/// configuration's metric, and its state (`reasonData` a JSON document in a string).
pub fn alarm_state_change(name: &str, state: &str, id: &str, value: f64, threshold: f64) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-30T17:04:40Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "configuration": {
                "description": "recall@10 of the ranking model",
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
                "reason": format!("Threshold Crossed: 1 out of the last 1 datapoints [{value} (30/11/26 16:00:00)] was less than the threshold ({threshold}) (minimum 1 datapoint for OK -> ALARM transition)."),
                "reasonData": json!({
                    "version": "1.0",
                    "queryDate": "2026-11-30T17:04:40.985+0000",
                    "startDate": "2026-11-30T16:00:00.000+0000",
                    "statistic": "Average",
                    "period": 3600,
                    "recentDatapoints": [value],
                    "threshold": threshold
                }).to_string(),
                "timestamp": "2026-11-30T17:04:40.989+0000",
                "value": state
            }
        }
    })
}

/// What a CloudWatch alarm whose action invokes a Lambda function sends it: `alarmArn` and
/// `alarmData` (the alarm as EventBridge's `detail` has it), no `id`.
pub fn alarm_action(name: &str, state: &str, at: &str, value: f64, threshold: f64) -> Value {
    json!({
        "source": "aws.cloudwatch",
        "alarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        "accountId": "123456789012",
        "time": at,
        "region": "us-east-1",
        "alarmData": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": format!("Threshold Crossed: 1 out of the last 1 datapoints [{value}] was less than the threshold ({threshold})."),
                "reasonData": json!({
                    "version": "1.0",
                    "queryDate": at,
                    "statistic": "Average",
                    "period": 60,
                    "recentDatapoints": [value],
                    "threshold": threshold
                }).to_string(),
                "timestamp": at
            },
            "previousState": {"value": "OK", "reason": "Threshold Crossed", "timestamp": "2026-11-30T11:00:00.000+0000"},
            "configuration": {
                "description": "NDCG of the ranking model",
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": {"namespace": "ML/Quality", "name": "ndcg", "dimensions": {"Model": "ranker"}},
                        "period": 60,
                        "stat": "Average"
                    },
                    "returnData": true
                }]
            }
        }
    })
}
