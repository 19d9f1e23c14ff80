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

use super::epoch::Guard;
use super::{arena_drop, arena_new, node_dealloc, AtomicUsize, Ordering};
use core::marker::PhantomData;

/// Values kept in an [`EpochCell`] expose their loom liveness cell.
pub(crate) trait Touch {
    /// A loom-tracked read of the value's `alive` cell (no-op in normal builds).
    fn touch(&self);
}

/// See the module docs.
pub(crate) struct EpochCell<T: Touch> {
    /// Address of the current value (from [`arena_new`]; never 0).
    ptr: AtomicUsize,
    _value: PhantomData<T>,
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
        // `arena_new`), and a value replaced after `p` was loaded is retired with
        // `retire_with`, which cannot free it while the guard `_g` is pinned.
        let v = unsafe { &*(p as *const T) };
        v.touch();
        v
    }

    /// The current value, valid while `g` is pinned.
    #[inline(always)]
    pub(crate) fn load<'g>(&self, g: &'g Guard) -> &'g T {
        Self::deref(self.ptr.load(LOAD), g)
    }

    /// Retires the value at `old` (if any), which the caller's own CAS or swap just unlinked.
    fn retire(old: usize, g: &Guard) {
        if old == 0 {
            return;
        }
        // SAFETY: our atomic operation unlinked `old` (nobody else retires it) and new
        // readers can no longer load it; it came from `arena_new::<T>`.
        unsafe { retire_with(g, move || arena_drop(old as *mut T)) };
    }

    /// Replaces `current` (which must have been loaded from this cell under `g`) by `new`.
    /// On success returns the installed value and retires `current`; on failure returns
    /// `new` back.
    pub(crate) fn compare_and_swap<'g>(&self, current: &'g T, new: T, g: &'g Guard) -> Result<&'g T, T> {
        cas(&self.ptr, current as *const T as usize, new, g)
    }

    /// Unconditionally replaces the value; retires the old one.
    pub(crate) fn swap<'g>(&self, new: T, g: &'g Guard) -> &'g T {
        let n = arena_new(new).as_ptr() as usize;
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
        // SAFETY: `&mut self`: no reader can reach this cell any more (its owner is being
        // destroyed, itself after an epoch grace period or with exclusive access), so
        // the current value (from `arena_new`, never 0) can be freed now.
        unsafe { arena_drop(self.ptr.load(Ordering::Relaxed) as *mut T) }
    }
}
