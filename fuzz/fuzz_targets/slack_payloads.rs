//! Slash commands and interaction payloads, decoded after verification: any bytes, and payloads
//! shaped like Slack's with fields missing, doubled or of the wrong type, are a click, a
//! command, or a clean error; a click always names a well-formed request id.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_shared::slack::interaction::{Interaction, parse_interaction};

#[derive(Debug, Arbitrary)]
enum Field {
    Str(String),
    Num(i64),
    Null,
    Missing,
}

impl Field {
    fn json(&self) -> Option<serde_json::Value> {
        match self {
            Field::Str(s) => Some(s.clone().into()),
            Field::Num(n) => Some((*n).into()),
            Field::Null => Some(serde_json::Value::Null),
            Field::Missing => None,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Shaped {
    kind: Field,
    user_id: Field,
    username: Field,
    value: Field,
    action_ts: Field,
    response_url: Field,
    actions: u8,
    extra_pairs: Vec<(String, String)>,
}

fn check(body: &[u8]) {
    if let Ok(i) = parse_interaction(body) {
        let id = match &i {
            Interaction::Decide(c) => &c.request_id,
            Interaction::RetryLaunch(r) => &r.request_id,
        };
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{id:?}"
        );
    }
    let _ = actions::command::parse(body);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check(data);
    let Ok(s) = Shaped::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mut payload = serde_json::Map::new();
    if let Some(k) = s.kind.json() {
        payload.insert("type".into(), k);
    }
    let mut user = serde_json::Map::new();
    if let Some(v) = s.user_id.json() {
        user.insert("id".into(), v);
    }
    if let Some(v) = s.username.json() {
        user.insert("username".into(), v);
    }
    payload.insert("user".into(), user.into());
    let mut action = serde_json::Map::new();
    if let Some(v) = s.value.json() {
        action.insert("value".into(), v);
    }
    if let Some(v) = s.action_ts.json() {
        action.insert("action_ts".into(), v);
    }
    let actions: Vec<serde_json::Value> =
        (0..s.actions % 3).map(|_| action.clone().into()).collect();
    payload.insert("actions".into(), actions.into());
    if let Some(v) = s.response_url.json() {
        payload.insert("response_url".into(), v);
    }
    let mut form = form_encode(&[("payload", serde_json::Value::Object(payload).to_string())]);
    for (k, v) in &s.extra_pairs {
        form.push('&');
        form.push_str(&form_encode(&[(k.as_str(), v.clone())]));
    }
    check(form.as_bytes());
});

fn form_encode(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            b => format!("%{b:02X}"),
        })
        .collect()
}
