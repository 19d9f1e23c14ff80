//! Batched insertion: many prefixes linked with at most one copy per node they touch.
//!
//! # Why
//! [`Trie::insert`] copies the node that receives the prefix, so loading a node with `n`
//! prefixes one at a time copies it `n` times (and freezes its slots each time): loading a
//! full table is dominated by node copies. A batch groups its prefixes by node instead.
//!
//! # Design
//! `insert_batch` walks the batch down the trie recursively. At a node it splits the
//! batch's items into the node's own prefixes and one group per child byte. A group whose
//! child exists is handled in that child first (recursively: its own copy and CAS on the
//! child's slot); a group whose child is missing becomes a whole subtree built off-line
//! (plain allocations, unpublished). Then one copy of the node, with the own prefixes and
//! the new subtrees added, is compare-and-swapped into the node's location, exactly like a
//! single insert's copy (`with_added` freezes the node's slots, so child updates that
//! landed — ours included — are carried over, and later ones fail and retry).
//!
//! Loading into an empty trie therefore builds the whole table off-line and publishes it
//! with one CAS on the root.
//!
//! # Retries and results
//! Each item's result is recorded when it is decided: `Ok` when the CAS that linked it
//! succeeded, `Err(existing)` when its prefix was found linked (a valid linearization, as
//! for a single insert). When a CAS fails, or a frozen slot is met (helped as in
//! `child_at`), the unlinked off-line subtrees are freed and the walk restarts from the
//! root with the undecided items only; decided items are never redone.

use super::stack_vec::StackVec;
use super::*;
use std::borrow::Cow;

impl Trie {
    /// Stores each `items[i].0` with the word `items[i].1` unless it is stored already;
    /// `out[i]` receives `Ok(())` or `Err(existing cell)` as [`insert`](Self::insert) would.
    /// `items` must be sorted by address bytes then length, with distinct prefixes, and
    /// `out` must hold one `None` per item.
    pub(crate) fn insert_batch<'g>(
        &'g self,
        items: &[(NetAddress, usize)],
        g: &'g Guard,
        out: &mut [Option<Result<(), Cell<'g>>>],
    ) {
        debug_assert_eq!(items.len(), out.len());
        debug_assert!(items
            .windows(2)
            .all(|w| (w[0].0.bytes(), w[0].0.len()) < (w[1].0.bytes(), w[1].0.len())));
        let mut pending: Vec<usize> = (0..items.len()).collect();
        while !pending.is_empty() {
            // The upper trie's items from the root; the others per top slot, each group
            // decided on its own (a group that has to retry does not undo the others).
            let top = self.top_depth();
            let (upper, lower) = split_top(items, &pending, top);
            if !upper.is_empty() {
                let root = At { loc: &self.root, raw: self.root.load(LOAD) };
                let _ = self.batch_at(root, 0, items, &upper, g, out);
            }
            for group in top_groups(items, &lower, top) {
                let loc = self.top.slot_or_make(items[group[0]].0.bytes());
                let raw = loc.load(LOAD);
                if raw != 0 {
                    let _ = self.batch_at(At { loc, raw }, top, items, group, g, out);
                    continue;
                }
                // The /`8D`'s first node: its whole subtree built off-line, published by
                // one CAS from 0. AcqRel: Release publishes the subtree and the values it
                // links (pairs with `LOAD`); Acquire as in `replace`.
                let tree = build_tree(top, items, group);
                if loc.compare_exchange(0, tree, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    group.iter().for_each(|&i| out[i] = Some(Ok(())));
                    crate::sync::LIVE_LEAVES.add(group.len() as isize);
                } else {
                    // SAFETY: built by `build_tree` above and never published.
                    unsafe { free_tree(tree) };
                }
            }
            if out.iter().all(Option::is_some) {
                return;
            }
            pending.retain(|&i| out[i].is_none());
            crate::sync::spin_hint();
        }
    }

