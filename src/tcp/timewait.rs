//! TIME_WAIT as a small record (as Linux's tcp_minisocks does): when a
//! connection enters TIME_WAIT its control block and buffers are freed and
//! this record answers for the 4-tuple until 2MSL has passed.

use super::conn::{Connection, FourTuple, State};
use crate::time::Instant;
use crate::wire::{SeqNumber, TcpControl, TcpPacket, TcpRepr, TcpTimestamp};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

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

/// The compact TIME_WAIT state: 4-tuple, sequence numbers, timestamps, expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitRecord {
    local_ip: u32,
    remote_ip: u32,
    local_port: u16,
    remote_port: u16,
    snd_nxt: SeqNumber,
    rcv_nxt: SeqNumber,
    ts_recent: u32,
    ts_offset: u32,
    /// Window to advertise (already scaled down).
    window: u16,
    has_ts: bool,
    pub expires: Instant,
}

impl TimeWaitRecord {
    /// The record for a connection in TIME_WAIT (None in any other state).
    pub fn from_connection(
        c: &Connection,
        now: Instant,
        time_wait: Duration,
    ) -> Option<TimeWaitRecord> {
        if c.state() != State::TimeWait {
            return None;
        }
        let t = c.tuple();
        Some(TimeWaitRecord {
            local_ip: u32::from(*t.local.ip()),
            remote_ip: u32::from(*t.remote.ip()),
            local_port: t.local.port(),
            remote_port: t.remote.port(),
            snd_nxt: c.snd_nxt(),
            rcv_nxt: c.rcv_nxt(),
            ts_recent: c.ts_recent().unwrap_or(0),
            ts_offset: c.ts_offset(),
            window: c.last_window_field(),
            has_ts: c.timestamps_enabled(),
            expires: c.close_deadline().unwrap_or_else(|| now + time_wait),
        })
    }

    pub fn tuple(&self) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::from(self.local_ip), self.local_port),
            remote: SocketAddrV4::new(Ipv4Addr::from(self.remote_ip), self.remote_port),
        }
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

    /// Writes the ACK this record sends into `out`; returns its length.
    pub fn emit_ack(&self, now: Instant, out: &mut [u8]) -> usize {
        let t = self.tuple();
        let repr = TcpRepr {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq_number: self.snd_nxt,
            ack_number: Some(self.rcv_nxt),
            window_len: self.window,
            timestamp: self.has_ts.then(|| TcpTimestamp {
                tsval: (now.as_millis() as u32).wrapping_add(self.ts_offset),
                tsecr: self.ts_recent,
            }),
            ..TcpRepr::default()
        };
        let n = repr.buffer_len();
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut out[..n]),
            *t.local.ip(),
            *t.remote.ip(),
        );
        n
    }
}
