//! Issue 12 item 3: an idle connection costs its control block. The send and
//! receive rings give their memory back to the shard's pool when they empty
//! (and there is no out-of-order data past the receive ring's length), and
//! take it again when data comes.

mod common;
use common::tcp::*;
use sluice::tcp::TcpConfig;
use std::time::Duration;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// One keep-alive request and its response, each read by its application.
fn request_response(p: &mut Pair) {
    assert_eq!(p.a.send(&p.cfg, REQUEST).unwrap(), REQUEST.len());
    p.exchange();
    let mut got = [0u8; 256];
    assert_eq!(p.b.recv(&p.cfg, &mut got), REQUEST.len());
    assert_eq!(p.b.send(&p.cfg, RESPONSE).unwrap(), RESPONSE.len());
    p.exchange();
    assert_eq!(p.a.recv(&p.cfg, &mut got), RESPONSE.len());
    settle(p);
}

/// Time passes until the delayed ACKs are out and both sides' data is
/// acknowledged.
fn settle(p: &mut Pair) {
    for _ in 0..10 {
        p.advance(Duration::from_millis(500));
        if p.a.send_queued() == 0 && p.b.send_queued() == 0 {
            return;
        }
    }
    panic!("data left unacknowledged");
}

#[test]
fn keep_alive_connections_hold_no_buffer_between_requests() {
    // On a thread of its own: a pool of its own.
    std::thread::spawn(|| {
        let mut p = Pair::new(TcpConfig::default());
        p.handshake();
        assert_eq!((p.a.buffer_memory(), p.b.buffer_memory()), (0, 0));
        for i in 0..3 {
            request_response(&mut p);
            assert_eq!(
                (p.a.buffer_memory(), p.b.buffer_memory()),
                (0, 0),
                "request {i}: both idle ends gave their buffers back"
            );
        }
        // While a response is unacknowledged and unread, it is held.
        p.a.send(&p.cfg, REQUEST).unwrap();
        assert!(p.a.buffer_memory() > 0, "unacknowledged data is kept");
        settle(&mut p);
        assert_eq!(p.a.buffer_memory(), 0, "acknowledged: given back");
        assert!(p.b.buffer_memory() > 0, "received and not yet read");
    })
    .join()
    .unwrap();
}

/// Out-of-order data sits past the receive ring's length: reading the
/// in-order part must not give the ring back (the data past it would be
/// lost), and once the hole is filled and everything is read, it goes.
#[test]
fn out_of_order_data_keeps_the_receive_ring() {
    std::thread::spawn(|| {
        let mut p = Pair::new(TcpConfig::default());
        p.handshake();
        let mss = usize::from(p.cfg.mss);
        let data: Vec<u8> = (0..3 * mss).map(|i| (i % 251) as u8).collect();
        p.a.send(&p.cfg, &data).unwrap();
        let segs = drain(&mut p.a, p.now, &p.cfg);
        assert!(segs.len() >= 3, "{} segments", segs.len());
        // The first arrives, the second is lost, the rest arrive.
        deliver(&mut p.b, p.now, &p.cfg, &segs[0]);
        for s in &segs[2..] {
            deliver(&mut p.b, p.now, &p.cfg, s);
        }
        let first = segs[0].repr().payload.len();
        let mut got = vec![0u8; data.len()];
        assert_eq!(p.b.recv(&p.cfg, &mut got), first);
        assert!(
            p.b.buffer_memory() > 0,
            "out-of-order data past the read part is kept"
        );
        deliver(&mut p.b, p.now, &p.cfg, &segs[1]);
        let rest = p.b.recv(&p.cfg, &mut got[first..]);
        assert_eq!(first + rest, data.len());
        assert_eq!(got, data, "every byte, in order");
        assert_eq!(p.b.buffer_memory(), 0, "all read: given back");
    })
    .join()
    .unwrap();
}
