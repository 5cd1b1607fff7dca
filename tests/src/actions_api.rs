//! Driving the actions handler in-process, for the end-to-end tests: a week whose seek asked,
//! and a request answered as a status and a JSON body.

use crate::World;
use lambda_http::Body;
use serde_json::Value;

/// GIVEN `n` objects under `train/embedding/` and a threshold of 100, a seek for `week` that
/// asked: returns the request id.
pub async fn asked(w: &World, n: usize, week: &str) -> String {
    let before = w.number("dataset#embedding", "seeked").await.unwrap_or(0) as usize;
    if n > before {
        w.put("train/embedding/", before, n - before).await;
    }
    w.weekly_seek(week).await.request_id.expect("seek asked")
}

/// One request through actions' handler: the status, and the body as JSON (or as a string).
pub async fn send(app: &actions::LiveActions, req: lambda_http::Request) -> (u16, Value) {
    let resp = actions::handle(app, req).await.unwrap();
    let status = resp.status().as_u16();
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::String(t.clone())),
        Body::Empty => Value::Null,
        Body::Binary(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        _ => Value::Null,
    };
    (status, body)
}
