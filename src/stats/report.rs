//! The final report of a load run: a wrk-like text summary and the JSON
//! document `--json` writes (schema in README.md, "Output").

use super::{Latency, Percentiles, ShardStats, human_rate, human_us};
use crate::tcp::CloseReason;
use serde::Serialize;
use std::collections::BTreeMap;

/// How the run was set up (echoed in the report).
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub tool: String,
    pub version: String,
    pub link: String,
    pub target: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Concurrent connections (closed loop) or the cap on them (open loop).
    pub connections: u32,
    pub requests_per_connection: u32,
    pub keep_alive: bool,
    /// Open loop: the connection rate asked for (0: closed loop).
    pub target_cps: u64,
    /// Open loop: the request rate asked for (0: closed loop).
    pub target_rps: u64,
    /// The server's response body size where the run sets it (`sluice
    /// bench`); `None` (null) for a client, which reports what it received
    /// (`response_body_bytes`).
    pub body_bytes: Option<usize>,
    pub time_wait_s: f64,
    pub client_cores: Vec<usize>,
    pub server_cores: Vec<usize>,
    /// `--split K/N`: this machine's slice of a test run from N.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    pub connect: Percentiles,
    pub first_byte: Percentiles,
    pub request: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rsts_in: u64,
    pub rsts_out: u64,
    pub retransmits: u64,
    pub drops: BTreeMap<&'static str, u64>,
    pub closes: BTreeMap<&'static str, u64>,
}

