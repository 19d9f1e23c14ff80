//! Route-list snapshots: the entries of a destination's routes and what they own.
//!
//! # Route lists
//! [`RouteList`] is an immutable snapshot: the routes sorted best-first (see
//! `route::selection_order`), a generation number, and a `dead` flag. A writer changes a
//! destination by building a new snapshot and compare-and-swapping it in
//! ([`Dest::modify`]); a failed CAS rebuilds from the newer snapshot, so two racing writers
//! never lose an update. Readers load a snapshot without blocking and always see a whole
//! one. The best route of a view is the first entry that belongs to it. Snapshots are read
//! under a pinned epoch guard and retired with `defer_destroy` when replaced (see
//! `sync/epoch_cell.rs` and `docs/design.md` for why not arc-swap). A snapshot with one
//! or two routes keeps them inline ([`Entries`]): the common cases cost no extra
//! allocation and no extra dependent miss. A route's creation sequence (the last
//! tie-break of the order) comes from a counter of the destination, not from the
//! snapshot, which keeps a snapshot at 88 bytes.
//!
//! # Ownership
//! A snapshot's entries own nothing: each is a bitwise share of a route identity and a
//! version ([`Entry`]). The destination's *current* snapshot owns one count on each of
//! its entries' routes and versions (a multiset: several routes may share a version);
//! replaced snapshots own none. So copying a snapshot into the next one is a memory copy
//! that touches no route or version object (it used to raise and later drop two counts
//! per entry, four cache misses per existing route of a destination on every write).
//! A transition ([`Dest::modify`]) changes one route, and its [`Delta`] says which counts
//! move: after the installing CAS the writer takes the counts the new snapshot needs on
//! objects it still holds itself (so they are alive), and releases the counts of what the
//! new snapshot dropped epoch-deferred, since readers of the old snapshot may still read
//! those objects. A failed CAS owns nothing and is simply dropped. A reader turning an
//! entry into a handle increments under its pin: the count the entry shares is released
//! only after that pin, so it is still at least one.
//!
//! A *placed* snapshot (`mod.rs`, "Layout") also holds a reference to its destination from placement
//! until its deferred move-out (`Touch::placed`/`unplaced` of [`RouteList`]): the move-out
//! writes the destination's slot and flag, and the snapshot's own routes no longer keep
//! the destination alive (their counts may be released, in another deferred function
//! that can run first).

use super::{owning_ptr, Dest, DestPtr};
use crate::identity::RoutePtr;
use crate::route::{selection_order, NextHop, NextHops, RouteRef, Version};
use crate::sync::epoch::Guard;
use crate::sync::{
    node_alloc, node_dealloc, prefetch, retire_with, AfterRetire, InlineSlot, Ordering, Touch, TrackedCell,
};
use crate::view::{ViewId, ViewSet};
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr::NonNull;

/// One route in a snapshot: its identity, the version this snapshot holds, and a copy of
/// that version's views, so a lookup finds the best route of a view from the snapshot
/// alone. 24 bytes. The best route's next hops are copied once per snapshot, beside the
/// first entry ([`Entries`]): the fast path reads them without dereferencing `info`;
/// the other entries' next hops are read through their version.
///
/// An entry owns nothing (see "Ownership" in the module docs): its pointers are bitwise
/// shares of counts the destination's current snapshot holds, so copying a snapshot is a
/// memory copy and never touches the route and version objects.
pub(crate) struct Entry {
    views: ViewSet,
    /// The route owner's registration number (`Entity::serial`), so that a writer's
    /// search for its own routes reads only the snapshot.
    pub(crate) owner: u32,
    pub(crate) route: ManuallyDrop<RoutePtr>,
    /// Private so that it cannot change without its forwarding copy.
    info: ManuallyDrop<Version>,
}

/// A non-owning bitwise copy of `v`, never dropped.
///
/// Sound where `v`'s owner outlives every use of the copy: entries of a snapshot are read
/// under a pin, and the counts they share are released epoch-deferred (module docs).
#[inline(always)]
fn share<T>(v: &T) -> ManuallyDrop<T> {
    // SAFETY: the copy is wrapped in `ManuallyDrop` and never dropped or given out owned:
    // it aliases `v`'s pointer(s) without a count of its own (see above).
    ManuallyDrop::new(unsafe { core::ptr::read(v) })
}

impl Entry {
    /// An entry sharing `route` and `info`; the snapshot it goes into takes counts on them
    /// when it is installed ([`Delta`]).
    pub(crate) fn new(route: &RoutePtr, info: &Version) -> Self {
        Self::with_owner(route.owner().serial, route, info)
    }

