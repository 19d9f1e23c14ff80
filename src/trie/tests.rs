//! Unit tests of the trie against a brute-force model.

use super::*;
use crate::prefix::NetAddress;
use crate::sync::epoch;
use std::collections::{BTreeMap, HashMap};

fn p(s: &str) -> NetAddress {
    s.parse().unwrap()
}

/// A trie of test words: each insertion stores a fresh word (`n << 4`: no tag bits) and
/// remembers its prefix, so a found cell is checked against the prefix it was stored for.
struct Fixture {
    trie: Trie,
    names: HashMap<usize, NetAddress>,
    next: usize,
}

impl Fixture {
    fn new(max: u8) -> Self {
        Self { trie: Trie::new(max), names: HashMap::new(), next: 1 }
    }
    fn word(&mut self, a: NetAddress) -> usize {
        let w = self.next << 4;
        self.next += 1;
        self.names.insert(w, a);
        w
    }
    /// The prefix a found cell's word was stored for.
    fn name(&self, c: Cell<'_>) -> NetAddress {
        self.names[&(c.word().load(Ordering::Relaxed) & !FROZEN)]
    }
    fn insert(&mut self, a: NetAddress) -> bool {
        let w = self.word(a);
        let g = epoch::pin();
        match self.trie.insert(&a, w, &g) {
            Ok(()) => true,
            Err(c) => {
                assert_eq!(self.name(c), a, "the existing cell is {a}'s");
                false
            }
        }
    }
    /// Batch-inserts `batch` (any order, distinct); returns which prefixes were new, in
    /// the order given, and checks that each refused one reports the cell stored there.
    fn insert_batch(&mut self, batch: &[NetAddress]) -> Vec<bool> {
        let mut sorted: Vec<(usize, NetAddress)> = batch.iter().copied().enumerate().collect();
        sorted.sort_by_key(|&(_, a)| (*a.bytes(), a.len()));
        let items: Vec<(NetAddress, usize)> = sorted.iter().map(|&(_, a)| (a, self.word(a))).collect();
        let g = epoch::pin();
        let mut out = vec![None; items.len()];
        self.trie.insert_batch(&items, &g, &mut out);
        let mut fresh = vec![false; batch.len()];
        for ((i, a), r) in sorted.iter().zip(out) {
            match r.expect("every item decided") {
                Ok(()) => fresh[*i] = true,
                Err(c) => assert_eq!(self.name(c), *a, "the existing cell is {a}'s"),
            }
        }
        fresh
    }
    /// Batch-removes `batch` (any order) with the words stored now; returns which were
    /// removed, in the order given. `stale` prefixes are passed with a wrong expected
    /// word, which must be refused.
    fn remove_batch(&mut self, batch: &[NetAddress], stale: &[NetAddress]) -> Vec<bool> {
        let g = epoch::pin();
        let bogus = usize::MAX << 4;
        let mut items: Vec<(usize, NetAddress, usize)> = batch
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let v = if stale.contains(a) {
                    bogus
                } else {
                    self.trie.get(a, &g).map_or(bogus, |c| c.word().load(Ordering::Relaxed))
                };
                (i, *a, v)
            })
            .collect();
        items.sort_by_key(|&(_, a, _)| (*a.bytes(), a.len()));
        let flat: Vec<(NetAddress, usize)> = items.iter().map(|&(_, a, v)| (a, v)).collect();
        let mut out = vec![None; flat.len()];
        self.trie.remove_batch(&flat, &g, &mut out);
        let mut res = vec![false; batch.len()];
        for ((i, _, _), r) in items.iter().zip(out) {
            res[*i] = r.expect("every item decided");
        }
        res
    }
    fn remove(&mut self, a: NetAddress) -> bool {
        let g = epoch::pin();
        let Some(c) = self.trie.get(&a, &g) else {
            return false;
        };
        self.trie.remove(&a, c.word().load(Ordering::Relaxed), &g)
    }
    /// The longest match of `a`, checking that the cell computes its own prefix.
    fn lookup(&self, a: &NetAddress) -> Option<NetAddress> {
        let g = epoch::pin();
        self.trie.lookup(a.bytes(), &g).map(|c| {
            assert_eq!(c.prefix_of(a), self.name(c), "the cell's prefix length");
            self.name(c)
        })
    }
    /// Every stored prefix in enumeration order, checking the prefix `for_each` computes.
    fn all(&self) -> Vec<NetAddress> {
        let g = epoch::pin();
        let mut out = Vec::new();
        self.trie.for_each(&g, &mut |a, c| {
            assert_eq!(a, self.name(c));
            out.push(a)
        });
        out
    }
}

