//! Queries: the lock-free fast path ([`Table::lookup`]) and the handle-returning RTMv2
//! queries (exact, most specific, less specific, exact route).
//!
//! # What a query observes under concurrent change
//! * The trie walk sees each node as of one instant (nodes are immutable, swapped by CAS);
//!   a destination linked or unlinked meanwhile may or may not be found.
//! * A destination's routes are read from one snapshot: a query never sees half an update.
//! * A destination found in the trie may die (its last route deleted) after it was found:
//!   the fast path then reports what the snapshot it loaded says (possibly the route that
//!   was just withdrawn — it was valid when the lookup started), and falls back to shorter
//!   prefixes if that snapshot has no route in the view.
//! * A prefix's lone routes (`leaf.rs`) are read from the leaf's word in one load: one
//!   version, or one immutable group of them.
//! * Handle-returning queries take a reference with a try-increment that fails on a
//!   retired destination; such a candidate is skipped as if it had not been found. A
//!   prefix with lone routes is promoted to a destination object first (a CAS of its
//!   leaf's word; it stays an object after the handle is released).

use crate::dest::{Dest, DestRef, RouteList};
use crate::entity::EntityId;
use crate::error::{Error, Result};
use crate::leaf::{dest_in, read, read_one, Leaf, State};
use crate::prefix::NetAddress;
use crate::route::{NextHop, RouteInfo, RouteRef};
use crate::sync::epoch;
use crate::table::Table;
use crate::trie::{Cell, BATCH};
use crate::view::{ViewId, ViewSet};
use std::net::IpAddr;

/// The longest matches of one chunk of a batched lookup.
type Found<'a> = [Option<Cell<'a>>; BATCH];

/// One chunk of [`Table::lookup_batch`] between its pipeline stages: its matches, and
/// whether the middle stage met a destination object among them (else the last stage has
/// no snapshot to prefetch: a table written without handles has none).
struct Stage<'a> {
    found: Found<'a>,
    dests: bool,
}

/// A pinned epoch: the scope of fast-path lookups. Pin once, look up many addresses, drop
/// it soon (a guard held for long delays memory reclamation for every thread). Not `Send`.
#[must_use]
pub struct Guard {
    g: epoch::Guard,
}

impl Table {
    /// Pins the epoch for a batch of fast-path lookups.
    #[inline]
    pub fn pin(&self) -> Guard {
        Guard { g: epoch::pin() }
    }

    /// Longest-prefix match in the unicast view: the best unicast route of the most
    /// specific destination covering `addr` that has one. Lock-free, no reference-count
    /// traffic: the result borrows the destination (tied to the guard) and holds the route
    /// list snapshot it read.
    ///
    /// `addr` is normally a host address; a shorter `addr` only matches prefixes at most
    /// that long. An address of the other family finds nothing.
    #[inline]
    pub fn lookup<'a>(&'a self, addr: &NetAddress, guard: &'a Guard) -> Option<Best<'a>> {
        self.lookup_in(addr, ViewId::UNICAST, guard)
    }

    /// [`lookup`](Self::lookup) of an `IpAddr`.
    #[inline]
    pub fn lookup_ip<'a>(&'a self, addr: IpAddr, guard: &'a Guard) -> Option<Best<'a>> {
        self.lookup_in(&NetAddress::host(addr), ViewId::UNICAST, guard)
    }

    /// [`lookup`](Self::lookup) in view `view`.
    #[inline]
    pub fn lookup_in<'a>(&'a self, addr: &NetAddress, view: ViewId, guard: &'a Guard) -> Option<Best<'a>> {
        let t = &self.inner;
        if addr.family() != t.family {
            return None;
        }
        if addr.len() == t.trie.max_len() {
            // No longest match means no covering prefix at all: the slow path would only
            // walk the same nodes again.
            let cell = t.trie.lookup(addr.bytes(), &guard.g)?;
            if let Some(b) = self.best_of(cell, addr, view, guard) {
                return Some(b);
            }
        }
        // Slow path: the longest match has no route in this view (mixed views, or it died
        // under us); try every covering prefix, longest first.
        t.trie
            .matches(addr.bytes(), addr.len(), &guard.g)
            .into_iter()
            .find_map(|c| self.best_of(c, addr, view, guard))
    }

