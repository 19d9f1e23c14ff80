//! Routes: the caller-facing value types ([`RouteParams`], [`RouteInfo`], [`NextHop`],
//! [`ChangeFlags`]) and the route handle, [`RouteRef`].
//!
//! # Identity and versions
//! A route's identity (`identity.rs`: its destination's own route, or a route block) is
//! created when `(destination, owner, neighbour)` is first added and kept across updates;
//! a [`RouteRef`] is a reference-counted pin of it (`Clone` = RtmReferenceHandles, `Drop` = RtmReleaseRoutes). Its contents are
//! an immutable [`RouteInfo`] replaced as a whole; the only copy lives in the destination's
//! route-list snapshot, so a handle reads its route's entry in the current snapshot (after
//! a writer returns, the handle shows its version or a newer one). A `RouteInfo` holds no
//! per-route data, so routes with the same attributes share one (`add_routes` shares it
//! between neighbouring items with equal parameters, as a BGP UPDATE's NLRI share their
//! path attributes).
//!
//! # Deletion
//! A deleted route stays readable through its handles (state [`RouteState::Deleted`],
//! last contents) until the last handle is released. Its last contents are the route's
//! *tombstone* (`Identity::gone`, an epoch-reclaimed slot that stays empty until a delete),
//! written by the deleter *before* the snapshot CAS that removes the route, so a reader
//! that no longer finds the route in the snapshot finds the tombstone. A delete attempt
//! whose CAS fails may have written a tombstone from an older snapshot; the slot is a *max
//! register* keyed by the snapshot generation (a CAS that only ever raises it), and the
//! successful deleter read the newest snapshot holding the route, so its tombstone is the
//! one that stays.

use crate::entity::{Entity, EntityId};
use crate::identity::RoutePtr;
use crate::prefix::NetAddress;
use crate::sync::{Arc, Counted};
use crate::view::ViewSet;
use core::cmp::Ordering as CmpOrdering;
use core::fmt;

mod next_hop;
#[cfg(test)]
mod tests;

pub(crate) use next_hop::NextHops;
pub use next_hop::{NextHop, NextHopList};

/// Lifecycle of a route (`RTM_ROUTE_STATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteState {
    /// In the table (`RTM_ROUTE_STATE_CREATED` = 0).
    Created,
    /// Deleted; still readable through handles (`RTM_ROUTE_STATE_DELETED` = 2).
    Deleted,
}

/// Route flags (`RTM_ROUTE_FLAGS_*`): data for forwarders; they do not affect selection.
pub mod flags {
    /// Martian destination (a forwarding flag).
    pub const MARTIAN: u16 = 0x0001;
    /// Silently drop (a forwarding flag).
    pub const BLACKHOLE: u16 = 0x0002;
    /// Discard (a forwarding flag).
    pub const DISCARD: u16 = 0x0004;
    /// Inactive (a forwarding flag).
    pub const INACTIVE: u16 = 0x0008;
    /// Directly reachable network.
    pub const LOCAL: u16 = 0x0010;
    /// Not directly reachable.
    pub const REMOTE: u16 = 0x0020;
    /// One of the router's own addresses.
    pub const MYSELF: u16 = 0x0040;
    /// The forwarding group: MARTIAN | BLACKHOLE | DISCARD | INACTIVE.
    pub const FORWARDING: u16 = 0x000F;
}

/// What an add/update/delete did (`RTM_ROUTE_CHANGE_*` output flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ChangeFlags {
    /// A new route was created (`RTM_ROUTE_CHANGE_NEW`); clear if an existing one changed.
    pub new: bool,
    /// The best route changed in some view, or this route is or was the best
    /// (`RTM_ROUTE_CHANGE_BEST`).
    pub best: bool,
}

impl ChangeFlags {
    /// The RTMv2 bit value (`NEW` = 0x02, `BEST` = 0x0001_0000).
    pub const fn bits(self) -> u32 {
        (if self.new { 0x02 } else { 0 }) | (if self.best { 0x0001_0000 } else { 0 })
    }
}