#[test]
fn locate_positions() {
    assert_eq!(locate(&p("0.0.0.0/0")), (0, 1));
    assert_eq!(locate(&p("128.0.0.0/1")), (0, 3));
    assert_eq!(locate(&p("10.0.0.0/8")), (0, 256 + 10));
    assert_eq!(locate(&p("10.128.0.0/9")), (1, 3));
    assert_eq!(locate(&p("10.1.2.0/24")), (2, 256 + 2));
    assert_eq!(locate(&p("10.1.2.3/32")), (3, 256 + 3));
}

#[test]
fn insert_get_lookup_remove() {
    let mut f = Fixture::new(32);
    for s in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "10.1.2.3/32"] {
        assert!(f.insert(p(s)), "{s}");
    }
    assert!(!f.insert(p("10.1.0.0/16")), "duplicate insert returns the existing value");
    assert_eq!(f.lookup(&p("10.1.2.3")), Some(p("10.1.2.3/32")));
    assert_eq!(f.lookup(&p("10.1.2.200")), Some(p("10.1.2.128/25")));
    assert_eq!(f.lookup(&p("10.1.2.4")), Some(p("10.1.2.0/24")));
    assert_eq!(f.lookup(&p("10.1.3.4")), Some(p("10.1.0.0/16")));
    assert_eq!(f.lookup(&p("10.2.3.4")), Some(p("10.0.0.0/8")));
    assert_eq!(f.lookup(&p("11.2.3.4")), Some(p("0.0.0.0/0")));
    {
        let g = epoch::pin();
        let m: Vec<_> = f.trie.matches(p("10.1.2.3").bytes(), 24, &g).iter().map(|&c| f.name(c)).collect();
        assert_eq!(m, vec![p("10.1.2.0/24"), p("10.1.0.0/16"), p("10.0.0.0/8"), p("0.0.0.0/0")]);
    }
    assert!(f.remove(p("10.1.2.3/32")));
    assert!(!f.remove(p("10.1.2.3/32")));
    assert_eq!(f.lookup(&p("10.1.2.3")), Some(p("10.1.2.0/24")));
    assert!(f.remove(p("0.0.0.0/0")));
    assert_eq!(f.lookup(&p("11.2.3.4")), None);
}

#[test]
fn emptied_nodes_are_pruned() {
    let mut f = Fixture::new(32);
    assert!(f.insert(p("10.1.2.3/32")));
    {
        let g = epoch::pin();
        // The root, and the /16's depth-2 and depth-3 nodes (the top table links the first).
        assert_eq!(f.trie.node_stats(&g).0, 3);
    }
    assert!(f.remove(p("10.1.2.3/32")));
    {
        let g = epoch::pin();
        assert_eq!(f.trie.node_stats(&g).0, 1, "all levels below the root are unlinked");
    }
    assert!(f.insert(p("10.1.2.3/32")), "re-insert after pruning");
    assert_eq!(f.lookup(&p("10.1.2.3")), Some(p("10.1.2.3/32")));
}

