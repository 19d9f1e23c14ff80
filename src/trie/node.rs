//! Trie node contents: the immutable, single-allocation [`CNode`].
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
//! # Layout
//! One 64-byte-aligned allocation: the [`Head`] (both bitmaps in the first cache line, then
//! the counts), the *words* (children in slot order, then one value per leaf run), then the
//! sorted internal prefixes, which only writers and the slow paths read. A lookup therefore
//! touches the head and the line holding its word — for the small nodes that make up
//! most of a routing table, the line right after the head. Ranks are popcounts of the bitmap
//! word holding the slot plus a stored count of the bits below that word.
//!
//! # Ownership
//! A node is built into a [`NodeBox`] (owned, unpublished), published as a raw address with
//! [`NodeBox::into_raw`], read through the `Copy` view [`CNode`] and finally released with
//! [`free`] by whoever retired it. It is never modified after it is built. It holds raw
//! pointers: children (`*const INode`) and values (`*const V`), stored as `usize`; it owns
//! neither (the trie frees children explicitly and the caller owns the values' link
//! references).

use crate::sync::{prefetch, TrackedCell};
use core::alloc::Layout;
use core::ptr::NonNull;

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

/// A 256-bit set with the number of set bits below each 64-bit word, so a rank is one
/// popcount (baseline x86-64 has no `popcnt` instruction; a software popcount is ~12
/// instructions).
#[derive(Clone, Copy)]
struct Bits256 {
    words: [u64; 4],
    /// Set bits in the words below word `i` (at most 192, so a byte is enough).
    base: [u8; 4],
}

impl Bits256 {
    fn new(words: [u64; 4]) -> Self {
        let mut base = [0u8; 4];
        let mut acc = 0u32;
        for i in 0..4 {
            base[i] = acc as u8;
            acc += words[i].count_ones();
        }
        Self { words, base }
    }

    /// Whether `slot`'s bit is set.
    #[inline(always)]
    fn contains(&self, slot: u8) -> bool {
        (self.words[(slot >> 6) as usize] >> (slot & 63)) & 1 == 1
    }

    /// Number of set bits strictly below `slot`.
    #[inline(always)]
    fn rank(&self, slot: u8) -> usize {
        let w = (slot >> 6) as usize;
        self.base[w] as usize + (self.words[w] & ((1u64 << (slot & 63)) - 1)).count_ones() as usize
    }

    /// Number of set bits at or below `slot`.
    #[inline(always)]
    fn rank_incl(&self, slot: u8) -> usize {
        let w = (slot >> 6) as usize;
        let m = u64::MAX >> (63 - (slot & 63));
        self.base[w] as usize + (self.words[w] & m).count_ones() as usize
    }
}

/// The fixed part at the start of every node allocation (see the module docs).
#[repr(C)]
struct Head {
    children: Bits256,
    leaves: Bits256,
    n_children: u16,
    n_runs: u16,
    n_prefixes: u16,
    /// A tombed node is empty and about to be unlinked from its parent; nobody may add to
    /// it (an inserter helps unlink it and retries).
    tomb: bool,
    alive: TrackedCell<()>,
}

/// Alignment of a node allocation: the bitmaps share the first cache line.
const ALIGN: usize = 64;

/// Offset of the words: right after the head (`Head` is 8-aligned, so its size is a
/// multiple of `usize`'s alignment). `layout` computes the same value.
const WORDS_AT: usize = core::mem::size_of::<Head>().next_multiple_of(core::mem::align_of::<usize>());

/// Layout of a node with `words` words and `prefixes` internal prefixes, and the byte
/// offsets of the two arrays.
fn layout(words: usize, prefixes: usize) -> (Layout, usize, usize) {
    // At most 256 children + 256 runs and 511 prefixes: these sizes cannot overflow.
    let head = Layout::new::<Head>().align_to(ALIGN).expect("64 is a valid alignment");
    let (l, words_at) = head.extend(Layout::array::<usize>(words).expect("small")).expect("small");
    debug_assert_eq!(words_at, WORDS_AT);
    let (l, pre_at) = l.extend(Layout::array::<(HeapKey, usize)>(prefixes).expect("small")).expect("small");
    (l.pad_to_align(), words_at, pre_at)
}

/// An owned node that is not published yet. Dropping it frees it.
pub(super) struct NodeBox(NonNull<Head>);

