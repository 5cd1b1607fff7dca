//! A page's keys, in order, front-coded in one buffer.
//!
//! Every request in flight holds one page of keys until its range takes them, so their size is
//! seek's memory per request. Sorted keys share most of their bytes with the key before
//! (`img_000123456.jpg`, `img_000123457.jpg`): each key is stored as how many bytes it shares
//! with the one before, then the rest. A page of 1,000 counter keys under `train/embedding/`
//! is about 7 KB this way, against 37 KB as one text buffer plus an end offset per key
//! (heaptrack, 2 x 1M keys: 16 KiB a request in flight, the largest share that was seek's own).
//!
//! Every [`RESTART_EVERY`]-th key is stored whole, so the alphabet's samples, the first and the
//! last key, and the count of objects are at hand without decoding the page: the range that
//! takes a page reads each key only when its bound cuts the page (rare) or a test watches.
//! Decoding every key while holding the ranges' lock cost about 10% more CPU per key.
//!
//! The buffer grows by [`GROW_BY`] at a time, not by doubling: doubling left up to half of it
//! unused, and every request in flight holds one (hashed keys: 17 KB of keys in 32 KiB).
//!
//! Each key carries what change detection needs of its object ([`Meta`]: its size, whether it
//! is new since the baseline, and its fingerprint term), stored after its tail: a varint and
//! 8 bytes. The page's [`Sums`] over its objects are kept as keys are pushed, so a page within
//! its range's bound is applied without decoding a key.

use crate::fingerprint::Fingerprint;

/// How much a page's buffer grows at a time (copying a page's few KB a few times is little
/// beside reading its 300 KB of XML).
const GROW_BY: usize = 4096;

/// Every how many keys one is stored whole (and sampled for the prefix's alphabet).
pub const RESTART_EVERY: usize = 64;

/// What a listing says about one object, as change detection needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// `Size`, in bytes.
    pub size: u64,
    /// Whether its `LastModified` is at or after the baseline's count began (or there is no
    /// baseline): added or rewritten since.
    pub new: bool,
    /// Its term of the prefix's fingerprint ([`crate::fingerprint::term`]).
    pub term: u64,
}

/// Sums over a set of objects (folder markers are not objects). Order-independent, so key
/// ranges listed at once add up in any order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sums {
    pub objects: u64,
    /// Their total size.
    pub bytes: u64,
    /// Objects last modified at or after the baseline's count began (all of them, without
    /// one): added or rewritten since. And their total size.
    pub new_objects: u64,
    pub new_bytes: u64,
    /// The wrapping sum of the objects' fingerprint terms.
    pub fingerprint: Fingerprint,
}

impl Sums {
    pub fn add(&mut self, m: &Meta) {
        self.objects += 1;
        self.bytes = self.bytes.saturating_add(m.size);
        if m.new {
            self.new_objects += 1;
            self.new_bytes = self.new_bytes.saturating_add(m.size);
        }
        self.fingerprint.0 = self.fingerprint.0.wrapping_add(m.term);
    }

    pub fn merge(&mut self, o: &Sums) {
        self.objects += o.objects;
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.new_objects += o.new_objects;
        self.new_bytes = self.new_bytes.saturating_add(o.new_bytes);
        self.fingerprint.0 = self.fingerprint.0.wrapping_add(o.fingerprint.0);
    }
}

/// A page's keys, in S3's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Per key: bytes shared with the key before, bytes that follow (both LEB128), those bytes.
    buf: Vec<u8>,
    /// Where each whole key (every RESTART_EVERY-th, from the first) starts in `buf`.
    restarts: Vec<u32>,
    count: usize,
    /// Keys ending in `/` (folder markers).
    folders: usize,
    /// Over the keys that are not folder markers.
    sums: Sums,
    /// The key pushed last: what the next one is coded against.
    last: String,
}

impl Keys {
    /// Pushes a key with no object data (tests of key ranges alone).
    pub fn push(&mut self, key: &str) {
        self.push_object(key, &Meta::default());
    }

