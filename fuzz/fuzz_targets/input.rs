//! The `rtm` command's input reader returns, whatever the bytes: a prefix list, an MRT
//! stream (plain or gzip) or an error, never a panic out of `read_from`, and never an
//! allocation beyond what the input holds (libFuzzer's `-rss_limit_mb` catches one).
//! `bgpkit-parser` panics on some damaged records; the reader catches those per record
//! (`cli/src/input.rs`), so this target replaces libFuzzer's abort-on-any-panic hook with
//! a silent one and aborts only if a panic escapes. Run: `cargo +nightly fuzz run input`.
#![no_main]

use rtm_cli::input::{read_from, Input};
use std::path::Path;
use std::sync::Once;

static QUIET: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let got = std::panic::catch_unwind(|| read_from(Path::new("fuzz-input"), data));
    let Ok(got) = got else {
        eprintln!("a panic escaped read_from");
        std::process::abort();
    };
    match got {
        Ok(Input::Prefixes(p)) => assert!(!p.is_empty(), "a prefix list holds a prefix"),
        Ok(Input::Mrt { updates, peers, .. }) => {
            assert!(!updates.is_empty(), "an MRT stream read holds an update");
            assert!(updates.iter().all(|u| (u.peer as usize) < peers.len()), "peers indexed");
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz-input: "), "{e}"),
    }
});
