//! Lookup ratios against prefix-trie measured *interleaved*: every round runs each variant
//! once over the same 65,536 in-table host addresses (IPv4; IPv6 with `V6=1`), so a drift
//! of the machine's speed between rounds (this VM's same binary varies 2-5x over minutes)
//! hits every variant alike. Each pass starts with cold caches (twice the reported L3,
//! at least 64 MiB, written over first; `EVICT_MIB=n` to set it) and the variants take
//! turns going first, so no variant runs on lines another left. Criterion runs its benchmarks one after another, so its ratios
//! carry that drift; these do not. `ratio_lookup [ROUNDS]` prints, per variant, the mean
//! and the best round in ns per lookup, and each mean's ratio to prefix-trie's (above 1:
//! faster than prefix-trie).
//!
//! `WRITER=1`: every variant also runs, in every round, while a writer thread churns rtm's
//! table (the churn bench's batched writer: a second entity re-announces random prefixes
//! with changing preferences, 64 per `add_routes` call, and withdraws every 16th; it is
//! paused for the other pass, and the two passes alternate which goes first); prefix-trie,
//! which cannot take a concurrent writer, runs beside it under the same load on the
//! machine. A second table gives those figures and what each variant keeps of its solo
//! figure; the writer's rate while it ran is printed at the end.
//!
//! rtm's routes have 64 distinct next hops, as prefix-trie's values (`HOPS=N` for N,
//! `HOPS=all` for one per route: then every route has a version of its own, a line a
//! lookup reads after the leaf).
//!
//! Variants: prefix-trie's `get_lpm`; rtm's single fast path (`Table::lookup`, a pin per
//! 1,024 lookups as the criterion bench does), its batched fast path
//! (`Table::lookup_batch`), the single handle path (`Table::most_specific`: a pin and a
//! counted destination handle per lookup, released at once; `_pinned`: the same under a
//! pin the caller holds per 1,024 lookups), the handle taken from the fast path's result
//! under the caller's pin (`Table::lookup` then `Best::dest`: no pin per call) and the
//! batched handle path (`Table::most_specific_batch`); and the lock-based pick,
//! `RwLock<prefix_trie::PrefixMap>` with a read lock per lookup (`rwlock_prefix_trie`).
//! `ONLY=a,b,...` runs only the named variants.
//!
//! The handle variants (`rtm_handle*`) run on a second rtm table, loaded alike: a handle
//! promotes its prefix's lone routes to a destination object (`src/leaf.rs`), and on a
//! shared table the fast variants would then read the 65,536 queried prefixes'
//! destinations, contiguous in 8 MiB, instead of the lone routes of a table nobody took
//! handles on (session 22's figures carried that; BENCHMARKS.md, session 23).
//!
//! With `WRITER=1` the writer writes the table of the running variant: rtm's, the handle
//! variants' or, while `rwlock_prefix_trie` runs, the locked map (the churn bench's locked writer: a write lock per update, the same insert and
//! every-16th remove steps), so that variant's second figure is readers of an `RwLock`
//! under their own writer at full speed; the last line compares it with rtm's batched
//! readers under rtm's writer (the goal: at least 10x).
use ipnet::IpNet;
use prefix_trie::{Prefix, PrefixMap};
use rtm::{AddressFamily, ViewId, ViewSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// One variant: a name and a closure running one pass over the queries, returning a
/// checksum (so no pass is optimized away).
type Variant<'a> = (&'static str, Box<dyn Fn() -> u64 + 'a>);

fn main() {
    let (_, v4, v6) = rtm_benches::full_table();
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    if std::env::var_os("V6").is_some() {
        run(AddressFamily::Ipv6, &v6, rounds, |n| match n {
            IpNet::V6(n) => n,
            IpNet::V4(_) => unreachable!("an IPv6 table"),
        });
    } else {
        run(AddressFamily::Ipv4, &v4, rounds, |n: IpNet| match n {
            IpNet::V4(n) => n,
            IpNet::V6(_) => unreachable!("an IPv4 table"),
        });
    }
}

/// Measures every variant on `prefixes` (all of family `fam`); `net` converts to the
/// prefix-trie key type (`Ipv4Net` or `Ipv6Net`).
fn run<N: Prefix + Copy + Send + Sync>(
    fam: AddressFamily,
    prefixes: &[rtm::NetAddress],
    rounds: usize,
    net: fn(IpNet) -> N,
) {
    // `HOPS=N`: N distinct next hops (default 64, as the peers' distinct values; `all`:
    // one per route, so one version per route).
    let hops = match std::env::var("HOPS").ok().as_deref() {
        Some("all") => prefixes.len(),
        Some(n) => n.parse().expect("HOPS: a number or `all`"),
        None => rtm_benches::NEXT_HOPS,
    };
    let rtm = rtm_benches::load_rtm_with(prefixes, hops);
    let t = rtm.table(fam);
    let rtm_h = rtm_benches::load_rtm_with(prefixes, hops);
    let th = rtm_h.table(fam);
    println!("rtm: {hops} distinct next hops");
    let mut map: PrefixMap<N, u32> = PrefixMap::new();
    for (i, p) in prefixes.iter().enumerate() {
        map.insert(net(IpNet::from(*p)), (i % 64) as u32 + 1);
    }
    let keys: Vec<N> = prefixes.iter().map(|p| net(IpNet::from(*p))).collect();
    let locked = RwLock::new({
        let mut m = PrefixMap::new();
        for (i, k) in keys.iter().enumerate() {
            m.insert(*k, (i % 64) as u32 + 1);
        }
        m
    });
    let (inside, _) = rtm_benches::queries(prefixes, 1 << 16, 42);
    let nets: Vec<N> = inside.iter().map(|a| net(IpNet::from(*a))).collect();

    let variants: Vec<Variant> = vec![
        (
            "prefix_trie",
            Box::new(|| nets.iter().filter_map(|q| map.get_lpm(q)).map(|(_, v)| *v as u64).sum()),
        ),
        (
            "rtm_fast",
            Box::new(|| {
                let mut sum = 0u64;
                for chunk in inside.chunks(1024) {
                    let g = t.pin();
                    for q in chunk {
                        if let Some(b) = t.lookup(q, &g) {
                            sum += b.next_hops()[0].interface as u64;
                        }
                    }
                }
                sum
            }),
        ),
        (
            "rtm_batch",
            Box::new(|| {
                let mut sum = 0u64;
                for chunk in inside.chunks(1024) {
                    let g = t.pin();
                    t.lookup_batch(chunk, ViewId::UNICAST, &g, |_, b| {
                        sum += b.map_or(0, |b| b.next_hops()[0].interface as u64)
                    });
                }
                sum
            }),
        ),
        (
            "rtm_handle",
            Box::new(|| {
                inside
                    .iter()
                    .filter_map(|q| th.most_specific(q, ViewSet::UNICAST).ok())
                    .map(|d| d.prefix().len() as u64)
                    .sum()
            }),
        ),
        (
            "rtm_handle_pinned",
            Box::new(|| {
                let mut sum = 0u64;
                for chunk in inside.chunks(1024) {
                    let _g = th.pin();
                    for q in chunk {
                        if let Ok(d) = th.most_specific(q, ViewSet::UNICAST) {
                            sum += d.prefix().len() as u64;
                        }
                    }
                }
                sum
            }),
        ),
        (
            "rtm_handle_guard",
            Box::new(|| {
                let mut sum = 0u64;
                for chunk in inside.chunks(1024) {
                    let g = th.pin();
                    for q in chunk {
                        if let Some(d) = th.lookup(q, &g).and_then(|b| b.dest()) {
                            sum += d.prefix().len() as u64;
                        }
                    }
                }
                sum
            }),
        ),
        (
            "rwlock_prefix_trie",
            Box::new(|| {
                nets.iter()
                    .filter_map(|q| locked.read().expect("not poisoned").get_lpm(q).map(|(_, v)| *v as u64))
                    .sum()
            }),
        ),
        (
            "rtm_handle_batch",
            Box::new(|| {
                let mut sum = 0u64;
                th.most_specific_batch(&inside, ViewSet::UNICAST, |_, r| {
                    if let Ok(d) = r {
                        sum += d.prefix().len() as u64;
                    }
                });
                sum
            }),
        ),
    ];

    // `ONLY=a,b,...` measures only the named variants.
    let only = std::env::var("ONLY").ok();
    let variants: Vec<Variant> = variants
        .into_iter()
        .filter(|(n, _)| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == *n)))
        .collect();
    let ctl = Control {
        stop: AtomicBool::new(false),
        run: AtomicBool::new(false),
        idle: AtomicBool::new(true),
        target: AtomicUsize::new(FAST),
    };
    let steps = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let writer = std::env::var_os("WRITER").is_some_and(|v| v == "1");
    // The writer's input, made before it starts (as the churn bench's).
    let inputs =
        writer.then(|| (rtm_benches::ChurnInput::new(prefixes), rtm_benches::ChurnInput::new(&keys)));
    std::thread::scope(|s| {
        if let Some((input, key_input)) = &inputs {
            s.spawn(|| churn([&rtm, &rtm_h], prefixes, input, (&locked, key_input), &ctl, &steps));
        }
        let busy = measure(fam, &variants, rounds, inside.len(), writer.then_some(&ctl));
        ctl.stop.store(true, Ordering::Relaxed);
        if writer {
            for (i, what) in
                ["rtm's table", "the handle variants' table", "the locked map"].iter().enumerate()
            {
                let n = steps[i].load(Ordering::Relaxed);
                if busy[i] > Duration::ZERO {
                    println!(
                        "writer of {what}: {n} steps while the lookups ran ({:.2} M/s)",
                        n as f64 / busy[i].as_secs_f64() / 1e6
                    );
                }
            }
        }
    });
}

