//! [`Counted`]: a reference-counted pointer whose block comes from the node arena.
//!
//! # Why
//! Route blocks (the identity of a destination's routes after its first, see
//! `identity.rs`) are created and freed by the million
//! when a table loads or is deleted. As `std::sync::Arc`s they came from the global
//! allocator, whose state then decided the speed of a delete: freed 64-byte chunks pile up
//! in glibc's fast bins and every later large allocation consolidates them (a full table
//! deleted in 0.355 s in a fresh process took 1.64 s after other work had fragmented the
//! heap; BENCHMARKS.md, session 8). From the arena ([`arena_new`], one 48-byte block of a
//! small class, freed by a lock-free push) a route costs the same whatever ran before.
//!
//! # Design
//! The block holds the count and the value. It is `std::sync::Arc`'s protocol:
//! * a clone increments with `Relaxed`: a new reference is made from one the caller holds,
//!   so the object is alive and nothing is published by the increment;
//! * a drop decrements with `Release`, so everything this holder did with the value happens
//!   before the decrement; the holder that takes the count to zero then loads the count with
//!   `Acquire` (it reads the zero its own decrement wrote, the end of the release sequence
//!   of every earlier decrement, so it synchronizes with all of them) before it drops and
//!   frees the value. A load rather than `fence(Acquire)`: ThreadSanitizer does not model
//!   standalone fences (as `DestPtr`'s drop, and std's `Arc` under TSan). Mutant
//!   `counted_relaxed_drop` makes both `Relaxed`.
//!
//! Loom and miri builds allocate from the global allocator (see `node_alloc`); the count is
//! the shim's atomic, so loom sees it.

use super::{arena_drop, arena_new, AtomicUsize, Ordering, TrackedCell};
use core::ptr::NonNull;

struct Inner<T> {
    refs: AtomicUsize,
    /// Loom's view of the value's memory: read by every dereference, written by the drop
    /// (so a drop not ordered after another holder's use fails a model).
    alive: TrackedCell<()>,
    value: T,
}

/// See the module docs. `repr(transparent)`: a `Counted<T>` is its block's address, so a
/// tagged word holding that address can be borrowed as one ([`Counted::borrow_raw`]).
#[repr(transparent)]
pub(crate) struct Counted<T> {
    ptr: NonNull<Inner<T>>,
}

// SAFETY: as for `Arc<T>`: the value is shared between the holders (`T: Sync`) and dropped by
// whichever holder releases last (`T: Send`); the count is atomic.
unsafe impl<T: Send + Sync> Send for Counted<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Counted<T> {}

/// Counts beyond this abort (as `Arc` does): a count cannot overflow without that many
/// handles leaked, and an overflow would free a live value.
const MAX_REFS: usize = isize::MAX as usize;

impl<T> Counted<T> {
    /// A new object with one reference (the returned one).
    pub(crate) fn new(value: T) -> Self {
        Self { ptr: arena_new(Inner { refs: AtomicUsize::new(1), alive: TrackedCell::new(()), value }) }
    }

    /// Whether `a` and `b` point to the same object.
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// Exposes the block's provenance, so that [`from_value`](Self::from_value) can rebuild
    /// a pointer to the block from the value's address alone (for values shared by address,
    /// read through plain references meanwhile: `group::borrowed`).
    pub(crate) fn expose(this: &Self) {
        let _ = this.ptr.as_ptr().expose_provenance();
    }

    /// Gives up this reference as the *value's* address, with the block's provenance
    /// exposed (for words that hold values by address: `group.rs`, `leaf.rs`).
    /// [`from_value`](Self::from_value) takes the reference back.
    pub(crate) fn into_value(this: Self) -> *const T {
        let p = Self::as_ptr(&this);
        let _ = this.ptr.as_ptr().expose_provenance();
        core::mem::forget(this);
        p
    }

    /// Takes back a reference given up by [`into_value`](Self::into_value).
    ///
    /// # Safety
    /// `p` is the value's address of a live block whose provenance was exposed
    /// ([`expose`](Self::expose) or `into_value`), and either it carries a reference given
    /// up by `into_value`, taken back once, or the result is never dropped and a reference
    /// held elsewhere keeps the block alive while it is used.
    pub(crate) unsafe fn from_value(p: *const T) -> Self {
        // The block starts `offset_of!(Inner, value)` bytes before the value; rebuilt from
        // the exposed provenance of the whole block (the value's own pointer may carry a
        // narrower one).
        let block = p.addr() - core::mem::offset_of!(Inner<T>, value);
        let ptr = core::ptr::with_exposed_provenance_mut::<Inner<T>>(block);
        // SAFETY: the caller's contract: a live block at that address, so not null.
        Self { ptr: unsafe { NonNull::new_unchecked(ptr) } }
    }

