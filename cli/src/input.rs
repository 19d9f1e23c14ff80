//! Reading routing data: prefix lists (one CIDR per line) and MRT files (TABLE_DUMP_V2 RIB
//! dumps, BGP4MP update streams), plain or gzip-compressed.
//!
//! The format is detected from the content, not the name: after an optional gzip layer, a
//! file that starts with an MRT record header (a type RFC 6396 defines) is parsed as MRT
//! with `bgpkit-parser`, one whose first bytes are text (UTF-8, a byte-order mark
//! allowed) is a prefix list, and anything else is an error. Every failure is an
//! [`InputError`] naming the file and the problem (with the line for prefix lists, the
//! record and its byte offset for MRT).
//! MRT records are framed here and handed to the parser one by one (see `read_mrt`): a
//! file cut short is an error, a record the parser rejects or panics on is left out and
//! counted ([`Skipped`], which the command prints as a warning), and no header, however
//! wrong, makes the reader allocate more than the file holds.

use bgpkit_parser::models::{ElemType, EntryType};
use bgpkit_parser::ParserError;
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
        /// Records left out as malformed (the caller reports them).
        skipped: Skipped,
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

/// `f` without its gzip layer, if it has one.
fn ungzip<'a>(path: &Path, f: impl Read + 'a) -> Result<Box<dyn Read + 'a>, InputError> {
    let (magic, r) = sniff(f, 2).map_err(|e| err(path, format!("cannot read: {e}")))?;
    Ok(if magic == [0x1f, 0x8b] { Box::new(flate2::read::MultiGzDecoder::new(r)) } else { Box::new(r) })
}

/// The first `n` bytes of `r` (fewer only if the stream is shorter), and a reader that
/// yields the whole stream again, those bytes first.
///
/// A single `read` (or `fill_buf`) may return fewer bytes than asked for, and over a
/// chain of readers returns only the first one's: the format must be decided on bytes
/// actually read, not on whatever one call happened to return. (Until session 29 the
/// detection looked at one `fill_buf` of the file's first two bytes chained to the rest,
/// so a plain MRT file, whose first two bytes are a timestamp's and often printable, was
/// taken for a prefix list.)
fn sniff<R: Read>(mut r: R, n: usize) -> std::io::Result<(Vec<u8>, Replayed<R>)> {
    let mut head = Vec::with_capacity(n);
    r.by_ref().take(n as u64).read_to_end(&mut head)?;
    Ok((head.clone(), std::io::Cursor::new(head).chain(r)))
}

/// A stream whose first bytes were read ahead: those bytes, then the rest.
type Replayed<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// How many bytes decide the format (an MRT record header takes 12; a prefix list's are
/// all text).
const SNIFF: usize = 64;

/// Reads a prefix list or an MRT file (see the module docs).
pub fn read(path: &Path) -> Result<Input, InputError> {
    let f = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    read_from(path, f)
}

/// [`read`] of the contents `f`, whose errors name `path` (the fuzz target's entry).
pub fn read_from(path: &Path, f: impl Read) -> Result<Input, InputError> {
    let (head, r) =
        sniff(ungzip(path, f)?, SNIFF).map_err(|e| err(path, format!("cannot read (corrupt gzip?): {e}")))?;
    if head.is_empty() {
        return Err(err(path, "the file is empty"));
    }
    let r = BufReader::with_capacity(1 << 16, r);
    if is_mrt(&head) {
        read_mrt(path, r)
    } else if is_text(&head) {
        read_prefixes(path, r).map(Input::Prefixes)
    } else {
        Err(err(path, "neither a prefix list (not text) nor an MRT file (no MRT record header)"))
    }
}

/// Whether a stream starting with `head` starts with an MRT record header: its type
/// (bytes 4 and 5) is one RFC 6396 defines, all below 256, so byte 4 is 0, which no text
/// has.
fn is_mrt(head: &[u8]) -> bool {
    head.len() >= 12 && EntryType::try_from(u16::from_be_bytes([head[4], head[5]])).is_ok()
}

