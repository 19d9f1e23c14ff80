//! The write paths on the full table, timed phase by phase, for `perf record` / callgrind:
//! load (one route per prefix), re-announcements with a changed preference, deletes with
//! the epoch garbage drained. `profile_write [load|update|delete]` runs the phases up to
//! and including the named one (default: all); `REPEAT=n` runs them n times.
//! `NO_TEARDOWN=1` (with `OTHER=1`) exits after the steps without dropping the table.
//! `VIA_HANDLE=1` (with `OTHER=1`): re-announcements through the route's handle
//! (`update_route`) where the writer holds one.
//! `LONE=1` (with `OTHER=1`): the load and the steps without handles (`insert_route`,
//! `withdraw_route`: lone routes), as a BGP speaker writes.
use rtm::{AddressFamily, EntityId, NetAddress, RouteParams, Rtm};
use std::time::Instant;

fn params(i: usize, p: &NetAddress, pref: u32) -> RouteParams {
    RouteParams::new(pref, (i % 7) as u32).next_hop(rtm::gen::peer_next_hop(p.family(), (i % 32) as u8))
}

fn main() {
    let last = std::env::args().nth(1).unwrap_or_else(|| "delete".into());
    let (_, v4, v6) = rtm_benches::full_table();
    let all: Vec<NetAddress> = v4.iter().chain(&v6).copied().collect();
    // REPEAT=n: run the phases n times in one process, each on a fresh table (the previous
    // one dropped first), as criterion's iterations do.
    let repeat: usize = std::env::var("REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    for round in 0..repeat {
        if repeat > 1 {
            println!("round {round}:");
        }
        phases(&last, &v4, &all);
    }
}

