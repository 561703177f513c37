//! The Internet checksum (RFC 1071), the TCP/UDP pseudo-header (IPv4, and
//! IPv6 per RFC 8200 8.1), and incremental update (RFC 1624).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to an accumulator (no folding).
/// An odd trailing byte is padded with zero, as RFC 1071 says.
/// (The big-endian view of `sum_native`, kept for the tests that check it.)
#[cfg(test)]
fn accumulate(acc: u64, data: &[u8]) -> u64 {
    acc + u64::from(fold(sum_native(0, data)).swap_bytes())
}

/// The ones'-complement sum of `data` onto `sum`, eight bytes per add in
/// little-endian order with end-around carry: the same sum as of big-endian
/// 16-bit words, with its two bytes swapped (RFC 1071 2(B): the sum does not
/// depend on byte order), to be folded and swapped once at the end.
///
/// 32-byte blocks first (`sum_blocks`), then the words left, then the last
/// 1 to 7 bytes as one word: the buffer's last 8 bytes shifted down past
/// those already added, which leaves each byte at the place it has in its
/// own word (a buffer shorter than 8 bytes is read byte by byte).
#[inline(always)]
fn sum_native(sum: u64, data: &[u8]) -> u64 {
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let (blocks, mut rest) = data.split_at(data.len() & !31);
    let mut sum = sum_blocks(sum, blocks);
    let mut add = |w: u64| {
        let (s, carry) = sum.overflowing_add(w);
        // No overflow here: with a carry, s < w <= u64::MAX.
        sum = s + u64::from(carry);
    };
    if let Some((b, more)) = rest.split_first_chunk::<16>() {
        add(word(&b[0..8]));
        add(word(&b[8..16]));
        rest = more;
    }
    if let Some((b, more)) = rest.split_first_chunk::<8>() {
        add(word(b));
        rest = more;
    }
    let tail = rest;
    let r = tail.len();
    if r > 0 {
        if let Some(last) = data.last_chunk::<8>() {
            add(u64::from_le_bytes(*last) >> (8 * (8 - r)));
        } else {
            add(tail
                .iter()
                .enumerate()
                .fold(0, |w, (i, &b)| w | u64::from(b) << (8 * i)));
        }
    }
    sum
}

/// `sum_native` of 32-byte blocks (`blocks.len()` a multiple of 32): on
/// x86-64 one carry chain through the whole run (`adc` of each word, the
/// loop counted with `dec`, which leaves the carry alone; Linux's x86
/// `csum_partial` sums with such chains too): 7 instructions a block where
/// adding word by word with its carry takes 12. A documented hot spot:
/// every segment is summed once when sent and once when received.
#[inline]
fn sum_blocks(sum: u64, blocks: &[u8]) -> u64 {
    let n = blocks.len() / 32;
    if n == 0 {
        return sum;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut sum = sum;
        // SAFETY: reads `n` * 32 bytes from `blocks`, which holds that many
        // (n = len / 32); writes only the named registers and the flags; no
        // stack, no other memory.
        unsafe {
            std::arch::asm!(
                "test {n}, {n}",
                "2:",
                "adc {s}, qword ptr [{p}]",
                "adc {s}, qword ptr [{p} + 8]",
                "adc {s}, qword ptr [{p} + 16]",
                "adc {s}, qword ptr [{p} + 24]",
                "lea {p}, [{p} + 32]",
                "dec {n}",
                "jnz 2b",
                "adc {s}, 0",
                s = inout(reg) sum,
                p = inout(reg) blocks.as_ptr() => _,
                n = inout(reg) n => _,
                options(pure, readonly, nostack),
            );
        }
        sum
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        blocks_portable(sum, blocks)
    }
}

