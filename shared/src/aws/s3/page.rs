//! A lean ListObjectsV2 page reader. The SDK still signs, resolves the endpoint and retries;
//! this interceptor only takes each successful page's body before the SDK deserialises it,
//! reads the `<Key>` of every `<Contents>` itself and hands the SDK the page without its
//! `<Contents>`, so the SDK parses only the few fields around them (IsTruncated,
//! NextContinuationToken). Deserialising 1,000 full `Object`s (key, date, ETag, size, storage
//! class) was most of seek's CPU per page: see README, Measured.

use crate::ranges::Keys;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::borrow::Cow;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Where one request's keys land (the last successful attempt's).
pub type KeySlot = Arc<Mutex<Option<Result<Keys, String>>>>;

tokio::task_local! {
    /// The slot of the request being sent in this task: set with `SLOT.scope(slot, send)`.
    pub static SLOT: KeySlot;
}

/// The interceptor, registered once on the client: it reads the request's slot from [`SLOT`].
/// Attaching one per request (`.customize().interceptor(..)`) gave every request in flight a
/// configuration layer of its own; see README, Measured.
#[derive(Debug, Default)]
pub struct KeyTap;

impl Intercept for KeyTap {
    fn name(&self) -> &'static str {
        "KeyTap"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        if !response.status().is_success() {
            return Ok(());
        }
        let Ok(slot) = SLOT.try_with(KeySlot::clone) else {
            return Ok(());
        };
        let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = SdkBody::from_body_1_x(Condense {
            inner,
            split: Splitter::default(),
            slot,
            done: false,
        });
        Ok(())
    }
}

/// Reads the body as it arrives, keeping only what is not a `<Contents>` (a few hundred bytes)
/// and the keys, then yields that to the SDK and stores the keys. A page's full body (about
/// 300 bytes an object) is never held, so memory per request in flight is its keys only.
struct Condense {
    inner: SdkBody,
    split: Splitter,
    slot: KeySlot,
    done: bool,
}

impl Body for Condense {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.split.feed(&data);
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let (rest, keys) = std::mem::take(&mut this.split).finish();
                    if let Ok(mut slot) = this.slot.lock() {
                        *slot = Some(keys);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
            }
        }
    }
}

const OPEN: &[u8] = b"<Contents>";
const CLOSE: &[u8] = b"</Contents>";

/// Takes the `<Contents>` out of a page fed in pieces of any size, keeping their keys.
#[derive(Debug, Default)]
pub struct Splitter {
    /// Bytes not yet placed: an unfinished `<Contents>`, or a tail that may start one.
    carry: Vec<u8>,
    rest: Vec<u8>,
    keys: Keys,
    failed: Option<String>,
}

impl Splitter {
    /// Takes in the next piece of the page. Only an unfinished `<Contents>` (or a tail that may
    /// start one) is copied and kept between pieces; the rest is read where it lies. Copying
    /// every piece into `carry` first kept a buffer the size of hyper's largest read per
    /// request in flight: 21% of seek's peak heap (valgrind massif, 2 x 200k keys).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while self.failed.is_none() && !self.carry.is_empty() && !bytes.is_empty() {
            // Finish the kept piece with the input up to the next "</Contents>" (or all of it).
            let take = memchr::memmem::find(bytes, CLOSE).map_or(bytes.len(), |i| i + CLOSE.len());
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(&bytes[..take]);
            let used = self.scan(&carry);
            carry.drain(..used);
            self.carry = carry;
            bytes = &bytes[take..];
        }
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        let used = self.scan(bytes);
        self.carry.extend_from_slice(&bytes[used..]);
    }

    /// Moves what `buf` holds of the page into `rest` and `keys`; returns how far it got (the
    /// bytes after that are an unfinished `<Contents>` or may start one).
    fn scan(&mut self, buf: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let Some(start) = memchr::memmem::find(&buf[at..], OPEN).map(|i| at + i) else {
                // Keep a tail that could be the start of "<Contents>".
                let keep = (buf.len() - at).min(OPEN.len() - 1);
                let end = buf.len() - keep;
                self.rest.extend_from_slice(&buf[at..end]);
                return end;
            };
            self.rest.extend_from_slice(&buf[at..start]);
            let Some(end) = memchr::memmem::find(&buf[start..], CLOSE).map(|i| start + i) else {
                return start;
            };
            match element(&buf[start..end], b"<Key>", b"</Key>").map(unescape) {
                Some(Ok(k)) => self.keys.push(&k),
                Some(Err(e)) => self.failed = Some(e),
                None => self.failed = Some("a <Contents> has no <Key>".into()),
            }
            if self.failed.is_some() {
                return buf.len();
            }
            at = end + CLOSE.len();
        }
    }

    /// The page without its `<Contents>`, and their keys in order.
    pub fn finish(mut self) -> (Vec<u8>, Result<Keys, String>) {
        if let Some(e) = self.failed {
            return (self.rest, Err(e));
        }
        if memchr::memmem::find(&self.carry, OPEN).is_some() {
            return (self.rest, Err("a <Contents> is not closed".into()));
        }
        self.rest.append(&mut self.carry);
        (self.rest, Ok(self.keys))
    }
}

