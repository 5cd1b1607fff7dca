//! A ListObjectsV2-only S3 endpoint that serves any number of objects without storing them:
//! every prefix holds `n` keys of a chosen layout, each generated from its index in S3's order.
//! It answers after a set latency, honours `prefix`, `start-after`, `continuation-token` and
//! `max-keys`, and can answer 503 SlowDown to a share of requests. Pages are sent chunked, as
//! S3 sends them. For benchmarks that count
//! millions of objects (moto would need them all PUT first) and for the SlowDown test.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the keys under a prefix look. Every 100th key is a folder marker (ends in `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One long shared stem: `img_000000001.jpg` ... `img_099999999.jpg`.
    Counter,
    /// Uniform hex hashes: `3f2a...e1.bin`.
    Hashes,
    /// Date folders: `2026/11/24/part-000123.parquet`.
    Dates,
    /// Non-ASCII keys in one folder: `데이터/ü 000000123+%.txt`.
    Unicode,
}

impl Layout {
    pub const ALL: [Layout; 4] = [
        Layout::Counter,
        Layout::Hashes,
        Layout::Dates,
        Layout::Unicode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Counter => "counter",
            Layout::Hashes => "hashes",
            Layout::Dates => "dates",
            Layout::Unicode => "unicode",
        }
    }

    /// Key `i` of `n` (after the prefix); increasing in `i` as UTF-8 bytes.
    pub fn key(self, i: u64, n: u64) -> String {
        let end = if i % 100 == 99 { "/" } else { "" };
        match self {
            Layout::Counter => format!("img_{i:09}{}", if end.is_empty() { ".jpg" } else { end }),
            Layout::Hashes => {
                let h = ((i as u128 * u64::MAX as u128) / n.max(1) as u128) as u64;
                format!("{h:016x}{}", if end.is_empty() { ".bin" } else { end })
            }
            Layout::Dates => {
                let day = i * 365 / n.max(1);
                let (m, d) = (day / 30 + 1, day % 30 + 1);
                let leaf = if end.is_empty() { ".parquet" } else { end };
                format!("2026/{m:02}/{d:02}/part-{i:09}{leaf}")
            }
            Layout::Unicode => format!(
                "데이터/ü {i:09}+%{}",
                if end.is_empty() { ".txt" } else { end }
            ),
        }
    }

    /// Objects (not folder markers) among `n` keys.
    pub fn objects_among(n: u64) -> u64 {
        n - n / 100
    }
}

/// What key `i` lists besides its key: varied, as a real bucket's are, so that reading them
/// costs what it would. `LastModified` spreads over 2026 (to the second, as S3 lists it),
/// `Size` from 0 to about 64 MB, and the `ETag` is 32 hex digits (an MD5's length).
pub fn object_of(i: u64) -> (String, u64, String) {
    let mix = |x: u64| {
        let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    };
    let (a, b) = (mix(i), mix(i ^ 0x5555_5555_5555_5555));
    // 2026-01-01T00:00:00Z and a year of seconds.
    let modified = ct_shared::Timestamp::from_secs(1_767_225_600 + (a % 31_536_000) as i64);
    let text = modified.rfc3339();
    let date = format!("{}.000Z", text.trim_end_matches('Z'));
    let size = if i.is_multiple_of(7) { 0 } else { b >> 38 };
    (date, size, format!("{a:016x}{b:016x}"))
}

/// The size of the pieces a page is sent in.
const PIECE: usize = 16 * 1024;

