//! Where to split a key range: pure arithmetic over keys, compared as S3 orders them (by their
//! UTF-8 bytes, which is also code point order, and Rust's `str` order).
//!
//! A key is read as a fraction in a mixed-radix number system: the digits at each character
//! position are the characters seen at that position in the prefix's keys (plus "end of key",
//! the smallest digit). Spacing digits by the characters that actually occur there, not by code
//! point nor by one alphabet for all positions, keeps midpoints among the keys and page
//! estimates close for decimal counters, hex hashes or dates: `img_000123.jpg` is read as a
//! decimal number, not as a number over `._0-9gijmp`, whose midpoints fall after every
//! `img_0...` key and leave one side of the split empty.

use std::collections::BTreeSet;

/// How many digits of a key take part in a position, and in a split point (f64 keeps about
/// 53 bits).
const DIGITS: usize = 12;
/// How many digits take part in a distance between two keys: a difference is summed digit by
/// digit, so it keeps its precision however deep the keys first differ (a page of a date
/// folder's keys differs only in the 14th character after the part all its range shares).
const WINDOW: usize = 48;
/// Character positions told apart; later ones share the last set.
const POSITIONS: usize = 256;

/// Whether S3 accepts `c` in `StartAfter` (it answers 400 for code points XML 1.0 forbids).
pub fn xml_legal(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// The characters seen at each position of a prefix's keys: the digits of its positions.
#[derive(Debug, Clone, Default)]
pub struct Alphabet(Vec<BTreeSet<char>>);

impl Alphabet {
    /// Adds the characters of `key` at their positions (only XML-legal ones become digits).
    pub fn learn(&mut self, key: &str) {
        for (i, c) in key.chars().enumerate() {
            if !xml_legal(c) {
                continue;
            }
            let i = i.min(POSITIONS - 1);
            if self.0.len() <= i {
                self.0.resize_with(i + 1, BTreeSet::new);
            }
            self.0[i].insert(c);
        }
    }

    /// The digits from character position `from` on, with the characters of `extra` (suffixes
    /// starting at `from`) added.
    fn digits<'a>(&self, from: usize, extra: impl IntoIterator<Item = &'a str>) -> Digits {
        let mut at: Vec<BTreeSet<char>> = (from..from + WINDOW)
            .map(|i| {
                self.0
                    .get(i.min(POSITIONS - 1))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        for s in extra {
            for (set, c) in at.iter_mut().zip(s.chars()) {
                if xml_legal(c) {
                    set.insert(c);
                }
            }
        }
        Digits(
            at.into_iter()
                .map(|s| fill(s).into_iter().collect())
                .collect(),
        )
    }
}

/// Fills the gaps a sample leaves: a position that holds a decimal digit may hold any (the
/// leading digits of a counter or a date change rarely, so a sample sees one or two), and one
/// that holds ASCII letters of one case may hold any between the smallest and largest seen.
/// Without this, positions of a counter read as base 2 or 3 and split points bunch up.
fn fill(mut set: BTreeSet<char>) -> BTreeSet<char> {
    if set.iter().any(char::is_ascii_digit) {
        set.extend('0'..='9');
    }
    for class in [char::is_ascii_lowercase, char::is_ascii_uppercase] {
        let mut seen = set.iter().copied().filter(class);
        if let (Some(lo), Some(hi)) = (seen.next(), seen.next_back()) {
            set.extend(lo..=hi);
        }
    }
    set
}

/// The digits of each position of a suffix, smallest first.
struct Digits(Vec<Vec<char>>);

impl Digits {
    /// The digit of `c` at a position whose digits are `digits`.
    fn digit(digits: &[char], c: char) -> usize {
        match digits.binary_search(&c) {
            Ok(i) => i + 1,
            // Not a digit here (XML-illegal or unseen): place it between its neighbours.
            Err(i) => i,
        }
    }

    /// `suffix` as a fraction in [0, 1): "end of key" is digit 0 at every position.
    fn pos(&self, suffix: &str) -> f64 {
        let mut scale = 1.0;
        let mut x = 0.0;
        for (digits, c) in self.0.iter().take(DIGITS).zip(suffix.chars()) {
            scale /= (digits.len() + 1) as f64;
            x += Self::digit(digits, c) as f64 * scale;
        }
        x
    }

    /// `pos(a) - pos(b)`, summed digit by digit over the whole window.
    fn diff(&self, a: &str, b: &str) -> f64 {
        let (mut a, mut b) = (a.chars(), b.chars());
        let mut scale = 1.0;
        let mut x = 0.0;
        for digits in &self.0 {
            let (ca, cb) = (a.next(), b.next());
            if ca.is_none() && cb.is_none() {
                break;
            }
            scale /= (digits.len() + 1) as f64;
            let da = ca.map_or(0, |c| Self::digit(digits, c)) as f64;
            let db = cb.map_or(0, |c| Self::digit(digits, c)) as f64;
            x += (da - db) * scale;
        }
        x
    }

    /// The shortest key suffix at about `x`, never ending in the "end" digit.
    fn key(&self, x: f64) -> String {
        let mut x = x.clamp(0.0, 1.0);
        let mut out = String::new();
        let mut kept = 0;
        for digits in self.0.iter().take(DIGITS) {
            if digits.is_empty() {
                break;
            }
            x *= (digits.len() + 1) as f64;
            let d = (x.floor() as usize).min(digits.len());
            x -= d as f64;
            // An inner "end" digit cannot be written: use the smallest character instead.
            out.push(digits[d.max(1) - 1]);
            if d > 0 {
                kept = out.len();
            }
        }
        out.truncate(kept);
        out
    }
}

/// The longest common leading characters of `a` and `b` (a char boundary of both).
pub fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i);
    &a[..end]
}

