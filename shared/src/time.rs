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
    fn rejects_garbage() {
        assert_eq!(Timestamp::parse_rfc3339("tuesday"), None);
        assert_eq!(Timestamp::parse_rfc3339(""), None);
    }
}
