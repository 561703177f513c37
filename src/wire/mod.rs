//! Wire formats: zero-copy views over packet bytes and checked parse/emit
//! representations.
//!
//! Every protocol has a view `Xxx<T: AsRef<[u8]>>` whose `new_checked` validates
//! lengths once, after which no accessor panics, and a `Repr` with `parse`,
//! `emit` and `buffer_len`. Untrusted input always goes through `new_checked`.

pub mod addr;
pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod seq;
pub mod tcp;

pub use addr::{AsFlowKey, FamilySocketAddr, FlowKey, IpFamily, Ipv6Range};
pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, EthernetTail};
pub use frame::{
    Parsed, TcpFrame, TcpSegmentIn, emit_frame, parse_frame, parse_tcp_frame, parse_tcp_frame_in,
    parse_tcp_frame_into, parse_tcp6_frame, parse_tcp6_frame_in,
};
pub use icmp::{IcmpPacket, IcmpRepr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr, NdFlags};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use seq::SeqNumber;
pub use tcp::{AckHeader, SynHeader, TcpControl, TcpOption, TcpPacket, TcpRepr, TcpTimestamp};

pub use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a packet could not be parsed. Each variant maps to a drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the header (or the length a header claims) does.
    #[error("truncated packet")]
    Truncated,
    /// A field holds a value the format does not allow (bad IHL, data offset, lengths).
    #[error("malformed packet")]
    Malformed,
    /// The checksum does not match.
    #[error("bad checksum")]
    Checksum,
    /// Well formed, but not something we handle (other ARP hardware, IP version, ...).
    #[error("unsupported packet")]
    Unsupported,
    /// An IPv4 fragment: recognised and counted, not reassembled.
    #[error("IPv4 fragment")]
    Fragment,
    /// An IPv6 fragment (RFC 8200 4.5): recognised and counted, not reassembled.
    #[error("IPv6 fragment")]
    Ipv6Fragment,
}

pub type Result<T> = core::result::Result<T, Error>;

/// Whether `parse` verifies checksums (off when the NIC already did, per packet flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    #[default]
    Verify,
    Ignore,
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