    /// The result for lone route `info`, found in `cell` for `key`.
    #[inline(always)]
    fn lone<'a>(
        &'a self,
        info: &'a RouteInfo,
        cell: Cell<'a>,
        key: &NetAddress,
        guard: &'a Guard,
    ) -> Best<'a> {
        Best { table: self, guard, cell, key: *key, kind: Kind::One(info), hops: &info.next_hops }
    }

    /// The best route of `view` in `cell` (found for `key`), if it has one.
    #[inline(always)]
    fn best_of<'a>(
        &'a self,
        cell: Cell<'a>,
        key: &NetAddress,
        view: ViewId,
        guard: &'a Guard,
    ) -> Option<Best<'a>> {
        let state = match read_one(cell, &guard.g) {
            // A single lone route, tested first (one tag test): the word alone (in the
            // node's line), then the shared version.
            Ok(info) => return info.views.contains(view).then_some(self.lone(info, cell, key, guard)),
            Err(state) => state,
        };
        let (dest, list) = match state {
            // Several lone routes (a group), likewise.
            State::Lone(_, set) => return set.best(view).map(|info| self.lone(info, cell, key, guard)),
            State::Dest(dest) => (dest, dest.list(&guard.g)),
            State::Dead => return None,
        };
        let (idx, hops) = list.best_hops(view)?;
        Some(Best { table: self, guard, cell, key: *key, kind: Kind::List { dest, list, idx }, hops })
    }

    /// [`lookup_in`](Self::lookup_in) of many addresses: calls `f(i, result)` for each
    /// `addrs[i]`, in order. Same results as one `lookup_in` per address, but up to 32
    /// walks advance in lock step with prefetching, so their cache misses overlap: on a
    /// table larger than the CPU caches this is several times the throughput of a loop of
    /// single lookups (the DPDK `lookup_bulk` idea). Lock-free, no reference counts.
    pub fn lookup_batch<'a>(
        &'a self,
        addrs: &[NetAddress],
        view: ViewId,
        guard: &'a Guard,
        mut f: impl FnMut(usize, Option<Best<'a>>),
    ) {
        let t = &self.inner;
        // Software pipelining, three stages: a chunk's walk (the leaves' words prefetched
        // as each walk ends); after the next chunk's walk, its leaves are read and the line
        // each names is prefetched (a destination's, or a group's block); after one more,
        // its results are read. Each stage's lines have arrived by the time it runs. Chunk
        // `c`'s matches stay in `stages[c % 3]` through its three stages (moving them from
        // stage to stage was 14 instructions per IPv6 lookup of memcpy).
        let chunks = addrs.len().div_ceil(BATCH);
        let chunk = |c: usize| &addrs[c * BATCH..addrs.len().min((c + 1) * BATCH)];
        let mut stages: [Stage<'a>; 3] =
            core::array::from_fn(|_| Stage { found: [None; BATCH], dests: false });
        for step in 0..chunks + 2 {
            if step < chunks {
                t.trie.lookup_batch(chunk(step), &guard.g, &mut stages[step % 3].found);
            }
            if let Some(c) = step.checked_sub(1).filter(|&c| c < chunks) {
                let s = &mut stages[c % 3];
                s.dests = Self::prefetch_targets(&s.found[..chunk(c).len()], guard);
            }
            if let Some(c) = step.checked_sub(2) {
                self.finish_batch(c, chunk(c), &stages[c % 3], view, guard, &mut f);
            }
        }
    }

    /// The middle stage of [`lookup_batch`](Self::lookup_batch): prefetches what each
    /// found leaf names (a destination's lookup line, a lone route's version, or a
    /// group's block). Returns whether one was a destination object.
    fn prefetch_targets(found: &[Option<Cell<'_>>], guard: &Guard) -> bool {
        let mut dests = false;
        for &cell in found.iter().flatten() {
            match read(cell, &guard.g) {
                State::Dest(d) => {
                    d.prefetch();
                    dests = true;
                }
                State::Lone(_, set) => set.prefetch(),
                State::Dead => {}
            }
        }
        dests
    }

    /// The second half of [`lookup_batch`](Self::lookup_batch) for chunk `c` (`chunk`,
    /// whose longest matches are `stage.found`): reads each match's snapshot and reports.
    fn finish_batch<'a>(
        &'a self,
        c: usize,
        chunk: &[NetAddress],
        stage: &Stage<'a>,
        view: ViewId,
        guard: &'a Guard,
        f: &mut impl FnMut(usize, Option<Best<'a>>),
    ) {
        let t = &self.inner;
        let host_len = t.family.max_len();
        // Two passes over the chunk's leaves (what they name was prefetched a stage ago):
        // the destinations' snapshots are prefetched (an updated destination's is in a
        // block of its own), then the results are read. (Prefetching a group's first
        // version here too cost `rtm bench`'s readers 6 %, whose groups' versions are few
        // and cached: reading the group's words in this pass waits for its block.) A
        // destination promoted since the middle stage only misses its prefetch.
        let found = &stage.found;
        if stage.dests {
            for &cell in found[..chunk.len()].iter().flatten() {
                if let Some(d) = dest_in(cell, &guard.g) {
                    d.list(&guard.g).prefetch();
                }
            }
        }
        for (i, a) in chunk.iter().enumerate() {
            let r = match found[i] {
                _ if a.family() != t.family || a.len() != host_len => self.lookup_in(a, view, guard),
                None => None,
                // The longest match has no route in the view (or just died): the single
                // lookup's slow path tries the shorter matches.
                Some(cell) => self.best_of(cell, a, view, guard).or_else(|| self.lookup_in(a, view, guard)),
            };
            f(c * BATCH + i, r);
        }
    }

    /// [`most_specific`](Self::most_specific) of many addresses: calls `f(i, result)` for
    /// each `addrs[i]`, in order, with the same results. The walks go in lock step as in
    /// [`lookup_batch`](Self::lookup_batch) (one pin per 32 addresses), then each match's
    /// snapshot is prefetched before its reference is taken, so the handle path overlaps
    /// its cache misses too.
    ///
    /// # Errors
    /// Per address, as `most_specific`.
    pub fn most_specific_batch(
        &self,
        addrs: &[NetAddress],
        views: ViewSet,
        mut f: impl FnMut(usize, Result<DestRef>),
    ) {
        let t = &self.inner;
        let host_len = t.family.max_len();
        for (c, chunk) in addrs.chunks(BATCH).enumerate() {
            let g = epoch::pin();
            let mut found: Found<'_> = [None; BATCH];
            t.trie.lookup_batch(chunk, &g, &mut found);
            for &cell in found.iter().flatten() {
                if let Some(d) = dest_in(cell, &g) {
                    d.prefetch_all();
                }
            }
            for &cell in found.iter().flatten() {
                if let Some(d) = dest_in(cell, &g) {
                    d.list(&g).prefetch();
                }
            }
            let views_ok = self.check_views(views).is_ok();
            for (i, a) in chunk.iter().enumerate() {
                let host = views_ok && a.family() == t.family && a.len() == host_len;
                let fast = match found[i] {
                    // No longest match: no prefix covers the host address.
                    None if host => Some(Err(Error::NotFound)),
                    Some(d) if host => self.first_in(Some(d), a, views, &g).ok().map(Ok),
                    _ => None,
                };
                // Anything else (the match has no route in `views`, a prefix rather than
                // a host, bad input) takes the single path and its errors.
                f(c * BATCH + i, fast.unwrap_or_else(|| self.most_specific(a, views)));
            }
        }
    }

    fn check_views(&self, views: ViewSet) -> Result<()> {
        if views.is_empty() || self.inner.profile.views_supported.is_superset(views) {
            Ok(())
        } else {
            Err(Error::NotSupported)
        }
    }

    fn check_family(&self, a: &NetAddress) -> Result<()> {
        if a.family() == self.inner.family {
            Ok(())
        } else {
            Err(Error::InvalidParameter)
        }
    }

    /// The first candidate (longest first; cells found for `key`) that has a route in
    /// `views` and can still be referenced. A lone route's leaf is promoted (a handle needs
    /// a destination object).
    fn first_in<'g>(
        &self,
        cands: impl IntoIterator<Item = Cell<'g>>,
        key: &NetAddress,
        views: ViewSet,
        g: &'g epoch::Guard,
    ) -> Result<DestRef> {
        for c in cands {
            let has = match read(c, g) {
                State::Lone(_, set) => set.has_route_in(views),
                State::Dest(d) => {
                    // The reference first, with the snapshot's line prefetched: the locked
                    // increment of the header line would otherwise hold back the
                    // snapshot's load until the header arrived (two misses in a row).
                    d.prefetch();
                    match d.try_ref() {
                        Some(dest) if d.list(g).has_route_in(views) => return Ok(DestRef { dest }),
                        // No route in `views` (the reference goes), or retired meanwhile.
                        _ => continue,
                    }
                }
                State::Dead => false,
            };
            if has {
                let l = Leaf::new(&self.inner.trie, c, c.prefix_of(key));
                if let Some(dest) = l.promote(&self.inner, g).and_then(Dest::try_ref) {
                    return Ok(DestRef { dest });
                }
            }
        }
        Err(Error::NotFound)
    }

    /// The destination of exactly `prefix` (`RtmGetExactMatchDestination`). With a
    /// non-empty `views`, a destination without a route in those views is not found.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidParameter`] for the wrong family;
    /// [`Error::NotSupported`] for unsupported views.
    pub fn get(&self, prefix: &NetAddress, views: ViewSet) -> Result<DestRef> {
        self.check_family(prefix)?;
        self.check_views(views)?;
        let g = epoch::pin();
        self.first_in(self.inner.trie.get(prefix, &g), prefix, views, &g)
    }

    /// Longest-prefix match returning a handle (`RtmGetMostSpecificDestination`): the most
    /// specific destination covering `addr`, at most `addr.len()` long, with a route in
    /// `views` (any route for [`ViewSet::ANY`]).
    ///
    /// Each call pins the epoch, which on a table larger than the caches costs about a
    /// memory miss's time per call (BENCHMARKS.md, session 19). A caller that looks up
    /// many addresses in one view and holds a [`Guard`] can take the handle from the fast
    /// path's result instead, `lookup_in(addr, view, &guard).and_then(|b| b.dest())`, or
    /// use [`most_specific_batch`](Self::most_specific_batch).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn most_specific(&self, addr: &NetAddress, views: ViewSet) -> Result<DestRef> {
        self.check_family(addr)?;
        self.check_views(views)?;
        let g = epoch::pin();
        if addr.len() == self.inner.family.max_len() {
            // No longest match: no prefix covers `addr` (see `lookup_in`).
            let d = self.inner.trie.lookup(addr.bytes(), &g).ok_or(Error::NotFound)?;
            if let Ok(r) = self.first_in(Some(d), addr, views, &g) {
                return Ok(r);
            }
        }
        self.first_in(self.inner.trie.matches(addr.bytes(), addr.len(), &g), addr, views, &g)
    }

    /// The next less specific destination covering `dest` (`RtmGetLessSpecificDestination`),
    /// with a route in `views`. Repeat to walk up to the default route; after it,
    /// [`Error::NotFound`].
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn less_specific(&self, dest: &DestRef, views: ViewSet) -> Result<DestRef> {
        let p = dest.prefix();
        self.check_family(&p)?;
        self.check_views(views)?;
        if p.len() == 0 {
            return Err(Error::NotFound);
        }
        let g = epoch::pin();
        self.first_in(self.inner.trie.matches(p.bytes(), p.len() - 1, &g), &p, views, &g)
    }

    /// The first route on exactly `prefix`, best first, that belongs to `views` and meets
    /// `criteria` (`RtmGetExactMatchRoute`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_route(&self, prefix: &NetAddress, criteria: &RouteMatch, views: ViewSet) -> Result<RouteRef> {
        self.check_family(prefix)?;
        self.check_views(views)?;
        let g = epoch::pin();
        let cell = self.inner.trie.get(prefix, &g).ok_or(Error::NotFound)?;
        let leaf = Leaf::new(&self.inner.trie, cell, *prefix);
        // Lone routes are promoted only if one of them is the one asked for.
        if let State::Lone(_, set) = read(cell, &g) {
            if !set
                .iter()
                .any(|info| (views.is_empty() || info.views.intersects(views)) && criteria.matches(info))
            {
                return Err(Error::NotFound);
            }
        }
        let d = leaf.promote(&self.inner, &g).ok_or(Error::NotFound)?;
        let list = d.list(&g);
        list.entries
            .iter()
            .find(|e| (views.is_empty() || e.info().views.intersects(views)) && criteria.matches(e.info()))
            .map(|e| e.route_ref())
            .ok_or(Error::NotFound)
    }
}