/// `sum_native` in one carry chain to the end (the receive path's sum,
/// over each segment it verifies): the 32-byte blocks as `sum_blocks`
/// adds them, then 16 and 8 bytes as the length's bits say, then the last
/// 1 to 7 bytes as the buffer's last word shifted down past those already
/// added (a buffer shorter than 8 bytes goes to `sum_native`). On x86-64
/// one asm block: no slicing between the parts, no spill. A documented hot
/// spot, as `sum_blocks`.
#[inline(always)]
fn sum_whole(sum: u64, data: &[u8]) -> u64 {
    if data.len() < 8 {
        return sum_native(sum, data);
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut sum = sum;
        // SAFETY: reads only `data`: `len` / 32 blocks of 32 bytes from its
        // start, then 16 and 8 bytes where the length has those bits (each
        // within `len`), then with `len` % 8 = r > 0 the 8 bytes ending at
        // its end (`len` >= 8, checked above, so they start within it);
        // writes only the named registers and the flags; no stack, no
        // other memory.
        unsafe {
            std::arch::asm!(
                "mov {n}, {len}",
                "shr {n}, 5",
                "jz 3f",
                // (Clears the carry for the chain.)
                "test {n}, {n}",
                "2:",
                "adc {s}, qword ptr [{p}]",
                "adc {s}, qword ptr [{p} + 8]",
                "adc {s}, qword ptr [{p} + 16]",
                "adc {s}, qword ptr [{p} + 24]",
                "lea {p}, [{p} + 32]",
                "dec {n}",
                "jnz 2b",
                "adc {s}, 0",
                "3:",
                "test {len:e}, 16",
                "jz 4f",
                "add {s}, qword ptr [{p}]",
                "adc {s}, qword ptr [{p} + 8]",
                "adc {s}, 0",
                "add {p}, 16",
                "4:",
                "test {len:e}, 8",
                "jz 5f",
                "add {s}, qword ptr [{p}]",
                "adc {s}, 0",
                "add {p}, 8",
                "5:",
                "and {len:e}, 7",
                "jz 6f",
                // The last word, its first 8 - r bytes (added already)
                // shifted out: a shift by 64 - 8r, which is -8r mod 64.
                "mov {n}, qword ptr [{p} + {len} - 8]",
                "lea ecx, [{len:e} * 8]",
                "neg ecx",
                "shr {n}, cl",
                "add {s}, {n}",
                "adc {s}, 0",
                "6:",
                s = inout(reg) sum,
                p = inout(reg) data.as_ptr() => _,
                len = inout(reg) data.len() => _,
                n = out(reg) _,
                out("rcx") _,
                options(pure, readonly, nostack),
            );
        }
        sum
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        sum_native(sum, data)
    }
}

/// `sum_blocks` word by word (other targets; and the reference the tests
/// hold the carry chain to).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn blocks_portable(mut sum: u64, blocks: &[u8]) -> u64 {
    for w in blocks.chunks_exact(8) {
        let (s, carry) = sum.overflowing_add(u64::from_le_bytes([
            w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
        ]));
        sum = s + u64::from(carry);
    }
    sum
}

/// Folds an accumulator into 16 bits (end-around carry): 0 only for 0.
///
/// Each step adds the two halves with their carry wrapped around in one add:
/// in `x + x.rotate_right(32)` the high half is `hi + lo` plus the carry out
/// of the low half, which is the same `lo + hi` (and that sum cannot carry
/// again: a carry leaves at most 2^32 - 2).
#[inline]
pub fn fold(acc: u64) -> u16 {
    let s = (acc.wrapping_add(acc.rotate_right(32)) >> 32) as u32;
    (s.wrapping_add(s.rotate_right(16)) >> 16) as u16
}

