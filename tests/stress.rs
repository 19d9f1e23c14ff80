//! Bounded multi-threaded stress: `THREADS` writer threads, each its own entity, share a
//! small nesting prefix pool, so destinations are created, contended and killed
//! concurrently; a reader thread does fast-path lookups meanwhile. The odd threads write
//! without handles (`insert_route`/`withdraw_route`: lone routes, promoted by the others'
//! routes and by every handle query). Per-thread results are
//! deterministic (an entity's routes are only touched by its thread) and asserted as they
//! happen; at the end the table must equal the union of the per-thread models, and once
//! the instance and every handle are dropped, every destination and route object must be
//! freed. `STRESS_ITERS` sets the operations per thread (default 200,000; the sanitizer
//! and miri runs set their own).

mod common;

use rtm::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const THREADS: usize = 4;

fn iters() -> usize {
    std::env::var("STRESS_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(if cfg!(miri) {
        60
    } else {
        200_000
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A pool of 4 * 4 * 4 * 8 nesting IPv4 prefixes (lengths 8..=32 over a few addresses).
fn pool_prefix(r: u64) -> NetAddress {
    let b = r.to_le_bytes();
    common::prefix(&[b[0], b[1], b[2], b[3], 1 + b[4] % 7])
}

#[test]
fn concurrent_mixed_operations_match_the_model() {
    drain_deferred_garbage();
    let base = live_objects();
    let n = iters();
    let rtm = common::rtm();
    let table = rtm.table(AddressFamily::Ipv4).clone();
    let stop = Arc::new(AtomicBool::new(false));

    let reader = {
        let table = table.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut r = Rng(7);
            let mut hits = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let g = table.pin();
                for _ in 0..64 {
                    let a = common::host(&r.next().to_le_bytes()[..5].try_into().unwrap());
                    if let Some(b) = table.lookup(&a, &g) {
                        assert!(b.prefix().contains(&a), "{} does not cover {a}", b.prefix());
                        assert!(b.route().views().contains(ViewId::UNICAST));
                        hits += 1;
                    }
                }
                // The batched walk under the same concurrent churn.
                let batch: Vec<_> =
                    (0..40).map(|_| common::host(&r.next().to_le_bytes()[..5].try_into().unwrap())).collect();
                table.lookup_batch(&batch, ViewId::UNICAST, &g, |i, b| {
                    if let Some(b) = b {
                        assert!(b.prefix().contains(&batch[i]), "{} does not cover {}", b.prefix(), batch[i]);
                        assert!(b.route().views().contains(ViewId::UNICAST));
                        assert_eq!(b.next_hops(), b.route().next_hops(), "forwarding copy matches");
                        hits += 1;
                    }
                });
            }
            hits
        })
    };

    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = table.register(common::entity_id(t)).unwrap();
            let table = table.clone();
            std::thread::spawn(move || {
                let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 0x1234_5678));
                // This thread's routes: prefix -> (handle, params); no handles on odd threads.
                let lone = t % 2 == 1;
                let mut mine: HashMap<NetAddress, (Option<RouteRef>, RouteParams)> = HashMap::new();
                let mut old_handles: Vec<RouteRef> = Vec::new();
                for i in 0..n {
                    let x = r.next();
                    let a = pool_prefix(r.next());
                    match x % 10 {
                        0..=4 => {
                            let views = if x % 7 == 0 {
                                ViewSet::MULTICAST
                            } else {
                                ViewSet::UNICAST | ViewSet::MULTICAST
                            };
                            let p = RouteParams::new((x >> 8) as u32 % 4, (x >> 16) as u32 % 4).views(views);
                            let (h, f) = if lone {
                                (None, e.insert_route(&a, p.clone()).unwrap())
                            } else {
                                let (h, f) = e.add_route(&a, p.clone()).unwrap();
                                (Some(h), f)
                            };
                            match mine.get(&a) {
                                Some((old, _)) => {
                                    assert!(!f.new, "thread {t} op {i}: update at {a}");
                                    if let (Some(old), Some(h)) = (old, &h) {
                                        assert!(old.ptr_eq(h), "update keeps identity");
                                    }
                                }
                                None => assert!(f.new, "thread {t} op {i}: new route at {a}"),
                            }
                            mine.insert(a, (h, p));
                        }
                        5..=7 => {
                            if let Some((h, _)) = mine.remove(&a) {
                                let Some(h) = h else {
                                    e.withdraw_route(&a, None).unwrap();
                                    continue;
                                };
                                e.delete_route(&h).unwrap();
                                assert_eq!(h.state(), RouteState::Deleted);
                                if x % 5 == 0 && old_handles.len() < 100 {
                                    old_handles.push(h);
                                }
                            }
                        }
                        _ => {
                            let host = NetAddress::new(AddressFamily::Ipv4, a.bytes(), 32).unwrap();
                            let _ = table.most_specific(&host, ViewSet::UNICAST).map(|d| {
                                assert!(d.prefix().contains(&host));
                                d.routes().len()
                            });
                            if let Some((h, p)) = mine.get(&a) {
                                // Our own route is visible with our latest contents.
                                let d = table.get(&a, ViewSet::ANY).unwrap();
                                match h {
                                    Some(h) => {
                                        assert_eq!(h.info().to_params(), *p);
                                        assert!(d.routes().iter().any(|x| x.ptr_eq(h)));
                                    }
                                    None => assert!(d
                                        .route_infos()
                                        .iter()
                                        .any(|(_, i)| i.owner() == e.id() && i.to_params() == *p)),
                                }
                            }
                        }
                    }
                }
                for h in &old_handles {
                    assert_eq!(h.state(), RouteState::Deleted);
                }
                (e, mine)
            })
        })
        .collect();

    let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let hits = reader.join().unwrap();
    assert!(hits > 0, "the reader found routes");

    // The final table is the union of the per-thread models.
    let mut model = common::Model::default();
    for (t, (_, mine)) in results.iter().enumerate() {
        for (a, (_, p)) in mine {
            model.dests.entry(*a).or_default().routes.push(common::MRoute {
                id: 0,
                owner: t,
                seq: 0,
                p: p.clone(),
            });
        }
    }
    common::check_table(&table, &model, common::entity_id);

    // Everything is freed once the instance and every handle are gone.
    drop(results);
    drop(table);
    drop(rtm);
    drain_deferred_garbage();
    assert_eq!(live_objects(), base);
}
