//! Who may call send: the Function URL's SigV4 check (`AuthType: AWS_IAM`) and, whenever one
//! is configured, the send token.
//!
//! A SigV4-signed request already uses `Authorization` for its signature, so such a caller
//! sends the token as `X-Send-Token: <token>`; everyone else sends `Authorization: Bearer
//! <token>`. Tokens are compared as SHA-256 digests in constant time, so neither the content
//! nor the length of the configured token leaks through timing.

use ct_shared::Secret;
use ct_shared::config::UrlAuth;
use lambda_http::http::HeaderMap;
use lambda_http::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The header that carries the token when `Authorization` holds a SigV4 signature.
pub const TOKEN_HEADER: &str = "x-send-token";

/// Why a request was turned away. Never carries the token, given or expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this URL takes SigV4-signed requests only (AuthType AWS_IAM)")]
    NotSigned,
    #[error(
        "missing send token: send \"Authorization: Bearer <token>\" \
         (or \"X-Send-Token: <token>\" on a SigV4-signed request)"
    )]
    MissingToken,
    #[error("wrong send token")]
    WrongToken,
}

/// The check every request passes before anything else, built once from the configuration.
#[derive(Clone)]
pub struct Gate {
    url_auth: UrlAuth,
    token: Option<[u8; 32]>,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("url_auth", &self.url_auth)
            .field("token", &self.token.map(|_| "<redacted>"))
            .finish()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(Sha256::digest(bytes).as_slice());
    out
}

/// The token a request presents: a Bearer credential, else the `X-Send-Token` header.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers.get(AUTHORIZATION).and_then(|v| {
        let v = v.as_bytes();
        let space = v.iter().position(|b| *b == b' ')?;
        let (scheme, rest) = v.split_at(space);
        scheme
            .eq_ignore_ascii_case(b"bearer")
            .then(|| rest.trim_ascii())
    });
    bearer
        .or_else(|| headers.get(TOKEN_HEADER).map(|v| v.as_bytes().trim_ascii()))
        .filter(|t| !t.is_empty())
}

impl Gate {
    pub fn new(url_auth: UrlAuth, token: Option<&Secret>) -> Self {
        Self {
            url_auth,
            token: token.map(|t| digest(t.expose().as_bytes())),
        }
    }

    /// Whether a token must be presented.
    pub fn wants_token(&self) -> bool {
        self.token.is_some() || self.url_auth == UrlAuth::None
    }

    /// `signed`: the request context names an IAM caller, i.e. the URL checked SigV4.
    pub fn check(&self, headers: &HeaderMap, signed: bool) -> Result<(), Denied> {
        if self.url_auth == UrlAuth::AwsIam && !signed {
            // SEND_URL_AUTH says AWS_IAM but the URL did not check a signature: the URL's
            // auth type and the setting disagree, so fail closed.
            return Err(Denied::NotSigned);
        }
        if !self.wants_token() {
            return Ok(());
        }
        let given = presented(headers).ok_or(Denied::MissingToken)?;
        // With NONE and no token configured (SendConfig refuses that) nothing matches.
        let expected = self.token.ok_or(Denied::WrongToken)?;
        if bool::from(digest(given).ct_eq(&expected)) {
            Ok(())
        } else {
            Err(Denied::WrongToken)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    const TOKEN: &str = "s3nd-t0ken-XYZ";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_public_url_needs_the_bearer_token() {
        let gate = Gate::new(UrlAuth::None, Some(&Secret::new(TOKEN)));
        let ok = headers(&[("authorization", "Bearer s3nd-t0ken-XYZ")]);
        assert_eq!(gate.check(&ok, false), Ok(()));
        assert_eq!(
            gate.check(
                &headers(&[("authorization", "bearer  s3nd-t0ken-XYZ ")]),
                false
            ),
            Ok(()),
            "the scheme is case-insensitive"
        );
        for (h, want) in [
            (headers(&[]), Denied::MissingToken),
            (
                headers(&[("authorization", "Bearer ")]),
                Denied::MissingToken,
            ),
            (
                headers(&[("authorization", "Basic czNuZC10MGtlbi1YWVo=")]),
                Denied::MissingToken,
            ),
            (
                headers(&[("authorization", "Bearer s3nd-t0ken-XY")]),
                Denied::WrongToken,
            ),
            (
                headers(&[("authorization", "Bearer s3nd-t0ken-XYZZ")]),
                Denied::WrongToken,
            ),
            (
                headers(&[("authorization", "s3nd-t0ken-XYZ")]),
                Denied::MissingToken,
            ),
        ] {
            assert_eq!(gate.check(&h, false), Err(want), "{h:?}");
        }
    }

    #[test]
    fn iam_without_a_token_needs_only_the_signature() {
        let gate = Gate::new(UrlAuth::AwsIam, None);
        assert!(!gate.wants_token());
        assert_eq!(gate.check(&headers(&[]), true), Ok(()));
        assert_eq!(gate.check(&headers(&[]), false), Err(Denied::NotSigned));
    }

    #[test]
    fn iam_with_a_token_needs_both_and_takes_the_token_beside_the_signature() {
        let gate = Gate::new(UrlAuth::AwsIam, Some(&Secret::new(TOKEN)));
        let sigv4 = "AWS4-HMAC-SHA256 Credential=AKIA/20261128/us-east-1/lambda/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=abc";
        let both = headers(&[("authorization", sigv4), ("x-send-token", TOKEN)]);
        assert_eq!(gate.check(&both, true), Ok(()));
        assert_eq!(gate.check(&both, false), Err(Denied::NotSigned));
        assert_eq!(
            gate.check(&headers(&[("authorization", sigv4)]), true),
            Err(Denied::MissingToken)
        );
        assert_eq!(
            gate.check(
                &headers(&[("authorization", sigv4), ("x-send-token", "nope")]),
                true
            ),
            Err(Denied::WrongToken)
        );
    }

    #[test]
    fn a_public_url_without_a_token_lets_nobody_in() {
        // SendConfig refuses to start like this; the gate fails closed anyway.
        let gate = Gate::new(UrlAuth::None, None);
        assert_eq!(
            gate.check(&headers(&[("authorization", "Bearer x")]), true),
            Err(Denied::WrongToken)
        );
    }

    #[test]
    fn neither_debug_nor_errors_show_the_token() {
        let gate = Gate::new(UrlAuth::None, Some(&Secret::new(TOKEN)));
        let shown = format!("{gate:?} {} {}", Denied::WrongToken, Denied::MissingToken);
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
