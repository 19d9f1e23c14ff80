//! Unit tests of node building, copying and reading.

use super::*;

/// A view of an unpublished node, for tests.
fn view(b: &NodeBox) -> CNode<'_> {
    // SAFETY: `b` owns the node and outlives the view.
    unsafe { CNode::from_raw(b.as_raw()) }
}

#[test]
fn heap_keys() {
    assert_eq!(hk_len(1), 0);
    assert_eq!(hk_start(1), 0);
    assert_eq!(hk_len((1 << 8) | 0xab), 8);
    assert_eq!(hk_start((1 << 8) | 0xab), 0xab);
    assert_eq!(hk_len((1 << 1) | 1), 1);
    assert_eq!(hk_start((1 << 1) | 1), 128);
    assert_eq!(hk_start((1 << 4) | 0b1010), 0b1010_0000);
}

#[test]
fn rank_counts_bits_below() {
    let w = Bits256::new([0b1011u64, u64::MAX, 0, 1 << 63]);
    assert_eq!(w.find(0), Some(0));
    assert_eq!(w.find(1), Some(1));
    assert_eq!(w.find(2), None);
    assert_eq!(w.find(3), Some(2));
    assert_eq!(w.find(64), Some(3));
    assert_eq!(w.find(127), Some(66));
    assert_eq!(w.find(128), None);
    assert_eq!((w.find(254), w.find(255)), (None, Some(67)));
    assert_eq!(w.rank_incl(255), 68);
    assert_eq!(w.rank_incl(0), 1);
    assert_eq!(w.rank_incl(2), 2);
    assert_eq!(w.rank_incl(200), 67);
}

#[test]
fn find_and_rank_agree_with_counting() {
    // Sparse, dense and every-other words, each slot against a count of the bits.
    let mut r = crate::gen::SplitMix64::new(3);
    for round in 0..if cfg!(miri) { 4 } else { 64 } {
        let words: [u64; 4] = core::array::from_fn(|_| match round % 3 {
            0 => r.next() & r.next() & r.next(),
            1 => r.next() | r.next(),
            _ => 0x5555_5555_5555_5555 ^ (1 << (r.next() % 64)),
        });
        let b = Bits256::new(words);
        let bit = |s: usize| words[s / 64] >> (s % 64) & 1 == 1;
        let mut below = 0;
        for s in 0..256usize {
            assert_eq!(b.find(s as u8), bit(s).then_some(below), "find({s}) of {words:x?}");
            below += bit(s) as usize;
            assert_eq!(b.rank_incl(s as u8), below, "rank_incl({s}) of {words:x?}");
        }
    }
}

#[test]
fn leaf_vector_picks_longest() {
    // /0 (v=1), 128/1 (v=2), 0xab/8 (v=3)
    let b = NodeBox::build(&[(1, w(1)), (3, w(2)), ((1 << 8) | 0xab, w(3))], &[]);
    let n = view(&b);
    assert_eq!(n.leaf(0), w(1));
    assert_eq!(n.leaf(127), w(1));
    assert_eq!(n.leaf(128), w(2));
    assert_eq!(n.leaf(0xaa), w(2));
    assert_eq!(n.leaf(0xab), w(3));
    assert_eq!(n.leaf(0xac), w(2));
    assert_eq!(n.leaf(255), w(2));
    assert_eq!(n.get(3), w(2));
    assert_eq!(n.get(2), 0);
    assert_eq!(n.prefixes().collect::<Vec<_>>(), [(1, w(1)), (3, w(2)), ((1 << 8) | 0xab, w(3))]);
    assert_eq!(n.head().n_hidden, 0, "every prefix is some slot's longest");
}

#[test]
fn hidden_prefixes_keep_their_values() {
    // 0/6 (v=10) covered by its four /8s (v=20..23), and 0/7 (v=30) by two of them;
    // 4/6 (v=11) visible in the slots its one /8 (4/8, v=24) leaves over.
    let mut p = vec![(1 << 6, w(10)), (1 << 7, w(30)), ((1 << 6) | 1, w(11)), ((1 << 8) | 4, w(24))];
    p.extend((0..4).map(|b| ((1 << 8) | b, w(20 + b as usize))));
    p.sort_unstable();
    let b = NodeBox::build(&p, &[]);
    let n = view(&b);
    assert_eq!(n.head().n_hidden, 2, "0/6 and 0/7 are hidden");
    assert_eq!(n.prefixes().collect::<Vec<_>>(), p, "every prefix keeps its value");
    for &(hk, v) in &p {
        assert_eq!(n.get(hk), v);
    }
    assert_eq!(
        (n.leaf(0), n.leaf(3), n.leaf(4), n.leaf(5), n.leaf(7), n.leaf(8)),
        (w(20), w(23), w(24), w(11), w(11), 0)
    );
    // Copies keep them: removing a /8 uncovers 0/7 at its slot.
    let c = n.without_prefix((1 << 8) | 1);
    let c = view(&c);
    assert_eq!(c.leaf(1), w(30));
    assert_eq!(c.head().n_hidden, 1, "only 0/6 is still hidden");
    assert_eq!(c.get(1 << 6), w(10));
    assert_eq!(c.get((1 << 8) | 1), 0);
}