struct Shared {
    keys: AtomicU64,
    layout: std::sync::Mutex<Layout>,
    latency_us: AtomicU64,
    /// One request in `slowdown_every` answers 503 SlowDown (0: none).
    slowdown_every: AtomicU64,
    requests: AtomicU64,
    slowdowns: AtomicU64,
    /// Requests being answered now, and the most at once since [`FakeS3::take_peak_in_flight`].
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn new(s: &'a Shared) -> Self {
        let now = s.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        s.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        Self(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub struct FakeS3 {
    pub url: String,
    shared: Arc<Shared>,
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

async fn list(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let n = s.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let _in_flight = InFlight::new(&s);
    let latency = Duration::from_micros(s.latency_us.load(Ordering::Relaxed));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let every = s.slowdown_every.load(Ordering::Relaxed);
    if every > 0 && n % every == 0 {
        s.slowdowns.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>bench</RequestId></Error>",
        )
            .into_response();
    }
    let total = s.keys.load(Ordering::Relaxed);
    let layout = *s.layout.lock().unwrap_or_else(|p| p.into_inner());
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let max: u64 = q
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let start = match (q.get("continuation-token"), q.get("start-after")) {
        (Some(t), _) => t.parse().unwrap_or(total),
        (None, Some(after)) => {
            // The first index whose full key is above `after`.
            let (mut lo, mut hi) = (0, total);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let key = format!("{prefix}{}", layout.key(mid, total));
                if key.as_str() <= after.as_str() {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        }
        (None, None) => 0,
    };
    let end = (start + max).min(total);
    let mut xml = String::with_capacity(250 * (end - start) as usize + 512);
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name><Prefix>"#);
    escape(&prefix, &mut xml);
    let _ = write!(
        xml,
        "</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{}</IsTruncated>",
        end - start,
        end < total
    );
    if end < total {
        let _ = write!(xml, "<NextContinuationToken>{end}</NextContinuationToken>");
    }
    for i in start..end {
        xml.push_str("<Contents><Key>");
        escape(&prefix, &mut xml);
        escape(&layout.key(i, total), &mut xml);
        let (date, size, etag) = object_of(i);
        let _ = write!(
            xml,
            "</Key><LastModified>{date}</LastModified><ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        );
    }
    xml.push_str("</ListBucketResult>");
    // Chunked, as S3 answers listings: sent in pieces, with no Content-Length.
    let xml = axum::body::Bytes::from(xml);
    let pieces: Vec<Result<axum::body::Bytes, std::convert::Infallible>> = (0..xml.len())
        .step_by(PIECE)
        .map(|at| Ok(xml.slice(at..(at + PIECE).min(xml.len()))))
        .collect();
    let body = axum::body::Body::from_stream(futures_util::stream::iter(pieces));
    ([("content-type", "application/xml")], body).into_response()
}

impl FakeS3 {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            keys: AtomicU64::new(0),
            layout: std::sync::Mutex::new(Layout::Counter),
            latency_us: AtomicU64::new(0),
            slowdown_every: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            slowdowns: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(list)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake s3");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { url, shared }
    }

    /// How many keys (objects and folder markers) every prefix holds from now on, and how.
    pub fn set_keys(&self, n: u64, layout: Layout) {
        self.shared.keys.store(n, Ordering::Relaxed);
        *self.shared.layout.lock().unwrap_or_else(|p| p.into_inner()) = layout;
    }

    /// Each answer waits this long first (in-region S3 takes 20-100 ms a page).
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// One request in `every` answers 503 SlowDown (0: none).
    pub fn set_slowdown_every(&self, every: u64) {
        self.shared.slowdown_every.store(every, Ordering::Relaxed);
    }

    /// Objects (not folder markers) among the first `n` keys.
    pub fn objects_among(n: u64) -> u64 {
        Layout::objects_among(n)
    }

    /// Requests answered so far (SlowDowns included), and the SlowDowns among them.
    pub fn requests(&self) -> (u64, u64) {
        (
            self.shared.requests.load(Ordering::Relaxed),
            self.shared.slowdowns.load(Ordering::Relaxed),
        )
    }

    /// The most requests that were being answered at once since the last call (their latency
    /// included, not their bodies' sending).
    pub fn take_peak_in_flight(&self) -> u64 {
        let now = self.shared.in_flight.load(Ordering::Relaxed);
        self.shared.peak_in_flight.swap(now, Ordering::Relaxed)
    }

    pub fn pages_served(&self) -> u64 {
        let (r, s) = self.requests();
        r - s
    }
}
