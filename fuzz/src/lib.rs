//! What the fuzz targets share: ListObjectsV2 pages built from arbitrary objects (any Unicode
//! key, every way XML may spell a character, odd whitespace, folder markers), and the reference
//! reader the lean page reader is compared with: a full XML parse by quick-xml.

use arbitrary::{Arbitrary, Unstructured};
use ct_shared::keyspace::xml_legal;
use quick_xml::events::Event;

/// One object of a page, as the fuzzer makes it.
#[derive(Debug, Clone, Arbitrary)]
pub struct Object {
    pub key: String,
    pub folder: bool,
    pub size: u64,
    /// Seconds since 1970 (up to 2106).
    pub secs: u32,
    /// Milliseconds, listed when present (`.123Z`).
    pub millis: Option<u16>,
    pub etag: [u8; 6],
    /// How each character is spelt: raw, `&#N;`, `&#xH;`, a named entity.
    pub spelling: u64,
    /// Whitespace between this object's elements, and elements S3 adds in some listings.
    pub layout: u8,
}

/// A whole page: its objects, continuation, and where its body is cut into pieces.
#[derive(Debug, Clone, Arbitrary)]
pub struct PageSpec {
    pub objects: Vec<Object>,
    pub token: Option<String>,
    pub cuts: Vec<u16>,
    pub since: u32,
}

/// What a page says, as a reader reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Key, size, LastModified (seconds), ETag (decoded).
    pub objects: Vec<(String, u64, i64, String)>,
    pub token: Option<String>,
}

/// Keys and tokens as S3 can list them in XML 1.0: only characters XML allows.
pub fn listable(text: &str) -> String {
    text.chars().filter(|c| xml_legal(*c)).collect()
}

/// Escapes `text` for XML element content, spelling each character as `spelling`'s next bits
/// choose: raw, `&#N;`, `&#xH;` (either case of hex digit) or a named entity. `&` and `<` are
/// never raw, nor `>` after `]]`, nor `\r` (XML would read it as a line end).
fn escape(text: &str, spelling: &mut u64, out: &mut String) {
    let mut prev: [char; 2] = ['\0', '\0'];
    for c in text.chars() {
        let choice = *spelling & 7;
        *spelling = spelling.rotate_right(3) ^ 0x9E37_79B9_7F4A_7C15;
        match (c, choice) {
            (_, 1) => out.push_str(&format!("&#{};", c as u32)),
            (_, 2) => out.push_str(&format!("&#x{:X};", c as u32)),
            (_, 3) | ('\r', _) => out.push_str(&format!("&#x{:x};", c as u32)),
            ('&', _) => out.push_str("&amp;"),
            ('<', _) => out.push_str("&lt;"),
            ('>', 4) => out.push_str("&gt;"),
            ('>', _) if prev == [']', ']'] => out.push_str("&gt;"),
            ('"', 5) => out.push_str("&quot;"),
            ('\'', 5) => out.push_str("&apos;"),
            (c, _) => out.push(c),
        }
        prev = [prev[1], c];
    }
}

fn rfc3339(secs: u32, millis: Option<u16>) -> String {
    let t = ct_shared::Timestamp::from_secs(i64::from(secs)).rfc3339();
    match millis {
        Some(ms) => format!("{}.{:03}Z", t.trim_end_matches('Z'), ms % 1000),
        None => t,
    }
}

/// Whitespace an S3-compatible server (or a pretty-printer) might put between elements.
fn gap(layout: u8, at: u8) -> &'static str {
    match (layout >> at) & 3 {
        0 | 1 => "",
        2 => "\n  ",
        _ => " \t",
    }
}

impl PageSpec {
    /// The page's objects as a full reader must read them.
    pub fn expected(&self) -> Read {
        Read {
            objects: self
                .objects
                .iter()
                .map(|o| {
                    (
                        o.listed_key(),
                        o.size,
                        i64::from(o.secs),
                        format!("\"{}\"", hex(&o.etag)),
                    )
                })
                .collect(),
            token: self.token.as_deref().map(listable),
        }
    }

