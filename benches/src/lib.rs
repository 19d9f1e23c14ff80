//! Shared helpers for the rtm benches: the data set (the real full table from
//! `../shared/data` when present, else rtm's deterministic generator), table loading and
//! the churn benches' batched writer.

pub mod peers;
pub use peers::Rotonda;

use rtm::{gen, AddressFamily, EntityId, EntityRef, NetAddress, NextHop, RouteParams, RouteRef, Rtm};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

/// Where the shared data sets live: `$RTM_DATA_DIR`, else `../shared/data` beside the
/// repository.
pub fn data_dir() -> PathBuf {
    std::env::var_os("RTM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")))
}

/// Reads a prefix list (one CIDR per line, gzip or plain).
pub fn read_prefix_list(path: &std::path::Path) -> std::io::Result<Vec<NetAddress>> {
    let f = std::fs::File::open(path)?;
    let r: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    let mut out = Vec::new();
    for line in r.lines() {
        let line = line?;
        let s = line.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        match s.parse() {
            Ok(p) => out.push(p),
            Err(e) => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{s:?}: {e}")))
            }
        }
    }
    Ok(out)
}

/// The data set: `(name, ipv4 prefixes, ipv6 prefixes)`. The real 2023 full table if
/// present, else a generated one of the same size (announced on stderr either way).
pub fn full_table() -> (&'static str, Vec<NetAddress>, Vec<NetAddress>) {
    let path = data_dir().join("fulltable-2023-v4v6.prefixes.txt.gz");
    match read_prefix_list(&path) {
        Ok(all) => {
            let (v4, v6) = all.into_iter().partition(|p| p.family() == AddressFamily::Ipv4);
            eprintln!("data: real full table {}", path.display());
            ("real", v4, v6)
        }
        Err(e) => {
            eprintln!("data: {} unavailable ({e}); using the generated table", path.display());
            (
                "generated",
                gen::ipv4_table(901_899, 1).expect("within the limit"),
                gen::ipv6_table(160_147, 1).expect("within the limit"),
            )
        }
    }
}

/// Distinct next hops of [`load_rtm`]'s routes: as many as the distinct values the
/// lookup benches give the peers (`i % 64 + 1`), and about what a forwarding table holds
/// (one per neighbour). `load_rtm_with(prefixes, prefixes.len())` gives every route a next
/// hop of its own instead, the worst case: one version per route (`RouteInfo`), a cache
/// line each that a lookup reads after the leaf (BENCHMARKS.md, session 23).
pub const NEXT_HOPS: usize = 64;

/// An instance with `prefixes` loaded as routes of one entity, each with one next hop
/// ([`NEXT_HOPS`] distinct ones), without handles (every prefix a lone route,
/// `rtm/src/leaf.rs`; the handle-returning lookups promote the prefixes they return).
pub fn load_rtm(prefixes: &[NetAddress]) -> Rtm {
    load_rtm_with(prefixes, NEXT_HOPS)
}

/// [`load_rtm`] with `hops` distinct next hops: route `i`'s is `prefixes[i % hops]`'s
/// address, through interface `i % 64 + 1`.
pub fn load_rtm_with(prefixes: &[NetAddress], hops: usize) -> Rtm {
    let rtm = Rtm::new();
    let fam = prefixes.first().map_or(AddressFamily::Ipv4, |p| p.family());
    let e = rtm.register(fam, EntityId::new(14, 1)).expect("fresh instance");
    let hops = hops.clamp(1, prefixes.len().max(1));
    for (i, p) in prefixes.iter().enumerate() {
        let nh = NextHop::new(prefixes[i % hops], (i % 64) as u32 + 1);
        let _ = e.insert_route(p, RouteParams::new(20, 0).next_hop(nh)).expect("valid route");
    }
    rtm
}

/// Adds `n` more feeds of every prefix to `rtm`, as a router with more full-table peers
/// sees them: entities `(9, x)` for `x` in `0..n`, each announcing every prefix with
/// preference `15 + x`, metric `i % 7` and peer next hop `i % 32` (the churn writers'
/// parameters), 4,096 per `add_routes` call; the routes are kept.
pub fn add_feeds(rtm: &Rtm, prefixes: &[NetAddress], n: u32) {
    let fam = prefixes.first().map_or(AddressFamily::Ipv4, |p| p.family());
    for x in 0..n {
        let e = rtm.register(fam, EntityId::new(9, x)).expect("a fresh entity");
        let items: Vec<_> = prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let nh = gen::peer_next_hop(fam, (i % 32) as u8);
                (*p, RouteParams::new(15 + x, (i % 7) as u32).next_hop(nh))
            })
            .collect();
        for c in items.chunks(4096) {
            e.add_routes(c).expect("a registered entity");
        }
    }
}

/// `n` in-table host addresses (inside randomly chosen table prefixes) and `n` uniformly
/// random addresses of the family.
pub fn queries(prefixes: &[NetAddress], n: usize, seed: u64) -> (Vec<NetAddress>, Vec<NetAddress>) {
    let mut r = gen::SplitMix64::new(seed);
    let inside =
        (0..n).map(|_| gen::host_in(&prefixes[r.below(prefixes.len() as u64) as usize], &mut r)).collect();
    let fam = prefixes[0].family();
    let any = NetAddress::new(fam, &[0; 16], 0).expect("/0 is valid");
    let random = (0..n).map(|_| gen::host_in(&any, &mut r)).collect();
    (inside, random)
}

