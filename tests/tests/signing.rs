//! seek's list requests go out through its own HTTP/1.1 client (shared/src/aws/s3/wire.rs),
//! which writes the request head itself, `Host` included. moto and the simulated S3 do not
//! check signatures, so here a loopback server keeps every request as it arrived, and each is
//! signed again, with the same credentials and time, from what arrived: the signatures must be
//! the ones sent. A `Host` that differs from the one the SDK signed (say, without the port)
//! gives another signature, and S3 would answer 403 SignatureDoesNotMatch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use ct_shared::aws::s3::{ObjectCounter, S3Counter};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>k</Key><LastModified>2026-11-24T00:00:00.000Z</LastModified><Size>1</Size></Contents></ListBucketResult>"#;

/// A request as it arrived: request target and header fields in order.
#[derive(Debug, Clone)]
struct Arrived {
    target: String,
    headers: Vec<(String, String)>,
}

impl Arrived {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }
}

/// Answers every request with a one-key page, keeping each request as it arrived.
async fn capture() -> (String, Arc<Mutex<Vec<Arrived>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match socket.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8(head).expect("an ASCII head");
                    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
                    let request_line = lines.next().expect("a request line");
                    let target = request_line.split(' ').nth(1).expect("a target").to_owned();
                    let headers = lines
                        .map(|l| {
                            let (n, v) = l.split_once(':').expect("a header field");
                            (n.to_owned(), v.trim().to_owned())
                        })
                        .collect();
                    keep.lock().unwrap().push(Arrived { target, headers });
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{PAGE}",
                        PAGE.len()
                    );
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// The signature of `arrived` as it arrived, signed again with the test credentials, taking its
/// `Host` to be `host`.
fn signature_of(arrived: &Arrived, host: &str) -> String {
    let auth = arrived.header("authorization");
    let signed: Vec<String> = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("SignedHeaders")
        .split(';')
        .map(str::to_owned)
        .collect();
    assert!(signed.iter().any(|h| h == "host"), "host is signed: {auth}");
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|name| match name.as_str() {
            "host" => (name.clone(), host.to_owned()),
            _ => (name.clone(), arrived.header(name).to_owned()),
        })
        .collect();
    let time = arrived.header("x-amz-date");
    let time: jiff::Timestamp = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", time)
        .expect("x-amz-date")
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .expect("UTC")
        .timestamp();
    let identity = aws_credential_types::Credentials::new(
        "testing",
        "testing",
        None,
        None,
        "ct-trigger-tests",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.as_second() as u64))
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let uri = format!("http://{host}{}", arrived.target);
    let signable = SignableRequest::new(
        "GET",
        &uri,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Precomputed(arrived.header("x-amz-content-sha256").to_owned()),
    )
    .expect("signable");
    let (_, signature) = sign(signable, &params).expect("signed").into_parts();
    signature
}

#[tokio::test]
async fn list_requests_arrive_with_the_host_and_headers_they_were_signed_with() {
    // GIVEN seek's S3 client pointed at a loopback server that keeps what arrives
    let (url, seen) = capture().await;
    let sdk = harness::moto::sdk_at(&url).await;
    let counter = S3Counter::new(&sdk, ct_shared::config::ListConcurrency::Fixed(4));

    // WHEN it counts a prefix with non-ASCII characters, a space, `+` and `%`
    let tally = counter
        .count("training", "train/데이터/ü +%/", None)
        .await
        .expect("counted");
    assert_eq!(tally.sums.objects, 1);

    // THEN each request, signed again as it arrived, has the signature it was sent with
    let arrived = seen.lock().unwrap().clone();
    assert!(!arrived.is_empty());
    let port = url.rsplit(':').next().expect("a port");
    for request in &arrived {
        assert_eq!(request.header("host"), format!("127.0.0.1:{port}"));
        let sent = request.header("authorization");
        let sent = sent.rsplit("Signature=").next().expect("a signature");
        assert_eq!(
            signature_of(request, request.header("host")),
            sent,
            "{request:?}"
        );
        // The check can fail: a Host without the port signs differently.
        assert_ne!(signature_of(request, "127.0.0.1"), sent);
    }
}
