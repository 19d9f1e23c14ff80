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
//! | atomics, `fence`, `Arc` | `std::sync` | `loom::sync` |
//! | `epoch` | `crossbeam_epoch` | `crossbeam_epoch` compiled in its own loom mode |
//! | [`TrackedCell`] | `UnsafeCell` | `loom::cell::UnsafeCell` (liveness of epoch nodes) |
//! | [`EpochCell`] | an epoch-reclaimed `Atomic` (route-list snapshots) | the same, crossbeam in loom mode |
//! | [`MaxSlot`] | an epoch-reclaimed max register, empty until raised (a deleted route's tombstone) | the same, crossbeam in loom mode |
//! | [`Registry`] | `dashmap::DashMap` | `loom::sync::Mutex<HashMap>` |
//! | [`Counted`] | an arena-allocated reference-counted pointer (route blocks) | the same on the global allocator, loom's atomics |
//! | [`Interner`] | sharded `std::sync::Mutex<HashMap>` (shared route versions) | no cache (always allocates) |
//! | [`WorkList`] | `std::sync::Mutex<Vec>` (writers' deferred work) | `loom::sync::Mutex<Vec>` |
//! | [`batched`] | retirements stored in a thread-local arena chunk, deferred to the collector together | none (each deferred directly) |
//!
//! `.ci/run` greps `src/` for these names outside `src/sync*` and fails if it finds one.

#[cfg(all(loom, not(crossbeam_loom)))]
compile_error!("build loom models with RUSTFLAGS=\"--cfg loom --cfg crossbeam_loom\"");
#[cfg(all(crossbeam_loom, not(loom)))]
compile_error!("`--cfg crossbeam_loom` needs `--cfg loom` too");

// Unused where the global allocator stands in (loom, miri, `rtm_system_alloc`); its own unit
// tests still run under miri.
#[cfg_attr(any(loom, miri, rtm_system_alloc), allow(dead_code))]
mod arena;
mod cell;
mod counted;
mod epoch_cell;
mod interner;
mod max_slot;
mod registry;
mod retire;
mod work_list;

pub(crate) use cell::{Tracked, TrackedCell};
pub(crate) use counted::Counted;
pub(crate) use epoch_cell::{retire_with, AfterRetire, Current, EpochCell, InlineSlot, Touch};
pub(crate) use interner::Interner;
pub(crate) use max_slot::MaxSlot;
pub(crate) use registry::Registry;
pub(crate) use retire::batched;
pub(crate) use work_list::WorkList;

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc,
};

/// Allocates a trie node: from the node [arena] (TLB-friendly, see its docs), or
/// from the global allocator in loom and miri builds and with `--cfg rtm_system_alloc`
/// (ASan), where node-level use-after-free must stay visible to the checker.
#[inline]
pub(crate) fn node_alloc(layout: core::alloc::Layout) -> *mut u8 {
    #[cfg(not(any(loom, miri, rtm_system_alloc)))]
    return arena::global().alloc(layout);
    // SAFETY: node layouts have a non-zero size (they hold a head).
    #[cfg(any(loom, miri, rtm_system_alloc))]
    return unsafe { std::alloc::alloc(layout) };
}

/// Frees a node allocated by [`node_alloc`].
///
/// # Safety
/// `p` came from `node_alloc(layout)` and is not used any more.
#[inline]
pub(crate) unsafe fn node_dealloc(p: *mut u8, layout: core::alloc::Layout) {
    // SAFETY: forwarded from the caller.
    #[cfg(not(any(loom, miri, rtm_system_alloc)))]
    unsafe {
        arena::global().dealloc(p, layout)
    };
    // SAFETY: forwarded from the caller (`node_alloc` used the global allocator).
    #[cfg(any(loom, miri, rtm_system_alloc))]
    unsafe {
        std::alloc::dealloc(p, layout)
    };
}

/// Moves `v` into a block from [`node_alloc`]: the hot objects a lookup visits
/// (destinations, route-list snapshots) live next to the trie nodes.
pub(crate) fn arena_new<T>(v: T) -> core::ptr::NonNull<T> {
    let layout = core::alloc::Layout::new::<T>();
    debug_assert!(layout.size() != 0);
    let Some(p) = core::ptr::NonNull::new(node_alloc(layout).cast::<T>()) else {
        std::alloc::handle_alloc_error(layout)
    };
    // SAFETY: a fresh block of `T`'s layout.
    unsafe { p.as_ptr().write(v) };
    p
}

