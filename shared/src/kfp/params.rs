//! `KFP_PARAMETERS`: a JSON object sent as the run's `runtime_config.parameters`. Its string
//! values may hold placeholders, filled from the approved snapshot when the run is launched:
//!
//! | placeholder              | filled with                                                 |
//! |--------------------------|-------------------------------------------------------------|
//! | `${request_id}`          | the approval request's id                                   |
//! | `${approved_by}`         | the approver's Slack user name                              |
//! | `${snapshot_time}`       | when the approved count began (RFC 3339): objects last modified up to it are what was offered |
//! | `${seeked.<dataset>}`, `${objects.<dataset>}` | the objects seek saw in that dataset   |
//! | `${bytes.<dataset>}`     | their bytes                                                 |
//! | `${new.<dataset>}`       | the dataset's new or rewritten objects since its last training |
//! | `${new_bytes.<dataset>}` | their bytes                                                 |
//! | `${removed.<dataset>}`   | the objects removed since                                   |
//!
//! A value that is exactly one numeric placeholder (`"${seeked.embedding}"`) becomes a JSON
//! number, so an integer pipeline parameter gets an integer. Placeholders are checked once, at
//! cold start: an unknown one refuses to start, naming it.

use crate::domain::Count;
use serde_json::{Map, Value};

/// One placeholder, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    RequestId,
    ApprovedBy,
    SnapshotTime,
    Seeked(String),
    Bytes(String),
    New(String),
    NewBytes(String),
    Removed(String),
}

impl Slot {
    fn parse(name: &str, datasets: Option<&[String]>) -> Result<Self, String> {
        let known = |d: &str| {
            let valid = !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            match datasets {
                _ if !valid => Err(format!("${{{name}}} does not name a dataset")),
                Some(list) if !list.iter().any(|x| x == d) => Err(format!(
                    "${{{name}}} names dataset {d:?}, which DATASETS does not list"
                )),
                _ => Ok(d.to_owned()),
            }
        };
        match name {
            "request_id" => Ok(Slot::RequestId),
            "approved_by" => Ok(Slot::ApprovedBy),
            "snapshot_time" => Ok(Slot::SnapshotTime),
            _ => match name.split_once('.') {
                Some(("seeked" | "objects", d)) => known(d).map(Slot::Seeked),
                Some(("bytes", d)) => known(d).map(Slot::Bytes),
                Some(("new", d)) => known(d).map(Slot::New),
                Some(("new_bytes", d)) => known(d).map(Slot::NewBytes),
                Some(("removed", d)) => known(d).map(Slot::Removed),
                _ => Err(format!(
                    "unknown placeholder ${{{name}}} (known: ${{request_id}}, ${{approved_by}}, \
                     ${{snapshot_time}}, and per dataset ${{objects.<dataset>}} (or \
                     ${{seeked.<dataset>}}), ${{bytes.<dataset>}}, ${{new.<dataset>}}, \
                     ${{new_bytes.<dataset>}}, ${{removed.<dataset>}})"
                )),
            },
        }
    }
}

/// A piece of a string value: text, or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Slot),
}

fn parse_string(text: &str, datasets: Option<&[String]>) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{text:?} has a \"${{\" without its closing \"}}\""))?;
        pieces.push(Piece::Slot(Slot::parse(&after[..end], datasets)?));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

/// What the placeholders are filled from.
#[derive(Debug, Clone, Copy)]
pub struct LaunchContext<'a> {
    pub request_id: &'a str,
    pub approved_by: &'a str,
    pub snapshot: &'a [Count],
}

/// The parsed `KFP_PARAMETERS`, ready to fill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamTemplate {
    entries: Vec<(String, Entry)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Fixed(Value),
    Template(Vec<Piece>),
}

