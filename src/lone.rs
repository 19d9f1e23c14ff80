//! Writes without handles: RTMv2's `RtmAddRouteToDest` with a NULL `RouteHandle` (mode
//! (c): find-or-create by identity, no handle returned), and its withdrawal by identity.
//!
//! A routing protocol fed by a peer (BGP) names its routes by (prefix, neighbour), not by
//! handle: it announces and withdraws. Without a handle to hand out, the routes of a
//! prefix stay *lone routes* in its leaf (`leaf.rs`: 32 bytes, no destination object, no
//! route identities; several owners' routes in a group block, `group.rs`), and each
//! announcement, re-announcement and withdrawal is one CAS of the leaf's word. Everything
//! else goes through the destination object, as `add_route` and `delete_route` do: a
//! second route of one owner on the prefix promotes the leaf (`Leaf::promote`), and the
//! handle those paths make is dropped at once.
//!
//! # Deregistration
//! As for `add_route` (`entity.rs`): after publishing, the writer issues a SeqCst fence
//! and re-reads the registered flag; if it was cleared, the writer withdraws what it
//! published (by identity), since the deregistration's scan may have passed it.

use crate::entity::EntityRef;
use crate::error::{Error, Result};
use crate::group::word_of;
use crate::group::{best_changed, Lone};
use crate::identity::RoutePtr;
use crate::leaf::{Leaf, State};
use crate::prefix::NetAddress;
use crate::route::{AddMode, ChangeFlags, NextHop, RouteInfo, RouteParams, Version};
use crate::sync::{epoch, fence, Ordering};
use crate::update::remove_route;

/// What one attempt of a handle-less add did to a leaf's lone routes.
pub(crate) enum Upsert {
    /// Done, with the flags.
    Done(ChangeFlags),
    /// The word changed meanwhile: again.
    Retry,
    /// The change needs a destination object: promote the leaf and write there.
    Promote,
}

/// What one attempt of a handle-less withdrawal did.
enum Step<'g> {
    /// A lone route withdrawn (the caller counts it out), and the leaf if that killed it
    /// (the caller unlinks it).
    Gone(ChangeFlags, Option<Leaf<'g>>),
    /// The route is on a destination object: remove this route (unpinned: the removal may
    /// drain the placement list).
    Remove(RoutePtr),
    /// Nothing to do (`NotFound`).
    Missing,
    /// The leaf changed under us: again.
    Retry,
}

impl EntityRef {
    /// Adds a route to `prefix`, or updates this entity's route there with the same
    /// neighbour, without returning a handle (`RtmAddRouteToDest` with a NULL
    /// `RouteHandle`). The result says whether a route was created and whether a best
    /// route changed.
    ///
    /// A prefix whose only route is this one takes no destination object until somebody
    /// asks for a handle on it (module docs): a table loaded this way takes much less
    /// memory than one loaded with [`add_route`](Self::add_route).
    ///
    /// # Errors
    /// As [`add_route`](Self::add_route).
    pub fn insert_route(&self, prefix: &NetAddress, params: RouteParams) -> Result<ChangeFlags> {
        self.insert_route_with(prefix, params, AddMode::Normal)
    }

    /// [`insert_route`](Self::insert_route) with an explicit matching mode ([`AddMode`]).
    ///
    /// # Errors
    /// As [`add_route`](Self::add_route).
    pub fn insert_route_with(
        &self,
        prefix: &NetAddress,
        params: RouteParams,
        mode: AddMode,
    ) -> Result<ChangeFlags> {
        self.validate(Some(prefix), &params)?;
        let info = self.entity.version(&params);
        let flags = self.insert_info(prefix, &info, mode);
        self.withdraw_lone_if_deregistered(core::iter::once((prefix, &info.neighbour)));
        Ok(flags)
    }

    /// Withdraws this entity's route to `prefix` with neighbour `neighbour` (the route's
    /// identity, as `add_route` matches it; the oldest if several match), without a handle.
    /// Handles other threads hold on the route read it as deleted, as after
    /// [`delete_route`](Self::delete_route).
    ///
    /// # Errors
    /// [`Error::InvalidHandle`] after deregistration; [`Error::InvalidParameter`] for a
    /// prefix of the other family; [`Error::NotFound`] if the entity has no such route.
    pub fn withdraw_route(&self, prefix: &NetAddress, neighbour: Option<NextHop>) -> Result<ChangeFlags> {
        self.check()?;
        if prefix.family() != self.table.family {
            return Err(Error::InvalidParameter);
        }
        self.withdraw_at(prefix, &neighbour)
    }

