//! One fixture per TCP state and a test per (state, event) RFC 9293 names
//! (with RFC 5961, RFC 1337, RFC 7323, RFC 2018, RFC 6298, RFC 1122 rules).
//! Names read `<state>_<event>`.

mod common;
use common::tcp::*;
use sluice::tcp::{
    CloseReason, Connection, DataAfterClose, Event, Keepalive, SegmentVerdict, State, TcpConfig,
    rst_reply,
};
use sluice::time::Instant;
use sluice::wire::{SeqNumber, TcpControl};
use std::time::Duration;

fn cfg() -> TcpConfig {
    TcpConfig::default()
}

// ---- fixtures: each reaches its state through real transitions ----

/// A in SYN_SENT (its SYN captured, not delivered).
fn syn_sent() -> (Pair, Seg) {
    let mut p = Pair::new(cfg());
    let syn = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(syn.len(), 1);
    assert_eq!(p.a.state(), State::SynSent);
    (p, syn[0].clone())
}

/// B in SYN_RECEIVED (its SYN-ACK captured, not delivered).
fn syn_received() -> (Pair, Seg) {
    let (mut p, syn) = syn_sent();
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &syn),
        SegmentVerdict::Accepted
    );
    assert_eq!(p.b.state(), State::SynReceived);
    let synack = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(synack.len(), 1);
    (p, synack[0].clone())
}

fn established() -> Pair {
    let mut p = Pair::new(cfg());
    p.handshake();
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
    events(&mut p.a);
    events(&mut p.b);
    p
}

/// ESTABLISHED with `DataAfterClose::Discard`: data after `close` is
/// acknowledged and dropped, not reset.
fn established_discarding() -> Pair {
    let mut p = Pair::new(TcpConfig {
        data_after_close: DataAfterClose::Discard,
        ..cfg()
    });
    p.handshake();
    events(&mut p.a);
    events(&mut p.b);
    p
}

/// A in FIN_WAIT_1 (its FIN captured, not delivered).
fn fin_wait_1() -> (Pair, Seg) {
    let mut p = established();
    p.a.shutdown();
    assert_eq!(p.a.state(), State::FinWait1);
    let fin = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].repr().control, TcpControl::Fin);
    (p, fin[0].clone())
}

/// A in FIN_WAIT_2, B in CLOSE_WAIT.
fn fin_wait_2() -> Pair {
    let (mut p, fin) = fin_wait_1();
    deliver(&mut p.b, p.now, &p.cfg, &fin);
    p.exchange();
    assert_eq!(p.a.state(), State::FinWait2);
    assert_eq!(p.b.state(), State::CloseWait);
    p
}

/// B in LAST_ACK (its FIN captured), A in FIN_WAIT_2.
fn last_ack() -> (Pair, Seg) {
    let mut p = fin_wait_2();
    p.b.shutdown();
    assert_eq!(p.b.state(), State::LastAck);
    let fin = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(fin.len(), 1);
    (p, fin[0].clone())
}

/// A in TIME_WAIT, B in CLOSED.
fn time_wait() -> Pair {
    let (mut p, fin) = last_ack();
    deliver(&mut p.a, p.now, &p.cfg, &fin);
    assert_eq!(p.a.state(), State::TimeWait);
    p.exchange();
    assert_eq!(p.b.state(), State::Closed);
    p
}

/// Both in CLOSING (simultaneous close; each FIN delivered, ACKs not yet).
fn closing() -> (Pair, Seg, Seg) {
    let mut p = established();
    p.a.shutdown();
    p.b.shutdown();
    let fa = drain(&mut p.a, p.now, &p.cfg);
    let fb = drain(&mut p.b, p.now, &p.cfg);
    deliver(&mut p.b, p.now, &p.cfg, &fa[0]);
    deliver(&mut p.a, p.now, &p.cfg, &fb[0]);
    assert_eq!(p.a.state(), State::Closing);
    assert_eq!(p.b.state(), State::Closing);
    let aa = drain(&mut p.a, p.now, &p.cfg);
    let ab = drain(&mut p.b, p.now, &p.cfg);
    (p, aa[0].clone(), ab[0].clone())
}

#[test]
fn all_eleven_states_are_reached() {
    let mut seen = std::collections::BTreeSet::new();
    let c = cfg();
    let now = Instant::from_millis(1);
    seen.insert(Connection::listen(&c, addr(B), SeqNumber(1), now).state());
    let (p, _) = syn_sent();
    seen.insert(p.a.state());
    let (p, _) = syn_received();
    seen.insert(p.b.state());
    let p = established();
    seen.insert(p.a.state());
    let (p, _) = fin_wait_1();
    seen.insert(p.a.state());
    let p = fin_wait_2();
    seen.insert(p.a.state());
    seen.insert(p.b.state());
    let (p, _) = last_ack();
    seen.insert(p.b.state());
    let p = time_wait();
    seen.insert(p.a.state());
    seen.insert(p.b.state());
    let (p, _, _) = closing();
    seen.insert(p.a.state());
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), State::ALL.to_vec());
}

// ---- CLOSED ----

#[test]
fn closed_segment_dropped_and_rst_reply_per_rfc() {
    let mut p = time_wait();
    let s = forge(&p.b, &p.cfg, |r| r.payload = b"x");
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &s),
        SegmentVerdict::RstReply
    );
    // With ACK: <SEQ=SEG.ACK><CTL=RST>.
    let r = s.repr();
    let rst = rst_reply(&r).unwrap();
    assert_eq!(rst.control, TcpControl::Rst);
    assert_eq!(rst.seq_number, r.ack_number.unwrap());
    assert_eq!(rst.ack_number, None);
    // Without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    let syn = forge(&p.b, &p.cfg, |r| {
        r.control = TcpControl::Syn;
        r.ack_number = None;
        r.seq_number = SeqNumber(777);
    });
    let rst = rst_reply(&syn.repr()).unwrap();
    assert_eq!(
        (rst.seq_number, rst.ack_number),
        (SeqNumber(0), Some(SeqNumber(778)))
    );
    // An RST is never answered.
    let r2 = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert!(rst_reply(&r2.repr()).is_none());
}

/// RFC 9293 3.10.7.1: in CLOSED every segment but an RST is answered with an
/// RST. A connection reset a moment ago is CLOSED until its owner removes it
/// (after the rest of the receive burst): a segment reaching it then gets the
/// RST that no connection at all would give. (Found by the wire suite: an RST
/// and data back to back, the data dropped without an answer.)
#[test]
fn rfc9293_3_10_7_1_segment_to_a_connection_just_reset_is_answered_with_rst() {
    let mut p = established();
    let rst = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.b.state(), State::Closed);
    let data = forge(&p.b, &p.cfg, |r| r.payload = b"late");
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &data),
        SegmentVerdict::RstReply
    );
    let rst2 = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst2),
        SegmentVerdict::Dropped,
        "an RST is never answered"
    );
}

// ---- LISTEN ----

#[test]
fn listen_syn_goes_to_syn_received_with_negotiated_options() {
    let (p, synack) = syn_received();
    let r = synack.repr();
    assert_eq!(r.control, TcpControl::Syn);
    assert_eq!(r.ack_number, Some(SeqNumber(1001)));
    assert_eq!(r.seq_number, p.b.iss());
    assert_eq!(r.max_seg_size, Some(1460));
    assert!(r.sack_permitted && r.timestamp.is_some() && r.window_scale.is_some());
    assert_eq!(r.timestamp.unwrap().tsecr, p.b.ts_recent().unwrap());
}

#[test]
fn listen_rst_ack_and_bare_segments_are_dropped() {
    let c = cfg();
    let now = Instant::from_millis(5);
    for control in [TcpControl::Rst, TcpControl::None, TcpControl::Fin] {
        let mut l = Connection::listen(&c, addr(B), SeqNumber(9), now);
        l.set_remote(addr(A));
        let s = forge(&l, &c, |r| {
            r.control = control;
            r.ack_number = None;
        });
        assert_eq!(deliver(&mut l, now, &c, &s), SegmentVerdict::Dropped);
        assert_eq!(l.state(), State::Listen);
    }
    // An ACK to a listener: dropped here, answered with <SEQ=SEG.ACK><RST> by the owner.
    let mut l = Connection::listen(&c, addr(B), SeqNumber(9), now);
    l.set_remote(addr(A));
    let s = forge(&l, &c, |r| r.ack_number = Some(SeqNumber(4242)));
    assert_eq!(deliver(&mut l, now, &c, &s), SegmentVerdict::Dropped);
    assert_eq!(rst_reply(&s.repr()).unwrap().seq_number, SeqNumber(4242));
    assert!(drain(&mut l, now, &c).is_empty());
}

// ---- SYN_SENT ----

#[test]
fn syn_sent_syn_ack_establishes() {
    let (mut p, syn) = syn_sent();
    let r = syn.repr();
    assert_eq!(
        (r.control, r.ack_number, r.seq_number),
        (TcpControl::Syn, None, SeqNumber(1000))
    );
    deliver(&mut p.b, p.now, &p.cfg, &syn);
    let synack = drain(&mut p.b, p.now, &p.cfg);
    deliver(&mut p.a, p.now, &p.cfg, &synack[0]);
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(events(&mut p.a), vec![Event::Connected]);
    let ack = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr().ack_number, Some(p.b.iss() + 1));
}

#[test]
fn syn_sent_rst_with_acceptable_ack_is_refused() {
    let (mut p, _) = syn_sent();
    let s = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.seq_number = SeqNumber(0);
        r.ack_number = Some(SeqNumber(1001));
    });
    assert_eq!(deliver(&mut p.a, p.now, &p.cfg, &s), SegmentVerdict::Reset);
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(events(&mut p.a), vec![Event::Closed(CloseReason::Refused)]);
}

