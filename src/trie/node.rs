//! Trie node contents: the single-allocation [`CNode`] and its child slots.
//!
//! A node at depth `d` consumes key byte `d` (stride 8). It stores
//! * the *internal prefixes* whose length lies in `(8d, 8d + 8]` (the root also stores
//!   length 0), keyed by a heap index `hk = (1 << rel_len) | rel_bits` with
//!   `rel_len = len - 8d` in `0..=8` — ascending `hk` is ascending length;
//! * up to 256 children (depth `d + 1`), one per value of key byte `d`, as a 256-bit bitmap
//!   plus a dense array of *slots* in slot order (rank = popcount below the slot);
//! * a *leaf vector* (poptrie style): for every slot, the longest internal prefix covering
//!   it, run-length encoded as a 256-bit bitmap of run starts plus one value per run.
//!   A lookup reads one leaf and one child per level: no per-length probing.
//!
//! # Values are cells
//! A prefix's value is its *cell*, an atomic word (`trie/mod.rs`, "Cells"), stored once:
//! in the prefix's first run, or after the runs for a *hidden* prefix (below). A later run
//! of the same prefix (one split by a longer prefix inside its range) holds an *alias*,
//! `(distance << 3) | ALIAS`, naming the first run `distance` values back: aliases are
//! immutable, and a word never has both low bits set. A heap key per value (the cell's
//! prefix, for the prefix length a lookup reports and for exact matches) follows the
//! prefix entries.
//!
//! # Mutability: frozen slots and cells
//! Everything but the slots and cells is immutable once the node is published. A slot is
//! an atomic word holding the child's address: a writer replaces a child by a
//! compare-and-swap on its slot, without copying the parent; a cell likewise changes a
//! prefix's state. A writer that changes the node itself (a prefix, or which children
//! exist) builds a copy, and first *freezes* every slot and cell (sets bit [`FROZEN`];
//! child addresses are 64-aligned and words 8-aligned, so the bit is free): from then on
//! no CAS of them can succeed, so the copy holds every update that ever landed in the
//! original. A frozen node that is still linked (its copier lost its own CAS) is replaced
//! by an unfrozen copy by the next writer that needs one of its slots or cells (helping).
//!
//! # Layout
//! One 64-byte-aligned allocation: the [`Head`] (both bitmaps, then the counts), the slots,
//! the *values* (one per leaf run, then one per *hidden* prefix), then the sorted internal
//! prefixes and the values' heap keys, which only writers and the slow paths read. A lookup touches the head and the
//! lines holding its slot and its run. Ranks are popcounts of the bitmap word holding the
//! slot plus a stored count of the bits below that word.
//!
//! An internal prefix is 4 bytes ([`PEntry`]): its heap key and the index of a value
//! holding it. Most prefixes are the longest prefix of some slot and so already have a
//! run, whose value the entry names; a prefix for which every slot of its range sees a
//! longer prefix (a /22 whose four /24s are all present) is *hidden* and gets a value of
//! its own after the runs. The prefix array used to hold `(heap key, value)` pairs of 16
//! bytes, although all values but the hidden prefixes' were in runs as well: on the 2023
//! full table that was 17.0 MB of the trie's 34.8.
//!
//! # Ownership
//! A node is built into a [`NodeBox`] (owned, unpublished), published as a raw address with
//! [`NodeBox::into_raw`], read through the `Copy` view [`CNode`] and finally released with
//! [`free`] by whoever retired it. It holds children (other nodes' addresses) and words,
//! as `usize`; it owns neither (the trie frees children explicitly, and the caller owns
//! what a word names).

use super::stack_vec::StackVec;
use crate::sync::{node_alloc, node_dealloc, prefetch, AtomicUsize, Ordering, TrackedCell};
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

mod build;
#[cfg(test)]
mod tests;

pub(super) use build::free;

/// Tag bit of a frozen slot (see the module docs).
pub(crate) const FROZEN: usize = 4;

/// Ordering of every load of a slot (and of the trie's root). `Acquire` pairs with the
/// `AcqRel` compare-exchange that stored the child's address (or with the one that
/// published the node holding the slot, for its initial value), so the child's contents,
/// written before that CAS, are visible to the reader.
#[cfg(not(rtm_mutant = "relaxed_load"))]
pub(super) const LOAD: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "relaxed_load")]
pub(super) const LOAD: Ordering = Ordering::Relaxed;

