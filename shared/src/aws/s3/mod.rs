//! Counting the objects under a prefix: ListObjectsV2 over concurrent key ranges
//! ([`crate::ranges`]), one page (at most 1,000 keys) per range in memory at a time.

pub mod page;
mod tap;
mod wire;

use crate::config::ListConcurrency;
use crate::ranges::{self, Gate, ListError, Lister, Page, Plan, Progress, Sizing};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use crate::ranges::Tally;

/// How often a count in progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Why a prefix could not be counted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("counting s3://{bucket}/{prefix}: {reason}")]
pub struct CountError {
    pub bucket: String,
    pub prefix: String,
    pub reason: String,
}

/// Objects and pages counted so far by a counter, over all its counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoFar {
    pub objects: u64,
    pub pages: u64,
    pub open_ranges: u64,
}

/// The capability seek needs from S3.
pub trait ObjectCounter: Send + Sync {
    /// Counts the objects under `prefix`, not counting folder markers (keys ending in `/`):
    /// how many, their bytes and fingerprint, and those last modified at or after `since`
    /// (whole seconds; `None`: all of them) with their bytes.
    fn count(
        &self,
        bucket: &str,
        prefix: &str,
        since: Option<crate::Timestamp>,
    ) -> impl Future<Output = Result<Tally, CountError>> + Send;

    /// What all counts so far have seen, for a deadline message.
    fn so_far(&self) -> SoFar {
        SoFar::default()
    }
}

/// Whether `bucket` is an S3 Express One Zone directory bucket, whose listings are not
/// sorted and take no `StartAfter`: it is counted by one sequential pager.
pub fn is_directory_bucket(bucket: &str) -> bool {
    bucket.ends_with("--x-s3")
}

/// ListObjectsV2 through the SDK (signing, credentials, endpoints and retries are AWS's).
#[derive(Debug, Clone)]
pub struct S3Counter {
    client: aws_sdk_s3::Client,
    /// In-flight ListObjectsV2 requests, across every prefix counted at once.
    gate: Arc<Gate>,
    /// Workers per prefix: the most requests the gate may ever let through.
    workers: usize,
    progress: Arc<Progress>,
}

impl S3Counter {
    /// Uses path-style addressing whenever a custom endpoint is configured (moto, MinIO, ...),
    /// since those rarely serve virtual-hosted bucket names. Throttling (503 SlowDown) is
    /// retried by the SDK's standard retry strategy with short backoffs.
    pub fn new(sdk: &aws_config::SdkConfig, concurrency: ListConcurrency) -> Self {
        let retry = aws_sdk_s3::config::retry::RetryConfig::standard()
            .with_max_attempts(8)
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_secs(2));
        let (gate, workers) = match concurrency {
            ListConcurrency::Fixed(n) => (Gate::fixed(n), n.max(1)),
            ListConcurrency::Sized { memory_mb } => {
                let sizing = Sizing::for_memory(memory_mb);
                (Gate::sized(sizing), sizing.max)
            }
        };
        let gate = Arc::new(gate);
        let mut conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .retry_config(retry)
            .interceptor(tap::KeyTap {
                gate: Some(gate.clone()),
            });
        // Connections that hold only their socket while pooled (wire.rs); without a TLS
        // configuration (no roots found), the HTTP client that came with `sdk`.
        match crate::tls::client_config() {
            Ok(tls) => conf = conf.http_client(wire::ListHttp::new(&tls)),
            Err(e) => {
                tracing::warn!(error = %e, "listing with the SDK configuration's HTTP client")
            }
        }
        let conf = conf.build();
        Self {
            client: aws_sdk_s3::Client::from_conf(conf),
            gate,
            workers,
            progress: Arc::default(),
        }
    }

    /// The most ListObjectsV2 requests that were in flight at once, and the limit now.
    pub fn in_flight(&self) -> (usize, usize) {
        (self.gate.peak(), self.gate.limit())
    }
}

struct SdkLister {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// What makes an object new: see [`page::PageKeys`].
    since: Option<i64>,
}

