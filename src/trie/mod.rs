//! The lock-free, epoch-reclaimed multibit prefix trie.
//!
//! # Shape
//! Stride 8: a node at depth `d` consumes key byte `d` and stores the prefixes whose length
//! lies in `(8d, 8d + 8]` (the root also length 0), so an IPv4 /24 sits in a depth-2 node and
//! a full-table lookup visits three nodes. Each node is an [`INode`] — a stable cell holding the
//! address (an `AtomicUsize`) of an immutable, single-allocation [`CNode`](node::CNode)
//! (children bitmap + leaf vector, see `node.rs`). The indirection (as in Ctrie) lets a writer replace one node's
//! contents with a single compare-and-swap without copying its parent.
//!
//! # Operations (all under a pinned epoch guard)
//! * `lookup`: per level, read the leaf (longest prefix in the node covering the key byte)
//!   and the child; no writes, no locks, no reference counts.
//! * `get`, `matches`: exact match and all matches longest-first, from the sorted prefix
//!   arrays (used by the slow paths).
//! * `insert`: walk down, creating missing nodes (each a CAS on the parent's `main`), then
//!   CAS the target node's `main` from the loaded `CNode` to a copy with the value added.
//!   If the prefix is present the existing value is returned instead.
//! * `remove(prefix, expected)`: CAS the target node to a copy without the value, only if
//!   the value linked there is still `expected`. If that empties a non-root node, the new
//!   `CNode` is a *tomb*: nobody may add to it. The tombed node is then unlinked from its
//!   parent (again a CAS, cascading upwards while parents become empty). A writer that
//!   meets a tomb helps unlink it and retries, so no insert is ever lost to a removal.
//!
//! # Memory reclamation and invariants
//! * A replaced `CNode` (`INode::replace`, `retire_with` + `node::free`) and an unlinked
//!   `INode` (`retire`) are retired by the one thread whose CAS replaced/unlinked them;
//!   readers pinned before that keep them alive.
//! * Because every pointer compared in a CAS was loaded under the caller's pin, it cannot
//!   be freed and reused meanwhile (no ABA).
//! * The trie does not own values: `insert` links a value the caller keeps a reference for,
//!   `remove` unlinks it and the caller releases that reference (epoch-deferred, since
//!   readers may still hold the pointer from an old `CNode`).
//! * Every `Shared`→reference conversion goes through [`Trie::cnode`], [`inode_ref`] or
//!   [`value_ref`], which touch the node's loom-visible `alive` cell.

mod node;

/// Most keys [`Trie::lookup_batch`] walks at once.
pub(crate) const BATCH: usize = 32;

use crate::prefix::NetAddress;
use crate::sync::epoch::{Guard, Owned, Shared};
use crate::sync::{prefetch, retire, retire_with, AtomicUsize, Ordering, Touch, TrackedCell};
use core::marker::PhantomData;
use node::{CNode, HeapKey, NodeBox};

/// Values stored in the trie: shareable between threads and exposing their loom liveness
/// cell through the same [`Touch`] the epoch cell uses.
pub(crate) trait Linked: Touch + Send + Sync {}
impl<T: Touch + Send + Sync> Linked for T {}

/// Ordering of every load of an `INode::main`. `Acquire` pairs with the `AcqRel`
/// compare-exchange that published the `CNode`, so its contents (built before the CAS)
/// are visible to the reader.
#[cfg(not(rtm_mutant = "relaxed_load"))]
const LOAD: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "relaxed_load")]
const LOAD: Ordering = Ordering::Relaxed;

/// A stable trie node: the target of child pointers. See the module docs.
struct INode {
    alive: TrackedCell<()>,
    /// Address of the current `CNode` (never 0).
    main: AtomicUsize,
}

impl INode {
    fn new(c: NodeBox) -> Self {
        Self { alive: TrackedCell::new(()), main: AtomicUsize::new(c.into_raw()) }
    }

