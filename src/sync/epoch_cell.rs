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
//!
//! # Placed values
//! A value normally lives in its own arena block. The owner of a cell may also keep an
//! [`InlineSlot`] next to it (a destination keeps one in its second cache line) and
//! publish a value written there ([`EpochCell::swap_placed`]): a reader that prefetches
//! the slot with the owner then reads the value without a second dependent cache miss.
//! The cell marks such a value with the [`PLACED`] tag bit of its address word (values
//! are at least 2-aligned). Retiring a placed value moves it out of the slot and drops it
//! (epoch-deferred, as any retired value), then marks the slot free (`slot_free`, Release);
//! a later writer may claim it (a CAS on that flag, Acquire) and place its value there
//! instead of in a new block. The owner keeps the slot right after the cell (the deferred
//! drop finds the flag from the slot's address) and must outlive that deferred drop: see
//! `swap_placed`, and [`Touch::placed`], which lets a value hold a reference to its owner
//! until then.
//!
//! A value in a block can also be *moved* into a free slot ([`EpochCell::move_into_slot`]):
//! the copy in the slot takes over what the value owns (a route list's entry block) and
//! the block is retired with [`Touch::drop_moved`], which leaves that alone.
//!
//! A writer's CAS may hand the retirement work of its own to run after the replaced
//! value's drop, in the same deferred function ([`AfterRetire`]): one deferral per
//! replacement, however much it releases. Under loom the slot carries a tracked cell
//! (placing and moving out are writes, reader derefs are reads), so a reuse that races a
//! reader fails the model.

use super::epoch::Guard;
use super::{node_alloc, node_dealloc, AtomicBool, AtomicUsize, Ordering};
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

/// Tag bit of an address word whose value is placed in an [`InlineSlot`], not an arena
/// block (see the module docs).
const PLACED: usize = 1;
/// Tag bit of an address word whose value is a `&'static` shared by many cells (a dead
/// route list): never retired, never freed. Values are at least 4-aligned.
const STATIC: usize = 2;
/// Both tag bits.
const TAGS: usize = PLACED | STATIC;

/// Orderings of the slot flag: the store that frees a slot and the claim that takes it
/// (a Release/Acquire pair; see `EpochCell::retire` and `claim_slot`). Mutant
/// `slot_reuse_relaxed` weakens both.
#[cfg(not(rtm_mutant = "slot_reuse_relaxed"))]
const SLOT_FREE: Ordering = Ordering::Release;
#[cfg(not(rtm_mutant = "slot_reuse_relaxed"))]
const SLOT_CLAIM: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "slot_reuse_relaxed")]
const SLOT_FREE: Ordering = Ordering::Relaxed;
#[cfg(rtm_mutant = "slot_reuse_relaxed")]
const SLOT_CLAIM: Ordering = Ordering::Relaxed;

/// Values kept in an [`EpochCell`] expose their loom liveness cell, and may hook their
/// placement in an owner's [`InlineSlot`].
pub(crate) trait Touch {
    /// A loom-tracked read of the value's `alive` cell (no-op in normal builds).
    fn touch(&self);

    /// The alignment of the arena block a value of this type gets outside a slot (at least
    /// its own): a route list takes 64, so that what a lookup reads of it, its first
    /// bytes, is in one cache line wherever the block is. Default: the type's own.
    const BLOCK_ALIGN: usize = 1;

    /// A value was just published in the owner's `slot` (by `compare_and_swap_in` or
    /// `swap_placed`). A type whose deferred move-out needs its owner alive takes a
    /// reference to the owner here (a destination's route list, `dest/list.rs`) and releases it
    /// in [`unplaced`](Self::unplaced). Default: nothing.
    ///
    /// # Safety
    /// `slot` is the owner's slot holding the value just published, the caller is pinned
    /// and the owner is alive.
    unsafe fn placed(_slot: *const InlineSlot<Self>)
    where
        Self: Sized,
    {
    }

