//! Shows a Slack message in a terminal the way Slack lays it out, near enough: mrkdwn styles
//! applied (bold, italics, strike-through and code as terminal styles, or just their text
//! without colour), links as `label (url)`, and every time (Slack's `<!date^...>` tokens and
//! ISO 8601 times in the text) in one local format, `2026-11-24 14:03:05`. Also reads the
//! functions' metric (EMF) lines into one short line each.

use serde_json::Value;
use std::sync::OnceLock;

fn text_of(v: &Value) -> String {
    v.get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// This machine's time zone: `TZ` (a zone name, a path, or a POSIX rule), else
/// `/etc/localtime`, else UTC.
fn zone() -> &'static jiff::tz::TimeZone {
    use jiff::tz::TimeZone;
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| {
        let from_file = |path: &str| {
            std::fs::read(path)
                .ok()
                .and_then(|data| TimeZone::tzif("Local", &data).ok())
        };
        match std::env::var("TZ") {
            Ok(tz) => {
                let name = tz.trim().trim_start_matches(':');
                if name.is_empty() {
                    return TimeZone::UTC;
                }
                if name.starts_with('/') {
                    return from_file(name).unwrap_or(TimeZone::UTC);
                }
                TimeZone::get(name)
                    .ok()
                    .or_else(|| from_file(&format!("/usr/share/zoneinfo/{name}")))
                    .or_else(|| TimeZone::posix(name).ok())
                    .unwrap_or(TimeZone::UTC)
            }
            Err(_) => from_file("/etc/localtime").unwrap_or(TimeZone::UTC),
        }
    })
}

fn zoned(secs: i64) -> Option<jiff::civil::DateTime> {
    jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| zone().to_datetime(t))
}

