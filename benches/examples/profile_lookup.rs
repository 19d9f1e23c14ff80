//! Runs the IPv4 fast-path lookup loop for a few seconds, for `perf record` / callgrind.
//! `profile_lookup ROUNDS [batch|handle]`: single lookups, `Table::lookup_batch`, or the
//! handle path (`Table::most_specific`, one counted handle per lookup).
fn main() {
    let (_, v4, _) = rtm_benches::full_table();
    let rtm = rtm_benches::load_rtm(&v4);
    let t = rtm.table(rtm::AddressFamily::Ipv4);
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
