//! Route updates: add (find-or-create by identity), update through a handle, delete, and
//! the withdraw-everything of entity deregistration.
//!
//! Every change is one [`Dest::modify`] compare-and-swap of the destination's route-list
//! snapshot. Adding to a prefix without a live destination creates the destination with
//! its first route already in its snapshot and links it with one trie CAS; if another
//! writer linked a destination first, the new one is discarded (it was never visible) and
//! the add retries against the winner. Deleting the last route swaps in a dead snapshot
//! and unlinks the destination (see `dest/mod.rs`, "Death").

use crate::dest::{Dest, DestPtr, Entry, RouteList};
use crate::entity::{Entity, EntityRef};
use crate::error::{Error, Result};
use crate::identity::RoutePtr;
use crate::leaf::{dest_word, free_word, owned_by, Leaf, State};
use crate::prefix::NetAddress;
use crate::route::{AddMode, ChangeFlags, RouteInfo, RouteParams, RouteRef, Version};
use crate::sync::{epoch, fence, prefetch, Arc, Ordering};
use crate::table::TableInner;
use crate::view::ViewSet;

/// `RTM_ROUTE_CHANGE_BEST`: some view's best route changed, or `route` is or was best.
/// `views`: the views `route` belongs to before or after the change (callers know them
/// from the entries they replaced or built: no search of the snapshots).
///
/// Only those views can qualify: a transition changes one route and the selection order
/// is total, so in every other view the same routes keep the same order and the same best
/// route (which is not `route`).
fn best_changed(old: &RouteList, new: &RouteList, route: &RoutePtr, views: ViewSet) -> bool {
    let me = route.addr();
    views.iter().any(|v| {
        let o = old.best(v).map(|e| e.route.addr());
        let n = new.best(v).map(|e| e.route.addr());
        o != n || o == Some(me) || n == Some(me)
    })
}

impl EntityRef {
    pub(crate) fn validate(&self, prefix: Option<&NetAddress>, p: &RouteParams) -> Result<()> {
        self.check()?;
        let t = &self.table;
        if prefix.is_some_and(|a| a.family() != t.family) || p.views.is_empty() {
            return Err(Error::InvalidParameter);
        }
        if p.next_hops.len() > t.profile.max_next_hops_in_route as usize {
            return Err(Error::InvalidParameter);
        }
        if !t.profile.views_supported.is_superset(p.views) {
            return Err(Error::NotSupported);
        }
        Ok(())
    }

    /// Adds a route to `prefix` owned by this entity, or updates the entity's route there
    /// with the same neighbour (`RtmAddRouteToDest`). Creates the destination if needed.
    ///
    /// # Errors
    /// [`Error::InvalidHandle`] after deregistration; [`Error::InvalidParameter`] for a
    /// prefix of the other family, an empty view set or too many next hops;
    /// [`Error::NotSupported`] for views the instance does not support.
    pub fn add_route(&self, prefix: &NetAddress, params: RouteParams) -> Result<(RouteRef, ChangeFlags)> {
        self.add_route_with(prefix, params, AddMode::Normal)
    }

    /// [`add_route`](Self::add_route) with an explicit matching mode ([`AddMode`]).
    ///
    /// # Errors
    /// As [`add_route`](Self::add_route).
    pub fn add_route_with(
        &self,
        prefix: &NetAddress,
        params: RouteParams,
        mode: AddMode,
    ) -> Result<(RouteRef, ChangeFlags)> {
        self.validate(Some(prefix), &params)?;
        let g = epoch::pin();
        // The walk first, then the version: the walk ends by prefetching the destination's
        // lines, and the interning (a hash probe under the interner's lock) runs while
        // they load. A prefetch is not ordered with locked instructions, which wait for
        // every load before them: interned first, as before, the version's lock came
        // before the walk and the destination's misses after all of it (`profile_write`,
        // BENCHMARKS.md session 28: 8-13 % more route-by-route adds per second).
        let found = Leaf::get_prefetched(&self.table.trie, prefix, &g);
        let info = self.entity.version(&params);
        let (added, drain) = self.add_found(prefix, &info, mode, &g, found);
        drop(g);
        Ok(self.finish_add(added, drain))
    }

