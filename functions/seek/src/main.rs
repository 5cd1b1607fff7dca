//! Cold start only: logging, configuration, clients; then the Lambda loop.

use ct_shared::config::SeekConfig;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (config, sdk) = ct_shared::aws::cold_start_or_exit("seek", SeekConfig::from_env).await;
    let seeker = seek::LiveSeeker::live(config, &sdk)?;
    let seeker = &seeker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        seek::serve(seeker, event)
    }))
    .await
}
