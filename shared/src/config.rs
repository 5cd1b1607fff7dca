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
pub use actions::ActionsConfig;

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

/// One dataset: a name shown in Slack, where its objects are (a prefix, in `DATA_BUCKET` or a
/// bucket of its own), and its own threshold if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    /// `None`: `DATA_BUCKET`.
    pub bucket: Option<String>,
    pub prefix: String,
    pub threshold: Option<Threshold>,
}

impl Dataset {
    /// Where it is, as written in `DATASETS`: the prefix, or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.bucket {
            Some(b) => format!("s3://{b}/{}", self.prefix),
            None => self.prefix.clone(),
        }
    }
}

/// Whether `name` is a bucket name S3 accepts (general purpose or directory bucket).
fn bucket_name_ok(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Parses `DATASETS`: `name=prefix[:threshold],...`, where the prefix may be
/// `s3://bucket/prefix` (a bucket other than `DATA_BUCKET`) and the threshold is `N` objects,
/// `N%` of the trained objects, or a size such as `1.5GiB`:
/// `embedding=train/embedding/,faiss=s3://other/faiss/:10%,shards=train/shards/:50GB`.
///
/// Whatever follows the last `:` (after any `s3://`) is the threshold and must be one of those
/// or empty, so a typo such as `:5OO` is refused rather than read as part of the prefix. A
/// prefix that contains `:` is written with a trailing `:` (`logs=raw:2026/:`, or
/// `logs=raw:2026/:500` with a threshold).
pub fn parse_datasets(text: &str) -> Result<Vec<Dataset>, String> {
    let mut out: Vec<Dataset> = Vec::new();
    for (i, raw) in text.split(',').enumerate() {
        let item = raw.trim();
        let n = i + 1;
        if item.is_empty() {
            return Err(format!("entry {n} is empty (expected name=prefix)"));
        }
        let Some((name, rest)) = item.split_once('=') else {
            return Err(format!(
                "entry {n} ({item:?}) has no '=' (expected name=prefix)"
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "entry {n}: dataset name {name:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        let rest = rest.trim();
        let (bucket, rest) = match rest.strip_prefix("s3://") {
            Some(url) => {
                let end = url.find(['/', ':']).unwrap_or(url.len());
                let bucket = &url[..end];
                if bucket.is_empty() {
                    return Err(format!(
                        "entry {n} ({item:?}): the bucket name after s3:// is empty \
                         (expected s3://bucket/prefix)"
                    ));
                }
                if !bucket_name_ok(bucket) {
                    return Err(format!(
                        "entry {n} ({item:?}): {bucket:?} is not an S3 bucket name \
                         (3 to 63 lower-case letters, digits, '.' or '-')"
                    ));
                }
                (
                    Some(bucket),
                    url[end..].strip_prefix('/').unwrap_or(&url[end..]),
                )
            }
            None => (None, rest),
        };
        // The text after the last ':' is always the threshold, or nothing. So a prefix that
        // itself contains ':' is written with one more ':' at the end.
        let (prefix, threshold) = match rest.rsplit_once(':') {
            None => (rest, None),
            Some((p, t)) if t.trim().is_empty() => (p, None),
            Some((p, t)) => {
                let t = Threshold::parse(t).map_err(|why| {
                    format!(
                        "entry {n} ({item:?}): the threshold after the last ':' is {why} \
                         (expected name=prefix or name=prefix:N, e.g. faiss=train/faiss/:500, \
                         :10% or :1.5GiB; a prefix that contains ':' ends with one more ':', \
                         e.g. logs=s3:raw/:)"
                    )
                })?;
                (p, Some(t))
            }
        };
        // A whole bucket may be a dataset (s3://bucket/); an empty plain prefix is a typo.
        if prefix.is_empty() && bucket.is_none() {
            return Err(format!("entry {n} ({name}): the prefix is empty"));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(format!("dataset {name:?} is listed twice"));
        }
        out.push(Dataset {
            name: name.to_owned(),
            bucket: bucket.map(str::to_owned),
            prefix: prefix.to_owned(),
            threshold,
        });
    }
    Ok(out)
}

/// A duration such as `7d`, `36h`, `90m` or `30s` (whole numbers); `0` means never (`None`).
/// Unset, `default`.
pub fn parse_duration(
    env: &Env,
    name: &'static str,
    default: &str,
) -> Result<Option<i64>, ConfigError> {
    let raw = env.get(name).unwrap_or(default);
    duration_secs(raw).map_err(|why| ConfigError::new(name, format!("{raw:?} {why}")))
}

/// `7d`, `36h`, `90m`, `30s` or `0` (never) in seconds.
pub fn duration_secs(raw: &str) -> Result<Option<i64>, String> {
    let expected = "is not a duration: a whole number with a unit, s, m, h or d (e.g. 7d, 36h), \
                    or 0 for never";
    if raw == "0" {
        return Ok(None);
    }
    let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(expected.into()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected.into());
    }
    let n: i64 = number.parse().map_err(|_| "is too long".to_string())?;
    match n.checked_mul(scale) {
        Some(0) => Ok(None),
        Some(secs) if secs <= 366 * 86_400 => Ok(Some(secs)),
        _ => Err("is longer than a year".into()),
    }
}

/// `REQUEST_TTL` when unset: a question nobody answers expires after a week, as
/// CodePipeline's manual approvals do.
pub const DEFAULT_REQUEST_TTL: &str = "7d";
/// `REMIND_AFTER` when unset: one reminder after a day.
pub const DEFAULT_REMIND_AFTER: &str = "1d";

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
    /// `LIST_CONCURRENCY`: ListObjectsV2 requests in flight at once, over all datasets.
    pub list_concurrency: usize,
    /// `REQUEST_TTL` in seconds: a pending question older than this expires. `None`: never.
    pub request_ttl: Option<i64>,
    /// `REMIND_AFTER` in seconds: a pending question this old gets one reminder. `None`: never.
    pub remind_after: Option<i64>,
    /// `APPROVERS`, whom the reminder mentions.
    pub approvers: crate::domain::Approvers,
}

/// ListObjectsV2 requests in flight when `LIST_CONCURRENCY` is unset. Measured (ct-bench,
/// release, 2 x 1M keys, 50 ms a page, 1 vCPU): 16 gave 250,000 keys/s, 32 gave 420,000,
/// 64 gave 455,000 with 70% more peak RSS (44 vs 26 MiB) and more requests, 128 was slower
/// (390,000). See docs/measured.md.
pub const DEFAULT_LIST_CONCURRENCY: usize = 32;

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
            list_concurrency: match env.get("LIST_CONCURRENCY") {
                None => DEFAULT_LIST_CONCURRENCY,
                Some(raw) => raw
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "LIST_CONCURRENCY",
                            format!("{raw:?} is not a whole number from 1 to 1024"),
                        )
                    })?,
            },
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
mod tests {
    use super::*;

