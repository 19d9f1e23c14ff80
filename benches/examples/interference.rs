//! How much of a reader's throughput the *machine* takes when the other core is busy,
//! whatever it runs: the calibration of `rtm bench`'s "readers keep N %" figure.
//!
//! Loads the generated default table as `rtm bench` does (`rtm_cli::run::load`), then runs
//! the same reader (`rtm_cli::run::readers_with`: batched fast-path lookups of in-table
//! IPv4 addresses) for `SECONDS` (default 3) alone and beside each of these "writers" on
//! the other core:
//! * `spin`: an arithmetic loop that touches no memory (frequency and SMT-free sharing);
//! * `read`: dependent random reads over a 256 MiB array (a second latency-bound reader
//!   of DRAM, no writes);
//! * `write`: random read-modify-writes over a 256 MiB array (every line dirtied: DRAM
//!   traffic both ways, like a writer of a table much larger than the cache);
//! * `rtm`: re-announcements through `insert_routes`, 64 per call (`rtm bench`'s churn
//!   without its withdrawals and peer-down).
//!
//! `ONLY=spin,rtm` runs a subset; the solo run is always first and repeated last.
use rtm::{gen, AddressFamily, NetAddress, RouteParams};
use rtm_cli::run;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const MIB: usize = 1 << 20;

/// A writer on the other core: runs until told to stop, returns its operations.
type Writer<'a> = Box<dyn FnOnce(&AtomicBool) -> u64 + Send + 'a>;

fn main() {
    let secs: f64 = std::env::var("SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let only = std::env::var("ONLY").ok();
    let wanted = |n: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == n));
    let mut prefixes = gen::ipv4_table(901_899, 1).expect("within the limit");
    prefixes.extend(gen::ipv6_table(160_147, 1).expect("within the limit"));
    let l = run::load(&prefixes);
    let v4: Vec<NetAddress> =
        prefixes.iter().filter(|p| p.family() == AddressFamily::Ipv4).copied().collect();
    let queries =
        run::queries(&prefixes, AddressFamily::Ipv4, 1 << 20, 2).expect("a table with IPv4 prefixes");
    let dur = Duration::from_secs_f64(secs);
    let reader = |w: Option<Writer<'_>>| {
        let s = run::readers_with(&l.rtm, AddressFamily::Ipv4, &queries, 1, dur, w, "reader");
        (s.lookups_per_sec_per_reader, s.writer_updates as f64 / s.elapsed.as_secs_f64())
    };
    let (solo, _) = reader(None);
    println!("{:<6} reader {:6.2} M lookups/s", "alone", solo / 1e6);
    let mut big = vec![0u64; 256 * MIB / 8];
    // A random cyclic permutation: each read's address depends on the previous one.
    let mut r = gen::SplitMix64::new(9);
    let n = big.len();
    let mut order: Vec<usize> = (0..n).step_by(8).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, r.below(i as u64 + 1) as usize);
    }
    for w in order.windows(2) {
        big[w[0]] = w[1] as u64;
    }
    big[*order.last().expect("nonempty")] = order[0] as u64;
    for name in ["spin", "read", "write", "rtm"] {
        if !wanted(name) {
            continue;
        }
        let w: Writer<'_> = match name {
            "spin" => Box::new(run::spin),
            "read" => Box::new(|stop: &AtomicBool| {
                let (mut i, mut k) = (0usize, 0u64);
                let b: &[u64] = &big;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1024 {
                        i = b[i] as usize;
                    }
                    k += 1024;
                }
                k
            }),
            "write" => {
                let big = &mut big;
                Box::new(move |stop: &AtomicBool| {
                    let mut r = gen::SplitMix64::new(3);
                    let mut k = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..1024 {
                            let i = r.below(n as u64) as usize;
                            big[i] = big[i].wrapping_add(1);
                        }
                        k += 1024;
                    }
                    k
                })
            }
            _ => Box::new(|stop: &AtomicBool| {
                let mut r = gen::SplitMix64::new(5);
                let mut pending: Vec<(NetAddress, RouteParams)> = Vec::with_capacity(64);
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let i = r.below(v4.len() as u64) as usize;
                        let p = RouteParams::new(20 + r.below(3) as u32, r.below(10) as u32)
                            .next_hop(gen::peer_next_hop(AddressFamily::Ipv4, (i % 32) as u8));
                        pending.push((v4[i], p));
                    }
                    let _ = l.ebgp[0].insert_routes(&pending);
                    pending.clear();
                    k += 64;
                }
                k
            }),
        };
        let (with, rate) = reader(Some(w));
        println!(
            "{name:<6} reader {:6.2} M lookups/s: keeps {:4.1} %; writer {:7.2} M operations/s",
            with / 1e6,
            with / solo * 100.0,
            rate / 1e6
        );
    }
    let (again, _) = reader(None);
    println!(
        "{:<6} reader {:6.2} M lookups/s (solo again: {:+.1} %)",
        "alone",
        again / 1e6,
        (again / solo - 1.0) * 100.0
    );
}