    /// The deferred drop of a placed value has moved it out of `slot`, marked the slot
    /// free and dropped it: the last access to the owner on the value's behalf.
    ///
    /// # Safety
    /// Called once per [`placed`](Self::placed), after that value's move-out.
    unsafe fn unplaced(_slot: *const InlineSlot<Self>)
    where
        Self: Sized,
    {
    }

    /// Drops one of the two values a move shares contents between
    /// ([`EpochCell::move_into_slot`]): the block value the move left, or the moved
    /// value when it could not be installed. What they share belongs to the other one,
    /// so only the rest is dropped. Default: a plain drop, for types that are never moved.
    ///
    /// # Safety
    /// `self` shares its contents with a value that is dropped normally (once).
    unsafe fn drop_moved(self)
    where
        Self: Sized,
    {
        drop(self)
    }
}

/// Work a writer hands to the deferred drop of the value its CAS replaced, to run right
/// after that drop in the same deferred function (a destination's snapshot transition
/// releases the counts of what the new snapshot dropped: `dest::Went`). Folding it into the
/// retirement keeps one deferral per transition, which keeps crossbeam's bag traffic, and
/// with it the loom models' state space, as it was before the counts moved.
pub(crate) trait AfterRetire {
    /// Nothing to run (lets a retirement that frees nothing skip deferring).
    fn is_noop(&self) -> bool;
    /// Runs it (once, after the grace period).
    fn run(self);
}

impl AfterRetire for () {
    fn is_noop(&self) -> bool {
        true
    }
    fn run(self) {}
}

/// See the module docs.
///
/// The flag comes first and the address word at offset 8 (`repr(C)`): an owner that puts
/// the cell 8 bytes before a cache line and its [`InlineSlot`] right after the cell has
/// the word and a placed value in one line, which is all a reader touches (a destination
/// does this).
#[repr(C)]
pub(crate) struct EpochCell<T: Touch> {
    /// Whether the owner's [`InlineSlot`] may be claimed: set by the deferred drop of the
    /// last value placed there, cleared by the writer that claims it. Only writers read it.
    slot_free: AtomicBool,
    /// Address of the current value (from [`block_new`], or an [`InlineSlot`]'s with the
    /// [`PLACED`] bit; never 0).
    ptr: AtomicUsize,
    _value: PhantomData<T>,
}

/// The value an [`EpochCell`] held when it was loaded: what
/// [`compare_and_swap_in`](EpochCell::compare_and_swap_in) expects to replace.
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

impl<'g, T> Current<'g, T> {
    /// The value, for the guard's lifetime.
    #[inline(always)]
    pub(crate) fn get(self) -> &'g T {
        self.value
    }
}

/// Room for one value of an [`EpochCell`], inside the cell's owner (see the module docs).
/// The value is at offset 0, so a placed value's address is the slot's. Where it sits in
/// its owner (which cache line) is the owner's choice.
#[repr(C)]
pub(crate) struct InlineSlot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    /// Loom's view of the slot's memory (see the module docs).
    #[cfg(loom)]
    track: loom::cell::UnsafeCell<()>,
}

// SAFETY: a value is written into the slot only by the one writer that owns the slot at
// the time (the creator of the unpublished owner, or the claimer of `slot_free`), before
// it is published; afterwards it is only read (shared `&T`, so `T: Sync`) until the one
// thread that retired it moves it out after the grace period (so `T: Send`).
unsafe impl<T: Send + Sync> Sync for InlineSlot<T> {}

impl<T> InlineSlot<T> {
    /// An empty slot.
    pub(crate) fn new() -> Self {
        Self {
            value: UnsafeCell::new(MaybeUninit::uninit()),
            #[cfg(loom)]
            track: loom::cell::UnsafeCell::new(()),
        }
    }

    /// The slot's address (what a reader prefetches).
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *const T {
        self.value.get().cast::<T>()
    }

    /// Writes `value` into the slot; returns its address.
    ///
    /// # Safety
    /// The caller owns the slot (see the `Sync` impl): it is empty and nobody else
    /// accesses it until the value is published.
    unsafe fn put(&self, value: T) -> *mut T {
        #[cfg(loom)]
        self.track.with_mut(|_| ());
        let p = self.value.get().cast::<T>();
        // SAFETY: per the contract the slot is empty and ours.
        unsafe { p.write(value) };
        p
    }

