//! Batched retirement: many epoch-deferred frees handed to crossbeam-epoch as one.
//!
//! # Why
//! Every retirement (a replaced snapshot, a copied trie node, a released trie link) is one
//! crossbeam-epoch `defer`, and every 64 of them fill a bag that crossbeam moves to its
//! global queue in a fresh 2 KiB heap allocation. A batched delete of a full table retires
//! about three objects per route: ~50,000 such allocations, which after other work in the
//! process (a fragmented glibc heap) took a fifth of the delete's time (BENCHMARKS.md,
//! session 11).
//!
//! # Design
//! Inside [`batched`] (the bulk paths: `add_routes`, `delete_routes`, withdraw-all),
//! [`retire_with`](super::retire_with) does not defer each free: it stores it, type-erased
//! as a function pointer and three words, in a thread-local *chunk* (one arena block, 127
//! entries). A full chunk, and the last one when the outermost `batched` ends, is deferred
//! to crossbeam as a single function that runs every free it holds, then frees the block.
//! Frees too large for three words (crossbeam stores up to three inline too), and retirements outside a batch, are deferred directly.
//!
//! # Why it is correct
//! A free stored at time T1 (when its object was unlinked) is deferred at T2 >= T1, still
//! under the batch's pin. Crossbeam runs it after every thread pinned at T2 has unpinned.
//! A reader that could hold the object loaded it before T1, so it was pinned at T1; if it
//! is still pinned at T2 it is waited for, and if it unpinned in between it no longer
//! holds the object. Readers pinned after T1 cannot reach it. Deferring later is only
//! more conservative, so the epoch argument of each call site stands unchanged.
//!
//! Loom builds defer directly (no thread-local chunk): the models check the protocols of
//! the call sites, which this does not change; miri checks the type erasure below.

use super::epoch::Guard;
use core::cell::Cell;
use core::mem::{align_of, size_of, MaybeUninit};

/// The words a stored free may occupy.
type Data = [usize; 3];

/// A stored free: its closure's bytes and the function that runs it once.
struct Entry {
    call: unsafe fn(*mut Data),
    data: MaybeUninit<Data>,
}

/// Entries per chunk: a chunk fills the arena's largest block (4 KiB).
const CAP: usize = (4096 - size_of::<usize>()) / size_of::<Entry>();

/// A block of stored frees; `len` entries from the start are initialized.
struct Chunk {
    len: usize,
    entries: [MaybeUninit<Entry>; CAP],
}

const _: () = assert!(size_of::<Chunk>() <= 4096);

thread_local! {
    /// Nesting depth of [`batched`] on this thread, and its current chunk (null if none).
    static BATCH: (Cell<usize>, Cell<*mut Chunk>) = const { (Cell::new(0), Cell::new(core::ptr::null_mut())) };
}

/// Runs `f` with this thread's retirements batched (see the module docs); the batch is
/// handed to crossbeam, under `g`, when the outermost call returns (or unwinds).
pub(crate) fn batched<R>(g: &Guard, f: impl FnOnce() -> R) -> R {
    if cfg!(loom) {
        // Loom's threads share one OS thread's thread-locals: no batching (module docs).
        return f();
    }
    struct End<'g>(&'g Guard);
    impl Drop for End<'_> {
        fn drop(&mut self) {
            let _ = BATCH.try_with(|(depth, chunk)| {
                depth.set(depth.get() - 1);
                if depth.get() == 0 {
                    flush(self.0, chunk.replace(core::ptr::null_mut()));
                }
            });
        }
    }
    if BATCH.try_with(|(depth, _)| depth.set(depth.get() + 1)).is_err() {
        // Thread-local storage is being torn down: no batching.
        return f();
    }
    let _end = End(g);
    f()
}

/// Stores `free` in this thread's batch if one is open and `free` fits an entry; else
/// gives it back.
pub(super) fn store<F: FnOnce()>(g: &Guard, free: F) -> Result<(), F> {
    if cfg!(loom) || size_of::<F>() > size_of::<Data>() || align_of::<F>() > align_of::<Data>() {
        return Err(free);
    }
    let free = core::cell::Cell::new(Some(free));
    let stored = BATCH
        .try_with(|(depth, chunk)| {
            if depth.get() == 0 {
                return false;
            }
            let mut c = chunk.get();
            if c.is_null() {
                c = new_chunk();
                if c.is_null() {
                    return false;
                }
                chunk.set(c);
            }
            let f = free.take().unwrap_or_else(|| unreachable!("taken once"));
            // SAFETY: `c` is this thread's open chunk (only this thread touches it) with
            // `len < CAP` (a full chunk is flushed below, before the next store).
            unsafe { push(c, f) };
            // SAFETY: as above.
            if unsafe { (*c).len } == CAP {
                flush(g, chunk.replace(core::ptr::null_mut()));
            }
            true
        })
        .unwrap_or(false);
    match stored {
        true => Ok(()),
        false => Err(free.take().unwrap_or_else(|| unreachable!("not stored, so not taken"))),
    }
}

