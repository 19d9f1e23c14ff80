//! The trie's top bytes: a direct table of the subtries that start at depth `D` (2 for
//! IPv4, 3 for IPv6).
//!
//! # Why
//! A stride-8 walk visits one node per key byte, about 19 instructions and two dependent
//! loads each (the node's head, then its slot). The first levels hold few prefixes (a full
//! table's /16 and shorter ones) but every walk goes through them. With this table a
//! lookup indexes the key's first `D` bytes and lands on the depth-`D` node directly.
//! * IPv4, `D = 2`: a full table's lookups mostly end in the depth-2 node (a /24's), so
//!   they visit one node where they visited three (session 27: 129 -> 90 instructions).
//! * IPv6, `D = 3`: a real table's prefixes are /29 to /48, so its walks go on below
//!   depth 2 anyway; the depth-2 node's head/slot pair left the chain for one chunk word
//!   that stays cached (session 30: 149 -> 133 instructions per single lookup, about 5 %
//!   less time cold and 11-12 % warm). The extra chunk level would cost IPv4 a dependent
//!   load for nothing (its lookups end at depth 2), hence the two depths.
//!
//! # Shape
//! A tree of *chunks* of 256 atomic words, `D - 1` levels deep above the *top slots*: the
//! root chunk's words (one per value of key byte 0) are 0 or the address of a chunk for
//! key byte 1, and so on; a chunk of the last level holds top slots, one per value of key
//! byte `D - 1`. A top slot holds 0 or the address of a depth-`D` node (it consumes key
//! byte `D`), the root of the subtrie of that /`8D`. Prefixes of `8D` bits or fewer stay
//! in the trie's own root and its nodes above depth `D`, which therefore never have
//! children at depth `D - 1`: the *upper* trie.
//!
//! # Invariants
//! * A chunk is allocated on the first write below its bytes, installed by one CAS from 0,
//!   and freed only when the trie drops: a reader may read a chunk it loaded with no
//!   epoch guard beyond the trie's own lifetime.
//! * A top slot is a node's *location* like any child slot (`trie/mod.rs`), except that it
//!   is never frozen (the table is never copied) and may hold 0: a writer adds the first
//!   node of a /`8D` with a CAS from 0, and a removal that empties that node stores 0 back
//!   with a CAS from the node's address (both single CASes, as a slot's replacement).
//! * Nodes linked in top slots are the trie's: retired by the thread whose CAS unlinked
//!   them, freed with the trie when it drops.

use crate::sync::{AtomicUsize, Ordering};

/// The least and greatest depths a top table links nodes at.
pub(super) const MIN_DEPTH: usize = 2;
pub(super) const MAX_DEPTH: usize = 3;

/// 256 words: chunk addresses (above the last level) or top slots (at it).
struct Chunk {
    words: [AtomicUsize; 256],
}

impl Chunk {
    fn new() -> Self {
        Self { words: core::array::from_fn(|_| AtomicUsize::new(0)) }
    }

    /// The chunk whose address word `b` holds, if one was installed. Only for a chunk
    /// above the last level (whose words are chunk addresses, not top slots): every caller
    /// walks at most `D - 1` levels from the root (`slot_at`, `slot_or_make`, `chunk_of`,
    /// `visit`).
    #[inline(always)]
    fn below(&self, b: u8) -> Option<&Chunk> {
        // Acquire: pairs with the installing CAS's Release in `below_or_make`, so the
        // chunk's zeroed words are visible.
        let raw = self.words[b as usize].load(Ordering::Acquire);
        // SAFETY: `self` is above the last level (the callers' contract, above), so a
        // non-zero word holds a `Box<Chunk>` leaked by `below_or_make` and freed only by
        // `Top`'s `Drop`, which the borrow of the table (through `self`) excludes.
        (raw != 0).then(|| unsafe { &*core::ptr::with_exposed_provenance::<Chunk>(raw) })
    }

    /// The chunk below word `b`, installed if missing (a writer's).
    fn below_or_make(&self, b: u8) -> &Chunk {
        if let Some(c) = self.below(b) {
            return c;
        }
        let fresh = Box::into_raw(Box::new(Chunk::new()));
        // AcqRel: Release publishes the chunk's initialized words (pairs with `below`'s
        // Acquire); Acquire, on failure, makes the winner's chunk visible to us likewise.
        let won = self.words[b as usize].compare_exchange(
            0,
            fresh.expose_provenance(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        // Mutant `top_chunk_store`: the chunk installed by a plain store, over any other.
        #[cfg(rtm_mutant = "top_chunk_store")]
        let won = {
            let _ = won;
            self.words[b as usize].store(fresh.expose_provenance(), Ordering::Release);
            Ok::<usize, usize>(0)
        };
        if won.is_err() {
            // SAFETY: `fresh` came from `Box::into_raw` above and was never published.
            drop(unsafe { Box::from_raw(fresh) });
        }
        let Some(c) = self.below(b) else { unreachable!("a chunk is installed and never removed") };
        c
    }

    /// The non-zero words, in key order: `(byte, word)`. Words filled or emptied
    /// concurrently may or may not be seen.
    fn entries(&self) -> impl Iterator<Item = (u8, usize)> + '_ {
        (0..=255u8).filter_map(move |b| {
            // Acquire: a chunk's address as in `below`; a top slot's node as any slot's
            // load (`node::LOAD`), the node's contents.
            let raw = self.words[b as usize].load(Ordering::Acquire);
            (raw != 0).then_some((b, raw))
        })
    }
}

/// See the module docs.
pub(super) struct Top {
    /// The chunk of key byte 0.
    root: Box<Chunk>,
    /// `D`: the depth of the nodes the top slots link, `MIN_DEPTH..=MAX_DEPTH`.
    depth: usize,
}

impl Top {
    /// An empty table whose top slots link nodes at `depth`.
    pub(super) fn new(depth: usize) -> Self {
        assert!((MIN_DEPTH..=MAX_DEPTH).contains(&depth), "a top depth of 2 or 3");
        Self { root: Box::new(Chunk::new()), depth }
    }

