//! TIME_WAIT as a small record (as Linux's tcp_minisocks does): when a
//! connection enters TIME_WAIT its control block and buffers are freed and
//! this record answers for the 4-tuple until 2MSL has passed. Generic over
//! the IP family (`TimeWaitRecord<Ipv6Addr>` for IPv6; IPv4 by default).

use super::conn::{Connection, FourTuple, State};
use crate::time::Instant;
use crate::wire::{FlowKey, IpFamily, SeqNumber, TcpControl, TcpRepr, TcpTimestamp};
use std::net::Ipv4Addr;
use std::time::Duration;

/// Where the checksum sits in a TCP header (RFC 9293 3.1).
const CHECKSUM: usize = 16;

/// What to do with a segment that hit a TIME_WAIT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitVerdict {
    /// Nothing to send (an RST, RFC 1337; or a duplicate ACK).
    Drop,
    /// Send `TimeWaitRecord::emit_ack` (a retransmitted FIN, an old duplicate,
    /// or a SYN we may not accept).
    Ack,
    /// A new SYN that may reopen the 4-tuple (RFC 6191): drop the record and
    /// hand the SYN to the listener.
    NewSyn,
}

/// Timestamp state a TIME_WAIT record keeps (RFC 7323): the peer's last
/// TSval and our clock's offset for this host pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitTimestamps {
    pub ts_recent: u32,
    pub ts_offset: u32,
}

/// The compact TIME_WAIT state: 4-tuple, sequence numbers, timestamps,
/// expiry; for either IP family (IPv4 by default). At most 64 bytes for
/// IPv4 and 80 for IPv6 (tests below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitRecord<A: IpFamily = Ipv4Addr> {
    key: FlowKey<A>,
    snd_nxt: SeqNumber,
    rcv_nxt: SeqNumber,
    ts_recent: u32,
    ts_offset: u32,
    /// Window to advertise (already scaled down).
    window: u16,
    has_ts: bool,
    pub expires: Instant,
}

impl<A: IpFamily> TimeWaitRecord<A> {
    /// The record for a connection in TIME_WAIT (None in any other state);
    /// `key` is its 4-tuple (the owner's: the control block keeps only the
    /// ports and the addresses' sum).
    pub fn from_connection(
        c: &Connection,
        key: impl Into<FlowKey<A>>,
        now: Instant,
        time_wait: Duration,
    ) -> Option<TimeWaitRecord<A>> {
        if c.state() != State::TimeWait {
            return None;
        }
        let timestamps = c.timestamps_enabled().then(|| TimeWaitTimestamps {
            ts_recent: c.ts_recent().unwrap_or(0),
            ts_offset: c.ts_offset(),
        });
        Some(TimeWaitRecord::new(
            key.into(),
            c.snd_nxt(),
            c.rcv_nxt(),
            c.last_window_field(),
            timestamps,
            c.close_deadline().unwrap_or_else(|| now + time_wait),
        ))
    }
}

impl TimeWaitRecord<Ipv4Addr> {
    pub fn tuple(&self) -> FourTuple {
        FourTuple::from(self.key)
    }
}

impl<A: IpFamily> TimeWaitRecord<A> {
    /// The record of a connection of `key` that entered TIME_WAIT with
    /// SND.NXT `snd_nxt` and RCV.NXT `rcv_nxt`, advertising `window` (the
    /// field as sent), with `timestamps` if they were negotiated, until
    /// `expires`.
    pub fn new(
        key: FlowKey<A>,
        snd_nxt: SeqNumber,
        rcv_nxt: SeqNumber,
        window: u16,
        timestamps: Option<TimeWaitTimestamps>,
        expires: Instant,
    ) -> TimeWaitRecord<A> {
        let ts = timestamps.unwrap_or(TimeWaitTimestamps {
            ts_recent: 0,
            ts_offset: 0,
        });
        TimeWaitRecord {
            key,
            snd_nxt,
            rcv_nxt,
            ts_recent: ts.ts_recent,
            ts_offset: ts.ts_offset,
            window,
            has_ts: timestamps.is_some(),
            expires,
        }
    }

    /// The 4-tuple it answers for.
    pub fn key(&self) -> FlowKey<A> {
        self.key
    }

