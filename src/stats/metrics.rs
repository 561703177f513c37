//! `--metrics ADDR:PORT`: the counters, the per-state connection gauges and
//! the latency histograms in Prometheus' text exposition format (0.0.4,
//! written by the `prometheus-client` crate), served over a kernel TCP
//! socket by a thread of its own. The thread reads what the shards publish
//! (`Published`, once a second); it never touches a shard.
//!
//! Names: a counter `x` is `sluice_x_total`; a nested struct's counter
//! `tcp.x` is `sluice_tcp_x_total`; drops and closes by reason are
//! `sluice_drops_total{reason}` and `sluice_closed_total{reason}`; connections
//! per TCP state the gauge `sluice_connections{state}`; latency the histogram
//! `sluice_latency_seconds{kind}` (kind: connect, first_byte, request) and
//! its quantiles the gauge `sluice_latency_quantile_seconds{kind,quantile}`.

use super::{Latency, ShardStats};
use crate::counters::Counters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a scrape shows: every shard's counters summed, and the latency
/// recorded so far where the process measures it (the load generator; a
/// server measures none, and shows the histograms empty).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub stats: ShardStats,
    pub latency: Option<Latency>,
    /// Seconds since the run started.
    pub uptime_s: f64,
}

/// Where a scrape reads its snapshot from.
pub type Source = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// Counter groups that are arrays by label (not nested structs), and the
/// label's name; `states` is a gauge, the others count.
const LABELLED: [(&str, &str); 3] = [
    ("drops", "reason"),
    ("closed", "reason"),
    ("states", "state"),
];

/// Latency histogram bucket bounds, seconds.
const BUCKETS_S: [f64; 19] = [
    10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
    250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0,
];

const QUANTILES: [(&str, f64); 6] = [
    ("0.5", 0.5),
    ("0.9", 0.9),
    ("0.99", 0.99),
    ("0.999", 0.999),
    ("0.9999", 0.9999),
    ("1", 1.0),
];

