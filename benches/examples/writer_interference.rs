//! The route-by-route writer's rate beside readers of different kinds, and on tables of
//! different shapes: does a reader slow the writer, or does the table?
//!
//! Loads the full table (one route per IPv4 prefix, `rtm_benches::load_rtm`), optionally
//! `EXTRA=n` more feeds of every prefix (entities `(9, x)`, kept), then for each mode named
//! on the command line registers a fresh writer entity that makes `PRE` untimed and
//! `STEPS` timed steps of the criterion churn bench's writer (`add_route` by prefix with a
//! changed preference, every 16th step a `delete_route` through the handle), while the
//! other core runs (each step's prefix from `rtm_benches::ChurnInput`, as the churn bench
//! reads it; `RANDOM_INPUT=1` reads it at random from the prefix list instead):
//! * `none`: nothing;
//! * `spin`: an arithmetic loop (no memory);
//! * `locked`: locked read-modify-writes of a private line in a loop (no epoch, no table);
//! * `hotN` (`hot1`, `hot32`, `hot1024`, ...): batched lookups of the same N addresses,
//!   a pin per batch (`hot1024` is criterion's `writer_with_reader` reader);
//! * `twinN`: as `hotN` on a second instance loaded alike, which the writer never touches;
//! * `all`: batched lookups of all 65,536 query addresses, a pin per batch;
//! * `pins`: pins and nothing else (the epoch traffic alone).
//!
//! After each mode the writer deregisters (its routes go) and the deferred garbage is
//! drained; `NODEREG=1` exits after the first mode instead (for callgrind). The first mode
//! of a run measures a table no writer has touched; later ones inherit destinations the
//! earlier writers promoted from lone routes, and measured up to 10 % slower whatever
//! they ran beside, so compare modes across runs in first position (BENCHMARKS.md,
//! session 29).
use rtm::{AddressFamily, EntityId, NetAddress, RouteParams, ViewId};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

fn params(i: usize, p: &NetAddress, pref: u32) -> RouteParams {
    RouteParams::new(pref, (i % 7) as u32).next_hop(rtm::gen::peer_next_hop(p.family(), (i % 32) as u8))
}

