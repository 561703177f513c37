//! Counters, latency histograms, and the reports built from them.
//!
//! Each shard owns its `ShardStats` and `Latency` (no sharing on the data
//! path). Every so often a shard publishes a copy of its counters into its
//! `Published` slot (relaxed atomics) for the live line; histograms are merged
//! once, at the end. Counters and drop reasons are declared once, with
//! `crate::counters`' macros: publishing, sums, the JSON maps and the live
//! line follow the declarations.

pub mod hist;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod report;

use crate::counters::{Counters, by_label};
use crate::tcp::{CloseReason, State, TcpStats};
use hist::Hist;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

crate::counters::declare_labels! {
    /// Why a received frame (or a connection it asked for) was dropped: the
    /// one vocabulary of the shard, the ARP/ICMP responder and kernel mode.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DropReason {
        /// Shorter than its headers say.
        Truncated = "truncated",
        /// Failed to parse: a bad length, data offset, option, ...
        Malformed = "malformed",
        /// A checksum did not match (IPv4, ICMP or TCP).
        BadChecksum = "bad_checksum",
        /// Well formed, but not something we handle (other ARP hardware, IP
        /// version, ...).
        Unsupported = "unsupported",
        /// An IPv4 fragment (not reassembled).
        Ipv4Fragment = "ipv4_fragment",
        /// An IPv6 fragment (not reassembled).
        Ipv6Fragment = "ipv6_fragment",
        /// Addressed to another MAC or IP.
        NotForUs = "not_for_us",
        /// A unicast IP datagram in a link-layer broadcast or multicast frame
        /// (RFC 1122 3.3.6).
        LinkBroadcast = "link_broadcast",
        /// From a source no peer can have: broadcast, multicast, 0.0.0.0,
        /// loopback, class E, one of our own addresses, or a group MAC
        /// (RFC 1122 3.2.1.3, 4.2.3.10).
        BadSource = "bad_source",
        /// Neither ARP nor IPv4.
        OtherEtherType = "other_ethertype",
        /// IPv4, but neither ICMP nor TCP.
        OtherIpProtocol = "other_ip_protocol",
        /// ICMP "fragmentation needed" quoting no live connection, or a
        /// sequence number it has not sent or has had acknowledged (RFC 5927).
        IcmpUnmatched = "icmp_unmatched",
        /// ICMP other than an echo request.
        IcmpNotEcho = "icmp_not_echo",
        /// TCP for no connection and no listener (answered with RST unless it was one).
        NoConnection = "no_connection",
        /// TCP to a listener with neither SYN, ACK nor RST: dropped unanswered
        /// (RFC 9293 3.10.7.2).
        ListenNoSynNoAck = "listen_no_syn_no_ack",
        /// The connection table was full.
        TableFull = "table_full",
        /// The connection's 4-tuple was already in use (an open connection or
        /// a TIME_WAIT record).
        TupleTaken = "tuple_taken",
        /// The TCP engine refused the segment (outside the window, PAWS, ...).
        Refused = "refused_by_tcp",
        /// No MAC address known for the destination.
        NoNeighbour = "no_neighbour",
        /// The transmit queue was full.
        TxFull = "tx_full",
        /// No mbuf to build a frame in.
        NoBuffer = "no_buffer",
        /// Steered to another shard, whose queue was full.
        SteerFull = "steer_full",
        /// A SYN (no ACK) past the turn's budget of answers while the shard
        /// was behind and its listener past the half-open limit (a SYN
        /// flood): dropped unparsed, its checksum unchecked, as nothing is
        /// done with it (`StackConfig::syn_budget`). A real peer retransmits.
        SynShed = "syn_shed",
    }
}

crate::counters::declare_labels! {
    /// A final response's status class (interim 1xx responses are skipped,
    /// not counted).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum StatusClass {
        Success = "2xx",
        Redirect = "3xx",
        ClientError = "4xx",
        ServerError = "5xx",
        /// 101, or a code past 599.
        Other = "other",
    }
}

