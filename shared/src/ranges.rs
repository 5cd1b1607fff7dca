//! Counting one prefix as key ranges listed concurrently, exactly once.
//!
//! A range `(lo, hi]` is listed from `StartAfter = lo` (the first range sends none, so a key
//! equal to the prefix is kept), paged by continuation token, and a key counts only while it is
//! `<= hi`. An idle worker takes the upper part of the range with the most estimated work left;
//! the owner's `hi` is lowered under the same lock that applies pages, and only above the last
//! key the owner has counted, so a page fetched under an older, wider bound is cut at the new
//! one. When every range is done, the ranges must chain from the first to the last.

use crate::keyspace::{self, Alphabet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

mod gate;
mod keys;
pub use gate::{Gate, PAGES_PER_VCPU_SECOND, Pass, S3_PAGES_PER_PREFIX, Sizing};
pub use keys::{Keys, Meta, Sums};

/// A range is split only if about this many pages are left in it: each range ends in a
/// partly used page, so a split costs about one request; below this it costs more than the
/// time it saves. Split points leave the owner's page in flight whole (see
/// [`keyspace::beyond_next_page`]), so each side keeps at least 1.5 pages.
const MIN_PAGES_TO_SPLIT: f64 = 4.0;
/// Past the budget of ranges (see [`steal`]) a range is still split if about this many pages
/// are left in it: a split then costs at most an eighth of a request per page it spreads.
/// Held to the budget, the open tail of a hash space, which steps a hex digit at a time, left
/// its last digits (62 pages each at 2 x 1M keys) to one worker each: 50 ms a page at
/// 1,769 MB, 12 s where 2.6 s will do.
const MIN_PAGES_PAST_BUDGET: f64 = 8.0;
/// Ranges per request in flight allowed from the start (see [`steal`]), for the first
/// [`RANGES_FOR_TWO_PER_REQUEST`] requests of a prefix's share; one per request beyond.
const RANGES_PER_WORKER: usize = 2;
const RANGES_FOR_TWO_PER_REQUEST: usize = 32;
/// One more range allowed for every this many pages listed (see [`steal`]).
const PAGES_PER_SPLIT: u64 = 10;

/// What counting one prefix found, and what it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// The objects under the prefix (folder markers, keys ending in `/`, are not objects):
    /// how many, their bytes, the new ones since the baseline, their fingerprint.
    #[serde(flatten)]
    pub sums: Sums,
    /// ListObjectsV2 pages received.
    pub pages: u64,
    /// ListObjectsV2 requests sent (the SDK's own retries of one request not included).
    pub list_requests: u64,
    /// Key ranges the prefix was listed as.
    pub ranges: u64,
}

/// One ListObjectsV2 page: its keys in S3's order, and the token for the next page if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub keys: Keys,
    pub next: Option<String>,
}

/// Why a page could not be listed (already retried by whoever lists).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ListError(pub String);

/// One ListObjectsV2 request, whatever sends it.
pub trait Lister: Send + Sync + 'static {
    fn page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
    ) -> impl Future<Output = Result<Page, ListError>> + Send;
}

/// Why a prefix's ranges did not add up to a count.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RangeError {
    #[error("listing key range {range}: {source}")]
    List {
        range: String,
        #[source]
        source: ListError,
    },
    #[error("the listed key ranges do not chain: {0}")]
    Gap(String),
}

/// Live totals of one count, read by the progress log and the deadline check.
#[derive(Debug, Default)]
pub struct Progress {
    pub objects: AtomicU64,
    pub pages: AtomicU64,
    pub open_ranges: AtomicU64,
}

/// Called once per counted key (tests check exactly-once coverage with it).
pub type Observer = Arc<dyn Fn(&str) + Send + Sync>;

/// How to count a prefix.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Workers listing this prefix at once (each holds one range), at most: ranges beyond the
    /// gate's limit are not split off (see [`steal`]).
    pub workers: usize,
    /// Whether ranges may be split (not for unsorted listings: S3 Express directory buckets).
    pub split: bool,
}

