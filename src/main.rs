//! The `sluice` command line.

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  # The embedded benchmark: HTTP server and load generator shards over memif,
  # 10 s of one-request connections, then the latency report:
  sluice bench
  sluice bench --keep-alive --duration 5 --json result.json
  sluice bench --cps 100000 --connections 4096   # open loop at a fixed rate
  # A server on a veth (kernel clients in a namespace): HTTP on 80, echo on 7:
  sluice server --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.2 --listen 80:http --listen 7:echo
  # The load generator against a kernel server, 30 s, 256 connections, JSON out:
  sluice client --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.9 http://10.0.0.1/ -d 30 -c 256 --json r.json
  # Two DPDK ports in one process over a memif pair; 1 M frames each way, checked:
  sluice smoke
  sluice smoke --link ring --frames 100000 --json -
  # Answer ARP and ping for 10.0.0.2 on a veth (kernel peer in a namespace):
  sluice respond --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.2
  # What DPDK sees (virtual devices, or --pci for bound NICs):
  sluice ports --vdev net_tap0,iface=sl0 --json
  # Latency files: wrk2-style .hgrm, an SVG plot, interval logs merged later:
  sluice bench -d 5 --hgrm lat.hgrm --plot lat.svg --hlog run1.hlog --pcap first.pcap
  sluice merge run1.hlog run2.hlog --plot merged.svg
  # Kernel sockets instead of DPDK (baseline, or where DPDK cannot run):
  sluice server --kernel --ip 127.0.0.1 --listen 8080:http --cores 1
  sluice client --kernel http://127.0.0.1:8080/ -c 64 -d 10 --cores 0
  # Watching a run: a JSON line a second, Prometheus metrics at /metrics:
  sluice server --kernel --ip 127.0.0.1 --listen 8080:http --stats s.jsonl --metrics 127.0.0.1:9100
  # One test from N machines: machine K of N takes its slice, then merge the logs:
  sluice client --vdev net_af_packet0,iface=eth1 --ip 10.1.0.0/16 http://10.0.0.1/ --split 1/4 --hlog m1.hlog

Memory: hugepages are used when reserved (echo 512 > /proc/sys/vm/nr_hugepages),
otherwise EAL runs with --no-huge -m 512 (see --memory, --no-huge-mb).";

const CLIENT_EXAMPLES: &str = "\
Examples:
  # 256 connections for 30 s against nginx at 10.0.0.1, from 128 source addresses:
  sluice client --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.128/25 http://10.0.0.1/ -c 256 -d 30
  # Headers as wrk takes them; gzip makes nginx answer chunked:
  sluice client --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.9 http://10.0.0.1/ \\
      -H 'Accept-Encoding: gzip' -H 'X-Trace: 1' --keep-alive
  # Several paths in turn (one host:port), or one per line from a file:
  sluice client --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.9 http://10.0.0.1/a /b /c
  sluice client --vdev net_af_packet0,iface=veth-sl --ip 10.0.0.9 --urls paths.txt
  # A method and a body (sent with its Content-Length); HEAD reads no body:
  sluice client --kernel http://127.0.0.1:8080/api --method PUT --body '{\"k\": 1}'
  sluice client --kernel http://127.0.0.1:8080/big --method HEAD
  sluice client --kernel http://127.0.0.1:8080/upload --body-file req.bin

