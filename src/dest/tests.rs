//! Unit tests of destinations and their snapshots.

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
    let of_b = list.entries.iter().find(|e| !a.entity.owns(e)).unwrap();
    let forged = Entry::with_owner(a.entity.serial, &of_b.route, of_b.info());
    assert!(!a.entity.owns(&forged));
}

/// An add takes the one entry tagged with its registration's number for its own route
/// before checking the route's identity (`EntityRef::upsert`): when the identity says
/// otherwise (another registration with the same number, after 2^32 registrations), the
/// add must insert a route of its own and leave the other's alone, in every matching mode.
#[test]
fn a_tag_match_of_another_registration_is_not_replaced() {
    use crate::entity::{Entity, EntityRef};
    use crate::{AddMode, AddressFamily, EntityId, RouteParams, Rtm};
    for mode in [AddMode::Normal, AddMode::First] {
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        // A registration whose number collides with `a`'s (not in the registry: it only
        // needs to own a route).
        let mut twin = Entity::new(EntityId::new(2, 1));
        twin.serial = a.entity.serial;
        let twin = EntityRef { entity: Arc::new(twin), table: a.table.clone() };
        let p = "10.0.0.0/8".parse().unwrap();
        let (rt, _) = twin.add_route(&p, RouteParams::new(7, 3)).unwrap();
        let (ra, flags) = a.add_route_with(&p, RouteParams::new(5, 1), mode).unwrap();
        assert!(flags.new, "{mode:?}: a's add creates a route");
        assert!(!RoutePtr::ptr_eq(&ra.route, &rt.route), "{mode:?}");
        let infos = rt.dest().route_infos();
        assert_eq!(infos.len(), 2, "{mode:?}: both routes are on the destination");
        let of = |r: &RouteRef| {
            infos.iter().find(|(x, _)| RoutePtr::ptr_eq(&x.route, &r.route)).map(|(_, v)| v.preference())
        };
        assert_eq!(of(&rt), Some(7), "{mode:?}: the twin's route keeps its contents");
        assert_eq!(of(&ra), Some(5), "{mode:?}");
        // And a re-announcement by `a` now finds its own route among two tagged entries.
        let (again, flags) = a.add_route_with(&p, RouteParams::new(4, 1), mode).unwrap();
        assert!(!flags.new && RoutePtr::ptr_eq(&again.route, &ra.route), "{mode:?}");
        assert_eq!(rt.dest().route_infos().len(), 2, "{mode:?}");
    }
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
/// (`TableInner::place_unplaced`), the routes unchanged, their two entries inline in the
/// slot. Destinations that died are let go; one written route by route meanwhile was
/// queued by that write too.
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
    drop(hold);
    crate::drain_deferred_garbage();
    a.add_routes(&[("192.0.2.0/24".parse().unwrap(), RouteParams::new(1, 1))]).unwrap();
    let g = epoch::pin();
    for n in &names[2..] {
        let d = crate::leaf::dest_of(t.inner.trie.get(&n.parse().unwrap(), &g).unwrap(), &g);
        let at = d.list(&g).entries.as_ptr() as usize - core::ptr::from_ref(d) as usize;
        assert!(at < Dest::BYTES, "two routes' entries are inline: placed with the snapshot");
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

/// A snapshot of more than two routes keeps its entries in a block, which placing the
/// snapshot takes over rather than copies.
#[test]
fn placing_a_snapshot_moves_its_entry_block_along() {
    let _serial = crate::sync::reclaim_lock();
    use crate::{AddressFamily, EntityId, RouteParams, Rtm, ViewSet};
    let rtm = Rtm::new();
    let e: Vec<_> =
        (1..=3).map(|i| rtm.register(AddressFamily::Ipv4, EntityId::new(i, 1)).unwrap()).collect();
    let t = rtm.table(AddressFamily::Ipv4);
    let names: Vec<String> = (0..8).map(|i| format!("10.{i}.0.0/16")).collect();
    let items = |pref: u32| -> Vec<(NetAddress, RouteParams)> {
        names.iter().map(|n| (n.parse().unwrap(), RouteParams::new(pref, 1))).collect()
    };
    e[0].add_routes(&items(20)).unwrap();
    e[1].add_routes(&items(30)).unwrap();
    crate::drain_deferred_garbage();
    e[0].add_routes(&[("192.0.2.0/24".parse().unwrap(), RouteParams::new(1, 1))]).unwrap();
    assert!(names.iter().all(|n| placed(t, n) == Some(true)));
    // Pinned, so the slots stay busy: the three-route snapshots go to blocks.
    let hold = epoch::pin();
    e[2].add_routes(&items(10)).unwrap();
    assert!(names.iter().all(|n| placed(t, n) == Some(false)), "the slots were busy");
    fn entries_at(t: &crate::Table, n: &str, g: &epoch::Guard) -> *const Entry {
        let d = crate::leaf::dest_of(t.inner.trie.get(&n.parse().unwrap(), g).unwrap(), g);
        d.list(g).entries.as_ptr()
    }
    let blocks: Vec<*const Entry> = names.iter().map(|n| entries_at(t, n, &hold)).collect();
    drop(hold);
    crate::drain_deferred_garbage();
    e[0].add_routes(&[("192.0.2.0/24".parse().unwrap(), RouteParams::new(2, 1))]).unwrap();
    assert!(names.iter().all(|n| placed(t, n) == Some(true)), "moved into the slots");
    let g = epoch::pin();
    for (n, &b) in names.iter().zip(&blocks) {
        assert_eq!(entries_at(t, n, &g), b, "placing moves the entry block along, not a copy");
    }
    drop(g);
    for n in &names {
        let d = t.get(&n.parse().unwrap(), ViewSet::ANY).unwrap();
        let prefs: Vec<u32> = d.route_infos().iter().map(|(_, i)| i.preference()).collect();
        assert_eq!(prefs, [10, 20, 30], "all three routes, best first");
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
        assert_eq!(list.entries.copied_views(), first.views());
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
