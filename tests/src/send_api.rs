//! Calling the send function as a pipeline step does, for the end-to-end tests: its
//! environment as the template sets it, the real sender built as `main` builds it, form and
//! JSON posts as Function URL events (signed by the URL for `AWS_IAM`), and what Slack was
//! given.

use crate::World;
use crate::events::{function_url_event, http_request};
use crate::slack::Post;
use ct_shared::config::{Env, SecretBundle, SendConfig};
use serde_json::{Value, json};

pub const TOKEN: &str = "pipeline-t0ken-7Hq2Zr";
pub const TUESDAY: &str = "2026-11-24T00:00:00Z";
pub const FORM: &str = "application/x-www-form-urlencoded";
pub const IAM_CALLER: &str = "arn:aws:sts::111122223333:assumed-role/kubeflow-pipeline/step-1";

/// send's environment as template.yaml sets it, plus the token when one is configured.
pub fn send_env(w: &World, auth: &str, token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("STATE_TABLE".to_owned(), w.table.clone()),
        ("SLACK_WEBHOOK_URL".to_owned(), w.slack.webhook_url()),
        ("SEND_URL_AUTH".to_owned(), auth.to_owned()),
    ];
    if let Some(t) = token {
        env.push(("SEND_TOKEN".to_owned(), t.to_owned()));
    }
    env
}

/// The real sender, built the way `main` builds it.
pub fn sender(w: &World, auth: &str, token: Option<&str>) -> send::LiveSender {
    let env = Env::from_pairs(send_env(w, auth, token));
    let config = SendConfig::from_env(&env, &SecretBundle::default()).expect("valid send config");
    send::LiveSender::live(config, &w.sdk).expect("sender")
}

pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// A form post as a Function URL delivers it: body base64-encoded.
pub fn form_post(path: &str, auth: Option<&str>, pairs: &[(&str, &str)]) -> Value {
    let mut headers = vec![("content-type", FORM)];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    function_url_event("POST", path, &headers, &form(pairs), true)
}

pub fn json_post(path: &str, auth: Option<&str>, body: &Value) -> Value {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    function_url_event("POST", path, &headers, body.to_string().as_bytes(), false)
}

/// What a Function URL with `AuthType: AWS_IAM` adds once it has verified the SigV4 signature.
pub fn signed(mut event: Value) -> Value {
    event["requestContext"]["authorizer"] = json!({
        "iam": {
            "accessKey": "ASIAEXAMPLEKEY",
            "accountId": "111122223333",
            "callerId": "AROAEXAMPLEID:step-1",
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": IAM_CALLER,
            "userId": "AROAEXAMPLEID:step-1"
        }
    });
    event
}

/// send's answer to one request.
pub struct Answer {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn call(s: &send::LiveSender, event: Value) -> Answer {
    let resp = send::handle(s, http_request(event))
        .await
        .expect("every expected outcome is an Ok response");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.body().to_vec(),
    }
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every section of every post, in the order Slack received them.
pub fn sections(posts: &[Post]) -> Vec<String> {
    posts
        .iter()
        .flat_map(|p| p.body["blocks"].as_array().cloned().unwrap())
        .map(|b| {
            assert_eq!(b["type"], "section");
            assert_eq!(b["text"]["type"], "mrkdwn");
            b["text"]["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Checks Slack's limits on what was delivered, and that nothing unescaped got through.
pub fn assert_within_slack_limits(posts: &[Post]) {
    for p in posts {
        let blocks = p.body["blocks"].as_array().unwrap();
        assert!(
            !blocks.is_empty() && blocks.len() <= 50,
            "{} blocks",
            blocks.len()
        );
    }
    for s in sections(posts) {
        assert!(
            s.chars().count() <= 3000,
            "{} characters",
            s.chars().count()
        );
        assert!(!s.contains('<') && !s.contains('>'), "unescaped mrkdwn");
        assert_eq!(
            s.matches('&').count(),
            s.matches("&amp;").count() + s.matches("&lt;").count() + s.matches("&gt;").count(),
            "every & starts an escape"
        );
    }
}

/// A deterministic report with everything a step's output may hold: mentions, links,
/// ampersands, newlines, multibyte characters.
pub fn report(chars: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.chars().count() < chars {
        out.push_str(&format!(
            "line {i:05}: loss=0.{i:04} <!channel> a&b <https://x.example/?q={i}&r=1|link> ☃ é\n"
        ));
        i += 1;
    }
    out.chars().take(chars).collect()
}