/// How the measuring thread drives the writer: `run` lets it work (it sets `idle` while
/// it waits), `stop` ends it, `target` says which table it writes (set while it is
/// paused: [`FAST`], [`HANDLES`] or [`LOCKED`]). The flags publish no data (the writer's table is rtm's own,
/// synchronized by rtm), so any ordering would be correct; `run` and `idle` use SeqCst
/// only so that the handshake reads plainly as one total order of the two threads'
/// stores. `stop` and the step count are Relaxed: read once at the end, a late value only
/// shifts the writer's rate by a few steps.
struct Control {
    stop: AtomicBool,
    run: AtomicBool,
    idle: AtomicBool,
    target: AtomicUsize,
}

/// The writer's targets: rtm's table of the fast variants, that of the handle variants,
/// the locked map.
const FAST: usize = 0;
const HANDLES: usize = 1;
const LOCKED: usize = 2;

/// The table a variant reads (by its name).
fn target_of(name: &str) -> usize {
    if name.starts_with("rwlock") {
        LOCKED
    } else if name.starts_with("rtm_handle") {
        HANDLES
    } else {
        FAST
    }
}

impl Control {
    /// Starts (`true`) or pauses the writer and waits until it follows.
    fn set(&self, run: bool) {
        self.run.store(run, Ordering::SeqCst);
        while self.idle.load(Ordering::SeqCst) == run {
            std::hint::spin_loop();
        }
    }
}