/// The churn writers' step `i` draws this index into a list of `len` prefixes.
#[inline]
pub fn churn_key(i: u64, len: usize) -> usize {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % len
}

/// Steps in a [`ChurnInput`]: more than the churn bench's untimed steps (`PRE_CHURN`, 3 Mi),
/// which follow [`churn_key`]'s sequence; later steps repeat the ring, at destinations last
/// written 4 Mi steps before (as cold as fresh draws).
pub const CHURN_RING: usize = 1 << 22;

/// The churn writers' input, made before the clock starts: for each step, in order, the
/// index [`churn_key`] draws and a copy of that prefix. A writer consumes its updates as a
/// stream (an MRT file in `rtm replay`, a BGP session's UPDATE messages), with each
/// update's prefix at hand. Read at random from the prefix list (16 MB for the IPv4
/// table), the prefix was a cache miss of the harness's own, the first link of every
/// step's chain of misses: 13-14 % of a route-by-route step's time (BENCHMARKS.md, session
/// 31). Read in order, the ring's lines are streamed by the hardware prefetcher. Step `i`
/// reads entry `i % CHURN_RING`.
pub struct ChurnInput<T> {
    ring: Box<[(u32, T)]>,
}

impl<T: Copy> ChurnInput<T> {
    /// The input of steps `0..CHURN_RING` over `items` (not empty).
    pub fn new(items: &[T]) -> Self {
        assert!(!items.is_empty() && items.len() <= u32::MAX as usize, "a prefix list");
        let ring = (0..CHURN_RING as u64)
            .map(|i| {
                let k = churn_key(i, items.len());
                (k as u32, items[k])
            })
            .collect();
        Self { ring }
    }

    /// Step `i`'s index into the list and its prefix.
    #[inline]
    pub fn get(&self, i: u64) -> (usize, &T) {
        let (k, p) = &self.ring[i as usize % CHURN_RING];
        (*k as usize, p)
    }
}

/// The churn benches' batched writer, one step at a time: an entity of its own re-announces
/// random prefixes of `prefixes` with changing preferences and every 16th step withdraws
/// the route it has there instead; re-announcements go 64 per `add_routes` call and
/// withdrawals 64 per `delete_routes` call (a BGP speaker applying UPDATE messages' NLRI
/// together). It keeps the handle of each route it has, for the withdrawals.
pub struct BatchedChurn<'a> {
    entity: EntityRef,
    input: &'a ChurnInput<NetAddress>,
    refs: Vec<Option<RouteRef>>,
    adds: Vec<(NetAddress, RouteParams)>,
    keys: Vec<usize>,
    dels: Vec<RouteRef>,
}

impl<'a> BatchedChurn<'a> {
    /// A writer registered in `rtm` as entity `(8, instance)` of the family of `prefixes`
    /// (the list `input` was made from).
    pub fn new(rtm: &Rtm, prefixes: &[NetAddress], input: &'a ChurnInput<NetAddress>, instance: u32) -> Self {
        let fam = prefixes.first().map_or(AddressFamily::Ipv4, |p| p.family());
        let entity = rtm.register(fam, EntityId::new(8, instance)).expect("a fresh entity");
        let refs = vec![None; prefixes.len()];
        Self { entity, input, refs, adds: Vec::new(), keys: Vec::new(), dels: Vec::new() }
    }

    /// Step `i` (steps are numbered from 0; every 64th sends the calls).
    pub fn step(&mut self, i: u64) {
        let (k, p) = self.input.get(i);
        if i % 16 == 15 {
            self.dels.extend(self.refs[k].take());
        } else {
            let nh = gen::peer_next_hop(p.family(), (k % 32) as u8);
            self.adds.push((*p, RouteParams::new(10 + (i % 20) as u32, (k % 7) as u32).next_hop(nh)));
            self.keys.push(k);
        }
        if i % 64 == 63 {
            let _ = self.entity.delete_routes(&self.dels);
            self.dels.clear();
            if let Ok(res) = self.entity.add_routes(&self.adds) {
                for (&k, r) in self.keys.iter().zip(res) {
                    self.refs[k] = r.ok().map(|(r, _)| r);
                }
            }
            self.adds.clear();
            self.keys.clear();
        }
    }
}

/// The churn benches' step on the `RwLock`ed prefix-trie peer, step `i`: a write lock per
/// step, then re-insert the step's prefix (its value the step number), or every 16th step
/// remove it, as rtm's churn writers withdraw every 16th.
pub fn locked_step<N: prefix_trie::Prefix + Copy>(
    map: &std::sync::RwLock<prefix_trie::PrefixMap<N, u32>>,
    input: &ChurnInput<N>,
    i: u64,
) {
    let (_, key) = input.get(i);
    let mut m = map.write().expect("not poisoned");
    if i % 16 == 15 {
        m.remove(key);
    } else {
        m.insert(*key, i as u32);
    }
}