/// Ordering of the trie's own loads of a value (a cell or an alias). Relaxed is enough:
/// the trie reads a cell only to know whether a prefix is there, to follow an alias, or to
/// see a frozen tag, all of which were written when the node was built and are published
/// with it (the slot or root load that found the node is `Acquire`). What a word names is
/// read by the caller after its own `Acquire` load of the cell (`leaf.rs`), and a copy
/// reads words after the freeze's `Acquire` read-modify-write of each cell.
const VALUE: Ordering = Ordering::Relaxed;

/// Low bits of a run that aliases an earlier run of its node: the prefix's first run,
/// whose value is the prefix's word, `distance` values back, as `(distance << 3) | ALIAS`.
/// A word stored in the trie never has both low bits set (module docs, "Values").
pub(super) const ALIAS: usize = 3;

/// A run aliasing the run `dist` values before it.
#[inline(always)]
fn alias(dist: usize) -> usize {
    debug_assert!(dist > 0);
    (dist << 3) | ALIAS
}

/// The value at `p` (a run, or a hidden prefix's value), following an alias to the
/// prefix's first run: that value's cell and what it holds (0: no prefix).
///
/// # Safety
/// `p` points to an initialized value of a node that stays allocated for `'g`.
#[inline(always)]
pub(super) unsafe fn load_value<'g>(p: *const AtomicUsize) -> (&'g AtomicUsize, usize) {
    // SAFETY: per the contract.
    let cell = unsafe { &*p };
    let v = cell.load(VALUE);
    if v & ALIAS != ALIAS {
        return (cell, v);
    }
    // SAFETY: `build` wrote the alias with the distance to the prefix's first run, a value
    // of the same node, `dist` values before `p`.
    let cell = unsafe { &*p.sub(v >> 3) };
    (cell, cell.load(VALUE))
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

    /// `slot`'s word shifted left so that `slot`'s bit is its top bit and the bits below
    /// `slot` lie under it (the ones above are shifted out), with the word's index.
    #[inline(always)]
    fn up_to(&self, slot: u8) -> (u64, usize) {
        let w = (slot >> 6) as usize;
        // `!slot & 63` is `63 - slot % 64`.
        (self.words[w] << (!slot & 63), w)
    }

    /// The number of set bits strictly below `slot` if `slot`'s bit is set: a child's
    /// slot index. One word load, shift, sign test and popcount (a separate bit test
    /// and masked rank took 3 more instructions per level).
    #[inline(always)]
    fn find(&self, slot: u8) -> Option<usize> {
        let (up, w) = self.up_to(slot);
        ((up as i64) < 0).then(|| self.base[w] as usize + up.count_ones() as usize - 1)
    }

    /// The set bits in ascending order: one step per set bit, not per slot (a sparse
    /// node's walk, copy or drop visits its few children, not 256 slots).
    #[inline]
    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..4usize).flat_map(move |w| {
            let mut bits = self.words[w];
            core::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w as u32 * 64 + b) as u8
                })
            })
        })
    }

    /// Number of set bits at or below `slot`.
    #[inline(always)]
    fn rank_incl(&self, slot: u8) -> usize {
        let (up, w) = self.up_to(slot);
        self.base[w] as usize + up.count_ones() as usize
    }
}

/// The fixed part at the start of every node allocation (see the module docs).
///
/// The first cache line holds what a batched lookup in a node without children reads:
/// the leaf bitmap and the counts (the children bitmap starts there too). Most nodes of a
/// full table are such nodes (the depth-2 nodes holding /17../24 prefixes); their runs
/// start in the second line, so a lookup there touches the head's first line and its
/// run's. (A single lookup reads the children bitmap of every node, which for slots from
/// 128 on lies in the second line: it fetches that line with the first, see
/// [`CNode::child_link`].)
#[repr(C)]
struct Head {
    leaves: Bits256,
    n_children: u16,
    n_runs: u16,
    n_prefixes: u16,
    /// Values after the runs: one per hidden prefix (see the module docs).
    n_hidden: u16,
    children: Bits256,
    alive: TrackedCell<()>,
}

#[cfg(not(loom))]
const _: () = assert!(
    core::mem::offset_of!(Head, children) < 64
        && core::mem::offset_of!(Head, n_prefixes) < 64
        && core::mem::size_of::<Head>() == 88
);

