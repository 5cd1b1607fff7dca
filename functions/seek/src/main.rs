//! Cold start only: logging, configuration, clients; then the Lambda loop.

use ct_shared::config::SeekConfig;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let seeker = match ct_shared::aws::cold_start(SeekConfig::from_env).await {
        Ok((config, sdk)) => seek::LiveSeeker::live(config, &sdk)?,
        Err(e) => {
            tracing::error!(variable = e.variable, "{e}");
            eprintln!("seek cannot start: {e}");
            std::process::exit(2);
        }
    };
    let seeker = &seeker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        seek::handle(seeker, event)
    }))
    .await
}
