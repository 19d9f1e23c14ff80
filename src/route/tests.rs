//! Unit tests of route parameters, versions and next-hop lists.

use super::*;
use std::hash::{BuildHasher, RandomState};

fn hop(i: u8) -> NextHop {
    NextHop::new(NetAddress::v4([192, 0, 2, i].into(), 32).expect("a host"), u32::from(i))
}

/// The packed hash of a version (`impl Hash for RouteInfo`): equal versions hash
/// alike, and a change of any one field `Eq` compares changes the hash (a field left
/// out would pile its versions into one interner probe).
#[test]
fn versions_hash_every_field_they_compare() {
    let s = RandomState::new();
    let owner = EntityId::new(14, 1);
    let base = RouteParams::new(20, 3).next_hop(hop(1)).neighbour(hop(9));
    let v = RouteInfo::from_params(&base, owner, 0);
    assert_eq!(s.hash_one(&v), s.hash_one(RouteInfo::from_params(&base.clone(), owner, 0)));
    let mut two = base.clone();
    two.next_hops.push(hop(2));
    let mut no_neighbour = base.clone();
    no_neighbour.neighbour = None;
    let v6_hop = NextHop::new(NetAddress::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1].into(), 128).unwrap(), 1);
    let changed: Vec<RouteInfo> = vec![
        RouteInfo::from_params(&RouteParams { preference: 21, ..base.clone() }, owner, 0),
        RouteInfo::from_params(&RouteParams { metric: 4, ..base.clone() }, owner, 0),
        RouteInfo::from_params(&base, EntityId::new(14, 2), 0),
        RouteInfo::from_params(&base, EntityId::new(13, 1), 0),
        RouteInfo::from_params(&RouteParams { views: ViewSet::MULTICAST, ..base.clone() }, owner, 0),
        RouteInfo::from_params(&RouteParams { flags: 1, ..base.clone() }, owner, 0),
        RouteInfo::from_params(&RouteParams { flags1: 1, ..base.clone() }, owner, 0),
        RouteInfo::from_params(&RouteParams { entity_info: 7, ..base.clone() }, owner, 0),
        RouteInfo::from_params(&no_neighbour, owner, 0),
        RouteInfo::from_params(&base.clone().neighbour(hop(8)), owner, 0),
        RouteInfo::from_params(
            &RouteParams { next_hops: NextHopList::from(&[hop(3)][..]), ..base.clone() },
            owner,
            0,
        ),
        RouteInfo::from_params(
            &RouteParams { next_hops: NextHopList::from(&[v6_hop][..]), ..base.clone() },
            owner,
            0,
        ),
        RouteInfo::from_params(&two, owner, 0),
        RouteInfo::from_params(&base, owner, 0).deleted(),
        RouteInfo::from_params(&base, owner, 1),
    ];
    for (i, c) in changed.iter().enumerate() {
        assert_ne!(*c, v, "change {i} is a change");
        assert_ne!(s.hash_one(c), s.hash_one(&v), "change {i} changes the hash");
    }
}

/// A `NextHopList` reads as the slice of what was pushed, whichever way it was built,
/// and lists with equal contents are equal and hash alike.
#[test]
fn next_hop_lists_are_their_slices() {
    let s = RandomState::new();
    let mut pushed = NextHopList::new();
    assert!(pushed.is_empty());
    for n in 1..=4u8 {
        pushed.push(hop(n));
        let want: Vec<NextHop> = (1..=n).map(hop).collect();
        assert_eq!(&pushed[..], &want[..]);
        let others =
            [NextHopList::from(want.clone()), NextHopList::from(&want[..]), want.iter().copied().collect()];
        for other in others {
            assert_eq!(other, pushed);
            assert_eq!(s.hash_one(&other), s.hash_one(&pushed));
        }
    }
    assert_ne!(pushed, NextHopList::from(vec![hop(1)]));
    let mut extended = NextHopList::from(vec![hop(1)]);
    extended.extend((2..=4).map(hop));
    assert_eq!(extended, pushed);
    assert_eq!((&pushed).into_iter().count(), 4);
    pushed.clear();
    assert_eq!(pushed, NextHopList::default());
    assert_eq!(format!("{:?}", NextHopList::from(vec![hop(1)])), format!("{:?}", vec![hop(1)]));
}
