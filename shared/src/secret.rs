//! A value that must never reach a log line, an error message or `Debug` output.

use std::fmt;

/// A secret string: the Slack webhook URL, the signing secret or the send token.
///
/// It has no `Display`, and its `Debug` prints a fixed placeholder, so it cannot leak through
/// `{:?}`, `tracing` fields or error chains by accident. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for the one call that needs it (an HTTP request, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("https://hooks.slack.com/services/T000/B000/XXXX");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("hooks.slack.com"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(
            s.expose(),
            "https://hooks.slack.com/services/T000/B000/XXXX"
        );
    }
}
