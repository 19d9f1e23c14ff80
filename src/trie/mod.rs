//! The lock-free, epoch-reclaimed multibit prefix trie.
//!
//! # Shape
//! Stride 8: a node at depth `d` consumes key byte `d` and stores the prefixes whose length
//! lies in `(8d, 8d + 8]` (the root also length 0), so an IPv4 /24 sits in a depth-2 node. A
//! node ([`CNode`], see `node.rs`) is one allocation: bitmaps, a leaf vector,
//! and one atomic *slot* per child holding the child's address. There is no indirection
//! cell between a slot and its child: a lookup loads the slot and goes on.
//!
//! The first `D` levels are split (`top.rs`; `D` is 2 for IPv4, 3 for IPv6): the root (an
//! atomic word like a slot) and its descendants above depth `D` hold the prefixes of at
//! most `8D` bits only (the *upper* trie), and the depth-`D` nodes hang from a *top table*
//! indexed by the key's first `D` bytes. A lookup starts at its /`8D`'s depth-`D` node, so
//! a full-table IPv4 lookup visits one node where it visited three (session 27: 129 -> 90
//! instructions per single lookup, IPv6 182 -> 149, and 133 with session 30's third
//! level for IPv6), and reads the upper trie only when the subtrie below has no match.
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
//!   child; a missing depth-`D` node is an empty one linked by a CAS from 0 on its top slot),
//!   then replace the target node by a copy with the prefix and its word added. If the
//!   prefix is present its cell is returned instead.
//! * `remove(prefix, expected)`: replace the target node by a copy without the prefix, only
//!   if its cell holds `expected`, a final word (dead). If that empties a non-root node, its
//!   parent is copied without it instead (checking, under the parent's freeze, that the
//!   slot still holds the node), cascading upwards while parents become empty, up to the
//!   root (never emptied) or a depth-`D` node, whose top slot then gets 0 (a CAS from the
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
mod read;
mod stack_vec;
mod top;
mod write;

/// Most keys [`Trie::lookup_batch`] walks at once.
pub(crate) const BATCH: usize = 32;

/// How many times [`Trie::cell_for_write`] looks again at a frozen cell before it copies
/// the node itself.
const PATIENCE: u32 = 2;

/// The depth of the nodes the top table links (`top.rs`) in a trie of `max_len`-bit keys:
/// key bytes `0..D` index it, and prefixes of at most `8D` bits live in the upper trie.
/// 3 for IPv6, whose real prefixes (/29 to /48) put its walks below depth 2 anyway, so a
/// third chunk level replaces the depth-2 node's head/slot pair on every walk (session 30).
/// 2 for IPv4, whose lookups mostly end in the depth-2 node (a /24's).
fn top_depth(max_len: u8) -> usize {
    if max_len > 32 {
        top::MAX_DEPTH
    } else {
        top::MIN_DEPTH
    }
}

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
    /// at most `8D` bits (its depth-`D - 1` nodes have no children), `D` the top table's
    /// depth.
    root: AtomicUsize,
    /// The subtries of the longer prefixes, by their first `D` key bytes.
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
        let depth = top_depth(max_len);
        assert!(
            max_len <= 128 && max_len % 8 == 0 && max_len as usize > 8 * depth,
            "a whole number of levels, more than the top table's, at most 16"
        );
        Self {
            root: AtomicUsize::new(NodeBox::empty().into_raw()),
            top: Top::new(depth),
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

    /// The depth `D` of the nodes the top table links.
    #[inline(always)]
    fn top_depth(&self) -> usize {
        self.top.depth()
    }

    /// The address of the depth-`D` node of the /`8D` that `key` starts with, 0 if none
    /// (a top slot is never frozen); `D` must be the top table's depth.
    #[inline(always)]
    fn top_raw_at<const D: usize>(&self, key: &[u8; 16]) -> usize {
        self.top.slot_at::<D>(key).map_or(0, |s| s.load(LOAD))
    }

    /// [`top_raw_at`](Self::top_raw_at) at the top table's depth.
    #[inline]
    fn top_raw(&self, key: &[u8; 16]) -> usize {
        self.top.slot(key).map_or(0, |s| s.load(LOAD))
    }

    /// Where the depth-`D` node on `key`'s path is linked, for a writer (`None` if the
    /// top table has no chunk there, so no node either).
    #[inline]
    fn top_at<'g>(&'g self, key: &[u8; 16]) -> Option<At<'g>> {
        self.top.slot(key).map(|loc| At { loc, raw: loc.load(LOAD) })
    }

    /// The longest match of `key` in the upper trie (prefixes of at most `8D` bits, `D`
    /// the top table's depth): walk down to depth `D - 1`, then the leaves bottom-up.
    #[inline]
    fn upper_match_at<'g, const D: usize>(&'g self, key: &[u8; 16], g: &'g Guard) -> Option<Cell<'g>> {
        let root = self.root(g);
        let mut path = [root; top::MAX_DEPTH];
        let mut n = 1;
        while n < D {
            match Self::child(path[n - 1], key[n - 1], g) {
                Some(c) => path[n] = c,
                None => break,
            }
            n += 1;
        }
        (0..n).rev().find_map(|d| path[d].leaf_cell(key[d]).map(|word| Cell::new(word, path[d], d as u8)))
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

    /// Visits every stored prefix (its prefix and cell) in enumeration order (address
    /// ascending, then length ascending). Prefixes stored or taken out concurrently may or
    /// may not be seen.
    pub(crate) fn for_each<'g>(&'g self, g: &'g Guard, f: &mut dyn FnMut(NetAddress, Cell<'g>)) {
        self.walk(Some(self.root(g)), 0, &mut [0; 16], g, f);
    }

    /// Visits the prefixes under the node at `depth` on `key[..depth]` (`None` for a
    /// position of the upper trie with no node, above a top chunk) and its children: in the
    /// upper trie above depth `D - 1`, its own and every byte with a top chunk; at depth
    /// `D - 1`, the top slots under it.
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
        let top = self.top_depth();
        let children: Vec<(u8, Option<CNode<'g>>)> = match depth {
            d if d + 1 < top => (0..=255u8)
                .filter_map(|s| {
                    let ch = c.and_then(|c| Self::child(c, s, g));
                    key[d] = s;
                    (ch.is_some() || self.top.has_chunk(&key[..=d])).then_some((s, ch))
                })
                .collect(),
            d if d + 1 == top => {
                self.top.nodes_of(&key[..d]).map(|(s, raw)| (s, Some(Self::cnode_ref(raw, g)))).collect()
            }
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
        stack.extend(self.top.nodes().into_iter().map(|raw| Self::cnode_ref(raw, g)));
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
            stack.extend(self.top.nodes());
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
