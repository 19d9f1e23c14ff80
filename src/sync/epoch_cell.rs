//! [`EpochCell`]: an atomically replaceable, epoch-reclaimed value; [`EpochSlot`]: the
//! same, possibly empty.
//!
//! Holds one heap value behind an `epoch::Atomic`. Readers `load` under a pinned guard and
//! get a plain reference for the guard's lifetime: one `Acquire` load, no read-modify-write
//! (this is why destination route lists use it rather than arc-swap, whose load costs two
//! locked instructions; see `docs/design.md`). Writers replace the value with
//! `compare_and_swap`/`swap`; the replaced value is retired with `defer_destroy`, so a
//! reader pinned before the swap can keep using it.
//!
//! Under loom this is the real code: crossbeam-epoch runs in its own loom mode. Values
//! implement [`Touch`] so the deref helper can touch their loom-visible `alive` cell.
//!
//! # Placed values
//! A value normally lives in its own arena block. The owner of a cell may also keep an
//! [`InlineSlot`] next to it (a destination keeps one in its second cache line) and
//! publish a value written there ([`EpochCell::swap_placed`]): a reader that prefetches
//! the slot with the owner then reads the value without a second dependent cache miss.
//! The cell marks such a value with the [`PLACED`] tag bit of its address word (values
//! are at least 2-aligned). Retiring a placed value moves it out of the slot and drops it
//! (epoch-deferred, as any retired value); the slot's memory is the owner's and is never
//! written again. The owner must outlive that deferred drop: see `swap_placed`.

use super::epoch::Guard;
use super::{arena_drop, arena_new, node_dealloc, AtomicUsize, Ordering};
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

/// Tag bit of an address word whose value is placed in an [`InlineSlot`], not an arena
/// block (see the module docs).
const PLACED: usize = 1;

/// Values kept in an [`EpochCell`] expose their loom liveness cell.
pub(crate) trait Touch {
    /// A loom-tracked read of the value's `alive` cell (no-op in normal builds).
    fn touch(&self);
}

/// See the module docs.
pub(crate) struct EpochCell<T: Touch> {
    /// Address of the current value (from [`arena_new`], or an [`InlineSlot`]'s with the
    /// [`PLACED`] bit; never 0).
    ptr: AtomicUsize,
    _value: PhantomData<T>,
}

/// The value an [`EpochCell`] held when it was loaded: what
/// [`compare_and_swap`](EpochCell::compare_and_swap) expects to replace.
pub(crate) struct Current<'g, T> {
    word: usize,
    value: &'g T,
}

impl<T> Clone for Current<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Current<'_, T> {}

impl<'g, T> core::ops::Deref for Current<'g, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<'g, T> Current<'g, T> {
    /// The value, for the guard's lifetime.
    #[inline(always)]
    pub(crate) fn get(self) -> &'g T {
        self.value
    }
}

/// Room for one value of an [`EpochCell`], inside the cell's owner (see the module docs).
/// 64-aligned: it starts a cache line of its own.
#[repr(C, align(64))]
pub(crate) struct InlineSlot<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: the slot is written once, by the owner's only writer before any reader can
// reach it (`swap_placed`'s contract), and afterwards only read (shared `&T`, so `T: Sync`)
// or moved out by the one thread that retired it (so `T: Send`).
unsafe impl<T: Send + Sync> Sync for InlineSlot<T> {}

impl<T> InlineSlot<T> {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// The slot's address (what a reader prefetches).
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *const T {
        self.0.get().cast::<T>()
    }
}

/// Ordering of `load`: `Acquire` pairs with the `Release` half of the `AcqRel`
/// compare-exchange / swap that published the value, so everything written into the value
/// before publication is visible to the reader.
#[cfg(not(rtm_mutant = "relaxed_load"))]
const LOAD: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "relaxed_load")]
const LOAD: Ordering = Ordering::Relaxed;

