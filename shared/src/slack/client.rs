//! Posting to Slack (an incoming webhook, an interaction's `response_url`, or a Web API method
//! with a bot token) with timeouts, `Retry-After` on 429 and bounded backoff on 5xx.
//!
//! A timeout is *not* retried here: Slack may have posted the message before the answer was
//! lost, and a second post would double it. The caller decides (seek fails the invocation,
//! send answers 504).

use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Building the HTTP client can fail only if TLS cannot initialise.
pub use reqwest::Error as HttpError;

/// How hard to try one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Each attempt's own limit, connection included.
    pub attempt_timeout: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff after a 5xx; it doubles each time.
    pub backoff: Duration,
    /// All attempts and waits together stay within this.
    pub budget: Duration,
}

impl RetryPolicy {
    /// seek runs in the background: it can wait out a rate limit.
    pub const SCHEDULED: Self = Self {
        attempt_timeout: Duration::from_secs(5),
        attempts: 4,
        backoff: Duration::from_millis(500),
        budget: Duration::from_secs(40),
    };
    /// A notification after a click: Slack wants an answer within 3 s, so keep it short.
    pub const INTERACTIVE: Self = Self {
        attempt_timeout: Duration::from_millis(900),
        attempts: 2,
        backoff: Duration::from_millis(100),
        budget: Duration::from_millis(1000),
    };
    /// send: a pipeline step waits for the answer, within the Function URL's timeout.
    pub const REQUEST: Self = Self {
        attempt_timeout: Duration::from_secs(5),
        attempts: 4,
        backoff: Duration::from_millis(300),
        budget: Duration::from_secs(20),
    };
}

/// Why Slack did not take a message. Never carries the URL (it is a secret for webhooks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    #[error("Slack refused the message: HTTP {status} {detail}")]
    Rejected { status: u16, detail: String },
    #[error("Slack answered HTTP {status} to all {attempts} attempts")]
    Unavailable { status: u16, attempts: u32 },
    #[error("Slack rate-limited us for {retry_after_secs} s, longer than the time left")]
    RateLimited { retry_after_secs: u64 },
    #[error("Slack did not answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u128 },
    #[error("could not reach Slack after {attempts} attempts: {reason}")]
    Unreachable { attempts: u32, reason: String },
    /// The Web API answered `ok: false`: its error code, and the setting to fix.
    #[error("Slack's Web API refused {method}: {error}; {fix}")]
    Api {
        method: &'static str,
        error: String,
        fix: &'static str,
    },
}

/// What to fix for a Web API error code (never the token itself).
pub fn fix_for(error: &str) -> &'static str {
    match error {
        "channel_not_found" | "is_archived" | "channel_is_archived" => {
            "check SLACK_CHANNEL: the id of a channel the app can see (C0123ABCD)"
        }
        "not_in_channel" => "invite the app to the SLACK_CHANNEL channel (/invite @ct-trigger)",
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive"
        | "no_permission" => {
            "check SLACK_BOT_TOKEN (or slack_bot_token in the secret): the app's Bot User OAuth Token"
        }
        "missing_scope" => {
            "give the app the chat:write scope (deploy/slack-app-manifest.yaml) and reinstall it"
        }
        "message_not_found" | "cant_update_message" | "edit_window_closed" => {
            "the message was deleted, or was not posted by this app"
        }
        "ratelimited" => "Slack rate-limited the app; it will try again later",
        _ => "see Slack's documentation of the method",
    }
}

impl SlackError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, SlackError::Timeout { .. })
    }
}

/// Where Slack's Web API is, and the bot token it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebApi {
    /// `SLACK_API_URL`: `https://slack.com/api/`, ending in `/`.
    pub base: String,
    pub token: crate::Secret,
}

/// The one capability the functions need from Slack: deliver one message to one URL, and (with
/// a bot token) call a Web API method.
pub trait SlackPoster: Send + Sync {
    fn post(
        &self,
        url: &str,
        message: &Value,
        policy: RetryPolicy,
    ) -> impl Future<Output = Result<(), SlackError>> + Send;

    /// Calls `method` (`chat.postMessage`, `chat.update`) with a JSON body; its answer when
    /// Slack says `ok`. A poster without a Web API refuses.
    fn call(
        &self,
        api: &WebApi,
        method: &'static str,
        body: &Value,
        policy: RetryPolicy,
    ) -> impl Future<Output = Result<Value, SlackError>> + Send {
        let _ = (api, body, policy);
        async move {
            Err(SlackError::Unreachable {
                attempts: 0,
                reason: format!("this Slack client has no Web API for {method}"),
            })
        }
    }
}

