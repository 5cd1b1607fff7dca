//! Typed configuration, parsed once at cold start.
//!
//! The environment variable names are the contract with `template.yaml`. A missing or malformed
//! value is a [`ConfigError`] that names the variable and never repeats a secret's value.

use crate::Secret;
use crate::domain::Threshold;
use crate::slack::{Route, WebApi};
use std::collections::HashMap;
use std::fmt;

mod actions;
mod dataset;
mod duration;
pub use actions::ActionsConfig;
use dataset::bucket_name_ok;
pub use dataset::{Dataset, parse_datasets};
pub use duration::{DEFAULT_REMIND_AFTER, DEFAULT_REQUEST_TTL, duration_secs, parse_duration};

/// A missing or malformed setting: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// A snapshot of the environment (or of a test's map): the only place settings are read from.
#[derive(Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value, trimmed; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }
}

impl fmt::Debug for Env {
    // The environment holds secrets: show only the names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("Env").field(&names).finish()
    }
}

/// The JSON document a `SECRETS_ARN` secret holds. Every field is optional; plain environment
/// variables override what it says.
#[derive(Clone, Default, serde::Deserialize)]
pub struct SecretBundle {
    #[serde(default)]
    slack_webhook_url: Option<String>,
    #[serde(default)]
    slack_signing_secret: Option<String>,
    #[serde(default)]
    send_token: Option<String>,
    #[serde(default)]
    kubeflow_token: Option<String>,
    #[serde(default)]
    slack_bot_token: Option<String>,
}

impl SecretBundle {
    /// Parses the secret's JSON. The error never quotes the document.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| {
            ConfigError::new(
                "SECRETS_ARN",
                format!(
                    "the secret is not a JSON object with string fields slack_webhook_url, \
                     slack_bot_token, slack_signing_secret, send_token, kubeflow_token (line {}, \
                     column {})",
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    /// The Kubeflow token: `KUBEFLOW_TOKEN`, or `kubeflow_token` in the secret.
    pub fn kubeflow_token(&self, env: &Env) -> Option<Secret> {
        Self::pick(env, "KUBEFLOW_TOKEN", &self.kubeflow_token)
    }

    fn pick(env: &Env, name: &'static str, from_secret: &Option<String>) -> Option<Secret> {
        env.get(name)
            .map(str::to_owned)
            .or_else(|| from_secret.clone().filter(|v| !v.trim().is_empty()))
            .map(Secret::new)
    }
}

impl fmt::Debug for SecretBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBundle")
            .field("slack_webhook_url", &self.slack_webhook_url.is_some())
            .field("slack_signing_secret", &self.slack_signing_secret.is_some())
            .field("send_token", &self.send_token.is_some())
            .field("kubeflow_token", &self.kubeflow_token.is_some())
            .field("slack_bot_token", &self.slack_bot_token.is_some())
            .finish()
    }
}

fn parse_u64(env: &Env, name: &'static str) -> Result<u64, ConfigError> {
    let raw = env.required(name)?;
    raw.parse::<u64>()
        .map_err(|_| ConfigError::new(name, format!("{raw:?} is not a whole number of objects")))
}

/// An `http(s)` URL. Secret URLs are checked without quoting them back.
fn check_url(name: &'static str, value: &str, secret: bool) -> Result<(), ConfigError> {
    let ok = reqwest::Url::parse(value)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else if secret {
        Err(ConfigError::new(
            name,
            "is not an http(s) URL (value not shown: it is a secret)",
        ))
    } else {
        Err(ConfigError::new(
            name,
            format!("{value:?} is not an http(s) URL"),
        ))
    }
}

fn webhook(env: &Env, secrets: &SecretBundle) -> Result<Secret, ConfigError> {
    let url = SecretBundle::pick(env, "SLACK_WEBHOOK_URL", &secrets.slack_webhook_url).ok_or_else(
        || {
            ConfigError::new(
                "SLACK_WEBHOOK_URL",
                "is required (set it, or slack_webhook_url in the SECRETS_ARN secret)",
            )
        },
    )?;
    check_url("SLACK_WEBHOOK_URL", url.expose(), true)?;
    Ok(url)
}

/// `SLACK_API_URL` when unset.
pub const SLACK_API_URL: &str = "https://slack.com/api/";