/// How `add_route` matches an existing route (`RTM_ROUTE_CHANGE_*` input flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AddMode {
    /// Match `(destination, owner, neighbour)`: update it if present, else create. If
    /// several routes match (after `New` or `First`), the oldest is updated.
    #[default]
    Normal,
    /// `RTM_ROUTE_CHANGE_FIRST`: ignore the neighbour; update the caller's oldest route on
    /// the destination if it has one.
    First,
    /// `RTM_ROUTE_CHANGE_NEW`: always create a new route.
    New,
}

/// The owner-settable fields of a route: the input of `add_route` / `update_route`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteParams {
    /// The peer that advertised the route (part of the route's identity), or `None`.
    pub neighbour: Option<NextHop>,
    /// Administrative preference: lower wins.
    pub preference: u32,
    /// Protocol metric: lower wins among equal preferences.
    pub metric: u32,
    /// Views the route belongs to: non-empty, within the instance's supported views.
    pub views: ViewSet,
    /// `RTM_ROUTE_FLAGS_*` (see [`flags`]).
    pub flags: u16,
    /// RTMv1 compatibility flags (`Flags1`).
    pub flags1: u8,
    /// Equal-cost next hops, at most the profile's `max_next_hops_in_route`.
    pub next_hops: NextHopList,
    /// Owner-private value; rtm never interprets it (`EntitySpecificInfo`).
    pub entity_info: usize,
}

impl RouteParams {
    /// A unicast route with this preference and metric, no next hops, no neighbour.
    #[inline]
    pub fn new(preference: u32, metric: u32) -> Self {
        Self {
            neighbour: None,
            preference,
            metric,
            views: ViewSet::UNICAST,
            flags: 0,
            flags1: 0,
            next_hops: NextHopList::new(),
            entity_info: 0,
        }
    }
    /// Adds a next hop.
    #[inline]
    pub fn next_hop(mut self, nh: NextHop) -> Self {
        self.next_hops.push(nh);
        self
    }
    /// Sets the neighbour.
    #[inline]
    pub fn neighbour(mut self, nh: NextHop) -> Self {
        self.neighbour = Some(nh);
        self
    }
    /// Sets the views.
    #[inline]
    pub fn views(mut self, v: ViewSet) -> Self {
        self.views = v;
        self
    }
    /// Sets the flags.
    #[inline]
    pub fn flags(mut self, f: u16) -> Self {
        self.flags = f;
        self
    }
}

/// One immutable version of a route's contents (`RTM_ROUTE_INFO` without handles).
///
/// Held as a [`Version`]. Aligned to a cache line: a version is shared by many routes and
/// read by every lookup that finds a lone route (`leaf.rs`), while writers raise and drop
/// its count (in the [`Version`]'s block, beside the contents). Aligned, the count sits
/// in a line of its own and a writer's
/// count traffic does not evict the readers' copy of the fields (`rtm bench`: readers kept
/// 79 % of their solo rate beside the writer before, BENCHMARKS.md session 22). Versions
/// are interned, so there are few of them.
///
/// `repr(C)`, with what a lookup reads first: a lone route's lookup reads the version's
/// views and next hops, and in Rust's own field order they lay in different lines of
/// the version (offsets 76 and 16), two misses per lookup. Here the first line holds
/// every field but the neighbour's tail, which only writers compare.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct RouteInfo {
    /// Loom's view of the version's liveness (zero-sized otherwise): a lone route's
    /// readers reach the version straight from the leaf's word (`leaf.rs`).
    alive: crate::sync::Tracked,
    pub(crate) next_hops: NextHops,
    pub(crate) views: ViewSet,
    pub(crate) preference: u32,
    pub(crate) metric: u32,
    /// The owner's registration number (`Entity::serial`): a lone route's owner is known
    /// from its version alone (`leaf.rs`).
    pub(crate) serial: u32,
    pub(crate) owner: EntityId,
    pub(crate) entity_info: usize,
    pub(crate) flags: u16,
    pub(crate) flags1: u8,
    pub(crate) state: RouteState,
    pub(crate) neighbour: Option<NextHop>,
}