/// The reqwest-backed poster. Build it once at cold start and share it.
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
}

impl SlackClient {
    pub fn new() -> Result<Self, HttpError> {
        let http = crate::tls::reqwest_builder()
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("ct-trigger/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }
}

fn retry_after(resp: &reqwest::Response) -> Duration {
    let secs = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs)
}

/// A transport error's kind, without the URL reqwest would otherwise print.
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(200).collect()
}

impl SlackClient {
    /// POSTs `body` to `url` under `policy`: 429 waits its `Retry-After`, 5xx and connection
    /// failures back off and try again, a timeout is not tried again (Slack may have taken it).
    /// The answer's body once Slack answers 2xx.
    async fn send(
        &self,
        url: &str,
        body: Vec<u8>,
        bearer: Option<&crate::Secret>,
        policy: RetryPolicy,
    ) -> Result<String, SlackError> {
        let deadline = Instant::now() + policy.budget;
        let mut backoff = policy.backoff;
        let mut last = SlackError::Unreachable {
            attempts: 0,
            reason: "no attempt fitted in the time budget".into(),
        };
        for attempt in 1..=policy.attempts.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let timeout = policy.attempt_timeout.min(left);
            let mut request = self
                .http
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(body.clone())
                .timeout(timeout);
            if let Some(token) = bearer {
                request = request.bearer_auth(token.expose());
            }
            let wait = match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    return Ok(resp.text().await.unwrap_or_default());
                }
                Ok(resp) if resp.status().as_u16() == 429 => {
                    let wait = retry_after(&resp);
                    last = SlackError::RateLimited {
                        retry_after_secs: wait.as_secs(),
                    };
                    if Instant::now() + wait >= deadline || attempt == policy.attempts {
                        return Err(last);
                    }
                    tracing::warn!(
                        attempt,
                        retry_after_secs = wait.as_secs(),
                        "slack rate-limited the post"
                    );
                    wait
                }
                Ok(resp) if resp.status().is_server_error() => {
                    let status = resp.status().as_u16();
                    tracing::warn!(attempt, status, "slack answered a server error");
                    last = SlackError::Unavailable {
                        status,
                        attempts: attempt,
                    };
                    backoff
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let detail: String = resp
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(100)
                        .collect();
                    return Err(SlackError::Rejected { status, detail });
                }
                Err(e) if e.is_timeout() => {
                    return Err(SlackError::Timeout {
                        timeout_ms: timeout.as_millis(),
                    });
                }
                Err(e) if e.is_connect() => {
                    // The request never left: safe to try again.
                    last = SlackError::Unreachable {
                        attempts: attempt,
                        reason: describe(e),
                    };
                    tracing::warn!(attempt, "could not connect to slack");
                    backoff
                }
                Err(e) => {
                    return Err(SlackError::Unreachable {
                        attempts: attempt,
                        reason: describe(e),
                    });
                }
            };
            if attempt < policy.attempts {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(wait.min(left)).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        Err(last)
    }
}

impl SlackPoster for SlackClient {
    async fn post(
        &self,
        url: &str,
        message: &Value,
        policy: RetryPolicy,
    ) -> Result<(), SlackError> {
        let body = serde_json::to_vec(message).unwrap_or_default();
        self.send(url, body, None, policy).await.map(|_| ())
    }

    async fn call(
        &self,
        api: &WebApi,
        method: &'static str,
        body: &Value,
        policy: RetryPolicy,
    ) -> Result<Value, SlackError> {
        let url = format!("{}{method}", api.base);
        let payload = serde_json::to_vec(body).unwrap_or_default();
        let text = self.send(&url, payload, Some(&api.token), policy).await?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| SlackError::Rejected {
            status: 200,
            detail: format!("{method} answered something that is not JSON"),
        })?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        // Slack's error codes are short snake_case words; keep nothing else of the answer.
        let error: String = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(60)
            .collect();
        Err(SlackError::Api {
            method,
            fix: fix_for(&error),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_the_sdks_tls_provider() {
        // reqwest brings no crypto provider of its own; rustls must find the AWS SDK's.
        assert!(SlackClient::new().is_ok());
    }
}
