//! Deterministic workload generation for demos, benches and tests that must run anywhere
//! (when `../shared/data` is absent).
//!
//! [`ipv4_table`] follows the prefix-length mix of a real 2023 full table (about 60 % /24,
//! 38 % /17–/23, 1.5 % /16, 0.5 % /8–/15, 0.1 % longer than /24); [`ipv6_table`] mostly
//! /48 (47 %), /32 (14 %), /44 (9 %), /40 (8 %), the rest spread over /29–/64. Addresses
//! are drawn from a seeded generator, clustered under a limited set of covering blocks as
//! real allocations are. The same `(count, seed)` always gives the same prefixes, in the
//! same order, without duplicates. [`peer_next_hop`] gives generated feeds the next hops a
//! router would see: its peers' addresses, not one per prefix.

use crate::error::{Error, Result};
use crate::prefix::{AddressFamily, NetAddress};
use crate::route::NextHop;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The next hop of peer `k` of a generated feed: an address of the documentation ranges
/// (`198.51.100.0/24`, `2001:db8::/32`) on interface `k + 1`. A feed learnt from a peer
/// carries the peer's address as next hop on all its routes, so a full table has a few
/// distinct next hops, not one per prefix.
pub fn peer_next_hop(family: AddressFamily, k: u8) -> NextHop {
    let addr = match family {
        AddressFamily::Ipv4 => Ipv4Addr::new(198, 51, 100, k).into(),
        AddressFamily::Ipv6 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(k)).into(),
    };
    NextHop::new(NetAddress::host(addr), u32::from(k) + 1)
}

/// A small, fast, seeded generator (SplitMix64): reproducible across platforms.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

fn v4_len(r: &mut SplitMix64) -> u8 {
    match r.below(10_000) {
        0..=5_999 => 24,
        6_000..=9_799 => 17 + r.below(7) as u8,
        9_800..=9_949 => 16,
        9_950..=9_989 => 8 + r.below(8) as u8,
        _ => 25 + r.below(8) as u8,
    }
}

fn v6_len(r: &mut SplitMix64) -> u8 {
    match r.below(100) {
        0..=46 => 48,
        47..=60 => 32,
        61..=69 => 44,
        70..=77 => 40,
        78..=85 => 36 + r.below(4) as u8,
        86..=93 => 29 + r.below(3) as u8,
        _ => 49 + r.below(16) as u8,
    }
}

/// The most prefixes [`ipv4_table`] and [`ipv6_table`] generate: four times a real full
/// table. The generators draw from a fixed set of allocation blocks, so their supply of
/// distinct prefixes of each length is finite: near it, new prefixes take ever more draws
/// (past about 12 M IPv4 prefixes, when the /17-/24 ones run out, a thousand draws each),
/// and past it the loop never ends; up to this count duplicates stay rare, and 4 Mi
/// prefixes of each family took 5.5 s.
pub const MAX_GENERATED: usize = 1 << 22;

/// `count` distinct IPv4 prefixes with a real table's length mix (see the module docs), in
/// address order, as a table dump lists them. `InvalidParameter` beyond
/// [`MAX_GENERATED`].
pub fn ipv4_table(count: usize, seed: u64) -> Result<Vec<NetAddress>> {
    if count > MAX_GENERATED {
        return Err(Error::InvalidParameter);
    }
    let mut r = SplitMix64::new(seed);
    // Real tables cluster: draw from 24k /16 allocation blocks in 1.0.0.0-223.255.255.255
    // (room for 6 M distinct /24s, so duplicates stay rare).
    let blocks: Vec<u32> =
        (0..24_000).map(|_| (1 + r.below(223) as u32) << 24 | (r.below(256) as u32) << 16).collect();
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let base = blocks[r.below(blocks.len() as u64) as usize];
        let addr = base | (r.next() as u32 & 0xffff);
        let a = NetAddress::v4(Ipv4Addr::from(addr), v4_len(&mut r)).unwrap_or_else(|_| unreachable!());
        if seen.insert(a) {
            out.push(a);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `count` distinct IPv6 prefixes under 2000::/3 with a real table's length mix, in address
/// order. `InvalidParameter` beyond [`MAX_GENERATED`].
pub fn ipv6_table(count: usize, seed: u64) -> Result<Vec<NetAddress>> {
    if count > MAX_GENERATED {
        return Err(Error::InvalidParameter);
    }
    let mut r = SplitMix64::new(seed);
    let blocks: Vec<u128> = (0..4_000)
        .map(|_| (0x2000u128 | r.below(0x2000) as u128) << 112 | (r.below(1 << 16) as u128) << 96)
        .collect();
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let base = blocks[r.below(blocks.len() as u64) as usize];
        let addr = base | ((r.next() as u128) << 32 & ((1u128 << 96) - 1));
        let a = NetAddress::v6(Ipv6Addr::from(addr), v6_len(&mut r)).unwrap_or_else(|_| unreachable!());
        if seen.insert(a) {
            out.push(a);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// A host address inside `p`, chosen by `r` (for in-table lookups).
pub fn host_in(p: &NetAddress, r: &mut SplitMix64) -> NetAddress {
    let mut b = *p.bytes();
    let width = p.family().max_len();
    let rnd = r.next().to_be_bytes();
    let rnd2 = r.next().to_be_bytes();
    for i in p.len()..width {
        let (byte, bit) = ((i / 8) as usize, 7 - i % 8);
        let src = if byte < 8 { rnd[byte] } else { rnd2[byte - 8] };
        b[byte] |= src & (1 << bit);
    }
    NetAddress::new(p.family(), &b, width).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "generates 25k prefixes; too slow under miri")]
    fn deterministic_distinct_and_mixed() {
        let a = ipv4_table(20_000, 1).unwrap();
        assert_eq!(a, ipv4_table(20_000, 1).unwrap());
        assert_ne!(a, ipv4_table(20_000, 2).unwrap());
        let set: HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), a.len());
        let share = |l: u8| a.iter().filter(|p| p.len() == l).count() as f64 / a.len() as f64;
        assert!((0.55..0.65).contains(&share(24)), "{}", share(24));
        let v6 = ipv6_table(5_000, 1).unwrap();
        let s48 = v6.iter().filter(|p| p.len() == 48).count() as f64 / 5_000.0;
        assert!((0.40..0.55).contains(&s48), "{s48}");
    }

    #[test]
    fn counts_over_the_limit_are_refused() {
        assert_eq!(ipv4_table(MAX_GENERATED + 1, 1), Err(Error::InvalidParameter));
        assert_eq!(ipv6_table(usize::MAX, 1), Err(Error::InvalidParameter));
        assert_eq!(ipv6_table(0, 1), Ok(Vec::new()));
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe arithmetic only; its 48k allocation blocks take a minute under miri")]
    fn host_in_is_inside() {
        let mut r = SplitMix64::new(3);
        for p in ipv4_table(1000, 5).unwrap().iter().chain(ipv6_table(1000, 5).unwrap().iter()) {
            let h = host_in(p, &mut r);
            assert!(p.contains(&h), "{h} not in {p}");
            assert_eq!(h.len(), p.family().max_len());
        }
    }
}
