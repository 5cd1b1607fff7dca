//! How fast and at what cost a prefix spreads over workers: paused-clock counts of the
//! benchmark's layouts, and which ranges are split once the budget is spent.

use super::*;

/// The benchmark's key layouts (tests/src/fake_s3.rs): a counter, uniform hashes, date
/// folders (a year of days, part numbers running on across them) and non-ASCII names.
const LAYOUTS: [&str; 4] = ["counter", "hashes", "dates", "unicode"];

/// Key `i` of `n` in `layout`.
fn layout_key(layout: &str, i: u64, n: u64) -> String {
    match layout {
        "counter" => format!("img_{i:09}.jpg"),
        "hashes" => format!("{:016x}.bin", i * (u64::MAX / n)),
        "dates" => {
            let day = i * 365 / n;
            let (m, d) = (day / 30 + 1, day % 30 + 1);
            format!("2026/{m:02}/{d:02}/part-{i:09}.parquet")
        }
        _ => format!("데이터/ü {i:09}+%.txt"),
    }
}

/// S3's pages (1,000 keys) over sorted `keys`, each answered after `latency`.
fn s3_pages(keys: Vec<String>, latency: std::time::Duration) -> Arc<Memory> {
    Arc::new(Memory {
        keys,
        page_size: 1000,
        fail_at: None,
        latency,
    })
}

/// What splitting costs at S3's page size and latency, in tokio's paused clock: 1,000-key
/// pages answered after 30 ms, 64 workers, the benchmark's layouts at 1M keys. Requests stay
/// close to one per page plus a bounded overhead (each range ends in one partly used page),
/// and the count spreads over the workers. Measured in debug (requests, ranges, seconds):
/// counter 1081, 131, 0.75; hashes 1086, 180, 0.78; dates 1167, 240, 0.87; unicode 1083,
/// 131, 0.75. Dates took 3.30 s while estimates came from a range's last page alone and a
/// separator position counted "end of key" as a digit (see `State::pages_left`, `Place`), and
/// 1.62 s (1,260 requests) while the prefix's density was summed from pages' own spans.
#[test]
fn splitting_costs_about_one_request_per_range_in_every_layout() {
    let n = 1_000_000u64;
    let (workers, latency) = (64, std::time::Duration::from_millis(30));
    for name in LAYOUTS {
        let keys: Vec<String> = (0..n).map(|i| layout_key(name, i, n)).collect();
        let pages = n / 1000;
        let (lister, rt) = (s3_pages(keys, latency), paused());
        let started = rt.block_on(async { tokio::time::Instant::now() });
        let (tally, _) = rt
            .block_on(count_prefix(
                lister,
                "",
                &Plan {
                    workers,
                    split: true,
                },
                Arc::new(Gate::fixed(workers)),
                Arc::default(),
                None,
            ))
            .unwrap();
        let took = rt.block_on(async { started.elapsed() });
        assert_eq!(tally.sums.objects, n, "{name}");
        eprintln!(
            "{name}: {} requests for {pages} pages, {} ranges, {:.2} s",
            tally.list_requests,
            tally.ranges,
            took.as_secs_f64()
        );
        // The range budget: two per worker and one per 10 pages, each about a request.
        let bound = pages + 2 * workers as u64 + pages / 4;
        assert!(tally.list_requests <= bound, "{name}: {tally:?}");
        // One page at a time would take pages x 30 ms; the workers share it (date folders,
        // whose sparse part numbers fool the estimates, least).
        let alone = latency * pages as u32;
        assert!(took < alone / 16, "{name}: {took:?} ({tally:?})");
    }
}

