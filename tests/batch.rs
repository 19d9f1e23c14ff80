//! `EntityRef::add_routes`: per-item results equal to adding route by route, errors per
//! item and per call, and a batch racing single adds and deletes.

use rtm::*;

fn p(s: &str) -> NetAddress {
    s.parse().unwrap()
}

const V4: AddressFamily = AddressFamily::Ipv4;

/// A generated table in address order; under miri a small hand-made one (the generator's
/// setup alone takes a minute there).
fn table(n: usize, seed: u64) -> Vec<NetAddress> {
    if cfg!(miri) {
        let mut v: Vec<NetAddress> = (0..n)
            .map(|i| {
                let (a, b) = ((seed as usize + i / 12) as u8, (i % 12) as u8);
                let len = [24, 16, 20, 24, 28, 32][i % 6];
                NetAddress::v4([10, a, b, (7 * i % 256) as u8].into(), len).unwrap()
            })
            .collect();
        v.sort();
        v.dedup();
        v
    } else {
        gen::ipv4_table(n, seed).expect("a count within the limit")
    }
}

#[test]
fn a_batch_equals_adding_in_order() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, EntityId::new(14, 1)).unwrap();
    let other = rtm.register(V4, EntityId::new(13, 1)).unwrap();
    let t = rtm.table(V4);
    let (existing, _) = other.add_route(&p("10.1.0.0/16"), RouteParams::new(5, 0)).unwrap();
    let batch = vec![
        (p("10.1.2.0/24"), RouteParams::new(20, 1)),
        (p("10.1.0.0/16"), RouteParams::new(1, 0)), // existing destination, now best
        (p("10.1.2.0/24"), RouteParams::new(30, 2)), // the same route again: an update
        (p("2001:db8::/32"), RouteParams::new(1, 1)), // wrong family
        (p("0.0.0.0/0"), RouteParams::new(1, 1)),
        (p("192.168.7.0/24"), RouteParams::new(1, 1).views(ViewSet::ANY)), // no views (ANY is the empty set)
    ];
    let got = e.add_routes(&batch).unwrap();
    assert_eq!(got.len(), batch.len());
    let flags: Vec<_> =
        got.iter().map(|r| r.as_ref().map(|(_, f)| (f.new, f.best)).map_err(|e| *e)).collect();
    assert_eq!(
        flags,
        vec![
            Ok((true, true)),
            Ok((true, true)),
            Ok((false, true)),
            Err(Error::InvalidParameter),
            Ok((true, true)),
            Err(Error::InvalidParameter),
        ]
    );
    // Item 2 updated item 0's route: one handle, the later parameters.
    let (r0, r2) = (&got[0].as_ref().unwrap().0, &got[2].as_ref().unwrap().0);
    assert!(r0.ptr_eq(r2));
    assert_eq!(r0.info().preference(), 30);
    assert_eq!(t.get(&p("10.1.0.0/16"), ViewSet::ANY).unwrap().route_count(), 2);
    assert_eq!(
        t.get(&p("10.1.0.0/16"), ViewSet::ANY).unwrap().best(ViewId::UNICAST).unwrap().info().preference(),
        1
    );
    assert_eq!(existing.state(), RouteState::Created);
    assert!(t.get(&p("192.168.7.0/24"), ViewSet::ANY).is_err(), "a refused item adds nothing");
    assert_eq!((t.len(), t.route_count()), (3, 4));
    let g = t.pin();
    assert_eq!(t.lookup(&p("10.1.2.9"), &g).map(|b| b.prefix()), Some(p("10.1.2.0/24")));
    assert_eq!(t.lookup(&p("11.0.0.1"), &g).map(|b| b.prefix()), Some(p("0.0.0.0/0")));
}

#[test]
fn call_level_errors_change_nothing() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, EntityId::new(14, 1)).unwrap();
    // A million items: too slow to build under miri.
    if !cfg!(miri) {
        let too_many = vec![(p("10.0.0.0/8"), RouteParams::new(1, 1)); MAX_ROUTES_IN_BATCH + 1];
        assert_eq!(e.add_routes(&too_many).err(), Some(Error::InvalidParameter));
    }
    assert!(rtm.table(V4).is_empty());
    assert!(e.add_routes(&[]).unwrap().is_empty());
    let stale = e.clone();
    e.deregister().unwrap();
    assert_eq!(
        stale.add_routes(&[(p("10.0.0.0/8"), RouteParams::new(1, 1))]).err(),
        Some(Error::InvalidHandle)
    );
    assert!(rtm.table(V4).is_empty());
}

