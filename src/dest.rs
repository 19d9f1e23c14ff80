//! Destinations: a prefix, its epoch-reclaimed route-list snapshot, and a reference count.
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
//! route keeps it inline: the common case costs no extra allocation and no extra miss.
//! A route's creation sequence (the last tie-break of the order) comes from a counter of
//! the destination, not from the snapshot, which keeps a one-route snapshot at 56 bytes.
//!
//! # Layout
//! A destination is two cache lines. Line 1 is the header (prefix, reference count,
//! sequence counter, the slot's free flag). Line 2 holds the snapshot cell's address word
//! and then a slot where a snapshot can be *placed*: the first one with a route
//! ([`Dest::install_first`], while the destination is still private to its creator), and
//! later ones whenever the slot is free again. Most destinations of a routing table keep
//! their first snapshot (most routes never change), so a lookup reads line 2 only: one
//! cache miss per destination. A snapshot that finds the slot busy lives in an arena
//! block of its own; a placed one, once replaced, is moved out and dropped epoch-deferred
//! like any snapshot (`sync/epoch_cell.rs`, "Placed values"). It holds a reference to the
//! destination (see "Ownership"), so the destination is still allocated when that
//! deferred drop reads the slot.
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
//! A *placed* snapshot (below) also holds a reference to its destination from placement
//! until its deferred move-out (`Touch::placed`/`unplaced` of [`RouteList`]): the move-out
//! writes the destination's slot and flag, and the snapshot's own routes no longer keep
//! the destination alive (their counts may be released, in another deferred function
//! that can run first).
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
use crate::route::{selection_order, NextHop, NextHops, RouteRef, Version};
use crate::sync::epoch::{self, Guard};
use crate::sync::{
    arena_drop, arena_new, node_alloc, node_dealloc, prefetch, retire_with, AfterRetire, Arc, AtomicUsize,
    Current, EpochCell, InlineSlot, Ordering, Touch, TrackedCell,
};
use crate::view::{ViewId, ViewSet};
use core::fmt;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

