//! How many ListObjectsV2 requests are in flight at once, over every prefix a counter counts.
//!
//! A fixed gate holds `LIST_CONCURRENCY` permits. A sized gate follows Little's law: the pages
//! a second that the function's CPU share can read ([`Sizing::pages_per_second`]), capped by
//! S3's request rate per prefix, times the page latency it observes, with some headroom; so a
//! far bucket (200 ms a page) gets more requests in flight than a near one, and a larger
//! memory size more than a smaller. It never goes below [`Sizing::min`] (today's fixed 32) nor
//! above [`Sizing::max`] (bounded by memory: each request in flight holds a page's buffers).
//! Throttling lowers it: the SDK retries each SlowDown after its backoff, and a sized gate
//! halves its ceiling at most once per page latency, then regains one request in flight per
//! round of answers (additive increase, multiplicative decrease), so it never pushes harder
//! than S3 answers. A fixed gate leaves throttling to the SDK's backoff, as before.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// ListObjectsV2 pages a second S3 serves one prefix: 5,500 GET/HEAD requests a second per
/// partitioned prefix (S3's documented rate; a LIST is billed and limited with them).
pub const S3_PAGES_PER_PREFIX: f64 = 5_500.0;
/// The latency assumed before any page has come back.
const FIRST_LATENCY: Duration = Duration::from_millis(50);
/// In flight above Little's law: pages arrive unevenly, and a range's last page is partly
/// used.
const HEADROOM: f64 = 1.25;
/// How much one page's latency moves the estimate (an exponentially weighted mean).
const WEIGHT: f64 = 0.1;

/// ListObjectsV2 pages one vCPU reads and counts a second, over TLS, on the cautious side:
/// seek took 0.38-0.83 CPU ms a page (1,200-2,600 a second) in ct-bench's runs of every layout
/// (docs/measured.md, "Sizing and cost"). It sets the floor of the sizing; the latency
/// observed does the rest.
pub const PAGES_PER_VCPU_SECOND: f64 = 1_200.0;
/// Requests in flight allowed per megabyte of memory at most: a request holds about 40 KB
/// (its read buffer, TLS state, a page's keys), so the ceiling takes about 1% of memory.
const REQUESTS_PER_MB: f64 = 0.25;

/// What a sized gate is sized from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    /// The pages a second the function's CPU can read and count.
    pub pages_per_second: f64,
    pub min: usize,
    pub max: usize,
}

impl Sizing {
    /// For a Lambda function of `memory_mb`: its CPU share's pages a second; at least
    /// [`crate::config::DEFAULT_LIST_CONCURRENCY`] in flight, at most a quarter of its
    /// megabytes (256 at 1,024 MB), and never more than 1,024.
    pub fn for_memory(memory_mb: u64) -> Self {
        let floor = crate::config::DEFAULT_LIST_CONCURRENCY;
        Self {
            pages_per_second: crate::config::vcpus(memory_mb) * PAGES_PER_VCPU_SECOND,
            min: floor,
            max: ((memory_mb as f64 * REQUESTS_PER_MB) as usize).clamp(floor, 1024),
        }
    }
}

#[derive(Debug)]
struct Target {
    /// Permits that exist: in flight plus available.
    issued: usize,
    /// What `issued` should come to; permits above it are dropped as requests end.
    want: usize,
    /// The page latency estimate, in seconds.
    latency: f64,
    /// The most in flight since S3 last throttled (infinite: never throttled), and when.
    ceiling: f64,
    cut: Option<Instant>,
}

