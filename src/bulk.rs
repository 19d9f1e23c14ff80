//! Batched route adds: [`EntityRef::add_routes`] and, without handles,
//! [`EntityRef::insert_routes`], for feeds that deliver many prefixes at once (a table
//! dump, a BGP UPDATE with many NLRI, a peer coming back).
//!
//! # Design
//! The result is the same as calling [`add_route`](EntityRef::add_route) for each item in
//! order; only the trie work is shared. Items whose prefix has no leaf yet get a leaf
//! built up front (holding a destination with the item's route, or, without handles, the
//! route itself as a lone route, `leaf.rs`), and all of those are linked by
//! one [`insert_batch`](crate::trie::Trie::insert_batch), which copies each trie node they
//! touch at most once (and builds missing subtrees off-line) instead of once per prefix.
//! Every other item — a prefix that already has a destination, a later item for a prefix
//! seen earlier in the batch, a prefix another writer linked first — then goes through the
//! ordinary `add_route` path, in batch order. Readers see each destination appear whole,
//! as with single adds; they may see some of the batch's destinations before others.
//!
//! Consecutive items with equal parameters share one [`RouteInfo`](crate::route::RouteInfo) (routes hold no
//! per-route data in it): a feed's runs of prefixes with the same attributes, like a BGP
//! UPDATE's NLRI, cost one version object per run, not one per route.

use crate::dest::{Dest, DestPtr};
use crate::entity::EntityRef;
use crate::error::{Error, Result};
use crate::group::word_of;
use crate::identity::RoutePtr;
use crate::leaf::{dest_in, dest_word, free_word, Leaf, State};
use crate::lone::Upsert;
use crate::prefix::NetAddress;
use crate::route::{AddMode, ChangeFlags, RouteParams, RouteRef, Version};
use crate::sync::epoch;
#[cfg(not(loom))]
use crate::sync::prefetch;
use crate::table::TableInner;
use crate::trie::BATCH;
use crate::update::{detach, discard};

/// Most items one [`EntityRef::add_routes`] call takes (`RTM_MAX_ROUTES_IN_BATCH` in
/// spirit: a bound on the work and memory of one call).
pub const MAX_ROUTES_IN_BATCH: usize = 1 << 20;

impl EntityRef {
    /// Adds many routes, with the semantics of calling
    /// [`add_route`](Self::add_route) for each item in order, and one result per item.
    /// New destinations are linked with shared trie work (see the module docs): loading a
    /// table in batches of a few thousand routes is several times faster than route by
    /// route.
    ///
    /// # Errors
    /// Per item, as [`add_route`](Self::add_route). The whole call fails with
    /// [`Error::InvalidParameter`] (nothing added) if `routes` has more than
    /// [`MAX_ROUTES_IN_BATCH`] items, and with [`Error::InvalidHandle`] after
    /// deregistration.
    pub fn add_routes(
        &self,
        routes: &[(NetAddress, RouteParams)],
    ) -> Result<Vec<Result<(RouteRef, ChangeFlags)>>> {
        Ok(self
            .write_batch(routes, true)?
            .into_iter()
            .map(|r| r.map(|(h, f)| (h.unwrap_or_else(|| unreachable!("a handle was asked for")), f)))
            .collect())
    }

    /// Adds many routes without handles, with the semantics of calling
    /// [`insert_route`](Self::insert_route) for each item in order, and one result per
    /// item; as fast as [`add_routes`](Self::add_routes), and the prefixes that get only
    /// this entity's route stay lone routes (no destination object, see `insert_route`).
    ///
    /// # Errors
    /// As [`add_routes`](Self::add_routes).
    pub fn insert_routes(&self, routes: &[(NetAddress, RouteParams)]) -> Result<Vec<Result<ChangeFlags>>> {
        Ok(self.write_batch(routes, false)?.into_iter().map(|r| r.map(|(_, f)| f)).collect())
    }

