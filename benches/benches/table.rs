//! Whole-table operations against peers, in one process with the same build flags:
//!
//! * `load`: the full table (IPv4 + IPv6, one route per prefix) into an empty table;
//! * `churn`: an IPv4 reader's throughput alone and while one writer rewrites routes at full
//!   speed on the other core, and the writer's rate while a reader runs (rtm, a
//!   `RwLock<prefix_trie::PrefixMap>`, rotonda-store);
//! * `replay`: the PCH BGP4MP stream (../shared/data) applied to a loaded table, one route
//!   per (peer, prefix); skipped with a message when the file is absent;
//! * `delete`: every route of a loaded table deleted, with memory reclaimed (rtm drains its
//!   epoch garbage inside the timed part).
//!
//! `rtm` applies routes one call at a time without handles (`insert_route`,
//! `withdraw_route`: every prefix a lone route, `src/leaf.rs`); `rtm_batch` 4,096 per
//! call (`insert_routes`, `withdraw_routes`); `rtm_batch_handles` 4,096 per call with
//! handles (`add_routes`, `delete_routes`: a destination object per prefix);
//! `rtm_batch64` (the churn writer) 64 per call with handles; `rtm_via_handle` (the churn
//! writer) route by route, re-announcing through the handles it holds (`update_route`).
//!
//! Run with `cargo bench -p rtm-benches --bench table` (about 10 minutes; a group name
//! filters, e.g. `-- churn`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net};
use prefix_trie::joint::JointPrefixMap;
use prefix_trie::PrefixMap;
use rtm::{AddressFamily, EntityId, EntityRef, NetAddress, RouteParams, Rtm, ViewId};
use rtm_benches::{ChurnInput, Rotonda};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

const LOOKUPS: usize = 1 << 16;
const BATCH: usize = 1024;
/// Route updates per timed writer iteration.
const WRITES: usize = 1 << 14;

fn params(i: usize, p: &NetAddress, pref: u32) -> RouteParams {
    RouteParams::new(pref, (i % 7) as u32).next_hop(rtm::gen::peer_next_hop(p.family(), (i % 32) as u8))
}

/// Loads both families as routes of one entity each; returns the instance and the time.
fn load_rtm(all: &[NetAddress]) -> (Rtm, Duration) {
    let rtm = Rtm::new();
    let e4 = rtm.register(AddressFamily::Ipv4, EntityId::new(14, 1)).expect("fresh");
    let e6 = rtm.register(AddressFamily::Ipv6, EntityId::new(14, 1)).expect("fresh");
    settle_heap();
    let t0 = Instant::now();
    for (i, p) in all.iter().enumerate() {
        let e = if p.family() == AddressFamily::Ipv4 { &e4 } else { &e6 };
        let _ = e.insert_route(p, params(i, p, 20)).expect("valid route");
    }
    (rtm, t0.elapsed())
}

/// [`load_rtm`] through `insert_routes`, [`LOAD_BATCH`] routes per call.
fn load_rtm_batched(all: &[NetAddress]) -> (Rtm, Duration) {
    let rtm = Rtm::new();
    let e4 = rtm.register(AddressFamily::Ipv4, EntityId::new(14, 1)).expect("fresh");
    let e6 = rtm.register(AddressFamily::Ipv6, EntityId::new(14, 1)).expect("fresh");
    let items: Vec<(NetAddress, RouteParams)> =
        all.iter().enumerate().map(|(i, p)| (*p, params(i, p, 20))).collect();
    settle_heap();
    let t0 = Instant::now();
    by_family(&items, &e4, &e6, |e, c| {
        for r in e.insert_routes(c).expect("registered") {
            r.expect("valid route");
        }
    });
    (rtm, t0.elapsed())
}

/// Calls `f` with each [`LOAD_BATCH`]-item chunk of `items` (grouped by family, as the
/// table's prefixes are) and the entity of its family.
fn by_family<T>(
    items: &[(NetAddress, T)],
    e4: &EntityRef,
    e6: &EntityRef,
    mut f: impl FnMut(&EntityRef, &[(NetAddress, T)]),
) {
    for family in items.chunk_by(|a, b| a.0.family() == b.0.family()) {
        let e = if family[0].0.family() == AddressFamily::Ipv4 { e4 } else { e6 };
        family.chunks(LOAD_BATCH).for_each(|c| f(e, c));
    }
}

