//! The trie's writers: [`Trie::insert`], [`Trie::remove`] and [`Trie::remove_where`], and
//! the cell a writer may change ([`Trie::cell_for_write`]). Each change copies the node it
//! changes and compare-and-swaps the copy into the node's location, freezing the original
//! first so that no concurrent CAS on its slots or cells is lost; an emptied node's parent
//! is copied without it, up to the top table, whose slot gets 0 (parent module,
//! "Operations").

use super::node::{self, CNode, NodeBox, LOAD};
use super::*;

impl Trie {
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
    pub(super) fn replace(&self, at: At<'_>, new: NodeBox, g: &Guard) -> bool {
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

    /// Empties the top slot `at` (a depth-`D` node emptied by a removal): a CAS from the
    /// node to 0, which retires it, as [`replace`](Self::replace) does.
    pub(super) fn unlink(&self, at: At<'_>, g: &Guard) -> bool {
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
    pub(super) fn child_at<'g>(
        &'g self,
        at: At<'g>,
        c: CNode<'g>,
        slot: u8,
        g: &'g Guard,
    ) -> Step<Option<At<'g>>> {
        let Some(loc) = c.child_slot(slot) else { return Step::Done(None) };
        let raw = loc.load(LOAD);
        if raw & FROZEN != 0 {
            self.replace(at, c.copy(), g);
            return Step::Retry;
        }
        Step::Done(Some(At { loc, raw }))
    }

    /// Walks towards `bytes[..depth]` from where its nodes start (the root for the upper
    /// trie, `depth < D`, else the top slot), filling `path[from..=k]` with where each
    /// node was found, and returns `k` (`depth` if every node exists, less if one on the
    /// way is missing); see `child_at`.
    fn walk_path<'g>(
        &'g self,
        bytes: &[u8; 16],
        depth: usize,
        path: &mut [Option<At<'g>>; 17],
        g: &'g Guard,
    ) -> Step<usize> {
        let top = self.top_depth();
        let from = if depth < top {
            path[0] = Some(At { loc: &self.root, raw: self.root.load(LOAD) });
            0
        } else {
            match self.top_at(bytes) {
                Some(at) if at.raw != 0 => path[top] = Some(at),
                _ => return Step::Done(0),
            }
            top
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
        let top = self.top_depth();
        let (mut at, from) = if depth < top {
            (At { loc: &self.root, raw: self.root.load(LOAD) }, 0)
        } else {
            let loc = self.top.slot_or_make(bytes);
            let mut raw = loc.load(LOAD);
            if raw == 0 {
                // The /`8D`'s first node: an empty one, filled below like any new child.
                let child = NodeBox::empty();
                // AcqRel: Release publishes the node (pairs with `LOAD`); Acquire as in
                // `replace`.
                if loc.compare_exchange(0, child.as_raw(), Ordering::AcqRel, Ordering::Acquire).is_err() {
                    return Step::Retry; // `child` was not published: dropped here
                }
                raw = child.into_raw();
            }
            (At { loc, raw }, top)
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
        // the root or the depth-`D` node, whose top slot then gets 0.
        let top = self.top_depth();
        let from = if depth < top { 0 } else { top };
        let mut level = depth;
        while level > from && new.is_empty() {
            let (Some(parent), Some(node)) = (path[level - 1], path[level]) else { unreachable!("filled") };
            match Self::cnode_ref(parent.raw, g).without_child(p.bytes()[level - 1], node.raw) {
                Some(n) => new = n,
                None => return Step::Retry, // the slot changed before our freeze
            }
            level -= 1;
        }
        let Some(head) = path[level] else { unreachable!("filled") };
        let won =
            if level == top && new.is_empty() { self.unlink(head, g) } else { self.replace(head, new, g) };
        if !won {
            return Step::Retry;
        }
        // `replace` (or `unlink`) retired `head.raw`; the emptied nodes below it were unlinked
        // by the same CAS (each one's slot was frozen holding it), and only by it.
        for at in path[level + 1..=depth].iter().flatten() {
            let old = at.raw;
            // SAFETY: as for `replace`: our CAS unlinked `old`, we alone retire it.
            unsafe { retire_with(g, move || node::free(old)) };
        }
        crate::sync::LIVE_LEAVES.add(-1);
        Step::Done(true)
    }
}