/// A shared view of a published node, valid for `'g` (the guard it was loaded under).
#[derive(Clone, Copy)]
pub(super) struct CNode<'g> {
    head: &'g Head,
    /// The whole allocation (the head reference alone does not cover the arrays).
    raw: NonNull<Head>,
}

impl NodeBox {
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
        let mut words: Vec<usize> = Vec::with_capacity(children.len() + 1 + prefixes.len() * 2);
        words.extend(children.iter().map(|&(_, p)| p));
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
                    words.push(v);
                    prev = v;
                }
            }
        }
        let head = Head {
            children: Bits256::new(cw),
            leaves: Bits256::new(lw),
            n_children: children.len() as u16,
            n_runs: (words.len() - children.len()) as u16,
            n_prefixes: prefixes.len() as u16,
            tomb,
            alive: TrackedCell::new(()),
        };
        let (layout, words_at, pre_at) = layout(words.len(), prefixes.len());
        // SAFETY: `layout` has a non-zero size (it holds at least the head).
        let base = unsafe { std::alloc::alloc(layout) };
        let Some(raw) = NonNull::new(base.cast::<Head>()) else { std::alloc::handle_alloc_error(layout) };
        // SAFETY: `base` is a fresh allocation of `layout`, whose head, words and prefix
        // ranges start at offsets 0, `words_at` and `pre_at`, are suitably aligned (Layout
        // computed them) and are large enough for the counts written.
        unsafe {
            raw.as_ptr().write(head);
            core::ptr::copy_nonoverlapping(words.as_ptr(), base.add(words_at).cast::<usize>(), words.len());
            core::ptr::copy_nonoverlapping(
                prefixes.as_ptr(),
                base.add(pre_at).cast::<(HeapKey, usize)>(),
                prefixes.len(),
            );
        }
        Self(raw)
    }

    /// The address of the node, for a compare-and-swap that may publish it.
    pub(super) fn as_raw(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Gives up ownership after the node was published; it is freed with [`free`].
    pub(super) fn into_raw(self) -> usize {
        let p = self.as_raw();
        core::mem::forget(self);
        p
    }
}

impl Drop for NodeBox {
    fn drop(&mut self) {
        // SAFETY: the box owns the node and it was never published.
        unsafe { free(self.as_raw()) }
    }
}

/// Frees a node built by [`NodeBox::build`].
///
/// # Safety
/// `p` came from [`NodeBox::into_raw`] (or the box's own drop), is freed exactly once, and
/// no reference into the node is used afterwards.
pub(super) unsafe fn free(p: usize) {
    let raw = p as *mut Head;
    // SAFETY: per the contract, `raw` points to a live node that we own exclusively now.
    unsafe {
        let head = &mut *raw;
        head.alive.retire();
        let words = head.n_children as usize + head.n_runs as usize;
        let (layout, _, _) = layout(words, head.n_prefixes as usize);
        core::ptr::drop_in_place(raw);
        std::alloc::dealloc(raw.cast::<u8>(), layout);
    }
}

impl<'g> CNode<'g> {
    /// A view of the published node at `p`.
    ///
    /// # Safety
    /// `p` is the address of a node built by [`NodeBox::build`] that stays allocated for
    /// `'g` (it was loaded under a guard that lives for `'g`, and nodes are freed only
    /// epoch-deferred after they were replaced).
    #[inline(always)]
    pub(super) unsafe fn from_raw(p: usize) -> Self {
        let raw = p as *mut Head;
        // SAFETY: per the contract, the node is live and immutable for `'g`.
        let head = unsafe { &*raw };
        head.alive.touch();
        // SAFETY: `raw` is non-null: it points to a live node.
        Self { head, raw: unsafe { NonNull::new_unchecked(raw) } }
    }

    pub(super) fn tomb(self) -> bool {
        self.head.tomb
    }

    #[inline(always)]
    fn words_ptr(self) -> *const usize {
        self.raw.as_ptr().cast::<u8>().wrapping_add(WORDS_AT).cast::<usize>()
    }

    #[inline(always)]
    fn word(self, i: usize) -> usize {
        debug_assert!(i < self.head.n_children as usize + self.head.n_runs as usize);
        // SAFETY: `i` is below the word count (callers derive it from the bitmaps, which
        // were built from the same arrays), and the node is immutable and live for `'g`.
        unsafe { *self.words_ptr().add(i) }
    }

