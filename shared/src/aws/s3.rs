//! Counting the objects under a prefix, one page at a time.

use std::future::Future;

/// Why a prefix could not be counted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("counting s3://{bucket}/{prefix}: {reason}")]
pub struct CountError {
    pub bucket: String,
    pub prefix: String,
    pub reason: String,
}

pub use crate::ranges::Tally;

/// The capability seek needs from S3.
pub trait ObjectCounter: Send + Sync {
    /// Counts the objects under `prefix`, not counting folder markers (keys ending in `/`).
    fn count(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Tally, CountError>> + Send;
}

/// ListObjectsV2, paginated: only one page (at most 1,000 keys) is held at a time, so memory
/// does not grow with the number of objects.
#[derive(Debug, Clone)]
pub struct S3Counter {
    client: aws_sdk_s3::Client,
}

impl S3Counter {
    /// Uses path-style addressing whenever a custom endpoint is configured (moto, MinIO, ...),
    /// since those rarely serve virtual-hosted bucket names.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }
}

/// Counts one page's keys that are objects rather than folder markers.
pub fn count_page<'a>(keys: impl IntoIterator<Item = Option<&'a str>>) -> u64 {
    keys.into_iter()
        .filter(|k| k.is_some_and(|k| !k.ends_with('/')))
        .count() as u64
}

impl ObjectCounter for S3Counter {
    async fn count(&self, bucket: &str, prefix: &str) -> Result<Tally, CountError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut tally = Tally::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| CountError {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                reason: super::describe(&e),
            })?;
            tally.pages += 1;
            tally.list_requests += 1;
            tally.objects += count_page(page.contents().iter().map(|o| o.key()));
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn folder_markers_do_not_count() {
        let keys = [
            Some("a/"),
            Some("a/x.parquet"),
            Some("a/b/"),
            Some("a/b/y"),
            None,
        ];
        assert_eq!(super::count_page(keys), 2);
    }
}
