//! Building nodes and copying them on write: [`NodeBox`] (an owned, unpublished node),
//! [`free`], and the [`CNode`] methods that freeze a published node and build its changed
//! copy (see "Mutability: frozen slots and cells" and "Ownership" in the parent module).
//!
//! A copy starts by freezing every slot and cell of the original, so no CAS on them can
//! succeed afterwards: the copy holds every update that landed in the original. Nothing
//! here is published: the trie links the returned box with a CAS (`trie/mod.rs`).

use super::*;

impl NodeBox {
    /// An empty node.
    pub(in crate::trie) fn empty() -> Self {
        Self::build(&[], &[])
    }

    /// Builds a node from its internal prefixes (sorted by heap key, values non-zero) and
    /// its children (sorted by slot, unfrozen addresses, non-zero).
    pub(in crate::trie) fn build(prefixes: &[(HeapKey, usize)], children: &[(u8, usize)]) -> Self {
        Self::build_from(prefixes.len(), |i| prefixes[i].0, |i| prefixes[i].1, children)
    }

    /// [`build`](Self::build) with prefix `i` of `n` given by its heap key `key(i)` and its
    /// word `word(i)`, which is asked for once (a copy reads them from the node it copies,
    /// gathering nothing, and a word is an atomic load there). Works in two passes over
    /// the slots, so that the values go straight into the node and nothing of its size
    /// sits on the stack (loom runs each thread on a 32 KiB stack, and the batch paths
    /// nest copies).
    fn build_from(
        n: usize,
        key: impl Fn(usize) -> HeapKey,
        word: impl Fn(usize) -> usize,
        children: &[(u8, usize)],
    ) -> Self {
        debug_assert!(children.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(children.iter().all(|&(_, p)| p != 0 && p & FROZEN == 0));
        let mut cw = [0u64; 4];
        for &(s, _) in children {
            cw[(s >> 6) as usize] |= 1 << (s & 63);
        }
        // The longest prefix covering each slot, as an index (`NONE`: no prefix): fill in
        // ascending length, longer overwrite.
        const NONE: u16 = u16::MAX;
        let mut best = [NONE; 256];
        let mut last: HeapKey = 0;
        for i in 0..n {
            let hk = key(i);
            // Checked here rather than in a pass of their own (debug builds, miri).
            debug_assert!(last < hk && hk < 512, "sorted heap keys");
            last = hk;
            let (start, width) = (hk_start(hk) as usize, 1usize << (8 - hk_len(hk)));
            if width == 1 {
                // The common case (a depth-2 node's /24s): one store, not a slice fill.
                best[start] = i as u16;
            } else {
                best[start..start + width].fill(i as u16);
            }
        }
        // Pass 1: the runs (a run starts where the slot's prefix changes; none at all
        // without prefixes) and each prefix's value index: the first run holding it (a
        // prefix's first slot starts a run), else (hidden) one of its own after the runs.
        let mut at: StackVec<u16, 511> = StackVec::new();
        for _ in 0..n {
            at.push(NONE);
        }
        let mut lw = [0u64; 4];
        let mut n_runs = 0;
        if n != 0 {
            // Neither a prefix index nor `NONE`: slot 0 starts a run.
            let mut prev = NONE - 1;
            for (s, &i) in best.iter().enumerate() {
                if i != prev {
                    lw[s >> 6] |= 1 << (s & 63);
                    if i != NONE && at[i as usize] == NONE {
                        at[i as usize] = n_runs as u16;
                    }
                    n_runs += 1;
                    prev = i;
                }
            }
        }
        let mut n_values = n_runs;
        for j in at.iter_mut().filter(|j| **j == NONE) {
            *j = n_values as u16;
            n_values += 1;
        }
        let head = Head {
            children: Bits256::new(cw),
            leaves: Bits256::new(lw),
            n_children: children.len() as u16,
            n_runs: n_runs as u16,
            n_prefixes: n as u16,
            n_hidden: (n_values - n_runs) as u16,
            alive: TrackedCell::new(()),
        };
        let (layout, slots_at, runs_at, pre_at) = layout(children.len(), n_values, n);
        let base = node_alloc(layout);
        let Some(raw) = NonNull::new(base.cast::<Head>()) else { std::alloc::handle_alloc_error(layout) };
        // SAFETY: `base` is a fresh allocation of `layout`, whose head, slot, value and
        // prefix ranges start at offsets 0, `slots_at`, `runs_at` and `pre_at`, are suitably
        // aligned (Layout computed them) and are large enough for the counts written: pass 2
        // writes one value per run start pass 1 marked in `lw` (`n_runs` of them), and the
        // hidden prefixes' values at the indices pass 1 gave them, all below `n_values`.
        unsafe {
            raw.as_ptr().write(head);
            let slots = base.add(slots_at).cast::<AtomicUsize>();
            for (i, &(_, p)) in children.iter().enumerate() {
                slots.add(i).write(AtomicUsize::new(p));
            }
            let values = base.add(runs_at).cast::<AtomicUsize>();
            // Pass 2: a value per run start, in slot order: an alias of the prefix's first
            // run in its later ones (the first run gets the word below, with the hidden
            // prefixes': each value is written once).
            let mut r = 0;
            for (w, &bits) in lw.iter().enumerate() {
                let mut bits = bits;
                while bits != 0 {
                    let i = best[w * 64 + bits.trailing_zeros() as usize];
                    if i == NONE {
                        values.add(r).write(AtomicUsize::new(0));
                    } else if at[i as usize] as usize != r {
                        values.add(r).write(AtomicUsize::new(alias(r - at[i as usize] as usize)));
                    }
                    r += 1;
                    bits &= bits - 1;
                }
            }
            debug_assert_eq!(r, n_runs);
            let entries = base.add(pre_at).cast::<PEntry>();
            let hks = entries.add(n).cast::<HeapKey>();
            hks.write_bytes(0, n_values);
            for (i, &j) in at.iter().enumerate() {
                let (hk, v) = (key(i), word(i));
                debug_assert!(v != 0 && v & ALIAS != ALIAS && v & FROZEN == 0, "a valid word");
                values.add(j as usize).write(AtomicUsize::new(v));
                entries.add(i).write(PEntry(hk as u32 | (j as u32) << 16));
                // A cell's heap key (`CNode::hk_of`); aliases and empty runs keep 0.
                hks.add(j as usize).write(hk);
            }
        }
        Self(raw)
    }

    /// The address of the node, for a compare-and-swap that may publish it.
    pub(in crate::trie) fn as_raw(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Gives up ownership after the node was published; it is freed with [`free`].
    pub(in crate::trie) fn into_raw(self) -> usize {
        let p = self.as_raw();
        core::mem::forget(self);
        p
    }

    /// Whether the node has neither prefixes nor children.
    pub(in crate::trie) fn is_empty(&self) -> bool {
        // SAFETY: the box owns a fully built node.
        let h = unsafe { self.0.as_ref() };
        h.n_children == 0 && h.n_prefixes == 0
    }
}

impl Drop for NodeBox {
    fn drop(&mut self) {
        // SAFETY: the box owns the node and it was never published.
        unsafe { free(self.as_raw()) }
    }
}

/// Frees a node built by [`NodeBox::build`] (not its children).
///
/// # Safety
/// `p` came from [`NodeBox::into_raw`] (or the box's own drop), is freed exactly once, and
/// no reference into the node is used afterwards.
pub(in crate::trie) unsafe fn free(p: usize) {
    let raw = p as *mut Head;
    // SAFETY: per the contract, `raw` points to a live node that we own exclusively now;
    // its slots were initialized by `build`.
    unsafe {
        let head = &mut *raw;
        head.alive.retire();
        let n = head.n_children as usize;
        let n_values = head.n_runs as usize + head.n_hidden as usize;
        let (layout, slots_at, runs_at, _) = layout_of(head);
        let slots = raw.cast::<u8>().add(slots_at).cast::<AtomicUsize>();
        core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(slots, n));
        let values = raw.cast::<u8>().add(runs_at).cast::<AtomicUsize>();
        core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(values, n_values));
        core::ptr::drop_in_place(raw);
        node_dealloc(raw.cast::<u8>(), layout);
    }
}