/// Whether `head` is the start of UTF-8 text without control characters other than
/// whitespace (a character cut at the end of `head` is fine).
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // Valid up to a last character the sniff cut short.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
        Err(_) => return false,
    };
    valid.chars().all(|c| !c.is_control() || c.is_ascii_whitespace())
}

fn read_prefixes(path: &Path, r: impl BufRead) -> Result<Vec<NetAddress>, InputError> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|e| err(path, format!("line {}: cannot read: {e}", i + 1)))?;
        // A byte-order mark (editors on Windows write one) is not part of the first line.
        let s = if i == 0 { line.trim_start_matches('\u{feff}') } else { &line }.trim();
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

/// Type codes of BGP4MP and BGP4MP_ET (RFC 6396, 4.4): an _ET record's length counts a
/// 4-byte microsecond field first.
const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;

/// Whether a record is a BGP4MP session state change (subtypes STATE_CHANGE and
/// STATE_CHANGE_AS4): it carries no routes, and collectors write FSM states beyond the
/// RFC's six (Quagga's 7 and 8) that the parser rejects.
fn is_state_change(entry_type: u16, subtype: u16) -> bool {
    matches!(entry_type, BGP4MP | BGP4MP_ET) && matches!(subtype, 0 | 5)
}

/// Reads MRT records one at a time. The records are framed here, not by the parser: a
/// record's body is read in full (and only as far as the file goes) before
/// `bgpkit-parser` sees it, so
/// * a header claiming gigabytes costs what the file holds, not the claim (the parser
///   allocates the claimed length up front: a 32-byte file made it take 4 GiB);
/// * a record the parser cannot decode is skipped by its length, and the next one is
///   read from the right place (the parser's own iterator went on reading mid-record
///   after an unknown record type);
/// * a file that ends inside a record is an error naming the record and its offset.
///
/// Records of types RFC 6396 does not define or the parser does not support are skipped
/// silently (the RFC lets a reader ignore them), and so are state changes it cannot
/// decode (no routes in them); records it rejects, or panics on, are counted in
/// [`Skipped`] with the first problem, so the caller can report them.
fn read_mrt(path: &Path, mut r: impl Read) -> Result<Input, InputError> {
    let mut peers: Vec<IpAddr> = Vec::new();
    let mut updates = Vec::new();
    let mut skipped = Skipped::default();
    let (mut first, mut last) = (None, 0.0);
    let mut elementor = bgpkit_parser::Elementor::new();
    let mut buf = Vec::new();
    let (mut index, mut offset) = (0u64, 0u64);
    loop {
        buf.clear();
        let io = |e: std::io::Error| err(path, format!("cannot read (corrupt gzip?) at byte {offset}: {e}"));
        let got = r.by_ref().take(12).read_to_end(&mut buf).map_err(io)?;
        if got == 0 {
            break;
        }
        index += 1;
        if got < 12 {
            return Err(err(
                path,
                format!("truncated: the file ends inside record {index}'s header (byte {offset})"),
            ));
        }
        let len = u64::from(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
        let (entry_type, subtype) =
            (u16::from_be_bytes([buf[4], buf[5]]), u16::from_be_bytes([buf[6], buf[7]]));
        let body = r.by_ref().take(len).read_to_end(&mut buf).map_err(io)? as u64;
        if body < len {
            return Err(err(
                path,
                format!("truncated: record {index} (byte {offset}) claims {len} bytes, the file ends after {body}"),
            ));
        }
        let at = offset;
        offset += 12 + len;
        if EntryType::try_from(entry_type).is_err() {
            continue; // A type RFC 6396 does not define: skipped by its length.
        }
        if entry_type == BGP4MP_ET && len < 4 {
            skipped.note(index, at, format!("a BGP4MP_ET record of {len} bytes has no microsecond field"));
            continue;
        }
        // A panic inside the parser is that record's problem alone.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bgpkit_parser::parse_mrt_record(&mut std::io::Cursor::new(&buf[..])).map(|rec| {
                let h = &rec.common_header;
                let t = f64::from(h.timestamp) + f64::from(h.microsecond_timestamp.unwrap_or(0)) / 1e6;
                (t, elementor.record_to_elems(rec))
            })
        }));
        let (t, elems) = match parsed {
            Ok(Ok(parsed)) => parsed,
            Ok(Err(e))
                if matches!(e.error, ParserError::Unsupported(_)) || is_state_change(entry_type, subtype) =>
            {
                continue
            }
            Ok(Err(e)) => {
                skipped.note(index, at, e.to_string());
                continue;
            }
            Err(_) => {
                skipped.note(index, at, "the MRT parser panicked on it".into());
                continue;
            }
        };
        first.get_or_insert(t);
        last = t;
        for e in elems {
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
    if updates.is_empty() {
        let why = match &skipped.first {
            Some(first) => format!("; {}, the first: {first}", skipped.describe()),
            None => String::new(),
        };
        let s = if index == 1 { "" } else { "s" };
        return Err(err(path, format!("an MRT file without BGP routes ({index} record{s}{why})")));
    }
    Ok(Input::Mrt { updates, peers, span: first.map_or(0.0, |f| last - f), skipped })
}

