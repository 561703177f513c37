//! Counters, latency histograms, and the reports built from them.
//!
//! Each shard owns its `ShardStats` and `Latency` (no sharing on the data
//! path). Every so often a shard publishes a copy of its counters into its
//! `Published` slot (relaxed atomics) for the live line; histograms are merged
//! once, at the end.

pub mod output;
pub mod report;

use crate::tcp::{CloseReason, State, TcpStats};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a received frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Failed to parse: truncated, bad checksum, bad option, ...
    Malformed,
    /// Addressed to another MAC or IP.
    NotForUs,
    /// Not ARP, ICMP echo or TCP.
    Unsupported,
    /// No connection and no listener (answered with RST unless it was one).
    NoConnection,
    /// The connection table was full.
    TableFull,
    /// The TCP engine refused the segment (outside the window, PAWS, ...).
    Refused,
    /// No MAC address known for the destination.
    NoNeighbour,
    /// The transmit queue was full.
    TxFull,
    /// No mbuf to build a frame in.
    NoBuffer,
    /// Steered to another shard, whose queue was full.
    SteerFull,
}

impl DropReason {
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::NotForUs,
        DropReason::Unsupported,
        DropReason::NoConnection,
        DropReason::TableFull,
        DropReason::Refused,
        DropReason::NoNeighbour,
        DropReason::TxFull,
        DropReason::NoBuffer,
        DropReason::SteerFull,
    ];
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotForUs => "not_for_us",
            DropReason::Unsupported => "unsupported",
            DropReason::NoConnection => "no_connection",
            DropReason::TableFull => "table_full",
            DropReason::Refused => "refused_by_tcp",
            DropReason::NoNeighbour => "no_neighbour",
            DropReason::TxFull => "tx_full",
            DropReason::NoBuffer => "no_buffer",
            DropReason::SteerFull => "steer_full",
        }
    }
}

pub const CLOSE_REASONS: [CloseReason; 8] = [
    CloseReason::Normal,
    CloseReason::ResetByPeer,
    CloseReason::Refused,
    CloseReason::TimedOutSyn,
    CloseReason::TimedOutRetransmit,
    CloseReason::TimedOutKeepalive,
    CloseReason::FinWait2Timeout,
    CloseReason::Aborted,
];

/// Every TCP state, in `State` order (`State::ALL`).
pub const STATES: [State; 11] = State::ALL;

/// A shard's counters (plain integers: one writer).
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub drops: [u64; DropReason::ALL.len()],
    pub rsts_in: u64,
    pub rsts_out: u64,
    pub arp_answered: u64,
    pub icmp_answered: u64,
    pub steered_out: u64,
    pub steered_in: u64,
    /// Connections opened by the client.
    pub opened: u64,
    /// Connections accepted by a listener.
    pub accepted: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_accepted: u64,
    /// Connections that ended, by reason (`CLOSE_REASONS` order).
    pub closed: [u64; CLOSE_REASONS.len()],
    /// Client connections that got every response they asked for.
    pub completed: u64,
    /// Connections the application found wrong (bad response, early close).
    pub app_errors: u64,
    pub requests_sent: u64,
    pub responses: u64,
    /// Responses whose status was not 2xx.
    pub non_2xx: u64,
    pub time_wait_entered: u64,
    pub time_wait_expired: u64,
    /// Client connections not opened because the chosen 4-tuple was in use.
    pub port_collisions: u64,
    /// Loop turns, and nanoseconds spent in turns that did work.
    pub turns: u64,
    pub busy_ns: u64,
    pub tcp: TcpStats,
    /// Connections in each state (`STATES` order; TIME_WAIT counts records).
    pub states: [u64; STATES.len()],
}