    /// Find-or-create of a validated version, without a handle.
    pub(crate) fn insert_info(&self, prefix: &NetAddress, info: &Version, mode: AddMode) -> ChangeFlags {
        let t = &*self.table;
        let g = epoch::pin();
        let mut drain = false;
        let flags = loop {
            let Some(leaf) = Leaf::get(&t.trie, prefix, &g) else {
                let w = word_of(&[info]);
                match t.trie.insert(prefix, w, &g) {
                    Ok(()) => {
                        t.dest_count.add(1);
                        t.route_count.add(1);
                        break ChangeFlags { new: true, best: true };
                    }
                    Err(_) => {
                        // SAFETY: never stored, so ours alone.
                        unsafe { Lone::free_word(w) };
                        continue;
                    }
                }
            };
            let lone = match leaf.state(&g) {
                State::Dead => {
                    t.unlink_leaf(&leaf, &g);
                    Upsert::Retry
                }
                State::Lone(w, set) => self.upsert_lone(&leaf, w, set, info, mode, &g),
                State::Dest(_) => Upsert::Promote,
            };
            match lone {
                Upsert::Done(flags) => {
                    if flags.new {
                        t.route_count.add(1);
                    }
                    break flags;
                }
                Upsert::Retry => {}
                Upsert::Promote => {
                    let Some(dest) = leaf.promote(t, &g) else { continue };
                    if let Some((_, flags)) = self.upsert_counted(&g, dest, info, mode, &mut None, &mut drain)
                    {
                        break flags;
                    }
                }
            }
            crate::sync::spin_hint();
        };
        drop(g);
        if drain {
            t.place_unplaced(Vec::new());
        }
        flags
    }

    /// One attempt of a handle-less add of `info` (mode `mode`) to the lone routes `set` of
    /// `leaf` (its word `w`): one CAS of the word, or `Promote` where the change needs a
    /// destination object (a second route of ours, see `group.rs`). The caller counts a
    /// created route in.
    pub(crate) fn upsert_lone(
        &self,
        leaf: &Leaf,
        w: usize,
        set: Lone<'_>,
        info: &Version,
        mode: AddMode,
        g: &epoch::Guard,
    ) -> Upsert {
        // Lone routes have one route per owner at most (`group.rs`): a second route of
        // ours needs a destination object.
        let Ok(mine) = set.find(&self.entity, None) else { return Upsert::Promote };
        let found = match (mode, mine) {
            (AddMode::Normal, Some(i)) if set.get(i).neighbour == info.neighbour => Some(i),
            (AddMode::First, Some(i)) => Some(i),
            (_, Some(_)) => return Upsert::Promote,
            (_, None) => None,
        };
        // An owner's re-announcement of a prefix's only route (the usual write) builds its
        // one-route list on the stack.
        let (one, many);
        let new: &[&RouteInfo] = if set.len() == 1 && found == Some(0) {
            one = [&**info];
            &one
        } else {
            many = crate::group::with(set, found, info);
            &many
        };
        let me_old = found.map(|i| set.get(i));
        let flags = ChangeFlags { new: found.is_none(), best: best_changed(set, new, me_old, Some(info)) };
        // The same version again (interned: the same object) changes nothing.
        if me_old.is_some_and(|v| core::ptr::eq(v, &**info)) || leaf.swap_lone(w, new, g) {
            Upsert::Done(flags)
        } else {
            Upsert::Retry
        }
    }

    /// Withdraws the route (`prefix`, this entity, `neighbour`), registered or not.
    pub(crate) fn withdraw_at(
        &self,
        prefix: &NetAddress,
        neighbour: &Option<NextHop>,
    ) -> Result<ChangeFlags> {
        let t = &*self.table;
        loop {
            let remove = {
                let g = epoch::pin();
                match self.withdraw_step(prefix, neighbour, &g) {
                    Step::Gone(flags, killed) => {
                        t.route_count.add(-1);
                        if let Some(leaf) = killed {
                            t.unlink_leaf(&leaf, &g);
                        }
                        return Ok(flags);
                    }
                    Step::Missing => return Err(Error::NotFound),
                    Step::Remove(r) => Some(r),
                    Step::Retry => None,
                }
            };
            // Unpinned: the removal may drain the placement list. Deleted by another thread
            // meanwhile: look again.
            if let Some(r) = remove {
                match remove_route(t, &r) {
                    Err(Error::NotFound) => {}
                    res => return res,
                }
            }
            crate::sync::spin_hint();
        }
    }

