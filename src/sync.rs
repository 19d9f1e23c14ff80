//! The synchronisation shim: the **only** module that names `std::sync`, `crossbeam_epoch`,
//! `arc_swap`, `dashmap` or `loom`.
//!
//! Every other module imports atomics, `Arc`, `Mutex`, the epoch collector, the tracked cell
//! and the route cell from here. Under `--cfg loom` (always together with `--cfg
//! crossbeam_loom`, see `docs/verification.md`) the shim maps each of them to a type loom can
//! see:
//!
//! | name | normal build | `cfg(loom)` |
//! |---|---|---|
//! | atomics, `fence`, `Arc`, `Mutex` | `std::sync` | `loom::sync` |
//! | `epoch` | `crossbeam_epoch` | `crossbeam_epoch` compiled in its own loom mode |
//! | [`TrackedCell`] | `UnsafeCell` | `loom::cell::UnsafeCell` (liveness of epoch nodes) |
//! | [`RouteCell`] | `arc_swap::ArcSwap` | a loom model of arc-swap's documented contract |
//! | [`Registry`] | `dashmap::DashMap` | `loom::sync::Mutex<HashMap>` |
//!
//! `.ci/run` greps `src/` for these names outside `src/sync*` and fails if it finds one.

#[cfg(all(loom, not(crossbeam_loom)))]
compile_error!("build loom models with RUSTFLAGS=\"--cfg loom --cfg crossbeam_loom\"");
#[cfg(all(crossbeam_loom, not(loom)))]
compile_error!("`--cfg crossbeam_loom` needs `--cfg loom` too");

mod cell;
mod registry;
mod route_cell;

pub(crate) use cell::TrackedCell;
pub(crate) use registry::Registry;
pub(crate) use route_cell::{RouteCell, RouteGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// The epoch-based reclamation crate (its loom mode under `cfg(loom)`).
pub(crate) use crossbeam_epoch as epoch;

/// Cache-line padding for counters written by many threads.
pub(crate) use crossbeam_utils::CachePadded;

/// A pause inside a retry loop. Loom needs an explicit yield, or a spinning model thread
/// never lets the others run ("Model exceeded maximum number of branches").
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Locks a mutex, treating poisoning as recoverable: every critical section in the crate
/// leaves the protected data consistent before anything that can panic, so a poisoned
/// lock still holds valid data and nothing panics across the API.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(loom)]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs epoch collection until garbage retired so far has been destroyed, as far as the
/// global collector allows (other pinned threads can delay it). Tests call this before
/// counting drops, so leak checkers see our own nodes freed.
pub fn drain_deferred_garbage() {
    for _ in 0..256 {
        epoch::pin().flush();
    }
}