    /// Gives up this reference as the block's address (at least 8-aligned: the count comes
    /// first), for a pointer that keeps it in a tagged word (`identity::RoutePtr`).
    /// [`from_raw`](Self::from_raw) takes the reference back.
    pub(crate) fn into_raw(this: Self) -> NonNull<u8> {
        let p = this.ptr.cast();
        core::mem::forget(this);
        p
    }

    /// Takes back a reference given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `p` came from `into_raw` on a `Counted<T>`, and that reference is taken back once.
    pub(crate) unsafe fn from_raw(p: NonNull<u8>) -> Self {
        Self { ptr: p.cast() }
    }

    /// Borrows a reference given up by [`into_raw`](Self::into_raw) and still held in `*p`.
    ///
    /// # Safety
    /// `*p` came from `into_raw` on a `Counted<T>` and holds that reference while `p` is
    /// borrowed.
    #[inline(always)]
    pub(crate) unsafe fn borrow_raw(p: &NonNull<u8>) -> &Self {
        // SAFETY: `Counted<T>` is `repr(transparent)` over a `NonNull`, which has the same
        // layout whatever it points to; `*p` is that pointer (the caller's contract).
        unsafe { &*(p as *const NonNull<u8>).cast::<Self>() }
    }

    /// The value's address.
    pub(crate) fn as_ptr(this: &Self) -> *const T {
        // SAFETY: `ptr` is a live block (we hold a reference); only the field's address is
        // taken, nothing is read.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// The number of references. Racy by nature: exact only where no other holder can
    /// clone or drop meanwhile (the interner reads it under the lock every clone it hands
    /// out is made under; tests). Not in loom builds, where the interner does not cache.
    #[cfg(any(not(loom), test))]
    pub(crate) fn count(this: &Self) -> usize {
        this.inner().refs.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: the block lives while any reference does, and `self` is one.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Clone for Counted<T> {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed: see the module docs (a reference made from a held one).
        let old = self.inner().refs.fetch_add(1, Ordering::Relaxed);
        if old > MAX_REFS {
            std::process::abort();
        }
        Self { ptr: self.ptr }
    }
}

impl<T> core::ops::Deref for Counted<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        let inner = self.inner();
        inner.alive.touch();
        &inner.value
    }
}

/// The decrement of a drop and the last holder's load (see the module docs).
#[cfg(not(rtm_mutant = "counted_relaxed_drop"))]
const DEC: Ordering = Ordering::Release;
#[cfg(not(rtm_mutant = "counted_relaxed_drop"))]
const LAST: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "counted_relaxed_drop")]
const DEC: Ordering = Ordering::Relaxed;
#[cfg(rtm_mutant = "counted_relaxed_drop")]
const LAST: Ordering = Ordering::Relaxed;

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        // Release: pairs with the last holder's Acquire load below.
        if self.inner().refs.fetch_sub(1, DEC) != 1 {
            return;
        }
        // Acquire: every other holder's use of the value happened before its Release
        // decrement, so before the drop below.
        let _ = self.inner().refs.load(LAST);
        // SAFETY: the count reached zero: this was the last reference, no other holder can
        // reach the block; it came from `arena_new` in `new` and is freed once (here).
        unsafe {
            (*self.ptr.as_ptr()).alive.retire();
            arena_drop(self.ptr.as_ptr());
        }
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for Counted<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as Live;

    struct Tracked<'a>(&'a Live);
    impl Drop for Tracked<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_last_drop_frees_once() {
        let dropped = Live::new(0);
        let a = Counted::new(Tracked(&dropped));
        let b = a.clone();
        let c = b.clone();
        assert!(Counted::ptr_eq(&a, &c));
        assert_eq!(Counted::as_ptr(&a), &*b as *const Tracked);
        drop(a);
        drop(c);
        assert_eq!(dropped.load(Ordering::Relaxed), 0, "a holder remains");
        drop(b);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn holders_on_many_threads() {
        let dropped = Live::new(0);
        let a = Counted::new(Tracked(&dropped));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let mine = a.clone();
                s.spawn(move || {
                    let more: Vec<_> = (0..100).map(|_| mine.clone()).collect();
                    drop(more);
                });
            }
        });
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
        drop(a);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
