//! What the live line shows each second, as data: [`Progress`] is gathered
//! once ([`Progress::between`]) and both the live line (`tools::runtime`'s
//! `LiveLine`) and the `--stats` stream ([`StatsStream`], one JSON object a
//! line) read it, so the two never disagree.

use super::{DropReason, STATES, ShardStats};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// A NIC's own counters (DPDK's `imissed`, `ierrors + oerrors`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NicCounts {
    /// Frames the port dropped before sluice read them.
    pub missed: u64,
    /// Receive and transmit errors.
    pub errors: u64,
}

/// One second of a run, as the live line shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Wall-clock time of the sample, seconds since the Unix epoch.
    pub unix_s: f64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// Connections completed per second (a server alone: accepted).
    pub cps: f64,
    /// Responses per second.
    pub rps: f64,
    /// Connections open now.
    pub active: u64,
    /// Share of the client's (the server's) time spent working, percent.
    pub busy_client_pct: f64,
    pub busy_server_pct: f64,
    /// Connections per TCP state (TIME_WAIT counts records), both sides.
    pub states: BTreeMap<&'static str, u64>,
    /// Totals so far, both sides.
    pub retransmits: u64,
    pub rsts_in: u64,
    pub rsts_out: u64,
    /// Dropped frames (and refused connections) so far, by reason, both sides.
    pub drops: BTreeMap<&'static str, u64>,
    pub rx_pps: f64,
    pub rx_gbps: f64,
    pub tx_pps: f64,
    pub tx_gbps: f64,
    /// The generator's opening: connections open now (the client's), how
    /// many were asked for (0 where not known: a server alone), the
    /// handshakes in flight and the window that paces them (0: not paced).
    pub open: u64,
    pub open_target: u64,
    pub handshakes: u64,
    pub open_window: u64,
    /// Still opening: not yet all `open_target` open at once.
    pub opening: bool,
    /// Turns that made no new work for want of transmit room, so far.
    pub tx_waits: u64,
    /// The NIC's counters, where there is a NIC (not in kernel mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nic: Option<NicCounts>,
    /// Per state in `State` order, for the live line.
    #[serde(skip)]
    pub state_counts: [u64; STATES.len()],
}

impl Progress {
    /// The interval from `prev` (client, server) to `now` (client, server),
    /// `dt` seconds long, `elapsed` seconds into the run.
    pub fn between(
        (client, server): (&ShardStats, &ShardStats),
        (pc, ps): (&ShardStats, &ShardStats),
        dt: f64,
        elapsed: f64,
        nic: Option<NicCounts>,
    ) -> Progress {
        let dt = dt.max(1e-9);
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / dt;
        let both = |f: fn(&ShardStats) -> u64| f(client) + f(server);
        let both_prev = |f: fn(&ShardStats) -> u64| f(pc) + f(ps);
        let mut state_counts = [0u64; STATES.len()];
        for st in STATES {
            state_counts[st.index()] = client.states[st.index()] + server.states[st.index()];
        }
        // A server alone counts what it accepted and answered.
        let alone = client.opened == 0;
        Progress {
            unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            elapsed_s: elapsed,
            cps: if alone {
                rate(server.accepted, ps.accepted)
            } else {
                rate(client.completed, pc.completed)
            },
            rps: if alone {
                rate(server.responses, ps.responses)
            } else {
                rate(client.responses, pc.responses)
            },
            active: (client.opened + server.accepted).saturating_sub(
                client
                    .closed
                    .iter()
                    .chain(server.closed.iter())
                    .sum::<u64>(),
            ),
            busy_client_pct: 100.0 * rate(client.busy_ns, pc.busy_ns) / 1e9,
            busy_server_pct: 100.0 * rate(server.busy_ns, ps.busy_ns) / 1e9,
            states: STATES
                .iter()
                .map(|st| (st.name(), state_counts[st.index()]))
                .collect(),
            retransmits: both(|s| s.tcp.retransmits),
            rsts_in: both(|s| s.rsts_in),
            rsts_out: both(|s| s.tcp.rsts_out),
            drops: DropReason::ALL
                .iter()
                .map(|d| (d.name(), client.dropped(*d) + server.dropped(*d)))
                .collect(),
            rx_pps: rate(both(|s| s.rx_packets), both_prev(|s| s.rx_packets)),
            rx_gbps: 8.0 * rate(both(|s| s.rx_bytes), both_prev(|s| s.rx_bytes)) / 1e9,
            tx_pps: rate(both(|s| s.tx_packets), both_prev(|s| s.tx_packets)),
            tx_gbps: 8.0 * rate(both(|s| s.tx_bytes), both_prev(|s| s.tx_bytes)) / 1e9,
            nic,
            state_counts,
            open: client
                .opened
                .saturating_sub(client.closed.iter().sum::<u64>()),
            open_target: 0,
            handshakes: client.handshakes,
            open_window: client.open_window,
            opening: false,
            tx_waits: both(|s| s.tx_waits),
        }
    }

    /// The live line's opening part while connections are still opening:
    /// `open 412.0k/1.00M win 1024`.
    pub fn opening_part(&self) -> Option<String> {
        if !self.opening {
            return None;
        }
        let win = match self.open_window {
            0 => String::new(),
            w => format!(" win {w}"),
        };
        Some(format!(
            "open {}/{}{win}",
            super::human_rate(self.open as f64),
            super::human_rate(self.open_target as f64)
        ))
    }