/// A large batch loads the same table as single adds (same destinations, same lookups).
#[test]
fn a_generated_table_in_batches() {
    let prefixes = table(if cfg!(miri) { 30 } else { 20_000 }, 3);
    let (a, b) = (Rtm::new(), Rtm::new());
    let ea = a.register(V4, EntityId::new(14, 1)).unwrap();
    let eb = b.register(V4, EntityId::new(14, 1)).unwrap();
    for p in &prefixes {
        let _ = ea.add_route(p, RouteParams::new(20, 0)).unwrap();
    }
    for chunk in prefixes.chunks(4096) {
        let items: Vec<_> = chunk.iter().map(|p| (*p, RouteParams::new(20, 0))).collect();
        assert!(eb.add_routes(&items).unwrap().iter().all(|r| r.is_ok()));
    }
    let (ta, tb) = (a.table(V4), b.table(V4));
    assert_eq!((ta.len(), ta.route_count()), (tb.len(), tb.route_count()));
    let pa: Vec<_> = ta.dests().iter().map(|d| d.prefix()).collect();
    let pb: Vec<_> = tb.dests().iter().map(|d| d.prefix()).collect();
    assert_eq!(pa, pb);
    let mut r = gen::SplitMix64::new(9);
    let (ga, gb) = (ta.pin(), tb.pin());
    for _ in 0..if cfg!(miri) { 10 } else { 2000 } {
        let q = gen::host_in(&prefixes[r.below(prefixes.len() as u64) as usize], &mut r);
        assert_eq!(ta.lookup(&q, &ga).map(|x| x.prefix()), tb.lookup(&q, &gb).map(|x| x.prefix()), "{q}");
    }
}

/// Batches race single adds and deletes of overlapping prefixes on other threads: every
/// route that was added and not deleted is in the table at the end, exactly once.
#[test]
fn batches_race_single_writers() {
    let rtm = Rtm::new();
    let batcher = rtm.register(V4, EntityId::new(14, 1)).unwrap();
    let single = rtm.register(V4, EntityId::new(13, 1)).unwrap();
    let prefixes = table(if cfg!(miri) { 24 } else { 6_000 }, 5);
    std::thread::scope(|s| {
        s.spawn(|| {
            for chunk in prefixes.chunks(if cfg!(miri) { 7 } else { 97 }) {
                let items: Vec<_> = chunk.iter().map(|p| (*p, RouteParams::new(20, 0))).collect();
                for r in batcher.add_routes(&items).unwrap() {
                    let _ = r.unwrap();
                }
            }
        });
        s.spawn(|| {
            for (i, p) in prefixes.iter().enumerate().rev() {
                let (r, _) = single.add_route(p, RouteParams::new(10, 0)).unwrap();
                if i % 3 == 0 {
                    single.delete_route(&r).unwrap();
                }
            }
        });
    });
    let t = rtm.table(V4);
    for (i, p) in prefixes.iter().enumerate() {
        let d = t.get(p, ViewSet::ANY).unwrap_or_else(|_| panic!("{p} lost"));
        let owners: Vec<u32> = d.route_infos().iter().map(|(_, info)| info.owner().protocol).collect();
        let want: Vec<u32> = if i % 3 == 0 { vec![14] } else { vec![13, 14] };
        assert_eq!(owners, want, "{p}");
    }
    assert_eq!(t.len(), prefixes.len());
}

