//! Typed Slack messages. Each renders to the JSON Slack expects (Block Kit); JSON fixtures
//! under `shared/tests/fixtures/` pin the exact shapes.

use super::escape;
use super::interaction::button_value;
use crate::Timestamp;
use crate::domain::{
    Approval, ApprovalRequest, Choice, Count, Decision, QualitySignal, Training, bytes_text,
};
use serde_json::{Value, json};

/// The `block_id` of the Train!/Nope! actions block.
pub const DECISION_BLOCK: &str = "ct_trigger_decision";

/// Slack's limit on a section's text.
pub const SECTION_LIMIT: usize = 3000;
/// Slack's limit on blocks in one message.
pub const BLOCKS_LIMIT: usize = 50;

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text})
}

fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}})
}

fn objects(n: u64) -> &'static str {
    if n == 1 { "object" } else { "objects" }
}

/// The most a message's leading sentence may take of a section's 3,000 characters (the rest is
/// its question).
const HEADLINE_LIMIT: usize = 2_500;

/// "190 new objects in embedding, 10 in faiss", and "(300 removed)" after a dataset that lost
/// objects. Past [`HEADLINE_LIMIT`] (dozens of datasets), the rest are "and N more datasets".
pub fn new_objects_phrase(counts: &[Count]) -> String {
    let mut out = String::new();
    for (i, c) in counts.iter().enumerate() {
        let n = c.new_objects();
        let mut part = if i == 0 {
            format!("{n} new {} in {}", objects(n), escape(&c.name))
        } else {
            format!(", {n} in {}", escape(&c.name))
        };
        let removed = c.removed();
        if removed > 0 {
            part += &format!(" ({removed} removed)");
        }
        if i > 0 && out.chars().count() + part.chars().count() > HEADLINE_LIMIT {
            let more = counts.len() - i;
            out += &format!(
                " and {more} more {}",
                if more == 1 { "dataset" } else { "datasets" }
            );
            return out;
        }
        out += &part;
    }
    if out.is_empty() {
        out.push_str("No datasets configured");
    }
    out
}

/// A date as Slack shows it in each reader's zone ("24 Nov"), falling back to the UTC date.
pub fn short_date(at: Timestamp) -> String {
    let fallback = jiff::Timestamp::from_second(at.secs())
        .map(|t| t.strftime("%-d %b %Y").to_string())
        .unwrap_or_else(|_| at.rfc3339());
    format!("<!date^{}^{{date_short}}|{fallback}>", at.secs())
}

/// What one dataset's count says: what changed since the baseline, and what is there now.
/// "*embedding* `train/embedding/`: 300 new or rewritten (1.2 GB), 300 removed since the
/// training of 24 Nov; 500 objects, 2.0 GB now · threshold 100 objects". A snapshot from before
/// change detection keeps its old line ("1190 seen, 1000 trained, threshold 100").
pub fn count_line(c: &Count) -> String {
    let head = format!("*{}* `{}`", escape(&c.name), escape(&c.prefix));
    if c.counted_at.is_none() {
        let threshold = match c.threshold.objects() {
            Some(n) => n.to_string(),
            None => c.threshold.text(),
        };
        return format!(
            "{head}: {} seen, {} trained, threshold {threshold}",
            c.seeked, c.trained
        );
    }
    let (new, removed) = (c.new_objects(), c.removed());
    let changed = if c.by_count() {
        format!(
            "{new} more and {removed} fewer than the {} trained (by count: that training \
             predates change detection)",
            c.trained
        )
    } else if let Some(since) = c.baseline_at {
        let mut what = if new == 0 && removed == 0 {
            "nothing new".to_owned()
        } else {
            let mut w = format!("{new} new or rewritten ({})", bytes_text(c.new_bytes));
            if removed > 0 {
                w += &format!(", {removed} removed");
            }
            w
        };
        what += &format!(" since the training of {}", short_date(since));
        if c.old_dated_change() {
            what += "; the content changed with old dates (a copy or a restore?)";
        }
        what
    } else {
        format!(
            "{new} new ({}), nothing trained yet",
            bytes_text(c.new_bytes)
        )
    };
    format!(
        "{head}: {changed}; {} {}, {} now · threshold {}",
        c.seeked,
        objects(c.seeked),
        bytes_text(c.bytes),
        c.threshold.text()
    )
}