impl<'g> CNode<'g> {
    /// A node with this node's prefixes and `children` (the copies that keep the prefixes).
    fn build_with(self, children: &[(u8, usize)]) -> NodeBox {
        let e = self.entries();
        NodeBox::build_from(e.len(), |i| e[i].key(), |i| self.value(e[i]), children)
    }

    /// Freezes every slot and cell and returns the children as they are from now on (see the
    /// module docs): the starting point of every copy.
    fn freeze(self) -> Children {
        let mut c = Children::new();
        self.freeze_into(&mut c, None);
        c
    }

    /// [`freeze`](Self::freeze) into `out`, also gathering the prefixes `(heap key, word)`
    /// into `words` as the freeze left them (for a copy that changes the prefixes: no
    /// second read of a cell). The caller owns both buffers (12 KiB: returned by value
    /// they were copied, and loom runs each thread on a 32 KiB stack).
    fn freeze_into(self, out: &mut Children, mut words: Option<&mut Prefixes>) {
        for (k, s) in self.head().children.iter().enumerate() {
            let slot = self.slot_at(k);
            // Acquire: pairs with the AcqRel CAS that stored the child, so the copy we
            // publish (Release) passes the child's contents on to its readers. After
            // this no slot CAS can succeed: every landed child update is in `v`.
            #[cfg(not(rtm_mutant = "no_freeze"))]
            let v = slot.fetch_or(FROZEN, Ordering::Acquire);
            #[cfg(rtm_mutant = "no_freeze")]
            let v = slot.load(Ordering::Acquire);
            out.push((s, v & !FROZEN));
        }
        for &e in self.entries() {
            // The prefixes' cells likewise (module docs, "Cells"): after this no writer's CAS
            // of a word here can succeed, so the copy holds every word that ever landed.
            // Acquire pairs with the AcqRel CAS that stored the word (`leaf.rs`), so the
            // copy's publication (Release) passes on what the word names.
            #[cfg(not(rtm_mutant = "no_cell_freeze"))]
            let v = self.cell(e).fetch_or(FROZEN, Ordering::Acquire);
            #[cfg(rtm_mutant = "no_cell_freeze")]
            let v = self.cell(e).load(Ordering::Acquire);
            if let Some(p) = words.as_deref_mut() {
                p.push((e.key(), v & !FROZEN));
            }
        }
    }

