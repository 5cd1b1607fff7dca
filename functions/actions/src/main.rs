//! Cold start only: logging, configuration, clients; then the Lambda loop, which takes Slack's
//! requests through the Function URL and the launch jobs actions queues to itself.

use ct_shared::config::ActionsConfig;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (config, sdk) =
        ct_shared::aws::cold_start_or_exit("actions", ActionsConfig::from_env).await;
    let launcher = actions::launch::LiveLauncher::live(&config, &sdk)?;
    let app = actions::LiveActions::live(config, &sdk)?;
    let (app, launcher) = (&app, launcher.as_ref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        actions::dispatch(app, launcher, event)
    }))
    .await
}