    /// [`new`](Self::new) with the owner tag given (a changed version keeps its entry's;
    /// the tests forge one).
    pub(super) fn with_owner(owner: u32, route: &RoutePtr, info: &Version) -> Self {
        Self { views: info.views, owner, route: share(route), info: share(info) }
    }

    /// Another non-owning copy of this entry (for the next snapshot).
    #[inline(always)]
    pub(crate) fn share(&self) -> Self {
        Self { views: self.views, owner: self.owner, route: share(&*self.route), info: share(&*self.info) }
    }

    /// A counted reference to the route (a handle). Call under the pin the snapshot was
    /// read with: the count this entry shares is released only after that pin.
    #[inline]
    pub(crate) fn route_ref(&self) -> RouteRef {
        RouteRef { route: RoutePtr::clone(&self.route) }
    }

    /// The views of the route's version (a copy of `info().views`).
    #[inline(always)]
    pub(crate) fn views(&self) -> ViewSet {
        self.views
    }

    /// The version of the route this snapshot holds.
    #[inline(always)]
    pub(crate) fn info(&self) -> &Version {
        &self.info
    }

    /// The version's next hops (through the version; [`RouteList::best_hops`] reads the
    /// first entry's from the snapshot's own copy).
    #[inline(always)]
    pub(crate) fn next_hops(&self) -> &[NextHop] {
        &self.info.next_hops
    }

    /// The same route with the version `info` (shared, as in [`new`](Self::new)).
    fn with_info(&self, info: &Version) -> Self {
        Self::with_owner(self.owner, &self.route, info)
    }
}

/// The counts a snapshot transition moves (see "Ownership" in the module docs): the ones
/// the new snapshot needs beyond those it takes over from the old one (`came`, taken after
/// the installing CAS, on objects the writer still holds) and the ones the old snapshot
/// held that the new one does not (`went`, released epoch-deferred, in the old snapshot's
/// own deferred drop: readers of the old snapshot may still use them). One route changes
/// per transition.
#[must_use = "a transition's counts must be applied once it is installed"]
#[derive(Default)]
pub(crate) struct Delta {
    pub(super) came: Counts,
    pub(super) went: Counts,
}

/// One route's count and one version's count (either may be absent). Two words.
#[derive(Default)]
pub(crate) struct Counts {
    route: Option<ManuallyDrop<RoutePtr>>,
    info: Option<ManuallyDrop<Version>>,
}

impl AfterRetire for Counts {
    fn is_noop(&self) -> bool {
        self.route.is_none() && self.info.is_none()
    }

    /// Releases the counts (after the grace period of the CAS that removed them from the
    /// current snapshot, so no reader still uses them through an older one).
    fn run(self) {
        drop(self.route.map(ManuallyDrop::into_inner));
        drop(self.info.map(ManuallyDrop::into_inner));
    }
}

impl Counts {
    /// Takes the new snapshot's counts, right after its installing CAS: increments on
    /// objects the writer holds a count of its own on (so alive), forgotten (the snapshot
    /// owns them now).
    pub(super) fn take(self) {
        if let Some(r) = &self.route {
            core::mem::forget(RoutePtr::clone(r));
        }
        if let Some(i) = &self.info {
            core::mem::forget(Version::clone(i));
        }
    }

    /// Releases the counts after the grace period, on their own (no retirement to join).
    pub(super) fn defer(self, g: &Guard) {
        if !self.is_noop() {
            // SAFETY: the caller's CAS or swap removed these counts' entries from the
            // current snapshot (they are its to release); readers pinned before may still
            // read the objects through the old snapshot, so the release waits for them.
            unsafe { retire_with(g, move || self.run()) };
        }
    }

    /// An entry's two counts.
    pub(super) fn of(e: &Entry) -> Self {
        Self { route: Some(share(&*e.route)), info: Some(share(e.info())) }
    }
}

/// How a snapshot's successor differs from it: one route changes per transition.
enum Change {
    /// Entry `i` with a new version.
    Replace(usize, Entry),
    /// A new route.
    Insert(Entry),
    /// Entry `i` gone.
    Remove(usize),
}

impl Change {
    /// The number of entries after the change to a snapshot of `len`.
    fn len_after(&self, len: usize) -> usize {
        match self {
            Change::Replace(..) => len,
            Change::Insert(_) => len + 1,
            Change::Remove(_) => len - 1,
        }
    }
}

