//! Integration tests of the public API, feature by feature, including error cases.

use rtm::*;

fn p(s: &str) -> NetAddress {
    s.parse().unwrap()
}

fn nh(s: &str, ifx: u32) -> NextHop {
    NextHop::new(p(s), ifx)
}

const V4: AddressFamily = AddressFamily::Ipv4;
const BGP: EntityId = EntityId::new(14, 1);
const OSPF: EntityId = EntityId::new(13, 1);

#[test]
fn builder_validates_limits() {
    assert_eq!(Rtm::builder().max_next_hops_in_route(0).build().err(), Some(Error::InvalidParameter));
    assert_eq!(Rtm::builder().max_handles_in_enum(0).build().err(), Some(Error::InvalidParameter));
    assert_eq!(Rtm::builder().views(ViewSet::ANY).build().err(), Some(Error::InvalidParameter));
    let rtm = Rtm::builder()
        .instance_id(3)
        .max_next_hops_in_route(4)
        .max_handles_in_enum(10)
        .views(ViewSet::from_bits(0b1011))
        .build()
        .unwrap();
    let pr = rtm.profile();
    assert_eq!(rtm.instance_id(), 3);
    assert_eq!(pr.max_next_hops_in_route, 4);
    assert_eq!(pr.max_handles_in_enum, 10);
    assert_eq!(pr.number_of_views, 3);
    assert_eq!(rtm.table(AddressFamily::Ipv6).family(), AddressFamily::Ipv6);
}

#[test]
fn entity_registration() {
    let rtm = Rtm::new();
    let bgp = rtm.register(V4, BGP).unwrap();
    assert_eq!(rtm.register(V4, BGP).err(), Some(Error::AlreadyExists));
    // Same id in the other family's table is a different registration.
    let bgp6 = rtm.register(AddressFamily::Ipv6, BGP).unwrap();
    let ospf = rtm.register(V4, OSPF).unwrap();
    let ids: Vec<_> = rtm.table(V4).entities().iter().map(|e| e.id()).collect();
    assert_eq!(ids, vec![OSPF, BGP]);
    let info = bgp.info().unwrap();
    assert_eq!((info.instance_id, info.family, info.id), (0, V4, BGP));
    assert_eq!(bgp6.info().unwrap().family, AddressFamily::Ipv6);

    ospf.deregister().unwrap();
    assert_eq!(ospf.deregister(), Err(Error::InvalidHandle));
    assert_eq!(ospf.info(), Err(Error::InvalidHandle));
    let clone = ospf.clone();
    assert_eq!(clone.add_route(&p("10.0.0.0/8"), RouteParams::new(1, 1)).err(), Some(Error::InvalidHandle));
    assert_eq!(rtm.table(V4).entities().len(), 1);
    // The id can be registered again afterwards.
    let again = rtm.register(V4, OSPF).unwrap();
    assert!(!again.ptr_eq(&ospf));
}