#[test]
fn enumeration_order() {
    let mut f = Fixture::new(32);
    let mut v: Vec<NetAddress> = [
        "10.1.0.0/16",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "10.0.0.0/16",
        "9.0.0.0/8",
        "10.0.0.0/9",
        "10.128.0.0/9",
        "10.1.2.0/24",
        "10.1.0.0/24",
        "10.1.0.0/17",
    ]
    .iter()
    .map(|s| p(s))
    .collect();
    for a in &v {
        assert!(f.insert(*a));
    }
    v.sort();
    assert_eq!(f.all(), v);
}

/// A small deterministic generator (xorshift) so the test needs no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn model_lpm(m: &BTreeMap<NetAddress, ()>, a: &NetAddress) -> Option<NetAddress> {
    if m.len() < 64 {
        // Small models (miri's): a scan is cheaper than up to 129 probes.
        return m.keys().filter(|p| p.contains(a)).max_by_key(|p| p.len()).copied();
    }
    (0..=a.len()).rev().map(|l| a.truncate(l)).find(|q| m.contains_key(q))
}

#[test]
fn random_against_model_v4_and_v6() {
    for (fam_max, v6) in [(32u8, false), (128u8, true)] {
        let mut f = Fixture::new(fam_max);
        let mut m = BTreeMap::new();
        let mut r = Rng(0x9e3779b97f4a7c15);
        for i in 0..if cfg!(miri) { 30 } else { 4000 } {
            let mut b = [0u8; 16];
            // Few distinct high bytes, so prefixes nest and nodes are shared and pruned.
            b[0] = (r.next() % 4) as u8 * 64;
            for x in b.iter_mut().skip(1) {
                *x = (r.next() % 3) as u8;
            }
            let len = (r.next() % (fam_max as u64 + 1)) as u8;
            let fam = if v6 { crate::AddressFamily::Ipv6 } else { crate::AddressFamily::Ipv4 };
            let a = NetAddress::new(fam, &b, len).unwrap();
            if r.next() % 3 == 0 {
                assert_eq!(f.remove(a), m.remove(&a).is_some(), "remove {a} at {i}");
            } else {
                assert_eq!(f.insert(a), m.insert(a, ()).is_none(), "insert {a} at {i}");
            }
            let mut q = b;
            q[0] = (r.next() % 4) as u8 * 64;
            let host = NetAddress::new(fam, &q, fam_max).unwrap();
            assert_eq!(f.lookup(&host), model_lpm(&m, &host), "lookup {host} at {i}");
        }
        assert_eq!(f.all(), m.keys().copied().collect::<Vec<_>>());
        // Remove everything: only the root is left.
        for a in m.keys() {
            assert!(f.remove(*a));
        }
        let g = epoch::pin();
        assert_eq!(f.trie.node_stats(&g).0, 1);
    }
}

/// Exact match answers from the leaf of a prefix's first slot when it can (`Trie::find`):
/// check every prefix of a dense region, present or absent, shadowed at its first slot by
/// a more specific one or not, against the model, single and batched.
#[test]
fn exact_match_in_dense_nodes_against_model() {
    let mut r = Rng(0x5151_2024);
    let fam = crate::AddressFamily::Ipv4;
    // All prefixes of lengths 16..=26 under 10.1.0.0/16 (they live in the depth-1, -2 and
    // -3 nodes under 10.1); under miri, whose node copies are slow, lengths 17..=20 (one
    // depth-2 node with 30 possible prefixes, still with shadowed first slots).
    let lens = if cfg!(miri) { 17..=20u8 } else { 16..=26u8 };
    let all: Vec<NetAddress> = lens
        .flat_map(|len| {
            (0..1u32 << (len - 16)).map(move |i| {
                let a = (10u32 << 24) | (1 << 16) | (i << (32 - len));
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.to_be_bytes());
                NetAddress::new(fam, &b, len).unwrap()
            })
        })
        .collect();
    for density in [2u64, 5, 20] {
        let mut f = Fixture::new(32);
        let mut m = BTreeMap::new();
        for a in &all {
            if r.next() % density == 0 {
                assert!(f.insert(*a));
                m.insert(*a, ());
            }
        }
        let g = epoch::pin();
        for a in &all {
            assert_eq!(f.trie.get(a, &g).map(|c| f.name(c)), m.get_key_value(a).map(|(k, _)| *k), "get {a}");
        }
        for w in all.chunks(BATCH) {
            let mut got = [None; BATCH];
            f.trie.get_batch(w, &g, &mut got);
            for (a, v) in w.iter().zip(got) {
                assert_eq!(v.map(|c| f.name(c)), m.get_key_value(a).map(|(k, _)| *k), "get_batch {a}");
            }
        }
    }
}

