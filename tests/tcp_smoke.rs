mod common;
use common::tcp::*;
use sluice::tcp::{CloseReason, Event, State, TcpConfig};
use std::time::Duration;

#[test]
fn handshake_data_and_close() {
    let mut p = Pair::new(TcpConfig::default());
    p.handshake();
    assert_eq!(p.a.state(), State::Established);
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(events(&mut p.a), vec![Event::Connected]);
    assert_eq!(events(&mut p.b), vec![Event::Connected]);
    assert!(p.a.timestamps_enabled() && p.a.sack_enabled());

    let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    assert_eq!(p.a.send(&p.cfg, &data).unwrap(), 20_000);
    p.exchange();
    let mut got = vec![0u8; 30_000];
    let n = p.b.recv(&p.cfg, &mut got);
    assert_eq!(&got[..n], &data[..]);

    p.a.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.a.state(), State::FinWait2);
    assert_eq!(p.b.state(), State::CloseWait);
    p.b.close(p.now, &p.cfg);
    p.exchange();
    assert_eq!(p.b.state(), State::Closed);
    assert_eq!(p.a.state(), State::TimeWait);
    p.advance(Duration::from_secs(120));
    assert_eq!(p.a.state(), State::Closed);
    assert_eq!(p.a.close_reason(), Some(CloseReason::Normal));
    assert_eq!(p.b.close_reason(), Some(CloseReason::Normal));
}

