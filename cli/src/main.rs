//! `rtm`: load routing tables into the rtm engine, query them, and measure lookups while a
//! writer churns. With no arguments it runs `rtm bench` on a generated full table.

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use rtm::{gen, AddressFamily, EntityRef, NetAddress, RouteParams};
use rtm_cli::input::{self, Input};
use rtm_cli::run::{self, print_readers, Loaded};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "rtm", version, about = "Lock-free routing table manager: load, query, replay, benchmark")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load a prefix list (one CIDR per line, plain or gz) or an MRT file; print counts and timing.
    Load { file: PathBuf },
    /// Load FILE, then print the most specific, exact and less specific matches with their routes.
    Query {
        file: PathBuf,
        /// Addresses or prefixes to look up.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Load a table, then replay an MRT update stream as fast as possible with readers running.
    Replay {
        #[arg(long)]
        table: PathBuf,
        #[arg(long)]
        updates: PathBuf,
        /// Reader threads (default: one per core but one, for the writer).
        #[arg(long, value_parser = readers_range())]
        readers: Option<usize>,
    },
    /// The default demonstration, with options.
    Bench(BenchArgs),
}

#[derive(Args, Clone)]
struct BenchArgs {
    /// IPv4 prefixes to generate (the readers look them up: at least one).
    #[arg(long, default_value_t = 901_899, value_parser = count_range(1))]
    v4: usize,
    /// IPv6 prefixes to generate.
    #[arg(long, default_value_t = 160_147, value_parser = count_range(0))]
    v6: usize,
    /// Reader threads (default: one per core but one, for the writer).
    #[arg(long, value_parser = readers_range())]
    readers: Option<usize>,
    /// Seconds per measured phase (0.1 to 3600).
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    seconds: f64,
    /// Seed of the generated table and queries.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Re-announcements per `insert_routes` call in the churn (as the NLRI of one BGP
    /// UPDATE); 1 applies them route by route with `insert_route`.
    #[arg(long, default_value_t = 64, value_parser = batch_range())]
    writer_batch: usize,
}

/// The most reader threads a run starts.
const MAX_READERS: u64 = 256;

fn readers_range() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..=MAX_READERS)
}

/// Prefix counts the generator takes (`rtm::gen::MAX_GENERATED`).
fn count_range(min: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(min..=gen::MAX_GENERATED as u64)
}

fn batch_range() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..=rtm::MAX_ROUTES_IN_BATCH as u64)
}

/// A phase's length: a finite number of seconds from 0.1 to 3600.
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.1..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not between 0.1 and 3600 seconds"))
    }
}