/// Criteria of [`Table::get_route`] (`RTM_MATCH_*`); `None` fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMatch {
    /// `RTM_MATCH_OWNER`: the owning entity.
    pub owner: Option<EntityId>,
    /// `RTM_MATCH_NEIGHBOUR`: the neighbour (`Some(None)` matches routes without one).
    pub neighbour: Option<Option<NextHop>>,
    /// `RTM_MATCH_PREF`: preference *and* metric.
    pub preference: Option<(u32, u32)>,
    /// `RTM_MATCH_NEXTHOP`: the route has this next hop among its next hops.
    pub next_hop: Option<NextHop>,
    /// `RTM_MATCH_INTERFACE`: the route has a next hop on this interface.
    pub interface: Option<u32>,
}

impl RouteMatch {
    /// Whether `info` meets every given criterion.
    pub fn matches(&self, info: &RouteInfo) -> bool {
        self.owner.is_none_or(|o| info.owner == o)
            && self.neighbour.is_none_or(|n| info.neighbour == n)
            && self.preference.is_none_or(|(p, m)| info.preference == p && info.metric == m)
            && self.next_hop.is_none_or(|nh| info.next_hops.contains(&nh))
            && self.interface.is_none_or(|i| info.next_hops.iter().any(|nh| nh.interface == i))
    }
}

