//! [`MaxSlot`]: an epoch-reclaimed *max register* of `(key, Counted<V>)` pairs that starts
//! empty (a deleted route's tombstone, keyed by the generation of the snapshot that
//! removed the route; see `route/mod.rs`, "Deletion").
//!
//! # Design
//! [`raise`](MaxSlot::raise) replaces the pair unless the slot already holds a key at
//! least as high; [`load`](MaxSlot::load) gives readers the value under a pinned guard
//! (one `Acquire` load). One address word holds the state:
//!
//! * `0`: empty;
//! * [`FIRST`]` | p`: the *first* value, `p` an `Counted::into_value` pointer the slot owns (one
//!   strong count), its key in `first_key`. No allocation: a delete storm used to take a
//!   fresh 64-byte block per route for its tombstone, and zeroing those fresh pages cost a
//!   quarter of the delete time;
//! * else the address of a [`Keyed`] arena block (values after the first: a delete attempt
//!   whose CAS lost and a retry or a second deleter; rare).
//!
//! `first_key` is the claim on the inline representation: 0 while unclaimed, then the
//! first value's key + 1, written once by the compare-exchange that claims it (a raise that
//! finds the slot empty). The claimer then publishes `FIRST | p` with a Release CAS from 0.
//! A claimer whose CAS loses (another raise got there first) gives its pointer back and
//! takes the block path; the claim stays, unused: `first_key` is read only through a word
//! tagged [`FIRST`], which only the claimer publishes.
//!
//! # Invariants
//! * The key of a published value never changes (`first_key` is written once, before its
//!   value is published; a block's key is immutable), so a CAS on the word compares keys
//!   as well as values: the register only ever rises.
//! * A replaced value is retired epoch-deferred (the inline one by dropping its `Counted`, a
//!   block by freeing it), so a reader pinned before the replacement keeps using it.

use super::epoch::Guard;
use super::epoch_cell::{block_drop, cas, retire_block};
use super::{retire_with, AtomicU64, AtomicUsize, Counted, Ordering, Touch, TrackedCell};
use core::marker::PhantomData;

/// Tag bit of a word holding the first value inline (`Counted` values' addresses are at least
/// 8-aligned: the count words precede the value).
const FIRST: usize = 1;

/// Ordering of the CAS that publishes a first value: `Release` pairs with the `Acquire`
/// loads of `load`/`raise`, so a thread that sees the tagged word also sees the claim's
/// `first_key`. Mutant `first_tomb_relaxed` weakens it (a later raise may then read an
/// unclaimed key: the debug assertion in `key_of` fails).
#[cfg(not(rtm_mutant = "first_tomb_relaxed"))]
const PUBLISH: Ordering = Ordering::AcqRel;
#[cfg(rtm_mutant = "first_tomb_relaxed")]
const PUBLISH: Ordering = Ordering::Relaxed;

/// A value after the first, in an arena block.
struct Keyed<V> {
    alive: TrackedCell<()>,
    key: u64,
    value: Counted<V>,
}

impl<V> Touch for Keyed<V> {
    #[inline(always)]
    fn touch(&self) {
        self.alive.touch();
    }
}

impl<V> Drop for Keyed<V> {
    fn drop(&mut self) {
        self.alive.retire();
    }
}

/// See the module docs.
pub(crate) struct MaxSlot<V> {
    /// `0`, `FIRST | Counted::into_value(first value)`, or a [`Keyed`] block's address.
    word: AtomicUsize,
    /// 0 until claimed, then the first value's key + 1 (never written again).
    first_key: AtomicU64,
    _value: PhantomData<Counted<V>>,
}

impl<V> MaxSlot<V> {
    pub(crate) fn empty() -> Self {
        Self { word: AtomicUsize::new(0), first_key: AtomicU64::new(0), _value: PhantomData }
    }

