//! A response body read off its connection: how its end is known (`Content-Length`, chunked,
//! or the connection closing), and giving the connection back to the pool when it ends cleanly.

use super::{Conn, Failed, MAX_LINE, READ_CHUNK, Shared};
use bytes::{Buf, Bytes, BytesMut};
use http_body::Frame;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// How the end of a response body is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// This many bytes remain.
    Length(u64),
    /// Chunked transfer coding, at this point of it.
    Chunked(Chunk),
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data remain.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailer,
    Done,
}

impl Framing {
    pub(super) fn of(method: &http::Method, response: &http::Response<()>) -> Result<Self, Failed> {
        let status = response.status().as_u16();
        if *method == http::Method::HEAD || status == 204 || status == 304 {
            return Ok(Framing::Length(0));
        }
        let headers = response.headers();
        let chunked = headers
            .get_all(http::header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .next_back()
            .map(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        match chunked {
            Some(true) => return Ok(Framing::Chunked(Chunk::Size)),
            Some(false) => return Ok(Framing::UntilClose),
            None => {}
        }
        match headers.get(http::header::CONTENT_LENGTH) {
            Some(length) => length
                .to_str()
                .ok()
                .and_then(|l| l.trim().parse().ok())
                .map(Framing::Length)
                .ok_or_else(|| Failed::Malformed(format!("Content-Length {length:?}"))),
            None => Ok(Framing::UntilClose),
        }
    }
}

/// What the next step of a body gives.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Data(Bytes),
    /// More bytes must be read first.
    More,
    Done,
}

impl Chunk {
    /// Takes the next piece of a chunked body out of `buf`.
    pub(super) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, String> {
        loop {
            match *self {
                Chunk::Size | Chunk::Trailer => {
                    let Some(end) = memchr::memmem::find(buf, b"\r\n") else {
                        return match buf.len() > MAX_LINE {
                            true => Err(format!("a chunk line over {MAX_LINE} bytes")),
                            false => Ok(Step::More),
                        };
                    };
                    let line = buf.split_to(end + 2);
                    let line = &line[..end];
                    if *self == Chunk::Trailer {
                        if line.is_empty() {
                            *self = Chunk::Done;
                        }
                        continue;
                    }
                    let size = line.split(|b| *b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size.trim_ascii())
                        .ok()
                        .filter(|s| !s.is_empty() && s.len() <= 15)
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| format!("chunk size {:?}", String::from_utf8_lossy(line)))?;
                    *self = match size {
                        0 => Chunk::Trailer,
                        n => Chunk::Data(n),
                    };
                }
                Chunk::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = left.min(buf.len() as u64);
                    *self = match left - take {
                        0 => Chunk::DataEnd,
                        rest => Chunk::Data(rest),
                    };
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                Chunk::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("no CRLF after a chunk".into());
                    }
                    buf.advance(2);
                    *self = Chunk::Size;
                }
                Chunk::Done => return Ok(Step::Done),
            }
        }
    }
}

/// A response body being read off its connection.
#[derive(Debug)]
pub(super) struct Body {
    /// `None` once the body has ended (the connection then went back to the pool or closed).
    pub(super) conn: Option<Conn>,
    /// Read but not yet handed on; empty between reads of a steady body.
    pub(super) buf: BytesMut,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
}

impl Body {
    /// The next piece of the body already in `buf`.
    fn step(&mut self) -> Result<Step, String> {
        match &mut self.framing {
            Framing::Length(0) => Ok(Step::Done),
            Framing::Length(left) => {
                if self.buf.is_empty() {
                    return Ok(Step::More);
                }
                let take = (*left).min(self.buf.len() as u64);
                *left -= take;
                Ok(Step::Data(self.buf.split_to(take as usize).freeze()))
            }
            Framing::Chunked(chunk) => chunk.step(&mut self.buf),
            Framing::UntilClose => match self.buf.is_empty() {
                true => Ok(Step::More),
                false => Ok(Step::Data(self.buf.split().freeze())),
            },
        }
    }
}

/// [`Body`] with the pool it returns its connection to.
pub(super) struct Incoming {
    pub(super) body: Body,
    pub(super) shared: Arc<Shared>,
}

impl http_body::Body for Incoming {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let body = &mut this.body;
        loop {
            if body.conn.is_none() {
                return Poll::Ready(None);
            }
            match body.step() {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Step::Done) => {
                    // Reused only when nothing was sent past the body's end.
                    if let Some(conn) = body.conn.take()
                        && body.keep_alive
                        && body.buf.is_empty()
                    {
                        this.shared.put_idle(conn);
                    }
                    return Poll::Ready(None);
                }
                Err(why) => {
                    body.conn = None;
                    return Poll::Ready(Some(
                        Err(format!("malformed response body: {why}").into()),
                    ));
                }
                Ok(Step::More) => {}
            }
            if body.buf.capacity() - body.buf.len() < READ_CHUNK / 2 {
                body.buf.reserve(READ_CHUNK);
            }
            let Some(conn) = body.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut body.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    body.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(Ok(0)) => {
                    body.conn = None;
                    if body.framing == Framing::UntilClose {
                        return Poll::Ready(None);
                    }
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the body ended",
                    );
                    return Poll::Ready(Some(Err(eof.into())));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}