/// `wants_transmit` through a connection's life: yes exactly while there is
/// something to send (every `drain` also checks that a no means the poll would
/// give nothing and change nothing).
#[test]
fn wants_transmit_follows_what_is_left_to_send() {
    let mut p = Pair::new(TcpConfig::default());
    assert!(p.a.wants_transmit(), "the SYN");
    assert!(!p.b.wants_transmit(), "LISTEN sends nothing");
    let syn = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(syn.len(), 1);
    assert!(!p.a.wants_transmit(), "SYN-SENT after the SYN");
    deliver(&mut p.b, p.now, &p.cfg, &syn[0]);
    assert!(p.b.wants_transmit(), "the SYN-ACK");
    p.exchange();
    assert_eq!(p.a.state(), State::Established);
    assert!(!p.a.wants_transmit() && !p.b.wants_transmit(), "idle");

    p.a.send(&p.cfg, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(p.a.wants_transmit(), "unsent data");
    let data = drain(&mut p.a, p.now, &p.cfg);
    assert!(!p.a.wants_transmit(), "all sent");
    deliver(&mut p.b, p.now, &p.cfg, &data[0]);
    let mut got = [0u8; 64];
    assert_eq!(p.b.recv(&p.cfg, &mut got), data[0].repr().payload.len());
    p.b.close(p.now, &p.cfg);
    assert!(p.b.wants_transmit(), "the ACK and the FIN");
    p.exchange();
    assert_eq!(
        (p.a.state(), p.b.state()),
        (State::CloseWait, State::FinWait2)
    );
    assert!(
        !p.a.wants_transmit() && !p.b.wants_transmit(),
        "all acknowledged"
    );

    // A FIN lost: nothing to send until the retransmission timeout.
    p.a.close(p.now, &p.cfg);
    assert!(p.a.wants_transmit(), "the FIN");
    assert_eq!(drain(&mut p.a, p.now, &p.cfg).len(), 1, "lost");
    assert!(!p.a.wants_transmit(), "LAST-ACK, FIN in flight");
    p.now = p.a.poll_timeout().expect("the retransmission timer");
    timeout(&mut p.a, p.now, &p.cfg);
    assert!(p.a.wants_transmit(), "the FIN again");
    assert_eq!(drain(&mut p.a, p.now, &p.cfg).len(), 1);
    assert!(!p.a.wants_transmit());
    p.a.abort();
    assert!(
        !p.a.wants_transmit(),
        "no RST from LAST-ACK (RFC 9293 3.10.5)"
    );
    assert!(drain(&mut p.a, p.now, &p.cfg).is_empty());
    p.b.abort();
    assert!(p.b.wants_transmit(), "the RST from FIN-WAIT-2");
    assert_eq!(drain(&mut p.b, p.now, &p.cfg).len(), 1);
    assert!(!p.b.wants_transmit(), "CLOSED");
}

/// Header prediction (RFC 9293 3.10.7.4's usual case, as BSD and Linux take
/// it) handles the in-order data and new ACKs of an established connection:
/// here nearly every segment after the handshake, in a bulk transfer and in
/// request/response turns. That it does what the general path would is
/// checked on every segment `deliver` hands over (the general path runs on a
/// copy beside it); this test shows the prediction is taken, so that check
/// covers it.
#[test]
fn rfc9293_3_10_7_4_header_prediction_takes_in_order_segments() {
    let mut p = Pair::new(TcpConfig::default());
    p.handshake();
    // The handshake's last segment too: B (SYN-RECEIVED) takes the ACK of
    // its SYN-ACK by the prediction for a connection's edges.
    assert_eq!(p.b.state(), State::Established);
    assert_eq!(
        (stats(&p.a).segs_predicted, stats(&p.b).segs_predicted),
        (0, 1)
    );
    let before = (stats(&p.a), stats(&p.b));
    let data: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
    assert_eq!(p.a.send(&p.cfg, &data).unwrap(), 50_000);
    p.exchange();
    let mut got = vec![0u8; 60_000];
    assert_eq!(p.b.recv(&p.cfg, &mut got), 50_000);
    assert_eq!(&got[..50_000], &data[..]);
    for _ in 0..20 {
        p.a.send(&p.cfg, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        p.exchange();
        let n = p.b.recv(&p.cfg, &mut got);
        assert_eq!(n, 18);
        p.b.send(&p.cfg, &[b'x'; 300]).unwrap();
        p.exchange();
        assert_eq!(p.a.recv(&p.cfg, &mut got), 300);
    }
    let (a, b) = (stats(&p.a), stats(&p.b));
    let segs = (a.segs_in - before.0.segs_in) + (b.segs_in - before.1.segs_in);
    let predicted =
        (a.segs_predicted - before.0.segs_predicted) + (b.segs_predicted - before.1.segs_predicted);
    assert!(segs > 40, "{segs} segments");
    // All but one: the window update B sends once its application has read
    // the 50,000 bytes (an ACK that acknowledges nothing new and carries no
    // data is a duplicate or a window update: the general path's to judge).
    assert_eq!(
        predicted + 1,
        segs,
        "{predicted} of {segs} segments predicted"
    );
    // The peer's FIN right after its text (a response and its close): A
    // takes both by the prediction, and is in CLOSE-WAIT.
    let before_fin = stats(&p.a).segs_predicted;
    p.b.send(&p.cfg, b"bye").unwrap();
    p.b.shutdown();
    let last = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(last.len(), 1, "data and FIN in one segment");
    deliver(&mut p.a, p.now, &p.cfg, &last[0]);
    assert_eq!(stats(&p.a).segs_predicted, before_fin + 1);
    assert_eq!(p.a.state(), State::CloseWait);
    assert_eq!(p.a.recv(&p.cfg, &mut got), 3);
    // The rest of the close, every segment predicted: A's ACK of that FIN
    // (B to FIN-WAIT-2), A's FIN (B to TIME-WAIT), B's ACK of it (A CLOSED).
    let one = |p: &mut Pair, from_a: bool, state: State| {
        let (x, y) = if from_a {
            (&mut p.a, &mut p.b)
        } else {
            (&mut p.b, &mut p.a)
        };
        let segs = drain(x, p.now, &p.cfg);
        assert_eq!(segs.len(), 1);
        let before = stats(y).segs_predicted;
        deliver(y, p.now, &p.cfg, &segs[0]);
        assert_eq!(stats(y).segs_predicted, before + 1, "to {state:?}");
        assert_eq!(y.state(), state);
    };
    one(&mut p, true, State::FinWait2);
    p.a.close(p.now, &p.cfg);
    one(&mut p, true, State::TimeWait);
    one(&mut p, false, State::Closed);
}

/// Transmit prediction, the output side of header prediction: the data an
/// application queues in request/response turns (RFC 9293 3.10.2's SEND,
/// with nothing to retransmit and the window, the MSS and Nagle letting all
/// of it go), and the FIN a CLOSE queues after it, are sent by the fast path. That it writes what the general path
/// would is checked on every poll `drain` makes (the general path runs on a
/// copy beside it); this test shows the fast path is taken, so that check
/// covers it.
#[test]
fn rfc9293_3_10_2_transmit_prediction_takes_request_response_data() {
    let mut p = Pair::new(TcpConfig::default());
    p.handshake();
    let before = (stats(&p.a), stats(&p.b));
    // Nothing of the handshake was predicted: SYNs take the general path.
    assert_eq!(before.0.segs_out_predicted + before.1.segs_out_predicted, 0);
    let mut got = vec![0u8; 4096];
    for i in 0..20 {
        p.a.send(&p.cfg, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        p.exchange();
        assert_eq!(p.b.recv(&p.cfg, &mut got), 18);
        p.b.send(&p.cfg, &[b'x'; 300]).unwrap();
        p.exchange();
        assert_eq!(p.a.recv(&p.cfg, &mut got), 300);
        let (a, b) = (stats(&p.a), stats(&p.b));
        assert_eq!(a.segs_out_predicted, i + 1, "requests predicted");
        assert_eq!(b.segs_out_predicted, i + 1, "responses predicted");
    }
    // More than a segment's worth: the general path sends the full
    // segments (1,448 bytes beside timestamps), the fast path the last 24.
    let big = vec![b'y'; 2 * usize::from(p.cfg.mss)];
    p.b.send(&p.cfg, &big).unwrap();
    p.exchange();
    assert_eq!(p.a.recv(&p.cfg, &mut got), big.len());
    assert_eq!(stats(&p.b).segs_out_predicted, 21);
    // CLOSE (RFC 9293 3.10.4): the FIN alone (FIN-WAIT-1), then data and
    // the FIN after it in one segment (LAST-ACK, a server's response and
    // close) go by the fast path too.
    p.a.shutdown();
    p.exchange();
    assert_eq!(stats(&p.a).segs_out_predicted, 21);
    assert_eq!(p.b.state(), State::CloseWait);
    p.b.send(&p.cfg, b"bye").unwrap();
    p.b.close(p.now, &p.cfg);
    let last = drain(&mut p.b, p.now, &p.cfg);
    assert_eq!(last.len(), 1, "data and FIN in one segment");
    assert_eq!(stats(&p.b).segs_out_predicted, 22);
    deliver(&mut p.a, p.now, &p.cfg, &last[0]);
    assert_eq!(p.a.recv(&p.cfg, &mut got), 3);
    assert_eq!(p.a.state(), State::TimeWait);
}

/// Nagle (RFC 1122 4.2.3.4) holds a small segment while data is in flight:
/// the transmit fast path must leave it to the general path, which holds
/// it; once the ACK comes, it goes by the fast path. (With Nagle off, the
/// scenario tests never reach this case.)
#[test]
fn rfc1122_4_2_3_4_nagle_holds_small_data_off_the_transmit_fast_path() {
    let cfg = TcpConfig {
        nagle: true,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg);
    p.handshake();
    p.a.send(&p.cfg, b"first").unwrap();
    let first = drain(&mut p.a, p.now, &p.cfg);
    assert_eq!(first.len(), 1);
    deliver(&mut p.b, p.now, &p.cfg, &first[0]);
    assert_eq!(stats(&p.a).segs_out_predicted, 1);
    // "first" is unacknowledged: "second" waits.
    p.a.send(&p.cfg, b"second").unwrap();
    assert!(drain(&mut p.a, p.now, &p.cfg).is_empty());
    assert_eq!(stats(&p.a).segs_out_predicted, 1);
    // B's (delayed) ACK lets it go.
    p.advance(Duration::from_secs(1));
    let mut got = vec![0u8; 64];
    assert_eq!(p.b.recv(&p.cfg, &mut got), 11);
    assert_eq!(&got[..11], b"firstsecond");
    assert_eq!(stats(&p.a).segs_out_predicted, 2);
    assert_eq!(stats(&p.a).retransmits, 0);
}
