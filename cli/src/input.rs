//! Reading routing data: prefix lists (one CIDR per line) and MRT files (TABLE_DUMP_V2 RIB
//! dumps, BGP4MP update streams), plain or gzip-compressed.
//!
//! The format is detected from the content, not the name: after an optional gzip layer, a
//! file whose first bytes are printable text is a prefix list, anything else is parsed as
//! MRT with `bgpkit-parser`. Every failure is an [`InputError`] naming the file and the
//! problem (with the line for prefix lists); a panic inside the MRT parser on malformed
//! data is caught and reported the same way.

use bgpkit_parser::models::ElemType;
use rtm::NetAddress;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What went wrong reading a file.
#[derive(Debug)]
pub struct InputError {
    pub file: PathBuf,
    pub problem: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.problem)
    }
}

impl std::error::Error for InputError {}

fn err(file: &Path, problem: impl Into<String>) -> InputError {
    InputError { file: file.to_path_buf(), problem: problem.into() }
}

/// One BGP element from an MRT file: an announcement or a withdrawal by one peer.
#[derive(Clone, Debug)]
pub struct Update {
    /// Index of the peer (BGP session) in order of first appearance.
    pub peer: u32,
    pub prefix: NetAddress,
    pub announce: bool,
    pub next_hop: Option<IpAddr>,
    pub local_pref: u32,
    pub med: u32,
    /// Seconds since the epoch.
    pub timestamp: f64,
}

/// The contents of an input file.
pub enum Input {
    Prefixes(Vec<NetAddress>),
    /// `span`: seconds from the first MRT record to the last (the time the stream covers,
    /// session state changes included).
    Mrt {
        updates: Vec<Update>,
        peers: Vec<IpAddr>,
        span: f64,
    },
}

impl Input {
    /// Every prefix in the file (MRT: each announced prefix once).
    pub fn into_prefixes(self) -> Vec<NetAddress> {
        match self {
            Input::Prefixes(p) => p,
            Input::Mrt { updates, .. } => {
                let mut v: Vec<NetAddress> =
                    updates.iter().filter(|u| u.announce).map(|u| u.prefix).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }
}

/// Opens `path`, removing a gzip layer if there is one.
fn open(path: &Path) -> Result<Box<dyn Read>, InputError> {
    let mut f = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let r = head.chain(f);
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// Reads a prefix list or an MRT file (see the module docs).
pub fn read(path: &Path) -> Result<Input, InputError> {
    let mut r = BufReader::with_capacity(1 << 16, open(path)?);
    let head = r.fill_buf().map_err(|e| err(path, format!("cannot read (corrupt gzip?): {e}")))?;
    if head.is_empty() {
        return Err(err(path, "the file is empty"));
    }
    let text = head.iter().take(64).all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if text {
        read_prefixes(path, r).map(Input::Prefixes)
    } else {
        read_mrt(path, r)
    }
}

fn read_prefixes(path: &Path, r: impl BufRead) -> Result<Vec<NetAddress>, InputError> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|e| err(path, format!("line {}: cannot read: {e}", i + 1)))?;
        let s = line.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let p: NetAddress =
            s.parse().map_err(|e| err(path, format!("line {}: {s:?} is not a prefix: {e}", i + 1)))?;
        out.push(p);
    }
    if out.is_empty() {
        return Err(err(path, "no prefixes in the file"));
    }
    Ok(out)
}

fn read_mrt(path: &Path, r: impl Read) -> Result<Input, InputError> {
    let parse = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut peers: Vec<IpAddr> = Vec::new();
        let mut updates = Vec::new();
        let (mut first, mut last) = (None, 0.0);
        let mut elementor = bgpkit_parser::Elementor::new();
        let records = bgpkit_parser::BgpkitParser::from_reader(r).disable_warnings().into_record_iter();
        for rec in records {
            let h = &rec.common_header;
            let t = f64::from(h.timestamp) + f64::from(h.microsecond_timestamp.unwrap_or(0)) / 1e6;
            first.get_or_insert(t);
            last = t;
            for e in elementor.record_to_elems(rec) {
                let peer = match peers.iter().position(|p| *p == e.peer_ip) {
                    Some(i) => i as u32,
                    None => {
                        peers.push(e.peer_ip);
                        (peers.len() - 1) as u32
                    }
                };
                let net = e.prefix.prefix;
                let Ok(prefix) = NetAddress::from_ip(net.addr(), net.prefix_len()) else { continue };
                updates.push(Update {
                    peer,
                    prefix,
                    announce: e.elem_type == ElemType::ANNOUNCE,
                    next_hop: e.next_hop,
                    local_pref: e.local_pref.unwrap_or(100),
                    med: e.med.unwrap_or(0),
                    timestamp: e.timestamp,
                });
            }
        }
        (updates, peers, first.map_or(0.0, |f| last - f))
    }));
    let (updates, peers, span) =
        parse.map_err(|_| err(path, "malformed MRT data (the MRT parser gave up)"))?;
    if updates.is_empty() {
        return Err(err(path, "neither a prefix list nor an MRT file with BGP routes"));
    }
    Ok(Input::Mrt { updates, peers, span })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, data: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("rtm-cli-{}-{name}", std::process::id()));
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn prefix_list_plain_and_gzip() {
        let text = b"# comment\n10.0.0.0/8\n\n2001:db8::/32\n192.0.2.0/24\n";
        let p = tmp("plain", text);
        assert_eq!(read(&p).unwrap().into_prefixes().len(), 3);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text).unwrap();
        let p = tmp("gz", &gz.finish().unwrap());
        assert_eq!(read(&p).unwrap().into_prefixes().len(), 3);
    }

    #[test]
    fn bad_input_names_file_and_problem() {
        let e = read(Path::new("/nonexistent/rtm-input")).err().unwrap();
        assert!(e.to_string().contains("/nonexistent/rtm-input: cannot open"), "{e}");
        let p = tmp("badline", b"10.0.0.0/8\n10.0.0.0/33\n");
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("line 2") && e.contains("10.0.0.0/33"), "{e}");
        let p = tmp("empty", b"");
        assert!(read(&p).err().unwrap().to_string().contains("empty"));
        let p = tmp("binary", &[0u8, 1, 2, 3, 0xff, 0xfe, 7, 9, 200, 100, 0, 0, 0, 0, 5]);
        assert!(read(&p).is_err());
        let p = tmp("badgz", &[0x1f, 0x8b, 1, 2, 3]);
        assert!(read(&p).is_err());
    }

    #[test]
    fn real_mrt_stream_when_present() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/ris-rrc15-updates.20100227.1600.bgp4mp.mrt.gz");
        if !p.exists() {
            eprintln!("skipped: {} is absent", p.display());
            return;
        }
        let Input::Mrt { updates, peers, span } = read(&p).unwrap() else { panic!("an MRT file") };
        assert!(updates.len() > 1000 && !peers.is_empty());
        // Five minutes of updates (the file's name says 16:00; records to about 16:05).
        assert!((250.0..=330.0).contains(&span), "span {span} s");
        let ts = |u: &Update| u.timestamp;
        assert!(updates.iter().all(|u| (ts(&updates[0])..=ts(&updates[0]) + span).contains(&ts(u))));
        assert!(updates.iter().any(|u| !u.announce));
    }
}
