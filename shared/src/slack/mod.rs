//! Slack's wire format: request signatures, interaction payloads, Block Kit messages, and the
//! HTTP client that posts them (incoming webhook and `response_url`).

pub mod blocks;
pub mod channel;
pub mod client;
pub mod interaction;
pub mod launch;
pub mod messages;
pub mod signature;

pub use channel::{Channel, Posted, Route};
pub use client::{RetryPolicy, SlackClient, SlackError, SlackPoster, WebApi};

/// Escapes the three characters Slack's mrkdwn gives meaning to, so text from outside
/// (a prefix, a pipeline's output) cannot ping `@channel`, link, or break formatting.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_mrkdwn_control_characters() {
        assert_eq!(
            super::escape("<!channel> & <@U1|x> a>b"),
            "&lt;!channel&gt; &amp; &lt;@U1|x&gt; a&gt;b"
        );
    }
}