#[derive(Debug)]
struct Range {
    lo: Option<String>,
    hi: Option<String>,
    /// First and last key counted from the latest page: where the owner's next page ends,
    /// for a split point that leaves it whole.
    first: Option<String>,
    last: Option<String>,
    /// Keys listed in this range so far, and the distance they cover from its first key
    /// ([`keyspace::Alphabet::measure`]): the range's own key density. Not from `lo`: a split
    /// point in a gap ("day 37" of January) would make the month after it look sparse.
    listed_keys: u64,
    listed_measure: f64,
    /// The distance from the last key listed (or `lo`) to `hi`; infinite while `hi` is open.
    ahead: f64,
    done: bool,
}

impl Range {
    fn new(lo: Option<String>, hi: Option<String>) -> Self {
        Self {
            lo,
            hi,
            first: None,
            last: None,
            listed_keys: 0,
            listed_measure: 0.0,
            ahead: f64::INFINITY,
            done: false,
        }
    }
}

impl Range {
    fn label(&self) -> String {
        format!(
            "({}, {}]",
            self.lo
                .as_deref()
                .map_or("start".into(), |k| format!("{k:?}")),
            self.hi
                .as_deref()
                .map_or("end".into(), |k| format!("{k:?}"))
        )
    }
}

#[derive(Debug, Default)]
struct State {
    ranges: Vec<Range>,
    alphabet: Alphabet,
    /// The prefix's first key: an open tail extends itself by its distance from here.
    first_key: Option<String>,
    /// Keys listed, over all ranges, and the distance settled: from each range's start to its
    /// last key listed, or to its end once done, gaps and empty ranges included. Their ratio is
    /// the prefix's key density.
    listed_keys: u64,
    covered: f64,
    /// The most keys a page has held (1,000 on S3).
    page_len: usize,
    tally: Tally,
    failed: Option<RangeError>,
}

impl State {
    /// About how many pages are left in `r`: its distance still ahead times a key density
    /// that blends the range's own (keys over distance listed in it) with the prefix's, the
    /// prefix's weighing as much as one page of the range's own. A single page says little
    /// where keys bunch (a date folder's page covers a sliver of its day, another page spans
    /// two days): estimated from the last page alone, date folders were misjudged by orders of
    /// magnitude both ways, so splits went to ranges of one page while ranges of 90 pages
    /// waited for the budget (paused-clock cost test, 1M dated keys: 3.30 s, now see there).
    /// The prefix's density is over the stretch settled, not the pages' own spans: a count's
    /// first pages all lie inside one day's part numbers, and the density they alone give is
    /// a million times that across days, so splits halved the rest of a day's part numbers
    /// (empty) again and again while months waited (two prefixes of 1M dated keys at 200 ms:
    /// 9.8 s, 282 of 506 ranges empty; now 4.6 s, see `two_far_prefixes_...`).
    fn pages_left(&self, r: &Range) -> f64 {
        if !r.ahead.is_finite() {
            return f64::INFINITY;
        }
        if self.covered <= 0.0 {
            // No distance yet (pages of one key, or keys alike beyond reading): no estimate.
            return if r.ahead > 0.0 { 1.0e6 } else { 0.0 };
        }
        let page = self.page_len.max(1) as f64;
        let prefix_density = self.listed_keys as f64 / self.covered;
        let density = (r.listed_keys as f64 + page) / (r.listed_measure + page / prefix_density);
        r.ahead * density / page
    }
}

struct Shared<L> {
    lister: Arc<L>,
    prefix: String,
    split: bool,
    workers: usize,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
    state: Mutex<State>,
    changed: Notify,
}

