//! A prefix's fingerprint: an order-independent 64-bit digest of its objects, each object
//! taken as its key, ETag and size. Every object adds one [`term`] (a keyed 64-bit hash), and
//! the fingerprint is their wrapping sum, so key ranges listed at once combine in any order.
//!
//! Equal fingerprints mean the same objects with the same contents (an ETag changes with a
//! rewrite). The hash is this crate's own, fixed for good: a fingerprint stored by one version
//! is compared with one counted by the next. (`std`'s `DefaultHasher` may change between Rust
//! releases.) It is not meant to resist someone choosing keys to collide; nothing here is
//! secret.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The hash's keys: fixed, odd, random-looking constants.
const SEED_KEY: u64 = 0x243f_6a88_85a3_08d3;
const SEED_ETAG: u64 = 0x1319_8a2e_0370_7344;
const SEED_SIZE: u64 = 0xa409_3822_299f_31d1;
const MIX_A: u64 = 0x082e_fa98_ec4e_6c89;
const MIX_B: u64 = 0x4528_21e6_38d0_1377;
const MIX_C: u64 = 0xbe54_66cf_34e9_0c6d;

/// The 128-bit product of `a` and `b`, folded to 64 bits.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A keyed hash of `bytes`, eight at a time.
pub fn hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(MIX_A);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
        h = fold(h ^ w ^ MIX_B, MIX_C);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(last) ^ MIX_A, MIX_C);
    }
    fold(h ^ MIX_B, MIX_A ^ seed)
}

/// One object's term of its prefix's fingerprint: its key, ETag (its XML text as S3 lists it,
/// `&quot;...&quot;`) and size, each hashed with its own key so that the fields cannot stand in
/// for each other.
pub fn term(key: &str, etag: &[u8], size: u64) -> u64 {
    let k = hash(key.as_bytes(), SEED_KEY);
    let e = hash(etag, SEED_ETAG);
    fold(k ^ size.wrapping_mul(SEED_SIZE), e ^ MIX_C) ^ k
}

/// A prefix's fingerprint, shown and stored as 16 hex digits (a JSON number would lose
/// precision in JavaScript).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fingerprint(pub u64);

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Fingerprint {
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(text, 16).ok())
            .flatten()
            .map(Self)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("a fingerprint is 16 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_depend_on_every_field_and_sums_on_no_order() {
        let a = term(
            "train/a/1.jsonl",
            b"\"d41d8cd98f00b204e9800998ecf8427e\"",
            3,
        );
        assert_eq!(
            a,
            term(
                "train/a/1.jsonl",
                b"\"d41d8cd98f00b204e9800998ecf8427e\"",
                3
            )
        );
        assert_ne!(
            a,
            term(
                "train/a/1.jsonl",
                b"\"d41d8cd98f00b204e9800998ecf8427f\"",
                3
            )
        );
        assert_ne!(
            a,
            term(
                "train/a/1.jsonl",
                b"\"d41d8cd98f00b204e9800998ecf8427e\"",
                4
            )
        );
        assert_ne!(
            a,
            term(
                "train/a/2.jsonl",
                b"\"d41d8cd98f00b204e9800998ecf8427e\"",
                3
            )
        );
        // A key and an ETag swapped are another object.
        assert_ne!(term("x", b"y", 0), term("y", b"x", 0));
        let terms: Vec<u64> = (0..1000)
            .map(|i| term(&format!("k{i}"), b"\"e\"", i))
            .collect();
        let forward = terms.iter().fold(0u64, |s, t| s.wrapping_add(*t));
        let backward = terms.iter().rev().fold(0u64, |s, t| s.wrapping_add(*t));
        assert_eq!(forward, backward);
        // No two of a thousand similar objects share a term.
        let mut sorted = terms.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), terms.len());
    }

    #[test]
    fn the_hash_is_fixed_for_good() {
        // Stored fingerprints are compared across versions: these values must never change.
        let pinned = term(
            "train/embedding/img_000000001.jpg",
            b"\"0123456789abcdef\"",
            1234,
        );
        assert_eq!(Fingerprint(pinned).to_string().len(), 16);
        assert_eq!(pinned, PINNED_TERM);
    }

    /// `term("train/embedding/img_000000001.jpg", "\"0123456789abcdef\"", 1234)`, as first
    /// computed: a change to the hash would make every stored fingerprint differ.
    const PINNED_TERM: u64 = 10_464_787_858_574_008_709;

    #[test]
    fn fingerprints_read_back_as_hex() {
        let f = Fingerprint(0x00ab_cdef_0123_4567);
        assert_eq!(f.to_string(), "00abcdef01234567");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, "\"00abcdef01234567\"");
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), f);
        assert!(serde_json::from_str::<Fingerprint>("\"xyz\"").is_err());
        assert_eq!(Fingerprint::parse("+0abcdef01234567"), None);
    }
}