    /// [`add_route_with`](Self::add_route_with) for a validated version (possibly shared
    /// with other routes).
    pub(crate) fn add_info(
        &self,
        prefix: &NetAddress,
        info: &Version,
        mode: AddMode,
    ) -> (RouteRef, ChangeFlags) {
        let g = epoch::pin();
        let found = Leaf::get(&self.table.trie, prefix, &g);
        let (added, drain) = self.add_found(prefix, info, mode, &g, found);
        drop(g);
        self.finish_add(added, drain)
    }

    /// The add, its first attempt on `found` (the prefix's leaf as found under `g`), and
    /// whether the caller should drain the placement list once unpinned
    /// ([`finish_add`](Self::finish_add)).
    fn add_found<'g>(
        &'g self,
        prefix: &NetAddress,
        info: &Version,
        mode: AddMode,
        g: &'g epoch::Guard,
        found: Option<Leaf<'g>>,
    ) -> ((RouteRef, ChangeFlags), bool) {
        let t = &*self.table;
        // A route block created by a failed attempt, reused if its sequence still fits.
        let mut spare: Option<RoutePtr> = None;
        let mut drain = false;
        let mut found = Some(found);
        let (route, flags) = loop {
            // The first attempt's leaf was found by the caller; a retry walks again.
            let leaf = match found.take() {
                Some(leaf) => leaf,
                None => Leaf::get(&t.trie, prefix, g),
            };
            let Some(leaf) = leaf else {
                if let Some(r) = self.create_dest(prefix, info, g) {
                    break r;
                }
                continue;
            };
            // A handle needs a destination object: a lone route's leaf is promoted.
            let Some(dest) = leaf.promote(t, g) else {
                t.unlink_leaf(&leaf, g);
                continue;
            };
            if let Some(r) = self.upsert_counted(g, dest, info, mode, &mut spare, &mut drain) {
                break r;
            }
            crate::sync::spin_hint();
        };
        ((route, flags), drain)
    }

    /// An add's end, unpinned: the placement list drained if the add asked for it, and the
    /// route withdrawn if the entity was deregistered meanwhile.
    fn finish_add(&self, added: (RouteRef, ChangeFlags), drain: bool) -> (RouteRef, ChangeFlags) {
        if drain {
            self.table.place_unplaced(Vec::new());
        }
        self.withdraw_if_deregistered(core::iter::once(&added.0.route));
        added
    }

    /// Creates a destination whose snapshot already holds the new route and links it (in
    /// a leaf). `None` if another writer linked `prefix` first (retry).
    fn create_dest(
        &self,
        prefix: &NetAddress,
        info: &Version,
        g: &epoch::Guard,
    ) -> Option<(RouteRef, ChangeFlags)> {
        let (dest, route) = self.new_dest(prefix, info, g);
        let keep = dest.clone();
        let word = dest_word(dest);
        match self.table.trie.insert(prefix, word, g) {
            Ok(()) => {
                self.table.dest_count.add(1);
                self.table.route_count.add(1);
                Some(self.linked(route))
            }
            Err(_) => {
                // SAFETY: never stored, so ours alone; it releases the link reference.
                unsafe { free_word(word) };
                discard(keep, g);
                None
            }
        }
    }

    /// An unlinked destination for `prefix` whose snapshot holds one new route of ours.
    pub(crate) fn new_dest(
        &self,
        prefix: &NetAddress,
        info: &Version,
        g: &epoch::Guard,
    ) -> (DestPtr, RoutePtr) {
        // The new route is the destination's own (`identity.rs`).
        let dest = Dest::create(*prefix, self.entity.clone());
        let route = RoutePtr::own(dest.clone());
        // The empty first list is retired through the epoch like any replaced snapshot.
        // Freeing it at once (session 5), or creating the destination with its first list
        // in place (session 6), saves one deferred free (under 5 % of a load) but made the
        // loom model `delete_last_vs_add_same_prefix` explore far longer (59 s -> over 13
        // min at bound 1: one deferral fewer moves where crossbeam's small sanitize-mode
        // bags fill, into the racy part), so the check stays cheap.
        Dest::install_first(&dest, RouteList::one(1, Entry::new(&route, info)), g);
        (dest, route)
    }

    /// The result of an add that linked a new destination (made by `new_dest`, its leaf
    /// holding the link reference). The caller counts the destination and its route in (a
    /// batch once for all its items: a counter add is a locked instruction, which also
    /// keeps the next item's misses from overlapping this one's).
    pub(crate) fn linked(&self, route: RoutePtr) -> (RouteRef, ChangeFlags) {
        (RouteRef { route }, ChangeFlags { new: true, best: true })
    }

    /// After an add published routes: if the entity was deregistered meanwhile, its
    /// withdraw-all scan may have missed them, so withdraw them here (store-buffering with
    /// `deregister`, see entity.rs).
    pub(crate) fn withdraw_if_deregistered<'a>(&self, routes: impl Iterator<Item = &'a RoutePtr>) {
        fence(Ordering::SeqCst);
        if !self.entity.is_registered() {
            for r in routes {
                let _ = remove_route(&self.table, r);
            }
        }
    }

    /// [`upsert`](Self::upsert) with its bookkeeping, for the single-route paths: a created
    /// route counted in, the destination queued for placement (`drain`: the caller drains
    /// the list once unpinned), or, if the destination died, its unlink (`None`: retry).
    pub(crate) fn upsert_counted(
        &self,
        g: &epoch::Guard,
        dest: &Dest,
        info: &Version,
        mode: AddMode,
        spare: &mut Option<RoutePtr>,
        drain: &mut bool,
    ) -> Option<(RouteRef, ChangeFlags)> {
        let t = &*self.table;
        let Some(r) = self.upsert(g, dest, info, mode, spare) else {
            t.unlink(dest, g);
            return None;
        };
        if r.1.new {
            t.route_count.add(1);
        }
        *drain = t.queue_unplaced(dest, dest.list(g), g);
        Some(r)
    }

    /// One find-or-create on a live destination (a CAS loop on its snapshot); `None` if
    /// the destination is dead (unlink it and retry with a fresh one). The caller counts a
    /// created route (`ChangeFlags::new`) in, as for `linked`.
    pub(crate) fn upsert(
        &self,
        g: &epoch::Guard,
        dest: &Dest,
        info: &Version,
        mode: AddMode,
        spare: &mut Option<RoutePtr>,
    ) -> Option<(RouteRef, ChangeFlags)> {
        let me = &self.entity;
        let (old, new, (route, created, views)) = dest
            .modify(g, |cur| {
                if cur.is_dead() {
                    return Err(());
                }
                let matches = |e: &Entry| match mode {
                    AddMode::Normal => me.owns(e) && e.info().neighbour == info.neighbour,
                    AddMode::First => me.owns(e),
                    AddMode::New => false,
                };
                // Among several matches (possible after `New` or `First`), the oldest.
                let oldest = |it: &mut dyn Iterator<Item = &Entry>| {
                    it.min_by_key(|e| e.route.seq()).and_then(|f| cur.position(&f.route))
                };
                // The entries whose owner tag is this entity's: only they can match (`owns`
                // checks the tag first). With one (the usual case: a re-announcement), it is
                // taken as the match while the replacement is built, and checked after: the
                // check reads the route's identity and the version's neighbour, two objects
                // outside the snapshot, whose lines then load during the build instead of
                // before it. A failed check means no entry matches (it was the only
                // candidate), and the built snapshot, which owns nothing, is dropped.
                let mut tagged = cur.entries.iter().enumerate().filter(|(_, e)| e.owner == me.serial);
                let (first, second) = (tagged.next(), tagged.next());
                let guess = match (mode, first, second) {
                    (AddMode::New, ..) | (_, None, _) => None,
                    (_, Some((i, e)), None) => {
                        // The identity, and the version's line that ends its neighbour
                        // (the second: `RouteInfo`'s layout); addresses only, nothing read.
                        prefetch(e.route.addr());
                        let nb = core::ptr::from_ref(&e.info().neighbour).cast::<u8>();
                        prefetch(nb.wrapping_add(core::mem::size_of_val(&e.info().neighbour) - 1));
                        let built = cur.with_info(i, info);
                        matches(e).then_some((i, built))
                    }
                    _ => oldest(&mut cur.entries.iter().filter(|e| matches(e)))
                        .map(|i| (i, cur.with_info(i, info))),
                };
                // The route's views before (if it exists) or after the change.
                let mut views = info.views;
                let (list, delta, route, created) = match guess {
                    Some((i, (list, delta))) => {
                        views = views | cur.entries[i].views();
                        (list, delta, RoutePtr::clone(&cur.entries[i].route), false)
                    }
                    None => {
                        // The creation sequence is the generation of the snapshot that
                        // adds the route (`identity.rs`, "Creation sequence").
                        let seq = cur.gen + 1;
                        let r = match spare {
                            // Reusable only for the same destination (a spare built for a
                            // destination that died belongs to that one) and the same
                            // transition.
                            Some(r) if core::ptr::eq(r.dest(), dest) && r.seq() == seq => r.clone(),
                            _ => {
                                let dp = dest.try_ref().ok_or(())?;
                                let r = RoutePtr::block(dp, me.clone(), seq);
                                *spare = Some(r.clone());
                                r
                            }
                        };
                        // `spare` holds the route and the caller `info` until `modify` has
                        // applied the counts.
                        let (list, delta) = cur.with_added(&r, info);
                        (list, delta, r, true)
                    }
                };
                Ok((list, delta, (route, created, views)))
            })
            .ok()?;
        let best = best_changed(old, new, &route, views);
        Some((RouteRef { route }, ChangeFlags { new: created, best }))
    }

    /// Replaces the contents of one of this entity's routes, keeping its identity
    /// (RTMv2's add with a route handle / `RtmUpdateAndUnlockRoute`).
    ///
    /// # Errors
    /// [`Error::AccessDenied`] if the route is another entity's; [`Error::NotFound`] if
    /// it was deleted; otherwise as [`add_route`](Self::add_route).
    pub fn update_route(&self, route: &RouteRef, params: RouteParams) -> Result<ChangeFlags> {
        self.validate(None, &params)?;
        if !route.is_owned_by(&self.entity) {
            return Err(Error::AccessDenied);
        }
        let r = &route.route;
        // As in `add_route_with`: the destination's lines load while the version is
        // interned.
        r.dest().prefetch_for_write();
        let info = self.entity.version(&params);
        let g = epoch::pin();
        let (old, new, views) = r.dest().modify(&g, |cur| {
            let i = cur.position(r).ok_or(Error::NotFound)?;
            let views = cur.entries[i].views() | info.views;
            let (list, delta) = cur.with_info(i, &info);
            Ok((list, delta, views))
        })?;
        let flags = ChangeFlags { new: false, best: best_changed(old, new, r, views) };
        let drain = self.table.queue_unplaced(r.dest(), new, &g);
        drop(g);
        if drain {
            self.table.place_unplaced(Vec::new());
        }
        Ok(flags)
    }

    /// Deletes one of this entity's routes (`RtmDeleteRouteToDest`). The handle stays
    /// readable (state `Deleted`) until dropped.
    ///
    /// # Errors
    /// [`Error::InvalidHandle`] after deregistration; [`Error::AccessDenied`] if the route
    /// is another entity's; [`Error::NotFound`] if it was already deleted.
    pub fn delete_route(&self, route: &RouteRef) -> Result<ChangeFlags> {
        self.check()?;
        if !route.is_owned_by(&self.entity) {
            return Err(Error::AccessDenied);
        }
        remove_route(&self.table, &route.route)
    }
}

