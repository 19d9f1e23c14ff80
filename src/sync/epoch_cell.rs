//! [`EpochCell`]: an atomically replaceable, epoch-reclaimed value.
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

use super::epoch::{self, Atomic, Guard, Owned, Shared};
use super::Ordering;

/// Values kept in an [`EpochCell`] expose their loom liveness cell.
pub(crate) trait Touch {
    /// A loom-tracked read of the value's `alive` cell (no-op in normal builds).
    fn touch(&self);
}

/// See the module docs.
pub(crate) struct EpochCell<T: Touch> {
    ptr: Atomic<T>,
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
        Self { ptr: Atomic::new(value) }
    }

    #[inline(always)]
    fn deref<'g>(s: Shared<'g, T>) -> &'g T {
        // SAFETY: the cell never holds null (set at construction, replaced only by non-null
        // values), and a value replaced after `s` was loaded is retired with
        // `defer_destroy`, which cannot free it while the guard `s` is tied to is pinned.
        let v = unsafe { s.deref() };
        v.touch();
        v
    }

    /// The current value, valid while `g` is pinned.
    #[inline(always)]
    pub(crate) fn load<'g>(&self, g: &'g Guard) -> &'g T {
        Self::deref(self.ptr.load(LOAD, g))
    }

    /// Replaces `current` (which must have been loaded from this cell under `g`) by `new`.
    /// On success returns the installed value and retires `current`; on failure returns
    /// `new` back.
    pub(crate) fn compare_and_swap<'g>(&self, current: &'g T, new: T, g: &'g Guard) -> Result<&'g T, T> {
        let cur = Shared::from(current as *const T);
        // AcqRel: Release publishes `new`'s contents (pairs with `LOAD`); Acquire orders our
        // later use of the cell after the value we replaced.
        match self.ptr.compare_exchange(cur, Owned::new(new), Ordering::AcqRel, Ordering::Acquire, g) {
            Ok(installed) => {
                // SAFETY: our CAS unlinked `cur`; nobody else can retire it.
                unsafe { retire(g, cur) };
                Ok(Self::deref(installed))
            }
            Err(e) => Err(*e.new.into_box()),
        }
    }

    /// Unconditionally replaces the value; retires the old one.
    pub(crate) fn swap<'g>(&self, new: T, g: &'g Guard) -> &'g T {
        let new = Owned::new(new).into_shared(g);
        // AcqRel: as in `compare_and_swap`.
        let old = self.ptr.swap(new, Ordering::AcqRel, g);
        // SAFETY: our swap unlinked `old`; nobody else can retire it.
        unsafe { retire(g, old) };
        Self::deref(new)
    }
}

/// Retires a node or value this thread just unlinked (`defer_destroy`; under the
/// `free_immediately` mutant, an immediate free). Used by the cell and by the trie.
///
/// # Safety
/// `s` must be non-null, unlinked by the caller's own atomic operation (so nobody else
/// retires it), and unreachable for new readers.
pub(crate) unsafe fn retire<T>(g: &Guard, s: Shared<'_, T>) {
    #[cfg(not(rtm_mutant = "free_immediately"))]
    // SAFETY: forwarded from the caller.
    unsafe {
        g.defer_destroy(s)
    };
    #[cfg(rtm_mutant = "free_immediately")]
    {
        let _ = g;
        // SAFETY: deliberately unsound (mutation check): frees while readers may hold it.
        unsafe { drop(s.into_owned()) };
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
        // the current value can be freed now.
        unsafe {
            let v = self.ptr.load(Ordering::Relaxed, epoch::unprotected());
            if !v.is_null() {
                drop(v.into_owned());
            }
        }
    }
}