    #[test]
    fn parses_datasets_with_and_without_thresholds() {
        let d = parse_datasets("embedding=train/embedding/, faiss=train/faiss/:500").unwrap();
        assert_eq!(
            d,
            vec![
                Dataset {
                    name: "embedding".into(),
                    bucket: None,
                    prefix: "train/embedding/".into(),
                    threshold: None
                },
                Dataset {
                    name: "faiss".into(),
                    bucket: None,
                    prefix: "train/faiss/".into(),
                    threshold: Some(Threshold::Objects(500))
                },
            ]
        );
    }

    #[test]
    fn thresholds_in_objects_percent_and_bytes_and_datasets_in_other_buckets() {
        let d = parse_datasets(
            "a=train/a/:500,b=train/b/:2.5%,c=train/c/:1.5GiB,d=s3://other-bucket/d/:1MB,\
             e=s3://other-bucket/e/,f=s3://whole.bucket,g=s3://my-bucket:10%,h=s3://b-1/x:y/:",
        )
        .unwrap();
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.bucket.as_deref(), d.prefix.as_str(), d.threshold))
            .collect();
        assert_eq!(
            got,
            vec![
                (None, "train/a/", Some(Threshold::Objects(500))),
                (None, "train/b/", Some(Threshold::Percent(2.5))),
                (None, "train/c/", Some(Threshold::Bytes(1_610_612_736))),
                (
                    Some("other-bucket"),
                    "d/",
                    Some(Threshold::Bytes(1_000_000))
                ),
                (Some("other-bucket"), "e/", None),
                (Some("whole.bucket"), "", None),
                (Some("my-bucket"), "", Some(Threshold::Percent(10.0))),
                (Some("b-1"), "x:y/", None),
            ]
        );
        assert_eq!(d[3].location(), "s3://other-bucket/d/");
        assert_eq!(d[0].location(), "train/a/");
    }

    #[test]
    fn malformed_thresholds_and_buckets_are_refused_naming_the_entry() {
        for (text, shown) in [
            ("a=x/,b=y/:10%%", "\"10%%\""),
            ("a=x/,b=y/:5XB", "\"5XB\""),
            ("a=x/,b=y/:-3", "\"-3\""),
            ("a=x/,b=y/:1.5", "\"1.5\""),
            ("a=x/,b=s3:///y/", "bucket name after s3:// is empty"),
            ("a=x/,b=s3://", "bucket name after s3:// is empty"),
            ("a=x/,b=s3://Upper/y/", "\"Upper\" is not an S3 bucket name"),
            ("a=x/,b=s3://ab/y/", "\"ab\" is not an S3 bucket name"),
        ] {
            let err = parse_datasets(text).unwrap_err();
            assert!(err.contains("entry 2"), "{text}: {err}");
            assert!(err.contains(shown), "{text}: {err}");
        }
        let err = SeekConfig::from_env(
            &seek_env(&[("DATASETS", "a=x/:10%%")]),
            &SecretBundle::default(),
        )
        .unwrap_err();
        assert_eq!(err.variable, "DATASETS");
        assert!(
            err.to_string().contains("DATASETS") && err.to_string().contains("entry 1"),
            "{err}"
        );
    }

    #[test]
    fn data_bucket_is_needed_only_by_datasets_without_a_bucket() {
        let none = SecretBundle::default();
        let mut env = seek_env(&[("DATASETS", "a=s3://bucket-one/a/,b=s3://bucket-two/b/")]);
        env.0.remove("DATA_BUCKET");
        let cfg = SeekConfig::from_env(&env, &none).unwrap();
        assert_eq!(cfg.data_bucket, None);
        assert_eq!(cfg.bucket_of(&cfg.datasets[1]), "bucket-two");
        let mut env = seek_env(&[("DATASETS", "a=s3://bucket-one/a/,b=train/b/")]);
        env.0.remove("DATA_BUCKET");
        let err = SeekConfig::from_env(&env, &none).unwrap_err();
        assert_eq!(err.variable, "DATA_BUCKET");
        assert!(err.to_string().contains("\"b\""), "{err}");
        let cfg = SeekConfig::from_env(
            &seek_env(&[("DATASETS", "a=s3://bucket-one/a/,b=train/b/:7")]),
            &none,
        )
        .unwrap();
        assert_eq!(cfg.bucket_of(&cfg.datasets[0]), "bucket-one");
        assert_eq!(cfg.bucket_of(&cfg.datasets[1]), "bucket");
        assert_eq!(cfg.threshold_of(&cfg.datasets[0]), Threshold::Objects(100));
        assert_eq!(cfg.threshold_of(&cfg.datasets[1]), Threshold::Objects(7));
    }

    #[test]
    fn a_threshold_that_is_not_a_whole_number_is_refused_naming_the_entry() {
        for (text, entry, shown) in [
            (
                "embedding=train/embedding/,faiss=train/faiss/:5OO",
                "entry 2",
                "\"5OO\"",
            ),
            ("x=a:b/c", "entry 1", "\"b/c\""),
            ("x=a:1b", "entry 1", "\"1b\""),
            ("x=a/:-5", "entry 1", "\"-5\""),
            ("x=a/:2.5", "entry 1", "\"2.5\""),
        ] {
            let err = parse_datasets(text).unwrap_err();
            assert!(err.contains(entry), "{text}: {err}");
            assert!(err.contains(shown), "{text}: {err}");
            assert!(err.contains("name=prefix:N"), "{text}: {err}");
        }
    }

    #[test]
    fn a_prefix_with_a_colon_ends_with_one_more_colon() {
        let d =
            parse_datasets("logs=s3:odd/prefix:,x=a:b/c:7,y=ends-in-colon::,z=plain/:").unwrap();
        let got: Vec<_> = d.iter().map(|d| (d.prefix.as_str(), d.threshold)).collect();
        assert_eq!(
            got,
            vec![
                ("s3:odd/prefix", None),
                ("a:b/c", Some(Threshold::Objects(7))),
                ("ends-in-colon:", None),
                ("plain/", None),
            ]
        );
    }

    #[test]
    fn rejects_malformed_datasets() {
        for bad in [
            "",
            "embedding",
            "=train/",
            "embedding=",
            "embedding=:5",
            "a=x/,,b=y/",
            "a=x/,a=y/",
            "bad name=x/",
            "a=x/:99999999999999999999999",
            "a=x/:5OO",
            "a=:",
        ] {
            assert!(parse_datasets(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn seek_env(extra: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            ("DATA_BUCKET", "bucket"),
            ("DATASETS", "embedding=train/embedding/"),
            ("DATA_INTERVAL", "100"),
            ("STATE_TABLE", "table"),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/SECRETXYZ",
            ),
        ];
        for (k, v) in extra {
            pairs.retain(|(n, _)| n != k);
            pairs.push((k, v));
        }
        Env::from_pairs(pairs)
    }

    #[test]
    fn seek_config_names_the_bad_variable() {
        let none = SecretBundle::default();
        assert!(SeekConfig::from_env(&seek_env(&[]), &none).is_ok());
        for (var, value) in [
            ("DATA_BUCKET", ""),
            ("DATASETS", "nonsense"),
            ("DATA_INTERVAL", "ten"),
            ("DATA_INTERVAL", "-1"),
            ("LIST_CONCURRENCY", "0"),
            ("LIST_CONCURRENCY", "many"),
            ("STATE_TABLE", " "),
            ("SLACK_WEBHOOK_URL", "not a url SECRETXYZ"),
        ] {
            let err = SeekConfig::from_env(&seek_env(&[(var, value)]), &none).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
            assert!(err.to_string().contains(var));
            assert!(
                !err.to_string().contains("SECRETXYZ"),
                "secret leaked: {err}"
            );
        }
    }

    #[test]
    fn plain_variables_override_the_secret() {
        let bundle = SecretBundle::from_json(
            r#"{"slack_webhook_url":"https://from.secret/hook","slack_signing_secret":"s","send_token":"t"}"#,
        )
        .unwrap();
        let env = seek_env(&[]);
        let cfg = SeekConfig::from_env(&env, &bundle).unwrap();
        assert_eq!(
            cfg.common.slack,
            Route::Webhook(Secret::new(
                "https://hooks.slack.com/services/T/B/SECRETXYZ"
            ))
        );
        let mut env = seek_env(&[]);
        env.0.remove("SLACK_WEBHOOK_URL");
        let cfg = SeekConfig::from_env(&env, &bundle).unwrap();
        assert_eq!(
            cfg.common.slack,
            Route::Webhook(Secret::new("https://from.secret/hook"))
        );
        assert!(!format!("{cfg:?} {bundle:?}").contains("from.secret"));
    }

    #[test]
    fn a_bot_token_posts_through_the_web_api_in_one_channel() {
        let none = SecretBundle::default();
        let mut env = seek_env(&[
            ("SLACK_BOT_TOKEN", "xoxb-BOTSECRET"),
            ("SLACK_CHANNEL", "C0123ABCD"),
        ]);
        env.0.remove("SLACK_WEBHOOK_URL");
        let cfg = SeekConfig::from_env(&env, &none).unwrap();
        let Route::Api { api, channel } = &cfg.common.slack else {
            panic!("{:?}", cfg.common.slack)
        };
        assert_eq!(
            (api.base.as_str(), channel.as_str()),
            (SLACK_API_URL, "C0123ABCD")
        );
        assert_eq!(api.token.expose(), "xoxb-BOTSECRET");
        assert!(!format!("{cfg:?}").contains("BOTSECRET"));
        // From the secret, with a local API.
        let bundle = SecretBundle::from_json(r#"{"slack_bot_token":"xoxb-FROMSECRET"}"#).unwrap();
        let mut env = seek_env(&[
            ("SLACK_CHANNEL", "C0123ABCD"),
            ("SLACK_API_URL", "http://127.0.0.1:9/api"),
        ]);
        env.0.remove("SLACK_WEBHOOK_URL");
        let cfg = SeekConfig::from_env(&env, &bundle).unwrap();
        let Route::Api { api, .. } = &cfg.common.slack else {
            panic!()
        };
        assert_eq!(api.base, "http://127.0.0.1:9/api/");
        for (extra, variable) in [
            (vec![("SLACK_BOT_TOKEN", "xoxb-BOTSECRET")], "SLACK_CHANNEL"),
            (
                vec![
                    ("SLACK_BOT_TOKEN", "xoxb-BOTSECRET"),
                    ("SLACK_CHANNEL", "#training"),
                ],
                "SLACK_CHANNEL",
            ),
            (vec![("SLACK_CHANNEL", "C0123ABCD")], "SLACK_BOT_TOKEN"),
            (
                vec![
                    ("SLACK_BOT_TOKEN", "xoxb-BOTSECRET"),
                    ("SLACK_CHANNEL", "C0123ABCD"),
                    ("SLACK_API_URL", "slack"),
                ],
                "SLACK_API_URL",
            ),
        ] {
            let mut env = seek_env(&extra);
            env.0.remove("SLACK_WEBHOOK_URL");
            let err = SeekConfig::from_env(&env, &none).unwrap_err();
            assert_eq!(err.variable, variable, "{extra:?}: {err}");
            assert!(!err.to_string().contains("BOTSECRET"), "{err}");
        }
    }

    #[test]
    fn lifetimes_are_durations_with_units_or_never_and_the_reminder_comes_first() {
        for (raw, want) in [
            ("7d", Some(604_800)),
            ("36h", Some(129_600)),
            ("90m", Some(5_400)),
            ("30s", Some(30)),
            ("0", None),
            ("0d", None),
        ] {
            assert_eq!(duration_secs(raw), Ok(want), "{raw}");
        }
        for bad in [
            "7",
            "d",
            "1.5h",
            "-1d",
            "7w",
            "",
            "7 d",
            "400d",
            "99999999999999999999d",
        ] {
            assert!(duration_secs(bad).is_err(), "{bad:?}");
        }
        let none = SecretBundle::default();
        let cfg = SeekConfig::from_env(&seek_env(&[]), &none).unwrap();
        assert_eq!(
            (cfg.request_ttl, cfg.remind_after),
            (Some(604_800), Some(86_400))
        );
        let cfg = SeekConfig::from_env(&seek_env(&[("REQUEST_TTL", "0")]), &none).unwrap();
        assert_eq!(cfg.request_ttl, None);
        for (extra, variable) in [
            (vec![("REQUEST_TTL", "weekly")], "REQUEST_TTL"),
            (vec![("REMIND_AFTER", "1x")], "REMIND_AFTER"),
            (
                vec![("REQUEST_TTL", "1h"), ("REMIND_AFTER", "1h")],
                "REMIND_AFTER",
            ),
            (vec![("APPROVERS", "ann")], "APPROVERS"),
        ] {
            let err = SeekConfig::from_env(&seek_env(&extra), &none).unwrap_err();
            assert_eq!(err.variable, variable, "{extra:?}: {err}");
        }
    }

    #[test]
    fn bad_secret_json_does_not_quote_it() {
        let err = SecretBundle::from_json("{\"slack_webhook_url\": 5, \"x\": \"hunter2\"}")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.variable, "SECRETS_ARN");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn send_without_token_on_a_public_url_refuses_to_start() {
        let env = Env::from_pairs([
            ("STATE_TABLE", "t"),
            ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
            ("SEND_URL_AUTH", "NONE"),
        ]);
        let err = SendConfig::from_env(&env, &SecretBundle::default()).unwrap_err();
        assert_eq!(err.variable, "SEND_TOKEN");
        let env = Env::from_pairs([
            ("STATE_TABLE", "t"),
            ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
            ("SEND_URL_AUTH", "iam"),
        ]);
        let err = SendConfig::from_env(&env, &SecretBundle::default()).unwrap_err();
        assert_eq!(err.variable, "SEND_URL_AUTH");
    }
}