    /// Moves the value out of the slot, leaving it empty.
    ///
    /// # Safety
    /// The slot holds a value that nobody else reads any more (unpublished, or retired
    /// and past its grace period), and the caller is its only owner.
    unsafe fn take(&self) -> T {
        #[cfg(loom)]
        self.track.with_mut(|_| ());
        // SAFETY: per the contract the value is initialized and ours.
        unsafe { self.value.get().cast::<T>().read() }
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
        Self {
            ptr: AtomicUsize::new(block_new(value).as_ptr() as usize),
            slot_free: AtomicBool::new(false),
            _value: PhantomData,
        }
    }

    /// A cell holding a shared `'static` value (see [`STATIC`]).
    pub(crate) fn new_static(value: &'static T) -> Self {
        Self {
            ptr: AtomicUsize::new(value as *const T as usize | STATIC),
            slot_free: AtomicBool::new(false),
            _value: PhantomData,
        }
    }

    #[inline(always)]
    fn deref(p: usize, _g: &Guard) -> &T {
        #[cfg(loom)]
        if p & PLACED != 0 {
            // SAFETY: as below; the slot's address is its value's.
            unsafe { &*((p & !PLACED) as *const InlineSlot<T>) }.track.with(|_| ());
        }
        // SAFETY: the cell never holds 0 (set at construction, replaced only by values from
        // `block_new`, placed in a slot that outlives them, or `'static`), and a value
        // replaced after `p` was loaded is retired with `retire_with`, which cannot free (or
        // move out) it while the guard `_g` is pinned.
        let v = unsafe { &*((p & !TAGS) as *const T) };
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

    /// Byte distance from a cell to its owner's slot: the owner keeps the slot right after
    /// the cell (asserted where a slot is used), so a placed value's deferred drop finds
    /// the cell's flag from the slot's address and captures one word fewer.
    const TO_SLOT: usize = {
        let a = core::mem::align_of::<InlineSlot<T>>();
        core::mem::size_of::<Self>().div_ceil(a) * a
    };

    /// Retires the value at address word `old`, which the caller's own CAS or swap just
    /// unlinked, and runs `then` after its drop (in the same deferred function).
    fn retire<A: AfterRetire>(&self, old: usize, g: &Guard, then: A) {
        if old & STATIC != 0 {
            if !then.is_noop() {
                // SAFETY: `then` is the caller's to run after the grace period (its
                // contract, `compare_and_swap_in`); nothing else is retired here.
                unsafe { retire_with(g, move || then.run()) };
            }
            return;
        }
        if old & PLACED == 0 {
            let free_block = move || {
                // SAFETY: our atomic operation unlinked `old` (nobody else retires it), new
                // readers can no longer load it, and it came from `block_new::<T>`.
                unsafe { block_drop(old as *mut T) };
                then.run();
            };
            // SAFETY: see the closure; `retire_with` runs it once, after the grace period.
            unsafe { retire_with(g, free_block) };
            return;
        }
        let slot = old & !PLACED;
        debug_assert_eq!(slot, self as *const Self as usize + Self::TO_SLOT, "the slot follows the cell");
        // The cell is found again from the slot's address (see `TO_SLOT`).
        let _ = (self as *const Self).expose_provenance();
        let drop_placed = move || {
            let slot = slot as *const InlineSlot<T>;
            // SAFETY: the cell is `TO_SLOT` bytes before its slot (asserted above); its
            // address was exposed above; its owner is still allocated (below).
            let cell = unsafe { &*core::ptr::with_exposed_provenance::<Self>(slot as usize - Self::TO_SLOT) };
            // SAFETY: our atomic operation unlinked the placed value (nobody else retires
            // it), and after the grace period nobody reads the slot: the value is ours to
            // move out. The slot and the flag belong to the cell's owner, which the value
            // keeps allocated until `unplaced` (`Touch::placed`), so both are still valid
            // here, and the value is moved out before it is dropped.
            let v = unsafe { (*slot).take() };
            // Release: our move-out happens before the write of whoever claims the slot
            // next (its Acquire claim in `claim_slot` pairs with this store).
            cell.slot_free.store(true, SLOT_FREE);
            drop(v);
            then.run();
            // SAFETY: the value was placed (`placed` ran for it) and is moved out; this is
            // the closure's last access to the owner.
            unsafe { T::unplaced(slot) };
        };
        // SAFETY: see the closure; `retire_with` runs it once, after the grace period.
        unsafe { retire_with(g, drop_placed) };
    }

    /// Whether the owner's slot looked free (a Relaxed load: a filter only; claiming it is
    /// `compare_and_swap_in`'s).
    pub(crate) fn slot_may_be_free(&self) -> bool {
        self.slot_free.load(Ordering::Relaxed)
    }

    /// Claims the owner's slot if it is free.
    fn claim_slot(&self) -> bool {
        // The Relaxed load only filters (the slot is usually busy). Acquire on the claim
        // pairs with the Release store of the deferred drop that freed the slot, so that
        // drop's move-out of the old value happens before our write.
        self.slot_free.load(Ordering::Relaxed)
            && self.slot_free.compare_exchange(true, false, SLOT_CLAIM, Ordering::Relaxed).is_ok()
    }

    /// Replaces `current` (loaded from this cell under `g`) by `new`. On success returns
    /// the installed value and retires `current`, running `then` after its deferred drop;
    /// on failure returns `new` back (and `then` is dropped unrun). With a `slot` (the
    /// owner's, right after this cell; see [`swap_placed`](Self::swap_placed) for what the
    /// owner guarantees), `new` is placed there when the slot is free.
    ///
    /// `then` must be safe to run once after every thread pinned now has unpinned.
    pub(crate) fn compare_and_swap_in<'g, A: AfterRetire>(
        &self,
        current: Current<'g, T>,
        new: T,
        slot: Option<&InlineSlot<T>>,
        g: &'g Guard,
        then: A,
    ) -> Result<&'g T, T> {
        // A placed current value means the slot is busy: no need to look at the flag.
        let Some(slot) = slot.filter(|_| current.word & PLACED == 0 && self.claim_slot()) else {
            return match cas(&self.ptr, current.word, new) {
                Ok(n) => {
                    self.retire(current.word, g, then);
                    Ok(Self::deref(n, g))
                }
                Err(v) => Err(v),
            };
        };
        // SAFETY: we claimed the slot: it is empty (its last value was moved out before
        // the flag was set) and nobody else writes it until we publish or release it.
        let n = unsafe { slot.put(new) } as usize | PLACED;
        // AcqRel / Acquire: as in `cas`.
        match self.ptr.compare_exchange(current.word, n, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // SAFETY: we just published the value in the owner's slot, pinned; the owner
                // is alive (the caller reached this cell under `g`).
                unsafe { T::placed(slot) };
                self.retire(current.word, g, then);
                Ok(Self::deref(n, g))
            }
            Err(_) => {
                // SAFETY: never published: still ours.
                let v = unsafe { slot.take() };
                // Release: our accesses to the slot happen before the next claimer's.
                self.slot_free.store(true, Ordering::Release);
                Err(v)
            }
        }
    }

    /// Moves `current`, a value in a block of its own, into the owner's `slot` (see
    /// [`swap_placed`](Self::swap_placed) for what the owner guarantees) if the slot is
    /// free and the cell still holds `current`. `moved` is `current` moved bitwise (it
    /// owns what `current` owned; a destination's route list moves its entry block along
    /// instead of copying it). On success the block is retired with [`Touch::drop_moved`]
    /// (its shared contents are now the placed value's), and the placed value is returned.
    /// On failure nothing changed, and `moved` is disposed of with `drop_moved` (the
    /// contents stay `current`'s).
    pub(crate) fn move_into_slot<'g>(
        &self,
        current: Current<'g, T>,
        moved: T,
        slot: &InlineSlot<T>,
        g: &'g Guard,
    ) -> Result<&'g T, ()> {
        debug_assert_eq!(current.word & TAGS, 0, "a value in a block of its own");
        if current.word & TAGS != 0 || !self.claim_slot() {
            // SAFETY: `moved` was never published; `current` keeps the contents.
            unsafe { moved.drop_moved() };
            return Err(());
        }
        // SAFETY: we claimed the slot: it is empty (its last value was moved out before
        // the flag was set) and nobody else writes it until we publish or release it.
        let n = unsafe { slot.put(moved) } as usize | PLACED;
        // AcqRel / Acquire: as in `cas` (Release publishes what `put` wrote; pairs with the
        // readers' `LOAD`). Mutant `move_relaxed` drops the Release.
        #[cfg(not(rtm_mutant = "move_relaxed"))]
        let success = Ordering::AcqRel;
        #[cfg(rtm_mutant = "move_relaxed")]
        let success = Ordering::Acquire;
        match self.ptr.compare_exchange(current.word, n, success, Ordering::Acquire) {
            Ok(_) => {
                // SAFETY: as in `compare_and_swap_in`: published in the owner's slot,
                // pinned, the owner alive.
                unsafe { T::placed(slot) };
                let old = current.word;
                let free_block = move || {
                    let p = old as *mut T;
                    // SAFETY: our CAS unlinked the block (nobody else retires it) and after
                    // the grace period nobody reads it; it came from `block_new::<T>` (an
                    // untagged word). Its value is read out once, dropped with
                    // `drop_moved` (the placed value owns the shared contents), and the
                    // block freed without dropping it again.
                    unsafe {
                        p.read().drop_moved();
                        node_dealloc(p.cast(), block_layout::<T>());
                    }
                };
                // SAFETY: see the closure; `retire_with` runs it once, after the grace period.
                unsafe { retire_with(g, free_block) };
                Ok(Self::deref(n, g))
            }
            Err(_) => {
                // SAFETY: never published: still ours.
                let v = unsafe { slot.take() };
                // Release: our accesses to the slot happen before the next claimer's.
                self.slot_free.store(true, Ordering::Release);
                // SAFETY: `v` never replaced `current`, which keeps the contents.
                unsafe { v.drop_moved() };
                Err(())
            }
        }
    }

    /// [`compare_and_swap_in`](Self::compare_and_swap_in) to a shared `'static` value,
    /// which is never retired or freed; on failure nothing changed.
    pub(crate) fn compare_and_swap_static<'g, A: AfterRetire>(
        &self,
        current: Current<'g, T>,
        new: &'static T,
        g: &'g Guard,
        then: A,
    ) -> Result<&'g T, ()> {
        let n = new as *const T as usize | STATIC;
        debug_assert_eq!(n & PLACED, 0, "a static value is 4-aligned");
        // AcqRel / Acquire: as in `cas` (the static's contents were initialized before
        // any thread could run).
        self.ptr.compare_exchange(current.word, n, Ordering::AcqRel, Ordering::Acquire).map_err(|_| ())?;
        self.retire(current.word, g, then);
        Ok(Self::deref(n, g))
    }

    /// [`swap`](Self::swap) to a shared `'static` value.
    pub(crate) fn swap_static<'g>(&self, new: &'static T, g: &'g Guard) -> &'g T {
        self.swap_word(new as *const T as usize | STATIC, g)
    }

    /// Unconditionally replaces the value; retires the old one.
    pub(crate) fn swap<'g>(&self, new: T, g: &'g Guard) -> &'g T {
        let n = block_new(new).as_ptr() as usize;
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
        // SAFETY: per the contract nobody else accesses the slot now and it was never used
        // (empty), so it is ours.
        let p = unsafe { slot.put(value) };
        // SAFETY: the value is in the owner's slot; the owner is alive (the caller's
        // contract), and nobody can retire the value before the swap publishes it.
        unsafe { T::placed(slot) };
        self.swap_word(p as usize | PLACED, g)
    }

    fn swap_word<'g>(&self, n: usize, g: &'g Guard) -> &'g T {
        // AcqRel: as in `cas`.
        let old = self.ptr.swap(n, Ordering::AcqRel);
        self.retire(old, g, ());
        Self::deref(n, g)
    }
}

