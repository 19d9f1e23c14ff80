//! The measured runs: loading a table as routes of several entities, and reader threads
//! doing longest-prefix lookups with and without a writer.
//!
//! Readers use the fast path (`Table::lookup_batch`, 32 walks in lock step, one epoch pin
//! per 1,024 lookups). Every 64th batch a reader also times one single `lookup` into its
//! latency histogram (nanoseconds), so the figures are per-lookup latencies without timing
//! every lookup. The writer is a closure that runs until told to stop and returns the
//! number of route updates it made.

use indicatif::{ProgressBar, ProgressStyle};
use rtm::{gen, AddressFamily, EntityId, EntityRef, NetAddress, NextHop, RouteParams, Rtm, ViewId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Protocol ids (RTMv2 `PROTO_IP_*` values) for the entities of a loaded table.
pub const PROTO_BGP: u32 = 14;
pub const PROTO_STATIC: u32 = 3;

/// A bar for `len` steps with a message.
pub fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// A table loaded from prefixes: an eBGP feed with every prefix, an iBGP feed with every
/// fourth (worse preference), and a static entity with every 64th (best preference).
pub struct Loaded {
    pub rtm: Rtm,
    pub ebgp: [EntityRef; 2],
    /// The iBGP feed (the churn withdraws and re-adds its IPv4 routes).
    pub ibgp: [EntityRef; 2],
    /// The iBGP feed's routes (prefix and parameters, to announce them again).
    pub ibgp_routes: Vec<(NetAddress, RouteParams)>,
    pub load_time: Duration,
    pub routes: usize,
    pub rss_growth: Option<u64>,
    /// Bytes of that growth that are the demo's own, not the table's: the heap block of
    /// `ibgp_routes` (the RIB's bytes are the rest).
    pub harness_bytes: u64,
}

/// Process resident set size in bytes (Linux), for bytes-per-route figures.
pub fn rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The demo's feeds come from 32 peers each (eBGP), spread over the table.
fn next_hop(i: usize, p: &NetAddress) -> NextHop {
    gen::peer_next_hop(p.family(), (i % 32) as u8)
}

/// Routes per `add_routes` call while loading.
const LOAD_BATCH: usize = 4096;

/// Loads `prefixes` (either family) as routes (see [`Loaded`]).
pub fn load(prefixes: &[NetAddress]) -> Loaded {
    let rss0 = rss();
    let rtm = Rtm::new();
    let reg = |f, p, i| rtm.register(f, EntityId::new(p, i)).expect("a fresh instance has no entities");
    let ebgp = [reg(AddressFamily::Ipv4, PROTO_BGP, 1), reg(AddressFamily::Ipv6, PROTO_BGP, 1)];
    let ibgp = [reg(AddressFamily::Ipv4, PROTO_BGP, 2), reg(AddressFamily::Ipv6, PROTO_BGP, 2)];
    let stat = [reg(AddressFamily::Ipv4, PROTO_STATIC, 1), reg(AddressFamily::Ipv6, PROTO_STATIC, 1)];
    let fam = |p: &NetAddress| (p.family() == AddressFamily::Ipv6) as usize;
    let pb = bar(prefixes.len() as u64, "loading");
    let mut ibgp_routes = Vec::with_capacity(prefixes.len() / 4 + 1);
    let t0 = Instant::now();
    // In batches (`insert_routes`): new prefixes are linked with one trie copy per node
    // per batch. The eBGP feed goes first, so the other feeds' routes join existing ones.
    for (c, chunk) in prefixes.chunks(LOAD_BATCH).enumerate() {
        let base = c * LOAD_BATCH;
        let mut items: [[Vec<(NetAddress, RouteParams)>; 2]; 3] = Default::default();
        for (j, p) in chunk.iter().enumerate() {
            let (i, f) = (base + j, fam(p));
            items[0][f].push((*p, RouteParams::new(20, (i % 7) as u32).next_hop(next_hop(i, p))));
            if i % 4 == 0 {
                items[1][f].push((*p, RouteParams::new(200, 0).next_hop(next_hop(i + 1, p))));
            }
            if i % 64 == 0 {
                items[2][f].push((*p, RouteParams::new(1, 0).next_hop(next_hop(i + 2, p))));
            }
        }
        // Prefixes come from a checked parser or generator and the entities are
        // registered: adding cannot fail. The feeds keep no handles, as a BGP speaker
        // names its routes by prefix and peer: the routes stay lone routes in their
        // prefixes' leaves, one per feed (no destination objects; `rtm::Table::memory`).
        for f in 0..2 {
            for (k, feed) in [&ebgp, &ibgp, &stat].into_iter().enumerate() {
                let _ = feed[f].insert_routes(&items[k][f]);
            }
        }
        ibgp_routes.extend(items[1].iter().flatten().cloned());
        pb.set_position((base + chunk.len()) as u64);
    }
    let load_time = t0.elapsed();
    pb.finish_and_clear();
    let routes = rtm.table(AddressFamily::Ipv4).route_count() + rtm.table(AddressFamily::Ipv6).route_count();
    let rss_growth = rss().zip(rss0).map(|(a, b)| a.saturating_sub(b));
    let harness_bytes = (ibgp_routes.capacity() * std::mem::size_of::<(NetAddress, RouteParams)>()) as u64;
    Loaded { rtm, ebgp, ibgp, ibgp_routes, load_time, routes, rss_growth, harness_bytes }
}

/// What the readers measured in one run.
pub struct ReaderStats {
    pub lookups_per_sec_per_reader: f64,
    pub found: f64,
    pub latency: hdrhistogram::Histogram<u64>,
    pub writer_updates: u64,
    pub elapsed: Duration,
}

/// Runs `readers` lookup threads over `queries` (in `family`'s table) for `dur`, with
/// `writer` (if any) running alongside; the run also ends when the writer returns.
pub fn readers_with<W>(
    rtm: &Rtm,
    family: AddressFamily,
    queries: &Arc<Vec<NetAddress>>,
    readers: usize,
    dur: Duration,
    writer: Option<W>,
    label: &str,
) -> ReaderStats
where
    W: FnOnce(&AtomicBool) -> u64 + Send,
{
    let stop = AtomicBool::new(false);
    let table = rtm.table(family);
    let pb = ProgressBar::new_spinner();
    pb.set_message(label.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    let t0 = Instant::now();
    let (results, updates) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..readers)
            .map(|k| {
                let (q, stop) = (queries.clone(), &stop);
                s.spawn(move || {
                    let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits");
                    let (mut n, mut found, mut batches) = (0u64, 0u64, 0u64);
                    let mut i = (k * 7919) % q.len();
                    while !stop.load(Ordering::Relaxed) {
                        let g = table.pin();
                        for _ in 0..32 {
                            let end = (i + 32).min(q.len());
                            table.lookup_batch(&q[i..end], ViewId::UNICAST, &g, |_, b| {
                                found += b.is_some() as u64
                            });
                            n += (end - i) as u64;
                            i = if end == q.len() { 0 } else { end };
                            batches += 1;
                            if batches % 64 == 0 {
                                let t = Instant::now();
                                let hit = table.lookup(&q[i], &g).is_some();
                                hist.saturating_record(t.elapsed().as_nanos() as u64);
                                std::hint::black_box(hit);
                            }
                        }
                    }
                    (n, found, hist)
                })
            })
            .collect();
        let updates = match writer {
            Some(w) => {
                let wh = s.spawn(|| w(&stop));
                // The writer stops on its own (replay) or when the time is up.
                while !wh.is_finished() && t0.elapsed() < dur {
                    std::thread::sleep(Duration::from_millis(10));
                }
                stop.store(true, Ordering::Relaxed);
                wh.join().expect("writer thread")
            }
            None => {
                std::thread::sleep(dur);
                stop.store(true, Ordering::Relaxed);
                0
            }
        };
        let results: Vec<_> = hs.into_iter().map(|h| h.join().expect("reader thread")).collect();
        (results, updates)
    });
    let elapsed = t0.elapsed();
    pb.finish_and_clear();
    let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits");
    let (mut n, mut found) = (0u64, 0u64);
    for (a, b, h) in results {
        n += a;
        found += b;
        let _ = latency.add(h);
    }
    ReaderStats {
        lookups_per_sec_per_reader: n as f64 / elapsed.as_secs_f64() / readers.max(1) as f64,
        found: found as f64 / n.max(1) as f64,
        latency,
        writer_updates: updates,
        elapsed,
    }
}

