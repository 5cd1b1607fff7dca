//! One dataset's count against its baseline, the thresholds that judge it, and the rule that
//! decides whether training is worth asking for.
//!
//! The *baseline* is the approved snapshot that the last training used: its objects, bytes and
//! fingerprint, and when its count began. A count measures, against it, the objects added or
//! rewritten since (last modified at or after the baseline's count began), their bytes, the
//! objects removed, and whether the content changed at all (the fingerprints differ).

use crate::Timestamp;
use crate::fingerprint::Fingerprint;
use crate::ranges::Sums;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The unit a dataset's threshold is in (`DATASETS`' `:N`, `:N%`, `:SIZE`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Worth training when more than this many objects are new or rewritten.
    Objects(u64),
    /// When new, rewritten and removed objects are more than this share of the trained ones
    /// (with nothing trained yet, any new object).
    Percent(f64),
    /// When the new or rewritten objects hold more than this many bytes.
    Bytes(u64),
}

/// Stored as a plain number for an object threshold (as every snapshot before change
/// detection has it), else `{"percent": p}` or `{"bytes": n}`.
impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Threshold::Objects(n) => s.serialize_u64(*n),
            Threshold::Percent(p) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("percent", p)?;
                m.end()
            }
            Threshold::Bytes(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("bytes", n)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Objects(u64),
            Percent { percent: f64 },
            Bytes { bytes: u64 },
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Objects(n) => Threshold::Objects(n),
            Repr::Percent { percent } => Threshold::Percent(percent),
            Repr::Bytes { bytes } => Threshold::Bytes(bytes),
        })
    }
}

/// Decimal (B, KB, MB, GB, TB; also SI's kB) and binary (KiB, MiB, GiB, TiB) units, spelt
/// exactly so: `1b` or `1mb` is more likely a prefix with a `:` in it than a size.
const UNITS: [(&str, u64); 10] = [
    ("B", 1),
    ("KB", 1_000),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// `digits[.digits]`, as a whole part and its fraction's digits.
fn decimal(text: &str) -> Option<(u128, &str)> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return None,
        None => (text, ""),
    };
    let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !ok(whole) || !ok(frac) || whole.len() > 20 || frac.len() > 18 {
        return None;
    }
    Some((whole.parse().ok()?, frac))
}

impl Threshold {
    /// Reads `N` (objects), `N%` (decimals allowed) or `N<unit>` (decimals allowed, e.g.
    /// `1.5GiB`). The error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected a whole number of objects (500), a percentage (2.5%) or a \
                        size (1MB, 1.5GiB; units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match decimal(p) {
                Some(_) => p
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite())
                    .map(Threshold::Percent)
                    .ok_or_else(|| format!("{t:?}: {expected}")),
                None => Err(format!("{t:?} is not a percentage: {expected}")),
            };
        }
        if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
            return t
                .parse()
                .map(Threshold::Objects)
                .map_err(|_| format!("{t:?} is too large"));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim();
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(if number.contains('.') && unit.is_empty() {
                format!("{t:?}: a number of objects is whole; {expected}")
            } else {
                format!("{t:?}: {expected}")
            });
        };
        let (whole, frac) = decimal(number).ok_or_else(|| format!("{t:?}: {expected}"))?;
        let mut bytes = whole.checked_mul(u128::from(scale));
        if !frac.is_empty() {
            let den = 10u128.pow(frac.len() as u32);
            let f: u128 = frac.parse().unwrap_or(0);
            bytes = bytes.map(|b| b + f * u128::from(scale) / den);
        }
        bytes
            .and_then(|b| u64::try_from(b).ok())
            .map(Threshold::Bytes)
            .ok_or_else(|| format!("{t:?} is too large"))
    }

    /// The threshold as a person reads it: "100 objects", "2.5%", "1.5 GB".
    pub fn text(&self) -> String {
        match self {
            Threshold::Objects(1) => "1 object".to_owned(),
            Threshold::Objects(n) => format!("{n} objects"),
            Threshold::Percent(p) => format!("{p}%"),
            Threshold::Bytes(n) => bytes_text(*n),
        }
    }

    /// The number an object threshold has (the `Threshold` metric): bytes and percentages have
    /// none that compares with `NewObjects`.
    pub fn objects(&self) -> Option<u64> {
        match self {
            Threshold::Objects(n) => Some(*n),
            _ => None,
        }
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::Objects(0)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Bytes in decimal units, as a person reads them: "512 B", "1.2 GB", "640 KB".
pub fn bytes_text(n: u64) -> String {
    const STEPS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut step = 0;
    while value >= 999.5 && step < STEPS.len() - 1 {
        value /= 1000.0;
        step += 1;
    }
    if value >= 100.0 {
        format!("{value:.0} {}", STEPS[step])
    } else {
        format!("{value:.1} {}", STEPS[step])
    }
}

/// The trained baseline of a dataset: the snapshot the last training used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Baseline {
    pub objects: u64,
    pub bytes: Option<u64>,
    pub fingerprint: Option<Fingerprint>,
    /// When that snapshot's count began. `None`: nothing trained yet, or a baseline kept by a
    /// version before change detection (it is then compared by count).
    pub snapshot_at: Option<Timestamp>,
}

impl Baseline {
    /// The time a count compares dates with: an object last modified at or after it is new.
    /// `None` means every object is new (nothing trained) or dates cannot tell (a baseline
    /// without a snapshot time).
    pub fn since(&self) -> Option<Timestamp> {
        self.snapshot_at
    }