/// The layout of the arena block a `T` gets (see [`Touch::BLOCK_ALIGN`]).
fn block_layout<T: Touch>() -> Layout {
    let l = Layout::new::<T>();
    debug_assert!(l.size() != 0);
    l.align_to(T::BLOCK_ALIGN).expect("a power of two").pad_to_align()
}

/// `v` in a new arena block of [`block_layout`].
fn block_new<T: Touch>(v: T) -> NonNull<T> {
    let layout = block_layout::<T>();
    let Some(p) = NonNull::new(node_alloc(layout).cast::<T>()) else {
        std::alloc::handle_alloc_error(layout)
    };
    // SAFETY: a fresh block of `T`'s size, aligned at least as `T`.
    unsafe { p.as_ptr().write(v) };
    p
}

/// Drops and frees a value made by [`block_new`].
///
/// # Safety
/// `p` came from `block_new::<T>`, is freed once, and is not used afterwards.
pub(super) unsafe fn block_drop<T: Touch>(p: *mut T) {
    // SAFETY: forwarded from the caller: `p` holds a live `T` in a block of that layout.
    unsafe {
        core::ptr::drop_in_place(p);
        node_dealloc(p.cast(), block_layout::<T>());
    }
}

/// Retires the arena block at `old` (if any), which the caller's own CAS or swap just
/// unlinked.
pub(super) fn retire_block<T: Touch>(old: usize, g: &Guard) {
    if old == 0 {
        return;
    }
    // SAFETY: our atomic operation unlinked `old` (nobody else retires it) and new readers
    // can no longer load it; it came from `block_new::<T>`.
    unsafe { retire_with(g, move || block_drop(old as *mut T)) };
}

