//! Slack's request signature: a body verifies only with the right signature and a timestamp
//! within five minutes; any other headers or bytes are refused, never a panic. Decoding a
//! verified body (a click's payload, a slash command) never panics either.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_shared::slack::signature::{MAX_SKEW_SECS, sign, verify};
use ct_shared::{Secret, Timestamp};

#[derive(Debug, Arbitrary)]
struct Input {
    secret: String,
    timestamp: i32,
    skew: i16,
    body: Vec<u8>,
    flip: (u8, u8),
    header_ts: Option<String>,
    header_sig: Option<String>,
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(i) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let secret = Secret::new(i.secret.clone());
    let ts = i64::from(i.timestamp).abs();
    let ts_text = ts.to_string();
    let now = Timestamp::from_secs(ts + i64::from(i.skew));
    let sig = sign(&secret, &ts_text, &i.body);
    let within = i64::from(i.skew).abs() <= MAX_SKEW_SECS;
    let ok = verify(&secret, Some(&ts_text), Some(&sig), &i.body, now);
    assert_eq!(
        ok.is_ok(),
        within,
        "the right signature at skew {}: {ok:?}",
        i.skew
    );
    // One byte of the signature changed: refused, whatever the time.
    let mut forged = sig.clone().into_bytes();
    let at = usize::from(i.flip.0) % forged.len();
    let by = i.flip.1 | 1;
    forged[at] ^= by;
    if let Ok(forged) = String::from_utf8(forged)
        && forged != sig
    {
        assert!(verify(&secret, Some(&ts_text), Some(&forged), &i.body, now).is_err());
    }
    // Another body, or another secret, with this signature: refused.
    let mut other = i.body.clone();
    other.push(b'x');
    assert!(verify(&secret, Some(&ts_text), Some(&sig), &other, now).is_err());
    assert!(
        verify(
            &Secret::new(format!("{}!", i.secret)),
            Some(&ts_text),
            Some(&sig),
            &i.body,
            now
        )
        .is_err()
    );
    // Arbitrary headers: a refusal or (only with the true signature) a pass; never a panic.
    let r = verify(
        &secret,
        i.header_ts.as_deref(),
        i.header_sig.as_deref(),
        &i.body,
        now,
    );
    if r.is_ok() {
        assert_eq!(i.header_sig.as_deref(), Some(sig.as_str()));
    }
    if ok.is_ok() {
        let _ = ct_shared::slack::interaction::parse_interaction(&i.body);
        let _ = actions::command::parse(&i.body);
    }
});