/// A fresh, empty chunk (null on out-of-memory).
fn new_chunk() -> *mut Chunk {
    let p = super::node_alloc(core::alloc::Layout::new::<Chunk>()).cast::<Chunk>();
    if !p.is_null() {
        // SAFETY: a fresh block of `Chunk`'s layout; only `len` needs initializing.
        unsafe { (&raw mut (*p).len).write(0) };
    }
    p
}

/// Appends `f` to chunk `c`.
///
/// # Safety
/// `c` is a live chunk from `new_chunk` with `len < CAP`, owned by the caller.
unsafe fn push<F: FnOnce()>(c: *mut Chunk, f: F) {
    /// Runs the closure stored in `data`, once.
    ///
    /// # Safety
    /// `data` holds an `F` written by `push` and not run yet.
    unsafe fn call<F: FnOnce()>(data: *mut Data) {
        // SAFETY: forwarded from the caller: the bytes are an `F` (size and alignment
        // checked in `store`), moved out here exactly once.
        let f = unsafe { data.cast::<F>().read() };
        f();
    }
    let mut data = MaybeUninit::<Data>::uninit();
    // SAFETY: `F` fits `Data` in size and alignment (checked in `store`); the closure is
    // moved into the buffer (and forgotten by the move).
    unsafe { data.as_mut_ptr().cast::<F>().write(f) };
    // SAFETY: the caller's contract: `len < CAP`, so the entry exists and is free.
    unsafe {
        let len = (*c).len;
        (&raw mut (*c).entries[len]).cast::<Entry>().write(Entry { call: call::<F>, data });
        (*c).len = len + 1;
    }
}

/// Defers running and freeing chunk `c` (nothing if null).
fn flush(g: &Guard, c: *mut Chunk) {
    if c.is_null() {
        return;
    }
    let c = c as usize;
    // SAFETY: the chunk's entries are frees whose call sites' contracts (see
    // `retire_with`) allow deferring them to any later time under a pin; this defers all of
    // them to now (module docs). The chunk itself is ours (taken out of the thread-local).
    unsafe {
        g.defer_unchecked(move || {
            let c = c as *mut Chunk;
            for i in 0..(*c).len {
                let e = (&raw mut (*c).entries[i]).cast::<Entry>();
                // SAFETY: entries below `len` were written by `push` and are run once, here.
                ((*e).call)((&raw mut (*e).data).cast::<Data>());
            }
            super::node_dealloc(c.cast(), core::alloc::Layout::new::<Chunk>());
        })
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::epoch::{Collector, LocalHandle};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Runs `f` with a handle of a private collector, then drops the collector, which runs
    /// every deferred function: the counts checked afterwards do not depend on other tests.
    fn with_collector(f: impl FnOnce(&LocalHandle)) {
        let c = Collector::new();
        let h = c.register();
        f(&h);
        drop(h);
        drop(c);
    }

    #[test]
    fn batched_frees_all_run_once_after_the_batch() {
        let ran = Arc::new(AtomicUsize::new(0));
        let n = if cfg!(miri) { CAP + 3 } else { 5 * CAP + 7 };
        with_collector(|h| {
            let g = h.pin();
            batched(&g, || {
                for k in 0..n {
                    let r = ran.clone();
                    // Two words: an `Arc` and a number.
                    let stored = store(&g, move || {
                        r.fetch_add(k + 1, Ordering::Relaxed);
                    });
                    assert!(stored.is_ok(), "fits an entry inside a batch");
                }
                // Nested batches join the outer one.
                batched(&g, || {
                    let r = ran.clone();
                    assert!(store(&g, move || {
                        r.fetch_add(1, Ordering::Relaxed);
                    })
                    .is_ok());
                });
                assert_eq!(ran.load(Ordering::Relaxed), 0, "nothing runs while pinned");
            });
        });
        assert_eq!(ran.load(Ordering::Relaxed), n * (n + 1) / 2 + 1);
        assert_eq!(Arc::strong_count(&ran), 1, "every stored closure was dropped");
    }

    #[test]
    fn outside_a_batch_or_too_large_is_given_back() {
        with_collector(|h| {
            let g = h.pin();
            assert!(store(&g, || ()).is_err());
            let big = [1usize; 4];
            batched(&g, || assert!(store(&g, move || assert_eq!(big.iter().sum::<usize>(), 4)).is_err()));
        });
    }

    #[test]
    fn a_panic_inside_the_batch_still_hands_it_over() {
        let ran = Arc::new(AtomicUsize::new(0));
        with_collector(|h| {
            let r = ran.clone();
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let g = h.pin();
                batched(&g, || {
                    assert!(store(&g, move || {
                        r.fetch_add(1, Ordering::Relaxed);
                    })
                    .is_ok());
                    panic!("inside the batch");
                })
            }));
            assert!(res.is_err());
            // The thread's batch state is reset: outside a batch again.
            let g = h.pin();
            assert!(store(&g, || ()).is_err());
        });
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    }
}