impl Lister for SdkLister {
    async fn page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
    ) -> Result<Page, ListError> {
        let slot = tap::KeySlot::new(tap::Slot {
            since: self.since,
            keys: Default::default(),
        });
        let send = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(token.map(str::to_owned))
            .send();
        let out = tap::SLOT
            .scope(slot.clone(), send)
            .await
            .map_err(|e| ListError(super::describe(&e)))?;
        let next = match (out.is_truncated, out.next_continuation_token) {
            (Some(true), None) => {
                return Err(ListError(
                    "a truncated page came without a continuation token".into(),
                ));
            }
            (Some(true), token) => token,
            _ => None,
        };
        let taken = slot.keys.lock().ok().and_then(|mut s| s.take());
        let keys = match taken {
            Some(Ok(keys)) => keys,
            Some(Err(e)) => return Err(ListError(format!("reading a page: {e}"))),
            None => return Err(ListError("a page came without a body".into())),
        };
        Ok(Page { keys, next })
    }
}

impl ObjectCounter for S3Counter {
    async fn count(
        &self,
        bucket: &str,
        prefix: &str,
        since: Option<crate::Timestamp>,
    ) -> Result<Tally, CountError> {
        let split = !is_directory_bucket(bucket);
        if !split {
            tracing::info!(
                bucket,
                prefix,
                "directory bucket: listings are unsorted, counting with one sequential pager"
            );
        }
        let lister = Arc::new(SdkLister {
            client: self.client.clone(),
            bucket: bucket.to_owned(),
            since: since.map(crate::Timestamp::secs),
        });
        let mine = Arc::new(Progress::default());
        let plan = Plan {
            workers: self.workers,
            split,
        };
        let _counting = self.gate.counting();
        let counting =
            ranges::count_prefix(lister, prefix, &plan, self.gate.clone(), mine.clone(), None);
        tokio::pin!(counting);
        let started = Instant::now();
        // The running total (read at a deadline) is brought up to date every second; the
        // log line is written every PROGRESS_EVERY.
        let second = Duration::from_secs(1);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
        let mut logged = Instant::now();
        let mut reported = SoFar::default();
        let result = loop {
            tokio::select! {
                done = &mut counting => break done,
                _ = ticks.tick() => {
                    let now = snapshot(&mine);
                    self.add(now, reported);
                    reported = now;
                    if logged.elapsed() < PROGRESS_EVERY {
                        continue;
                    }
                    logged = Instant::now();
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(
                        bucket, prefix,
                        objects = now.objects, pages = now.pages,
                        keys_per_second = (now.objects as f64 / secs) as u64,
                        open_ranges = now.open_ranges,
                        in_flight_limit = self.gate.limit(),
                        peak_in_flight = self.gate.peak(),
                        "counting"
                    );
                }
            }
        };
        self.add(snapshot(&mine), reported);
        result.map(|(tally, _)| tally).map_err(|e| CountError {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            reason: super::describe(&e),
        })
    }

    fn so_far(&self) -> SoFar {
        snapshot(&self.progress)
    }
}

impl S3Counter {
    /// Adds a count's progress since `before` to the counter's running total.
    fn add(&self, now: SoFar, before: SoFar) {
        let p = &self.progress;
        p.objects
            .fetch_add(now.objects - before.objects, Ordering::Relaxed);
        p.pages
            .fetch_add(now.pages - before.pages, Ordering::Relaxed);
        // Open ranges go up and down: add the (wrapping) difference.
        p.open_ranges.fetch_add(
            now.open_ranges.wrapping_sub(before.open_ranges),
            Ordering::Relaxed,
        );
    }
}

fn snapshot(p: &Progress) -> SoFar {
    SoFar {
        objects: p.objects.load(Ordering::Relaxed),
        pages: p.pages.load(Ordering::Relaxed),
        open_ranges: p.open_ranges.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn directory_buckets_are_recognised() {
        assert!(super::is_directory_bucket("training--use1-az4--x-s3"));
        assert!(!super::is_directory_bucket("training"));
    }
}
