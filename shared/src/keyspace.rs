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

use std::borrow::{Borrow, Cow};
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
pub struct Alphabet {
    seen: Vec<BTreeSet<char>>,
    /// Each position's digits, [`fill`]ed and sorted, kept in step with `seen`. Building them
    /// for every estimate (48 positions, each set cloned and filled) was about 45% of seek's
    /// CPU on date folders (perf, 2 x 1M keys, 32 ranges in flight): a split estimate is asked
    /// for whenever a worker is idle, and a page is applied about a thousand times a second.
    filled: Vec<Vec<char>>,
    /// Whether a sampled key ended at each position.
    ends: Vec<bool>,
}

impl Alphabet {
    /// Adds the characters of `key` at their positions (only XML-legal ones become digits).
    pub fn learn(&mut self, key: &str) {
        let mut len = 0;
        for (i, c) in key.chars().enumerate() {
            len = i + 1;
            if !xml_legal(c) {
                continue;
            }
            let i = i.min(POSITIONS - 1);
            if self.seen.len() <= i {
                self.seen.resize_with(i + 1, BTreeSet::new);
                self.filled.resize_with(i + 1, Vec::new);
            }
            if self.seen[i].insert(c) {
                self.filled[i] = fill(self.seen[i].clone()).into_iter().collect();
            }
        }
        let len = len.min(POSITIONS - 1);
        if self.ends.len() <= len {
            self.ends.resize(len + 1, false);
        }
        self.ends[len] = true;
    }

    /// Position `i`'s digits, as sampled.
    fn place(&self, i: usize) -> Place<'_> {
        let i = i.min(POSITIONS - 1);
        let chars = self.filled.get(i).map_or(&[][..], Vec::as_slice);
        Place {
            chars: Cow::Borrowed(chars),
            end: chars.is_empty() || self.ends.get(i).copied().unwrap_or(false),
        }
    }

    /// `pos(a) - pos(b)` for two keys under a prefix of `from` characters, read in one number
    /// system for the whole prefix (the sampled digits, no extras), so distances between any
    /// keys add up and can be compared: a key density is keys over such a distance. Summed digit
    /// by digit, so keys that differ only deep (long folder names) keep a distance.
    pub fn measure(&self, from: usize, a: &str, b: &str) -> f64 {
        distance(
            (from..).map(|i| self.place(i)),
            a.chars().skip(from),
            b.chars().skip(from),
        )
    }

    /// The digits from character position `from` on, with the characters of `extra` (suffixes
    /// starting at `from`) added.
    fn digits<'a>(&self, from: usize, extra: impl IntoIterator<Item = &'a str>) -> Digits<'_> {
        let mut at: Vec<Place<'_>> = (from..from + WINDOW).map(|i| self.place(i)).collect();
        for s in extra {
            for (i, (place, c)) in at.iter_mut().zip(s.chars()).enumerate() {
                if xml_legal(c) && place.chars.binary_search(&c).is_err() {
                    // A character no sample has shown here: fill again with it added.
                    let mut set: BTreeSet<char> = place.chars.iter().copied().collect();
                    if let Some(seen) = self.seen.get((from + i).min(POSITIONS - 1)) {
                        set.extend(seen);
                    }
                    set.insert(c);
                    place.chars = Cow::Owned(fill(set).into_iter().collect());
                }
            }
        }
        Digits(at)
    }
}

/// The digits one character position can hold: its characters, and "end of key" (below them
/// all) only where a sampled key ended there. A position that only ever holds a separator
/// (the `/` of `2026/11/24/`) then has one digit, not two, so no midpoint lands in the gap
/// between "2026/04" and "2026/04/", where no key is: a split point there took none of the
/// keys of the range it split (date folders listed whole months by one worker).
#[derive(Debug, Clone)]
struct Place<'a> {
    chars: Cow<'a, [char]>,
    end: bool,
}

