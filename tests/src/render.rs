//! Shows a Slack message in a terminal the way Slack lays it out, near enough.

use serde_json::Value;

fn text_of(v: &Value) -> String {
    v.get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Slack's escapes and date tokens, made readable.
fn readable(mrkdwn: &str) -> String {
    let mut out = String::new();
    let mut rest = mrkdwn;
    while let Some(start) = rest.find("<!date^") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match (tail.find('|'), tail.find('>')) {
            (Some(bar), Some(end)) if bar < end => {
                out.push_str(&tail[bar + 1..end]);
                rest = &tail[end + 1..];
            }
            _ => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A boxed, plain-text picture of one message.
pub fn message(m: &Value) -> String {
    let mut lines = Vec::new();
    match m.get("blocks").and_then(Value::as_array) {
        Some(blocks) => {
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("section") => {
                        lines.extend(readable(&text_of(&b["text"])).lines().map(str::to_owned))
                    }
                    Some("context") => {
                        for e in b["elements"].as_array().into_iter().flatten() {
                            lines.extend(readable(&text_of(e)).lines().map(|l| format!("  {l}")));
                        }
                    }
                    Some("actions") => {
                        let mut row = String::new();
                        for e in b["elements"].as_array().into_iter().flatten() {
                            row.push_str(&format!("[ {} ]  ", text_of(&e["text"])));
                            if let Some(c) = e.get("confirm") {
                                row.push_str(&format!(
                                    "(asks \"{}\" / \"{}\": {} / {})  ",
                                    text_of(&c["title"]),
                                    text_of(&c["text"]),
                                    text_of(&c["confirm"]),
                                    text_of(&c["deny"])
                                ));
                            }
                        }
                        lines.push(row.trim_end().to_owned());
                    }
                    _ => {}
                }
            }
        }
        None => lines.push(readable(&text_of(m))),
    }
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = format!("┌{}┐\n", "─".repeat(width + 2));
    for l in lines {
        out.push_str(&format!(
            "│ {l}{} │\n",
            " ".repeat(width - l.chars().count())
        ));
    }
    out.push_str(&format!("└{}┘", "─".repeat(width + 2)));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn shows_buttons_dates_and_unescaped_text() {
        let m = ct_shared::slack::messages::ask(
            "r1",
            &[ct_shared::domain::Count {
                name: "a&b".into(),
                prefix: "p/".into(),
                seeked: 5,
                trained: 0,
                threshold: ct_shared::domain::Threshold::Objects(1),
                ..Default::default()
            }],
        );
        let shown = super::message(&m);
        assert!(
            shown.contains("5 new objects in a&b. Would you like to train models?"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "[ Train! ]  (asks \"Are you sure?\" / \"Do Train?\": Yes / No)  [ Nope! ]"
            ),
            "{shown}"
        );
        assert_eq!(
            super::readable("at <!date^1^{time}|2026-01-01T00:00:00Z>."),
            "at 2026-01-01T00:00:00Z."
        );
    }
}
