//! The HTTP client of every AWS SDK client here but seek's listing (which has its own,
//! `aws/s3/wire.rs`): hyper's legacy client, as the SDK's default client is, with HTTP/1 read
//! buffers capped at [`READ_BUFFER`], on the process's one TLS configuration ([`crate::tls`]).
//! The SDK still signs, resolves the endpoint, classifies errors and retries; this only carries
//! requests.
//!
//! Why: hyper grows a connection's read buffer while a response arrives faster than it is
//! read, up to 8 KiB + 400 KiB, and keeps it. When seek listed through it, each of its 32
//! ListObjectsV2 requests in flight held a buffer the size of a 300 KB page: 58% of its peak
//! heap (valgrind massif, 2 x 200k keys). The SDK's HTTP client (aws-smithy-http-client 1.5)
//! has no public setting for that buffer, nor a way to share the process's TLS configuration
//! (it read the OS's root certificates again for itself). DynamoDB's, Secrets Manager's and
//! Lambda's answers are small, but the cap costs nothing there either.
//!
//! Kept from the SDK's client: TLS by rustls with aws-lc-rs and the OS's roots, connection
//! reuse, TCP_NODELAY, the SDK's connect and read timeouts (read: until the response head),
//! one connection pool per distinct pair of them. Not kept: `HTTP(S)_PROXY` (the functions
//! reach AWS directly or through VPC endpoints).

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

/// A connector's timeouts: connect, and read until the response head.
type Timeouts = (Option<Duration>, Option<Duration>);

/// One connector per distinct [`Timeouts`] (clients with their own, such as the state store's
/// tighter ones, get their own pool), built at its first request and then reused, so its
/// connections are pooled across requests.
#[derive(Debug, Clone)]
pub struct LeanHttp {
    tls: Arc<rustls::ClientConfig>,
    built: Arc<Mutex<Vec<(Timeouts, SharedHttpConnector)>>>,
}

impl LeanHttp {
    /// On the process's one TLS configuration; an error when it has none (no roots found).
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            tls: crate::tls::client_config()?,
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
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, connector)) = built.iter().find(|(t, _)| *t == timeouts) {
            return connector.clone();
        }
        let connector = self.connector(settings);
        built.push((timeouts, connector.clone()));
        connector
    }
}

#[derive(Debug, Clone)]
struct Lean {
    client: Client<Https, SdkBody>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Lean {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (client, read_timeout) = (self.client.clone(), self.read_timeout);
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
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