/// Batched walks that end at every depth, in one chunk, against single lookups and the
/// model: an IPv6 path with a prefix every few levels down to a /128, branches off it at
/// every byte, and the path's deeper prefixes removed again (walks that go on past their
/// match and read the runs they skipped on the way up). The chunks are the queries in
/// several orders, so the walks still going at a level are every subset.
#[test]
fn batched_walks_of_every_depth_against_single_ones() {
    let fam = crate::AddressFamily::Ipv6;
    let mut f = Fixture::new(128);
    let mut m = BTreeMap::new();
    let path =
        [0x20u8, 0x01, 0x0d, 0xb8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc];
    let mut add = |f: &mut Fixture, b: [u8; 16], len: u8| {
        let a = NetAddress::new(fam, &b, len).unwrap();
        assert!(f.insert(a));
        m.insert(a, ());
    };
    // On the path: lengths 0, 12, 28, 44, ..., 124, 128 (inside nodes, not at their edges).
    for len in (12..128).step_by(16).chain([0, 128]) {
        add(&mut f, path, len as u8);
    }
    // A branch off the path at every byte, one byte long, so walks leave the path there.
    for d in 1..16 {
        let mut b = path;
        b[d] ^= 0x80;
        add(&mut f, b, 8 * d as u8 + 8);
    }
    // Queries: the path's host, and for every byte a host that leaves the path there (in
    // the branch, and beside it), so walks end at every depth.
    let mut hosts = vec![path];
    for d in 0..16 {
        for flip in [0x80u8, 0x01] {
            let mut b = path;
            b[d] ^= flip;
            hosts.push(b);
        }
    }
    let hosts: Vec<NetAddress> = hosts.iter().map(|b| NetAddress::new(fam, b, 128).unwrap()).collect();
    let check = |f: &Fixture, m: &BTreeMap<NetAddress, ()>, round: usize| {
        let g = epoch::pin();
        let mut r = Rng(0x7777 + round as u64);
        // Under miri (about 0.1 s per lookup here): the given order only, and below only
        // the deepest removal.
        for order in 0..if cfg!(miri) { 1 } else { 6 } {
            let mut q = hosts.clone();
            if order > 0 {
                for i in (1..q.len()).rev() {
                    q.swap(i, (r.next() % (i as u64 + 1)) as usize);
                }
            }
            for w in q.chunks(if order % 2 == 0 { BATCH } else { 7 }) {
                let mut got = [None; BATCH];
                f.trie.lookup_batch(w, &g, &mut got);
                for (a, c) in w.iter().zip(got) {
                    let want = model_lpm(m, a);
                    assert_eq!(c.map(|c| f.name(c)), want, "batched {a}, round {round}");
                    assert_eq!(f.lookup(a), want, "single {a}, round {round}");
                }
            }
        }
    };
    check(&f, &m, 0);
    // The path's deeper prefixes go, one by one from the bottom: the walks still reach the
    // deep nodes (the branches keep them), find nothing there, and read upwards.
    let removed = if cfg!(miri) { 1 } else { 8 };
    for len in (28..128).step_by(16).chain([128]).collect::<Vec<_>>().into_iter().rev().take(removed) {
        let a = NetAddress::new(fam, &path, len as u8).unwrap();
        assert!(f.remove(a));
        m.remove(&a);
        check(&f, &m, len);
    }
}

