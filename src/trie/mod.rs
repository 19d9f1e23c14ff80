//! The lock-free, epoch-reclaimed multibit prefix trie.
//!
//! # Shape
//! Stride 8: a node at depth `d` consumes key byte `d` and stores the prefixes whose length
//! lies in `(8d, 8d + 8]` (the root also length 0), so an IPv4 /24 sits in a depth-2 node. A
//! node ([`CNode`](node::CNode), see `node.rs`) is one allocation: bitmaps, a leaf vector,
//! and one atomic *slot* per child holding the child's address. There is no indirection
//! cell between a slot and its child: a lookup loads the slot and goes on.
//!
//! The first two levels are split (`top.rs`): the root (an atomic word like a slot) and its
//! children hold the prefixes of at most 16 bits only (the *upper* trie), and the depth-2
//! nodes hang from a *top table* indexed by the key's first two bytes. A lookup starts at
//! its /16's depth-2 node, so a full-table IPv4 lookup visits one node where it visited
//! three (session 27: 129 -> 90 instructions per single lookup, IPv6 182 -> 149), and
//! reads the upper trie only when the subtrie below has no match.
//!
//! # Cells
//! A stored prefix's value is a *cell*: an atomic word inside its node (the caller's
//! word, `leaf.rs`: lone routes, a destination, or dead), at the prefix's first leaf run
//! (a run of the same prefix further on aliases it, `node.rs`). A writer changes a prefix's
//! state with one CAS of its cell, without copying the node. A node copy freezes the cells
//! with the slots, so a cell CAS either landed before the freeze and is in the copy, or
//! fails; the writer then finds the prefix's cell again in the copy
//! ([`Trie::cell_for_write`], which helps a copier that left the node frozen). Readers
//! ignore the tag. Until session 24 the node held a pointer to a leaf object holding the
//! word: a lookup's last dependent cache miss, which this saves.
//!
//! # Operations (all under a pinned epoch guard)
//! * `lookup`: per level, read the child slot, down to the deepest node on the key's path;
//!   then, from the bottom up, the leaf run (longest prefix in the node covering the key
//!   byte) until one is found, which is the prefix's cell; no writes, no locks, no
//!   reference counts.
//! * `get`: exact match, from the leaf vector when it can answer (`CNode::find_cell`: the
//!   cell at the prefix's first slot, whose heap key the node keeps), else the sorted
//!   prefix array.
//! * `matches`: all matches longest-first, from the sorted prefix arrays (slow paths).
//! * A change to a node (a prefix added or removed, a child added or removed) builds a copy
//!   and compare-and-swaps it into the slot (root, or top slot) that holds the node: the
//!   node's *location*. Building the copy first freezes the node's own slots (`node.rs`), so a
//!   concurrent CAS on one of them — a writer replacing a grandchild-level node — either
//!   landed before the freeze and is in the copy, or fails and retries: no update is lost.
//! * `insert`: walk down, creating missing children (a copy of the parent with an empty
//!   child; a missing depth-2 node is an empty one linked by a CAS from 0 on its top slot),
//!   then replace the target node by a copy with the prefix and its word added. If the
//!   prefix is present its cell is returned instead.
//! * `remove(prefix, expected)`: replace the target node by a copy without the prefix, only
//!   if its cell holds `expected`, a final word (dead). If that empties a non-root node, its
//!   parent is copied without it instead (checking, under the parent's freeze, that the
//!   slot still holds the node), cascading upwards while parents become empty, up to the
//!   root (never emptied) or a depth-2 node, whose top slot then gets 0 (a CAS from the
//!   node); one CAS at the top unlinks the whole emptied chain.
//! * A writer that finds a frozen slot on its path (a copier lost its CAS and left the node
//!   frozen and linked) replaces that node by an unfrozen copy, then retries (helping).
//!
//! # Memory reclamation and invariants
//! * Exactly one CAS unlinks a node: the one that replaced it or emptied its top slot (or
//!   an ancestor copy that dropped it, whose freeze checked the slot). That thread retires
//!   it (`retire_with` + `node::free`); readers pinned before keep it alive. A node's children are not freed
//!   with it: its copy links them.
//! * Because every address compared in a CAS was loaded under the caller's pin, it cannot
//!   be freed and reused meanwhile (no ABA). A CAS from 0 (a top slot's first node) links
//!   a fresh node where there was none: a slot that went 0 -> node -> 0 meanwhile holds
//!   nothing that could be lost.
//! * The trie never reads what a word names: the caller owns it through the cell (a node
//!   copy moves the word, a frozen original keeps a stale copy of it), and releases it
//!   epoch-deferred after the CAS that replaced it (`leaf.rs`), or when the table drops.
//! * Every address→reference conversion goes through [`Trie::cnode_ref`], which touches the
//!   loom-visible `alive` cell of the node (cells are the node's).

mod batch;
mod node;
mod stack_vec;
mod top;

/// Most keys [`Trie::lookup_batch`] walks at once.
pub(crate) const BATCH: usize = 32;

/// Levels below the top table that a batched IPv6 lookup reads directly, without prefetch
/// rounds (`Trie::lookup_batch`). Before the top table, reading IPv6's first three levels
/// directly measured best (`profile_lookup 30 batch`: with 1, 2, 3, 4 direct levels 69-77,
/// 65-67, 60, 61-63 ns); the top table covers the first two.
const DIRECT_V6: usize = 1;

/// How many times [`Trie::cell_for_write`] looks again at a frozen cell before it copies
/// the node itself.
const PATIENCE: u32 = 2;

