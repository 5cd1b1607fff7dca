//! The HTTP/1.1 client under seek's ListObjectsV2 requests, and nothing else. The SDK still
//! signs, resolves the endpoint, classifies errors and retries; this only carries a request
//! (no body, or a body in memory) and streams its response back.
//!
//! Why not hyper, as every other AWS call here ([`crate::aws::load_sdk_config`]): hyper gives
//! each connection a task of its own and a queue of requests to it (two blocks of 32 slots),
//! a write buffer and a read buffer, about 40 KiB that stay while the connection is pooled.
//! Counting 2 x 1M keys keeps 32 requests in flight, so 32 connections; 2 x 10k keys opens
//! about 9. That difference was most of what peak RSS grew by from 10k to 1M keys. Here a
//! connection is its socket (and TLS state) alone: the request that uses it writes its head
//! from a buffer it drops, and reads into one buffer that lives only while the response does.
//!
//! Measured (ct-bench, release, 2 cores, 30 ms a page; docs/measured.md): peak RSS at 2 x 1M
//! keys went from 12.2-12.7 MiB to 11.1-11.8 MiB, 1.20-1.26 times the RSS at 2 x 10k before and
//! 1.09-1.19 times after, all four layouts, three runs. Under the 1,024 MB CPU quota at 50 ms a
//! page, CPU per million keys went from 0.75 s to 0.62-0.66 s (counter) and keys/s stayed
//! (513,000-525,000 both).
//!
//! What it does: connections reused per origin (dropped after [`IDLE_FOR`] idle; a request
//! that finds its reused connection closed before any answer is sent again on a new one);
//! `Content-Length`, chunked, and close-delimited bodies; the SDK's connect timeout (TCP and
//! TLS) and read timeout (until the response head); TLS by the process's one configuration
//! ([`crate::tls`]). What it does not: `HTTP(S)_PROXY`, `Expect: 100-continue`, streaming
//! request bodies (ListObjectsV2 has none), HTTP/2.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How much is read from a connection at a time (hyper's default buffer, which seek capped at
/// this size: see `aws/http.rs`).
const READ_CHUNK: usize = 8 * 1024;
/// The longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields a response head may have.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size or trailer line accepted in a chunked body.
const MAX_LINE: usize = 4 * 1024;
/// A connection idle for longer is closed rather than reused: S3 closes idle connections
/// after about 20 s.
pub const IDLE_FOR: Duration = Duration::from_secs(15);

/// The client: one pool of idle connections, shared by every connector the SDK asks for.
#[derive(Debug, Clone)]
pub struct ListHttp {
    shared: Arc<Shared>,
}

struct Shared {
    tls: tokio_rustls::TlsConnector,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl ListHttp {
    pub fn new(tls: &rustls::ClientConfig) -> Self {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            shared: Arc::new(Shared {
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
                idle: Mutex::default(),
            }),
        }
    }
}

impl HttpClient for ListHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            shared: self.shared.clone(),
            connect_timeout: settings.connect_timeout(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    shared: Arc<Shared>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let shared = self.shared.clone();
        let (connect_timeout, read_timeout) = (self.connect_timeout, self.read_timeout);
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let (origin, head) =
                write_head(&request).map_err(|e| ConnectorError::user(e.into()))?;
            let body = request.body().bytes().unwrap_or_default();
            loop {
                let (conn, reused) = match shared.take_idle(&origin) {
                    Some(conn) => (conn, true),
                    None => (shared.connect(&origin, connect_timeout).await?, false),
                };
                match exchange(conn, &head, body, read_timeout, request.method()).await {
                    Ok((response, body)) => {
                        let body = SdkBody::from_body_1_x(Incoming {
                            body,
                            shared: shared.clone(),
                        });
                        return HttpResponse::try_from(response.map(|()| body))
                            .map_err(|e| ConnectorError::other(e.into(), None));
                    }
                    // A pooled connection the server had closed: send it on a new one.
                    Err(Failed::Unanswered(_)) if reused => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        })
    }
}

/// Where a request goes: one pool entry per distinct origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    tls: bool,
    host: String,
    port: u16,
}

