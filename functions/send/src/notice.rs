//! A pipeline step's notice: `text` and an optional `text2`, posted as a form (the original
//! `/send` contract) or as JSON. Parsing is pure: bytes and a content type in, a [`Notice`] or
//! a reason to refuse out.

use crate::body::Fields;
pub use crate::body::{Invalid, MAX_BODY};

/// What to post: `text` first, then `text2` if any. Both exactly as sent (never trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub text2: Option<String>,
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Reads a send request's body: size first, then content type, then the fields.
pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<Notice, Invalid> {
    let fields = Fields::parse(content_type, body, "text")?;
    let (text, text2) = (fields.text("text")?, fields.text("text2")?);
    let text = text
        .filter(|t| !blank(t))
        .ok_or(Invalid::Missing { field: "text" })?;
    Ok(Notice {
        text: text.to_owned(),
        text2: text2.filter(|t| !blank(t)).map(str::to_owned),
    })
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
            (FORM, b"".to_vec(), Invalid::Missing { field: "text" }),
            (FORM, b"text=".to_vec(), Invalid::Missing { field: "text" }),
            (
                FORM,
                b"text=+%20%0A".to_vec(),
                Invalid::Missing { field: "text" },
            ),
            (
                FORM,
                b"text2=only".to_vec(),
                Invalid::Missing { field: "text" },
            ),
            (JSON, b"{}".to_vec(), Invalid::Missing { field: "text" }),
            (
                JSON,
                br#"{"text":""}"#.to_vec(),
                Invalid::Missing { field: "text" },
            ),
            (
                JSON,
                br#"{"text":null}"#.to_vec(),
                Invalid::Missing { field: "text" },
            ),
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
            (
                JSON,
                b"[\"text\"]".to_vec(),
                Invalid::NotAnObject { required: "text" },
            ),
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
        assert_eq!(Invalid::Missing { field: "text" }.status(), 400);
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