/// The locked map and its writer's input (the table's prefixes as its keys).
type Locked<'a, N> = (&'a RwLock<PrefixMap<N, u32>>, &'a rtm_benches::ChurnInput<N>);

/// While `ctl` lets it run: the churn bench's batched writer (`rtm_benches::BatchedChurn`)
/// on one of the rtm tables, or the churn bench's locked writer on the map (a write lock
/// per step: re-insert a random prefix, every 16th step remove it), as `ctl.target` says.
/// Counts the steps per target.
fn churn<N: Prefix + Copy>(
    rtms: [&rtm::Rtm; 2],
    prefixes: &[rtm::NetAddress],
    input: &rtm_benches::ChurnInput<rtm::NetAddress>,
    (locked, key_input): Locked<'_, N>,
    ctl: &Control,
    steps: &[AtomicU64; 3],
) {
    let mut ws = rtms.map(|r| rtm_benches::BatchedChurn::new(r, prefixes, input, 3));
    let mut i = 0u64;
    while !ctl.stop.load(Ordering::Relaxed) {
        if !ctl.run.load(Ordering::SeqCst) {
            // Paused, it spins rather than sleeps: the other core stays busy in both
            // phases (an idle vCPU changed the reader's speed by ~10 % on this VM), so the
            // phases differ only in the writes.
            ctl.idle.store(true, Ordering::SeqCst);
            std::hint::spin_loop();
            continue;
        }
        ctl.idle.store(false, Ordering::SeqCst);
        let target = ctl.target.load(Ordering::SeqCst);
        if target == LOCKED {
            rtm_benches::locked_step(locked, key_input, i);
        } else {
            ws[target].step(i);
        }
        i += 1;
        steps[target].fetch_add(1, Ordering::Relaxed);
    }
}

