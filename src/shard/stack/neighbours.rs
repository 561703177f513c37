//! ARP and the neighbour table: the peers' MACs, learnt from ARP only (answers
//! to our requests, requests addressed to us), bounded and aged; and the
//! responder's answers to ARP and ICMP echo requests.

use super::control::ETH;
use super::{GratuitousArp, Stack, StackFamily};
use crate::table::FlowHashBuilder;
use crate::time::Instant;
use crate::wire::{self, EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Re-ARP probes a stale neighbour gets, a sweep (1 s) apart, before it is
/// forgotten (Linux: ucast_probes + mcast_probes = 3 + 3 at 1 s).
const PROBES: u8 = 3;
/// How often the table is swept for stale entries.
const SWEEP: Duration = Duration::from_secs(1);
/// Our ARP requests still waiting for their answer, at most; each waits
/// `PROBES` sweeps.
const PENDING: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: EthernetAddress,
    /// When ARP last confirmed it (an answer to us, or a request to us).
    confirmed: Instant,
    /// Re-ARP probes sent since.
    probes: u8,
    /// Given by the operator (`add_neighbour`): never aged, never moved.
    fixed: bool,
}

/// The neighbour table: IPv4 → MAC, learnt from ARP (RFC 826) only.
///
/// Learning follows Linux's `arp_process`: an answer to one of our requests
/// creates or moves an entry; a request addressed to us does too (Linux's
/// `neigh_event_ns`: the asker is about to talk to us); anything else —
/// gratuitous ARP, unsolicited replies, requests for other hosts — never
/// creates one (arp_accept=0) and, per `GratuitousArp`, may move a known
/// host. TCP segments teach nothing: a connection keeps the MAC its SYN came
/// from (`Conn::mac`). Bounded; learnt entries go stale after
/// `neighbour_reachable` and are asked for again, then forgotten.
///
/// Of one family (`A`): IPv4's from ARP; IPv6's (Neighbor Discovery) are
/// only those given with `add_neighbour` for now.
pub(super) struct Neighbours<A: StackFamily = Ipv4Addr> {
    map: HashMap<A, Entry, FlowHashBuilder>,
    /// Our outstanding requests: address, sweeps left to answer.
    pending: Vec<(A, u8)>,
    next_sweep: Instant,
    /// Addresses to probe, reused by each sweep.
    probe: Vec<A>,
}

impl<A: StackFamily> Neighbours<A> {
    pub(super) fn new(hash: FlowHashBuilder) -> Neighbours<A> {
        Neighbours {
            map: HashMap::with_hasher(hash),
            pending: Vec::with_capacity(PENDING),
            next_sweep: Instant::ZERO,
            probe: Vec::new(),
        }
    }