/// A bucket in another region (200 ms a page), in tokio's paused clock: a gate sized for one
/// vCPU keeps enough requests in flight to count at the CPU's rate, where the fixed 32 of
/// before capped a count at 32 pages per 200 ms (160,000 keys/s). The bar is 2 x 1M
/// keys at 250,000 keys/s under a 1 vCPU quota: 4 s for one prefix of 1M here, where CPU is
/// free. Measured: fixed 32, 8.0 s; sized, 2.8 s with 289 in flight at the peak, 1,216
/// requests for 1,000 pages (325 ranges).
#[test]
fn a_far_bucket_gets_more_requests_in_flight() {
    let n = 1_000_000u64;
    let keys: Vec<String> = (0..n).map(|i| format!("img_{i:09}.jpg")).collect();
    let latency = std::time::Duration::from_millis(200);
    let lister = s3_pages(keys, latency);
    let one_vcpu = Sizing::for_memory(1769);
    let time = |gate: Gate, workers: usize| {
        let rt = paused();
        let gate = Arc::new(gate);
        let started = rt.block_on(async { tokio::time::Instant::now() });
        let _counting = gate.counting();
        let (tally, _) = rt
            .block_on(count_prefix(
                lister.clone(),
                "",
                &Plan {
                    workers,
                    split: true,
                },
                gate.clone(),
                Arc::default(),
                None,
            ))
            .unwrap();
        assert_eq!(tally.sums.objects, n);
        (rt.block_on(async { started.elapsed() }), tally, gate.peak())
    };
    let (fixed, _, fixed_peak) = time(Gate::fixed(32), 32);
    let (sized, tally, peak) = time(Gate::sized(one_vcpu), one_vcpu.max);
    let report = format!(
        "fixed 32: {fixed:?} (peak {fixed_peak}); sized: {sized:?}, peak {peak} in flight, \
         {} requests, {} ranges",
        tally.list_requests, tally.ranges
    );
    eprintln!("{report}");
    assert!(fixed_peak <= 32, "{report}");
    assert!(sized < std::time::Duration::from_secs(4), "{report}");
    assert!(sized * 2 < fixed, "{report}");
    // More ranges to keep more requests busy, each about one partly used page: bounded by the
    // budget (two per request in flight, one per 10 pages).
    let pages = n / 1000;
    assert!(
        tally.list_requests <= pages + 2 * peak as u64 + pages / 4,
        "{report}"
    );
}

/// The bar for a bucket in another region, in tokio's paused clock: two prefixes of
/// 1M keys (1% folder markers) counted at once through one gate sized for one vCPU
/// (1,769 MB), 200 ms a page. Under a 1 vCPU quota the bar is 250,000 keys/s, 8 s for the
/// 2M keys; reading them takes that vCPU 1-1.5 s (ct-bench), free here, so the listing alone
/// must finish within 6 s. Date folders took 9.8 s while a prefix's key density was summed
/// from pages alone: a count's first pages all lie inside one day's part numbers, so the
/// density read from them was a million times the density across days, and splits went on
/// halving the rest of a day's part numbers (empty) instead of the months ahead. Measured in
/// debug: counter 3.4 s, hashes 4.2 s, dates 4.6 s, unicode 3.4 s.
#[test]
fn two_far_prefixes_count_within_the_bar_in_every_layout() {
    let n = 1_000_000u64;
    let latency = std::time::Duration::from_millis(200);
    let one_vcpu = Sizing::for_memory(1769);
    for name in LAYOUTS {
        let mut keys = Vec::with_capacity(2 * n as usize);
        for prefix in ["a/", "b/"] {
            keys.extend((0..n).map(|i| {
                let key = layout_key(name, i, n);
                match key.rsplit_once('.') {
                    // A folder marker in place of every hundredth object.
                    Some((stem, _)) if i % 100 == 99 => format!("{prefix}{stem}/"),
                    _ => format!("{prefix}{key}"),
                }
            }));
        }
        keys.sort();
        let (lister, rt) = (s3_pages(keys, latency), paused());
        let gate = Arc::new(Gate::sized(one_vcpu));
        let started = rt.block_on(async { tokio::time::Instant::now() });
        let tallies = rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for prefix in ["a/", "b/"] {
                let (lister, gate) = (lister.clone(), gate.clone());
                set.spawn(async move {
                    let _counting = gate.counting();
                    let plan = Plan {
                        workers: one_vcpu.max,
                        split: true,
                    };
                    count_prefix(lister, prefix, &plan, gate.clone(), Arc::default(), None).await
                });
            }
            set.join_all().await
        });
        let took = rt.block_on(async { started.elapsed() });
        let report = format!(
            "{name}: {took:?}, {:.0} keys/s, peak {} in flight, {:?}",
            2.0 * n as f64 / took.as_secs_f64(),
            gate.peak(),
            tallies
                .iter()
                .map(|t| t.as_ref().map(|(t, _)| (t.list_requests, t.ranges)))
                .collect::<Vec<_>>()
        );
        eprintln!("{report}");
        for tally in tallies {
            let (tally, _) = tally.unwrap();
            assert_eq!(tally.sums.objects, n - n / 100, "{report}");
            // Each range ends in a partly used page: the budget bounds what splitting costs.
            let pages = n / 1000;
            assert!(
                tally.list_requests <= pages + 2 * gate.peak() as u64 + pages / 4,
                "{report}"
            );
        }
        assert!(took < std::time::Duration::from_secs(6), "{report}");
    }
}