    /// A baseline kept before change detection: trained objects, but no snapshot time.
    pub fn by_count(&self) -> bool {
        self.objects > 0 && self.snapshot_at.is_none()
    }
}

/// One dataset's counts at one moment: what seek saw, against what was last trained on, and
/// the threshold that applies to it. A request's snapshot is a list of these.
///
/// Snapshots stored before change detection have only `name`, `prefix`, `seeked`, `trained`
/// and a number `threshold`; every other field defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub name: String,
    /// Where the dataset lives: a prefix in `DATA_BUCKET`, or `s3://bucket/prefix`.
    pub prefix: String,
    /// Objects seen.
    pub seeked: u64,
    /// Objects in the baseline.
    pub trained: u64,
    pub threshold: Threshold,
    /// Bytes seen.
    #[serde(default)]
    pub bytes: u64,
    /// Objects added or rewritten since the baseline; `None` in snapshots from before change
    /// detection (then `seeked - trained`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_objects: Option<u64>,
    #[serde(default)]
    pub new_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// When this count began: the snapshot's time, should it be approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_at: Option<Timestamp>,
    /// The baseline's bytes, fingerprint and snapshot time, as this count compared with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_fingerprint: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_at: Option<Timestamp>,
}

impl Count {
    /// Objects added or rewritten since the baseline.
    pub fn new_objects(&self) -> u64 {
        self.new_objects
            .unwrap_or_else(|| self.seeked.saturating_sub(self.trained))
    }

    /// Objects of the baseline that are gone (a rewritten object counts as new and as removed):
    /// `trained − (seeked − new)`, never below 0.
    pub fn removed(&self) -> u64 {
        self.trained
            .saturating_sub(self.seeked.saturating_sub(self.new_objects()))
    }

    /// Whether the content differs from the baseline's at all (both fingerprints known).
    pub fn changed(&self) -> bool {
        matches!((self.fingerprint, self.trained_fingerprint), (Some(a), Some(b)) if a != b)
    }

    /// Changed, though nothing is new and nothing removed: objects came in with old dates
    /// (replication, a restore). Reported; it crosses no threshold by itself.
    pub fn old_dated_change(&self) -> bool {
        self.changed() && self.new_objects() == 0 && self.removed() == 0
    }

    /// Whether this count compared with a baseline kept before change detection, by count.
    pub fn by_count(&self) -> bool {
        self.counted_at.is_some() && self.trained > 0 && self.baseline_at.is_none()
    }

    /// Whether this dataset crossed its threshold.
    pub fn worth_training(&self) -> bool {
        let new = self.new_objects();
        match self.threshold {
            Threshold::Objects(n) => new > n,
            Threshold::Percent(_) if self.trained == 0 => new > 0,
            Threshold::Percent(p) => {
                let moved = new.saturating_add(self.removed()) as f64;
                moved * 100.0 / self.trained as f64 > p
            }
            Threshold::Bytes(n) => self.new_bytes > n,
        }
    }

    /// The baseline this count becomes once its training starts.
    pub fn as_baseline(&self) -> Baseline {
        Baseline {
            objects: self.seeked,
            bytes: self.counted_at.map(|_| self.bytes),
            fingerprint: self.fingerprint,
            snapshot_at: self.counted_at,
        }
    }
}

/// A dataset as it is configured: what a count of it is compared and judged by.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub threshold: Threshold,
}

/// What a count found (`seen`, listed from `counted_at` on with the baseline's `since`)
/// against `baseline`. Equal fingerprints mean nothing changed, whatever the dates say (an
/// object written while the baseline was being counted is in it already). A baseline without a
/// snapshot time (kept before change detection) is compared by count, as then: the new bytes
/// are estimated at the average object's size.
pub fn measure(d: Judged<'_>, seen: &Sums, counted_at: Timestamp, baseline: &Baseline) -> Count {
    let unchanged = baseline.fingerprint == Some(seen.fingerprint);
    let (new_objects, new_bytes) = if unchanged {
        (0, 0)
    } else if baseline.by_count() {
        let new = seen.objects.saturating_sub(baseline.objects);
        let average = seen.bytes.checked_div(seen.objects).unwrap_or(0);
        (new, new.saturating_mul(average))
    } else {
        (seen.new_objects, seen.new_bytes)
    };
    Count {
        name: d.name.to_owned(),
        prefix: d.prefix.to_owned(),
        seeked: seen.objects,
        trained: baseline.objects,
        threshold: d.threshold,
        bytes: seen.bytes,
        new_objects: Some(new_objects),
        new_bytes,
        fingerprint: Some(seen.fingerprint),
        counted_at: Some(counted_at),
        trained_bytes: baseline.bytes,
        trained_fingerprint: baseline.fingerprint,
        baseline_at: baseline.snapshot_at,
    }
}

/// What seek does with a set of counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At least one dataset crossed its threshold: ask whether to train.
    Ask,
    /// Nothing crossed: post "No need to train".
    NoNeed,
}

pub fn verdict(counts: &[Count]) -> Verdict {
    if counts.iter().any(Count::worth_training) {
        Verdict::Ask
    } else {
        Verdict::NoNeed
    }
}

/// The earliest count start among a snapshot's datasets: the approved data's time
/// (`${snapshot_time}`). `None` for a snapshot from before change detection.
pub fn snapshot_time(snapshot: &[Count]) -> Option<Timestamp> {
    snapshot.iter().filter_map(|c| c.counted_at).min()
}

#[cfg(test)]
mod tests;
