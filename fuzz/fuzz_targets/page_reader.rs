//! The lean S3 page reader against a full XML parse (quick-xml), differentially: random
//! ListObjectsV2 pages (any Unicode key, every spelling of a character, odd whitespace, folder
//! markers, elements S3 adds in some listings), cut into pieces at random byte offsets, must
//! read as exactly the same keys, sizes, dates, ETags and continuation token. seek's own sink
//! must then sum them exactly: objects (not folder markers), bytes, the new ones and theirs.
//! And any bytes at all are a page or an error, never a panic.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_shared::aws::s3::page::{PageKeys, Splitter};
use fuzzing::{PageSpec, lean, reference};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Raw bytes, cut anywhere: an error or a page.
    let mut raw = Splitter::new(Vec::<ct_shared::aws::s3::page::Listed>::new());
    for piece in data.chunks(97) {
        raw.feed(piece);
    }
    let _ = raw.finish();

    let mut u = Unstructured::new(data);
    let Ok(spec) = PageSpec::arbitrary(&mut u) else {
        return;
    };
    let xml = spec.xml();
    let expected = spec.expected();
    let full =
        reference(&xml).unwrap_or_else(|e| panic!("the reference refused a page: {e}\n{xml}"));
    assert_eq!(
        full, expected,
        "the reference disagrees with the page's own objects\n{xml}"
    );
    let pieces = spec.pieces(xml.as_bytes());
    let read =
        lean(&pieces).unwrap_or_else(|e| panic!("the lean reader refused a page: {e}\n{xml}"));
    assert_eq!(
        read, full,
        "the lean reader disagrees with the full parse\n{xml}"
    );

    // seek's sink: the sums of what was read, newness by date.
    let mut s = Splitter::new(PageKeys::new(Some(i64::from(spec.since))));
    for p in &pieces {
        s.feed(p);
    }
    let keys = s.finish().1.expect("read once, read again").keys;
    let sums = keys.sums();
    let objects: Vec<_> = full
        .objects
        .iter()
        .filter(|o| !o.0.ends_with('/'))
        .collect();
    assert_eq!(sums.objects, objects.len() as u64);
    assert_eq!(
        sums.bytes,
        objects.iter().fold(0u64, |a, o| a.saturating_add(o.1))
    );
    let new: Vec<_> = objects
        .iter()
        .filter(|o| o.2 >= i64::from(spec.since))
        .collect();
    assert_eq!(sums.new_objects, new.len() as u64, "{xml}");
    assert_eq!(
        sums.new_bytes,
        new.iter().fold(0u64, |a, o| a.saturating_add(o.1))
    );
    assert_eq!(
        keys.to_vec(),
        full.objects.iter().map(|o| o.0.clone()).collect::<Vec<_>>()
    );
});
