//! [`Arena`]: a size-class region allocator for trie nodes.
//!
//! # Why
//! A full table's trie is ~10-20 MB of small nodes. Allocated from the global heap they
//! land scattered among the destinations, snapshots and routes (hundreds of MB), so every
//! level of a lookup costs a TLB miss as well as a cache miss. The arena packs nodes into
//! 2 MiB chunks, advised as transparent huge pages where the kernel allows it: the trie
//! then spans a few TLB entries, whatever the rest of the heap looks like.
//!
//! # Design
//! * Size classes of 64-byte multiples up to [`MAX`], 64-aligned (nodes are 64-aligned
//!   and padded to 64); larger requests go to the global allocator.
//! * Below [`SMALL_MAX`], requests aligned to at most 16 whose size rounds to a multiple
//!   of 16 that is not one of 64 get a *small* class of that size (16, 32, 48, 80, ...),
//!   16-aligned: a route block (48 bytes) or three snapshot entries (72, served by 80)
//!   then no longer take a 64- or 128-byte block. A small class is refilled four blocks at a time, a
//!   multiple of 64 bytes, so the bump pointer stays 64-aligned for the line classes.
//! * Freeing is lock-free: a push onto the class's free stack (a CAS loop on its head). It
//!   runs in epoch-deferred destructors, i.e. on any thread, readers included.
//! * Allocating (writers only) pops from a *private list* and, when that is empty, takes
//!   the whole free stack at once (`swap` to empty). Because blocks leave the shared stack
//!   only all at once, a push can never see a block reused under it: the stack has no ABA
//!   problem. A list taken is owned by one thread alone. For the process-wide arena the
//!   private lists are thread-local ([`Cache`]): an allocation takes no lock and makes no
//!   atomic read-modify-write unless its list is empty. (Session 17's replay profile: the
//!   class mutex this replaced was 36 % of `alloc`'s samples; an uncontended lock and
//!   unlock are two locked instructions. Measured in session 18: batched deletes about
//!   12 % faster in one sitting, load and replay unchanged within the host's noise.) A
//!   thread's lists go back to the shared stacks when it exits (walking each list to its
//!   tail once). Other
//!   arenas (tests), and a thread whose cache is already destroyed (allocating in a
//!   thread-local destructor), use a list per class behind the class's mutex.
//! * Chunks are carved by a bump pointer (under its own mutex) and never returned to the
//!   operating system: freed blocks are reused for nodes of the same class. The process-wide
//!   instance is [`global`]; an `Arena` dropped (tests) frees its chunks.
//!
//! Loom does not model this file (it is an allocator under the modeled algorithms; loom
//! builds use the global allocator); miri runs its unit tests, TSan runs it under the
//! stress tests.

use std::alloc::Layout;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Block granularity and alignment of the line classes.
const LINE: usize = 64;
/// Number of line classes: 64, 128, ..., `MAX` bytes.
const CLASSES: usize = 64;
/// Largest request served from the arena.
pub(crate) const MAX: usize = CLASSES * LINE;
/// Granularity and alignment of the small classes.
const GRAIN: usize = 16;
/// Small classes are below this size: 16, 32, 48, 80, ..., 240 (the multiples of 16 that
/// are not multiples of 64).
const SMALL_MAX: usize = 4 * LINE;
/// Number of small classes (numbered after the line classes).
const SMALL: usize = SMALL_MAX / GRAIN - SMALL_MAX / LINE;
/// Blocks a small class carves at once: `RUN * size` is a multiple of [`LINE`].
const RUN: usize = LINE / GRAIN;
/// Chunk size and alignment: one transparent huge page (small under miri, which is slow
/// with large allocations).
const CHUNK: usize = if cfg!(miri) { 1 << 16 } else { 2 << 20 };

/// One size class.
struct Class {
    /// Head of the shared free stack (a block address, 0 = empty). Blocks link through
    /// their first word.
    free: AtomicUsize,
    /// Head of the private list of threads without a [`Cache`] for this arena (taken from
    /// `free`).
    local: Mutex<usize>,
}

/// A thread's private lists for the process-wide arena, one head per class (0 = empty).
/// Only this thread reads or writes them; blocks reach them only by `swap` from a shared
/// stack or fresh from a carve, so a block on a list is owned by this thread alone.
struct Cache {
    heads: [Cell<usize>; CLASSES + SMALL],
}

