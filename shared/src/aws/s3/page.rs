//! A lean ListObjectsV2 page reader. The SDK still signs, resolves the endpoint and retries;
//! the interceptor (`tap.rs`) only takes each successful page's body before the SDK
//! deserialises it, and this reader reads every `<Contents>` itself (its `Key`,
//! `LastModified`, `ETag` and `Size`, nothing else) and hands the SDK the page without its
//! `<Contents>`, so the SDK parses only the few fields around them (IsTruncated, NextContinuationToken). Deserialising 1,000 full `Object`s
//! (key, date, ETag, size, storage class, each into its own allocations) was most of seek's
//! CPU per page: see docs/measured.md.
//!
//! Each object becomes a key and its [`Meta`] (size, new since the baseline, fingerprint term):
//! a page holds no ETag or date, only what counting sums.

use crate::ranges::{Keys, Meta};
use std::borrow::Cow;

const OPEN: &[u8] = b"<Contents>";
const CLOSE: &[u8] = b"</Contents>";

/// The two searchers a page is scanned with, built once: `memmem::find` builds its searcher on
/// every call, which was about a fifth of seek's CPU per key (perf, 2 x 1M keys).
static FIND_OPEN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(OPEN));
static FIND_CLOSE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(CLOSE));

/// One `<Contents>`, as the reader takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<'a> {
    pub key: Cow<'a, str>,
    /// `Size`, in bytes.
    pub size: u64,
    /// `LastModified`'s text, as listed (`2026-11-24T00:00:07.000Z`): compared as it is when
    /// it has S3's shape, read only when asked for ([`Object::modified`]).
    pub modified_xml: &'a [u8],
    /// `ETag`'s XML text as listed (quotes included, as `&quot;`), or empty when the page has
    /// none: hashed as it is, and decoded only when asked for ([`Object::etag`]).
    pub etag_xml: &'a [u8],
}

impl Object<'_> {
    /// The ETag, its entities decoded (`"9b2c"`).
    pub fn etag(&self) -> Result<Cow<'_, str>, String> {
        unescape(self.etag_xml)
    }

    /// `LastModified`, in whole seconds since the epoch (S3 lists it to the second).
    pub fn modified(&self) -> Result<i64, String> {
        crate::time::epoch_secs_of(self.modified_xml.trim_ascii()).ok_or_else(|| {
            format!(
                "LastModified {:?} is not an RFC 3339 date-time",
                String::from_utf8_lossy(self.modified_xml)
            )
        })
    }

    /// Whether it was last modified at or after `since` (whose first 19 bytes, RFC 3339 in UTC
    /// to the second, are `since_text`). S3's own spelling (`YYYY-MM-DDTHH:MM:SS[.fff]Z`)
    /// compares as text, in the order of time, with no date arithmetic per object; any other is
    /// read in full.
    fn modified_since(&self, since: i64, since_text: &[u8; 19]) -> Result<bool, String> {
        let m = self.modified_xml;
        let s3_shaped = m.len() >= 20
            && m[4] == b'-'
            && m[10] == b'T'
            && m[19..].last() == Some(&b'Z')
            && (m[19] == b'Z' || m[19] == b'.');
        if s3_shaped {
            return Ok(&m[..19] >= since_text.as_slice());
        }
        Ok(self.modified()? >= since)
    }
}

/// What becomes of each object a page holds. An error fails the page.
pub trait Sink {
    fn object(&mut self, object: &Object<'_>) -> Result<(), String>;
}

/// seek's sink: each object's key and [`Meta`]. An object is new when it was last modified at
/// or after `since` (S3's dates are whole seconds, so an object written in the second a count
/// began is new to the next count, never missed).
#[derive(Debug, Default)]
pub struct PageKeys {
    /// `since` in seconds, and as RFC 3339 text to the second.
    since: Option<(i64, [u8; 19])>,
    pub keys: Keys,
}

impl PageKeys {
    pub fn new(since: Option<i64>) -> Self {
        let since = since.map(|secs| {
            let mut text = [0u8; 19];
            let rfc = crate::Timestamp::from_secs(secs).rfc3339();
            let n = rfc.len().min(19);
            text[..n].copy_from_slice(&rfc.as_bytes()[..n]);
            (secs, text)
        });
        Self {
            since,
            keys: Keys::default(),
        }
    }
}

impl Sink for PageKeys {
    fn object(&mut self, o: &Object<'_>) -> Result<(), String> {
        let new = match &self.since {
            None => true,
            Some((secs, text)) => o.modified_since(*secs, text)?,
        };
        let meta = Meta {
            size: o.size,
            new,
            term: crate::fingerprint::term(&o.key, o.etag_xml, o.size),
        };
        self.keys.push_object(&o.key, &meta);
        Ok(())
    }
}

/// An object in full, owned: what the tests and the fuzz targets compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: i64,
    pub etag: String,
}