/// Drops and frees a value made by [`arena_new`].
///
/// # Safety
/// `p` came from `arena_new::<T>`, is freed once, and is not used afterwards.
pub(crate) unsafe fn arena_drop<T>(p: *mut T) {
    // SAFETY: forwarded from the caller: `p` holds a live `T` in a block of its layout.
    unsafe {
        core::ptr::drop_in_place(p);
        node_dealloc(p.cast(), core::alloc::Layout::new::<T>());
    }
}

/// The epoch-based reclamation crate (its loom mode under `cfg(loom)`).
pub(crate) use crossbeam_epoch as epoch;

/// An immutable slice shared by reference count (a route's next hops, copied into every
/// snapshot). Always std's `Arc`, also under loom (whose `Arc` has no unsized support): the
/// contents never change after construction, so there is nothing for loom to interleave.
pub(crate) type SharedSlice<T> = std::sync::Arc<[T]>;

/// Cache-line padding (128 bytes on x86_64: a line pair, which the L2's spatial
/// prefetcher fetches together) for state written by some threads beside state others
/// read. Plain layout, no atomics of its own: also in loom builds.
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

/// A counter that many threads add to: sharded over cache lines so that writers on
/// different threads do not contend; `sum` is exact once the adders are done.
pub(crate) struct Counter {
    #[cfg(not(loom))]
    shards: [CachePadded<std::sync::atomic::AtomicIsize>; 16],
    /// Under loom a plain std atomic: the counters are statistics nobody synchronizes
    /// through, so loom need not interleave them (each loom atomic op is a branch point).
    #[cfg(loom)]
    total: std::sync::atomic::AtomicIsize,
}

#[cfg(not(loom))]
std::thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: only spreads threads over shards; any value is correct.
        NEXT.fetch_add(1, Ordering::Relaxed) % 16
    };
}

impl Counter {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: CachePadded<std::sync::atomic::AtomicIsize> =
            CachePadded::new(std::sync::atomic::AtomicIsize::new(0));
        Self { shards: [Z; 16] }
    }
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self { total: std::sync::atomic::AtomicIsize::new(0) }
    }

    /// Adds `n`. Relaxed: the counter is a statistic; it orders nothing.
    #[inline]
    pub(crate) fn add(&self, n: isize) {
        #[cfg(not(loom))]
        {
            let i = SHARD.try_with(|s| *s).unwrap_or(0);
            self.shards[i].fetch_add(n, Ordering::Relaxed);
        }
        #[cfg(loom)]
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of all shards.
    pub(crate) fn sum(&self) -> isize {
        #[cfg(not(loom))]
        {
            self.shards.iter().map(|s| s.load(Ordering::Relaxed)).sum()
        }
        #[cfg(loom)]
        {
            self.total.load(Ordering::Relaxed)
        }
    }
}

/// Process-wide count of allocated destination objects (including ones awaiting epoch
/// reclamation). Not maintained under loom (loom checks leaks itself).
pub(crate) static LIVE_DESTS: LiveCount = LiveCount::new();
/// Process-wide count of allocated route identities (blocks and destinations' own routes).
pub(crate) static LIVE_ROUTES: LiveCount = LiveCount::new();
/// Process-wide count of allocated leaves (`leaf.rs`).
pub(crate) static LIVE_LEAVES: LiveCount = LiveCount::new();

/// A process-wide [`Counter`] usable in a `static` (a no-op under loom, whose atomics
/// cannot live in statics across model iterations).
pub(crate) struct LiveCount {
    #[cfg(not(loom))]
    c: Counter,
}

impl LiveCount {
    const fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            c: Counter::new(),
        }
    }
    #[inline]
    pub(crate) fn add(&self, _n: isize) {
        #[cfg(not(loom))]
        self.c.add(_n);
    }
    pub(crate) fn sum(&self) -> isize {
        #[cfg(not(loom))]
        {
            self.c.sum()
        }
        #[cfg(loom)]
        {
            0
        }
    }
}