/// The limit on ListObjectsV2 requests in flight.
#[derive(Debug)]
pub struct Gate {
    permits: Semaphore,
    sizing: Option<Sizing>,
    target: Mutex<Target>,
    /// Prefixes being counted now: S3's rate is per prefix.
    prefixes: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Gate {
    /// Exactly `n` requests in flight at most.
    pub fn fixed(n: usize) -> Self {
        Self::with(n.max(1), None)
    }

    /// Sized from the CPU share and the latency observed.
    pub fn sized(sizing: Sizing) -> Self {
        let first = want(&sizing, FIRST_LATENCY.as_secs_f64(), 1);
        Self::with(first, Some(sizing))
    }

    fn with(n: usize, sizing: Option<Sizing>) -> Self {
        Self {
            permits: Semaphore::new(n),
            sizing,
            target: Mutex::new(Target {
                issued: n,
                want: n,
                latency: FIRST_LATENCY.as_secs_f64(),
                ceiling: f64::INFINITY,
                cut: None,
            }),
            prefixes: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Target> {
        self.target.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot. `None` if the gate was closed.
    pub async fn enter(&self) -> Option<Pass<'_>> {
        let permit = self.permits.acquire().await.ok()?;
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        Some(Pass {
            gate: self,
            permit: Some(permit),
            since: Instant::now(),
        })
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.lock().want
    }

    /// One prefix's share of the limit, when several are counted at once.
    pub fn share(&self) -> usize {
        let prefixes = self.prefixes.load(Ordering::Relaxed).max(1);
        self.limit().div_ceil(prefixes)
    }

    /// The most requests that were in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Marks a prefix as being counted until the guard drops.
    pub fn counting(&self) -> Counting<'_> {
        self.prefixes.fetch_add(1, Ordering::Relaxed);
        Counting(self)
    }

    fn observe(&self, latency: Duration) {
        let Some(sizing) = &self.sizing else { return };
        let prefixes = self.prefixes.load(Ordering::Relaxed).max(1);
        let mut t = self.lock();
        t.latency += WEIGHT * (latency.as_secs_f64() - t.latency);
        if t.ceiling.is_finite() {
            t.ceiling = (t.ceiling + 1.0 / t.ceiling).min(sizing.max as f64);
        }
        t.want = want(sizing, t.latency, prefixes)
            .min(t.ceiling as usize)
            .max(1);
        self.settle(&mut t);
    }

    /// Brings the permits that exist toward the target: adds what is missing; of those above
    /// it, drops the ones not in use now (the rest are dropped as their requests end).
    fn settle(&self, t: &mut Target) {
        if t.want > t.issued {
            self.permits.add_permits(t.want - t.issued);
            t.issued = t.want;
        } else if t.issued > t.want {
            t.issued -= self.permits.forget_permits(t.issued - t.want);
        }
    }

    /// S3 answered 503 SlowDown.
    pub fn throttled(&self) {
        self.throttled_at(Instant::now());
    }

    fn throttled_at(&self, now: Instant) {
        if self.sizing.is_none() {
            return;
        }
        let mut t = self.lock();
        // One cut per page latency: the requests already in flight were sent before it.
        let recent = Duration::from_secs_f64(t.latency);
        if t.cut
            .is_some_and(|at| now.saturating_duration_since(at) < recent)
        {
            return;
        }
        t.cut = Some(now);
        t.ceiling = (t.want as f64 / 2.0).max(1.0);
        t.want = t.ceiling as usize;
        self.settle(&mut t);
    }

    /// A request ended: its permit goes back, unless there are more than wanted.
    fn leave(&self, permit: SemaphorePermit<'_>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut t = self.lock();
        if t.issued > t.want {
            t.issued -= 1;
            permit.forget();
        }
    }
}

/// Little's law with headroom: the pages a second wanted times the seconds each takes.
fn want(s: &Sizing, latency: f64, prefixes: usize) -> usize {
    let rate = s
        .pages_per_second
        .min(S3_PAGES_PER_PREFIX * prefixes as f64);
    let n = (rate * latency * HEADROOM).ceil();
    if n.is_finite() {
        (n as usize).clamp(s.min, s.max.max(s.min))
    } else {
        s.max.max(s.min)
    }
}

/// One request in flight: its latency is observed when it is [`Pass::answered`].
#[derive(Debug)]
pub struct Pass<'a> {
    gate: &'a Gate,
    permit: Option<SemaphorePermit<'a>>,
    since: Instant,
}

impl Pass<'_> {
    /// The request was answered: its latency feeds the estimate.
    pub fn answered(self) {
        self.gate.observe(self.since.elapsed());
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.gate.leave(p);
        }
    }
}

/// See [`Gate::counting`].
#[derive(Debug)]
pub struct Counting<'a>(&'a Gate);

