//! Lone routes (`src/leaf.rs`, `src/group.rs`, `src/lone.rs`): routes added without
//! handles stay in their prefix's leaf (one route per owner) until a handle, or a second
//! route of one owner, needs a destination object.

use rtm::*;

const V4: AddressFamily = AddressFamily::Ipv4;
const BGP: EntityId = EntityId::new(8, 1);
const OSPF: EntityId = EntityId::new(13, 1);

fn p(s: &str) -> NetAddress {
    s.parse().unwrap()
}

fn hop(i: u8) -> NextHop {
    NextHop::new(p(&format!("192.0.2.{i}")), u32::from(i))
}

fn route(pref: u32, i: u8) -> RouteParams {
    RouteParams::new(pref, 0).next_hop(hop(i))
}

/// Destinations with a destination object (`Table::memory`): 0 while all are lone routes.
fn objects(t: &Table) -> usize {
    t.memory().destination_objects
}

#[test]
fn a_lone_route_is_added_updated_looked_up_and_withdrawn_without_an_object() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    assert_eq!(e.insert_route(&a, route(20, 1)), Ok(ChangeFlags { new: true, best: true }));
    assert_eq!((t.len(), t.route_count(), objects(t)), (1, 1, 0));
    {
        let g = t.pin();
        let b = t.lookup(&p("10.1.2.3"), &g).unwrap();
        assert_eq!(b.prefix(), a);
        assert_eq!(b.next_hops(), &[hop(1)]);
        assert_eq!((b.route().owner(), b.route().preference()), (BGP, 20));
        assert!(t.lookup_in(&p("10.1.2.3"), ViewId::MULTICAST, &g).is_none(), "unicast only");
    }
    // The same identity: an update in place, still no object.
    assert_eq!(e.insert_route(&a, route(30, 2)), Ok(ChangeFlags { new: false, best: true }));
    assert_eq!((t.len(), t.route_count(), objects(t)), (1, 1, 0));
    assert_eq!(t.lookup(&p("10.1.2.3"), &t.pin()).unwrap().next_hops(), &[hop(2)]);
    // Another neighbour is another route: the leaf is promoted.
    let mut other = route(10, 3);
    other.neighbour = Some(hop(3));
    assert_eq!(e.insert_route(&a, other), Ok(ChangeFlags { new: true, best: true }));
    assert_eq!((t.len(), t.route_count(), objects(t)), (1, 2, 1));
    assert_eq!(t.lookup(&p("10.1.2.3"), &t.pin()).unwrap().next_hops(), &[hop(3)], "the better route");
    assert_eq!(e.withdraw_route(&a, Some(hop(3))), Ok(ChangeFlags { new: false, best: true }));
    assert_eq!(t.lookup(&p("10.1.2.3"), &t.pin()).unwrap().next_hops(), &[hop(2)]);
    assert_eq!(e.withdraw_route(&a, None), Ok(ChangeFlags { new: false, best: true }));
    assert!(t.is_empty() && t.route_count() == 0);
    assert!(t.lookup(&p("10.1.2.3"), &t.pin()).is_none());
    // A lone route withdrawn: the leaf goes.
    e.insert_route(&a, route(20, 1)).unwrap();
    assert_eq!(objects(t), 0);
    assert_eq!(e.withdraw_route(&a, None), Ok(ChangeFlags { new: false, best: true }));
    assert!(t.is_empty() && t.route_count() == 0);
    assert_eq!(t.memory().destinations, 0);
}

#[test]
fn withdraw_errors_change_nothing() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let f = rtm.register(V4, OSPF).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    e.insert_route(&a, route(20, 1)).unwrap();
    assert_eq!(e.withdraw_route(&p("11.0.0.0/8"), None), Err(Error::NotFound), "no such prefix");
    assert_eq!(e.withdraw_route(&a, Some(hop(1))), Err(Error::NotFound), "another neighbour");
    assert_eq!(f.withdraw_route(&a, None), Err(Error::NotFound), "another owner's route");
    assert_eq!(e.withdraw_route(&p("2001:db8::/32"), None), Err(Error::InvalidParameter));
    assert_eq!(e.insert_route(&p("2001:db8::/32"), route(1, 1)), Err(Error::InvalidParameter));
    assert_eq!(e.insert_route(&a, route(1, 1).views(ViewSet::from_bits(0))), Err(Error::InvalidParameter));
    assert_eq!((t.len(), t.route_count(), objects(t)), (1, 1, 0));
    assert_eq!(t.lookup(&p("10.1.2.3"), &t.pin()).unwrap().route().preference(), 20);
    let stale = e.clone();
    e.deregister().unwrap();
    assert!(t.is_empty(), "deregistration withdraws lone routes");
    assert_eq!(stale.insert_route(&a, route(1, 1)), Err(Error::InvalidHandle));
    assert_eq!(stale.withdraw_route(&a, None), Err(Error::InvalidHandle));
    assert!(t.is_empty());
}

