//! The ListObjectsV2 interceptor: it takes each successful page's body before the SDK
//! deserialises it and streams it through the page reader ([`super::page`]), which keeps the
//! `<Contents>` and hands the SDK the rest; and it tells the gate of each 503 SlowDown.

use super::page::{PageKeys, Splitter};
use crate::ranges::{Gate, Keys};
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Where one request's keys land (the last successful attempt's), and what decides whether an
/// object is new: the baseline's count start, in seconds (`None`: every object is new).
#[derive(Debug, Default)]
pub struct Slot {
    pub since: Option<i64>,
    pub keys: Mutex<Option<Result<Keys, String>>>,
}

pub type KeySlot = Arc<Slot>;

tokio::task_local! {
    /// The slot of the request being sent in this task: set with `SLOT.scope(slot, send)`.
    pub static SLOT: KeySlot;
}

/// The interceptor, registered once on the client: it reads the request's slot from [`SLOT`].
/// Attaching one per request (`.customize().interceptor(..)`) gave every request in flight a
/// configuration layer of its own; see docs/measured.md.
///
/// It also tells the gate of every 503 (SlowDown) attempt, which the SDK then retries after its
/// backoff: a sized gate lets fewer requests through for a while ([`Gate::throttled`]).
#[derive(Debug, Default)]
pub struct KeyTap {
    pub gate: Option<Arc<Gate>>,
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
        if response.status().as_u16() == 503
            && let Some(gate) = &self.gate
        {
            gate.throttled();
        }
        if !response.status().is_success() {
            return Ok(());
        }
        let Ok(slot) = SLOT.try_with(KeySlot::clone) else {
            return Ok(());
        };
        let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
        let sink = PageKeys::new(slot.since);
        *response.body_mut() = SdkBody::from_body_1_x(Condense {
            inner,
            split: Splitter::new(sink),
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
    split: Splitter<PageKeys>,
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
                    let split =
                        std::mem::replace(&mut this.split, Splitter::new(PageKeys::default()));
                    let (rest, sink) = split.finish();
                    if let Ok(mut keys) = this.slot.keys.lock() {
                        *keys = Some(sink.map(|s| s.keys));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
            }
        }
    }
}
