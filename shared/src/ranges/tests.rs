//! Exactly-once coverage, checked against an in-memory lister over sorted keys.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

mod pace;

/// ListObjectsV2 over a sorted list of keys: pages of `page_size`, tokens are indexes.
struct Memory {
    keys: Vec<String>,
    page_size: usize,
    fail_at: Option<usize>,
    /// Each answer takes this long (in tokio's clock, paused in the cost test).
    latency: std::time::Duration,
}

impl Lister for Memory {
    async fn page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
    ) -> Result<Page, ListError> {
        // Let other workers run between request and answer, as the network would.
        for _ in 0..(self.keys.len() + token.map_or(0, str::len)) % 4 {
            tokio::task::yield_now().await;
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let from = match token {
            Some(t) => t.parse().map_err(|_| ListError("bad token".into()))?,
            None => self
                .keys
                .partition_point(|k| start_after.is_some_and(|a| k.as_str() <= a)),
        };
        if self.fail_at.is_some_and(|f| from > f) {
            return Err(ListError("503 SlowDown, retries exhausted".into()));
        }
        let mut keys = Keys::default();
        let mut i = from;
        while i < self.keys.len() && keys.len() < self.page_size {
            if self.keys[i].starts_with(prefix) {
                keys.push_object(&self.keys[i], &meta_of(&self.keys[i]));
            }
            i += 1;
        }
        let more = self.keys[i..].iter().any(|k| k.starts_with(prefix));
        Ok(Page {
            keys,
            next: more.then(|| i.to_string()),
        })
    }
}

/// What the listing says about each key's object: a size, newness and fingerprint term of its
/// own, so that a sum that skipped or doubled any object, or mixed two up, would differ.
fn meta_of(key: &str) -> Meta {
    let h = crate::fingerprint::hash(key.as_bytes(), 7);
    let size = h % 100_000;
    Meta {
        size,
        new: h & (1 << 40) != 0,
        term: crate::fingerprint::term(key, b"&quot;etag&quot;", size),
    }
}

/// The sums a count must come to: over every object under `prefix`, in any order.
fn expected_sums(keys: &[String], prefix: &str) -> Sums {
    let mut unique = keys.to_vec();
    unique.sort();
    unique.dedup();
    let mut sums = Sums::default();
    for k in unique
        .iter()
        .filter(|k| k.starts_with(prefix) && !k.ends_with('/'))
    {
        sums.add(&meta_of(k));
    }
    sums
}

type Seen = Arc<Mutex<BTreeMap<String, u32>>>;

fn run(
    keys: &[String],
    prefix: &str,
    page_size: usize,
    workers: usize,
) -> (Tally, Vec<String>, Seen) {
    run_with(
        keys,
        prefix,
        page_size,
        workers,
        std::time::Duration::ZERO,
        true,
    )
}

/// A runtime on tokio's paused clock: answers' latency costs no wall time.
fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// [`run`] with each answer taking `latency` in tokio's paused clock; `watch` false counts
/// without watching each key (a range then reads a page's keys one by one only where its bound
/// cuts the page).
fn run_with(
    keys: &[String],
    prefix: &str,
    page_size: usize,
    workers: usize,
    latency: std::time::Duration,
    watch: bool,
) -> (Tally, Vec<String>, Seen) {
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    let lister = Arc::new(Memory {
        keys: sorted,
        page_size,
        fail_at: None,
        latency,
    });
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let hook: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |k: &str| {
        *record.lock().unwrap().entry(k.to_owned()).or_default() += 1;
    });
    let rt = paused();
    let (tally, bounds) = rt
        .block_on(count_prefix(
            lister,
            prefix,
            &Plan {
                workers,
                split: true,
            },
            Arc::new(Gate::fixed(workers)),
            Arc::default(),
            watch.then_some(hook),
        ))
        .unwrap();
    (tally, bounds, seen)
}

fn check(keys: &[String], prefix: &str, page_size: usize, workers: usize) -> Vec<String> {
    let (tally, bounds, seen) = run(keys, prefix, page_size, workers);
    let mut want: BTreeMap<String, u32> = BTreeMap::new();
    for k in keys {
        if k.starts_with(prefix) && !k.ends_with('/') {
            want.insert(k.clone(), 1);
        }
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen, want,
        "each object exactly once (ranges split at {bounds:?})"
    );
    assert_eq!(tally.sums.objects, want.len() as u64);
    assert_eq!(tally.ranges, bounds.len() as u64 + 1);
    // The bytes, the new objects and their bytes, and the fingerprint come out the same however
    // the ranges split and in whatever order they finish.
    let sums = expected_sums(keys, prefix);
    assert_eq!(tally.sums, sums, "watched (ranges split at {bounds:?})");
    let zero = std::time::Duration::ZERO;
    let (unwatched, unwatched_bounds, _) = run_with(keys, prefix, page_size, workers, zero, false);
    assert_eq!(
        unwatched.sums.objects,
        want.len() as u64,
        "counted unwatched"
    );
    assert_eq!(
        unwatched.sums, sums,
        "unwatched (ranges split at {unwatched_bounds:?})"
    );
    bounds
}