/// Slack's limit on a context block's elements.
const CONTEXT_ELEMENTS: usize = 10;

/// One line a dataset, in as many context blocks as Slack's limits need (each element at most
/// [`SECTION_LIMIT`] characters, ten elements a block).
fn counts_blocks(counts: &[Count]) -> Vec<Value> {
    let mut elements: Vec<String> = Vec::new();
    for line in counts.iter().map(count_line) {
        for piece in split_text(&line, SECTION_LIMIT) {
            match elements.last_mut() {
                Some(last) if last.chars().count() + 1 + piece.chars().count() <= SECTION_LIMIT => {
                    last.push('\n');
                    last.push_str(&piece);
                }
                _ => elements.push(piece),
            }
        }
    }
    elements
        .chunks(CONTEXT_ELEMENTS)
        .map(|chunk| {
            let els: Vec<Value> = chunk
                .iter()
                .map(|t| json!({"type": "mrkdwn", "text": t}))
                .collect();
            json!({"type": "context", "elements": els})
        })
        .collect()
}

/// A line when this count compared some dataset by count (its baseline predates change
/// detection): said once, in the message.
fn by_count_block(counts: &[Count]) -> Option<Value> {
    counts.iter().any(Count::by_count).then(|| {
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text":
            "Compared by count this once: the last training predates change detection. From \
             the next approval on, new, rewritten and removed objects and their bytes are \
             measured."}]})
    })
}

/// What the message (and seek's log) says about a dataset whose prefix listed no objects at
/// all: most often a typo in `DATASETS` or the wrong bucket, which would otherwise count 0 every
/// week, silently. Not escaped for Slack.
pub fn empty_prefix_warning(prefix: &str) -> String {
    format!("`{prefix}` is empty: a typo?")
}

/// One warning line per dataset whose prefix listed no objects, in as many sections as they
/// need.
fn empty_block(counts: &[Count]) -> Vec<Value> {
    let lines: Vec<String> = counts
        .iter()
        .filter(|c| c.seeked == 0)
        .map(|c| {
            format!(
                "\u{26a0}\u{fe0f} *{}*: {}",
                escape(&c.name),
                escape(&empty_prefix_warning(&c.prefix))
            )
        })
        .collect();
    if lines.is_empty() {
        return Vec::new();
    }
    split_text(&lines.join("\n"), SECTION_LIMIT)
        .iter()
        .map(|t| section(t))
        .collect()
}

/// The blocks every message about a set of counts carries: a line a dataset, the by-count note,
/// the empty-prefix warnings.
fn counts_detail(counts: &[Count]) -> Vec<Value> {
    let mut blocks = counts_blocks(counts);
    blocks.extend(by_count_block(counts));
    blocks.extend(empty_block(counts));
    blocks
}

/// What a request asked, without the question mark (see [`grounds_of`]).
pub fn grounds(request: &ApprovalRequest) -> String {
    grounds_of(request.signal.as_ref(), &request.snapshot)
}

/// Slack renders this in each reader's own time zone; the fallback is UTC.
pub fn slack_date(at: Timestamp) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        at.secs(),
        at.rfc3339()
    )
}

/// A quality signal in one line: "Model quality dropped: recall@10 is 0.81, below 0.85
/// (from eval-step)". Escaped for mrkdwn.
pub fn signal_phrase(signal: &QualitySignal) -> String {
    let mut out = escape(signal.reason.trim_end_matches(['.', ' ']));
    let metric = signal.metric.as_deref().map(escape);
    match (metric, signal.value, signal.threshold) {
        (Some(m), Some(v), Some(t)) => {
            let side = if v < t { "below" } else { "against" };
            out += &format!(": {m} is {v}, {side} {t}");
        }
        (Some(m), Some(v), None) => out += &format!(": {m} is {v}"),
        (Some(m), None, Some(t)) => out += &format!(": {m}, threshold {t}"),
        (Some(m), None, None) => out += &format!(": {m}"),
        (None, Some(v), Some(t)) => out += &format!(": {v} against {t}"),
        (None, Some(v), None) => out += &format!(": {v}"),
        (None, None, Some(t)) => out += &format!(": threshold {t}"),
        (None, None, None) => {}
    }
    if let Some(src) = &signal.source {
        out += &format!(" (from {})", escape(src));
    }
    out
}

