//! Where to split a key range: pure arithmetic over keys, compared as S3 orders them (by their
//! UTF-8 bytes, which is also code point order, and Rust's `str` order).
//!
//! A key is read as a fraction in a number system whose digits are the characters seen so far
//! in the prefix (plus "end of key", the smallest digit). Spacing digits by the characters that
//! actually occur, not by code point, keeps midpoints meaningful for decimal counters, hex
//! hashes or dates, where code point midpoints would land far outside the keys.

use std::collections::BTreeSet;

/// How many digits of a key take part in a position (f64 keeps about 53 bits).
const DIGITS: usize = 12;

/// Whether S3 accepts `c` in `StartAfter` (it answers 400 for code points XML 1.0 forbids).
pub fn xml_legal(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// The characters seen in a prefix's keys: the digits of its positions.
#[derive(Debug, Clone, Default)]
pub struct Alphabet(BTreeSet<char>);

impl Alphabet {
    /// Adds the characters of `key` (only XML-legal ones become digits).
    pub fn learn(&mut self, key: &str) {
        for c in key.chars().filter(|c| xml_legal(*c)) {
            self.0.insert(c);
        }
    }

    fn digits<'a>(&self, extra: impl IntoIterator<Item = &'a str>) -> Vec<char> {
        let mut set = self.0.clone();
        for s in extra {
            set.extend(s.chars().filter(|c| xml_legal(*c)));
        }
        set.into_iter().collect()
    }
}

struct Digits(Vec<char>);

impl Digits {
    fn radix(&self) -> f64 {
        (self.0.len() + 1) as f64
    }

    /// `suffix` as a fraction in [0, 1): "end of key" is digit 0.
    fn pos(&self, suffix: &str) -> f64 {
        let radix = self.radix();
        let mut scale = 1.0 / radix;
        let mut x = 0.0;
        for c in suffix.chars().take(DIGITS) {
            let d = match self.0.binary_search(&c) {
                Ok(i) => i + 1,
                // Not a digit (XML-illegal): place it between its neighbours.
                Err(i) => i,
            };
            x += d as f64 * scale;
            scale /= radix;
        }
        x
    }

    /// The shortest key suffix at about `x`, never ending in the "end" digit.
    fn key(&self, x: f64) -> String {
        let radix = self.radix();
        let mut x = x.clamp(0.0, 1.0);
        let mut digits = Vec::with_capacity(DIGITS);
        for _ in 0..DIGITS {
            x *= radix;
            let d = (x.floor() as usize).min(self.0.len());
            x -= d as f64;
            digits.push(d);
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        // An inner "end" digit cannot be written: use the smallest character instead.
        digits.iter().map(|&d| self.0[d.max(1) - 1]).collect()
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
    let base = common_prefix(cursor, hi);
    let (c, h) = (&cursor[base.len()..], &hi[base.len()..]);
    let digits = Digits(alphabet.digits([c, h]));
    let mid = (digits.pos(c) + digits.pos(h)) / 2.0;
    let s = format!("{base}{}", digits.key(mid));
    acceptable(&s, cursor, Some(hi), prefix).then_some(s)
}

/// For a range open to the end of the prefix: a split point as far past `cursor` as `cursor`
/// is past `first` (the prefix's first key), so an open tail doubles its known extent per
/// step and a large prefix fans out in a few round trips.
pub fn ahead(alphabet: &Alphabet, prefix: &str, first: &str, cursor: &str) -> Option<String> {
    let base = common_prefix(first, cursor);
    let (f, c) = (&first[base.len()..], &cursor[base.len()..]);
    let digits = Digits(alphabet.digits([f, c]));
    let (pf, pc) = (digits.pos(f), digits.pos(c));
    let target = pc + (pc - pf).max(0.0);
    let s = if target < 1.0 - 1.0 / digits.radix() {
        format!("{base}{}", digits.key(target))
    } else {
        after_all_starting_with(base, prefix)?
    };
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
    let digits = Digits(alphabet.digits([f, c, h]));
    let (pf, pc, ph) = (digits.pos(f), digits.pos(c), digits.pos(h));
    let span = pc - pf;
    if span > 0.0 {
        ((ph - pc) / span).max(0.0)
    } else {
        // The page's keys are closer than the digits resolve: assume plenty left.
        1.0e6
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
        // ... but never past the end of the prefix itself.
        assert_eq!(ahead(&a, "h/", "h/a0", "h/ff"), None);
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