impl<L> Shared<L> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a worker panicked; its state is still consistent per page.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts the objects under `prefix`, calling `seen` once per counted key (for tests).
pub async fn count_prefix<L: Lister>(
    lister: Arc<L>,
    prefix: &str,
    plan: &Plan,
    gate: Arc<Gate>,
    progress: Arc<Progress>,
    seen: Option<Observer>,
) -> Result<(Tally, Vec<String>), RangeError> {
    let shared = Arc::new(Shared {
        lister,
        prefix: prefix.to_owned(),
        split: plan.split,
        workers: plan.workers.max(1),
        gate,
        progress,
        state: Mutex::new(State {
            ranges: vec![Range::new(None, None)],
            ..State::default()
        }),
        changed: Notify::new(),
    });
    shared.progress.open_ranges.fetch_add(1, Ordering::Relaxed);
    let workers = if plan.split { plan.workers.max(1) } else { 1 };
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (shared, seen) = (shared.clone(), seen.clone());
        set.spawn(worker(shared, (w == 0).then_some(0), seen));
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            let mut st = shared.lock();
            st.failed
                .get_or_insert(RangeError::Gap(format!("a listing worker stopped: {e}")));
        }
    }
    let st = shared.lock();
    if let Some(e) = &st.failed {
        return Err(e.clone());
    }
    let boundaries = check_chain(&st.ranges)?;
    let mut tally = st.tally;
    tally.ranges = st.ranges.len() as u64;
    Ok((tally, boundaries))
}

/// The finished ranges, sorted, must go from the prefix's start to its end with no gap or
/// overlap. Returns the split points.
fn check_chain(ranges: &[Range]) -> Result<Vec<String>, RangeError> {
    let mut sorted: Vec<&Range> = ranges.iter().collect();
    sorted.sort_by(|a, b| a.lo.cmp(&b.lo));
    let mut reach: Option<&Option<String>> = None;
    for r in &sorted {
        if !r.done {
            return Err(RangeError::Gap(format!(
                "range {} did not finish",
                r.label()
            )));
        }
        match reach {
            None if r.lo.is_some() => {
                return Err(RangeError::Gap(format!(
                    "nothing covers up to {}",
                    r.label()
                )));
            }
            Some(end) if *end != r.lo || end.is_none() => {
                return Err(RangeError::Gap(format!(
                    "range {} does not start where the previous one ended",
                    r.label()
                )));
            }
            _ => {}
        }
        reach = Some(&r.hi);
    }
    if reach.is_some_and(|end| end.is_some()) {
        return Err(RangeError::Gap(
            "the last range stops before the end".into(),
        ));
    }
    Ok(sorted.iter().filter_map(|r| r.lo.clone()).collect())
}

async fn worker<L: Lister>(
    shared: Arc<Shared<L>>,
    mut mine: Option<usize>,
    seen: Option<Observer>,
) {
    loop {
        let idx = match mine.take() {
            Some(i) => i,
            None => {
                let notified = shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match next_range(&shared) {
                    Next::Stop => return,
                    Next::Range(i) => {
                        // There may be more to split: the next idle worker looks.
                        shared.changed.notify_one();
                        i
                    }
                    Next::Wait => {
                        notified.await;
                        continue;
                    }
                }
            }
        };
        if !list_range(&shared, idx, seen.as_deref()).await {
            return;
        }
    }
}

enum Next {
    Range(usize),
    Wait,
    Stop,
}

fn next_range<L>(shared: &Shared<L>) -> Next {
    let mut st = shared.lock();
    if st.failed.is_some() || st.ranges.iter().all(|r| r.done) {
        return Next::Stop;
    }
    // Ranges follow this prefix's share of the requests the gate lets through now, not the
    // workers there are: more ranges than requests in flight only cost their partly used
    // last pages (date folders at 1 vCPU, 2 x 1M keys: 2,063 requests per M keys when each
    // prefix took twice the whole limit, see docs/measured.md).
    let share = shared.gate.share().min(shared.workers);
    let max_ranges = share + share.min(RANGES_FOR_TWO_PER_REQUEST) * (RANGES_PER_WORKER - 1);
    match steal(&mut st, &shared.prefix, shared.split, max_ranges) {
        Some(i) => {
            shared.progress.open_ranges.fetch_add(1, Ordering::Relaxed);
            Next::Range(i)
        }
        None => Next::Wait,
    }
}

