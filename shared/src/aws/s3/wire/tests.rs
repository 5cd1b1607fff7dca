use super::body::{Chunk, Step};
use super::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;

/// `data` in chunked coding: pieces of the given sizes (cycled), chunk extensions on some,
/// and a trailer.
fn chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        let ext = if i % 3 == 1 { ";name=value" } else { "" };
        out.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
        i += 1;
    }
    out.extend_from_slice(b"0\r\nx-amz-trailer: 1\r\n\r\n");
    out
}

/// Decodes `wire` fed in pieces of the given sizes (cycled), as reads would bring it.
fn decode(wire: &[u8], feeds: &[usize]) -> Result<(Vec<u8>, bool), String> {
    let mut chunk = Chunk::Size;
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    loop {
        match chunk.step(&mut buf)? {
            Step::Data(d) => out.extend_from_slice(&d),
            Step::Done => return Ok((out, buf.is_empty())),
            Step::More if at == wire.len() => return Err("ran out".into()),
            Step::More => {
                let n = feeds[i % feeds.len()].clamp(1, wire.len() - at);
                buf.extend_from_slice(&wire[at..at + n]);
                at += n;
                i += 1;
            }
        }
    }
}

proptest! {
    #[test]
    fn chunked_bodies_decode_whole_however_they_arrive(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..600, 1..5),
        feeds in proptest::collection::vec(1usize..700, 1..5),
    ) {
        let (got, clean) = decode(&chunked(&data, &sizes), &feeds).map_err(TestCaseError::fail)?;
        prop_assert_eq!(got, data);
        prop_assert!(clean, "nothing may be left after the last chunk");
    }
}

#[test]
fn malformed_chunks_are_refused() {
    for wire in [
        &b"zz\r\nab\r\n0\r\n\r\n"[..],
        b"2\r\nabXX0\r\n\r\n",
        b"\r\n",
        b"10000000000000000\r\n",
    ] {
        assert!(
            decode(wire, &[5]).is_err(),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    let long = vec![b'1'; MAX_LINE + 10];
    assert!(decode(&long, &[MAX_LINE + 10]).is_err());
}

fn head(text: &str) -> (http::Response<()>, bool, usize) {
    match parse_head(text.as_bytes()) {
        Ok(Some(parsed)) => parsed,
        other => panic!("{text:?} gave {other:?}"),
    }
}

#[test]
fn heads_say_whether_the_connection_stays() {
    let (r, keep, used) = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!((r.status().as_u16(), keep, used), (200, true, 38));
    assert!(!head("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").1);
    assert!(!head("HTTP/1.0 200 OK\r\n\r\n").1);
    assert!(head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").1);
    assert!(matches!(
        parse_head(b"HTTP/1.1 200 OK\r\nContent-"),
        Ok(None)
    ));
    assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
}

#[test]
fn framing_follows_the_head() {
    let framing = |method: http::Method, text: &str| Framing::of(&method, &head(text).0);
    let get = http::Method::GET;
    assert_eq!(
        framing(get.clone(), "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").ok(),
        Some(Framing::Length(12))
    );
    assert_eq!(
        framing(
            get.clone(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 9\r\n\r\n"
        )
        .ok(),
        Some(Framing::Chunked(Chunk::Size))
    );
    assert_eq!(
        framing(get.clone(), "HTTP/1.1 200 OK\r\n\r\n").ok(),
        Some(Framing::UntilClose)
    );
    assert_eq!(
        framing(
            http::Method::HEAD,
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"
        )
        .ok(),
        Some(Framing::Length(0))
    );
    assert!(framing(get, "HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\n").is_err());
}

/// A loopback server that answers each request on a connection with the next of `answers`
/// (cycled), optionally closing after each; counts connections and requests.
struct Server {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn serve(answers: Vec<Vec<u8>>, close_after_each: bool) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (conns, reqs) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        let mut next = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            conns.fetch_add(1, Ordering::SeqCst);
            loop {
                let mut seen = Vec::new();
                let mut byte = [0u8; 1];
                while !seen.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut byte).await {
                        Ok(1) => seen.push(byte[0]),
                        _ => break,
                    }
                }
                if !seen.ends_with(b"\r\n\r\n") {
                    break;
                }
                reqs.lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&seen).into_owned());
                let answer = &answers[next % answers.len()];
                next += 1;
                if socket.write_all(answer).await.is_err() || close_after_each {
                    break;
                }
            }
        }
    });
    Server {
        url,
        connections,
        requests,
    }
}