/// The page without its `<Contents>` elements, and the keys they held, unescaped.
#[cfg(test)]
pub fn split_contents(xml: &[u8]) -> (Vec<u8>, Result<Keys, String>) {
    let mut s = Splitter::default();
    s.feed(xml);
    s.finish()
}

fn element<'a>(xml: &'a [u8], open: &[u8], close: &[u8]) -> Option<&'a [u8]> {
    let start = memchr::memmem::find(xml, open)? + open.len();
    let len = memchr::memmem::find(&xml[start..], close)?;
    Some(&xml[start..start + len])
}

/// XML text to a string: the five named entities and numeric character references.
fn unescape(raw: &[u8]) -> Result<Cow<'_, str>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a key is not UTF-8".to_string())?;
    if !text.contains('&') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let semi = rest[i..]
            .find(';')
            .ok_or_else(|| "an unterminated entity in a key".to_string())?;
        let name = &rest[i + 1..i + semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n => {
                let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.strip_prefix('#').and_then(|d| d.parse().ok()),
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("an unknown entity &{n}; in a key"))?
            }
        };
        out.push(c);
        rest = &rest[i + semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_out_and_unescaped() {
        let xml = r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><Contents><Key>a/&amp;x&lt;&#13;&#x1F600;</Key><Size>1</Size></Contents><Contents><Key>데이터/ü +%</Key></Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"#.as_bytes();
        let (rest, keys) = split_contents(xml);
        assert_eq!(
            keys.unwrap().to_vec(),
            vec!["a/&x<\r\u{1F600}", "데이터/ü +%"]
        );
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"#
        );
    }

    #[test]
    fn a_page_fed_in_pieces_of_any_size_splits_the_same() {
        let xml = r#"<?xml version="1.0"?><R><IsTruncated>false</IsTruncated><Contents><Key>a</Key><ETag>&quot;x&quot;</ETag></Contents><Contents><Key>데이터/&lt;b</Key></Contents><Contents><Key>c/</Key></Contents></R>"#.as_bytes();
        let whole = split_contents(xml);
        for size in 1..xml.len() {
            let mut s = Splitter::default();
            xml.chunks(size).for_each(|c| s.feed(c));
            let (rest, keys) = s.finish();
            assert_eq!(rest, whole.0, "pieces of {size}");
            assert_eq!(
                keys.unwrap().to_vec(),
                vec!["a", "데이터/<b", "c/"],
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn broken_pages_are_errors() {
        assert!(split_contents(b"<Contents><Key>a</Key>").1.is_err());
        assert!(
            split_contents(b"<Contents><Size>1</Size></Contents>")
                .1
                .is_err()
        );
        assert!(
            split_contents(b"<Contents><Key>&bogus;</Key></Contents>")
                .1
                .is_err()
        );
    }
}