/// The first key after every key that starts with `base`, if one exists above `floor` (the
/// prefix itself): the last character raised to the next legal code point.
pub fn after_all_starting_with(base: &str, floor: &str) -> Option<String> {
    let mut chars: Vec<char> = base.chars().collect();
    while chars.iter().collect::<String>().len() > floor.len() {
        let last = chars.pop()?;
        let mut next = last as u32 + 1;
        while next <= 0x10FFFF {
            if let Some(c) = char::from_u32(next).filter(|c| xml_legal(*c)) {
                chars.push(c);
                return Some(chars.into_iter().collect());
            }
            next += 1;
        }
    }
    None
}

fn acceptable(s: &str, above: &str, below: Option<&str>, prefix: &str) -> bool {
    s > above && below.is_none_or(|b| s < b) && s.starts_with(prefix) && s.chars().all(xml_legal)
}

/// A split point strictly inside `(cursor, hi)`, about halfway.
pub fn halfway(alphabet: &Alphabet, prefix: &str, cursor: &str, hi: &str) -> Option<String> {
    beyond_next_page(alphabet, prefix, None, cursor, hi)
}

/// A split point strictly inside `(cursor, hi)`: halfway between the end of the page the
/// owner is fetching now (as wide as its last one, from `first` to `cursor`) and `hi`, so
/// the owner's page in flight is not cut short and listed twice.
pub fn beyond_next_page(
    alphabet: &Alphabet,
    prefix: &str,
    first: Option<&str>,
    cursor: &str,
    hi: &str,
) -> Option<String> {
    let first = first.filter(|f| *f <= cursor).unwrap_or(cursor);
    let base = common_prefix(first, hi);
    let (f, c, h) = (
        &first[base.len()..],
        &cursor[base.len()..],
        &hi[base.len()..],
    );
    let digits = alphabet.digits(base.chars().count(), [f, c, h]);
    let (pc, ph) = (digits.pos(c), digits.pos(h));
    let from = (pc + digits.diff(c, f)).min(ph);
    let s = format!("{base}{}", digits.key((from + ph) / 2.0));
    if acceptable(&s, cursor, Some(hi), prefix) {
        return Some(s);
    }
    // The page estimate overshoots: fall back to the middle of what is left.
    let s = format!("{base}{}", digits.key((pc + ph) / 2.0));
    acceptable(&s, cursor, Some(hi), prefix).then_some(s)
}

