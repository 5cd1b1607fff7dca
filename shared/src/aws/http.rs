//! The HTTP client seek lists S3 with: hyper's legacy client, as the SDK's default client is,
//! with HTTP/1 read buffers capped at [`READ_BUFFER`]. The SDK still signs, resolves the
//! endpoint, classifies errors and retries; this only carries requests.
//!
//! Why: hyper grows a connection's read buffer while a response arrives faster than it is
//! read, up to 8 KiB + 400 KiB, and keeps it. A page of 1,000 keys is about 300 KB, so each
//! of the 32 requests in flight held a buffer of that size: 58% of seek's peak heap (valgrind
//! massif, 2 x 200k keys), and peak RSS went from 11.5 MiB (`LIST_CONCURRENCY` 1) to 24.2 MiB
//! (32) at 2 x 1M keys. The SDK's HTTP client (aws-smithy-http-client 1.5) has no public
//! setting for that buffer. Capped at 8 KiB (with the page reader's own copies gone), 32 in
//! flight peak at 13.1 MiB, and keys/s did not change (README, Measured).
//!
//! Kept from the SDK's client: TLS by rustls with aws-lc-rs and the OS's roots, connection
//! reuse, TCP_NODELAY, the SDK's connect and read timeouts (read: until the response head).
//! Not kept: `HTTP(S)_PROXY` (seek reaches S3 directly or through a VPC endpoint).

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as Tcp;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// hyper's smallest allowed maximum.
pub const READ_BUFFER: usize = 8 * 1024;

type Https = hyper_rustls::HttpsConnector<Tcp>;

/// A request's body, boxed: hyper queues requests to each connection in blocks of 32 slots
/// and keeps two blocks per connection once it has carried 32 requests. An `SdkBody` inline
/// made a slot 368 bytes (the body 120 of them); boxed, a connection's queue is about 7 KiB
/// smaller, and only one small box per request is added.
type Body = Box<SdkBody>;

/// One client, built at the first request for the SDK's connector settings and then reused,
/// so its connections are pooled across requests.
#[derive(Debug, Clone)]
pub struct LeanHttp {
    tls: Arc<rustls::ClientConfig>,
    built: Arc<Mutex<Option<SharedHttpConnector>>>,
}

impl LeanHttp {
    /// TLS with the SDK's crypto provider and the OS's root certificates.
    pub fn new() -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(format!(
                "no root certificates found for TLS to S3 ({} errors reading them)",
                found.errors.len()
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for S3: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tls),
            built: Arc::default(),
        })
    }

    fn connector(&self, settings: &HttpConnectorSettings) -> SharedHttpConnector {
        let mut tcp = Tcp::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(settings.connect_timeout());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .http1_max_buf_size(READ_BUFFER)
            .build(https);
        SharedHttpConnector::new(Lean {
            client,
            read_timeout: settings.read_timeout(),
        })
    }
}

impl HttpClient for LeanHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        built
            .get_or_insert_with(|| self.connector(settings))
            .clone()
    }
}

#[derive(Debug, Clone)]
struct Lean {
    client: Client<Https, Body>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Lean {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (client, read_timeout) = (self.client.clone(), self.read_timeout);
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?
                .map(Box::new);
            let sent = client.request(request);
            let answered = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| {
                    ConnectorError::timeout(format!("no response within {limit:?}").into())
                })?,
                None => sent.await,
            };
            // Connection refused, reset or closed early: transient, so the SDK retries.
            let response = answered.map_err(|e| ConnectorError::io(e.into()))?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}