/// Whether an accumulator folds to all ones (`fold(acc) == 0xffff`), the
/// mark of a right checksum. Folding keeps a value modulo 0xffff (which
/// divides 2^32 - 1 and 2^64 - 1, the moduli of end-around carry) and gives
/// 0 only for 0, so this is: `acc` is a multiple of 0xffff other than 0.
/// Tested as division by an odd number can be (Granlund and Montgomery):
/// times the inverse of 0xffff modulo 2^64, the multiples are 0 to
/// `u64::MAX / 0xffff` (each its quotient), all else above; less one, 0 goes
/// above too. A multiply, a subtract and a compare, where the fold takes
/// eight instructions.
#[inline(always)]
pub fn folds_to_ones(acc: u64) -> bool {
    const INVERSE: u64 = 0xfffe_fffe_fffe_ffff; // 0xffff * INVERSE = 1 (mod 2^64)
    const QUOTIENTS: u64 = u64::MAX / 0xffff;
    acc.wrapping_mul(INVERSE).wrapping_sub(1) < QUOTIENTS
}

/// The checksum field value for `data` (complement of the folded sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum_native(0, data)).swap_bytes()
}

/// Whether an IPv4 header without options (20 bytes) has a right checksum
/// (RFC 791 3.1: its ones' complement sum, the checksum field included, is
/// all ones): `checksum(h) == 0`, as five 32-bit words, which the receive
/// path checks on every frame.
#[inline(always)]
pub fn ipv4_header_ok(h: &[u8; 20]) -> bool {
    let w = |i: usize| u64::from(u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    folds_to_ones(w(0) + w(4) + w(8) + w(12) + w(16))
}

/// Checksum over pseudo-header plus segment bytes (with the checksum field as it is).
#[inline]
pub fn transport_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    // The pseudo-header in the same little-endian order as the segment's sum.
    let pseudo = u64::from(u32::from_le_bytes(src.octets()))
        + u64::from(u32::from_le_bytes(dst.octets()))
        + u64::from(u16::from(protocol).swap_bytes())
        + u64::from(len.swap_bytes());
    !fold(sum_native(pseudo, segment)).swap_bytes()
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1: source, destination,
/// 32-bit upper-layer length, three zero bytes, next header), unfolded and in
/// the byte-swapped order `sum_native` works in.
#[inline]
pub fn pseudo_sum_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: u8, len: u32) -> u64 {
    let addrs = sum_native(sum_native(0, &src.octets()), &dst.octets());
    let (len, proto) = (
        u32::from_le_bytes(len.to_be_bytes()),
        u32::from(protocol) << 24,
    );
    // Two u32s onto a sum of 64-bit words: add with end-around carry.
    let (s, carry) = addrs.overflowing_add(u64::from(len) + u64::from(proto));
    s + u64::from(carry)
}

/// Checksum over the IPv6 pseudo-header plus the upper-layer packet (TCP,
/// ICMPv6: RFC 8200 8.1, RFC 4443 2.3), with the checksum field as it is.
/// `dst` is the final destination (sluice refuses routing headers with
/// segments left, so it is the header's).
pub fn transport_checksum_v6(src: &Ipv6Addr, dst: &Ipv6Addr, protocol: u8, segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    !fold(sum_native(pseudo_sum_v6(src, dst, protocol, len), segment)).swap_bytes()
}

/// The folded ones'-complement sum of an address's bytes, in the order
/// `sum_native` works in: what a TCP pseudo-header takes of it (RFC 9293
/// 3.1, RFC 8200 8.1). Two of them add with [`add_sums`].
#[inline]
pub fn address_sum(octets: &[u8]) -> u16 {
    fold(sum_native(0, octets))
}

