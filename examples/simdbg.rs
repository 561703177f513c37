use sluice::sim::*;
use sluice::tcp::TcpConfig;
use std::time::Duration;
fn main() {
    let conns: usize = std::env::args()
        .nth(1)
        .map(|v| v.parse().unwrap())
        .unwrap_or(1);
    let loss: f64 = std::env::args()
        .nth(2)
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0);
    let t = std::time::Instant::now();
    let s = Scenario {
        seed: 3000,
        conns,
        max_bytes: 1 << 20,
        link: LinkConfig {
            delay: Duration::from_millis(2),
            jitter: Duration::from_millis(3),
            loss,
            duplicate: 0.01,
            corrupt: 0.005,
            bandwidth_bps: Some(10_000_000_000),
        },
        tcp: TcpConfig::default(),
        time_limit: Duration::from_secs(3600),
        trace_port: None,
    };
    let o = s.run();
    println!(
        "ok={} problems={:?} vt={:?} bytes={} wall={:?}",
        o.ok,
        o.problems.iter().take(3).collect::<Vec<_>>(),
        o.virtual_time,
        o.bytes,
        t.elapsed()
    );
}