/// Past the budget of ranges a range is split only if many pages are left in it. A hash
/// space's open tail steps a hex digit at a time, so its last digits come late, when the
/// budget is spent: each was then left to one worker (2 x 1M keys: 62 pages, 12 s at 50 ms a
/// page and 1,769 MB, in ct-bench). Here: a uniform hex space of 1M keys, 15 of its 16 first
/// digits listed, the last one, `(f, g]`, one page in, the budget spent.
#[test]
fn past_the_budget_only_long_ranges_are_split() {
    let n = 1_000_000u64;
    let key = |i: u64| format!("{:016x}", i * (u64::MAX / n));
    let state = |hi: &str| {
        let mut st = State {
            ranges: vec![
                Range::new(None, Some("f".into())),
                Range::new(Some("f".into()), Some(hi.into())),
            ],
            ..State::default()
        };
        st.ranges[0].done = true;
        for i in (0..n).step_by(997) {
            st.alphabet.learn(&key(i));
        }
        // What listing the first 15 digits told: their keys, over their stretch.
        st.first_key = Some(key(0));
        st.listed_keys = n * 15 / 16;
        st.covered = st.alphabet.measure(0, "f", &key(0));
        st.tally.pages = st.listed_keys / 1000;
        let first = n * 15 / 16;
        let mut keys = Keys::default();
        for k in (first..first + 1000).map(key) {
            keys.push_object(&k, &meta_of(&k));
        }
        let page = Page {
            keys,
            next: Some("token".into()),
        };
        assert!(!apply(&mut st, 1, "", &page, None, &Progress::default()));
        st
    };
    // A budget of 0 + 937 pages / 10 + 0 empty ranges: 93 ranges, spent (100 exist).
    let spent = |st: &mut State| {
        while st.ranges.len() < 100 {
            let mut r = Range::new(Some("e".into()), Some("e".into()));
            (r.done, r.listed_keys) = (true, 1000);
            st.ranges.push(r);
        }
    };
    // The whole last digit left: about 61 pages, split past the budget.
    let mut st = state("g");
    spent(&mut st);
    let left = st.pages_left(&st.ranges[1]);
    assert!((50.0..70.0).contains(&left), "{left}");
    let taken = steal(&mut st, "", true, 0).expect("a long range is split past the budget");
    let point = st.ranges[taken].lo.clone().unwrap();
    assert!(point.as_str() > st.ranges[1].last.as_deref().unwrap() && point.as_str() < "g");
    assert_eq!(st.ranges[1].hi.as_deref(), Some(point.as_str()));
    // About 6 pages left (a sixteenth of the digit "f" at 62 pages): split within the budget,
    // not past it.
    let hi = key(n * 15 / 16 + 6_000);
    let mut st = state(&hi);
    let left = st.pages_left(&st.ranges[1]);
    assert!((4.0..8.0).contains(&left), "{left}");
    assert!(steal(&mut st, "", true, 1000).is_some());
    let mut st = state(&hi);
    spent(&mut st);
    assert!(steal(&mut st, "", true, 0).is_none());
}