    /// `D`, the depth of the nodes the top slots link.
    #[inline(always)]
    pub(super) fn depth(&self) -> usize {
        self.depth
    }

    /// The top slot of `key`'s first `D` bytes, `D` given as a constant (`D` must be
    /// [`depth`](Self::depth)), if its chunk exists (a reader's or a remover's: no chunk
    /// means no node below it). The readers' hot path: the chunk levels unrolled.
    #[inline(always)]
    pub(super) fn slot_at<const D: usize>(&self, key: &[u8; 16]) -> Option<&AtomicUsize> {
        debug_assert_eq!(D, self.depth);
        let mut c = &*self.root;
        for &b in &key[..D - 1] {
            c = c.below(b)?;
        }
        Some(&c.words[key[D - 1] as usize])
    }

    /// [`slot_at`](Self::slot_at) at the table's own depth.
    #[inline]
    pub(super) fn slot(&self, key: &[u8; 16]) -> Option<&AtomicUsize> {
        if self.depth == MAX_DEPTH {
            self.slot_at::<MAX_DEPTH>(key)
        } else {
            self.slot_at::<MIN_DEPTH>(key)
        }
    }

    /// The top slot of `key`'s first `D` bytes, installing its chunks if missing (a
    /// writer's).
    pub(super) fn slot_or_make(&self, key: &[u8; 16]) -> &AtomicUsize {
        let mut c = &*self.root;
        for &b in &key[..self.depth - 1] {
            c = c.below_or_make(b);
        }
        &c.words[key[self.depth - 1] as usize]
    }

    /// The chunk for the key bytes `bytes` (fewer than `D`: the root chunk for none).
    fn chunk_of(&self, bytes: &[u8]) -> Option<&Chunk> {
        debug_assert!(bytes.len() < self.depth);
        bytes.iter().try_fold(&*self.root, |c, &b| c.below(b))
    }

    /// Whether a chunk exists for the key bytes `bytes` (1 to `D - 1` of them): a node
    /// below them may.
    pub(super) fn has_chunk(&self, bytes: &[u8]) -> bool {
        self.chunk_of(bytes).is_some()
    }

    /// The nodes linked under the `D - 1` key bytes `bytes`, in key order: `(byte D - 1,
    /// node address)`. Slots filled or emptied concurrently may or may not be seen.
    pub(super) fn nodes_of<'a>(&'a self, bytes: &[u8]) -> impl Iterator<Item = (u8, usize)> + 'a {
        debug_assert_eq!(bytes.len(), self.depth - 1);
        self.chunk_of(bytes).into_iter().flat_map(Chunk::entries)
    }

    /// Every node linked in a top slot (see [`nodes_of`](Self::nodes_of)).
    pub(super) fn nodes(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.visit(&self.root, 0, &mut |_| {}, &mut |raw| out.push(raw));
        out
    }

    /// Calls `chunk` on `c` (a chunk at `level`, indexed by key byte `level`) and every
    /// chunk below it, and `node` on every node their top slots link, in key order.
    fn visit(&self, c: &Chunk, level: usize, chunk: &mut dyn FnMut(&Chunk), node: &mut dyn FnMut(usize)) {
        chunk(c);
        if level + 1 == self.depth {
            c.entries().for_each(|(_, raw)| node(raw));
            return;
        }
        for below in (0..=255u8).filter_map(|b| c.below(b)) {
            self.visit(below, level + 1, chunk, node);
        }
    }

    /// Bytes of the table itself (its chunks).
    pub(super) fn heap_bytes(&self) -> usize {
        let mut n = 0;
        self.visit(&self.root, 0, &mut |_| n += 1, &mut |_| {});
        n * core::mem::size_of::<Chunk>()
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        /// Frees the chunks below `c`, a chunk at `level` of a table of depth `depth`.
        fn free_below(c: &Chunk, level: usize, depth: usize) {
            if level + 1 == depth {
                return; // its words are top slots: the trie frees their nodes
            }
            for w in c.words.iter() {
                // Relaxed: `&mut` to the table, no other thread can reach it (the writes
                // that installed the chunks happened before whatever handed us `&mut`).
                let raw = w.load(Ordering::Relaxed);
                if raw != 0 {
                    // SAFETY: `&mut` to the table: no other thread can reach it; the chunk
                    // was leaked by `below_or_make` and is freed once, here, after the
                    // chunks below it.
                    let below =
                        unsafe { Box::from_raw(core::ptr::with_exposed_provenance_mut::<Chunk>(raw)) };
                    free_below(&below, level + 1, depth);
                }
            }
        }
        free_below(&self.root, 0, self.depth);
    }
}