#[test]
fn syn_sent_rst_without_ack_or_bad_ack_is_ignored() {
    let (mut p, _) = syn_sent();
    let no_ack = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.ack_number = None;
    });
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &no_ack),
        SegmentVerdict::Dropped
    );
    let bad_ack = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.ack_number = Some(SeqNumber(5));
    });
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &bad_ack),
        SegmentVerdict::Dropped
    );
    // An unacceptable ACK (not a RST) is dropped; the owner answers <SEQ=SEG.ACK><RST>.
    let bad = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Syn;
        r.ack_number = Some(SeqNumber(999_999));
    });
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &bad),
        SegmentVerdict::RstReply
    );
    assert_eq!(
        rst_reply(&bad.repr()).unwrap().seq_number,
        SeqNumber(999_999)
    );
    assert_eq!(p.a.state(), State::SynSent);
}

#[test]
fn syn_sent_syn_is_simultaneous_open() {
    // Both sides connect to each other; the SYNs cross.
    let c = cfg();
    let now = Instant::from_millis(3);
    let mut a = Connection::connect(&c, tuple_ab(), SeqNumber(100), now);
    let mut b = Connection::connect(&c, tuple_ba(), SeqNumber(900), now);
    let sa = drain(&mut a, now, &c);
    let sb = drain(&mut b, now, &c);
    deliver(&mut a, now, &c, &sb[0]);
    deliver(&mut b, now, &c, &sa[0]);
    assert_eq!(a.state(), State::SynReceived);
    assert_eq!(b.state(), State::SynReceived);
    // Each answers with SYN,ACK; those complete the handshake.
    let sa = drain(&mut a, now, &c);
    let sb = drain(&mut b, now, &c);
    assert_eq!(sa[0].repr().control, TcpControl::Syn);
    assert_eq!(sa[0].repr().ack_number, Some(SeqNumber(901)));
    deliver(&mut a, now, &c, &sb[0]);
    deliver(&mut b, now, &c, &sa[0]);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    assert_eq!(events(&mut a), vec![Event::Connected]);
}

#[test]
fn syn_sent_timeout_retransmits_with_backoff_then_gives_up() {
    let (mut p, _) = syn_sent();
    let mut sent_at = vec![p.now];
    while let Some(t) = p.a.poll_timeout() {
        p.now = t;
        timeout(&mut p.a, p.now, &p.cfg);
        let s = drain(&mut p.a, p.now, &p.cfg);
        if p.a.state() == State::Closed {
            break;
        }
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].repr().control, TcpControl::Syn);
        sent_at.push(p.now);
    }
    // syn_retries retransmissions after the first, each interval doubling.
    assert_eq!(sent_at.len(), 1 + usize::from(p.cfg.syn_retries));
    for w in sent_at.windows(3) {
        assert_eq!((w[2] - w[1]).as_millis(), 2 * (w[1] - w[0]).as_millis());
    }
    assert_eq!(
        events(&mut p.a),
        vec![Event::Closed(CloseReason::TimedOutSyn)]
    );
    assert_eq!(p.a.poll_timeout(), None);
}

// ---- SYN_RECEIVED ----

#[test]
fn syn_received_ack_establishes() {
    let (mut p, synack) = syn_received();
    deliver(&mut p.a, p.now, &p.cfg, &synack);
    let ack = drain(&mut p.a, p.now, &p.cfg);
    deliver(&mut p.b, p.now, &p.cfg, &ack[0]);
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(events(&mut p.b), vec![Event::Connected]);
}

#[test]
fn syn_received_retransmitted_syn_resends_syn_ack() {
    let (mut p, first) = syn_received();
    let (_, syn) = syn_sent();
    deliver(&mut p.b, p.now, &p.cfg, &syn);
    let again = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].repr().seq_number, first.repr().seq_number);
    assert_eq!(again[0].repr().control, TcpControl::Syn);
}

#[test]
fn syn_received_rst_closes_and_bad_ack_is_dropped() {
    let (mut p, _) = syn_received();
    let bad = forge(&p.b, &p.cfg, |r| r.ack_number = Some(p.b.iss() + 50));
    // Dropped, and answered with <SEQ=SEG.ACK><CTL=RST> by the owner.
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &bad),
        SegmentVerdict::RstReply
    );
    assert_eq!(rst_reply(&bad.repr()).unwrap().seq_number, p.b.iss() + 50);
    assert_eq!(p.b.state(), State::SynReceived);
    let rst = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.b.state(), State::Closed);
}

#[test]
fn syn_received_timeout_gives_up() {
    let (mut p, _) = syn_received();
    let mut n = 0;
    while let Some(t) = p.b.poll_timeout() {
        p.now = t;
        timeout(&mut p.b, p.now, &p.cfg);
        n += drain(&mut p.b, p.now, &p.cfg).len();
    }
    assert_eq!(n, usize::from(p.cfg.syn_retries));
    assert_eq!(p.b.close_reason(), Some(CloseReason::TimedOutSyn));
}

// ---- ESTABLISHED ----

#[test]
fn established_data_in_order_is_readable_and_acked_after_two_segments() {
    let mut p = established();
    let mss = usize::from(p.a.snd_mss()) - 12;
    p.a.send(&p.cfg, &vec![7u8; mss]).unwrap();
    let s1 = drain(&mut p.a, p.now, &p.cfg);
    deliver(&mut p.b, p.now, &p.cfg, &s1[0]);
    assert_eq!(events(&mut p.b), vec![Event::Readable]);
    // One segment: the ACK is delayed (RFC 1122 4.2.3.2).
    assert!(drain(&mut p.b, p.now, &p.cfg).is_empty());
    let d = p.b.poll_timeout().unwrap();
    assert_eq!(d - p.now, p.cfg.delayed_ack);
    // A second full segment: ACK at once.
    p.a.send(&p.cfg, &vec![8u8; mss]).unwrap();
    let s2 = drain(&mut p.a, p.now, &p.cfg);
    deliver(&mut p.b, p.now, &p.cfg, &s2[0]);
    let acks = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].repr().ack_number, Some(p.a.snd_nxt()));
    let mut buf = vec![0u8; 2 * mss];
    assert_eq!(p.b.recv(&p.cfg, &mut buf), 2 * mss);
}

#[test]
fn established_delayed_ack_fires() {
    let mut p = established();
    p.a.send(&p.cfg, b"hello").unwrap();
    let s = drain(&mut p.a, p.now, &p.cfg);
    deliver(&mut p.b, p.now, &p.cfg, &s[0]);
    assert!(drain(&mut p.b, p.now, &p.cfg).is_empty());
    p.now = p.b.poll_timeout().unwrap();
    timeout(&mut p.b, p.now, &p.cfg);
    let acks = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].repr().ack_number, Some(p.a.snd_nxt()));
}

#[test]
fn established_segment_outside_window_is_acked_and_dropped() {
    let mut p = established();
    for seq in [p.b.rcv_nxt() - 5000, p.b.rcv_nxt() + 10_000_000] {
        let s = forge(&p.b, &p.cfg, |r| {
            r.seq_number = seq;
            r.payload = b"zzzz";
        });
        assert_eq!(
            deliver(&mut p.b, p.now, &p.cfg, &s),
            SegmentVerdict::Dropped
        );
        let ack = drain(&mut p.b, p.now, &p.cfg);
        assert_eq!(ack.len(), 1, "out-of-window segment gets an ACK");
        assert_eq!(ack[0].repr().ack_number, Some(p.b.rcv_nxt()));
        assert_eq!(p.b.recv_available(), 0);
    }
}

/// RFC 9293 3.10.7.4 (first check) answers an unacceptable segment with an
/// ACK. Unthrottled, that lets a forger bounce ACKs off sluice at a victim,
/// or two confused endpoints ACK each other forever. As Linux does
/// (tcp_invalid_ratelimit, `tcp_oow_rate_limited`), such ACKs go out at most
/// once per `invalid_ack_ratelimit` (500 ms) per connection — for segments
/// without data and SYNs; an unacceptable data segment is still ACKed each
/// time (its sender needs the ACK, and it costs the sender as much as us).
#[test]
fn rfc9293_3_10_7_4_unacceptable_segment_acks_rate_limited() {
    let mut p = established();
    assert_eq!(p.cfg.invalid_ack_ratelimit, Duration::from_millis(500));
    let far = p.b.rcv_nxt() + 10_000_000;
    let oow = forge(&p.b, &p.cfg, |r| r.seq_number = far);
    let stale = forge(&p.b, &p.cfg, |r| {
        r.timestamp = Some(sluice::wire::TcpTimestamp {
            tsval: p.b.ts_recent().unwrap().wrapping_sub(10),
            tsecr: 0,
        });
    });
    let mut acks = 0;
    for s in [&oow, &stale, &oow, &stale, &oow] {
        assert_eq!(deliver(&mut p.b, p.now, &p.cfg, s), SegmentVerdict::Dropped);
        acks += drain(&mut p.b, p.now, &p.cfg).len();
    }
    assert_eq!(acks, 1, "one ACK for five unacceptable ACKs in a burst");
    assert_eq!(stats(&p.b).invalid_acks_limited, 4);
    // Data out of the window is answered every time.
    let data = forge(&p.b, &p.cfg, |r| {
        r.seq_number = far;
        r.payload = b"zz";
    });
    deliver(&mut p.b, p.now, &p.cfg, &data);
    assert_eq!(drain(&mut p.b, p.now, &p.cfg).len(), 1);
    // Half a second later, the next one is answered again.
    let later = p.now + Duration::from_millis(500);
    deliver(&mut p.b, later, &p.cfg, &oow);
    assert_eq!(drain(&mut p.b, later, &p.cfg).len(), 1);
    assert_eq!(p.b.state(), State::Established);
}