/// Every handle-returning query promotes a lone route; the handles name the route, and
/// read it as deleted once it is withdrawn.
#[test]
fn handles_on_a_lone_route_promote_it() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    let (a, b, c, d) = (p("10.0.0.0/8"), p("10.1.0.0/16"), p("10.2.0.0/16"), p("10.3.0.0/16"));
    for x in [a, b, c, d] {
        e.insert_route(&x, route(20, 1)).unwrap();
    }
    assert_eq!(objects(t), 0);
    let g = t.pin();
    let best = t.lookup(&p("10.1.2.3"), &g).unwrap();
    assert_eq!(best.prefix(), b);
    let r = best.to_ref().expect("the route is there");
    let dest = best.dest().unwrap();
    drop(g);
    assert_eq!(objects(t), 1);
    assert!(dest.ptr_eq(&r.dest()));
    assert_eq!((r.prefix(), r.owner(), r.state()), (b, BGP, RouteState::Created));
    assert_eq!(dest.route_count(), 1);
    assert!(dest.best(ViewId::UNICAST).unwrap().ptr_eq(&r));
    // The same identity through the handle-less path: the handle sees the update.
    e.insert_route(&b, route(25, 2)).unwrap();
    assert_eq!(r.info().preference(), 25);
    // Exact, most specific, less specific and route queries promote too.
    assert_eq!(t.get(&c, ViewSet::ANY).unwrap().prefix(), c);
    assert_eq!(t.most_specific(&p("10.3.0.1"), ViewSet::UNICAST).unwrap().prefix(), d);
    assert_eq!(t.less_specific(&dest, ViewSet::ANY).unwrap().prefix(), a);
    assert_eq!(objects(t), 4);
    e.insert_route(&p("10.4.0.0/16"), route(20, 1)).unwrap();
    let m = RouteMatch { owner: Some(OSPF), ..Default::default() };
    assert_eq!(t.get_route(&p("10.4.0.0/16"), &m, ViewSet::ANY).err(), Some(Error::NotFound));
    assert_eq!(objects(t), 4, "a lone route that does not match stays lone");
    let m = RouteMatch { owner: Some(BGP), ..Default::default() };
    let r4 = t.get_route(&p("10.4.0.0/16"), &m, ViewSet::ANY).unwrap();
    assert_eq!((r4.prefix(), r4.info().preference()), (p("10.4.0.0/16"), 20));
    assert_eq!(objects(t), 5);
    // Withdrawn by identity: the handles read the route as deleted.
    assert!(e.withdraw_route(&b, None).is_ok());
    assert_eq!(r.state(), RouteState::Deleted);
    assert_eq!(r.info().preference(), 25, "its last contents");
    assert!(dest.is_deleted());
    assert_eq!(e.delete_route(&r), Err(Error::NotFound));
}

/// A lone route withdrawn between a lookup and the handle asked of its result: no handle.
#[test]
fn a_lookup_result_of_a_withdrawn_lone_route_gives_no_handle() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    e.insert_route(&p("10.0.0.0/8"), route(20, 1)).unwrap();
    let g = t.pin();
    let best = t.lookup(&p("10.1.2.3"), &g).unwrap();
    e.withdraw_route(&p("10.0.0.0/8"), None).unwrap();
    assert_eq!(best.route().preference(), 20, "the result still reads what the lookup saw");
    assert!(best.to_ref().is_none());
    assert!(best.dest().is_none());
    drop(g);
    assert!(t.is_empty() && objects(t) == 0);
}

#[test]
fn add_modes_on_a_lone_route() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    e.insert_route(&a, route(20, 1)).unwrap();
    let mut n = route(30, 2);
    n.neighbour = Some(hop(2));
    // First ignores the neighbour: the lone route is updated.
    assert_eq!(
        e.insert_route_with(&a, n.clone(), AddMode::First),
        Ok(ChangeFlags { new: false, best: true })
    );
    assert_eq!((t.route_count(), objects(t)), (1, 0));
    assert_eq!(t.lookup(&p("10.0.0.1"), &t.pin()).unwrap().route().neighbour(), Some(&hop(2)));
    // New always creates: a second route, so a destination object.
    assert_eq!(e.insert_route_with(&a, n.clone(), AddMode::New), Ok(ChangeFlags { new: true, best: false }));
    assert_eq!((t.route_count(), objects(t)), (2, 1));
    // Both have neighbour hop(2): a withdrawal takes the oldest, then the other.
    assert!(e.withdraw_route(&a, Some(hop(2))).is_ok());
    assert!(e.withdraw_route(&a, Some(hop(2))).is_ok());
    assert!(t.is_empty());
}