    /// The current value, valid while `g` is pinned; `None` while empty.
    #[inline]
    pub(crate) fn load<'g>(&self, g: &'g Guard) -> Option<&'g V> {
        // Acquire: pairs with the publishing CAS (`PUBLISH`, or `cas`'s AcqRel).
        let w = self.word.load(Ordering::Acquire);
        (w != 0).then(|| Self::value(w, g))
    }

    /// The value at non-zero word `w`, loaded under `_g`.
    fn value(w: usize, _g: &Guard) -> &V {
        if w & FIRST != 0 {
            // SAFETY: a FIRST word holds a pointer from `Counted::into_value` whose count the slot
            // owns; when the word is replaced that count is dropped by `retire_with`, not
            // before the guard `_g` (pinned when `w` was loaded) is released.
            return unsafe { &*((w & !FIRST) as *const V) };
        }
        // SAFETY: any other non-zero word is a `Keyed<V>` block from `cas`, freed only
        // through `retire_block` (after `_g` is released) or the slot's drop.
        let k = unsafe { &*(w as *const Keyed<V>) };
        k.touch();
        &k.value
    }

    /// The key of the value at non-zero word `w`, loaded with Acquire under a guard.
    fn key_of(&self, w: usize) -> u64 {
        if w & FIRST != 0 {
            // Relaxed: the Acquire load of `w` synchronized with the claimer's publishing
            // CAS, which its claim of `first_key` precedes.
            let k = self.first_key.load(Ordering::Relaxed);
            debug_assert_ne!(k, 0, "a published first value has a claimed key");
            return k.wrapping_sub(1);
        }
        // SAFETY: as in `value`.
        let k = unsafe { &*(w as *const Keyed<V>) };
        k.touch();
        k.key
    }

    /// Sets the register to `(key, value)` unless it holds a key `>= key`.
    pub(crate) fn raise(&self, key: u64, value: &Counted<V>, g: &Guard) {
        let mut tried_first = false;
        loop {
            // Acquire: pairs with the publishing CAS of the value we may compare keys with.
            let w = self.word.load(Ordering::Acquire);
            if w != 0 && self.key_of(w) >= key {
                return;
            }
            if w == 0 && !tried_first {
                tried_first = true;
                // The claim: Relaxed, it only decides who may publish a FIRST word (a
                // read-modify-write, so exactly one raise wins it); the publishing CAS
                // orders it for readers.
                let claimed = key != u64::MAX
                    && self
                        .first_key
                        .compare_exchange(0, key + 1, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                if claimed {
                    let p = Counted::into_value(value.clone()) as usize;
                    debug_assert_eq!(p & FIRST, 0, "Counted values are aligned");
                    match self.word.compare_exchange(0, p | FIRST, PUBLISH, Ordering::Acquire) {
                        Ok(_) => return,
                        // SAFETY: `p` was never published: its count is still ours.
                        Err(_) => drop(unsafe { Counted::from_value(p as *const V) }),
                    }
                    continue;
                }
            }
            let block = Keyed { alive: TrackedCell::new(()), key, value: value.clone() };
            if cas(&self.word, w, block).is_ok() {
                self.retire(w, g);
                return;
            }
            super::spin_hint();
        }
    }

    /// Retires word `w`, which the caller's own CAS just replaced.
    fn retire(&self, w: usize, g: &Guard) {
        if w & FIRST != 0 {
            let p = w & !FIRST;
            // SAFETY: the closure drops the slot's count of the first value once every
            // reader pinned now (which may hold `&V`) has unpinned; our CAS unlinked `w`,
            // so nobody else drops that count.
            unsafe { retire_with(g, move || drop(Counted::from_value(p as *const V))) };
        } else {
            retire_block::<Keyed<V>>(w, g);
        }
    }
}

impl<V> Drop for MaxSlot<V> {
    fn drop(&mut self) {
        let w = self.word.load(Ordering::Relaxed);
        if w & FIRST != 0 {
            // SAFETY: `&mut self`: no reader can reach the slot any more; the count is ours.
            drop(unsafe { Counted::from_value((w & !FIRST) as *const V) });
        } else if w != 0 {
            // SAFETY: as for `EpochCell`'s drop: no reader can reach the slot any more, and
            // the block came from `cas` (`block_new::<Keyed<V>>`).
            unsafe { block_drop(w as *mut Keyed<V>) }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::epoch::{self, Collector};

    /// Runs `f` with guards of a private collector, then drops the collector, which runs
    /// every deferred drop: the counts checked afterwards do not depend on other tests.
    fn with_collector(f: impl FnOnce(&dyn Fn() -> epoch::Guard)) {
        let c = Collector::new();
        let h = c.register();
        f(&|| h.pin());
        drop(h);
        drop(c);
    }

    #[test]
    fn rises_only_and_releases_every_count() {
        let (a, b, c) = (Counted::new(1u32), Counted::new(2u32), Counted::new(3u32));
        with_collector(|pin| {
            let s = MaxSlot::empty();
            let g = pin();
            assert!(s.load(&g).is_none());
            s.raise(5, &b, &g);
            assert_eq!(s.word.load(Ordering::Relaxed) & FIRST, FIRST, "the first value is inline");
            assert_eq!((s.load(&g), Counted::count(&b)), (Some(&2), 2));
            s.raise(4, &a, &g);
            s.raise(5, &a, &g);
            assert_eq!(s.load(&g), Some(&2), "a key not above the current one changes nothing");
            s.raise(9, &c, &g);
            assert_eq!(s.load(&g), Some(&3));
            assert_eq!(s.key_of(s.word.load(Ordering::Relaxed)), 9);
            s.raise(7, &a, &g);
            assert_eq!(s.load(&g), Some(&3));
            drop(g);
            drop(s);
        });
        assert_eq!([&a, &b, &c].map(Counted::count), [1, 1, 1]);
    }

    #[test]
    fn a_lost_claim_takes_a_block() {
        let v = Counted::new(7u32);
        let s = MaxSlot::empty();
        // As if another raise had claimed the inline value and then lost its CAS.
        s.first_key.store(3, Ordering::Relaxed);
        let g = epoch::pin();
        s.raise(1, &v, &g);
        assert_eq!(s.word.load(Ordering::Relaxed) & FIRST, 0);
        assert_eq!((s.load(&g), s.key_of(s.word.load(Ordering::Relaxed))), (Some(&7), 1));
        drop(g);
        drop(s);
        assert_eq!(Counted::count(&v), 1);
    }

    #[test]
    fn concurrent_raises_keep_the_highest() {
        let vals: Vec<Counted<u64>> = (0..64).map(Counted::new).collect();
        let c = Collector::new();
        // Few rounds under miri, which is slow with threads.
        for round in 0..if cfg!(miri) { 3 } else { 50u64 } {
            let s = MaxSlot::empty();
            std::thread::scope(|sc| {
                for t in 0..4u64 {
                    let (s, vals, c) = (&s, &vals, &c);
                    sc.spawn(move || {
                        let h = c.register();
                        for i in 0..16u64 {
                            let k = (i * 4 + t + round) % 64;
                            s.raise(k + 1, &vals[k as usize], &h.pin());
                        }
                    });
                }
            });
            let g = epoch::pin();
            let top = s.load(&g).copied();
            assert_eq!((top, s.key_of(s.word.load(Ordering::Relaxed))), (Some(63), 64));
        }
        drop(c);
        assert!(vals.iter().all(|v| Counted::count(v) == 1));
    }
}