    /// [`add_routes`](Self::add_routes) (`handles`) or [`insert_routes`](Self::insert_routes).
    fn write_batch(&self, routes: &[(NetAddress, RouteParams)], handles: bool) -> Result<Vec<Result<Added>>> {
        if routes.len() > MAX_ROUTES_IN_BATCH {
            return Err(Error::InvalidParameter);
        }
        self.check()?;
        let t = &*self.table;
        // Validate, and make the versions: consecutive items with equal parameters share one
        // (the last valid item is remembered by index: no count taken per item for it).
        let mut infos: Vec<Result<Version>> = Vec::with_capacity(routes.len());
        let mut last: Option<usize> = None;
        for (i, (prefix, p)) in routes.iter().enumerate() {
            let info = self.validate(Some(prefix), p).map(|()| match last {
                Some(j) if routes[j].1 == *p => match &infos[j] {
                    Ok(info) => info.clone(),
                    Err(_) => unreachable!("`last` is a valid item"),
                },
                _ => self.entity.version(p),
            });
            if info.is_ok() {
                last = Some(i);
            }
            infos.push(info);
        }
        let mut out: Vec<Option<Result<Added>>> =
            infos.iter().map(|r| r.as_ref().err().map(|&e| Err(e))).collect();
        // Sized up front here and below: a filtered `collect` grows by doubling, and its
        // reallocations cost a 64-route call about a tenth of its instructions (callgrind).
        let mut valid: Vec<usize> = Vec::with_capacity(routes.len());
        valid.extend((0..routes.len()).filter(|&i| infos[i].is_ok()));
        // Only called for valid items.
        let info = |i: usize| infos[i].as_ref().unwrap_or_else(|_| unreachable!("a valid item"));
        // The single path, for the items the batch does not settle.
        let single = |i: usize| -> Added {
            if handles {
                let (r, f) = self.add_info(&routes[i].0, info(i), AddMode::Normal);
                (Some(r), f)
            } else {
                (None, self.insert_info(&routes[i].0, info(i), AddMode::Normal))
            }
        };
        // Destinations written whose snapshot could not be placed (their slot still held
        // the one replaced: an update of a placed snapshot always finds it busy), another
        // route or a re-announcement alike: `place_unplaced` moves them in later. Left in
        // blocks, a churned table's lookups read two lines per destination instead of one
        // (14 % slower in `rtm bench` after its churn; BENCHMARKS.md, session 20).
        let mut unplaced = Vec::new();
        // Prefixes linked and routes created on found ones (counted in once, below).
        let (mut n_dests, mut n_routes) = (0usize, 0usize);
        let g = epoch::pin();
        // The snapshots and trie nodes this retires go to the collector together.
        crate::sync::batched(&g, || {
            // 1. Find the leaves of all valid items (lock-step walks).
            let mut found: Vec<Option<Leaf<'_>>> = vec![None; routes.len()];
            for w in valid.chunks(BATCH) {
                let keys: Vec<NetAddress> = w.iter().map(|&i| routes[i].0).collect();
                let mut got = [None; BATCH];
                t.trie.get_batch(&keys, &g, &mut got);
                for (&i, d) in w.iter().zip(got) {
                    found[i] = d.map(|c| Leaf::new(&t.trie, c, routes[i].0));
                }
            }
            // 2. Link a new leaf for the first item of each prefix without one: a
            // destination holding the item's route where a handle is asked for, the lone
            // route otherwise.
            let mut fresh: Vec<usize> = Vec::with_capacity(valid.len());
            fresh.extend(valid.iter().copied().filter(|&i| found[i].is_none()));
            fresh.sort_unstable_by_key(|&i| (*routes[i].0.bytes(), routes[i].0.len(), i));
            fresh.dedup_by_key(|i| routes[*i].0);
            let made: Vec<Made> = fresh
                .iter()
                .map(|&i| {
                    if handles {
                        let (dest, route) = self.new_dest(&routes[i].0, info(i), &g);
                        let keep = dest.clone();
                        (dest_word(dest), Some((keep, route)))
                    } else {
                        (word_of(&[info(i)]), None)
                    }
                })
                .collect();
            let items: Vec<_> = fresh.iter().zip(&made).map(|(&i, (w, _))| (routes[i].0, *w)).collect();
            let mut linked = vec![None; items.len()];
            t.trie.insert_batch(&items, &g, &mut linked);
            for ((&i, (word, dest)), r) in fresh.iter().zip(made).zip(linked) {
                match r {
                    Some(Ok(())) => {
                        n_dests += 1;
                        let flags = ChangeFlags { new: true, best: true };
                        out[i] = Some(Ok((dest.map(|(_, route)| RouteRef { route }), flags)));
                    }
                    // Another writer linked the prefix first: the item goes the usual way.
                    _ => {
                        // SAFETY: never stored, so ours alone.
                        unsafe { free_word(word) };
                        if let Some((keep, _)) = dest {
                            discard(keep, &g);
                        }
                    }
                }
            }
            // 3. Items on leaves found in step 1, a window at a time: prefetch the
            // destination and snapshot of each, then the route and info lines its entries
            // point to, then do the upserts on warm lines (the misses of a window overlap).
            let mut on_found: Vec<usize> = Vec::with_capacity(valid.len());
            on_found.extend(valid.iter().copied().filter(|&i| found[i].is_some()));
            // Most of them, when the slots are busy (a feed's routes on a loaded table): one
            // allocation, not a reallocation per doubling (~70 instructions per route).
            unplaced.reserve(on_found.len());
            let mut lists = Vec::with_capacity(BATCH);
            for w in on_found.chunks(BATCH) {
                lists.clear();
                let dests =
                    || w.iter().filter_map(|&i| found[i].as_ref()).filter_map(|l| dest_in(l.cell(), &g));
                dests().for_each(|d| d.prefetch());
                lists.extend(dests().map(|d| d.list(&g)));
                lists.iter().for_each(|l| l.prefetch());
                lists.iter().for_each(|l| l.prefetch_entry_block());
                lists.iter().for_each(|l| l.prefetch_entries(self.entity.serial));
                for &i in w {
                    let Some(leaf) = found[i].as_ref() else { continue };
                    if !handles {
                        if let State::Lone(word, set) = leaf.state(&g) {
                            match self.upsert_lone(leaf, word, set, info(i), AddMode::Normal, &g) {
                                Upsert::Done(f) => {
                                    n_routes += usize::from(f.new);
                                    out[i] = Some(Ok((None, f)));
                                    continue;
                                }
                                // Changed meanwhile: the single path (step 4).
                                Upsert::Retry => continue,
                                Upsert::Promote => {}
                            }
                        }
                    }
                    // Dead (step 4 then handles it), or promoted for the new route.
                    let Some(dest) = leaf.promote(t, &g) else { continue };
                    let mut spare = None;
                    if let Some((r, f)) = self.upsert(&g, dest, info(i), AddMode::Normal, &mut spare) {
                        n_routes += usize::from(f.new);
                        let list = dest.list(&g);
                        if !dest.is_placed(list) {
                            unplaced.extend(dest.try_ref().map(|d| (d, list.gen)));
                        }
                        out[i] = Some(Ok((handles.then_some(r), f)));
                    }
                    // The destination died since step 1: step 4 handles it.
                }
            }
        });
        drop(g);
        t.dest_count.add(n_dests as isize);
        t.route_count.add((n_dests + n_routes) as isize);
        // One pin did the work of many single adds and retired as much garbage (node
        // copies); collection runs on pins, so help it keep up.
        crate::sync::pace_reclamation(routes.len());
        t.place_unplaced(unplaced);
        if handles {
            self.withdraw_if_deregistered(
                out.iter()
                    .flatten()
                    .filter_map(|r| r.as_ref().ok())
                    .filter_map(|(r, _)| r.as_ref())
                    .map(|r| &r.route),
            );
        } else {
            self.withdraw_lone_if_deregistered(
                (0..routes.len())
                    .filter(|&i| matches!(out[i], Some(Ok(_))))
                    .map(|i| (&routes[i].0, &info(i).neighbour)),
            );
        }
        // 4. The rest (later items of a prefix first seen in this batch, lost races).
        for (i, o) in out.iter_mut().enumerate() {
            if o.is_none() {
                *o = Some(self.check().map(|()| single(i)));
            }
        }
        Ok(out.into_iter().map(|r| r.unwrap_or(Err(Error::InvalidParameter))).collect())
    }
}

