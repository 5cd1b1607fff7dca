//! Cold start only: logging, configuration, clients; then the Function URL loop.

use ct_shared::config::ActionsConfig;
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (config, sdk) =
        ct_shared::aws::cold_start_or_exit("actions", ActionsConfig::from_env).await;
    let app = actions::LiveActions::live(config, &sdk)?;
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| actions::handle(app, req))).await
}