impl Drop for Cache {
    /// Gives every list back to its class's shared stack, so an exiting thread strands no
    /// blocks.
    fn drop(&mut self) {
        for (c, h) in self.heads.iter().enumerate() {
            GLOBAL.give_back(c, h.replace(0));
        }
    }
}

thread_local! {
    static CACHE: Cache = const { Cache { heads: [const { Cell::new(0) }; CLASSES + SMALL] } };
}

/// The chunk being carved and every chunk so far.
struct Bump {
    cur: usize,
    end: usize,
    chunks: Vec<usize>,
}

/// See the module docs.
pub(crate) struct Arena {
    classes: [Class; CLASSES + SMALL],
    bump: Mutex<Bump>,
}

static GLOBAL: Arena = Arena::new();

/// The process-wide arena.
pub(crate) fn global() -> &'static Arena {
    &GLOBAL
}

/// The size class serving `layout` and its block size, if the arena serves it.
#[inline(always)]
fn class_of(layout: Layout) -> Option<(usize, usize)> {
    let (size, align) = (layout.size(), layout.align());
    if size == 0 || size > MAX || align > LINE {
        return None;
    }
    let grains = size.div_ceil(GRAIN);
    if align <= GRAIN && grains * GRAIN < SMALL_MAX && grains % (LINE / GRAIN) != 0 {
        // The small classes skip the multiples of 64 (those are line classes).
        return Some((CLASSES + grains - 1 - grains / (LINE / GRAIN), grains * GRAIN));
    }
    let lines = size.div_ceil(LINE);
    Some((lines - 1, lines * LINE))
}

impl Arena {
    pub(crate) const fn new() -> Self {
        Self {
            classes: [const { Class { free: AtomicUsize::new(0), local: Mutex::new(0) } }; CLASSES + SMALL],
            bump: Mutex::new(Bump { cur: 0, end: 0, chunks: Vec::new() }),
        }
    }