The report counts responses by status class (2xx 3xx 4xx 5xx other) and the body
bytes received; non-2xx responses are errors (exit code 1).";

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "A user-space TCP endpoint on DPDK: high-connection-rate server and load generator",
    after_help = EXAMPLES
)]
#[cfg_attr(
    not(feature = "dpdk"),
    command(
        before_help = "This sluice was built without DPDK: only server --kernel, client --kernel, merge and version run."
    )
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Benchmark: server and load-generator shards in one process over memif (or ring), then the report.
    Bench {
        #[command(flatten)]
        eal: sluice::tools::EalArgs,
        #[command(flatten)]
        args: sluice::tools::bench::BenchArgs,
    },
    /// TCP server on a DPDK port: HTTP, echo, discard, close, drain-reply per listening port.
    Server {
        #[command(flatten)]
        eal: sluice::tools::EalArgs,
        #[command(flatten)]
        args: sluice::tools::serve::ServerArgs,
    },
    /// HTTP load generator on a DPDK port: closed or open loop, latency histograms.
    #[command(after_help = CLIENT_EXAMPLES)]
    Client {
        #[command(flatten)]
        eal: sluice::tools::EalArgs,
        #[command(flatten)]
        args: sluice::tools::client::ClientArgs,
    },
    /// Send frames both ways between two ports in one process (memif pair or ring) and check every one.
    Smoke {
        #[command(flatten)]
        eal: sluice::tools::EalArgs,
        #[command(flatten)]
        args: sluice::tools::smoke::SmokeArgs,
    },
    /// Answer ARP requests and ICMP echo for one IPv4 address on a DPDK port.
    Respond {
        #[command(flatten)]
        eal: sluice::tools::EalArgs,
        #[command(flatten)]
        args: sluice::tools::respond::RespondArgs,
    },
    /// List DPDK ports with driver, MAC, queues, RSS and checksum offloads.
    Ports {
        #[command(flatten)]
        eal: sluice::tools::EalArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Merge HdrHistogram interval logs (--hlog, from one or many machines) into one latency report.
    Merge {
        /// The .hlog files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// Also write the merged histograms as FILE.{connect,first_byte,request}.hgrm.
        #[arg(long, value_name = "FILE")]
        hgrm: Option<String>,
        /// Also draw the merged latency by percentile to an SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<String>,
        /// Write the merged percentiles as JSON to FILE (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        json: Option<String>,
    },
    /// Print what this binary was built with.
    Version,
}

