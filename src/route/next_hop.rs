//! Next hops: [`NextHop`] (a neighbour address and an interface), the list a caller
//! gives ([`NextHopList`]: one inline, more on the heap) and the copy a version keeps
//! ([`NextHops`], shared, no allocation for one).

use crate::prefix::NetAddress;
use crate::sync::SharedSlice;
use core::fmt;

/// A next hop: a neighbour address and the outgoing interface (`RTM_NEXTHOP_INFO`'s key,
/// `(NextHopAddress, InterfaceIndex)`). Interface 0 means a remote next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The next hop's address (normally a host address).
    pub address: NetAddress,
    /// Outgoing interface index.
    pub interface: u32,
}

impl NextHop {
    /// A next hop through `interface`.
    #[inline]
    pub fn new(address: NetAddress, interface: u32) -> Self {
        Self { address, interface }
    }
}

/// A route's next hops: up to one inline (the common case; no allocation, no extra cache
/// miss on the forwarding path), else a shared slice (so copying the set into every route
/// list snapshot costs one reference count, not an allocation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NextHops {
    Inline(Option<NextHop>),
    Heap(SharedSlice<NextHop>),
}

impl From<&[NextHop]> for NextHops {
    fn from(v: &[NextHop]) -> Self {
        match v {
            [] => NextHops::Inline(None),
            [one] => NextHops::Inline(Some(*one)),
            _ => NextHops::Heap(v.into()),
        }
    }
}

impl core::ops::Deref for NextHops {
    type Target = [NextHop];
    #[inline(always)]
    fn deref(&self) -> &[NextHop] {
        match self {
            NextHops::Inline(o) => o.as_slice(),
            NextHops::Heap(b) => b,
        }
    }
}

/// The next hops of a [`RouteParams`](super::RouteParams): a list that keeps up to one next hop inline (the
/// common case: building a one-hop route's parameters allocates nothing; session 19: a
/// `Vec` here was an allocation and a free per route, about 8 % of a replay's
/// instructions) and more on the heap. Derefs to a slice; equality and hashing are the
/// slice's.
#[derive(Clone, Default)]
pub struct NextHopList(HopRepr);

#[derive(Clone)]
enum HopRepr {
    Inline(Option<NextHop>),
    Heap(Vec<NextHop>),
}

impl Default for HopRepr {
    fn default() -> Self {
        HopRepr::Inline(None)
    }
}

impl NextHopList {
    /// An empty list.
    pub const fn new() -> Self {
        Self(HopRepr::Inline(None))
    }

    /// Appends `nh`.
    #[inline]
    pub fn push(&mut self, nh: NextHop) {
        match &mut self.0 {
            HopRepr::Inline(slot @ None) => *slot = Some(nh),
            HopRepr::Inline(Some(first)) => self.0 = HopRepr::Heap(vec![*first, nh]),
            HopRepr::Heap(v) => v.push(nh),
        }
    }

    /// Removes every next hop.
    pub fn clear(&mut self) {
        self.0 = HopRepr::Inline(None);
    }
}

impl core::ops::Deref for NextHopList {
    type Target = [NextHop];
    #[inline]
    fn deref(&self) -> &[NextHop] {
        match &self.0 {
            HopRepr::Inline(o) => o.as_slice(),
            HopRepr::Heap(v) => v,
        }
    }
}

impl From<&[NextHop]> for NextHopList {
    fn from(v: &[NextHop]) -> Self {
        match v {
            [] => Self::new(),
            [one] => Self(HopRepr::Inline(Some(*one))),
            _ => Self(HopRepr::Heap(v.to_vec())),
        }
    }
}

impl From<Vec<NextHop>> for NextHopList {
    fn from(v: Vec<NextHop>) -> Self {
        if v.len() <= 1 {
            Self::from(&v[..])
        } else {
            Self(HopRepr::Heap(v))
        }
    }
}

impl FromIterator<NextHop> for NextHopList {
    fn from_iter<I: IntoIterator<Item = NextHop>>(iter: I) -> Self {
        let mut l = Self::new();
        l.extend(iter);
        l
    }
}

impl Extend<NextHop> for NextHopList {
    fn extend<I: IntoIterator<Item = NextHop>>(&mut self, iter: I) {
        for nh in iter {
            self.push(nh);
        }
    }
}

impl<'a> IntoIterator for &'a NextHopList {
    type Item = &'a NextHop;
    type IntoIter = core::slice::Iter<'a, NextHop>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for NextHopList {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for NextHopList {}

impl core::hash::Hash for NextHopList {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for NextHopList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