/// An internal prefix in a node: its heap key (low 16 bits) and the index of the value
/// holding it (high 16 bits): a run's, or a hidden prefix's after the runs (module docs).
#[derive(Clone, Copy)]
struct PEntry(u32);

impl PEntry {
    #[inline(always)]
    fn key(self) -> HeapKey {
        self.0 as HeapKey
    }

    #[inline(always)]
    fn value_index(self) -> usize {
        (self.0 >> 16) as usize
    }
}

/// A node's children as `(slot, address)`, gathered for a copy (at most 256).
type Children = StackVec<(u8, usize), 256>;
/// A node's internal prefixes, gathered for a copy (at most 511: lengths 0..=8 below a
/// node's byte, the root's /0 included).
type Prefixes = StackVec<(HeapKey, usize), 511>;

/// Alignment of a node allocation: the bitmaps start a cache line, and child addresses
/// have their low bits free for [`FROZEN`].
const ALIGN: usize = 64;

/// Size of one slot. Runs follow the slots, so a slot's size must keep `usize` alignment
/// (true of std's and loom's atomics).
const SLOT: usize = core::mem::size_of::<AtomicUsize>();
const _: () = assert!(SLOT % core::mem::align_of::<usize>() == 0);
const _: () = assert!(core::mem::align_of::<AtomicUsize>() <= ALIGN);

/// Offset of the slots: right after the head (`Head` is 8-aligned, so its size is a
/// multiple of `usize`'s alignment). `layout` computes the same value.
const SLOTS_AT: usize = core::mem::size_of::<Head>().next_multiple_of(core::mem::align_of::<AtomicUsize>());

/// Layout of a node with `children` slots, `values` values (runs, then hidden prefixes)
/// and `prefixes` internal prefixes, and the byte offsets of the three arrays.
fn layout(children: usize, values: usize, prefixes: usize) -> (Layout, usize, usize, usize) {
    // At most 256 slots, 256 + 511 values and 511 prefixes: these sizes cannot overflow.
    let head = Layout::new::<Head>().align_to(ALIGN).expect("64 is a valid alignment");
    let (l, slots_at) = head.extend(Layout::array::<AtomicUsize>(children).expect("small")).expect("small");
    debug_assert_eq!(slots_at, SLOTS_AT);
    let (l, runs_at) = l.extend(Layout::array::<AtomicUsize>(values).expect("small")).expect("small");
    debug_assert_eq!(runs_at, SLOTS_AT + children * SLOT);
    let (l, pre_at) = l.extend(Layout::array::<PEntry>(prefixes).expect("small")).expect("small");
    let (l, hks_at) = l.extend(Layout::array::<HeapKey>(values).expect("small")).expect("small");
    debug_assert_eq!(hks_at, pre_at + prefixes * core::mem::size_of::<PEntry>());
    (l.pad_to_align(), slots_at, runs_at, pre_at)
}

/// [`layout`] of the node `h` heads.
fn layout_of(h: &Head) -> (Layout, usize, usize, usize) {
    layout(h.n_children as usize, h.n_runs as usize + h.n_hidden as usize, h.n_prefixes as usize)
}

/// An owned node that is not published yet. Dropping it frees it.
pub(super) struct NodeBox(NonNull<Head>);

/// A shared view of a published node, valid for `'g` (the guard it was loaded under).
#[derive(Clone, Copy)]
pub(super) struct CNode<'g> {
    /// The whole allocation (a `&Head` would not cover the arrays). One word: a lookup
    /// keeps the nodes of its path (see `Trie::lookup`).
    raw: NonNull<Head>,
    _node: PhantomData<&'g Head>,
}

impl<'g> CNode<'g> {
    /// A view of the published node at `p`.
    ///
    /// # Safety
    /// `p` is the address of a node built by [`NodeBox::build`] that stays allocated for
    /// `'g` (it was loaded under a guard that lives for `'g`, and nodes are freed only
    /// epoch-deferred after they were unlinked).
    #[inline(always)]
    pub(super) unsafe fn from_raw(p: usize) -> Self {
        let raw = p as *mut Head;
        // SAFETY: per the contract, the node is live for `'g`; only its slots (atomics)
        // change after publication.
        let head = unsafe { &*raw };
        head.alive.touch();
        // SAFETY: `raw` is non-null: it points to a live node.
        Self { raw: unsafe { NonNull::new_unchecked(raw) }, _node: PhantomData }
    }

