//! ct-trigger's shared library: the domain (datasets, counts, approval requests), the AWS
//! adapters (S3 counter, DynamoDB store, secrets loader) and Slack's wire format.
//!
//! Nothing here depends on the Lambda runtime: the functions under `functions/` own their
//! event shapes and only call into this crate.

pub mod alarm;
pub mod asking;
pub mod aws;
pub mod config;
pub mod domain;
pub mod fingerprint;
pub mod keyspace;
pub mod kfp;
pub mod metrics;
pub mod ranges;
pub mod schedule;
pub mod secret;
pub mod slack;
pub mod time;
pub mod tls;

pub use secret::Secret;
pub use time::Timestamp;
