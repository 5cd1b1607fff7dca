//! A page's keys, in order, front-coded in one buffer.
//!
//! Every request in flight holds one page of keys until its range takes them, so their size is
//! seek's memory per request. Sorted keys share most of their bytes with the key before
//! (`img_000123456.jpg`, `img_000123457.jpg`): each key is stored as how many bytes it shares
//! with the one before, then the rest. A page of 1,000 counter keys under `train/embedding/`
//! is about 7 KB this way, against 37 KB as one text buffer plus an end offset per key
//! (heaptrack, 2 x 1M keys: 16 KiB a request in flight, the largest share that was seek's own).
//! Keys are read back in order only, which is all counting needs.
//!
//! The buffer grows by [`GROW_BY`] at a time, not by doubling: doubling left up to half of it
//! unused, and every request in flight holds one (hashed keys: 17 KB of keys in 32 KiB).

/// How much a page's buffer grows at a time (copying a page's few KB a few times is little
/// beside reading its 300 KB of XML).
const GROW_BY: usize = 4096;

/// A page's keys, in S3's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Per key: bytes shared with the key before, bytes that follow (both LEB128), those bytes.
    buf: Vec<u8>,
    count: usize,
    /// The key pushed last: what the next one is coded against.
    last: String,
}

impl Keys {
    pub fn push(&mut self, key: &str) {
        let mut shared = self
            .last
            .bytes()
            .zip(key.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        // Cut at a character boundary, so that every stored tail is itself text.
        while !key.is_char_boundary(shared) {
            shared -= 1;
        }
        let tail = &key[shared..];
        // The tail and its two lengths (at most 10 bytes each).
        let needed = tail.len() + 2 * 10;
        if self.buf.capacity() - self.buf.len() < needed {
            self.buf.reserve_exact(needed.max(GROW_BY));
        }
        put_len(&mut self.buf, shared);
        put_len(&mut self.buf, tail.len());
        self.buf.extend_from_slice(tail.as_bytes());
        self.last.truncate(shared);
        self.last.push_str(tail);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Reads the keys in order, one at a time.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            buf: &self.buf,
            key: String::new(),
        }
    }

    /// The keys as strings (for tests and small pages).
    pub fn to_vec(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.count);
        let mut cursor = self.cursor();
        while let Some(k) = cursor.next_key() {
            out.push(k.to_owned());
        }
        out
    }
}

/// Reads a [`Keys`] front to back, rebuilding each key in one buffer.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    key: String,
}

impl Cursor<'_> {
    /// The next key, or `None` at the end.
    pub fn next_key(&mut self) -> Option<&str> {
        let shared = take_len(&mut self.buf)?;
        let len = take_len(&mut self.buf)?;
        let tail = self.buf.get(..len)?;
        self.buf = &self.buf[len..];
        // `push` stored whole characters, so both always succeed; an empty end stops the read.
        let tail = std::str::from_utf8(tail).ok()?;
        if !self.key.is_char_boundary(shared) {
            return None;
        }
        self.key.truncate(shared);
        self.key.push_str(tail);
        Some(&self.key)
    }
}

fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn take_len(buf: &mut &[u8]) -> Option<usize> {
    let mut n = 0usize;
    for shift in (0..usize::BITS).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_pushed() {
        let long = "x".repeat(300);
        let keys = [
            "",
            "train/a/",
            "train/a/img_000000001.jpg",
            "train/a/img_000000002.jpg",
            "train/a/img_000000002.jpg",
            "train/a/img_0000000020.jpg",
            "train/a/데이터/ü +%",
            // Shares part of the first byte sequence of '데' and of 'ü' with its neighbours.
            "train/a/덱",
            "train/a/덱ý",
            &format!("train/a/{long}"),
            &format!("train/a/{long}y"),
            "b",
        ];
        let mut page = Keys::default();
        keys.iter().for_each(|k| page.push(k));
        assert_eq!(page.len(), keys.len());
        assert_eq!(page.to_vec(), keys);
    }

    #[test]
    fn sorted_keys_take_little_room() {
        let mut page = Keys::default();
        for i in 0..1000 {
            page.push(&format!("train/embedding/img_{i:09}.jpg"));
        }
        // 33 bytes a key as plain text; the shared stem is stored once.
        assert!(page.buf.len() < 8 * 1000, "{} bytes", page.buf.len());
        assert_eq!(page.to_vec()[999], "train/embedding/img_000000999.jpg");
    }
}