/// What a request asked, without the question mark: the reason (quality) or the new objects.
pub(crate) fn grounds_of(signal: Option<&QualitySignal>, counts: &[Count]) -> String {
    match signal {
        Some(s) => signal_phrase(s),
        None => new_objects_phrase(counts),
    }
}

/// The question with Train! (behind a confirm dialog) and Nope!: a data request leads with the
/// new objects, a quality request with its reason; both list the datasets' counts.
pub fn ask_request(request: &ApprovalRequest) -> Value {
    let counts = &request.snapshot;
    let text = format!(
        "{}. Would you like to train models?",
        grounds_of(request.signal.as_ref(), counts)
    );
    let request_id = request.id.as_str();
    let mut blocks = vec![section(&text)];
    if counts.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "No dataset counted yet."}]}));
    } else {
        blocks.extend(counts_detail(counts));
    }
    blocks.push(json!(
            {
                "type": "actions",
                "block_id": DECISION_BLOCK,
                "elements": [
                    {
                        "type": "button",
                        "action_id": "train",
                        "text": plain("Train!"),
                        "style": "primary",
                        "value": button_value(Choice::Train, request_id),
                        "confirm": {
                            "title": plain("Are you sure?"),
                            "text": plain("Do Train?"),
                            "confirm": plain("Yes"),
                            "deny": plain("No")
                        }
                    },
                    {
                        "type": "button",
                        "action_id": "nope",
                        "text": plain("Nope!"),
                        "value": button_value(Choice::Nope, request_id)
                    }
                ]
            }
    ));
    json!({"text": text, "blocks": blocks})
}

/// seek's question: counts, then Train! (behind a confirm dialog) and Nope!.
pub fn ask(request_id: &str, counts: &[Count]) -> Value {
    ask_request(&ApprovalRequest {
        id: request_id.to_owned(),
        created_at: Timestamp::from_secs(0),
        window: String::new(),
        snapshot: counts.to_vec(),
        decision: None,
        signal: None,
        posted: None,
        expired_at: None,
    })
}

/// seek's notice when nothing crossed its threshold: no buttons.
pub fn no_need(counts: &[Count]) -> Value {
    let text = format!("No need to train: {}.", new_objects_phrase(counts));
    let mut blocks = vec![section(&text)];
    blocks.extend(counts_detail(counts));
    json!({"text": text, "blocks": blocks})
}

/// Replaces the question once decided: the counts, who and when, no buttons.
pub fn decided(snapshot: &[Count], decision: &Decision) -> Value {
    decided_on(None, snapshot, decision)
}

/// [`decided`] for a request of either kind: a quality request keeps its reason.
pub fn decided_request(request: &ApprovalRequest, decision: &Decision) -> Value {
    decided_on(request.signal.as_ref(), &request.snapshot, decision)
}

fn decided_on(signal: Option<&QualitySignal>, snapshot: &[Count], decision: &Decision) -> Value {
    let question = format!("{}.", grounds_of(signal, snapshot));
    let outcome = format!(
        "*{}* by <@{}> at {}",
        decision.choice.verb(),
        escape(&decision.by.id),
        slack_date(decision.at)
    );
    let mut blocks = vec![section(&question)];
    blocks.extend(counts_detail(snapshot));
    blocks.push(section(&outcome));
    json!({
        "replace_original": true,
        "text": format!("{question} {} by <@{}>", decision.choice.verb(), escape(&decision.by.id)),
        "blocks": blocks
    })
}

/// The channel notice after Train!: where to follow the pipelines.
pub fn kubeflow(url: &str) -> Value {
    let text = format!("Here is Kubeflow URL: {url}");
    json!({"text": text, "blocks": [section(&format!("Here is Kubeflow URL: <{url}|{}>", escape(url)))]})
}

/// An answer only the clicker sees, leaving the original message as it is.
pub fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

/// Told to someone clicking a request that was already decided.
pub fn already_decided(decision: &Decision) -> Value {
    ephemeral(&format!(
        "Already {} by <@{}> at {}.",
        decision.choice.verb().to_lowercase(),
        escape(&decision.by.id),
        slack_date(decision.at)
    ))
}