impl<T: Touch> EpochCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self { ptr: AtomicUsize::new(arena_new(value).as_ptr() as usize), _value: PhantomData }
    }

    #[inline(always)]
    fn deref(p: usize, _g: &Guard) -> &T {
        // SAFETY: the cell never holds 0 (set at construction, replaced only by values from
        // `arena_new` or placed in a slot that outlives them), and a value replaced after
        // `p` was loaded is retired with `retire_with`, which cannot free (or move out) it
        // while the guard `_g` is pinned.
        let v = unsafe { &*((p & !PLACED) as *const T) };
        v.touch();
        v
    }

    /// The current value, valid while `g` is pinned.
    #[inline(always)]
    pub(crate) fn load<'g>(&self, g: &'g Guard) -> &'g T {
        Self::deref(self.ptr.load(LOAD), g)
    }

    /// The current value, as the expected value of a later `compare_and_swap`.
    #[inline(always)]
    pub(crate) fn load_current<'g>(&self, g: &'g Guard) -> Current<'g, T> {
        let word = self.ptr.load(LOAD);
        Current { word, value: Self::deref(word, g) }
    }

    /// Retires the value at address word `old` (if any), which the caller's own CAS or
    /// swap just unlinked.
    fn retire(old: usize, g: &Guard) {
        if old == 0 {
            return;
        }
        if old & PLACED != 0 {
            let p = (old & !PLACED) as *const T;
            // SAFETY: our atomic operation unlinked the placed value (nobody else retires
            // it) and new readers can no longer load it; after the grace period nobody
            // reads the slot, so moving the value out and dropping it is its one drop. The
            // slot's owner is still allocated then (`swap_placed`'s contract); the value is
            // moved out before it is dropped, so its drop may release the owner.
            unsafe { retire_with(g, move || drop(core::ptr::read(p))) };
            return;
        }
        // SAFETY: our atomic operation unlinked `old` (nobody else retires it) and new
        // readers can no longer load it; it came from `arena_new::<T>`.
        unsafe { retire_with(g, move || arena_drop(old as *mut T)) };
    }

    /// Replaces `current` (loaded from this cell under `g`) by `new`. On success returns
    /// the installed value and retires `current`; on failure returns `new` back.
    pub(crate) fn compare_and_swap<'g>(
        &self,
        current: Current<'g, T>,
        new: T,
        g: &'g Guard,
    ) -> Result<&'g T, T> {
        cas(&self.ptr, current.word, new, g)
    }

    /// Unconditionally replaces the value; retires the old one.
    pub(crate) fn swap<'g>(&self, new: T, g: &'g Guard) -> &'g T {
        let n = arena_new(new).as_ptr() as usize;
        self.swap_word(n, g)
    }

    /// [`swap`](Self::swap) to a value written into `slot`.
    ///
    /// # Safety
    /// `slot` was never used before, and belongs to the owner of this cell, which outlives
    /// every value ever published here (for a destination: a placed route list holds
    /// routes, and each route holds a reference to the destination). No other thread can
    /// reach the cell or the slot yet (the owner is unpublished), so the write is not a
    /// data race; the swap's Release publishes it with the owner.
    pub(crate) unsafe fn swap_placed<'g>(&self, slot: &InlineSlot<T>, value: T, g: &'g Guard) -> &'g T {
        let p = slot.0.get().cast::<T>();
        // SAFETY: per the contract nobody else accesses the slot now; it is uninitialized
        // (never used), so nothing is overwritten without a drop.
        unsafe { p.write(value) };
        self.swap_word(p as usize | PLACED, g)
    }

    fn swap_word<'g>(&self, n: usize, g: &'g Guard) -> &'g T {
        // AcqRel: as in `compare_and_swap`.
        let old = self.ptr.swap(n, Ordering::AcqRel);
        Self::retire(old, g);
        Self::deref(n, g)
    }
}