    /// The page, as S3 (or something like it) would send it.
    pub fn xml(&self) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bucket</Name><Prefix></Prefix>",
        );
        xml.push_str(&format!(
            "<KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>{}</IsTruncated>",
            self.objects.len(),
            self.token.is_some()
        ));
        for o in &self.objects {
            let mut spelling = o.spelling;
            let l = o.layout;
            xml.push_str("<Contents>");
            xml.push_str(gap(l, 0));
            xml.push_str("<Key>");
            escape(&o.listed_key(), &mut spelling, &mut xml);
            xml.push_str("</Key>");
            xml.push_str(gap(l, 2));
            xml.push_str(&format!(
                "<LastModified>{}</LastModified>",
                rfc3339(o.secs, o.millis)
            ));
            xml.push_str(gap(l, 4));
            let quote = if l & 0x40 == 0 { "&quot;" } else { "\"" };
            xml.push_str(&format!("<ETag>{quote}{}{quote}</ETag>", hex(&o.etag)));
            if l & 0x80 != 0 {
                xml.push_str("<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>");
            }
            xml.push_str(&format!("<Size>{}</Size>", o.size));
            if l & 0x20 != 0 {
                xml.push_str("<Owner><ID>owner</ID><DisplayName>d</DisplayName></Owner>");
            }
            xml.push_str("<StorageClass>STANDARD</StorageClass>");
            xml.push_str(gap(l, 6));
            xml.push_str("</Contents>");
        }
        if let Some(t) = &self.token {
            let mut spelling = 0;
            xml.push_str("<NextContinuationToken>");
            escape(&listable(t), &mut spelling, &mut xml);
            xml.push_str("</NextContinuationToken>");
        }
        xml.push_str("</ListBucketResult>");
        xml
    }

    /// The body cut into pieces at the fuzzer's byte offsets (anywhere, mid-character too).
    pub fn pieces<'a>(&self, body: &'a [u8]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = self
            .cuts
            .iter()
            .map(|c| usize::from(*c) % (body.len() + 1))
            .collect();
        at.sort_unstable();
        at.dedup();
        let mut out = Vec::new();
        let mut from = 0;
        for cut in at {
            out.push(&body[from..cut]);
            from = cut;
        }
        out.push(&body[from..]);
        out
    }
}

impl Object {
    pub fn listed_key(&self) -> String {
        let mut k = listable(&self.key);
        if self.folder {
            k.push('/');
        }
        k
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reference: quick-xml reads the whole page, entities and character references resolved,
/// and collects each `<Contents>`'s Key, Size, LastModified and ETag, and the token.
pub fn reference(xml: &str) -> Result<Read, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut object: [Option<String>; 4] = Default::default();
    let mut read = Read {
        objects: Vec::new(),
        token: None,
    };
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                path.push(e.name().into_inner().to_owned());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| e.to_string())? {
                Some(c) => text.push(c),
                None => text.push_str(
                    quick_xml::escape::resolve_xml_entity(&r)
                        .ok_or_else(|| format!("unknown entity &{};", &*r))?,
                ),
            },
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (Some("Contents"), "Key") => object[0] = Some(text.clone()),
                    (Some("Contents"), "Size") => object[1] = Some(text.clone()),
                    (Some("Contents"), "LastModified") => object[2] = Some(text.clone()),
                    (Some("Contents"), "ETag") => object[3] = Some(text.clone()),
                    (Some("ListBucketResult"), "Contents") => {
                        let [k, s, m, e] = std::mem::take(&mut object);
                        let size = s.and_then(|s| s.parse().ok()).ok_or("no size")?;
                        let modified = m
                            .as_deref()
                            .and_then(ct_shared::time::epoch_secs)
                            .ok_or("no date")?;
                        read.objects.push((
                            k.ok_or("no key")?,
                            size,
                            modified,
                            e.unwrap_or_default(),
                        ));
                    }
                    (Some("ListBucketResult"), "NextContinuationToken") => {
                        read.token = Some(text.clone())
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => return Ok(read),
            _ => {}
        }
    }
}

/// The lean reader's account of the page: each `<Contents>` through the full sink, and the
/// token from what it hands the SDK (the page without its `<Contents>`, read by the reference).
pub fn lean(pieces: &[&[u8]]) -> Result<Read, String> {
    use ct_shared::aws::s3::page::{Listed, Splitter};
    let mut s = Splitter::new(Vec::<Listed>::new());
    for p in pieces {
        s.feed(p);
    }
    let (rest, objects) = s.finish();
    let objects = objects?;
    let rest = String::from_utf8(rest).map_err(|_| "the rest is not UTF-8")?;
    let rest_read = reference(&rest)?;
    if !rest_read.objects.is_empty() {
        return Err("a <Contents> was left in the page handed on".into());
    }
    Ok(Read {
        objects: objects
            .into_iter()
            .map(|o| (o.key, o.size, o.modified, o.etag))
            .collect(),
        token: rest_read.token,
    })
}

/// An arbitrary value, or its default when the input ran out.
pub fn take<'a, T: Arbitrary<'a> + Default>(u: &mut Unstructured<'a>) -> T {
    T::arbitrary(u).unwrap_or_default()
}
