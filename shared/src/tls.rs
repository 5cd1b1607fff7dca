//! One TLS client configuration per process, shared by every HTTPS client here (the AWS SDK's,
//! Slack's and Kubeflow's): rustls with the AWS SDK's crypto provider (aws-lc-rs) and the OS's
//! root certificates, read once.
//!
//! Each client used to read and parse the roots itself: seek read them three times at cold
//! start (the SDK's HTTP client, reqwest, and S3's own client), actions and send twice. Where
//! the roots are a directory of files (this machine: 150, each opened three times), that was
//! most of seek's cold start (ct-bench: see docs/measured.md).

use std::sync::{Arc, OnceLock};

/// The shared configuration, or why there is none (no root certificates found).
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(load).clone()
}

fn load() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no root certificates found for TLS ({} errors reading them)",
            found.errors.len()
        ));
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// reqwest is built without a crypto provider of its own: it uses the AWS SDK's (aws-lc-rs),
/// so a binary carries one TLS crypto library, not two. Call this before building any
/// `reqwest::Client`; calling it again is harmless.
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// A reqwest client builder on the shared configuration. Without one (no roots found), reqwest
/// looks for the roots itself, as before.
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    install_provider();
    let builder = reqwest::Client::builder();
    match client_config() {
        Ok(tls) => builder.use_preconfigured_tls((*tls).clone()),
        Err(_) => builder,
    }
}