/// RFC 1191 (path MTU discovery) with RFC 5927 4.1: an ICMP "fragmentation
/// needed" naming a next-hop MTU lowers the connection's MSS to fit it (never
/// below a floor: Linux's min_pmtu, 552 bytes), and what is in flight is sent
/// again in the smaller size — but only if the quoted sequence number is one
/// we sent and that is not yet acknowledged (SND.UNA <= seq < SND.NXT), so a
/// blind forger cannot shrink a connection's segments.
#[test]
fn rfc1191_frag_needed_lowers_mss_once_rfc5927_checks_pass() {
    let mut p = established();
    let data = vec![7u8; 3000];
    p.a.send(&p.cfg, &data).unwrap();
    let first = drain(&mut p.a, p.now, &p.cfg);
    assert!(first[0].repr().payload.len() > 1400);
    let una = p.a.snd_una();
    // Quoting a sequence number outside the flight: ignored.
    for bad in [una - 1, una + 100_000] {
        assert!(!p.a.path_mtu_reduced(1280, bad));
    }
    assert_eq!(p.a.snd_mss(), 1460);
    // A good one: the MSS fits 1280 bytes, the flight goes again.
    assert!(p.a.path_mtu_reduced(1280, una));
    assert_eq!(p.a.snd_mss(), 1280 - 40);
    let again = drain(&mut p.a, p.now, &p.cfg);
    assert!(!again.is_empty(), "the flight is resent");
    for s in &again {
        assert!(s.bytes.len() <= 1280 - 20, "{} bytes", s.bytes.len());
    }
    assert_eq!(again[0].repr().seq_number, una);
    // A tiny MTU is clamped to the floor.
    assert!(p.a.path_mtu_reduced(68, una));
    assert_eq!(p.a.snd_mss(), 552 - 40);
}

/// RFC 5927 4.1 asks that the quoted sequence number lie in SND.UNA..SND.NXT,
/// both ends included, as Linux checks it: with nothing in flight (SND.UNA =
/// SND.NXT, the quote of a pure ACK) the message is still valid, and the next
/// data must fit the new path MTU. (Found by the wire suite: with an empty
/// flight, sluice ignored it and sent 1393-byte datagrams past MTU 1000.)
#[test]
fn rfc5927_4_1_frag_needed_quoting_snd_nxt_with_nothing_in_flight_is_valid() {
    let mut p = established();
    let una = p.a.snd_una();
    assert!(
        p.a.path_mtu_reduced(1000, una),
        "SND.UNA = SND.NXT is in the range"
    );
    assert!(!p.a.path_mtu_reduced(1000, una + 1), "past SND.NXT is not");
    p.a.send(&p.cfg, &[7u8; 1400]).unwrap();
    for s in drain(&mut p.a, p.now, &p.cfg) {
        assert!(
            s.bytes.len() + 20 <= 1000,
            "a {}-byte datagram",
            s.bytes.len() + 20
        );
    }
}

#[test]
fn established_rst_exact_resets() {
    let mut p = established();
    let rst = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(
        events(&mut p.b),
        vec![Event::Closed(CloseReason::ResetByPeer)]
    );
}

#[test]
fn established_rst_in_window_gets_challenge_ack() {
    let mut p = established();
    let rst = forge(&p.b, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.seq_number = p.b.rcv_nxt() + 100;
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::ChallengeAck
    );
    assert_eq!(p.b.state(), State::Established);
    let ack = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr().ack_number, Some(p.b.rcv_nxt()));
}

#[test]
fn established_rst_out_of_window_is_ignored_silently() {
    let mut p = established();
    let rst = forge(&p.b, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.seq_number = p.b.rcv_nxt() + 5_000_000;
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Dropped
    );
    assert!(drain(&mut p.b, p.now, &p.cfg).is_empty());
    assert_eq!(p.b.state(), State::Established);
}

#[test]
fn established_syn_gets_challenge_ack() {
    let mut p = established();
    let syn = forge(&p.b, &p.cfg, |r| {
        r.control = TcpControl::Syn;
        r.ack_number = None;
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &syn),
        SegmentVerdict::ChallengeAck
    );
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(drain(&mut p.b, p.now, &p.cfg).len(), 1);
}

#[test]
fn established_ack_of_unsent_data_is_acked_and_dropped() {
    let mut p = established();
    let s = forge(&p.b, &p.cfg, |r| {
        r.ack_number = Some(p.b.snd_nxt() + 1000);
        r.payload = b"data";
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &s),
        SegmentVerdict::Dropped
    );
    assert_eq!(
        p.b.recv_available(),
        0,
        "the data of that segment is not taken"
    );
    let ack = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(p.b.snd_una(), p.b.snd_nxt());
}

#[test]
fn established_paws_drops_old_timestamp() {
    let mut p = established();
    let s = forge(&p.b, &p.cfg, |r| {
        r.payload = b"old";
        r.timestamp = Some(sluice::wire::TcpTimestamp {
            tsval: p.b.ts_recent().unwrap().wrapping_sub(10),
            tsecr: 0,
        });
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &s),
        SegmentVerdict::Dropped
    );
    assert_eq!(stats(&p.b).paws_drops, 1);
    assert_eq!(p.b.recv_available(), 0);
}

#[test]
fn established_fin_goes_to_close_wait() {
    let mut p = established();
    p.a.send(&p.cfg, b"last words").unwrap();
    p.a.shutdown();
    p.exchange();
    assert_eq!(p.b.state(), State::CloseWait);
    assert_eq!(events(&mut p.b), vec![Event::Readable, Event::PeerClosed]);
    let mut buf = [0u8; 32];
    let n = p.b.recv(&p.cfg, &mut buf);
    assert_eq!(&buf[..n], b"last words");
}

#[test]
fn established_fin_before_hole_waits_for_the_hole() {
    let mut p = established();
    p.a.send(&p.cfg, &vec![1u8; 3000]).unwrap();
    p.a.shutdown();
    let segs = drain(&mut p.a, p.now, &p.cfg);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    // Deliver everything but the first segment (the FIN is in the last).
    for s in &segs[1..] {
        deliver(&mut p.b, p.now, &p.cfg, s);
    }
    assert_eq!(
        p.b.state(),
        State::Established,
        "FIN beyond a hole is not processed"
    );
    assert!(!p.b.peer_closed());
    // SACK tells A what arrived.
    let acks = drain(&mut p.b, p.now, &p.cfg);
    assert!(acks.iter().any(|a| a.repr().sack_ranges[0].is_some()));
    deliver(&mut p.b, p.now, &p.cfg, &segs[0]);
    assert_eq!(p.b.state(), State::CloseWait);
    assert_eq!(p.b.recv_available(), 3000);
}

/// RFC 9293 3.7.1 and RFC 6691: the MSS a peer announces bounds the data of a
/// segment with a bare 20-byte header; every option a segment carries takes
/// its room from the data. With timestamps and three SACK blocks the header is
/// 60 bytes, so a segment carries at most MSS - 40 bytes of data. (Sending
/// MSS - 12 with SACK blocks made 1512-byte datagrams that a 1500-byte link
/// drops: exactly when both directions lose packets.)
#[test]
fn rfc9293_3_7_1_data_segments_with_sack_blocks_fit_the_mss() {
    let mut p = established();
    // B sends A four segments; the first and third are lost, so A holds two
    // out-of-order blocks and SACKs them on everything it sends.
    p.b.send(&p.cfg, &vec![3u8; 5 * 1448]).unwrap();
    let from_b = drain(&mut p.b, p.now, &p.cfg);
    assert!(from_b.len() >= 4);
    deliver(&mut p.a, p.now, &p.cfg, &from_b[1]);
    deliver(&mut p.a, p.now, &p.cfg, &from_b[3]);
    // A has a lot to send: each of its data segments carries SACK blocks.
    p.a.send(&p.cfg, &vec![4u8; 20 * 1448]).unwrap();
    let from_a = drain(&mut p.a, p.now, &p.cfg);
    let data: Vec<_> = from_a
        .iter()
        .filter(|s| !s.repr().payload.is_empty())
        .collect();
    assert!(!data.is_empty());
    for s in &data {
        let r = s.repr();
        assert!(
            r.sack_ranges[0].is_some(),
            "SACK blocks on every data segment"
        );
        assert!(
            r.header_len() + r.payload.len() <= 20 + usize::from(p.cfg.mss),
            "{}-byte header + {} bytes of data exceed MSS {} + 20",
            r.header_len(),
            r.payload.len(),
            p.cfg.mss
        );
    }
    // And the data still all arrives: B reassembles A's stream.
    for s in &from_a {
        deliver(&mut p.b, p.now, &p.cfg, s);
    }
    assert_eq!(
        p.b.recv_available(),
        data.iter().map(|s| s.repr().payload.len()).sum::<usize>()
    );
}

