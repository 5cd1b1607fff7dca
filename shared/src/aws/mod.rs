//! Adapters to AWS: counting objects in S3, the state table in DynamoDB, and the secret.
//! Each returns domain-shaped results and errors, never SDK types.

pub mod dynamo;
mod http;
pub mod invoke;
pub mod s3;
pub mod secrets;

pub use aws_config::SdkConfig;

/// Loads the SDK configuration once, at cold start: region, credentials and, when the SDK's own
/// `AWS_ENDPOINT_URL` is set (a local emulator, MinIO), that endpoint. Every client made from it
/// calls AWS through [`http::LeanHttp`], on the process's one TLS configuration.
pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match http::LeanHttp::new() {
        Ok(lean) => loader = loader.http_client(lean),
        Err(e) => tracing::warn!(error = %e, "calling AWS with the SDK's default HTTP client"),
    }
    loader.load().await
}

/// Renders an SDK error with its whole chain (the SDK's `Display` alone says "service error").
pub(crate) fn describe<E: std::error::Error>(err: &E) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Cold start, shared by every function: snapshot the environment, load the SDK configuration,
/// read the `SECRETS_ARN` secret if one is named, and parse the function's typed settings.
pub async fn cold_start<T>(
    parse: impl FnOnce(
        &crate::config::Env,
        &crate::config::SecretBundle,
    ) -> Result<T, crate::config::ConfigError>,
) -> Result<(T, SdkConfig), crate::config::ConfigError> {
    let env = crate::config::Env::from_process();
    let sdk = load_sdk_config().await;
    let secrets = match env.get("SECRETS_ARN") {
        Some(arn) => secrets::load_bundle(&sdk, arn).await?,
        None => crate::config::SecretBundle::default(),
    };
    Ok((parse(&env, &secrets)?, sdk))
}

/// [`cold_start`] for a function's `main`: on a missing or malformed setting, prints
/// `<function> cannot start: <what>` once, to stderr (which Lambda keeps in the function's log
/// as well), and exits with status 2, so Lambda reports an init error that names the variable.
pub async fn cold_start_or_exit<T>(
    function: &str,
    parse: impl FnOnce(
        &crate::config::Env,
        &crate::config::SecretBundle,
    ) -> Result<T, crate::config::ConfigError>,
) -> (T, SdkConfig) {
    match cold_start(parse).await {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("{function} cannot start: {e}");
            std::process::exit(2);
        }
    }
}
