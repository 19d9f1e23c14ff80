//! Runs the fast-path lookup loop (IPv4; IPv6 with `V6=1`) for a few seconds, for `perf record` / callgrind.
//! `profile_lookup ROUNDS [batch|handle]`: single lookups, `Table::lookup_batch`, or the
//! handle path (`Table::most_specific`, one counted handle per lookup).
//!
//! `CHURN=N` first applies `N` steps of the criterion `churn` bench's single-route writer
//! (a second entity re-announces random prefixes with changing preferences, every 16th
//! step a withdrawal), so the lookups run on a table in the state that writer leaves.
use rtm::{AddressFamily, EntityId, RouteParams};

fn main() {
    let (_, mut v4, v6) = rtm_benches::full_table();
    let fam = if std::env::var_os("V6").is_some() {
        v4 = v6;
        AddressFamily::Ipv6
    } else {
        AddressFamily::Ipv4
    };
    if let Some(n) = std::env::var("TABLE_N").ok().and_then(|s| s.parse::<usize>().ok()) {
        // Every k-th prefix, so the table keeps the full table's shape at a smaller size.
        let k = (v4.len() / n.max(1)).max(1);
        v4 = v4.into_iter().step_by(k).collect();
    }
    let rtm = rtm_benches::load_rtm(&v4);
    let t = rtm.table(fam);
    let churn: u64 = std::env::var("CHURN").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    if churn > 0 {
        let w = rtm.register(fam, EntityId::new(8, 1)).expect("fresh entity");
        let mut refs: Vec<Option<rtm::RouteRef>> = vec![None; v4.len()];
        let t0 = std::time::Instant::now();
        for i in 0..churn {
            let k = rtm_benches::churn_key(i, v4.len());
            if i % 16 == 15 {
                if let Some(r) = refs[k].take() {
                    let _ = w.delete_route(&r);
                }
            } else {
                let nh = rtm::gen::peer_next_hop(fam, (k % 32) as u8);
                let p = RouteParams::new(10 + (i % 20) as u32, (k % 7) as u32).next_hop(nh);
                if let Ok((r, _)) = w.add_route(&v4[k], p) {
                    refs[k] = Some(r);
                }
            }
        }
        eprintln!("churn: {churn} writer steps in {:?}", t0.elapsed());
    }
    let (inside, _) = rtm_benches::queries(&v4, 1 << 16, 42);
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let mode = std::env::args().nth(2).unwrap_or_default();
    let batch = mode == "batch";
    let start = std::time::Instant::now();
    let mut sum = 0u64;
    for _ in 0..rounds {
        if batch {
            for chunk in inside.chunks(1024) {
                let g = t.pin();
                t.lookup_batch(chunk, rtm::ViewId::UNICAST, &g, |_, b| {
                    sum += b.map_or(0, |b| b.next_hops()[0].interface as u64)
                });
            }
            continue;
        }
        if mode == "handle" {
            for q in &inside {
                if let Ok(d) = t.most_specific(q, rtm::ViewSet::UNICAST) {
                    sum += d.prefix().len() as u64;
                }
            }
            continue;
        }
        for chunk in inside.chunks(1024) {
            let g = t.pin();
            for q in chunk {
                if let Some(b) = t.lookup(q, &g) {
                    sum += b.next_hops()[0].interface as u64;
                }
            }
        }
    }
    let n = rounds * inside.len();
    println!(
        "{n} lookups in {:?}: {:.1} ns/lookup (sum {sum})",
        start.elapsed(),
        start.elapsed().as_nanos() as f64 / n as f64
    );
}