fn write_json<T: serde::Serialize>(path: &str, v: &T) -> anyhow::Result<()> {
    let s = serde_json::to_string_pretty(v)?;
    if path == "-" {
        println!("{s}");
    } else {
        std::fs::write(path, s + "\n").map_err(|e| anyhow::anyhow!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// Prints a load run's report (and writes its JSON); exit code 0 if clean.
fn load_report(r: &sluice::stats::report::Report, json: Option<&str>) -> anyhow::Result<i32> {
    if let Some(p) = json {
        write_json(p, r)?;
    }
    if json != Some("-") {
        print!("{}", r.text());
    }
    Ok(if sluice::stats::report::clean(r) {
        0
    } else {
        1
    })
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.cmd {
        #[cfg(feature = "dpdk")]
        Cmd::Bench { eal, args } => {
            let r = sluice::tools::bench::run(&eal, &args)?;
            load_report(&r, args.load.json.as_deref())
        }
        Cmd::Server { eal, args } => {
            let r = sluice::tools::serve::run(&eal, &args)?;
            if let Some(p) = &args.json {
                write_json(p, &r)?;
            }
            eprintln!(
                "server: {:.1} s, {} connections accepted ({:.0}/s), {} responses, rst in/out {}/{}, syn cookies {}, retransmits {}",
                r.seconds,
                r.accepted,
                r.accepts_per_sec,
                r.responses,
                r.rsts_in,
                r.rsts_out,
                r.syn_cookies_sent,
                r.retransmits
            );
            Ok(0)
        }
        Cmd::Client { eal, args } => {
            let r = sluice::tools::client::run(&eal, &args)?;
            load_report(&r, args.load.json.as_deref())
        }
        #[cfg(feature = "dpdk")]
        Cmd::Smoke { eal, args } => {
            let r = sluice::tools::smoke::run(&eal, &args)?;
            if let Some(p) = &args.json {
                write_json(p, &r)?;
            }
            if args.json.as_deref() != Some("-") {
                println!(
                    "smoke {}: {} frames of {} B each way in {:.2} s, {:.2} Mpps, {:.2} Gbit/s",
                    format!("{:?}", r.link).to_lowercase(),
                    r.frames_per_direction,
                    r.frame_size,
                    r.seconds,
                    r.mpps,
                    r.gbps
                );
                for (name, s) in [("a->b", &r.a_to_b), ("b->a", &r.b_to_a)] {
                    println!(
                        "  {name}: sent {} received {} lost {} out-of-order {} corrupt {} tx-refused(retried) {}",
                        s.sent, s.received, s.lost, s.out_of_order, s.corrupt, s.tx_refused
                    );
                }
                println!("  result: {}", if r.ok { "OK" } else { "FAILED" });
            }
            Ok(if r.ok { 0 } else { 1 })
        }
        #[cfg(feature = "dpdk")]
        Cmd::Respond { eal, args } => {
            let r = sluice::tools::respond::run(&eal, &args)?;
            if let Some(p) = &args.json {
                write_json(p, &r)?;
            }
            eprintln!(
                "respond: {:.1} s, rx {} tx {}, arp answered {}, echo answered {}, drops {}",
                r.seconds,
                r.rx_frames,
                r.tx_frames,
                r.arp_requests_answered,
                r.icmp_echo_answered,
                r.drops
            );
            Ok(0)
        }
        #[cfg(feature = "dpdk")]
        Cmd::Ports { eal, json } => {
            sluice::tools::ports::run(&eal, json)?;
            Ok(0)
        }
        #[cfg(not(feature = "dpdk"))]
        Cmd::Bench { .. } => Err(sluice::tools::needs_dpdk("`sluice bench`")),
        #[cfg(not(feature = "dpdk"))]
        Cmd::Smoke { .. } => Err(sluice::tools::needs_dpdk("`sluice smoke`")),
        #[cfg(not(feature = "dpdk"))]
        Cmd::Respond { .. } => Err(sluice::tools::needs_dpdk("`sluice respond`")),
        #[cfg(not(feature = "dpdk"))]
        Cmd::Ports { .. } => Err(sluice::tools::needs_dpdk("`sluice ports`")),
        Cmd::Merge {
            files,
            hgrm,
            plot,
            json,
        } => {
            use sluice::stats::{Percentiles, output};
            let (l, n) = output::merge_hlogs(&files)?;
            let rows: Vec<(&str, Percentiles)> = output::named(&l)
                .into_iter()
                .map(|(name, h)| (name, Percentiles::of(h)))
                .collect();
            if let Some(p) = &json {
                let m: std::collections::BTreeMap<&str, Percentiles> =
                    rows.iter().copied().collect();
                let v = serde_json::json!({ "files": files, "intervals": n, "latency_us": m });
                let s = serde_json::to_string_pretty(&v)?;
                if p == "-" {
                    println!("{s}");
                } else {
                    std::fs::write(p, s + "\n")
                        .map_err(|e| anyhow::anyhow!("cannot write {p}: {e}"))?;
                }
            }
            if json.as_deref() != Some("-") {
                println!(
                    "merged {} interval histograms from {} file(s)",
                    n,
                    files.len()
                );
                println!(
                    "  Latency (us)   count       p50       p90       p99     p99.9    p99.99       max"
                );
                for (name, p) in &rows {
                    println!(
                        "  {name:<12} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                        p.count, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max
                    );
                }
            }
            if let Some(p) = &hgrm {
                output::write_hgrm_files(p, &l).map_err(|e| anyhow::anyhow!("--hgrm {p}: {e}"))?;
            }
            if let Some(p) = &plot {
                output::write_svg(p, "sluice merge: latency by percentile", &l)?;
            }
            Ok(if n > 0 { 0 } else { 1 })
        }
        Cmd::Version => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            #[cfg(feature = "dpdk")]
            println!("DPDK {}", sluice::dpdk::DPDK_VERSION);
            #[cfg(not(feature = "dpdk"))]
            println!(
                "built without DPDK (--no-default-features): only server --kernel, client --kernel, merge and version run"
            );
            Ok(0)
        }
    }
}

/// Huge pages for the large tables of a run at millions of connections
/// (`sluice::huge`).
#[global_allocator]
static ALLOC: sluice::huge::HugeAlloc = sluice::huge::HugeAlloc;

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("sluice: error: {e:#}");
            std::process::exit(2);
        }
    }
}
