//! A pipeline step's notice: `text` and an optional `text2`, posted as a form (the original
//! `/send` contract) or as JSON. Parsing is pure: bytes and a content type in, a [`Notice`] or
//! a reason to refuse out.

use serde_json::Value;

/// The largest body accepted, after the Function URL's base64 is undone.
pub const MAX_BODY: usize = 64 * 1024;

/// What to post: `text` first, then `text2` if any. Both exactly as sent (never trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub text2: Option<String>,
}

/// Why a body was refused. Never quotes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the body is {size} bytes, more than the {MAX_BODY} allowed")]
    TooLarge { size: usize },
    #[error("Content-Type must be application/x-www-form-urlencoded or application/json")]
    UnsupportedType,
    #[error("only UTF-8 bodies are accepted")]
    UnsupportedCharset,
    #[error("the body is not valid JSON")]
    BadJson,
    #[error("the JSON body must be an object with a \"text\" field")]
    NotAnObject,
    #[error("\"{field}\" must be a string")]
    NotAString { field: &'static str },
    #[error("\"text\" is required and must not be empty")]
    MissingText,
}

impl Invalid {
    /// The HTTP status that says so.
    pub fn status(&self) -> u16 {
        match self {
            Invalid::TooLarge { .. } => 413,
            Invalid::UnsupportedType | Invalid::UnsupportedCharset => 415,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Form,
    Json,
}

pub(crate) fn kind(content_type: Option<&[u8]>) -> Result<Kind, Invalid> {
    let value = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or(Invalid::UnsupportedType)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let kind = if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Kind::Form
    } else if essence.eq_ignore_ascii_case("application/json") {
        Kind::Json
    } else {
        return Err(Invalid::UnsupportedType);
    };
    for param in parts {
        if let Some((name, charset)) = param.split_once('=') {
            let charset = charset.trim().trim_matches('"');
            if name.trim().eq_ignore_ascii_case("charset")
                && !["utf-8", "utf8", "us-ascii"]
                    .iter()
                    .any(|ok| charset.eq_ignore_ascii_case(ok))
            {
                return Err(Invalid::UnsupportedCharset);
            }
        }
    }
    Ok(kind)
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn finish(text: Option<String>, text2: Option<String>) -> Result<Notice, Invalid> {
    let text = text.filter(|t| !blank(t)).ok_or(Invalid::MissingText)?;
    Ok(Notice {
        text,
        text2: text2.filter(|t| !blank(t)),
    })
}

fn from_form(body: &[u8]) -> Result<Notice, Invalid> {
    let (mut text, mut text2) = (None, None);
    for (k, v) in form_urlencoded::parse(body) {
        // The first of a repeated field wins, as Flask's request.form did.
        match k.as_ref() {
            "text" if text.is_none() => text = Some(v.into_owned()),
            "text2" if text2.is_none() => text2 = Some(v.into_owned()),
            _ => {}
        }
    }
    finish(text, text2)
}

fn field(
    obj: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, Invalid> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Invalid::NotAString { field: name }),
    }
}

fn from_json(body: &[u8]) -> Result<Notice, Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Invalid::BadJson)?;
    let obj = value.as_object().ok_or(Invalid::NotAnObject)?;
    finish(field(obj, "text")?, field(obj, "text2")?)
}