    /// The non-zero drops in `DropReason` order, as `name=N`.
    pub fn drops_nonzero(&self) -> Vec<String> {
        DropReason::ALL
            .iter()
            .filter_map(|d| {
                let n = self.drops.get(d.name()).copied().unwrap_or(0);
                (n > 0).then(|| format!("{}={n}", d.name()))
            })
            .collect()
    }
}

/// `--stats FILE`: one JSON object per line, one line a second.
pub struct StatsStream {
    path: String,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl StatsStream {
    /// Creates (truncates) `path`; a one-line error names the option.
    pub fn create(path: &str) -> anyhow::Result<StatsStream> {
        let f = std::fs::File::create(path).map_err(|e| {
            anyhow::anyhow!("--stats {path}: {e} (give a file in a writable directory)")
        })?;
        Ok(StatsStream {
            path: path.to_string(),
            out: Some(std::io::BufWriter::new(f)),
        })
    }

    /// Appends `p` as one line and flushes it, so a reader sees every second
    /// as it ends. A failed write is said once; the run goes on without it.
    pub fn write(&mut self, p: &Progress) {
        let Some(out) = self.out.as_mut() else { return };
        let r = serde_json::to_writer(&mut *out, p)
            .map_err(std::io::Error::from)
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
        if let Err(e) = r {
            eprintln!("sluice: --stats {}: {e}: no more lines written", self.path);
            self.out = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::State;

    #[test]
    fn rates_totals_and_states_from_two_samples() {
        let prev = ShardStats {
            opened: 10,
            completed: 10,
            responses: 10,
            rx_packets: 100,
            ..ShardStats::default()
        };
        let mut now = ShardStats {
            opened: 40,
            completed: 30,
            responses: 30,
            rx_packets: 300,
            rsts_in: 2,
            ..ShardStats::default()
        };
        now.states[State::Established.index()] = 5;
        now.drop(DropReason::TxFull);
        let server = ShardStats {
            accepted: 40,
            ..ShardStats::default()
        };
        let p = Progress::between(
            (&now, &server),
            (&prev, &ShardStats::default()),
            2.0,
            3.0,
            Some(NicCounts {
                missed: 1,
                errors: 0,
            }),
        );
        assert_eq!((p.cps, p.rps, p.rx_pps), (10.0, 10.0, 100.0));
        assert_eq!(p.active, 80);
        assert_eq!(p.states["ESTABLISHED"], 5);
        assert_eq!(p.state_counts[State::Established.index()], 5);
        assert_eq!(p.drops["tx_full"], 1);
        assert_eq!(p.drops_nonzero(), vec!["tx_full=1".to_string()]);
        let v = serde_json::to_value(&p).unwrap();
        for k in [
            "unix_s",
            "elapsed_s",
            "cps",
            "rps",
            "active",
            "states",
            "drops",
            "rx_pps",
            "tx_gbps",
            "nic",
        ] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        assert_eq!(v["states"].as_object().unwrap().len(), STATES.len());
        assert!(v.get("state_counts").is_none());
    }

    #[test]
    fn opening_shows_open_of_target_and_the_window() {
        let mut c = ShardStats {
            opened: 412_345,
            handshakes: 700,
            open_window: 1024,
            ..ShardStats::default()
        };
        c.closed[0] = 345;
        let zero = ShardStats::default();
        let mut p = Progress::between((&c, &zero), (&zero, &zero), 1.0, 1.0, None);
        assert_eq!((p.open, p.handshakes, p.open_window), (412_000, 700, 1024));
        assert_eq!(p.opening_part(), None, "not opening");
        p.open_target = 1_000_000;
        p.opening = true;
        assert_eq!(
            p.opening_part().as_deref(),
            Some("open 412.0k/1.00M win 1024")
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["open"], 412_000);
        assert_eq!(v["open_target"], 1_000_000);
        assert_eq!(v["opening"], true);
    }

    #[test]
    fn a_server_alone_counts_accepts() {
        let s = ShardStats {
            accepted: 7,
            responses: 9,
            ..ShardStats::default()
        };
        let zero = ShardStats::default();
        let p = Progress::between((&zero, &s), (&zero, &zero), 1.0, 1.0, None);
        assert_eq!((p.cps, p.rps), (7.0, 9.0));
        assert!(serde_json::to_value(&p).unwrap().get("nic").is_none());
    }

    #[test]
    fn stream_writes_one_object_a_line() {
        let path = std::env::temp_dir().join(format!("sluice-stats-{}.jsonl", std::process::id()));
        let path = path.to_str().unwrap();
        let mut s = StatsStream::create(path).unwrap();
        let zero = ShardStats::default();
        for i in 0..3 {
            s.write(&Progress::between(
                (&zero, &zero),
                (&zero, &zero),
                1.0,
                f64::from(i),
                None,
            ));
        }
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["elapsed_s"], 2.0);
        std::fs::remove_file(path).unwrap();
        assert!(StatsStream::create("/nonexistent/dir/x.jsonl").is_err());
    }
}