/// One item's result: the route's handle (when asked for) and the change flags.
type Added = (Option<RouteRef>, ChangeFlags);

/// The word of a new leaf of a batch, and (when handles are asked for) a second reference
/// to the destination in it (to discard it if the prefix is not stored) and the route's
/// handle.
type Made = (usize, Option<(DestPtr, RoutePtr)>);

impl EntityRef {
    /// Deletes many of this entity's routes, with the semantics of calling
    /// [`delete_route`](Self::delete_route) for each in order and one result per item.
    /// Destinations this empties are unlinked together at the end, with one trie copy per
    /// node (until then they read as deleted and lookups pass over them).
    ///
    /// # Errors
    /// Per item, as [`delete_route`](Self::delete_route). The whole call fails with
    /// [`Error::InvalidParameter`] (nothing deleted) over [`MAX_ROUTES_IN_BATCH`] items,
    /// and with [`Error::InvalidHandle`] after deregistration.
    pub fn delete_routes(&self, routes: &[RouteRef]) -> Result<Vec<Result<ChangeFlags>>> {
        if routes.len() > MAX_ROUTES_IN_BATCH {
            return Err(Error::InvalidParameter);
        }
        self.check()?;
        // Another entity's route is skipped (`AccessDenied`).
        Ok(remove_some(&self.table, routes, |r| r.is_owned_by(&self.entity).then_some(&r.route)))
    }
}

