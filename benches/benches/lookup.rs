//! Longest-prefix match: rtm (fast path, batch, handle path, batched handle path) against
//! prefix-trie, `RwLock<prefix_trie::PrefixMap>`, rotonda-store (its lock-free
//! `StarCastRib`) and ip_network_table on the same table and the same addresses, in one
//! process with the same build flags. Run with `cargo bench -p rtm-benches --bench lookup`.
//!
//! rtm's handle paths run on a table of their own: a handle promotes its prefix's lone
//! routes to a destination object (`src/leaf.rs`), so on a shared table the fast paths
//! would afterwards read the queried prefixes' destinations, 65,536 of them contiguous in
//! 8 MiB, rather than the lone routes a handle-less table has (BENCHMARKS.md, session 23).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ip_network::IpNetwork;
use ip_network_table::IpNetworkTable;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use rtm::{AddressFamily, NetAddress};
use std::hint::black_box;
use std::sync::RwLock;

const N: usize = 1 << 16;
const BATCH: usize = 1024;

fn bench_family(c: &mut Criterion, name: &str, fam: AddressFamily, prefixes: &[NetAddress]) {
    let rtm = rtm_benches::load_rtm(prefixes);
    let table = rtm.table(fam);
    let rtm_h = rtm_benches::load_rtm(prefixes);
    let htable = rtm_h.table(fam);
    let (inside, random) = rtm_benches::queries(prefixes, N, 42);
    let mut g = c.benchmark_group(format!("lpm_{name}"));
    g.throughput(Throughput::Elements(N as u64));

    // Peers, each fed the same prefixes (value: a small integer) and the same addresses.
    macro_rules! peers {
        ($net:ty, $variant:path, $ip:ty) => {{
            let nets: Vec<$net> = prefixes
                .iter()
                .map(|p| match IpNet::from(*p) {
                    $variant(n) => n,
                    _ => unreachable!("one family per table"),
                })
                .collect();
            let mut m: PrefixMap<$net, u32> = PrefixMap::new();
            let mut it = IpNetworkTable::new();
            for (i, n) in nets.iter().enumerate() {
                m.insert(*n, (i % 64) as u32 + 1);
                let net = IpNetwork::new(n.network(), n.prefix_len()).expect("normalized prefix");
                it.insert(net, (i % 64) as u32 + 1);
            }
            let locked = RwLock::new(m.clone());
            let rotonda = rtm_benches::Rotonda::new(prefixes);
            for (kind, qs) in [("in_table", &inside), ("random", &random)] {
                let qs: Vec<$net> = qs
                    .iter()
                    .map(|a| match IpNet::from(*a) {
                        $variant(n) => n,
                        _ => unreachable!("one family per table"),
                    })
                    .collect();
                let ips: Vec<$ip> = qs.iter().map(|n| n.addr()).collect();
                g.bench_with_input(BenchmarkId::new("prefix_trie", kind), &qs, |b, qs| {
                    b.iter(|| {
                        let mut sum = 0u64;
                        for q in qs {
                            if let Some((_, v)) = m.get_lpm(q) {
                                sum += *v as u64;
                            }
                        }
                        black_box(sum)
                    })
                });
                g.bench_with_input(BenchmarkId::new("rwlock_prefix_trie", kind), &qs, |b, qs| {
                    b.iter(|| {
                        let mut sum = 0u64;
                        for q in qs {
                            // One read lock per lookup, as a reader sharing the map with a
                            // writer must take it.
                            let map = locked.read().expect("not poisoned");
                            if let Some((_, v)) = map.get_lpm(q) {
                                sum += *v as u64;
                            }
                        }
                        black_box(sum)
                    })
                });
                g.bench_with_input(BenchmarkId::new("rotonda_store", kind), &ips, |b, ips| {
                    b.iter(|| {
                        let mut sum = 0u64;
                        for chunk in ips.chunks(BATCH) {
                            let guard = rotonda_store::epoch::pin();
                            for &ip in chunk {
                                sum += rotonda.lpm_len(ip.into(), &guard) as u64;
                            }
                        }
                        black_box(sum)
                    })
                });
                g.bench_with_input(BenchmarkId::new("ip_network_table", kind), &ips, |b, ips| {
                    b.iter(|| {
                        let mut sum = 0u64;
                        for &ip in ips {
                            if let Some((_, v)) = it.longest_match(ip) {
                                sum += *v as u64;
                            }
                        }
                        black_box(sum)
                    })
                });
            }
        }};
    }
    match fam {
        AddressFamily::Ipv4 => peers!(Ipv4Net, IpNet::V4, std::net::Ipv4Addr),
        AddressFamily::Ipv6 => peers!(Ipv6Net, IpNet::V6, std::net::Ipv6Addr),
    }

    for (kind, qs) in [("in_table", &inside), ("random", &random)] {
        g.bench_with_input(BenchmarkId::new("rtm_fast", kind), qs, |b, qs| {
            b.iter(|| {
                let mut sum = 0u64;
                for chunk in qs.chunks(BATCH) {
                    let guard = table.pin();
                    for q in chunk {
                        if let Some(best) = table.lookup(q, &guard) {
                            sum += best.next_hops()[0].interface as u64;
                        }
                    }
                }
                black_box(sum)
            })
        });
        g.bench_with_input(BenchmarkId::new("rtm_batch", kind), qs, |b, qs| {
            b.iter(|| {
                let mut sum = 0u64;
                for chunk in qs.chunks(BATCH) {
                    let guard = table.pin();
                    table.lookup_batch(chunk, rtm::ViewId::UNICAST, &guard, |_, best| {
                        if let Some(best) = best {
                            sum += best.next_hops()[0].interface as u64;
                        }
                    });
                }
                black_box(sum)
            })
        });
        g.bench_with_input(BenchmarkId::new("rtm_handle", kind), qs, |b, qs| {
            b.iter(|| {
                let mut n = 0u64;
                for q in qs {
                    if let Ok(d) = htable.most_specific(q, rtm::ViewSet::UNICAST) {
                        n += d.prefix().len() as u64;
                    }
                }
                black_box(n)
            })
        });
        g.bench_with_input(BenchmarkId::new("rtm_handle_batch", kind), qs, |b, qs| {
            b.iter(|| {
                let mut n = 0u64;
                htable.most_specific_batch(qs, rtm::ViewSet::UNICAST, |_, r| {
                    if let Ok(d) = r {
                        n += d.prefix().len() as u64;
                    }
                });
                black_box(n)
            })
        });
    }
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let (name, v4, v6) = rtm_benches::full_table();
    eprintln!("table: {name}, {} IPv4 + {} IPv6 prefixes", v4.len(), v6.len());
    bench_family(c, "v4", AddressFamily::Ipv4, &v4);
    bench_family(c, "v6", AddressFamily::Ipv6, &v6);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = lookup
}
criterion_main!(benches);