#[test]
fn established_three_dup_acks_fast_retransmit_only_the_hole() {
    let mut p = established();
    p.a.send(&p.cfg, &vec![5u8; 10 * 1448]).unwrap();
    let segs = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(segs.len(), 10);
    // Lose segment 3; B SACKs the rest.
    let mut acks = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if i != 2 {
            deliver(&mut p.b, p.now, &p.cfg, s);
            acks.extend(drain(&mut p.b, p.now, &p.cfg));
        }
    }
    let mut retransmitted = Vec::new();
    for a in &acks {
        deliver(&mut p.a, p.now, &p.cfg, a);
        retransmitted.extend(drain(&mut p.a, p.now, &p.cfg));
    }
    assert!(stats(&p.a).fast_retransmits >= 1);
    let lost = segs[2].repr();
    assert_eq!(retransmitted[0].repr().seq_number, lost.seq_number);
    assert!(
        retransmitted
            .iter()
            .all(|s| s.repr().seq_number == lost.seq_number || s.repr().payload.is_empty()),
        "only the hole is retransmitted"
    );
    deliver(&mut p.b, p.now, &p.cfg, &retransmitted[0]);
    assert_eq!(p.b.recv_available(), 10 * 1448);
}

#[test]
fn established_rto_retransmits_and_gives_up() {
    let mut p = established();
    p.a.send(&p.cfg, b"into the void").unwrap();
    let first = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(first.len(), 1);
    let mut retransmits = 0;
    let mut last_gap = Duration::ZERO;
    let mut last = p.now;
    while let Some(t) = p.a.poll_timeout() {
        p.now = t;
        timeout(&mut p.a, p.now, &p.cfg);
        let s = drain(&mut p.a, p.now, &p.cfg);
        if p.a.state() == State::Closed {
            break;
        }
        assert_eq!(s[0].repr().seq_number, first[0].repr().seq_number);
        let gap = p.now - last;
        assert!(gap >= last_gap, "backoff never shrinks");
        last_gap = gap;
        last = p.now;
        retransmits += 1;
    }
    assert_eq!(retransmits, usize::from(p.cfg.max_retries));
    assert_eq!(p.a.close_reason(), Some(CloseReason::TimedOutRetransmit));
    assert_eq!(
        events(&mut p.a),
        vec![Event::Closed(CloseReason::TimedOutRetransmit)]
    );
}

fn keepalive_cfg() -> TcpConfig {
    TcpConfig {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            count: 3,
        }),
        ..cfg()
    }
}

#[test]
fn established_keepalive_detects_dead_peer() {
    let mut p = Pair::new(keepalive_cfg());
    p.handshake();
    let start = p.now;
    let mut probes = 0;
    while let Some(t) = p.a.poll_timeout() {
        p.now = t;
        timeout(&mut p.a, p.now, &p.cfg);
        let s = drain(&mut p.a, p.now, &p.cfg);
        if p.a.state() == State::Closed {
            break;
        }
        // A probe: one below snd_una, no data.
        assert_eq!(s[0].repr().seq_number, p.a.snd_una() - 1);
        probes += 1;
    }
    assert_eq!(probes, 3);
    assert_eq!(p.a.close_reason(), Some(CloseReason::TimedOutKeepalive));
    assert_eq!(p.now - start, Duration::from_secs(10 + 3 * 2));
}

#[test]
fn established_keepalive_answered_keeps_connection() {
    let mut p = Pair::new(keepalive_cfg());
    p.handshake();
    for _ in 0..5 {
        p.advance(Duration::from_secs(60));
    }
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
}

#[test]
fn established_zero_window_is_probed() {
    let c = TcpConfig {
        recv_buffer: 4096,
        ..cfg()
    };
    let mut p = Pair::new(c);
    p.handshake();
    p.a.send(&p.cfg, &vec![3u8; 20_000]).unwrap();
    p.exchange();
    // B's application reads nothing. Sender SWS avoidance holds back the
    // sub-MSS remainder, so the persist timer is armed (no ACK will come)...
    assert!(p.b.recv_available() >= 4096 - 1448);
    assert!(p.a.poll_timeout().is_some(), "persist timer armed");
    // ...and when it fires the remainder goes (RFC 1122's override); then the
    // window is zero and the timer keeps probing.
    p.advance(Duration::from_secs(2));
    assert_eq!(p.b.recv_available(), 4096);
    let before = p.a.snd_nxt();
    p.advance(Duration::from_secs(5));
    assert!(
        p.a.poll_timeout().is_some(),
        "persist timer armed on a zero window"
    );
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(
        p.b.recv_available(),
        4096,
        "probes beyond a zero window are not taken"
    );
    // Reading opens the window; a window update gets the data moving again.
    let mut buf = vec![0u8; 4096];
    p.b.recv(&p.cfg, &mut buf);
    p.exchange();
    assert!(p.a.snd_nxt() > before);
    let mut total = 4096;
    for _ in 0..50 {
        total += p.b.recv(&p.cfg, &mut buf);
        p.exchange();
        p.advance(Duration::from_millis(300));
    }
    total += p.b.recv(&p.cfg, &mut buf);
    assert_eq!(total, 20_000);
}

// ---- FIN_WAIT_1 ----

#[test]
fn fin_wait_1_ack_of_fin_goes_to_fin_wait_2() {
    let p = fin_wait_2();
    assert_eq!(p.a.state(), State::FinWait2);
}

#[test]
fn fin_wait_1_fin_ack_goes_straight_to_time_wait() {
    let (mut p, fin) = fin_wait_1();
    deliver(&mut p.b, p.now, &p.cfg, &fin);
    // B closes at once: its FIN carries the ACK of A's FIN.
    p.b.shutdown();
    let segs = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(segs.len(), 1);
    let r = segs[0].repr();
    assert_eq!(r.control, TcpControl::Fin);
    assert_eq!(r.ack_number, Some(p.a.snd_nxt()));
    deliver(&mut p.a, p.now, &p.cfg, &segs[0]);
    assert_eq!(p.a.state(), State::TimeWait);
}

#[test]
fn fin_wait_1_fin_goes_to_closing_then_time_wait() {
    let (mut p, ack_from_a, ack_from_b) = closing();
    deliver(&mut p.a, p.now, &p.cfg, &ack_from_b);
    deliver(&mut p.b, p.now, &p.cfg, &ack_from_a);
    assert_eq!(p.a.state(), State::TimeWait);
    assert_eq!(p.b.state(), State::TimeWait);
}

// ---- FIN_WAIT_2 / CLOSE_WAIT (half-close) ----

#[test]
fn close_wait_data_keeps_flowing_to_the_peer() {
    let mut p = fin_wait_2();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while got.len() < data.len() {
        sent += p.b.send(&p.cfg, &data[sent..]).unwrap();
        p.exchange();
        let n = p.a.recv(&p.cfg, &mut buf);
        got.extend_from_slice(&buf[..n]);
        p.advance(Duration::from_millis(50));
    }
    assert_eq!(got, data);
    assert_eq!(p.a.state(), State::FinWait2);
    p.b.shutdown();
    p.exchange();
    assert_eq!(p.a.state(), State::TimeWait);
    assert_eq!(p.b.state(), State::Closed);
}

#[test]
fn fin_wait_2_times_out_after_close() {
    let mut p = established();
    p.a.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.a.state(), State::FinWait2);
    // B never closes.
    let t = p.a.poll_timeout().expect("FIN_WAIT_2 timer");
    assert_eq!(t - p.now, p.cfg.fin_wait_2_timeout.unwrap());
    p.now = t;
    timeout(&mut p.a, p.now, &p.cfg);
    assert_eq!(p.a.close_reason(), Some(CloseReason::FinWait2Timeout));
}

// ---- CLOSING, LAST_ACK ----

#[test]
fn closing_ack_goes_to_time_wait() {
    let (mut p, _, ack_from_b) = closing();
    deliver(&mut p.a, p.now, &p.cfg, &ack_from_b);
    assert_eq!(p.a.state(), State::TimeWait);
}

#[test]
fn last_ack_ack_closes() {
    let (mut p, fin) = last_ack();
    deliver(&mut p.a, p.now, &p.cfg, &fin);
    let ack = drain(&mut p.a, p.now, &p.cfg);
    deliver(&mut p.b, p.now, &p.cfg, &ack[0]);
    assert_eq!(p.b.state(), State::Closed);
    assert_eq!(
        events(&mut p.b).last(),
        Some(&Event::Closed(CloseReason::Normal))
    );
}

#[test]
fn last_ack_fin_is_retransmitted_on_timeout() {
    let (mut p, fin) = last_ack();
    p.now = p.b.poll_timeout().unwrap();
    timeout(&mut p.b, p.now, &p.cfg);
    let again = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].repr().control, TcpControl::Fin);
    assert_eq!(again[0].repr().seq_number, fin.repr().seq_number);
}

// ---- TIME_WAIT ----

#[test]
fn time_wait_reacks_retransmitted_fin_and_restarts_2msl() {
    let (mut p, fin) = last_ack();
    deliver(&mut p.a, p.now, &p.cfg, &fin);
    assert_eq!(p.a.state(), State::TimeWait);
    drain(&mut p.a, p.now, &p.cfg);
    let first_deadline = p.a.close_deadline().unwrap();
    assert_eq!(first_deadline - p.now, p.cfg.time_wait());
    // The ACK was lost: B retransmits its FIN 30 s later.
    p.now += Duration::from_secs(30);
    deliver(&mut p.a, p.now, &p.cfg, &fin);
    let ack = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(ack.len(), 1, "TIME_WAIT re-ACKs a retransmitted FIN");
    assert_eq!(ack[0].repr().ack_number, Some(fin.repr().seq_number + 1));
    assert_eq!(
        p.a.close_deadline().unwrap() - p.now,
        p.cfg.time_wait(),
        "2MSL restarted"
    );
}

#[test]
fn time_wait_expires_after_2msl() {
    let mut p = time_wait();
    let entered = p.now;
    p.now = p.a.poll_timeout().unwrap();
    assert_eq!(p.now - entered, Duration::from_secs(60));
    timeout(&mut p.a, p.now, &p.cfg);
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.a.close_reason(), Some(CloseReason::Normal));
}