    /// A frozen copy of the node: same prefixes, same children, unfrozen slots.
    pub(in crate::trie) fn copy(self) -> NodeBox {
        self.build_with(&self.freeze())
    }

    /// A copy with `hk -> v` added or replaced.
    pub(in crate::trie) fn with_prefix(self, hk: HeapKey, v: usize) -> NodeBox {
        let (mut c, mut p) = (Children::new(), Prefixes::new());
        self.freeze_into(&mut c, Some(&mut p));
        match p.binary_search_by_key(&hk, |&(k, _)| k) {
            Ok(i) => p[i].1 = v,
            Err(i) => p.insert(i, (hk, v)),
        }
        NodeBox::build(&p, &c)
    }

    /// A copy without `hk`.
    pub(in crate::trie) fn without_prefix(self, hk: HeapKey) -> NodeBox {
        let (mut c, mut p) = (Children::new(), Prefixes::new());
        self.freeze_into(&mut c, Some(&mut p));
        if let Ok(i) = p.binary_search_by_key(&hk, |&(k, _)| k) {
            p.remove(i);
        }
        NodeBox::build(&p, &c)
    }

    /// A copy with child `slot -> ptr` added.
    /// A copy with `prefixes` (sorted by heap key, none present here) and `children`
    /// (sorted by slot, none present here) added: one copy for a whole batch.
    pub(in crate::trie) fn with_added(
        self,
        prefixes: &[(HeapKey, usize)],
        children: &[(u8, usize)],
    ) -> NodeBox {
        /// Merges the sorted `b` into the sorted `a`, in place (from the back): no second
        /// buffer on the stack (loom runs each thread on a 32 KiB stack, and the batch
        /// paths nest these copies).
        fn merge<K: Ord + Copy, const N: usize>(a: &mut StackVec<(K, usize), N>, b: &[(K, usize)]) {
            let (mut i, mut j) = (a.len(), b.len());
            for &y in b {
                a.push(y); // room; every slot is written below
            }
            let mut k = a.len();
            while j > 0 {
                debug_assert!(i == 0 || a[i - 1].0 != b[j - 1].0, "an added key is present");
                k -= 1;
                if i > 0 && a[i - 1].0 > b[j - 1].0 {
                    a[k] = a[i - 1];
                    i -= 1;
                } else {
                    a[k] = b[j - 1];
                    j -= 1;
                }
            }
        }
        let (mut c, mut p) = (Children::new(), Prefixes::new());
        self.freeze_into(&mut c, Some(&mut p));
        merge(&mut p, prefixes);
        merge(&mut c, children);
        NodeBox::build(&p, &c)
    }