/// Every object in full.
impl Sink for Vec<Listed> {
    fn object(&mut self, o: &Object<'_>) -> Result<(), String> {
        self.push(Listed {
            key: o.key.to_string(),
            size: o.size,
            modified: o.modified()?,
            etag: o.etag()?.into_owned(),
        });
        Ok(())
    }
}

/// Takes the `<Contents>` out of a page fed in pieces of any size, handing each to its sink.
#[derive(Debug)]
pub struct Splitter<S> {
    /// Bytes not yet placed: an unfinished `<Contents>`, or a tail that may start one.
    carry: Vec<u8>,
    rest: Vec<u8>,
    sink: S,
    failed: Option<String>,
}

impl<S: Sink> Splitter<S> {
    pub fn new(sink: S) -> Self {
        Self {
            carry: Vec::new(),
            rest: Vec::new(),
            sink,
            failed: None,
        }
    }

    /// Takes in the next piece of the page. Only an unfinished `<Contents>` (or a tail that may
    /// start one) is copied and kept between pieces; the rest is read where it lies. Copying
    /// every piece into `carry` first kept a buffer the size of hyper's largest read per
    /// request in flight: 21% of seek's peak heap (valgrind massif, 2 x 200k keys).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while self.failed.is_none() && !self.carry.is_empty() && !bytes.is_empty() {
            // Finish the kept piece with the input up to the next "</Contents>" (or all of it).
            let take = FIND_CLOSE
                .find(bytes)
                .map_or(bytes.len(), |i| i + CLOSE.len());
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
            let Some(start) = FIND_OPEN.find(&buf[at..]).map(|i| at + i) else {
                // Keep a tail that could be the start of "<Contents>".
                let keep = (buf.len() - at).min(OPEN.len() - 1);
                let end = buf.len() - keep;
                self.rest.extend_from_slice(&buf[at..end]);
                return end;
            };
            self.rest.extend_from_slice(&buf[at..start]);
            let Some(end) = FIND_CLOSE.find(&buf[start..]).map(|i| start + i) else {
                return start;
            };
            if let Err(e) = object(&buf[start + OPEN.len()..end]).and_then(|o| self.sink.object(&o))
            {
                self.failed = Some(e);
                return buf.len();
            }
            at = end + CLOSE.len();
        }
    }

    /// The page without its `<Contents>`, and the sink that took them, in order.
    pub fn finish(mut self) -> (Vec<u8>, Result<S, String>) {
        if let Some(e) = self.failed {
            return (self.rest, Err(e));
        }
        if FIND_OPEN.find(&self.carry).is_some() {
            return (self.rest, Err("a <Contents> is not closed".into()));
        }
        self.rest.append(&mut self.carry);
        (self.rest, Ok(self.sink))
    }
}

/// The page without its `<Contents>` elements, and every object they held.
pub fn split_contents(xml: &[u8]) -> (Vec<u8>, Result<Vec<Listed>, String>) {
    let mut s = Splitter::new(Vec::new());
    s.feed(xml);
    s.finish()
}

/// Reads one `<Contents>` (what lies between its tags): the text of its `Key`,
/// `LastModified`, `ETag` and `Size` children, wherever they stand; other children
/// (`StorageClass`, `Owner`, checksums) are passed over. `Key`, `LastModified` and `Size` are
/// required.
fn object(xml: &[u8]) -> Result<Object<'_>, String> {
    let mut fields = Fields::default();
    // S3 lists a `<Contents>`'s children in one order, so each is looked for where the one
    // before it ended; anything else (another order, spaces between, children this reader
    // does not know) is read by the general scan.
    if !fields.in_s3_order(xml) {
        fields = Fields::default();
        fields.scan(xml)?;
    }
    let key = unescape(fields.key.ok_or("a <Contents> has no <Key>")?)?;
    let modified_xml = fields
        .modified
        .ok_or("a <Contents> has no <LastModified>")?;
    let size = fields.size.ok_or("a <Contents> has no <Size>")?;
    let size = whole_number(size.trim_ascii()).ok_or_else(|| {
        format!(
            "Size {:?} is not a whole number",
            String::from_utf8_lossy(size)
        )
    })?;
    // The ETag is hashed as listed; a sink that wants it as text decodes (and checks) it.
    Ok(Object {
        key,
        size,
        modified_xml,
        etag_xml: fields.etag.unwrap_or_default(),
    })
}