/// The lookup's fields lie in the first line (see above).
#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::offset_of!(RouteInfo, views) + 4 <= 64);
    assert!(core::mem::offset_of!(RouteInfo, state) < 64);
    assert!(core::mem::offset_of!(RouteInfo, next_hops) + core::mem::size_of::<NextHops>() <= 64);
};

/// A shared, immutable version of a route's contents: what [`RouteRef::info`] returns.
/// Cloning it takes a reference; the contents never change (an update makes a new
/// version, and equal versions of one owner are shared).
///
/// Versions come from the node arena (huge pages, `sync/arena.rs`), like everything else
/// a lookup reads: a lone route's lookup reads its version (`leaf.rs`), and as
/// `Arc`s from the global heap, spread over hundreds of megabytes of 4 KiB
/// pages, that read was a TLB miss on top of the cache miss (BENCHMARKS.md, session 23).
#[derive(Clone)]
pub struct Version(Counted<RouteInfo>);

/// By contents, as `Arc`'s.
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Version {}

impl Version {
    /// Every version's block provenance is exposed: lone routes hold versions by address
    /// and rebuild them from `&RouteInfo`s ([`from_raw`](Self::from_raw)).
    pub(crate) fn new(info: RouteInfo) -> Self {
        Self::from_counted(Counted::new(info))
    }

    /// See [`new`](Self::new).
    pub(crate) fn from_counted(c: Counted<RouteInfo>) -> Self {
        Counted::expose(&c);
        Self(c)
    }

    /// The counted block (for the slots that keep versions: `sync/max_slot.rs`).
    pub(crate) fn counted(&self) -> &Counted<RouteInfo> {
        &self.0
    }

    /// Whether `a` and `b` are the same version object (not just equal contents).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Counted::ptr_eq(&a.0, &b.0)
    }

    /// The contents' address (for prefetches and identity checks).
    pub(crate) fn as_ptr(this: &Self) -> *const RouteInfo {
        Counted::as_ptr(&this.0)
    }

    /// Gives up this reference as the contents' address, provenance exposed (for the
    /// words and groups of lone routes); [`from_raw`](Self::from_raw) takes it back.
    pub(crate) fn into_raw(this: Self) -> *const RouteInfo {
        Counted::into_value(this.0)
    }

    /// Takes back a reference given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `p` is the contents' address of a live version (every version's block provenance
    /// is exposed when it is made, [`new`](Self::new)), and either it carries a reference
    /// given up by `into_raw`, taken back once, or the result is never dropped and a
    /// reference held elsewhere keeps the version alive while it is used
    /// (`group::borrowed`).
    pub(crate) unsafe fn from_raw(p: *const RouteInfo) -> Self {
        // SAFETY: forwarded from the caller.
        Self(unsafe { Counted::from_value(p) })
    }

    /// The number of references (tests only: racy by nature).
    #[cfg(test)]
    pub(crate) fn count(this: &Self) -> usize {
        Counted::count(&this.0)
    }
}

impl core::ops::Deref for Version {
    type Target = RouteInfo;
    #[inline(always)]
    fn deref(&self) -> &RouteInfo {
        &self.0
    }
}

/// By contents, as `Arc`'s (equal versions hash alike).
impl core::hash::Hash for Version {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        (**self).hash(h);
    }
}

impl AsRef<RouteInfo> for Version {
    fn as_ref(&self) -> &RouteInfo {
        self
    }
}