/// Drops a destination made by `new_dest` that the trie did not link: it was never
/// visible, so breaking the dest -> route -> dest cycle lets both go.
pub(crate) fn discard(dest: DestPtr, g: &epoch::Guard) {
    dest.kill(0, true, g);
}

/// Removes `route` from its destination; kills and unlinks the destination if it was the
/// last route.
pub(crate) fn remove_route(t: &TableInner, route: &RoutePtr) -> Result<ChangeFlags> {
    let g = epoch::pin();
    let (flags, dead) = detach(route, &g)?;
    t.route_count.add(-1);
    let dest = route.dest();
    let drain = if dead {
        t.unlink(dest, &g);
        false
    } else {
        t.queue_unplaced(dest, dest.list(&g), &g)
    };
    drop(g);
    if drain {
        t.place_unplaced(Vec::new());
    }
    Ok(flags)
}

/// Removes `route` from its destination's snapshot; `true` if that killed the destination,
/// which the caller must then unlink (`TableInner::unlink` or `unlink_batch`). The caller
/// counts the route out (a batch once for all its items, as for `linked`).
pub(crate) fn detach(route: &RoutePtr, g: &epoch::Guard) -> Result<(ChangeFlags, bool)> {
    let dest = route.dest();
    let (old, new, (views, _tomb)) = dest.modify(g, |cur| {
        let i = cur.position(route).ok_or(Error::NotFound)?;
        let gen = cur.gen + 1;
        let e = &cur.entries[i];
        // Before the CAS that removes the route (which releases it to readers); see the
        // route module docs, "Deletion". Mutant `late_tombstone` writes it after the CAS.
        #[cfg(not(rtm_mutant = "late_tombstone"))]
        let tomb = {
            route.bury(gen, e.info(), g);
            gen
        };
        // The mutant's late burial needs the contents after the CAS.
        #[cfg(rtm_mutant = "late_tombstone")]
        let tomb = (gen, e.info().clone());
        let (list, delta) = cur.without(i);
        Ok((list, delta, (e.views(), tomb)))
    })?;
    #[cfg(rtm_mutant = "late_tombstone")]
    route.bury(_tomb.0, &_tomb.1, g);
    let best = best_changed(old, new, route, views);
    Ok((ChangeFlags { new: false, best }, new.is_dead()))
}

