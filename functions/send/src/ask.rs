//! `POST /ask`: an evaluation step or a monitor asks whether to train, on a quality signal.
//! The body (form or JSON) carries `reason` and optionally `metric`, `value`, `threshold` and
//! `source`. Parsing is pure; a refusal names the field and nothing is stored or posted.

use crate::notice::{Kind, MAX_BODY, kind};
use crate::{SendStore, Sender, error, json_response};
use ct_shared::Timestamp;
use ct_shared::domain::{self, ApprovalRequest, QualitySignal};
use ct_shared::slack::{RetryPolicy, SlackPoster, messages};
use lambda_http::http::header::{CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// Attempts at becoming the newest request while other requests keep arriving.
const OPEN_ATTEMPTS: usize = 3;

/// The longest reason accepted: one Slack section.
pub const MAX_REASON: usize = 3000;
/// The longest metric name or source accepted.
pub const MAX_NAME: usize = 200;

/// Why an ask was refused. Never quotes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the body is {size} bytes, more than the {MAX_BODY} allowed")]
    TooLarge { size: usize },
    #[error("Content-Type must be application/x-www-form-urlencoded or application/json")]
    UnsupportedType,
    #[error("only UTF-8 bodies are accepted")]
    UnsupportedCharset,
    #[error("the body is not valid JSON")]
    BadJson,
    #[error("the JSON body must be an object with a \"reason\" field")]
    NotAnObject,
    #[error("\"reason\" is required and must not be empty")]
    MissingReason,
    #[error("\"reason\" is {chars} characters, more than the {MAX_REASON} allowed")]
    ReasonTooLong { chars: usize },
    #[error("\"{field}\" must be a string of at most {MAX_NAME} characters")]
    BadText { field: &'static str },
    #[error("\"{field}\" must be a finite number")]
    NotANumber { field: &'static str },
}

impl Invalid {
    pub fn status(&self) -> u16 {
        match self {
            Invalid::TooLarge { .. } => 413,
            Invalid::UnsupportedType | Invalid::UnsupportedCharset => 415,
            _ => 400,
        }
    }
}

impl From<crate::notice::Invalid> for Invalid {
    fn from(e: crate::notice::Invalid) -> Self {
        match e {
            crate::notice::Invalid::UnsupportedCharset => Invalid::UnsupportedCharset,
            _ => Invalid::UnsupportedType,
        }
    }
}

fn number(field: &'static str, text: &str) -> Result<f64, Invalid> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or(Invalid::NotANumber { field })
}

fn name(field: &'static str, text: String) -> Result<Option<String>, Invalid> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > MAX_NAME {
        return Err(Invalid::BadText { field });
    }
    Ok(Some(t.to_owned()))
}

#[derive(Default)]
struct Fields {
    reason: Option<String>,
    metric: Option<String>,
    value: Option<f64>,
    threshold: Option<f64>,
    source: Option<String>,
}

impl Fields {
    fn finish(self) -> Result<QualitySignal, Invalid> {
        let reason = self
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .ok_or(Invalid::MissingReason)?;
        let chars = reason.chars().count();
        if chars > MAX_REASON {
            return Err(Invalid::ReasonTooLong { chars });
        }
        Ok(QualitySignal {
            reason,
            metric: self.metric,
            value: self.value,
            threshold: self.threshold,
            source: self.source,
        })
    }
}

fn from_form(body: &[u8]) -> Result<QualitySignal, Invalid> {
    let mut f = Fields::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        // The first of a repeated field wins, as for /send.
        if seen.iter().any(|s| *s == k) {
            continue;
        }
        seen.push(k.to_string());
        match k.as_ref() {
            "reason" => f.reason = Some(v.into_owned()),
            "metric" => f.metric = name("metric", v.into_owned())?,
            "source" => f.source = name("source", v.into_owned())?,
            "value" if !v.trim().is_empty() => f.value = Some(number("value", &v)?),
            "threshold" if !v.trim().is_empty() => f.threshold = Some(number("threshold", &v)?),
            _ => {}
        }
    }
    f.finish()
}

fn json_text(v: Option<&Value>, field: &'static str) -> Result<Option<String>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => name(field, s.clone()),
        Some(_) => Err(Invalid::BadText { field }),
    }
}

fn json_number(v: Option<&Value>, field: &'static str) -> Result<Option<f64>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or(Invalid::NotANumber { field }),
        Some(Value::String(s)) => number(field, s).map(Some),
        Some(_) => Err(Invalid::NotANumber { field }),
    }
}