/// The text of the children of one `<Contents>` that the reader takes.
#[derive(Default)]
struct Fields<'a> {
    key: Option<&'a [u8]>,
    modified: Option<&'a [u8]>,
    etag: Option<&'a [u8]>,
    size: Option<&'a [u8]>,
}

/// `<name>text</name>` at the start of `xml`: the text and what follows the closing tag.
fn element<'a>(xml: &'a [u8], name: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let rest = xml
        .strip_prefix(b"<")?
        .strip_prefix(name)?
        .strip_prefix(b">")?;
    let end = memchr::memchr(b'<', rest)?;
    let after = rest[end..]
        .strip_prefix(b"</")?
        .strip_prefix(name)?
        .strip_prefix(b">")?;
    Some((&rest[..end], after))
}

impl<'a> Fields<'a> {
    /// `Key`, `LastModified`, `ETag`, then (past any checksum elements) `Size`, each right
    /// after the one before: S3's order. False when the page is laid out otherwise.
    fn in_s3_order(&mut self, xml: &'a [u8]) -> bool {
        let Some((key, rest)) = element(xml, b"Key") else {
            return false;
        };
        let Some((modified, rest)) = element(rest, b"LastModified") else {
            return false;
        };
        let Some((etag, mut rest)) = element(rest, b"ETag") else {
            return false;
        };
        for skippable in [&b"ChecksumAlgorithm"[..], b"ChecksumType"] {
            if let Some((_, after)) = element(rest, skippable) {
                rest = after;
            }
        }
        let Some((size, mut rest)) = element(rest, b"Size") else {
            return false;
        };
        if let Some((_, after)) = element(rest, b"StorageClass") {
            rest = after;
        }
        // Anything more (Owner, RestoreStatus) is for the general scan, which also checks it.
        if !rest.is_empty() {
            return false;
        }
        *self = Fields {
            key: Some(key),
            modified: Some(modified),
            etag: Some(etag),
            size: Some(size),
        };
        true
    }

    /// Every child, wherever it stands; the first of each name counts.
    fn scan(&mut self, xml: &'a [u8]) -> Result<(), String> {
        let mut at = 0;
        while let Some(lt) = memchr::memchr(b'<', &xml[at..]) {
            let name_at = at + lt + 1;
            let gt = memchr::memchr(b'>', &xml[name_at..])
                .map(|i| name_at + i)
                .ok_or("a tag in a <Contents> is not closed")?;
            let name = &xml[name_at..gt];
            at = gt + 1;
            let field = match name {
                b"Key" => &mut self.key,
                b"LastModified" => &mut self.modified,
                b"ETag" => &mut self.etag,
                b"Size" => &mut self.size,
                _ => continue,
            };
            // Text runs to the next tag (a `<` in text is always escaped), which must close it.
            let end = memchr::memchr(b'<', &xml[at..]).map_or(xml.len(), |i| at + i);
            let after = &xml[end..];
            let closes = after.len() > name.len() + 2
                && after.starts_with(b"</")
                && &after[2..2 + name.len()] == name
                && after[2 + name.len()] == b'>';
            if !closes {
                return Err(format!(
                    "<{}> in a <Contents> holds more than text",
                    String::from_utf8_lossy(name)
                ));
            }
            if field.is_none() {
                *field = Some(&xml[at..end]);
            }
            at = end + name.len() + 3;
        }
        Ok(())
    }
}

/// ASCII digits as a `u64`, without going through `str`.
fn whole_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// XML text to a string: the five named entities and character references (`&#13;`,
/// `&#x1F600;`), as XML 1.0 spells them, to characters XML allows.
fn unescape(raw: &[u8]) -> Result<Cow<'_, str>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a key or ETag is not UTF-8".to_string())?;
    if !text.contains('&') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    decode(text, &mut out)?;
    Ok(Cow::Owned(out))
}