#[cfg(loom)]
std::thread_local! {
    /// Loom builds: deferred functions of the current model execution not yet run (every loom
    /// deferral goes through `retire_with`, which counts them with [`pending`]). A std
    /// thread-local: all loom threads of a model run on its test's OS thread, and models of
    /// other tests run on other OS threads (a shared count made their flushes, and so their
    /// schedules, depend on each other: loom reported a non-deterministic model). It is the
    /// models' bookkeeping, not part of what they check.
    static PENDING: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Loom builds: `f`, counted in [`PENDING`] until it has run.
#[cfg(loom)]
pub(crate) fn pending<F: FnOnce()>(f: F) -> impl FnOnce() {
    let _ = PENDING.try_with(|p| p.set(p.get() + 1));
    move || {
        f();
        // `try_with`: a collector torn down at the OS thread's exit may run it late.
        let _ = PENDING.try_with(|p| p.set(p.get().saturating_sub(1)));
    }
}

/// Loom-only: starts a model execution's count of deferred functions (what an earlier
/// execution left ran, or was dropped, with that execution's collector).
#[cfg(loom)]
#[doc(hidden)]
pub fn reset_pending() {
    PENDING.with(|p| p.set(0));
}

/// Loom-only: epoch flushes until every deferred function has run (functions that defer
/// more are followed), at most `rounds` (a loom model cannot afford
/// [`drain_deferred_garbage`]'s 256). Returns whether none is left. A flush costs a loom
/// model as much as its concurrent part, every execution: stopping when nothing is left
/// instead of always flushing `rounds` times is most of a model's run time.
#[cfg(loom)]
#[doc(hidden)]
pub fn flush_epoch(rounds: usize) -> bool {
    for _ in 0..rounds {
        if PENDING.with(|p| p.get()) == 0 {
            return true;
        }
        epoch::pin().flush();
    }
    PENDING.with(|p| p.get()) == 0
}

/// Loom-only: exactly `rounds` epoch flushes (a model's reclamation at a chosen point).
#[cfg(loom)]
#[doc(hidden)]
pub fn flush_epoch_times(rounds: usize) {
    for _ in 0..rounds {
        epoch::pin().flush();
    }
}

/// A number unique to this call in the process (until 2^32 calls wrap it): an entity
/// registration's number (`Entity::serial`).
pub(crate) fn next_serial() -> u32 {
    // Relaxed: only uniqueness matters (a read-modify-write hands each number out once);
    // the number is published with the entity that stores it. A std atomic in loom builds
    // too: a counter whose one property is uniqueness has nothing to model.
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Test-only: serializes the unit tests that hold a pin on purpose or need the epoch to
/// advance (reclamation, slot reuse). Cargo runs a module's tests on parallel threads, and
/// one test's deliberate pin stops another's `drain_deferred_garbage` from freeing slots:
/// `route_by_route_writes_place_their_snapshots_in_batches` failed that way, once in a
/// dozen runs. Poison-tolerant: a failed test does not fail the others.
#[cfg(all(test, not(loom)))]
pub(crate) fn reclaim_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Epoch collection for `work` operations done under one pin: crossbeam-epoch collects a
/// bounded amount on every 128th pin, which keeps up with one retirement or two per pin
/// but not with a batch's worth under a single pin. A few flushes (each pushes the local
/// bag and collects) restore the pace.
pub(crate) fn pace_reclamation(work: usize) {
    for _ in 0..1 + work / 256 {
        epoch::pin().flush();
    }
}

/// Runs epoch collection until the garbage retired so far (by this thread, and by others
/// before they flushed it to the global queue) has been destroyed, as far as the global
/// collector allows: a thread pinned for the whole time stops it, so it gives up after
/// `DRAIN_MAX_FLUSHES`. Tests call this before counting drops; benchmarks call it to
/// include reclamation in a delete's time.
///
/// How: each flush collects a bounded number of garbage bags (crossbeam-epoch: 8 of up to
/// 64 deferred drops), so a backlog of a million retirements (a table's teardown) takes
/// thousands of flushes; a fixed count used to leave ~2 % of a deleted table's objects
/// behind. So the drain retires a *sentinel* after everything else and flushes until it
/// has run: the global queue is popped in order, so every bag queued before the
/// sentinel's has been taken for collection by then (one taken by another collecting
/// thread may still be running; with no other thread collecting, all have run).
pub fn drain_deferred_garbage() {
    let done = Arc::new(AtomicBool::new(false));
    {
        let g = epoch::pin();
        let d = done.clone();
        // Release: pairs with the Acquire load below, so the drops the collecting thread
        // ran before the sentinel (the earlier bags it popped) happen before our return
        // and a caller's count of live objects sees them.
        g.defer(move || d.store(true, Ordering::Release));
        g.flush();
    }
    for _ in 0..DRAIN_MAX_FLUSHES {
        if done.load(Ordering::Acquire) {
            return;
        }
        epoch::pin().flush();
    }
}

/// Flushes after which [`drain_deferred_garbage`] gives up (another thread stays pinned).
const DRAIN_MAX_FLUSHES: usize = 1 << 16;

/// Hints the CPU to start loading the cache line at `p` (a no-op where unsupported and
/// under loom). Never faults, whatever `p` is: batched lookups use it to overlap the cache
/// misses of independent lookups.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 target has; a prefetch is a
        // hint that never faults or changes memory, whatever address it is given.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>())
        };
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = p;
}