fn from_json(body: &[u8]) -> Result<QualitySignal, Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Invalid::BadJson)?;
    let obj = value.as_object().ok_or(Invalid::NotAnObject)?;
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Invalid::MissingReason),
    };
    Fields {
        reason,
        metric: json_text(obj.get("metric"), "metric")?,
        value: json_number(obj.get("value"), "value")?,
        threshold: json_number(obj.get("threshold"), "threshold")?,
        source: json_text(obj.get("source"), "source")?,
    }
    .finish()
}

/// Reads an ask's body: size first, then content type, then the fields.
pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<QualitySignal, Invalid> {
    if body.len() > MAX_BODY {
        return Err(Invalid::TooLarge { size: body.len() });
    }
    match kind(content_type)? {
        Kind::Form => from_form(body),
        Kind::Json => from_json(body),
    }
}

impl<P: SlackPoster, S: SendStore> Sender<P, S> {
    /// Stores a quality request as the newest (superseding any pending one), then posts it.
    pub(crate) async fn ask(
        &self,
        req: &Request,
        now: Timestamp,
    ) -> (Response<Body>, Option<String>) {
        let content_type = req.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes);
        let signal = match parse(content_type, req.body()) {
            Ok(s) => s,
            Err(e) => return (error(e.status(), &e.to_string()), Some(format!("{e:?}"))),
        };
        let request = match self.open(signal, now).await {
            Ok(r) => r,
            Err(e) => return (error(502, "could not write to the state table"), Some(e)),
        };
        let policy = RetryPolicy {
            budget: self.policy.budget.min(self.budget),
            ..self.policy
        };
        let message = messages::ask_request(&request);
        if let Err(e) = self
            .slack
            .post(self.webhook.expose(), &message, policy)
            .await
        {
            // The request is stored but nobody saw it: a retry makes a new one, which
            // supersedes this one, so it can never be decided unseen.
            let (status, msg) = if e.is_timeout() {
                (
                    504,
                    format!(
                        "Slack did not answer in time; the question may or may not have been posted ({e})"
                    ),
                )
            } else {
                (502, format!("Slack did not accept the question: {e}"))
            };
            return (
                json_response(status, &json!({"error": msg, "request_id": request.id})),
                Some(msg),
            );
        }
        tracing::info!(request_id = %request.id, kind = "quality", "approval request posted");
        (
            json_response(
                201,
                &json!({"request_id": request.id, "kind": request.kind().as_str()}),
            ),
            None,
        )
    }

    async fn open(&self, signal: QualitySignal, now: Timestamp) -> Result<ApprovalRequest, String> {
        for _ in 0..OPEN_ATTEMPTS {
            let datasets = self.store.all_datasets().await.map_err(|e| e.to_string())?;
            let previous = self
                .store
                .newest_request_id()
                .await
                .map_err(|e| e.to_string())?;
            let id = domain::new_request_id();
            let request = ApprovalRequest {
                window: format!("ask#{id}"),
                id,
                created_at: now,
                snapshot: datasets.iter().map(|d| d.count()).collect(),
                decision: None,
                signal: Some(signal.clone()),
            };
            if self
                .store
                .open_request(&request, previous.as_deref())
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok(request);
            }
        }
        Err("another request kept arriving; gave up after 3 attempts".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
    const JSON: Option<&[u8]> = Some(b"application/json");

    #[test]
    fn reads_form_and_json_alike() {
        let form = parse(
            FORM,
            b"reason=Model+quality+dropped&metric=recall%4010&value=0.81&threshold=0.85&source=eval-step",
        )
        .unwrap();
        let json = parse(
            JSON,
            br#"{"reason":"Model quality dropped","metric":"recall@10","value":0.81,"threshold":"0.85","source":"eval-step"}"#,
        )
        .unwrap();
        assert_eq!(form, json);
        assert_eq!(form.value, Some(0.81));
        assert_eq!(form.metric.as_deref(), Some("recall@10"));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"metric":"x"}"#, "\"reason\""),
            (br#"{"reason":"  "}"#, "\"reason\""),
            (br#"{"reason":"r","value":"high"}"#, "\"value\""),
            (br#"{"reason":"r","threshold":[1]}"#, "\"threshold\""),
            (br#"{"reason":"r","source":7}"#, "\"source\""),
            (br#"{"reason":"r","value":"NaN"}"#, "\"value\""),
        ];
        for (body, field) in cases {
            let e = parse(JSON, body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(field), "{e} should name {field}");
        }
        let long = format!("reason={}", "a".repeat(MAX_REASON + 1));
        assert!(matches!(
            parse(FORM, long.as_bytes()),
            Err(Invalid::ReasonTooLong { chars: 3001 })
        ));
        assert!(
            parse(
                FORM,
                format!("reason={}", "a".repeat(MAX_REASON)).as_bytes()
            )
            .is_ok()
        );
        assert_eq!(
            parse(Some(b"text/plain"), b"reason=x")
                .unwrap_err()
                .status(),
            415
        );
    }
}