impl TableInner {
    /// Withdraws every route `entity` owns (deregistration).
    pub(crate) fn withdraw_all(&self, entity: &Arc<Entity>) {
        let mut victims = Vec::new();
        {
            let g = epoch::pin();
            let mut killed: Vec<NetAddress> = Vec::new();
            let mut gone = 0isize;
            let trie = &self.trie;
            self.trie.for_each(&g, &mut |p, cell| {
                let l = Leaf::new(trie, cell, p);
                self.withdraw_from(&l, entity, &mut victims, &mut killed, &mut gone, &g);
            });
            self.route_count.add(-gone);
            self.unlink_leaves(killed, &g);
        }
        // Batched: the destinations this kills are unlinked with one copy per trie node.
        for chunk in victims.chunks(crate::bulk::MAX_ROUTES_IN_BATCH) {
            crate::bulk::remove_routes(self, chunk);
        }
    }

    /// [`withdraw_all`](Self::withdraw_all) on one leaf: `entity`'s lone routes are
    /// withdrawn (a leaf left dead is listed in `killed`), its routes on a destination
    /// listed in `victims`.
    fn withdraw_from<'g>(
        &self,
        l: &Leaf<'g>,
        entity: &Arc<Entity>,
        victims: &mut Vec<RoutePtr>,
        killed: &mut Vec<NetAddress>,
        gone: &mut isize,
        g: &'g epoch::Guard,
    ) {
        loop {
            match l.state(g) {
                State::Lone(w, set) => {
                    let rest: Vec<&RouteInfo> = set.iter().filter(|v| !owned_by(v, entity)).collect();
                    if rest.len() == set.len() {
                        break;
                    }
                    if l.swap_lone(w, &rest, g) {
                        *gone += (set.len() - rest.len()) as isize;
                        if rest.is_empty() {
                            killed.push(l.prefix);
                        }
                        break;
                    }
                    // Changed meanwhile (re-announced, or promoted): again.
                }
                State::Dest(d) => {
                    for e in d.list(g).entries.iter() {
                        if entity.owns(e) {
                            victims.push(RoutePtr::clone(&e.route));
                        }
                    }
                    break;
                }
                _ => break,
            }
        }
    }
}