/// Moves `es[i]` to its place in the selection order, the other entries being in order.
fn settle(es: &mut [Entry], mut i: usize) {
    let before = |a: &Entry, b: &Entry| {
        selection_order((&a.route, &a.info), (&b.route, &b.info)) == core::cmp::Ordering::Less
    };
    while i > 0 && before(&es[i], &es[i - 1]) {
        es.swap(i, i - 1);
        i -= 1;
    }
    while i + 1 < es.len() && before(&es[i + 1], &es[i]) {
        es.swap(i, i + 1);
        i += 1;
    }
}

/// How many entries a snapshot keeps inline: destinations with one or two routes (a
/// router with two upstreams, a feed and its writer's own route) read and write their
/// routes in the snapshot's own lines.
const INLINE: usize = 2;

/// A snapshot's routes, best first: up to [`INLINE`] inline, more in a block of their own,
/// with a copy of the first one's forwarding data (its views and next hops). The first
/// entry is the best route of every view it belongs to, so a lookup whose best route is
/// first (nearly all: routes of most destinations share their views) reads it from the
/// copy, in the snapshot's first bytes: `len`, `views`, `next_hops` and the first entry
/// are 56 bytes ([`LOOKUP_BYTES`]), within one cache line where the snapshot is placed in
/// its destination (after the cell's word: `Dest`'s layout assertion) or starts a block.
///
/// Until session 33 only one route was inline and two or more went to a block: a write
/// to a destination of two routes read the block after the snapshot, a dependent cache
/// miss of every route-by-route re-announcement (43 % of `Dest::modify`'s samples,
/// BENCHMARKS.md session 32).
#[repr(C)]
pub(crate) struct Entries {
    /// The number of entries: 0 in a dead snapshot.
    len: u32,
    /// The first entry's views (none in a dead snapshot).
    views: ViewSet,
    /// The first entry's next hops, shared with its version (which keeps them alive).
    next_hops: ManuallyDrop<NextHops>,
    store: Store,
}

/// The bytes of a snapshot a lookup reads, from its start: the forwarding copy and the
/// first entry (the handle path takes its route).
pub(super) const LOOKUP_BYTES: usize = core::mem::offset_of!(Entries, store) + core::mem::size_of::<Entry>();

/// Where the entries are: inline (`len <= INLINE`, the first `len` initialized), or a
/// block of `len` (`len > INLINE`: a `Box<[Entry]>` taken apart, see `Drop`).
#[repr(C)]
union Store {
    inline: ManuallyDrop<[MaybeUninit<Entry>; INLINE]>,
    block: NonNull<Entry>,
}

// SAFETY: `Entries` owns its entries as a `Box<[Entry]>` or an array would (only `Drop`
// frees a block, and entries are only read through `&self`), so it is `Send`/`Sync` when
// `Entry` is.
unsafe impl Send for Entries where Entry: Send {}
// SAFETY: as above.
unsafe impl Sync for Entries where Entry: Sync {}

impl Entries {
    /// No entries (a dead snapshot's).
    const NONE: Self = Self {
        len: 0,
        views: ViewSet::ANY,
        next_hops: ManuallyDrop::new(NextHops::Inline(None)),
        store: Store { inline: ManuallyDrop::new([const { MaybeUninit::uninit() }; INLINE]) },
    };

    /// One entry.
    fn one(entry: Entry) -> Self {
        let (views, next_hops) = (entry.views, share(&entry.info.next_hops));
        let mut inline = [const { MaybeUninit::uninit() }; INLINE];
        inline[0].write(entry);
        Self { len: 1, views, next_hops, store: Store { inline: ManuallyDrop::new(inline) } }
    }

    /// Whether the entries are in a block of their own.
    #[inline(always)]
    fn in_block(&self) -> bool {
        self.len as usize > INLINE
    }

    /// The block of more than [`INLINE`] entries, if there is one.
    #[inline(always)]
    fn block(&self) -> Option<NonNull<Entry>> {
        if self.in_block() {
            // SAFETY: `store` holds a block exactly when `len > INLINE` (its invariant).
            // (Read only then: inline entries may leave those bytes uninitialized.)
            Some(unsafe { self.store.block })
        } else {
            None
        }
    }

    /// The first entry's views, as copied for the forwarding path (the tests).
    #[cfg(test)]
    pub(super) fn copied_views(&self) -> ViewSet {
        self.views
    }

