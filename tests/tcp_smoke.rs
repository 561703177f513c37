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