impl ShardStats {
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
    pub fn closed_by(&self, r: CloseReason) -> u64 {
        CLOSE_REASONS
            .iter()
            .position(|x| *x == r)
            .map_or(0, |i| self.closed[i])
    }
    pub fn count_close(&mut self, r: CloseReason) {
        if let Some(i) = CLOSE_REASONS.iter().position(|x| *x == r) {
            self.closed[i] += 1;
        }
    }
    /// Closes by reason name.
    pub fn closes_map(&self) -> std::collections::BTreeMap<&'static str, u64> {
        CLOSE_REASONS
            .iter()
            .map(|r| (r.name(), self.closed_by(*r)))
            .collect()
    }
    /// Drops by reason name.
    pub fn drops_map(&self) -> std::collections::BTreeMap<&'static str, u64> {
        DropReason::ALL
            .iter()
            .map(|d| (d.name(), self.dropped(*d)))
            .collect()
    }
    /// Connections that ended some other way than a normal close.
    pub fn abnormal_closes(&self) -> u64 {
        self.closed.iter().skip(1).sum()
    }

    /// The counters as a flat list (for publishing and summing).
    fn to_array(self) -> Vec<u64> {
        let t = self.tcp;
        let mut v = vec![
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rsts_in,
            self.rsts_out,
            self.arp_answered,
            self.icmp_answered,
            self.steered_out,
            self.steered_in,
            self.opened,
            self.accepted,
            self.syn_cookies_sent,
            self.syn_cookies_accepted,
            self.completed,
            self.app_errors,
            self.requests_sent,
            self.responses,
            self.non_2xx,
            self.time_wait_entered,
            self.time_wait_expired,
            self.port_collisions,
            self.turns,
            self.busy_ns,
            t.segs_in,
            t.segs_out,
            t.retransmits,
            t.fast_retransmits,
            t.rto_expirations,
            t.dup_acks_in,
            t.challenge_acks,
            t.challenge_acks_limited,
            t.rsts_out,
            t.out_of_window,
            t.paws_drops,
            t.ooo_segments,
            t.bytes_discarded_after_close,
        ];
        v.extend(self.drops);
        v.extend(self.closed);
        v.extend(self.states);
        v
    }

    fn from_array(a: &[u64]) -> ShardStats {
        let mut i = 0;
        let mut next = || {
            let x = a[i];
            i += 1;
            x
        };
        let mut s = ShardStats {
            rx_packets: next(),
            tx_packets: next(),
            rx_bytes: next(),
            tx_bytes: next(),
            rsts_in: next(),
            rsts_out: next(),
            arp_answered: next(),
            icmp_answered: next(),
            steered_out: next(),
            steered_in: next(),
            opened: next(),
            accepted: next(),
            syn_cookies_sent: next(),
            syn_cookies_accepted: next(),
            completed: next(),
            app_errors: next(),
            requests_sent: next(),
            responses: next(),
            non_2xx: next(),
            time_wait_entered: next(),
            time_wait_expired: next(),
            port_collisions: next(),
            turns: next(),
            busy_ns: next(),
            ..ShardStats::default()
        };
        s.tcp = TcpStats {
            segs_in: next(),
            segs_out: next(),
            retransmits: next(),
            fast_retransmits: next(),
            rto_expirations: next(),
            dup_acks_in: next(),
            challenge_acks: next(),
            challenge_acks_limited: next(),
            rsts_out: next(),
            out_of_window: next(),
            paws_drops: next(),
            ooo_segments: next(),
            bytes_discarded_after_close: next(),
        };
        for d in s.drops.iter_mut() {
            *d = next();
        }
        for c in s.closed.iter_mut() {
            *c = next();
        }
        for c in s.states.iter_mut() {
            *c = next();
        }
        s
    }

    /// Element-wise sum.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a ShardStats>) -> ShardStats {
        let mut acc = ShardStats::default().to_array();
        for s in all {
            for (a, b) in acc.iter_mut().zip(s.to_array()) {
                *a += b;
            }
        }
        ShardStats::from_array(&acc)
    }
}

/// A shard's counters as the reporter sees them (written by the shard only).
#[derive(Debug)]
pub struct Published {
    slots: Vec<AtomicU64>,
}

impl Default for Published {
    fn default() -> Self {
        Published {
            slots: (0..ShardStats::default().to_array().len())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl Published {
    pub fn store(&self, s: &ShardStats) {
        for (slot, v) in self.slots.iter().zip(s.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
    }
    pub fn load(&self) -> ShardStats {
        let v: Vec<u64> = self
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        ShardStats::from_array(&v)
    }
}

/// Latency histograms, in nanoseconds (sub-microsecond resolution, 3
/// significant digits, up to 100 s).
#[derive(Debug, Clone)]
pub struct Latency {
    /// SYN sent → SYN-ACK received.
    pub connect: Histogram<u64>,
    /// Request sent → first response byte.
    pub first_byte: Histogram<u64>,
    /// Request sent (or scheduled, in open loop) → complete response.
    pub request: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds");
        Latency {
            connect: h(),
            first_byte: h(),
            request: h(),
        }
    }
}

impl Latency {
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.connect.add(&other.connect);
        let _ = self.first_byte.add(&other.first_byte);
        let _ = self.request.add(&other.request);
    }
}

/// Records `d` (saturating into the histogram's range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.max(1));
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p75: us(h.value_at_quantile(0.75)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            p9999: us(h.value_at_quantile(0.9999)),
            max: us(h.max()),
        }
    }
}

/// A duration in microseconds as people read it: `812ns`, `35.20us`, `4.10ms`, `1.20s`.
pub fn human_us(us: f64) -> String {
    if us < 1.0 {
        format!("{:.0}ns", us * 1000.0)
    } else if us < 1000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// A count per second, as `12.3k` / `1.20M`.
pub fn human_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_and_sum() {
        let mut a = ShardStats {
            rx_packets: 3,
            ..ShardStats::default()
        };
        a.tcp.retransmits = 2;
        a.drop(DropReason::TxFull);
        a.count_close(CloseReason::TimedOutSyn);
        a.states[4] = 7;
        let p = Published::default();
        p.store(&a);
        let b = p.load();
        assert_eq!(b.rx_packets, 3);
        assert_eq!(b.tcp.retransmits, 2);
        assert_eq!(b.dropped(DropReason::TxFull), 1);
        assert_eq!(b.closed_by(CloseReason::TimedOutSyn), 1);
        assert_eq!(b.states[4], 7);
        let s = ShardStats::sum([&a, &b]);
        assert_eq!(s.rx_packets, 6);
        assert_eq!(s.abnormal_closes(), 2);
    }

    #[test]
    fn percentiles_sub_microsecond() {
        let mut l = Latency::default();
        for ns in [400u64, 800, 1200, 5000] {
            record(&mut l.connect, Duration::from_nanos(ns));
        }
        let p = Percentiles::of(&l.connect);
        assert_eq!(p.count, 4);
        assert!((p.p50 - 0.8).abs() < 0.01, "{p:?}");
        assert!((p.max - 5.0).abs() < 0.01);
    }
}
