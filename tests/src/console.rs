//! The local Slack console: a web page that shows the channel as Slack lays it out, and sends
//! correctly signed interactivity payloads to the local `actions` function when a button is
//! clicked, with a working `response_url` (the Slack stand-in).

use crate::runtime::LambdaRuntime;
use crate::slack::{Post, SlackStandIn};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message as the channel shows it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewMessage {
    /// Its position among the channel's messages; its `response_url` is `/actions/{id}`.
    pub id: usize,
    pub body: Value,
    pub edited: bool,
    /// Ephemeral answers shown under it ("Only visible to you").
    pub ephemeral: Vec<Value>,
}

/// Replays what Slack received, in order, into what the channel shows: webhook posts are new
/// messages; `response_url` posts replace, delete, answer ephemerally, or add a message.
pub fn channel_view(posts: &[Post]) -> Vec<ViewMessage> {
    let mut view: Vec<ViewMessage> = Vec::new();
    let mut next_id = 0;
    for p in posts.iter().filter(|p| p.delivered()) {
        if p.path.starts_with("/services/") {
            view.push(ViewMessage {
                id: next_id,
                body: p.body.clone(),
                edited: false,
                ephemeral: vec![],
            });
            next_id += 1;
            continue;
        }
        let Some(target) = p
            .path
            .strip_prefix("/actions/")
            .and_then(|id| id.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(pos) = view.iter().position(|m| m.id == target) else {
            continue;
        };
        if p.body["delete_original"] == true {
            view.remove(pos);
        } else if p.body["response_type"] == "ephemeral" {
            view[pos].ephemeral.push(p.body.clone());
        } else if p.body["replace_original"] == true {
            view[pos].body = p.body.clone();
            view[pos].edited = true;
        } else {
            view.push(ViewMessage {
                id: next_id,
                body: p.body.clone(),
                edited: false,
                ephemeral: vec![],
            });
            next_id += 1;
        }
    }
    view
}

/// Everything the console drives.
#[derive(Clone)]
pub struct Console {
    pub slack: SlackStandIn,
    pub actions_url: String,
    pub signing_secret: String,
    pub seek: LambdaRuntime,
    pub sdk: aws_config::SdkConfig,
    pub bucket: String,
    /// (name, prefix) of each dataset.
    pub datasets: Vec<(String, String)>,
    pub users: Vec<(String, String)>,
    pub send_url: String,
    pub send_token: String,
    pub next_object: Arc<Mutex<HashMap<String, usize>>>,
    pub http: reqwest::Client,
}

#[derive(Deserialize)]
struct ClickRequest {
    message_id: usize,
    action_id: String,
    value: String,
    user_id: String,
}

#[derive(Deserialize)]
struct ObjectsRequest {
    dataset: String,
    count: usize,
}

fn err(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({"error": text.into()}))).into_response()
}

async fn state(State(c): State<Console>) -> Json<Value> {
    let users: Vec<Value> = c
        .users
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    let datasets: Vec<Value> = c
        .datasets
        .iter()
        .map(|(n, p)| json!({"name": n, "prefix": p}))
        .collect();
    Json(json!({
        "messages": channel_view(&c.slack.received()),
        "users": users,
        "datasets": datasets,
        "send_url": c.send_url,
    }))
}

/// Signs and posts a `block_actions` payload, as Slack does when a button is clicked.
async fn click(State(c): State<Console>, Json(req): Json<ClickRequest>) -> Response {
    let Some((uid, name)) = c.users.iter().find(|(id, _)| *id == req.user_id).cloned() else {
        return err(StatusCode::BAD_REQUEST, "unknown user");
    };
    let mut payload = crate::slack_events::block_actions(
        "train",
        "x",
        (&uid, &name),
        &c.slack.response_url(&req.message_id.to_string()),
    );
    payload["actions"][0]["action_id"] = json!(req.action_id);
    payload["actions"][0]["value"] = json!(req.value);
    let body = crate::slack_events::form(&payload);
    let ts = ct_shared::Timestamp::now().secs().to_string();
    let sig = ct_shared::slack::signature::sign(
        &ct_shared::Secret::new(c.signing_secret.clone()),
        &ts,
        &body,
    );
    let sent = c
        .http
        .post(&c.actions_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            Json(json!({"status": status, "body": text})).into_response()
        }
        Err(e) => err(
            StatusCode::BAD_GATEWAY,
            format!("actions did not answer: {}", e.without_url()),
        ),
    }
}