impl core::borrow::Borrow<RouteInfo> for Version {
    fn borrow(&self) -> &RouteInfo {
        self
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// Hashes the fields `Eq` compares, packed into few words: every write interns its
/// version (`sync/interner.rs`), and the derived hash fed each field, and each address's
/// 16 bytes as a length-prefixed slice, to the hasher separately (about a tenth of a
/// batched re-announcement's instructions). Equal versions write equal words.
impl core::hash::Hash for RouteInfo {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(u64::from(self.preference) | u64::from(self.metric) << 32);
        h.write_u64(u64::from(self.owner.protocol) | u64::from(self.owner.instance) << 32);
        h.write_u32(self.serial);
        h.write_u64(
            u64::from(self.views.bits())
                | u64::from(self.flags) << 32
                | u64::from(self.flags1) << 48
                | (self.state as u64) << 56,
        );
        h.write_usize(self.entity_info);
        hash_hop(self.neighbour.as_ref(), h);
        h.write_usize(self.next_hops.len());
        for hop in self.next_hops.iter() {
            hash_hop(Some(hop), h);
        }
    }
}

/// A next hop (or none) as three words (one for none).
fn hash_hop<H: core::hash::Hasher>(hop: Option<&NextHop>, h: &mut H) {
    let Some(hop) = hop else {
        h.write_u64(0);
        return;
    };
    let a = hop.address.bytes();
    let (lo, hi) = a.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    h.write_u64(word(lo));
    h.write_u64(word(hi));
    h.write_u64(
        1 | u64::from(hop.address.len()) << 8
            | (hop.address.family() as u64) << 16
            | u64::from(hop.interface) << 32,
    );
}

impl RouteInfo {
    pub(crate) fn from_params(p: &RouteParams, owner: EntityId, serial: u32) -> Self {
        Self {
            alive: crate::sync::Tracked::new(),
            state: RouteState::Created,
            owner,
            serial,
            neighbour: p.neighbour,
            preference: p.preference,
            metric: p.metric,
            views: p.views,
            flags: p.flags,
            flags1: p.flags1,
            next_hops: NextHops::from(&p.next_hops[..]),
            entity_info: p.entity_info,
        }
    }

    pub(crate) fn deleted(self) -> Self {
        Self { state: RouteState::Deleted, ..self }
    }

    /// A tracked read for loom (see `alive`).
    #[inline(always)]
    pub(crate) fn touch(&self) {
        self.alive.touch();
    }

