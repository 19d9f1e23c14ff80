//! Destinations: a prefix, its epoch-reclaimed route-list snapshot, and a reference count.
//!
//! The snapshots a destination holds ("Route lists") and what they own ("Ownership") are
//! described in `list.rs`.
//!
//! # Layout
//! A destination is three cache lines. Line 1 is the header (prefix, reference count,
//! sequence counter, the slot's free flag). Line 2 holds the snapshot cell's address word
//! and then a slot where a snapshot can be *placed* (what a lookup reads of it, its
//! forwarding copy and first entry, in line 2; its second entry and generation, which
//! writers read, in line 3): the first one with a route
//! ([`Dest::install_first`], while the destination is still private to its creator), and
//! later ones whenever the slot is free again. Most destinations of a routing table keep
//! their first snapshot (most routes never change), so a lookup reads line 2 only: one
//! cache miss per destination. A snapshot that finds the slot busy lives in an arena
//! block of its own; a placed one, once replaced, is moved out and dropped epoch-deferred
//! like any snapshot (`sync/epoch_cell.rs`, "Placed values"). It holds a reference to the
//! destination (`list.rs`, "Ownership"), so the destination is still allocated when that
//! deferred drop reads the slot.
//!
//! # Death
//! A destination leaves the table when its last route is deleted: the deleting writer
//! swaps in a *dead* snapshot (in the same CAS that removes the route) and then unlinks the
//! destination from the trie. A dead snapshot is final. A writer that finds a dead
//! destination still linked helps unlink it and retries, creating a fresh destination; so
//! removal racing an add to the same prefix never loses the add.
//!
//! # References
//! `refs` counts: one for the trie link (held from insertion until unlink), one per route
//! block on it, one per reference to its own route (`identity.rs`: the current snapshot's
//! while it holds the route, and every handle's), one per placed snapshot not yet moved
//! out, one per [`DestRef`]. Taking a
//! reference from a pointer found in the trie uses [`Dest::try_ref`], which never
//! increments from zero (a destination at zero is already retired). Lock-free readers hold *uncounted* pointers found in the trie; the
//! trie's link reference covers them, because it is released epoch-deferred after the
//! unlink (every reader that could have seen the link has unpinned by then). So the last
//! release frees the destination at once: no destructor pins the epoch again, which keeps
//! chains of deferred destructors (a route count's release -> the route -> its destination)
//! finite.

use crate::entity::Entity;
use crate::identity::{Identity, RoutePtr};
use crate::prefix::NetAddress;
use crate::route::{RouteRef, Version};
use crate::sync::epoch::{self, Guard};
use crate::sync::{
    arena_drop, arena_new, prefetch, AfterRetire, Arc, AtomicUsize, Current, EpochCell, InlineSlot, Ordering,
    Touch, TrackedCell,
};
use crate::view::{ViewId, ViewSet};
use core::fmt;
use core::ptr::NonNull;

mod list;
#[cfg(all(test, not(loom)))]
mod tests;

pub(crate) use list::*;

// The layout a lookup relies on (see `Dest`): the cell's address word at 64 (the cell's
// word is at offset 8 of the cell), the placed list right after it, and what a lookup
// reads of the list (its forwarding copy and first entry) in line 2 with them; the rest
// of the list (the second inline entry, the generation) in line 3.
#[cfg(not(loom))]
const _: () = assert!(
    core::mem::size_of::<Dest>() == 192
        && core::mem::size_of::<RouteList>() == 88
        && core::mem::size_of::<Entry>() == 24
        && core::mem::size_of::<Identity>() == 24
        && core::mem::offset_of!(Dest, own) == 32
        && core::mem::offset_of!(Dest, routes) == 56
        && core::mem::offset_of!(Dest, first) == 72
        && core::mem::offset_of!(RouteList, entries) == 0
        && core::mem::offset_of!(Dest, first) + list::LOOKUP_BYTES == 128
);

