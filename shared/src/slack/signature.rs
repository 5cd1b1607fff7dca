//! Slack's request signing (v0): `v0=` + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)).

use crate::{Secret, Timestamp};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now, either way (Slack's documented five minutes).
pub const MAX_SKEW_SECS: i64 = 5 * 60;

/// Why a request was refused. Never carries the signature, the secret or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    #[error("X-Slack-Request-Timestamp is not a number of seconds")]
    BadTimestamp,
    /// `skew_secs` is now minus the request's timestamp: positive for a timestamp in the past.
    #[error("request timestamp is {}, more than {MAX_SKEW_SECS} s away", when(*skew_secs))]
    OutsideWindow { skew_secs: i64 },
    #[error("signature does not match")]
    Mismatch,
}

/// "301 s in the past" or "301 s in the future", for a skew of now minus the timestamp.
fn when(skew_secs: i64) -> String {
    if skew_secs >= 0 {
        format!("{skew_secs} s in the past")
    } else {
        format!("{} s in the future", skew_secs.unsigned_abs())
    }
}

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail; an empty key is still a key.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value for a body: what Slack sends, and what the local console sends.
pub fn sign(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a request's timestamp window, then its signature in constant time, over the raw body.
pub fn verify(
    secret: &Secret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew_secs = now.secs().saturating_sub(sent);
    if skew_secs.unsigned_abs() > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::OutsideWindow { skew_secs });
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    mac(secret, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn slack_documented_example_known_answer() {
        let secret = Secret::new(SECRET);
        assert_eq!(sign(&secret, TS, BODY.as_bytes()), EXPECTED);
        assert_eq!(
            verify(
                &secret,
                Some(TS),
                Some(EXPECTED),
                BODY.as_bytes(),
                at(1_531_420_618)
            ),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampering_wrong_secret_and_bad_headers() {
        let secret = Secret::new(SECRET);
        let now = at(1_531_420_618);
        let mut body = BODY.as_bytes().to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify(&secret, Some(TS), Some(EXPECTED), &body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &Secret::new("other"),
                Some(TS),
                Some(EXPECTED),
                BODY.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret, None, Some(EXPECTED), BODY.as_bytes(), now),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(&secret, Some(TS), None, BODY.as_bytes(), now),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            verify(&secret, Some("soon"), Some(EXPECTED), BODY.as_bytes(), now),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(
                &secret,
                Some(TS),
                Some(&EXPECTED[3..]),
                BODY.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch),
            "the v0= prefix is required"
        );
        assert_eq!(
            verify(&secret, Some(TS), Some("v0=zz"), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamp_window_is_five_minutes_either_way() {
        let secret = Secret::new(SECRET);
        let ok = |now: i64| verify(&secret, Some(TS), Some(EXPECTED), BODY.as_bytes(), at(now));
        assert_eq!(ok(1_531_420_618 + 300), Ok(()));
        assert_eq!(ok(1_531_420_618 - 300), Ok(()));
        assert_eq!(
            ok(1_531_420_618 + 301),
            Err(SignatureError::OutsideWindow { skew_secs: 301 })
        );
        assert_eq!(
            ok(1_531_420_618 - 301),
            Err(SignatureError::OutsideWindow { skew_secs: -301 })
        );
    }

    #[test]
    fn the_window_error_says_past_or_future_the_right_way_round() {
        let secret = Secret::new(SECRET);
        let at_now = |now: i64| {
            verify(&secret, Some(TS), Some(EXPECTED), BODY.as_bytes(), at(now))
                .unwrap_err()
                .to_string()
        };
        // A 1970 timestamp seen today is long past.
        let old = verify(
            &secret,
            Some("5"),
            Some(EXPECTED),
            BODY.as_bytes(),
            at(1_795_908_650),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            old,
            "request timestamp is 1795908645 s in the past, more than 300 s away"
        );
        assert!(at_now(1_531_420_618 + 301).contains("301 s in the past"));
        assert!(at_now(1_531_420_618 - 301).contains("301 s in the future"));
    }
}