#[test]
fn add_update_delete_and_identity() {
    let rtm = Rtm::new();
    let bgp = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    let n1 = nh("192.0.2.1", 1);
    let (r1, f) =
        bgp.add_route(&p("10.0.0.0/8"), RouteParams::new(20, 5).neighbour(n1).next_hop(n1)).unwrap();
    assert_eq!(f, ChangeFlags { new: true, best: true });
    assert_eq!(f.bits(), 0x0001_0002);
    // Same (dest, owner, neighbour): an update of the same route.
    let (r1b, f) =
        bgp.add_route(&p("10.0.0.0/8"), RouteParams::new(20, 7).neighbour(n1).next_hop(n1)).unwrap();
    assert!(!f.new && f.best);
    assert!(r1.ptr_eq(&r1b));
    assert_eq!(r1.info().metric(), 7, "the old handle sees the new version");
    // Another neighbour: a second route.
    let n2 = nh("192.0.2.2", 2);
    let (r2, f) =
        bgp.add_route(&p("10.0.0.0/8"), RouteParams::new(20, 9).neighbour(n2).next_hop(n2)).unwrap();
    assert!(f.new && !f.best, "a worse route changes no best route");
    assert!(!r2.ptr_eq(&r1));
    assert_eq!(t.route_count(), 2);
    assert_eq!(t.len(), 1);
    // Update through the handle: r2 becomes best.
    let f = bgp.update_route(&r2, RouteParams::new(20, 1).neighbour(n2).next_hop(n2)).unwrap();
    assert!(f.best);
    assert_eq!(r2.best_in_views(), ViewSet::UNICAST);
    assert_eq!(r1.best_in_views(), ViewSet::ANY);
    // Delete: handle stays readable.
    let f = bgp.delete_route(&r2).unwrap();
    assert!(f.best);
    assert_eq!(r2.state(), RouteState::Deleted);
    assert_eq!(r2.info().metric(), 1);
    assert_eq!(r2.prefix(), p("10.0.0.0/8"));
    assert_eq!(bgp.delete_route(&r2), Err(Error::NotFound));
    assert_eq!(bgp.update_route(&r2, RouteParams::new(1, 1)), Err(Error::NotFound));
    assert_eq!(r1.best_in_views(), ViewSet::UNICAST);
    // Deleting the last route removes the destination from the table.
    let d = t.get(&p("10.0.0.0/8"), ViewSet::ANY).unwrap();
    bgp.delete_route(&r1).unwrap();
    assert_eq!(t.get(&p("10.0.0.0/8"), ViewSet::ANY).err(), Some(Error::NotFound));
    assert!(d.is_deleted());
    assert_eq!(d.route_count(), 0);
    assert_eq!(d.prefix(), p("10.0.0.0/8"));
    assert_eq!((t.len(), t.route_count()), (0, 0));
    // A new add creates a fresh destination.
    let (r3, f) = bgp.add_route(&p("10.0.0.0/8"), RouteParams::new(1, 1)).unwrap();
    assert!(f.new);
    assert!(!r3.dest().ptr_eq(&d));
}

#[test]
fn add_modes_first_and_new() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let a = p("10.0.0.0/8");
    let (r1, _) = e.add_route(&a, RouteParams::new(5, 5).neighbour(nh("1.1.1.1", 1))).unwrap();
    let (r2, f) =
        e.add_route_with(&a, RouteParams::new(5, 5).neighbour(nh("1.1.1.1", 1)), AddMode::New).unwrap();
    assert!(f.new && !r2.ptr_eq(&r1), "NEW forces a second route with the same identity");
    let (r3, f) =
        e.add_route_with(&a, RouteParams::new(5, 1).neighbour(nh("2.2.2.2", 1)), AddMode::First).unwrap();
    assert!(!f.new && r3.ptr_eq(&r1), "FIRST updates the oldest route, ignoring the neighbour");
    assert_eq!(r1.info().neighbour(), Some(&nh("2.2.2.2", 1)));
    assert_eq!(rtm.table(V4).route_count(), 2);
}

#[test]
fn invalid_input_changes_nothing() {
    let rtm = Rtm::builder().max_next_hops_in_route(2).views(ViewSet::UNICAST).build().unwrap();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    let too_many = RouteParams::new(1, 1)
        .next_hop(nh("1.1.1.1", 1))
        .next_hop(nh("1.1.1.2", 1))
        .next_hop(nh("1.1.1.3", 1));
    assert_eq!(e.add_route(&a, too_many).err(), Some(Error::InvalidParameter));
    assert_eq!(
        e.add_route(&a, RouteParams::new(1, 1).views(ViewSet::ANY)).err(),
        Some(Error::InvalidParameter)
    );
    assert_eq!(
        e.add_route(&a, RouteParams::new(1, 1).views(ViewSet::MULTICAST)).err(),
        Some(Error::NotSupported)
    );
    assert_eq!(e.add_route(&p("2001:db8::/32"), RouteParams::new(1, 1)).err(), Some(Error::InvalidParameter));
    assert_eq!((t.len(), t.route_count()), (0, 0));
    assert_eq!(t.get(&p("2001:db8::/32"), ViewSet::ANY).err(), Some(Error::InvalidParameter));
    assert_eq!(t.get(&a, ViewSet::MULTICAST).err(), Some(Error::NotSupported));
    let (r, _) = e.add_route(&a, RouteParams::new(1, 1)).unwrap();
    // Someone else's route.
    let other = rtm.register(V4, OSPF).unwrap();
    assert_eq!(other.delete_route(&r), Err(Error::AccessDenied));
    assert_eq!(other.update_route(&r, RouteParams::new(1, 1)), Err(Error::AccessDenied));
    assert_eq!(r.state(), RouteState::Created);
}