/// The depth of the nodes the top table links (`top.rs`): key bytes 0 and 1 index it, and
/// prefixes of at most `8 * TOP` bits live in the upper trie (the root and its children).
const TOP: usize = 2;

use crate::prefix::NetAddress;
use crate::sync::epoch::Guard;
use crate::sync::{prefetch, retire_with, AtomicUsize, Ordering};
use core::mem::MaybeUninit;
pub(crate) use node::FROZEN;
use node::{CNode, HeapKey, NodeBox, LOAD};
use top::Top;

/// A prefix's *cell*: the atomic word its node holds for it (module docs, "Cells"), found
/// under a guard and valid for it. The word is the caller's (`leaf.rs`): the trie reserves
/// the tag [`FROZEN`] and the low-bit pattern [`node::ALIAS`] (a word never has both of its
/// low two bits set). A cell is final once its node is copied: writers then find the
/// prefix's cell again in the copy ([`Trie::cell_for_write`]).
#[derive(Clone, Copy)]
pub(crate) struct Cell<'g> {
    word: &'g AtomicUsize,
    /// The node's address (64-aligned) and its depth (it consumes key byte `depth`) in the
    /// low bits: a cell is two words, so a batch's 32 results stay small.
    at: usize,
}

impl<'g> Cell<'g> {
    /// The cell `word` of `node` (one of its values: the trie's only constructor calls
    /// pass cells the node returned), at depth `depth`.
    #[inline(always)]
    fn new(word: &'g AtomicUsize, node: CNode<'g>, depth: u8) -> Self {
        debug_assert!(depth < 64);
        Self { word, at: node.addr() | depth as usize }
    }

    /// The node holding the cell.
    #[inline(always)]
    fn node(self) -> CNode<'g> {
        // SAFETY: `at` holds the address of the node the cell was found in, under a guard
        // that lives for `'g` (the cell's lifetime), so the node stays allocated.
        unsafe { CNode::from_raw(self.at & !63) }
    }

    /// The atomic word.
    #[inline(always)]
    pub(crate) fn word(self) -> &'g AtomicUsize {
        self.word
    }

    /// The length of the cell's prefix.
    #[inline]
    pub(crate) fn len(self) -> u8 {
        // SAFETY: a `Cell` is only made (`Cell::new`) from a cell of the node it names.
        8 * (self.at & 63) as u8 + node::hk_len(unsafe { self.node().hk_of(self.word) })
    }

    /// The cell's prefix, given an address it covers (the key that found it).
    #[inline]
    pub(crate) fn prefix_of(self, key: &NetAddress) -> NetAddress {
        key.truncate(self.len())
    }
}

/// Position of a prefix: the depth of its node and its heap key there.
fn locate(p: &NetAddress) -> (usize, HeapKey) {
    let len = p.len();
    if len == 0 {
        return (0, 1);
    }
    let depth = ((len - 1) / 8) as usize;
    let rel = len - 8 * depth as u8;
    let bits = (p.bytes()[depth] >> (8 - rel)) as u16;
    (depth, (1u16 << rel) | bits)
}

/// Where a writer found a node: the location (root or slot) and the node's address.
#[derive(Clone, Copy)]
struct At<'g> {
    loc: &'g AtomicUsize,
    raw: usize,
}

/// See the module docs.
pub(crate) struct Trie {
    /// Address of the root node (never 0, never frozen): the upper trie, the prefixes of
    /// at most `8 * TOP` bits (its depth-1 nodes have no children).
    root: AtomicUsize,
    /// The subtries of the longer prefixes, by their first `TOP` key bytes.
    top: Top,
    /// Address width in bits (32 or 128): lookups walk at most `max_len / 8` levels.
    max_len: u8,
    /// `max_len / 8`, the most levels a walk visits (at most 16), kept so that a lookup
    /// does not compute it.
    levels: usize,
}

// SAFETY: the trie holds node addresses as integers; nodes are shared between threads and
// change only through atomics (slots and cells), and are freed by the thread whose CAS
// unlinked them, epoch-deferred. The words in cells are the caller's, who makes them safe
// to share (`leaf.rs`).
unsafe impl Send for Trie {}
// SAFETY: as above; all shared mutation goes through atomics.
unsafe impl Sync for Trie {}

enum Step<T> {
    Done(T),
    Retry,
}

impl Trie {
    /// An empty trie for addresses of `max_len` bits.
    pub(crate) fn new(max_len: u8) -> Self {
        assert!(
            max_len <= 128 && max_len % 8 == 0 && max_len as usize >= 8 * TOP,
            "a whole number of levels, at least the top table's, at most 16"
        );
        Self {
            root: AtomicUsize::new(NodeBox::empty().into_raw()),
            top: Top::new(),
            max_len,
            levels: (max_len / 8) as usize,
        }
    }