/// MRT records left out as malformed: how many, and the first one's problem.
#[derive(Clone, Debug, Default)]
pub struct Skipped {
    pub count: u64,
    /// `record N (byte B): problem`.
    pub first: Option<String>,
}

impl Skipped {
    /// "1 malformed record", "2 malformed records".
    pub fn describe(&self) -> String {
        format!("{} malformed record{}", self.count, if self.count == 1 { "" } else { "s" })
    }

    fn note(&mut self, index: u64, offset: u64, problem: String) {
        self.count += 1;
        self.first.get_or_insert_with(|| format!("record {index} (byte {offset}): {problem}"));
    }
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
        // A byte-order mark, CRLF line ends and a comment in UTF-8 beyond ASCII.
        let p = tmp("bom", "\u{feff}# Präfixe, über ‘alles’\r\n10.0.0.0/8\r\n".as_bytes());
        assert_eq!(read(&p).unwrap().into_prefixes(), vec!["10.0.0.0/8".parse().unwrap()]);
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
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("neither a prefix list (not text) nor an MRT file"), "{e}");
        let p = tmp("badgz", &[0x1f, 0x8b, 1, 2, 3]);
        assert!(read(&p).is_err());
    }

    /// One MRT record: the common header (timestamp 2015-10-23, whose first two bytes,
    /// `V(`, are printable) and `body`.
    fn record(entry_type: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
        let mut r = 1_445_558_400u32.to_be_bytes().to_vec();
        r.extend(entry_type.to_be_bytes());
        r.extend(subtype.to_be_bytes());
        r.extend((body.len() as u32).to_be_bytes());
        r.extend(body);
        r
    }

    /// `len` and the prefix's significant bytes, as NLRI and RIB entries encode it.
    fn nlri(a: [u8; 4], len: u8) -> Vec<u8> {
        let mut v = vec![len];
        v.extend(&a[..usize::from(len).div_ceil(8)]);
        v
    }

    /// Path attributes: ORIGIN IGP, AS_PATH (one 4-byte AS), NEXT_HOP.
    fn attrs(next_hop: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1];
        a.extend(64_500u32.to_be_bytes());
        a.extend([0x40, 3, 4]);
        a.extend(next_hop);
        a
    }

    /// A BGP4MP_MESSAGE_AS4 record: an UPDATE from peer 198.51.100.1 (AS 64500)
    /// withdrawing `withdrawn` and announcing `announced` via 198.51.100.1.
    fn bgp4mp_update(withdrawn: &[([u8; 4], u8)], announced: &[([u8; 4], u8)]) -> Vec<u8> {
        let w: Vec<u8> = withdrawn.iter().flat_map(|&(a, l)| nlri(a, l)).collect();
        let n: Vec<u8> = announced.iter().flat_map(|&(a, l)| nlri(a, l)).collect();
        let a = if announced.is_empty() { Vec::new() } else { attrs([198, 51, 100, 1]) };
        let mut msg = vec![0xff; 16];
        msg.extend(((19 + 2 + w.len() + 2 + a.len() + n.len()) as u16).to_be_bytes());
        msg.push(2);
        msg.extend((w.len() as u16).to_be_bytes());
        msg.extend(&w);
        msg.extend((a.len() as u16).to_be_bytes());
        msg.extend(&a);
        msg.extend(&n);
        let mut body = Vec::new();
        body.extend(64_500u32.to_be_bytes());
        body.extend(64_501u32.to_be_bytes());
        body.extend(0u16.to_be_bytes());
        body.extend(1u16.to_be_bytes());
        body.extend([198, 51, 100, 1, 198, 51, 100, 2]);
        body.extend(msg);
        record(16, 4, &body)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, data).unwrap();
        gz.finish().unwrap()
    }

    fn mrt(p: &Path) -> (Vec<Update>, Vec<IpAddr>, Skipped) {
        match read(p) {
            Ok(Input::Mrt { updates, peers, skipped, .. }) => (updates, peers, skipped),
            Ok(Input::Prefixes(_)) => panic!("{}: read as a prefix list", p.display()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn update_stream_plain_and_gzip() {
        let mut data = bgp4mp_update(&[], &[([10, 1, 2, 0], 24), ([192, 0, 2, 0], 24)]);
        data.extend(bgp4mp_update(&[([10, 1, 2, 0], 24)], &[]));
        // A plain MRT file starts with its first record's timestamp, here printable bytes:
        // until session 29 such a file was taken for a prefix list.
        for (name, bytes) in [("plain.mrt", data.clone()), ("mrt.gz", gzip(&data))] {
            let (ups, peers, skipped) = mrt(&tmp(name, &bytes));
            let got: Vec<(String, bool)> = ups.iter().map(|u| (u.prefix.to_string(), u.announce)).collect();
            let want = [("10.1.2.0/24", true), ("192.0.2.0/24", true), ("10.1.2.0/24", false)];
            assert_eq!(got, want.map(|(p, a)| (p.to_string(), a)), "{name}");
            assert_eq!(peers, vec!["198.51.100.1".parse::<IpAddr>().unwrap()], "{name}");
            assert_eq!(ups[0].next_hop, Some("198.51.100.1".parse().unwrap()), "{name}");
            assert_eq!(skipped.count, 0, "{name}");
        }
    }

    #[test]
    fn rib_dump() {
        // PEER_INDEX_TABLE: collector id, empty view name, one IPv4 peer with a 4-byte AS.
        let mut peers = vec![192, 0, 2, 255, 0, 0, 0, 1, 0x02, 192, 0, 2, 9, 203, 0, 113, 9];
        peers.extend(64_509u32.to_be_bytes());
        let mut data = record(13, 1, &peers);
        // RIB_IPV4_UNICAST: sequence 0, 203.0.113.0/24, one entry from peer 0.
        let mut rib = vec![0, 0, 0, 0];
        rib.extend(nlri([203, 0, 113, 0], 24));
        rib.extend([0, 1, 0, 0, 0x56, 0x28, 0, 0]);
        let a = attrs([203, 0, 113, 9]);
        rib.extend((a.len() as u16).to_be_bytes());
        rib.extend(a);
        data.extend(record(13, 2, &rib));
        let (ups, peers, _) = mrt(&tmp("rib.mrt", &data));
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].prefix.to_string(), "203.0.113.0/24");
        assert!(ups[0].announce);
        assert_eq!(peers, vec!["203.0.113.9".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn malformed_records_are_skipped_by_length_and_counted() {
        let good = |b| bgp4mp_update(&[], &[([10, b, 0, 0], 16)]);
        let mut bad = good(2);
        // The announced prefix's length byte (the record's last three bytes are the NLRI).
        let at = bad.len() - 3;
        bad[at] = 99;
        let mut data = good(1);
        data.extend(&bad);
        // A record of a type no parser knows, with a body that looks like records.
        data.extend(record(999, 0, &good(7)));
        data.extend(record(17, 4, &[1, 2]));
        data.extend(good(3));
        let (ups, _, skipped) = mrt(&tmp("bad-record.mrt", &data));
        let got: Vec<String> = ups.iter().map(|u| u.prefix.to_string()).collect();
        assert_eq!(got, ["10.1.0.0/16", "10.3.0.0/16"]);
        assert_eq!(skipped.count, 2);
        let first = skipped.first.unwrap();
        assert!(first.starts_with(&format!("record 2 (byte {})", good(1).len())), "{first}");
    }

    #[test]
    fn truncated_or_lying_mrt_is_an_error() {
        let whole = bgp4mp_update(&[], &[([10, 1, 0, 0], 16)]);
        let p = tmp("cut-body.mrt", &whole[..whole.len() - 1]);
        let e = read(&p).err().unwrap().to_string();
        assert!(e.contains("truncated: record 1 (byte 0) claims"), "{e}");
        let mut two = whole.clone();
        two.extend(&whole[..5]);
        let e = read(&tmp("cut-head.mrt", &two)).err().unwrap().to_string();
        assert!(e.contains(&format!("ends inside record 2's header (byte {})", whole.len())), "{e}");
        // A header claiming 4 GiB in a 32-byte file: an error, without reserving the claim.
        let mut lie = whole[..8].to_vec();
        lie.extend(u32::MAX.to_be_bytes());
        lie.extend([0; 20]);
        let e = read(&tmp("lie.mrt", &lie)).err().unwrap().to_string();
        assert!(e.contains("claims 4294967295 bytes, the file ends after 20"), "{e}");
        let e = read(&tmp("only-bad.mrt", &record(16, 4, &[0; 30]))).err().unwrap().to_string();
        assert!(
            e.contains("an MRT file without BGP routes (1 record; 1 malformed record, the first: record 1"),
            "{e}"
        );
    }

    /// Damaged records never take the others with them: bytes of a stream of update
    /// records are overwritten at random (a deterministic sequence), and whatever the
    /// parser makes of a damaged record (an error, or a panic: the parser panics on some),
    /// `read` returns; it fails only if a record's header was hit (its length may be
    /// wrong), and every undamaged record before the first damaged header gives its
    /// updates, in order. (Until session 29 one panic lost the rest of the file.)
    #[test]
    fn damaged_records_leave_the_others_whole() {
        let recs: Vec<Vec<u8>> = (0..24u8)
            .map(|i| match i % 3 {
                0 => bgp4mp_update(&[], &[([10, i, 0, 0], 16), ([172, 16, i, 0], 24)]),
                1 => bgp4mp_update(&[([10, i - 1, 0, 0], 16)], &[([192, 0, i, 0], 24)]),
                _ => bgp4mp_update(&[([172, 16, i - 2, 0], 24)], &[]),
            })
            .collect();
        let key = |u: &Update| (u.prefix, u.announce);
        let each: Vec<Vec<(NetAddress, bool)>> =
            recs.iter().map(|r| mrt(&tmp("one.mrt", r)).0.iter().map(key).collect()).collect();
        let whole = recs.concat();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut xorshift = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut damaged, mut erred) = (0, 0);
        for round in 0..1500 {
            let mut data = whole.clone();
            // Per record: whether a byte of it, and of its header, was overwritten.
            let (mut touched, mut hit) = (vec![false; recs.len()], vec![false; recs.len()]);
            for _ in 0..1 + round % 4 {
                let r = xorshift();
                let at = (r % data.len() as u64) as usize;
                data[at] = (r >> 32) as u8;
                // The record holding byte `at`, and whether `at` is in its header.
                let (mut start, mut i) = (0, 0);
                while start + recs[i].len() <= at {
                    start += recs[i].len();
                    i += 1;
                }
                touched[i] = true;
                hit[i] |= at - start < 12;
            }
            let p = tmp("damaged.mrt", &data);
            let got = std::panic::catch_unwind(|| read(&p)).expect("a panic escaped `read`");
            let Ok(Input::Mrt { updates, skipped, .. }) = got else {
                // A header's length was changed: the stream cannot be framed past it.
                assert!(hit.iter().any(|&h| h), "round {round}: an error with no header damaged");
                erred += 1;
                continue;
            };
            damaged += skipped.count;
            let got: Vec<_> = updates.iter().map(key).collect();
            let mut rest = got.iter();
            // Past a damaged header the framing is whatever its length says.
            let framed = hit.iter().position(|&h| h).unwrap_or(recs.len());
            for (i, want) in each.iter().enumerate().take(framed).filter(|&(i, _)| !touched[i]) {
                for w in want {
                    assert!(rest.any(|g| g == w), "round {round}: record {i}'s update {w:?} is missing");
                }
            }
        }
        // The rounds did damage records and headers (the test exercised both paths).
        assert!(damaged > 100 && erred > 10, "{damaged} damaged records, {erred} errors");
    }

    /// The fuzz target's property (`fuzz/fuzz_targets/input.rs`) over its corpus (seeds
    /// of every format, and what libFuzzer kept): `read_from` returns on every file.
    #[test]
    fn fuzz_corpus_reads_without_a_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/input");
        let (mut files, mut read_ok) = (0, 0);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            let got = std::panic::catch_unwind(|| read_from(Path::new("corpus"), &data[..]));
            let got = got.unwrap_or_else(|_| panic!("{}: a panic escaped read_from", p.display()));
            files += 1;
            read_ok += got.is_ok() as usize;
        }
        // The seeds: prefix lists, update streams and a RIB dump, plain and gzip.
        assert!(files >= 7 && read_ok >= 5, "{files} files, {read_ok} read");
    }

    #[test]
    fn real_stream_plain_as_gzip_when_present() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/ris-rrc15-updates.20100227.1600.bgp4mp.mrt.gz");
        let Ok(gz) = std::fs::read(&p) else {
            eprintln!("skipped: {} is absent", p.display());
            return;
        };
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
        let (a, b) = (mrt(&p).0, mrt(&tmp("rrc15.mrt", &plain)).0);
        assert!(a.len() > 1000);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.prefix == y.prefix && x.announce == y.announce));
    }

    #[test]
    fn real_mrt_stream_when_present() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/ris-rrc15-updates.20100227.1600.bgp4mp.mrt.gz");
        if !p.exists() {
            eprintln!("skipped: {} is absent", p.display());
            return;
        }
        let Input::Mrt { updates, peers, span, skipped } = read(&p).unwrap() else { panic!("an MRT file") };
        assert!(updates.len() > 1000 && !peers.is_empty());
        // Five minutes of updates (the file's name says 16:00; records to about 16:05).
        assert!((250.0..=330.0).contains(&span), "span {span} s");
        let ts = |u: &Update| u.timestamp;
        assert!(updates.iter().all(|u| (ts(&updates[0])..=ts(&updates[0]) + span).contains(&ts(u))));
        assert!(updates.iter().any(|u| !u.announce));
        assert_eq!(skipped.count, 0, "{:?}", skipped.first);
    }
}
