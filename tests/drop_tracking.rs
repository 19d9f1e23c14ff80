//! Drop tracking in a binary of its own (one test, so no other test allocates meanwhile):
//! every destination and route object is freed once the instance, the entity handles and
//! every route/destination handle are dropped — including handles that outlive the table.

use rtm::*;

#[test]
fn everything_is_freed_after_last_release() {
    drain_deferred_garbage();
    let base = live_objects();
    let rtm = Rtm::new();
    let e = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
    let f = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
    let mut keep_routes = vec![];
    let mut keep_dests = vec![];
    // Miri interprets every step: 150 destinations keep every case (kept handles at 0 and
    // 100, a second owner, deleted routes) at a twentieth of the time.
    let n: u32 = if cfg!(miri) { 150 } else { 3000 };
    for i in 0..n {
        let a = NetAddress::v4((i << 8).into(), 24).unwrap();
        let (r, _) = e.add_route(&a, RouteParams::new(1, i)).unwrap();
        if i % 3 == 0 {
            let _ = f.add_route(&a, RouteParams::new(2, i)).unwrap();
        }
        if i % 100 == 0 {
            keep_dests.push(r.dest());
            keep_routes.push(r);
        }
        if i % 7 == 0 {
            // A deleted route whose handle is dropped at once.
            let (r, _) = e.add_route_with(&a, RouteParams::new(9, 9), AddMode::New).unwrap();
            e.delete_route(&r).unwrap();
        }
    }
    drain_deferred_garbage();
    let mid = live_objects();
    assert_eq!(mid.dests - base.dests, n as isize);
    assert_eq!(mid.routes - base.routes, (n + n.div_ceil(3)) as isize);
    f.deregister().unwrap();
    drain_deferred_garbage();
    assert_eq!(live_objects().routes - base.routes, n as isize, "deregistered routes are freed");
    drop((rtm, e, f));
    drain_deferred_garbage();
    let held = live_objects();
    // Every 100th route and destination is held by a handle.
    assert_eq!(held.routes - base.routes, n.div_ceil(100) as isize, "only the routes still held by handles");
    assert_eq!(
        held.dests - base.dests,
        n.div_ceil(100) as isize,
        "only the destinations they or handles hold"
    );
    assert!(keep_routes.iter().all(|r| r.state() == RouteState::Deleted));
    drop(keep_routes);
    drop(keep_dests);
    drain_deferred_garbage();
    assert_eq!(live_objects(), base);
}