#[test]
fn best_route_per_view_and_tie_break() {
    let rtm = Rtm::new();
    let bgp = rtm.register(V4, BGP).unwrap();
    let ospf = rtm.register(V4, OSPF).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    let both = ViewSet::UNICAST | ViewSet::MULTICAST;
    let (rb, _) = bgp.add_route(&a, RouteParams::new(20, 1).views(both)).unwrap();
    let (ro, f) = ospf.add_route(&a, RouteParams::new(110, 1).views(ViewSet::UNICAST)).unwrap();
    assert!(!f.best);
    let d = t.get(&a, ViewSet::ANY).unwrap();
    assert!(d.best(ViewId::UNICAST).unwrap().ptr_eq(&rb));
    // Lower preference wins whatever the metric.
    let f = ospf.update_route(&ro, RouteParams::new(10, 1000).views(ViewSet::UNICAST)).unwrap();
    assert!(f.best);
    assert!(d.best(ViewId::UNICAST).unwrap().ptr_eq(&ro));
    assert!(d.best(ViewId::MULTICAST).unwrap().ptr_eq(&rb), "best is per view");
    assert_eq!(d.views(), both);
    assert!(d.best_of_protocol(ViewId::UNICAST, BGP.protocol).unwrap().ptr_eq(&rb));
    // Equal preference and metric: the lower entity id (OSPF 13 < BGP 14) wins.
    ospf.update_route(&ro, RouteParams::new(20, 1).views(both)).unwrap();
    assert!(d.best(ViewId::UNICAST).unwrap().ptr_eq(&ro));
    assert!(d.best(ViewId::MULTICAST).unwrap().ptr_eq(&ro));
    // Same owner, no neighbour vs a neighbour: the route without one first; then creation order.
    let (n1, _) =
        bgp.add_route(&p("11.0.0.0/8"), RouteParams::new(1, 1).neighbour(nh("1.1.1.1", 1))).unwrap();
    let (n0, _) = bgp.add_route(&p("11.0.0.0/8"), RouteParams::new(1, 1)).unwrap();
    let (n2, _) = bgp.add_route_with(&p("11.0.0.0/8"), RouteParams::new(1, 1), AddMode::New).unwrap();
    let order: Vec<_> = t.get(&p("11.0.0.0/8"), ViewSet::ANY).unwrap().routes();
    assert!(order[0].ptr_eq(&n0) && order[1].ptr_eq(&n2) && order[2].ptr_eq(&n1));
}

#[test]
fn queries_exact_most_less_specific() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    for (s, views) in [
        ("0.0.0.0/0", ViewSet::UNICAST),
        ("10.0.0.0/8", ViewSet::UNICAST),
        ("10.1.0.0/16", ViewSet::MULTICAST),
        ("10.1.2.0/24", ViewSet::UNICAST),
    ] {
        let _ = e.add_route(&p(s), RouteParams::new(1, 1).views(views)).unwrap();
    }
    assert_eq!(t.len(), 4);
    assert_eq!(t.get(&p("10.1.0.0/16"), ViewSet::ANY).unwrap().prefix(), p("10.1.0.0/16"));
    assert_eq!(t.get(&p("10.1.0.0/16"), ViewSet::UNICAST).err(), Some(Error::NotFound));
    assert_eq!(t.get(&p("10.2.0.0/16"), ViewSet::ANY).err(), Some(Error::NotFound));
    let ms = |a: &str, v| t.most_specific(&p(a), v).map(|d| d.prefix());
    assert_eq!(ms("10.1.2.3", ViewSet::UNICAST), Ok(p("10.1.2.0/24")));
    assert_eq!(ms("10.1.3.3", ViewSet::UNICAST), Ok(p("10.0.0.0/8")), "skips the multicast-only /16");
    assert_eq!(ms("10.1.3.3", ViewSet::MULTICAST), Ok(p("10.1.0.0/16")));
    assert_eq!(ms("10.1.3.3", ViewSet::ANY), Ok(p("10.1.0.0/16")));
    assert_eq!(ms("10.1.2.0/20", ViewSet::ANY), Ok(p("10.1.0.0/16")), "bounded by the address length");
    assert_eq!(ms("11.0.0.1", ViewSet::MULTICAST), Err(Error::NotFound));
    // Walk up from the /24 to the default route, then NotFound.
    let mut d = t.get(&p("10.1.2.0/24"), ViewSet::ANY).unwrap();
    let mut walk = vec![];
    while let Ok(up) = t.less_specific(&d, ViewSet::ANY) {
        walk.push(up.prefix());
        d = up;
    }
    assert_eq!(walk, vec![p("10.1.0.0/16"), p("10.0.0.0/8"), p("0.0.0.0/0")]);
    let d = t.get(&p("10.1.2.0/24"), ViewSet::ANY).unwrap();
    assert_eq!(t.less_specific(&d, ViewSet::UNICAST).unwrap().prefix(), p("10.0.0.0/8"));
    // In-order enumeration.
    let all: Vec<_> = t.dests().iter().map(|d| d.prefix()).collect();
    assert_eq!(all, vec![p("0.0.0.0/0"), p("10.0.0.0/8"), p("10.1.0.0/16"), p("10.1.2.0/24")]);
}

