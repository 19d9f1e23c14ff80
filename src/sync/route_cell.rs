//! [`RouteCell`]: an atomically replaceable `Option<Arc<T>>` (arc-swap), with a loom
//! stand-in. It holds a deleted route's last contents (its tombstone; empty while the route
//! has never been deleted).
//!
//! Normally a newtype over `arc_swap::ArcSwapOption<T>`. arc-swap has no loom support, and
//! loom cannot see arc-swap's internal synchronisation (it reports false causality
//! violations), so under `cfg(loom)` the cell is a small model of arc-swap's *documented*
//! contract:
//!
//! * `compare_and_swap` is a `compare_exchange(SeqCst, Acquire)`;
//! * `load_full` is an `Acquire` load that returns an owned `Arc` (or `None`);
//! * every value ever published stays alive in `keep` until the cell drops (a conservative
//!   lifetime: a reader can never observe a freed value, and loom's leak checker still
//!   verifies that all of them are dropped with the cell).
//!
//! Readers never take the `keep` mutex, so the model adds no reader-to-reader
//! happens-before edges that the real arc-swap lacks. The API is the minimal set the engine
//! needs, so the two implementations cannot drift.

#[cfg(not(loom))]
mod imp {
    use std::sync::Arc;

    /// See the module docs.
    pub(crate) struct RouteCell<T>(arc_swap::ArcSwapOption<T>);

    impl<T> RouteCell<T> {
        pub(crate) fn empty() -> Self {
            Self(arc_swap::ArcSwapOption::empty())
        }

        /// The current value. arc-swap's load is `Acquire` (pairs with the `SeqCst`
        /// swap inside `compare_and_swap`).
        pub(crate) fn load_full(&self) -> Option<Arc<T>> {
            self.0.load_full()
        }

        /// Replaces the value with `new` if it is still `current` (pointer identity).
        /// Returns whether it did; on failure `new` is dropped.
        pub(crate) fn compare_and_swap(&self, current: &Option<Arc<T>>, new: Arc<T>) -> bool {
            let prev = self.0.compare_and_swap(current, Some(new));
            ptr(&prev) == ptr(current)
        }
    }

    fn ptr<T>(o: &Option<Arc<T>>) -> *const T {
        o.as_ref().map_or(core::ptr::null(), Arc::as_ptr)
    }
}

#[cfg(loom)]
mod imp {
    use loom::sync::atomic::{AtomicPtr, Ordering};
    use loom::sync::{Arc, Mutex};

    /// See the module docs.
    pub(crate) struct RouteCell<T> {
        ptr: AtomicPtr<T>,
        keep: Mutex<Vec<Arc<T>>>,
    }

    impl<T> RouteCell<T> {
        pub(crate) fn empty() -> Self {
            Self { ptr: AtomicPtr::new(core::ptr::null_mut()), keep: Mutex::new(Vec::new()) }
        }

        pub(crate) fn load_full(&self) -> Option<Arc<T>> {
            let p = self.ptr.load(Ordering::Acquire);
            if p.is_null() {
                return None;
            }
            // SAFETY: every non-null pointer ever stored in `ptr` came from an `Arc` that
            // `keep` holds until the cell drops, and the cell outlives `&self`; so `p`
            // points to a live `Arc` allocation and taking one more strong count is sound.
            unsafe {
                Arc::increment_strong_count(p);
                Some(Arc::from_raw(p))
            }
        }

        pub(crate) fn compare_and_swap(&self, current: &Option<Arc<T>>, new: Arc<T>) -> bool {
            let p = Arc::as_ptr(&new) as *mut T;
            let cur = current.as_ref().map_or(core::ptr::null_mut(), |c| Arc::as_ptr(c) as *mut T);
            // Keep `new` alive before it can become visible.
            self.keep.lock().unwrap().push(new);
            self.ptr.compare_exchange(cur, p, Ordering::SeqCst, Ordering::Acquire).is_ok()
        }
    }
}

pub(crate) use imp::RouteCell;
