//! A lean ListObjectsV2 page reader. The SDK still signs, resolves the endpoint and retries;
//! this interceptor only takes each successful page's body before the SDK deserialises it,
//! reads the `<Key>` of every `<Contents>` itself and hands the SDK the page without its
//! `<Contents>`, so the SDK parses only the few fields around them (IsTruncated,
//! NextContinuationToken). Deserialising 1,000 full `Object`s (key, date, ETag, size, storage
//! class) was most of seek's CPU per page: see README, Measured.

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Where one request's keys land (the last successful attempt's).
pub type KeySlot = Arc<Mutex<Option<Result<Vec<String>, String>>>>;

/// The per-request interceptor: attach with `.customize().interceptor(KeyTap::new(slot))`.
#[derive(Debug)]
pub struct KeyTap(KeySlot);

impl KeyTap {
    pub fn new(slot: KeySlot) -> Self {
        Self(slot)
    }
}

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
        let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() = SdkBody::from_body_1_x(Condense {
            inner,
            buf: Vec::new(),
            slot: self.0.clone(),
            done: false,
        });
        Ok(())
    }
}

/// Collects the body, then yields it without its `<Contents>` and stores their keys.
struct Condense {
    inner: SdkBody,
    buf: Vec<u8>,
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
                        this.buf.extend_from_slice(&data);
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let (rest, keys) = split_contents(&this.buf);
                    if let Ok(mut slot) = this.slot.lock() {
                        *slot = Some(keys);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
            }
        }
    }
}

/// The page without its `<Contents>` elements, and the keys they held, unescaped.
pub fn split_contents(xml: &[u8]) -> (Vec<u8>, Result<Vec<String>, String>) {
    let open = memchr::memmem::Finder::new(b"<Contents>");
    let close = memchr::memmem::Finder::new(b"</Contents>");
    let mut rest = Vec::with_capacity(512);
    let mut keys = Vec::with_capacity(1000);
    let mut at = 0;
    while let Some(start) = open.find(&xml[at..]).map(|i| at + i) {
        rest.extend_from_slice(&xml[at..start]);
        let Some(end) = close.find(&xml[start..]).map(|i| start + i) else {
            return (rest, Err("a <Contents> is not closed".into()));
        };
        match element(&xml[start..end], b"<Key>", b"</Key>").map(unescape) {
            Some(Ok(k)) => keys.push(k),
            Some(Err(e)) => return (rest, Err(e)),
            None => return (rest, Err("a <Contents> has no <Key>".into())),
        }
        at = end + b"</Contents>".len();
    }
    rest.extend_from_slice(&xml[at..]);
    (rest, Ok(keys))
}

fn element<'a>(xml: &'a [u8], open: &[u8], close: &[u8]) -> Option<&'a [u8]> {
    let start = memchr::memmem::find(xml, open)? + open.len();
    let len = memchr::memmem::find(&xml[start..], close)?;
    Some(&xml[start..start + len])
}

/// XML text to a string: the five named entities and numeric character references.
fn unescape(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a key is not UTF-8".to_string())?;
    if !text.contains('&') {
        return Ok(text.to_owned());
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_out_and_unescaped() {
        let xml = r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><Contents><Key>a/&amp;x&lt;&#13;&#x1F600;</Key><Size>1</Size></Contents><Contents><Key>데이터/ü +%</Key></Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"#.as_bytes();
        let (rest, keys) = split_contents(xml);
        assert_eq!(keys.unwrap(), vec!["a/&x<\r\u{1F600}", "데이터/ü +%"]);
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"#
        );
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