/// A destination. See the module docs.
///
/// Three cache lines. Line 1: what writers and handle holders read (prefix, counts, the
/// slot's flag, which is the first byte of the cell). Line 2: the cell's address word,
/// then `first`, where the first route list with a route is placed (`install_first`),
/// which runs into line 3 (its second entry and generation: writers only).
/// Most destinations of a table keep that list, so a lookup reads its best route from
/// line 2 alone: one cache miss per destination (see [`Dest::prefetch`]).
#[repr(C, align(64))]
pub(crate) struct Dest {
    alive: TrackedCell<()>,
    pub(crate) prefix: NetAddress,
    refs: AtomicUsize,
    /// The identity of the destination's own route, the one it was created with (see
    /// `identity.rs`): its references are this destination's.
    pub(crate) own: Identity,
    pub(crate) routes: EpochCell<RouteList>,
    first: InlineSlot<RouteList>,
}

impl Touch for Dest {
    #[inline(always)]
    fn touch(&self) {
        self.alive.touch();
    }
}

impl Drop for Dest {
    fn drop(&mut self) {
        self.alive.retire();
        crate::sync::LIVE_DESTS.add(-1);
    }
}

impl Dest {
    /// A new, unlinked destination with an empty snapshot and one reference, which the
    /// returned pointer holds (it becomes the trie link once inserted).
    pub(crate) fn create(prefix: NetAddress, owner: Arc<Entity>) -> DestPtr {
        crate::sync::LIVE_DESTS.add(1);
        let p = arena_new(Dest {
            alive: TrackedCell::new(()),
            prefix,
            refs: AtomicUsize::new(1),
            own: Identity::new(owner),
            // Starts empty, which reads as dead: the shared dead list outside loom (no
            // block to allocate and retire); loom builds allocate it (see `shared_dead`).
            routes: match RouteList::shared_dead() {
                Some(dead) => EpochCell::new_static(dead),
                None => EpochCell::new(RouteList::dead(0)),
            },
            first: InlineSlot::new(),
        });
        // For `of_slot` (and `owning_ptr`): pointers rebuilt from the address.
        let _ = p.as_ptr().expose_provenance();
        DestPtr(p)
    }

