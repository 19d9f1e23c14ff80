//! Views (RTMv2 `RTM_VIEW_ID` / `RTM_VIEW_SET`): a route belongs to a set of views, and each
//! destination keeps its best route per view. Up to 32 view ids; 0 is unicast, 1 multicast.

use crate::error::{Error, Result};

/// One view id, `0..32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewId(u8);

impl ViewId {
    /// The unicast view (`RTM_VIEW_ID_UCAST` = 0).
    pub const UNICAST: ViewId = ViewId(0);
    /// The multicast view (`RTM_VIEW_ID_MCAST` = 1).
    pub const MULTICAST: ViewId = ViewId(1);

    /// A view id; [`Error::InvalidParameter`] unless `id < 32`.
    pub const fn new(id: u8) -> Result<Self> {
        if id < 32 {
            Ok(ViewId(id))
        } else {
            Err(Error::InvalidParameter)
        }
    }

    /// The numeric id.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// A set of views, as the RTMv2 bit mask (`1 << id`).
///
/// As a *query* argument the empty set is [`ViewSet::ANY`] (RTMv2's `RTM_VIEW_MASK_ANY`,
/// also 0): "regardless of view".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ViewSet(u32);

impl ViewSet {
    /// The empty set; as a query argument, "any view" (`RTM_VIEW_MASK_ANY`).
    pub const ANY: ViewSet = ViewSet(0);
    /// Unicast only (`RTM_VIEW_MASK_UCAST`).
    pub const UNICAST: ViewSet = ViewSet(1);
    /// Multicast only (`RTM_VIEW_MASK_MCAST`).
    pub const MULTICAST: ViewSet = ViewSet(2);
    /// All 32 views (`RTM_VIEW_MASK_ALL`).
    pub const ALL: ViewSet = ViewSet(u32::MAX);

    /// From the RTMv2 bit mask.
    pub const fn from_bits(bits: u32) -> Self {
        ViewSet(bits)
    }
    /// The RTMv2 bit mask.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether `v` is in the set.
    pub const fn contains(self, v: ViewId) -> bool {
        self.0 & (1 << v.0) != 0
    }
    /// Whether every view of `other` is in `self`.
    pub const fn is_superset(self, other: ViewSet) -> bool {
        other.0 & !self.0 == 0
    }
    /// Whether the sets share a view.
    pub const fn intersects(self, other: ViewSet) -> bool {
        self.0 & other.0 != 0
    }
    /// The intersection.
    pub const fn and(self, other: ViewSet) -> ViewSet {
        ViewSet(self.0 & other.0)
    }
    /// The set with `v` added.
    pub const fn with(self, v: ViewId) -> ViewSet {
        ViewSet(self.0 | 1 << v.0)
    }
    /// Number of views in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }
    /// The views in ascending id order.
    pub fn iter(self) -> impl Iterator<Item = ViewId> {
        // Lowest set bit first, cleared as it goes: one step per view in the set.
        let mut rest = self.0;
        core::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let v = ViewId(rest.trailing_zeros() as u8);
            rest &= rest - 1;
            Some(v)
        })
    }
}

impl From<ViewId> for ViewSet {
    fn from(v: ViewId) -> Self {
        ViewSet(1 << v.0)
    }
}

impl core::ops::BitOr for ViewSet {
    type Output = ViewSet;
    fn bitor(self, rhs: ViewSet) -> ViewSet {
        ViewSet(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let s = ViewSet::UNICAST | ViewSet::MULTICAST;
        assert_eq!(s.bits(), 3);
        assert!(s.contains(ViewId::MULTICAST));
        assert!(!ViewSet::UNICAST.contains(ViewId::MULTICAST));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![ViewId::UNICAST, ViewId::MULTICAST]);
        assert_eq!(ViewSet::ALL.len(), 32);
        assert!(ViewSet::ALL.is_superset(s));
        assert!(!ViewSet::UNICAST.is_superset(s));
        assert_eq!(ViewId::new(32), Err(Error::InvalidParameter));
        assert_eq!(ViewSet::from(ViewId::new(31).unwrap()).bits(), 1 << 31);
    }
}
