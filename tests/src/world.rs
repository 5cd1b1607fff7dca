//! One test's world: its own bucket and table on the shared moto server, and its own Slack.

use crate::slack::SlackStandIn;
use ct_shared::config::{ActionsConfig, Env, SecretBundle, SeekConfig};

pub struct World {
    pub sdk: aws_config::SdkConfig,
    pub slack: SlackStandIn,
    pub bucket: String,
    pub table: String,
}

impl World {
    pub async fn new() -> Self {
        let sdk = crate::moto::sdk().await;
        let bucket = crate::unique("data");
        let table = crate::unique("state");
        crate::moto::create_bucket(&sdk, &bucket).await;
        crate::moto::create_table(&sdk, &table).await;
        let slack = SlackStandIn::start().await;
        Self {
            sdk,
            slack,
            bucket,
            table,
        }
    }

    /// seek's environment, as template.yaml would set it, for these datasets and interval.
    pub fn seek_env(&self, datasets: &str, interval: u64) -> Vec<(String, String)> {
        vec![
            ("DATA_BUCKET".into(), self.bucket.clone()),
            ("DATASETS".into(), datasets.into()),
            ("DATA_INTERVAL".into(), interval.to_string()),
            ("STATE_TABLE".into(), self.table.clone()),
            ("SLACK_WEBHOOK_URL".into(), self.slack.webhook_url()),
        ]
    }

    /// The Web API's settings, with the stand-in's base URL and the tests' bot token (replacing
    /// the webhook: without it, the functions post through the Web API).
    pub fn api_env(&self) -> Vec<(String, String)> {
        vec![
            ("SLACK_BOT_TOKEN".into(), crate::slack::BOT_TOKEN.into()),
            ("SLACK_CHANNEL".into(), "C0TESTCHAN".into()),
            ("SLACK_API_URL".into(), self.slack.api_url()),
        ]
    }

    /// The real seek handler's dependencies, built the way `main` builds them.
    pub fn seeker(&self, datasets: &str, interval: u64) -> seek::LiveSeeker {
        let env = Env::from_pairs(self.seek_env(datasets, interval));
        let config =
            SeekConfig::from_env(&env, &SecretBundle::default()).expect("valid seek config");
        seek::LiveSeeker::live(config, &self.sdk).expect("seeker")
    }

    /// The Kubeflow URL the tests configure.
    pub const KUBEFLOW_URL: &'static str = "https://kubeflow.example.com/_/pipeline/";

    /// actions' environment, as template.yaml would set it.
    pub fn actions_env(&self) -> Vec<(String, String)> {
        vec![
            ("STATE_TABLE".into(), self.table.clone()),
            ("SLACK_WEBHOOK_URL".into(), self.slack.webhook_url()),
            (
                "SLACK_SIGNING_SECRET".into(),
                crate::slack_events::SIGNING_SECRET.into(),
            ),
            ("KUBEFLOW_URL".into(), Self::KUBEFLOW_URL.into()),
        ]
    }

    /// The real actions handler's dependencies, built the way `main` builds them.
    pub fn actions(&self) -> actions::LiveActions {
        let env = Env::from_pairs(self.actions_env());
        let config =
            ActionsConfig::from_env(&env, &SecretBundle::default()).expect("valid actions config");
        actions::LiveActions::live(config, &self.sdk).expect("actions")
    }

    /// The weekly seek as deployed for one dataset, `embedding=train/embedding/` with a
    /// threshold of 100: the real handler, an EventBridge Scheduled Event for `week`.
    pub async fn weekly_seek(&self, week: &str) -> seek::Outcome {
        let seeker = self.seeker("embedding=train/embedding/", 100);
        let event = crate::events::invocation(crate::events::scheduled_event(week), week);
        seek::handle(&seeker, event).await.expect("seek succeeds")
    }

    pub async fn put(&self, prefix: &str, start: usize, n: usize) {
        crate::moto::put_objects(&self.sdk, &self.bucket, prefix, start, n).await;
    }

    pub async fn item(
        &self,
        pk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        crate::moto::item(&self.sdk, &self.table, pk).await
    }

    /// A number attribute of an item, for assertions.
    pub async fn number(&self, pk: &str, attr: &str) -> Option<u64> {
        self.item(pk).await?.get(attr)?.as_n().ok()?.parse().ok()
    }

    pub async fn string(&self, pk: &str, attr: &str) -> Option<String> {
        self.item(pk).await?.get(attr)?.as_s().ok().cloned()
    }
}