    /// Installs the first route list of a destination that `create` just made, placed in
    /// its own second cache line; the empty list is retired.
    ///
    /// Only for an unpublished destination (no other thread can reach it), once: `list`
    /// must hold a route. (The placed list holds a reference to the destination until its
    /// deferred move-out, `RouteList::placed`, which `EpochCell::swap_placed` requires.)
    pub(crate) fn install_first<'g>(this: &DestPtr, list: RouteList, g: &'g Guard) -> &'g RouteList {
        debug_assert!(!list.is_dead(), "a placed list holds a route");
        debug_assert!(list.entries.iter().all(|e| core::ptr::eq(e.route.dest(), this.as_ptr())));
        // The current snapshot owns counts on its routes and versions (the caller holds
        // its own, so they are alive).
        for e in list.entries.iter() {
            core::mem::forget(RoutePtr::clone(&e.route));
            core::mem::forget(Version::clone(e.info()));
        }
        // SAFETY: `this` came from `create` and is not linked yet (the caller's contract),
        // so no other thread reaches the cell or the slot; the slot is used once; the
        // placed list takes a reference to this destination (`RouteList::placed`), so it
        // outlives the list.
        unsafe { this.routes.swap_placed(&this.first, list, g) }
    }

    /// A new, unlinked destination for `prefix` holding `routes` (owner and version of
    /// each, in selection order): the first is its own route, the others route blocks added
    /// in order (so their creation sequences keep that order). For promoting a leaf's lone
    /// routes (`leaf.rs`); the returned pointer holds one reference, as `create`'s.
    pub(crate) fn create_with(prefix: NetAddress, routes: &[(Arc<Entity>, &Version)], g: &Guard) -> DestPtr {
        let ((owner, first), rest) = routes.split_first().expect("a destination has a route");
        let dest = Dest::create(prefix, owner.clone());
        let own = RoutePtr::own(dest.clone());
        Dest::install_first(&dest, RouteList::one(1, Entry::new(&own, first)), g);
        drop(own);
        for (owner, info) in rest {
            // The creation sequence is the generation of the snapshot that adds the route
            // (`identity.rs`); the destination is private, so the first CAS succeeds.
            let r = RoutePtr::block(dest.clone(), owner.clone(), dest.list(g).gen + 1);
            let added = dest.modify(g, |cur| {
                let (list, delta) = cur.with_added(&r, info);
                Ok::<_, ()>((list, delta, ()))
            });
            debug_assert!(added.is_ok());
        }
        dest
    }

    /// Marks the destination dead unconditionally (the caller owns the transition: an
    /// unpublished destination, or the table's drop); retires the current list and
    /// releases the counts it held: at once if `private` (no other thread ever reached the
    /// destination, so none can read the list), else epoch-deferred (a `DestRef` holder may
    /// be reading it).
    pub(crate) fn kill(&self, gen: u64, private: bool, g: &Guard) {
        let old = self.list(g);
        match RouteList::shared_dead() {
            Some(dead) => self.routes.swap_static(dead, g),
            None => self.routes.swap(RouteList::dead(gen), g),
        };
        if private {
            for e in old.entries.iter() {
                // The list's counts, which nothing else releases (see above).
                Counts::of(e).run();
            }
            return;
        }
        // The counts the old snapshot held go, epoch-deferred.
        for e in old.entries.iter() {
            Counts::of(e).defer(g);
        }
    }

    /// Whether `list` (read from this destination) is the one placed in its slot.
    #[inline]
    pub(crate) fn is_placed(&self, list: &RouteList) -> bool {
        core::ptr::eq(list, self.first.as_ptr())
    }

    /// Moves the current snapshot into the destination's slot if it is still the one of
    /// generation `gen`, lives in a block of its own and the slot is free (one transition
    /// that changes no route: the snapshot's 88 bytes copied into the slot, its entry
    /// block, if any (more than two routes), taken over rather than copied, and the
    /// block retired without it;
    /// `EpochCell::move_into_slot`). A write that finds the slot busy puts its snapshot
    /// in a block; the slot frees after the grace period of the placed one it replaced,
    /// and a destination nobody writes again would keep the block (and its line apart
    /// from the one a lookup reads) for good: a table loaded feed by feed leaves most
    /// destinations with several routes that way, and so does a churn of
    /// re-announcements (every update of a placed snapshot finds the slot busy), which
    /// left `rtm bench`'s lookups 14 % slower until session 20 placed those too: a move
    /// per such write, paid by the writers. A destination written again since needs no
    /// help here: that write is queued itself.
    /// `false` if the slot is still busy (try again later); `true` once there is nothing
    /// to do.
    pub(crate) fn place(&self, gen: u64, g: &Guard) -> bool {
        let cur = self.routes.load_current(g);
        let list = cur.get();
        if list.gen != gen || list.is_dead() || self.is_placed(list) {
            return true;
        }
        if !self.routes.slot_may_be_free() {
            return false;
        }
        // The move changes no route, so it needs no counts (`Delta`); its entries move
        // with it. Either it is placed, or the slot was claimed by another writer (busy:
        // again later), or the destination was written since (that write is queued
        // itself if it left a block: nothing to do here).
        match self.routes.move_into_slot(cur, list.moved(), &self.first, g) {
            Ok(_) => true,
            Err(()) => !core::ptr::eq(self.list(g), list),
        }
    }

    /// Bytes of one destination object (its arena block: the size is a multiple of its
    /// 64-byte alignment).
    pub(crate) const BYTES: usize = core::mem::size_of::<Dest>();

    /// The destination whose `first` slot is at `slot`.
    ///
    /// # Safety
    /// `slot` is a destination's `first` slot.
    unsafe fn of_slot(slot: *const InlineSlot<RouteList>) -> *const Dest {
        // The destination's address was exposed by `create`: rebuild the pointer from it
        // (a pointer to the slot field has no provenance over the rest).
        core::ptr::with_exposed_provenance::<Dest>(slot as usize - core::mem::offset_of!(Dest, first))
    }

    /// Prefetches the line a lookup reads: the snapshot cell's address word and (the
    /// usual place of the current route list) the first list's slot.
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        prefetch(self.first.as_ptr().cast::<u8>());
    }

    /// Prefetches both lines: [`prefetch`](Self::prefetch)'s and the header (prefix and
    /// reference count), for the paths that take a reference or read the prefix.
    #[inline(always)]
    pub(crate) fn prefetch_all(&self) {
        prefetch((self as *const Self).cast::<u8>());
        self.prefetch();
    }

    /// Prefetches all three lines, for a writer: [`prefetch_all`](Self::prefetch_all)'s
    /// and the last, where a placed snapshot keeps its second entry and generation.
    #[inline(always)]
    pub(crate) fn prefetch_for_write(&self) {
        self.prefetch_all();
        prefetch((self as *const Self).cast::<u8>().wrapping_add(core::mem::size_of::<Self>() - 1));
    }

    /// A new reference to `self`, which the caller reaches through a reference it holds
    /// (so the count is at least 1).
    pub(crate) fn counted_clone(&self) -> DestPtr {
        // Relaxed: a reference made from a held one, as in `DestPtr::clone`.
        self.refs.fetch_add(1, Ordering::Relaxed);
        self.counted()
    }

    /// The reference count (tests only: racy by nature).
    #[cfg(test)]
    pub(crate) fn ref_count(&self) -> usize {
        self.refs.load(Ordering::Relaxed)
    }

    /// A counted pointer to `self`, for a reference just taken.
    fn counted(&self) -> DestPtr {
        DestPtr(owning_ptr(self))
    }

    /// Takes a reference unless the count is already zero (the destination is retired).
    /// Only call with a pointer that is valid now (found under a pin).
    pub(crate) fn try_ref(&self) -> Option<DestPtr> {
        #[cfg(rtm_mutant = "unchecked_inc")]
        {
            self.refs.fetch_add(1, Ordering::Relaxed);
            return Some(self.counted());
        }
        #[cfg(not(rtm_mutant = "unchecked_inc"))]
        {
            // Relaxed is enough for the increment: the caller already reaches the
            // destination through a pointer loaded with Acquire (trie) and keeps it alive
            // by its pin until the count is raised; the count protects nothing published
            // by the previous holder. Never from zero: zero means retired.
            let mut n = self.refs.load(Ordering::Relaxed);
            loop {
                if n == 0 {
                    return None;
                }
                match self.refs.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return Some(self.counted()),
                    Err(m) => n = m,
                }
            }
        }
    }

    /// The current snapshot, valid while `g` is pinned.
    #[inline(always)]
    pub(crate) fn list<'g>(&self, g: &'g Guard) -> &'g RouteList {
        self.routes.load(g)
    }

    /// Replaces the snapshot by `f(current)` with a CAS loop. `f` returns the new snapshot,
    /// its counts ([`Delta`], applied once it is installed; a failed attempt owns nothing)
    /// and a result, or an error which is returned as is (nothing changed). Returns the
    /// snapshot replaced (retired, still readable under `g`), the one installed, and `f`'s
    /// result. The objects `f` adds must be held by the caller until this returns.
    pub(crate) fn modify<'g, R, E>(
        &self,
        g: &'g Guard,
        mut f: impl FnMut(&RouteList) -> Result<(RouteList, Delta, R), E>,
    ) -> Result<(&'g RouteList, &'g RouteList, R), E> {
        loop {
            let cur: Current<'g, RouteList> = self.routes.load_current(g);
            let (next, delta, r) = f(cur.get())?;
            let Delta { came, went } = delta;
            // Mutant `eager_release` releases the counts at the CAS instead of after the
            // replaced snapshot's grace period.
            #[cfg(rtm_mutant = "eager_release")]
            let (went, eager) = ((), went);
            #[cfg(rtm_mutant = "lost_update")]
            {
                let new = self.routes.swap(next, g);
                came.take();
                went.defer(g);
                return Ok((cur.get(), new, r));
            }
            #[cfg(not(rtm_mutant = "lost_update"))]
            {
                // A failed CAS means another writer installed a newer snapshot: rebuild
                // from it, so no update is lost.
                // A dead list: the shared one, where there is one (no allocation).
                if next.is_dead() {
                    if let Some(dead) = RouteList::shared_dead() {
                        if let Ok(new) = self.routes.compare_and_swap_static(cur, dead, g, went) {
                            came.take();
                            #[cfg(rtm_mutant = "eager_release")]
                            eager.run();
                            return Ok((cur.get(), new, r));
                        }
                        crate::sync::spin_hint();
                        continue;
                    }
                }
                // A list with a route may go to the slot (a placed list holds a reference to
                // the destination until its deferred move-out: `RouteList::placed`). A dead
                // one is never placed (nothing to read; it is final).
                let slot = (!next.is_dead()).then_some(&self.first);
                if let Ok(new) = self.routes.compare_and_swap_in(cur, next, slot, g, went) {
                    came.take();
                    #[cfg(rtm_mutant = "eager_release")]
                    eager.run();
                    return Ok((cur.get(), new, r));
                }
            }
            crate::sync::spin_hint();
        }
    }
}