/// Decodes `text`'s entities into `out`.
fn decode(text: &str, out: &mut String) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let semi = rest[i..]
            .find(';')
            .ok_or_else(|| "an unterminated entity in a key or ETag".to_string())?;
        let name = &rest[i + 1..i + semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n => {
                let digits = |d: &str, radix: u32| {
                    let ok = !d.is_empty() && d.chars().all(|c| c.is_digit(radix));
                    ok.then(|| u32::from_str_radix(d, radix).ok()).flatten()
                };
                let code = match n.strip_prefix("#x") {
                    Some(hex) => digits(hex, 16),
                    None => n.strip_prefix('#').and_then(|d| digits(d, 10)),
                };
                code.and_then(char::from_u32)
                    .filter(|c| crate::keyspace::xml_legal(*c))
                    .ok_or_else(|| format!("an unknown entity &{n}; in a key or ETag"))?
            }
        };
        out.push(c);
        rest = &rest[i + semi + 1..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODIFIED: &str = "<LastModified>2026-11-24T00:00:07.000Z</LastModified>";

    fn keys_of(objects: &[Listed]) -> Vec<&str> {
        objects.iter().map(|o| o.key.as_str()).collect()
    }

    #[test]
    fn objects_are_taken_out_and_unescaped() {
        let xml = format!(
            r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><Contents><Key>a/&amp;x&lt;&#13;&#x1F600;</Key>{MODIFIED}<ETag>&quot;9b2c&quot;</ETag><Size>1</Size><Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents><Contents>
  <Key>데이터/ü +%</Key>
  <Size> 12345678901 </Size><LastModified>1970-01-01T00:00:00Z</LastModified>
</Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"#
        );
        let (rest, objects) = split_contents(xml.as_bytes());
        let objects = objects.unwrap();
        assert_eq!(keys_of(&objects), vec!["a/&x<\r\u{1F600}", "데이터/ü +%"]);
        assert_eq!(
            objects[0],
            Listed {
                key: "a/&x<\r\u{1F600}".into(),
                size: 1,
                modified: 1_795_478_407,
                etag: "\"9b2c\"".into(),
            }
        );
        assert_eq!((objects[1].size, objects[1].modified), (12_345_678_901, 0));
        assert_eq!(objects[1].etag, "", "no ETag listed");
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"#
        );
    }

    #[test]
    fn a_page_fed_in_pieces_of_any_size_splits_the_same() {
        let xml = format!(
            r#"<?xml version="1.0"?><R><IsTruncated>false</IsTruncated><Contents><Key>a</Key>{MODIFIED}<ETag>&quot;x&quot;</ETag><Size>3</Size></Contents><Contents><Key>데이터/&lt;b</Key><Size>0</Size>{MODIFIED}</Contents><Contents><Key>c/</Key>{MODIFIED}<Size>0</Size></Contents></R>"#
        );
        let xml = xml.as_bytes();
        let whole = split_contents(xml);
        for size in 1..xml.len() {
            let mut s = Splitter::new(Vec::<Listed>::new());
            xml.chunks(size).for_each(|c| s.feed(c));
            let (rest, objects) = s.finish();
            assert_eq!(rest, whole.0, "pieces of {size}");
            let objects = objects.unwrap();
            assert_eq!(
                keys_of(&objects),
                vec!["a", "데이터/<b", "c/"],
                "pieces of {size}"
            );
            assert_eq!(&objects, whole.1.as_ref().unwrap(), "pieces of {size}");
        }
    }

    #[test]
    fn s3s_order_and_any_other_read_the_same() {
        let want = Listed {
            key: "a/b".into(),
            size: 42,
            modified: 1_795_478_407,
            etag: "\"e1\"".into(),
        };
        for contents in [
            // S3's order, with and without checksum elements.
            format!(
                "<Key>a/b</Key>{MODIFIED}<ETag>&quot;e1&quot;</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass>"
            ),
            format!(
                "<Key>a/b</Key>{MODIFIED}<ETag>&quot;e1&quot;</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType><Size>42</Size><StorageClass>STANDARD</StorageClass>"
            ),
            // Owner (fetch-owner), another order, spaces between: the general scan.
            format!(
                "<Key>a/b</Key>{MODIFIED}<ETag>&quot;e1&quot;</ETag><Size>42</Size><Owner><ID>o</ID><DisplayName>d</DisplayName></Owner><StorageClass>STANDARD</StorageClass>"
            ),
            format!("<Size>42</Size><ETag>&quot;e1&quot;</ETag>{MODIFIED}<Key>a/b</Key>"),
            format!(
                "\n  <Key>a/b</Key>\n  {MODIFIED}\n  <ETag>&quot;e1&quot;</ETag>\n  <Size>42</Size>\n"
            ),
        ] {
            let page = format!("<R><Contents>{contents}</Contents></R>");
            let objects = split_contents(page.as_bytes()).1.unwrap();
            assert_eq!(objects, vec![want.clone()], "{page}");
        }
    }

    #[test]
    fn seek_keeps_keys_sizes_newness_and_terms() {
        let xml = format!(
            "<R><Contents><Key>old</Key><LastModified>2026-11-24T00:00:06.999Z</LastModified><ETag>&quot;e&quot;</ETag><Size>10</Size></Contents>\
             <Contents><Key>same-second</Key>{MODIFIED}<ETag>&quot;e&quot;</ETag><Size>20</Size></Contents>\
             <Contents><Key>later</Key><LastModified>2026-11-25T00:00:00.000Z</LastModified><ETag>&quot;f&quot;</ETag><Size>40</Size></Contents></R>"
        );
        let since = crate::time::epoch_secs("2026-11-24T00:00:07Z");
        let mut s = Splitter::new(PageKeys::new(since));
        s.feed(xml.as_bytes());
        let keys = s.finish().1.unwrap().keys;
        let got: Vec<(String, u64, bool)> = keys
            .entries()
            .into_iter()
            .map(|(k, m)| (k, m.size, m.new))
            .collect();
        assert_eq!(
            got,
            vec![
                ("old".into(), 10, false),
                ("same-second".into(), 20, true),
                ("later".into(), 40, true)
            ]
        );
        let sums = keys.sums();
        assert_eq!((sums.objects, sums.bytes), (3, 70));
        assert_eq!((sums.new_objects, sums.new_bytes), (2, 60));
        let term = crate::fingerprint::term("later", b"&quot;f&quot;", 40);
        assert_eq!(keys.entries()[2].1.term, term);
        // Without a baseline, everything is new.
        let mut s = Splitter::new(PageKeys::default());
        s.feed(xml.as_bytes());
        assert_eq!(s.finish().1.unwrap().keys.sums().new_objects, 3);
    }

    #[test]
    fn broken_pages_are_errors_that_say_what_is_wrong() {
        for (page, says) in [
            (format!("<Contents><Key>a</Key>{MODIFIED}<Size>1</Size>"), "not closed"),
            (format!("<Contents>{MODIFIED}<Size>1</Size></Contents>"), "no <Key>"),
            (format!("<Contents><Key>&bogus;</Key>{MODIFIED}<Size>1</Size></Contents>"), "&bogus;"),
            ("<Contents><Key>a</Key><Size>1</Size></Contents>".into(), "no <LastModified>"),
            (format!("<Contents><Key>a</Key>{MODIFIED}</Contents>"), "no <Size>"),
            (format!("<Contents><Key>a</Key>{MODIFIED}<Size>-1</Size></Contents>"), "Size \"-1\""),
            ("<Contents><Key>a</Key><LastModified>Tuesday</LastModified><Size>1</Size></Contents>".into(), "Tuesday"),
            (format!("<Contents><Key>a<b/></Key>{MODIFIED}<Size>1</Size></Contents>"), "more than text"),
            (format!("<Contents><Key>a</Key>{MODIFIED}<ETag>&quote;x</ETag><Size>1</Size></Contents>"), "&quote;"),
            (format!("<Contents><Key>&#X41;</Key>{MODIFIED}<Size>1</Size></Contents>"), "&#X41;"),
            (format!("<Contents><Key>&#+65;</Key>{MODIFIED}<Size>1</Size></Contents>"), "&#+65;"),
            (format!("<Contents><Key>&#0;</Key>{MODIFIED}<Size>1</Size></Contents>"), "&#0;"),
        ] {
            let err = split_contents(page.as_bytes()).1.unwrap_err();
            assert!(err.contains(says), "{page}: {err}");
        }
    }
}
