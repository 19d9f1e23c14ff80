//! Addresses and prefixes: [`NetAddress`], the `RTM_NET_ADDRESS` model (family, length,
//! 16 address bytes in network order).
//!
//! Invariants of every `NetAddress` value:
//! * `len <= family.max_len()` (32 for IPv4, 128 for IPv6) — construction rejects longer
//!   lengths with [`Error::InvalidParameter`];
//! * **host bits are zero**: every constructor masks the bits beyond `len` away (RTMv2
//!   says an address inconsistent with its length gives undefined results; rtm
//!   normalises, always, so `10.1.2.3/8` *is* `10.0.0.0/8`);
//! * for IPv4 only the first 4 bytes are used; the other 12 are zero.
//!
//! Because of these invariants `==`, `Hash` and `Ord` compare prefixes, not spellings.
//! `Ord` sorts by family, then address bytes, then length — the order enumerations use.

use crate::error::{Error, Result};
use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family: one routing table per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressFamily {
    /// IPv4 (`AF_INET` = 2).
    Ipv4,
    /// IPv6 (`AF_INET6` = 23).
    Ipv6,
}

impl AddressFamily {
    /// Address width in bits: 32 or 128.
    pub const fn max_len(self) -> u8 {
        match self {
            AddressFamily::Ipv4 => 32,
            AddressFamily::Ipv6 => 128,
        }
    }

    /// The Windows `AF_*` value (`AF_INET` = 2, `AF_INET6` = 23).
    pub const fn to_af(self) -> u16 {
        match self {
            AddressFamily::Ipv4 => 2,
            AddressFamily::Ipv6 => 23,
        }
    }

    /// Parses a Windows `AF_*` value.
    pub const fn from_af(af: u16) -> Result<Self> {
        match af {
            2 => Ok(AddressFamily::Ipv4),
            23 => Ok(AddressFamily::Ipv6),
            _ => Err(Error::InvalidParameter),
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// A prefix (or, with the full length, a host address) of one family. See the module docs
/// for the invariants.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetAddress {
    family: AddressFamily,
    len: u8,
    bytes: [u8; 16],
}

/// Zeroes every bit of `bytes` beyond the first `len`.
fn mask(bytes: &mut [u8; 16], len: u8) {
    let full = (len / 8) as usize;
    let rem = len % 8;
    if full < 16 {
        if rem != 0 {
            bytes[full] &= 0xffu8 << (8 - rem);
            bytes[full + 1..].fill(0);
        } else {
            bytes[full..].fill(0);
        }
    }
}

impl NetAddress {
    /// Builds a prefix from a family, a length and the address bytes (network order; for
    /// IPv4 the first 4 bytes are used). Host bits are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `len` exceeds the family's width.
    pub fn new(family: AddressFamily, bytes: &[u8; 16], len: u8) -> Result<Self> {
        if len > family.max_len() {
            return Err(Error::InvalidParameter);
        }
        let mut b = *bytes;
        if family == AddressFamily::Ipv4 {
            b[4..].fill(0);
        }
        mask(&mut b, len);
        Ok(Self { family, len, bytes: b })
    }

    /// An IPv4 prefix. Host bits are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `len > 32`.
    pub fn v4(addr: Ipv4Addr, len: u8) -> Result<Self> {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&addr.octets());
        Self::new(AddressFamily::Ipv4, &b, len)
    }

    /// An IPv6 prefix. Host bits are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `len > 128`.
    pub fn v6(addr: Ipv6Addr, len: u8) -> Result<Self> {
        Self::new(AddressFamily::Ipv6, &addr.octets(), len)
    }

    /// A prefix from any IP address. Host bits are cleared.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `len` exceeds the address width.
    pub fn from_ip(addr: IpAddr, len: u8) -> Result<Self> {
        match addr {
            IpAddr::V4(a) => Self::v4(a, len),
            IpAddr::V6(a) => Self::v6(a, len),
        }
    }

    /// A full-length (host) address: /32 or /128.
    pub fn host(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::v4(a, 32),
            IpAddr::V6(a) => Self::v6(a, 128),
        }
        .unwrap_or_else(|_| unreachable!("full length is always valid"))
    }

    /// The family.
    pub const fn family(&self) -> AddressFamily {
        self.family
    }

    /// The prefix length in bits.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// The 16 address bytes, network order, host bits zero (IPv4 uses the first 4).
    pub const fn bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// The address part as an `IpAddr`.
    pub fn addr(&self) -> IpAddr {
        match self.family {
            AddressFamily::Ipv4 => {
                IpAddr::V4(Ipv4Addr::new(self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]))
            }
            AddressFamily::Ipv6 => IpAddr::V6(Ipv6Addr::from(self.bytes)),
        }
    }

    /// Whether `other` (of the same family) lies inside this prefix: same family,
    /// `other.len() >= self.len()` and the first `self.len()` bits agree.
    pub fn contains(&self, other: &NetAddress) -> bool {
        if self.family != other.family || other.len < self.len {
            return false;
        }
        let mut b = other.bytes;
        mask(&mut b, self.len);
        b == self.bytes
    }

    /// This prefix shortened to `len` bits (`len` clamped to the current length).
    pub fn truncate(&self, len: u8) -> NetAddress {
        let len = len.min(self.len);
        let mut b = self.bytes;
        mask(&mut b, len);
        NetAddress { family: self.family, len, bytes: b }
    }
}