/// Reads a send request's body: size first, then content type, then the fields.
pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<Notice, Invalid> {
    if body.len() > MAX_BODY {
        return Err(Invalid::TooLarge { size: body.len() });
    }
    match kind(content_type)? {
        Kind::Form => from_form(body),
        Kind::Json => from_json(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
    const JSON: Option<&[u8]> = Some(b"application/json");

    fn notice(text: &str, text2: Option<&str>) -> Notice {
        Notice {
            text: text.into(),
            text2: text2.map(str::to_owned),
        }
    }

    #[test]
    fn reads_the_original_form_contract() {
        assert_eq!(
            parse(
                FORM,
                b"text=Training+done%3A+%3C%21channel%3E&text2=loss+0.1%0Aacc+0.9"
            ),
            Ok(notice(
                "Training done: <!channel>",
                Some("loss 0.1\nacc 0.9")
            ))
        );
        assert_eq!(parse(FORM, b"text=a&text=b&other=1"), Ok(notice("a", None)));
        assert_eq!(
            parse(
                Some(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
                b"text=x"
            ),
            Ok(notice("x", None))
        );
    }

    #[test]
    fn reads_json() {
        assert_eq!(
            parse(
                JSON,
                br#"{"text":"  keep spaces  ","text2":"two","extra":5}"#
            ),
            Ok(notice("  keep spaces  ", Some("two")))
        );
        assert_eq!(
            parse(
                Some(b"application/json; charset=utf-8"),
                br#"{"text":"a","text2":null}"#
            ),
            Ok(notice("a", None))
        );
        assert_eq!(
            parse(JSON, br#"{"text":"a","text2":"  "}"#),
            Ok(notice("a", None))
        );
    }

    #[test]
    fn refuses_with_the_right_status() {
        type Case = (Option<&'static [u8]>, Vec<u8>, Invalid);
        let cases: Vec<Case> = vec![
            (FORM, b"".to_vec(), Invalid::MissingText),
            (FORM, b"text=".to_vec(), Invalid::MissingText),
            (FORM, b"text=+%20%0A".to_vec(), Invalid::MissingText),
            (FORM, b"text2=only".to_vec(), Invalid::MissingText),
            (JSON, b"{}".to_vec(), Invalid::MissingText),
            (JSON, br#"{"text":""}"#.to_vec(), Invalid::MissingText),
            (JSON, br#"{"text":null}"#.to_vec(), Invalid::MissingText),
            (
                JSON,
                br#"{"text":5}"#.to_vec(),
                Invalid::NotAString { field: "text" },
            ),
            (
                JSON,
                br#"{"text":"a","text2":["x"]}"#.to_vec(),
                Invalid::NotAString { field: "text2" },
            ),
            (JSON, b"[\"text\"]".to_vec(), Invalid::NotAnObject),
            (JSON, b"{\"text\":".to_vec(), Invalid::BadJson),
            (JSON, b"".to_vec(), Invalid::BadJson),
            (None, b"text=a".to_vec(), Invalid::UnsupportedType),
            (
                Some(b"text/plain"),
                b"text=a".to_vec(),
                Invalid::UnsupportedType,
            ),
            (
                Some(b"multipart/form-data; boundary=x"),
                b"".to_vec(),
                Invalid::UnsupportedType,
            ),
            (
                Some(b"application/json-seq"),
                b"{}".to_vec(),
                Invalid::UnsupportedType,
            ),
            (Some(b"\xff\xfe"), b"{}".to_vec(), Invalid::UnsupportedType),
            (
                Some(b"application/json; charset=latin1"),
                b"{}".to_vec(),
                Invalid::UnsupportedCharset,
            ),
            (
                FORM,
                vec![b'a'; MAX_BODY + 1],
                Invalid::TooLarge { size: MAX_BODY + 1 },
            ),
        ];
        for (ct, body, want) in cases {
            let got = parse(ct, &body);
            assert_eq!(got.as_ref().err(), Some(&want), "{ct:?}");
        }
        assert_eq!(Invalid::TooLarge { size: 1 }.status(), 413);
        assert_eq!(Invalid::UnsupportedType.status(), 415);
        assert_eq!(Invalid::UnsupportedCharset.status(), 415);
        assert_eq!(Invalid::MissingText.status(), 400);
        assert_eq!(Invalid::BadJson.status(), 400);
    }

    #[test]
    fn the_limit_is_on_the_body_as_received_and_inclusive() {
        let mut body = b"text=".to_vec();
        body.resize(MAX_BODY, b'x');
        assert!(parse(FORM, &body).is_ok());
        body.push(b'x');
        assert_eq!(
            parse(FORM, &body),
            Err(Invalid::TooLarge { size: MAX_BODY + 1 })
        );
    }

    #[test]
    fn errors_never_quote_the_body() {
        let secret = "hunter2-in-the-body";
        for (ct, body) in [
            (JSON, format!("{{\"text\": 5, \"x\": \"{secret}\"")),
            (JSON, format!("{{\"text\": [\"{secret}\"]}}")),
            (FORM, format!("text2={secret}")),
        ] {
            let err = parse(ct, body.as_bytes()).unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
        }
    }
}
