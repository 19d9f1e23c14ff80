//! [`StackVec`]: a vector of `Copy` items with a fixed capacity, on the stack.
//!
//! A node copy (every insert and delete that changes a node) gathers the node's children
//! (at most 256), runs (at most 256) and internal prefixes (at most 511) into temporary
//! lists. As `Vec`s those were three or four heap allocations of up to 8 KiB per copy,
//! and on a fragmented glibc heap each such allocation consolidates the allocator's fast
//! bins: a full table's batched delete took 1.09 s after other work in the same process,
//! against 0.36 s in a fresh one (BENCHMARKS.md, session 10). The bounds are the node
//! format's, so a fixed capacity never overflows; `push` and `insert` beyond it panic (a
//! broken invariant, not an input error). The buffer is left uninitialized (14 KiB of
//! zeroing per copy made single-route loads 30 % slower); `len` items from the start are
//! initialized, an invariant every method keeps.

use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};

/// See the module docs.
pub(super) struct StackVec<T: Copy, const N: usize> {
    buf: [MaybeUninit<T>; N],
    len: usize,
}

impl<T: Copy, const N: usize> StackVec<T, N> {
    pub(super) fn new() -> Self {
        // SAFETY: an array of `MaybeUninit` needs no initialization, so an uninitialized
        // one is a valid value (the pattern `MaybeUninit::uninit_array` stands for). Unlike
        // `[const { MaybeUninit::uninit() }; N]` it is not built element by element in debug
        // builds and under miri, where that loop was about 8 % of a miri-sized test's instructions
        // (callgrind of `tests/drop_tracking.rs` built with `--cfg miri`).
        let buf = unsafe { MaybeUninit::<[MaybeUninit<T>; N]>::uninit().assume_init() };
        Self { buf, len: 0 }
    }

    /// The items of `items` (at most `N`).
    #[cfg(test)]
    pub(super) fn from_slice(items: &[T]) -> Self {
        let mut v = Self::new();
        for &x in items {
            v.push(x);
        }
        v
    }

    pub(super) fn push(&mut self, x: T) {
        self.buf[self.len] = MaybeUninit::new(x);
        self.len += 1;
    }

    /// Inserts `x` at `i`, shifting the items from `i` on.
    pub(super) fn insert(&mut self, i: usize, x: T) {
        assert!(i <= self.len && self.len < N, "StackVec::insert beyond its bounds");
        self.buf.copy_within(i..self.len, i + 1);
        self.buf[i] = MaybeUninit::new(x);
        self.len += 1;
    }

    /// Keeps the items for which `keep` holds, in order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut n = 0;
        for i in 0..self.len {
            // SAFETY: items below `len` are initialized (the module's invariant).
            let x = unsafe { self.buf[i].assume_init() };
            if keep(&x) {
                self.buf[n] = MaybeUninit::new(x);
                n += 1;
            }
        }
        self.len = n;
    }

    /// Removes the item at `i`, shifting the later ones down.
    pub(super) fn remove(&mut self, i: usize) {
        assert!(i < self.len, "StackVec::remove beyond its length");
        self.buf.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

impl<T: Copy, const N: usize> Deref for StackVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` items are initialized (every method that raises `len`
        // wrote them first; `copy_within` moves initialized items only), and
        // `MaybeUninit<T>` has `T`'s layout.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Copy, const N: usize> DerefMut for StackVec<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the borrow exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<T>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::StackVec;

    #[test]
    fn behaves_like_a_vec() {
        let mut v: StackVec<u32, 4> = StackVec::from_slice(&[1, 3]);
        v.insert(1, 2);
        v.push(4);
        assert_eq!(&*v, &[1, 2, 3, 4]);
        v.remove(0);
        v.remove(2);
        assert_eq!(&*v, &[2, 3]);
        v[0] = 7;
        assert_eq!(&*v, &[7, 3]);
        v.insert(2, 9);
        assert_eq!(&*v, &[7, 3, 9]);
    }

    #[test]
    #[should_panic(expected = "beyond its bounds")]
    fn insert_past_capacity_panics() {
        let mut v: StackVec<u8, 1> = StackVec::from_slice(&[1]);
        v.insert(0, 2);
    }
}