#[test]
fn time_wait_ignores_rst_rfc1337() {
    let mut p = time_wait();
    let rst = forge(&p.a, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &rst),
        SegmentVerdict::Dropped
    );
    assert_eq!(p.a.state(), State::TimeWait);
}

#[test]
fn rst_in_every_synchronized_state() {
    // Exact RST: FIN_WAIT_1/2 and CLOSE_WAIT are reset; CLOSING and LAST_ACK close.
    let (mut p, _) = fin_wait_1();
    let rst = forge(&p.a, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.a.close_reason(), Some(CloseReason::ResetByPeer));
    let mut p = fin_wait_2();
    let rst = forge(&p.a, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    let rst = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.b.close_reason(), Some(CloseReason::ResetByPeer));
    let (mut p, _, _) = closing();
    let rst = forge(&p.a, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.a.state(), State::Closed);
    let (mut p, _) = last_ack();
    let rst = forge(&p.b, &p.cfg, |r| r.control = TcpControl::Rst);
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.b.state(), State::Closed);
    // In-window but not exact: challenge ACK in each.
    let (mut p, _) = fin_wait_1();
    let rst = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.seq_number = p.a.rcv_nxt() + 7;
    });
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &rst),
        SegmentVerdict::ChallengeAck
    );
}

// ---- application commands ----

#[test]
fn abort_sends_rst_and_peer_sees_reset() {
    let mut p = established();
    p.a.abort();
    assert_eq!(events(&mut p.a), vec![Event::Closed(CloseReason::Aborted)]);
    let rst = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].repr().control, TcpControl::Rst);
    deliver(&mut p.b, p.now, &p.cfg, &rst[0]);
    assert_eq!(p.b.close_reason(), Some(CloseReason::ResetByPeer));
}

#[test]
fn close_with_unread_data_resets() {
    let mut p = established();
    p.a.send(&p.cfg, b"unread").unwrap();
    p.exchange();
    p.b.close(p.now, &p.cfg);
    assert_eq!(p.b.close_reason(), Some(CloseReason::Aborted));
    p.exchange();
    assert_eq!(p.a.close_reason(), Some(CloseReason::ResetByPeer));
}

#[test]
fn send_after_shutdown_is_refused() {
    let mut p = established();
    p.a.shutdown();
    assert!(p.a.send(&p.cfg, b"late").is_err());
}

// ---- the TIME_WAIT record ----

mod time_wait_record {
    use super::*;
    use sluice::tcp::{TimeWaitRecord, TimeWaitVerdict};
    use sluice::wire::{TcpPacket, TcpRepr, TcpTimestamp};

    fn record() -> (Pair, TimeWaitRecord, Seg) {
        let (mut p, fin) = last_ack();
        deliver(&mut p.a, p.now, &p.cfg, &fin);
        drain(&mut p.a, p.now, &p.cfg);
        let r = TimeWaitRecord::<std::net::Ipv4Addr>::from_connection(
            &p.a,
            tuple_of(&p.a),
            p.now,
            p.cfg.time_wait(),
        )
        .expect("in TIME_WAIT");
        (p, r, fin)
    }

    #[test]
    fn is_at_most_64_bytes() {
        let n = std::mem::size_of::<TimeWaitRecord>();
        println!("TIME_WAIT record: {n} bytes");
        assert!(n <= 64, "{n} bytes");
    }

    #[test]
    fn only_from_time_wait() {
        let p = established();
        assert!(
            TimeWaitRecord::<std::net::Ipv4Addr>::from_connection(
                &p.a,
                tuple_of(&p.a),
                p.now,
                p.cfg.time_wait()
            )
            .is_none()
        );
    }

    #[test]
    fn reacks_retransmitted_fin_and_restarts_2msl() {
        let (mut p, mut r, fin) = record();
        assert_eq!(r.expires - p.now, p.cfg.time_wait());
        p.now += Duration::from_secs(40);
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &fin.repr()),
            TimeWaitVerdict::Ack
        );
        assert_eq!(r.expires - p.now, p.cfg.time_wait());
        let mut out = [0u8; 64];
        let n = r.emit_ack(p.now, &mut out);
        let t = r.tuple();
        let pkt = TcpPacket::new_checked(&out[..n]).unwrap();
        let ack = TcpRepr::parse(
            &pkt,
            *t.local.ip(),
            *t.remote.ip(),
            sluice::wire::ChecksumMode::Verify,
        )
        .unwrap();
        assert_eq!(ack.ack_number, Some(fin.repr().seq_number + 1));
        assert_eq!(ack.seq_number, p.a.snd_nxt());
        assert!(ack.timestamp.is_some());
        // The ACK is what the connection itself would have sent: B accepts it.
        let seg = Seg {
            bytes: out[..n].to_vec(),
            src: t.local,
            dst: t.remote,
        };
        deliver(&mut p.b, p.now, &p.cfg, &seg);
    }

    #[test]
    fn ignores_rst_rfc1337() {
        let (p, mut r, _) = record();
        let rst = forge(&p.a, &p.cfg, |x| x.control = TcpControl::Rst);
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &rst.repr()),
            TimeWaitVerdict::Drop
        );
    }

    #[test]
    fn new_syn_with_newer_timestamp_reopens_rfc6191() {
        let (p, mut r, _) = record();
        let recent = p.a.ts_recent().unwrap();
        let syn = |tsval: u32| {
            forge(&p.a, &p.cfg, |x| {
                x.control = TcpControl::Syn;
                x.ack_number = None;
                x.seq_number = SeqNumber(12345);
                x.timestamp = Some(TcpTimestamp { tsval, tsecr: 0 });
            })
        };
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &syn(recent + 1000).repr()),
            TimeWaitVerdict::NewSyn
        );
        assert_eq!(
            r.handle_segment(
                p.now,
                p.cfg.time_wait(),
                &syn(recent.wrapping_sub(5)).repr()
            ),
            TimeWaitVerdict::Ack
        );
    }

    #[test]
    fn new_syn_without_timestamps_needs_higher_sequence() {
        let c = TcpConfig {
            timestamps: false,
            ..cfg()
        };
        let mut p = Pair::new(c);
        p.handshake();
        p.a.shutdown();
        p.exchange();
        p.b.shutdown();
        p.exchange();
        assert_eq!(p.a.state(), State::TimeWait);
        let mut r = TimeWaitRecord::<std::net::Ipv4Addr>::from_connection(
            &p.a,
            tuple_of(&p.a),
            p.now,
            p.cfg.time_wait(),
        )
        .unwrap();
        let syn = |seq: SeqNumber| {
            forge(&p.a, &p.cfg, |x| {
                x.control = TcpControl::Syn;
                x.ack_number = None;
                x.seq_number = seq;
            })
        };
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &syn(r.rcv_nxt() + 100_000).repr()),
            TimeWaitVerdict::NewSyn
        );
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &syn(r.rcv_nxt() - 100_000).repr()),
            TimeWaitVerdict::Ack
        );
    }

    #[test]
    fn old_duplicates_are_acked_and_expiry_is_2msl() {
        let (p, mut r, _) = record();
        let old = forge(&p.a, &p.cfg, |x| {
            x.seq_number = p.a.rcv_nxt() - 3000;
            x.payload = b"old";
        });
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &old.repr()),
            TimeWaitVerdict::Ack
        );
        let bare = forge(&p.a, &p.cfg, |_| {});
        assert_eq!(
            r.handle_segment(p.now, p.cfg.time_wait(), &bare.repr()),
            TimeWaitVerdict::Drop
        );
        assert!(!r.is_expired(p.now + Duration::from_secs(59)));
        assert!(r.is_expired(p.now + Duration::from_secs(60)));
    }
}