/// Where the channel is: the Web API with a bot token (`SLACK_BOT_TOKEN` or `slack_bot_token`
/// in the secret, and `SLACK_CHANNEL`), else the incoming webhook.
fn slack_route(env: &Env, secrets: &SecretBundle) -> Result<Route, ConfigError> {
    let Some(token) = SecretBundle::pick(env, "SLACK_BOT_TOKEN", &secrets.slack_bot_token) else {
        if env.get("SLACK_CHANNEL").is_some() {
            return Err(ConfigError::new(
                "SLACK_BOT_TOKEN",
                "is required with SLACK_CHANNEL (set it, or slack_bot_token in the SECRETS_ARN \
                 secret), or leave SLACK_CHANNEL unset to post with the incoming webhook",
            ));
        }
        return Ok(Route::Webhook(webhook(env, secrets)?));
    };
    let channel = env.get("SLACK_CHANNEL").ok_or_else(|| {
        ConfigError::new(
            "SLACK_CHANNEL",
            "is required with a bot token: the id of the channel to post in (C0123ABCD; in \
             Slack, the channel's details end with it)",
        )
    })?;
    let id_like = channel.len() >= 3
        && channel.len() <= 24
        && matches!(channel.as_bytes()[0], b'C' | b'G' | b'D')
        && channel
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !id_like {
        return Err(ConfigError::new(
            "SLACK_CHANNEL",
            format!(
                "{channel:?} is not a channel id (C0123ABCD): the Web API takes ids, not names"
            ),
        ));
    }
    let mut base = env.get("SLACK_API_URL").unwrap_or(SLACK_API_URL).to_owned();
    check_url("SLACK_API_URL", &base, false)?;
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(Route::Api {
        api: WebApi { base, token },
        channel: channel.to_owned(),
    })
}

/// Settings common to every function.
#[derive(Debug, Clone)]
pub struct Common {
    pub state_table: String,
    /// The channel: the Web API with a bot token, or the incoming webhook.
    pub slack: Route,
    /// `STACK_NAME`: the metrics' `Stack` dimension, so two stacks never mix. Locally a default.
    pub stack: String,
}

/// The `Stack` dimension when `STACK_NAME` is unset (a local run).
pub const LOCAL_STACK: &str = "local";

impl Common {
    fn from_env(env: &Env, secrets: &SecretBundle) -> Result<Self, ConfigError> {
        Ok(Self {
            state_table: env.required("STATE_TABLE")?.to_owned(),
            slack: slack_route(env, secrets)?,
            stack: match env.get("STACK_NAME").map(str::trim) {
                None | Some("") => LOCAL_STACK.to_owned(),
                Some(name) => name.to_owned(),
            },
        })
    }
}

/// `seek`'s settings.
#[derive(Debug, Clone)]
pub struct SeekConfig {
    pub common: Common,
    /// `DATA_BUCKET`: where datasets without a bucket of their own live. Required unless
    /// every dataset names its bucket.
    pub data_bucket: Option<String>,
    pub datasets: Vec<Dataset>,
    /// `DATA_INTERVAL`: the threshold, in objects, of datasets without one of their own.
    pub data_interval: u64,
    /// ListObjectsV2 requests in flight at once, over all datasets: `LIST_CONCURRENCY`, else
    /// sized from the function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub list_concurrency: ListConcurrency,
    /// `REQUEST_TTL` in seconds: a pending question older than this expires. `None`: never.
    pub request_ttl: Option<i64>,
    /// `REMIND_AFTER` in seconds: a pending question this old gets one reminder. `None`: never.
    pub remind_after: Option<i64>,
    /// `APPROVERS`, whom the reminder mentions.
    pub approvers: crate::domain::Approvers,
}

/// The fewest ListObjectsV2 requests a sized gate keeps in flight: the fixed default before
/// sizing. Measured (ct-bench, release, 2 x 1M keys, 50 ms a page, 1 vCPU): 16 gave 250,000
/// keys/s, 32 gave 420,000. See docs/measured.md.
pub const DEFAULT_LIST_CONCURRENCY: usize = 32;

/// The memory size assumed outside Lambda (ct-local, tests): the template's default.
pub const DEFAULT_MEMORY_MB: u64 = 1024;

/// How many ListObjectsV2 requests seek keeps in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListConcurrency {
    /// `LIST_CONCURRENCY`: exactly this many.
    Fixed(usize),
    /// Sized from the memory size's CPU share and the page latency seek observes
    /// ([`crate::ranges::Gate`]).
    Sized { memory_mb: u64 },
}

impl ListConcurrency {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        if let Some(raw) = env.get("LIST_CONCURRENCY") {
            return raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .map(Self::Fixed)
                .ok_or_else(|| {
                    ConfigError::new(
                        "LIST_CONCURRENCY",
                        format!("{raw:?} is not a whole number from 1 to 1024"),
                    )
                });
        }
        Ok(Self::Sized {
            memory_mb: memory_mb(env)?,
        })
    }
}

/// Lambda's CPU share at a memory size: 1,769 MB is one vCPU (six at 10,240 MB).
pub fn vcpus(memory_mb: u64) -> f64 {
    memory_mb as f64 / 1769.0
}

/// The runtime's worker threads at a memory size: every vCPU it grants, a part counting as
/// one, and no more than the machine shows.
pub fn worker_threads(memory_mb: u64, available: usize) -> usize {
    (vcpus(memory_mb).ceil() as usize).clamp(1, available.max(1))
}