    /// Inserts `idx` (items under the node found at `at`, at depth `d`); see the module docs.
    fn batch_at<'g>(
        &'g self,
        at: At<'g>,
        d: usize,
        items: &[(NetAddress, usize)],
        idx: &[usize],
        g: &'g Guard,
        out: &mut [Option<Result<(), Cell<'g>>>],
    ) -> Step<()> {
        let c = Self::cnode_ref(at.raw, g);
        let (own, below) = split(items, idx, d);
        // Subtrees built for missing children: (slot, root address, the items in them).
        let mut fresh: Vec<(u8, usize, &[usize])> = Vec::new();
        let abandon = |fresh: Vec<(u8, usize, &[usize])>| {
            for (_, raw, _) in fresh {
                // SAFETY: built by `build_tree` below and never published.
                unsafe { free_tree(raw) };
            }
            Step::Retry
        };
        for (slot, group) in groups(items, &below, d) {
            match self.child_at(at, c, slot, g) {
                Step::Retry => return abandon(fresh),
                Step::Done(Some(child)) => {
                    if let Step::Retry = self.batch_at(child, d + 1, items, group, g, out) {
                        return abandon(fresh);
                    }
                }
                Step::Done(None) => fresh.push((slot, build_tree(d + 1, items, group), group)),
            }
        }
        let mut added: Vec<(HeapKey, usize)> = Vec::with_capacity(own.len());
        let mut linked: Vec<usize> = Vec::with_capacity(own.len());
        for &i in own.iter() {
            let hk = locate(&items[i].0).1;
            if let Some(word) = c.find_cell(hk) {
                out[i] = Some(Err(Cell::new(word, c, d as u8)));
            } else {
                added.push((hk, items[i].1));
                linked.push(i);
            }
        }
        if added.is_empty() && fresh.is_empty() {
            return Step::Done(());
        }
        added.sort_unstable_by_key(|&(hk, _)| hk);
        let children: Vec<(u8, usize)> = fresh.iter().map(|&(s, raw, _)| (s, raw)).collect();
        // The CAS's Release publishes the off-line subtrees and the values they and the
        // copy link (all written before); pairs with `LOAD`, as for a single insert.
        let won = self.replace(at, c.with_added(&added, &children), g);
        // Mutant `batch_lost_cas`: a failed CAS is taken for success (items reported linked).
        #[cfg(rtm_mutant = "batch_lost_cas")]
        let won = won || true;
        if !won {
            return abandon(fresh);
        }
        let mut n = 0;
        for i in linked.into_iter().chain(fresh.iter().flat_map(|&(_, _, grp)| grp.iter().copied())) {
            out[i] = Some(Ok(()));
            n += 1;
        }
        crate::sync::LIVE_LEAVES.add(n);
        Step::Done(())
    }
}

/// The items of more than `8 * top` bits (the second half of [`split_top`]) grouped by top
/// slot (their first `top` address bytes), groups in key order.
fn top_groups<'a>(
    items: &'a [(NetAddress, usize)],
    lower: &'a [usize],
    top: usize,
) -> impl Iterator<Item = &'a [usize]> + 'a {
    let key = move |i: usize| &items[i].0.bytes()[..top];
    lower.chunk_by(move |&a, &b| key(a) == key(b))
}

/// Splits `idx` (in item order) into the upper trie's items (at most `8 * top` bits, `top`
/// the top table's depth) and the others, both in item order: sorted by address bytes,
/// each top slot's items are contiguous among the others.
fn split_top(items: &[(NetAddress, usize)], idx: &[usize], top: usize) -> (Vec<usize>, Vec<usize>) {
    idx.iter().partition(|&&i| items[i].0.len() as usize <= 8 * top)
}

/// Splits `idx` (items under one node at depth `d`, in item order) into the node's own
/// prefixes and the items below its children. Borrows `idx` when it is all one or the
/// other (the common case: a walk's upper nodes hold few of a batch's prefixes, its lowest
/// nodes all of theirs), so most nodes allocate nothing.
fn split<'a>(
    items: &[(NetAddress, usize)],
    idx: &'a [usize],
    d: usize,
) -> (Cow<'a, [usize]>, Cow<'a, [usize]>) {
    // The items under a node at depth `d` are longer than `8 d` bits (the root's may be
    // /0), so the node's own are those of at most `8 d + 8` (`locate`'s depth, without
    // its division).
    debug_assert!(idx.iter().all(|&i| d == 0 || items[i].0.len() as usize > 8 * d));
    let own = |i: usize| items[i].0.len() as usize <= 8 * d + 8;
    match idx.iter().filter(|&&i| own(i)).count() {
        0 => (Cow::Borrowed(&[]), Cow::Borrowed(idx)),
        n if n == idx.len() => (Cow::Borrowed(idx), Cow::Borrowed(&[])),
        _ => {
            let (mine, below): (Vec<usize>, Vec<usize>) = idx.iter().partition(|&&i| own(i));
            (Cow::Owned(mine), Cow::Owned(below))
        }
    }
}