    /// Withdraws many of this entity's routes by identity, with the semantics of calling
    /// [`withdraw_route`](Self::withdraw_route) for each item in order, and one result per
    /// item. Lone routes' leaves and emptied destinations are unlinked together, with one
    /// trie copy per node.
    ///
    /// # Errors
    /// Per item, as [`withdraw_route`](Self::withdraw_route). The whole call fails with
    /// [`Error::InvalidParameter`] (nothing withdrawn) over
    /// [`MAX_ROUTES_IN_BATCH`](crate::MAX_ROUTES_IN_BATCH) items, and with
    /// [`Error::InvalidHandle`] after deregistration.
    pub fn withdraw_routes(
        &self,
        items: &[(NetAddress, Option<NextHop>)],
    ) -> Result<Vec<Result<ChangeFlags>>> {
        if items.len() > crate::MAX_ROUTES_IN_BATCH {
            return Err(Error::InvalidParameter);
        }
        self.check()?;
        let t = &*self.table;
        let mut out: Vec<Option<Result<ChangeFlags>>> = vec![None; items.len()];
        let g = epoch::pin();
        // The leaves, snapshots and trie nodes this retires go to the collector together.
        let unplaced = crate::sync::batched(&g, || {
            let mut killed: Vec<NetAddress> = Vec::new();
            let mut gone = 0isize;
            // Routes on destination objects, removed together below (with their items).
            let (mut routes, mut at): (Vec<RoutePtr>, Vec<usize>) = (Vec::new(), Vec::new());
            for (i, (prefix, neighbour)) in items.iter().enumerate() {
                if prefix.family() != t.family {
                    out[i] = Some(Err(Error::InvalidParameter));
                    continue;
                }
                out[i] = loop {
                    match self.withdraw_step(prefix, neighbour, &g) {
                        Step::Gone(flags, dead) => {
                            gone += 1;
                            killed.extend(dead.map(|l| l.prefix));
                            break Some(Ok(flags));
                        }
                        Step::Missing => break Some(Err(Error::NotFound)),
                        // A route an earlier item removes already: this item (another
                        // route of the same identity, after `AddMode::New`) goes singly,
                        // after the batch.
                        Step::Remove(r) if routes.iter().any(|x| RoutePtr::ptr_eq(x, &r)) => break None,
                        Step::Remove(r) => {
                            routes.push(r);
                            at.push(i);
                            break None;
                        }
                        Step::Retry => crate::sync::spin_hint(),
                    }
                };
            }
            t.route_count.add(-gone);
            t.unlink_leaves(killed, &g);
            let (res, unplaced) = crate::bulk::remove_some_pinned(t, &routes, Some, &g);
            for (&i, r) in at.iter().zip(res) {
                // Deleted by another thread meanwhile: the single path looks again.
                out[i] = Some(r).filter(|r| *r != Err(Error::NotFound));
            }
            unplaced
        });
        drop(g);
        crate::sync::pace_reclamation(items.len());
        t.place_unplaced(unplaced);
        Ok(items
            .iter()
            .zip(out)
            .map(|((prefix, neighbour), r)| r.unwrap_or_else(|| self.withdraw_at(prefix, neighbour)))
            .collect())
    }

    /// One attempt at withdrawing (`prefix`, this entity, `neighbour`).
    fn withdraw_step<'g>(
        &'g self,
        prefix: &NetAddress,
        neighbour: &Option<NextHop>,
        g: &'g epoch::Guard,
    ) -> Step<'g> {
        let t = &*self.table;
        let Some(leaf) = Leaf::get(&t.trie, prefix, g) else { return Step::Missing };
        match leaf.state(g) {
            State::Dead => {
                t.unlink_leaf(&leaf, g);
                Step::Retry
            }
            State::Lone(w, set) => {
                let Ok(Some(i)) = set.find(&self.entity, Some(neighbour)) else { return Step::Missing };
                let rest = crate::group::without(set, i);
                let flags =
                    ChangeFlags { new: false, best: best_changed(set, &rest, Some(set.get(i)), None) };
                if !leaf.swap_lone(w, &rest, g) {
                    return Step::Retry;
                }
                Step::Gone(flags, rest.is_empty().then_some(leaf))
            }
            State::Dest(d) => {
                let list = d.list(g);
                // The oldest match, as `add_route` matches.
                list.entries
                    .iter()
                    .filter(|e| self.entity.owns(e) && e.info().neighbour == *neighbour)
                    .min_by_key(|e| e.route.seq())
                    .map_or(Step::Missing, |e| Step::Remove(RoutePtr::clone(&e.route)))
            }
        }
    }

    /// After handle-less adds published routes: if the entity was deregistered meanwhile,
    /// its withdraw-all scan may have missed them, so withdraw them here (store-buffering
    /// with `deregister`, see entity.rs).
    pub(crate) fn withdraw_lone_if_deregistered<'a>(
        &self,
        routes: impl Iterator<Item = (&'a NetAddress, &'a Option<NextHop>)>,
    ) {
        fence(Ordering::SeqCst);
        if !self.entity.is_registered() {
            for (prefix, neighbour) in routes {
                while self.withdraw_at(prefix, neighbour).is_ok() {}
            }
        }
    }
}