#[test]
fn delete_routes_equals_deleting_in_order() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, EntityId::new(14, 1)).unwrap();
    let other = rtm.register(V4, EntityId::new(13, 1)).unwrap();
    let t = rtm.table(V4);
    let (a, _) = e.add_route(&p("10.1.0.0/16"), RouteParams::new(20, 0)).unwrap();
    let (b, _) = e.add_route(&p("10.1.2.0/24"), RouteParams::new(20, 0)).unwrap();
    let (c, _) = e.add_route(&p("10.1.3.0/24"), RouteParams::new(20, 0)).unwrap();
    let (theirs, _) = other.add_route(&p("10.1.3.0/24"), RouteParams::new(10, 0)).unwrap();
    let got = e.delete_routes(&[b.clone(), theirs.clone(), c.clone(), b.clone(), a.clone()]).unwrap();
    let got: Vec<_> = got.into_iter().map(|r| r.map(|f| f.best)).collect();
    assert_eq!(
        got,
        vec![Ok(true), Err(Error::AccessDenied), Ok(false), Err(Error::NotFound), Ok(true)],
        "c was not best (theirs is); b twice: the second is not found"
    );
    assert_eq!(b.state(), RouteState::Deleted);
    // Only the other entity's route is left; the emptied destinations are unlinked.
    assert_eq!((t.len(), t.route_count()), (1, 1));
    assert!(t.get(&p("10.1.2.0/24"), ViewSet::ANY).is_err());
    let g = t.pin();
    assert_eq!(t.lookup(&p("10.1.3.1"), &g).map(|x| x.prefix()), Some(p("10.1.3.0/24")));
    assert_eq!(t.lookup(&p("10.1.2.1"), &g).map(|x| x.prefix()), None);
    drop(g);
    if !cfg!(miri) {
        let too_many = vec![a.clone(); MAX_ROUTES_IN_BATCH + 1];
        assert_eq!(e.delete_routes(&too_many).err(), Some(Error::InvalidParameter));
    }
    let stale = e.clone();
    e.deregister().unwrap();
    assert_eq!(stale.delete_routes(&[a]).err(), Some(Error::InvalidHandle));
}

/// Deleting a whole loaded table in batches leaves an empty trie (root only):
/// every emptied node unlinked.
#[test]
fn a_table_deleted_in_batches_is_empty_and_pruned() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, EntityId::new(14, 1)).unwrap();
    let prefixes = table(if cfg!(miri) { 60 } else { 20_000 }, 4);
    let items: Vec<_> = prefixes.iter().map(|p| (*p, RouteParams::new(20, 0))).collect();
    let routes: Vec<RouteRef> = e.add_routes(&items).unwrap().into_iter().map(|r| r.unwrap().0).collect();
    let t = rtm.table(V4);
    assert_eq!(t.len(), prefixes.len());
    let m = t.memory();
    assert_eq!(m.destinations, prefixes.len());
    // Loaded with handles: every prefix has a destination object (its word, in the trie
    // node, names it).
    assert_eq!(m.destination_objects, prefixes.len());
    let each = m.destination_bytes / prefixes.len();
    assert_eq!(m.destination_bytes, each * prefixes.len());
    assert!(each >= 64 && each % 64 == 0, "whole lines ({each} bytes)");
    assert_eq!((m.trie_nodes, m.trie_bytes), t.node_stats());
    assert!(m.trie_nodes > 1 && m.trie_bytes >= 64 * m.trie_nodes);
    for chunk in routes.chunks(if cfg!(miri) { 25 } else { 1000 }) {
        assert!(e.delete_routes(chunk).unwrap().iter().all(|r| r.is_ok()));
    }
    assert!(t.is_empty());
    assert_eq!(t.route_count(), 0);
    assert_eq!(t.node_stats().0, 1, "every emptied node is unlinked");
    let m = t.memory();
    assert_eq!((m.trie_nodes, m.destinations, m.destination_bytes), (1, 0, 0));
    let g = t.pin();
    assert!(t.lookup(&gen::host_in(&prefixes[7], &mut gen::SplitMix64::new(1)), &g).is_none());
}

/// Routes of one entity with equal parameters share one version (batched or not, adjacent
/// or not); other parameters, another entity, or an update give a route its own. A deleted
/// route reads as deleted with its last contents while the routes sharing its version are
/// untouched.
#[test]
fn equal_parameters_share_one_version() {
    let rtm = Rtm::new();
    let e = rtm.register(V4, EntityId::new(14, 1)).unwrap();
    let other = rtm.register(V4, EntityId::new(13, 1)).unwrap();
    let nh = NextHop::new(p("192.0.2.1/32"), 1);
    let a = RouteParams::new(20, 1).next_hop(nh);
    let b = RouteParams::new(20, 2).next_hop(nh);
    let items =
        vec![(p("10.1.0.0/16"), a.clone()), (p("10.2.0.0/16"), b.clone()), (p("10.3.0.0/16"), a.clone())];
    let rs: Vec<RouteRef> = e.add_routes(&items).unwrap().into_iter().map(|r| r.unwrap().0).collect();
    let (single, _) = e.add_route(&p("10.4.0.0/16"), a.clone()).unwrap();
    let (theirs, _) = other.add_route(&p("10.5.0.0/16"), a.clone()).unwrap();
    let same = |x: &RouteRef, y: &RouteRef| rtm::Version::ptr_eq(&x.info(), &y.info());
    assert!(same(&rs[0], &rs[2]), "non-adjacent equal items");
    assert!(same(&rs[0], &single), "a single add after a batch");
    assert!(!same(&rs[0], &rs[1]), "different metric");
    assert!(!same(&rs[0], &theirs), "another entity's route");
    assert_eq!(theirs.info().owner(), EntityId::new(13, 1));
    e.update_route(&rs[2], b.clone()).unwrap();
    assert!(same(&rs[2], &rs[1]) && !same(&rs[2], &rs[0]), "an update takes the new parameters' version");
    e.delete_route(&single).unwrap();
    assert_eq!(single.state(), RouteState::Deleted);
    assert_eq!((single.info().metric(), single.info().next_hops()), (1, &[nh][..]));
    assert_eq!(rs[0].state(), RouteState::Created);
    assert_eq!(rs[0].info().metric(), 1);
}

