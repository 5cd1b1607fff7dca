//! send's body reader, as /send and /ask use it: any content type (form, JSON, with parameters,
//! in any case, or none) and any bytes are typed fields or a typed 4xx error; never a panic,
//! and what is accepted keeps to the limits: a body within 64 KiB, an ask's reason within one
//! Slack section, its names within 200 characters, its numbers finite.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use send::ask::{MAX_NAME, MAX_REASON};
use send::body::MAX_BODY;

#[derive(Debug, Arbitrary)]
struct Input {
    content_type: u8,
    custom_type: Vec<u8>,
    body: Vec<u8>,
    pad: u16,
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(i) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let types: [&[u8]; 6] = [
        b"application/x-www-form-urlencoded",
        b"application/json",
        b"Application/JSON; charset=utf-8",
        b"text/plain",
        b"multipart/form-data; boundary=x",
        &i.custom_type,
    ];
    let content_type =
        (i.content_type % 7 != 6).then(|| types[usize::from(i.content_type % 7).min(5)]);
    let mut body = i.body.clone();
    if i.pad % 97 == 0 {
        body.resize(MAX_BODY + usize::from(i.pad % 3), b'a');
    }
    match send::notice::parse(content_type, &body) {
        Ok(_) => assert!(body.len() <= MAX_BODY),
        Err(e) => assert!((400..500).contains(&e.status()), "{e:?}"),
    }
    match send::ask::parse(content_type, &body) {
        Ok(s) => {
            assert!(body.len() <= MAX_BODY);
            let n = s.reason.chars().count();
            assert!(n > 0 && n <= MAX_REASON, "{n}");
            assert!(s.reason.trim() == s.reason);
            for name in [&s.metric, &s.source].into_iter().flatten() {
                assert!(!name.is_empty() && name.chars().count() <= MAX_NAME);
            }
            for v in [s.value, s.threshold].into_iter().flatten() {
                assert!(v.is_finite());
            }
        }
        Err(e) => assert!((400..500).contains(&e.status()), "{e:?}"),
    }
});