/// The compare-and-swap of [`EpochCell`] and [`EpochSlot`] on their address word: `cur`
/// (0 = empty) by `new`, retiring `cur` on success, handing `new` back on failure.
fn cas<'g, T: Touch>(ptr: &AtomicUsize, cur: usize, new: T, g: &'g Guard) -> Result<&'g T, T> {
    let n = arena_new(new);
    // AcqRel: Release publishes `new`'s contents (pairs with `LOAD`); Acquire orders our
    // later use of the cell after the value we replaced.
    match ptr.compare_exchange(cur, n.as_ptr() as usize, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            EpochCell::<T>::retire(cur, g);
            Ok(EpochCell::<T>::deref(n.as_ptr() as usize, g))
        }
        Err(_) => {
            // SAFETY: `n` was never published: we own it; move the value out and free
            // the block without dropping the value.
            unsafe {
                let v = n.as_ptr().read();
                node_dealloc(n.as_ptr().cast(), core::alloc::Layout::new::<T>());
                Err(v)
            }
        }
    }
}

/// An [`EpochCell`] that starts empty (a route's tombstone: most routes never get one,
/// so an empty slot costs no allocation). Same orderings and reclamation.
pub(crate) struct EpochSlot<T: Touch> {
    /// Address of the current value (from [`arena_new`]), or 0 while empty.
    ptr: AtomicUsize,
    _value: PhantomData<T>,
}

impl<T: Touch> EpochSlot<T> {
    pub(crate) fn empty() -> Self {
        Self { ptr: AtomicUsize::new(0), _value: PhantomData }
    }

    /// The current value, valid while `g` is pinned; `None` while empty.
    #[inline]
    pub(crate) fn load<'g>(&self, g: &'g Guard) -> Option<&'g T> {
        let p = self.ptr.load(LOAD);
        (p != 0).then(|| EpochCell::<T>::deref(p, g))
    }

    /// Replaces `current` (loaded from this slot under `g`; `None` = empty) by `new`, as
    /// [`EpochCell::compare_and_swap`].
    pub(crate) fn compare_and_swap<'g>(
        &self,
        current: Option<&'g T>,
        new: T,
        g: &'g Guard,
    ) -> Result<&'g T, T> {
        cas(&self.ptr, current.map_or(0, |c| c as *const T as usize), new, g)
    }
}

impl<T: Touch> Drop for EpochSlot<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Ordering::Relaxed);
        if p != 0 {
            // SAFETY: as for `EpochCell`'s drop: no reader can reach the slot any more, and
            // a non-zero address came from `arena_new::<T>`.
            unsafe { arena_drop(p as *mut T) }
        }
    }
}

/// Runs `free` once every thread pinned now has unpinned: the retirement of a node that is
/// not an epoch `Owned` (the trie's single-allocation nodes). Under the `free_immediately`
/// mutant it runs at once.
///
/// # Safety
/// `free` must release memory that the caller just unlinked by its own atomic operation
/// (so nobody else retires it) and that is unreachable for new readers.
pub(crate) unsafe fn retire_with<F: FnOnce()>(g: &Guard, free: F) {
    #[cfg(not(rtm_mutant = "free_immediately"))]
    // SAFETY: forwarded from the caller: readers that may still hold the memory are pinned,
    // and the collector runs `free` only after they unpin.
    unsafe {
        g.defer_unchecked(free)
    };
    #[cfg(rtm_mutant = "free_immediately")]
    {
        let _ = g;
        free();
    }
}

impl<T: Touch> Drop for EpochCell<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Ordering::Relaxed);
        if p & PLACED != 0 {
            // SAFETY: `&mut self`: no reader can reach this cell any more, and the placed
            // value is initialized (it is current); moved out first, as in `retire`.
            drop(unsafe { core::ptr::read((p & !PLACED) as *const T) });
            return;
        }
        // SAFETY: `&mut self`: no reader can reach this cell any more (its owner is being
        // destroyed, itself after an epoch grace period or with exclusive access), so
        // the current value (from `arena_new`, never 0) can be freed now.
        unsafe { arena_drop(p as *mut T) }
    }
}
