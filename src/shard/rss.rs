//! Receive-side scaling in software: the Toeplitz hash NICs use to pick a
//! receive queue, so a load generator can choose source ports whose replies
//! land on its own queue (as mTCP and Seastar do), and a symmetric key under
//! which both directions of a flow hash alike.
//!
//! Both families: the hash input is source address ‖ destination address ‖
//! source port ‖ destination port, 12 bytes for IPv4 and 36 for IPv6, as
//! NICs take a TCP segment without IPv6 extension headers.
//!
//! Not yet wired to a port: no device on these machines has RSS (memif, ring,
//! af_packet, tap), so devices without it use `flow_owner` and software
//! steering; this is the piece a multi-queue NIC needs.

use crate::wire::{FamilySocketAddr, IpFamily};
use std::net::IpAddr;

/// The key of the RSS verification suite (Intel 82599 datasheet 7.1.2.8.3,
/// Microsoft's RSS documentation): for checking the hash.
pub const VERIFICATION_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// A key repeating 0x6d5a: its bits repeat every 16, so swapping source and
/// destination (address with address, port with port) leaves the hash alone.
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// The Toeplitz hash of `input` under `key` (input up to 36 bytes).
pub fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    debug_assert!(input.len() <= 36);
    let mut hash = 0u32;
    // The 32-bit window of the key starting at bit i, for each input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (next, &byte) in (4usize..).zip(input) {
        for bit in (0..8).rev() {
            if byte >> bit & 1 == 1 {
                hash ^= window;
            }
            let incoming = key.get(next).map_or(0, |k| (k >> bit) & 1);
            window = window << 1 | u32::from(incoming);
        }
    }
    hash
}

/// Writes `ip`'s bytes, in network order, at the start of `out`; returns
/// how many (4 or 16). Monomorphised, the match on the family folds away.
#[inline]
fn put_addr<A: IpFamily>(ip: A, out: &mut [u8]) -> usize {
    match ip.to_ip() {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            16
        }
    }
}

/// The RSS hash of a TCP segment from `src` to `dst`, either family (source
/// address, destination address, source port, destination port, as NICs
/// take them: 12 bytes of input for IPv4, 36 for IPv6).
pub fn hash<S: FamilySocketAddr>(key: &[u8; 40], src: S, dst: S) -> u32 {
    let mut input = [0u8; 36];
    let n = put_addr(src.host(), &mut input);
    let n = n + put_addr(dst.host(), &mut input[n..]);
    input[n..n + 2].copy_from_slice(&src.port().to_be_bytes());
    input[n + 2..n + 4].copy_from_slice(&dst.port().to_be_bytes());
    toeplitz(key, &input[..n + 4])
}

/// The redirection table: hash → queue by the hash's low bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reta {
    pub entries: Vec<u16>,
}

impl Reta {
    /// Queues 0..queues round-robin over `size` entries (DPDK's default).
    pub fn round_robin(size: usize, queues: u16) -> Reta {
        Reta {
            entries: (0..size)
                .map(|i| (i % usize::from(queues.max(1))) as u16)
                .collect(),
        }
    }

    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[hash as usize % self.entries.len().max(1)]
    }
}