impl PartialOrd for NetAddress {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NetAddress {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.family, self.bytes, self.len).cmp(&(other.family, other.bytes, other.len))
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses `a.b.c.d/len`, `x:y::z/len`, or a bare address (full length). Host bits are
/// cleared. Any other text, or a length beyond the family's width, is
/// [`Error::InvalidParameter`].
impl FromStr for NetAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => {
                // Only plain decimal digits: no sign, no spaces, no hex.
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(Error::InvalidParameter);
                }
                let len: u16 = l.parse().map_err(|_| Error::InvalidParameter)?;
                (a, Some(u8::try_from(len).map_err(|_| Error::InvalidParameter)?))
            }
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| Error::InvalidParameter)?;
        match len {
            Some(len) => NetAddress::from_ip(ip, len),
            None => Ok(NetAddress::host(ip)),
        }
    }
}

impl From<ipnet::Ipv4Net> for NetAddress {
    fn from(n: ipnet::Ipv4Net) -> Self {
        // ipnet guarantees prefix_len <= 32.
        NetAddress::v4(n.network(), n.prefix_len()).unwrap_or_else(|_| unreachable!())
    }
}

impl From<ipnet::Ipv6Net> for NetAddress {
    fn from(n: ipnet::Ipv6Net) -> Self {
        NetAddress::v6(n.network(), n.prefix_len()).unwrap_or_else(|_| unreachable!())
    }
}

impl From<ipnet::IpNet> for NetAddress {
    fn from(n: ipnet::IpNet) -> Self {
        match n {
            ipnet::IpNet::V4(n) => n.into(),
            ipnet::IpNet::V6(n) => n.into(),
        }
    }
}

impl From<NetAddress> for ipnet::IpNet {
    fn from(a: NetAddress) -> Self {
        // The length invariant makes both constructors infallible.
        match a.addr() {
            IpAddr::V4(v4) => {
                ipnet::IpNet::V4(ipnet::Ipv4Net::new(v4, a.len).unwrap_or_else(|_| unreachable!()))
            }
            IpAddr::V6(v6) => {
                ipnet::IpNet::V6(ipnet::Ipv6Net::new(v6, a.len).unwrap_or_else(|_| unreachable!()))
            }
        }
    }
}

impl From<IpAddr> for NetAddress {
    fn from(a: IpAddr) -> Self {
        NetAddress::host(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> NetAddress {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(p("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(p("192.0.2.1").len(), 32);
        assert_eq!(p("::1").len(), 128);
        assert_eq!(p("0.0.0.0/0").len(), 0);
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(p("10.1.2.3/8"), p("10.0.0.0/8"));
        assert_eq!(p("10.255.255.255/9").to_string(), "10.128.0.0/9");
        assert_eq!(p("2001:db8:ffff::1/33").to_string(), "2001:db8:8000::/33");
        assert_eq!(p("255.255.255.255/0").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn invalid_input_is_an_error() {
        for s in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0/8",
            "x/8",
            "",
            "/8",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            "10.0.0.0/0x8",
            "1.2.3.4/1000",
        ] {
            assert_eq!(s.parse::<NetAddress>(), Err(Error::InvalidParameter), "{s:?}");
        }
        assert_eq!(NetAddress::v4(Ipv4Addr::LOCALHOST, 33), Err(Error::InvalidParameter));
        assert_eq!(NetAddress::new(AddressFamily::Ipv6, &[0; 16], 129), Err(Error::InvalidParameter));
    }

    #[test]
    fn ipv4_ignores_trailing_bytes() {
        let a = NetAddress::new(AddressFamily::Ipv4, &[10, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], 8)
            .unwrap();
        assert_eq!(a, p("10.0.0.0/8"));
    }

    #[test]
    fn contains_and_truncate() {
        assert!(p("10.0.0.0/8").contains(&p("10.1.0.0/16")));
        assert!(p("10.0.0.0/8").contains(&p("10.0.0.0/8")));
        assert!(!p("10.1.0.0/16").contains(&p("10.0.0.0/8")));
        assert!(!p("10.0.0.0/8").contains(&p("11.0.0.0/16")));
        assert!(p("0.0.0.0/0").contains(&p("1.2.3.4")));
        assert!(!p("0.0.0.0/0").contains(&p("::/0")));
        assert_eq!(p("10.1.2.3").truncate(16), p("10.1.0.0/16"));
        assert_eq!(p("10.1.0.0/16").truncate(24), p("10.1.0.0/16"));
    }

    #[test]
    fn ordering_is_address_then_length() {
        let mut v = vec![p("10.0.0.0/16"), p("10.0.0.0/8"), p("9.0.0.0/8"), p("::/0")];
        v.sort();
        assert_eq!(v, vec![p("9.0.0.0/8"), p("10.0.0.0/8"), p("10.0.0.0/16"), p("::/0")]);
    }

    #[test]
    fn ipnet_round_trip() {
        for s in ["10.0.0.0/8", "0.0.0.0/0", "1.2.3.4/32", "2001:db8::/48", "::/0"] {
            let n: ipnet::IpNet = s.parse().unwrap();
            let a = NetAddress::from(n);
            assert_eq!(a, p(s));
            assert_eq!(ipnet::IpNet::from(a), n);
        }
    }

    #[test]
    fn af_values() {
        assert_eq!(AddressFamily::from_af(2), Ok(AddressFamily::Ipv4));
        assert_eq!(AddressFamily::from_af(23), Ok(AddressFamily::Ipv6));
        assert_eq!(AddressFamily::from_af(7), Err(Error::InvalidParameter));
        assert_eq!(AddressFamily::Ipv6.to_af(), 23);
    }
}
