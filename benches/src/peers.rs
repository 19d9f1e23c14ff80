//! Thin wrappers over peers whose setup is more than a line, so every bench builds them
//! the same way.

use rotonda_store::addr::Prefix;
use rotonda_store::match_options::{IncludeHistory, MatchOptions, MatchType};
use rotonda_store::prefix_record::{Record, RouteStatus};
use rotonda_store::rib::config::MemoryOnlyConfig;
use rotonda_store::rib::StarCastRib;
use rotonda_store::test_types::NoMeta;
use rtm::NetAddress;
use std::net::IpAddr;

/// rotonda-store's concurrent, lock-free RIB (`StarCastRib`, memory only), one record per
/// prefix. Readers pin its crossbeam-epoch guard, as rtm's fast path does.
pub struct Rotonda {
    rib: StarCastRib<NoMeta, MemoryOnlyConfig>,
}

const LPM: MatchOptions = MatchOptions {
    match_type: MatchType::LongestMatch,
    include_withdrawn: false,
    include_less_specifics: false,
    include_more_specifics: false,
    mui: None,
    include_history: IncludeHistory::None,
};

fn prefix(p: &NetAddress) -> Prefix {
    let net = ipnet::IpNet::from(*p);
    Prefix::new(net.network(), net.prefix_len()).expect("a normalized prefix")
}

impl Rotonda {
    /// A RIB holding `prefixes`.
    pub fn new(prefixes: &[NetAddress]) -> Self {
        let r = Rotonda { rib: StarCastRib::try_default().expect("memory-only RIB") };
        for p in prefixes {
            r.insert(p, 0);
        }
        r
    }

    /// Adds (or replaces) the record of `mui` for `p`.
    pub fn insert(&self, p: &NetAddress, mui: u32) {
        let rec = Record::new(mui, 0, RouteStatus::Active, NoMeta::Empty);
        self.rib.insert(&prefix(p), rec, None).expect("insert into a memory-only RIB");
    }

    /// Marks `mui`'s record for `p` withdrawn (rotonda-store's way to remove a route).
    pub fn withdraw(&self, p: &NetAddress, mui: u32) {
        let _ = self.rib.mark_mui_as_withdrawn_for_prefix(&prefix(p), mui, 0);
    }

    /// Length of the longest prefix covering `ip`, or 0 when none does.
    pub fn lpm_len(&self, ip: IpAddr, guard: &rotonda_store::epoch::Guard) -> u8 {
        let host = Prefix::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("a host prefix");
        match self.rib.match_prefix(&host, &LPM, guard) {
            Ok(r) => r.prefix.map_or(0, |p| p.len()),
            Err(_) => 0,
        }
    }
}