/// Loads `all` without handles, then times `withdraw(e4, e6)` (which must withdraw every
/// route) and the drain of the epoch garbage (the leaves, versions and trie nodes freed).
fn withdraw_all_timed(all: &[NetAddress], withdraw: impl FnOnce(&EntityRef, &EntityRef)) -> Duration {
    let (rtm, _) = load_rtm_batched(all);
    let e4 = rtm.table(AddressFamily::Ipv4).entities().pop().expect("one entity");
    let e6 = rtm.table(AddressFamily::Ipv6).entities().pop().expect("one entity");
    settle_heap();
    let t0 = Instant::now();
    withdraw(&e4, &e6);
    rtm::drain_deferred_garbage();
    let t = t0.elapsed();
    assert!(rtm.table(AddressFamily::Ipv4).is_empty() && rtm.table(AddressFamily::Ipv6).is_empty());
    t
}

/// Routes per `add_routes` / `delete_routes` call in the `rtm_batch` variants.
const LOAD_BATCH: usize = 4096;

/// Settles the global allocator before a timed section, so that the timed code does not
/// pay for frees that happened before it: glibc defers the merging of freed small chunks
/// (its fast bins) to the next allocation of a kilobyte or more, and then sorts freed
/// chunks out of its *unsorted* list into its bins at most 10,000 per allocation of that
/// size. After a peer's table is dropped (rotonda-store's load benchmark frees tens of
/// millions of chunks) that list takes thousands of such allocations to drain, and each
/// one costs most of a millisecond: criterion's `delete/rtm_batch` right after
/// `load/rotonda_store` spent half its time sorting rotonda-store's chunks in the
/// allocations of crossbeam-epoch's garbage bags (perf with DWARF call graphs,
/// BENCHMARKS.md, session 13). So allocate and free a 4 KiB block until the list is
/// drained (each round sorts up to 10,000 chunks; on a settled heap a round is a few
/// dozen nanoseconds).
fn settle_heap() {
    for _ in 0..SETTLE_ROUNDS {
        drop(black_box(Vec::<u8>::with_capacity(4 << 10)));
    }
}

/// Rounds of [`settle_heap`]: enough for 80 million freed chunks.
const SETTLE_ROUNDS: usize = 8 << 10;

/// [`load_rtm_batched`] through `add_routes` (a destination object per prefix); the route
/// handles are returned with the instance (the delete bench needs them).
fn load_rtm_batched_with_routes(all: &[NetAddress]) -> (Rtm, Vec<rtm::RouteRef>, Duration) {
    let rtm = Rtm::new();
    let e4 = rtm.register(AddressFamily::Ipv4, EntityId::new(14, 1)).expect("fresh");
    let e6 = rtm.register(AddressFamily::Ipv6, EntityId::new(14, 1)).expect("fresh");
    let items: Vec<(NetAddress, RouteParams)> =
        all.iter().enumerate().map(|(i, p)| (*p, params(i, p, 20))).collect();
    let mut routes = Vec::with_capacity(all.len());
    settle_heap();
    let t0 = Instant::now();
    by_family(&items, &e4, &e6, |e, c| {
        for r in e.add_routes(c).expect("registered") {
            routes.push(r.expect("valid route").0);
        }
    });
    let t = t0.elapsed();
    (rtm, routes, t)
}

