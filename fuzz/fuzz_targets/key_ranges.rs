//! Key ranges and split points: for random sorted key sets (any Unicode, folder markers, keys
//! alike for long stretches), random page sizes and numbers of workers, and random scheduling
//! (each answer yields a random number of times), every object is counted exactly once, its
//! sums (bytes, new, fingerprint) come out the same however the ranges split, and every split
//! point is a key S3 accepts in StartAfter: XML-legal characters, under the prefix.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_shared::keyspace::xml_legal;
use ct_shared::ranges::{Keys, ListError, Lister, Meta, Page, Plan, Progress, Sums, count_prefix};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

struct Memory {
    keys: Vec<String>,
    page_size: usize,
    yields: Vec<u8>,
}

fn meta_of(key: &str) -> Meta {
    let h = ct_shared::fingerprint::hash(key.as_bytes(), 3);
    Meta {
        size: h % 10_000,
        new: h & 1 == 1,
        term: ct_shared::fingerprint::term(key, b"&quot;e&quot;", h % 10_000),
    }
}

impl Lister for Memory {
    async fn page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
    ) -> Result<Page, ListError> {
        let from = match token {
            Some(t) => t.parse().map_err(|_| ListError("bad token".into()))?,
            None => self
                .keys
                .partition_point(|k| start_after.is_some_and(|a| k.as_str() <= a)),
        };
        let spins = self
            .yields
            .get(from % self.yields.len().max(1))
            .copied()
            .unwrap_or(0)
            % 5;
        for _ in 0..spins {
            tokio::task::yield_now().await;
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

#[derive(Debug, Arbitrary)]
struct Input {
    prefix: u8,
    keys: Vec<String>,
    run: (u8, u16),
    page_size: u8,
    workers: u8,
    yields: Vec<u8>,
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let prefix = ["", "p/", "데이터/", "a"][usize::from(input.prefix % 4)];
    let mut keys: Vec<String> = input
        .keys
        .iter()
        .take(300)
        .map(|k| {
            format!(
                "{prefix}{}",
                k.chars()
                    .filter(|c| xml_legal(*c))
                    .take(12)
                    .collect::<String>()
            )
        })
        .collect();
    // A long run of keys alike, as counters and date folders make them.
    let stems = ["img_", "2026/11/", "x"];
    let stem = stems[usize::from(input.run.0 % 3)];
    keys.extend((0..input.run.1 % 400).map(|i| format!("{prefix}{stem}{i:06}.jpg")));
    keys.sort();
    keys.dedup();
    let page_size = usize::from(input.page_size % 9) + 1;
    let workers = usize::from(input.workers % 9) + 1;
    let want: BTreeMap<String, u32> = keys
        .iter()
        .filter(|k| k.starts_with(prefix) && !k.ends_with('/'))
        .map(|k| (k.clone(), 1))
        .collect();
    let mut sums = Sums::default();
    for k in want.keys() {
        sums.add(&meta_of(k));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for watch in [true, false] {
        let lister = Arc::new(Memory {
            keys: keys.clone(),
            page_size,
            yields: input.yields.clone(),
        });
        let seen: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
        let record = seen.clone();
        let hook: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |k: &str| {
            *record
                .lock()
                .expect("not poisoned")
                .entry(k.to_owned())
                .or_default() += 1;
        });
        let (tally, bounds) = rt
            .block_on(count_prefix(
                lister,
                prefix,
                &Plan {
                    workers,
                    split: true,
                },
                Arc::new(ct_shared::ranges::Gate::fixed(workers)),
                Arc::new(Progress::default()),
                watch.then_some(hook),
            ))
            .expect("a count over memory cannot fail");
        if watch {
            assert_eq!(
                *seen.lock().expect("not poisoned"),
                want,
                "each object exactly once ({bounds:?})"
            );
        }
        assert_eq!(tally.sums, sums, "watch {watch}: split at {bounds:?}");
        assert_eq!(tally.ranges, bounds.len() as u64 + 1);
        for b in &bounds {
            assert!(
                b.starts_with(prefix) && b.len() > prefix.len(),
                "{b:?} is not under {prefix:?}"
            );
            assert!(b.chars().all(xml_legal), "S3 refuses {b:?} in StartAfter");
        }
    }
});
