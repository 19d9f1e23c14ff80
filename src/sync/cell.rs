//! [`TrackedCell`]: an `UnsafeCell` whose accesses loom can see.
//!
//! Loom does not notice that memory was freed. Every epoch-managed node therefore carries a
//! zero-sized `alive: TrackedCell<()>`: the one helper that turns a `Shared` into a
//! reference calls [`TrackedCell::touch`] (a tracked read), and the node's `Drop` calls
//! [`TrackedCell::retire`] (a tracked write). A free that races a read is then a loom
//! causality violation instead of a silent pass. In normal builds both are no-ops.

#[cfg(loom)]
pub(crate) struct TrackedCell<T>(loom::cell::UnsafeCell<T>);
#[cfg(not(loom))]
pub(crate) struct TrackedCell<T>(core::cell::UnsafeCell<T>);

// SAFETY: the cell is only ever accessed through `touch` (a read of `()` contents that
// never produces a reference outliving the call) and `retire` (called from `Drop`, which
// has exclusive access). No value of `T` is shared mutably between threads.
unsafe impl<T: Send> Sync for TrackedCell<T> {}

impl<T> TrackedCell<T> {
    #[cfg(loom)]
    pub(crate) fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    /// (A `const fn` outside loom: the shared dead route list is a `static`.)
    #[cfg(not(loom))]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// A tracked read: "the node is being used now".
    #[inline(always)]
    pub(crate) fn touch(&self) {
        #[cfg(loom)]
        self.0.with(|_| ());
    }

    /// A tracked write: "the node is being destroyed now". Called from `Drop` only.
    #[inline(always)]
    pub(crate) fn retire(&mut self) {
        #[cfg(loom)]
        self.0.with_mut(|_| ());
    }
}

/// A [`TrackedCell`] for plain value types that derive `Clone`, `PartialEq` and `Debug`
/// (route versions): a clone is a new cell, every two compare equal, and dropping one
/// retires it, so a version freed while a reader still reads it is a loom causality
/// violation too. Zero-sized outside loom.
pub(crate) struct Tracked(TrackedCell<()>);

impl Tracked {
    pub(crate) fn new() -> Self {
        Self(TrackedCell::new(()))
    }

    /// A tracked read (see [`TrackedCell::touch`]).
    #[inline(always)]
    pub(crate) fn touch(&self) {
        self.0.touch();
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl PartialEq for Tracked {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Tracked {}

impl core::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Tracked")
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.retire();
    }
}