    /// The entries of `old` with `change` applied (at least one), best first. They are
    /// written straight to their place (inline, or a fresh block) and only the changed
    /// entry is moved to its rank: the others keep their order (the selection order is
    /// total, so one entry's change does not reorder the rest), which saves a sort and
    /// an intermediate vector per write.
    ///
    /// A block comes from the node arena (`node_alloc`; the global allocator past its
    /// largest block, and in loom, miri and ASan builds): snapshots are made and retired by
    /// the million, and as glibc chunks their frees filled the allocator's fast bins,
    /// which every later large allocation then consolidated (BENCHMARKS.md, session 11).
    fn changed(old: &[Entry], change: Change) -> Self {
        let len = change.len_after(old.len());
        debug_assert!(len > 0);
        // More than `u32::MAX` routes on one destination would take over 96 GiB of
        // entries: treat it as the allocation failure it is (an abort, not a panic).
        let len32 = u32::try_from(len)
            .unwrap_or_else(|_| std::alloc::handle_alloc_error(core::alloc::Layout::new::<Entry>()));
        let mut inline = [const { MaybeUninit::<Entry>::uninit() }; INLINE];
        let block = if len <= INLINE {
            inline.as_mut_ptr().cast::<Entry>()
        } else {
            let layout = Self::layout(len32);
            let Some(p) = NonNull::new(node_alloc(layout).cast::<Entry>()) else {
                std::alloc::handle_alloc_error(layout)
            };
            p.as_ptr()
        };
        // The entry of `old` not copied, and the slot of the changed entry (none for a
        // removal: the rest keep their order).
        let (skip, put) = match change {
            Change::Replace(i, _) => (None, Some(i)),
            Change::Insert(_) => (None, Some(old.len())),
            Change::Remove(i) => (Some(i), None),
        };
        let mut k = 0;
        for (j, e) in old.iter().enumerate() {
            if Some(j) != skip {
                // SAFETY: `k < len`: every `old` entry but a removed one gets a slot, and
                // `len` counts them (`len_after`); `block` has room for `len` entries (the
                // inline array when `len <= INLINE`, else a fresh block of `len`).
                unsafe { block.add(k).write(e.share()) };
                k += 1;
            }
        }
        if let (Change::Replace(_, e) | Change::Insert(e), Some(put)) = (change, put) {
            // SAFETY: `put < len`: a replaced index of `old` (the callers index `old` with
            // it first, which bounds-checks it), or the slot after its copies for an insert;
            // the copy written there for a replace is overwritten without a drop (entries
            // have no drop glue).
            unsafe { block.add(put).write(e) };
        }
        // SAFETY: all `len` entries are written (above); `block` is ours alone until the
        // snapshot is published.
        let entries = unsafe { core::slice::from_raw_parts_mut(block, len) };
        if let Some(put) = put {
            settle(entries, put);
        }
        let (views, next_hops) = (entries[0].views, share(&entries[0].info.next_hops));
        let store = if len <= INLINE {
            Store { inline: ManuallyDrop::new(inline) }
        } else {
            // SAFETY: `block` came from `node_alloc` above (not null).
            Store { block: unsafe { NonNull::new_unchecked(block) } }
        };
        Self { len: len32, views, next_hops, store }
    }

    /// The block layout of `len` entries (valid: at most one more than a snapshot in memory).
    fn layout(len: u32) -> core::alloc::Layout {
        core::alloc::Layout::array::<Entry>(len as usize).expect("the entries fit in memory already")
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        // Entries own nothing (no drop glue): only a block goes.
        const { assert!(!core::mem::needs_drop::<Entry>()) };
        if let Some(block) = self.block() {
            // SAFETY: the block `changed` allocated with this layout, freed once (here);
            // nothing borrows `self`.
            unsafe { node_dealloc(block.as_ptr().cast(), Self::layout(self.len)) }
        }
    }
}

impl core::ops::Deref for Entries {
    type Target = [Entry];
    #[inline(always)]
    fn deref(&self) -> &[Entry] {
        let p = match self.block() {
            Some(block) => block.as_ptr().cast_const(),
            None => (&raw const self.store).cast::<Entry>(),
        };
        // SAFETY: `len` entries are initialized there (inline: the first `len` of the
        // array, which starts the union; a block: all of it), live while `self` is
        // borrowed.
        unsafe { core::slice::from_raw_parts(p, self.len as usize) }
    }
}

