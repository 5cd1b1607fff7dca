//! A request body, form or JSON, read the same way for `/send` and `/ask`: size first, then
//! the content type, then fields by name. Parsing is pure, and a refusal names the field and
//! never quotes the body.

use serde_json::Value;
use std::borrow::Cow;

/// The largest body accepted, after the Function URL's base64 is undone.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a body was refused.
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
    /// `required`: the field the endpoint cannot do without, to say what the object needs.
    #[error("the JSON body must be an object with a \"{required}\" field")]
    NotAnObject { required: &'static str },
    #[error("\"{field}\" is required and must not be empty")]
    Missing { field: &'static str },
    #[error("\"{field}\" must be a string")]
    NotAString { field: &'static str },
    #[error("\"{field}\" must be a string of at most {max} characters")]
    BadText { field: &'static str, max: usize },
    #[error("\"{field}\" is {chars} characters, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        chars: usize,
        max: usize,
    },
    #[error("\"{field}\" must be a finite number")]
    NotANumber { field: &'static str },
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

/// A body's fields: a form's (the first of a repeated name wins, as Flask's `request.form`
/// did for the original `/send`), or a JSON object's.
#[derive(Debug)]
pub enum Fields<'a> {
    Form(Vec<(Cow<'a, str>, Cow<'a, str>)>),
    Json(serde_json::Map<String, Value>),
}

impl<'a> Fields<'a> {
    /// Reads a body. `required` names the field the endpoint needs, for the error when the
    /// JSON is not an object.
    pub fn parse(
        content_type: Option<&[u8]>,
        body: &'a [u8],
        required: &'static str,
    ) -> Result<Self, Invalid> {
        if body.len() > MAX_BODY {
            return Err(Invalid::TooLarge { size: body.len() });
        }
        if is_form(content_type)? {
            // Every pair, in order: `text` finds a name's first.
            return Ok(Fields::Form(form_urlencoded::parse(body).collect()));
        }
        match serde_json::from_slice(body).map_err(|_| Invalid::BadJson)? {
            Value::Object(map) => Ok(Fields::Json(map)),
            _ => Err(Invalid::NotAnObject { required }),
        }
    }

    /// A text field exactly as sent (a form's first of that name). `None`: absent (or JSON
    /// `null`).
    pub fn text(&self, field: &'static str) -> Result<Option<&str>, Invalid> {
        match self {
            Fields::Form(fields) => Ok(fields
                .iter()
                .find(|(k, _)| k == field)
                .map(|(_, v)| v.as_ref())),
            Fields::Json(map) => match map.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(Invalid::NotAString { field }),
            },
        }
    }

    /// A finite number: a JSON number, or text that reads as one. `None`: absent, JSON `null`,
    /// or a blank form field (a form cannot send a null).
    pub fn number(&self, field: &'static str) -> Result<Option<f64>, Invalid> {
        let read = |text: &str| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or(Invalid::NotANumber { field })
        };
        match self {
            Fields::Form(_) => match self.text(field)? {
                Some(t) if !t.trim().is_empty() => read(t).map(Some),
                _ => Ok(None),
            },
            Fields::Json(map) => match map.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or(Invalid::NotANumber { field }),
                Some(Value::String(s)) => read(s).map(Some),
                Some(_) => Err(Invalid::NotANumber { field }),
            },
        }
    }
}

/// Form (`true`) or JSON (`false`), from the `Content-Type`; a charset other than UTF-8 (or
/// its ASCII subset) is refused.
fn is_form(content_type: Option<&[u8]>) -> Result<bool, Invalid> {
    let value = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or(Invalid::UnsupportedType)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let form = if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        true
    } else if essence.eq_ignore_ascii_case("application/json") {
        false
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
    Ok(form)
}