async fn seek_now(State(c): State<Console>) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    match c
        .seek
        .invoke(&id, json!({}), Duration::from_secs(120))
        .await
    {
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err(e)) => err(StatusCode::BAD_GATEWAY, e.to_string()),
        None => err(StatusCode::GATEWAY_TIMEOUT, "seek did not answer"),
    }
}

async fn add_objects(State(c): State<Console>, Json(req): Json<ObjectsRequest>) -> Response {
    let Some((_, prefix)) = c.datasets.iter().find(|(n, _)| *n == req.dataset).cloned() else {
        return err(StatusCode::BAD_REQUEST, "unknown dataset");
    };
    if req.count == 0 || req.count > 5_000 {
        return err(StatusCode::BAD_REQUEST, "count must be 1 to 5000");
    }
    let start = {
        let mut next = c.next_object.lock().unwrap_or_else(|p| p.into_inner());
        let start = *next.get(&req.dataset).unwrap_or(&0);
        next.insert(req.dataset.clone(), start + req.count);
        start
    };
    crate::moto::put_objects(&c.sdk, &c.bucket, &prefix, start, req.count).await;
    Json(json!({"dataset": req.dataset, "added": req.count})).into_response()
}

async fn status(State(c): State<Console>) -> Response {
    let sent = c
        .http
        .get(format!("{}/status", c.send_url))
        .bearer_auth(&c.send_token)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let code =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap_or_default())
                .unwrap_or(Value::Null);
            (code, Json(body)).into_response()
        }
        Err(e) => err(
            StatusCode::BAD_GATEWAY,
            format!("send did not answer: {}", e.without_url()),
        ),
    }
}

const PAGE: &str = include_str!("../console/index.html");

/// The console's routes.
pub fn router(console: Console) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/state", get(state))
        .route("/api/click", post(click))
        .route("/api/seek", post(seek_now))
        .route("/api/objects", post(add_objects))
        .route("/api/status", get(status))
        .route(
            "/kubeflow/",
            get(|| async {
                Html("<!doctype html><title>Kubeflow Pipelines (local)</title><h1>Kubeflow Pipelines</h1><p>A local stand-in: in a real deployment this is your pipelines dashboard.</p>")
            }),
        )
        .with_state(console)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: Value, status: u16) -> Post {
        Post {
            path: path.into(),
            raw: body.to_string().into_bytes(),
            body,
            content_type: None,
            status,
        }
    }

    #[test]
    fn replays_replacements_ephemerals_and_new_messages() {
        let posts = vec![
            post("/services/T/B/x", json!({"text": "question"}), 200),
            post("/services/T/B/x", json!({"text": "failed"}), 500),
            post(
                "/actions/0",
                json!({"text": "decided", "replace_original": true}),
                200,
            ),
            post(
                "/actions/0",
                json!({"text": "already", "response_type": "ephemeral"}),
                200,
            ),
            post("/services/T/B/x", json!({"text": "kubeflow"}), 200),
            post(
                "/actions/9",
                json!({"text": "nowhere", "replace_original": true}),
                200,
            ),
        ];
        let view = channel_view(&posts);
        assert_eq!(view.len(), 2);
        assert_eq!(view[0].body["text"], "decided");
        assert!(view[0].edited);
        assert_eq!(view[0].ephemeral.len(), 1);
        assert_eq!(view[1].id, 1);
        assert_eq!(view[1].body["text"], "kubeflow");
    }
}