/// An owned, counted reference to a [`Dest`] (the engine-internal form of a handle).
pub(crate) struct DestPtr(NonNull<Dest>);

// SAFETY: the pointee is `Sync` (atomics, epoch cells, immutable fields) and the count keeps
// it alive wherever the pointer travels.
unsafe impl Send for DestPtr {}
// SAFETY: as above; `&DestPtr` only gives `&Dest`.
unsafe impl Sync for DestPtr {}

impl DestPtr {
    pub(crate) fn as_ptr(&self) -> *const Dest {
        self.0.as_ptr()
    }

    /// Gives up this reference without releasing it (the trie now holds it).
    pub(crate) fn into_link(self) -> *const Dest {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Gives up this reference as the destination's address, for a pointer that keeps it
    /// in a tagged word (`identity::RoutePtr`); [`from_raw`](Self::from_raw) takes it back.
    pub(crate) fn into_raw(self) -> NonNull<Dest> {
        let p = self.0;
        core::mem::forget(self);
        p
    }

    /// Takes back a reference given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `p` came from `into_raw`, and that reference is taken back once.
    pub(crate) unsafe fn from_raw(p: NonNull<Dest>) -> DestPtr {
        DestPtr(p)
    }

    /// Borrows the destination of a reference given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `p` came from `into_raw`, and that reference is held for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn borrow_raw<'a>(p: NonNull<Dest>) -> &'a Dest {
        // SAFETY: the reference the caller holds keeps the count >= 1 for `'a`, so the
        // destination is not retired (as in `Deref`).
        let d = unsafe { p.as_ref() };
        d.alive.touch();
        d
    }