fn key_chars() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec!['0', '1', '7', '9', 'a', 'f', 'z', 'A', '_', '.', '-']),
        2 => prop::sample::select(vec!['/', ' ', '+', '%', '~', '\t']),
        2 => prop::sample::select(vec!['ü', 'é', '데', '이', '터', '\u{D7FF}', '\u{E000}', '\u{FFFD}', '😀', '\u{10FFFF}']),
    ]
}

fn keys_under(prefix: &'static str) -> impl Strategy<Value = Vec<String>> {
    let key = prop::collection::vec(key_chars(), 0..7).prop_map(move |cs| {
        let mut k = prefix.to_owned();
        k.extend(cs);
        k
    });
    // Skew: one long run of near-identical keys besides the random ones.
    let run = (
        0usize..300,
        prop::sample::select(vec!["img_", "2026/11/", "x"]),
    )
        .prop_map(move |(n, stem)| {
            (0..n)
                .map(|i| format!("{prefix}{stem}{i:06}.jpg"))
                .collect::<Vec<_>>()
        });
    let other = prop::collection::vec(
        prop::collection::vec(key_chars(), 0..5).prop_map(|cs| cs.into_iter().collect::<String>()),
        0..20,
    );
    (prop::collection::vec(key, 0..200), run, other).prop_map(|(mut a, b, c)| {
        a.extend(b);
        a.extend(c);
        a
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_object_counts_exactly_once(
        (prefix, keys) in prop::sample::select(vec!["", "p/", "데이터/", "a"])
            .prop_flat_map(|p| (Just(p), keys_under(p))),
        page_size in 1usize..9,
        workers in 1usize..9,
    ) {
        let bounds = check(&keys, prefix, page_size, workers);
        // Again, with keys placed exactly on the split points of the first run.
        let mut on_points = keys.clone();
        on_points.extend(bounds.iter().cloned());
        on_points.extend(bounds.iter().map(|b| format!("{b}/")));
        check(&on_points, prefix, page_size, workers);
    }
}

#[test]
fn empty_and_one_key_prefixes() {
    for keys in [
        vec![],
        vec!["p/".to_string()],
        vec!["p/a".to_string()],
        vec!["p/x/".into()],
    ] {
        check(&keys, "p/", 1, 4);
    }
}

#[test]
fn structureless_key_spaces_spread_over_workers() {
    let layouts: Vec<Vec<String>> = vec![
        (0..5000).map(|i| format!("d/img_{i:09}.jpg")).collect(),
        (0..5000u64)
            .map(|i| format!("d/{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect(),
        (0..5000)
            .map(|i| {
                format!(
                    "d/2026/{:02}/{:02}/part-{i:06}.parquet",
                    i / 500 + 1,
                    i % 28 + 1
                )
            })
            .collect(),
    ];
    for keys in layouts {
        let (tally, bounds, _) = run_with(
            &keys,
            "d/",
            50,
            16,
            std::time::Duration::from_millis(30),
            true,
        );
        assert_eq!(tally.sums.objects, 5000);
        assert!(
            bounds.len() + 1 >= 10,
            "only {} ranges for {:?}",
            bounds.len() + 1,
            &keys[..2]
        );
        // Splitting should not cost much more than listing: at most 1.5 requests per page.
        assert!(tally.list_requests <= 150, "{tally:?}");
    }
}

#[test]
fn a_range_that_fails_fails_the_count_and_names_the_range() {
    let keys: Vec<String> = (0..500).map(|i| format!("k{i:04}")).collect();
    let lister = Arc::new(Memory {
        keys,
        page_size: 10,
        fail_at: Some(250),
        latency: std::time::Duration::ZERO,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt
        .block_on(count_prefix(
            lister,
            "",
            &Plan {
                workers: 4,
                split: true,
            },
            Arc::new(Gate::fixed(4)),
            Arc::default(),
            None,
        ))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("listing key range (") && text.contains("SlowDown"),
        "{text}"
    );
}

/// A key equal to the prefix is the prefix's first key, and read as "end of key" it stood a
/// whole digit below `000000...`: the open tail stepped past every counter key at once and one
/// worker listed them all (the moto counting test found 2 ranges for 8 pages).
#[test]
fn a_key_equal_to_the_prefix_does_not_stop_the_spread() {
    let mut keys: Vec<String> = (0..2_400)
        .map(|i| format!("train/a/{i:06}.jsonl"))
        .collect();
    keys.extend((0..400).map(|i| format!("train/a/데이터/ü {i:04}+%.bin")));
    keys.extend(["train/a/", "train/a/1", "train/a/:"].map(str::to_owned));
    let (tally, bounds, seen) = run(&keys, "train/a/", 1000, 8);
    let objects = keys.iter().filter(|k| !k.ends_with('/')).count() as u64;
    assert_eq!(tally.sums.objects, objects, "{bounds:?}");
    assert!(seen.lock().unwrap().values().all(|&n| n == 1));
    assert!(tally.ranges >= 3, "{tally:?} {bounds:?}");
}
