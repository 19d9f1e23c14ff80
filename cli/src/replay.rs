//! Applying a BGP update stream to a table, as a BGP speaker would: one entity per (peer,
//! address family), one route per (peer, prefix).
//!
//! `bgpkit-parser` yields one element per prefix. A speaker works through its queue of
//! received UPDATE messages in bursts: consecutive announcements of one peer and family (up
//! to [`MAX_RUN`], across messages, each with its own path attributes) are applied with one
//! [`EntityRef::add_routes`] call, consecutive withdrawals with one
//! [`EntityRef::delete_routes`]. Both have the semantics of applying their items in order,
//! and a run never crosses a change of kind, peer or family, so the table goes through the
//! same states as with element-by-element application, only in fewer steps.

use crate::input::Update;
use crate::run::PROTO_BGP;
use rtm::{AddressFamily, EntityId, EntityRef, NetAddress, NextHop, RouteParams, RouteRef, Rtm};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The entities and routes of a replay in progress.
pub struct Replayer<'a> {
    rtm: &'a Rtm,
    entities: HashMap<(u32, bool), EntityRef>,
    routes: HashMap<(u32, NetAddress), RouteRef>,
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
        Self { rtm, entities: HashMap::new(), routes: HashMap::new() }
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
            let items: Vec<(NetAddress, RouteParams)> = run.iter().map(|m| (m.prefix, params(m))).collect();
            let Ok(res) = e.add_routes(&items) else { return };
            for (m, r) in run.iter().zip(res) {
                if let Ok((r, _)) = r {
                    self.routes.insert((m.peer, m.prefix), r);
                }
            }
        } else {
            let gone: Vec<RouteRef> =
                run.iter().filter_map(|m| self.routes.remove(&(m.peer, m.prefix))).collect();
            let _ = e.delete_routes(&gone);
        }
    }
}