#[test]
fn established_challenge_acks_are_rate_limited() {
    let mut p = established();
    let mut acked = 0;
    for i in 0..50u32 {
        let rst = forge(&p.b, &p.cfg, |r| {
            r.control = TcpControl::Rst;
            r.seq_number = p.b.rcv_nxt() + 10 + i;
        });
        deliver(&mut p.b, p.now, &p.cfg, &rst);
        acked += drain(&mut p.b, p.now, &p.cfg).len();
    }
    assert_eq!(acked, usize::from(p.cfg.challenge_acks_per_sec));
    assert_eq!(stats(&p.b).challenge_acks_limited, 40);
    assert_eq!(p.b.state(), State::Established);
    // A second later the budget is back.
    p.now += Duration::from_secs(1);
    let rst = forge(&p.b, &p.cfg, |r| {
        r.control = TcpControl::Rst;
        r.seq_number = p.b.rcv_nxt() + 5;
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::ChallengeAck
    );
}

// ---- RFC conformance (issue 13): each test shows one deviation, fixed ----

/// A's data waits on a window B has shut: A sent `first` bytes, B acknowledged
/// them with window 0, then A queued `more`. Returns the ACK B sent.
fn zero_window_sender(first: usize, more: usize) -> Pair {
    let mut p = established();
    p.a.send(&p.cfg, &vec![1u8; first]).unwrap();
    drain(&mut p.a, p.now, &p.cfg);
    let end = p.a.snd_nxt();
    let shut = forge(&p.a, &p.cfg, |r| {
        r.ack_number = Some(end);
        r.window_len = 0;
    });
    deliver(&mut p.a, p.now, &p.cfg, &shut);
    assert_eq!(p.a.snd_wnd(), 0);
    p.a.send(&p.cfg, &vec![2u8; more]).unwrap();
    assert!(
        drain(&mut p.a, p.now, &p.cfg).is_empty(),
        "nothing fits a zero window"
    );
    p
}

/// RFC 9293 3.8.6.1 and RFC 1122 4.2.2.17: with a zero send window the sender
/// probes at intervals that grow exponentially, and as long as the receiver
/// keeps acknowledging the probes it must keep the connection open, however
/// long the window stays shut. Answered probes are not failed retransmissions.
#[test]
fn rfc9293_3_8_6_1_zero_window_probes_continue_with_backoff() {
    let mut p = zero_window_sender(1000, 5000);
    let start = p.now;
    let mut probes = Vec::new();
    while p.now - start < Duration::from_secs(3600) {
        p.now = p.a.poll_timeout().expect("persist timer armed");
        timeout(&mut p.a, p.now, &p.cfg);
        assert_eq!(
            p.a.state(),
            State::Established,
            "gave up after {} probes",
            probes.len()
        );
        let segs = drain(&mut p.a, p.now, &p.cfg);
        assert_eq!(segs.len(), 1, "one probe per expiry");
        let r = segs[0].repr();
        // One octet, the first one the window has not taken.
        assert_eq!((r.seq_number, r.payload.len()), (p.a.snd_una(), 1));
        probes.push(p.now);
        // B answers every probe: still no room.
        let una = p.a.snd_una();
        let answer = forge(&p.a, &p.cfg, |r| {
            r.ack_number = Some(una);
            r.window_len = 0;
        });
        deliver(&mut p.a, p.now, &p.cfg, &answer);
        assert!(drain(&mut p.a, p.now, &p.cfg).is_empty());
    }
    assert!(probes.len() > 40, "{} probes in an hour", probes.len());
    let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "backoff never shrinks: {gaps:?}"
    );
    assert!(
        gaps[1] >= 2 * gaps[0] - Duration::from_millis(1),
        "exponential: {gaps:?}"
    );
    assert_eq!(
        *gaps.last().unwrap(),
        Duration::from(p.cfg.rto_max),
        "capped at the RTO maximum"
    );
    // The window opens: the data goes at once.
    let una = p.a.snd_una();
    let open = forge(&p.a, &p.cfg, |r| {
        r.ack_number = Some(una);
        r.window_len = 65535;
    });
    deliver(&mut p.a, p.now, &p.cfg, &open);
    let segs = drain(&mut p.a, p.now, &p.cfg);
    let sent: usize = segs.iter().map(|s| s.repr().payload.len()).sum();
    assert_eq!(sent, 5000);
    assert_eq!(segs[0].repr().seq_number, una);
}

/// RFC 1122 4.2.2.17 allows giving up on probes nobody answers: then the
/// connection ends after `max_retries` of them, as a retransmission would.
#[test]
fn rfc1122_4_2_2_17_unanswered_zero_window_probes_give_up() {
    let mut p = zero_window_sender(1000, 5000);
    let mut probes = 0;
    while let Some(t) = p.a.poll_timeout() {
        p.now = t;
        timeout(&mut p.a, p.now, &p.cfg);
        probes += drain(&mut p.a, p.now, &p.cfg).len();
        assert!(probes < 100, "probes forever with no answer");
    }
    assert_eq!(probes, usize::from(p.cfg.max_retries));
    assert_eq!(p.a.close_reason(), Some(CloseReason::TimedOutRetransmit));
}

/// RFC 9293 3.10.7.4, first check: with a zero receive window no segment with
/// data is acceptable, and an unacceptable segment is answered with an ACK
/// (<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>); a zero-window probe at RCV.NXT is
/// how the sender learns whether the window has opened.
#[test]
fn rfc9293_3_10_7_4_zero_window_probe_is_acked() {
    let c = TcpConfig {
        recv_buffer: 4096,
        ..cfg()
    };
    let mut p = Pair::new(c);
    p.handshake();
    p.a.send(&p.cfg, &vec![3u8; 4096]).unwrap();
    p.exchange();
    assert_eq!(p.b.recv_available(), 4096, "B's application reads nothing");
    p.now += Duration::from_secs(1);
    timeout(&mut p.b, p.now, &p.cfg);
    drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(p.b.last_window_field(), 0);
    let rcv_nxt = p.b.rcv_nxt();
    let probe = forge(&p.b, &p.cfg, |r| r.payload = b"?");
    deliver(&mut p.b, p.now, &p.cfg, &probe);
    let ack = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(ack.len(), 1, "the probe is answered");
    let r = ack[0].repr();
    assert_eq!(r.ack_number, Some(rcv_nxt), "the probe byte is not taken");
    assert_eq!(r.window_len, 0);
    assert!(r.payload.is_empty());
    assert_eq!(p.b.recv_available(), 4096);
}

/// RFC 9293 3.10.7.4 (first check): with RCV.WND zero no segment carrying
/// data is acceptable; RCV.WND is the window we advertised, not the room we
/// happen to have. After the application read a little (too little to open
/// the window, RFC 1122 4.2.3.3), a probe byte is still refused and ACKed at
/// RCV.NXT at once, as Linux does. (Found by the wire suite: sluice took the
/// byte into room it had never offered.)
#[test]
fn rfc9293_3_10_7_4_probe_into_unadvertised_room_is_not_taken() {
    let c = TcpConfig {
        recv_buffer: 4096,
        ..cfg()
    };
    let mut p = Pair::new(c);
    p.handshake();
    p.a.send(&p.cfg, &vec![3u8; 4096]).unwrap();
    p.exchange();
    p.now += Duration::from_secs(1);
    timeout(&mut p.b, p.now, &p.cfg);
    drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(p.b.last_window_field(), 0);
    // The application takes 100 bytes: room, but not enough to advertise.
    let mut buf = [0u8; 100];
    assert_eq!(p.b.recv(&p.cfg, &mut buf), 100);
    drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(
        p.b.last_window_field(),
        0,
        "receiver SWS avoidance holds the window"
    );
    let rcv_nxt = p.b.rcv_nxt();
    let probe = forge(&p.b, &p.cfg, |r| r.payload = b"?");
    deliver(&mut p.b, p.now, &p.cfg, &probe);
    assert_eq!(p.b.rcv_nxt(), rcv_nxt, "the probe byte is not taken");
    let ack = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(ack.len(), 1, "the probe is answered at once");
    assert_eq!(ack[0].repr().ack_number, Some(rcv_nxt));
    assert_eq!(p.b.recv_available(), 4096 - 100);
}

/// RFC 7323 2.2: the window field of a SYN or SYN,ACK segment is never
/// scaled. A SYN-ACK saying window 1000 with window scale 7 allows 1000
/// bytes, not 128,000.
#[test]
fn rfc7323_2_2_syn_ack_window_is_not_scaled() {
    let synack = |a: &Connection, c: &TcpConfig| {
        forge(a, c, |r| {
            r.control = TcpControl::Syn;
            r.seq_number = SeqNumber(5000);
            r.ack_number = Some(SeqNumber(1001));
            r.window_len = 1000;
            r.window_scale = Some(7);
            r.max_seg_size = Some(1460);
        })
    };
    // Active open: SYN-SENT takes the SYN-ACK.
    let (mut p, _) = syn_sent();
    let s = synack(&p.a, &p.cfg);
    deliver(&mut p.a, p.now, &p.cfg, &s);
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.a.snd_wnd(), 1000);
    p.a.send(&p.cfg, &vec![0u8; 5000]).unwrap();
    let sent: usize = drain(&mut p.a, p.now, &p.cfg)
        .iter()
        .map(|s| s.repr().payload.len())
        .sum();
    assert_eq!(sent, 1000, "no more than the peer's first window");
    // Simultaneous open: SYN-RECEIVED takes the SYN,ACK that repeats the SYN.
    let c = cfg();
    let now = Instant::from_millis(3);
    let mut a = Connection::connect(&c, tuple_ab(), SeqNumber(1000), now);
    drain(&mut a, now, &c);
    let syn = forge(&a, &c, |r| {
        r.control = TcpControl::Syn;
        r.seq_number = SeqNumber(5000);
        r.ack_number = None;
        r.window_len = 1000;
        r.window_scale = Some(7);
    });
    deliver(&mut a, now, &c, &syn);
    assert_eq!(a.state(), State::SynReceived);
    drain(&mut a, now, &c);
    let s = synack(&a, &c);
    deliver(&mut a, now, &c, &s);
    assert_eq!(a.state(), State::Established);
    assert_eq!(a.snd_wnd(), 1000);
}

/// RFC 9293 3.7.1 and RFC 6691: the MSS counts data and TCP options together
/// (beyond the 20-byte header), so a sender subtracts every option it puts on
/// a segment, SACK blocks as well as timestamps; otherwise the datagram
/// outgrows the path MTU exactly when both directions are losing packets.
#[test]
fn rfc9293_3_7_1_data_with_sack_blocks_fits_the_mss() {
    let mut p = established();
    // B -> A with two holes: A's segments now carry two SACK blocks.
    p.b.send(&p.cfg, &vec![9u8; 5 * 1448]).unwrap();
    let from_b = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(from_b.len(), 5);
    deliver(&mut p.a, p.now, &p.cfg, &from_b[1]);
    deliver(&mut p.a, p.now, &p.cfg, &from_b[3]);
    drain(&mut p.a, p.now, &p.cfg);
    p.a.send(&p.cfg, &vec![1u8; 20_000]).unwrap();
    let segs = drain(&mut p.a, p.now, &p.cfg);
    let mss = usize::from(p.a.snd_mss());
    for s in &segs {
        let r = s.repr();
        assert_eq!(r.sack_ranges.iter().flatten().count(), 2);
        let options = s.bytes.len() - 20 - r.payload.len();
        assert!(
            options + r.payload.len() <= mss,
            "{} option bytes + {} data > MSS {mss}",
            options,
            r.payload.len()
        );
    }
    // Full segments still use all of it.
    assert_eq!(segs[0].bytes.len() - 20, mss);
}