impl Side {
    fn of(s: &ShardStats) -> Side {
        Side {
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            rsts_in: s.rsts_in,
            rsts_out: s.tcp.rsts_out,
            retransmits: s.tcp.retransmits,
            drops: s.drops_map(),
            closes: s.closes_map(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeWaitReport {
    /// 2MSL, seconds.
    pub duration_s: f64,
    /// Connections that entered TIME_WAIT (client and server).
    pub entered: u64,
    /// Connections that reached TIME_WAIT when the record table was full:
    /// closed without holding their 4-tuple for 2MSL.
    pub refused: u64,
    /// Records that reached 2MSL and ended during the run.
    pub expired: u64,
    /// Records still held when the run ended.
    pub held_at_end: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub info: RunInfo,
    /// Seconds measured (after warm-up).
    pub measured_s: f64,
    /// Connections completed per second (every response received, closed).
    pub cps: f64,
    /// Responses per second.
    pub rps: f64,
    pub connections_opened: u64,
    pub connections_completed: u64,
    pub requests: u64,
    pub responses: u64,
    /// Final responses by status class: `2xx`, `3xx`, `4xx`, `5xx`, `other`
    /// (1xx interim responses are skipped).
    pub status: BTreeMap<&'static str, u64>,
    /// Response body bytes received (chunked bodies: the chunks' data).
    pub response_body_bytes: u64,
    /// Failures by reason (all zero in a clean run).
    pub errors: BTreeMap<&'static str, u64>,
    pub errors_total: u64,
    pub retransmits: u64,
    pub time_wait: TimeWaitReport,
    pub latency_us: LatencyReport,
    /// Connections in each TCP state when the run ended, client and server
    /// together (TIME_WAIT counts records): a clean run has them all in
    /// TIME_WAIT (or none anywhere).
    pub states_at_end: BTreeMap<&'static str, u64>,
    pub client: Side,
    pub server: Option<Side>,
    pub server_accepted: Option<u64>,
    pub syn_cookies_sent: u64,
    /// Seconds from the start until every connection asked for was open at
    /// once (null: not reached, or not tracked: an open loop, kernel mode).
    pub opened_all_s: Option<f64>,
    /// The measuring waited for that (a paced opening): if it was never
    /// reached, the run was measured from the start.
    pub waited_for_open: bool,
    /// When the measuring began, seconds from the start.
    pub measured_from_s: f64,
    /// Client connections the generator closed (FIN) because the run ended,
    /// with requests still to make: not errors.
    pub closed_at_end: u64,
    /// The end's bound: the drain ends this many seconds after the last
    /// connection closed (a response still in flight gets that long).
    pub drain_s: f64,
    /// Turns either side made no new work while its transmit ring was full
    /// (back-pressure), client and server.
    pub tx_waits: u64,
    /// Frames dropped, by reason, client and server (the non-zero ones).
    pub dropped: BTreeMap<&'static str, u64>,
}

/// Counts taken at the start and end of the measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub completed: u64,
    pub responses: u64,
}

impl Report {
    pub fn build(
        info: RunInfo,
        client: &ShardStats,
        server: Option<&ShardStats>,
        latency: &Latency,
        window: (Window, Window),
        measured_s: f64,
        time_wait_held: u64,
    ) -> Report {
        let secs = measured_s.max(1e-9);
        let mut errors = BTreeMap::new();
        for r in CloseReason::ALL {
            if r != CloseReason::Normal {
                errors.insert(r.name(), client.closed_by(r));
            }
        }
        errors.insert("bad_response", client.app_errors);
        errors.insert("non_2xx", client.non_2xx);
        let opened_not_ended = client
            .opened
            .saturating_sub(client.closed.iter().sum::<u64>());
        errors.insert("unfinished", opened_not_ended);
        let errors_total = errors.values().sum();
        let both = |f: fn(&ShardStats) -> u64| f(client) + server.map_or(0, f);
        Report {
            measured_s,
            cps: (window.1.completed - window.0.completed) as f64 / secs,
            rps: (window.1.responses - window.0.responses) as f64 / secs,
            connections_opened: client.opened,
            connections_completed: client.completed,
            requests: client.requests_sent,
            responses: client.responses,
            status: client.status_map(),
            response_body_bytes: client.response_body_bytes,
            errors,
            errors_total,
            retransmits: both(|s| s.tcp.retransmits),
            time_wait: TimeWaitReport {
                duration_s: info.time_wait_s,
                entered: both(|s| s.time_wait_entered),
                refused: both(|s| s.time_wait_refused),
                expired: both(|s| s.time_wait_expired),
                held_at_end: time_wait_held,
            },
            latency_us: LatencyReport {
                connect: Percentiles::of(&latency.connect),
                first_byte: Percentiles::of(&latency.first_byte),
                request: Percentiles::of(&latency.request),
            },
            states_at_end: ShardStats::sum(std::iter::once(client).chain(server)).states_map(),
            client: Side::of(client),
            server: server.map(Side::of),
            server_accepted: server.map(|s| s.accepted),
            syn_cookies_sent: both(|s| s.syn_cookies_sent),
            opened_all_s: None,
            waited_for_open: false,
            measured_from_s: info.warmup_s,
            closed_at_end: client.closed_at_end,
            drain_s: crate::app::window::DRAIN.as_secs_f64(),
            tx_waits: both(|s| s.tx_waits),
            dropped: {
                let mut d = client.drops_map();
                if let Some(s) = server {
                    for (k, v) in s.drops_map() {
                        *d.entry(k).or_default() += v;
                    }
                }
                d.retain(|_, v| *v > 0);
                d
            },
            info,
        }
    }

    /// The wrk-like text report.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let i = &self.info;
        o += &format!(
            "{} {}s test @ {} over {}\n  {} connections{}, {} per connection{}, 2MSL {}s\n",
            i.tool,
            i.duration_s,
            i.target,
            i.link,
            i.connections,
            if i.target_cps > 0 {
                format!(" (open loop, {} conn/s)", i.target_cps)
            } else if i.target_rps > 0 {
                format!(" (open loop, {} req/s)", i.target_rps)
            } else {
                String::new()
            },
            if i.keep_alive {
                "keep-alive: requests".to_string()
            } else if i.requests_per_connection == 1 {
                "1 request".to_string()
            } else {
                format!("{} requests", i.requests_per_connection)
            },
            match i.body_bytes {
                Some(b) => format!(", {b} B bodies"),
                None => String::new(),
            },
            i.time_wait_s
        );
        o += "  Latency      p50        p75        p90        p99        p99.9      p99.99     max\n";
        for (name, p) in [
            ("connect", &self.latency_us.connect),
            ("1st byte", &self.latency_us.first_byte),
            ("request", &self.latency_us.request),
        ] {
            if p.count == 0 {
                o += &format!("  {name:<9} {:>10}\n", "-");
                continue;
            }
            o += &format!(
                "  {:<9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
                name,
                human_us(p.p50),
                human_us(p.p75),
                human_us(p.p90),
                human_us(p.p99),
                human_us(p.p999),
                human_us(p.p9999),
                human_us(p.max)
            );
        }
        o += &format!(
            "  {} connections opened, {} completed, {} responses in {:.2}s measured\n",
            self.connections_opened, self.connections_completed, self.responses, self.measured_s
        );
        if let Some(t) = self.opened_all_s {
            o += &format!(
                "  Opening: all {} open after {:.2}s; measured from {:.2}s\n",
                i.connections, t, self.measured_from_s
            );
        } else if self.waited_for_open {
            o += &format!(
                "  Opening: the {} connections were never all open at once: measured from {:.2}s\n",
                i.connections, self.measured_from_s
            );
        }
        if self.closed_at_end > 0 {
            o += &format!(
                "  End: {} closed by the generator (FIN) as the run ended; responses in flight waited for (up to {}s after the last close)\n",
                self.closed_at_end, self.drain_s
            );
        }
        if !self.dropped.is_empty() {
            let d: Vec<String> = self
                .dropped
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            o += &format!("  Dropped frames: {}\n", d.join(", "));
        }
        let classes: Vec<String> = self
            .status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        o += &format!(
            "  Responses: {}; {} body bytes received ({} B per response)\n",
            classes.join(", "),
            self.response_body_bytes,
            self.response_body_bytes
                .checked_div(self.responses)
                .unwrap_or(0)
        );
        let nonzero: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        o += &format!(
            "  Errors: {}\n",
            if nonzero.is_empty() {
                "none".to_string()
            } else {
                nonzero.join(", ")
            }
        );
        o += &format!(
            "  Retransmits: {}   TIME_WAIT: {} entered, {} held at exit, {} expired{}\n",
            self.retransmits,
            self.time_wait.entered,
            self.time_wait.held_at_end,
            self.time_wait.expired,
            match self.time_wait.refused {
                0 => String::new(),
                n => format!(", {n} refused (record table full)"),
            }
        );
        o += &format!(
            "Connections/sec: {:>10.0} ({})\nRequests/sec:    {:>10.0} ({})\n",
            self.cps,
            human_rate(self.cps),
            self.rps,
            human_rate(self.rps)
        );
        o
    }
}

/// The counters behind the errors map, in one place for callers that want a
/// yes/no answer.
pub fn clean(r: &Report) -> bool {
    r.errors_total == 0 && r.connections_completed > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::stats::{DropReason, STATES, StatusClass};

    fn info() -> RunInfo {
        RunInfo {
            tool: "test".into(),
            version: "0".into(),
            link: "none".into(),
            target: "10.0.0.2:80".into(),
            duration_s: 1.0,
            warmup_s: 0.0,
            connections: 1,
            requests_per_connection: 1,
            keep_alive: false,
            target_cps: 0,
            target_rps: 0,
            body_bytes: Some(100),
            time_wait_s: 60.0,
            client_cores: vec![0],
            server_cores: vec![1],
            split: None,
        }
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// The JSON's per-side counters and maps come from the counters'
    /// declaration: every key names a counter (top level or the engine's) with
    /// the same value, and the maps list every label by its name.
    #[test]
    fn json_keys_agree_with_counter_names() {
        let c = ShardStats::numbered(1);
        let r = Report::build(
            info(),
            &c,
            Some(&c),
            &crate::stats::Latency::default(),
            (Window::default(), Window::default()),
            1.0,
            0,
        );
        let j = serde_json::to_value(&r).unwrap();
        let side = &j["client"];
        assert_eq!(
            keys(side),
            [
                "closes",
                "drops",
                "retransmits",
                "rsts_in",
                "rsts_out",
                "rx_bytes",
                "rx_packets",
                "tx_bytes",
                "tx_packets"
            ]
        );
        for key in keys(side) {
            if key == "drops" || key == "closes" {
                continue;
            }
            let counter = c.get(&key).or_else(|| c.tcp.get(&key));
            assert_eq!(side[&key].as_u64(), counter, "{key}");
        }
        let names = |it: &mut dyn Iterator<Item = &'static str>| {
            let mut v: Vec<String> = it.map(String::from).collect();
            v.sort();
            v
        };
        assert_eq!(
            keys(&side["drops"]),
            names(&mut DropReason::ALL.iter().map(|d| d.name()))
        );
        assert_eq!(
            keys(&side["closes"]),
            names(&mut CloseReason::ALL.iter().map(|d| d.name()))
        );
        assert_eq!(
            keys(&j["states_at_end"]),
            names(&mut STATES.iter().map(|s| s.name()))
        );
        assert_eq!(
            j["states_at_end"]["TIME_WAIT"].as_u64(),
            Some(2 * c.states[crate::tcp::State::TimeWait.index()])
        );
        assert_eq!(
            side["drops"]["tx_full"].as_u64(),
            Some(c.dropped(DropReason::TxFull))
        );
        assert_eq!(side["rsts_out"].as_u64(), Some(c.tcp.rsts_out));
        assert_eq!(
            j["time_wait"]["entered"].as_u64(),
            Some(2 * c.time_wait_entered)
        );
        assert_eq!(
            j["time_wait"]["refused"].as_u64(),
            Some(2 * c.time_wait_refused)
        );
        let refused = format!(", {} refused", 2 * c.time_wait_refused);
        assert!(r.text().contains(&refused));
        // Responses by status class and the body bytes: the client's.
        assert_eq!(
            keys(&j["status"]),
            names(&mut StatusClass::ALL.iter().map(|s| s.name()))
        );
        let c4 = c.status[StatusClass::ClientError.index()];
        assert_eq!(j["status"]["4xx"].as_u64(), Some(c4));
        assert!(r.text().contains(&format!("4xx {c4},")), "{}", r.text());
        assert_eq!(
            j["response_body_bytes"].as_u64(),
            Some(c.response_body_bytes)
        );
        assert!(
            r.text()
                .contains(&format!("{} body bytes received", c.response_body_bytes))
        );
    }

    #[test]
    fn status_classes() {
        for (code, class) in [
            (200, StatusClass::Success),
            (299, StatusClass::Success),
            (301, StatusClass::Redirect),
            (404, StatusClass::ClientError),
            (503, StatusClass::ServerError),
            (101, StatusClass::Other),
            (199, StatusClass::Other),
            (600, StatusClass::Other),
        ] {
            assert_eq!(StatusClass::of(code), class, "{code}");
        }
    }

    /// A client does not know the server's body size: its report says what
    /// it received instead of "0 B bodies"; the bench knows, and says it.
    #[test]
    fn body_size_only_where_known() {
        let c = ShardStats {
            responses: 4,
            response_body_bytes: 400,
            ..ShardStats::default()
        };
        let build = |info| {
            Report::build(
                info,
                &c,
                None,
                &crate::stats::Latency::default(),
                (Window::default(), Window::default()),
                1.0,
                0,
            )
        };
        let bench = build(info()).text();
        assert!(bench.contains(", 100 B bodies,"), "{bench}");
        let client = build(RunInfo {
            body_bytes: None,
            ..info()
        })
        .text();
        assert!(!client.contains("B bodies"), "{client}");
        assert!(
            client.contains("400 body bytes received (100 B per response)"),
            "{client}"
        );
    }
}