    /// The node's head.
    #[inline(always)]
    fn head(self) -> &'g Head {
        // SAFETY: `raw` points to a node that is live for `'g` (`from_raw`'s contract),
        // whose head is immutable after publication.
        unsafe { self.raw.as_ref() }
    }

    /// Prefetches the three lines after the head's first one, for a single lookup that is
    /// about to read this node: it reads the head (88 bytes: the children bitmap is in its
    /// second line) and then the line of its run or slot, whose offset depends on the
    /// head's bitmaps. With the next three lines on their way, the head's second line and
    /// the runs or slots in the first ~200 bytes after it no longer wait for the first
    /// line's miss. (The node a full-table lookup ends in usually has more runs than that:
    /// 752 bytes up to its last run at the median, so this covers about a quarter of them.)
    /// Measured with `ratio_lookup` (cold caches, variants in turn, only the count
    /// differing): IPv4 single lookups 0.63-0.68x prefix-trie with no prefetch, 0.68-0.76x
    /// with 3 lines, 0.67-0.76x with 6, 0.60-0.66x with 12 (the traffic costs more than
    /// it saves); IPv6 the same within noise for 0, 3 and 6 lines. Single lookups only: the
    /// batched walk prefetches the exact lines a round ahead.
    #[inline(always)]
    pub(super) fn prefetch_body(self) {
        // A prefetch never faults, so lines past the node's end cost bandwidth, not safety.
        for line in 1..4 {
            prefetch(self.base().wrapping_add(line * 64));
        }
    }

    /// The node's address.
    #[inline(always)]
    pub(super) fn addr(self) -> usize {
        self.raw.as_ptr() as usize
    }

    #[inline(always)]
    fn base(self) -> *const u8 {
        self.raw.as_ptr().cast::<u8>()
    }

    #[inline(always)]
    fn slot_ptr(self, i: usize) -> *const AtomicUsize {
        self.base().wrapping_add(SLOTS_AT + i * SLOT).cast::<AtomicUsize>()
    }

    #[inline(always)]
    fn run_ptr(self, i: usize) -> *const AtomicUsize {
        self.base()
            .wrapping_add(SLOTS_AT + (self.head().n_children as usize + i) * SLOT)
            .cast::<AtomicUsize>()
    }

    #[inline(always)]
    fn slot_at(self, i: usize) -> &'g AtomicUsize {
        debug_assert!(i < self.head().n_children as usize);
        // SAFETY: `i` is below the slot count (callers derive it from the children bitmap,
        // built from the same array); the slots were initialized by `build` and live for `'g`.
        unsafe { &*self.slot_ptr(i) }
    }

    /// The prefix entries, sorted by heap key.
    fn entries(self) -> &'g [PEntry] {
        let h = self.head();
        let (_, _, _, pre_at) = layout_of(h);
        // SAFETY: the prefix array starts at `pre_at` (the same layout computation as in
        // `build`) and holds `n_prefixes` initialized entries, immutable and live for `'g`.
        unsafe {
            core::slice::from_raw_parts(self.base().add(pre_at).cast::<PEntry>(), h.n_prefixes as usize)
        }
    }

    /// The heap key of the prefix whose cell is `cell`.
    ///
    /// # Safety
    /// `cell` is one of this node's values (a cell `leaf_word`, `get_cell` or `cells`
    /// returned for this node).
    #[inline]
    pub(super) unsafe fn hk_of(self, cell: &AtomicUsize) -> HeapKey {
        let h = self.head();
        let i = (core::ptr::from_ref(cell).addr() - self.run_ptr(0).addr()) / SLOT;
        debug_assert!(i < h.n_runs as usize + h.n_hidden as usize);
        let (_, _, _, pre_at) = layout_of(h);
        let at = pre_at + h.n_prefixes as usize * core::mem::size_of::<PEntry>() + i * 2;
        // SAFETY: `cell` is one of this node's values (the contract; checked above in debug
        // builds), so `i` is below the value count; `build` initialized the heap key array
        // after the prefix entries, one `u16` per value, immutable and live for `'g`.
        unsafe { *self.base().add(at).cast::<HeapKey>() }
    }

    /// The cell of an entry of this node.
    #[inline]
    fn cell(self, e: PEntry) -> &'g AtomicUsize {
        let i = e.value_index();
        debug_assert!(i < self.head().n_runs as usize + self.head().n_hidden as usize);
        // SAFETY: as in `value`.
        unsafe { &*self.run_ptr(i) }
    }

    /// The value an entry of this node names.
    #[inline]
    fn value(self, e: PEntry) -> usize {
        let i = e.value_index();
        debug_assert!(i < self.head().n_runs as usize + self.head().n_hidden as usize);
        // SAFETY: `i` is below the value count: `build` wrote every entry with the index of
        // a value it wrote (a run's or a hidden prefix's), never an alias; values live for
        // `'g`.
        unsafe { (*self.run_ptr(i)).load(VALUE) & !FROZEN }
    }

    /// Internal prefixes `(heap key, word)` sorted by heap key (tests).
    #[cfg(test)]
    pub(super) fn prefixes(self) -> impl ExactSizeIterator<Item = (HeapKey, usize)> + 'g {
        self.entries().iter().map(move |&e| (e.key(), self.value(e)))
    }

    /// Internal prefixes `(heap key, cell)` sorted by heap key.
    pub(super) fn cells(self) -> impl ExactSizeIterator<Item = (HeapKey, &'g AtomicUsize)> + 'g {
        self.entries().iter().map(move |&e| (e.key(), self.cell(e)))
    }

    /// Index of the leaf run covering `slot`, if any prefix is stored here.
    #[inline(always)]
    fn run_index(self, slot: u8) -> Option<usize> {
        // Slot 0 always starts a run, so the run containing `slot` is rank(slot + 1) - 1.
        let h = self.head();
        (h.n_runs != 0).then(|| h.leaves.rank_incl(slot) - 1)
    }

    /// Index of the slot of the child at `slot`, if there is one. A node without children
    /// answers from the head's first line (see [`Head`]).
    #[inline(always)]
    fn child_index(self, slot: u8) -> Option<usize> {
        let h = self.head();
        if h.n_children == 0 {
            None
        } else {
            h.children.find(slot)
        }
    }

    /// The child at `slot`, unfrozen, for a single lookup: [`child`](Self::child) without
    /// the child count's test (for a childless node it kept the read in the head's first
    /// line; a single lookup fetches the next lines with the head, `prefetch_body`), and
    /// with no address to test where there is a child (a slot always holds a node).
    #[inline(always)]
    pub(super) fn child_link(self, slot: u8) -> Option<usize> {
        let i = self.head().children.find(slot)?;
        Some(self.slot_at(i).load(LOAD) & !FROZEN)
    }

    /// The longest internal prefix covering `slot`, as its word (0 if none; a frozen word
    /// without its tag).
    #[cfg(test)]
    pub(super) fn leaf(self, slot: u8) -> usize {
        self.leaf_cell(slot).map_or(0, |c| c.load(VALUE) & !FROZEN)
    }

    /// The cell of the longest internal prefix covering `slot`, if any.
    #[inline(always)]
    pub(super) fn leaf_cell(self, slot: u8) -> Option<&'g AtomicUsize> {
        self.leaf_word(slot).map(|(c, _)| c)
    }

    /// [`leaf_cell`](Self::leaf_cell) and the word it held when read (perhaps frozen).
    #[inline(always)]
    fn leaf_word(self, slot: u8) -> Option<(&'g AtomicUsize, usize)> {
        let i = self.run_index(slot)?;
        debug_assert!(i < self.head().n_runs as usize);
        // SAFETY: `i` is below the run count (a rank in the run-start bitmap built from the
        // same array); runs live for `'g`.
        let (cell, v) = unsafe { load_value(self.run_ptr(i)) };
        (v != 0).then_some((cell, v))
    }

    /// The slot of the child at `slot`, if there is one.
    #[inline(always)]
    pub(super) fn child_slot(self, slot: u8) -> Option<&'g AtomicUsize> {
        self.child_index(slot).map(|i| self.slot_at(i))
    }

    /// The child at `slot`, unfrozen (0 if none).
    #[inline(always)]
    pub(super) fn child(self, slot: u8) -> usize {
        // Through the index rather than `child_slot`: an `Option<&AtomicUsize>` costs a
        // test of the slot's address for null.
        match self.child_index(slot) {
            Some(i) => self.slot_at(i).load(LOAD) & !FROZEN,
            None => 0,
        }
    }

    /// The address [`child`](Self::child) reads for `slot` or, where there is no child,
    /// the one [`leaf_cell`](Self::leaf_cell) reads (null where there is no run either), computed
    /// from the head alone, so that a batched walk can prefetch it and read it a round
    /// later without a second rank computation. A walk that goes on to a child reads
    /// this node's run only if no deeper node matches (`leaf_cell`, then), so its rank is
    /// not computed here: on the 2023 full table IPv6 walks go on from 4.5 nodes each.
    #[inline(always)]
    pub(super) fn addrs(self, slot: u8) -> (*const AtomicUsize, *const AtomicUsize) {
        match self.child_index(slot) {
            Some(i) => (core::ptr::null(), self.slot_ptr(i)),
            None => (self.run_index(slot).map_or(core::ptr::null(), |i| self.run_ptr(i)), core::ptr::null()),
        }
    }

    /// Prefetches the cache line [`leaf_cell`](Self::leaf_cell) will read for `slot`.
    #[inline(always)]
    pub(super) fn prefetch_leaf(self, slot: u8) {
        if let Some(i) = self.run_index(slot) {
            prefetch(self.run_ptr(i).cast::<u8>());
        }
    }

    /// Prefetches the cache line [`child`](Self::child) will read for `slot` (a walk that
    /// goes on down and needs no leaf here).
    #[inline(always)]
    pub(super) fn prefetch_child(self, slot: u8) {
        if let Some(i) = self.child_index(slot) {
            prefetch(self.slot_ptr(i).cast::<u8>());
        }
    }

    /// The word stored under heap key `hk` (0 if none; a frozen word without its tag).
    #[cfg(test)]
    pub(super) fn get(self, hk: HeapKey) -> usize {
        self.get_cell(hk).map_or(0, |c| c.load(VALUE) & !FROZEN)
    }

    /// The cell of heap key `hk`, if the prefix is stored here.
    pub(super) fn get_cell(self, hk: HeapKey) -> Option<&'g AtomicUsize> {
        let p = self.entries();
        p.binary_search_by_key(&hk, |e| e.key()).ok().map(|i| self.cell(p[i]))
    }

    /// The cell of heap key `hk` if the prefix is stored here: the leaf run of its first
    /// slot answers with one line unless a longer prefix covers that slot (then the sorted
    /// prefix array is searched; see `Trie::find`).
    #[inline]
    pub(super) fn find_cell(self, hk: HeapKey) -> Option<&'g AtomicUsize> {
        self.find_word(hk).map(|(c, _)| c)
    }

    /// [`find_cell`](Self::find_cell) and the word it held when read (perhaps frozen).
    #[inline]
    pub(super) fn find_word(self, hk: HeapKey) -> Option<(&'g AtomicUsize, usize)> {
        let (cell, v) = self.leaf_word(hk_start(hk))?;
        // SAFETY: `leaf_word` returned one of this node's cells.
        let k = unsafe { self.hk_of(cell) };
        if k == hk {
            Some((cell, v))
        } else if hk_len(k) < hk_len(hk) {
            // The slot's longest prefix here is shorter: `hk` is absent.
            None
        } else {
            self.get_cell(hk).map(|c| (c, c.load(VALUE)))
        }
    }

    /// Children as `(slot, unfrozen address)` in slot order.
    pub(super) fn children(self) -> impl Iterator<Item = (u8, usize)> + 'g {
        // The k-th set bit's child is in slot k (slots are in bit order).
        self.head().children.iter().enumerate().map(move |(k, s)| (s, self.slot_at(k).load(LOAD) & !FROZEN))
    }

    /// Bytes this node occupies.
    pub(super) fn heap_bytes(self) -> usize {
        layout_of(self.head()).0.size()
    }

    /// Whether a copy has frozen the node (its first cell or slot says so: a freeze sets
    /// the cells' tag after the slots', and a node with neither cannot be frozen).
    pub(super) fn is_frozen(self) -> bool {
        match self.entries().first() {
            Some(&e) => self.cell(e).load(VALUE) & FROZEN != 0,
            None => self.head().n_children != 0 && self.slot_at(0).load(LOAD) & FROZEN != 0,
        }
    }
}