fn load(c: &mut Criterion, all: &[NetAddress]) {
    let nets: Vec<IpNet> = all.iter().map(|p| IpNet::from(*p)).collect();
    let mut g = c.benchmark_group("load");
    g.sample_size(10).throughput(Throughput::Elements(all.len() as u64));
    // Each iteration builds a whole table; the drop is outside the timed part.
    g.bench_function("rtm", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let (rtm, t) = load_rtm(all);
                    drop(black_box(rtm));
                    rtm::drain_deferred_garbage();
                    t
                })
                .sum()
        })
    });
    g.bench_function("rtm_batch", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let (rtm, t) = load_rtm_batched(all);
                    drop(black_box(rtm));
                    rtm::drain_deferred_garbage();
                    t
                })
                .sum()
        })
    });
    g.bench_function("rtm_batch_handles", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let (rtm, routes, t) = load_rtm_batched_with_routes(all);
                    drop(black_box(routes));
                    drop(black_box(rtm));
                    rtm::drain_deferred_garbage();
                    t
                })
                .sum()
        })
    });
    g.bench_function("prefix_trie", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    settle_heap();
                    let t0 = Instant::now();
                    let mut m: JointPrefixMap<IpNet, u32> = JointPrefixMap::new();
                    for (i, n) in nets.iter().enumerate() {
                        m.insert(*n, i as u32);
                    }
                    let t = t0.elapsed();
                    drop(black_box(m));
                    t
                })
                .sum()
        })
    });
    g.bench_function("rotonda_store", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    settle_heap();
                    let t0 = Instant::now();
                    let r = Rotonda::new(all);
                    let t = t0.elapsed();
                    drop(black_box(r));
                    t
                })
                .sum()
        })
    });
    g.finish();
}

/// Runs `writer` on its own thread (until the returned stop flag is set), counting its
/// updates in the returned counter.
struct Background {
    stop: std::sync::Arc<AtomicBool>,
    count: std::sync::Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    fn spawn(scope: &'static str, mut f: impl FnMut(u64) + Send + 'static) -> Background {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let handle = std::thread::Builder::new()
            .name(scope.into())
            .spawn(move || {
                let mut i = 0u64;
                while !s.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        f(i);
                        i += 1;
                    }
                    c.store(i, Ordering::Relaxed);
                }
            })
            .expect("spawn");
        Background { stop, count, handle: Some(handle) }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The untimed writer steps before a churn pair's first routine runs (`reader_pair!`),
/// once: `warmed` records that they ran. A filter that selects neither benchmark of the
/// pair runs no writer and prints nothing.
fn pre_churn(name: &str, warmed: &mut bool, pre: u64, write: &mut Option<impl FnMut(u64)>) {
    if std::mem::replace(warmed, true) {
        return;
    }
    let (t0, w) = (Instant::now(), write.as_mut().expect("the writer is not spawned yet"));
    for i in 0..pre {
        w(i);
    }
    if pre > 0 {
        eprintln!("churn/{name}: {pre} writer steps before the reader's solo run, in {:.1?}", t0.elapsed());
    }
}