/// Batched lookups (fast path and handle path) answer what single lookups do, in order,
/// in both families: IPv6 walks up to sixteen levels, IPv4 four. Hosts inside table
/// prefixes (nested ones included, so walks end at different depths), hosts outside any,
/// and a prefix-length query (not a host: the slow path), over several chunks.
#[test]
fn batched_lookups_equal_single_ones_in_both_families() {
    for fam in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
        let n = if cfg!(miri) { 12 } else { 3_000 };
        let mut prefixes = match fam {
            AddressFamily::Ipv4 => table(n, 5),
            AddressFamily::Ipv6 if cfg!(miri) => {
                ["2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::1/128"].iter().map(|s| p(s)).collect()
            }
            AddressFamily::Ipv6 => gen::ipv6_table(n, 5).expect("a count within the limit"),
        };
        // Longer prefixes inside some of them: deeper walks, and matches that a longer
        // walk passes by.
        let mut r = gen::SplitMix64::new(3);
        let inner: Vec<NetAddress> = prefixes
            .iter()
            .step_by(7)
            .map(|q| {
                let h = gen::host_in(q, &mut r);
                let len = (q.len() + 1 + r.below((fam.max_len() - q.len()) as u64) as u8).min(fam.max_len());
                NetAddress::new(fam, h.bytes(), len).unwrap()
            })
            .collect();
        prefixes.extend(inner);
        prefixes.sort();
        prefixes.dedup();
        let rtm = Rtm::new();
        let e = rtm.register(fam, EntityId::new(14, 1)).unwrap();
        for (i, q) in prefixes.iter().enumerate() {
            let _ = e.add_route(q, RouteParams::new(20, i as u32)).unwrap();
        }
        let t = rtm.table(fam);
        let mut addrs: Vec<NetAddress> = (0..if cfg!(miri) { 40 } else { 5_000 })
            .map(|i| gen::host_in(&prefixes[i % prefixes.len()], &mut r))
            .collect();
        // Hosts that may be in no prefix at all, and a shorter query.
        addrs.extend((0..40).map(|_| {
            let mut b = [0u8; 16];
            b.iter_mut().for_each(|x| *x = r.below(256) as u8);
            NetAddress::new(fam, &b, fam.max_len()).unwrap()
        }));
        addrs.push(prefixes[0]);
        let g = t.pin();
        let mut seen = 0;
        let mut found = 0;
        t.lookup_batch(&addrs, ViewId::UNICAST, &g, |i, got| {
            assert_eq!(i, seen, "in order, once each");
            seen += 1;
            let want = t.lookup_in(&addrs[i], ViewId::UNICAST, &g);
            found += usize::from(want.is_some());
            assert_eq!(
                got.map(|b| (b.prefix(), b.next_hops().len())),
                want.map(|b| (b.prefix(), b.next_hops().len())),
                "{}",
                addrs[i]
            );
        });
        assert_eq!(seen, addrs.len());
        assert!(found >= addrs.len() - 41, "{fam:?}: the in-table hosts all match ({found})");
        let mut seen = 0;
        t.most_specific_batch(&addrs, ViewSet::UNICAST, |i, got| {
            assert_eq!(i, seen);
            seen += 1;
            let want = t.most_specific(&addrs[i], ViewSet::UNICAST);
            assert_eq!(got.map(|d| d.prefix()), want.map(|d| d.prefix()), "{}", addrs[i]);
        });
        assert_eq!(seen, addrs.len());
    }
}
