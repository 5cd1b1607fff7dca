//! A ListObjectsV2-only S3 endpoint that serves any number of objects without storing them:
//! each page of keys is generated on request. For benchmarks that count millions of objects
//! (moto would need them all PUT first).

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone)]
pub struct FakeS3 {
    pub url: String,
    objects: Arc<AtomicU64>,
    pages: Arc<AtomicU64>,
}

struct Shared {
    objects: Arc<AtomicU64>,
    pages: Arc<AtomicU64>,
}

async fn list(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let total = s.objects.load(Ordering::Relaxed);
    s.pages.fetch_add(1, Ordering::Relaxed);
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let max: u64 = q
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let start: u64 = q
        .get("continuation-token")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + max).min(total);
    let mut xml = String::with_capacity(200 * (end - start) as usize + 512);
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#);
    let _ = write!(
        xml,
        "<Name>bench</Name><Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys>",
        end - start
    );
    let _ = write!(xml, "<IsTruncated>{}</IsTruncated>", end < total);
    if end < total {
        let _ = write!(xml, "<NextContinuationToken>{end}</NextContinuationToken>");
    }
    for i in start..end {
        // Every 100th key is a folder marker, which must not count.
        let key = if i % 100 == 99 {
            format!("{prefix}dir{i:09}/")
        } else {
            format!("{prefix}{i:09}.jsonl")
        };
        let _ = write!(
            xml,
            "<Contents><Key>{key}</Key><LastModified>2026-11-24T00:00:00.000Z</LastModified><ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>"
        );
    }
    xml.push_str("</ListBucketResult>");
    ([("content-type", "application/xml")], xml)
}

impl FakeS3 {
    pub async fn start() -> Self {
        let objects = Arc::new(AtomicU64::new(0));
        let pages = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            objects: objects.clone(),
            pages: pages.clone(),
        });
        let app = axum::Router::new().fallback(list).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake s3");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self {
            url,
            objects,
            pages,
        }
    }

    /// How many keys (objects and folder markers) every prefix holds from now on.
    pub fn set_keys(&self, n: u64) {
        self.objects.store(n, Ordering::Relaxed);
    }

    /// Objects (not folder markers) among the first `n` keys.
    pub fn objects_among(n: u64) -> u64 {
        n - n / 100
    }

    pub fn pages_served(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }
}