    /// Allocates a block for `layout` (the global allocator beyond [`MAX`]). Null on
    /// out-of-memory, like `std::alloc::alloc`.
    ///
    /// Inlined: with a constant layout (`arena_new`, a route block, a snapshot) the class
    /// is a constant, and a block on this thread's list of the process-wide arena is a pop
    /// of a few instructions. Everything else is [`alloc_slow`](Self::alloc_slow).
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some((c, _)) = class_of(layout) {
            if core::ptr::eq(self, &GLOBAL) {
                let cached = CACHE.try_with(|cache| {
                    let head = &cache.heads[c];
                    let mut list = head.get();
                    // SAFETY: this thread's list of class `c`: only this thread reads or
                    // writes it, and it holds free blocks of the class (`Cache`).
                    let p = unsafe { Self::pop(&mut list) };
                    head.set(list);
                    p
                });
                if let Ok(Some(p)) = cached {
                    return p;
                }
            }
        }
        self.alloc_slow(layout)
    }

    /// [`alloc`](Self::alloc) where the fast path does not serve: this thread's list of the
    /// class is empty, the layout is too large for the arena, or the arena is not the
    /// process-wide one.
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> *mut u8 {
        let Some((c, size)) = class_of(layout) else {
            // SAFETY: `layout` has a non-zero size: callers are node layouts (they hold a head)
            // and `arena_new`, which is never used for zero-sized types.
            return unsafe { std::alloc::alloc(layout) };
        };
        if core::ptr::eq(self, &GLOBAL) {
            let cached = CACHE.try_with(|cache| {
                let head = &cache.heads[c];
                let mut list = head.get();
                let p = self.take(c, size, &mut list);
                head.set(list);
                p
            });
            if let Ok(p) = cached {
                return p;
            }
        }
        // A poisoned lock only means another allocation panicked (out of memory); the list
        // head it protects is always consistent, so go on.
        let mut local = self.classes[c].local.lock().unwrap_or_else(|e| e.into_inner());
        self.take(c, size, &mut local)
    }

    /// The head of the private list `list`, unlinked; `None` if the list is empty.
    ///
    /// # Safety
    /// `list` is owned by the caller (its thread's cache, or the class mutex held) and
    /// heads a list of free blocks of one class, each holding the next link in its first
    /// word (0 ends it).
    #[inline(always)]
    unsafe fn pop(list: &mut usize) -> Option<*mut u8> {
        let b = *list;
        if b == 0 {
            return None;
        }
        // SAFETY: `b` heads a list the caller owns (the contract); every block on it is a
        // free block whose first word holds the next link (written by `dealloc`, or by the
        // run carve in `take`).
        *list = unsafe { (b as *const usize).read() };
        // The next allocation of this class reads the new head's link: start its miss now
        // (freed blocks are cold; a writer allocates one or two per update).
        super::prefetch(*list as *const u8);
        Some(b as *mut u8)
    }

    /// A block of class `c` (`size` bytes): the head of the private list `list` (refilled
    /// from the class's shared stack when empty), else freshly carved. `list` is owned by
    /// the caller alone (its thread's cache, or the class mutex held).
    fn take(&self, c: usize, size: usize, list: &mut usize) -> *mut u8 {
        let class = &self.classes[c];
        if *list == 0 {
            // Acquire: pairs with the Release of every push (a release sequence of RMWs on
            // `free`), so the links written into the blocks before their push are visible.
            // Relaxed first look: an empty stack (most allocations while a table grows)
            // costs no locked instruction; a non-empty one is taken by the swap.
            if class.free.load(Ordering::Relaxed) != 0 {
                *list = class.free.swap(0, Ordering::Acquire);
            }
        }
        // SAFETY: `list` is the caller's, a list of class `c` (this function's contract).
        if let Some(b) = unsafe { Self::pop(list) } {
            return b;
        }
        if c < CLASSES {
            return self.carve(size);
        }
        // A small class: carve a run (keeps the bump 64-aligned), hand out the first block
        // and keep the others on the caller's list. (Lock order: a class's list, then the
        // bump; `carve` takes no other lock.)
        let run = self.carve(RUN * size);
        if !run.is_null() {
            for i in 1..RUN {
                let next = if i + 1 < RUN { run as usize + (i + 1) * size } else { 0 };
                // SAFETY: block `i` of the fresh run is ours (no one else has seen the run);
                // its first word becomes the list link, as `dealloc` writes it.
                unsafe { run.add(i * size).cast::<usize>().write(next) };
            }
            *list = run as usize + size;
        }
        run
    }

    /// Pushes the private list headed by `head` (0: nothing) onto class `c`'s shared stack
    /// in one CAS: the list's tail is linked to the stack's head.
    fn give_back(&self, c: usize, head: usize) {
        if head == 0 {
            return;
        }
        let mut tail = head;
        loop {
            // SAFETY: the list is owned by the caller (a cache being dropped); every block on
            // it holds its next link in its first word.
            let next = unsafe { (tail as *const usize).read() };
            if next == 0 {
                break;
            }
            tail = next;
        }
        // SAFETY: the list `head..=tail` is the caller's, linked through first words.
        unsafe { self.push_list(c, head, tail) };
    }

    /// Pushes the list `head ..= tail` (linked through the blocks' first words) onto class
    /// `c`'s shared stack with a CAS loop that links `tail` to the stack's head: the lock-free
    /// push of [`dealloc`](Self::dealloc) (a list of one) and [`give_back`](Self::give_back).
    ///
    /// # Safety
    /// Every block of the list is a free block of class `c` owned by the caller, and `tail`
    /// is its last block.
    #[inline]
    unsafe fn push_list(&self, c: usize, head: usize, tail: usize) {
        let free = &self.classes[c].free;
        // Relaxed: only a first guess at the stack's head; the CAS below checks it, and
        // nothing is read through it (it is only written into our tail as the link).
        let mut top = free.load(Ordering::Relaxed);
        loop {
            // SAFETY: `tail` is ours until the CAS succeeds (caller's contract).
            unsafe { (tail as *mut usize).write(top) };
            // Release: publishes every link of the list; pairs with the Acquire `swap` in
            // `take`. Relaxed on failure: we only retry with the newer head.
            match free.compare_exchange_weak(top, head, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(t) => top = t,
            }
        }
    }

    /// A fresh block of `size` bytes from the current chunk, starting a chunk if needed.
    fn carve(&self, size: usize) -> *mut u8 {
        let mut b = self.bump.lock().unwrap_or_else(|e| e.into_inner());
        if b.end - b.cur < size {
            let layout = Layout::from_size_align(CHUNK, CHUNK).expect("valid chunk layout");
            // SAFETY: the chunk layout has a non-zero size.
            let p = unsafe { std::alloc::alloc(layout) };
            if p.is_null() {
                return p;
            }
            advise_huge(p, CHUNK);
            b.chunks.push(p as usize);
            b.cur = p as usize;
            b.end = p as usize + CHUNK;
        }
        let p = b.cur;
        b.cur += size;
        p as *mut u8
    }

    /// Returns a block to its class (lock-free).
    ///
    /// # Safety
    /// `p` came from [`alloc`](Self::alloc) of this arena with the same `layout`, and
    /// nothing uses it any more.
    pub(crate) unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some((c, _)) = class_of(layout) else {
            // SAFETY: forwarded: `p` came from `std::alloc::alloc(layout)` in `alloc`.
            return unsafe { std::alloc::dealloc(p, layout) };
        };
        // SAFETY: the block is ours (caller's contract), at least 16 bytes and 16-aligned: a
        // list of one.
        unsafe { self.push_list(c, p as usize, p as usize) };
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(CHUNK, CHUNK).expect("valid chunk layout");
        let b = self.bump.get_mut().unwrap_or_else(|e| e.into_inner());
        for &c in &b.chunks {
            // SAFETY: `&mut self`: no block of this arena is in use by contract of whoever
            // owns a non-global arena (tests); each chunk came from `alloc(layout)`.
            unsafe { std::alloc::dealloc(c as *mut u8, layout) };
        }
    }
}