    /// Turns an unfrozen node address loaded (root or slot) under a guard into a view.
    #[inline(always)]
    fn cnode_ref<'g>(s: usize, _g: &'g Guard) -> CNode<'g> {
        // SAFETY: locations hold only nodes built by `NodeBox` (the root from construction,
        // slots from `build`, both replaced only by CAS with another one); an unlinked node
        // is freed only after the guard it was loaded under unpins (`replace`, `remove`).
        // `from_raw` touches `alive`.
        unsafe { CNode::from_raw(s) }
    }

    #[inline(always)]
    fn root<'g>(&self, g: &'g Guard) -> CNode<'g> {
        Self::cnode_ref(self.root.load(LOAD), g)
    }

    /// The address of the depth-`TOP` node of the /16 that `key` starts with, 0 if none
    /// (a top slot is never frozen).
    #[inline(always)]
    fn top_raw(&self, key: &[u8]) -> usize {
        self.top.slot(key[0], key[1]).map_or(0, |s| s.load(LOAD))
    }

    /// Where the depth-`TOP` node on `key`'s path is linked, for a writer (`None` if the
    /// top table has no chunk there, so no node either).
    #[inline]
    fn top_at<'g>(&'g self, key: &[u8]) -> Option<At<'g>> {
        self.top.slot(key[0], key[1]).map(|loc| At { loc, raw: loc.load(LOAD) })
    }

    /// The longest match of `key` in the upper trie (prefixes of at most `8 * TOP` bits):
    /// the depth-1 node's leaf, else the root's.
    #[inline]
    fn upper_match<'g>(&'g self, key: &[u8; 16], g: &'g Guard) -> Option<Cell<'g>> {
        let root = self.root(g);
        if let Some(c) = Self::child(root, key[0], g) {
            if let Some(word) = c.leaf_cell(key[1]) {
                return Some(Cell::new(word, c, 1));
            }
        }
        root.leaf_cell(key[0]).map(|word| Cell::new(word, root, 0))
    }

    /// The child of `c` at `slot` (0 if none), for readers: the tag of a frozen slot is
    /// ignored.
    #[inline(always)]
    fn child<'g>(c: CNode<'g>, slot: u8, g: &'g Guard) -> Option<CNode<'g>> {
        let ch = c.child(slot);
        (ch != 0).then(|| Self::cnode_ref(ch, g))
    }

    /// Address width in bits: a key of this length is a host address.
    #[inline(always)]
    pub(crate) fn max_len(&self) -> u8 {
        self.max_len
    }

    /// Longest-prefix match of a full-length key: the value linked under the longest
    /// prefix covering `key`. Wait-free: at most `max_len / 8` node visits.
    ///
    /// The walk goes down the children first and reads the leaves on the way back up: a
    /// deeper node's prefixes are longer than any above it, so the first leaf found from
    /// the bottom is the match, and most lookups of a full table find it in the deepest
    /// node, without reading the leaf runs of the nodes above (a cache miss each at the
    /// upper levels). Reading a node's leaf later than its child slot changes nothing a
    /// reader can observe: everything in a node but its slots is immutable. Measured with
    /// `ratio_lookup` (one build, only this differing, five runs): IPv4 single lookups
    /// 0.63-0.71x -> 0.78-0.89x prefix-trie; IPv6 (two runs) 0.87-0.90x -> 0.89-0.94x.
    /// The walk starts at the top table's node, and the upper trie is read last, likewise.
    #[inline]
    pub(crate) fn lookup<'g>(&'g self, key: &[u8; 16], g: &'g Guard) -> Option<Cell<'g>> {
        let raw = self.top_raw(key);
        if raw != 0 {
            if let Some(cell) = self.lookup_below(raw, key, g) {
                return Some(cell);
            }
        }
        self.upper_match(key, g)
    }

    /// The longest match of `key` in the subtrie whose depth-`TOP` node is at `raw`
    /// (loaded from its top slot under `g`).
    #[inline(always)]
    fn lookup_below<'g>(&'g self, raw: usize, key: &[u8; 16], g: &'g Guard) -> Option<Cell<'g>> {
        // The nodes on the key's path, the depth-`TOP` one first: node `n` consumes key
        // byte `n`, at most up to 16 (a 128-bit key). Left uninitialized beyond the walk,
        // with no length in memory and no bounds-check branch: a lookup's time follows its
        // instructions, with cold caches too, where the core overlaps as many lookups as
        // its reorder window holds (BENCHMARKS.md, session 19: 171 -> 137 instructions,
        // 18 % less time where cached; session 26: 158 -> 129, 13-17 % less time cold).
        let mut path = [MaybeUninit::<CNode<'g>>::uninit(); 16 - TOP];
        // At least one level below the top table, at most 16.
        let levels = self.levels.clamp(TOP + 1, 16);
        let mut c = Self::cnode_ref(raw, g);
        c.prefetch_body();
        let mut n = TOP;
        loop {
            // SAFETY: `TOP <= n < levels <= 16`, so `n - TOP` is below `path`'s length and
            // `n` below `key`'s (the loop ends once `n` reaches `levels`).
            let (at, slot) = unsafe { (path.get_unchecked_mut(n - TOP), *key.get_unchecked(n)) };
            at.write(c);
            let link = c.child_link(slot);
            n += 1;
            // A node of the last level has no children (no key byte is left for them).
            let Some(link) = link.filter(|_| n < levels) else { break };
            c = Self::cnode_ref(link, g);
            c.prefetch_body();
        }
        while n > TOP {
            n -= 1;
            // SAFETY: the walk wrote `path[0..n - TOP]` before `n` reached its value
            // (every index below the final `n` once), and `n` only decreases here.
            let c = unsafe { path[n - TOP].assume_init() };
            if let Some(word) = c.leaf_cell(key[n]) {
                return Some(Cell::new(word, c, n as u8));
            }
        }
        None
    }

    /// [`lookup`](Self::lookup) of up to [`BATCH`] keys at once: `out[i]` receives the
    /// match of `keys[i]`. The walks advance in lock step, one dependent load per round,
    /// prefetching what the next round reads, so the cache misses of independent lookups
    /// overlap instead of queueing (the same results as `lookup`, at a fraction of the
    /// latency per key on a table that does not fit in cache).
    ///
    /// A key's match is final once its walk ends (no child to go to): its cell was read
    /// then, in the node's run, so the caller has the word's line. As in
    /// [`lookup`](Self::lookup), a walk reads a node's leaf run only where it ends, and the
    /// runs above only if that one is empty: a round prefetches a node's slot or its run,
    /// not both. One build with a runtime switch, `ratio_lookup`: IPv4 in-table 44.5, 54.6
    /// -> 40.8, 50.3 ns per lookup (8-9 %), IPv6 93.0, 95.8 -> 83.5, 89.2, random IPv4
    /// addresses 52.0, 70.3 -> 50.1, 68.4.
    pub(crate) fn lookup_batch<'g>(
        &'g self,
        keys: &[NetAddress],
        g: &'g Guard,
        out: &mut [Option<Cell<'g>>],
    ) {
        let n = keys.len().min(BATCH).min(out.len());
        let (keys, out) = (&keys[..n], &mut out[..n]);
        // Per key: the node it is at (0 once it has no child to go to) and its match, final
        // once the walk ended.
        let mut node = [0usize; BATCH];
        let mut best: [Option<Cell<'g>>; BATCH] = [None; BATCH];
        // The top table gives each walk its depth-`TOP` node at once, without the two
        // rounds below (the table's chunk words are cached under a lookup stream; its slots
        // are independent loads, which the core overlaps across keys). A walk with no node
        // there, or whose subtrie has no match, takes the upper trie's (`upper_match`).
        // IPv6 walks also read their depth-`TOP` node directly: a real table's prefixes
        // sit under a few /16 blocks, so those nodes stay cached (`DIRECT_V6`).
        let levels = self.levels;
        let direct = if self.max_len > 32 { TOP + DIRECT_V6 } else { TOP };
        // Per key and level: the node a walk went on from (its run there unread). A deeper
        // node's prefixes are longer, so those runs are read only if the deepest node has
        // no match, from the bottom up (as in `lookup`).
        // Uninitialized (zeroing it was 4 KiB of stores per call, a third of the batch's
        // instructions): a walk writes its entry of a level when it goes on to a child
        // there, and reads only the levels it went on from.
        let mut skipped = [[MaybeUninit::<CNode<'g>>::uninit(); 16]; BATCH];
        // The walks still going, in key order: the rounds below visit these only (a chunk
        // whose walks end at different depths would otherwise test every finished key in
        // both rounds of every level; a chunk of the 2023 table's IPv6 walks goes 6 to 16
        // levels deep: 10 of 418 instructions per lookup, session 25).
        let mut active = [0u8; BATCH];
        let mut n_active = 0;
        for i in 0..n {
            let key = keys[i].bytes();
            let mut raw = self.top_raw(key);
            let mut d = TOP;
            while raw != 0 && d < direct {
                let c = Self::cnode_ref(raw, g);
                raw = c.child(key[d]);
                if raw == 0 {
                    // The walk ends here: this node's run, else the levels above.
                    best[i] = c.leaf_cell(key[d]).map(|word| Cell::new(word, c, d as u8)).or_else(|| {
                        // SAFETY: this loop wrote `skipped[i][TOP..d]` (it went on from each
                        // of those levels).
                        unsafe { Self::skipped_match(&skipped[i], key, d) }
                    });
                    break;
                }
                skipped[i][d].write(c);
                d += 1;
            }
            if raw == 0 {
                best[i] = best[i].or_else(|| self.upper_match(key, g));
            } else {
                node[i] = raw;
                active[n_active] = i as u8;
                n_active += 1;
            }
        }
        // The first round's nodes are prefetched for it.
        for &i in &active[..n_active] {
            prefetch(node[i as usize] as *const u8);
        }
        // Per key, this round: the addresses of the run and the slot its node's head points
        // it to (null where there is none).
        let mut runs = [core::ptr::null::<AtomicUsize>(); BATCH];
        let mut slots = [core::ptr::null::<AtomicUsize>(); BATCH];
        // At most 16 levels (`max_len` <= 128): `d` indexes a key byte.
        for d in direct..levels {
            if n_active == 0 {
                break;
            }
            // Round 1: read each head (prefetched last round); prefetch its slot, or its
            // run where the walk ends here (no child; `addrs` gives one of the two).
            for &i in &active[..n_active] {
                let i = i as usize;
                let (r, s) = Self::cnode_ref(node[i], g).addrs(keys[i].bytes()[d]);
                if !s.is_null() {
                    prefetch(s.cast::<u8>());
                } else if !r.is_null() {
                    prefetch(r.cast::<u8>());
                }
                runs[i] = r;
                slots[i] = s;
            }
            // Round 2: read the child, or where there is none the cell (and if it is empty,
            // the skipped ones above); prefetch the child's head. The walks that go on stay
            // in `active`, in order.
            let mut kept = 0;
            for j in 0..n_active {
                let i = active[j] as usize;
                let c = Self::cnode_ref(node[i], g);
                let mut ch = 0;
                if !slots[i].is_null() {
                    // SAFETY: `addrs` derived the address from the node's child bitmap and
                    // count; the node (and its slots) live for `'g`.
                    ch = unsafe { &*slots[i] }.load(LOAD) & !FROZEN;
                    // A slot always holds a node (a CAS replaces one with another), so a
                    // walk with a slot goes on, and `addrs` left its run unread.
                    debug_assert!(ch != 0, "a slot without a node");
                }
                if ch != 0 {
                    skipped[i][d].write(c);
                    prefetch(ch as *const u8);
                    node[i] = ch;
                    active[kept] = i as u8;
                    kept += 1;
                    continue;
                }
                // The walk ends here: the deepest run first, then the skipped ones upwards
                // (their nodes, read this walk, live for `'g`), then the upper trie's.
                let key = keys[i].bytes();
                let here = (!runs[i].is_null())
                    .then(|| {
                        // SAFETY: `addrs` derived the address from the node's run bitmap and
                        // count; the node (and its runs) live for `'g`.
                        let (word, v) = unsafe { node::load_value(runs[i]) };
                        (v != 0).then_some(Cell::new(word, c, d as u8))
                    })
                    .flatten();
                best[i] = here
                    .or_else(|| {
                        // SAFETY: walk `i` went on to a child at every level from `TOP` to
                        // `d - 1` (it is at level `d`), writing `skipped[i][k]` each time, in
                        // this call (the direct levels before the rounds, the others in
                        // round 2).
                        unsafe { Self::skipped_match(&skipped[i], key, d) }
                    })
                    .or_else(|| self.upper_match(key, g));
                node[i] = 0;
            }
            n_active = kept;
        }
        // Every walk ended in the loop: a node of the last level has no children (there is
        // no key byte for them), so no match is left unread among `skipped`.
        debug_assert!(node[..n].iter().all(|&c| c == 0), "a walk went past the last level");
        out.copy_from_slice(&best[..n]);
    }

    /// The longest match among the leaves of `skipped[TOP..d]` (the nodes a batched walk
    /// went on from, levels `TOP..d` of `key`'s path), read bottom-up.
    ///
    /// # Safety
    /// `skipped[TOP..d]` are initialized, with nodes that live for `'g`.
    #[inline(always)]
    unsafe fn skipped_match<'g>(
        skipped: &[MaybeUninit<CNode<'g>>; 16],
        key: &[u8; 16],
        d: usize,
    ) -> Option<Cell<'g>> {
        (TOP..d).rev().find_map(|k| {
            // SAFETY: initialized per the contract.
            let up = unsafe { skipped[k].assume_init() };
            up.leaf_cell(key[k]).map(|word| Cell::new(word, up, k as u8))
        })
    }

    /// The cell of every prefix that covers the first `len` bits of `key` and is at most
    /// `len` long, longest first.
    pub(crate) fn matches<'g>(&'g self, key: &[u8; 16], len: u8, g: &'g Guard) -> Vec<Cell<'g>> {
        let mut out = Vec::new();
        // The node at depth `d` on the key's path: its prefixes of at most `len` bits.
        let mut visit = |c: CNode<'g>, d: usize| {
            let first = if d == 0 { 0 } else { 1 };
            for rel in first..=8u8 {
                if 8 * d + rel as usize > len as usize {
                    break;
                }
                let bits = if rel == 0 { 0 } else { (key[d] >> (8 - rel)) as u16 };
                if let Some(word) = c.get_cell((1u16 << rel) | bits) {
                    out.push(Cell::new(word, c, d as u8));
                }
            }
        };
        // The upper trie (its depth-1 nodes have no children), then the key's subtrie.
        let root = self.root(g);
        visit(root, 0);
        if len > 8 {
            if let Some(c) = Self::child(root, key[0], g) {
                visit(c, 1);
            }
        }
        let raw = self.top_raw(key);
        if len as usize > 8 * TOP && raw != 0 {
            let mut c = Self::cnode_ref(raw, g);
            let mut d = TOP;
            loop {
                visit(c, d);
                if 8 * (d + 1) >= len as usize || d + 1 >= 16 {
                    break;
                }
                match Self::child(c, key[d], g) {
                    Some(ch) => c = ch,
                    None => break,
                }
                d += 1;
            }
        }
        out.reverse();
        out
    }

    /// The cell of exactly `p`, if `p` is stored.
    pub(crate) fn get<'g>(&'g self, p: &NetAddress, g: &'g Guard) -> Option<Cell<'g>> {
        let (depth, hk) = locate(p);
        let c = self.node_of(p, depth, g)?;
        c.find_cell(hk).map(|word| Cell::new(word, c, depth as u8))
    }

    /// The node at `depth` on `p`'s path, by a reader's walk (a frozen slot still names
    /// the current child); `None` if a node on the way is missing.
    #[inline]
    fn node_of<'g>(&'g self, p: &NetAddress, depth: usize, g: &'g Guard) -> Option<CNode<'g>> {
        let bytes = p.bytes();
        let (mut c, from) = if depth < TOP {
            (self.root(g), 0)
        } else {
            let raw = self.top_raw(bytes);
            (raw != 0).then(|| (Self::cnode_ref(raw, g), TOP))?
        };
        for &slot in &bytes[from..depth] {
            c = Self::child(c, slot, g)?;
        }
        Some(c)
    }

    /// The cell of exactly `p` for a writer: one that was not frozen when this walk read it.
    /// `None` if `p` is not stored. The walk itself is a reader's (a frozen slot on the
    /// way still names the current child); only a frozen cell of `p`'s own node stops it.
    pub(crate) fn cell_for_write<'g>(&'g self, p: &NetAddress, g: &'g Guard) -> Option<Cell<'g>> {
        let (depth, hk) = locate(p);
        // Frozen cells met so far. A copier is usually between its freeze and its CAS:
        // the first few times, give it that time and look again, rather than copy the node
        // ourselves, which would fail its CAS (it would then copy again, freezing our cell
        // again: writer and copier can keep undoing each other). After that, help: the
        // node may be frozen for good (its copier lost its CAS to a copy of the parent,
        // which linked the frozen node).
        let mut frozen = 0;
        loop {
            let c = self.node_of(p, depth, g)?;
            let (word, v) = c.find_word(hk)?;
            if v & FROZEN == 0 {
                return Some(Cell::new(word, c, depth as u8));
            }
            frozen += 1;
            if frozen > PATIENCE {
                self.unfreeze(p, depth, g);
            }
            crate::sync::spin_hint();
        }
    }

    /// Replaces the node at `depth` on `p`'s path by an unfrozen copy, if it is frozen
    /// (helping, as `child_at` does for a frozen slot).
    fn unfreeze(&self, p: &NetAddress, depth: usize, g: &Guard) {
        let mut path = [None; 17];
        if let Step::Done(k) = self.walk_path(p.bytes(), depth, &mut path, g) {
            if k == depth {
                let Some(at) = path[k] else { unreachable!("walk_path fills path[..=k]") };
                let c = Self::cnode_ref(at.raw, g);
                if c.is_frozen() {
                    self.replace(at, c.copy(), g);
                }
            }
        }
    }

    /// Replaces the node at `at` by `new` (a compare-and-swap on its location). On success
    /// the caller's CAS unlinked `at.raw`, which is retired; on failure `new` is freed and
    /// `false` returned.
    fn replace(&self, at: At<'_>, new: NodeBox, g: &Guard) -> bool {
        // AcqRel: Release publishes `new` (built before the CAS) and whatever it links;
        // pairs with `LOAD`. Acquire: a writer that wins has seen everything published by
        // the CAS it replaces (it copied that node's contents). A frozen slot never equals
        // `at.raw` (unfrozen), so this fails once the slot's node is being copied.
        match at.loc.compare_exchange(at.raw, new.as_raw(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                new.into_raw();
                let old = at.raw;
                // SAFETY: our CAS unlinked `old`; only we retire it (module docs), and new
                // readers can no longer load it. Readers pinned before keep it alive.
                unsafe { retire_with(g, move || node::free(old)) };
                true
            }
            Err(_) => false,
        }
    }

    /// Empties the top slot `at` (a depth-`TOP` node emptied by a removal): a CAS from the
    /// node to 0, which retires it, as [`replace`](Self::replace) does.
    fn unlink(&self, at: At<'_>, g: &Guard) -> bool {
        // AcqRel and Acquire: as in `replace` (a reader that loads 0 reads nothing).
        let won = at.loc.compare_exchange(at.raw, 0, Ordering::AcqRel, Ordering::Acquire);
        // Mutant `top_unlink_store`: the slot emptied by a plain store, whatever it holds.
        #[cfg(rtm_mutant = "top_unlink_store")]
        let won = {
            let _ = won;
            at.loc.store(0, Ordering::Release);
            Ok::<usize, usize>(at.raw)
        };
        match won {
            Ok(_) => {
                let old = at.raw;
                // SAFETY: as in `replace`: our CAS unlinked `old`, only we retire it.
                unsafe { retire_with(g, move || node::free(old)) };
                true
            }
            Err(_) => false,
        }
    }

    /// Where the child of `c` (found at `at`) at `slot` is: `Done(None)` if there is none.
    /// A frozen slot is helped (its node `c` replaced by an unfrozen copy) and reported as
    /// `Retry`: `c` is frozen and still linked, so its copier lost its CAS (or is about to
    /// win it); either way a fresh copy lets everyone go on.
    fn child_at<'g>(&'g self, at: At<'g>, c: CNode<'g>, slot: u8, g: &'g Guard) -> Step<Option<At<'g>>> {
        let Some(loc) = c.child_slot(slot) else { return Step::Done(None) };
        let raw = loc.load(LOAD);
        if raw & FROZEN != 0 {
            self.replace(at, c.copy(), g);
            return Step::Retry;
        }
        Step::Done(Some(At { loc, raw }))
    }

    /// Walks towards `bytes[..depth]` from where its nodes start (the root for the upper
    /// trie, `depth < TOP`, else the top slot), filling `path[from..=k]` with where each
    /// node was found, and returns `k` (`depth` if every node exists, less if one on the
    /// way is missing); see `child_at`.
    fn walk_path<'g>(
        &'g self,
        bytes: &[u8],
        depth: usize,
        path: &mut [Option<At<'g>>; 17],
        g: &'g Guard,
    ) -> Step<usize> {
        let from = if depth < TOP {
            path[0] = Some(At { loc: &self.root, raw: self.root.load(LOAD) });
            0
        } else {
            match self.top_at(bytes) {
                Some(at) if at.raw != 0 => path[TOP] = Some(at),
                _ => return Step::Done(0),
            }
            TOP
        };
        for d in from..depth {
            let Some(at) = path[d] else { unreachable!("filled above") };
            match self.child_at(at, Self::cnode_ref(at.raw, g), bytes[d], g) {
                Step::Done(Some(next)) => path[d + 1] = Some(next),
                Step::Done(None) => return Step::Done(d),
                Step::Retry => return Step::Retry,
            }
        }
        Step::Done(depth)
    }

    /// Stores `p` with the word `value` in its cell unless `p` is stored already, whose
    /// cell is returned as `Err`. On `Ok` the cell holds the word until `remove` takes the
    /// prefix out (the trie itself never reads what a word names).
    pub(crate) fn insert<'g>(&'g self, p: &NetAddress, value: usize, g: &'g Guard) -> Result<(), Cell<'g>> {
        loop {
            if let Step::Done(r) = self.insert_once(p, value, g) {
                return r;
            }
            crate::sync::spin_hint();
        }
    }

    fn insert_once<'g>(&'g self, p: &NetAddress, value: usize, g: &'g Guard) -> Step<Result<(), Cell<'g>>> {
        let (depth, hk) = locate(p);
        let bytes = p.bytes();
        let (mut at, from) = if depth < TOP {
            (At { loc: &self.root, raw: self.root.load(LOAD) }, 0)
        } else {
            let loc = self.top.slot_or_make(bytes[0], bytes[1]);
            let mut raw = loc.load(LOAD);
            if raw == 0 {
                // The /16's first node: an empty one, filled below like any new child.
                let child = NodeBox::empty();
                // AcqRel: Release publishes the node (pairs with `LOAD`); Acquire as in
                // `replace`.
                if loc.compare_exchange(0, child.as_raw(), Ordering::AcqRel, Ordering::Acquire).is_err() {
                    return Step::Retry; // `child` was not published: dropped here
                }
                raw = child.into_raw();
            }
            (At { loc, raw }, TOP)
        };
        for &slot in &bytes[from..depth] {
            let c = Self::cnode_ref(at.raw, g);
            match self.child_at(at, c, slot, g) {
                Step::Done(Some(next)) => {
                    at = next;
                    continue;
                }
                Step::Done(None) => {}
                Step::Retry => return Step::Retry,
            }
            // Add the missing child (an empty node) with a copy of `c`, and go on into it.
            let child = NodeBox::empty();
            let child_raw = child.as_raw();
            let parent = c.with_child(slot, child_raw);
            let parent_raw = parent.as_raw();
            if !self.replace(at, parent, g) {
                return Step::Retry; // `child` was not published: dropped here
            }
            child.into_raw(); // published by the CAS
                              // The new parent stays allocated while we are pinned: unlinking it would need
                              // a CAS by a thread that then retires it, deferred past our pin.
            let Some(s) = Self::cnode_ref(parent_raw, g).child_slot(slot) else {
                unreachable!("the copy has the child")
            };
            // If another writer replaced the child since, our CAS on `s` fails: retry.
            at = At { loc: s, raw: child_raw };
        }
        let c = Self::cnode_ref(at.raw, g);
        if let Some(word) = c.find_cell(hk) {
            return Step::Done(Err(Cell::new(word, c, depth as u8)));
        }
        // The CAS's Release publishes the word and what it names (built before `insert`
        // was called); pairs with `LOAD`.
        if self.replace(at, c.with_prefix(hk, value), g) {
            crate::sync::LIVE_LEAVES.add(1);
            Step::Done(Ok(()))
        } else {
            Step::Retry
        }
    }

    /// Takes `p` out if its cell holds `expected`, a *final* word (one no writer ever
    /// replaces, such as a dead leaf's: the check may read the cell before the copy
    /// freezes it). Returns whether it did.
    pub(crate) fn remove(&self, p: &NetAddress, expected: usize, g: &Guard) -> bool {
        self.remove_where(p, g, &mut |_, w| w == expected)
    }

    /// Takes `p` out if `pred(cell, word)` holds for its cell and the word read from it
    /// (untagged), which must then be final (see [`remove`](Self::remove)). `pred` may run
    /// more than once (once per attempt) and may act: e.g. kill the word, which one walk
    /// then both does and takes out. Returns whether this call took `p` out.
    pub(crate) fn remove_where<'g>(
        &'g self,
        p: &NetAddress,
        g: &'g Guard,
        pred: &mut dyn FnMut(Cell<'g>, usize) -> bool,
    ) -> bool {
        loop {
            if let Step::Done(r) = self.remove_once(p, g, pred) {
                return r;
            }
            crate::sync::spin_hint();
        }
    }

    fn remove_once<'g>(
        &'g self,
        p: &NetAddress,
        g: &'g Guard,
        pred: &mut dyn FnMut(Cell<'g>, usize) -> bool,
    ) -> Step<bool> {
        let (depth, hk) = locate(p);
        let mut path = [None; 17];
        let k = match self.walk_path(p.bytes(), depth, &mut path, g) {
            Step::Done(k) if k == depth => k,
            Step::Done(_) => return Step::Done(false),
            Step::Retry => return Step::Retry,
        };
        let Some(at) = path[k] else { unreachable!("walk_path fills path[..=k]") };
        let c = Self::cnode_ref(at.raw, g);
        match c.find_word(hk) {
            Some((word, v)) if pred(Cell::new(word, c, depth as u8), v & !FROZEN) => {}
            _ => return Step::Done(false),
        }
        let mut new = c.without_prefix(hk);
        // An emptied non-root node goes: its parent is copied without it, and so on up, to
        // the root or the depth-`TOP` node, whose top slot then gets 0.
        let from = if depth < TOP { 0 } else { TOP };
        let mut level = depth;
        while level > from && new.is_empty() {
            let (Some(parent), Some(node)) = (path[level - 1], path[level]) else { unreachable!("filled") };
            match Self::cnode_ref(parent.raw, g).without_child(p.bytes()[level - 1], node.raw) {
                Some(n) => new = n,
                None => return Step::Retry, // the slot changed before our freeze
            }
            level -= 1;
        }
        let Some(top) = path[level] else { unreachable!("filled") };
        let won =
            if level == TOP && new.is_empty() { self.unlink(top, g) } else { self.replace(top, new, g) };
        if !won {
            return Step::Retry;
        }
        // `replace` (or `unlink`) retired `top.raw`; the emptied nodes below it were unlinked
        // by the same CAS (each one's slot was frozen holding it), and only by it.
        for at in path[level + 1..=depth].iter().flatten() {
            let old = at.raw;
            // SAFETY: as for `replace`: our CAS unlinked `old`, we alone retire it.
            unsafe { retire_with(g, move || node::free(old)) };
        }
        crate::sync::LIVE_LEAVES.add(-1);
        Step::Done(true)
    }

    /// Visits every stored prefix (its prefix and cell) in enumeration order (address
    /// ascending, then length ascending). Prefixes stored or taken out concurrently may or
    /// may not be seen.
    pub(crate) fn for_each<'g>(&'g self, g: &'g Guard, f: &mut dyn FnMut(NetAddress, Cell<'g>)) {
        self.walk(Some(self.root(g)), 0, &mut [0; 16], g, f);
    }

    /// Visits the prefixes under the node at `depth` on `key[..depth]` (`None` for a
    /// depth-1 position of the upper trie with no node, above a top chunk) and its
    /// children: in the upper trie, the root's are its own and every byte with a top chunk;
    /// a depth-1 position's are the top slots under it.
    fn walk<'g>(
        &'g self,
        c: Option<CNode<'g>>,
        depth: usize,
        key: &mut [u8; 16],
        g: &'g Guard,
        f: &mut dyn FnMut(NetAddress, Cell<'g>),
    ) {
        // Internal prefixes by start slot then length, each slot's child after them.
        let mut pre: Vec<(u8, u8, &'g AtomicUsize, CNode<'g>)> = c
            .into_iter()
            .flat_map(|c| c.cells().map(move |(hk, word)| (node::hk_start(hk), node::hk_len(hk), word, c)))
            .collect();
        pre.sort_unstable_by_key(|&(s, l, _, _)| (s, l));
        let emit = |key: &mut [u8; 16], f: &mut dyn FnMut(NetAddress, Cell<'g>), (s, l, word, c)| {
            key[depth] = s;
            f(self.prefix_at(key, depth, l), Cell::new(word, c, depth as u8));
        };
        let children: Vec<(u8, Option<CNode<'g>>)> = match depth {
            0 => (0..=255u8)
                .filter_map(|s| {
                    let ch = c.and_then(|c| Self::child(c, s, g));
                    (ch.is_some() || self.top.has_chunk(s)).then_some((s, ch))
                })
                .collect(),
            1 => self.top.nodes_of(key[0]).map(|(s, raw)| (s, Some(Self::cnode_ref(raw, g)))).collect(),
            _ => c
                .into_iter()
                .flat_map(|c| c.children())
                .map(|(s, ch)| (s, Some(Self::cnode_ref(ch, g))))
                .collect(),
        };
        // A merge of the two slot-ordered sequences: a prefix starting at a slot comes
        // before that slot's child.
        let mut pre = pre.into_iter().peekable();
        for (s, ch) in children {
            while let Some(&e) = pre.peek().filter(|p| p.0 <= s) {
                emit(key, f, e);
                pre.next();
            }
            key[depth] = s;
            self.walk(ch, depth + 1, key, g, f);
        }
        for e in pre {
            emit(key, f, e);
        }
        key[depth] = 0;
    }

    /// The prefix of `rel` bits below the `depth` bytes of `key` (its own bits from
    /// `key[depth]`, the rest zero).
    fn prefix_at(&self, key: &[u8; 16], depth: usize, rel: u8) -> NetAddress {
        let family = if self.max_len == 32 { crate::AddressFamily::Ipv4 } else { crate::AddressFamily::Ipv6 };
        let mut bytes = [0u8; 16];
        bytes[..=depth.min(15)].copy_from_slice(&key[..=depth.min(15)]);
        NetAddress::new(family, &bytes, 8 * depth as u8 + rel).expect("a stored prefix is valid")
    }

    /// Number of nodes and bytes of node memory currently linked (for memory figures).
    pub(crate) fn node_stats(&self, g: &Guard) -> (usize, usize) {
        let mut stack = vec![self.root(g)];
        stack.extend(self.top.nodes().map(|(_, _, raw)| Self::cnode_ref(raw, g)));
        let (mut nodes, mut bytes) = (0, self.top.heap_bytes());
        while let Some(c) = stack.pop() {
            nodes += 1;
            bytes += c.heap_bytes();
            stack.extend(c.children().map(|(_, p)| Self::cnode_ref(p, g)));
        }
        (nodes, bytes)
    }
}

impl Drop for Trie {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader or writer can be inside the trie, and every node
        // reachable from the root or the top table is linked exactly once (unlinked nodes
        // were retired to the epoch collector and are not reachable from here). Children
        // are collected before their parent is freed.
        unsafe {
            let mut stack = vec![self.root.load(Ordering::Relaxed)];
            stack.extend(self.top.nodes().map(|(_, _, raw)| raw));
            while let Some(p) = stack.pop() {
                let c = CNode::from_raw(p);
                crate::sync::LIVE_LEAVES.add(-(c.cells().len() as isize));
                stack.extend(c.children().map(|(_, ch)| ch));
                node::free(p);
            }
        }
    }
}

#[cfg(test)]
mod tests;
