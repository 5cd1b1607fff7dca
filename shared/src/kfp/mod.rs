//! Kubeflow Pipelines: the capability a launch needs (find a run by its display name, create one,
//! resolve a pipeline and its latest version), the reasons a launch can fail in words a person
//! can act on, and the run parameters filled from an approved snapshot.
//!
//! KFP has no idempotency key, so a launch names its run after the approval request
//! ([`display_name`]) and looks for that name before it creates anything.

pub mod client;
pub mod config;
pub mod params;

pub use client::KfpClient;
pub use config::{KfpConfig, PipelineRef};
pub use params::{LaunchContext, ParamTemplate};

use serde::Serialize;
use std::future::Future;

/// A run as KFP reports it (only what ct-trigger uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub run_id: String,
    pub display_name: String,
    /// KFP's runtime state, e.g. `PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`.
    pub state: String,
    pub pipeline_version_id: Option<String>,
}

/// A run to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub display_name: String,
    pub pipeline_id: String,
    pub pipeline_version_id: String,
    pub experiment_id: Option<String>,
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// The display name a request's run gets: how a retried launch finds the run an earlier
/// attempt created but never heard back about.
pub fn display_name(request_id: &str) -> String {
    format!("ct-trigger {request_id}")
}

/// The KFP UI's page for a run, under the dashboard URL (`KUBEFLOW_URL`).
pub fn run_link(ui_base: &str, run_id: &str) -> String {
    format!("{}/#/runs/details/{run_id}", ui_base.trim_end_matches('/'))
}

/// Why KFP did not do what was asked. `Display` is the reason shown in Slack: short, and
/// never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KfpError {
    /// 401 or 403, or a redirect to a login page (oauth2-proxy in front of Kubeflow).
    #[error("Kubeflow needs authentication (HTTP {status}): check kubeflow_token in the secret")]
    AuthNeeded { status: u16 },
    #[error("{what} was not found in Kubeflow Pipelines")]
    NotFound { what: String },
    /// 400: KFP refused the request, usually the parameters.
    #[error("Kubeflow Pipelines refused the run's parameters: {message}")]
    Refused { message: String },
    /// A timeout, a connection failure or a 5xx.
    #[error("Kubeflow Pipelines is unavailable ({detail})")]
    Unavailable { detail: String },
    #[error("Kubeflow Pipelines answered HTTP {status} unexpectedly: {detail}")]
    Unexpected { status: u16, detail: String },
    /// A parameter names a dataset the approved snapshot does not have.
    #[error("the run's parameters could not be filled: {0}")]
    Parameters(String),
}

impl KfpError {
    /// Whether trying again later may help (KFP unavailable); the others need a person.
    pub fn is_transient(&self) -> bool {
        matches!(self, KfpError::Unavailable { .. })
    }
}

/// What a launch needs from Kubeflow Pipelines.
pub trait Pipelines: Send + Sync {
    /// The newest run with exactly this display name, if any.
    fn find_run(
        &self,
        display_name: &str,
    ) -> impl Future<Output = Result<Option<Run>, KfpError>> + Send;
    fn create_run(&self, run: &NewRun) -> impl Future<Output = Result<Run, KfpError>> + Send;
    fn get_run(&self, run_id: &str) -> impl Future<Output = Result<Run, KfpError>> + Send;
    /// The id of the pipeline with this name.
    fn pipeline_id(&self, name: &str) -> impl Future<Output = Result<String, KfpError>> + Send;
    /// The id of the pipeline's newest version.
    fn latest_version(
        &self,
        pipeline_id: &str,
    ) -> impl Future<Output = Result<String, KfpError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_names() {
        assert_eq!(
            run_link("https://kf.example.com/pipeline/", "r-1"),
            "https://kf.example.com/pipeline/#/runs/details/r-1"
        );
        assert_eq!(
            run_link("http://127.0.0.1:9/", "x"),
            "http://127.0.0.1:9/#/runs/details/x"
        );
        assert_eq!(display_name("abc"), "ct-trigger abc");
    }

    #[test]
    fn only_unavailability_is_transient() {
        assert!(KfpError::Unavailable { detail: "x".into() }.is_transient());
        assert!(!KfpError::AuthNeeded { status: 401 }.is_transient());
        assert!(
            !KfpError::Refused {
                message: "m".into()
            }
            .is_transient()
        );
    }
}
