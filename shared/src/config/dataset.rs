//! `DATASETS`: the datasets seek counts, where they are, and their thresholds.

use crate::domain::Threshold;

/// One dataset: a name shown in Slack, where its objects are (a prefix, in `DATA_BUCKET` or a
/// bucket of its own), and its own threshold if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    /// `None`: `DATA_BUCKET`.
    pub bucket: Option<String>,
    pub prefix: String,
    pub threshold: Option<Threshold>,
}

impl Dataset {
    /// Where it is, as written in `DATASETS`: the prefix, or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.bucket {
            Some(b) => format!("s3://{b}/{}", self.prefix),
            None => self.prefix.clone(),
        }
    }
}

/// Whether `name` is a bucket name S3 accepts (general purpose or directory bucket).
pub(super) fn bucket_name_ok(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Parses `DATASETS`: `name=prefix[:threshold],...`, where the prefix may be
/// `s3://bucket/prefix` (a bucket other than `DATA_BUCKET`) and the threshold is `N` objects,
/// `N%` of the trained objects, or a size such as `1.5GiB`:
/// `embedding=train/embedding/,faiss=s3://other/faiss/:10%,shards=train/shards/:50GB`.
///
/// Whatever follows the last `:` (after any `s3://`) is the threshold and must be one of those
/// or empty, so a typo such as `:5OO` is refused rather than read as part of the prefix. A
/// prefix that contains `:` is written with a trailing `:` (`logs=raw:2026/:`, or
/// `logs=raw:2026/:500` with a threshold).
pub fn parse_datasets(text: &str) -> Result<Vec<Dataset>, String> {
    let mut out: Vec<Dataset> = Vec::new();
    for (i, raw) in text.split(',').enumerate() {
        let item = raw.trim();
        let n = i + 1;
        if item.is_empty() {
            return Err(format!("entry {n} is empty (expected name=prefix)"));
        }
        let Some((name, rest)) = item.split_once('=') else {
            return Err(format!(
                "entry {n} ({item:?}) has no '=' (expected name=prefix)"
            ));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "entry {n}: dataset name {name:?} must be letters, digits, '-', '_' or '.'"
            ));
        }
        let rest = rest.trim();
        let (bucket, rest) = match rest.strip_prefix("s3://") {
            Some(url) => {
                let end = url.find(['/', ':']).unwrap_or(url.len());
                let bucket = &url[..end];
                if bucket.is_empty() {
                    return Err(format!(
                        "entry {n} ({item:?}): the bucket name after s3:// is empty \
                         (expected s3://bucket/prefix)"
                    ));
                }
                if !bucket_name_ok(bucket) {
                    return Err(format!(
                        "entry {n} ({item:?}): {bucket:?} is not an S3 bucket name \
                         (3 to 63 lower-case letters, digits, '.' or '-')"
                    ));
                }
                (
                    Some(bucket),
                    url[end..].strip_prefix('/').unwrap_or(&url[end..]),
                )
            }
            None => (None, rest),
        };
        // The text after the last ':' is always the threshold, or nothing. So a prefix that
        // itself contains ':' is written with one more ':' at the end.
        let (prefix, threshold) = match rest.rsplit_once(':') {
            None => (rest, None),
            Some((p, t)) if t.trim().is_empty() => (p, None),
            Some((p, t)) => {
                let t = Threshold::parse(t).map_err(|why| {
                    format!(
                        "entry {n} ({item:?}): the threshold after the last ':' is {why} \
                         (expected name=prefix or name=prefix:N, e.g. faiss=train/faiss/:500, \
                         :10% or :1.5GiB; a prefix that contains ':' ends with one more ':', \
                         e.g. logs=s3:raw/:)"
                    )
                })?;
                (p, Some(t))
            }
        };
        // A whole bucket may be a dataset (s3://bucket/); an empty plain prefix is a typo.
        if prefix.is_empty() && bucket.is_none() {
            return Err(format!("entry {n} ({name}): the prefix is empty"));
        }
        if out.iter().any(|d| d.name == name) {
            return Err(format!("dataset {name:?} is listed twice"));
        }
        out.push(Dataset {
            name: name.to_owned(),
            bucket: bucket.map(str::to_owned),
            prefix: prefix.to_owned(),
            threshold,
        });
    }
    Ok(out)
}