/// An immutable route-list snapshot. See the module docs.
///
/// `repr(C)`: the entries first, so the forwarding copy and the first entry fill the
/// snapshot's first line (see [`Entries`]).
#[repr(C)]
pub(crate) struct RouteList {
    /// Never empty in a live snapshot: an empty one is dead (see [`RouteList::is_dead`]).
    pub(crate) entries: Entries,
    /// Version: one more than the snapshot it replaced (a tombstone's key, see
    /// `Route::bury`).
    pub(crate) gen: u64,
    alive: TrackedCell<()>,
}

impl Touch for RouteList {
    #[inline(always)]
    fn touch(&self) {
        self.alive.touch();
    }

    /// A snapshot's block starts a cache line: its forwarding copy and first entry (its
    /// first 56 bytes, [`LOOKUP_BYTES`]) are then in one line, as when it is placed.
    const BLOCK_ALIGN: usize = 64;

    /// A placed list holds a reference to its destination until its deferred move-out
    /// (module docs, "Ownership"): the move-out reads the destination's slot and flag.
    unsafe fn placed(slot: *const InlineSlot<Self>) {
        // SAFETY: route lists are only placed in a destination's `first` slot, so the
        // destination starts `Dest::FIRST` bytes before it; the caller guarantees it is
        // alive. Relaxed: as `DestPtr::clone`, the caller reaches a live destination (it
        // is pinned and the destination is linked or still private) and the count protects
        // nothing published by the increment.
        unsafe { (*Dest::of_slot(slot)).refs.fetch_add(1, Ordering::Relaxed) };
    }

    unsafe fn unplaced(slot: *const InlineSlot<Self>) {
        // SAFETY: releases the reference `placed` took for this list (the caller's
        // contract: once, after the move-out); the destination is alive until then.
        drop(DestPtr(owning_ptr(unsafe { Dest::of_slot(slot) })));
    }

    /// The entries (for more than two routes, their block) belong to the other list of
    /// the move ([`RouteList::moved`]): forgotten here, the rest dropped.
    unsafe fn drop_moved(mut self) {
        core::mem::forget(core::mem::replace(&mut self.entries, Entries::NONE));
    }
}

impl Drop for RouteList {
    fn drop(&mut self) {
        self.alive.retire();
    }
}

impl RouteList {
    /// The snapshot after `old` with `change` applied.
    fn changed(gen: u64, old: &[Entry], change: Change) -> Self {
        let entries = match change.len_after(old.len()) {
            0 => Entries::NONE,
            _ => Entries::changed(old, change),
        };
        Self { alive: TrackedCell::new(()), gen, entries }
    }

    /// A snapshot of one route (no sorting, no intermediate vector).
    pub(crate) fn one(gen: u64, entry: Entry) -> Self {
        Self { alive: TrackedCell::new(()), gen, entries: Entries::one(entry) }
    }

    /// The next snapshot after this one with entry `i`'s version replaced by `info`, and
    /// its counts.
    pub(crate) fn with_info(&self, i: usize, info: &Version) -> (Self, Delta) {
        let delta = Delta {
            came: Counts { info: Some(share(info)), ..Counts::default() },
            went: Counts { info: Some(share(self.entries[i].info())), ..Counts::default() },
        };
        let e = self.entries[i].with_info(info);
        (Self::changed(self.gen + 1, &self.entries, Change::Replace(i, e)), delta)
    }

    /// The next snapshot after this one with a new entry for `route` at version `info`,
    /// and its counts.
    pub(crate) fn with_added(&self, route: &RoutePtr, info: &Version) -> (Self, Delta) {
        let delta =
            Delta { came: Counts { route: Some(share(route)), info: Some(share(info)) }, ..Delta::default() };
        let e = Entry::new(route, info);
        (Self::changed(self.gen + 1, &self.entries, Change::Insert(e)), delta)
    }

    /// The next snapshot after this one with the same routes, taking over its entries
    /// bitwise (a block of more than two entries moves instead of being copied). For
    /// `EpochCell::move_into_slot` only: of the two lists, exactly one may be dropped
    /// normally, the other with `Touch::drop_moved`.
    pub(super) fn moved(&self) -> Self {
        // SAFETY: a bitwise copy of the entries; the caller disposes of one of the two
        // lists with `drop_moved`, which forgets them, so the entry block is freed once.
        let entries = unsafe { core::ptr::read(&self.entries) };
        Self { alive: TrackedCell::new(()), gen: self.gen + 1, entries }
    }

    /// The next snapshot after this one without entry `i` (dead if it was the last), and
    /// its counts.
    pub(crate) fn without(&self, i: usize) -> (Self, Delta) {
        let delta = Delta { went: Counts::of(&self.entries[i]), ..Delta::default() };
        let gen = self.gen + 1;
        let next = if self.entries.len() == 1 {
            Self::dead(gen)
        } else {
            Self::changed(gen, &self.entries, Change::Remove(i))
        };
        (next, delta)
    }