/// Asks the kernel to back `[p, p + len)` with transparent huge pages (Linux; a hint that
/// may be ignored, so its result is not checked).
fn advise_huge(p: *mut u8, len: usize) {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        extern "C" {
            fn madvise(addr: *mut core::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        // SAFETY: `[p, p + len)` is one live allocation we own; MADV_HUGEPAGE changes no
        // contents, only how the kernel backs the range.
        let _ = unsafe { madvise(p.cast(), len, MADV_HUGEPAGE) };
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(size: usize) -> Layout {
        Layout::from_size_align(size, 64).unwrap()
    }

    #[test]
    fn blocks_are_distinct_aligned_and_reused() {
        let a = Arena::new();
        let n = if cfg!(miri) { 200 } else { 5000 };
        let mut ps: Vec<*mut u8> = (0..n).map(|i| a.alloc(l(64 * (1 + i % 5)))).collect();
        for (i, &p) in ps.iter().enumerate() {
            assert_eq!(p as usize % 64, 0);
            // SAFETY: fresh blocks of at least 64 bytes.
            unsafe { p.write_bytes(i as u8, 64) };
        }
        let mut sorted: Vec<usize> = ps.iter().map(|&p| p as usize).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), n, "no block handed out twice");
        for (i, &p) in ps.iter().enumerate() {
            // SAFETY: written above, still ours.
            assert_eq!(unsafe { p.read() }, i as u8, "blocks do not overlap");
        }
        let freed: Vec<usize> = ps.iter().step_by(5).map(|&p| p as usize).collect();
        for p in ps.drain(..).step_by(5) {
            // SAFETY: from `a.alloc(l(64))` (i % 5 == 0), not used again.
            unsafe { a.dealloc(p, l(64)) };
        }
        let again: Vec<usize> = (0..freed.len()).map(|_| a.alloc(l(64)) as usize).collect();
        let mut x = freed.clone();
        let mut y = again.clone();
        x.sort_unstable();
        y.sort_unstable();
        assert_eq!(x, y, "freed blocks of a class are reused before carving");
    }

    /// Every request maps to one class whose blocks fit it; each class has one block size;
    /// small classes serve only requests aligned to at most 16 and never a size that is a
    /// multiple of 64; every class is used.
    #[test]
    fn class_mapping() {
        let s = |size, align| class_of(Layout::from_size_align(size, align).unwrap()).unwrap();
        assert_eq!(s(40, 8).1, 48, "a route block");
        assert_eq!(s(56, 8).1, 64, "a one-route snapshot stays in a line");
        assert_eq!(s(96, 8).1, 96, "two snapshot entries");
        assert_eq!(s(96, 64).1, 128, "64-aligned requests take line classes");
        assert_eq!((s(240, 16).1, s(241, 8).1, s(256, 8).1), (240, 256, 256));
        let mut size_of_class = std::collections::HashMap::new();
        // Under miri (slow): every size up to 320, then every 61st (which still meets every
        // line class, with more than one size each).
        let sizes = (1..=320).chain((321..=MAX).step_by(if cfg!(miri) { 61 } else { 1 })).chain([MAX]);
        for size in sizes {
            for align in [1, 8, 16, 32, 64] {
                let (c, b) = s(size, align);
                assert!(b >= size && b % align == 0 && c < CLASSES + SMALL);
                assert_eq!(*size_of_class.entry(c).or_insert(b), b, "one block size per class");
                assert_eq!(c >= CLASSES, align <= GRAIN && b < SMALL_MAX && b % LINE != 0);
            }
        }
        assert_eq!(size_of_class.len(), CLASSES + SMALL);
    }

    /// Small blocks are 16-aligned, distinct and reused; carving them in runs keeps the
    /// line classes' blocks 64-aligned.
    #[test]
    fn small_blocks_interleave_with_line_blocks() {
        let a = Arena::new();
        let n = if cfg!(miri) { 60 } else { 3000 };
        let small = |i: usize| Layout::from_size_align([16, 48, 96, 240][i % 4], 8).unwrap();
        let mut blocks = Vec::new();
        for i in 0..n {
            let (ls, ll) = (small(i), l(64 * (1 + i % 3)));
            let (p, q) = (a.alloc(ls), a.alloc(ll));
            assert_eq!((p as usize % GRAIN, q as usize % LINE), (0, 0));
            // SAFETY: fresh blocks of these sizes.
            unsafe {
                p.write_bytes(i as u8, ls.size());
                q.write_bytes(!(i as u8), ll.size());
            }
            blocks.push((p, ls, i as u8));
            blocks.push((q, ll, !(i as u8)));
        }
        for &(p, l, v) in &blocks {
            // SAFETY: written above, still ours.
            let bytes = unsafe { core::slice::from_raw_parts(p, l.size()) };
            assert!(bytes.iter().all(|&b| b == v), "no overlap");
        }
        let freed: Vec<usize> =
            blocks.iter().filter(|(_, l, _)| l.size() == 48).map(|&(p, _, _)| p as usize).collect();
        for (p, l, _) in blocks.drain(..) {
            // SAFETY: from `a.alloc(l)`, not used again.
            unsafe { a.dealloc(p, l) };
        }
        // The class's list may still start with the unused rest of its last run.
        let again: std::collections::HashSet<usize> =
            (0..freed.len() + RUN - 1).map(|_| a.alloc(small(1)) as usize).collect();
        assert_eq!(again.len(), freed.len() + RUN - 1, "no block handed out twice");
        assert!(freed.iter().all(|p| again.contains(p)), "freed small blocks are reused before carving");
    }

    /// A private list given back joins the shared stack whole (its tail linked to what
    /// the stack held), and the next taker gets every block of both.
    #[test]
    fn a_list_given_back_joins_the_shared_stack() {
        let a = Arena::new();
        let layout = l(192);
        let (c, size) = class_of(layout).unwrap();
        // Three blocks freed onto the shared stack, five kept on a private list as a
        // thread cache would: the list refilled from the stack takes the three, then two
        // are carved (and, being a line class, not listed).
        let shared: Vec<usize> = (0..3).map(|_| a.alloc(layout) as usize).collect();
        for &p in &shared {
            // SAFETY: from `a.alloc(layout)`, not used again.
            unsafe { a.dealloc(p as *mut u8, layout) };
        }
        let mut list = 0;
        let mine: Vec<usize> = (0..5).map(|_| a.take(c, size, &mut list) as usize).collect();
        assert_eq!(list, 0, "the list handed out all it took");
        let mut took = mine[..3].to_vec();
        took.sort_unstable();
        let mut want = shared.clone();
        want.sort_unstable();
        assert_eq!(took, want, "a private list refills from the shared stack first");
        // Free two onto the stack, build a private list of the other three, give it back.
        for &p in &mine[..2] {
            // SAFETY: ours, not used again.
            unsafe { a.dealloc(p as *mut u8, layout) };
        }
        for &p in &mine[2..] {
            // SAFETY: ours; its first word becomes the link, as `dealloc` writes it.
            unsafe { (p as *mut usize).write(list) };
            list = p;
        }
        a.give_back(c, list);
        a.give_back(c, 0);
        let mut again: Vec<usize> = (0..5).map(|_| a.alloc(layout) as usize).collect();
        again.sort_unstable();
        let mut all = mine.clone();
        all.sort_unstable();
        assert_eq!(again, all, "every block of the list and of the stack is reused");
    }

    /// The process-wide arena's thread caches: blocks from several threads are distinct and
    /// keep their contents; each thread's cache goes back when it exits. (Other tests share
    /// the global arena, so this asserts nothing about which blocks are reused.)
    #[test]
    fn global_thread_caches_hand_out_distinct_blocks() {
        let per = if cfg!(miri) { 40 } else { 5_000 };
        let sizes = [48usize, 64, 192];
        let blocks: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3u8)
                .map(|t| {
                    s.spawn(move || {
                        let mut kept = Vec::new();
                        for i in 0..per {
                            let size = sizes[i % 3];
                            let layout = Layout::from_size_align(size, 8).unwrap();
                            let p = global().alloc(layout);
                            assert!(!p.is_null());
                            // SAFETY: a fresh block of `size` bytes.
                            unsafe { p.write_bytes(t, size) };
                            if i % 4 == 0 {
                                // SAFETY: ours and unchanged: every byte is our mark.
                                assert!(unsafe { core::slice::from_raw_parts(p, size) }
                                    .iter()
                                    .all(|&b| b == t));
                                // SAFETY: from `global().alloc(layout)`, not used again.
                                unsafe { global().dealloc(p, layout) };
                            } else {
                                kept.push((p as usize, size));
                            }
                        }
                        kept
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<usize> = blocks.iter().flatten().map(|&(p, _)| p).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no block handed out twice");
        for (t, kept) in blocks.iter().enumerate() {
            for &(p, size) in kept {
                // SAFETY: still ours (not freed above).
                let bytes = unsafe { core::slice::from_raw_parts(p as *const u8, size) };
                assert!(bytes.iter().all(|&b| b == t as u8), "blocks do not overlap");
                // SAFETY: from `global().alloc` with this layout, not used again.
                unsafe { global().dealloc(p as *mut u8, Layout::from_size_align(size, 8).unwrap()) };
            }
        }
    }

    /// An allocation from a thread-local destructor that runs after the thread's cache was
    /// destroyed takes the mutex path (and one that runs before it, the cache): either way
    /// it gets a usable block and nothing crashes. (Destructors run in reverse order of
    /// registration on Linux, so `Late`, touched before the first allocation, runs last.)
    #[test]
    fn allocating_in_a_late_thread_local_destructor() {
        struct Late;
        impl Drop for Late {
            fn drop(&mut self) {
                let layout = Layout::from_size_align(96, 16).unwrap();
                let p = global().alloc(layout);
                assert!(!p.is_null());
                // SAFETY: a fresh 96-byte block.
                unsafe { p.write_bytes(7, 96) };
                // SAFETY: from `global().alloc(layout)`, not used again.
                unsafe { global().dealloc(p, layout) };
            }
        }
        thread_local! {
            static LATE: Late = const { Late };
        }
        std::thread::spawn(|| {
            LATE.with(|_| {});
            let layout = Layout::from_size_align(96, 16).unwrap();
            let p = global().alloc(layout);
            // SAFETY: from `global().alloc(layout)`, not used again.
            unsafe { global().dealloc(p, layout) };
        })
        .join()
        .unwrap();
    }

    #[test]
    fn large_requests_use_the_global_allocator() {
        let a = Arena::new();
        let p = a.alloc(l(MAX + 64));
        assert!(!p.is_null());
        // SAFETY: from `a.alloc` with this layout.
        unsafe { a.dealloc(p, l(MAX + 64)) };
        assert!(class_of(l(MAX)).is_some() && class_of(l(MAX + 1)).is_none());
    }

    #[test]
    fn concurrent_alloc_and_free() {
        let a = Arena::new();
        let per = if cfg!(miri) { 50 } else { 20_000 };
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let a = &a;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..per {
                        let p = a.alloc(l(128));
                        // SAFETY: a fresh 128-byte block.
                        unsafe { p.write_bytes(t, 128) };
                        mine.push(p);
                        if i % 3 == 0 {
                            let q = mine.swap_remove(i % mine.len());
                            // SAFETY: ours; every byte must still be our mark.
                            assert!(unsafe { core::slice::from_raw_parts(q, 128) }.iter().all(|&b| b == t));
                            // SAFETY: from `a.alloc(l(128))`, not used again.
                            unsafe { a.dealloc(q, l(128)) };
                        }
                    }
                    for q in mine {
                        // SAFETY: ours; every byte must still be our mark.
                        assert!(unsafe { core::slice::from_raw_parts(q, 128) }.iter().all(|&b| b == t));
                        // SAFETY: as above.
                        unsafe { a.dealloc(q, l(128)) };
                    }
                });
            }
        });
    }
}