impl StatusClass {
    /// The class of a final response's status code.
    #[inline]
    pub fn of(status: u16) -> StatusClass {
        match status {
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirect,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

impl From<crate::wire::Error> for DropReason {
    fn from(e: crate::wire::Error) -> DropReason {
        use crate::wire::Error;
        match e {
            Error::Truncated => DropReason::Truncated,
            Error::Malformed => DropReason::Malformed,
            Error::Checksum => DropReason::BadChecksum,
            Error::Unsupported => DropReason::Unsupported,
            Error::Fragment => DropReason::Ipv4Fragment,
            Error::Ipv6Fragment => DropReason::Ipv6Fragment,
        }
    }
}

/// Every TCP state, in `State` order (`State::ALL`).
pub const STATES: [State; State::COUNT] = State::ALL;

/// A state's short name on the live line (CL LI SS SR E FW1 FW2 CW C LA TW).
pub fn state_abbrev(s: State) -> &'static str {
    match s {
        State::Closed => "CL",
        State::Listen => "LI",
        State::SynSent => "SS",
        State::SynReceived => "SR",
        State::Established => "E",
        State::FinWait1 => "FW1",
        State::FinWait2 => "FW2",
        State::CloseWait => "CW",
        State::Closing => "C",
        State::LastAck => "LA",
        State::TimeWait => "TW",
    }
}

/// Connections per state as the live line shows them, summed over `sides`:
/// `CL n LI n SS n SR n E n FW1 n FW2 n CW n C n LA n TW n`.
pub fn states_line(sides: &[&ShardStats]) -> String {
    let parts: Vec<String> = STATES
        .iter()
        .map(|st| {
            let n: u64 = sides.iter().map(|s| s.states[st.index()]).sum();
            format!("{} {n}", state_abbrev(*st))
        })
        .collect();
    parts.join(" ")
}

crate::counters::declare_counters! {
    /// A shard's counters (plain integers: one writer). Each is declared here
    /// once; `Counters` walks them (publishing, sums, names).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ShardStats {
        pub rx_packets,
        pub tx_packets,
        pub rx_bytes,
        pub tx_bytes,
        /// RSTs received (RSTs sent: `tcp.rsts_out`).
        pub rsts_in,
        pub arp_answered,
        pub arp_requests_sent,
        /// Neighbours learnt (or moved) from ARP: answers to our requests,
        /// requests addressed to us, and under `GratuitousArp::UpdateKnown`
        /// gratuitous ARP for known hosts.
        pub neighbours_learned,
        /// ARP not trusted into the neighbour table (unsolicited, for an
        /// unknown host, or from an impossible address).
        pub neighbours_refused,
        /// Neighbours not stored: the table was full.
        pub neighbours_full,
        /// Neighbours forgotten: silent through their re-ARP probes.
        pub neighbours_expired,
        pub icmp_answered,
        /// Connections whose MSS an ICMP "fragmentation needed" lowered
        /// (RFC 1191, checked per RFC 5927).
        pub pmtu_reductions,
        pub steered_out,
        pub steered_in,
        /// Connections opened by the client.
        pub opened,
        /// Connections accepted by a listener.
        pub accepted,
        pub syn_cookies_sent,
        pub syn_cookies_accepted,
        /// SYNs not shed past the turn's budget (`syn_shed`) because their
        /// source completed a cookie handshake lately.
        pub syns_verified,
        /// Client connections that got every response they asked for.
        pub completed,
        /// Connections the application found wrong (bad response, early close).
        pub app_errors,
        pub requests_sent,
        pub responses,
        /// Responses whose status was not 2xx.
        pub non_2xx,
        /// Response body bytes received (chunked: the chunks' data).
        pub response_body_bytes,
        /// Connections whose TIME_WAIT record was stored.
        pub time_wait_entered,
        /// Connections that reached TIME_WAIT when the record table was full:
        /// closed at once, their 4-tuple not held for 2MSL.
        pub time_wait_refused,
        pub time_wait_expired,
        /// Client connections not opened because the chosen 4-tuple was in use.
        pub port_collisions,
        /// Client connections the generator closed because the run ended
        /// (with requests still to make; closed with FIN, not reset).
        pub closed_at_end,
        /// Turns that made no new work (connections, requests, timers)
        /// because frames built earlier still waited for room in the
        /// device's transmit ring (back-pressure).
        pub tx_waits,
        /// Client handshakes in flight now, and the window that limits them
        /// (gauges; the window is 0 where opening is not paced).
        pub handshakes,
        pub open_window,
        /// Receive bursts that came back full: the queue held more, the
        /// shard was behind.
        pub rx_full_bursts,
        /// Loop turns, and nanoseconds spent in turns that did work.
        pub turns,
        pub busy_ns,
        /// Frames (or the connections they asked for) dropped, by reason.
        pub drops: [DropReason],
        /// Connections that ended, by reason.
        pub closed: [CloseReason],
        /// Connections in each state (TIME_WAIT counts records).
        pub states: [State],
        /// Responses by status class.
        pub status: [StatusClass],
        pub tcp: TcpStats,
    }
}

impl ShardStats {
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r.index()] += 1;
    }
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r.index()]
    }
    pub fn closed_by(&self, r: CloseReason) -> u64 {
        self.closed[r.index()]
    }
    pub fn count_close(&mut self, r: CloseReason) {
        self.closed[r.index()] += 1;
    }
    /// Closes by reason name.
    pub fn closes_map(&self) -> BTreeMap<&'static str, u64> {
        by_label::<CloseReason>(&self.closed)
    }
    /// Drops by reason name.
    pub fn drops_map(&self) -> BTreeMap<&'static str, u64> {
        by_label::<DropReason>(&self.drops)
    }
    /// Connections per state, by state name.
    pub fn states_map(&self) -> BTreeMap<&'static str, u64> {
        by_label::<State>(&self.states)
    }
    /// Responses by status class name.
    pub fn status_map(&self) -> BTreeMap<&'static str, u64> {
        by_label::<StatusClass>(&self.status)
    }
    /// Connections that ended some other way than a normal close.
    pub fn abnormal_closes(&self) -> u64 {
        self.closed.iter().sum::<u64>() - self.closed_by(CloseReason::Normal)
    }

    /// Counter-by-counter sum.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a ShardStats>) -> ShardStats {
        let mut acc = ShardStats::default();
        for s in all {
            acc.add(s);
        }
        acc
    }
}

