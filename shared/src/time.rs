//! Wall-clock time as whole seconds since the Unix epoch, formatted as RFC 3339 (UTC).
//!
//! Handlers never read the clock themselves: `main` passes `Timestamp::now()` in, and tests pin it.

use aws_smithy_types::date_time::{DateTime, Format};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self(secs)
    }

    pub const fn secs(self) -> i64 {
        self.0
    }

    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0 + secs)
    }

    /// Parses an RFC 3339 date-time such as EventBridge's `time` (`2026-11-24T00:00:00Z`).
    /// Fractions of a second are dropped, so two spellings of one instant give one value.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::from_str(text.trim(), Format::DateTime)
            .ok()
            .map(|d| Self(d.secs()))
    }

    pub fn rfc3339(self) -> String {
        DateTime::from_secs(self.0)
            .fmt(Format::DateTime)
            .unwrap_or_else(|_| self.0.to_string())
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of an RFC 3339 date-time, fractions dropped: S3's `LastModified`
/// (`2026-11-24T00:00:00.000Z`) is read by position, in a few nanoseconds; any other spelling
/// (an offset, lower-case letters) goes through the full parser.
pub fn epoch_secs(text: &str) -> Option<i64> {
    epoch_secs_of(text.as_bytes())
}

/// [`epoch_secs`] of bytes as a page holds them (only the slow path needs them to be text).
pub fn epoch_secs_of(b: &[u8]) -> Option<i64> {
    let digits = |from: usize, to: usize| -> Option<i64> {
        let mut n = 0i64;
        for &c in b.get(from..to)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    };
    let shaped = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b.last() == Some(&b'Z')
        && (b.len() == 20 || (b[19] == b'.' && b.len() > 21));
    if shaped {
        let fraction_ok = b.len() == 20 || b[20..b.len() - 1].iter().all(u8::is_ascii_digit);
        if let (true, Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
            fraction_ok,
            digits(0, 4),
            digits(5, 7),
            digits(8, 10),
            digits(11, 13),
            digits(14, 16),
            digits(17, 19),
        ) {
            let days_in_month = match mo {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                _ => 0,
            };
            if (1..=days_in_month).contains(&d) && h < 24 && mi < 60 && s < 60 {
                return Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s);
            }
            return None;
        }
    }
    std::str::from_utf8(b)
        .ok()
        .and_then(Timestamp::parse_rfc3339)
        .map(Timestamp::secs)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-24T00:00:00Z").unwrap();
        assert_eq!(t.secs(), 1_795_478_400);
        assert_eq!(t.rfc3339(), "2026-11-24T00:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-24T00:00:00.250Z"),
            Some(t),
            "fractions of a second name the same window"
        );
    }

    #[test]
    fn s3_dates_read_by_position_agree_with_the_full_parser() {
        for text in [
            "2026-11-24T00:00:00.000Z",
            "2026-11-24T00:00:07Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.999999Z",
            "2100-03-01T12:34:56.1Z",
            "1969-12-31T23:59:59.000Z",
            "2026-11-24T01:00:00+01:00",
        ] {
            assert_eq!(
                epoch_secs(text),
                Timestamp::parse_rfc3339(text).map(Timestamp::secs),
                "{text}"
            );
        }
        assert_eq!(epoch_secs("2026-11-24T00:00:07.000Z"), Some(1_795_478_407));
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T00:00:00.Z",
            "2026-11-24T00:00:00.0x0Z",
            "2026-11-24",
            "",
        ] {
            assert_eq!(epoch_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Timestamp::parse_rfc3339("tuesday"), None);
        assert_eq!(Timestamp::parse_rfc3339(""), None);
    }
}
