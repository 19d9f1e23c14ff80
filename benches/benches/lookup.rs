//! Fast-path longest-prefix match: rtm against prefix-trie on the same table and the same
//! addresses, in one process with the same build flags. Run with
//! `cargo bench -p rtm-benches --bench lookup`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use rtm::{AddressFamily, NetAddress};
use std::hint::black_box;

const N: usize = 1 << 16;
const BATCH: usize = 1024;

fn bench_family(c: &mut Criterion, name: &str, fam: AddressFamily, prefixes: &[NetAddress]) {
    let rtm = rtm_benches::load_rtm(prefixes);
    let table = rtm.table(fam);
    let (inside, random) = rtm_benches::queries(prefixes, N, 42);
    let mut g = c.benchmark_group(format!("lpm_{name}"));
    g.throughput(Throughput::Elements(N as u64));

    macro_rules! peer {
        ($map:expr, $conv:expr) => {{
            let map = $map;
            for (kind, qs) in [("in_table", &inside), ("random", &random)] {
                let qs: Vec<_> = qs.iter().map($conv).collect();
                g.bench_with_input(BenchmarkId::new("prefix_trie", kind), &qs, |b, qs| {
                    b.iter(|| {
                        let mut sum = 0u64;
                        for q in qs {
                            if let Some((_, v)) = map.get_lpm(q) {
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
        AddressFamily::Ipv4 => {
            let mut m: PrefixMap<Ipv4Net, u32> = PrefixMap::new();
            for (i, p) in prefixes.iter().enumerate() {
                let IpNet::V4(n) = IpNet::from(*p) else { unreachable!() };
                m.insert(n, (i % 64) as u32 + 1);
            }
            peer!(m, |a: &NetAddress| match IpNet::from(*a) {
                IpNet::V4(n) => n,
                IpNet::V6(_) => unreachable!(),
            });
        }
        AddressFamily::Ipv6 => {
            let mut m: PrefixMap<Ipv6Net, u32> = PrefixMap::new();
            for (i, p) in prefixes.iter().enumerate() {
                let IpNet::V6(n) = IpNet::from(*p) else { unreachable!() };
                m.insert(n, (i % 64) as u32 + 1);
            }
            peer!(m, |a: &NetAddress| match IpNet::from(*a) {
                IpNet::V6(n) => n,
                IpNet::V4(_) => unreachable!(),
            });
        }
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
                    if let Ok(d) = table.most_specific(q, rtm::ViewSet::UNICAST) {
                        n += d.prefix().len() as u64;
                    }
                }
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
