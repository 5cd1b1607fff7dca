//! The test harness: real servers on loopback, shared by the end-to-end tests and the local run.
//!
//! - [`moto`]: a moto server (S3, DynamoDB, Secrets Manager) on a free port, one per process,
//!   plus helpers that create buckets, objects and the state table (from `template.yaml`).
//! - [`slack`]: a stand-in for Slack's incoming webhook and `response_url` that records what it
//!   receives and answers 429, 500 or slowly on demand.
//! - [`runtime`]: a stand-in for the Lambda Runtime API, to drive the real function binaries.
//! - [`invoke`]: a stand-in for the Lambda Invoke API that hands events to a runtime stand-in.
//! - [`kfp`]: a stand-in for the Kubeflow Pipelines REST API that records runs and fails on demand.
//! - [`events`]: events in their real JSON shapes.
//! - [`dynamo_proxy`]: a proxy in front of moto's DynamoDB that loses answers, throttles or
//!   fails on demand.
//! - [`actions_api`], [`launch_rig`]: driving actions in-process, and as Lambda runs it with
//!   Kubeflow Pipelines and the Invoke API beside it.
//! - [`send_api`]: calling the send function as a pipeline step does, and reading what it
//!   posted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod actions_api;
pub mod console;
pub mod dynamo_proxy;
pub mod emf;
pub mod events;
pub mod fake_s3;
pub mod function_url;
pub mod invoke;
pub mod kfp;
pub mod launch_rig;
pub mod moto;
pub mod render;
pub mod runtime;
pub mod send_api;
pub mod slack;
pub mod slack_events;
pub mod terminal;
pub mod tls;
pub mod world;

pub use world::World;

use std::path::PathBuf;

/// The repository's root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A name unique to this process and call, for buckets and tables (each test uses its own).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
