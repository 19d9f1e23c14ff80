//! Trie node contents: the immutable [`CNode`].
//!
//! A node at depth `d` consumes key byte `d` (stride 8). It stores
//! * the *internal prefixes* whose length lies in `(8d, 8d + 8]` (the root also stores
//!   length 0), keyed by a heap index `hk = (1 << rel_len) | rel_bits` with
//!   `rel_len = len - 8d` in `0..=8` — ascending `hk` is ascending length;
//! * up to 256 children (depth `d + 1`), one per value of key byte `d`, as a 256-bit bitmap
//!   plus a dense array in slot order (rank = popcount below the slot);
//! * a *leaf vector* (poptrie style): for every slot, the longest internal prefix covering
//!   it, run-length encoded as a 256-bit bitmap of run starts plus one value per run.
//!   A lookup reads one leaf and one child per level: no per-length probing.
//!
//! A `CNode` is never modified after it is published; writers build a new one
//! ([`CNode::build`]) and swap it into the owning `INode` (see `trie/mod.rs`).
//! It holds raw pointers: children (`*const INode`) and values (`*const V`), stored as
//! `usize`. The node owns neither: the trie frees children explicitly and the caller owns
//! the values' link references.

use crate::sync::{prefetch, TrackedCell};

/// Bit set of 256 slots with per-word cumulative counts for O(1) rank.
#[derive(Clone, Copy, Default)]
pub(super) struct Bits256 {
    words: [u64; 4],
    base: [u16; 4],
}

impl Bits256 {
    fn from_words(words: [u64; 4]) -> Self {
        let mut base = [0u16; 4];
        let mut acc = 0u16;
        for i in 0..4 {
            base[i] = acc;
            acc += words[i].count_ones() as u16;
        }
        Self { words, base }
    }

    #[inline(always)]
    pub(super) fn contains(&self, slot: u8) -> bool {
        (self.words[(slot >> 6) as usize] >> (slot & 63)) & 1 == 1
    }

    /// Number of set bits strictly below `slot`.
    #[inline(always)]
    pub(super) fn rank(&self, slot: u8) -> usize {
        let w = (slot >> 6) as usize;
        let below = self.words[w] & ((1u64 << (slot & 63)) - 1);
        self.base[w] as usize + below.count_ones() as usize
    }

    /// Number of set bits at or below `slot`.
    #[inline(always)]
    fn rank_incl(&self, slot: u8) -> usize {
        let w = (slot >> 6) as usize;
        let bit = slot & 63;
        let m = if bit == 63 { u64::MAX } else { (2u64 << bit) - 1 };
        self.base[w] as usize + (self.words[w] & m).count_ones() as usize
    }

    fn is_empty(&self) -> bool {
        self.words == [0; 4]
    }

    fn len(&self) -> usize {
        self.base[3] as usize + self.words[3].count_ones() as usize
    }
}

/// Heap key of an internal prefix: `(1 << rel_len) | rel_bits`, `rel_len` in `0..=8`.
pub(super) type HeapKey = u16;

/// `rel_len` of a heap key.
#[inline]
pub(super) fn hk_len(hk: HeapKey) -> u8 {
    (15 - hk.leading_zeros()) as u8
}

/// First slot covered by a heap key.
#[inline]
pub(super) fn hk_start(hk: HeapKey) -> u8 {
    let len = hk_len(hk);
    let bits = hk & !(1 << len);
    ((bits as u32) << (8 - len)) as u8
}

/// See the module docs.
pub(super) struct CNode {
    pub(super) alive: TrackedCell<()>,
    /// A tombed node is empty and about to be unlinked from its parent; nobody may add to
    /// it (an inserter helps unlink it and retries).
    pub(super) tomb: bool,
    children: Bits256,
    leaves: Bits256,
    /// Children (in slot order), then one value per leaf run (0 = no prefix covers it).
    ptrs: Box<[usize]>,
    /// Internal prefixes sorted by heap key: writers and the slow paths read these.
    prefixes: Box<[(HeapKey, usize)]>,
}

impl CNode {
    /// An empty node.
    pub(super) fn empty() -> Self {
        Self::build(&[], &[], false)
    }

