//! [`Interner`]: hash-consing of immutable values, so that equal values share one
//! reference-counted block ([`Counted`]: arena-allocated).
//!
//! # Why
//! A route's version ([`RouteInfo`](crate::route::RouteInfo)) holds only what its owner set
//! (preference, metric, next hops, ...), and a routing feed has few distinct sets of those
//! per entity (a BGP peer's routes share its next hop; the metrics take a handful of
//! values). Sharing one block per distinct version, as routing daemons share path
//! attributes, removes one allocation per route from the table's memory and from every add.
//!
//! # Design
//! * `SHARDS` mutex-protected maps from a value's 64-bit hash to its block, the shard chosen
//!   by the hash. The hash is a per-interner randomly seeded multiply-rotate over the
//!   value's words with a SplitMix64 finish (std's SipHash took ~5 % of a load in its
//!   per-field writes); the seed keeps crafted values from piling into one probe chain. Only writers (adds and updates) take a shard's lock, for a probe and
//!   possibly an insert; readers never see the interner.
//! * A value whose hash is already taken by a *different* value (a 64-bit collision) is
//!   simply not cached: `intern` then returns a fresh block. Sharing is an optimisation, so
//!   correctness never depends on it.
//! * Entries nobody else holds (strong count 1: only the map) are swept when a shard has
//!   doubled since its last sweep, so the cost is amortised O(1) per insert and the map
//!   stays within twice the number of live distinct values (plus `MIN_SWEEP` per shard).
//!   Counts are read under the shard lock, and every clone handed out is made under that
//!   lock, so an entry seen at count 1 cannot be in the middle of being handed out.
//! * Under `cfg(loom)` `intern` always allocates: the cache is plain mutual exclusion over
//!   immutable values (no lock-free code to model), and keeping it out of the models keeps
//!   their state space to the algorithms they check. Unit tests, miri and TSan cover it.

use super::Counted;
#[cfg(not(loom))]
use std::collections::HashMap;
use std::hash::Hash;

// Smaller under miri, whose interpretation makes the unit tests' thousands of values slow.
#[cfg(not(loom))]
const SHARDS: usize = if cfg!(miri) { 2 } else { 16 };
#[cfg(not(loom))]
const MIN_SWEEP: usize = if cfg!(miri) { 8 } else { 64 };

/// See the module docs.
pub(crate) struct Interner<T> {
    #[cfg(not(loom))]
    seed: u64,
    #[cfg(not(loom))]
    shards: [std::sync::Mutex<Shard<T>>; SHARDS],
    #[cfg(loom)]
    _values: core::marker::PhantomData<T>,
}

#[cfg(not(loom))]
struct Shard<T> {
    /// Keyed by the value's hash (already mixed: the map does not hash again).
    map: HashMap<u64, Counted<T>, core::hash::BuildHasherDefault<Prehashed>>,
    sweep_at: usize,
}

/// The values' hasher (see the module docs).
#[cfg(not(loom))]
struct Mix(u64);

#[cfg(not(loom))]
impl core::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u8(&mut self, w: u8) {
        self.write_u64(u64::from(w));
    }
    fn write_u16(&mut self, w: u16) {
        self.write_u64(u64::from(w));
    }
    fn write_u32(&mut self, w: u32) {
        self.write_u64(u64::from(w));
    }
    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64);
    }
}

/// A `Hasher` for keys that are already hashes.
#[cfg(not(loom))]
#[derive(Default)]
struct Prehashed(u64);

#[cfg(not(loom))]
impl core::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with it; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
}

impl<T: Eq + Hash> Interner<T> {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
            },
            #[cfg(not(loom))]
            shards: core::array::from_fn(|_| {
                std::sync::Mutex::new(Shard { map: HashMap::default(), sweep_at: MIN_SWEEP })
            }),
            #[cfg(loom)]
            _values: core::marker::PhantomData,
        }
    }

    /// A reference to a value equal to `v`: a shared one if the interner has one.
    pub(crate) fn intern(&self, v: T) -> Counted<T> {
        #[cfg(loom)]
        return Counted::new(v);
        #[cfg(not(loom))]
        {
            use std::hash::Hasher;
            let mut m = Mix(self.seed);
            v.hash(&mut m);
            let h = m.finish();
            // The low bits pick the map's bucket; take the shard from the high ones.
            let shard = &self.shards[(h >> 60) as usize % SHARDS];
            // A panic never happens under this lock (no user code runs there), but a
            // poisoned lock still guards a consistent map: use it.
            let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = s.map.get(&h) {
                return if **a == v { a.clone() } else { Counted::new(v) };
            }
            if s.map.len() >= s.sweep_at {
                s.map.retain(|_, a| Counted::count(a) > 1);
                s.sweep_at = (2 * s.map.len()).max(MIN_SWEEP);
            }
            let a = Counted::new(v);
            s.map.insert(h, a.clone());
            a
        }
    }

    /// Forgets every value (their other holders keep theirs): for an owner that will
    /// intern no more (a deregistered entity, which destinations it created may keep
    /// allocated for a long time; see `identity.rs`).
    pub(crate) fn clear(&self) {
        #[cfg(not(loom))]
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
            s.map = HashMap::default();
            s.sweep_at = MIN_SWEEP;
        }
    }

    /// Values the interner holds (test and memory accounting).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        #[cfg(loom)]
        return 0;
        #[cfg(not(loom))]
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len()).sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_arc() {
        let i = Interner::new();
        let a = i.intern(String::from("a"));
        let b = i.intern(String::from("a"));
        let c = i.intern(String::from("c"));
        assert!(Counted::ptr_eq(&a, &b));
        assert!(!Counted::ptr_eq(&a, &c));
        assert_eq!(*c, "c");
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn unused_values_are_swept_and_used_ones_kept() {
        let i = Interner::new();
        let kept: Vec<Counted<u32>> = (0..100).map(|n| i.intern(n)).collect();
        // Many values nobody keeps: each shard sweeps once it doubles.
        for n in 1000..(1000 + 16 * MIN_SWEEP as u32 * SHARDS as u32) {
            drop(i.intern(n));
        }
        // The documented bound: twice the live values, plus `MIN_SWEEP` per shard (without
        // sweeping, all 16 x MIN_SWEEP x SHARDS dropped values would still be there).
        assert!(i.len() <= 2 * 100 + MIN_SWEEP * SHARDS, "{} entries left", i.len());
        // The kept ones are still shared.
        for (n, a) in kept.iter().enumerate() {
            assert!(Counted::ptr_eq(a, &i.intern(n as u32)));
        }
    }

    #[test]
    fn clear_forgets_the_values_and_keeps_working() {
        let i = Interner::new();
        let a = i.intern(7u32);
        i.clear();
        assert_eq!(i.len(), 0);
        assert_eq!(Counted::count(&a), 1, "the holder keeps its value");
        let b = i.intern(7u32);
        assert!(!Counted::ptr_eq(&a, &b), "a cleared value is no longer shared");
        assert!(Counted::ptr_eq(&b, &i.intern(7u32)));
    }

    #[test]
    fn concurrent_interning_hands_out_one_arc_per_value() {
        let i = Interner::new();
        let per: Vec<Vec<Counted<u32>>> = std::thread::scope(|s| {
            let hs: Vec<_> =
                (0..4).map(|_| s.spawn(|| (0..200).map(|n| i.intern(n % 50)).collect())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for v in &per {
            for a in v {
                assert!(Counted::ptr_eq(a, &per[0][**a as usize]));
            }
        }
    }
}