/// The request's origin and head (request line, headers, blank line).
fn write_head(request: &http::Request<SdkBody>) -> Result<(Origin, Vec<u8>), String> {
    let uri = request.uri();
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => return Err(format!("unsupported scheme {other:?} in {uri}")),
    };
    let host = uri.host().ok_or_else(|| format!("no host in {uri}"))?;
    let default_port = if tls { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default_port);
    let mut head = Vec::with_capacity(1024);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let headers = request.headers();
    if !headers.contains_key(http::header::HOST) {
        // As the SigV4 signer saw it: the port only when it is not the scheme's default.
        head.extend_from_slice(b"host: ");
        head.extend_from_slice(host.as_bytes());
        if port != default_port {
            head.extend_from_slice(format!(":{port}").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let body = match request.body().bytes() {
        Some(body) => body.len(),
        None => return Err("a streaming request body (not supported here)".into()),
    };
    let bodiless = matches!(request.method().as_str(), "GET" | "HEAD" | "DELETE");
    if !headers.contains_key(http::header::CONTENT_LENGTH) && (body > 0 || !bodiless) {
        head.extend_from_slice(format!("content-length: {body}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let origin = Origin {
        tls,
        host: host.to_owned(),
        port,
    };
    Ok((origin, head))
}

/// An open connection and when it was last returned to the pool.
#[derive(Debug)]
struct Conn {
    origin: Origin,
    stream: Stream,
    idle_since: Instant,
}

#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Shared {
    /// The most recently pooled connection to `origin`; connections idle too long are closed.
    fn take_idle(&self, origin: &Origin) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|c| c.idle_since.elapsed() < IDLE_FOR);
        let at = idle.iter().rposition(|c| c.origin == *origin)?;
        Some(idle.swap_remove(at))
    }

    fn put_idle(&self, mut conn: Conn) {
        conn.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(conn);
    }

    async fn connect(
        &self,
        origin: &Origin,
        limit: Option<Duration>,
    ) -> Result<Conn, ConnectorError> {
        // An IPv6 literal comes bracketed in a URI; the socket and TLS want it bare.
        let host = origin.host.trim_start_matches('[').trim_end_matches(']');
        let connecting = async {
            let tcp = TcpStream::connect((host, origin.port)).await?;
            tcp.set_nodelay(true)?;
            if !origin.tls {
                return Ok(Stream::Plain(tcp));
            }
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = self.tls.connect(name, tcp).await?;
            Ok::<_, io::Error>(Stream::Tls(Box::new(tls)))
        };
        let stream = match limit {
            Some(limit) => tokio::time::timeout(limit, connecting).await.map_err(|_| {
                ConnectorError::timeout(
                    format!(
                        "connecting to {}:{} took over {limit:?}",
                        origin.host, origin.port
                    )
                    .into(),
                )
            })?,
            None => connecting.await,
        };
        let stream = stream.map_err(|e| {
            ConnectorError::io(format!("connecting to {}:{}: {e}", origin.host, origin.port).into())
        })?;
        Ok(Conn {
            origin: origin.clone(),
            stream,
            idle_since: Instant::now(),
        })
    }
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failed {
    /// The connection was closed or reset before any of the answer arrived.
    Unanswered(io::Error),
    /// No response head within the read timeout.
    Timeout(Duration),
    /// The connection failed part-way through the answer.
    Io(io::Error),
    /// The answer is not HTTP/1.x as this client reads it.
    Malformed(String),
}

impl From<Failed> for ConnectorError {
    fn from(f: Failed) -> Self {
        match f {
            // Transient: the SDK retries these.
            Failed::Unanswered(e) => ConnectorError::io(format!("no answer: {e}").into()),
            Failed::Io(e) => ConnectorError::io(e.into()),
            Failed::Timeout(limit) => {
                ConnectorError::timeout(format!("no response within {limit:?}").into())
            }
            Failed::Malformed(why) => {
                ConnectorError::other(format!("malformed response: {why}").into(), None)
            }
        }
    }
}

/// Sends the request on `conn` and reads the response head; the body is left to [`Body`].
async fn exchange(
    mut conn: Conn,
    head: &[u8],
    body: &[u8],
    read_timeout: Option<Duration>,
    method: &http::Method,
) -> Result<(http::Response<()>, Body), Failed> {
    let sending = async {
        conn.stream.write_all(head).await?;
        if !body.is_empty() {
            conn.stream.write_all(body).await?;
        }
        conn.stream.flush().await
    };
    sending.await.map_err(Failed::Unanswered)?;
    let mut buf = BytesMut::new();
    let reading = read_head(&mut conn.stream, &mut buf);
    let (response, keep_alive) = match read_timeout {
        Some(limit) => tokio::time::timeout(limit, reading)
            .await
            .map_err(|_| Failed::Timeout(limit))??,
        None => reading.await?,
    };
    let framing = Framing::of(method, &response)?;
    let keep_alive = keep_alive && !matches!(framing, Framing::UntilClose);
    let body = Body {
        conn: Some(conn),
        buf,
        framing,
        keep_alive,
    };
    Ok((response, body))
}

/// Reads until a whole response head (skipping any 1xx but 101) is in `buf`, parses it and
/// leaves the rest of `buf` (the start of the body). Also says whether the connection may be
/// reused after the body.
async fn read_head(
    stream: &mut Stream,
    buf: &mut BytesMut,
) -> Result<(http::Response<()>, bool), Failed> {
    let mut answered = false;
    loop {
        if let Some((response, keep_alive, used)) = parse_head(buf)? {
            buf.advance(used);
            let status = response.status().as_u16();
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            return Ok((response, keep_alive));
        }
        if buf.len() > MAX_HEAD {
            return Err(Failed::Malformed(format!(
                "a response head over {MAX_HEAD} bytes"
            )));
        }
        buf.reserve(READ_CHUNK);
        match stream.read_buf(buf).await {
            Ok(0) if !answered => {
                return Err(Failed::Unanswered(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(0) => return Err(Failed::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => answered = true,
            Err(e) if !answered => return Err(Failed::Unanswered(e)),
            Err(e) => return Err(Failed::Io(e)),
        }
    }
}

/// A complete head at the start of `buf`: the response, whether the connection may be kept,
/// and the head's length. `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(http::Response<()>, bool, usize)>, Failed> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    let used = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failed::Malformed(e.to_string())),
    };
    let status = parsed.code.unwrap_or_default();
    let mut response = http::Response::builder().status(status);
    let mut keep_alive = parsed.version == Some(1);
    for field in parsed.headers.iter() {
        if field.name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(field.value).to_ascii_lowercase();
            keep_alive = value.split(',').map(str::trim).any(|v| v == "keep-alive")
                || (keep_alive && !value.split(',').map(str::trim).any(|v| v == "close"));
        }
        response = response.header(field.name, field.value);
    }
    let response = response
        .body(())
        .map_err(|e| Failed::Malformed(e.to_string()))?;
    Ok(Some((response, keep_alive, used)))
}

mod body;

use body::{Body, Framing, Incoming};

#[cfg(test)]
mod tests;