/// RFC 9293 3.10.7.4, eighth step: a FIN is processed once everything before
/// it has arrived, here in the same segment as data that nobody will read
/// because the application has closed. The data must not hide the FIN.
#[test]
fn rfc9293_3_10_7_4_eighth_fin_with_data_after_close_is_processed() {
    let mut p = established_discarding();
    p.a.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.a.state(), State::FinWait2);
    p.b.send(&p.cfg, b"late words").unwrap();
    p.b.shutdown();
    let segs = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(segs.len(), 1);
    let r = segs[0].repr();
    assert_eq!((r.control, r.payload.len()), (TcpControl::Fin, 10));
    deliver(&mut p.a, p.now, &p.cfg, &segs[0]);
    assert_eq!(p.a.state(), State::TimeWait, "the FIN is taken");
    let ack = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr().ack_number, Some(r.seq_number + 11));
}

/// RFC 9293 3.10.7.4 (seventh step) with RFC 2018: data discarded after the
/// application closed still moves RCV.NXT, and the out-of-order data held
/// beyond it moves with it, so SACK blocks keep naming what really arrived.
#[test]
fn rfc2018_sack_blocks_stay_right_when_data_is_discarded_after_close() {
    let mut p = established_discarding();
    p.b.send(&p.cfg, &vec![4u8; 3000]).unwrap();
    let segs = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(segs.len(), 3);
    let last = segs.last().unwrap().repr();
    let (l, r) = (last.seq_number, last.seq_number + last.payload.len() as u32);
    // The last segment arrives first (out of order), then A closes.
    deliver(&mut p.a, p.now, &p.cfg, segs.last().unwrap());
    drain(&mut p.a, p.now, &p.cfg);
    p.a.close(p.now, &p.cfg);
    drain(&mut p.a, p.now, &p.cfg);
    // The first segment fills part of the hole: it is discarded, and A's SACK
    // block still names exactly the out-of-order segment.
    deliver(&mut p.a, p.now, &p.cfg, &segs[0]);
    let ack = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    let a = ack[0].repr();
    let first = segs[0].repr();
    assert_eq!(
        a.ack_number,
        Some(first.seq_number + first.payload.len() as u32)
    );
    assert_eq!(a.sack_ranges[0], Some((l, r)));
    // The rest of the hole: everything up to the end is acknowledged.
    for s in &segs[1..segs.len() - 1] {
        deliver(&mut p.a, p.now, &p.cfg, s);
    }
    let ack = drain(&mut p.a, p.now, &p.cfg);
    let a = ack.last().unwrap().repr();
    assert_eq!(a.ack_number, Some(r));
    assert_eq!(a.sack_ranges[0], None);
    assert_eq!(p.a.recv_available(), 0);
}

/// RFC 2018 section 8: a receiver may renege on data it SACKed, so after a
/// retransmission timeout the sender ignores (clears) its SACK information
/// and retransmits from the left edge of the window, SACKed data included.
#[test]
fn rfc2018_8_rto_clears_the_sack_scoreboard() {
    let mut p = established();
    p.a.send(&p.cfg, &vec![5u8; 6 * 1448]).unwrap();
    let segs = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(segs.len(), 6);
    // The first is lost; B SACKs the other five (one ACK is enough here).
    let una = p.a.snd_una();
    let (l, r) = (segs[1].repr().seq_number, p.a.snd_nxt());
    let sack = forge(&p.a, &p.cfg, |x| {
        x.ack_number = Some(una);
        x.sack_ranges[0] = Some((l, r));
    });
    deliver(&mut p.a, p.now, &p.cfg, &sack);
    drain(&mut p.a, p.now, &p.cfg);
    // The RTO: the first segment again.
    p.now = p.a.poll_timeout().unwrap();
    timeout(&mut p.a, p.now, &p.cfg);
    let again = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].repr().seq_number, una);
    // B reneged: it acknowledges the first segment and SACKs nothing. A goes
    // on with the second (slow start: two now), though it was SACKed once.
    let next = una + again[0].repr().payload.len() as u32;
    let ack = forge(&p.a, &p.cfg, |x| x.ack_number = Some(next));
    deliver(&mut p.a, p.now, &p.cfg, &ack);
    let more = drain(&mut p.a, p.now, &p.cfg);
    assert!(!more.is_empty(), "the reneged data is retransmitted");
    assert_eq!(more[0].repr().seq_number, next);
    assert_eq!(more[0].repr().payload.len(), 1448);
}

/// RFC 6298 5.7: if the SYN (or SYN-ACK) had to be retransmitted and the RTO
/// in use is under 3 s, the RTO is set to 3 s once data transfer begins
/// (there is no RTT sample: Karn).
#[test]
fn rfc6298_5_7_rto_is_3s_after_syn_retransmission() {
    let (mut p, _lost) = syn_sent();
    p.now = p.a.poll_timeout().unwrap();
    timeout(&mut p.a, p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.a.rto(), Duration::from_secs(3));
    // The passive side: its SYN-ACK was lost once.
    let (mut p, _lost) = syn_received();
    p.now = p.b.poll_timeout().unwrap();
    timeout(&mut p.b, p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(p.b.rto(), Duration::from_secs(3));
}

/// RFC 6582 3.2 (steps 1 and 2): three duplicate ACKs start fast retransmit
/// only if they cover more than "recover", which a retransmission timeout
/// sets to the highest sequence number sent. Duplicates below it come from
/// the timeout's own retransmissions and must not trigger another.
#[test]
fn rfc6582_3_2_no_fast_retransmit_below_recover_after_rto() {
    let mut p = established();
    p.a.send(&p.cfg, &vec![6u8; 10 * 1448]).unwrap();
    assert_eq!(drain(&mut p.a, p.now, &p.cfg).len(), 10);
    // Everything is lost: the RTO resends the first segment.
    p.now = p.a.poll_timeout().unwrap();
    timeout(&mut p.a, p.now, &p.cfg);
    let again = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(again.len(), 1);
    let una = p.a.snd_una() + again[0].repr().payload.len() as u32;
    let ack = forge(&p.a, &p.cfg, |r| r.ack_number = Some(una));
    deliver(&mut p.a, p.now, &p.cfg, &ack);
    drain(&mut p.a, p.now, &p.cfg);
    // Three duplicates of that ACK, all below recover.
    for _ in 0..3 {
        deliver(&mut p.a, p.now, &p.cfg, &ack);
        drain(&mut p.a, p.now, &p.cfg);
    }
    assert_eq!(stats(&p.a).dup_acks_in, 3);
    assert_eq!(stats(&p.a).fast_retransmits, 0);
}

/// RFC 7323 4.3: TS.Recent takes a segment's TSval only if the segment
/// starts at or before Last.ACK.sent, the acknowledgment number we last sent.
/// While an ACK is delayed the next in-order segment starts beyond it, so the
/// ACK that covers both echoes the earlier segment's timestamp and the peer's
/// RTT sample includes the delay.
#[test]
fn rfc7323_4_3_ts_recent_follows_last_ack_sent() {
    let mut p = established();
    let base = p.a.ts_recent().unwrap();
    let una = p.a.snd_una();
    let first = forge(&p.a, &p.cfg, |r| {
        r.payload = &[1u8; 100];
        r.timestamp.as_mut().unwrap().tsval = base + 10;
    });
    deliver(&mut p.a, p.now, &p.cfg, &first);
    assert!(
        drain(&mut p.a, p.now, &p.cfg).is_empty(),
        "the ACK is delayed"
    );
    let second = forge(&p.a, &p.cfg, |r| {
        r.payload = &[2u8; 100];
        r.ack_number = Some(una);
        r.timestamp.as_mut().unwrap().tsval = base + 20;
    });
    deliver(&mut p.a, p.now, &p.cfg, &second);
    assert_eq!(p.a.ts_recent(), Some(base + 10));
    let ack = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr().timestamp.unwrap().tsecr, base + 10);
    // With nothing left to acknowledge, the next segment's TSval is taken.
    let third = forge(&p.a, &p.cfg, |r| {
        r.payload = &[3u8; 100];
        r.timestamp.as_mut().unwrap().tsval = base + 30;
    });
    deliver(&mut p.a, p.now, &p.cfg, &third);
    assert_eq!(p.a.ts_recent(), Some(base + 30));
}

/// RFC 7323 3.2: once timestamps are agreed, every segment but the initial
/// SYN carries TSopt, an RST included (RFC 7323 5.2 lets the receiver judge
/// it without one, but the sender must send it).
#[test]
fn rfc7323_3_2_abort_rst_carries_timestamps() {
    let mut p = established();
    p.now += Duration::from_millis(7);
    p.a.abort();
    let rst = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(rst.len(), 1);
    let r = rst[0].repr();
    assert_eq!(r.control, TcpControl::Rst);
    let ts = r.timestamp.expect("TSopt on the RST");
    assert_eq!(ts.tsecr, p.a.ts_recent().unwrap());
    assert_eq!(
        ts.tsval,
        (p.now.as_millis() as u32).wrapping_add(p.a.ts_offset())
    );
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst[0]),
        SegmentVerdict::Reset
    );
}