#[test]
fn batched_inserts_match_single_ones() {
    // Miri interprets every step: a few hundred prefixes keep every case (several trie
    // nodes, groups, a promotion).
    const N: usize = if cfg!(miri) { 60 } else { 3000 };
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let f = rtm.register(V4, OSPF).unwrap();
    let t = rtm.table(V4);
    let prefixes: Vec<NetAddress> =
        (0..N as u32).map(|i| NetAddress::v4((0x0a00_0000 + (i << 8)).into(), 24).unwrap()).collect();
    let mut items: Vec<(NetAddress, RouteParams)> = prefixes.iter().map(|a| (*a, route(20, 1))).collect();
    // A repeat within the batch is an update of the route the batch created.
    items.push((prefixes[7], route(21, 2)));
    items.push((p("2001:db8::/32"), route(1, 1)));
    let res = e.insert_routes(&items).unwrap();
    assert_eq!(res.len(), items.len());
    assert!(res[..N].iter().all(|r| *r == Ok(ChangeFlags { new: true, best: true })));
    assert_eq!(res[N], Ok(ChangeFlags { new: false, best: true }));
    assert_eq!(res[N + 1], Err(Error::InvalidParameter));
    assert_eq!((t.len(), t.route_count(), objects(t)), (N, N, 0));
    // Re-announced in a batch: updates in place.
    let again: Vec<_> = prefixes.iter().map(|a| (*a, route(22, 3))).collect();
    assert!(e
        .insert_routes(&again)
        .unwrap()
        .iter()
        .all(|r| *r == Ok(ChangeFlags { new: false, best: true })));
    assert_eq!((t.route_count(), objects(t)), (N, 0));
    // A second owner on every third prefix: groups of two lone routes, no objects.
    let second: Vec<_> = prefixes.iter().step_by(3).map(|a| (*a, route(10, 4))).collect();
    assert!(f
        .insert_routes(&second)
        .unwrap()
        .iter()
        .all(|r| *r == Ok(ChangeFlags { new: true, best: true })));
    assert_eq!((t.len(), t.route_count(), objects(t)), (N, N + N / 3, 0));
    let g = t.pin();
    let hosts: Vec<NetAddress> = prefixes
        .iter()
        .map(|a| a.truncate(24))
        .map(|a| {
            let mut b = *a.bytes();
            b[3] = 9;
            NetAddress::new(V4, &b, 32).unwrap()
        })
        .collect();
    let mut got = Vec::new();
    t.lookup_batch(&hosts, ViewId::UNICAST, &g, |i, b| got.push((i, b.map(|b| b.next_hops()[0]))));
    for (i, h) in got {
        let want = if i % 3 == 0 { hop(4) } else { hop(3) };
        assert_eq!(h, Some(want), "{}", hosts[i]);
        assert_eq!(t.lookup(&hosts[i], &g).map(|b| b.next_hops()[0]), Some(want));
    }
    drop(g);
    assert_eq!(objects(t), 0, "handle-less lookups promote nothing");
    // Handles asked for on a lone prefix: `add_routes` promotes it.
    let with = e.add_routes(&[(prefixes[1], route(23, 5))]).unwrap();
    let (r, flags) = with[0].as_ref().unwrap();
    assert_eq!(*flags, ChangeFlags { new: false, best: true });
    assert_eq!((r.prefix(), r.info().preference()), (prefixes[1], 23));
    assert_eq!(objects(t), 1);
    e.deregister().unwrap();
    assert_eq!((t.len(), t.route_count()), (N / 3, N / 3), "the second owner's routes stay");
    f.deregister().unwrap();
    assert!(t.is_empty());
}