impl Drop for Counting<'_> {
    fn drop(&mut self) {
        self.0.prefixes.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_VCPU: Sizing = Sizing {
        pages_per_second: 1_000.0,
        min: 32,
        max: 512,
    };

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// `n` requests in turn, each answered after `ms` milliseconds (as observed).
    fn answer(rt: &tokio::runtime::Runtime, gate: &Gate, n: usize, ms: u64) {
        rt.block_on(async {
            for _ in 0..n {
                let pass = gate.enter().await.unwrap();
                gate.observe(Duration::from_millis(ms));
                drop(pass);
            }
        });
    }

    /// Exactly `n` requests can be in flight at once: `n` enter, and not one more.
    fn holds_exactly(rt: &tokio::runtime::Runtime, gate: &Gate, n: usize) {
        rt.block_on(async {
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(gate.enter().await.unwrap());
            }
            assert!(gate.permits.try_acquire().is_err(), "more than {n}");
        });
    }

    #[test]
    fn in_flight_follows_the_latency_it_sees() {
        let (gate, rt) = (Gate::sized(ONE_VCPU), runtime());
        // 1,000 pages a second at 50 ms, with a quarter more: 63.
        assert_eq!(gate.limit(), 63);
        let _p = gate.counting();
        answer(&rt, &gate, 200, 200);
        // 1,000 x 0.2 s x 1.25 = 250.
        let n = gate.limit();
        assert!((245..=250).contains(&n), "{n}");
        holds_exactly(&rt, &gate, n);
        assert_eq!(gate.peak(), n);
    }

    #[test]
    fn fewer_when_pages_come_back_sooner_and_never_below_the_floor() {
        let (gate, rt) = (Gate::sized(ONE_VCPU), runtime());
        answer(&rt, &gate, 200, 200);
        let high = gate.limit();
        answer(&rt, &gate, 200, 5);
        assert_eq!(gate.limit(), 32, "from {high}");
        // The permits above it were dropped, idle ones at once.
        holds_exactly(&rt, &gate, 32);
    }

    #[test]
    fn slowdown_halves_it_once_per_latency_then_it_creeps_back() {
        let (gate, rt) = (Gate::sized(ONE_VCPU), runtime());
        answer(&rt, &gate, 200, 200);
        let high = gate.limit();
        let t0 = Instant::now();
        gate.throttled_at(t0);
        assert_eq!(gate.limit(), high / 2);
        // The other requests of the same round throttled too: no second cut.
        gate.throttled_at(t0 + Duration::from_millis(50));
        assert_eq!(gate.limit(), high / 2);
        // A round later, another: below the floor of 32 if S3 keeps saying so.
        for ms in [250, 500, 750] {
            gate.throttled_at(t0 + Duration::from_millis(ms));
        }
        assert_eq!(gate.limit(), high / 16, "{high}");
        // Then one more request per round of answers, not all at once.
        let low = gate.limit();
        answer(&rt, &gate, low * 4, 200);
        let back = gate.limit();
        assert!(back > low && back <= low + 5, "{low} -> {back}");
        holds_exactly(&rt, &gate, back);
    }

    #[test]
    fn s3s_rate_per_prefix_and_memory_cap_it() {
        let fast = Sizing {
            pages_per_second: 50_000.0,
            min: 32,
            max: 10_000,
        };
        // One prefix: 5,500 a second at 100 ms, x 1.25.
        assert_eq!(want(&fast, 0.1, 1), 688);
        assert_eq!(want(&fast, 0.1, 2), 1_375);
        let capped = Sizing { max: 256, ..fast };
        assert_eq!(want(&capped, 0.1, 2), 256);
    }

    #[test]
    fn sized_from_memory() {
        let small = Sizing::for_memory(1024);
        assert_eq!(small.max, 256);
        assert!((small.pages_per_second - 1024.0 / 1769.0 * PAGES_PER_VCPU_SECOND).abs() < 1e-6);
        assert_eq!(Sizing::for_memory(128).max, 32);
        assert_eq!(Sizing::for_memory(10_240).max, 1024);
        assert!(Sizing::for_memory(3_538).pages_per_second > 2.0 * small.pages_per_second);
    }

    #[test]
    fn a_fixed_gate_does_not_move() {
        let (gate, rt) = (Gate::fixed(8), runtime());
        gate.observe(Duration::from_secs(1));
        gate.throttled();
        assert_eq!(gate.limit(), 8);
        holds_exactly(&rt, &gate, 8);
    }
}
