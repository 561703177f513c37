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