/// The compare-and-swap of [`EpochCell`] and `MaxSlot` on their address word: `cur`
/// (0 = empty) by `new` in a new arena block; on success returns the block's address (the
/// caller retires `cur`), on failure hands `new` back.
pub(super) fn cas<T: Touch>(ptr: &AtomicUsize, cur: usize, new: T) -> Result<usize, T> {
    let n = block_new(new);
    // AcqRel: Release publishes `new`'s contents (pairs with `LOAD`); Acquire orders our
    // later use of the cell after the value we replaced.
    match ptr.compare_exchange(cur, n.as_ptr() as usize, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(n.as_ptr() as usize),
        Err(_) => {
            // SAFETY: `n` was never published: we own it; move the value out and free
            // the block without dropping the value.
            unsafe {
                let v = n.as_ptr().read();
                node_dealloc(n.as_ptr().cast(), block_layout::<T>());
                Err(v)
            }
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
    // Inside a retirement batch the free is stored and deferred with the batch, later but
    // still under the caller's pin (`retire.rs`).
    if let Err(free) = super::retire::store(g, free) {
        // Loom builds count the functions pending (`flush_epoch` flushes until none is).
        #[cfg(loom)]
        let free = super::pending(free);
        // SAFETY: forwarded from the caller: readers that may still hold the memory are
        // pinned, and the collector runs `free` only after they unpin.
        unsafe { g.defer_unchecked(free) };
    }
    #[cfg(rtm_mutant = "free_immediately")]
    {
        let _ = g;
        free();
    }
}

impl<T: Touch> Drop for EpochCell<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Ordering::Relaxed);
        if p & STATIC != 0 {
            return;
        }
        if p & PLACED != 0 {
            // (Not for a type whose `placed` takes a reference to the owner: that keeps
            // the owner alive while the value is current, so it is never dropped here.)
            // SAFETY: `&mut self`: no reader can reach this cell any more, and the placed
            // value is initialized (it is current); moved out first, as in `retire`.
            drop(unsafe { (*((p & !PLACED) as *const InlineSlot<T>)).take() });
            return;
        }
        // SAFETY: `&mut self`: no reader can reach this cell any more (its owner is being
        // destroyed, itself after an epoch grace period or with exclusive access), so
        // the current value (from `block_new`, never 0) can be freed now.
        unsafe { block_drop(p as *mut T) }
    }
}