    /// Builds a node from its internal prefixes (sorted by heap key, values non-zero) and
    /// its children (sorted by slot, pointers non-zero).
    pub(super) fn build(prefixes: &[(HeapKey, usize)], children: &[(u8, usize)], tomb: bool) -> Self {
        debug_assert!(prefixes.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(children.windows(2).all(|w| w[0].0 < w[1].0));
        let mut cw = [0u64; 4];
        for &(s, _) in children {
            cw[(s >> 6) as usize] |= 1 << (s & 63);
        }
        let mut ptrs: Vec<usize> = Vec::with_capacity(children.len() + 1 + prefixes.len() * 2);
        ptrs.extend(children.iter().map(|&(_, p)| p));
        let mut lw = [0u64; 4];
        if !prefixes.is_empty() {
            // Longest covering prefix per slot: fill in ascending length, longer overwrite.
            let mut best = [0usize; 256];
            for &(hk, v) in prefixes {
                let start = hk_start(hk) as usize;
                let count = 1usize << (8 - hk_len(hk));
                best[start..start + count].fill(v);
            }
            let mut prev = usize::MAX;
            for (s, &v) in best.iter().enumerate() {
                if v != prev {
                    lw[s >> 6] |= 1 << (s & 63);
                    ptrs.push(v);
                    prev = v;
                }
            }
        }
        Self {
            alive: TrackedCell::new(()),
            tomb,
            children: Bits256::from_words(cw),
            leaves: Bits256::from_words(lw),
            ptrs: ptrs.into_boxed_slice(),
            prefixes: prefixes.to_vec().into_boxed_slice(),
        }
    }

    /// Index in `ptrs` of the leaf run covering `slot`, if any prefix is stored here.
    #[inline(always)]
    fn leaf_index(&self, slot: u8) -> Option<usize> {
        // Slot 0 always starts a run, so rank_incl >= 1.
        (!self.leaves.is_empty()).then(|| self.children.len() + self.leaves.rank_incl(slot) - 1)
    }

    /// Index in `ptrs` of the child at `slot`, if there is one.
    #[inline(always)]
    fn child_index(&self, slot: u8) -> Option<usize> {
        self.children.contains(slot).then(|| self.children.rank(slot))
    }

    /// The longest internal prefix covering `slot`, as a raw value (0 if none).
    #[inline(always)]
    pub(super) fn leaf(&self, slot: u8) -> usize {
        self.leaf_index(slot).map_or(0, |i| self.ptrs[i])
    }

    /// The child at `slot` (0 if none).
    #[inline(always)]
    pub(super) fn child(&self, slot: u8) -> usize {
        self.child_index(slot).map_or(0, |i| self.ptrs[i])
    }

    /// Prefetches the cache lines [`leaf`](Self::leaf) and [`child`](Self::child) will read
    /// for `slot`.
    #[inline(always)]
    pub(super) fn prefetch(&self, slot: u8) {
        for i in [self.child_index(slot), self.leaf_index(slot)].into_iter().flatten() {
            prefetch(self.ptrs.as_ptr().wrapping_add(i));
        }
    }

    /// The value stored under heap key `hk` (0 if none).
    pub(super) fn get(&self, hk: HeapKey) -> usize {
        match self.prefixes.binary_search_by_key(&hk, |&(k, _)| k) {
            Ok(i) => self.prefixes[i].1,
            Err(_) => 0,
        }
    }

    pub(super) fn prefixes(&self) -> &[(HeapKey, usize)] {
        &self.prefixes
    }

    /// Children as `(slot, pointer)` in slot order.
    pub(super) fn children(&self) -> impl Iterator<Item = (u8, usize)> + '_ {
        let mut k = 0;
        (0..=255u8).filter_map(move |s| {
            if self.children.contains(s) {
                k += 1;
                Some((s, self.ptrs[k - 1]))
            } else {
                None
            }
        })
    }

