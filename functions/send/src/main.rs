//! Cold start only: logging, configuration, clients; then the Lambda loop.

use ct_shared::config::SendConfig;
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let sender = match ct_shared::aws::cold_start(SendConfig::from_env).await {
        Ok((config, sdk)) => send::LiveSender::live(config, &sdk)?,
        Err(e) => {
            tracing::error!(variable = e.variable, "{e}");
            eprintln!("send cannot start: {e}");
            std::process::exit(2);
        }
    };
    let sender = &sender;
    lambda_http::run(service_fn(move |req: Request| send::handle(sender, req))).await
}