/// A time in this machine's zone, as the console shows it in the browser's: `2026-11-24 14:03:05`.
pub fn local_time(secs: i64) -> String {
    zoned(secs)
        .map(|z| z.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// A date in this machine's zone: `2026-11-24`.
pub fn local_date(secs: i64) -> String {
    zoned(secs)
        .map(|z| z.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// A Slack date token's text after `!date^`: `secs^format[^link]|fallback`. Shown in the local
/// format: the time when the format shows one, else the date.
fn date_token(rest: &str) -> String {
    let (head, fallback) = rest.split_once('|').unwrap_or((rest, ""));
    let mut parts = head.split('^');
    let secs = parts.next().and_then(|s| s.parse::<i64>().ok());
    let format = parts.next().unwrap_or_default();
    match secs {
        Some(secs) if format.contains("{time") => local_time(secs),
        Some(secs) => local_date(secs),
        None => fallback.to_owned(),
    }
}

/// The length of an ISO 8601 date-time with seconds and a zone at the start of `s`
/// (`2026-11-24T00:00:00Z`, `2026-11-24T00:00:00.5+01:00`), if there is one.
fn iso_len(s: &[u8]) -> Option<usize> {
    let digits = |from: usize, n: usize| {
        s.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| s.get(i) == Some(&c);
    let shaped = digits(0, 4)
        && at(4, b'-')
        && digits(5, 2)
        && at(7, b'-')
        && digits(8, 2)
        && (at(10, b'T') || at(10, b't'))
        && digits(11, 2)
        && at(13, b':')
        && digits(14, 2)
        && at(16, b':')
        && digits(17, 2);
    if !shaped {
        return None;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if at(i, b'Z') || at(i, b'z') {
        return Some(i + 1);
    }
    if (at(i, b'+') || at(i, b'-')) && digits(i + 1, 2) && at(i + 3, b':') && digits(i + 4, 2) {
        return Some(i + 6);
    }
    None
}

/// Text with every ISO 8601 date-time in it shown in the local format.
pub fn local_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if let Some(len) = iso_len(&bytes[i..]).filter(|_| starts_word) {
            let iso = &text[i..i + len];
            if let Ok(t) = iso.parse::<jiff::Timestamp>() {
                out.push_str(&text[copied..i]);
                out.push_str(&local_time(t.as_second()));
                copied = i + len;
            }
            i += len;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Terminal styles, or none (output that is not a terminal, or `NO_COLOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colors(pub bool);

impl Colors {
    fn wrap(self, on: &str, off: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{on}m{text}\x1b[{off}m")
        } else {
            text.to_owned()
        }
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Whether a style marker at `i` (of `chars`) may open: at the start, or after a space or
/// punctuation, and before a character that is not a space.
fn may_open(chars: &[char], i: usize) -> bool {
    let before_ok = i == 0 || !chars[i - 1].is_alphanumeric();
    let after_ok = chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
    before_ok && after_ok
}

fn may_close(chars: &[char], i: usize) -> bool {
    let before_ok = i > 0 && !chars[i - 1].is_whitespace();
    let after_ok = chars.get(i + 1).is_none_or(|c| !c.is_alphanumeric());
    before_ok && after_ok
}

/// `*bold*`, `_italics_` and `~strike~` in text outside code, as Slack reads them: a marker
/// pair on one line, opening after a space or punctuation and closing before one.
fn emphasis(text: &str, colors: Colors) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let style = match c {
            '*' => Some(("1", "22")),
            '_' => Some(("3", "23")),
            '~' => Some(("9", "29")),
            _ => None,
        };
        if let Some((on, off)) = style.filter(|_| may_open(&chars, i)) {
            let close = (i + 1..chars.len())
                .take_while(|&j| chars[j] != '\n')
                .find(|&j| chars[j] == c && j > i + 1 && may_close(&chars, j));
            if let Some(j) = close {
                let inner: String = chars[i + 1..j].iter().collect();
                out.push_str(&colors.wrap(on, off, &emphasis(&inner, colors)));
                i = j + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Plain mrkdwn text (no `<...>` in it): code spans as written, the rest styled, entities
/// unescaped, ISO times local.
fn styled(text: &str, colors: Colors) -> String {
    let mut out = String::new();
    for (n, part) in text.split('`').enumerate() {
        // An odd count of backticks leaves the last one unpaired: shown as written.
        let last_unpaired = n == text.matches('`').count() && n % 2 == 1;
        if n % 2 == 1 && !last_unpaired {
            out.push_str(&colors.wrap("31", "39", &unescape(part)));
        } else {
            if last_unpaired {
                out.push('`');
            }
            out.push_str(&emphasis(&local_times(&unescape(part)), colors));
        }
    }
    out
}

/// One `<...>` control sequence: a mention, a special mention, a date, or a link.
fn control(seq: &str, colors: Colors) -> String {
    if let Some(rest) = seq.strip_prefix("!date^") {
        return date_token(rest);
    }
    let (target, label) = match seq.split_once('|') {
        Some((t, l)) => (t, Some(unescape(l))),
        None => (seq, None),
    };
    if let Some(id) = target.strip_prefix('@') {
        return format!("@{}", label.unwrap_or_else(|| id.to_owned()));
    }
    if let Some(id) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or_else(|| id.to_owned()));
    }
    if let Some(special) = target.strip_prefix('!') {
        let name = special.split('^').next().unwrap_or(special);
        return label.unwrap_or_else(|| format!("@{name}"));
    }
    let url = unescape(target);
    match label {
        Some(l) if l != url => format!("{} ({url})", colors.wrap("4", "24", &l)),
        _ => colors.wrap("4", "24", &url),
    }
}

/// Slack mrkdwn as a terminal shows it.
pub fn mrkdwn(text: &str, colors: Colors) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(len) = rest[open..].find('>') else {
            break;
        };
        out.push_str(&styled(&rest[..open], colors));
        out.push_str(&control(&rest[open + 1..open + len], colors));
        rest = &rest[open + len + 1..];
    }
    out.push_str(&styled(rest, colors));
    out
}

/// The columns a terminal gives one character: 0 for combining marks, variation selectors and
/// joiners, 2 for wide (East Asian wide and emoji) characters, else 1.
fn char_width(c: char) -> usize {
    let u = c as u32;
    let zero = matches!(u, 0x0300..=0x036F | 0x200B..=0x200F | 0x20D0..=0x20FF | 0xFE00..=0xFE0F);
    let wide = matches!(u,
        0x1100..=0x115F | 0x231A..=0x231B | 0x23E9..=0x23EC | 0x23F0 | 0x23F3 | 0x25FD..=0x25FE
        | 0x2614..=0x2615 | 0x2648..=0x2653 | 0x267F | 0x2693 | 0x26A1 | 0x26AA..=0x26AB
        | 0x26BD..=0x26BE | 0x26C4..=0x26C5 | 0x26CE | 0x26D4 | 0x26EA | 0x26F2..=0x26F3
        | 0x26F5 | 0x26FA | 0x26FD | 0x2705 | 0x270A..=0x270B | 0x2728 | 0x274C | 0x274E
        | 0x2753..=0x2755 | 0x2757 | 0x2795..=0x2797 | 0x27B0 | 0x27BF | 0x2B1B..=0x2B1C
        | 0x2B50 | 0x2B55 | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F680..=0x1F6FF | 0x1F900..=0x1F9FF | 0x1FA70..=0x1FAFF | 0x20000..=0x3FFFD);
    if zero {
        0
    } else if wide {
        2
    } else {
        1
    }
}

/// The columns a line takes in a terminal, its colour escapes skipped.
pub fn width(line: &str) -> usize {
    let mut cols = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final letter.
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        cols += char_width(c);
    }
    cols
}

/// A line for the box: the emoji variation selector dropped, so that an emoji whose width
/// terminals disagree about (⚠️ is 1 column in some and 2 in others) is shown in its
/// one-column text form (⚠) and the box's right border stays in line.
fn boxable(line: &str) -> String {
    line.replace('\u{fe0f}', "")
}

/// A boxed, plain-text picture of one message.
pub fn message(m: &Value) -> String {
    message_in(m, Colors(false))
}

/// A boxed picture of one message, with terminal styles when `colors` says so.
pub fn message_in(m: &Value, colors: Colors) -> String {
    let mut lines = Vec::new();
    let shown = |text: &str| mrkdwn(text, colors);
    match m.get("blocks").and_then(Value::as_array) {
        Some(blocks) => {
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("section") => {
                        lines.extend(shown(&text_of(&b["text"])).lines().map(str::to_owned))
                    }
                    Some("context") => {
                        for e in b["elements"].as_array().into_iter().flatten() {
                            lines.extend(shown(&text_of(e)).lines().map(|l| format!("  {l}")));
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
                    Some("divider") => lines.push(String::new()),
                    _ => {}
                }
            }
        }
        None => lines.extend(shown(&text_of(m)).lines().map(str::to_owned)),
    }
    let lines: Vec<String> = lines.iter().map(|l| boxable(l)).collect();
    let cols = lines.iter().map(|l| width(l)).max().unwrap_or(0);
    let mut out = format!("┌{}┐\n", "─".repeat(cols + 2));
    for l in lines {
        out.push_str(&format!("│ {l}{} │\n", " ".repeat(cols - width(&l))));
    }
    out.push_str(&format!("└{}┘", "─".repeat(cols + 2)));
    out
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let s = format!("{value:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn with_unit(value: f64, unit: &str) -> String {
    match unit {
        "Seconds" if value != 0.0 && value.abs() < 10.0 => format!("{value:.2}s"),
        "Seconds" => format!("{}s", number(value.round())),
        "Milliseconds" if value.abs() < 10.0 => format!("{value:.1}ms"),
        "Milliseconds" => format!("{}ms", number(value.round())),
        "Bytes" => {
            let units = ["B", "kB", "MB", "GB", "TB", "PB"];
            let mut v = value;
            let mut u = 0;
            while v.abs() >= 1000.0 && u + 1 < units.len() {
                v /= 1000.0;
                u += 1;
            }
            if u == 0 {
                format!("{}B", number(v))
            } else {
                format!("{v:.1}{}", units[u])
            }
        }
        _ => number(value),
    }
}

/// One metric (EMF) line as one short line: `metrics Dataset=embedding: Objects=190
/// NewObjects=190 NewBytes=570B`, the `Stack` dimension left out. `None` for a line that is
/// not EMF (or not well-formed EMF, which is better seen as it is).
pub fn metrics(line: &str) -> Option<String> {
    if !line.contains("\"_aws\"") {
        return None;
    }
    let samples = crate::emf::parse(line).ok()?;
    let first = samples.first()?;
    let dims: Vec<String> = first
        .dimensions
        .iter()
        .filter(|(k, _)| k != "Stack")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let values: Vec<String> = samples
        .iter()
        .map(|s| format!("{}={}", s.name, with_unit(s.value, &s.unit)))
        .collect();
    Some(if dims.is_empty() {
        format!("metrics: {}", values.join(" "))
    } else {
        format!("metrics {}: {}", dims.join(","), values.join(" "))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        let shown = message(&m);
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
    }

    #[test]
    fn styles_are_applied_not_printed() {
        let text = "*embedding* `train/*x*/` and _this_ ~old~ <https://kf.example/#/runs/details/r|run r> <@U0ANN> 2*3*4";
        assert_eq!(
            mrkdwn(text, Colors(false)),
            "embedding train/*x*/ and this old run r (https://kf.example/#/runs/details/r) @U0ANN 2*3*4"
        );
        let colored = mrkdwn("*bold* `code`", Colors(true));
        assert_eq!(colored, "\x1b[1mbold\x1b[22m \x1b[31mcode\x1b[39m");
        assert_eq!(width(&colored), "bold code".len());
        // A lone marker stays as written.
        assert_eq!(
            mrkdwn("5 * 3 and a ` tick", Colors(false)),
            "5 * 3 and a ` tick"
        );
    }

    #[test]
    fn date_tokens_and_iso_times_share_one_local_format() {
        let secs = 1_796_246_067;
        let token =
            format!("<!date^{secs}^{{date_short_pretty}} at {{time}}|2026-12-02T21:14:27Z>");
        let token_shown = mrkdwn(&token, Colors(false));
        let iso_shown = mrkdwn("2026-12-02T21:14:27Z", Colors(false));
        assert_eq!(token_shown, iso_shown);
        assert_eq!(token_shown, local_time(secs));
        assert_eq!(
            token_shown.len(),
            "2026-12-02 21:14:27".len(),
            "{token_shown}"
        );
        assert!(!token_shown.contains('T'), "{token_shown}");
        let date_only = mrkdwn(
            &format!("<!date^{secs}^{{date_short}}|2 Dec 2026>"),
            Colors(false),
        );
        assert_eq!(date_only, local_date(secs));
        // An offset is read as one, and a date-time inside a word is left alone.
        assert_eq!(local_times("2026-12-02T22:14:27+01:00"), local_time(secs));
        assert_eq!(
            local_times("x2026-12-02T21:14:27Z"),
            "x2026-12-02T21:14:27Z"
        );
    }

    #[test]
    fn a_warning_line_keeps_the_border_in_line() {
        let m = serde_json::json!({"blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "a longer first line of text"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\u{26a0}\u{fe0f} *faiss*: empty"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\u{2705} done"}},
        ]});
        let shown = message(&m);
        assert!(!shown.contains('\u{fe0f}'), "{shown}");
        let widths: Vec<usize> = shown.lines().map(width).collect();
        assert!(
            widths.iter().all(|w| *w == widths[0]),
            "{widths:?}\n{shown}"
        );
        // ✅ is two columns wide: its line has one space less before the border.
        let done = shown.lines().find(|l| l.contains('\u{2705}')).unwrap();
        assert_eq!(
            done.chars().count() + 1,
            shown.lines().next().unwrap().chars().count()
        );
    }

    #[test]
    fn a_metric_line_reads_as_one_short_line() {
        let line = r#"{"Dataset":"embedding","NewBytes":1570.0,"NewObjects":190.0,"Objects":190.0,"Stack":"local","_aws":{"CloudWatchMetrics":[{"Dimensions":[["Stack","Dataset"]],"Metrics":[{"Name":"Objects","Unit":"Count"},{"Name":"NewObjects","Unit":"Count"},{"Name":"NewBytes","Unit":"Bytes"}],"Namespace":"ct-trigger"}],"Timestamp":1796245904000}}"#;
        assert_eq!(
            metrics(line).as_deref(),
            Some("metrics Dataset=embedding: Objects=190 NewObjects=190 NewBytes=1.6kB")
        );
        let run = r#"{"CountSeconds":0.166300107,"Latency":52.89,"Stack":"local","_aws":{"CloudWatchMetrics":[{"Dimensions":[["Stack"]],"Metrics":[{"Name":"CountSeconds","Unit":"Seconds"},{"Name":"Latency","Unit":"Milliseconds"}],"Namespace":"ct-trigger"}],"Timestamp":1796245904000}}"#;
        assert_eq!(
            metrics(run).as_deref(),
            Some("metrics: CountSeconds=0.17s Latency=53ms")
        );
        assert_eq!(metrics("seek: a log line"), None);
        // Broken EMF is shown as it is, not hidden.
        assert_eq!(metrics(r#"{"_aws": 1}"#), None);
    }
}