    /// Created or deleted.
    pub fn state(&self) -> RouteState {
        self.state
    }
    /// The owning entity.
    pub fn owner(&self) -> EntityId {
        self.owner
    }
    /// The neighbour that advertised it.
    pub fn neighbour(&self) -> Option<&NextHop> {
        self.neighbour.as_ref()
    }
    /// Administrative preference (lower wins).
    pub fn preference(&self) -> u32 {
        self.preference
    }
    /// Metric (lower wins among equal preferences).
    pub fn metric(&self) -> u32 {
        self.metric
    }
    /// Views the route belongs to.
    pub fn views(&self) -> ViewSet {
        self.views
    }
    /// `RTM_ROUTE_FLAGS_*`.
    pub fn flags(&self) -> u16 {
        self.flags
    }
    /// RTMv1 compatibility flags.
    pub fn flags1(&self) -> u8 {
        self.flags1
    }
    /// Equal-cost next hops.
    pub fn next_hops(&self) -> &[NextHop] {
        &self.next_hops
    }
    /// The owner-private value.
    pub fn entity_info(&self) -> usize {
        self.entity_info
    }
    /// The fields that `add_route` takes, as they are now.
    pub fn to_params(&self) -> RouteParams {
        RouteParams {
            neighbour: self.neighbour,
            preference: self.preference,
            metric: self.metric,
            views: self.views,
            flags: self.flags,
            flags1: self.flags1,
            next_hops: NextHopList::from(&self.next_hops[..]),
            entity_info: self.entity_info,
        }
    }
}

/// Route selection order: lower preference, then lower metric, then lower owner entity id
/// (protocol id, then instance id), then neighbour (routes without one first, then by
/// address and interface), then creation order on the destination. Total and
/// deterministic: a tie never depends on timing.
pub(crate) fn selection_order(a: (&RoutePtr, &RouteInfo), b: (&RoutePtr, &RouteInfo)) -> CmpOrdering {
    // The creation sequence is read only on a full tie of the versions' keys: it lives in
    // the route block (0 for a destination's own route), a line a writer's sort would
    // otherwise load per entry.
    (a.1.preference, a.1.metric, a.1.owner, a.1.neighbour)
        .cmp(&(b.1.preference, b.1.metric, b.1.owner, b.1.neighbour))
        .then_with(|| a.0.seq().cmp(&b.0.seq()))
}

/// A reference-counted pin of a route (RTMv2 route handle). `Clone` adds a reference,
/// `Drop` releases it. Reads work after the route was deleted (state `Deleted`).
#[derive(Clone)]
#[must_use = "dropping a RouteRef releases the route handle"]
pub struct RouteRef {
    pub(crate) route: RoutePtr,
}

impl RouteRef {
    /// The route's newest contents (see the module docs for what concurrent readers see).
    pub fn info(&self) -> Version {
        let r = &self.route;
        let g = crate::sync::epoch::pin();
        // The snapshot load is Acquire and pairs with the Release CAS that removed the route,
        // which the deleter made after `bury`: a route missing from the snapshot has its
        // tombstone visible here.
        let list = r.dest().list(&g);
        if let Some(i) = list.position(r) {
            return list.entries[i].info().clone();
        }
        // A handle's route was in a snapshot before the handle existed (adds return after
        // their CAS), so it is missing only once deleted: the tombstone is set. (Checked
        // by the loom models, built with debug assertions; a release build that broke the
        // invariant would report a deleted route without contents rather than panic.)
        let tomb = r.tombstone(&g);
        debug_assert!(tomb.is_some(), "a route missing from its snapshot has a tombstone");
        let last = tomb.map_or_else(
            || RouteInfo::from_params(&RouteParams::new(0, 0), r.owner().id, r.owner().serial),
            |t| t.clone(),
        );
        Version::new(last.deleted())
    }

    /// The destination prefix.
    pub fn prefix(&self) -> NetAddress {
        self.route.dest().prefix
    }

    /// The owning entity's id.
    pub fn owner(&self) -> EntityId {
        self.route.owner().id
    }

    /// Created or deleted.
    pub fn state(&self) -> RouteState {
        // A route is live exactly while its snapshot holds it (what `info` reads); no
        // need to build the tombstone's copy just to read its state.
        let g = crate::sync::epoch::pin();
        match self.route.dest().list(&g).position(&self.route) {
            Some(_) => RouteState::Created,
            None => RouteState::Deleted,
        }
    }

    /// A handle to the route's destination (which may have left the table).
    pub fn dest(&self) -> crate::dest::DestRef {
        crate::dest::DestRef { dest: self.route.dest_ptr() }
    }

    /// The views in which this route is currently its destination's best route
    /// (RtmIsBestRoute); empty if it is deleted.
    pub fn best_in_views(&self) -> ViewSet {
        let g = crate::sync::epoch::pin();
        let list = self.route.dest().list(&g);
        let mut out = ViewSet::ANY;
        for v in list.views().iter() {
            if let Some(e) = list.best(v) {
                if RoutePtr::ptr_eq(&e.route, &self.route) {
                    out = out.with(v);
                }
            }
        }
        out
    }

    /// Whether two handles name the same route.
    pub fn ptr_eq(&self, other: &RouteRef) -> bool {
        RoutePtr::ptr_eq(&self.route, &other.route)
    }

    pub(crate) fn is_owned_by(&self, e: &Arc<Entity>) -> bool {
        Arc::ptr_eq(self.route.owner(), e)
    }
}

impl fmt::Debug for RouteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.info();
        f.debug_struct("RouteRef")
            .field("prefix", &self.prefix())
            .field("owner", &i.owner)
            .field("state", &i.state)
            .field("preference", &i.preference)
            .field("metric", &i.metric)
            .finish()
    }
}