/// Lists one range to its end. False when the count has failed.
async fn list_range<L: Lister>(
    shared: &Shared<L>,
    idx: usize,
    seen: Option<&(dyn Fn(&str) + Send + Sync)>,
) -> bool {
    let start_after = shared.lock().ranges[idx].lo.clone();
    let mut token: Option<String> = None;
    loop {
        let page = {
            let Some(pass) = shared.gate.enter().await else {
                return false;
            };
            let after = if token.is_none() {
                start_after.as_deref()
            } else {
                None
            };
            let page = shared
                .lister
                .page(&shared.prefix, after, token.as_deref())
                .await;
            if page.is_ok() {
                pass.answered();
            }
            page
        };
        let mut st = shared.lock();
        if st.failed.is_some() {
            return false;
        }
        st.tally.list_requests += 1;
        let page = match page {
            Ok(p) => p,
            Err(source) => {
                let range = st.ranges[idx].label();
                st.failed = Some(RangeError::List { range, source });
                drop(st);
                shared.changed.notify_waiters();
                return false;
            }
        };
        let done = apply(&mut st, idx, &shared.prefix, &page, seen, &shared.progress);
        let over = done && st.ranges.iter().all(|r| r.done);
        drop(st);
        // A page moves the estimates and the budget: one idle worker looks for a split (and
        // wakes the next if it found one, see `worker`). A finished range's worker looks
        // itself; only the count's end wakes every idle worker, to stop. Waking them all at
        // every page cost a second worker thread about a sixth more CPU per key in wake-ups and
        // lock handovers; waking them all at every finished range had each of 442 idle workers
        // scan every range for nothing, a thousand times a count (docs/measured.md).
        if over {
            shared.changed.notify_waiters();
        } else if !done {
            shared.changed.notify_one();
        }
        if done {
            shared.progress.open_ranges.fetch_sub(1, Ordering::Relaxed);
            return true;
        }
        token = page.next;
    }
}

/// Counts a page's keys up to the range's current upper bound. True when the range is done.
fn apply(
    st: &mut State,
    idx: usize,
    prefix: &str,
    page: &Page,
    seen: Option<&(dyn Fn(&str) + Send + Sync)>,
    progress: &Progress,
) -> bool {
    // Usually the whole page is within the range's bound, and what counting needs is at hand
    // in the page (see keys.rs); keys are read one by one only where the bound cuts the page
    // (it was lowered while the page was in flight), or a test watches every key.
    let hi = st.ranges[idx].hi.as_deref();
    let whole = match (hi, page.keys.last()) {
        (Some(hi), Some(last)) => last <= hi,
        _ => true,
    };
    let (mut within, mut sums) = (page.keys.len(), page.keys.sums());
    let mut last = page.keys.last().unwrap_or_default().to_owned();
    if !whole || seen.is_some() || st.first_key.is_none() {
        (within, sums) = (0, Sums::default());
        let mut cursor = page.keys.cursor();
        while let Some((k, meta)) = cursor.next_object() {
            if hi.is_some_and(|hi| k > hi) {
                break;
            }
            if !k.ends_with('/') {
                sums.add(&meta);
                if let Some(seen) = seen {
                    seen(k);
                }
            }
            // Not a key equal to the prefix itself: as an "end of key" digit it would stand a
            // whole digit below `prefix0...`, and an open tail would step past all of
            // `prefix0...` at once.
            if st.first_key.is_none() && k.len() > prefix.len() {
                st.first_key = Some(k.to_owned());
            }
            last.clear();
            last.push_str(k);
            within += 1;
        }
    }
    for k in page.keys.samples(within) {
        st.alphabet.learn(k);
    }
    let first = page.keys.samples(within).next().map(str::to_owned);
    if first.is_some() {
        st.alphabet.learn(&last);
    }
    st.tally.sums.merge(&sums);
    st.tally.pages += 1;
    progress.objects.fetch_add(sums.objects, Ordering::Relaxed);
    progress.pages.fetch_add(1, Ordering::Relaxed);
    st.page_len = st.page_len.max(page.keys.len());
    let from = prefix.chars().count();
    let done = within < page.keys.len() || page.next.is_none();
    let range = &mut st.ranges[idx];
    // The stretch of key space this page settled: from where the range stood (its last key,
    // else its split point) to the page's last key, or to the range's bound once it is done,
    // gaps and all (an empty range settles its whole stretch with no key in it).
    let start = range
        .last
        .as_deref()
        .or(range.lo.as_deref())
        .or(first.as_deref());
    let end = match (done, range.hi.as_deref()) {
        (true, Some(hi)) => Some(hi),
        _ => first.is_some().then_some(last.as_str()),
    };
    if let (Some(start), Some(end)) = (start, end) {
        st.covered += st.alphabet.measure(from, end, start).max(0.0);
    }
    if let Some(first) = first {
        let since = range.last.as_deref().unwrap_or(&first);
        range.listed_keys += within as u64;
        range.listed_measure += st.alphabet.measure(from, &last, since).max(0.0);
        st.listed_keys += within as u64;
        range.ahead = range
            .hi
            .as_deref()
            .map_or(f64::INFINITY, |hi| st.alphabet.measure(from, hi, &last));
        range.first = Some(first);
        range.last = Some(last);
    }
    range.done = done;
    done
}

