//! Cold start only: logging, configuration, clients; then the Lambda loop.

use ct_shared::config::SendConfig;
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (config, sdk) = ct_shared::aws::cold_start_or_exit("send", SendConfig::from_env).await;
    let sender = send::LiveSender::live(config, &sdk)?;
    let sender = &sender;
    lambda_http::run(service_fn(move |req: Request| send::handle(sender, req))).await
}