fn churn(c: &mut Criterion, v4: &[NetAddress]) {
    let v4: &'static [NetAddress] = Box::leak(v4.to_vec().into_boxed_slice());
    let nets: &'static [Ipv4Net] = Box::leak(
        v4.iter()
            .map(|p| match IpNet::from(*p) {
                IpNet::V4(n) => n,
                IpNet::V6(_) => unreachable!("IPv4 only"),
            })
            .collect(),
    );
    let (inside, _) = rtm_benches::queries(v4, LOOKUPS, 42);
    let ips: Vec<Ipv4Net> = inside
        .iter()
        .map(|a| match IpNet::from(*a) {
            IpNet::V4(n) => n,
            IpNet::V6(_) => unreachable!("IPv4 only"),
        })
        .collect();

    // Every rtm variant runs on an instance of its own, loaded alike: a writer leaves its
    // routes behind (a second route on most destinations), and a variant run on the
    // instance an earlier one churned measured the earlier writers' routes too (until
    // session 29 the three `writer_with_reader` variants found 3, 4 and 5 routes on most
    // destinations, in bench order; BENCHMARKS.md).
    let fresh = move || -> &'static Rtm { Box::leak(Box::new(rtm_benches::load_rtm(v4))) };
    // The same with two more feeds of every prefix (entities `(9, 0)` and `(9, 1)`,
    // preferences 15 and 16, kept): a router with three full-table peers, whose writer's
    // own routes make four per destination.
    let fresh_3_feeds = move || -> &'static Rtm {
        let rtm = fresh();
        rtm_benches::add_feeds(rtm, v4, 2);
        rtm
    };
    // Every writer reads its steps' prefixes from a stream made before the clock starts
    // (`rtm_benches::ChurnInput`: each step's prefix at hand, as in an UPDATE stream).
    let input: &'static ChurnInput<NetAddress> = Box::leak(Box::new(ChurnInput::new(v4)));
    let net_input: &'static ChurnInput<Ipv4Net> = Box::leak(Box::new(ChurnInput::new(nets)));
    // The writer's step: re-announce a route with a changed preference (a new snapshot
    // and possibly a best-route change); every 16th step withdraws it instead. Each
    // writer is its own entity (`instance`).
    // With `via_handle`, a re-announcement of a route the writer holds a handle on goes
    // through the handle (`update_route`, RTMv2's add with a route handle), without the
    // walk to the prefix.
    let rtm_writer_with = move |rtm: &'static Rtm, instance: u32, via_handle: bool| {
        let writer = rtm.register(AddressFamily::Ipv4, EntityId::new(8, instance)).expect("fresh entity");
        let mut refs: Vec<Option<rtm::RouteRef>> = vec![None; v4.len()];
        move |i: u64| {
            let (k, prefix) = input.get(i);
            let p = || params(k, prefix, 10 + (i % 20) as u32);
            if i % 16 == 15 {
                if let Some(r) = refs[k].take() {
                    let _ = writer.delete_route(&r);
                }
            } else if let (true, Some(r)) = (via_handle, &refs[k]) {
                let _ = writer.update_route(r, p());
            } else if let Ok((r, _)) = writer.add_route(prefix, p()) {
                refs[k] = Some(r);
            }
        }
    };
    let rtm_writer = move |rtm: &'static Rtm, instance: u32| rtm_writer_with(rtm, instance, false);
    // The same steps, re-announcements 64 per `add_routes` call and withdrawals 64 per
    // `delete_routes` call (`rtm_benches::BatchedChurn`).
    let rtm_batch_writer = move |rtm: &'static Rtm, instance: u32| {
        let mut w = rtm_benches::BatchedChurn::new(rtm, v4, input, instance);
        move |i: u64| w.step(i)
    };
    let locked: &'static RwLock<PrefixMap<Ipv4Net, u32>> = Box::leak(Box::new(RwLock::new({
        let mut m = PrefixMap::new();
        for (i, n) in nets.iter().enumerate() {
            m.insert(*n, i as u32);
        }
        m
    })));
    let locked_write = |_: u32| move |i: u64| rtm_benches::locked_step(locked, net_input, i);
    let rotonda: &'static Rotonda = Box::leak(Box::new(Rotonda::new(v4)));
    let rotonda_write = |_: u32| {
        move |i: u64| {
            let (_, p) = input.get(i);
            if i % 16 == 15 {
                rotonda.withdraw(p, 1);
            } else {
                rotonda.insert(p, 1);
            }
        }
    };

    let mut g = c.benchmark_group("churn");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    let inside_ref = &inside;
    let read_rtm = |table: &'static rtm::Table| {
        let inside = inside_ref;
        move || {
            let mut sum = 0u64;
            for chunk in inside.chunks(BATCH) {
                let guard = table.pin();
                table.lookup_batch(chunk, ViewId::UNICAST, &guard, |_, best| {
                    if let Some(best) = best {
                        sum += best.next_hops()[0].interface as u64;
                    }
                });
            }
            black_box(sum)
        }
    };
    let read_locked = || {
        let mut sum = 0u64;
        for q in &ips {
            let m = locked.read().expect("not poisoned");
            if let Some((_, v)) = m.get_lpm(q) {
                sum += *v as u64;
            }
        }
        black_box(sum)
    };
    let read_rotonda = || {
        let mut sum = 0u64;
        for chunk in ips.chunks(BATCH) {
            let guard = rotonda_store::epoch::pin();
            for q in chunk {
                sum += rotonda.lpm_len(q.addr().into(), &guard) as u64;
            }
        }
        black_box(sum)
    };
    // The reader's solo figure is taken on the table as its writer leaves it: a writer
    // that adds its own route to destinations changes the table's shape (most
    // destinations end with two routes), which is not interference; so each rtm writer
    // first makes `PRE_CHURN` steps (about three per IPv4 prefix), untimed.
    macro_rules! reader_pair {
        ($name:literal, $read:expr, $write:expr) => {
            reader_pair!($name, $read, $write, 0)
        };
        ($name:literal, $read:expr, $write:expr, $pre:expr) => {{
            // The writer's state goes to its thread once the reader's run with it starts.
            let mut write = Some($write);
            let pre: u64 = $pre;
            let mut warmed = false;
            // The pre-churn runs on the first call of either routine (`pre_churn`).
            let mut warm = |write: &mut Option<_>| pre_churn($name, &mut warmed, pre, write);
            g.bench_function(BenchmarkId::new($name, "reader_alone"), |b| {
                warm(&mut write);
                b.iter($read)
            });
            let mut writer: Option<(Background, Instant)> = None;
            g.bench_function(BenchmarkId::new($name, "reader_with_writer"), |b| {
                if writer.is_none() {
                    warm(&mut write);
                    #[allow(unused_mut)] // only the rtm writers keep state
                    let mut w = write.take().expect("spawned once");
                    writer = Some((Background::spawn("writer", move |i| w(i + pre)), Instant::now()));
                }
                b.iter($read)
            });
            if let Some((w, t0)) = writer {
                let rate = w.count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
                drop(w);
                eprintln!(
                    "churn/{}: the writer made {:.2} M updates/s during the reader's run",
                    $name,
                    rate / 1e6
                );
            }
        }};
    }
    const PRE_CHURN: u64 = 3 << 20;
    let (a, b) = (fresh(), fresh());
    let (read_a, read_b) = (read_rtm(a.table(AddressFamily::Ipv4)), read_rtm(b.table(AddressFamily::Ipv4)));
    reader_pair!("rtm", read_a, rtm_writer(a, 1), PRE_CHURN);
    reader_pair!("rtm_batch64", read_b, rtm_batch_writer(b, 3), PRE_CHURN);
    reader_pair!("rwlock_prefix_trie", read_locked, locked_write(1));
    reader_pair!("rotonda_store", read_rotonda, rotonda_write(1));

    // The writer's rate while one reader runs flat out.
    g.throughput(Throughput::Elements(WRITES as u64));
    // The rtm writers first make `PRE_CHURN` steps, untimed, so that they are measured in
    // their steady state (their own route on most destinations), as the pairs above are.
    macro_rules! writer_with_reader {
        ($name:literal, $read:expr, $write:expr) => {
            writer_with_reader!($name, $read, $write, 0)
        };
        ($name:literal, $read:expr, $write:expr, $pre:expr) => {{
            #[allow(unused_mut)] // only the rtm writer keeps state
            let mut write = $write;
            let (pre, t0): (u64, _) = ($pre, Instant::now());
            for i in 0..pre {
                write(i);
            }
            if pre > 0 {
                eprintln!(
                    "churn/{}: {pre} writer steps before the timed ones, in {:.1?}",
                    $name,
                    t0.elapsed()
                );
            }
            let r = Background::spawn("reader", move |_| {
                $read();
            });
            let mut i = pre;
            g.bench_function(BenchmarkId::new($name, "writer_with_reader"), |b| {
                b.iter(|| {
                    for _ in 0..WRITES {
                        write(i);
                        i += 1;
                    }
                })
            });
            drop(r);
        }};
    }
    let inside2: &'static [NetAddress] = Box::leak(inside.clone().into_boxed_slice());
    let ips2: &'static [Ipv4Net] = Box::leak(ips.clone().into_boxed_slice());
    // The rtm writers' reader: batched lookups, as the churn pairs' `read_rtm`.
    let read_rtm_batch = move |table: &'static rtm::Table| {
        move || {
            let guard = table.pin();
            table.lookup_batch(&inside2[..BATCH], ViewId::UNICAST, &guard, |_, b| {
                black_box(b.map(|b| b.next_hops()[0].interface));
            });
        }
    };
    let (a, b, c) = (fresh(), fresh(), fresh());
    let t = |rtm: &'static Rtm| rtm.table(AddressFamily::Ipv4);
    let (read_a, read_b, read_c) = (read_rtm_batch(t(a)), read_rtm_batch(t(b)), read_rtm_batch(t(c)));
    writer_with_reader!("rtm", read_a, rtm_writer(a, 2), PRE_CHURN);
    writer_with_reader!("rtm_via_handle", read_b, rtm_writer_with(b, 5, true), PRE_CHURN);
    writer_with_reader!("rtm_batch64", read_c, rtm_batch_writer(c, 4), PRE_CHURN);
    let d = fresh_3_feeds();
    writer_with_reader!("rtm_3_feeds", read_rtm_batch(t(d)), rtm_writer(d, 6), PRE_CHURN);
    writer_with_reader!(
        "rwlock_prefix_trie",
        move || {
            for q in &ips2[..BATCH] {
                let m = locked.read().expect("not poisoned");
                black_box(m.get_lpm(q).map(|(_, v)| *v));
            }
        },
        locked_write(2)
    );
    writer_with_reader!(
        "rotonda_store",
        move || {
            let guard = rotonda_store::epoch::pin();
            for q in &ips2[..BATCH] {
                black_box(rotonda.lpm_len(q.addr().into(), &guard));
            }
        },
        rotonda_write(2)
    );
    g.finish();
}