/// Where the latest approval's training stands, in one line: for the question and the "No need
/// to train" notice, so that an approval whose run never started is never read as trained.
pub fn approval_line(a: &Approval) -> String {
    let when = format!(
        "approved on {} by <@{}>",
        slack_date(a.decision.at),
        escape(&a.decision.by.id)
    );
    match &a.training {
        Training::Failed { reason } => format!(
            "\u{26a0}\u{fe0f} The last training was {when}, but its run never started: {}; \
             press Retry or `/ct-trigger seek`.",
            escape(reason)
        ),
        Training::Starting => format!("The last training was {when}; its run is starting."),
        Training::Started { run_id: Some(run) } => {
            format!(
                "The last training was {when} · run {} started.",
                escape(run)
            )
        }
        Training::Started { run_id: None } => format!("The last training was {when}."),
    }
}

/// Adds the latest approval's line to a question or notice, before its buttons.
pub fn note_approval(message: &mut Value, a: &Approval) {
    let block =
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": approval_line(a)}]});
    if let Some(blocks) = message["blocks"].as_array_mut() {
        let at = blocks
            .iter()
            .position(|b| b["type"] == "actions")
            .unwrap_or(blocks.len());
        blocks.insert(at, block);
    }
}

/// A question nobody decided within `REQUEST_TTL`, edited to say so: its grounds and counts,
/// "Expired", and no buttons left.
pub fn expired(request: &ApprovalRequest, at: Timestamp) -> Value {
    let question = format!("{}.", grounds(request));
    let outcome = format!(
        "*Expired*: nobody decided by {}. `/ct-trigger seek` asks again.",
        slack_date(at)
    );
    let mut blocks = vec![section(&question)];
    blocks.extend(counts_detail(&request.snapshot));
    blocks.push(section(&outcome));
    json!({
        "replace_original": true,
        "text": format!("{question} Expired: nobody decided by {}.", slack_date(at)),
        "blocks": blocks
    })
}

/// Told to someone clicking a question that expired.
pub fn expired_click(at: Timestamp) -> Value {
    ephemeral(&format!(
        "This question expired: nobody decided by {}. `/ct-trigger seek` asks again.",
        slack_date(at)
    ))
}

/// The one reminder, in the question's thread: still open, who may decide, and when it expires.
pub fn reminder(request: &ApprovalRequest, who: &str, expires: Option<Timestamp>) -> Value {
    let mut text = format!(
        "Reminder: the question of {} is still open: {}.",
        slack_date(request.created_at),
        grounds(request)
    );
    text += &if who.is_empty() {
        " Anyone in the channel may press Train! or Nope!".to_owned()
    } else {
        format!(" {who}: Train! or Nope!?")
    };
    if let Some(at) = expires {
        text += &format!(" It expires {}.", slack_date(at));
    }
    json!({"text": text, "blocks": [section(&text)]})
}

/// Told to someone clicking a request that a newer seek replaced.
pub fn superseded() -> Value {
    ephemeral("This request was superseded by a newer one: use the latest message's buttons.")
}

/// A superseded question, edited to say so (where Slack lets it be edited): its grounds and
/// counts as asked, "Superseded by the question of <date>", and no buttons left.
pub fn superseded_by(request: &ApprovalRequest, newest_at: Timestamp) -> Value {
    let question = format!(
        "{}.",
        grounds_of(request.signal.as_ref(), &request.snapshot)
    );
    let outcome = format!(
        "*Superseded* by the question of {}: use its buttons.",
        slack_date(newest_at)
    );
    let mut blocks = vec![section(&question)];
    blocks.extend(counts_detail(&request.snapshot));
    blocks.push(section(&outcome));
    json!({
        "replace_original": true,
        "text": format!("{question} This question was superseded by the question of {}.", slack_date(newest_at)),
        "blocks": blocks
    })
}