    /// Replaces the contents `cur` by `new` (a compare-and-swap). On success the caller's
    /// CAS unlinked `cur`, which is retired; on failure `new` is freed and `false` returned.
    fn replace(&self, cur: usize, new: NodeBox, g: &Guard) -> bool {
        // AcqRel: Release publishes `new` (built before the CAS) and whatever it links;
        // pairs with `LOAD`. Acquire: a writer that wins has seen everything published by
        // the CAS it replaces (it copied that node's contents).
        match self.main.compare_exchange(cur, new.as_raw(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                new.into_raw();
                // SAFETY: our CAS unlinked `cur`; only we retire it, and new readers can no
                // longer load it. Readers pinned before keep it alive until they unpin.
                unsafe { retire_with(g, move || node::free(cur)) };
                true
            }
            Err(_) => false,
        }
    }
}

impl Drop for INode {
    fn drop(&mut self) {
        self.alive.retire();
        // SAFETY: an INode is dropped either by the trie's own `Drop` (exclusive access) or
        // by the epoch collector after it was unlinked and every reader that could reach it
        // has unpinned. Its current `CNode` is reachable only through it, so freeing it
        // here is the only free of that node.
        unsafe { node::free(self.main.load(Ordering::Relaxed)) }
    }
}

/// Turns a child pointer read from a live `CNode` into a reference tied to the guard.
#[inline(always)]
fn inode_ref(p: usize, _g: &Guard) -> &INode {
    // SAFETY: `p` was read from a `CNode` loaded under `_g`; an INode is retired only after
    // it was unlinked from every live CNode, and retired nodes are not freed while `_g` is
    // pinned. So `p` points to a live INode for `'g`.
    let n = unsafe { &*(p as *const INode) };
    n.alive.touch();
    n
}