impl Default for BenchArgs {
    fn default() -> Self {
        Self { v4: 901_899, v6: 160_147, readers: None, seconds: 3.0, seed: 1, writer_batch: 64 }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd.unwrap_or(Cmd::Bench(BenchArgs::default())) {
        Cmd::Load { file } => load(&file),
        Cmd::Query { file, targets } => query(&file, &targets),
        Cmd::Replay { table, updates, readers } => {
            replay(&table, &updates, readers.unwrap_or_else(default_readers))
        }
        Cmd::Bench(a) => bench(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(file: &Path) -> Result<Input, input::InputError> {
    let t0 = Instant::now();
    let input = input::read(file)?;
    match &input {
        Input::Prefixes(p) => {
            println!("read {} prefixes from {} in {:.2?}", p.len(), file.display(), t0.elapsed())
        }
        Input::Mrt { updates, peers, span, skipped } => {
            println!(
                "read {} BGP elements from {} peers ({span:.1} s of MRT records) in {} in {:.2?}",
                updates.len(),
                peers.len(),
                file.display(),
                t0.elapsed()
            );
            if let Some(first) = &skipped.first {
                eprintln!("warning: {}: {} left out; the first: {first}", file.display(), skipped.describe());
            }
        }
    }
    Ok(input)
}

fn summary_load(l: &Loaded) {
    let (t4, t6) = (l.rtm.table(AddressFamily::Ipv4), l.rtm.table(AddressFamily::Ipv6));
    println!(
        "loaded {} routes on {} IPv4 + {} IPv6 destinations in {:.2?} ({:.2} M routes/s, 1 writer)",
        l.routes,
        t4.len(),
        t6.len(),
        l.load_time,
        l.routes as f64 / l.load_time.as_secs_f64() / 1e6
    );
    if let Some(b) = l.rss_growth {
        let rib = b.saturating_sub(l.harness_bytes);
        println!(
            "memory: {:.0} MiB resident growth ({:.1} MiB of it the demo's own list of the iBGP \
             routes, to announce them again), {} bytes per route in the table",
            b as f64 / 1048576.0,
            l.harness_bytes as f64 / 1048576.0,
            rib / l.routes.max(1) as u64
        );
        let m = [t4.memory(), t6.memory()];
        let (trie, dests) =
            (m[0].trie_bytes + m[1].trie_bytes, m[0].destination_bytes + m[1].destination_bytes);
        let rest = rib.saturating_sub((trie + dests) as u64);
        let per_route = |b: u64| b / l.routes.max(1) as u64;
        println!(
            "  of which trie nodes {:.1} MiB ({} B/route), destinations {:.1} MiB ({} B/route: \
             groups of lone routes, {} destination objects), the rest {:.1} MiB ({} \
             B/route: versions, route blocks and snapshots of destination objects)",
            trie as f64 / 1048576.0,
            per_route(trie as u64),
            dests as f64 / 1048576.0,
            per_route(dests as u64),
            m[0].destination_objects + m[1].destination_objects,
            rest as f64 / 1048576.0,
            per_route(rest)
        );
    }
}

fn load(file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let input = read(file)?;
    let l = run::load(&input.into_prefixes());
    summary_load(&l);
    Ok(())
}

fn query(file: &Path, targets: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let input = read(file)?;
    let l = run::load(&input.into_prefixes());
    for t in targets {
        let a: NetAddress = if t.contains('/') {
            t.parse().map_err(|e| format!("{t:?} is not a prefix: {e}"))?
        } else {
            let ip: std::net::IpAddr = t.parse().map_err(|e| format!("{t:?} is not an address: {e}"))?;
            NetAddress::host(ip)
        };
        let table = l.rtm.table(a.family());
        println!("{t}:");
        let show = |what: &str, d: Result<rtm::DestRef, rtm::Error>| match d {
            Ok(d) => {
                println!("  {what:<14} {}", d.prefix());
                for (r, info) in d.route_infos() {
                    println!(
                        "    owner {:?} pref {} metric {} next hops {:?}",
                        r.owner(),
                        info.preference(),
                        info.metric(),
                        info.next_hops()
                    );
                }
                Some(d)
            }
            Err(e) => {
                println!("  {what:<14} none ({e})");
                None
            }
        };
        let ms = show("most specific", table.most_specific(&a, l.rtm.profile().views_supported));
        if t.contains('/') {
            show("exact", table.get(&a, l.rtm.profile().views_supported));
        }
        if let Some(d) = ms {
            show("less specific", table.less_specific(&d, l.rtm.profile().views_supported));
        }
    }
    Ok(())
}

/// One reader per core but one, which the writer gets (at least one reader).
fn default_readers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_sub(1).max(1)
}

fn bench(a: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let readers = a.readers.unwrap_or_else(default_readers);
    let t0 = Instant::now();
    let over =
        |what: &'static str, n: usize| move |e| format!("--{what} {n}: {e} (at most {})", gen::MAX_GENERATED);
    let mut prefixes = gen::ipv4_table(a.v4, a.seed).map_err(over("v4", a.v4))?;
    prefixes.extend(gen::ipv6_table(a.v6, a.seed).map_err(over("v6", a.v6))?);
    println!("generated {} IPv4 + {} IPv6 prefixes (seed {}) in {:.2?}", a.v4, a.v6, a.seed, t0.elapsed());
    let l = run::load(&prefixes);
    summary_load(&l);
    let dur = Duration::from_secs_f64(a.seconds);
    let queries = run::queries(&prefixes, AddressFamily::Ipv4, 1 << 20, a.seed + 1)?;
    println!("IPv4 in-table lookups ({} s per phase):", dur.as_secs_f64());
    let solo = run::readers_with::<fn(&AtomicBool) -> u64>(
        &l.rtm,
        AddressFamily::Ipv4,
        &queries,
        readers,
        dur,
        None,
        "readers alone",
    );
    print_readers("no writer", readers, &solo);
    // The host's share of a co-runner's cost: the same readers beside a loop that only
    // computes (no memory, no rtm) on the writer's core. On a 2-vCPU VM it alone took
    // 3-11 % of the reader's rate (BENCHMARKS.md, session 20).
    let spun = run::readers_with(
        &l.rtm,
        AddressFamily::Ipv4,
        &queries,
        readers,
        dur,
        Some(run::spin),
        "readers + busy loop",
    );
    print_readers("with a busy loop", readers, &spun);
    let v4: Vec<NetAddress> =
        prefixes.iter().filter(|p| p.family() == AddressFamily::Ipv4).copied().collect();
    let busy = run::readers_with(
        &l.rtm,
        AddressFamily::Ipv4,
        &queries,
        readers,
        dur,
        Some(|stop: &AtomicBool| churn(&l, &v4, a.seed, a.writer_batch, stop)),
        "readers + writer",
    );
    print_readers("with 1 writer", readers, &busy);
    println!(
        "  readers keep {:.0} % of their solo throughput ({:.0} % beside the busy loop); writer {:.2} M route updates/s ({})",
        busy.lookups_per_sec_per_reader / solo.lookups_per_sec_per_reader * 100.0,
        spun.lookups_per_sec_per_reader / solo.lookups_per_sec_per_reader * 100.0,
        busy.writer_updates as f64 / busy.elapsed.as_secs_f64() / 1e6,
        if a.writer_batch > 1 {
            format!("re-announcements {} per insert_routes call", a.writer_batch)
        } else {
            "route by route".to_string()
        }
    );
    let (t4, t6) = (l.rtm.table(AddressFamily::Ipv4), l.rtm.table(AddressFamily::Ipv6));
    println!("end: {} + {} destinations, {} routes", t4.len(), t6.len(), t4.route_count() + t6.route_count());
    Ok(())
}

/// The bench writer: re-announcements with changed metric or preference (95 %; applied
/// `batch` at a time with `insert_routes`, or one by one when `batch` is 1), withdrawals and
/// re-announcements of iBGP routes, and once a peer-down: every iBGP route withdrawn, then
/// all of them announced again. Returns the route updates made.
fn churn(l: &Loaded, v4: &[NetAddress], seed: u64, batch: usize, stop: &AtomicBool) -> u64 {
    let mut r = gen::SplitMix64::new(seed ^ 0x5eed);
    let ebgp = &l.ebgp[0];
    let ibgp = &l.ibgp[0];
    let v4_routes: Vec<&(NetAddress, RouteParams)> =
        l.ibgp_routes.iter().filter(|(p, _)| p.family() == AddressFamily::Ipv4).collect();
    let mut withdrawn: Vec<usize> = Vec::new();
    let mut pending: Vec<(NetAddress, RouteParams)> = Vec::with_capacity(batch);
    let mut n = 0u64;
    let mut peer_down_done = false;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            let x = r.below(100);
            if x < 95 {
                let i = r.below(v4.len() as u64) as usize;
                let p = &v4[i];
                let params = RouteParams::new(20 + r.below(3) as u32, r.below(10) as u32)
                    .next_hop(gen::peer_next_hop(p.family(), (i % 32) as u8));
                if batch == 1 {
                    let _ = ebgp.insert_route(p, params);
                } else {
                    pending.push((*p, params));
                    if pending.len() == batch {
                        let _ = ebgp.insert_routes(&pending);
                        pending.clear();
                    }
                }
            } else if x < 98 || withdrawn.is_empty() {
                let i = r.below(v4_routes.len() as u64) as usize;
                if ibgp.withdraw_route(&v4_routes[i].0, None).is_ok() {
                    withdrawn.push(i);
                }
            } else {
                let i = withdrawn.swap_remove(r.below(withdrawn.len() as u64) as usize);
                let _ = readd(ibgp, v4_routes[i]);
            }
            n += 1;
        }
        if !peer_down_done && n > 200_000 {
            // Peer down: the iBGP session's routes all go, then come back.
            peer_down_done = true;
            // Withdrawn as a speaker would, in batches (one UPDATE's worth of NLRI each).
            let all: Vec<(NetAddress, Option<rtm::NextHop>)> =
                v4_routes.iter().map(|(p, _)| (*p, None)).collect();
            for c in all.chunks(1024) {
                let _ = ibgp.withdraw_routes(c);
            }
            n += all.len() as u64;
            for e in &v4_routes {
                let _ = readd(ibgp, e);
                n += 1;
            }
            withdrawn.clear();
        }
    }
    if !pending.is_empty() {
        let _ = ebgp.insert_routes(&pending);
    }
    n
}

fn readd(e: &EntityRef, (p, params): &(NetAddress, RouteParams)) -> rtm::Result<()> {
    e.insert_route(p, params.clone()).map(|_| ())
}

fn replay(table: &Path, updates: &Path, readers: usize) -> Result<(), Box<dyn std::error::Error>> {
    let base = read(table)?;
    let stream = read(updates)?;
    let Input::Mrt { updates: ups, peers, span, .. } = stream else {
        return Err(format!("{}: an update stream must be an MRT file (BGP4MP)", updates.display()).into());
    };
    let prefixes = base.into_prefixes();
    if prefixes.is_empty() {
        return Err(format!("{}: no announced prefixes to load", table.display()).into());
    }
    // The readers look up the table's IPv4 addresses, or its IPv6 ones if it has no IPv4.
    let fam = if prefixes.iter().any(|p| p.family() == AddressFamily::Ipv4) {
        AddressFamily::Ipv4
    } else {
        AddressFamily::Ipv6
    };
    let queries =
        run::queries(&prefixes, fam, 1 << 20, 7).map_err(|e| format!("{}: {e}", table.display()))?;
    let l = run::load(&prefixes);
    summary_load(&l);
    let solo = run::readers_with::<fn(&AtomicBool) -> u64>(
        &l.rtm,
        fam,
        &queries,
        readers,
        Duration::from_secs(2),
        None,
        "readers alone",
    );
    print_readers("no writer", readers, &solo);
    let writer = |stop: &AtomicBool| rtm_cli::replay::Replayer::new(&l.rtm).apply(&ups, Some(stop));
    let busy = run::readers_with(
        &l.rtm,
        fam,
        &queries,
        readers,
        Duration::from_secs(3600),
        Some(writer),
        "replaying",
    );
    print_readers("during replay", readers, &busy);
    let secs = busy.elapsed.as_secs_f64();
    println!(
        "replayed {} updates from {} peers in {:.2?} ({:.2} M updates/s); the stream spans {:.0} s: {:.0}x real time",
        busy.writer_updates,
        peers.len(),
        busy.elapsed,
        busy.writer_updates as f64 / secs / 1e6,
        span,
        span / secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench_args(args: &[&str]) -> Result<BenchArgs, String> {
        let argv = ["rtm", "bench"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.cmd {
            Some(Cmd::Bench(a)) => Ok(a),
            _ => Err("not the bench command".into()),
        }
    }

    #[test]
    fn out_of_range_arguments_are_refused_when_parsed() {
        let a = bench_args(&["--v4", "1", "--v6", "0", "--readers", "256", "--seconds", "0.1"]).unwrap();
        assert_eq!((a.v4, a.v6, a.readers, a.seconds), (1, 0, Some(256), 0.1));
        let max = gen::MAX_GENERATED.to_string();
        assert_eq!(bench_args(&["--v6", &max, "--writer-batch", "1"]).unwrap().v6, gen::MAX_GENERATED);
        let over = (gen::MAX_GENERATED + 1).to_string();
        let batch_over = (rtm::MAX_ROUTES_IN_BATCH + 1).to_string();
        for bad in [
            ["--v4", "0"],
            ["--v4", &over],
            ["--v6", &over],
            ["--v6", "x"],
            ["--readers", "0"],
            ["--readers", "257"],
            ["--seconds", "0"],
            ["--seconds", "inf"],
            ["--seconds", "NaN"],
            ["--seconds", "1e30"],
            ["--writer-batch", "0"],
            ["--writer-batch", &batch_over],
        ] {
            let e = bench_args(&bad).err().unwrap_or_else(|| panic!("{bad:?} was taken"));
            assert!(e.contains(&format!("invalid value '{}' for '{}", bad[1], bad[0])), "{e}");
        }
        let replay = ["rtm", "replay", "--table", "t", "--updates", "u", "--readers", "0"];
        assert!(Cli::try_parse_from(replay).is_err());
    }

    #[test]
    fn queries_need_a_prefix_of_the_family() {
        let v6: Vec<NetAddress> = vec!["2001:db8::/32".parse().unwrap()];
        let e = run::queries(&v6, AddressFamily::Ipv4, 8, 1).err().unwrap();
        assert!(e.contains("no Ipv4 prefixes"), "{e}");
        let q = run::queries(&v6, AddressFamily::Ipv6, 8, 1).unwrap();
        assert!(q.len() == 8 && q.iter().all(|a| v6[0].contains(a)));
    }
}