    pub(in crate::trie) fn with_child(self, slot: u8, ptr: usize) -> NodeBox {
        let mut c = self.freeze();
        match c.binary_search_by_key(&slot, |&(s, _)| s) {
            Ok(i) => c[i].1 = ptr,
            Err(i) => c.insert(i, (slot, ptr)),
        }
        self.build_with(&c)
    }

    /// A copy without child `slot`, provided the (now frozen) slot still holds `expected`;
    /// `None` otherwise.
    /// A copy without the prefixes `hks` and without the children `children`, each of
    /// which must still hold the given (unfrozen) address once the slots are frozen, else
    /// `None` (a concurrent writer replaced it: retry).
    pub(in crate::trie) fn without(self, hks: &[HeapKey], children: &[(u8, usize)]) -> Option<NodeBox> {
        let (mut c, mut p) = (Children::new(), Prefixes::new());
        self.freeze_into(&mut c, Some(&mut p));
        for &(slot, expected) in children {
            let i = c.binary_search_by_key(&slot, |&(s, _)| s).ok()?;
            // Mutant `batch_no_check`: the emptied child is dropped without checking that
            // its slot still holds it (a concurrent replacement of it would be lost).
            if c[i].1 != expected && !cfg!(rtm_mutant = "batch_no_check") {
                return None;
            }
            c.remove(i);
        }
        // The removed keys as a set of heap keys (all below 512): one test per prefix, where
        // a search of `hks` per prefix was quadratic in the prefixes a batch removes (most
        // of the 6 % of a full table's delete that these copies took before emptied nodes
        // stopped being copied, session 19).
        let mut gone = [0u64; 8];
        for &k in hks {
            gone[(k >> 6) as usize] |= 1 << (k & 63);
        }
        p.retain(|&(k, _)| gone[(k >> 6) as usize] & (1 << (k & 63)) == 0);
        Some(NodeBox::build(&p, &c))
    }

    /// Whether the node has no children and exactly `n` internal prefixes: a batch that
    /// removes `n` of its prefixes empties it (see `Trie::unbatch_at`).
    pub(in crate::trie) fn is_childless_with(self, n: usize) -> bool {
        let h = self.head();
        h.n_children == 0 && h.n_prefixes as usize == n
    }

    pub(in crate::trie) fn without_child(self, slot: u8, expected: usize) -> Option<NodeBox> {
        let mut c = self.freeze();
        let i = c.binary_search_by_key(&slot, |&(s, _)| s).ok()?;
        if c[i].1 != expected {
            return None;
        }
        c.remove(i);
        Some(self.build_with(&c))
    }
}
