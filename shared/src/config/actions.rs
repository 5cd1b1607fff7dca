//! `actions`' settings: Slack's signing secret, Kubeflow (the URL, and Pipelines when Train!
//! starts the run), who may approve, and what `/ct-trigger` needs.

use super::{Common, ConfigError, Env, SecretBundle, check_url, parse_datasets};
use crate::Secret;

/// `actions`' settings.
#[derive(Debug, Clone)]
pub struct ActionsConfig {
    pub common: Common,
    pub signing_secret: Secret,
    pub kubeflow_url: String,
    /// Kubeflow Pipelines, when Train! starts the run itself (`KFP_ENDPOINT` set).
    pub kfp: Option<crate::kfp::KfpConfig>,
    /// The function launch jobs are queued to: `LAUNCH_FUNCTION_NAME`, or this function itself
    /// (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets). Needed only with `kfp`.
    pub launch_function: Option<String>,
    /// `APPROVERS`: who may click Train!/Nope! (and run `/ct-trigger seek`). Empty: anyone.
    pub approvers: crate::domain::Approvers,
    /// `SEEK_FUNCTION_NAME`: the seek function `/ct-trigger seek` invokes. Unset: the command
    /// says it is not available.
    pub seek_function: Option<String>,
    /// `SCHEDULE_EXPRESSION` in `SCHEDULE_TIMEZONE`: seek's schedule, for the next-run line of
    /// `/ct-trigger status`. Unset: the line is left out.
    pub schedule: Option<crate::schedule::Schedule>,
    /// `SEEK_COOLDOWN_MINUTES` (default 15, at most a week; 0: none): how long a count started
    /// with `/ct-trigger seek` holds the next one off, in seconds.
    pub seek_cooldown_secs: i64,
    /// `REQUEST_TTL` in seconds: a click on a question older than this is refused (and the
    /// question recorded as expired). `None`: never.
    pub request_ttl: Option<i64>,
}

/// `SEEK_COOLDOWN_MINUTES` when unset.
pub const DEFAULT_SEEK_COOLDOWN_MINUTES: i64 = 15;

fn seek_cooldown_secs(env: &Env) -> Result<i64, ConfigError> {
    const NAME: &str = "SEEK_COOLDOWN_MINUTES";
    let Some(raw) = env.get(NAME) else {
        return Ok(DEFAULT_SEEK_COOLDOWN_MINUTES * 60);
    };
    match raw.parse::<i64>() {
        Ok(minutes @ 0..=10_080) => Ok(minutes * 60),
        _ => Err(ConfigError::new(
            NAME,
            format!("{raw:?} is not a whole number of minutes from 0 to 10080 (a week)"),
        )),
    }
}

impl ActionsConfig {
    pub fn from_env(env: &Env, secrets: &SecretBundle) -> Result<Self, ConfigError> {
        let signing_secret =
            SecretBundle::pick(env, "SLACK_SIGNING_SECRET", &secrets.slack_signing_secret)
                .ok_or_else(|| {
                    ConfigError::new(
                        "SLACK_SIGNING_SECRET",
                        "is required (set it, or slack_signing_secret in the SECRETS_ARN secret)",
                    )
                })?;
        let kubeflow_url = env.required("KUBEFLOW_URL")?.to_owned();
        check_url("KUBEFLOW_URL", &kubeflow_url, false)?;
        // DATASETS, when actions has it, lets KFP_PARAMETERS name only real datasets.
        let datasets = match env.get("DATASETS") {
            Some(text) => Some(
                parse_datasets(text)
                    .map_err(|p| ConfigError::new("DATASETS", p))?
                    .into_iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>(),
            ),
            None => None,
        };
        let kfp = crate::kfp::KfpConfig::from_env(env, secrets, datasets.as_deref())?;
        let launch_function = env
            .get("LAUNCH_FUNCTION_NAME")
            .or_else(|| env.get("AWS_LAMBDA_FUNCTION_NAME"))
            .map(str::to_owned);
        if kfp.is_some() && launch_function.is_none() {
            return Err(ConfigError::new(
                "LAUNCH_FUNCTION_NAME",
                "is required with KFP_ENDPOINT outside Lambda (the function launch jobs go to)",
            ));
        }
        let approvers = crate::domain::Approvers::parse(env.get("APPROVERS").unwrap_or(""))
            .map_err(|p| ConfigError::new("APPROVERS", p))?;
        let schedule = match env.get("SCHEDULE_EXPRESSION") {
            Some(expression) => Some(
                crate::schedule::Schedule::parse(
                    expression,
                    env.get("SCHEDULE_TIMEZONE").unwrap_or(""),
                )
                .map_err(|e| match e {
                    crate::schedule::ScheduleError::Expression(p) => {
                        ConfigError::new("SCHEDULE_EXPRESSION", p)
                    }
                    crate::schedule::ScheduleError::Zone(p) => {
                        ConfigError::new("SCHEDULE_TIMEZONE", p)
                    }
                })?,
            ),
            None => None,
        };
        Ok(Self {
            common: Common::from_env(env, secrets)?,
            signing_secret,
            kubeflow_url,
            kfp,
            launch_function,
            approvers,
            seek_function: env.get("SEEK_FUNCTION_NAME").map(str::to_owned),
            schedule,
            seek_cooldown_secs: seek_cooldown_secs(env)?,
            request_ttl: super::parse_duration(env, "REQUEST_TTL", super::DEFAULT_REQUEST_TTL)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(cooldown: Option<&str>) -> Result<ActionsConfig, ConfigError> {
        let mut env = vec![
            ("STATE_TABLE", "t"),
            ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
            ("SLACK_SIGNING_SECRET", "s"),
            ("KUBEFLOW_URL", "https://kubeflow.example/"),
        ];
        if let Some(c) = cooldown {
            env.push(("SEEK_COOLDOWN_MINUTES", c));
        }
        ActionsConfig::from_env(&Env::from_pairs(env), &SecretBundle::default())
    }

    #[test]
    fn the_seek_cooldown_is_whole_minutes_up_to_a_week_and_defaults_to_15() {
        let secs = |c| with(c).map(|config| config.seek_cooldown_secs);
        assert_eq!(secs(None), Ok(15 * 60));
        assert_eq!(secs(Some("")), Ok(15 * 60), "an unset template parameter");
        assert_eq!(secs(Some("0")), Ok(0));
        assert_eq!(secs(Some("10080")), Ok(7 * 24 * 3600));
        for bad in ["10081", "-1", "1.5", "15m"] {
            let e = secs(Some(bad)).unwrap_err();
            assert_eq!(e.variable, "SEEK_COOLDOWN_MINUTES", "{bad}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
