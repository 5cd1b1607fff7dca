//! The optional Kubeflow Pipelines settings of `actions`. With no `KFP_ENDPOINT` there is no
//! launch at all and Train! posts the Kubeflow URL, as before.

use super::params::ParamTemplate;
use crate::Secret;
use crate::config::{ConfigError, Env, SecretBundle};
use std::time::Duration;

/// Which pipeline a launch runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineRef {
    Id(String),
    /// Resolved through the API when launching.
    Name(String),
}

/// `KFP_*`, parsed once at cold start.
#[derive(Debug, Clone)]
pub struct KfpConfig {
    /// The API base, e.g. `https://kubeflow.example.com/pipeline`.
    pub endpoint: String,
    pub pipeline: PipelineRef,
    /// A fixed version; otherwise the pipeline's newest one, resolved at each launch.
    pub version_id: Option<String>,
    pub experiment_id: Option<String>,
    pub namespace: Option<String>,
    pub parameters: ParamTemplate,
    /// `kubeflow_token` from the secret (or `KUBEFLOW_TOKEN`): sent as a bearer token.
    pub token: Option<Secret>,
    /// Each KFP call's own limit.
    pub timeout: Duration,
}

const RELATED: [&str; 6] = [
    "KFP_PIPELINE_ID",
    "KFP_PIPELINE_NAME",
    "KFP_PIPELINE_VERSION_ID",
    "KFP_EXPERIMENT_ID",
    "KFP_NAMESPACE",
    "KFP_PARAMETERS",
];

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl KfpConfig {
    /// `None` when `KFP_ENDPOINT` is unset. A `KFP_*` setting without it is refused rather
    /// than ignored, so a half-configured launch can't silently do nothing.
    /// `datasets`: the dataset names, when known, to check `${seeked.<name>}` placeholders.
    pub fn from_env(
        env: &Env,
        secrets: &SecretBundle,
        datasets: Option<&[String]>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(endpoint) = env.get("KFP_ENDPOINT") else {
            if let Some(name) = RELATED.iter().find(|n| env.get(n).is_some()) {
                return Err(err(
                    "KFP_ENDPOINT",
                    format!("is required when {name} is set (the KFP API base URL)"),
                ));
            }
            return Ok(None);
        };
        let ok = reqwest::Url::parse(endpoint)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .unwrap_or(false);
        if !ok {
            return Err(err(
                "KFP_ENDPOINT",
                format!("{endpoint:?} is not an http(s) URL"),
            ));
        }
        let pipeline = match (env.get("KFP_PIPELINE_ID"), env.get("KFP_PIPELINE_NAME")) {
            (Some(id), None) => PipelineRef::Id(id.to_owned()),
            (None, Some(name)) => PipelineRef::Name(name.to_owned()),
            (Some(_), Some(_)) => {
                return Err(err(
                    "KFP_PIPELINE_NAME",
                    "set KFP_PIPELINE_ID or KFP_PIPELINE_NAME, not both",
                ));
            }
            (None, None) => {
                return Err(err(
                    "KFP_PIPELINE_ID",
                    "is required with KFP_ENDPOINT (or KFP_PIPELINE_NAME)",
                ));
            }
        };
        let parameters = match env.get("KFP_PARAMETERS") {
            Some(text) => ParamTemplate::parse(text, datasets)
                .map_err(|problem| err("KFP_PARAMETERS", problem))?,
            None => ParamTemplate::default(),
        };
        let timeout = match env.get("KFP_TIMEOUT_SECS") {
            None => Duration::from_secs(10),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=600).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    err(
                        "KFP_TIMEOUT_SECS",
                        format!("{raw:?} is not a number of seconds from 1 to 600"),
                    )
                })?,
        };
        Ok(Some(Self {
            endpoint: endpoint.to_owned(),
            pipeline,
            version_id: env.get("KFP_PIPELINE_VERSION_ID").map(str::to_owned),
            experiment_id: env.get("KFP_EXPERIMENT_ID").map(str::to_owned),
            namespace: env.get("KFP_NAMESPACE").map(str::to_owned),
            parameters,
            token: secrets.kubeflow_token(env),
            timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<KfpConfig>, ConfigError> {
        KfpConfig::from_env(
            &Env::from_pairs(pairs.iter().copied()),
            &SecretBundle::default(),
            Some(&["embedding".to_owned()]),
        )
    }

    #[test]
    fn absent_means_no_launch() {
        assert!(parse(&[]).unwrap().is_none());
    }

    #[test]
    fn a_complete_setting_parses() {
        let c = parse(&[
            ("KFP_ENDPOINT", "https://kf.example.com/pipeline"),
            ("KFP_PIPELINE_NAME", "retrain"),
            ("KFP_EXPERIMENT_ID", "exp-1"),
            ("KFP_PARAMETERS", r#"{"rows": "${seeked.embedding}"}"#),
            ("KUBEFLOW_TOKEN", "tok-SECRET"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.pipeline, PipelineRef::Name("retrain".into()));
        assert_eq!(c.experiment_id.as_deref(), Some("exp-1"));
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("tok-SECRET"));
        assert!(!format!("{c:?}").contains("SECRET"));
    }

    #[test]
    fn names_the_bad_variable() {
        for (pairs, var) in [
            (vec![("KFP_PIPELINE_ID", "p")], "KFP_ENDPOINT"),
            (vec![("KFP_ENDPOINT", "kf.example.com")], "KFP_ENDPOINT"),
            (vec![("KFP_ENDPOINT", "https://kf/")], "KFP_PIPELINE_ID"),
            (
                vec![
                    ("KFP_ENDPOINT", "https://kf/"),
                    ("KFP_PIPELINE_ID", "p"),
                    ("KFP_PIPELINE_NAME", "n"),
                ],
                "KFP_PIPELINE_NAME",
            ),
            (
                vec![
                    ("KFP_ENDPOINT", "https://kf/"),
                    ("KFP_PIPELINE_ID", "p"),
                    ("KFP_PARAMETERS", r#"{"a": "${bogus}"}"#),
                ],
                "KFP_PARAMETERS",
            ),
            (
                vec![
                    ("KFP_ENDPOINT", "https://kf/"),
                    ("KFP_PIPELINE_ID", "p"),
                    ("KFP_PARAMETERS", r#"{"a": "${new.faiss}"}"#),
                ],
                "KFP_PARAMETERS",
            ),
        ] {
            let e = parse(&pairs).unwrap_err();
            assert_eq!(e.variable, var, "{pairs:?}: {e}");
        }
        let e = parse(&[
            ("KFP_ENDPOINT", "https://kf/"),
            ("KFP_PIPELINE_ID", "p"),
            ("KFP_PARAMETERS", r#"{"a": "${bogus}"}"#),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("${bogus}"), "{e}");
    }
}