/// The items below a node at depth `d` (the second half of [`split`]) grouped by child
/// slot, groups in slot order: sorted by address bytes, the items below one child byte are
/// contiguous.
fn groups<'a>(
    items: &'a [(NetAddress, usize)],
    below: &'a [usize],
    d: usize,
) -> impl Iterator<Item = (u8, &'a [usize])> + 'a {
    let slot = move |i: usize| items[i].0.bytes()[d];
    below.chunk_by(move |&a, &b| slot(a) == slot(b)).map(move |g| (slot(g[0]), g))
}

/// Builds, unpublished, the subtree at depth `d` holding exactly the items `idx`.
fn build_tree(d: usize, items: &[(NetAddress, usize)], idx: &[usize]) -> usize {
    let (own, below) = split(items, idx, d);
    let mut prefixes: Vec<(HeapKey, usize)> =
        own.iter().map(|&i| (locate(&items[i].0).1, items[i].1)).collect();
    prefixes.sort_unstable_by_key(|&(hk, _)| hk);
    let children: Vec<(u8, usize)> =
        groups(items, &below, d).map(|(slot, grp)| (slot, build_tree(d + 1, items, grp))).collect();
    NodeBox::build(&prefixes, &children).into_raw()
}

/// Frees a subtree built by `build_tree`.
///
/// # Safety
/// `raw` came from `build_tree` and was never published, so no other thread can reach it.
unsafe fn free_tree(raw: usize) {
    let mut stack = vec![raw];
    while let Some(p) = stack.pop() {
        // SAFETY: every node here is an unpublished `build_tree` node (caller's contract),
        // reached once (a tree); its children are collected before it is freed.
        unsafe {
            stack.extend(CNode::from_raw(p).children().map(|(_, ch)| ch));
            node::free(p);
        }
    }
}

impl Trie {
    /// [`get`](Self::get) of up to [`BATCH`] prefixes at once, walking in lock step with
    /// prefetches as [`lookup_batch`](Self::lookup_batch) does: `out[i]` receives the cell
    /// of exactly `keys[i]`.
    #[allow(clippy::needless_range_loop)] // `i` indexes keys, nodes and out in lock step
    pub(crate) fn get_batch<'g>(&'g self, keys: &[NetAddress], g: &'g Guard, out: &mut [Option<Cell<'g>>]) {
        let n = keys.len().min(BATCH).min(out.len());
        let mut cs: [Option<CNode<'g>>; BATCH] = [Some(self.root(g)); BATCH];
        let mut at = [(0usize, 0 as HeapKey); BATCH];
        // Per key, the depth its walk starts at: the root's, or the top table's.
        let mut from = [0usize; BATCH];
        let top = self.top_depth();
        for i in 0..n {
            at[i] = locate(&keys[i]);
            if at[i].0 >= top {
                let raw = self.top_raw(keys[i].bytes());
                cs[i] = (raw != 0).then(|| Self::cnode_ref(raw, g));
                from[i] = top;
            }
        }
        for d in 0..self.levels {
            let mut more = false;
            for i in 0..n {
                if let Some(c) = cs[i].filter(|_| d < at[i].0) {
                    // A walk from the top table has not started yet above its depth.
                    if from[i] <= d {
                        // Only the child: an exact match reads a leaf in its final node alone.
                        c.prefetch_child(keys[i].bytes()[d]);
                    }
                    more = true;
                }
            }
            if !more {
                break;
            }
            for i in 0..n {
                if from[i] <= d && d < at[i].0 {
                    cs[i] = cs[i].and_then(|c| {
                        let ch = c.child(keys[i].bytes()[d]);
                        (ch != 0).then(|| {
                            prefetch(ch as *const u8);
                            Self::cnode_ref(ch, g)
                        })
                    });
                }
            }
        }
        // The exact match in each final node (`CNode::find_cell`), one more round: the line
        // holding the run of the prefix's first slot.
        for i in 0..n {
            if let Some(c) = cs[i] {
                c.prefetch_leaf(node::hk_start(at[i].1));
            }
        }
        for i in 0..n {
            out[i] = cs[i].and_then(|c| c.find_cell(at[i].1).map(|word| Cell::new(word, c, at[i].0 as u8)));
        }
    }
}

