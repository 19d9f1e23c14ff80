//! The RTM instance ([`Rtm`]), its per-family tables ([`Table`]) and the registration
//! profile ([`RegnProfile`]).
//!
//! An `Rtm` is one RTMv2 instance: an instance id, the profile limits every registration
//! gets, and one table per address family (IPv4, IPv6). A table owns the destination trie
//! and the entity registry. Handles outlive what they need: an [`EntityRef`] keeps its
//! table alive; [`DestRef`]/[`RouteRef`](crate::RouteRef) keep only their objects alive (readable after the
//! table is gone, with no routes / state `Deleted`).

use crate::dest::{Dest, DestPtr, DestRef, RouteList};
use crate::entity::{Entity, EntityId, EntityRef};
use crate::error::{Error, Result};
use crate::leaf::{dest_in, free_word, read, retire_link, Leaf, State, DEAD};
use crate::prefix::AddressFamily;
use crate::sync::Ordering;
use crate::sync::{epoch, Arc, Counter, Registry, WorkList};
use crate::trie::Trie;
use crate::view::ViewSet;

/// Items of the unplaced list a route-by-route writer adds between two drains, and the
/// least a drain takes on ([`TableInner::place_unplaced`]).
pub(crate) const PLACE_EVERY: usize = 64;

/// Limits every registration gets (`RTM_REGN_PROFILE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegnProfile {
    /// Most equal-cost next hops a route may carry.
    pub max_next_hops_in_route: u32,
    /// Most handles one enumeration or change-queue call returns.
    pub max_handles_in_enum: u32,
    /// The views this instance supports.
    pub views_supported: ViewSet,
    /// Number of supported views (popcount of `views_supported`).
    pub number_of_views: u32,
}

/// Builder of an [`Rtm`] instance. Defaults: instance 0, 16 next hops per route, 256
/// handles per enumeration call, unicast and multicast views.
#[derive(Clone, Debug)]
pub struct RtmBuilder {
    instance_id: u16,
    max_next_hops: u32,
    max_handles: u32,
    views: ViewSet,
}

/// Upper bound accepted for `max_next_hops_in_route` (keeps per-route allocations sane).
pub const MAX_NEXT_HOPS_LIMIT: u32 = 1024;
/// Upper bound accepted for `max_handles_in_enum`.
pub const MAX_HANDLES_LIMIT: u32 = 1 << 20;

impl RtmBuilder {
    /// The RTM instance id (default 0).
    pub fn instance_id(mut self, id: u16) -> Self {
        self.instance_id = id;
        self
    }
    /// Most next hops per route, `1..=1024` (default 16).
    pub fn max_next_hops_in_route(mut self, n: u32) -> Self {
        self.max_next_hops = n;
        self
    }
    /// Most handles per enumeration call, `1..=2^20` (default 256).
    pub fn max_handles_in_enum(mut self, n: u32) -> Self {
        self.max_handles = n;
        self
    }
    /// Supported views: any non-empty set of the 32 view ids (default unicast|multicast).
    pub fn views(mut self, v: ViewSet) -> Self {
        self.views = v;
        self
    }

    /// Builds the instance.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a limit is out of range or the view set is empty.
    pub fn build(self) -> Result<Rtm> {
        if !(1..=MAX_NEXT_HOPS_LIMIT).contains(&self.max_next_hops)
            || !(1..=MAX_HANDLES_LIMIT).contains(&self.max_handles)
            || self.views.is_empty()
        {
            return Err(Error::InvalidParameter);
        }
        let profile = RegnProfile {
            max_next_hops_in_route: self.max_next_hops,
            max_handles_in_enum: self.max_handles,
            views_supported: self.views,
            number_of_views: self.views.len(),
        };
        let table = |family| Table {
            inner: Arc::new(TableInner {
                instance_id: self.instance_id,
                family,
                profile,
                trie: Trie::new(family.max_len()),
                entities: Registry::new(),
                dest_count: Counter::new(),
                route_count: Counter::new(),
                unplaced: crate::sync::CachePadded::new(WorkList::new()),
            }),
        };
        Ok(Rtm {
            inner: Arc::new(Instance {
                id: self.instance_id,
                profile,
                tables: [table(AddressFamily::Ipv4), table(AddressFamily::Ipv6)],
            }),
        })
    }
}