/// Gives the caller the upper part of the range with the most estimated work left.
fn steal(st: &mut State, prefix: &str, split: bool, max_ranges: usize) -> Option<usize> {
    if !split {
        return None;
    }
    // A budget of ranges: every range ends in one partly used page, so a split costs about
    // a request. Splits are allowed up to two per worker, plus one per PAGES_PER_SPLIT pages
    // listed, so splitting costs a bounded share of the listing whatever the layout does to
    // the estimates; past it, only ranges with MIN_PAGES_PAST_BUDGET pages left are split.
    // A range that turned out empty cost its one request and holds no work: it is counted
    // in a budget of its own, a quarter of the pages listed (split points inside a date
    // folder's part numbers land where no key is, and counting those against the main budget
    // left months of keys to one worker each at the end).
    let pages = st.tally.pages as usize;
    let empty = st
        .ranges
        .iter()
        .filter(|r| r.done && r.listed_keys == 0)
        .count();
    let budget = max_ranges + pages / PAGES_PER_SPLIT as usize + empty.min(pages / 4);
    let min_left = if st.ranges.len() < budget {
        MIN_PAGES_TO_SPLIT
    } else {
        MIN_PAGES_PAST_BUDGET
    };
    let mut candidates: Vec<(f64, usize)> = st
        .ranges
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.done)
        .map(|(i, r)| (st.pages_left(r), i))
        .filter(|(left, _)| *left >= min_left)
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, i) in candidates {
        let r = &st.ranges[i];
        let point = match (&r.hi, &r.last, &st.first_key) {
            (None, Some(last), Some(first)) => keyspace::ahead(&st.alphabet, prefix, first, last),
            (None, _, _) => None,
            (Some(hi), Some(last), _) => {
                keyspace::beyond_next_page(&st.alphabet, prefix, r.first.as_deref(), last, hi)
            }
            (Some(hi), None, _) => {
                let cursor = r.lo.as_deref().unwrap_or(prefix);
                keyspace::halfway(&st.alphabet, prefix, cursor, hi)
            }
        };
        let Some(point) = point else { continue };
        let from = prefix.chars().count();
        let r = &st.ranges[i];
        let cursor = r.last.as_deref().or(r.lo.as_deref()).unwrap_or(prefix);
        let owner_ahead = st.alphabet.measure(from, &point, cursor).max(0.0);
        let mut taken = Range::new(Some(point.clone()), None);
        if let Some(hi) = &r.hi {
            taken.ahead = st.alphabet.measure(from, hi, &point).max(0.0);
        }
        let r = &mut st.ranges[i];
        taken.hi = r.hi.replace(point);
        r.ahead = owner_ahead;
        st.ranges.push(taken);
        return Some(st.ranges.len() - 1);
    }
    None
}

#[cfg(test)]
mod tests;