/// For a range open to the end of the prefix: a split point as far past `cursor` as `cursor`
/// is past `first` (the prefix's first key), so an open tail doubles its known extent per
/// step and a large prefix fans out in a few round trips.
pub fn ahead(alphabet: &Alphabet, prefix: &str, first: &str, cursor: &str) -> Option<String> {
    let base = common_prefix(first, cursor);
    let (f, c) = (&first[base.len()..], &cursor[base.len()..]);
    let digits = alphabet.digits(base.chars().count(), [f, c]);
    let (pf, pc) = (digits.pos(f), digits.pos(c));
    let target = pc + (pc - pf).max(0.0);
    let top = 1.0 - 1.0 / digits.0.first().map_or(1.0, |d| (d.len() + 1) as f64);
    if target < top {
        let s = format!("{base}{}", digits.key(target));
        if acceptable(&s, cursor, None, prefix) {
            return Some(s);
        }
    }
    if let Some(s) = after_all_starting_with(base, prefix)
        && acceptable(&s, cursor, None, prefix)
    {
        return Some(s);
    }
    // The keys so far share only the prefix, and the cursor is at the top of the characters
    // seen at its first position: step past everything starting with the cursor's first
    // character (a hash space learns its letters one step at a time). Without this the rest
    // of a uniform hash space would be listed by one worker.
    let first_char = cursor.strip_prefix(prefix)?.chars().next()?;
    let s = after_all_starting_with(&format!("{prefix}{first_char}"), prefix)?;
    acceptable(&s, cursor, None, prefix).then_some(s)
}

/// About how many pages are left between `cursor` and `hi`, given that the last page went
/// from `first` to `cursor`. An open range (`hi` None) has no estimate: infinite.
pub fn pages_left(alphabet: &Alphabet, first: &str, cursor: &str, hi: Option<&str>) -> f64 {
    let Some(hi) = hi else {
        return f64::INFINITY;
    };
    let base = common_prefix(common_prefix(first, cursor), hi);
    let (f, c, h) = (
        &first[base.len()..],
        &cursor[base.len()..],
        &hi[base.len()..],
    );
    let digits = alphabet.digits(base.chars().count(), [f, c, h]);
    let (span, left) = (digits.diff(c, f), digits.diff(h, c));
    if span > 0.0 {
        (left / span).max(0.0)
    } else {
        // One key a page, or keys beyond the window: nothing to go by but the range itself.
        if left > 0.0 { 1.0e6 } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpha(keys: &[&str]) -> Alphabet {
        let mut a = Alphabet::default();
        for k in keys {
            a.learn(k);
        }
        a
    }

    #[test]
    fn halfway_between_decimal_counters_lands_among_them() {
        let a = alpha(&["img_000000000.jpg", "img_000456789.jpg"]);
        let s = halfway(&a, "", "img_000000999.jpg", "img_00001").unwrap();
        assert!(
            s.as_str() > "img_000000999.jpg" && s.as_str() < "img_00001",
            "{s}"
        );
        assert!(s.starts_with("img_00000"), "{s}");
        assert!(s.as_str() > "img_000003", "{s} should be near the middle");
    }

    #[test]
    fn ahead_doubles_the_extent() {
        let a = alpha(&["0123456789abcdef"]);
        let s = ahead(&a, "h/", "h/0000", "h/0fff").unwrap();
        assert!(s.as_str() > "h/0fff" && s.as_str() < "h/3", "{s}");
        // At the top of the digits, it moves past everything starting with the common part.
        let s = ahead(&a, "", "h/a0", "h/ff").unwrap();
        assert_eq!(s, "h0");
        // ... never past the end of the prefix itself: when the keys share only the prefix,
        // past everything starting with the cursor's first character.
        assert_eq!(ahead(&a, "h/", "h/a0", "h/ff").as_deref(), Some("h/g"));
        assert_eq!(ahead(&a, "h/", "h/a0", "h/\u{10FFFF}"), None);
    }

    #[test]
    fn after_all_skips_illegal_code_points_and_stops_at_the_prefix() {
        assert_eq!(after_all_starting_with("p/a", "p/").as_deref(), Some("p/b"));
        assert_eq!(
            after_all_starting_with("p/\u{D7FF}", "p/").as_deref(),
            Some("p/\u{E000}")
        );
        assert_eq!(after_all_starting_with("p/", "p/"), None);
        assert_eq!(
            after_all_starting_with("p/a\u{10FFFF}", "p/").as_deref(),
            Some("p/b")
        );
    }

    #[test]
    fn common_prefix_is_a_char_boundary() {
        assert_eq!(common_prefix("데이터/a", "데이트"), "데이");
        assert_eq!(common_prefix("abc", "ab"), "ab");
    }
}