/// Turns a value pointer read from a live `CNode` into a reference tied to the guard.
#[inline(always)]
fn value_ref<V: Linked>(p: usize, _g: &Guard) -> &V {
    // SAFETY: `p` was read from a `CNode` loaded under `_g`. The trie's contract with its
    // caller: a value is destroyed only epoch-deferred after it was unlinked, so it stays
    // valid while `_g` is pinned.
    let v = unsafe { &*(p as *const V) };
    v.touch();
    v
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

/// Ancestors of the node being worked on: `(parent, slot of the child in the parent)`.
struct Path<'g> {
    items: [(Option<&'g INode>, u8); 16],
    len: usize,
}

impl<'g> Path<'g> {
    fn new() -> Self {
        Self { items: [(None, 0); 16], len: 0 }
    }
    fn push(&mut self, n: &'g INode, slot: u8) {
        self.items[self.len] = (Some(n), slot);
        self.len += 1;
    }
    fn pop(&mut self) -> Option<(&'g INode, u8)> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let (n, s) = self.items[self.len];
        n.map(|n| (n, s))
    }
}

/// See the module docs.
pub(crate) struct Trie<V> {
    root: INode,
    /// Address width in bits (32 or 128): lookups walk at most `max_len / 8` levels.
    max_len: u8,
    _values: PhantomData<*const V>,
}

// SAFETY: the trie shares `&V` between threads (readers) and hands values from one thread
// to another (a value linked by one writer is unlinked by another), so `V: Send + Sync`
// (required by `Linked`) is exactly what is needed; nodes are immutable once published.
unsafe impl<V: Linked> Send for Trie<V> {}
// SAFETY: as above; all shared mutation goes through atomics.
unsafe impl<V: Linked> Sync for Trie<V> {}

enum Step<T> {
    Done(T),
    Retry,
}

impl<V: Linked> Trie<V> {
    /// An empty trie for addresses of `max_len` bits.
    pub(crate) fn new(max_len: u8) -> Self {
        Self { root: INode::new(NodeBox::empty()), max_len, _values: PhantomData }
    }

    /// Loads an INode's current contents.
    #[inline(always)]
    fn cnode<'g>(&self, n: &INode, g: &'g Guard) -> (usize, CNode<'g>) {
        let s = n.main.load(LOAD);
        (s, Self::cnode_ref(s, g))
    }

    /// Turns an address loaded from an `INode::main` under a guard into a node view.
    #[inline(always)]
    fn cnode_ref<'g>(s: usize, _g: &'g Guard) -> CNode<'g> {
        // SAFETY: `main` always holds a node built by `NodeBox` (set at construction, only
        // ever replaced by CAS with another one); a replaced node is freed only after the
        // guard it was loaded under unpins (`INode::replace`). `from_raw` touches `alive`.
        unsafe { CNode::from_raw(s) }
    }

    /// Longest-prefix match of a full-length key: the value linked under the longest
    /// prefix covering `key`. Wait-free: at most `max_len / 8` node visits.
    #[inline]
    pub(crate) fn lookup<'g>(&'g self, key: &[u8; 16], g: &'g Guard) -> Option<&'g V> {
        let mut node = &self.root;
        let mut best = 0usize;
        for &slot in key.iter().take((self.max_len / 8) as usize) {
            let (_, c) = self.cnode(node, g);
            let l = c.leaf(slot);
            if l != 0 {
                best = l;
            }
            let ch = c.child(slot);
            if ch == 0 {
                break;
            }
            node = inode_ref(ch, g);
        }
        (best != 0).then(|| value_ref(best, g))
    }

    /// [`lookup`](Self::lookup) of up to [`BATCH`] keys at once: `out[i]` receives the
    /// match of `keys[i]`. The walks advance in lock step, one dependent load per round,
    /// prefetching what the next round reads, so the cache misses of independent lookups
    /// overlap instead of queueing (the same results as `lookup`, at a fraction of the
    /// latency per key on a table that does not fit in cache).
    #[allow(clippy::needless_range_loop)] // `d` indexes every key's byte, in lock step
    pub(crate) fn lookup_batch<'g>(&'g self, keys: &[[u8; 16]], g: &'g Guard, out: &mut [Option<&'g V>]) {
        let n = keys.len().min(BATCH).min(out.len());
        let mut nodes: [Option<&'g INode>; BATCH] = [Some(&self.root); BATCH];
        let mut cs: [Option<CNode<'g>>; BATCH] = [None; BATCH];
        let mut best = [0usize; BATCH];
        for d in 0..(self.max_len / 8) as usize {
            // Round 1: each walk loads its node's contents pointer; prefetch the contents.
            for i in 0..n {
                cs[i] = nodes[i].map(|node| {
                    let s = node.main.load(LOAD);
                    prefetch(s as *const u8);
                    Self::cnode_ref(s, g)
                });
            }
            // Round 2: read the bitmaps; prefetch the leaf and child entries.
            for i in 0..n {
                if let Some(c) = cs[i] {
                    c.prefetch(keys[i][d]);
                }
            }
            // Round 3: read the leaf and the child; prefetch the child.
            let mut more = false;
            for i in 0..n {
                nodes[i] = cs[i].and_then(|c| {
                    let slot = keys[i][d];
                    let l = c.leaf(slot);
                    if l != 0 {
                        best[i] = l;
                    }
                    let ch = c.child(slot);
                    (ch != 0).then(|| {
                        prefetch(ch as *const INode);
                        more = true;
                        inode_ref(ch, g)
                    })
                });
            }
            if !more {
                break;
            }
        }
        for i in 0..n {
            out[i] = (best[i] != 0).then(|| {
                prefetch(best[i] as *const V);
                value_ref(best[i], g)
            });
        }
    }

    /// Every value whose prefix covers the first `len` bits of `key` and is at most `len`
    /// long, longest first.
    pub(crate) fn matches<'g>(&'g self, key: &[u8; 16], len: u8, g: &'g Guard) -> Vec<&'g V> {
        let mut out = Vec::new();
        let mut node = &self.root;
        let mut d = 0usize;
        loop {
            let (_, c) = self.cnode(node, g);
            let first = if d == 0 { 0 } else { 1 };
            for rel in first..=8u8 {
                if 8 * d + rel as usize > len as usize {
                    break;
                }
                let bits = if rel == 0 { 0 } else { (key[d] >> (8 - rel)) as u16 };
                let v = c.get((1u16 << rel) | bits);
                if v != 0 {
                    out.push(value_ref(v, g));
                }
            }
            if 8 * (d + 1) >= len as usize || d + 1 >= 16 {
                break;
            }
            let ch = c.child(key[d]);
            if ch == 0 {
                break;
            }
            node = inode_ref(ch, g);
            d += 1;
        }
        out.reverse();
        out
    }

    /// The value linked under exactly `p`.
    pub(crate) fn get<'g>(&'g self, p: &NetAddress, g: &'g Guard) -> Option<&'g V> {
        let (depth, hk) = locate(p);
        let mut node = &self.root;
        for &slot in &p.bytes()[..depth] {
            let (_, c) = self.cnode(node, g);
            let ch = c.child(slot);
            if ch == 0 {
                return None;
            }
            node = inode_ref(ch, g);
        }
        let (_, c) = self.cnode(node, g);
        let v = c.get(hk);
        (v != 0).then(|| value_ref(v, g))
    }

    /// Links `value` under `p` unless a value is linked there already, which is returned as
    /// `Err`. On `Ok` the trie holds the pointer until `remove` unlinks it.
    pub(crate) fn insert<'g>(&'g self, p: &NetAddress, value: *const V, g: &'g Guard) -> Result<(), &'g V> {
        loop {
            if let Step::Done(r) = self.insert_once(p, value, g) {
                return r;
            }
            crate::sync::spin_hint();
        }
    }

    fn insert_once<'g>(&'g self, p: &NetAddress, value: *const V, g: &'g Guard) -> Step<Result<(), &'g V>> {
        let (depth, hk) = locate(p);
        let mut path = Path::new();
        let mut node = &self.root;
        for &slot in &p.bytes()[..depth] {
            let (cs, c) = self.cnode(node, g);
            if c.tomb() {
                self.prune(path, node, g);
                return Step::Retry;
            }
            let ch = c.child(slot);
            if ch != 0 {
                path.push(node, slot);
                node = inode_ref(ch, g);
                continue;
            }
            let child = Owned::new(INode::new(NodeBox::empty())).into_shared(g);
            // The CAS publishes the new CNode and, through it, the new child.
            if node.replace(cs, c.with_child(slot, child.as_raw() as usize), g) {
                path.push(node, slot);
                // SAFETY: `child` was just published by our CAS and cannot have been
                // retired yet: retiring requires unlinking it, which needs our pin to end.
                node = unsafe { child.deref() };
                node.alive.touch();
            } else {
                // SAFETY: `child` was never published (the CAS failed); we own it.
                unsafe { drop(child.into_owned()) };
                return Step::Retry;
            }
        }
        let (cs, c) = self.cnode(node, g);
        if c.tomb() {
            self.prune(path, node, g);
            return Step::Retry;
        }
        let cur = c.get(hk);
        if cur != 0 {
            return Step::Done(Err(value_ref(cur, g)));
        }
        // The CAS's Release publishes the value pointer and the value's contents (written
        // before `insert` was called); pairs with `LOAD`.
        if node.replace(cs, c.with_prefix(hk, value as usize), g) {
            Step::Done(Ok(()))
        } else {
            Step::Retry
        }
    }

    /// Unlinks the value under `p` if it is `expected`. Returns whether it did; on `true`
    /// the caller owns the link reference it gave to `insert` (release it epoch-deferred).
    pub(crate) fn remove(&self, p: &NetAddress, expected: *const V, g: &Guard) -> bool {
        let (depth, hk) = locate(p);
        'retry: loop {
            let mut path = Path::new();
            let mut node = &self.root;
            for &slot in &p.bytes()[..depth] {
                let (_, c) = self.cnode(node, g);
                let ch = c.child(slot);
                if ch == 0 {
                    return false;
                }
                path.push(node, slot);
                node = inode_ref(ch, g);
            }
            let (cs, c) = self.cnode(node, g);
            if c.get(hk) != expected as usize {
                return false;
            }
            let (new_c, tomb) = c.without_prefix(hk, depth > 0);
            if node.replace(cs, new_c, g) {
                if tomb {
                    self.prune(path, node, g);
                }
                return true;
            }
            crate::sync::spin_hint();
            continue 'retry;
        }
    }

    /// Unlinks the tombed `child` from its parent (the last entry of `path`), cascading
    /// upwards while a parent becomes empty. Any thread may call it (helping); exactly one
    /// CAS unlinks a given node, and that thread retires it.
    fn prune<'g>(&self, mut path: Path<'g>, child: &'g INode, g: &'g Guard) {
        let mut child = child;
        while let Some((parent, slot)) = path.pop() {
            loop {
                let (ps, pc) = self.cnode(parent, g);
                if pc.child(slot) != child as *const INode as usize {
                    return; // someone else unlinked it and continues the cascade
                }
                let (new_pc, tomb) = pc.without_child(slot, path.len > 0);
                if parent.replace(ps, new_pc, g) {
                    // SAFETY: our CAS (which also retired `ps`) unlinked `child`; `child` is
                    // tombed, so nobody can link anything new below it.
                    unsafe { retire(g, Shared::from(child as *const INode)) };
                    if !tomb {
                        return;
                    }
                    child = parent;
                    break;
                }
                crate::sync::spin_hint();
            }
        }
    }

    /// Visits every linked value in enumeration order (address ascending, then length
    /// ascending). Values linked or unlinked concurrently may or may not be seen.
    pub(crate) fn for_each<'g>(&'g self, g: &'g Guard, f: &mut dyn FnMut(&'g V)) {
        self.walk(&self.root, g, f);
    }

    fn walk<'g>(&'g self, n: &'g INode, g: &'g Guard, f: &mut dyn FnMut(&'g V)) {
        let (_, c) = self.cnode(n, g);
        // Internal prefixes by start slot then length, each slot's child after them.
        let mut pre: Vec<(u8, u8, usize)> =
            c.prefixes().iter().map(|&(hk, v)| (node::hk_start(hk), node::hk_len(hk), v)).collect();
        pre.sort_unstable();
        let mut children = c.children().peekable();
        let mut pi = 0;
        for slot in 0..=255u8 {
            while pi < pre.len() && pre[pi].0 == slot {
                f(value_ref(pre[pi].2, g));
                pi += 1;
            }
            if let Some(&(s, ch)) = children.peek() {
                if s == slot {
                    self.walk(inode_ref(ch, g), g, f);
                    children.next();
                }
            }
        }
    }

    /// Number of nodes and bytes of node memory currently linked (for memory figures).
    pub(crate) fn node_stats(&self, g: &Guard) -> (usize, usize) {
        let mut stack = vec![&self.root];
        let (mut nodes, mut bytes) = (0, 0);
        while let Some(n) = stack.pop() {
            let (_, c) = self.cnode(n, g);
            nodes += 1;
            bytes += core::mem::size_of::<INode>() + c.heap_bytes();
            stack.extend(c.children().map(|(_, p)| inode_ref(p, g)));
        }
        (nodes, bytes)
    }
}

impl<V> Drop for Trie<V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader or writer can be inside the trie. Nodes retired
        // earlier are owned by the epoch collector and are not reachable from here.
        unsafe {
            let mut stack: Vec<usize> = Vec::new();
            let c = CNode::from_raw(self.root.main.load(Ordering::Relaxed));
            stack.extend(c.children().map(|(_, p)| p));
            while let Some(p) = stack.pop() {
                let n = Owned::<INode>::from_raw(p as *mut INode);
                let c = CNode::from_raw(n.main.load(Ordering::Relaxed));
                stack.extend(c.children().map(|(_, p)| p));
                drop(n);
            }
        }
    }
}

#[cfg(test)]
mod tests;