#[test]
fn split_prefix_runs_share_one_cell() {
    // 0/6 (slots 0-3) split by 1/8: runs [0], [1], [2-3]; the third aliases the first.
    let b = NodeBox::build(&[(1 << 6, w(10)), ((1 << 8) | 1, w(20))], &[]);
    let n = view(&b);
    assert_eq!((n.leaf(0), n.leaf(1), n.leaf(2), n.leaf(3), n.leaf(4)), (w(10), w(20), w(10), w(10), 0));
    assert_eq!(n.head().n_runs, 4, "[0], [1], [2-3], [4-255]");
    // SAFETY: runs 0 and 2 exist in the node `b` owns.
    let (c0, c2) = unsafe { (load_value(n.run_ptr(0)).0, load_value(n.run_ptr(2)).0) };
    assert!(core::ptr::eq(c0, c2), "the alias reads the prefix's first run");
    assert_eq!(n.prefixes().collect::<Vec<_>>(), [(1 << 6, w(10)), ((1 << 8) | 1, w(20))]);
    let c = n.without_prefix((1 << 8) | 1);
    assert_eq!((view(&c).leaf(1), view(&c).head().n_runs), (w(10), 2), "one run again");
}

/// A fake word (16-aligned, no tag bits, like a group's address).
fn w(i: usize) -> usize {
    i << 4
}

/// A fake child address (64-aligned, like a node).
fn a(i: usize) -> usize {
    i << 6
}

#[test]
fn bits_iterate_in_order() {
    let slots = [0u8, 1, 63, 64, 100, 127, 128, 200, 254, 255];
    let mut words = [0u64; 4];
    for &s in &slots {
        words[(s >> 6) as usize] |= 1 << (s & 63);
    }
    let b = Bits256::new(words);
    assert_eq!(b.iter().collect::<Vec<_>>(), slots);
    assert_eq!(Bits256::new([0; 4]).iter().count(), 0);
    assert_eq!(Bits256::new([u64::MAX; 4]).iter().collect::<Vec<_>>(), (0..=255u8).collect::<Vec<_>>());
}

#[test]
fn children_rank() {
    let b = NodeBox::build(&[((1 << 8) | 5, w(9))], &[(0, a(10)), (63, a(11)), (64, a(12)), (255, a(13))]);
    let n = view(&b);
    assert_eq!(n.child(0), a(10));
    assert_eq!(n.child(63), a(11));
    assert_eq!(n.child(64), a(12));
    assert_eq!(n.child(255), a(13));
    assert_eq!(n.child(1), 0);
    assert_eq!(n.leaf(5), w(9));
    assert_eq!(n.leaf(4), 0);
    assert_eq!(n.leaf(6), 0);
    assert!(n.without_child(63, a(99)).is_none(), "a slot holding another child is kept");
    let m1 = n.without_child(63, a(11)).unwrap();
    let m = view(&m1).with_child(7, a(14));
    assert_eq!(
        view(&m).children().collect::<Vec<_>>(),
        vec![(0, a(10)), (7, a(14)), (64, a(12)), (255, a(13))]
    );
    assert_eq!(view(&m).get((1 << 8) | 5), w(9));
}

#[test]
fn copies_freeze_the_original() {
    let b = NodeBox::build(&[(1, w(1))], &[(3, a(5)), (9, a(6))]);
    let n = view(&b);
    let s = n.child_slot(3).unwrap();
    assert!(s.compare_exchange(a(5), a(7), Ordering::AcqRel, Ordering::Acquire).is_ok());
    let c = n.without_prefix(1);
    assert!(!c.is_empty());
    assert_eq!(
        view(&c).children().collect::<Vec<_>>(),
        vec![(3, a(7)), (9, a(6))],
        "the landed update is copied"
    );
    assert!(s.compare_exchange(a(7), a(8), Ordering::AcqRel, Ordering::Acquire).is_err(), "frozen");
    assert_eq!(n.child(3), a(7), "readers see through the tag");
    assert_eq!(view(&c).child_slot(3).unwrap().load(LOAD), a(7), "the copy is not frozen");
    let e = view(&NodeBox::build(&[], &[(3, a(5))])).without_child(3, a(5)).unwrap();
    assert!(e.is_empty());
}

#[test]
fn full_node_round_trips() {
    let children: Vec<(u8, usize)> = (0..=255u8).map(|s| (s, a(1000 + s as usize))).collect();
    let prefixes: Vec<(HeapKey, usize)> =
        (0..=255u16).map(|b| ((1 << 8) | b, w(5000 + b as usize))).collect();
    let b = NodeBox::build(&prefixes, &children);
    let n = view(&b);
    for s in 0..=255u8 {
        assert_eq!(n.child(s), a(1000 + s as usize));
        assert_eq!(n.leaf(s), w(5000 + s as usize));
    }
    assert!(n.prefixes().eq(prefixes.iter().copied()));
    let c = n.copy();
    assert!(view(&c).prefixes().eq(prefixes.iter().copied()));
    assert!(view(&c).children().eq(children.iter().copied()));
    // Head, 256 slots, 256 runs, 256 four-byte prefix entries (no hidden values) and
    // 256 two-byte heap keys.
    assert_eq!(n.heap_bytes(), (88 + 512 * 8 + 256 * 4 + 256 * 2usize).next_multiple_of(64));
}
