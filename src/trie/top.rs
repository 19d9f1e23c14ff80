//! The trie's top 16 bits: a direct table of the subtries that start at depth 2.
//!
//! # Why
//! A stride-8 walk visits one node per key byte, about 19 instructions and a dependent
//! load each. The first two levels hold few prefixes (a full table's /16 and shorter ones)
//! but every walk goes through them. With this table a lookup indexes the key's first two
//! bytes and lands on the depth-2 node directly: two levels fewer for every address of a
//! /17 or longer prefix.
//!
//! # Shape
//! 256 *chunk* words, one per value of key byte 0, each 0 or the address of a chunk of 256
//! *top slots*, one per value of key byte 1. A top slot holds 0 or the address of a depth-2
//! node (it consumes key byte 2), the root of the subtrie of that /16. Prefixes of 16 bits
//! or fewer stay in the trie's own root and depth-1 nodes, which therefore never have
//! children: the *upper* trie.
//!
//! # Invariants
//! * A chunk is allocated on the first write below its byte, installed by one CAS from 0,
//!   and freed only when the trie drops: a reader may read a chunk it loaded with no
//!   epoch guard beyond the trie's own lifetime.
//! * A top slot is a node's *location* like any child slot (`trie/mod.rs`), except that it
//!   is never frozen (the table is never copied) and may hold 0: a writer adds the first
//!   node of a /16 with a CAS from 0, and a removal that empties that node stores 0 back
//!   with a CAS from the node's address (both single CASes, as a slot's replacement).
//! * Nodes linked in top slots are the trie's: retired by the thread whose CAS unlinked
//!   them, freed with the trie when it drops.

use crate::sync::{AtomicUsize, Ordering};

/// 256 top slots: the subtries of one /8.
struct Chunk {
    slots: [AtomicUsize; 256],
}

/// See the module docs.
pub(super) struct Top {
    /// Per value of key byte 0: 0 or the address of a `Box<Chunk>`.
    chunks: Box<[AtomicUsize; 256]>,
}

impl Top {
    pub(super) fn new() -> Self {
        Self { chunks: Box::new(core::array::from_fn(|_| AtomicUsize::new(0))) }
    }

    /// The chunk of key byte `b0`, if one was installed.
    #[inline(always)]
    fn chunk(&self, b0: u8) -> Option<&Chunk> {
        // Acquire: pairs with the installing CAS's Release in `slot_or_make`, so the
        // chunk's zeroed slots are visible.
        let raw = self.chunks[b0 as usize].load(Ordering::Acquire);
        // SAFETY: a non-zero chunk word holds a `Box<Chunk>` leaked by `slot_or_make` and
        // freed only by `Drop`, which `&self` excludes.
        (raw != 0).then(|| unsafe { &*core::ptr::with_exposed_provenance::<Chunk>(raw) })
    }

    /// The top slot of the /16 `b0.b1`, if its chunk exists (a reader's or a remover's:
    /// no chunk means no node below it).
    #[inline(always)]
    pub(super) fn slot(&self, b0: u8, b1: u8) -> Option<&AtomicUsize> {
        self.chunk(b0).map(|c| &c.slots[b1 as usize])
    }

    /// The top slot of the /16 `b0.b1`, installing its chunk if missing (a writer's).
    pub(super) fn slot_or_make(&self, b0: u8, b1: u8) -> &AtomicUsize {
        if let Some(s) = self.slot(b0, b1) {
            return s;
        }
        let fresh = Box::into_raw(Box::new(Chunk { slots: core::array::from_fn(|_| AtomicUsize::new(0)) }));
        // AcqRel: Release publishes the chunk's initialized slots (pairs with `chunk`'s
        // Acquire); Acquire, on failure, makes the winner's chunk visible to us likewise.
        let won = self.chunks[b0 as usize].compare_exchange(
            0,
            fresh.expose_provenance(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        // Mutant `top_chunk_store`: the chunk installed by a plain store, over any other.
        #[cfg(rtm_mutant = "top_chunk_store")]
        let won = {
            let _ = won;
            self.chunks[b0 as usize].store(fresh.expose_provenance(), Ordering::Release);
            Ok::<usize, usize>(0)
        };
        match won {
            Ok(_) => {}
            Err(_) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never published.
                drop(unsafe { Box::from_raw(fresh) });
            }
        }
        let Some(s) = self.slot(b0, b1) else { unreachable!("a chunk is installed and never removed") };
        s
    }

    /// Every non-empty top slot, in key order: `(b0, b1, node address)`. Slots filled or
    /// emptied concurrently may or may not be seen.
    pub(super) fn nodes(&self) -> impl Iterator<Item = (u8, u8, usize)> + '_ {
        (0..=255u8).filter_map(move |b0| self.chunk(b0).map(|c| (b0, c))).flat_map(|(b0, c)| {
            (0..=255u8).filter_map(move |b1| {
                // Acquire: as any slot's load (`node::LOAD`), the node's contents.
                let raw = c.slots[b1 as usize].load(Ordering::Acquire);
                (raw != 0).then_some((b0, b1, raw))
            })
        })
    }

    /// The node addresses under byte `b0`, in key order (see [`nodes`](Self::nodes)).
    pub(super) fn nodes_of(&self, b0: u8) -> impl Iterator<Item = (u8, usize)> + '_ {
        self.chunk(b0).into_iter().flat_map(|c| {
            (0..=255u8).filter_map(move |b1| {
                // Acquire: as in `nodes`.
                let raw = c.slots[b1 as usize].load(Ordering::Acquire);
                (raw != 0).then_some((b1, raw))
            })
        })
    }

    /// Whether any chunk exists under byte `b0` (a node below it may).
    pub(super) fn has_chunk(&self, b0: u8) -> bool {
        self.chunk(b0).is_some()
    }

    /// Bytes of the table itself (its chunks).
    pub(super) fn heap_bytes(&self) -> usize {
        let n = (0..=255u8).filter(|&b0| self.has_chunk(b0)).count();
        core::mem::size_of::<[AtomicUsize; 256]>() + n * core::mem::size_of::<Chunk>()
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        for w in self.chunks.iter() {
            // Relaxed: `&mut self`, no other thread can reach the table (the writes that
            // installed the chunks happened before whatever handed us `&mut`).
            let raw = w.load(Ordering::Relaxed);
            if raw != 0 {
                // SAFETY: `&mut self`: no other thread can reach the table; the chunk was
                // leaked by `slot_or_make` and is freed once, here. The trie frees the nodes
                // it links before (its own `Drop`).
                drop(unsafe { Box::from_raw(core::ptr::with_exposed_provenance_mut::<Chunk>(raw)) });
            }
        }
    }
}