/// A shard's counters as the reporter sees them (written by the shard only).
#[derive(Debug)]
pub struct Published {
    slots: [AtomicU64; ShardStats::LEN],
}

impl Default for Published {
    fn default() -> Self {
        Published {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Published {
    pub fn store(&self, s: &ShardStats) {
        let mut slots = self.slots.iter();
        s.each(|_, v| {
            if let Some(slot) = slots.next() {
                slot.store(v, Ordering::Relaxed);
            }
        });
    }
    pub fn load(&self) -> ShardStats {
        let mut s = ShardStats::default();
        let mut slots = self.slots.iter();
        s.each_mut(&mut |_, v| *v = slots.next().map_or(0, |x| x.load(Ordering::Relaxed)));
        s
    }
}

/// Latency histograms, in nanoseconds (sub-microsecond resolution, 3
/// significant digits, up to 100 s: HdrHistogram's layout, `hist`).
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// SYN sent → SYN-ACK received.
    pub connect: Hist,
    /// Request sent → first response byte.
    pub first_byte: Hist,
    /// Request sent (or scheduled, in open loop) → complete response.
    pub request: Hist,
}

impl Latency {
    pub fn merge(&mut self, other: &Latency) {
        self.connect.add(&other.connect);
        self.first_byte.add(&other.first_byte);
        self.request.add(&other.request);
    }
}

/// Records `d` (saturating into the histogram's range).
#[inline]
pub fn record(h: &mut Hist, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    h.record(ns.max(1));
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
    pub fn of(h: &Hist) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        let h = h.to_hdr();
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

    /// Every counter, set to a value of its own, crosses `Published` and
    /// comes back under the same name.
    #[test]
    fn every_counter_survives_publishing() {
        let a = ShardStats::numbered(101);
        let p = Published::default();
        p.store(&a);
        let b = p.load();
        let (mut na, mut nb) = (Vec::new(), Vec::new());
        a.each(|n, v| na.push((n, v)));
        b.each(|n, v| nb.push((n, v)));
        assert_eq!(na, nb);
        assert_eq!(na.len(), ShardStats::LEN);
        assert_eq!(ShardStats::from_values(&a.values()).values(), a.values());
        // The walk reaches the fields themselves.
        assert_eq!(b.rx_packets, 101);
        assert_eq!(
            b.get("tcp.bytes_discarded_after_close"),
            Some(100 + ShardStats::LEN as u64)
        );
        let twice = ShardStats::sum([&a, &b]);
        assert_eq!(twice.busy_ns, 2 * a.busy_ns);
        assert_eq!(twice.states, a.states.map(|x| 2 * x));
    }

    #[test]
    fn counter_names_are_unique_and_labelled() {
        let names: Vec<String> = ShardStats::names().iter().map(|n| n.to_string()).collect();
        let set: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(
            set.len(),
            names.len(),
            "duplicate counter name in {names:?}"
        );
        for d in DropReason::ALL {
            assert!(set.contains(&format!("drops.{}", d.name())), "{d:?}");
        }
        for r in CloseReason::ALL {
            assert!(set.contains(&format!("closed.{}", r.name())), "{r:?}");
        }
        for st in STATES {
            assert!(set.contains(&format!("states.{}", st.name())), "{st:?}");
        }
        // One RST-out counter: the engine's, which the shard also counts into.
        assert!(set.contains(&"tcp.rsts_out".to_string()));
        assert!(!set.contains(&"rsts_out".to_string()));
        for n in [
            "rsts_in",
            "time_wait_entered",
            "time_wait_refused",
            "tcp.retransmits",
        ] {
            assert!(set.contains(&n.to_string()), "{n}");
        }
        // Drop reasons name themselves once.
        let drops: std::collections::BTreeSet<&str> =
            DropReason::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(drops.len(), DropReason::COUNT);
    }

    #[test]
    fn live_line_states_follow_state_order() {
        let mut a = ShardStats::default();
        let mut b = ShardStats::default();
        a.states[State::Established.index()] = 3;
        b.states[State::Established.index()] = 4;
        b.states[State::TimeWait.index()] = 9;
        assert_eq!(
            states_line(&[&a, &b]),
            "CL 0 LI 0 SS 0 SR 0 E 7 FW1 0 FW2 0 CW 0 C 0 LA 0 TW 9"
        );
    }

    #[test]
    fn wire_errors_have_their_own_drop_reasons() {
        use crate::wire::Error;
        let all = [
            Error::Truncated,
            Error::Malformed,
            Error::Checksum,
            Error::Unsupported,
            Error::Fragment,
            Error::Ipv6Fragment,
        ];
        let reasons: std::collections::BTreeSet<&str> =
            all.iter().map(|e| DropReason::from(*e).name()).collect();
        assert_eq!(reasons.len(), all.len());
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