/// The PCH stream's announcements and withdrawals, or `None` (with a message) without it.
fn pch_stream() -> Option<Vec<rtm_cli::input::Update>> {
    let path = rtm_benches::data_dir().join("pch-summary-2015-10-23.bgp4mp_et.fulltable-session.mrt.gz");
    match rtm_cli::input::read(&path) {
        Ok(rtm_cli::input::Input::Mrt { updates, .. }) => Some(updates),
        Ok(_) => {
            eprintln!("replay: {} is not an MRT update stream; skipped", path.display());
            None
        }
        Err(e) => {
            eprintln!("replay: skipped ({e})");
            None
        }
    }
}

/// Applies the stream to an rtm instance, as `rtm replay` does (`rtm_cli::replay`: one
/// entity per peer, one route per (peer, prefix), each UPDATE message's NLRI as one batch).
fn replay_rtm(rtm: &Rtm, ups: &[rtm_cli::input::Update]) -> u64 {
    rtm_cli::replay::Replayer::new(rtm).apply(ups, None)
}

fn replay(c: &mut Criterion, all: &[NetAddress]) {
    let Some(ups) = pch_stream() else { return };
    let nets: Vec<IpNet> = all.iter().map(|p| IpNet::from(*p)).collect();
    let mut g = c.benchmark_group("replay");
    g.sample_size(10).throughput(Throughput::Elements(ups.len() as u64));
    g.bench_function("rtm", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let (rtm, _) = load_rtm(all);
                    settle_heap();
                    let t0 = Instant::now();
                    black_box(replay_rtm(&rtm, &ups));
                    let t = t0.elapsed();
                    drop(rtm);
                    rtm::drain_deferred_garbage();
                    t
                })
                .sum()
        })
    });
    // prefix-trie (its joint IPv4 + IPv6 map) holds one value per prefix: a small list of (peer, preference).
    g.bench_function("prefix_trie", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let mut m: JointPrefixMap<IpNet, Vec<(u32, u32)>> = JointPrefixMap::new();
                    for n in &nets {
                        m.insert(*n, vec![(0, 20)]);
                    }
                    settle_heap();
                    let t0 = Instant::now();
                    for u in &ups {
                        let net = IpNet::from(u.prefix);
                        if u.announce {
                            let v = m.entry(net).or_default();
                            match v.iter_mut().find(|(p, _)| *p == u.peer + 1) {
                                Some(e) => e.1 = u.local_pref,
                                None => v.push((u.peer + 1, u.local_pref)),
                            }
                        } else if let Some(v) = m.get_mut(&net) {
                            v.retain(|(p, _)| *p != u.peer + 1);
                            if v.is_empty() {
                                m.remove(&net);
                            }
                        }
                    }
                    let t = t0.elapsed();
                    drop(black_box(m));
                    t
                })
                .sum()
        })
    });
    // rotonda-store keeps one record per (prefix, peer id) natively.
    g.bench_function("rotonda_store", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let r = Rotonda::new(all);
                    settle_heap();
                    let t0 = Instant::now();
                    for u in &ups {
                        if u.announce {
                            r.insert(&u.prefix, u.peer + 1);
                        } else {
                            r.withdraw(&u.prefix, u.peer + 1);
                        }
                    }
                    let t = t0.elapsed();
                    drop(black_box(r));
                    t
                })
                .sum()
        })
    });
    g.finish();
}