struct Instance {
    id: u16,
    profile: RegnProfile,
    tables: [Table; 2],
}

/// One RTMv2 instance: a table per address family plus its registration profile. Cheap
/// to clone (shared).
#[derive(Clone)]
pub struct Rtm {
    inner: Arc<Instance>,
}

impl Default for Rtm {
    fn default() -> Self {
        Rtm::builder().build().unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

impl Rtm {
    /// A builder with the default profile.
    pub fn builder() -> RtmBuilder {
        RtmBuilder {
            instance_id: 0,
            max_next_hops: 16,
            max_handles: 256,
            views: ViewSet::UNICAST | ViewSet::MULTICAST,
        }
    }

    /// An instance with the default profile.
    pub fn new() -> Self {
        Self::default()
    }

    /// The instance id.
    pub fn instance_id(&self) -> u16 {
        self.inner.id
    }

    /// The registration profile.
    pub fn profile(&self) -> RegnProfile {
        self.inner.profile
    }

    /// The table of `family`.
    pub fn table(&self, family: AddressFamily) -> &Table {
        &self.inner.tables[family.index()]
    }

    /// Registers an entity (`RtmRegisterEntity`) with the table of `family`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `id` is registered with that table.
    pub fn register(&self, family: AddressFamily, id: EntityId) -> Result<EntityRef> {
        self.table(family).register(id)
    }
}

/// The shared state of one table.
pub(crate) struct TableInner {
    pub(crate) instance_id: u16,
    pub(crate) family: AddressFamily,
    pub(crate) profile: RegnProfile,
    pub(crate) trie: Trie,
    pub(crate) entities: Registry<EntityId, Arc<Entity>>,
    pub(crate) dest_count: Counter,
    pub(crate) route_count: Counter,
    /// Destinations whose snapshot went to a block because their slot was busy when a
    /// batched write (an add, a re-announcement, a delete that left a route) changed them,
    /// with a reference each: later batched writes move the snapshots into the slots once
    /// those are free ([`Dest::place`]).
    /// (With the generation of the snapshot left in a block: see `Dest::place`.)
    ///
    /// Padded to a 128-byte block of its own: a route-by-route writer locks it whenever
    /// its snapshot goes to a block (most re-announcements under churn), and unpadded
    /// its mutex sat in the line after the trie's root and level count, which every
    /// lookup reads. The two lines form one 128-byte pair, which the L2's spatial
    /// prefetcher fetches together, so a reader held the mutex's line too and every lock
    /// took it back from the reader's core: a reader of one address slowed the writer by
    /// up to 13 %, one of 32 addresses by 6-9 % (`writer_interference`, BENCHMARKS.md
    /// session 32).
    pub(crate) unplaced: crate::sync::CachePadded<WorkList<(DestPtr, u64)>>,
}

impl TableInner {
    /// Moves the snapshots of the destinations that earlier calls left unplaced into their
    /// slots where those are free now, keeps the rest for a later call, and adds `fresh`
    /// (this call's). Call unpinned: the slots of `fresh` free only after this thread's
    /// pin of the call that filled them has ended.
    ///
    /// Bounded work per call: the oldest `2 * fresh.len() + PLACE_EVERY` items at most,
    /// and none after a window of [`BATCH`](crate::trie::BATCH) items whose slots were
    /// all still busy (slots mostly free in the order of their grace periods, so the
    /// younger ones are likely busy too: a reader pinned for long stalls every slot, and
    /// the list must not cost each call a pass over its [`WorkList::CAP`] items
    /// meanwhile). Items left busy go to the back of the list, so one whose slot stays
    /// busy for long does not block the rest: a snapshot retired by a thread that then
    /// stops deferring waits in that thread's epoch bag until it is flushed (criterion's
    /// `churn/rtm` writer slowed from 0.56 to 0.24 M updates/s when such items held the
    /// list's front and every drain moved the full list).
    pub(crate) fn place_unplaced(&self, fresh: Vec<(DestPtr, u64)>) {
        let earlier = self.unplaced.take(2 * fresh.len() + PLACE_EVERY);
        if !earlier.is_empty() {
            let mut keep = vec![true; earlier.len()];
            let g = epoch::pin();
            // The replaced blocks go to the collector together.
            crate::sync::batched(&g, || {
                // A window at a time: prefetch the destinations, then (reading them) their
                // snapshots, then (reading those) the entry blocks, then copy on warm lines;
                // the lines went cold since the call that left them (hints only, not in loom).
                for (k, w) in earlier.chunks(crate::trie::BATCH).enumerate() {
                    #[cfg(not(loom))]
                    {
                        // All three lines: the move writes the slot's, the third too.
                        w.iter().for_each(|(d, _)| d.prefetch_for_write());
                        w.iter().for_each(|(d, _)| d.list(&g).prefetch());
                        w.iter().for_each(|(d, _)| d.list(&g).prefetch_entry_block());
                    }
                    let mut any = false;
                    for (j, (d, gen)) in w.iter().enumerate() {
                        let busy = !d.place(*gen, &g);
                        keep[k * crate::trie::BATCH + j] = busy;
                        any |= !busy;
                    }
                    if !any && w.len() == crate::trie::BATCH {
                        break;
                    }
                }
            });
            drop(g);
            crate::sync::pace_reclamation(earlier.len());
            // Back behind the rest (`WorkList::take`): a destination whose slot stays busy
            // for long (a retired snapshot waiting in an idle thread's epoch bag) must not
            // block the ones queued after it.
            let busy = earlier.into_iter().zip(keep).filter_map(|(item, busy)| busy.then_some(item));
            self.unplaced.extend(busy.collect());
        }
        self.unplaced.extend(fresh);
    }

    /// After a route-by-route write (under its pin `_g`, with `list` the snapshot it read
    /// back): queues `dest` for [`place_unplaced`](Self::place_unplaced) if `list` went to
    /// a block, as the batched writes do. Never waits (a busy list drops the item). Returns
    /// whether the caller should drain the list once unpinned: every [`PLACE_EVERY`]th
    /// item, so that route-by-route writers place in batches too. Not in loom builds: the
    /// queue is a mutex-protected `Vec`, and the placement it leads to is modelled on its
    /// own (`place_vs_update`); in every route-by-route model it would only multiply the
    /// interleavings.
    pub(crate) fn queue_unplaced(&self, dest: &Dest, list: &RouteList, _g: &epoch::Guard) -> bool {
        if cfg!(loom) || list.is_dead() || dest.is_placed(list) {
            return false;
        }
        let Some(d) = dest.try_ref() else { return false };
        self.unplaced.push((d, list.gen)).is_some_and(|n| n % PLACE_EVERY == 0)
    }

    /// Unlinks a dead destination from the trie if it is still linked: kills its word
    /// (which releases the link reference, `Leaf::kill_dest`) and takes the prefix out.
    /// Any thread may call it; exactly one removal succeeds.
    pub(crate) fn unlink(&self, dest: &Dest, g: &epoch::Guard) {
        // One walk finds the cell, kills it (or finds it dead: helping whoever killed it)
        // and takes the prefix out.
        let addr = core::ptr::from_ref(dest).addr();
        let removed = self.trie.remove_where(&dest.prefix, g, &mut |cell, w| {
            if w == DEAD {
                return true;
            }
            if w != addr {
                return false;
            }
            // The word may have moved to a copy of the node meanwhile: the leaf follows it,
            // and the next attempt finds it there, dead.
            match Leaf::new(&self.trie, cell, dest.prefix).kill_dest(dest, g) {
                Some(link) => {
                    retire_link(link, g);
                    true
                }
                None => false,
            }
        });
        self.dest_count.add(-isize::from(removed));
    }

    /// Takes a dead leaf's prefix out of the trie if it is still there. Any thread may call
    /// it; exactly one removal succeeds.
    pub(crate) fn unlink_leaf(&self, leaf: &Leaf<'_>, g: &epoch::Guard) {
        if self.trie.remove(&leaf.prefix, DEAD, g) {
            self.dest_count.add(-1);
        }
    }

    /// [`unlink`](Self::unlink) of many dead destinations, with one copy per trie node
    /// touched (`Trie::remove_batch`).
    pub(crate) fn unlink_batch(&self, dests: &[&Dest], g: &epoch::Guard) {
        let mut dead: Vec<crate::prefix::NetAddress> = Vec::with_capacity(dests.len());
        for w in dests.chunks(crate::trie::BATCH) {
            let keys: Vec<crate::prefix::NetAddress> = w.iter().map(|d| d.prefix).collect();
            let mut got = [None; crate::trie::BATCH];
            self.trie.get_batch(&keys, g, &mut got);
            for (d, cell) in w.iter().zip(got) {
                if let Some(cell) = cell {
                    let leaf = Leaf::new(&self.trie, cell, d.prefix);
                    match leaf.kill_dest(d, g) {
                        Some(link) => {
                            retire_link(link, g);
                            dead.push(d.prefix);
                        }
                        None if matches!(leaf.state(g), State::Dead) => dead.push(d.prefix),
                        None => {}
                    }
                }
            }
        }
        self.unlink_leaves(dead, g);
    }

    /// Takes the prefixes of many dead leaves out of the trie, with one copy per trie node
    /// touched.
    pub(crate) fn unlink_leaves(&self, mut dead: Vec<crate::prefix::NetAddress>, g: &epoch::Guard) {
        // Two callers may list the same dead leaf: distinct prefixes are what
        // `remove_batch` needs.
        dead.sort_unstable_by_key(|p| (*p.bytes(), p.len()));
        dead.dedup();
        let keys: Vec<(crate::prefix::NetAddress, usize)> = dead.iter().map(|p| (*p, DEAD)).collect();
        let mut out = vec![None; keys.len()];
        self.trie.remove_batch(&keys, g, &mut out);
        self.dest_count.add(-(out.iter().filter(|r| **r == Some(true)).count() as isize));
    }
}

impl Drop for TableInner {
    fn drop(&mut self) {
        // No EntityRef is left (each holds the table), so no writer is active. Detach every
        // linked destination: mark its routes deleted, install a dead snapshot (breaking the
        // dest -> route -> dest cycle); then release what every word holds (a
        // destination's link reference, a lone route's version or group). The trie's own
        // drop frees the nodes.
        let g = epoch::pin();
        let mut words: Vec<usize> = Vec::new();
        self.trie.for_each(&g, &mut |_, cell| {
            if let Some(d) = dest_in(cell, &g) {
                let old = d.list(&g);
                let gen = old.gen + 1;
                for e in old.entries.iter() {
                    e.route.bury(gen, e.info(), &g);
                }
                d.kill(gen, false, &g);
            }
            // Relaxed: `&mut self`, so no other thread writes the trie any more, and the
            // table's last handle went with a Release decrement its drop acquired.
            words.push(cell.word().load(Ordering::Relaxed));
        });
        for w in words {
            // SAFETY: the trie is being dropped and no thread reaches it: each word is ours,
            // listed once.
            unsafe { free_word(w) };
        }
    }
}

/// One routing table (an address family of an instance). Cheap to clone (shared).
///
/// Queries are lock-free and never block; see the crate docs for what they observe
/// under concurrent updates.
#[derive(Clone)]
pub struct Table {
    pub(crate) inner: Arc<TableInner>,
}

impl Table {
    /// The address family.
    pub fn family(&self) -> AddressFamily {
        self.inner.family
    }

    /// The registration profile.
    pub fn profile(&self) -> RegnProfile {
        self.inner.profile
    }

    /// Registers an entity with this table (`RtmRegisterEntity`).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if `id` is registered here.
    pub fn register(&self, id: EntityId) -> Result<EntityRef> {
        match self.inner.entities.try_insert_with(id, || Arc::new(Entity::new(id))) {
            Ok(entity) => Ok(EntityRef { entity, table: self.inner.clone() }),
            Err(_) => Err(Error::AlreadyExists),
        }
    }

    /// Handles to every registered entity, ordered by id (`RtmGetRegisteredEntities`).
    pub fn entities(&self) -> Vec<EntityRef> {
        let mut v: Vec<EntityRef> = self
            .inner
            .entities
            .values()
            .into_iter()
            .filter(|e| e.is_registered())
            .map(|entity| EntityRef { entity, table: self.inner.clone() })
            .collect();
        v.sort_by_key(|e| e.id());
        v
    }

    /// Number of destinations in the table (exact when no writer is active).
    pub fn len(&self) -> usize {
        self.inner.dest_count.sum().max(0) as usize
    }

    /// Whether the table has no destinations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of routes in the table (exact when no writer is active).
    pub fn route_count(&self) -> usize {
        self.inner.route_count.sum().max(0) as usize
    }

    /// Handles to every destination, in enumeration order (address, then length).
    /// A cursor over the live table, not a snapshot: destinations added or removed
    /// meanwhile may or may not appear. A handle needs a destination object, so every
    /// prefix with lone routes is promoted (`leaf.rs`): this costs memory that stays.
    pub fn dests(&self) -> Vec<DestRef> {
        let g = epoch::pin();
        let mut leaves = Vec::new();
        let trie = &self.inner.trie;
        trie.for_each(&g, &mut |p, cell| leaves.push(Leaf::new(trie, cell, p)));
        // A handle needs a destination object: a lone route's leaf is promoted.
        leaves
            .iter()
            .filter_map(|l| l.promote(&self.inner, &g))
            // Skip dead destinations before touching their reference count.
            .filter(|d| !d.list(&g).is_dead())
            .filter_map(|d| d.try_ref().map(|dest| DestRef { dest }))
            .collect()
    }

    /// Trie nodes and their bytes, for memory figures.
    pub fn node_stats(&self) -> (usize, usize) {
        let g = epoch::pin();
        self.inner.trie.node_stats(&g)
    }

    /// The memory of the table's two largest parts: its trie nodes and its destination
    /// objects (what is left of a table's memory is route blocks for the routes after a
    /// destination's first, several-route snapshots and versions). Walks the trie; exact
    /// when no writer is active.
    pub fn memory(&self) -> TableMemory {
        let (trie_nodes, trie_bytes) = self.node_stats();
        let g = epoch::pin();
        let (mut leaves, mut objects, mut groups) = (0usize, 0usize, 0usize);
        self.inner.trie.for_each(&g, &mut |_, cell| {
            leaves += 1;
            match read(cell, &g) {
                State::Dest(_) => objects += 1,
                State::Lone(_, set) => groups += set.bytes(),
                State::Dead => {}
            }
        });
        TableMemory {
            trie_nodes,
            trie_bytes,
            destinations: leaves,
            destination_bytes: objects * Dest::BYTES + groups,
            destination_objects: objects,
        }
    }
}

/// See [`Table::memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableMemory {
    /// Trie nodes linked.
    pub trie_nodes: usize,
    /// Their bytes (each node's allocation).
    pub trie_bytes: usize,
    /// Destinations in the table ([`Table::len`]).
    pub destinations: usize,
    /// Their bytes beyond their cells in the trie nodes (a word each, enough for a lone
    /// route, counted in `trie_bytes`): a group block for several lone routes (8 bytes per route and a header), and
    /// a destination object (192 bytes, its first snapshot placed inside it) for each with
    /// handles on it (route blocks and snapshots in blocks not counted).
    pub destination_bytes: usize,
    /// Destinations with a destination object (the others are lone routes in a cell).
    pub destination_objects: usize,
}

/// Process-wide numbers of allocated destination and route objects, including those
/// awaiting epoch reclamation (call [`drain_deferred_garbage`](crate::drain_deferred_garbage)
/// first for exact figures). For leak checks and memory figures; always 0 under loom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveObjects {
    /// Destination objects.
    pub dests: isize,
    /// Route identities: route blocks, and one own route per destination object (released
    /// with it; see `identity.rs`). A lone route in a leaf has none.
    pub routes: isize,
    /// Leaves: one per prefix linked (`leaf.rs`).
    pub leaves: isize,
}

/// See [`LiveObjects`].
pub fn live_objects() -> LiveObjects {
    LiveObjects {
        dests: crate::sync::LIVE_DESTS.sum(),
        routes: crate::sync::LIVE_ROUTES.sum(),
        leaves: crate::sync::LIVE_LEAVES.sum(),
    }
}