    /// Re-owns the trie's link reference after a successful unlink.
    ///
    /// # Safety
    /// `p` must be a link reference the caller just unlinked (so it owns it).
    pub(crate) unsafe fn from_link(p: *const Dest) -> DestPtr {
        DestPtr(owning_ptr(p))
    }
}

/// A pointer to the destination at `p` that the last release may deallocate through.
///
/// Callers hold the destination as `&Dest` (found in the trie); a pointer derived from a
/// shared reference does not permit deallocation (miri, tree borrows). The trie stores
/// destination addresses as integers, exposing the provenance of the `arena_new` pointer,
/// so the pointer is rebuilt from that exposed provenance.
fn owning_ptr(p: *const Dest) -> NonNull<Dest> {
    let p = core::ptr::with_exposed_provenance_mut::<Dest>(p as usize);
    // SAFETY: `p` is the address of a live destination (it came from a reference), so it
    // is not null.
    unsafe { NonNull::new_unchecked(p) }
}

impl core::ops::Deref for DestPtr {
    type Target = Dest;
    #[inline]
    fn deref(&self) -> &Dest {
        // SAFETY: this pointer holds a reference, so the count is >= 1 and the destination
        // has not been retired.
        let d = unsafe { self.0.as_ref() };
        d.alive.touch();
        d
    }
}

impl Clone for DestPtr {
    fn clone(&self) -> Self {
        // Relaxed: we already hold a reference (count >= 1), as in `Arc::clone`.
        self.refs.fetch_add(1, Ordering::Relaxed);
        DestPtr(self.0)
    }
}