/// Several owners' lone routes on one prefix: a group, best first, with the change flags
/// of a destination's routes; withdrawals shrink it back to one route, then to nothing.
#[test]
fn several_owners_share_a_group() {
    let rtm = Rtm::new();
    let a = rtm.register(V4, EntityId::new(1, 1)).unwrap();
    let b = rtm.register(V4, EntityId::new(2, 1)).unwrap();
    let c = rtm.register(V4, EntityId::new(3, 1)).unwrap();
    let t = rtm.table(V4);
    let x = p("10.0.0.0/8");
    let best =
        || t.lookup(&p("10.0.0.1"), &t.pin()).map(|b| (b.route().owner().protocol, b.route().preference()));
    let mcast =
        || t.lookup_in(&p("10.0.0.1"), ViewId::MULTICAST, &t.pin()).map(|b| b.route().owner().protocol);
    assert_eq!(a.insert_route(&x, route(20, 1)), Ok(ChangeFlags { new: true, best: true }));
    assert_eq!(b.insert_route(&x, route(30, 2)), Ok(ChangeFlags { new: true, best: false }), "not best");
    let both = ViewSet::UNICAST | ViewSet::MULTICAST;
    assert_eq!(c.insert_route(&x, route(10, 3).views(both)), Ok(ChangeFlags { new: true, best: true }));
    assert_eq!((t.route_count(), objects(t)), (3, 0));
    assert_eq!(best(), Some((3, 10)));
    assert_eq!(mcast(), Some(3));
    // b re-announces below a: b becomes second; no view's best changes, b is not best.
    assert_eq!(b.insert_route(&x, route(15, 2)), Ok(ChangeFlags { new: false, best: false }));
    assert_eq!(c.withdraw_route(&x, None), Ok(ChangeFlags { new: false, best: true }));
    assert_eq!(best(), Some((2, 15)));
    assert_eq!(mcast(), None, "no multicast route left");
    let g = t.pin();
    let mut got = Vec::new();
    t.lookup_batch(&[p("10.0.0.1"), p("10.9.9.9")], ViewId::UNICAST, &g, |_, r| {
        got.push(r.map(|r| r.route().preference()))
    });
    assert_eq!(got, [Some(15), Some(15)]);
    drop(g);
    // The same version again changes nothing (and b is best now).
    assert_eq!(b.insert_route(&x, route(15, 2)), Ok(ChangeFlags { new: false, best: true }));
    assert_eq!(b.withdraw_route(&x, None), Ok(ChangeFlags { new: false, best: true }));
    assert_eq!((t.len(), t.route_count(), objects(t), best()), (1, 1, 0, Some((1, 20))));
    assert_eq!(t.memory().destination_bytes, 0, "one lone route: its word in the trie node alone");
    // A handle on the group promotes it, in selection order.
    b.insert_route(&x, route(25, 2)).unwrap();
    let d = t.get(&x, ViewSet::ANY).unwrap();
    let order: Vec<u32> = d.route_infos().iter().map(|(_, i)| i.owner().protocol).collect();
    assert_eq!(order, [1, 2]);
    assert_eq!(objects(t), 1);
    drop(d);
    // Deregistered owners' lone routes go, a new registration of an id starts afresh.
    b.deregister().unwrap();
    a.deregister().unwrap();
    assert!(t.is_empty());
    c.insert_route(&x, route(1, 1)).unwrap();
    let a2 = rtm.register(V4, EntityId::new(1, 1)).unwrap();
    a2.insert_route(&x, route(2, 2)).unwrap();
    assert_eq!((t.route_count(), objects(t)), (2, 0));
    c.deregister().unwrap();
    assert_eq!((t.route_count(), best()), (1, Some((1, 2))));
}

/// A `Version` (`RouteRef::info`) is the route's contents, shared by equal versions of one
/// owner, and stays readable after its route, its handles and the instance are gone.
#[test]
fn versions_are_shared_and_outlive_their_routes() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let (a, b) = (p("10.0.0.0/8"), p("11.0.0.0/8"));
    let (ra, _) = e.add_route(&a, route(20, 1)).unwrap();
    let (rb, _) = e.add_route(&b, route(20, 1)).unwrap();
    let (va, vb) = (ra.info(), rb.info());
    assert!(Version::ptr_eq(&va, &vb), "equal parameters of one owner: one version");
    assert_eq!(va, vb);
    let (rb2, _) = e.add_route(&b, route(30, 1)).unwrap();
    let vb2 = rb2.info();
    assert!(!Version::ptr_eq(&va, &vb2));
    assert_ne!(va, vb2, "compared by contents");
    assert_eq!((vb2.preference(), vb2.next_hops()), (30, &[hop(1)][..]));
    let kept = vb2.clone();
    drop((ra, rb, rb2, va, vb, vb2));
    e.deregister().unwrap();
    drop(e);
    drop(rtm);
    assert_eq!((kept.preference(), kept.owner(), kept.next_hops()), (30, BGP, &[hop(1)][..]));
    assert_eq!(format!("{kept:?}"), format!("{:?}", *kept), "Debug shows the contents");
    // Hashed and borrowed by contents, as an `Arc<RouteInfo>` was.
    let set: std::collections::HashSet<Version> = [kept.clone(), kept.clone()].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert!(set.contains::<RouteInfo>(&kept));
}