#[test]
fn exact_match_route_criteria() {
    let rtm = Rtm::new();
    let bgp = rtm.register(V4, BGP).unwrap();
    let ospf = rtm.register(V4, OSPF).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    let (rb, _) = bgp
        .add_route(&a, RouteParams::new(20, 3).neighbour(nh("1.1.1.1", 1)).next_hop(nh("1.1.1.1", 1)))
        .unwrap();
    let (ro, _) = ospf.add_route(&a, RouteParams::new(110, 2).next_hop(nh("2.2.2.2", 7))).unwrap();
    let q = |m: RouteMatch| t.get_route(&a, &m, ViewSet::ANY);
    assert!(q(RouteMatch::default()).unwrap().ptr_eq(&rb), "no criteria: the best");
    assert!(q(RouteMatch { owner: Some(OSPF), ..Default::default() }).unwrap().ptr_eq(&ro));
    assert!(q(RouteMatch { neighbour: Some(None), ..Default::default() }).unwrap().ptr_eq(&ro));
    assert!(q(RouteMatch { preference: Some((20, 3)), ..Default::default() }).unwrap().ptr_eq(&rb));
    assert_eq!(
        q(RouteMatch { preference: Some((20, 4)), ..Default::default() }).err(),
        Some(Error::NotFound)
    );
    assert!(q(RouteMatch { interface: Some(7), ..Default::default() }).unwrap().ptr_eq(&ro));
    assert!(q(RouteMatch { next_hop: Some(nh("1.1.1.1", 1)), ..Default::default() }).unwrap().ptr_eq(&rb));
    assert_eq!(t.get_route(&a, &RouteMatch::default(), ViewSet::MULTICAST).err(), Some(Error::NotFound));
    assert_eq!(
        t.get_route(&p("10.0.0.0/9"), &RouteMatch::default(), ViewSet::ANY).err(),
        Some(Error::NotFound)
    );
}

/// The fast path's next hops are those of the view's best route, also when that route
/// is not the destination's first (the first belongs to another view only), and they
/// follow the best route when it changes.
#[test]
fn fast_path_next_hops_follow_the_views_best_route() {
    let rtm = Rtm::new();
    let bgp = rtm.register(V4, BGP).unwrap();
    let ospf = rtm.register(V4, EntityId::new(89, 1)).unwrap();
    let t = rtm.table(V4);
    let a = p("10.0.0.0/8");
    let (hb, ho) = (nh("192.0.2.1", 1), nh("192.0.2.2", 2));
    let _ = bgp.add_route(&a, RouteParams::new(1, 1).views(ViewSet::MULTICAST).next_hop(hb)).unwrap();
    let (ro, _) = ospf.add_route(&a, RouteParams::new(5, 1).views(ViewSet::UNICAST).next_hop(ho)).unwrap();
    let g = t.pin();
    let b = t.lookup(&p("10.1.2.3"), &g).unwrap();
    assert_eq!(
        (b.next_hops(), b.route().owner()),
        (&[ho][..], EntityId::new(89, 1)),
        "unicast: the second entry"
    );
    let b = t.lookup_in(&p("10.1.2.3"), ViewId::MULTICAST, &g).unwrap();
    assert_eq!((b.next_hops(), b.route().owner()), (&[hb][..], BGP), "multicast: the first entry");
    drop(g);
    let both = ViewSet::UNICAST | ViewSet::MULTICAST;
    let _ = bgp.add_route(&a, RouteParams::new(1, 1).views(both).next_hop(hb)).unwrap();
    let g = t.pin();
    assert_eq!(t.lookup(&p("10.1.2.3"), &g).unwrap().next_hops(), &[hb], "the better route joined unicast");
    drop(g);
    ospf.delete_route(&ro).unwrap();
    let _ = bgp.add_route(&a, RouteParams::new(1, 1).views(ViewSet::MULTICAST).next_hop(hb)).unwrap();
    let g = t.pin();
    assert!(t.lookup(&p("10.1.2.3"), &g).is_none(), "no unicast route left");
}