fn delete(c: &mut Criterion, all: &[NetAddress]) {
    let nets: Vec<IpNet> = all.iter().map(|p| IpNet::from(*p)).collect();
    let mut g = c.benchmark_group("delete");
    g.sample_size(10).throughput(Throughput::Elements(all.len() as u64));
    // Every route withdrawn (no handles: lone routes), then the epoch garbage drained: the
    // time includes freeing the leaves, versions and trie nodes.
    g.bench_function("rtm", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    withdraw_all_timed(all, |e4, e6| {
                        for p in all {
                            let e = if p.family() == AddressFamily::Ipv4 { e4 } else { e6 };
                            e.withdraw_route(p, None).expect("a live route");
                        }
                    })
                })
                .sum()
        })
    });
    g.bench_function("rtm_batch", |b| {
        let items: Vec<(NetAddress, Option<rtm::NextHop>)> = all.iter().map(|p| (*p, None)).collect();
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    withdraw_all_timed(all, |e4, e6| {
                        by_family(&items, e4, e6, |e, c| {
                            for r in e.withdraw_routes(c).expect("registered") {
                                r.expect("a live route");
                            }
                        })
                    })
                })
                .sum()
        })
    });
    g.bench_function("rtm_batch_handles", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let (rtm, routes, _) = load_rtm_batched_with_routes(all);
                    let e4 = rtm.table(AddressFamily::Ipv4).entities().pop().expect("one entity");
                    let e6 = rtm.table(AddressFamily::Ipv6).entities().pop().expect("one entity");
                    settle_heap();
                    let t0 = Instant::now();
                    for family in routes.chunk_by(|a, b| a.prefix().family() == b.prefix().family()) {
                        let e = if family[0].prefix().family() == AddressFamily::Ipv4 { &e4 } else { &e6 };
                        for c in family.chunks(LOAD_BATCH) {
                            for r in e.delete_routes(c).expect("registered") {
                                r.expect("a live route");
                            }
                        }
                    }
                    drop(routes);
                    rtm::drain_deferred_garbage();
                    let t = t0.elapsed();
                    assert!(rtm.table(AddressFamily::Ipv4).is_empty());
                    t
                })
                .sum()
        })
    });
    g.bench_function("prefix_trie", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| {
                    let mut m: JointPrefixMap<IpNet, u32> = JointPrefixMap::new();
                    for (i, n) in nets.iter().enumerate() {
                        m.insert(*n, i as u32);
                    }
                    settle_heap();
                    let t0 = Instant::now();
                    for n in &nets {
                        black_box(m.remove(n));
                    }
                    let t = t0.elapsed();
                    assert!(m.is_empty());
                    t
                })
                .sum()
        })
    });
    g.finish();
}

fn table(c: &mut Criterion) {
    let (name, v4, v6) = rtm_benches::full_table();
    eprintln!("table: {name}, {} IPv4 + {} IPv6 prefixes", v4.len(), v6.len());
    let all: Vec<NetAddress> = v4.iter().chain(&v6).copied().collect();
    load(c, &all);
    // Before `replay`: rotonda-store's replay leaves glibc's heap fragmented, and every
    // later malloc-heavy phase in this process then spends most of its time in
    // `_int_malloc` / `malloc_consolidate` / `unlink_chunk` (measured after it:
    // delete/prefix_trie 53 -> 156 ms, delete/rtm_batch 0.35 -> 1.7 s). See BENCHMARKS.md.
    delete(c, &all);
    churn(c, &v4);
    replay(c, &all);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = table
}
criterion_main!(benches);
