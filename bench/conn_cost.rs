//! Cost of one short TCP connection through two engines, no network:
//! handshake, a 100-byte request, a 100-byte response, close from the client,
//! TIME_WAIT swapped for its record. Segments move as bytes and are parsed
//! (checksums verified), as they would be off a NIC.
//!
//!   cargo bench --bench conn_cost            # ns per connection (criterion)
//!   scripts/conn-instructions.sh             # instructions per connection (callgrind)
//!
//! `SLUICE_CONNS=N` runs exactly N connections once, outside criterion (for callgrind).

use criterion::{Criterion, Throughput};
use sluice::tcp::{Connection, Event, FourTuple, State, TcpConfig, TcpStats, TimeWaitRecord};
use sluice::time::Instant;
use sluice::wire::{ChecksumMode, SeqNumber, TcpPacket, TcpRepr};
use std::hint::black_box;
use std::net::SocketAddrV4;

struct Bench {
    cfg: TcpConfig,
    buf: Vec<u8>,
    stats: TcpStats,
    read: Vec<u8>,
    client: SocketAddrV4,
    server: SocketAddrV4,
}

impl Bench {
    fn pump(&mut self, from: &mut Connection, to: &mut Connection, now: Instant) -> usize {
        let mut n = 0;
        // The control block keeps ports only: the server's end is the one on its port.
        let (src, dst) = if from.ends().local_port == self.server.port() {
            (self.server, self.client)
        } else {
            (self.client, self.server)
        };
        while let Some(len) = from.poll_transmit(now, &self.cfg, &mut self.stats, &mut self.buf) {
            let p = TcpPacket::new_checked(&self.buf[..len]).expect("valid");
            let r = TcpRepr::parse(&p, *src.ip(), *dst.ip(), ChecksumMode::Verify).expect("valid");
            to.handle_segment(now, &self.cfg, &mut self.stats, &r);
            n += 1;
        }
        n
    }

    /// One whole connection; returns segments exchanged.
    fn one(&mut self, i: u32) -> usize {
        let now = Instant::from_micros(1_000_000 + u64::from(i));
        let local = SocketAddrV4::new(*self.client.ip(), 1024 + (i % 60_000) as u16);
        let mut c = Connection::connect(
            &self.cfg,
            FourTuple {
                local,
                remote: self.server,
            },
            SeqNumber(i.wrapping_mul(2_654_435_761)),
            now,
        );
        let mut s = Connection::listen(&self.cfg, self.server, SeqNumber(i ^ 0x5555_5555), now);
        s.set_remote(local);
        let mut segs = 0;
        segs += self.pump(&mut c, &mut s, now); // SYN
        segs += self.pump(&mut s, &mut c, now); // SYN-ACK
        c.send(&self.cfg, &[b'q'; 100]).expect("open");
        segs += self.pump(&mut c, &mut s, now); // ACK + request
        while let Some(e) = s.poll_event() {
            if e == Event::Readable {
                let n = s.recv(&self.cfg, &mut self.read);
                black_box(n);
            }
        }
        s.send(&self.cfg, &[b'r'; 100]).expect("open");
        segs += self.pump(&mut s, &mut c, now); // response
        let n = c.recv(&self.cfg, &mut self.read);
        debug_assert_eq!(n, 100);
        c.shutdown();
        segs += self.pump(&mut c, &mut s, now); // FIN (with the ACK of the response)
        s.shutdown();
        segs += self.pump(&mut s, &mut c, now); // ACK + FIN
        segs += self.pump(&mut c, &mut s, now); // last ACK
        debug_assert_eq!(c.state(), State::TimeWait);
        debug_assert_eq!(s.state(), State::Closed);
        let tw = TimeWaitRecord::from_connection(
            &c,
            FourTuple {
                local,
                remote: self.server,
            },
            now,
            self.cfg.time_wait(),
        );
        black_box(tw);
        segs
    }
}

fn bench() -> Bench {
    Bench {
        cfg: TcpConfig {
            recv_buffer: 4096,
            send_buffer: 4096,
            ..TcpConfig::default()
        },
        buf: vec![0u8; 2048],
        stats: TcpStats::default(),
        read: vec![0u8; 4096],
        client: "10.0.0.1:1".parse().expect("addr"),
        server: "10.0.0.2:80".parse().expect("addr"),
    }
}

fn connection(c: &mut Criterion) {
    let mut b = bench();
    let segs = b.one(0);
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u32;
    g.bench_function(
        format!("connection: handshake + 100 B request + 100 B response + close + TIME_WAIT record ({segs} segments)"),
        |bch| {
            bch.iter(|| {
                i = i.wrapping_add(1);
                black_box(b.one(i))
            })
        },
    );
    g.finish();
}

fn main() {
    if let Some(n) = std::env::var("SLUICE_CONNS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        let mut b = bench();
        let mut segs = 0;
        for i in 0..n {
            segs += b.one(i);
        }
        println!("{n} connections, {segs} segments");
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    connection(&mut c);
    c.final_summary();
}