    /// Bytes this node occupies (header plus arrays).
    pub(super) fn heap_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.ptrs.len() * core::mem::size_of::<usize>()
            + self.prefixes.len() * core::mem::size_of::<(HeapKey, usize)>()
    }

    fn child_vec(&self) -> Vec<(u8, usize)> {
        self.children().collect()
    }

    /// A copy with `hk -> v` added or replaced.
    pub(super) fn with_prefix(&self, hk: HeapKey, v: usize) -> Self {
        let mut p = self.prefixes.to_vec();
        match p.binary_search_by_key(&hk, |&(k, _)| k) {
            Ok(i) => p[i].1 = v,
            Err(i) => p.insert(i, (hk, v)),
        }
        Self::build(&p, &self.child_vec(), false)
    }

    /// A copy without `hk`; tombed if it ends up empty and `may_tomb`.
    pub(super) fn without_prefix(&self, hk: HeapKey, may_tomb: bool) -> Self {
        let p: Vec<_> = self.prefixes.iter().copied().filter(|&(k, _)| k != hk).collect();
        let c = self.child_vec();
        let tomb = may_tomb && p.is_empty() && c.is_empty();
        Self::build(&p, &c, tomb)
    }

    /// A copy with child `slot -> ptr` added.
    pub(super) fn with_child(&self, slot: u8, ptr: usize) -> Self {
        let mut c = self.child_vec();
        match c.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(i) => c[i].1 = ptr,
            Err(i) => c.insert(i, (slot, ptr)),
        }
        Self::build(&self.prefixes, &c, false)
    }

    /// A copy without child `slot`; tombed if it ends up empty and `may_tomb`.
    pub(super) fn without_child(&self, slot: u8, may_tomb: bool) -> Self {
        let c: Vec<_> = self.children().filter(|&(s, _)| s != slot).collect();
        let tomb = may_tomb && self.prefixes.is_empty() && c.is_empty();
        Self::build(&self.prefixes, &c, tomb)
    }
}

impl Drop for CNode {
    fn drop(&mut self) {
        self.alive.retire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_keys() {
        assert_eq!(hk_len(1), 0);
        assert_eq!(hk_start(1), 0);
        assert_eq!(hk_len((1 << 8) | 0xab), 8);
        assert_eq!(hk_start((1 << 8) | 0xab), 0xab);
        assert_eq!(hk_len((1 << 1) | 1), 1);
        assert_eq!(hk_start((1 << 1) | 1), 128);
        assert_eq!(hk_start((1 << 4) | 0b1010), 0b1010_0000);
    }

    #[test]
    fn leaf_vector_picks_longest() {
        // /0 (v=1), 128/1 (v=2), 0xab/8 (v=3)
        let n = CNode::build(&[(1, 1), (3, 2), ((1 << 8) | 0xab, 3)], &[], false);
        assert_eq!(n.leaf(0), 1);
        assert_eq!(n.leaf(127), 1);
        assert_eq!(n.leaf(128), 2);
        assert_eq!(n.leaf(0xaa), 2);
        assert_eq!(n.leaf(0xab), 3);
        assert_eq!(n.leaf(0xac), 2);
        assert_eq!(n.leaf(255), 2);
        assert_eq!(n.get(3), 2);
        assert_eq!(n.get(2), 0);
    }

    #[test]
    fn children_rank() {
        let n = CNode::build(&[((1 << 8) | 5, 9)], &[(0, 10), (63, 11), (64, 12), (255, 13)], false);
        assert_eq!(n.child(0), 10);
        assert_eq!(n.child(63), 11);
        assert_eq!(n.child(64), 12);
        assert_eq!(n.child(255), 13);
        assert_eq!(n.child(1), 0);
        assert_eq!(n.leaf(5), 9);
        assert_eq!(n.leaf(4), 0);
        assert_eq!(n.leaf(6), 0);
        let m = n.without_child(63, true).with_child(7, 14);
        assert_eq!(m.children().collect::<Vec<_>>(), vec![(0, 10), (7, 14), (64, 12), (255, 13)]);
        assert!(!m.tomb);
    }

    #[test]
    fn tomb_only_when_empty() {
        let n = CNode::build(&[(1, 1)], &[], false);
        assert!(n.without_prefix(1, true).tomb);
        assert!(!n.without_prefix(1, false).tomb);
        let n = CNode::build(&[(1, 1)], &[(3, 5)], false);
        assert!(!n.without_prefix(1, true).tomb);
        assert!(n.without_prefix(1, true).without_child(3, true).tomb);
    }
}
