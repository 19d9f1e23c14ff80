//! The main job until the `rtm` command lands: load a deterministic generated full table
//! (about 900k IPv4 + 160k IPv6 prefixes with a real table's length mix) as routes of two
//! entities, then run fast-path lookups from reader threads while a writer churns routes,
//! and print real figures.
//!
//! `cargo run --release --example demo [-- SCALE]` (SCALE in percent of full size, default
//! 100).

use rtm::{gen, AddressFamily, EntityId, NetAddress, NextHop, RouteParams, Rtm, ViewSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let scale: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100).clamp(1, 100);
    let (n4, n6) = (901_899 * scale / 100, 160_147 * scale / 100);
    let t0 = Instant::now();
    let v4 = gen::ipv4_table(n4, 1);
    let v6 = gen::ipv6_table(n6, 1);
    println!("generated {} IPv4 + {} IPv6 prefixes in {:.2?}", v4.len(), v6.len(), t0.elapsed());

    let rtm = Rtm::new();
    let ebgp4 = rtm.register(AddressFamily::Ipv4, EntityId::new(14, 1)).expect("fresh instance");
    let ibgp4 = rtm.register(AddressFamily::Ipv4, EntityId::new(14, 2)).expect("fresh instance");
    let ebgp6 = rtm.register(AddressFamily::Ipv6, EntityId::new(14, 1)).expect("fresh instance");
    let peer = |i: usize, p: &NetAddress| NextHop::new(*p, (i % 32) as u32 + 1);

    let t0 = Instant::now();
    for (i, p) in v4.iter().enumerate() {
        let _ = ebgp4.add_route(p, RouteParams::new(20, (i % 7) as u32).next_hop(peer(i, p))).expect("valid");
        if i % 4 == 0 {
            let _ = ibgp4.add_route(p, RouteParams::new(200, 0).next_hop(peer(i + 1, p))).expect("valid");
        }
    }
    for (i, p) in v6.iter().enumerate() {
        let _ = ebgp6.add_route(p, RouteParams::new(20, 0).next_hop(peer(i, p))).expect("valid");
    }
    let load = t0.elapsed();
    let t4 = rtm.table(AddressFamily::Ipv4).clone();
    let t6 = rtm.table(AddressFamily::Ipv6);
    let routes = t4.route_count() + t6.route_count();
    println!(
        "loaded {routes} routes on {} + {} destinations in {load:.2?} ({:.0} routes/s, 1 writer)",
        t4.len(),
        t6.len(),
        routes as f64 / load.as_secs_f64()
    );

    let mut r = gen::SplitMix64::new(42);
    let queries: Arc<Vec<NetAddress>> = Arc::new(
        (0..1 << 18).map(|_| gen::host_in(&v4[r.below(v4.len() as u64) as usize], &mut r)).collect(),
    );
    let readers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let run = |with_writer: bool| {
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..readers)
            .map(|k| {
                let (t, q, stop, total) = (t4.clone(), queries.clone(), stop.clone(), total.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    let mut found = 0u64;
                    let mut i = k * 7919;
                    while !stop.load(Ordering::Relaxed) {
                        let g = t.pin();
                        for _ in 0..1024 {
                            i = (i + 1) % q.len();
                            if t.lookup(&q[i], &g).is_some() {
                                found += 1;
                            }
                        }
                        n += 1024;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                    found
                })
            })
            .collect();
        let writer = with_writer.then(|| {
            let (e, v4, stop) = (ebgp4.clone(), v4.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut r = gen::SplitMix64::new(7);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let p = &v4[r.below(v4.len() as u64) as usize];
                    let metric = r.below(10) as u32;
                    let _ = e
                        .add_route(p, RouteParams::new(20, metric).next_hop(NextHop::new(*p, 1)))
                        .expect("valid");
                    n += 1;
                }
                n
            })
        });
        let d = Duration::from_secs(2);
        std::thread::sleep(d);
        stop.store(true, Ordering::Relaxed);
        let found: u64 = hs.into_iter().map(|h| h.join().expect("reader")).sum();
        let updates = writer.map(|w| w.join().expect("writer")).unwrap_or(0);
        let lookups = total.load(Ordering::Relaxed);
        (
            lookups as f64 / d.as_secs_f64(),
            found as f64 / lookups.max(1) as f64,
            updates as f64 / d.as_secs_f64(),
        )
    };
    let (solo, hit, _) = run(false);
    println!(
        "{readers} readers, no writer: {:.2} M lookups/s in total ({:.1} % found)",
        solo / 1e6,
        hit * 100.0
    );
    let (busy, _, upd) = run(true);
    println!(
        "{readers} readers + 1 writer: {:.2} M lookups/s ({:.0} % of solo); writer {:.2} M route updates/s",
        busy / 1e6,
        busy / solo * 100.0,
        upd / 1e6
    );

    // A few handle-path queries for the record.
    let a = queries[0];
    let d = t4.most_specific(&a, ViewSet::UNICAST).expect("an in-table address");
    let best = d.best(rtm::ViewId::UNICAST).expect("a unicast route");
    println!(
        "most specific for {a}: {} via {:?} (owner {:?})",
        d.prefix(),
        best.info().next_hops(),
        best.owner()
    );
    let t0 = Instant::now();
    ibgp4.deregister().expect("registered");
    println!(
        "deregistered iBGP (withdrew its routes) in {:.2?}; {} routes left",
        t0.elapsed(),
        t4.route_count()
    );
}