/// One route in a snapshot: its identity, the version this snapshot holds, and a copy of
/// that version's views, so a lookup finds the best route of a view from the snapshot
/// alone. 24 bytes. The best route's next hops are copied once per snapshot, beside the
/// first entry ([`One`], [`Many`]): the fast path reads them without dereferencing `info`;
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

    fn with_owner(owner: u32, route: &RoutePtr, info: &Version) -> Self {
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

    /// The version's next hops (through the version; [`RouteList::next_hops`] reads the
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
    came: Counts,
    went: Counts,
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
    fn take(self) {
        if let Some(r) = &self.route {
            core::mem::forget(RoutePtr::clone(r));
        }
        if let Some(i) = &self.info {
            core::mem::forget(Version::clone(i));
        }
    }

    /// Releases the counts after the grace period, on their own (no retirement to join).
    fn defer(self, g: &Guard) {
        if !self.is_noop() {
            // SAFETY: the caller's CAS or swap removed these counts' entries from the
            // current snapshot (they are its to release); readers pinned before may still
            // read the objects through the old snapshot, so the release waits for them.
            unsafe { retire_with(g, move || self.run()) };
        }
    }

    /// An entry's two counts.
    fn of(e: &Entry) -> Self {
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

/// A snapshot's routes: none (dead), one inline (the common case), or a boxed slice.
pub(crate) enum Entries {
    None,
    One(One),
    Many(Many),
}

/// One route inline, with a copy of its version's next hops: a lookup reads the route's
/// forwarding data from the snapshot's own line. 48 bytes, so that a one-route snapshot
/// fits its destination's line (asserted below).
pub(crate) struct One {
    entry: Entry,
    /// Shares the version's own next hops (which the version keeps alive).
    next_hops: ManuallyDrop<NextHops>,
}

impl One {
    fn new(entry: Entry) -> Self {
        let next_hops = share(&entry.info.next_hops);
        Self { entry, next_hops }
    }
}

/// Several routes: the boxed entries and a copy of the first one's forwarding data (its
/// views and next hops). The first entry is the best route of every view it belongs to,
/// so a lookup whose best route is first (nearly all: routes of most destinations share
/// their views) reads it from the snapshot's own line, without the box's lines. Routing
/// tables where every destination has routes from two or more peers are the usual case.
///
/// 40 bytes, so that [`Entries`] stays as large as a [`One`] and a one-route snapshot fits
/// its destination's line (asserted below): the box is a thin pointer with its length
/// beside the views.
pub(crate) struct Many {
    views: ViewSet,
    len: u32,
    next_hops: ManuallyDrop<NextHops>,
    /// `len` entries: a `Box<[Entry]>` taken apart (see [`Many::all`] and `Drop`).
    ptr: NonNull<Entry>,
}

// SAFETY: `Many` owns its entries as a `Box<[Entry]>` would (only `Drop` frees them, and
// they are only read through `&self`), so it is `Send`/`Sync` when `Entry` is.
unsafe impl Send for Many where Entry: Send {}
// SAFETY: as above.
unsafe impl Sync for Many where Entry: Sync {}

impl Many {
    /// The entries of `old` with `change` applied (two or more: callers keep one route
    /// inline), best first. They are written straight into the block and only the changed
    /// entry is moved to its place: the others keep their order (the selection order is
    /// total, so one entry's change does not reorder the rest), which saves a sort and an
    /// intermediate vector per write.
    ///
    /// The entries go to a block of the node arena (`node_alloc`; the global allocator
    /// past its largest block, and in loom, miri and ASan builds): snapshots are made and
    /// retired by the million, and as glibc chunks their frees filled the allocator's fast
    /// bins, which every later large allocation then consolidated (BENCHMARKS.md, session 11).
    fn changed(old: &[Entry], change: Change) -> Self {
        let len = change.len_after(old.len());
        debug_assert!(len > 1);
        // More than `u32::MAX` routes on one destination would take over 96 GiB of
        // entries: treat it as the allocation failure it is (an abort, not a panic).
        let len32 = u32::try_from(len)
            .unwrap_or_else(|_| std::alloc::handle_alloc_error(core::alloc::Layout::new::<Entry>()));
        let layout = Self::layout(len32);
        let Some(ptr) = NonNull::new(node_alloc(layout).cast::<Entry>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        let block = ptr.as_ptr();
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
                // `len` counts them (`len_after`); writes to a fresh block of `len` entries.
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
        // SAFETY: all `len` entries are written (above); the block is ours alone until
        // the snapshot is published.
        let entries = unsafe { core::slice::from_raw_parts_mut(block, len) };
        if let Some(put) = put {
            settle(entries, put);
        }
        let (views, next_hops) = (entries[0].views, share(&entries[0].info.next_hops));
        Self { views, len: len32, next_hops, ptr }
    }

    /// The block layout of `len` entries (valid: at most one more than a snapshot in memory).
    fn layout(len: u32) -> core::alloc::Layout {
        core::alloc::Layout::array::<Entry>(len as usize).expect("the entries fit in memory already")
    }

    /// The entries.
    #[inline(always)]
    fn all(&self) -> &[Entry] {
        // SAFETY: `ptr` holds `len` entries moved there by `new`, freed only by `Drop`, so
        // they are a live slice for as long as `self` is borrowed.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl Drop for Many {
    fn drop(&mut self) {
        // Entries own nothing (no drop glue): only the block goes.
        const { assert!(!core::mem::needs_drop::<Entry>()) };
        // SAFETY: `ptr` is the block `new` allocated with this layout, freed once (here);
        // nothing borrows `self`.
        unsafe { node_dealloc(self.ptr.as_ptr().cast(), Self::layout(self.len)) }
    }
}

impl core::ops::Deref for Entries {
    type Target = [Entry];
    #[inline(always)]
    fn deref(&self) -> &[Entry] {
        match self {
            Entries::None => &[],
            Entries::One(o) => core::slice::from_ref(&o.entry),
            Entries::Many(m) => m.all(),
        }
    }
}

/// An immutable route-list snapshot. See the module docs.
pub(crate) struct RouteList {
    alive: TrackedCell<()>,
    /// Version: one more than the snapshot it replaced (a tombstone's key, see
    /// `Route::bury`).
    pub(crate) gen: u64,
    /// Never empty in a live snapshot: an empty one is dead (see [`RouteList::is_dead`]).
    pub(crate) entries: Entries,
}

impl Touch for RouteList {
    #[inline(always)]
    fn touch(&self) {
        self.alive.touch();
    }

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

    /// The entries (a several-route list's entry block) belong to the other list of the
    /// move ([`RouteList::moved`]): forgotten here, the rest dropped.
    unsafe fn drop_moved(mut self) {
        core::mem::forget(core::mem::replace(&mut self.entries, Entries::None));
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
        let entries = match (change.len_after(old.len()), change) {
            (0, _) => Entries::None,
            (1, Change::Replace(_, e) | Change::Insert(e)) => Entries::One(One::new(e)),
            (1, Change::Remove(i)) => Entries::One(One::new(old[1 - i].share())),
            (_, change) => Entries::Many(Many::changed(old, change)),
        };
        Self { alive: TrackedCell::new(()), gen, entries }
    }

    /// A snapshot of one route (no sorting, no intermediate vector).
    pub(crate) fn one(gen: u64, entry: Entry) -> Self {
        Self { alive: TrackedCell::new(()), gen, entries: Entries::One(One::new(entry)) }
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
    /// bitwise (a several-route list's entry block moves instead of being copied). For
    /// `EpochCell::move_into_slot` only: of the two lists, exactly one may be dropped
    /// normally, the other with `Touch::drop_moved`.
    fn moved(&self) -> Self {
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
        Self { alive: TrackedCell::new(()), gen, entries: Entries::None }
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
                RouteList { alive: TrackedCell::new(()), gen: 0, entries: Entries::None };
            Some(&DEAD)
        }
        #[cfg(loom)]
        None
    }

    /// Prefetches the line [`best_hops`](Self::best_hops) reads for a single-route
    /// snapshot (56 bytes, header and inline entry: in one line when placed in its
    /// destination or in a 64-aligned arena block).
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        prefetch((self as *const Self).cast::<u8>());
    }

    /// Prefetches the block of a several-route snapshot's entries (what a copy reads
    /// beyond the snapshot's own line). Reads the snapshot: call once it is cached.
    #[inline]
    pub(crate) fn prefetch_entry_block(&self) {
        if let Entries::Many(m) = &self.entries {
            prefetch(m.ptr.as_ptr().cast::<u8>());
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
    /// snapshot's own line when the best route is the first one (see [`Many`]). The fast
    /// path used to match the entries twice, for the index and then for the next hops;
    /// one match (with the trie's stored level count) took a single lookup from 155 to 137
    /// instructions (see `Trie::lookup`).
    #[inline(always)]
    pub(crate) fn best_hops(&self, v: ViewId) -> Option<(usize, &[NextHop])> {
        match &self.entries {
            Entries::One(o) => o.entry.views.contains(v).then(|| (0, &**o.next_hops)),
            Entries::Many(m) if m.views.contains(v) => Some((0, &**m.next_hops)),
            Entries::Many(m) => {
                m.all().iter().position(|e| e.views.contains(v)).map(|i| (i, m.all()[i].next_hops()))
            }
            Entries::None => None,
        }
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

// The layout a lookup relies on (see `Dest`): the cell's address word at 64 (the cell's
// word is at offset 8 of the cell), the placed list right after it, both in line 2.
#[cfg(not(loom))]
const _: () = assert!(
    core::mem::size_of::<Dest>() == 128
        && core::mem::size_of::<RouteList>() == 56
        && core::mem::size_of::<Entry>() == 24
        && core::mem::size_of::<Identity>() == 24
        && core::mem::offset_of!(Dest, own) == 32
        && core::mem::offset_of!(Dest, routes) == 56
        && core::mem::offset_of!(Dest, first) == 72
);

/// A destination. See the module docs.
///
/// Two cache lines. Line 1: what writers and handle holders read (prefix, counts, the
/// slot's flag, which is the first byte of the cell). Line 2: the cell's address word,
/// then `first`, where the first route list with a route is placed (`install_first`).
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
    /// that changes no route: the snapshot's 56 bytes copied into the slot, its entry
    /// block, if any, taken over rather than copied, and the block retired without it;
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
            .find(|e| e.views.contains(v) && e.info.owner.protocol == protocol)
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A count of zero means the destination is retired: `try_ref` must refuse it rather
    /// than resurrect it (catches the `unchecked_inc` mutant). Readers cannot reach a
    /// destination at zero today (the trie's link is released epoch-deferred), so this is
    /// the check that the defence itself works.
    #[test]
    fn try_ref_refuses_a_retired_destination() {
        let owner = Arc::new(crate::entity::Entity::new(crate::EntityId::new(1, 1)));
        let d = Dest::create("10.0.0.0/8".parse().unwrap(), owner);
        let extra = d.try_ref().expect("a live destination can be referenced");
        assert_eq!(d.refs.load(Ordering::Relaxed), 2);
        drop(extra);
        // Simulate the retired state without freeing: the count at zero.
        d.refs.store(0, Ordering::Relaxed);
        assert!(d.try_ref().is_none());
        assert_eq!(d.refs.load(Ordering::Relaxed), 0, "a refused try_ref must not change the count");
        d.refs.store(1, Ordering::Relaxed);
        drop(d);
    }

    /// A writer finds its own routes by the entries' owner tags (`Entity::owns`): the tag
    /// tells registrations apart, and a tag match is confirmed on the route's identity, so
    /// neither another entity nor another registration of the same id (a stale route of a
    /// deregistered one may still be on a destination while the deregistration's
    /// withdrawal runs) is taken for the owner.
    #[test]
    fn entries_tell_owners_apart() {
        use crate::entity::Entity;
        use crate::{AddressFamily, EntityId, RouteParams, Rtm};
        let rtm = Rtm::new();
        let id = EntityId::new(1, 1);
        let a = rtm.register(AddressFamily::Ipv4, id).unwrap();
        let b = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
        let p = "10.0.0.0/8".parse().unwrap();
        let (ra, _) = a.add_route(&p, RouteParams::new(5, 1)).unwrap();
        let (rb, _) = b.add_route(&p, RouteParams::new(6, 1)).unwrap();
        let same_id = Arc::new(Entity::new(id));
        assert_ne!(same_id.serial, a.entity.serial);
        let g = epoch::pin();
        let list = ra.route.dest().list(&g);
        assert_eq!(list.entries.len(), 2);
        for e in list.entries.iter() {
            let of_a = RoutePtr::ptr_eq(&e.route, &ra.route);
            assert!(of_a || RoutePtr::ptr_eq(&e.route, &rb.route));
            assert_eq!(a.entity.owns(e), of_a);
            assert_eq!(b.entity.owns(e), !of_a);
            assert!(!same_id.owns(e), "another registration of the same id owns nothing here");
        }
        // A forged tag (the number of `a`'s registration on a copy of `b`'s entry) is
        // still refused by the route identity's owner.
        let forged = Entry {
            owner: a.entity.serial,
            ..list.entries.iter().find(|e| !a.entity.owns(e)).unwrap().share()
        };
        assert!(!a.entity.owns(&forged));
    }

    /// The current snapshot owns exactly one count per entry on its routes and versions,
    /// and replaced snapshots none ("Ownership"): after each kind of transition (a route
    /// added, a version replaced, a route removed, the last route removed) and once the
    /// deferred releases ran, each route's count is its handles plus one if it is in the
    /// current snapshot, and each version's is its holders (the interner, the snapshot,
    /// the test). A missed `Delta` count fails here, not only as a leak at exit.
    #[test]
    fn snapshots_own_one_count_per_entry() {
        let _serial = crate::sync::reclaim_lock();
        use crate::{AddressFamily, EntityId, RouteParams, Rtm};
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let b = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
        let c = rtm.register(AddressFamily::Ipv4, EntityId::new(3, 1)).unwrap();
        let p = "10.0.0.0/8".parse().unwrap();
        // Route-by-route writes queue destinations whose snapshot went to a block, with a
        // reference each (`TableInner::queue_unplaced`): transient, so let them go first.
        let count = |r: &RouteRef| {
            drop(rtm.table(AddressFamily::Ipv4).inner.unplaced.take(usize::MAX));
            crate::drain_deferred_garbage();
            r.route.count()
        };
        // `c` creates the destination (its own route), so `a`'s and `b`'s are blocks, whose
        // counts are theirs alone.
        let (rc, _) = c.add_route(&p, RouteParams::new(1, 1)).unwrap();
        let (ra, _) = a.add_route(&p, RouteParams::new(5, 1)).unwrap();
        assert_eq!(count(&ra), 2, "handle + snapshot");
        let v1 = ra.info();
        crate::drain_deferred_garbage();
        assert_eq!(Version::count(&v1), 3, "interner + snapshot + v1");
        let (rb, _) = b.add_route(&p, RouteParams::new(7, 1)).unwrap();
        assert_eq!((count(&ra), count(&rb)), (2, 2), "an added route: one count each");
        a.update_route(&ra, RouteParams::new(5, 2)).unwrap();
        assert_eq!((count(&ra), count(&rb)), (2, 2), "a version replaced");
        assert_eq!(Version::count(&v1), 2, "the old version's snapshot count went");
        let v2 = ra.info();
        crate::drain_deferred_garbage();
        assert_eq!(Version::count(&v2), 3);
        // The same version again (the interner hands out the same object): no change.
        a.update_route(&ra, RouteParams::new(5, 2)).unwrap();
        crate::drain_deferred_garbage();
        assert_eq!((count(&ra), Version::count(&v2)), (2, 3));
        b.delete_route(&rb).unwrap();
        assert_eq!((count(&ra), count(&rb)), (2, 1), "a removed route keeps only its handle");
        a.delete_route(&ra).unwrap();
        assert_eq!(count(&ra), 1);
        // The own route's counts are its destination's: the trie link, the current
        // snapshot's count on the own route, the handle, one per route block (`ra`'s and
        // `rb`'s handles keep theirs), and the current snapshot's if it is placed.
        let is_placed = placed(rtm.table(AddressFamily::Ipv4), "10.0.0.0/8").unwrap();
        assert_eq!(count(&rc), 5 + usize::from(is_placed));
        c.delete_route(&rc).unwrap();
        assert_eq!(count(&rc), 3, "the last route: the destination died (unlinked, dead list)");
        drop((ra, rb));
        assert_eq!(count(&rc), 1, "only the handle");
        // One version shared by two routes (same owner and parameters, on two destinations).
        let q = "10.1.0.0/16".parse().unwrap();
        let (r1, _) = a.add_route(&p, RouteParams::new(9, 9)).unwrap();
        let (r2, _) = a.add_route(&q, RouteParams::new(9, 9)).unwrap();
        let v = r1.info();
        crate::drain_deferred_garbage();
        assert!(Version::ptr_eq(&v, &r2.info()));
        assert_eq!(Version::count(&v), 4, "interner + two snapshots + v");
        a.delete_routes(&[r1.clone(), r2.clone()]).unwrap();
        assert_eq!((count(&r1), count(&r2)), (1, 1));
        assert_eq!(Version::count(&v), 4, "interner + v + the two tombstones' copies");
    }

    /// Where the current list of `prefix` lives: `Some(true)` in the destination's slot.
    fn placed(t: &crate::Table, prefix: &str) -> Option<bool> {
        let g = epoch::pin();
        let d = crate::leaf::dest_of(t.inner.trie.get(&prefix.parse().unwrap(), &g)?, &g);
        Some(core::ptr::eq(d.list(&g), d.first.as_ptr()))
    }

    /// The first list is placed; an update moves the next to a block of its own; once the
    /// placed one is reclaimed, the next update places its list in the slot again; a dead
    /// list is never placed. (Not under loom: `loom-tests` models the concurrent reuse.)
    #[test]
    fn first_list_is_placed_and_the_slot_is_reused() {
        let _serial = crate::sync::reclaim_lock();
        use crate::{AddressFamily, EntityId, RouteParams, Rtm};
        let rtm = Rtm::new();
        let e = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let t = rtm.table(AddressFamily::Ipv4);
        let (r, _) = e.add_route(&"10.0.0.0/8".parse().unwrap(), RouteParams::new(5, 1)).unwrap();
        assert_eq!(placed(t, "10.0.0.0/8"), Some(true));
        e.update_route(&r, RouteParams::new(5, 2)).unwrap();
        assert_eq!(placed(t, "10.0.0.0/8"), Some(false), "the slot is busy until reclaimed");
        crate::drain_deferred_garbage();
        e.update_route(&r, RouteParams::new(5, 3)).unwrap();
        assert_eq!(placed(t, "10.0.0.0/8"), Some(true), "a freed slot is reused");
        assert_eq!(r.info().metric(), 3);
        // A second route (a two-route list) while the slot is busy goes to a block.
        let (r2, _) = e
            .add_route(
                &"10.0.0.0/8".parse().unwrap(),
                RouteParams::new(5, 1).neighbour(crate::NextHop::new("192.0.2.1/32".parse().unwrap(), 1)),
            )
            .unwrap();
        assert_eq!(placed(t, "10.0.0.0/8"), Some(false));
        assert_eq!(t.get(&"10.0.0.0/8".parse().unwrap(), crate::ViewSet::ANY).unwrap().route_count(), 2);
        e.delete_route(&r2).unwrap();
        e.delete_route(&r).unwrap();
        assert_eq!(placed(t, "10.0.0.0/8"), None, "unlinked");
        assert_eq!(r.info().metric(), 3, "the tombstone keeps the last contents");
    }

    /// A batched add that gives destinations another route while their first snapshot is
    /// still placed puts the new snapshots in blocks (the slots are busy); once the slots
    /// are reclaimed, the next batched add (of any entity, on any prefix) moves them in
    /// (`TableInner::place_unplaced`), the routes unchanged and their entry blocks taken
    /// over, not copied. Destinations that died are let go; one written route by route
    /// meanwhile was queued by that write too.
    #[test]
    fn batched_adds_place_the_snapshots_they_left_in_blocks() {
        let _serial = crate::sync::reclaim_lock();
        use crate::{AddressFamily, EntityId, RouteParams, Rtm, ViewId, ViewSet};
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let b = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
        let t = rtm.table(AddressFamily::Ipv4);
        let names: Vec<String> = (0..40).map(|i| format!("10.{i}.0.0/16")).collect();
        let items = |pref: u32| -> Vec<(NetAddress, RouteParams)> {
            names.iter().map(|n| (n.parse().unwrap(), RouteParams::new(pref, 1))).collect()
        };
        assert!(a.add_routes(&items(20)).unwrap().iter().all(|r| r.is_ok()));
        assert!(names.iter().all(|n| placed(t, n) == Some(true)));
        // Until the drain below this thread stays pinned, so the snapshots `b` replaces
        // cannot be moved out of their slots meanwhile: other tests pinning and unpinning
        // on other threads would otherwise let the epoch advance and free a slot early
        // (seen under ASan, where the update of `names[1]` below then found its slot free).
        let hold = epoch::pin();
        let theirs = b.add_routes(&items(10)).unwrap();
        assert!(names.iter().all(|n| placed(t, n) == Some(false)), "the slots were busy");
        assert_eq!(t.inner.unplaced.len(), names.len());
        // One of them dies before it is placed; another is written again while its slot
        // is still busy (its writes alternate between the slot and blocks by themselves).
        a.delete_route(&t.get(&names[0].parse().unwrap(), ViewSet::ANY).unwrap().routes()[1]).unwrap();
        b.delete_route(&theirs[0].as_ref().unwrap().0).unwrap();
        b.update_route(&theirs[1].as_ref().unwrap().0, RouteParams::new(10, 1)).unwrap();
        assert_eq!(placed(t, &names[1]), Some(false));
        // Where the two-route snapshots' entries are, before they are placed.
        let blocks: Vec<*const Entry> = names[2..]
            .iter()
            .map(|n| {
                crate::leaf::dest_of(t.inner.trie.get(&n.parse().unwrap(), &hold).unwrap(), &hold)
                    .list(&hold)
                    .entries
                    .as_ptr()
            })
            .collect();
        drop(hold);
        crate::drain_deferred_garbage();
        a.add_routes(&[("192.0.2.0/24".parse().unwrap(), RouteParams::new(1, 1))]).unwrap();
        let g = epoch::pin();
        for (n, &b) in names[2..].iter().zip(&blocks) {
            let list = crate::leaf::dest_of(t.inner.trie.get(&n.parse().unwrap(), &g).unwrap(), &g).list(&g);
            assert_eq!(list.entries.as_ptr(), b, "placing moves the entry block along, not a copy");
        }
        drop(g);
        assert_eq!(placed(t, &names[0]), None);
        assert_eq!(placed(t, &names[1]), Some(true), "written since: queued by that write, placed");
        assert!(names[2..].iter().all(|n| placed(t, n) == Some(true)), "moved into the slots");
        assert_eq!(t.inner.unplaced.len(), 0);
        for n in &names[1..] {
            let d = t.get(&n.parse().unwrap(), ViewSet::ANY).unwrap();
            let prefs: Vec<u32> = d.route_infos().iter().map(|(_, i)| i.preference()).collect();
            assert_eq!(prefs, [10, 20], "both routes, best first");
            assert_eq!(d.best(ViewId::UNICAST).unwrap().owner(), EntityId::new(2, 1));
        }
    }

    /// Batched re-announcements (a changed version of a route) and batched deletes that
    /// leave a destination a route put their snapshots in blocks while the slots are busy,
    /// like batched adds of another route, and are moved into the slots by a later batched
    /// call the same way: a table churned by batched writes keeps its lookups on one line
    /// per destination (BENCHMARKS.md, session 20: 14 % slower lookups after a churn
    /// otherwise).
    #[test]
    fn batched_updates_and_deletes_place_their_snapshots_later() {
        let _serial = crate::sync::reclaim_lock();
        use crate::{AddressFamily, EntityId, RouteParams, Rtm, ViewSet};
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let b = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
        let t = rtm.table(AddressFamily::Ipv4);
        let names: Vec<String> = (0..40).map(|i| format!("10.{i}.0.0/16")).collect();
        let items = |pref: u32, metric: u32| -> Vec<(NetAddress, RouteParams)> {
            names.iter().map(|n| (n.parse().unwrap(), RouteParams::new(pref, metric))).collect()
        };
        // Half of them get a second route (of `b`), then every slot is freed again.
        assert!(a.add_routes(&items(20, 1)).unwrap().iter().all(|r| r.is_ok()));
        let theirs: Vec<_> =
            b.add_routes(&items(30, 1)[..20]).unwrap().into_iter().map(|r| r.unwrap().0).collect();
        crate::drain_deferred_garbage();
        a.add_routes(&[("192.0.2.0/24".parse().unwrap(), RouteParams::new(1, 1))]).unwrap();
        assert!(names.iter().all(|n| placed(t, n) == Some(true)));
        assert_eq!(t.inner.unplaced.len(), 0);

        // Re-announcements while the slots are busy (held by this thread's pin).
        let hold = epoch::pin();
        assert!(a.add_routes(&items(20, 2)).unwrap().iter().all(|r| r.is_ok()));
        assert!(names.iter().all(|n| placed(t, n) == Some(false)), "the slots were busy");
        assert_eq!(t.inner.unplaced.len(), names.len(), "every written destination is queued");
        drop(hold);
        crate::drain_deferred_garbage();
        // (A new destination: its first snapshot is placed when it is made.)
        a.add_routes(&[("192.0.3.0/24".parse().unwrap(), RouteParams::new(1, 1))]).unwrap();
        assert!(names.iter().all(|n| placed(t, n) == Some(true)), "moved into the slots");
        assert_eq!(t.inner.unplaced.len(), 0);
        for (i, n) in names.iter().enumerate() {
            let d = t.get(&n.parse().unwrap(), ViewSet::ANY).unwrap();
            let got: Vec<(u32, u32)> =
                d.route_infos().iter().map(|(_, v)| (v.preference(), v.metric())).collect();
            let want: &[(u32, u32)] = if i < 20 { &[(20, 2), (30, 1)] } else { &[(20, 2)] };
            assert_eq!(got, want, "{n}: the placed copies changed no route");
        }

        // Deletes that leave a route, while the slots are busy.
        let hold = epoch::pin();
        assert!(b.delete_routes(&theirs).unwrap().iter().all(|r| r.is_ok()));
        assert!(names[..20].iter().all(|n| placed(t, n) == Some(false)), "the slots were busy");
        assert_eq!(t.inner.unplaced.len(), 20);
        drop(hold);
        crate::drain_deferred_garbage();
        // Any batched call moves them in: an empty batched delete here.
        b.delete_routes(&[]).unwrap();
        assert!(names.iter().all(|n| placed(t, n) == Some(true)), "moved into the slots");
        assert_eq!(t.inner.unplaced.len(), 0);
        for n in &names {
            let d = t.get(&n.parse().unwrap(), ViewSet::ANY).unwrap();
            let got: Vec<(u32, u32)> =
                d.route_infos().iter().map(|(_, v)| (v.preference(), v.metric())).collect();
            assert_eq!(got, [(20, 2)], "{n}");
        }
    }

    /// Route-by-route writes (`delete_route`, and a re-announcement through `add_route`)
    /// queue the destinations whose snapshot went to a block, and every 64th queued item
    /// makes the writer place the oldest ones (`TableInner::queue_unplaced`): a drain
    /// while every slot is still busy places nothing and keeps them all; the next one,
    /// after the grace period, places the oldest 64 and leaves the younger queued. A
    /// drain takes on at most 64 more than twice its call's own items.
    ///
    /// And a destination whose slot stays busy (its replaced snapshot's deferred drop
    /// waiting in an idle thread's epoch bag) does not block the items queued after it:
    /// a drain puts what it could not place at the back.
    #[test]
    fn route_by_route_writes_place_their_snapshots_in_batches() {
        let _serial = crate::sync::reclaim_lock();
        use crate::table::PLACE_EVERY;
        use crate::{AddressFamily, EntityId, RouteParams, Rtm, ViewSet};
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let b = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
        let t = rtm.table(AddressFamily::Ipv4);
        let set = |base: usize| -> Vec<String> {
            (0..PLACE_EVERY).map(|i| format!("10.{}.0.0/16", base + i)).collect()
        };
        let (names, others) = (set(0), set(100));
        let items = |ns: &[String], pref: u32| -> Vec<(NetAddress, RouteParams)> {
            ns.iter().map(|n| (n.parse().unwrap(), RouteParams::new(pref, 1))).collect()
        };
        let all_placed = |ns: &[String], want: bool| ns.iter().all(|n| placed(t, n) == Some(want));
        a.add_routes(&items(&names, 20)).unwrap();
        a.add_routes(&items(&others, 20)).unwrap();
        let theirs: Vec<_> =
            b.add_routes(&items(&names, 30)).unwrap().into_iter().map(|r| r.unwrap().0).collect();
        crate::drain_deferred_garbage();
        a.add_routes(&[("192.0.2.0/24".parse().unwrap(), RouteParams::new(1, 1))]).unwrap();
        assert!(all_placed(&names, true) && all_placed(&others, true));
        assert_eq!(t.inner.unplaced.len(), 0);

        // Deletes while the slots are busy: the drain at the 64th places nothing.
        let hold = epoch::pin();
        for r in &theirs {
            b.delete_route(r).unwrap();
        }
        assert!(all_placed(&names, false), "the slots were busy");
        assert_eq!(t.inner.unplaced.len(), PLACE_EVERY, "the drain kept them all");
        drop(hold);
        crate::drain_deferred_garbage();
        // Re-announcements: the 128th queued item drains, placing the oldest 64.
        let reannounce = |ns: &[String], metric: u32| {
            for n in ns {
                drop(a.add_route(&n.parse().unwrap(), RouteParams::new(20, metric)).unwrap());
            }
        };
        reannounce(&others, 2);
        assert!(all_placed(&names, true), "the 128th item placed the oldest 64");
        assert!(all_placed(&others, false), "not due yet");
        assert_eq!(t.inner.unplaced.len(), PLACE_EVERY);

        crate::drain_deferred_garbage();
        b.delete_routes(&[]).unwrap();
        assert!(all_placed(&others, true) && t.inner.unplaced.len() == 0, "any batched call drains");

        // 128 while the slots are busy (two drains placing nothing, each putting what it
        // took back behind the rest), then a batched call of no items: its drain takes on
        // 64 only, the next call the rest.
        let hold = epoch::pin();
        reannounce(&names, 3);
        reannounce(&others, 3);
        assert_eq!(t.inner.unplaced.len(), 2 * PLACE_EVERY, "the drains kept them all");
        drop(hold);
        crate::drain_deferred_garbage();
        b.delete_routes(&[]).unwrap();
        let now_placed = names.iter().chain(&others).filter(|n| placed(t, n) == Some(true)).count();
        assert_eq!(now_placed, PLACE_EVERY, "64 of them only");
        b.delete_routes(&[]).unwrap();
        assert!(all_placed(&names, true) && all_placed(&others, true));
        assert_eq!(t.inner.unplaced.len(), 0);
        for (ns, metric) in [(&names, 3), (&others, 3)] {
            for n in ns {
                let d = t.get(&n.parse().unwrap(), ViewSet::ANY).unwrap();
                let got: Vec<(u32, u32)> =
                    d.route_infos().iter().map(|(_, v)| (v.preference(), v.metric())).collect();
                assert_eq!(got, [(20, metric)], "{n}");
            }
        }
    }

    /// A drain puts what it could not place behind the rest of the list: destinations
    /// whose replaced snapshots wait in an idle thread's epoch bag (their slots busy until
    /// that thread defers or flushes again) do not block the ones queued after them.
    #[test]
    fn long_busy_slots_do_not_block_the_queue() {
        let _serial = crate::sync::reclaim_lock();
        use crate::table::PLACE_EVERY;
        use crate::{AddressFamily, EntityId, RouteParams, Rtm};
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let t = rtm.table(AddressFamily::Ipv4);
        let names: Vec<String> = (0..PLACE_EVERY + 32).map(|i| format!("10.{i}.0.0/16")).collect();
        let items: Vec<(NetAddress, RouteParams)> =
            names.iter().map(|n| (n.parse().unwrap(), RouteParams::new(20, 1))).collect();
        a.add_routes(&items).unwrap();
        crate::drain_deferred_garbage();
        let (stuck, rest) = names.split_at(32);
        let (parked_tx, parked_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            // Owned here, so that a failed assertion below drops it and frees the thread.
            let go = go_tx;
            let a = &a;
            s.spawn(move || {
                // 32 replaced snapshots, retired into this thread's bag (64 fit), which
                // nobody flushes while the thread waits.
                for n in stuck {
                    drop(a.add_route(&n.parse().unwrap(), RouteParams::new(20, 2)).unwrap());
                }
                parked_tx.send(()).unwrap();
                let _ = go_rx.recv();
            });
            parked_rx.recv().unwrap();
            for n in rest {
                drop(a.add_route(&n.parse().unwrap(), RouteParams::new(20, 2)).unwrap());
            }
            crate::drain_deferred_garbage();
            assert!(stuck.iter().all(|n| placed(t, n) == Some(false)), "their slots are busy");
            for _ in 0..4 {
                a.delete_routes(&[]).unwrap();
            }
            assert!(rest.iter().all(|n| placed(t, n) == Some(true)), "not blocked behind them");
            go.send(()).unwrap();
        });
    }

    /// Snapshot transitions keep the entries in selection order while moving only the
    /// changed one (`RouteList::changed`): a version change that moves a route from last to
    /// first and back, an insert that lands in the middle, removals from the middle and the
    /// front; after each, the forwarding copy beside the entries (`Many`'s views and next
    /// hops, read by the fast path) is the first entry's.
    #[test]
    fn changes_keep_the_selection_order() {
        use crate::{AddressFamily, EntityId, NextHop, RouteParams, Rtm};
        let rtm = Rtm::new();
        let e: Vec<_> =
            (1..=4).map(|i| rtm.register(AddressFamily::Ipv4, EntityId::new(i, 1)).unwrap()).collect();
        let p: NetAddress = "10.0.0.0/8".parse().unwrap();
        let hop = |i: u8| NextHop::new(format!("192.0.2.{i}").parse().unwrap(), u32::from(i));
        let params = |pref: u32, i: u8| RouteParams::new(pref, 0).next_hop(hop(i));
        let check = |want: &[u32]| {
            let g = epoch::pin();
            let d = crate::leaf::dest_of(rtm.table(AddressFamily::Ipv4).inner.trie.get(&p, &g).unwrap(), &g);
            let list = d.list(&g);
            let prefs: Vec<u32> = list.entries.iter().map(|e| e.info().preference).collect();
            assert_eq!(prefs, want);
            let first = &list.entries[0];
            let (idx, hops) = list.best_hops(ViewId::UNICAST).expect("every route is unicast");
            assert_eq!((idx, hops), (0, first.next_hops()), "the forwarding copy is the first entry's");
            if let Entries::Many(m) = &list.entries {
                assert_eq!(m.views, first.views);
            }
        };
        let (r0, _) = e[0].add_route(&p, params(10, 0)).unwrap();
        let (r1, _) = e[1].add_route(&p, params(20, 1)).unwrap();
        let (r2, _) = e[2].add_route(&p, params(30, 2)).unwrap();
        check(&[10, 20, 30]);
        e[2].update_route(&r2, params(5, 2)).unwrap();
        check(&[5, 10, 20]);
        e[2].update_route(&r2, params(40, 2)).unwrap();
        check(&[10, 20, 40]);
        let (r3, _) = e[3].add_route(&p, params(15, 3)).unwrap();
        check(&[10, 15, 20, 40]);
        e[1].update_route(&r1, params(12, 1)).unwrap();
        check(&[10, 12, 15, 40]);
        e[3].delete_route(&r3).unwrap();
        check(&[10, 12, 40]);
        e[0].delete_route(&r0).unwrap();
        check(&[12, 40]);
        e[1].delete_route(&r1).unwrap();
        check(&[40]);
    }
}
