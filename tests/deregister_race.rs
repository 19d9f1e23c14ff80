//! Deregistration racing `add_route` on the same entity: afterwards no route of the
//! entity may remain in the table (the store-buffering protocol in `entity.rs`), and every
//! add either failed with `InvalidHandle` or returned a route that is now deleted.

use rtm::*;
use std::sync::{Arc, Barrier};

#[test]
fn no_route_survives_a_racing_deregistration() {
    // `RACE_ROUNDS` overrides the rounds (CI's TSan stage runs fewer; `CI_LONG=1` all).
    let default_rounds = if cfg!(miri) { 2 } else { 300 };
    let rounds = std::env::var("RACE_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_rounds);
    // Miri interprets every step: 30 adds per thread still race the deregistration, in 1/7
    // of the time.
    let per_thread: u32 = if cfg!(miri) { 30 } else { 200 };
    for round in 0..rounds {
        let rtm = Rtm::new();
        let t = rtm.table(AddressFamily::Ipv4).clone();
        let e = t.register(EntityId::new(1, round)).unwrap();
        let other = t.register(EntityId::new(2, 0)).unwrap();
        let barrier = Arc::new(Barrier::new(3));
        let adders: Vec<_> = (0..2u32)
            .map(|k| {
                let (e, other, b) = (e.clone(), other.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    let mut kept = Vec::new();
                    for i in 0..per_thread {
                        let a = NetAddress::v4(((10 << 24) | (k << 16) | (i << 8)).into(), 24).unwrap();
                        let _ = other.add_route(&a, RouteParams::new(5, 5)).unwrap();
                        match e.add_route(&a, RouteParams::new(1, 1)) {
                            Ok((r, _)) => kept.push(r),
                            Err(err) => assert_eq!(err, Error::InvalidHandle),
                        }
                    }
                    kept
                })
            })
            .collect();
        barrier.wait();
        e.deregister().unwrap();
        let kept: Vec<RouteRef> = adders.into_iter().flat_map(|h| h.join().unwrap()).collect();
        for r in &kept {
            assert_eq!(r.state(), RouteState::Deleted, "round {round}: {r:?}");
        }
        assert_eq!(t.route_count(), 2 * per_thread as usize, "only the other entity's routes are left");
        assert!(t.dests().iter().all(|d| d.routes().iter().all(|r| r.owner() == EntityId::new(2, 0))));
    }
}