/// What a batched removal left for the caller at the level above.
enum Below {
    /// Nothing: the group is decided (or was changed by a CAS at this level or below).
    Kept,
    /// The node would be left empty: the caller drops it from its own copy (checking, under
    /// its freeze, that the slot still holds `raw`). When that copy's CAS succeeds, the items
    /// and nodes this call appended to the [`Acc`] are removed and unlinked (this node and
    /// the emptied ones below it).
    Emptied { raw: usize },
}

/// The work lists of one batched removal, shared by its whole recursion (one allocation
/// each per batch instead of vectors per node: a full table's delete empties every node,
/// and growing per-node vectors filled glibc's fast bins, which each later large allocation
/// then consolidated; BENCHMARKS.md, session 11). A call appends to them; what it appended
/// is its subtree's (contiguous from the lengths at its start), and a call that decides
/// its subtree (a CAS, or nothing to do) truncates them back.
#[derive(Default)]
struct Acc {
    /// Items removed from emptied nodes, pending the CAS above that unlinks those nodes.
    items: Vec<usize>,
    /// Emptied nodes, pending that CAS.
    nodes: Vec<usize>,
    /// Emptied children `(slot, address)` of the nodes on the current path.
    dropped: Vec<(u8, usize)>,
}

impl Acc {
    /// Empties the lists for a walk that starts over.
    fn clear(&mut self) {
        self.items.clear();
        self.nodes.clear();
        self.dropped.clear();
    }
}

impl Trie {
    /// Takes out each `items[i].0` whose cell holds the final word `items[i].1`, as
    /// [`remove`](Self::remove) would (`out[i]`: whether it did), with at most one copy
    /// per touched node; emptied nodes are
    /// unlinked with their parent's copy, as a single removal's cascade does. `items` must
    /// be sorted by address bytes then length; `out` holds one `None` per item.
    pub(crate) fn remove_batch(&self, items: &[(NetAddress, usize)], g: &Guard, out: &mut [Option<bool>]) {
        debug_assert_eq!(items.len(), out.len());
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut acc = Acc::default();
        while !pending.is_empty() {
            // As `insert_batch`: the upper trie's items from the root, the others per top
            // slot. A retry starts over with the undecided items.
            let top = self.top_depth();
            let (upper, lower) = split_top(items, &pending, top);
            if !upper.is_empty() {
                let root = At { loc: &self.root, raw: self.root.load(LOAD) };
                acc.clear();
                // The root is never emptied (`unbatch_at` keeps it): `Kept` or `Retry`.
                let _ = self.unbatch_at(root, 0, items, &upper, g, out, &mut acc);
            }
            for group in top_groups(items, &lower, top) {
                let at = match self.top_at(items[group[0]].0.bytes()) {
                    Some(at) if at.raw != 0 => at,
                    _ => {
                        group.iter().for_each(|&i| out[i] = Some(false));
                        continue;
                    }
                };
                acc.clear();
                if let Step::Done(Below::Emptied { raw }) =
                    self.unbatch_at(at, top, items, group, g, out, &mut acc)
                {
                    debug_assert_eq!(raw, at.raw);
                    // The depth-`D` node would be left empty: its top slot gets 0, which
                    // unlinks it and the emptied nodes below it (`unlink` retires it).
                    if self.unlink(at, g) {
                        let mut n = 0;
                        for &i in &acc.items {
                            if out[i].is_none() {
                                out[i] = Some(true);
                                n += 1;
                            }
                        }
                        crate::sync::LIVE_LEAVES.add(-n);
                        for &old in acc.nodes.iter().filter(|&&old| old != at.raw) {
                            // SAFETY: as in `unbatch_at`: each emptied node's slot was frozen
                            // holding it when its parent was copied without it, so our CAS
                            // unlinked it with the depth-`D` node, and only we retire it.
                            unsafe { retire_with(g, move || node::free(old)) };
                        }
                    }
                }
            }
            if out.iter().all(Option::is_some) {
                return;
            }
            pending.retain(|&i| out[i].is_none());
            crate::sync::spin_hint();
        }
    }