/// Splits text into pieces of at most `limit` characters, preferring to break after a newline,
/// never inside an escape sequence (`&amp;` and friends), never losing a character.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > limit {
        let hard = rest
            .char_indices()
            .nth(limit)
            .map_or(rest.len(), |(i, _)| i);
        let window = &rest[..hard];
        let mut cut = match window.rfind('\n') {
            Some(i) if i >= hard / 2 => i + 1,
            _ => hard,
        };
        // Do not split an entity like "&amp;" across two sections.
        if let Some(amp) = window[..cut].rfind('&')
            && !window[amp..cut].contains(';')
            && cut - amp < 6
            && amp > 0
        {
            cut = amp;
        }
        out.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// A notice from a pipeline step: `text` first, then `text2`, escaped and split across as many
/// sections and messages as Slack's limits need. Returns the messages in posting order.
///
/// Each message's top-level `text` (what notifications show) is its first section whole, so a
/// `text` that fits one section is the message text exactly, and no escape sequence is ever cut
/// in half. When there are several messages it is prefixed `(k/n) `.
pub fn notice(text: &str, text2: Option<&str>) -> Vec<Value> {
    let mut sections: Vec<String> = split_text(&escape(text), SECTION_LIMIT);
    if let Some(t2) = text2.filter(|t| !t.is_empty()) {
        sections.extend(split_text(&escape(t2), SECTION_LIMIT));
    }
    let total = sections.chunks(BLOCKS_LIMIT).count();
    sections
        .chunks(BLOCKS_LIMIT)
        .enumerate()
        .map(|(i, chunk)| {
            let fallback = if total > 1 {
                format!("({}/{total}) {}", i + 1, chunk[0])
            } else {
                chunk[0].clone()
            };
            json!({
                "text": fallback,
                "blocks": chunk.iter().map(|s| section(s)).collect::<Vec<_>>()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_character_in_order() {
        let text: String = (0..10_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let parts = split_text(&text, 3000);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.chars().count() <= 3000));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn split_prefers_newlines_and_keeps_entities_whole() {
        let text = format!("{}\n{}", "a".repeat(2500), "b".repeat(1000));
        let parts = split_text(&text, 3000);
        assert_eq!(parts[0], format!("{}\n", "a".repeat(2500)));
        let text = format!("{}&amp;tail", "x".repeat(2997));
        let parts = split_text(&text, 3000);
        assert_eq!(parts[0], "x".repeat(2997));
        assert!(parts[1].starts_with("&amp;"));
        assert_eq!(parts.concat(), text);
    }

    fn sections(messages: &[Value]) -> Vec<String> {
        messages
            .iter()
            .flat_map(|m| m["blocks"].as_array().cloned().unwrap_or_default())
            .map(|b| b["text"]["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn a_short_notice_is_one_message_whose_text_is_the_text() {
        let m = notice("Training done: <!channel> a&b", Some("details > here"));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["text"], "Training done: &lt;!channel&gt; a&amp;b");
        assert_eq!(
            sections(&m),
            vec![
                "Training done: &lt;!channel&gt; a&amp;b".to_owned(),
                "details &gt; here".to_owned()
            ]
        );
        assert_eq!(sections(&notice("only", Some(""))), vec!["only".to_owned()]);
    }

    #[test]
    fn a_long_notice_spans_messages_of_at_most_50_sections_in_order() {
        // 200,000 escaped characters: 67 sections, so two messages.
        let text = "<".repeat(50_000);
        let m = notice(&text, Some("tail"));
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["blocks"].as_array().unwrap().len(), BLOCKS_LIMIT);
        let all = sections(&m);
        assert!(all.iter().all(|s| s.chars().count() <= SECTION_LIMIT));
        assert_eq!(all.last().unwrap(), "tail");
        assert_eq!(all.concat(), format!("{}tail", "&lt;".repeat(50_000)));
        assert!(m[0]["text"].as_str().unwrap().starts_with("(1/2) &lt;"));
        assert!(m[1]["text"].as_str().unwrap().starts_with("(2/2) "));
        // The fallback never ends inside an escape sequence.
        for msg in &m {
            let t = msg["text"].as_str().unwrap();
            assert!(t.chars().count() <= SECTION_LIMIT + 8);
            assert!(t.ends_with("&lt;"), "{t}");
        }
    }

    #[test]
    fn multibyte_text_is_split_on_characters() {
        let text = "é".repeat(6001);
        let parts = split_text(&text, 3000);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            vec![3000, 3000, 1]
        );
    }
}
