//! Cold start only: logging, configuration, clients; then the Function URL loop.

use ct_shared::config::ActionsConfig;
use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = match ct_shared::aws::cold_start(ActionsConfig::from_env).await {
        Ok((config, sdk)) => actions::LiveActions::live(config, &sdk)?,
        Err(e) => {
            tracing::error!(variable = e.variable, "{e}");
            eprintln!("actions cannot start: {e}");
            std::process::exit(2);
        }
    };
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| actions::handle(app, req))).await
}
