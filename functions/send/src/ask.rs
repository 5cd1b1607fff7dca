//! `POST /ask`: an evaluation step or a monitor asks whether to train, on a quality signal.
//! The body (form or JSON) carries `reason` and optionally `metric`, `value`, `threshold` and
//! `source`. Parsing is pure; a refusal names the field and nothing is stored or posted.

use crate::body::{Fields, Invalid};
use crate::{SendStore, Sender, error, json_response};
use ct_shared::Timestamp;
use ct_shared::domain::{self, ApprovalRequest, QualitySignal};
use ct_shared::slack::{Channel, RetryPolicy, SlackPoster, messages};
use lambda_http::http::header::{CONTENT_TYPE, HeaderValue};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// Attempts at becoming the newest request while other requests keep arriving.
const OPEN_ATTEMPTS: usize = 3;

/// The longest reason accepted: one Slack section.
pub const MAX_REASON: usize = 3000;
/// The longest metric name or source accepted.
pub const MAX_NAME: usize = 200;

/// A metric name or a source: trimmed, blank as absent, at most [`MAX_NAME`] characters.
fn name(fields: &Fields<'_>, field: &'static str) -> Result<Option<String>, Invalid> {
    let bad = Invalid::BadText {
        field,
        max: MAX_NAME,
    };
    let Some(text) = fields.text(field).map_err(|_| bad.clone())? else {
        return Ok(None);
    };
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > MAX_NAME {
        return Err(bad);
    }
    Ok(Some(t.to_owned()))
}

/// Reads an ask's body: size first, then content type, then the fields.
pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<QualitySignal, Invalid> {
    let fields = Fields::parse(content_type, body, "reason")?;
    let metric = name(&fields, "metric")?;
    let value = fields.number("value")?;
    let threshold = fields.number("threshold")?;
    let source = name(&fields, "source")?;
    // A reason that is not text is as good as none.
    let reason = fields
        .text("reason")
        .unwrap_or(None)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or(Invalid::Missing { field: "reason" })?;
    let chars = reason.chars().count();
    if chars > MAX_REASON {
        return Err(Invalid::TooLong {
            field: "reason",
            chars,
            max: MAX_REASON,
        });
    }
    Ok(QualitySignal {
        reason: reason.to_owned(),
        metric,
        value,
        threshold,
        source,
    })
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
        let (request, previous) = match self.open(signal, now).await {
            Ok(opened) => opened,
            Err(e) => return (error(502, "could not write to the state table"), Some(e)),
        };
        let policy = RetryPolicy {
            budget: self.policy.budget.min(self.budget),
            ..self.policy
        };
        let message = messages::ask_request(&request);
        let channel = Channel::new(&self.slack, &self.route);
        let posted = match channel.post(&message, policy).await {
            Ok(posted) => posted,
            Err(e) => {
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
        };
        tracing::info!(request_id = %request.id, kind = "quality", "approval request posted");
        ct_shared::asking::after_posting(
            &self.store,
            &channel,
            &request.id,
            request.created_at,
            posted.as_ref(),
            previous.as_deref(),
            policy,
        )
        .await;
        (
            json_response(
                201,
                &json!({"request_id": request.id, "kind": request.kind().as_str()}),
            ),
            None,
        )
    }

    /// The new request, and the newest one it supersedes.
    async fn open(
        &self,
        signal: QualitySignal,
        now: Timestamp,
    ) -> Result<(ApprovalRequest, Option<String>), String> {
        for _ in 0..OPEN_ATTEMPTS {
            let datasets = self.store.all_datasets().await.map_err(|e| e.to_string())?;
            let previous = self
                .store
                .newest_request_id()
                .await
                .map_err(|e| e.to_string())?;
            let snapshot = datasets.iter().map(|d| d.count()).collect();
            let request = domain::quality_request(signal.clone(), snapshot, now, None);
            if self
                .store
                .open_request(&request, previous.as_deref())
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok((request, previous));
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
            Err(Invalid::TooLong {
                field: "reason",
                chars: 3001,
                max: MAX_REASON
            })
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