fn main() {
    let (_, v4, _) = rtm_benches::full_table();
    let rtm = rtm_benches::load_rtm(&v4);
    let table = rtm.table(AddressFamily::Ipv4);
    let (inside, _) = rtm_benches::queries(&v4, 1 << 16, 42);
    let steps: u64 = std::env::var("STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let modes: Vec<String> = std::env::args().skip(1).collect();
    let mut inst = 100;
    let extra: u32 = std::env::var("EXTRA").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    rtm_benches::add_feeds(&rtm, &v4, extra);
    let input = rtm_benches::ChurnInput::new(&v4);
    // `twinN`: the same table loaded again as an instance of its own, which the writer
    // never touches.
    let twin = std::env::args().skip(1).any(|m| m.starts_with("twin")).then(|| rtm_benches::load_rtm(&v4));
    let random = std::env::var("RANDOM_INPUT").is_ok_and(|v| v == "1");
    for mode in modes {
        inst += 1;
        let writer = rtm.register(AddressFamily::Ipv4, EntityId::new(8, inst)).expect("fresh");
        let mut refs: Vec<Option<rtm::RouteRef>> = vec![None; v4.len()];
        let stop = AtomicBool::new(false);
        let twin_table = twin.as_ref().map(|t| t.table(AddressFamily::Ipv4));
        let rate = std::thread::scope(|s| {
            let stop = &stop;
            let inside = &inside;
            let m = mode.clone();
            let h = s.spawn(move || {
                let mut n = 0u64;
                match m.as_str() {
                    "none" => {}
                    "spin" => {
                        let mut x = 1u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..1000 {
                                x = x.wrapping_mul(3).wrapping_add(1);
                            }
                        }
                        black_box(x);
                    }
                    // The first N addresses, a pin per batch (criterion's churn reader:
                    // `hot1024`).
                    hot if hot.strip_prefix("hot").is_some_and(|n| n.parse::<usize>().is_ok()) => {
                        let n_addr: usize = hot[3..].parse().unwrap_or(32).clamp(1, inside.len());
                        while !stop.load(Ordering::Relaxed) {
                            let g = table.pin();
                            table.lookup_batch(&inside[..n_addr], ViewId::UNICAST, &g, |_, b| {
                                black_box(b.map(|b| b.next_hops()[0].interface));
                            });
                            n += 1;
                        }
                    }
                    // As `hotN`, on the twin instance: only what the two instances share
                    // (the process's epoch collector, allocators, interconnect) is common.
                    twin if twin.strip_prefix("twin").is_some_and(|n| n.parse::<usize>().is_ok()) => {
                        let n_addr: usize = twin[4..].parse().unwrap_or(32).clamp(1, inside.len());
                        let other = twin_table.expect("loaded for twin modes");
                        // `PIN_EVERY=k`: a pin per k addresses instead (a multiple of 32).
                        let every: usize =
                            std::env::var("PIN_EVERY").ok().and_then(|s| s.parse().ok()).unwrap_or(n_addr);
                        while !stop.load(Ordering::Relaxed) {
                            for c in inside[..n_addr].chunks(every.max(1)) {
                                let g = other.pin();
                                other.lookup_batch(c, ViewId::UNICAST, &g, |_, b| {
                                    black_box(b.map(|b| b.next_hops()[0].interface));
                                });
                            }
                            n += 1;
                        }
                    }
                    // All 65,536 addresses, a pin per batch of 32.
                    "all" => {
                        while !stop.load(Ordering::Relaxed) {
                            for c in inside.chunks(32) {
                                let g = table.pin();
                                table.lookup_batch(c, ViewId::UNICAST, &g, |_, b| {
                                    black_box(b.map(|b| b.next_hops()[0].interface));
                                });
                            }
                            n += 1;
                        }
                    }
                    // A locked read-modify-write on a private line, in a loop: no epoch,
                    // no table.
                    "locked" => {
                        let a = Padded(std::sync::atomic::AtomicU64::new(0));
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..1000 {
                                a.0.fetch_add(1, Ordering::SeqCst);
                            }
                            n += 1;
                        }
                    }
                    // Pins only.
                    "pins" => {
                        while !stop.load(Ordering::Relaxed) {
                            let g = table.pin();
                            black_box(&g);
                            n += 1;
                        }
                    }
                    other => panic!("mode {other}"),
                }
                n
            });
            let pre: u64 = std::env::var("PRE").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut t0 = Instant::now();
            for i in 0..pre + steps {
                if i == pre {
                    t0 = Instant::now();
                }
                // `RANDOM_INPUT=1`: each step reads its prefix at random from the list, as
                // the churn bench did until session 31.
                let (k, p) = if random {
                    let k = rtm_benches::churn_key(i, v4.len());
                    (k, &v4[k])
                } else {
                    input.get(i)
                };
                if i % 16 == 15 {
                    if let Some(r) = refs[k].take() {
                        let _ = writer.delete_route(&r);
                    }
                } else if let Ok((r, _)) = writer.add_route(p, params(k, p, 10 + (i % 20) as u32)) {
                    refs[k] = Some(r);
                }
            }
            let dt = t0.elapsed();
            stop.store(true, Ordering::Relaxed);
            let n = h.join().unwrap();
            (steps as f64 / dt.as_secs_f64() / 1e6, n)
        });
        println!("{mode:>10}: writer {:.3} M steps/s (reader loops {})", rate.0, rate.1);
        if std::env::var_os("NODEREG").is_some() {
            std::process::exit(0);
        }
        drop(refs);
        writer.deregister().expect("registered");
        rtm::drain_deferred_garbage();
    }
}

/// An atomic on a 128-byte block of its own.
#[repr(align(128))]
struct Padded(std::sync::atomic::AtomicU64);