#[test]
fn batch_insert_into_empty_and_populated_tries() {
    let mut f = Fixture::new(32);
    let first: Vec<NetAddress> =
        ["10.1.2.0/24", "0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "192.168.0.0/16"]
            .iter()
            .map(|s| p(s))
            .collect();
    assert_eq!(f.insert_batch(&first), vec![true; first.len()]);
    {
        let g = epoch::pin();
        // The root, `10` and `192` (holding /16s), `10.1` (/24s) and `10.1.2` (/32s).
        assert_eq!(f.trie.node_stats(&g).0, 5);
    }
    // A second batch: some present, some new below existing nodes, some in new subtrees.
    let second: Vec<NetAddress> =
        ["10.1.0.0/16", "10.1.3.0/24", "11.0.0.0/8", "10.1.2.3/32", "172.16.5.0/24"]
            .iter()
            .map(|s| p(s))
            .collect();
    assert_eq!(f.insert_batch(&second), vec![false, true, true, false, true]);
    assert_eq!(f.lookup(&p("10.1.3.9")), Some(p("10.1.3.0/24")));
    assert_eq!(f.lookup(&p("172.16.5.1")), Some(p("172.16.5.0/24")));
    assert_eq!(f.lookup(&p("172.16.6.1")), Some(p("0.0.0.0/0")));
    assert_eq!(f.lookup(&p("11.9.9.9")), Some(p("11.0.0.0/8")));
    let mut all: Vec<NetAddress> = first.iter().chain(&second).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(f.all(), all);
    assert!(f.insert_batch(&[]).is_empty());
}

#[test]
fn batch_insert_against_model() {
    for (fam_max, v6) in [(32u8, false), (128u8, true)] {
        let fam = if v6 { crate::AddressFamily::Ipv6 } else { crate::AddressFamily::Ipv4 };
        let mut f = Fixture::new(fam_max);
        let mut m = BTreeMap::new();
        let mut r = Rng(0x2545f4914f6cdd1d);
        // Miri interprets every node build (256-slot loops): a small instance there.
        let (rounds, max_batch, lookups) = if cfg!(miri) { (2, 6, 8) } else { (60, 40, 50) };
        for round in 0..rounds {
            let mut batch = Vec::new();
            for _ in 0..(r.next() % max_batch) {
                let mut b = [0u8; 16];
                b[0] = (r.next() % 4) as u8 * 64;
                for x in b.iter_mut().skip(1) {
                    *x = (r.next() % 3) as u8;
                }
                let a = NetAddress::new(fam, &b, (r.next() % (fam_max as u64 + 1)) as u8).unwrap();
                if !batch.contains(&a) {
                    batch.push(a);
                }
            }
            let expect: Vec<bool> = batch.iter().map(|a| !m.contains_key(a)).collect();
            assert_eq!(f.insert_batch(&batch), expect, "round {round}");
            for a in &batch {
                m.insert(*a, ());
            }
            // `get_batch` agrees with `get` (present, removed and never-seen prefixes).
            {
                let g = epoch::pin();
                let mut keys: Vec<NetAddress> = batch.iter().take(BATCH - 4).copied().collect();
                keys.extend(m.keys().take(4).copied());
                let mut got = [None; BATCH];
                f.trie.get_batch(&keys, &g, &mut got);
                for (k, v) in keys.iter().zip(got) {
                    assert_eq!(v.map(|c| f.name(c)), f.trie.get(k, &g).map(|c| f.name(c)), "get_batch {k}");
                    assert_eq!(v.is_some(), m.contains_key(k), "get_batch {k} vs model");
                }
            }
            // Some single removals between batches, so batches also land in pruned parts.
            let keys: Vec<NetAddress> = m.keys().copied().collect();
            for a in keys.iter().filter(|_| r.next() % 4 == 0) {
                assert!(f.remove(*a));
                m.remove(a);
            }
            for _ in 0..lookups {
                let mut q = [0u8; 16];
                q[0] = (r.next() % 4) as u8 * 64;
                for x in q.iter_mut().skip(1) {
                    *x = (r.next() % 3) as u8;
                }
                let host = NetAddress::new(fam, &q, fam_max).unwrap();
                assert_eq!(f.lookup(&host), model_lpm(&m, &host), "lookup {host} in round {round}");
            }
        }
        assert_eq!(f.all(), m.keys().copied().collect::<Vec<_>>());
    }
}

#[test]
fn batch_remove_against_model() {
    for (fam_max, v6) in [(32u8, false), (128u8, true)] {
        let fam = if v6 { crate::AddressFamily::Ipv6 } else { crate::AddressFamily::Ipv4 };
        let mut f = Fixture::new(fam_max);
        let mut m = BTreeMap::new();
        let mut r = Rng(0x6a09e667f3bcc909);
        let rand_prefix = |r: &mut Rng| {
            let mut b = [0u8; 16];
            b[0] = (r.next() % 4) as u8 * 64;
            for x in b.iter_mut().skip(1) {
                *x = (r.next() % 3) as u8;
            }
            NetAddress::new(fam, &b, (r.next() % (fam_max as u64 + 1)) as u8).unwrap()
        };
        let (rounds, max_new, lookups) = if cfg!(miri) { (2, 8, 8) } else { (60, 60, 30) };
        for round in 0..rounds {
            for _ in 0..(r.next() % max_new) {
                let a = rand_prefix(&mut r);
                assert_eq!(f.insert(a), m.insert(a, ()).is_none());
            }
            // Remove a random subset of the present prefixes, some absent ones, and some
            // present ones with the wrong expected value.
            let mut batch: Vec<NetAddress> = m.keys().copied().filter(|_| r.next() % 3 == 0).collect();
            let stale: Vec<NetAddress> = m.keys().copied().filter(|_| r.next() % 11 == 0).collect();
            batch.extend(stale.iter().filter(|a| !batch.contains(a)).copied().collect::<Vec<_>>());
            for _ in 0..3 {
                let a = rand_prefix(&mut r);
                if !batch.contains(&a) {
                    batch.push(a);
                }
            }
            let expect: Vec<bool> = batch.iter().map(|a| m.contains_key(a) && !stale.contains(a)).collect();
            assert_eq!(f.remove_batch(&batch, &stale), expect, "round {round}");
            for (a, gone) in batch.iter().zip(&expect) {
                if *gone {
                    m.remove(a);
                }
            }
            assert_eq!(f.all(), m.keys().copied().collect::<Vec<_>>(), "round {round}");
            for _ in 0..lookups {
                let mut q = [0u8; 16];
                q[0] = (r.next() % 4) as u8 * 64;
                for x in q.iter_mut().skip(1) {
                    *x = (r.next() % 3) as u8;
                }
                let host = NetAddress::new(fam, &q, fam_max).unwrap();
                assert_eq!(f.lookup(&host), model_lpm(&m, &host), "lookup {host} in round {round}");
            }
        }
        // Everything at once: only the root is left (emptied chains unlinked).
        let all: Vec<NetAddress> = m.keys().copied().collect();
        assert!(f.remove_batch(&all, &[]).iter().all(|&x| x));
        let g = epoch::pin();
        assert_eq!(f.trie.node_stats(&g).0, 1);
    }
}

/// Every reader against the model on prefixes of every length around the top table's
/// depth (IPv4's 2, IPv6's 3): the upper trie's deepest nodes (/9-/16 or /17-/24), the
/// top slots' nodes and below, nested and pruned, in both families. Checks single and
/// batched lookups, `matches` (all covering prefixes, longest first), exact and batched
/// exact match, enumeration, and that emptying the trie leaves the root and the top
/// table's chunks (never freed) only.
#[test]
fn every_reader_around_the_top_depth_against_model() {
    for (fam, max) in [(crate::AddressFamily::Ipv4, 32u8), (crate::AddressFamily::Ipv6, 128u8)] {
        let top = top_depth(max);
        let mut f = Fixture::new(max);
        let mut m = BTreeMap::new();
        let mut r = Rng(0xd1ce_0000 + max as u64);
        // Bytes from a small set, so prefixes nest and share nodes; lengths mostly within
        // two levels of the top depth.
        let byte = |r: &mut Rng| [0x20u8, 0x21, 0xa0][(r.next() % 3) as usize];
        let addr = |r: &mut Rng| {
            let mut b = [0u8; 16];
            b[..max as usize / 8].iter_mut().for_each(|x| *x = byte(r));
            b
        };
        let rounds = if cfg!(miri) { 40 } else { 3000 };
        for i in 0..rounds {
            let b = addr(&mut r);
            let len = match r.next() % 4 {
                0 => (r.next() % (max as u64 + 1)) as u8,
                _ => (8 * (top - 1) as u64 + r.next() % 24).min(max as u64) as u8,
            };
            let a = NetAddress::new(fam, &b, len).unwrap();
            if r.next() % 3 == 0 {
                assert_eq!(f.remove(a), m.remove(&a).is_some(), "remove {a} at {i}");
            } else {
                assert_eq!(f.insert(a), m.insert(a, ()).is_none(), "insert {a} at {i}");
            }
            if i % 50 != 49 {
                continue;
            }
            let g = epoch::pin();
            let hosts: Vec<NetAddress> =
                (0..BATCH).map(|_| NetAddress::new(fam, &addr(&mut r), max).unwrap()).collect();
            let mut got = [None; BATCH];
            f.trie.lookup_batch(&hosts, &g, &mut got);
            for (h, c) in hosts.iter().zip(got) {
                let want = model_lpm(&m, h);
                assert_eq!(f.lookup(h), want, "lookup {h} at {i}");
                assert_eq!(c.map(|c| f.name(c)), want, "batched lookup {h} at {i}");
                let qlen = (r.next() % (max as u64 + 1)) as u8;
                let q = h.truncate(qlen);
                let all: Vec<NetAddress> =
                    f.trie.matches(q.bytes(), qlen, &g).iter().map(|&c| f.name(c)).collect();
                let want: Vec<NetAddress> =
                    (0..=qlen).rev().map(|l| q.truncate(l)).filter(|p| m.contains_key(p)).collect();
                assert_eq!(all, want, "matches {q} at {i}");
            }
            let probes: Vec<NetAddress> = m
                .keys()
                .copied()
                .take(BATCH / 2)
                .chain(hosts.iter().map(|h| h.truncate((r.next() % (max as u64 + 1)) as u8)))
                .take(BATCH)
                .collect();
            let mut got = [None; BATCH];
            f.trie.get_batch(&probes, &g, &mut got);
            for (q, c) in probes.iter().zip(got) {
                let want = m.get_key_value(q).map(|(k, _)| *k);
                assert_eq!(f.trie.get(q, &g).map(|c| f.name(c)), want, "get {q} at {i}");
                assert_eq!(c.map(|c| f.name(c)), want, "get_batch {q} at {i}");
            }
            drop(g);
            assert_eq!(f.all(), m.keys().copied().collect::<Vec<_>>(), "enumeration at {i}");
        }
        let keys: Vec<NetAddress> = m.keys().copied().collect();
        assert!(keys.iter().any(|p| p.len() as usize <= 8 * top && p.len() as usize > 8 * (top - 1)));
        assert!(keys.iter().any(|p| p.len() as usize > 8 * top));
        assert_eq!(f.remove_batch(&keys, &[]), vec![true; keys.len()]);
        assert_eq!(f.all(), vec![]);
        let g = epoch::pin();
        let (nodes, bytes) = f.trie.node_stats(&g);
        assert_eq!(nodes, 1, "only the root is left");
        // The root node and the chunks: at most one per distinct byte sequence above the
        // top depth (3 values per byte).
        let chunks: usize = (0..top).map(|k| 3usize.pow(k as u32)).sum();
        assert!(bytes <= f.trie.root(&g).heap_bytes() + chunks * 2048, "{bytes} bytes left");
    }
}