/// Bytes written between two passes to push the previous pass's lines out of the caches:
/// twice the last-level cache the host reports, at least 64 MiB; `EVICT_MIB=n` sets it.
///
/// Until session 29 it was a constant 64 MiB (twice the 32 MiB L3 of session 15's host).
/// Session 28's host reports 480 MiB of L3: the passes were not cold there, and since
/// rtm's variants share a table, each found lines the previous rtm pass had left, except
/// the one after prefix-trie's pass (whose ~100 MB pushed rtm's table out), `rtm_fast`.
/// Identical code measured 18 % slower in that position than in the next
/// (BENCHMARKS.md, session 29).
fn evict_bytes() -> usize {
    if let Some(m) = std::env::var("EVICT_MIB").ok().and_then(|s| s.parse::<usize>().ok()) {
        return m << 20;
    }
    // "491520K" and the like (Linux sysfs); a host without it gets the floor.
    let l3 = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size").ok().and_then(|s| {
        let s = s.trim();
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: usize = num.parse().ok()?;
        Some(match unit {
            "K" => n << 10,
            "M" => n << 20,
            _ => n,
        })
    });
    l3.map_or(0, |b| 2 * b).max(64 << 20)
}

/// Runs the interleaved rounds and prints the table. With a writer, every variant runs
/// twice per round, with the writer paused and running (in alternating order); returns
/// the time of the passes with the writer running, per target (it is paused otherwise).
fn measure(
    fam: AddressFamily,
    variants: &[Variant],
    rounds: usize,
    n: usize,
    writer: Option<&Control>,
) -> [Duration; 3] {
    let phases: &[bool] = if writer.is_some() { &[false, true] } else { &[false] };
    // One warm-up pass each, then the measured rounds.
    let mut sums: Vec<u64> = variants.iter().map(|(_, f)| black_box(f())).collect();
    // Per phase and variant: total and best pass.
    let mut total = vec![vec![Duration::ZERO; variants.len()]; 2];
    let mut best = vec![vec![Duration::MAX; variants.len()]; 2];
    let mut busy = [Duration::ZERO; 3];
    // A pass over the same addresses right after another one finds some of its lines in
    // the last-level cache (rtm's variants share a table, and an L3 holds part or all of
    // a full table): every pass starts after `evict_bytes()` have been written over, the
    // variants take turns going first, and so do the two phases.
    let mut evict = vec![0u8; evict_bytes()];
    for r in 0..rounds {
        for kk in 0..variants.len() {
            let k = (kk + r) % variants.len();
            let (name, f) = &variants[k];
            let target = target_of(name);
            for j in 0..phases.len() {
                let w = phases[(j + r) % phases.len()];
                if let Some(c) = writer {
                    // Pause it, point it at the variant's table, let it run if this phase
                    // says so.
                    c.set(false);
                    c.target.store(target, Ordering::SeqCst);
                    c.set(w);
                }
                for i in (0..evict.len()).step_by(64) {
                    evict[i] = evict[i].wrapping_add(1);
                }
                black_box(&evict);
                let t0 = Instant::now();
                sums[k] = sums[k].wrapping_add(black_box(f()));
                let dt = t0.elapsed();
                total[w as usize][k] += dt;
                best[w as usize][k] = best[w as usize][k].min(dt);
                if w {
                    busy[target] += dt;
                }
            }
        }
    }
    if let Some(c) = writer {
        c.set(false);
    }
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    let mean = |w: usize, k: usize| per(total[w][k]) / rounds.max(1) as f64;
    println!("{fam:?} in-table lookups, {n} addresses, {rounds} interleaved rounds");
    println!("{:<18} {:>10} {:>10} {:>14}", "variant", "mean ns", "best ns", "x prefix-trie");
    for (k, (name, _)) in variants.iter().enumerate() {
        println!(
            "{name:<18} {:>10.1} {:>10.1} {:>13.2}x",
            mean(0, k),
            per(best[0][k]),
            mean(0, 0) / mean(0, k)
        );
    }
    if writer.is_some() {
        println!(
            "with the writer running (on the variant's table; prefix-trie's is not written, \
             its pass runs beside the writer):"
        );
        println!(
            "{:<18} {:>10} {:>10} {:>14} {:>8}",
            "variant", "mean ns", "best ns", "x prefix-trie", "keeps"
        );
        for (k, (name, _)) in variants.iter().enumerate() {
            println!(
                "{name:<18} {:>10.1} {:>10.1} {:>13.2}x {:>7.0}%",
                mean(1, k),
                per(best[1][k]),
                mean(1, 0) / mean(1, k),
                100.0 * mean(0, k) / mean(1, k)
            );
        }
        let at = |n: &str| variants.iter().position(|v| v.0 == n);
        if let (Some(b), Some(l)) = (at("rtm_batch"), at("rwlock_prefix_trie")) {
            println!(
                "rtm_batch under rtm's writer vs rwlock_prefix_trie under its writer: {:.1}x faster",
                mean(1, l) / mean(1, b)
            );
        }
    }
    black_box(sums);
    busy
}