    /// Pushes a key and what the listing says about its object.
    pub fn push_object(&mut self, key: &str, meta: &Meta) {
        let whole = self.count.is_multiple_of(RESTART_EVERY);
        let mut shared = if whole {
            0
        } else {
            common_prefix(self.last.as_bytes(), key.as_bytes())
        };
        // Cut at a character boundary, so that every stored tail is itself text.
        while !key.is_char_boundary(shared) {
            shared -= 1;
        }
        let tail = &key[shared..];
        // The tail, its two lengths and the meta's varint (at most 10 bytes each), its term.
        let needed = tail.len() + 3 * 10 + 8;
        if self.buf.capacity() - self.buf.len() < needed {
            self.buf.reserve_exact(needed.max(GROW_BY));
        }
        if whole {
            // A page is at most 1,000 keys of at most 1,024 bytes.
            self.restarts
                .push(u32::try_from(self.buf.len()).unwrap_or(u32::MAX));
        }
        put_len(&mut self.buf, shared);
        put_len(&mut self.buf, tail.len());
        self.buf.extend_from_slice(tail.as_bytes());
        put_len(
            &mut self.buf,
            (usize::try_from(meta.size).unwrap_or(usize::MAX >> 1) << 1) | usize::from(meta.new),
        );
        self.buf.extend_from_slice(&meta.term.to_le_bytes());
        self.last.truncate(shared);
        self.last.push_str(tail);
        self.count += 1;
        if key.ends_with('/') {
            self.folders += 1;
        } else {
            self.sums.add(meta);
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Keys that are not folder markers.
    pub fn objects(&self) -> usize {
        self.count - self.folders
    }

    /// The sums over the page's objects.
    pub fn sums(&self) -> Sums {
        self.sums
    }

    /// The last key.
    pub fn last(&self) -> Option<&str> {
        (self.count > 0).then_some(self.last.as_str())
    }

    /// Keys 0, RESTART_EVERY, 2 x RESTART_EVERY, ... below `below`, without decoding others.
    pub fn samples(&self, below: usize) -> impl Iterator<Item = &str> {
        let n = below.min(self.count).div_ceil(RESTART_EVERY);
        self.restarts.iter().take(n).filter_map(|&at| {
            let mut rest = self.buf.get(at as usize..)?;
            take_len(&mut rest)?;
            let len = take_len(&mut rest)?;
            std::str::from_utf8(rest.get(..len)?).ok()
        })
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

    /// The keys with their objects' data (for tests and small pages).
    pub fn entries(&self) -> Vec<(String, Meta)> {
        let mut out = Vec::with_capacity(self.count);
        let mut cursor = self.cursor();
        while let Some((k, m)) = cursor.next_object() {
            out.push((k.to_owned(), m));
        }
        out
    }
}

/// How many leading bytes `a` and `b` share, compared 8 at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n && a[i..i + 8] == b[i..i + 8] {
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
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
        self.next_object().map(|(k, _)| k)
    }

    /// The next key and its object's data, or `None` at the end.
    pub fn next_object(&mut self) -> Option<(&str, Meta)> {
        let shared = take_len(&mut self.buf)?;
        let len = take_len(&mut self.buf)?;
        let tail = self.buf.get(..len)?;
        self.buf = &self.buf[len..];
        let packed = take_len(&mut self.buf)?;
        let term = self.buf.get(..8)?;
        let term = u64::from_le_bytes(term.try_into().ok()?);
        self.buf = &self.buf[8..];
        // `push` stored whole characters, so both always succeed; an empty end stops the read.
        let tail = std::str::from_utf8(tail).ok()?;
        if !self.key.is_char_boundary(shared) {
            return None;
        }
        self.key.truncate(shared);
        self.key.push_str(tail);
        let meta = Meta {
            size: (packed >> 1) as u64,
            new: packed & 1 == 1,
            term,
        };
        Some((&self.key, meta))
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
    fn samples_first_last_and_objects_need_no_decoding() {
        let keys: Vec<String> = (0..200)
            .map(|i| format!("p/{i:04}{}", if i % 7 == 0 { "/" } else { ".bin" }))
            .collect();
        let mut page = Keys::default();
        keys.iter().for_each(|k| page.push(k));
        assert_eq!(
            page.objects(),
            keys.iter().filter(|k| !k.ends_with('/')).count()
        );
        assert_eq!(page.last(), Some("p/0199.bin"));
        let every: Vec<&str> = keys
            .iter()
            .step_by(RESTART_EVERY)
            .map(String::as_str)
            .collect();
        assert_eq!(page.samples(200).collect::<Vec<_>>(), every);
        assert_eq!(page.samples(65).collect::<Vec<_>>(), every[..2]);
        assert_eq!(page.samples(64).collect::<Vec<_>>(), every[..1]);
        assert_eq!(page.samples(0).count(), 0);
        assert_eq!(Keys::default().last(), None);
    }

    #[test]
    fn objects_read_back_with_their_data_and_sum_without_folder_markers() {
        let mut page = Keys::default();
        let mut want = Sums::default();
        let mut all = Vec::new();
        for i in 0..300u64 {
            let key = format!("p/{i:04}{}", if i % 50 == 49 { "/" } else { ".bin" });
            let meta = Meta {
                size: i * i * 1_000_003 + u64::from(i == 7) * (u64::MAX >> 2),
                new: i % 3 == 0,
                term: i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            };
            page.push_object(&key, &meta);
            if !key.ends_with('/') {
                want.add(&meta);
            }
            all.push((key, meta));
        }
        assert_eq!(page.entries(), all);
        assert_eq!(page.sums(), want);
        assert_eq!(page.sums().objects, page.objects() as u64);
        assert_eq!(page.samples(300).count(), 300usize.div_ceil(RESTART_EVERY));
        assert_eq!(page.samples(300).next(), Some("p/0000.bin"));
    }

    #[test]
    fn common_prefixes_of_any_length() {
        for (a, b, n) in [
            ("", "", 0),
            ("abc", "abd", 2),
            ("train/embedding/img_0001", "train/embedding/img_0002", 23),
            ("train/embedding/", "train/embedding/x", 16),
            ("same-length-16-b", "same-length-16-b", 16),
        ] {
            assert_eq!(common_prefix(a.as_bytes(), b.as_bytes()), n, "{a} {b}");
        }
    }

    #[test]
    fn sorted_keys_take_little_room() {
        let mut page = Keys::default();
        for i in 0..1000 {
            page.push(&format!("train/embedding/img_{i:09}.jpg"));
        }
        // 33 bytes a key as plain text; the shared stem is stored once. Each key's object
        // data takes 9 more bytes here (a size of 0 in one byte, the term in 8).
        let keys_alone = page.buf.len() - 9 * 1000;
        assert!(keys_alone < 8 * 1000, "{} bytes", page.buf.len());
        assert_eq!(page.to_vec()[999], "train/embedding/img_000000999.jpg");
    }
}