#[test]
fn fast_path_lookup() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let t = rtm.table(V4);
    let hop = nh("192.0.2.9", 3);
    let _ = e.add_route(&p("10.0.0.0/8"), RouteParams::new(1, 1).next_hop(hop)).unwrap();
    let _ = e.add_route(&p("10.1.0.0/16"), RouteParams::new(1, 1).views(ViewSet::MULTICAST)).unwrap();
    let g = t.pin();
    let b = t.lookup(&p("10.1.2.3"), &g).unwrap();
    assert_eq!(b.prefix(), p("10.0.0.0/8"), "falls back past a destination with no unicast route");
    assert_eq!(b.next_hops(), &[hop]);
    assert_eq!(b.route().owner(), BGP);
    let b = t.lookup_in(&p("10.1.2.3"), ViewId::MULTICAST, &g).unwrap();
    assert_eq!(b.prefix(), p("10.1.0.0/16"));
    assert!(t.lookup_ip("11.0.0.1".parse().unwrap(), &g).is_none());
    assert!(t.lookup(&p("::1"), &g).is_none(), "other family");
    let r = t.lookup(&p("10.9.9.9"), &g).unwrap().to_ref().expect("the route is there");
    assert_eq!(r.prefix(), p("10.0.0.0/8"));
}

#[test]
fn handles_keep_objects_readable() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, BGP).unwrap();
    let (r, _) = e.add_route(&p("10.0.0.0/8"), RouteParams::new(1, 1)).unwrap();
    let d = r.dest();
    let r2 = r.clone();
    e.deregister().unwrap();
    // Deregistration withdrew the route; handles still read.
    assert_eq!(r2.state(), RouteState::Deleted);
    assert!(d.is_deleted());
    assert_eq!(rtm.table(V4).len(), 0);
    drop(rtm);
    drop(e);
    // The table is gone; the handles are not.
    assert_eq!(r.prefix(), p("10.0.0.0/8"));
    assert_eq!(r.owner(), BGP);
    assert_eq!(d.prefix(), p("10.0.0.0/8"));
}

#[test]
fn deregister_withdraws_only_own_routes() {
    let rtm = Rtm::new();
    let bgp = rtm.register(V4, BGP).unwrap();
    let ospf = rtm.register(V4, OSPF).unwrap();
    let t = rtm.table(V4);
    for i in 0..100u8 {
        let a = NetAddress::v4([10, i, 0, 0].into(), 16).unwrap();
        let _ = bgp.add_route(&a, RouteParams::new(20, 1)).unwrap();
        if i % 2 == 0 {
            let _ = ospf.add_route(&a, RouteParams::new(110, 1)).unwrap();
        }
    }
    assert_eq!((t.len(), t.route_count()), (100, 150));
    bgp.deregister().unwrap();
    assert_eq!((t.len(), t.route_count()), (50, 50));
    assert!(t.dests().iter().all(|d| d.routes().iter().all(|r| r.owner() == OSPF)));
}

#[test]
fn ipv6_table() {
    let rtm = Rtm::new();
    let e = rtm.register(AddressFamily::Ipv6, BGP).unwrap();
    let t = rtm.table(AddressFamily::Ipv6);
    for s in ["::/0", "2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64", "2001:db8:1:2::1/128"] {
        let _ = e.add_route(&p(s), RouteParams::new(1, 1)).unwrap();
    }
    let g = t.pin();
    let lpm = |a: &str| t.lookup(&p(a), &g).map(|b| b.prefix());
    assert_eq!(lpm("2001:db8:1:2::1"), Some(p("2001:db8:1:2::1/128")));
    assert_eq!(lpm("2001:db8:1:2::2"), Some(p("2001:db8:1:2::/64")));
    assert_eq!(lpm("2001:db8:1:3::2"), Some(p("2001:db8:1::/48")));
    assert_eq!(lpm("2001:db8:2::"), Some(p("2001:db8::/32")));
    assert_eq!(lpm("2002::"), Some(p("::/0")));
}
