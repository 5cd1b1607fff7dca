//! Reading the `SECRETS_ARN` secret once, at cold start.

use crate::config::{ConfigError, SecretBundle};

/// Fetches and parses the secret. Errors name `SECRETS_ARN` and never quote the secret.
pub async fn load_bundle(
    sdk: &aws_config::SdkConfig,
    arn: &str,
) -> Result<SecretBundle, ConfigError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| ConfigError {
            variable: "SECRETS_ARN",
            problem: format!("could not read the secret: {}", super::describe(&e)),
        })?;
    let text = out.secret_string().ok_or_else(|| ConfigError {
        variable: "SECRETS_ARN",
        problem: "the secret has no SecretString (binary secrets are not supported)".into(),
    })?;
    SecretBundle::from_json(text)
}
