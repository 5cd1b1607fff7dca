//! The launch tests' rig: one world with actions deployed as Lambda runs it (behind a Runtime
//! API stand-in, queueing launch jobs to itself through a Lambda Invoke API stand-in), a Slack
//! stand-in and a Kubeflow Pipelines stand-in that fails on demand.

use crate::World;
use crate::invoke::InvokeStandIn;
use crate::kfp::KfpStandIn;
use crate::runtime::{LambdaRuntime, lambda_env, logs, spawn};
use crate::slack::WEBHOOK_TOKEN;
use crate::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const WEEK: &str = "2026-11-24T00:00:00Z";
pub const ANN: (&str, &str) = ("U0ANN", "ann");
pub const PARAMETERS: &str = r#"{"rows": "${seeked.embedding}", "fresh": "${new.embedding}", "tag": "ct-${request_id} by ${approved_by}", "epochs": 3}"#;

/// One world with actions deployed as Lambda would run it.
pub struct Rig {
    pub w: World,
    pub kfp: KfpStandIn,
    pub invoke: InvokeStandIn,
    pub runtime: LambdaRuntime,
    pub children: Vec<tokio::process::Child>,
    pub logs: Vec<Arc<Mutex<Vec<String>>>>,
    pub clicks: u32,
    /// Who clicks next.
    pub who: (&'static str, &'static str),
}

impl Rig {
    /// `kfp`: whether the KFP settings are given; `instances`: concurrent execution environments.
    pub async fn start(kfp_settings: bool, instances: usize) -> Self {
        Self::start_with(kfp_settings, instances, &[]).await
    }

    /// As [`Rig::start`], with more variables for actions.
    pub async fn start_with(kfp_settings: bool, instances: usize, extra: &[(&str, &str)]) -> Self {
        let w = World::new().await;
        let kfp = KfpStandIn::start().await;
        let invoke = InvokeStandIn::start().await;
        let runtime = LambdaRuntime::start().await;
        invoke.register("actions", &runtime);
        let mut env = lambda_env("actions", Some(&runtime.api), crate::moto::url());
        env.extend(w.actions_env());
        env.retain(|(k, _)| k != "KUBEFLOW_URL");
        env.push(("KUBEFLOW_URL".into(), format!("{}/", kfp.base)));
        env.push(("AWS_ENDPOINT_URL_LAMBDA".into(), invoke.url.clone()));
        if kfp_settings {
            for (k, v) in [
                ("KFP_ENDPOINT", kfp.base.as_str()),
                ("KFP_PIPELINE_NAME", "retrain"),
                ("KFP_EXPERIMENT_ID", "exp-1"),
                ("KFP_PARAMETERS", PARAMETERS),
                ("KFP_TIMEOUT_SECS", "1"),
                ("DATASETS", "embedding=train/embedding/"),
            ] {
                env.push((k.into(), v.into()));
            }
        }
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut children = Vec::new();
        let mut all_logs = Vec::new();
        for _ in 0..instances {
            let mut child = spawn("actions", &env);
            all_logs.push(logs(&mut child));
            children.push(child);
        }
        Self {
            w,
            kfp,
            invoke,
            runtime,
            children,
            logs: all_logs,
            clicks: 0,
            who: ANN,
        }
    }

    /// GIVEN 150 new objects, the weekly seek's question: its request id.
    pub async fn asked(&self) -> String {
        self.w.put("train/embedding/", 0, 150).await;
        self.w.weekly_seek(WEEK).await.request_id.expect("asked")
    }

    /// A signed click through the binary's Function URL; its HTTP status.
    pub async fn click(&mut self, action: &str, request_id: &str, response: &str) -> u16 {
        self.clicks += 1;
        let body = form(&block_actions(
            action,
            request_id,
            self.who,
            &self.w.slack.response_url(response),
        ));
        let now = ct_shared::Timestamp::now().secs();
        let event = signed_event(
            SIGNING_SECRET,
            now,
            &body,
            "application/x-www-form-urlencoded",
        );
        let answer = self
            .runtime
            .invoke(
                &format!("click-{}", self.clicks),
                event,
                Duration::from_secs(30),
            )
            .await
            .expect("answered")
            .expect("succeeded");
        answer["statusCode"].as_u64().unwrap() as u16
    }

    /// The channel's messages' texts.
    pub fn channel(&self) -> Vec<String> {
        self.w
            .slack
            .channel()
            .iter()
            .map(|p| p.text().to_owned())
            .collect()
    }

    /// `GET /status` from the real send handler, configured with the KFP UI's address.
    pub async fn status(&self) -> Value {
        use ct_shared::config::{Env, SecretBundle, SendConfig};
        let env = Env::from_pairs([
            ("STATE_TABLE".to_owned(), self.w.table.clone()),
            ("SLACK_WEBHOOK_URL".to_owned(), self.w.slack.webhook_url()),
            ("SEND_URL_AUTH".to_owned(), "NONE".to_owned()),
            ("SEND_TOKEN".to_owned(), "status-token".to_owned()),
            ("KUBEFLOW_URL".to_owned(), format!("{}/", self.kfp.base)),
        ]);
        let config = SendConfig::from_env(&env, &SecretBundle::default()).unwrap();
        let sender = send::LiveSender::live(config, &self.w.sdk).unwrap();
        let event = crate::events::function_url_event(
            "GET",
            "/status",
            &[("authorization", "Bearer status-token")],
            b"",
            false,
        );
        let resp = send::handle(&sender, crate::events::http_request(event))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        serde_json::from_slice(resp.body()).unwrap()
    }

    pub fn launch_jobs(&self) -> usize {
        self.invoke
            .seen()
            .iter()
            .filter(|i| {
                i.invocation_type == "Event" && i.payload.get("ct_trigger_launch").is_some()
            })
            .count()
    }

    pub async fn stop(mut self) -> Vec<String> {
        for c in &mut self.children {
            c.kill().await.ok();
        }
        let lines: Vec<String> = self
            .logs
            .iter()
            .flat_map(|l| l.lock().unwrap().clone())
            .collect();
        for line in &lines {
            assert!(
                !line.contains(WEBHOOK_TOKEN) && !line.contains(SIGNING_SECRET),
                "secret in log: {line}"
            );
        }
        lines
    }
}

pub fn started_messages(channel: &[String]) -> usize {
    channel
        .iter()
        .filter(|t| t.starts_with("Training started: "))
        .count()
}
