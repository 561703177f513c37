//! Fuzz the TCP engine's input: a connection brought to ESTABLISHED (or left
//! in SYN_SENT / LISTEN), then an arbitrary sequence of segments near its
//! windows, timer expiries and application commands. Nothing may panic; the
//! connection's outputs must always parse.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sluice::tcp::{Connection, FourTuple, TcpConfig, TcpStats};
use sluice::time::Instant;
use sluice::wire::{ChecksumMode, SeqNumber, TcpControl, TcpPacket, TcpRepr, TcpTimestamp};
use std::time::Duration;
use std::net::SocketAddrV4;

#[derive(Debug, Arbitrary)]
enum Op {
    Segment {
        seq_off: i32,
        ack_off: Option<i32>,
        control: u8,
        push: bool,
        window: u16,
        payload_len: u16,
        ts: Option<(i32, u32)>,
        sack: Option<(i32, u16)>,
        mss: Option<u16>,
        wscale: Option<u8>,
    },
    Advance(u16),
    Send(u16),
    Recv(u16),
    Shutdown,
    Close,
    Abort,
}

#[derive(Debug, Arbitrary)]
struct Input {
    start: u8,
    small_buffers: bool,
    ops: Vec<Op>,
}

/// `c`'s 4-tuple: the control block keeps ports only, and the two ends
/// here are 10.0.0.1:40000 and 10.0.0.2:80.
fn tuple_of(c: &Connection) -> FourTuple {
    let a: SocketAddrV4 = "10.0.0.1:40000".parse().unwrap();
    let b: SocketAddrV4 = "10.0.0.2:80".parse().unwrap();
    if c.ends().local_port == a.port() {
        FourTuple { local: a, remote: b }
    } else {
        FourTuple { local: b, remote: a }
    }
}

fn transmit(c: &mut Connection, now: Instant, cfg: &TcpConfig, buf: &mut [u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(n) = c.poll_transmit(now, cfg, &mut TcpStats::default(), buf) {
        let t = tuple_of(c);
        let p = TcpPacket::new_checked(&buf[..n]).expect("emitted segment is well formed");
        TcpRepr::parse(&p, *t.local.ip(), *t.remote.ip(), ChecksumMode::Verify)
            .expect("emitted segment parses");
        out.push(buf[..n].to_vec());
        assert!(out.len() < 100_000, "runaway output");
    }
    while c.poll_event().is_some() {}
    out
}

fuzz_target!(|input: Input| {
    let cfg = TcpConfig {
        recv_buffer: if input.small_buffers { 3000 } else { 65536 },
        send_buffer: if input.small_buffers { 3000 } else { 65536 },
        keepalive: Some(sluice::tcp::Keepalive {
            idle: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            count: 3,
        }),
        ..TcpConfig::default()
    };
    let a_addr = "10.0.0.1:40000".parse().unwrap();
    let b_addr = "10.0.0.2:80".parse().unwrap();
    let mut now = Instant::from_millis(1_000);
    let mut buf = vec![0u8; 4096];
    let mut c = match input.start % 3 {
        0 => Connection::listen(&cfg, b_addr, SeqNumber(777), now),
        1 => Connection::connect(
            &cfg,
            FourTuple {
                local: a_addr,
                remote: b_addr,
            },
            SeqNumber(4_000_000_000),
            now,
        ),
        _ => {
            // Establish with a real peer first.
            let mut a = Connection::connect(
                &cfg,
                FourTuple {
                    local: a_addr,
                    remote: b_addr,
                },
                SeqNumber(u32::MAX - 10),
                now,
            );
            let mut b = Connection::listen(&cfg, b_addr, SeqNumber(5), now);
            b.set_remote(a_addr);
            for _ in 0..3 {
                for a_to_b in [true, false] {
                    let (x, y) = if a_to_b {
                        (&mut a, &mut b)
                    } else {
                        (&mut b, &mut a)
                    };
                    for seg in transmit(x, now, &cfg, &mut buf) {
                        let t = tuple_of(x);
                        let p = TcpPacket::new_checked(&seg[..]).unwrap();
                        let r =
                            TcpRepr::parse(&p, *t.local.ip(), *t.remote.ip(), ChecksumMode::Verify)
                                .unwrap();
                        y.handle_segment(now, &cfg, &mut TcpStats::default(), &r);
                    }
                }
            }
            a
        }
    };
    c.set_remote(a_addr);
    let payload = vec![0x5au8; 70_000];
    let mut read = vec![0u8; 70_000];
    for op in input.ops.into_iter().take(200) {
        match op {
            Op::Segment {
                seq_off,
                ack_off,
                control,
                push,
                window,
                payload_len,
                ts,
                sack,
                mss,
                wscale,
            } => {
                let t = tuple_of(&c);
                let rcv = c.rcv_nxt();
                let snd = c.snd_una();
                let repr = TcpRepr {
                    src_port: t.remote.port().max(1),
                    dst_port: t.local.port().max(1),
                    control: match control % 5 {
                        0 | 4 => TcpControl::None,
                        1 => TcpControl::Syn,
                        2 => TcpControl::Fin,
                        _ => TcpControl::Rst,
                    },
                    push,
                    seq_number: SeqNumber(rcv.0.wrapping_add(seq_off as u32 % 200_000)),
                    ack_number: ack_off
                        .map(|o| SeqNumber(snd.0.wrapping_add((o % 200_000) as u32))),
                    window_len: window,
                    window_scale: wscale,
                    max_seg_size: mss,
                    sack_permitted: mss.is_some(),
                    sack_ranges: match sack {
                        Some((o, l)) => {
                            let left = SeqNumber(snd.0.wrapping_add((o % 100_000) as u32));
                            [Some((left, left + u32::from(l))), None, None, None]
                        }
                        None => [None; 4],
                    },
                    timestamp: ts.map(|(d, e)| TcpTimestamp {
                        tsval: c.ts_recent().unwrap_or(0).wrapping_add(d as u32),
                        tsecr: e,
                    }),
                    payload: &payload[..usize::from(payload_len).min(3000)],
                };
                c.handle_segment(now, &cfg, &mut TcpStats::default(), &repr);
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 10);
                if c.poll_timeout().is_some_and(|d| d <= now) {
                    c.handle_timeout(now, &cfg, &mut TcpStats::default());
                }
            }
            Op::Send(n) => {
                let _ = c.send(&cfg, &payload[..usize::from(n)]);
            }
            Op::Recv(n) => {
                c.recv(&cfg, &mut read[..usize::from(n)]);
            }
            Op::Shutdown => c.shutdown(),
            Op::Close => c.close(now, &cfg),
            Op::Abort => c.abort(),
        }
        transmit(&mut c, now, &cfg, &mut buf);
    }
});