/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, set by Lambda: 128 to 10,240 MB.
pub fn memory_mb(env: &Env) -> Result<u64, ConfigError> {
    let Some(raw) = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") else {
        return Ok(DEFAULT_MEMORY_MB);
    };
    raw.parse::<u64>()
        .ok()
        .filter(|n| (128..=10_240).contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                format!("{raw:?} is not a memory size from 128 to 10240 MB"),
            )
        })
}

impl SeekConfig {
    /// The bucket a dataset's objects are in.
    pub fn bucket_of<'a>(&'a self, d: &'a Dataset) -> &'a str {
        d.bucket
            .as_deref()
            .or(self.data_bucket.as_deref())
            .unwrap_or_default()
    }

    /// The threshold that applies to a dataset: its own, else `DATA_INTERVAL` objects.
    pub fn threshold_of(&self, d: &Dataset) -> Threshold {
        d.threshold
            .unwrap_or(Threshold::Objects(self.data_interval))
    }

    pub fn from_env(env: &Env, secrets: &SecretBundle) -> Result<Self, ConfigError> {
        let datasets = parse_datasets(env.required("DATASETS")?)
            .map_err(|p| ConfigError::new("DATASETS", p))?;
        let data_bucket = env.get("DATA_BUCKET").map(str::to_owned);
        if data_bucket.is_none()
            && let Some(d) = datasets.iter().find(|d| d.bucket.is_none())
        {
            return Err(ConfigError::new(
                "DATA_BUCKET",
                format!(
                    "is required but not set: dataset {:?} names no bucket of its own \
                     (write its prefix as s3://bucket/prefix, or set DATA_BUCKET)",
                    d.name
                ),
            ));
        }
        if let Some(b) = &data_bucket
            && !bucket_name_ok(b)
        {
            return Err(ConfigError::new(
                "DATA_BUCKET",
                format!("{b:?} is not an S3 bucket name"),
            ));
        }
        let request_ttl = parse_duration(env, "REQUEST_TTL", DEFAULT_REQUEST_TTL)?;
        let remind_after = parse_duration(env, "REMIND_AFTER", DEFAULT_REMIND_AFTER)?;
        if let (Some(ttl), Some(remind)) = (request_ttl, remind_after)
            && remind >= ttl
        {
            return Err(ConfigError::new(
                "REMIND_AFTER",
                format!(
                    "must be shorter than REQUEST_TTL ({remind} s is not under {ttl} s): a \
                     reminder after the question expired reminds nobody"
                ),
            ));
        }
        let approvers = crate::domain::Approvers::parse(env.get("APPROVERS").unwrap_or(""))
            .map_err(|p| ConfigError::new("APPROVERS", p))?;
        Ok(Self {
            request_ttl,
            remind_after,
            approvers,
            data_bucket,
            datasets,
            data_interval: parse_u64(env, "DATA_INTERVAL")?,
            list_concurrency: ListConcurrency::from_env(env)?,
            common: Common::from_env(env, secrets)?,
        })
    }
}

/// How `send`'s Function URL authenticates callers (`SEND_URL_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlAuth {
    /// The URL itself checks SigV4; a configured token is still required on top.
    AwsIam,
    /// The URL is public: the bearer token is the only gate, so one must be configured.
    None,
}

/// `send`'s settings.
#[derive(Debug, Clone)]
pub struct SendConfig {
    pub common: Common,
    pub url_auth: UrlAuth,
    pub send_token: Option<Secret>,
    /// Optional: the Kubeflow Pipelines UI, so `/status` links the latest run.
    pub kubeflow_url: Option<String>,
}

impl SendConfig {
    pub fn from_env(env: &Env, secrets: &SecretBundle) -> Result<Self, ConfigError> {
        let url_auth = match env.get("SEND_URL_AUTH").unwrap_or("AWS_IAM") {
            "AWS_IAM" => UrlAuth::AwsIam,
            "NONE" => UrlAuth::None,
            other => {
                return Err(ConfigError::new(
                    "SEND_URL_AUTH",
                    format!("{other:?} is neither AWS_IAM nor NONE"),
                ));
            }
        };
        let send_token = SecretBundle::pick(env, "SEND_TOKEN", &secrets.send_token);
        let kubeflow_url = env.get("KUBEFLOW_URL").map(str::to_owned);
        if let Some(url) = &kubeflow_url {
            check_url("KUBEFLOW_URL", url, false)?;
        }
        if url_auth == UrlAuth::None && send_token.is_none() {
            return Err(ConfigError::new(
                "SEND_TOKEN",
                "is required when SEND_URL_AUTH is NONE: the URL would be open to anyone",
            ));
        }
        Ok(Self {
            common: Common::from_env(env, secrets)?,
            url_auth,
            send_token,
            kubeflow_url,
        })
    }
}

#[cfg(test)]
mod tests;
