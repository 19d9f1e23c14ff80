//! The trie's readers: longest-prefix match ([`Trie::lookup`], one key, and
//! [`Trie::lookup_batch`], up to [`BATCH`] keys walked in lock step), every match of a key
//! ([`Trie::matches`]) and exact match ([`Trie::get`]). Wait-free: no writes, no locks, no
//! reference counts; a walk reads each slot once (Acquire, pairing with the writers' CAS
//! that linked the node) and what it reads stays allocated while its guard is pinned
//! (parent module, "Memory reclamation and invariants").

use super::node::{self, CNode, LOAD};
use super::*;

impl Trie {
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
    ///
    /// The top table's depth is a constant in the walk (one predictable branch here picks
    /// the walk of the trie's depth).
    #[inline]
    pub(crate) fn lookup<'g>(&'g self, key: &[u8; 16], g: &'g Guard) -> Option<Cell<'g>> {
        if self.top_depth() == top::MAX_DEPTH {
            self.lookup_at::<{ top::MAX_DEPTH }>(key, g)
        } else {
            self.lookup_at::<{ top::MIN_DEPTH }>(key, g)
        }
    }

    /// [`lookup`](Self::lookup) with the top table's depth `D` as a constant.
    #[inline(always)]
    fn lookup_at<'g, const D: usize>(&'g self, key: &[u8; 16], g: &'g Guard) -> Option<Cell<'g>> {
        let raw = self.top_raw_at::<D>(key);
        if raw != 0 {
            if let Some(cell) = self.lookup_below::<D>(raw, key, g) {
                return Some(cell);
            }
        }
        self.upper_match_at::<D>(key, g)
    }

    /// The longest match of `key` in the subtrie whose depth-`D` node is at `raw` (loaded
    /// from its top slot under `g`).
    #[inline(always)]
    fn lookup_below<'g, const D: usize>(
        &'g self,
        raw: usize,
        key: &[u8; 16],
        g: &'g Guard,
    ) -> Option<Cell<'g>> {
        // The nodes on the key's path, the depth-`D` one first: node `n` consumes key
        // byte `n`, at most up to 16 (a 128-bit key). Left uninitialized beyond the walk,
        // with no length in memory and no bounds-check branch: a lookup's time follows its
        // instructions, with cold caches too, where the core overlaps as many lookups as
        // its reorder window holds (BENCHMARKS.md, session 19: 171 -> 137 instructions,
        // 18 % less time where cached; session 26: 158 -> 129, 13-17 % less time cold).
        let mut path = [MaybeUninit::<CNode<'g>>::uninit(); 16 - top::MIN_DEPTH];
        // At least one level below the top table, at most 16.
        let levels = self.levels.clamp(D + 1, 16);
        let mut c = Self::cnode_ref(raw, g);
        c.prefetch_body();
        let mut n = D;
        loop {
            // SAFETY: `MIN_DEPTH <= D <= n < levels <= 16`, so `n - D` is below `path`'s
            // length and `n` below `key`'s (the loop ends once `n` reaches `levels`).
            let (at, slot) = unsafe { (path.get_unchecked_mut(n - D), *key.get_unchecked(n)) };
            at.write(c);
            let link = c.child_link(slot);
            n += 1;
            // A node of the last level has no children (no key byte is left for them).
            let Some(link) = link.filter(|_| n < levels) else { break };
            c = Self::cnode_ref(link, g);
            c.prefetch_body();
        }
        while n > D {
            n -= 1;
            // SAFETY: the walk wrote `path[0..n - D]` before `n` reached its value
            // (every index below the final `n` once), and `n` only decreases here.
            let c = unsafe { path[n - D].assume_init() };
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
        if self.top_depth() == top::MAX_DEPTH {
            self.lookup_batch_at::<{ top::MAX_DEPTH }>(keys, g, out)
        } else {
            self.lookup_batch_at::<{ top::MIN_DEPTH }>(keys, g, out)
        }
    }

    /// [`lookup_batch`](Self::lookup_batch) with the top table's depth `D` as a constant.
    #[inline(always)]
    fn lookup_batch_at<'g, const D: usize>(
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
        // The top table gives each walk its depth-`D` node at once, without the rounds
        // above (the table's chunk words are cached under a lookup stream; its slots are
        // independent loads, which the core overlaps across keys). A walk with no node
        // there, or whose subtrie has no match, takes the upper trie's (`upper_match_at`).
        // Every walk then goes through the rounds from depth `D`. (With IPv6's two-byte
        // table its walks read the depth-2 node directly, outside the rounds, which
        // measured best then; with the three-byte one, reading the depth-3 node so made
        // IPv6 batches slower: 53.5-54.8 ns per lookup against 51.5-52.8, session 30.)
        let levels = self.levels;
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
            let raw = self.top_raw_at::<D>(key);
            if raw == 0 {
                best[i] = self.upper_match_at::<D>(key, g);
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
        for d in D..levels {
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
                        // SAFETY: walk `i` went on to a child at every level from `D` to
                        // `d - 1` (it is at level `d`), writing `skipped[i][k]` each time, in
                        // round 2 of this call.
                        unsafe { Self::skipped_match::<D>(&skipped[i], key, d) }
                    })
                    .or_else(|| self.upper_match_at::<D>(key, g));
                node[i] = 0;
            }
            n_active = kept;
        }
        // Every walk ended in the loop: a node of the last level has no children (there is
        // no key byte for them), so no match is left unread among `skipped`.
        debug_assert!(node[..n].iter().all(|&c| c == 0), "a walk went past the last level");
        out.copy_from_slice(&best[..n]);
    }

    /// The longest match among the leaves of `skipped[D..d]` (the nodes a batched walk
    /// went on from, levels `D..d` of `key`'s path, `D` the top table's depth), read
    /// bottom-up.
    ///
    /// # Safety
    /// `skipped[D..d]` are initialized, with nodes that live for `'g`.
    #[inline(always)]
    unsafe fn skipped_match<'g, const D: usize>(
        skipped: &[MaybeUninit<CNode<'g>>; 16],
        key: &[u8; 16],
        d: usize,
    ) -> Option<Cell<'g>> {
        (D..d).rev().find_map(|k| {
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
        // The upper trie (its depth-`D - 1` nodes have no children), then the key's subtrie.
        let top = self.top_depth();
        let mut c = Some(self.root(g));
        for (d, &b) in key.iter().enumerate().take(top) {
            let Some(up) = c.filter(|_| d == 0 || 8 * d < len as usize) else { break };
            visit(up, d);
            c = Self::child(up, b, g);
        }
        let raw = self.top_raw(key);
        if len as usize > 8 * top && raw != 0 {
            let mut c = Self::cnode_ref(raw, g);
            let mut d = top;
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
    pub(super) fn node_of<'g>(&'g self, p: &NetAddress, depth: usize, g: &'g Guard) -> Option<CNode<'g>> {
        let bytes = p.bytes();
        let top = self.top_depth();
        let (mut c, from) = if depth < top {
            (self.root(g), 0)
        } else {
            let raw = self.top_raw(bytes);
            (raw != 0).then(|| (Self::cnode_ref(raw, g), top))?
        };
        for &slot in &bytes[from..depth] {
            c = Self::child(c, slot, g)?;
        }
        Some(c)
    }
}