impl Drop for DestPtr {
    fn drop(&mut self) {
        // Release orders this holder's uses of the destination before the decrement; the
        // last releaser's Acquire load pairs with every other releaser's Release, so the
        // destruction happens after all of their uses.
        #[cfg(not(rtm_mutant = "relaxed_release"))]
        let prev = self.refs.fetch_sub(1, Ordering::Release);
        #[cfg(rtm_mutant = "relaxed_release")]
        let prev = self.refs.fetch_sub(1, Ordering::Relaxed);
        if prev != 1 {
            return;
        }
        // An Acquire load rather than `fence(Acquire)` (std's `Arc` does the same under
        // TSan): it reads the 0 our decrement wrote, the end of the release sequence of
        // every earlier decrement, so it synchronizes with all of them — and ThreadSanitizer,
        // which does not model standalone fences, sees that edge too.
        #[cfg(not(rtm_mutant = "relaxed_release"))]
        let _ = self.refs.load(Ordering::Acquire);
        #[cfg(rtm_mutant = "leak_node")]
        return;
        #[allow(unreachable_code)]
        // SAFETY: the count reached zero, so no handle, route or trie link refers to the
        // destination and `try_ref` can no longer succeed. No lock-free reader can hold an
        // uncounted pointer either: readers find destinations only through the trie, and
        // the trie's link reference is released epoch-deferred after the unlink
        // (`TableInner::unlink`), so every reader that could have seen the link has
        // unpinned before the count can reach zero. Hence an immediate free, which also
        // keeps destructors that run inside the collector from pinning again. `self.0`
        // came from `arena_new` in `Dest::create`.
        unsafe {
            arena_drop(self.0.as_ptr())
        };
    }
}

/// A reference-counted pin of a destination (RTMv2 destination handle). `Clone` adds a
/// reference, `Drop` releases it. A destination that left the table (its last route was
/// deleted) stays readable through its handles and shows no routes.
#[derive(Clone)]
#[must_use = "dropping a DestRef releases the destination handle"]
pub struct DestRef {
    pub(crate) dest: DestPtr,
}

impl DestRef {
    /// The prefix.
    pub fn prefix(&self) -> NetAddress {
        self.dest.prefix
    }

    /// Whether the destination has left the table.
    pub fn is_deleted(&self) -> bool {
        self.dest.list(&epoch::pin()).is_dead()
    }

    /// A consistent snapshot of the routes, best first.
    pub fn routes(&self) -> Vec<RouteRef> {
        self.dest.list(&epoch::pin()).entries.iter().map(|e| e.route_ref()).collect()
    }

    /// The snapshot's routes and the versions the snapshot holds, best first.
    pub fn route_infos(&self) -> Vec<(RouteRef, Version)> {
        self.dest.list(&epoch::pin()).entries.iter().map(|e| (e.route_ref(), e.info().clone())).collect()
    }

    /// The best route of view `v`, if any.
    pub fn best(&self, v: ViewId) -> Option<RouteRef> {
        self.dest.list(&epoch::pin()).best(v).map(|e| e.route_ref())
    }

    /// The best route of view `v` among routes whose owner's protocol id is `protocol`.
    pub fn best_of_protocol(&self, v: ViewId, protocol: u32) -> Option<RouteRef> {
        self.dest
            .list(&epoch::pin())
            .entries
            .iter()
            .find(|e| e.views().contains(v) && e.info().owner.protocol == protocol)
            .map(|e| e.route_ref())
    }

    /// The views the destination has routes in.
    pub fn views(&self) -> ViewSet {
        self.dest.list(&epoch::pin()).views()
    }

    /// Number of routes (in any view).
    pub fn route_count(&self) -> usize {
        self.dest.list(&epoch::pin()).entries.len()
    }

    /// Whether two handles name the same destination object.
    pub fn ptr_eq(&self, other: &DestRef) -> bool {
        self.dest.as_ptr() == other.dest.as_ptr()
    }
}

impl fmt::Debug for DestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestRef")
            .field("prefix", &self.prefix())
            .field("routes", &self.route_count())
            .field("deleted", &self.is_deleted())
            .finish()
    }
}