/// RFC 9293 3.10.7.4 (TIME-WAIT): only a retransmission of the peer's FIN
/// restarts the 2 MSL timeout; a FIN outside the window is answered with an
/// ACK and leaves the timer alone (as `TimeWaitRecord` does).
#[test]
fn rfc9293_3_10_7_4_time_wait_restarts_only_on_retransmitted_fin() {
    let mut p = time_wait();
    let deadline = p.a.close_deadline().unwrap();
    p.now += Duration::from_secs(10);
    let far = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Fin;
        r.seq_number += 1_000_000;
    });
    deliver(&mut p.a, p.now, &p.cfg, &far);
    assert_eq!(p.a.close_deadline(), Some(deadline), "2MSL not restarted");
    assert_eq!(drain(&mut p.a, p.now, &p.cfg).len(), 1, "but ACKed");
    // The peer's FIN again (our ACK was lost): ACK and restart 2MSL.
    let again = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Fin;
        r.seq_number = r.seq_number - 1;
    });
    deliver(&mut p.a, p.now, &p.cfg, &again);
    assert_eq!(p.a.close_deadline(), Some(p.now + p.cfg.time_wait()));
    assert_eq!(drain(&mut p.a, p.now, &p.cfg).len(), 1);
}

/// RFC 9293 3.10.7.4, fifth check: the send window is updated only from an
/// ACK in SND.UNA =< SEG.ACK =< SND.NXT (and then by the SND.WL1/SND.WL2
/// rule); an old ACK (SEG.ACK < SND.UNA) says nothing about the window now,
/// even when its SEG.SEQ is newer.
#[test]
fn rfc9293_3_10_7_4_fifth_old_ack_does_not_update_the_window() {
    let mut p = established();
    p.a.send(&p.cfg, &vec![1u8; 3000]).unwrap();
    p.exchange();
    let una = p.a.snd_una();
    assert_eq!(una, p.a.snd_nxt());
    let data = forge(&p.a, &p.cfg, |r| r.payload = &[7u8; 10]);
    deliver(&mut p.a, p.now, &p.cfg, &data);
    let wnd = p.a.snd_wnd();
    assert!(wnd > 0);
    // Newer data, but an ACK from before SND.UNA, and a shut window.
    let old = forge(&p.a, &p.cfg, |r| {
        r.payload = &[8u8; 10];
        r.ack_number = Some(una - 1000);
        r.window_len = 0;
    });
    assert_eq!(
        deliver(&mut p.a, p.now, &p.cfg, &old),
        SegmentVerdict::Accepted
    );
    assert_eq!(p.a.recv_available(), 20, "the data is taken");
    assert_eq!(p.a.snd_wnd(), wnd, "the window is not");
}

/// RFC 9293 3.10.7.3 (SYN-SENT, fourth): a SYN,ACK that acknowledges our SYN
/// establishes the connection, and any text it carries is processed (from the
/// sixth step of 3.10.7.4 on): queued for the application and acknowledged.
#[test]
fn rfc9293_3_10_7_3_data_on_syn_ack_is_queued() {
    let (mut p, _) = syn_sent();
    let synack = forge(&p.a, &p.cfg, |r| {
        r.control = TcpControl::Syn;
        r.seq_number = SeqNumber(5000);
        r.ack_number = Some(SeqNumber(1001));
        r.max_seg_size = Some(1460);
        r.payload = b"hello";
    });
    deliver(&mut p.a, p.now, &p.cfg, &synack);
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.a.recv_available(), 5);
    let mut buf = [0u8; 16];
    assert_eq!(p.a.recv(&p.cfg, &mut buf), 5);
    assert_eq!(&buf[..5], b"hello");
    let ack = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].repr().ack_number, Some(SeqNumber(5006)));
}

/// RFC 9293 3.10.7.2 (LISTEN): after RST (ignored), ACK (answered with RST)
/// and SYN (taken), "any other text or control" is dropped: no answer.
#[test]
fn rfc9293_3_10_7_2_listen_drops_segments_without_syn_or_ack() {
    let c = cfg();
    let now = Instant::from_millis(1);
    let mut l = Connection::listen(&c, addr(B), SeqNumber(5000), now);
    l.set_remote(addr(A));
    for control in [TcpControl::None, TcpControl::Fin] {
        let s = forge(&l, &c, |r| {
            r.control = control;
            r.seq_number = SeqNumber(77);
            r.ack_number = None;
            r.payload = b"x";
        });
        assert_eq!(deliver(&mut l, now, &c, &s), SegmentVerdict::Dropped);
        assert_eq!(l.state(), State::Listen);
        assert!(drain(&mut l, now, &c).is_empty());
    }
}

/// RFC 9293 3.10.7.4 (fourth, SYN-RECEIVED): a SYN with a new ISN on the
/// 4-tuple of a passive SYN-RECEIVED connection would send the connection
/// back to LISTEN. Sluice keeps RFC 5961 4.2 instead, as Linux and the
/// synchronized states do: the SYN is answered with an ACK (rate limited) and
/// dropped. Why: returning to LISTEN on a SYN lets anyone who knows the
/// 4-tuple, but no sequence number, tear down a half-open connection; and a
/// peer that really restarted loses nothing: our ACK is unacceptable to its
/// SYN-SENT, its RST <SEQ=SEG.ACK> lands exactly on RCV.NXT and resets us
/// (RFC 9293 3.10.7.3), and its next SYN meets the listener afresh. One
/// round trip more, no blind reset. (A sluice listener is not a connection
/// either: the shard opens one per SYN, so "back to LISTEN" is "freed".)
#[test]
fn rfc9293_3_10_7_4_new_syn_in_syn_received_is_acked_not_listen() {
    let (mut p, _synack) = syn_received();
    // The peer restarted with another ISN (and its old SYN-ACK got lost).
    let mut a2 = Connection::connect(&p.cfg, tuple_ab(), SeqNumber(900_000), p.now);
    let syn2 = drain(&mut a2, p.now, &p.cfg);
    assert_eq!(syn2.len(), 1);
    deliver(&mut p.b, p.now, &p.cfg, &syn2[0]);
    assert_eq!(p.b.state(), State::SynReceived, "not sent back to LISTEN");
    assert_eq!(p.b.irs(), SeqNumber(1000), "the old SYN still stands");
    let ack = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(ack.len(), 1);
    let r = ack[0].repr();
    assert_eq!(
        (r.control, r.ack_number),
        (TcpControl::None, Some(SeqNumber(1001)))
    );
    // The peer finds that ACK unacceptable and resets it: <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(
        deliver(&mut a2, p.now, &p.cfg, &ack[0]),
        SegmentVerdict::RstReply
    );
    let rst = rst_reply(&r).unwrap();
    let rst = forge(&p.b, &p.cfg, |x| {
        x.control = rst.control;
        x.seq_number = rst.seq_number;
        x.ack_number = rst.ack_number;
        x.window_len = 0;
        x.timestamp = None;
    });
    assert_eq!(
        deliver(&mut p.b, p.now, &p.cfg, &rst),
        SegmentVerdict::Reset
    );
    assert_eq!(p.b.state(), State::Closed);
    // Its SYN again: a new connection from the listener, and the handshake.
    p.now = a2.poll_timeout().unwrap();
    timeout(&mut a2, p.now, &p.cfg);
    p.a = a2;
    p.b = Connection::listen(&p.cfg, addr(B), SeqNumber(70_000), p.now);
    p.b.set_remote(addr(A));
    p.exchange();
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(p.b.irs(), SeqNumber(900_000));
}

/// RFC 1122 4.2.2.13: a host that receives new data after the application
/// called CLOSE SHOULD send an RST to show the data was lost (the peer would
/// otherwise take it as delivered). Only new data does: the peer's late ACK
/// or FIN, and retransmissions of data already taken, close as usual.
#[test]
fn rfc1122_4_2_2_13_data_after_close_is_reset() {
    // A server that closes after its response: the client's ACK and FIN close
    // it normally.
    let mut p = established();
    p.b.send(&p.cfg, b"response").unwrap();
    p.b.close(p.now, &p.cfg);
    p.exchange();
    let mut buf = [0u8; 16];
    p.a.recv(&p.cfg, &mut buf);
    p.a.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.b.state(), State::TimeWait);
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.a.close_reason(), Some(CloseReason::Normal));
    assert_eq!(stats(&p.b).rsts_out, 0);
    // New data after close: RST, and both ends closed.
    let mut p = established();
    p.a.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.a.state(), State::FinWait2);
    // A retransmission of the handshake's byte range is no new data.
    let old = forge(&p.a, &p.cfg, |r| {
        r.seq_number = r.seq_number - 1;
        r.payload = b"x";
    });
    deliver(&mut p.a, p.now, &p.cfg, &old);
    assert_eq!(p.a.state(), State::FinWait2);
    drain(&mut p.a, p.now, &p.cfg);
    p.b.send(&p.cfg, b"late words").unwrap();
    p.exchange();
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.a.close_reason(), Some(CloseReason::Aborted));
    assert_eq!(p.b.close_reason(), Some(CloseReason::ResetByPeer));
    assert_eq!(stats(&p.a).rsts_out, 1);
    assert_eq!(stats(&p.a).resets_on_data_after_close, 1);
    // The other choice: ACK, discard, count, and close normally.
    // (The counters are per address and this test's third pair: deltas.)
    let mut p = established_discarding();
    let before = stats(&p.a);
    p.a.close(p.now, &p.cfg);
    p.exchange();
    p.b.send(&p.cfg, b"late words").unwrap();
    p.exchange();
    assert_eq!(p.a.state(), State::FinWait2);
    let after = stats(&p.a);
    let discarded = after.bytes_discarded_after_close - before.bytes_discarded_after_close;
    assert_eq!(discarded, 10);
    assert_eq!(after.rsts_out, before.rsts_out);
    p.b.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.a.state(), State::TimeWait);
}