    #[inline]
    pub(super) fn get(&self, ip: &A) -> Option<EthernetAddress> {
        self.map.get(ip).map(|e| e.mac)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Whether an ARP sender's addresses may be a neighbour's: a unicast MAC and
/// an address a host can have (RFC 1122 3.2.1.3).
fn plausible(ip: Ipv4Addr, mac: EthernetAddress) -> bool {
    let net = u32::from(ip) >> 24;
    mac.is_unicast() && mac != EthernetAddress([0; 6]) && net != 0 && net != 127 && net < 224
}

impl<A: StackFamily> Stack<A> {
    /// Knows `ip`'s MAC without asking (the peer of a point-to-point link, a
    /// gateway given on the command line): a fixed entry, never aged.
    pub fn add_neighbour(&mut self, ip: A, mac: EthernetAddress) {
        let e = Entry {
            mac,
            confirmed: Instant::ZERO,
            probes: 0,
            fixed: true,
        };
        self.neigh.map.insert(ip, e);
    }

    pub fn neighbour(&self, ip: A) -> Option<EthernetAddress> {
        self.neigh.get(&ip)
    }

    /// Queues an ARP request for `ip` (sent at the next `poll`), or for
    /// IPv6 a Neighbor Solicitation (RFC 4861 7.2.2: to the target's
    /// solicited-node multicast address, with our link-layer address); its
    /// answer is learnt.
    pub fn request_arp(&mut self, ip: A) {
        self.mark_pending(ip);
        let Some(ip4) = ip.to_v4() else {
            if let Some(target) = ip.to_v6() {
                self.solicit(target);
            }
            return;
        };
        self.stats.arp_requests_sent += 1;
        let arp = wire::ArpRepr {
            operation: wire::ArpOperation::Request,
            source_hardware_addr: self.cfg.iface.mac,
            source_protocol_addr: self.cfg.iface.ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip4,
        };
        let eth = EthernetRepr {
            src_addr: self.cfg.iface.mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        };
        let len = ETH + arp.buffer_len();
        let buf = self.ctrl_buf(len.max(60));
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..ETH]));
        arp.emit(&mut wire::ArpPacket::new_unchecked(&mut buf[ETH..len]));
    }

    /// `request_arp` unless `ip` is asked for already (a burst of
    /// connections to a neighbour not yet known asks once).
    pub(super) fn ask_neighbour(&mut self, ip: A) {
        if !self.neigh.pending.iter().any(|(a, _)| *a == ip) {
            self.request_arp(ip);
        }
    }

    /// `ip` waits for its answer (`PROBES` sweeps).
    fn mark_pending(&mut self, ip: A) {
        let p = &mut self.neigh.pending;
        match p.iter_mut().find(|(a, _)| *a == ip) {
            Some(w) => w.1 = PROBES,
            None => {
                if p.len() == PENDING {
                    p.remove(0);
                }
                p.push((ip, PROBES));
            }
        }
    }

    /// A Neighbor Solicitation for `target` (counted with the ARP requests),
    /// from our first address, hop limit 255 (RFC 4861 7.1.1).
    fn solicit(&mut self, target: std::net::Ipv6Addr) {
        let Some(src) = self.cfg.iface.ip6.nth(0).or(self.cfg.iface.link_local) else {
            return;
        };
        self.stats.arp_requests_sent += 1;
        let dst = wire::addr::solicited_node(&target);
        let ns = wire::Icmpv6Repr::NeighborSolicit {
            target_addr: target,
            source_lladdr: Some(self.cfg.iface.mac),
        };
        let frame = wire::Parsed::Ipv6(
            EthernetRepr {
                src_addr: self.cfg.iface.mac,
                dst_addr: wire::addr::multicast_mac(&dst),
                ethertype: EtherType::Ipv6,
            },
            wire::Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: wire::IpProtocol::Icmpv6,
                payload_len: ns.buffer_len(),
                hop_limit: 255,
                traffic_class: 0,
                flow_label: 0,
            },
            wire::frame::Ipv6Payload::Icmp(ns),
        );
        let buf = self.ctrl_buf(ETH + 40 + ns.buffer_len());
        let n = wire::emit_frame(&frame, buf);
        self.ctrl_commit(n);
    }

    /// What a Neighbor Discovery message may teach the table, as ARP does
    /// (RFC 4861 7.2.5, 7.2.3; Linux's ndisc): a solicited advertisement
    /// answering ours creates or moves an entry; a solicitation to us with
    /// the asker's link-layer address does too; an unsolicited one (the
    /// Override flag set) may move a known host, per `GratuitousArp`.
    pub(super) fn learn_from_nd(
        &mut self,
        now: Instant,
        src: std::net::Ipv6Addr,
        m: &wire::Icmpv6Repr,
    ) {
        let (ip, mac, solicited_reply, request_to_us, overrides) = match *m {
            wire::Icmpv6Repr::NeighborAdvert {
                flags,
                target_addr,
                target_lladdr: Some(mac),
            } => (
                target_addr,
                mac,
                flags.contains(wire::NdFlags::SOLICITED),
                false,
                flags.contains(wire::NdFlags::OVERRIDE),
            ),
            wire::Icmpv6Repr::NeighborSolicit {
                target_addr,
                source_lladdr: Some(mac),
            } if self.cfg.iface.owns6(&target_addr) && !src.is_unspecified() => {
                (src, mac, false, true, false)
            }
            _ => return,
        };
        let Some(ip) = A::from_v6(ip) else {
            return;
        };
        if !mac.is_unicast() || A::owned(&self.cfg.iface, &ip) || !A::host_source(&ip) {
            self.stats.neighbours_refused += 1;
            return;
        }
        let asked = solicited_reply
            && match self.neigh.pending.iter().position(|(p, _)| *p == ip) {
                Some(i) => {
                    self.neigh.pending.swap_remove(i);
                    true
                }
                None => false,
            };
        if !asked && !request_to_us && !overrides {
            // An advertisement we did not ask for, without Override: no change.
            return;
        }
        self.learn(now, ip, mac, asked || request_to_us);
    }

    /// `ip` is at `mac`: `confirmed` (an answer to us, a request to us)
    /// creates or refreshes an entry; otherwise it may only move a known,
    /// learnt host (`GratuitousArp`).
    fn learn(&mut self, now: Instant, ip: A, mac: EthernetAddress, confirmed: bool) {
        let full = self.neigh.map.len() >= self.cfg.neighbour_capacity;
        let known = self.neigh.map.get_mut(&ip);
        if confirmed {
            match known {
                Some(e) if e.fixed => {}
                Some(e) => {
                    if e.mac != mac {
                        self.stats.neighbours_learned += 1;
                    }
                    *e = Entry {
                        mac,
                        confirmed: now,
                        probes: 0,
                        fixed: false,
                    };
                }
                None if full => {
                    self.stats.neighbours_full += 1;
                }
                None => {
                    self.stats.neighbours_learned += 1;
                    let e = Entry {
                        mac,
                        confirmed: now,
                        probes: 0,
                        fixed: false,
                    };
                    self.neigh.map.insert(ip, e);
                }
            }
            return;
        }
        match known {
            Some(e) if e.mac == mac => {}
            Some(e) if !e.fixed && self.cfg.gratuitous_arp == GratuitousArp::UpdateKnown => {
                e.mac = mac;
                self.stats.neighbours_learned += 1;
            }
            _ => self.stats.neighbours_refused += 1,
        }
    }

    /// What an ARP packet may teach the table (see `Neighbours`).
    pub(super) fn learn_from_arp(&mut self, now: Instant, a: &wire::ArpRepr) {
        let (ip4, mac) = (a.source_protocol_addr, a.source_hardware_addr);
        if !plausible(ip4, mac) || self.cfg.iface.owns(ip4) {
            // An address probe (sender 0.0.0.0, RFC 5227) teaches nothing
            // either; it is still answered.
            if u32::from(ip4) != 0 {
                self.stats.neighbours_refused += 1;
            }
            return;
        }
        // (An IPv6 shard keeps no IPv4 neighbours.)
        let Some(ip) = A::from_v4(ip4) else {
            return;
        };
        let to_us = self.cfg.iface.owns(a.target_protocol_addr);
        let asked = a.operation == wire::ArpOperation::Reply
            && to_us
            && match self.neigh.pending.iter().position(|(p, _)| *p == ip) {
                Some(i) => {
                    self.neigh.pending.swap_remove(i);
                    true
                }
                None => false,
            };
        let request_to_us = a.operation == wire::ArpOperation::Request && to_us;
        // Unsolicited: never creates; may move a known host.
        self.learn(now, ip, mac, asked || request_to_us);
    }

    /// Once a second: learnt entries not confirmed for `neighbour_reachable`
    /// are asked for again, and forgotten after `PROBES` unanswered probes;
    /// unanswered requests stop counting as asked.
    pub(super) fn age_neighbours(&mut self, now: Instant) {
        if now < self.neigh.next_sweep {
            return;
        }
        self.neigh.next_sweep = now + SWEEP;
        self.neigh.pending.retain_mut(|(_, left)| {
            *left -= 1;
            *left > 0
        });
        let reachable = self.cfg.neighbour_reachable;
        let mut probe = std::mem::take(&mut self.neigh.probe);
        probe.clear();
        let mut expired = 0;
        self.neigh.map.retain(|ip, e| {
            if e.fixed || now.saturating_since(e.confirmed) <= reachable {
                return true;
            }
            if e.probes == PROBES {
                expired += 1;
                return false;
            }
            e.probes += 1;
            probe.push(*ip);
            true
        });
        self.stats.neighbours_expired += expired;
        for &ip in &probe {
            self.request_arp(ip);
        }
        self.neigh.probe = probe;
    }

    /// ARP and ICMP: the responder answers or counts the drop.
    pub(super) fn control_reply(&mut self, frame: &[u8]) {
        let before = self.responder.stats;
        self.ctrl_buf(frame.len().max(crate::shard::Responder::MIN_OUT));
        let buf = &mut self.ctrl[self.ctrl_used - 1];
        let r = self.responder.handle(frame, buf);
        let after = self.responder.stats;
        self.stats.arp_answered += after.arp_requests_answered - before.arp_requests_answered;
        self.stats.icmp_answered += after.icmp_echo_answered - before.icmp_echo_answered;
        match r {
            Ok(Some(n)) => self.ctrl_commit(n),
            Ok(None) => self.ctrl_cancel(),
            Err(d) => {
                self.stats.drop(d);
                self.ctrl_cancel();
            }
        }
    }
}