impl ParamTemplate {
    /// Parses the JSON object. `datasets`, when known (seek's `DATASETS`), lets a placeholder
    /// naming an unknown dataset be refused at once.
    pub fn parse(text: &str, datasets: Option<&[String]>) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "is not JSON (line {}, column {}): expected an object such as \
                 {{\"epochs\": 10, \"run_name\": \"${{request_id}}\"}}",
                e.line(),
                e.column()
            )
        })?;
        let Value::Object(map) = value else {
            return Err("must be a JSON object of parameter names to values".into());
        };
        let mut entries = Vec::with_capacity(map.len());
        for (name, v) in map {
            let entry = match &v {
                Value::String(s) if s.contains("${") => Entry::Template(
                    parse_string(s, datasets).map_err(|e| format!("parameter {name:?}: {e}"))?,
                ),
                _ => Entry::Fixed(v),
            };
            entries.push((name, entry));
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parameters for one launch. Fails only when a placeholder names a dataset the
    /// snapshot lacks (DATASETS changed since the request was made).
    pub fn fill(&self, ctx: &LaunchContext<'_>) -> Result<Map<String, Value>, String> {
        let count = |d: &str| {
            ctx.snapshot
                .iter()
                .find(|c| c.name == d)
                .ok_or_else(|| format!("dataset {d:?} is not in request {}", ctx.request_id))
        };
        let slot = |s: &Slot| -> Result<Value, String> {
            Ok(match s {
                Slot::RequestId => Value::from(ctx.request_id),
                Slot::ApprovedBy => Value::from(ctx.approved_by),
                Slot::SnapshotTime => match crate::domain::snapshot_time(ctx.snapshot) {
                    Some(t) => Value::from(t.rfc3339()),
                    None => {
                        return Err(format!(
                            "request {} was counted before snapshot times were kept",
                            ctx.request_id
                        ));
                    }
                },
                Slot::Seeked(d) => Value::from(count(d)?.seeked),
                Slot::Bytes(d) => Value::from(count(d)?.bytes),
                Slot::New(d) => Value::from(count(d)?.new_objects()),
                Slot::NewBytes(d) => Value::from(count(d)?.new_bytes),
                Slot::Removed(d) => Value::from(count(d)?.removed()),
            })
        };
        let mut out = Map::new();
        for (name, entry) in &self.entries {
            let value = match entry {
                Entry::Fixed(v) => v.clone(),
                Entry::Template(pieces) => match pieces.as_slice() {
                    [Piece::Slot(s)] => slot(s)?,
                    _ => {
                        let mut text = String::new();
                        for p in pieces {
                            match p {
                                Piece::Text(t) => text.push_str(t),
                                Piece::Slot(s) => match slot(s)? {
                                    Value::String(v) => text.push_str(&v),
                                    other => text.push_str(&other.to_string()),
                                },
                            }
                        }
                        Value::String(text)
                    }
                },
            };
            out.insert(name.clone(), value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn count(name: &str, seeked: u64, trained: u64) -> Count {
        Count {
            name: name.into(),
            prefix: format!("train/{name}/"),
            seeked,
            trained,
            threshold: crate::domain::Threshold::Objects(100),
            ..Count::default()
        }
    }

    #[test]
    fn fills_placeholders_from_the_snapshot() {
        let t = ParamTemplate::parse(
            r#"{"epochs": 10, "tag": "ct-${request_id} by ${approved_by}", "rows": "${seeked.embedding}",
                "fresh": "${new.faiss}", "note": "plain", "flag": true}"#,
            None,
        )
        .unwrap();
        let snapshot = [count("embedding", 190, 0), count("faiss", 610, 500)];
        let got = t
            .fill(&LaunchContext {
                request_id: "r1",
                approved_by: "ann",
                snapshot: &snapshot,
            })
            .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"epochs": 10, "tag": "ct-r1 by ann", "rows": 190, "fresh": 110,
                   "note": "plain", "flag": true})
        );
    }

    #[test]
    fn fills_what_changed_and_the_snapshot_time() {
        let t = ParamTemplate::parse(
            r#"{"until": "${snapshot_time}", "objects": "${objects.embedding}",
                "bytes": "${bytes.embedding}", "new_bytes": "${new_bytes.embedding}",
                "removed": "${removed.embedding}", "new": "${new.embedding}",
                "note": "${new.embedding} new, ${removed.embedding} gone"}"#,
            Some(&["embedding".to_owned()]),
        )
        .unwrap();
        let mut c = count("embedding", 500, 500);
        c.bytes = 2_000_000;
        c.new_objects = Some(300);
        c.new_bytes = 1_200_000;
        c.counted_at = Some(crate::Timestamp::from_secs(1_795_478_407));
        let got = t
            .fill(&LaunchContext {
                request_id: "r1",
                approved_by: "ann",
                snapshot: &[c],
            })
            .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"until": "2026-11-24T00:00:07Z", "objects": 500, "bytes": 2_000_000,
                   "new_bytes": 1_200_000, "removed": 300, "new": 300,
                   "note": "300 new, 300 gone"})
        );
        // A request counted before snapshot times were kept cannot say when its data was.
        let err = t
            .fill(&LaunchContext {
                request_id: "r0",
                approved_by: "ann",
                snapshot: &[count("embedding", 5, 0)],
            })
            .unwrap_err();
        assert!(
            err.contains("r0") && err.contains("snapshot times"),
            "{err}"
        );
    }

    #[test]
    fn refuses_unknown_or_broken_placeholders_naming_them() {
        for (text, needle) in [
            (r#"{"a": "${requestid}"}"#, "${requestid}"),
            (r#"{"a": "${seeked.}"}"#, "${seeked.}"),
            (r#"{"a": "x ${new.emb"}"#, "closing"),
            (r#"{"a": "${other.embedding}"}"#, "${other.embedding}"),
            (r#"[1]"#, "object"),
            (r#"{"a": "#, "not JSON"),
        ] {
            let err = ParamTemplate::parse(text, None).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let known = ["embedding".to_owned()];
        let err = ParamTemplate::parse(r#"{"a": "${seeked.faiss}"}"#, Some(&known)).unwrap_err();
        assert!(err.contains("faiss"), "{err}");
        assert!(ParamTemplate::parse(r#"{"a": "${seeked.embedding}"}"#, Some(&known)).is_ok());
    }

    #[test]
    fn a_dataset_missing_from_the_snapshot_fails_the_fill() {
        let t = ParamTemplate::parse(r#"{"a": "${new.gone}"}"#, None).unwrap();
        let err = t
            .fill(&LaunchContext {
                request_id: "r",
                approved_by: "ann",
                snapshot: &[count("embedding", 1, 0)],
            })
            .unwrap_err();
        assert!(err.contains("gone"), "{err}");
    }
}
