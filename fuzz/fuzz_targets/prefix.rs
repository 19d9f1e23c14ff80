//! Address parsing and construction never panic, and what they accept is canonical: the
//! text of a parsed prefix parses back to the same prefix, host bits are clear, and the
//! `ipnet` round trip is the identity. Run: `cargo +nightly fuzz run prefix`.
#![no_main]

use rtm::{AddressFamily, NetAddress};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = s.parse::<NetAddress>() {
            check(p);
        }
    }
    if data.len() >= 18 {
        let fam = if data[0] & 1 == 0 { AddressFamily::Ipv4 } else { AddressFamily::Ipv6 };
        let bytes: [u8; 16] = data[2..18].try_into().unwrap();
        match NetAddress::new(fam, &bytes, data[1]) {
            Ok(p) => check(p),
            Err(_) => assert!(data[1] > fam.max_len(), "only an over-long prefix is refused"),
        }
    }
});

fn check(p: NetAddress) {
    let again: NetAddress = p.to_string().parse().expect("Display output parses");
    assert_eq!(again, p);
    assert_eq!(p.truncate(p.len()), p, "host bits are clear");
    let net = ipnet::IpNet::from(p);
    assert_eq!(NetAddress::from(net), p);
}