struct Scrape(Source);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = (self.0)();
        let g = ConstGauge::new(snap.uptime_s);
        g.encode(enc.encode_descriptor(
            "sluice_uptime_seconds",
            "Seconds since the run started",
            None,
            MetricType::Gauge,
        )?)?;
        // Plain counters and nested structs' counters, one metric each; the
        // labelled arrays as one family each.
        let mut plain: Vec<(String, u64)> = Vec::new();
        let mut families: Vec<(&str, Vec<(&str, u64)>)> =
            LABELLED.iter().map(|(g, _)| (*g, Vec::new())).collect();
        snap.stats.each(|n, v| {
            if let Some(f) = families.iter_mut().find(|(g, _)| *g == n.group) {
                f.1.push((n.name, v));
            } else if n.group.is_empty() {
                plain.push((format!("sluice_{}", n.name), v));
            } else {
                plain.push((format!("sluice_{}_{}", n.group, n.name), v));
            }
        });
        for (name, v) in &plain {
            ConstCounter::new(*v).encode(enc.encode_descriptor(
                name,
                "sluice counter (see src/stats/mod.rs ShardStats)",
                None,
                MetricType::Counter,
            )?)?;
        }
        for ((group, values), (_, label)) in families.iter().zip(LABELLED) {
            let (name, help, kind) = match *group {
                "states" => (
                    "sluice_connections",
                    "Connections in each TCP state (TIME_WAIT counts records)",
                    MetricType::Gauge,
                ),
                "drops" => (
                    "sluice_drops",
                    "Frames (or the connections they asked for) dropped, by reason",
                    MetricType::Counter,
                ),
                _ => (
                    "sluice_closed",
                    "Connections that ended, by reason",
                    MetricType::Counter,
                ),
            };
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for (l, v) in values {
                let labels = [(label, *l)];
                let fam = m.encode_family(&labels)?;
                if kind == MetricType::Gauge {
                    ConstGauge::new(*v).encode(fam)?;
                } else {
                    ConstCounter::new(*v).encode(fam)?;
                }
            }
        }
        let latency = snap.latency.unwrap_or_default();
        let named = [
            ("connect", &latency.connect),
            ("first_byte", &latency.first_byte),
            ("request", &latency.request),
        ];
        let mut m = enc.encode_descriptor(
            "sluice_latency_seconds",
            "Latency: connect (SYN to SYN-ACK), first_byte, request (sent or due to complete response)",
            None,
            MetricType::Histogram,
        )?;
        for (kind, h) in named {
            let h = h.to_hdr();
            let mut counts = [0u64; BUCKETS_S.len()];
            let mut sum = 0.0;
            for v in h.iter_recorded() {
                // A value's bucket counts under a bound its lowest
                // equivalent reaches (3 significant digits).
                let at = v.value_iterated_to();
                let (low, mid) = (
                    h.lowest_equivalent(at) as f64 / 1e9,
                    h.median_equivalent(at) as f64 / 1e9,
                );
                let n = v.count_at_value();
                sum += mid * n as f64;
                if let Some(i) = BUCKETS_S.iter().position(|b| low <= *b) {
                    counts[i] += n;
                }
            }
            let buckets: Vec<(f64, u64)> = BUCKETS_S.iter().copied().zip(counts).collect();
            let labels = [("kind", kind)];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                sum,
                h.len(),
                &buckets,
                None,
            )?;
        }
        let mut m = enc.encode_descriptor(
            "sluice_latency_quantile_seconds",
            "Latency at a quantile (0 before anything is recorded)",
            None,
            MetricType::Gauge,
        )?;
        for (kind, h) in named {
            for (q, qf) in QUANTILES {
                let v = if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(qf) as f64 / 1e9
                };
                let labels = [("kind", kind), ("quantile", q)];
                ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The exposition of `snap`, as a scrape gets it.
pub fn exposition(source: Source) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(source)));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// The serving thread; dropping it stops the thread.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` (`ADDR:PORT`) now, so a bad address fails before
    /// the run; serves `GET /metrics` from `source` until dropped.
    pub fn start(addr: &str, source: Source) -> anyhow::Result<MetricsServer> {
        let sock: SocketAddr = addr.parse().map_err(|_| {
            anyhow::anyhow!(
                "--metrics {addr:?}: use ADDR:PORT, e.g. 127.0.0.1:9100 or 0.0.0.0:9100"
            )
        })?;
        let listener = TcpListener::bind(sock).map_err(|e| {
            anyhow::anyhow!(
                "--metrics {addr}: cannot listen: {e} (is the port free and the address on this host?)"
            )
        })?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-metrics".into())
            .spawn(move || serve(&listener, &source, &flag))?;
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
            addr: local,
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, source: &Source, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let _ = answer(conn, source);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One HTTP/1.x exchange, then close.
fn answer(mut conn: TcpStream, source: &Source) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            exposition(source.clone()),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "sluice serves its metrics at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics\n".to_string(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    conn.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::record;

    fn numbered() -> Snapshot {
        let mut l = Latency::default();
        for us in [100u64, 200, 3000] {
            record(&mut l.request, Duration::from_micros(us));
        }
        Snapshot {
            stats: ShardStats::numbered(1),
            latency: Some(l),
            uptime_s: 2.5,
        }
    }

    /// Every counter declared in ShardStats appears once, with its value,
    /// under its Prometheus name and type.
    #[test]
    fn every_counter_is_exposed_with_its_value() {
        let snap = numbered();
        let stats = snap.stats;
        let text = exposition(Arc::new(move || snap.clone()));
        let mut seen = 0;
        stats.each(|n, v| {
            let sample = match LABELLED.iter().find(|(g, _)| *g == n.group) {
                Some(("states", l)) => format!("sluice_connections{{{l}=\"{}\"}} {v}\n", n.name),
                Some((g, l)) => format!("sluice_{g}_total{{{l}=\"{}\"}} {v}\n", n.name),
                None if n.group.is_empty() => format!("sluice_{}_total {v}\n", n.name),
                None => format!("sluice_{}_{}_total {v}\n", n.group, n.name),
            };
            assert!(text.contains(&sample), "{sample:?} missing");
            seen += 1;
        });
        assert_eq!(seen, ShardStats::LEN);
        assert!(text.contains("# TYPE sluice_rx_packets_total counter\n"));
        assert!(text.contains("# TYPE sluice_connections gauge\n"));
        assert!(text.contains("# TYPE sluice_latency_seconds histogram\n"));
        assert!(text.contains("sluice_uptime_seconds 2.5\n"));
    }

    #[test]
    fn latency_histogram_buckets_are_cumulative() {
        let snap = numbered();
        let text = exposition(Arc::new(move || snap.clone()));
        // 100 us and 200 us fall under 250 us, 3 ms under 5 ms.
        for want in [
            "sluice_latency_seconds_bucket{kind=\"request\",le=\"0.0001\"} 1\n",
            "sluice_latency_seconds_bucket{kind=\"request\",le=\"0.00025\"} 2\n",
            "sluice_latency_seconds_bucket{kind=\"request\",le=\"0.0025\"} 2\n",
            "sluice_latency_seconds_bucket{kind=\"request\",le=\"0.005\"} 3\n",
            "sluice_latency_seconds_bucket{kind=\"request\",le=\"+Inf\"} 3\n",
            "sluice_latency_seconds_count{kind=\"request\"} 3\n",
            "sluice_latency_seconds_count{kind=\"connect\"} 0\n",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert!(
            text.contains("sluice_latency_quantile_seconds{kind=\"request\",quantile=\"1\"} 0.003")
        );
    }

    #[test]
    fn serves_http_and_refuses_bad_addresses() {
        let snap = numbered();
        let m = MetricsServer::start("127.0.0.1:0", Arc::new(move || snap.clone())).unwrap();
        let get = |path: &str| {
            let mut c = TcpStream::connect(m.addr).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut s = String::new();
            c.read_to_string(&mut s).unwrap();
            s
        };
        let r = get("/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("text/plain; version=0.0.4"), "{r}");
        assert!(r.contains("sluice_rx_packets_total 1\n"), "{r}");
        assert!(get("/").starts_with("HTTP/1.1 404"));
        let busy = m.addr.to_string();
        let e = MetricsServer::start(&busy, Arc::new(Snapshot::default))
            .err()
            .unwrap();
        assert!(e.to_string().contains("--metrics"), "{e}");
        assert!(MetricsServer::start("nonsense", Arc::new(Snapshot::default)).is_err());
        drop(m);
    }
}
