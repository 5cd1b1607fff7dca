//! Asynchronous Lambda invocations (`InvocationType=Event`): Lambda queues the event, retries a
//! failed run of it twice, then hands it to the function's on-failure destination. A launch job
//! rides on this, so it survives the click's request and any crash after it.

use serde_json::Value;
use std::future::Future;

/// Why an event could not be queued.
#[derive(Debug, Clone, thiserror::Error)]
#[error("queueing an invocation of {function}: {reason}")]
pub struct InvokeError {
    pub function: String,
    pub reason: String,
}

/// Queues one event for a function, without waiting for it to run.
pub trait AsyncInvoker: Send + Sync {
    fn invoke_async(&self, payload: &Value)
    -> impl Future<Output = Result<(), InvokeError>> + Send;
}

/// One function's async invocations through the Lambda API. Build it once at cold start.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaInvoker {
    /// `function`: a name or ARN. The SDK honours `AWS_ENDPOINT_URL_LAMBDA` (a local stand-in).
    pub fn new(sdk: &aws_config::SdkConfig, function: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_lambda::Client::new(sdk),
            function: function.into(),
        }
    }
}

impl AsyncInvoker for LambdaInvoker {
    async fn invoke_async(&self, payload: &Value) -> Result<(), InvokeError> {
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_smithy_types::Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| InvokeError {
                function: self.function.clone(),
                reason: super::describe(&e),
            })?;
        if out.status_code() == 202 {
            Ok(())
        } else {
            Err(InvokeError {
                function: self.function.clone(),
                reason: format!("Lambda answered {} instead of 202", out.status_code()),
            })
        }
    }
}