fn phases(last: &str, v4: &[NetAddress], all: &[NetAddress]) {
    let rtm = Rtm::new();
    let e = [
        rtm.register(AddressFamily::Ipv4, EntityId::new(14, 1)).expect("fresh"),
        rtm.register(AddressFamily::Ipv6, EntityId::new(14, 1)).expect("fresh"),
    ];
    let fam = |p: &NetAddress| (p.family() == AddressFamily::Ipv6) as usize;
    // BATCH=n: load with `add_routes` in batches of n (per family) instead.
    let batch: usize = std::env::var("BATCH").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    // The input is prepared before the clock starts (as in the criterion `load` bench).
    let items: Vec<_> = all.iter().enumerate().map(|(i, p)| (*p, params(i, p, 20))).collect();
    let lone = std::env::var("LONE").is_ok_and(|v| v == "1");
    let t0 = Instant::now();
    let mut routes: Vec<_> = if lone {
        for (p, r) in &items {
            e[fam(p)].insert_route(p, r.clone()).expect("valid");
        }
        Vec::new()
    } else if batch == 0 {
        items.iter().map(|(p, r)| e[fam(p)].add_route(p, r.clone()).expect("valid").0).collect()
    } else {
        let mut out = Vec::with_capacity(all.len());
        for chunk in items.chunk_by(|a, b| a.0.family() == b.0.family()) {
            for c in chunk.chunks(batch) {
                let rs = e[fam(&c[0].0)].add_routes(c).expect("a registered entity");
                out.extend(rs.into_iter().map(|r| r.expect("valid").0));
            }
        }
        out
    };
    let dt = t0.elapsed();
    println!("load: {} routes in {dt:.2?} ({:.2} M/s)", all.len(), all.len() as f64 / dt.as_secs_f64() / 1e6);
    if last == "load" {
        return;
    }
    let n: usize = std::env::var("UPDATES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    // UBATCH=n: re-announce through `add_routes`, n updates per call (IPv4 only then).
    let ubatch: usize = std::env::var("UBATCH").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let key = |j: usize| (j as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize % all.len();
    // OTHER=1: the updates come from a second entity, as the churn bench's writer: it adds
    // its own route to random destinations (re-announcing it when it has one there) and
    // every 16th step withdraws one instead. PEERS=k: first (untimed) k more entities each
    // add a route to every IPv4 destination, so the writer meets destinations of 1 + k
    // routes (the churn bench's writer meets 3-5).
    let other = std::env::var("OTHER").is_ok_and(|v| v == "1");
    if lone && !other {
        eprintln!("LONE=1 runs the OTHER=1 steps only (the table holds no handles to update)");
        return;
    }
    if other {
        let peers: u8 = std::env::var("PEERS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        let t0 = Instant::now();
        for k in 0..peers {
            let peer = rtm.register(AddressFamily::Ipv4, EntityId::new(16, k.into())).expect("fresh");
            for chunk in v4.chunks(4096) {
                let items: Vec<_> =
                    chunk.iter().enumerate().map(|(i, p)| (*p, params(i + k as usize, p, 15))).collect();
                peer.add_routes(&items)
                    .expect("registered")
                    .into_iter()
                    .for_each(|r| drop(r.expect("valid")));
            }
        }
        if peers > 0 {
            println!("peers: {peers} x {} routes in {:.2?}", v4.len(), t0.elapsed());
        }
        let w = [
            rtm.register(AddressFamily::Ipv4, EntityId::new(15, 1)).expect("fresh"),
            rtm.register(AddressFamily::Ipv6, EntityId::new(15, 1)).expect("fresh"),
        ];
        let mut refs: Vec<Option<rtm::RouteRef>> = vec![None; all.len()];
        // VIA_HANDLE=1: a re-announcement of a route the writer holds a handle on goes
        // through the handle (`update_route`, RTMv2's add with a route handle).
        let via_handle = std::env::var("VIA_HANDLE").is_ok_and(|v| v == "1");
        let t0 = Instant::now();
        if lone {
            // The same steps without handles: a withdrawal names the route by its prefix
            // and neighbour (none here).
            let mut present = vec![false; all.len()];
            for j in 0..n {
                let k = key(j);
                let p = &all[k];
                if j % 16 == 15 {
                    if std::mem::take(&mut present[k]) {
                        w[fam(p)].withdraw_route(p, None).expect("present");
                    }
                } else {
                    w[fam(p)].insert_route(p, params(k, p, 10 + (j % 20) as u32)).expect("valid");
                    present[k] = true;
                }
            }
        } else if ubatch == 0 {
            for j in 0..n {
                let k = key(j);
                let p = &all[k];
                if j % 16 == 15 {
                    if let Some(r) = refs[k].take() {
                        w[fam(p)].delete_route(&r).expect("live");
                    }
                } else if let (true, Some(r)) = (via_handle, &refs[k]) {
                    w[fam(p)].update_route(r, params(k, p, 10 + (j % 20) as u32)).expect("live");
                } else {
                    let r = w[fam(p)].add_route(p, params(k, p, 10 + (j % 20) as u32)).expect("valid").0;
                    refs[k] = Some(r);
                }
            }
        } else {
            // UBATCH=n: as the churn bench's batched writer (IPv4 only): the steps' adds
            // n per `add_routes` call, the withdrawals per `delete_routes` call.
            let v4n = v4.len();
            let (mut adds, mut add_keys, mut dels) = (Vec::new(), Vec::new(), Vec::new());
            for j in 0..n {
                let k = key(j) % v4n;
                if j % 16 == 15 {
                    dels.extend(refs[k].take());
                } else {
                    adds.push((all[k], params(k, &all[k], 10 + (j % 20) as u32)));
                    add_keys.push(k);
                }
                if j % ubatch == ubatch - 1 || j == n - 1 {
                    w[0].delete_routes(&dels).expect("registered").into_iter().for_each(|r| {
                        r.expect("live");
                    });
                    dels.clear();
                    for (&k, r) in add_keys.iter().zip(w[0].add_routes(&adds).expect("registered")) {
                        refs[k] = Some(r.expect("valid").0);
                    }
                    adds.clear();
                    add_keys.clear();
                }
            }
        }
        let dt = t0.elapsed();
        println!("other: {n} steps in {dt:.2?} ({:.2} M/s)", n as f64 / dt.as_secs_f64() / 1e6);
        if std::env::var_os("NO_TEARDOWN").is_some() {
            // Exit without dropping the table, so that a profile of runs with different
            // step counts differs by the steps alone (their teardowns would differ too).
            std::process::exit(0);
        }
        return;
    }
    let t0 = Instant::now();
    if ubatch == 0 {
        for j in 0..n {
            let k = key(j);
            let p = &all[k];
            routes[k] = e[fam(p)].add_route(p, params(k, p, 10 + (j % 20) as u32)).expect("valid").0;
        }
    } else {
        let v4n = v4.len();
        let mut items = Vec::with_capacity(ubatch);
        for j0 in (0..n).step_by(ubatch) {
            items.clear();
            items.extend((j0..(j0 + ubatch).min(n)).map(|j| {
                let k = key(j) % v4n;
                (all[k], params(k, &all[k], 10 + (j % 20) as u32))
            }));
            for (j, r) in (j0..).zip(e[0].add_routes(&items).expect("registered")) {
                routes[key(j) % v4n] = r.expect("valid").0;
            }
        }
    }
    let dt = t0.elapsed();
    println!("update: {n} re-announcements in {dt:.2?} ({:.2} M/s)", n as f64 / dt.as_secs_f64() / 1e6);
    if last == "update" {
        return;
    }
    // DBATCH=n: delete through `delete_routes`, n per call (per family).
    let dbatch: usize = std::env::var("DBATCH").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let t0 = Instant::now();
    if dbatch == 0 {
        for (r, p) in routes.iter().zip(all) {
            e[fam(p)].delete_route(r).expect("live");
        }
    } else {
        let split = v4.len();
        for (f, part) in [&routes[..split], &routes[split..]].into_iter().enumerate() {
            for c in part.chunks(dbatch) {
                for r in e[f].delete_routes(c).expect("registered") {
                    r.expect("live");
                }
            }
        }
    }
    drop(routes);
    for _ in 0..std::env::var("DRAINS").ok().and_then(|s| s.parse().ok()).unwrap_or(1) {
        rtm::drain_deferred_garbage();
    }
    let dt = t0.elapsed();
    println!("after the drain: {:?} live", (rtm::live_objects().dests, rtm::live_objects().routes));
    println!(
        "delete: {} routes in {dt:.2?} ({:.2} M/s)",
        all.len(),
        all.len() as f64 / dt.as_secs_f64() / 1e6
    );
}