fn connector(read_timeout: Option<Duration>) -> Connector {
    let tls = crate::tls::client_config().unwrap_or_else(|_| {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("tls")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    });
    Connector {
        shared: ListHttp::new(&tls).shared,
        connect_timeout: Some(Duration::from_secs(2)),
        read_timeout,
    }
}

async fn get(connector: &Connector, url: &str) -> Result<(u16, Vec<u8>), String> {
    let request = http::Request::get(format!("{url}/bucket?list-type=2&prefix=a%2F"))
        .header("x-amz-date", "20261129T000000Z")
        .body(SdkBody::empty())
        .expect("request");
    let request = HttpRequest::try_from(request).expect("request");
    let response = connector
        .call(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await
    {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok((status, out))
}

#[tokio::test]
async fn every_framing_is_read_whole_and_kept_connections_are_reused() {
    let page =
        "<ListBucketResult>".to_owned() + &"<Contents/>".repeat(2000) + "</ListBucketResult>";
    let mut by_length =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", page.len()).into_bytes();
    by_length.extend_from_slice(page.as_bytes());
    let mut by_chunks =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    by_chunks.extend_from_slice(&chunked(page.as_bytes(), &[4096, 17, 9000]));
    let server = serve(vec![by_length, by_chunks], false).await;
    let connector = connector(None);
    for _ in 0..4 {
        let (status, body) = get(&connector, &server.url).await.expect("answered");
        assert_eq!(status, 200);
        assert_eq!(body, page.as_bytes());
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "one connection, reused"
    );
    let requests = server.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 4);
    let port = server.url.rsplit(':').next().unwrap_or_default();
    assert!(
        requests[0].starts_with("GET /bucket?list-type=2&prefix=a%2F HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains(&format!("host: 127.0.0.1:{port}\r\n")));
    assert!(requests[0].contains("x-amz-date: 20261129T000000Z\r\n"));
    assert!(!requests[0].contains("content-length"), "a GET has no body");

    // Close-delimited: read to the end, and the connection is not reused.
    let server = serve(vec![b"HTTP/1.1 200 OK\r\n\r\nuntil close".to_vec()], true).await;
    for _ in 0..2 {
        let (_, body) = get(&connector, &server.url).await.expect("answered");
        assert_eq!(body, b"until close");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced_unseen() {
    // Content-Length framing, but the server closes after each answer without saying so.
    let server = serve(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
        true,
    )
    .await;
    let connector = connector(None);
    for _ in 0..3 {
        let (status, body) = get(&connector, &server.url).await.expect("answered");
        assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
    assert_eq!(
        server.requests.lock().expect("lock").len(),
        3,
        "each request sent once"
    );
}

#[tokio::test]
async fn a_cut_body_a_silent_server_and_a_refused_port_are_errors() {
    let server = serve(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".to_vec()],
        true,
    )
    .await;
    let connector = connector(Some(Duration::from_millis(200)));
    let err = get(&connector, &server.url).await.expect_err("cut body");
    assert!(err.contains("before the body ended"), "{err}");

    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("addr"));
    let err = get(&connector, &url).await.expect_err("silent");
    assert!(err.contains("no response within"), "{err}");

    drop(silent);
    let err = get(&connector, &url).await.expect_err("refused");
    assert!(err.contains("connecting to 127.0.0.1"), "{err}");
}
