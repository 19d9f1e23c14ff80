//! Differential test: random operation sequences against the `BTreeMap` model, every
//! query compared (see `tests/common/mod.rs`), plus replay of the checked-in inputs in
//! `tests/regressions/` (and `fuzz/corpus/ops/` once it exists).

mod common;

use proptest::prelude::*;
use rtm::AddressFamily;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(if cfg!(miri) {
        3
    } else {
        512
    })
}

/// Operations per program: fewer under miri, where a 300-operation program took two
/// minutes (every operation is checked against the model over the whole table).
fn max_ops() -> usize {
    if cfg!(miri) {
        80
    } else {
        300
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_match_the_model(data in proptest::collection::vec(any::<u8>(), 0..12 * max_ops())) {
        common::run(&data);
    }

    /// The same programs on the IPv6 table (`common::prefix_in`: the IPv4 space's shape
    /// around IPv6's three-byte top table).
    #[test]
    fn random_programs_match_the_model_v6(data in proptest::collection::vec(any::<u8>(), 0..12 * max_ops())) {
        common::run_in(&data, AddressFamily::Ipv6);
    }
}

/// Every checked-in input still runs without divergence, in both families.
#[test]
fn replay_checked_in_inputs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    // Miri is ~1000x slower: it replays only the curated regressions (verification notes P8).
    let dirs: &[&str] =
        if cfg!(miri) { &["tests/regressions"] } else { &["tests/regressions", "fuzz/corpus/ops"] };
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for f in rd.flatten() {
            if f.path().extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(f.path()).unwrap();
            common::run(&data);
            common::run_in(&data, AddressFamily::Ipv6);
            n += 1;
        }
    }
    assert!(n > 0, "tests/regressions holds at least one input");
    eprintln!("replayed {n} inputs");
}

/// A hand-written program touching every operation once, so a broken decoder is noticed.
#[test]
fn every_op_kind_runs() {
    let mut data = Vec::new();
    // Register first, deregister last.
    for kind in [0u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1] {
        for e in 0..3u8 {
            data.extend_from_slice(&[kind, e, e, 1, 2, 0, 5, 1, 1, 2, 1, 0]);
        }
    }
    for fam in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
        let mut r = common::Runner::new_in(fam);
        let ops = common::decode_in(&data, fam);
        assert_eq!(ops.len(), 48);
        // Register, four kinds of add, update: 18 operations.
        for op in &ops[..18] {
            r.apply(op);
        }
        r.check_all();
        assert!(!r.model.dests.is_empty(), "the program added routes");
        assert!(r.model.dests.keys().all(|p| p.family() == fam));
        assert_eq!(r.rtm.table(fam).len(), r.model.dests.len());
        for op in &ops[18..] {
            r.apply(op);
        }
        r.check_all();
        assert!(r.model.dests.is_empty(), "deregistering every entity empties the table");
    }
}

/// The handle-less operations (entity byte >= 3): decoded, applied and checked, so a
/// decoder that never produced them would be noticed.
#[test]
fn lone_op_kinds_run() {
    let mut data = Vec::new();
    for e in 0..3u8 {
        data.extend_from_slice(&[0, e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
    // Inserts (kind 2, two entities on one prefix: a promotion), a batch (kind 5), one
    // withdrawal (kind 7) and a batch of them (kind 7, c[3] % 3 == 0).
    for (kind, e, c3) in [(2u8, 3u8, 1u8), (2, 4, 1), (2, 5, 2), (5, 3, 1), (7, 3, 1), (7, 4, 3), (7, 5, 3)] {
        data.extend_from_slice(&[kind, e, 1, c3, 1, 2, 5, 1, 0, 0, 1, 0]);
    }
    let ops = common::decode(&data);
    let names: Vec<&str> = ops[3..]
        .iter()
        .map(|op| match op {
            common::Op::Insert { .. } => "insert",
            common::Op::InsertBatch { .. } => "insert_batch",
            common::Op::Withdraw { .. } => "withdraw",
            common::Op::WithdrawBatch { .. } => "withdraw_batch",
            _ => "other",
        })
        .collect();
    assert_eq!(
        names,
        ["insert", "insert", "insert", "insert_batch", "withdraw", "withdraw_batch", "withdraw_batch"]
    );
    let mut r = common::Runner::new();
    for op in &ops[..7] {
        r.apply(op);
    }
    assert!(!r.model.dests.is_empty(), "the program added routes");
    r.check_all();
    for op in &ops[7..] {
        r.apply(op);
    }
    r.check_all();
}