impl Place<'_> {
    fn radix(&self) -> f64 {
        (self.chars.len() + usize::from(self.end)).max(1) as f64
    }

    /// The digit of `c` (`None`: the key has ended). A character that is not a digit here
    /// (XML-illegal or unseen, such as the split point ":" after the hex digit "9") takes the
    /// value of the next digit above it: the keys between it and that digit are none that a
    /// sample has shown, while all keys starting with the digit below come before it.
    fn value(&self, c: Option<char>) -> f64 {
        let Some(c) = c else { return 0.0 };
        let e = f64::from(u8::from(self.end));
        match self.chars.binary_search(&c) {
            Ok(i) | Err(i) => i as f64 + e,
        }
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

/// `pos(a) - pos(b)` for two suffixes read with `places` (one a character position), summed
/// digit by digit until both have ended, so keys that differ only deep keep a distance. Digits
/// below 1e-250 of the first are left out (f64 would soon lose them anyway).
fn distance<'p, P: Borrow<Place<'p>>>(
    places: impl Iterator<Item = P>,
    mut a: impl Iterator<Item = char>,
    mut b: impl Iterator<Item = char>,
) -> f64 {
    let mut scale = 1.0f64;
    let mut x = 0.0;
    for place in places {
        let (ca, cb) = (a.next(), b.next());
        if (ca.is_none() && cb.is_none()) || scale < 1e-250 {
            break;
        }
        let place = place.borrow();
        scale /= place.radix();
        x += (place.value(ca) - place.value(cb)) * scale;
    }
    x
}

/// The digits of each position of a suffix, smallest first.
struct Digits<'a>(Vec<Place<'a>>);

impl Digits<'_> {
    /// `suffix` as a fraction in [0, 1).
    fn pos(&self, suffix: &str) -> f64 {
        let mut scale = 1.0;
        let mut x = 0.0;
        for (place, c) in self.0.iter().take(DIGITS).zip(suffix.chars()) {
            scale /= place.radix();
            x += place.value(Some(c)) * scale;
        }
        x
    }

    /// `pos(a) - pos(b)`, summed digit by digit over the whole window.
    fn diff(&self, a: &str, b: &str) -> f64 {
        distance(self.0.iter(), a.chars(), b.chars())
    }

    /// The shortest key suffix at about `x`, never ending in the "end" digit.
    fn key(&self, x: f64) -> String {
        let mut x = x.clamp(0.0, 1.0);
        let mut out = String::new();
        let mut kept = 0;
        for place in self.0.iter().take(DIGITS) {
            if place.chars.is_empty() {
                break;
            }
            let e = usize::from(place.end);
            let radix = place.chars.len() + e;
            x *= radix as f64;
            let d = (x.floor() as usize).min(radix - 1);
            x -= d as f64;
            // An inner "end" digit cannot be written: use the smallest character instead.
            out.push(place.chars[d.saturating_sub(e)]);
            if d >= e {
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
    let top = 1.0 - 1.0 / digits.0.first().map_or(1.0, Place::radix);
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

    fn dated(i: u64) -> String {
        let day = i * 365 / 1_000_000;
        let (m, d) = (day / 30 + 1, day % 30 + 1);
        format!("2026/{m:02}/{d:02}/part-{i:09}.parquet")
    }

    #[test]
    fn a_split_between_date_folders_lands_among_their_days() {
        let mut a = Alphabet::default();
        (0..200_000).step_by(64).for_each(|i| a.learn(&dated(i)));
        // In March, not in the empty gap between "2026/04" and "2026/04/" (where the midpoint
        // fell while a separator counted "end of key" as a digit, and no split was found).
        let s = halfway(&a, "", &dated(164_384), "2026/04/01/part-00").unwrap();
        assert!(s.as_str() > "2026/03/02" && s.as_str() < "2026/04", "{s}");
        // Distances add up and follow the days: two days are about twice one.
        let one = a.measure(0, &dated(170_000), &dated(167_300));
        let two = a.measure(0, &dated(172_800), &dated(167_300));
        assert!(
            one > 0.0 && (1.5..2.5).contains(&(two / one)),
            "{one} {two}"
        );
    }

    #[test]
    fn a_split_point_outside_the_digits_keeps_its_distance_from_the_keys_below() {
        let a = alpha(&["0123456789abcdef"]);
        // ":" comes right after every key starting with "9": the rest of the "9"s lie between.
        let rest = a.measure(0, ":", "98");
        let whole = a.measure(0, "a", "9");
        assert!(rest > 0.1 * whole && rest < 0.3 * whole, "{rest} {whole}");
    }

    #[test]
    fn common_prefix_is_a_char_boundary() {
        assert_eq!(common_prefix("데이터/a", "데이트"), "데이");
        assert_eq!(common_prefix("abc", "ab"), "ab");
    }
}
