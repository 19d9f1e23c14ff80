//! [`WorkList`]: a bounded list of deferred work items that writers append to and take
//! whole (destinations whose snapshot is waiting to move into its slot, `table.rs`).
//!
//! # Design
//! A mutex around a `VecDeque`: `std::sync::Mutex` normally, `loom::sync::Mutex` under
//! `cfg(loom)` (loom runs every model thread on one OS thread, so a std mutex held across a
//! loom operation would deadlock the model; loom's is modelled). Only writers touch it,
//! never lookups, and every critical section appends to or takes from the ends of a
//! `VecDeque`: items are dropped and worked on outside the lock. [`take`](WorkList::take)
//! gives up rather than wait when another writer holds the lock (the work is an optimisation; it waits for the next
//! call), and so does [`push`](WorkList::push), a route-by-route writer's append. Past
//! [`WorkList::CAP`] items, new ones are dropped: the work only saves memory and a
//! lookup's second line, and the bound keeps a stalled epoch (a reader pinned for a long
//! time, so no slot frees) from growing the list without limit.

use std::collections::VecDeque;

/// See the module docs.
pub(crate) struct WorkList<T> {
    #[cfg(not(loom))]
    items: std::sync::Mutex<VecDeque<T>>,
    #[cfg(loom)]
    items: loom::sync::Mutex<VecDeque<T>>,
}

impl<T> WorkList<T> {
    /// The most items the list keeps (fewer under miri, whose test of the bound would
    /// otherwise interpret 65,546 pushes).
    pub(crate) const CAP: usize = if cfg!(miri) { 1 << 8 } else { 1 << 16 };

    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            items: std::sync::Mutex::new(VecDeque::new()),
            #[cfg(loom)]
            items: loom::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Appends `items` up to the bound; the rest are dropped (after the lock is released).
    pub(crate) fn extend(&self, mut items: Vec<T>) {
        if items.is_empty() {
            return;
        }
        let rest = {
            // A poisoned lock still guards a whole `Vec` (no user code runs under it).
            #[cfg(not(loom))]
            let mut v = self.items.lock().unwrap_or_else(|e| e.into_inner());
            #[cfg(loom)]
            let mut v = self.items.lock().unwrap();
            let room = Self::CAP.saturating_sub(v.len());
            let rest = items.split_off(room.min(items.len()));
            v.extend(items);
            rest
        };
        drop(rest);
    }

    /// Appends one item unless another thread holds the list or it is full (then the item
    /// is dropped, after the lock is released: the work is an optimisation, and a
    /// route-by-route writer must never wait for it). Returns the number of items after
    /// the push, `None` if it was dropped.
    pub(crate) fn push(&self, item: T) -> Option<usize> {
        let mut v = match self.items.try_lock() {
            Ok(v) => v,
            #[cfg(not(loom))]
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(_) => return None,
        };
        if v.len() >= Self::CAP {
            drop(v);
            return None;
        }
        v.push_back(item);
        Some(v.len())
    }

    /// Takes up to `n` items from the front (the oldest), or none if another thread holds
    /// the list. Items a caller cannot finish go back with [`extend`](Self::extend), to
    /// the back: a few that stay unfinished for long (their slots busy) then rotate
    /// instead of blocking the ones behind them, and nothing is copied but what is taken.
    pub(crate) fn take(&self, n: usize) -> Vec<T> {
        let mut v = match self.items.try_lock() {
            Ok(v) => v,
            #[cfg(not(loom))]
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(_) => return Vec::new(),
        };
        let n = n.min(v.len());
        v.drain(..n).collect()
    }

    /// The number of items (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        #[cfg(not(loom))]
        return self.items.lock().unwrap_or_else(|e| e.into_inner()).len();
        #[cfg(loom)]
        return self.items.lock().unwrap().len();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn takes_what_was_added_up_to_the_bound() {
        let w = WorkList::new();
        assert!(w.take(8).is_empty());
        w.extend(vec![1, 2]);
        w.extend(vec![3, 4]);
        assert_eq!(w.take(3), vec![1, 2, 3], "the oldest first");
        w.extend(vec![1]);
        assert_eq!(w.take(8), vec![4, 1], "put back behind the rest");
        assert!(w.take(8).is_empty(), "taken whole");
        w.extend((0..WorkList::<usize>::CAP + 10).collect());
        assert_eq!(w.len(), WorkList::<usize>::CAP, "items past the bound are dropped");
        w.extend(vec![7]);
        assert_eq!(w.len(), WorkList::<usize>::CAP);
    }

    #[test]
    fn push_counts_and_stops_at_the_bound() {
        let w = WorkList::new();
        assert_eq!(w.push(1), Some(1));
        assert_eq!(w.push(2), Some(2));
        w.extend((0..WorkList::<usize>::CAP).collect());
        assert_eq!(w.push(3), None, "full: dropped");
        let all = w.take(usize::MAX);
        assert_eq!(all.len(), WorkList::<usize>::CAP);
        assert_eq!(all[..3], [1, 2, 0]);
    }

    #[test]
    fn take_and_push_give_up_while_another_thread_holds_the_list() {
        let w = WorkList::new();
        w.extend(vec![1]);
        let held = w.items.lock().unwrap();
        std::thread::scope(|s| {
            assert!(s.spawn(|| w.take(8)).join().unwrap().is_empty());
            assert_eq!(s.spawn(|| w.push(2)).join().unwrap(), None);
        });
        drop(held);
        assert_eq!(w.take(8), vec![1]);
    }
}