    /// Whether the destination is dead (its last route went; it is being unlinked). A
    /// live destination always has a route, so "no entries" is the mark: that keeps a
    /// one-route snapshot within one 64-byte line. (The empty list `Dest::create` starts
    /// with reads as dead too, but it is replaced before the destination is linked.)
    #[inline(always)]
    pub(crate) fn is_dead(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn dead(gen: u64) -> Self {
        Self { alive: TrackedCell::new(()), gen, entries: Entries::NONE }
    }

    /// The dead list every dead destination shares outside loom: a destination's death
    /// allocates nothing (a delete storm otherwise takes a fresh block per destination).
    /// Nothing reads a dead list's generation or sequence (a dead list is final). Loom
    /// builds allocate one per death (a `static` cannot hold loom's tracked cell); the
    /// cell's code for shared values is a tag test that skips retiring and freeing.
    #[inline]
    pub(crate) fn shared_dead() -> Option<&'static RouteList> {
        #[cfg(not(loom))]
        {
            static DEAD: RouteList =
                RouteList { alive: TrackedCell::new(()), gen: 0, entries: Entries::NONE };
            Some(&DEAD)
        }
        #[cfg(loom)]
        None
    }

    /// Prefetches the line [`best_hops`](Self::best_hops) reads: the snapshot's first
    /// 56 bytes, the forwarding copy and the first entry (in one line when placed in its
    /// destination or in its 64-aligned arena block).
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        prefetch((self as *const Self).cast::<u8>());
    }

    /// Prefetches the rest of the entries a copy reads beyond the snapshot's first line:
    /// the second inline entry's, or a block of more. Reads the snapshot: call once it is
    /// cached.
    #[inline]
    pub(crate) fn prefetch_entry_block(&self) {
        match self.entries.block() {
            Some(b) => prefetch(b.as_ptr().cast::<u8>()),
            None => {
                prefetch((self as *const Self).cast::<u8>().wrapping_add(core::mem::size_of::<Self>() - 1))
            }
        }
    }

    /// Prefetches what a write by the entity numbered `owner` reads through the entries:
    /// every version (the identity match reads their neighbours, the sort their keys) and
    /// the owner's own route identities (confirmed and counted by an update); owners are
    /// tagged in the entries, so other routes' objects are not read. Reads the entries:
    /// call once the snapshot is cached.
    #[inline]
    pub(crate) fn prefetch_entries(&self, owner: u32) {
        for e in self.entries.iter() {
            prefetch(Version::as_ptr(&e.info).cast::<u8>());
            if e.owner == owner {
                prefetch(e.route.addr());
            }
        }
    }

    /// The best route of view `v`: the first entry belonging to it.
    #[inline]
    pub(crate) fn best(&self, v: ViewId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.views.contains(v))
    }

    /// The index of the best route of view `v` (the first entry belonging to it) and its
    /// next hops, in one match: the fast path's result carries both. Reads only the
    /// snapshot's first line when the best route is the first one (see [`Entries`]). The fast
    /// path used to match the entries twice, for the index and then for the next hops;
    /// one match (with the trie's stored level count) took a single lookup from 155 to 137
    /// instructions (see `Trie::lookup`).
    #[inline(always)]
    pub(crate) fn best_hops(&self, v: ViewId) -> Option<(usize, &[NextHop])> {
        let es = &self.entries;
        if es.views.contains(v) {
            // A dead snapshot's copy has no views: here there is a first entry.
            return Some((0, &**es.next_hops));
        }
        es.iter().position(|e| e.views.contains(v)).map(|i| (i, es[i].next_hops()))
    }

    /// The union of the routes' views.
    pub(crate) fn views(&self) -> ViewSet {
        self.entries.iter().fold(ViewSet::ANY, |acc, e| acc | e.views)
    }

    /// Whether some route belongs to one of `views` (any route at all for `ViewSet::ANY`).
    pub(crate) fn has_route_in(&self, views: ViewSet) -> bool {
        if views.is_empty() {
            !self.entries.is_empty()
        } else {
            self.entries.iter().any(|e| e.views.intersects(views))
        }
    }

    pub(crate) fn position(&self, r: &RoutePtr) -> Option<usize> {
        self.entries.iter().position(|e| RoutePtr::ptr_eq(&e.route, r))
    }
}
