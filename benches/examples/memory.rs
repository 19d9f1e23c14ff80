//! Bytes per route of rtm and of its peers, holding the same routes: the context of issue
//! 4's memory goal (<= 64 bytes per route for the whole RIB).
//!
//! Every figure is the growth of the live heap while one structure is loaded, counted by
//! this binary's global allocator: each allocation as the glibc chunk it becomes (its
//! size plus the 8-byte header, rounded up to 16, at least 32 bytes), which is what a
//! small allocation costs the process. rtm's arena takes its 2 MiB chunks from the same
//! allocator, so they are counted whole, slack included. Each structure is measured in a
//! process of its own (this binary runs itself once per structure): rtm's arena keeps its
//! chunks for reuse after a table is dropped, which would hide the next table's growth.
//!
//! Data: the real 2023 full table when `../shared/data` has it, else the generated one
//! (`rtm_benches::full_table`). Two shapes:
//! * `rib`: `rtm bench`'s three feeds (`rtm_cli::run::load`): every prefix from an eBGP
//!   feed, every fourth also from an iBGP feed, every 64th also static. rtm keeps each
//!   route's owner, preference, metric, views and next hop (interned versions), written
//!   without handles as `rtm bench` loads them (lone routes, `src/leaf.rs`), and the
//!   harness's own list of the iBGP routes (to announce them again) is subtracted, as
//!   `rtm bench` does.
//!   The map peers hold an exactly sized `Box<[Route]>` per prefix, `Route` being the
//!   same fields by value (56 bytes), or (`rib-ids`) a `Box<[(u32, u32)]>` of (owner,
//!   attribute set number) pairs, the lean form of a map whose attributes are interned
//!   (a `Vec` built by `collect` would reserve room for four routes, and its slack would
//!   count against the peer). rotonda-store holds one record per (prefix, feed) with no
//!   attributes (`NoMeta`: its own structure's cost only).
//! * `rib-churned` (rtm only): `rib` after `CHURN` (default 2,000,000) updates like
//!   `rtm bench`'s writer's and the garbage drained: what a churned table keeps.
//! * `fib`: one route per prefix. rtm holds it as a route of one entity (`insert_routes`:
//!   no handles, so every prefix is a lone route in its leaf); the peers hold a `u32` per prefix (a next-hop index: their bare
//!   structure), rotonda-store one record.
//!
//! `RwLock<PrefixMap>` costs what `PrefixMap` does (the lock is one word). Run:
//! `cargo build --release --examples -p rtm-benches && target/release/examples/memory`
//! (`memory NAME` measures one structure in this process).
use ip_network_table::IpNetworkTable;
use ipnet::IpNet;
use prefix_trie::joint::JointPrefixMap;
use rtm::{AddressFamily, EntityId, NetAddress, RouteParams, Rtm};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The live heap in glibc chunk bytes (module docs). Every access is Relaxed: it is a
/// statistic, read on the measuring thread after the work it measures, and each update is
/// a read-modify-write, so none is lost; it publishes nothing (no other data is read
/// through it), so it pairs with no other operation.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// What an allocation of `size` bytes takes from glibc's heap.
fn chunk(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

/// The system allocator, counting.
struct Counting;

// SAFETY: forwards every call to `System` unchanged; the counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // Relaxed: see `LIVE`.
        LIVE.fetch_add(chunk(l.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // Relaxed: see `LIVE`.
        LIVE.fetch_add(chunk(l.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // Relaxed: see `LIVE`.
        LIVE.fetch_sub(chunk(l.size()), Ordering::Relaxed);
        // SAFETY: forwarded: `p` came from `alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Relaxed: see `LIVE`.
        LIVE.fetch_add(chunk(new) - chunk(l.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A route as a peer map holds it: what rtm keeps of a route, by value.
#[allow(dead_code)] // held for its size only
#[derive(Clone)]
struct Route {
    owner: u32,
    preference: u32,
    metric: u32,
    views: u32,
    interface: u32,
    neighbour: IpAddr,
    next_hop: IpAddr,
}

/// The routes of prefix number `i` in the `rib` shape: `(feed, preference, metric, peer)`,
/// as `rtm_cli::run::load` makes them.
fn feeds(i: usize) -> impl Iterator<Item = (u32, u32, u32, usize)> {
    let ebgp = Some((1, 20, (i % 7) as u32, i));
    let ibgp = i.is_multiple_of(4).then_some((2, 200, 0, i + 1));
    let stat = i.is_multiple_of(64).then_some((3, 1, 0, i + 2));
    [ebgp, ibgp, stat].into_iter().flatten()
}

fn routes(i: usize, p: &NetAddress) -> Box<[Route]> {
    feeds(i)
        .map(|(owner, preference, metric, peer)| {
            let nh = rtm::gen::peer_next_hop(p.family(), (peer % 32) as u8);
            let next_hop = IpNet::from(nh.address).addr();
            Route {
                owner,
                preference,
                metric,
                views: 3,
                interface: nh.interface,
                neighbour: next_hop,
                next_hop,
            }
        })
        .collect()
}

/// The routes of prefix number `i` as `(owner, attribute set number)` pairs: a map whose
/// routes name interned attributes (the few thousand distinct sets are not counted).
fn ids(i: usize) -> Box<[(u32, u32)]> {
    feeds(i)
        .map(|(owner, preference, metric, peer)| {
            (owner, preference * 1000 + metric * 32 + (peer % 32) as u32)
        })
        .collect()
}

/// Loads structure `name` with `all` and returns `(routes held, bytes the harness keeps
/// beside them, the structure itself)`; the caller measures the heap before and after.
fn load(name: &str, all: &[NetAddress]) -> Option<(usize, isize, Box<dyn std::any::Any>)> {
    let rib_routes: usize = (0..all.len()).map(|i| feeds(i).count()).sum();
    let net = |p: &NetAddress| IpNet::from(*p);
    Some(match name {
        "rtm/rib" => {
            // Kept whole: the harness's list of the iBGP routes is subtracted below, as `rtm
            // bench` does.
            let l = rtm_cli::run::load(all);
            (l.routes, l.harness_bytes as isize, Box::new(l))
        }
        "rtm/rib-churned" => {
            // As `rtm/rib`, then `CHURN` (default 2,000,000) updates as `rtm bench`'s
            // writer makes them, and the garbage drained: the heap a churned table keeps
            // (the arena reuses freed blocks and never returns its chunks).
            let l = rtm_cli::run::load(all);
            churn(&l, &l.ibgp_routes, all);
            rtm::drain_deferred_garbage();
            (l.routes, l.harness_bytes as isize, Box::new(l))
        }
        "rtm/fib" => {
            let rtm = Rtm::new();
            let mut entities = Vec::new();
            for fam in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
                let e = rtm.register(fam, EntityId::new(14, 1)).ok()?;
                let items: Vec<(NetAddress, RouteParams)> = all
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.family() == fam)
                    .map(|(i, p)| {
                        (*p, RouteParams::new(20, 0).next_hop(rtm::gen::peer_next_hop(fam, (i % 32) as u8)))
                    })
                    .collect();
                for c in items.chunks(4096) {
                    drop(e.insert_routes(c).ok()?);
                }
                entities.push(e);
            }
            rtm::drain_deferred_garbage();
            (all.len(), 0, Box::new((rtm, entities)))
        }
        "prefix-trie/rib" => {
            let mut m: JointPrefixMap<IpNet, Box<[Route]>> = JointPrefixMap::new();
            for (i, p) in all.iter().enumerate() {
                let _ = m.insert(net(p), routes(i, p));
            }
            (rib_routes, 0, Box::new(m))
        }
        "prefix-trie/rib-ids" => {
            let mut m: JointPrefixMap<IpNet, Box<[(u32, u32)]>> = JointPrefixMap::new();
            for (i, p) in all.iter().enumerate() {
                let _ = m.insert(net(p), ids(i));
            }
            (rib_routes, 0, Box::new(m))
        }
        "prefix-trie/fib" => {
            let mut m: JointPrefixMap<IpNet, u32> = JointPrefixMap::new();
            for (i, p) in all.iter().enumerate() {
                let _ = m.insert(net(p), (i % 32) as u32);
            }
            (all.len(), 0, Box::new(m))
        }
        "ip_network_table/rib" => {
            let mut m: IpNetworkTable<Box<[Route]>> = IpNetworkTable::new();
            for (i, p) in all.iter().enumerate() {
                let _ = m.insert(ip_net(p), routes(i, p));
            }
            (rib_routes, 0, Box::new(m))
        }
        "ip_network_table/rib-ids" => {
            let mut m: IpNetworkTable<Box<[(u32, u32)]>> = IpNetworkTable::new();
            for (i, p) in all.iter().enumerate() {
                let _ = m.insert(ip_net(p), ids(i));
            }
            (rib_routes, 0, Box::new(m))
        }
        "ip_network_table/fib" => {
            let mut m: IpNetworkTable<u32> = IpNetworkTable::new();
            for (i, p) in all.iter().enumerate() {
                let _ = m.insert(ip_net(p), (i % 32) as u32);
            }
            (all.len(), 0, Box::new(m))
        }
        "rotonda-store/rib" => {
            let r = rtm_benches::Rotonda::new(&[]);
            for (i, p) in all.iter().enumerate() {
                feeds(i).for_each(|(feed, ..)| r.insert(p, feed));
            }
            (rib_routes, 0, Box::new(r))
        }
        "rotonda-store/fib" => (all.len(), 0, Box::new(rtm_benches::Rotonda::new(all))),
        _ => return None,
    })
}

/// `CHURN` updates on a loaded `rib`: IPv4 re-announcements of the eBGP routes with a
/// changed preference and metric, 64 per `insert_routes` call (15 of 16 steps), and an
/// iBGP route withdrawn and announced again (every 16th; `ibgp` are that feed's routes).
/// The route count ends as it began.
fn churn(l: &rtm_cli::run::Loaded, ibgp_routes: &[(NetAddress, RouteParams)], all: &[NetAddress]) {
    let n: usize = std::env::var("CHURN").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let v4: Vec<NetAddress> = all.iter().filter(|p| p.family() == AddressFamily::Ipv4).copied().collect();
    let ibgp: Vec<usize> =
        (0..ibgp_routes.len()).filter(|&k| ibgp_routes[k].0.family() == AddressFamily::Ipv4).collect();
    let mut r = rtm::gen::SplitMix64::new(7);
    let mut batch = Vec::with_capacity(64);
    for j in 0..n {
        if j % 16 == 15 && !ibgp.is_empty() {
            let (p, params) = &ibgp_routes[ibgp[r.below(ibgp.len() as u64) as usize]];
            let _ = l.ibgp[0].withdraw_route(p, None);
            let _ = l.ibgp[0].insert_route(p, params.clone());
            continue;
        }
        let i = r.below(v4.len() as u64) as usize;
        let nh = rtm::gen::peer_next_hop(AddressFamily::Ipv4, (i % 32) as u8);
        batch.push((v4[i], RouteParams::new(20 + r.below(3) as u32, r.below(10) as u32).next_hop(nh)));
        if batch.len() == 64 {
            let _ = l.ebgp[0].insert_routes(&batch);
            batch.clear();
        }
    }
}

fn ip_net(p: &NetAddress) -> ip_network::IpNetwork {
    let n = IpNet::from(*p);
    ip_network::IpNetwork::new(n.network(), n.prefix_len()).expect("a normalized prefix")
}

const NAMES: [&str; 11] = [
    "rtm/rib",
    "rtm/rib-churned",
    "prefix-trie/rib",
    "prefix-trie/rib-ids",
    "ip_network_table/rib",
    "ip_network_table/rib-ids",
    "rotonda-store/rib",
    "rtm/fib",
    "prefix-trie/fib",
    "ip_network_table/fib",
    "rotonda-store/fib",
];

fn main() {
    let Some(name) = std::env::args().nth(1) else {
        // One process per structure (module docs); each prints its own line.
        println!("{:<24} {:>9} {:>10} {:>14}", "structure/shape", "routes", "MiB", "bytes/route");
        for n in NAMES {
            let exe = std::env::current_exe().expect("the running binary's path");
            match std::process::Command::new(exe).arg(n).status() {
                Ok(s) if s.success() => {}
                other => eprintln!("{n}: the child failed: {other:?}"),
            }
        }
        return;
    };
    let (_, v4, v6) = rtm_benches::full_table();
    let all: Vec<NetAddress> = v4.into_iter().chain(v6).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let Some((routes, harness, kept)) = load(&name, &all) else {
        eprintln!("unknown structure {name:?}; one of {NAMES:?}");
        std::process::exit(2);
    };
    let bytes = LIVE.load(Ordering::Relaxed) - before - harness;
    println!(
        "{name:<24} {routes:>9} {:>10.1} {:>14.1}",
        bytes as f64 / (1u64 << 20) as f64,
        bytes as f64 / routes as f64
    );
    drop(kept);
}