/// Two folded sums added with end-around carry.
#[inline]
pub fn add_sums(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The pseudo-header's sum of a TCP segment of `len` bytes whose addresses
/// sum to `addr_sum`: the rest (protocol 6, length) sums the same for IPv4
/// and IPv6 (a 32-bit length under 64 KiB, the next header in the low byte).
#[inline(always)]
fn tcp_pseudo(addr_sum: u16, len: usize) -> u64 {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    u64::from(addr_sum) + u64::from(6u16.swap_bytes()) + u64::from(len.swap_bytes())
}

/// The TCP checksum of `segment` (checksum field as it is) behind a
/// pseudo-header whose addresses sum to `addr_sum` (`address_sum` of both,
/// added), either family.
#[inline]
pub fn tcp_checksum(addr_sum: u16, segment: &[u8]) -> u16 {
    !fold(sum_native(tcp_pseudo(addr_sum, segment.len()), segment)).swap_bytes()
}

/// The folded sum of `data` in the order `sum_native` works in: a
/// payload's part of its TCP checksum (`tcp_checksum_parts`), for data that
/// starts at an even offset in its segment. Summed once, it serves each
/// segment that carries those bytes.
#[inline]
pub fn partial_sum(data: &[u8]) -> u16 {
    fold(sum_native(0, data))
}

/// The TCP checksum of a `len`-byte segment, summed from its parts instead
/// of read back from the bytes: `header`, the header's 32-bit words (the
/// checksum field as zero) each as `u32::from_le_bytes` of its bytes, added
/// unfolded; `payload`, the `partial_sum` of what follows the header (a
/// header is a multiple of four bytes, so the payload starts at an even
/// offset); the pseudo-header from `addr_sum` as in `tcp_checksum`. The
/// same value as `tcp_checksum` of the written segment.
#[inline(always)]
pub fn tcp_checksum_parts(addr_sum: u16, len: usize, header: u64, payload: u16) -> u16 {
    !fold(tcp_pseudo(addr_sum, len) + header + u64::from(payload)).swap_bytes()
}

/// Whether a received TCP segment's checksum is right (`tcp_checksum` is 0).
#[inline(always)]
pub fn tcp_checksum_ok(addr_sum: u16, segment: &[u8]) -> bool {
    folds_to_ones(sum_native(tcp_pseudo(addr_sum, segment.len()), segment))
}

/// A TCP pseudo-header's sum less the length, unfolded (what the receive
/// path hands `tcp_pseudo_ok`): IPv4's from its two addresses.
#[inline(always)]
pub fn tcp_pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr) -> u64 {
    u64::from(u32::from_le_bytes(src.octets()))
        + u64::from(u32::from_le_bytes(dst.octets()))
        + u64::from(6u16.swap_bytes())
}

/// `tcp_pseudo_v4` for either family, from the addresses' sum.
#[inline(always)]
pub fn tcp_pseudo_of_sum(addr_sum: u16) -> u64 {
    u64::from(addr_sum) + u64::from(6u16.swap_bytes())
}

/// Whether a received TCP segment's checksum is right, behind a
/// pseudo-header that sums (less the length) to `pseudo`.
#[inline(always)]
pub fn tcp_pseudo_ok(pseudo: u64, segment: &[u8]) -> bool {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    folds_to_ones(sum_whole(pseudo + u64::from(len.swap_bytes()), segment))
}