/// A co-runner that only computes, on registers (no memory traffic, no rtm), until told to
/// stop: what any busy thread on the writer's core costs the readers (`rtm bench`'s busy
/// loop; `benches/examples/interference.rs`). Returns its iterations.
pub fn spin(stop: &AtomicBool) -> u64 {
    let (mut x, mut n) = (1u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..4096 {
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7);
        }
        n += 4096;
    }
    std::hint::black_box(x);
    n
}

/// `count` in-table host addresses of `prefixes` (of `family`), deterministic in `seed`; an
/// error if `prefixes` has none of `family`.
pub fn queries(
    prefixes: &[NetAddress],
    family: AddressFamily,
    count: usize,
    seed: u64,
) -> Result<Arc<Vec<NetAddress>>, String> {
    let fam: Vec<&NetAddress> = prefixes.iter().filter(|p| p.family() == family).collect();
    if fam.is_empty() {
        return Err(format!("no {family:?} prefixes to look up"));
    }
    let mut r = gen::SplitMix64::new(seed);
    Ok(Arc::new((0..count).map(|_| gen::host_in(fam[r.below(fam.len() as u64) as usize], &mut r)).collect()))
}

/// Prints one reader run.
pub fn print_readers(name: &str, readers: usize, s: &ReaderStats) {
    let q = |p: f64| s.latency.value_at_quantile(p);
    println!(
        "  {name:<18} {readers} readers x {:>6.2} M lookups/s each ({:.1} % found); latency p50 {} ns, p99 {} ns, p99.9 {} ns",
        s.lookups_per_sec_per_reader / 1e6,
        s.found * 100.0,
        q(0.5),
        q(0.99),
        q(0.999)
    );
}