    /// The same record for another 4-tuple (tests that need many records).
    pub fn with_key(self, key: FlowKey<A>) -> TimeWaitRecord<A> {
        TimeWaitRecord { key, ..self }
    }

    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv_nxt
    }

    pub fn snd_nxt(&self) -> SeqNumber {
        self.snd_nxt
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires
    }

    /// Handles a segment for this 4-tuple.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        time_wait: Duration,
        seg: &TcpRepr<'_>,
    ) -> TimeWaitVerdict {
        match seg.control {
            // RFC 1337: an RST must not end TIME_WAIT early.
            TcpControl::Rst => TimeWaitVerdict::Drop,
            TcpControl::Syn if seg.ack_number.is_none() => {
                // RFC 6191: a newer timestamp, or (without timestamps) a sequence
                // number above the old connection's, may reopen the 4-tuple.
                let newer = match (self.has_ts, seg.timestamp) {
                    (true, Some(ts)) => (ts.tsval.wrapping_sub(self.ts_recent) as i32) > 0,
                    (true, None) => false,
                    (false, _) => seg.seq_number > self.rcv_nxt,
                };
                if newer {
                    TimeWaitVerdict::NewSyn
                } else {
                    TimeWaitVerdict::Ack
                }
            }
            _ => {
                // A retransmitted FIN (our ACK was lost): re-ACK and restart 2MSL
                // (RFC 9293 3.10.7.4, TIME-WAIT).
                if seg.control == TcpControl::Fin
                    && seg.seq_number + seg.payload.len() as u32 + 1 == self.rcv_nxt
                {
                    self.expires = now + time_wait;
                    return TimeWaitVerdict::Ack;
                }
                // Anything else that is not exactly at rcv_nxt is an old duplicate:
                // ACK it (step one of segment processing); a bare ACK at rcv_nxt is silence.
                if seg.seq_number == self.rcv_nxt
                    && seg.payload.is_empty()
                    && seg.control == TcpControl::None
                {
                    TimeWaitVerdict::Drop
                } else {
                    TimeWaitVerdict::Ack
                }
            }
        }
    }

    /// Writes the ACK this record sends (the TCP segment, checksummed over
    /// the family's pseudo-header) into `out`; returns its length.
    pub fn emit_ack(&self, now: Instant, out: &mut [u8]) -> usize {
        let repr = TcpRepr {
            src_port: self.key.local_port,
            dst_port: self.key.remote_port,
            seq_number: self.snd_nxt,
            ack_number: Some(self.rcv_nxt),
            window_len: self.window,
            timestamp: self.has_ts.then(|| TcpTimestamp {
                tsval: (now.as_millis() as u32).wrapping_add(self.ts_offset),
                tsecr: self.ts_recent,
            }),
            ..TcpRepr::default()
        };
        let n = repr.emit_header(&mut out[..]);
        let (src, dst) = (self.key.local_host(), self.key.remote_host());
        let c = A::transport_checksum(&src, &dst, 6, &out[..n]);
        out[CHECKSUM..CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ChecksumMode, TcpPacket};
    use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

    const NOW: Instant = Instant::ZERO;

    fn key4() -> FlowKey<Ipv4Addr> {
        let l: SocketAddrV4 = "10.0.0.1:80".parse().unwrap();
        let r: SocketAddrV4 = "10.0.0.2:40000".parse().unwrap();
        FlowKey::new(l, r)
    }

    fn key6() -> FlowKey<Ipv6Addr> {
        let l: SocketAddrV6 = "[2001:db8::1]:80".parse().unwrap();
        let r: SocketAddrV6 = "[2001:db8:1::2]:40000".parse().unwrap();
        FlowKey::new(l, r)
    }

    const TS: TimeWaitTimestamps = TimeWaitTimestamps {
        ts_recent: 5000,
        ts_offset: 0x1234_5678,
    };

    fn record<A: IpFamily>(key: FlowKey<A>, ts: Option<TimeWaitTimestamps>) -> TimeWaitRecord<A> {
        let expires = NOW + Duration::from_secs(60);
        TimeWaitRecord::new(key, SeqNumber(1001), SeqNumber(7001), 502, ts, expires)
    }

    /// RFC 1071's sum, written out byte-wise for the test (not the
    /// checksum module's code).
    fn ones_complement_sum(parts: &[&[u8]]) -> u16 {
        let bytes: Vec<u8> = parts.concat();
        let mut sum: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn sizes() {
        // Issue 14: at most 64 bytes for IPv4 (as before), 80 for IPv6.
        let v4 = std::mem::size_of::<TimeWaitRecord<Ipv4Addr>>();
        let v6 = std::mem::size_of::<TimeWaitRecord<Ipv6Addr>>();
        println!("TIME_WAIT record: IPv4 {v4} B, IPv6 {v6} B");
        assert!(v4 <= 64, "{v4}");
        assert!(v6 <= 80, "{v6}");
        assert_eq!(v4, std::mem::size_of::<TimeWaitRecord>(), "IPv4 by default");
    }

    #[test]
    fn the_ipv4_ack_is_what_tcp_repr_emits() {
        // The record writes its header and checksum itself (for either
        // family); for IPv4 the bytes are TcpRepr::emit's.
        for ts in [None, Some(TS)] {
            let r = record(key4(), ts);
            let mut got = [0u8; 64];
            let n = r.emit_ack(NOW + Duration::from_millis(300), &mut got);
            let repr = TcpRepr {
                src_port: 80,
                dst_port: 40000,
                seq_number: SeqNumber(1001),
                ack_number: Some(SeqNumber(7001)),
                window_len: 502,
                timestamp: ts.map(|t| TcpTimestamp {
                    tsval: 300u32.wrapping_add(t.ts_offset),
                    tsecr: t.ts_recent,
                }),
                ..TcpRepr::default()
            };
            let mut want = vec![0u8; repr.buffer_len()];
            repr.emit(
                &mut TcpPacket::new_unchecked(&mut want[..]),
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
            );
            assert_eq!(&got[..n], &want[..]);
            assert_eq!(r.tuple(), crate::tcp::FourTuple::from(key4()));
        }
    }

    #[test]
    fn the_ipv6_ack_checksums_over_the_ipv6_pseudo_header() {
        let r = record(key6(), Some(TS));
        let mut out = [0u8; 64];
        let n = r.emit_ack(NOW + Duration::from_millis(300), &mut out);
        let seg = &out[..n];
        // RFC 8200 8.1: source, destination, upper-layer length (32 bits),
        // three zero bytes, next header 6; the sum over it and the segment
        // is all ones.
        let k = key6();
        let len = (n as u32).to_be_bytes();
        let pseudo = [
            &k.local_ip.octets()[..],
            &k.remote_ip.octets(),
            &len,
            &[0, 0, 0, 6],
        ];
        let sum = ones_complement_sum(&[&pseudo.concat(), seg]);
        assert_eq!(sum, 0xffff);
        // The fields: ports, numbers, window, timestamps.
        let p = TcpRepr::parse_bytes(
            seg,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            ChecksumMode::Ignore,
        )
        .unwrap();
        assert_eq!((p.src_port, p.dst_port), (80, 40000));
        assert_eq!(p.seq_number, SeqNumber(1001));
        assert_eq!(p.ack_number, Some(SeqNumber(7001)));
        assert_eq!(p.window_len, 502);
        assert_eq!(p.control, TcpControl::None);
        assert_eq!(
            p.timestamp,
            Some(TcpTimestamp {
                tsval: 300u32.wrapping_add(TS.ts_offset),
                tsecr: TS.ts_recent
            })
        );
        // Without timestamps: no option, still checksummed.
        let r = record(key6(), None);
        let n = r.emit_ack(NOW, &mut out);
        assert_eq!(n, 20);
        let len = (n as u32).to_be_bytes();
        let pseudo = [
            &k.local_ip.octets()[..],
            &k.remote_ip.octets(),
            &len,
            &[0, 0, 0, 6],
        ];
        assert_eq!(ones_complement_sum(&[&pseudo.concat(), &out[..n]]), 0xffff);
        assert_eq!(r.key(), key6());
    }

    fn seg(
        control: TcpControl,
        seq: u32,
        ack: Option<u32>,
        tsval: Option<u32>,
    ) -> TcpRepr<'static> {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control,
            seq_number: SeqNumber(seq),
            ack_number: ack.map(SeqNumber),
            timestamp: tsval.map(|tsval| TcpTimestamp { tsval, tsecr: 0 }),
            ..TcpRepr::default()
        }
    }

    #[test]
    fn an_ipv6_record_answers_as_an_ipv4_one() {
        // The verdicts do not depend on the family: RFC 1337 (RST ignored),
        // RFC 9293 3.10.7.4 (a retransmitted FIN re-ACKed, 2MSL restarted),
        // RFC 6191 (a SYN with a newer timestamp may reopen the tuple).
        let tw = Duration::from_secs(60);
        let later = NOW + Duration::from_secs(30);
        for ts in [None, Some(TS)] {
            let mut r4 = record(key4(), ts);
            let mut r6 = record(key6(), ts);
            let cases = [
                seg(TcpControl::Rst, 7001, None, None),
                seg(TcpControl::Fin, 7000, Some(1001), ts.map(|t| t.ts_recent)),
                seg(TcpControl::None, 7001, Some(1001), ts.map(|t| t.ts_recent)),
                seg(TcpControl::None, 6000, Some(1001), ts.map(|t| t.ts_recent)),
                seg(TcpControl::Syn, 9000, None, ts.map(|t| t.ts_recent + 1)),
                seg(TcpControl::Syn, 9000, None, ts.map(|t| t.ts_recent - 1)),
                seg(TcpControl::Syn, 100, None, None),
            ];
            let mut verdicts = vec![];
            for s in &cases {
                let v = r6.handle_segment(later, tw, s);
                assert_eq!(v, r4.handle_segment(later, tw, s), "{s:?}");
                verdicts.push(v);
            }
            assert_eq!(verdicts[0], TimeWaitVerdict::Drop);
            assert_eq!(verdicts[1], TimeWaitVerdict::Ack);
            assert_eq!(verdicts[2], TimeWaitVerdict::Drop);
            assert_eq!(verdicts[3], TimeWaitVerdict::Ack);
            assert_eq!(verdicts[6], TimeWaitVerdict::Ack, "an old SYN");
            if ts.is_some() {
                assert_eq!(verdicts[4], TimeWaitVerdict::NewSyn);
                assert_eq!(verdicts[5], TimeWaitVerdict::Ack);
            } else {
                assert_eq!(verdicts[4], TimeWaitVerdict::NewSyn, "seq above RCV.NXT");
            }
            // The FIN restarted 2MSL from `later`.
            assert_eq!(r6.expires, later + tw);
            assert!(!r6.is_expired(later + (tw - Duration::from_millis(1))));
            assert!(r6.is_expired(later + tw));
        }
    }
}