/// The result of a fast-path lookup: the matched prefix and the best route of the
/// requested view as the lookup read it (a lone route's version, or an entry of the
/// destination's snapshot), borrowed under the guard.
pub struct Best<'a> {
    table: &'a Table,
    guard: &'a Guard,
    /// The matched prefix's cell, and the key it was found for (its prefix is computed
    /// when asked for: a lookup does not read the node's heap key array).
    cell: Cell<'a>,
    key: NetAddress,
    kind: Kind<'a>,
    /// The best route's next hops, found in the same match as the route.
    hops: &'a [NextHop],
}

/// Where a [`Best`] route was read.
enum Kind<'a> {
    /// A lone route (`leaf.rs`, `group.rs`): its version.
    One(&'a RouteInfo),
    /// Entry `idx` of the destination's snapshot `list`.
    List { dest: &'a Dest, list: &'a RouteList, idx: usize },
}

impl<'a> Best<'a> {
    /// The matched destination's prefix.
    #[inline]
    pub fn prefix(&self) -> NetAddress {
        self.cell.prefix_of(&self.key)
    }

    /// The best route's contents.
    #[inline]
    pub fn route(&self) -> &RouteInfo {
        match self.kind {
            Kind::One(info) => info,
            Kind::List { list, idx, .. } => list.entries[idx].info(),
        }
    }