/// Removes `routes` (deregistration's withdraw-all), unlinking emptied destinations in one
/// batch.
pub(crate) fn remove_routes(t: &TableInner, routes: &[RoutePtr]) {
    let _ = remove_some(t, routes, Some);
}

/// Detaches the route `route(item)` of each item from its destination, then unlinks the
/// destinations that died, together. An item without one is skipped (`AccessDenied` in
/// the result). No per-item vector is built: on a fragmented heap every large temporary
/// allocation costs a consolidation of the allocator's bins.
///
/// A window of items at a time: prefetch the route identities, then (reading them) their
/// destinations' lines, then (reading those) each current snapshot, then detach on
/// warm lines. Each item is a chain of dependent misses (route -> destination ->
/// snapshot); the window overlaps the chains of its items, which matters most when the
/// destinations are scattered in memory (a long-running table, or routes deleted in an
/// order unrelated to their allocation).
fn remove_some<'r, T>(
    t: &TableInner,
    items: &'r [T],
    route: impl Fn(&'r T) -> Option<&'r RoutePtr>,
) -> Vec<Result<ChangeFlags>> {
    let g = epoch::pin();
    // The snapshots, trie nodes and links this retires go to the collector together.
    let (res, unplaced) = crate::sync::batched(&g, || remove_some_pinned(t, items, route, &g));
    drop(g);
    crate::sync::pace_reclamation(items.len());
    t.place_unplaced(unplaced);
    res
}

/// [`remove_some`] under its pin.
pub(crate) fn remove_some_pinned<'r, T>(
    t: &TableInner,
    items: &'r [T],
    route: impl Fn(&'r T) -> Option<&'r RoutePtr>,
    g: &epoch::Guard,
) -> (Vec<Result<ChangeFlags>>, Vec<(DestPtr, u64)>) {
    let mut dead: Vec<&Dest> = Vec::with_capacity(items.len());
    // Surviving destinations whose snapshot went to a block (`TableInner::place_unplaced`).
    let mut unplaced = Vec::with_capacity(items.len());
    let mut res = Vec::with_capacity(items.len());
    // Routes detached (counted out once, below).
    let mut gone = 0isize;
    for w in items.chunks(BATCH) {
        // Hints only (nothing read here is used): left out of loom builds, where the
        // snapshot loads would only add interleavings to explore.
        #[cfg(not(loom))]
        {
            w.iter().filter_map(&route).for_each(|r| prefetch(r.addr()));
            w.iter().filter_map(&route).for_each(|r| r.dest().prefetch_for_write());
            w.iter().filter_map(&route).for_each(|r| r.dest().list(g).prefetch());
        }
        res.extend(w.iter().map(|item| {
            let r = route(item).ok_or(Error::AccessDenied)?;
            let (flags, died) = detach(r, g)?;
            gone += 1;
            let dest = r.dest();
            if died {
                dead.push(dest);
            } else {
                let list = dest.list(g);
                if !dest.is_placed(list) {
                    unplaced.extend(dest.try_ref().map(|d| (d, list.gen)));
                }
            }
            Ok(flags)
        }));
    }
    t.route_count.add(-gone);
    t.unlink_batch(&dead, g);
    (res, unplaced)
}
