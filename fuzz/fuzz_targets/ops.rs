//! Differential fuzzing: the bytes are a program in the operation language of
//! `tests/common` (shared with the proptest and the corpus replay test); every operation is
//! applied to the engine and to a `BTreeMap` model and every result compared, then the
//! whole table and the batched lookups are checked; each program runs on an IPv4 and on an
//! IPv6 table. Run:
//! `cargo +nightly fuzz run ops -- -max_total_time=60`.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Both families: IPv6 tables have a deeper top table (`src/trie/top.rs`), and
    // `common::prefix_in` gives them the IPv4 space's shape around it.
    common::run(data);
    common::run_in(data, rtm::AddressFamily::Ipv6);
});
