//! Applying a BGP update stream to a table, as a BGP speaker would: one entity per (peer,
//! address family), one route per (peer, prefix).
//!
//! `bgpkit-parser` yields one element per prefix. A speaker works through its queue of
//! received UPDATE messages in bursts: consecutive announcements of one peer and family (up
//! to [`MAX_RUN`], across messages, each with its own path attributes) are applied with one
//! [`EntityRef::insert_routes`] call, consecutive withdrawals with one
//! [`EntityRef::withdraw_routes`]. Both have the semantics of applying their items in
//! order, and a run never crosses a change of kind, peer or family, so the table goes
//! through the same states as with element-by-element application, only in fewer steps.
//!
//! The table is the speaker's Adj-RIB-In, written without handles (`RtmAddRouteToDest` with
//! a NULL handle): a route is named by (prefix, peer entity, no neighbour), so the
//! replayer keeps no per-route state, and a prefix only one peer announced stays a lone
//! route (no destination object).

use crate::input::Update;
use crate::run::PROTO_BGP;
use rtm::{AddressFamily, EntityId, EntityRef, NetAddress, NextHop, RouteParams, Rtm};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The entities and routes of a replay in progress.
pub struct Replayer<'a> {
    rtm: &'a Rtm,
    entities: FxHashMap<(u32, bool), EntityRef>,
    /// The items of the run being applied (kept to reuse the allocation).
    items: Vec<(NetAddress, RouteParams)>,
    gone: Vec<(NetAddress, Option<NextHop>)>,
}

/// Most elements applied in one call.
pub const MAX_RUN: usize = 1024;

/// Whether `b` may join the run `a` starts: same peer, kind and family.
fn same_run(a: &Update, b: &Update) -> bool {
    a.peer == b.peer && a.announce == b.announce && a.prefix.family() == b.prefix.family()
}

/// The route parameters an announcement maps to (lower preference is better: higher
/// LOCAL_PREF maps lower).
fn params(u: &Update) -> RouteParams {
    let nh = u.next_hop.map_or(NetAddress::host(u.prefix.addr()), NetAddress::host);
    RouteParams::new(1000u32.saturating_sub(u.local_pref.min(1000)), u.med)
        .next_hop(NextHop::new(nh, u.peer + 1))
}

impl<'a> Replayer<'a> {
    /// A replayer registering its peer entities in `rtm` (protocol BGP, instance 100 + peer).
    pub fn new(rtm: &'a Rtm) -> Self {
        Self {
            rtm,
            entities: FxHashMap::default(),
            items: Vec::with_capacity(MAX_RUN),
            gone: Vec::with_capacity(MAX_RUN),
        }
    }

    /// Applies `ups` in order, a run at a time, until done or `stop` is set. Returns the
    /// elements applied.
    pub fn apply(&mut self, ups: &[Update], stop: Option<&AtomicBool>) -> u64 {
        let mut n = 0u64;
        let mut i = 0;
        while i < ups.len() {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                break;
            }
            let mut j = i + 1;
            while j < ups.len() && j - i < MAX_RUN && same_run(&ups[i], &ups[j]) {
                j += 1;
            }
            self.run(&ups[i..j]);
            n += (j - i) as u64;
            i = j;
        }
        n
    }

    /// One run: elements of one peer, family and kind.
    fn run(&mut self, run: &[Update]) {
        let u = &run[0];
        let v6 = u.prefix.family() == AddressFamily::Ipv6;
        let rtm = self.rtm;
        let e = self.entities.entry((u.peer, v6)).or_insert_with(|| {
            let fam = if v6 { AddressFamily::Ipv6 } else { AddressFamily::Ipv4 };
            // A fresh (peer, family) pair: registration cannot collide.
            rtm.register(fam, EntityId::new(PROTO_BGP, 100 + u.peer)).expect("one entity per peer")
        });
        if u.announce {
            self.items.clear();
            self.items.extend(run.iter().map(|m| (m.prefix, params(m))));
            // Items the table refuses (none from a parsed stream) are skipped, as a speaker
            // would log and go on.
            let _ = e.insert_routes(&self.items);
        } else {
            self.gone.clear();
            self.gone.extend(run.iter().map(|m| (m.prefix, None)));
            // A withdrawal of a prefix the peer never announced finds nothing: skipped.
            let _ = e.withdraw_routes(&self.gone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtm::{RouteMatch, ViewSet};

    fn up(peer: u32, prefix: &str, announce: bool, local_pref: u32) -> Update {
        Update {
            peer,
            prefix: prefix.parse().expect("a prefix"),
            announce,
            next_hop: Some([192, 0, 2, peer as u8 + 1].into()),
            local_pref,
            med: 0,
            timestamp: 0.0,
        }
    }

    /// The preference of each route on `prefix`, by owner instance (peer + 100).
    fn routes(rtm: &Rtm, prefix: &str) -> Vec<(u32, u32)> {
        let p: NetAddress = prefix.parse().expect("a prefix");
        let t = rtm.table(p.family());
        let mut v: Vec<(u32, u32)> = (0..3)
            .filter_map(|peer| {
                let owner =
                    RouteMatch { owner: Some(EntityId::new(PROTO_BGP, 100 + peer)), ..Default::default() };
                t.get_route(&p, &owner, ViewSet::ANY).ok().map(|r| (peer, r.info().preference()))
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_stream_leaves_each_peers_last_word() {
        let rtm = Rtm::new();
        let ups = vec![
            up(0, "10.0.0.0/8", true, 100),
            up(0, "10.1.0.0/16", true, 100),
            up(1, "10.0.0.0/8", true, 200),
            up(1, "2001:db8::/32", true, 100),
            // Peer 0 re-announces with a new LOCAL_PREF (replaces its route), then withdraws
            // the /16 and a prefix it never announced.
            up(0, "10.0.0.0/8", true, 300),
            up(0, "10.1.0.0/16", false, 0),
            up(0, "192.0.2.0/24", false, 0),
            up(1, "2001:db8::/32", false, 0),
            up(1, "2001:db8::/32", true, 150),
        ];
        let mut r = Replayer::new(&rtm);
        assert_eq!(r.apply(&ups, None), ups.len() as u64);
        assert_eq!(routes(&rtm, "10.0.0.0/8"), vec![(0, 700), (1, 800)]);
        assert_eq!(routes(&rtm, "10.1.0.0/16"), vec![]);
        assert_eq!(routes(&rtm, "192.0.2.0/24"), vec![]);
        assert_eq!(routes(&rtm, "2001:db8::/32"), vec![(1, 850)]);
        // The best route of 10/8 is peer 0's (higher LOCAL_PREF, lower preference).
        let t = rtm.table(AddressFamily::Ipv4);
        let g = t.pin();
        let best = t.lookup(&"10.2.3.4/32".parse().expect("an address"), &g).expect("covered");
        assert_eq!(best.route().preference(), 700);
    }

    #[test]
    fn a_set_stop_flag_applies_nothing() {
        let rtm = Rtm::new();
        let stop = AtomicBool::new(true);
        assert_eq!(Replayer::new(&rtm).apply(&[up(0, "10.0.0.0/8", true, 100)], Some(&stop)), 0);
        assert_eq!(routes(&rtm, "10.0.0.0/8"), vec![]);
    }
}