    /// Removes `idx` (items under the node found at `at`, at depth `d`); see `Below`.
    #[allow(clippy::too_many_arguments)]
    fn unbatch_at(
        &self,
        at: At<'_>,
        d: usize,
        items: &[(NetAddress, usize)],
        idx: &[usize],
        g: &Guard,
        out: &mut [Option<bool>],
        acc: &mut Acc,
    ) -> Step<Below> {
        let c = Self::cnode_ref(at.raw, g);
        let (own, below) = split(items, idx, d);
        // Where this call's part of the work lists starts. This node's own removed items
        // are not listed: they are the items of `own` still undecided after the scan below.
        let (items0, nodes0, dropped0) = (acc.items.len(), acc.nodes.len(), acc.dropped.len());
        for (slot, group) in groups(items, &below, d) {
            let child = match self.child_at(at, c, slot, g) {
                Step::Retry => return Step::Retry,
                Step::Done(None) => {
                    group.iter().for_each(|&i| out[i] = Some(false));
                    continue;
                }
                Step::Done(Some(child)) => child,
            };
            match self.unbatch_at(child, d + 1, items, group, g, out, acc) {
                Step::Retry => return Step::Retry,
                Step::Done(Below::Kept) => {}
                Step::Done(Below::Emptied { raw }) => acc.dropped.push((slot, raw)),
            }
        }
        // At most one item per prefix of the node (the batch holds distinct prefixes).
        let mut gone: StackVec<HeapKey, 511> = StackVec::new();
        for &i in own.iter() {
            let hk = locate(&items[i].0).1;
            let expected = items[i].1;
            // `find_cell`: the run of the prefix's first slot answers unless a longer prefix
            // covers that slot (one popcount, where the search of the sorted prefixes was a
            // chain of a node's-size log steps). The word is final (`remove`), so reading
            // it before the copy freezes it is enough.
            if c.find_word(hk).is_some_and(|(_, v)| v & !FROZEN == expected) {
                gone.push(hk);
            } else {
                out[i] = Some(false);
            }
        }
        let dropped_here = acc.dropped.len() > dropped0;
        if gone.is_empty() && !dropped_here {
            return Step::Done(Below::Kept);
        }
        // A node without children that loses every prefix is emptied without building its
        // empty copy (the depth-2 nodes of a full table's delete): nothing here needs a
        // freeze, and the parent's copy checks, under its freeze, that its slot still
        // holds this node, as it does for an emptied copy below.
        let emptied = d > 0 && c.is_childless_with(gone.len());
        let new = if emptied {
            None
        } else {
            let Some(new) = c.without(&gone, &acc.dropped[dropped0..]) else { return Step::Retry };
            acc.dropped.truncate(dropped0);
            Some(new)
        };
        let new = match new {
            Some(new) if d == 0 || !new.is_empty() => new,
            empty => {
                // Not published: the parent's copy unlinks this node instead.
                drop(empty);
                acc.nodes.push(at.raw);
                acc.items.extend(own.iter().copied().filter(|&i| out[i].is_none()));
                return Step::Done(Below::Emptied { raw: at.raw });
            }
        };
        if !self.replace(at, new, g) {
            return Step::Retry;
        }
        let mut n = 0;
        for &i in own.iter().chain(&acc.items[items0..]) {
            // Own items the scan left undecided, and the emptied children's items.
            if out[i].is_none() {
                out[i] = Some(true);
                n += 1;
            }
        }
        crate::sync::LIVE_LEAVES.add(-n);
        acc.items.truncate(items0);
        for old in acc.nodes.drain(nodes0..) {
            // SAFETY: as in `remove_once`: each emptied node's slot was frozen holding it
            // when its parent was copied without it, so our CAS (which `replace` made)
            // unlinked it, and only we retire it.
            unsafe { retire_with(g, move || node::free(old)) };
        }
        Step::Done(Below::Kept)
    }
}
