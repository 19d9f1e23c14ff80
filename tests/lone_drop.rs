//! Leaves and lone routes are freed: withdrawn, promoted, deregistered, or dropped with
//! the table (one test in this binary: the live-object counters are process-wide).

use rtm::*;

#[test]
fn leaves_and_lone_routes_are_freed() {
    drain_deferred_garbage();
    let base = live_objects();
    let rtm = Rtm::new();
    let t = rtm.table(AddressFamily::Ipv4).clone();
    let e = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
    let f = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
    let n: u32 = if cfg!(miri) { 120 } else { 3000 };
    let prefixes: Vec<NetAddress> = (0..n).map(|i| NetAddress::v4((i << 8).into(), 24).unwrap()).collect();
    let items: Vec<_> = prefixes.iter().map(|a| (*a, RouteParams::new(20, 0))).collect();
    e.insert_routes(&items).unwrap();
    drain_deferred_garbage();
    let mid = live_objects();
    assert_eq!(
        (mid.leaves - base.leaves, mid.dests - base.dests, mid.routes - base.routes),
        (n as isize, 0, 0)
    );
    // Every third prefix: a second owner (a group); every fifth: a handle kept (promoted).
    for (i, a) in prefixes.iter().enumerate() {
        if i % 3 == 0 {
            f.insert_route(a, RouteParams::new(10, 0)).unwrap();
        }
    }
    let kept: Vec<DestRef> = prefixes.iter().step_by(5).map(|a| t.get(a, ViewSet::ANY).unwrap()).collect();
    // Every seventh withdrawn.
    for a in prefixes.iter().step_by(7) {
        e.withdraw_route(a, None).unwrap();
    }
    drain_deferred_garbage();
    let promoted = (0..n).filter(|i| i % 5 == 0).count() as isize;
    let gone = (0..n).filter(|i| i % 7 == 0 && i % 3 != 0).count() as isize;
    let now = live_objects();
    assert_eq!(now.leaves - base.leaves, n as isize - gone);
    // Withdrawn prefixes with a kept handle keep their (dead) destination.
    assert_eq!(now.dests - base.dests, promoted);
    f.deregister().unwrap();
    drop((e, f));
    drop(rtm);
    drop(t);
    drain_deferred_garbage();
    let held = live_objects();
    assert_eq!(held.leaves, base.leaves, "every leaf goes with the table");
    assert_eq!(held.dests - base.dests, kept.len() as isize, "only the destinations handles hold");
    assert!(kept.iter().all(|d| d.is_deleted()));
    drop(kept);
    drain_deferred_garbage();
    assert_eq!(live_objects(), base);
}