/// Whether a received segment's checksum is right: `transport_checksum`
/// is 0, i.e. the folded sum is all ones. Always inlined, into the one
/// receive path that checks, where the addresses are at hand in registers.
#[inline(always)]
pub fn transport_checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> bool {
    let len = u16::try_from(segment.len()).unwrap_or(u16::MAX);
    let pseudo = u64::from(u32::from_le_bytes(src.octets()))
        + u64::from(u32::from_le_bytes(dst.octets()))
        + u64::from(u16::from(protocol).swap_bytes())
        + u64::from(len.swap_bytes());
    folds_to_ones(sum_native(pseudo, segment))
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changed from `old` to `new`:
/// HC' = ~(~HC + ~m + m').
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!csum) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// RFC 1624 update for a 32-bit field (two words), e.g. an address or a sequence number.
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// The plain RFC 1071 loop, one 16-bit word at a time, folding as it goes:
/// the reference `checksum` is tested and benchmarked against.
pub fn reference_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic IPv4 header whose checksum is 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn ipv4_header_ok_is_checksum_zero() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(ipv4_header_ok(&h));
        h[11] ^= 1;
        assert!(!ipv4_header_ok(&h));
        // All zeros sums to 0 (checksum 0xffff), all ones to all ones; and
        // pseudo-random headers, each with its checksum right then wrong.
        assert!(!ipv4_header_ok(&[0; 20]));
        assert!(ipv4_header_ok(&[0xff; 20]));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            for b in h.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            assert_eq!(ipv4_header_ok(&h), checksum(&h) == 0);
            h[10..12].fill(0);
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            assert!(ipv4_header_ok(&h), "{h:02x?}");
            h[(x % 20) as usize] ^= 1 << (x % 7);
            assert_eq!(ipv4_header_ok(&h), checksum(&h) == 0, "{h:02x?}");
        }
    }

    #[test]
    fn v6_pseudo_header_carries_at_the_edges() {
        // All-ones addresses push the 64-bit sum to its top: the length and
        // next header must still carry around.
        let ones = Ipv6Addr::from(u128::MAX);
        for (seg, proto) in [(&[0xffu8; 41][..], 0xff), (&[][..], 58), (&[0u8; 1][..], 6)] {
            let mut bytes = [ones.octets(), ones.octets()].concat();
            bytes.extend_from_slice(&(seg.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, proto]);
            bytes.extend_from_slice(seg);
            assert_eq!(
                transport_checksum_v6(&ones, &ones, proto, seg),
                reference_checksum(&bytes)
            );
        }
    }

    /// Folding 16 bits at a time until nothing carries: what `fold` must equal.
    fn fold_slowly(mut acc: u64) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn the_inverse_is_0xffffs() {
        assert_eq!(0xffffu64.wrapping_mul(0xfffe_fffe_fffe_ffff), 1);
        assert!(!folds_to_ones(0));
        assert!(folds_to_ones(0xffff) && folds_to_ones(u64::MAX));
        assert!(folds_to_ones(u64::MAX / 0xffff * 0xffff));
        assert!(!folds_to_ones(u64::MAX - 1) && !folds_to_ones(0xfffe));
    }

    #[test]
    fn fold_edges() {
        for x in [
            0,
            1,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            0xffff_ffff_ffff_ffff,
            0xffff_0000_ffff_0000,
            0x8000_0000_8000_0000,
            0x0000_ffff_ffff_0001,
        ] {
            assert_eq!(fold(x), fold_slowly(x), "{x:#x}");
            assert_eq!(folds_to_ones(x), fold_slowly(x) == 0xffff, "{x:#x}");
        }
    }

    #[test]
    fn carry_chain_wraps_every_carry_around() {
        // All ones: every add carries, the last one too.
        let ones = [0xffu8; 96];
        for start in [0, 1, u64::MAX - 1, u64::MAX] {
            assert_eq!(
                fold(sum_blocks(start, &ones)),
                fold(blocks_portable(start, &ones))
            );
        }
    }

    #[test]
    fn the_whole_chain_is_the_native_sum_at_every_length_and_offset() {
        // All ones carries at every add; the counting bytes place each byte.
        let ones = [0xffu8; 200];
        let counting: Vec<u8> = (0..=255u8).cycle().skip(7).take(200).collect();
        for data in [&ones[..], &counting[..]] {
            for start in 0..8 {
                for len in 0..data.len() - start {
                    let d = &data[start..start + len];
                    for acc in [0, 1, 0x1234_5678, u64::MAX - 1, u64::MAX] {
                        assert_eq!(
                            fold(sum_whole(acc, d)),
                            fold(sum_native(acc, d)),
                            "start {start} len {len} acc {acc:#x}"
                        );
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_whole_chain_is_the_native_sum(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            start in proptest::num::u64::ANY,
        ) {
            proptest::prop_assert_eq!(fold(sum_whole(start, &data)), fold(sum_native(start, &data)));
        }

        #[test]
        fn carry_chain_is_word_by_word(
            mut data in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            start in proptest::num::u64::ANY,
        ) {
            data.truncate(data.len() & !31);
            proptest::prop_assert_eq!(
                fold(sum_blocks(start, &data)),
                fold(blocks_portable(start, &data))
            );
        }

        #[test]
        fn fold_is_end_around_carry(x in proptest::num::u64::ANY) {
            proptest::prop_assert_eq!(fold(x), fold_slowly(x));
        }

        #[test]
        fn matches_reference(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            proptest::prop_assert_eq!(checksum(&data), reference_checksum(&data));
        }

        #[test]
        fn transport_checksum_is_rfc_9293s_over_the_pseudo_header(
            seg in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            src in proptest::num::u32::ANY, dst in proptest::num::u32::ANY,
        ) {
            // RFC 9293 3.1: source, destination, zero, protocol, TCP length, then the segment.
            let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&[0, 6]);
            bytes.extend_from_slice(&(seg.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&seg);
            proptest::prop_assert_eq!(transport_checksum(s, d, 6, &seg), reference_checksum(&bytes));
            proptest::prop_assert_eq!(
                transport_checksum_ok(s, d, 6, &seg),
                reference_checksum(&bytes) == 0
            );
        }

        #[test]
        fn transport_checksum_v6_is_rfc_8200s_over_the_pseudo_header(
            seg in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            src in proptest::num::u128::ANY, dst in proptest::num::u128::ANY,
            proto in proptest::num::u8::ANY,
        ) {
            // RFC 8200 8.1: source, destination, upper-layer length (32 bits),
            // three zero bytes, next header, then the upper-layer packet.
            let (s, d) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
            bytes.extend_from_slice(&(seg.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, proto]);
            bytes.extend_from_slice(&seg);
            proptest::prop_assert_eq!(transport_checksum_v6(&s, &d, proto, &seg), reference_checksum(&bytes));
        }

        #[test]
        fn accumulates_in_even_pieces(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            cut in 0usize..100, start in proptest::num::u32::ANY,
        ) {
            // As the pseudo-header is summed: pieces of even length, then the rest.
            let cut = (cut * 2).min(data.len() & !1);
            let whole = fold(accumulate(u64::from(start), &data));
            let pieces = fold(accumulate(accumulate(u64::from(start), &data[..cut]), &data[cut..]));
            proptest::prop_assert_eq!(whole, pieces);
            // And the same as the word-at-a-time definition.
            let reference = !reference_checksum(&data);
            let ours = fold(accumulate(0, &data));
            proptest::prop_assert!(ours == reference || (ours == 0xffff && reference == 0) || (ours == 0 && reference == 0xffff));
        }

        #[test]
        fn partial_sum_is_the_checksums_sum(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            proptest::prop_assert_eq!(!partial_sum(&data).swap_bytes(), checksum(&data));
        }

        #[test]
        fn folds_to_ones_is_the_fold_all_ones(acc in proptest::num::u64::ANY, k in 0u64..=(u64::MAX / 0xffff)) {
            proptest::prop_assert_eq!(folds_to_ones(acc), fold(acc) == 0xffff);
            // Multiples of 0xffff (all-ones sums), their neighbours, and 0.
            for v in [k * 0xffff, (k * 0xffff).wrapping_add(1), (k * 0xffff).wrapping_sub(1)] {
                proptest::prop_assert_eq!(folds_to_ones(v), fold(v) == 0xffff, "{:#x}", v);
            }
        }

        #[test]
        fn incremental_matches_full(
            mut data in proptest::collection::vec(proptest::num::u8::ANY, 8..64),
            word in 0usize..4, new in proptest::num::u16::ANY, new32 in proptest::num::u32::ANY,
        ) {
            let before = checksum(&data);
            let at = word * 2;
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update16(before, old, new);
            // 0x0000 and 0xffff are the same value in ones' complement.
            proptest::prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));

            let before = checksum(&data);
            let old32 = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            data[4..8].copy_from_slice(&new32.to_be_bytes());
            let full = checksum(&data);
            let inc = update32(before, old32, new32);
            proptest::prop_assert!(inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff));
        }
    }
}