/// The first source port in `ports` at or after `from` (wrapping) whose
/// replies — from `remote` to `local_ip:port` — the NIC puts on `queue`
/// (either family).
pub fn port_for_queue<A: IpFamily>(
    key: &[u8; 40],
    reta: &Reta,
    local_ip: A,
    remote: A::SocketAddr,
    queue: u16,
    ports: (u16, u16),
    from: u16,
) -> Option<u16> {
    let span = u32::from(ports.1 - ports.0) + 1;
    let start = u32::from(from.clamp(ports.0, ports.1) - ports.0);
    (0..span)
        .map(|i| ports.0 + ((start + i) % span) as u16)
        .find(|&p| {
            let local = A::SocketAddr::from_parts(local_ip, p);
            reta.queue(hash(key, remote, local)) == queue
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    fn sa6(s: &str) -> SocketAddrV6 {
        s.parse().unwrap()
    }

    /// The RSS verification suite, IPv4 with TCP ports (source → destination).
    #[test]
    fn verification_suite() {
        let cases = [
            ("66.9.149.187:2794", "161.142.100.80:1766", 0x51cc_c178u32),
            ("199.92.111.2:14230", "65.69.140.83:4739", 0xc626_b0ea),
            ("24.19.198.95:12898", "12.22.207.184:38024", 0x5c2b_394a),
            ("38.27.205.30:48228", "209.142.163.6:2217", 0xafc7_327f),
        ];
        for (src, dst, want) in cases {
            assert_eq!(
                hash(&VERIFICATION_KEY, sa(src), sa(dst)),
                want,
                "{src} -> {dst}"
            );
        }
        // Addresses only.
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&[66, 9, 149, 187]);
        input[4..].copy_from_slice(&[161, 142, 100, 80]);
        assert_eq!(toeplitz(&VERIFICATION_KEY, &input), 0x323e_8fc2);
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike() {
        let (a, b) = (sa("10.1.2.3:40000"), sa("10.0.0.2:80"));
        assert_eq!(hash(&SYMMETRIC_KEY, a, b), hash(&SYMMETRIC_KEY, b, a));
        assert_ne!(hash(&VERIFICATION_KEY, a, b), hash(&VERIFICATION_KEY, b, a));
    }

    #[test]
    fn ports_chosen_for_a_queue_land_on_it() {
        let reta = Reta::round_robin(128, 4);
        let local = Ipv4Addr::new(10, 1, 0, 7);
        let remote = sa("10.0.0.2:80");
        for queue in 0..4 {
            let mut from = 1024;
            for _ in 0..50 {
                let p = port_for_queue(
                    &SYMMETRIC_KEY,
                    &reta,
                    local,
                    remote,
                    queue,
                    (1024, 65535),
                    from,
                )
                .expect("a port");
                let h = hash(&SYMMETRIC_KEY, remote, SocketAddrV4::new(local, p));
                assert_eq!(reta.queue(h), queue);
                // And the client's own SYN hashes the same way (symmetric key).
                let h2 = hash(&SYMMETRIC_KEY, SocketAddrV4::new(local, p), remote);
                assert_eq!(reta.queue(h2), queue);
                from = p + 1;
            }
        }
    }

    /// The IPv6 rows of the RSS verification suite: Microsoft, "Verifying
    /// the RSS Hash Calculation" (Windows driver documentation, network
    /// drivers, receive side scaling;
    /// https://learn.microsoft.com/windows-hardware/drivers/network/verifying-the-rss-hash-calculation),
    /// under VERIFICATION_KEY: source → destination, the hash over the
    /// addresses only, and over addresses and TCP ports.
    #[test]
    fn verification_suite_ipv6() {
        let cases = [
            (
                "[3ffe:2501:200:1fff::7]:2794",
                "[3ffe:2501:200:3::1]:1766",
                0x2cc1_8cd5u32,
                0x4020_7d3du32,
            ),
            (
                "[3ffe:501:8::260:97ff:fe40:efab]:14230",
                "[ff02::1]:4739",
                0x0f0c_461c,
                0xdde5_1bbf,
            ),
            (
                "[3ffe:1900:4545:3:200:f8ff:fe21:67cf]:44251",
                "[fe80::200:f8ff:fe21:67cf]:38024",
                0x4b61_e985,
                0x02d1_feef,
            ),
        ];
        for (src, dst, addrs_only, with_tcp) in cases {
            let (s, d) = (sa6(src), sa6(dst));
            assert_eq!(hash(&VERIFICATION_KEY, s, d), with_tcp, "{src} -> {dst}");
            let mut input = [0u8; 32];
            input[..16].copy_from_slice(&s.ip().octets());
            input[16..].copy_from_slice(&d.ip().octets());
            assert_eq!(
                toeplitz(&VERIFICATION_KEY, &input),
                addrs_only,
                "{src} -> {dst}, addresses only"
            );
        }
    }

    #[test]
    fn symmetric_key_hashes_both_directions_alike_ipv6() {
        let (a, b) = (sa6("[2001:db8:1::7]:40000"), sa6("[2001:db8::1]:80"));
        assert_eq!(hash(&SYMMETRIC_KEY, a, b), hash(&SYMMETRIC_KEY, b, a));
        assert_ne!(hash(&VERIFICATION_KEY, a, b), hash(&VERIFICATION_KEY, b, a));
        // Over many tuples, not one chosen pair.
        for i in 0..500u16 {
            let a = SocketAddrV6::new(
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, i, i.rotate_left(7)),
                1024 + i * 13,
                0,
                0,
            );
            let b = SocketAddrV6::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1), 443, 0, 0);
            assert_eq!(hash(&SYMMETRIC_KEY, a, b), hash(&SYMMETRIC_KEY, b, a));
        }
    }

    #[test]
    fn ports_chosen_for_a_queue_land_on_it_ipv6() {
        let reta = Reta::round_robin(128, 4);
        let local: Ipv6Addr = "2001:db8:1::7".parse().unwrap();
        let remote = sa6("[2001:db8::1]:80");
        for queue in 0..4 {
            let mut from = 1024;
            for _ in 0..50 {
                let p = port_for_queue(
                    &SYMMETRIC_KEY,
                    &reta,
                    local,
                    remote,
                    queue,
                    (1024, 65535),
                    from,
                )
                .expect("a port");
                let mine = SocketAddrV6::new(local, p, 0, 0);
                assert_eq!(reta.queue(hash(&SYMMETRIC_KEY, remote, mine)), queue);
                assert_eq!(reta.queue(hash(&SYMMETRIC_KEY, mine, remote)), queue);
                from = p + 1;
            }
        }
    }
}