    /// Internal prefixes sorted by heap key: writers and the slow paths read these.
    pub(super) fn prefixes(self) -> &'g [(HeapKey, usize)] {
        let h = self.head;
        let (_, _, pre_at) = layout(h.n_children as usize + h.n_runs as usize, 0);
        // SAFETY: the prefix array starts at `pre_at` (the same layout computation as in
        // `build`) and holds `n_prefixes` initialized entries, immutable and live for `'g`.
        unsafe {
            core::slice::from_raw_parts(
                self.raw.as_ptr().cast::<u8>().add(pre_at).cast::<(HeapKey, usize)>(),
                h.n_prefixes as usize,
            )
        }
    }

    /// Index among the words of the leaf run covering `slot`, if any prefix is stored here.
    #[inline(always)]
    fn leaf_index(self, slot: u8) -> Option<usize> {
        // Slot 0 always starts a run, so the run containing `slot` is rank(slot + 1) - 1.
        let h = self.head;
        (h.n_runs != 0).then(|| h.n_children as usize + h.leaves.rank_incl(slot) - 1)
    }

    /// Index among the words of the child at `slot`, if there is one.
    #[inline(always)]
    fn child_index(self, slot: u8) -> Option<usize> {
        self.head.children.contains(slot).then(|| self.head.children.rank(slot))
    }

    /// The longest internal prefix covering `slot`, as a raw value (0 if none).
    #[inline(always)]
    pub(super) fn leaf(self, slot: u8) -> usize {
        self.leaf_index(slot).map_or(0, |i| self.word(i))
    }

    /// The child at `slot` (0 if none).
    #[inline(always)]
    pub(super) fn child(self, slot: u8) -> usize {
        self.child_index(slot).map_or(0, |i| self.word(i))
    }

    /// Prefetches the cache lines [`leaf`](Self::leaf) and [`child`](Self::child) will read
    /// for `slot`.
    #[inline(always)]
    pub(super) fn prefetch(self, slot: u8) {
        for i in [self.child_index(slot), self.leaf_index(slot)].into_iter().flatten() {
            prefetch(self.words_ptr().wrapping_add(i));
        }
    }

    /// The value stored under heap key `hk` (0 if none).
    pub(super) fn get(self, hk: HeapKey) -> usize {
        let p = self.prefixes();
        match p.binary_search_by_key(&hk, |&(k, _)| k) {
            Ok(i) => p[i].1,
            Err(_) => 0,
        }
    }

    /// Children as `(slot, pointer)` in slot order.
    pub(super) fn children(self) -> impl Iterator<Item = (u8, usize)> + 'g {
        let mut k = 0;
        (0..=255u8).filter_map(move |s| {
            if self.head.children.contains(s) {
                k += 1;
                Some((s, self.word(k - 1)))
            } else {
                None
            }
        })
    }

    /// Bytes this node occupies.
    pub(super) fn heap_bytes(self) -> usize {
        let h = self.head;
        layout(h.n_children as usize + h.n_runs as usize, h.n_prefixes as usize).0.size()
    }

    fn child_vec(self) -> Vec<(u8, usize)> {
        self.children().collect()
    }

    /// A copy with `hk -> v` added or replaced.
    pub(super) fn with_prefix(self, hk: HeapKey, v: usize) -> NodeBox {
        let mut p = self.prefixes().to_vec();
        match p.binary_search_by_key(&hk, |&(k, _)| k) {
            Ok(i) => p[i].1 = v,
            Err(i) => p.insert(i, (hk, v)),
        }
        NodeBox::build(&p, &self.child_vec(), false)
    }

    /// A copy without `hk`; tombed if it ends up empty and `may_tomb`.
    pub(super) fn without_prefix(self, hk: HeapKey, may_tomb: bool) -> (NodeBox, bool) {
        let p: Vec<_> = self.prefixes().iter().copied().filter(|&(k, _)| k != hk).collect();
        let c = self.child_vec();
        let tomb = may_tomb && p.is_empty() && c.is_empty();
        (NodeBox::build(&p, &c, tomb), tomb)
    }

    /// A copy with child `slot -> ptr` added.
    pub(super) fn with_child(self, slot: u8, ptr: usize) -> NodeBox {
        let mut c = self.child_vec();
        match c.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(i) => c[i].1 = ptr,
            Err(i) => c.insert(i, (slot, ptr)),
        }
        NodeBox::build(self.prefixes(), &c, false)
    }

    /// A copy without child `slot`; tombed if it ends up empty and `may_tomb`.
    pub(super) fn without_child(self, slot: u8, may_tomb: bool) -> (NodeBox, bool) {
        let c: Vec<_> = self.children().filter(|&(s, _)| s != slot).collect();
        let tomb = may_tomb && self.prefixes().is_empty() && c.is_empty();
        (NodeBox::build(self.prefixes(), &c, tomb), tomb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view of an unpublished node, for tests.
    fn view(b: &NodeBox) -> CNode<'_> {
        // SAFETY: `b` owns the node and outlives the view.
        unsafe { CNode::from_raw(b.as_raw()) }
    }

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
    fn rank_counts_bits_below() {
        let w = Bits256::new([0b1011u64, u64::MAX, 0, 1 << 63]);
        assert_eq!(w.rank(0), 0);
        assert_eq!(w.rank(1), 1);
        assert_eq!(w.rank(4), 3);
        assert_eq!(w.rank(64), 3);
        assert_eq!(w.rank(127), 66);
        assert_eq!(w.rank(128), 67);
        assert_eq!(w.rank(255), 67);
        assert_eq!(w.rank_incl(255), 68);
        assert_eq!(w.rank_incl(0), 1);
        assert_eq!(w.rank_incl(2), 2);
        assert!(w.contains(255) && !w.contains(254));
    }

    #[test]
    fn leaf_vector_picks_longest() {
        // /0 (v=1), 128/1 (v=2), 0xab/8 (v=3)
        let b = NodeBox::build(&[(1, 1), (3, 2), ((1 << 8) | 0xab, 3)], &[], false);
        let n = view(&b);
        assert_eq!(n.leaf(0), 1);
        assert_eq!(n.leaf(127), 1);
        assert_eq!(n.leaf(128), 2);
        assert_eq!(n.leaf(0xaa), 2);
        assert_eq!(n.leaf(0xab), 3);
        assert_eq!(n.leaf(0xac), 2);
        assert_eq!(n.leaf(255), 2);
        assert_eq!(n.get(3), 2);
        assert_eq!(n.get(2), 0);
        assert_eq!(n.prefixes().len(), 3);
    }

    #[test]
    fn children_rank() {
        let b = NodeBox::build(&[((1 << 8) | 5, 9)], &[(0, 10), (63, 11), (64, 12), (255, 13)], false);
        let n = view(&b);
        assert_eq!(n.child(0), 10);
        assert_eq!(n.child(63), 11);
        assert_eq!(n.child(64), 12);
        assert_eq!(n.child(255), 13);
        assert_eq!(n.child(1), 0);
        assert_eq!(n.leaf(5), 9);
        assert_eq!(n.leaf(4), 0);
        assert_eq!(n.leaf(6), 0);
        let (m1, t1) = n.without_child(63, true);
        let m = view(&m1).with_child(7, 14);
        assert_eq!(view(&m).children().collect::<Vec<_>>(), vec![(0, 10), (7, 14), (64, 12), (255, 13)]);
        assert!(!t1 && !view(&m).tomb());
        assert_eq!(view(&m).get((1 << 8) | 5), 9);
    }

    #[test]
    fn tomb_only_when_empty() {
        let b = NodeBox::build(&[(1, 1)], &[], false);
        assert!(view(&b).without_prefix(1, true).1);
        assert!(!view(&b).without_prefix(1, false).1);
        let b = NodeBox::build(&[(1, 1)], &[(3, 5)], false);
        let (c, tomb) = view(&b).without_prefix(1, true);
        assert!(!tomb);
        let (d, tomb) = view(&c).without_child(3, true);
        assert!(tomb && view(&d).tomb());
        assert!(view(&d).prefixes().is_empty() && view(&d).children().next().is_none());
    }

    #[test]
    fn full_node_round_trips() {
        let children: Vec<(u8, usize)> = (0..=255u8).map(|s| (s, 1000 + s as usize)).collect();
        let prefixes: Vec<(HeapKey, usize)> =
            (0..=255u16).map(|b| ((1 << 8) | b, 5000 + b as usize)).collect();
        let b = NodeBox::build(&prefixes, &children, false);
        let n = view(&b);
        for s in 0..=255u8 {
            assert_eq!(n.child(s), 1000 + s as usize);
            assert_eq!(n.leaf(s), 5000 + s as usize);
        }
        assert_eq!(n.prefixes(), &prefixes[..]);
        assert!(n.heap_bytes() >= 512 * 8 + 256 * 16);
    }
}
