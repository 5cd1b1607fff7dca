//! `Idempotency-Key` on `POST /send` and `POST /ask`: 1–128 printable ASCII characters naming
//! one call. The first call with a key does the work and its answer is kept 24 hours; a retry
//! with the same body gets that answer again (marked `Idempotent-Replayed: true`) and nothing
//! is posted; the same key with a different body gets 422; a retry while the first call is
//! still running gets 409 with `Retry-After`. An answer of 5xx is not kept: the key is given
//! back, so a retry runs the call again.

use crate::metrics::Sent;
use crate::{Route, SendStore, Sender, error, response};
use ct_shared::Timestamp;
use ct_shared::aws::dynamo::{Claim, StoredAnswer};
use ct_shared::slack::SlackPoster;
use lambda_http::http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a claim holds before a retry may take over from a claimant that died. Longer than
/// the function's 30 s timeout.
pub const LEASE_SECS: i64 = 60;
pub const MAX_KEY: usize = 128;

/// The key, if the request has a valid one. `Err` says what is wrong with it.
pub fn key(req: &Request) -> Result<Option<&str>, String> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let bytes = raw.as_bytes();
    let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
    if bytes.is_empty() || bytes.len() > MAX_KEY || !printable || bytes.trim_ascii().is_empty() {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"
        ));
    }
    Ok(raw.to_str().ok())
}

/// What makes two calls "the same": route, content type and body bytes.
pub fn fingerprint(route: Route, req: &Request) -> String {
    let mut h = Sha256::new();
    h.update(format!("{route:?}\n").as_bytes());
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        h.update(ct.as_bytes());
    }
    h.update(b"\n");
    h.update(req.body().as_ref());
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

fn replay(a: &StoredAnswer) -> Response<Body> {
    let ct = match a.content_type.as_deref() {
        Some("text/plain; charset=utf-8") => "text/plain; charset=utf-8",
        Some(_) => "application/json",
        None => "application/json",
    };
    let body = if a.body.is_empty() {
        Body::Empty
    } else {
        Body::from(a.body.clone())
    };
    let mut resp = response(a.status, ct, body);
    if a.content_type.is_none() {
        resp.headers_mut().remove(CONTENT_TYPE);
    }
    resp.headers_mut().insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    resp
}

fn answer_of(resp: &Response<Body>) -> StoredAnswer {
    StoredAnswer {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(resp.body().as_ref()).into_owned(),
    }
}

impl<P: SlackPoster, S: SendStore> Sender<P, S> {
    /// Runs a `POST` at most once per idempotency key.
    pub(crate) async fn once(
        &self,
        req: &Request,
        route: Route,
        now: Timestamp,
    ) -> (Response<Body>, Option<String>, Option<Sent>) {
        let key = match key(req) {
            Ok(Some(k)) => k,
            Ok(None) => return self.run(req, route, now).await,
            Err(msg) => return (error(400, &msg), Some(msg), None),
        };
        let hash = fingerprint(route, req);
        let until = Timestamp::from_secs(now.secs() + LEASE_SECS);
        match self.store.claim(key, &hash, now, until).await {
            Err(e) => (
                error(502, "could not read the state table"),
                Some(e.to_string()),
                None,
            ),
            Ok(Claim::Replay(a)) => (replay(&a), Some("idempotent replay".into()), None),
            Ok(Claim::Mismatch) => (
                error(
                    422,
                    "this Idempotency-Key was already used with a different request",
                ),
                None,
                None,
            ),
            Ok(Claim::InProgress) => {
                let mut resp = error(
                    409,
                    "a request with this Idempotency-Key is still in progress; retry shortly",
                );
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("5"));
                (resp, None, None)
            }
            Ok(Claim::Fresh) => {
                let (resp, note, sent) = self.run(req, route, now).await;
                let kept = if resp.status().is_server_error() {
                    self.store.abandon(key, &hash).await
                } else {
                    self.store
                        .complete(key, &hash, &answer_of(&resp), now)
                        .await
                };
                if let Err(e) = kept {
                    // The call's effect stands; only its replay may be lost.
                    tracing::warn!(error = %e, "could not store the idempotent answer");
                }
                (resp, note, sent)
            }
        }
    }
}