    /// The best route's next hops.
    #[inline]
    pub fn next_hops(&self) -> &[NextHop] {
        self.hops
    }

    /// The destination object (a lone route's leaf is promoted first); `None` if the
    /// prefix left the table meanwhile.
    fn dest_object(&self) -> Option<&'a Dest> {
        match self.kind {
            Kind::List { dest, .. } => Some(dest),
            Kind::One(_) => {
                let t = &self.table.inner;
                Leaf::new(&t.trie, self.cell, self.prefix()).promote(t, &self.guard.g)
            }
        }
    }

    /// A counted handle to the best route (this one costs a reference count, and for a
    /// lone route a destination object: see `Table::lookup`). `None` if the route was
    /// withdrawn meanwhile and had no handle yet.
    pub fn to_ref(&self) -> Option<RouteRef> {
        match self.kind {
            Kind::List { list, idx, .. } => Some(list.entries[idx].route_ref()),
            Kind::One(info) => {
                let d = self.dest_object()?;
                // The lone route is the promoted destination's route of the same identity
                // (owner, neighbour); the oldest if others were added since.
                d.list(&self.guard.g)
                    .entries
                    .iter()
                    .filter(|e| {
                        e.owner == info.serial
                            && e.info().owner == info.owner
                            && e.info().neighbour == info.neighbour
                    })
                    .min_by_key(|e| e.route.seq())
                    .map(|e| e.route_ref())
            }
        }
    }

    /// A counted handle to the destination, unless it was retired meanwhile.
    pub fn dest(&self) -> Option<DestRef> {
        self.dest_object()?.try_ref().map(|dest| DestRef { dest })
    }
}

impl core::fmt::Debug for Best<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Best").field("prefix", &self.prefix()).field("route", self.route()).finish()
    }
}
