//! DPDK end to end on virtual devices, each in its own `sluice` process (EAL can
//! be initialised once per process):
//! - two ports in one process over `net_ring` and over a `net_memif` pair, frames
//!   both ways, every one checked;
//! - the Linux kernel as a peer: ping from a namespace to sluice on
//!   `net_af_packet` (veth) and on `net_tap` (scripts/test-kernel-peer.sh);
//! - bad configuration is a one-line error.
#![cfg(feature = "dpdk")]

mod common;
use common::{have, is_root, skip};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// One DPDK run (and its kernel peers) at a time. This binary's tests run
/// in parallel, and two busy-polling runs pinned to the same two cores
/// starve each other and the curl, wrk and kernel clients they are tested
/// with: time-outs that say nothing about sluice. Each helper that starts
/// one holds this for the run (not reentrant: a test that calls such a
/// helper does not take it itself).
static DPDK_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_dpdk_run() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed while holding it leaves it poisoned: the next run
    // is still alone.
    DPDK_RUN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bad configuration ends with exit code 2 and exactly one line
/// `sluice: error: ...` on stderr: that line.
fn one_error_line(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("sluice: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_string()
}

fn smoke(link: &str, frames: u64, size: u16) {
    smoke_with(link, frames, size, &[]);
}

fn smoke_with(link: &str, frames: u64, size: u16, extra: &[&str]) {
    let _run = one_dpdk_run();
    let test = format!("smoke_{link}");
    if !is_root() {
        return skip(&test, "DPDK's EAL needs root here");
    }
    let out = Command::new(BIN)
        .args(["smoke", "--quiet", "--link", link, "--json", "-"])
        .args(extra)
        .args(["--frames", &frames.to_string(), "--size", &size.to_string()])
        .output()
        .expect("run sluice");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sluice smoke --link {link} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(v["ok"], true);
    for dir in ["a_to_b", "b_to_a"] {
        assert_eq!(v[dir]["received"].as_u64(), Some(frames), "{dir}: {v}");
        assert_eq!(v[dir]["sent"].as_u64(), Some(frames), "{dir}: {v}");
        assert_eq!(v[dir]["lost"].as_u64(), Some(0), "{dir}: {v}");
        assert_eq!(v[dir]["corrupt"].as_u64(), Some(0), "{dir}: {v}");
    }
    eprintln!(
        "smoke {link}: {:.2} Mpps",
        v["mpps"].as_f64().unwrap_or(0.0)
    );
}

#[test]
fn smoke_ring_small_frames() {
    smoke("ring", 200_000, 64);
}

#[test]
fn smoke_memif_small_frames() {
    smoke("memif", 200_000, 64);
}

#[test]
fn smoke_memif_full_frames() {
    smoke("memif", 50_000, 1514);
}

/// A memif pair's teardown, then EAL's cleanup, leave nothing with EAL's
/// interrupt thread: run ten times, every run exits 0 with no EAL error.
/// (The interrupt-thread barrier once used an EAL alarm, whose source EAL
/// never unregisters; `rte_eal_cleanup` freed it under the running thread,
/// a SIGSEGV in `rte_intr_fd_get` in a few runs of a hundred.)
#[test]
fn memif_teardown_leaves_nothing_with_the_interrupt_thread() {
    let _run = one_dpdk_run();
    if !is_root() {
        return skip("memif_teardown", "DPDK's EAL needs root here");
    }
    for run in 0..10 {
        let out = Command::new(BIN)
            .args(["smoke", "--quiet", "--link", "memif", "--json", "-"])
            .args(["--memory", "no-huge", "--no-huge-mb", "256"])
            .args(["--frames", "2000", "--size", "64"])
            .output()
            .expect("run sluice");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("Error"),
            "run {run}: sluice smoke --link memif: {}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn eal_without_hugepages_falls_back_to_no_huge() {
    smoke_with(
        "memif",
        20_000,
        64,
        &["--memory", "no-huge", "--no-huge-mb", "256"],
    );
}

#[test]
fn eal_with_hugepages_in_memory() {
    if sluice::dpdk::free_hugepages() < 128 {
        return skip(
            "eal_with_hugepages_in_memory",
            "fewer than 128 free hugepages (scripts/test.sh reserves them as root)",
        );
    }
    smoke_with("ring", 20_000, 64, &["--memory", "hugepages"]);
}

/// Runs one of the kernel-peer scripts (root, a namespace) and expects `pass`
/// in what it prints; skips, saying why, where it cannot run.
fn peer_script(test: &str, script: &str, mode: &str, tools: &[&str], pass: &str) {
    let _run = one_dpdk_run();
    if !is_root() {
        return skip(test, "network namespaces and raw sockets need root");
    }
    for tool in tools {
        if !have(tool) {
            return skip(
                test,
                &format!("{tool} is not installed (scripts/setup.sh installs it)"),
            );
        }
    }
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    // Exit 75: the run could not be judged (a capture that lost packets on a
    // busy machine). Run again, a bounded number of times; the run that is
    // judged gets every check.
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let out = Command::new(&path)
            .args([mode, BIN])
            .output()
            .unwrap_or_else(|e| panic!("run {path}: {e}"));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{all}");
        if out.status.code() == Some(75) {
            assert!(
                attempt < ATTEMPTS,
                "{script} {mode}: no run could be judged in {ATTEMPTS} attempts:\n{all}"
            );
            eprintln!("{script} {mode}: attempt {attempt} could not be judged; again");
            continue;
        }
        assert!(out.status.success(), "{script} {mode} failed:\n{all}");
        assert!(all.contains(pass), "{all}");
        return;
    }
}

fn kernel_peer(mode: &str) {
    peer_script(
        &format!("kernel_peer_{mode}"),
        "test-kernel-peer.sh",
        mode,
        &["ip", "ethtool", "ping"],
        "PASS: 5/5 ping replies",
    );
}

#[test]
fn kernel_pings_sluice_over_af_packet() {
    kernel_peer("af_packet");
}

#[test]
fn kernel_pings_sluice_over_tap() {
    kernel_peer("tap");
}

#[test]
fn unknown_port_is_a_one_line_error() {
    if !is_root() {
        return skip(
            "unknown_port_is_a_one_line_error",
            "DPDK's EAL needs root here",
        );
    }
    let out = Command::new(BIN)
        .args([
            "respond",
            "--ip",
            "10.9.9.9",
            "--port",
            "net_nonexistent0",
            "--duration",
            "1",
        ])
        .output()
        .expect("run sluice");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("sluice: error:"))
        .unwrap_or_else(|| panic!("no error line in: {err}"));
    assert!(
        line.contains("net_nonexistent0") && line.contains("--vdev"),
        "{line}"
    );
}

#[test]
fn bad_vdev_is_a_one_line_error() {
    if !is_root() {
        return skip("bad_vdev_is_a_one_line_error", "DPDK's EAL needs root here");
    }
    let out = Command::new(BIN)
        .args(["ports", "--vdev", "net_nosuchdriver0"])
        .output()
        .expect("run sluice");
    let line = one_error_line(&out);
    assert!(line.contains("EAL init"), "{line}");
}

fn http_peer(mode: &str, tool: &str) {
    peer_script(
        &format!("http_peer_{mode}"),
        "test-http-peer.sh",
        mode,
        &["ip", "ethtool", "python3", "tcpdump", "tshark", tool],
        &format!("test-http-peer({mode}): PASS"),
    );
}

/// curl in a namespace against `sluice server` on af_packet.
#[test]
fn kernel_curl_gets_http_from_sluice_server() {
    http_peer("server", "curl");
}

/// The same with two server shards on two af_packet queue pairs: the kernel
/// spreads flows over both by its own hash, software steering hands each
/// frame to the shard that owns its flow.
#[test]
fn kernel_curl_gets_http_from_two_server_shards() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return skip("http_peer_server2", "needs 2 cores");
    }
    http_peer("server2", "curl");
}

/// `sluice client` against nginx in a namespace, short and keep-alive.
#[test]
fn sluice_client_loads_kernel_nginx() {
    http_peer("client", "nginx");
}

/// `sluice client` against nginx with requests as written (-H, --method,
/// --body, URLs in turn, HEAD) and responses as nginx frames them (gzip:
/// chunked; 404; Connection: close every 2nd request): status classes in the
/// JSON, what nginx saw in its access log, the progress lines plain in a file.
#[test]
fn sluice_client_requests_and_framing_against_nginx() {
    http_peer("requests", "nginx");
}

/// The same from two client shards on two af_packet queue pairs.
#[test]
fn two_client_shards_load_kernel_nginx() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return skip("http_peer_client2", "needs 2 cores");
    }
    http_peer("client2", "nginx");
}

/// wrk (10 s, 50 connections, keep-alive and `Connection: close`) from a
/// namespace against `sluice server`: 0 socket errors, 0 non-2xx; captures
/// checked with tshark.
#[test]
fn kernel_wrk_loads_sluice_server() {
    http_peer("wrk", "wrk");
}

/// ab -n 10000 -c 50 (HTTP/1.0, one request per connection): 0 failed.
#[test]
fn kernel_ab_loads_sluice_server() {
    http_peer("ab", "ab");
}

/// Kernel mode as the client (`sluice client --kernel` in a namespace)
/// against `sluice server` on af_packet: short and keep-alive, 0 errors.
#[test]
fn kernel_mode_client_loads_sluice_server() {
    http_peer("kclient", "tshark");
}

/// `sluice client` on af_packet against kernel mode as the server
/// (`sluice server --kernel` in a namespace).
#[test]
fn sluice_client_loads_kernel_mode_server() {
    http_peer("kserver", "tshark");
}

/// One test from two "machines": two `sluice client`s, each on its own veth
/// bridged to nginx in a namespace, the same command but `--split 1/2` and
/// `--split 2/2`: each takes its half of the source addresses and of the
/// connections, nginx logs requests from both halves and from nowhere else,
/// and `sluice merge` of their --hlog files counts the sum of theirs.
#[test]
fn two_split_clients_load_nginx_and_merge_to_the_sum() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return skip("http_peer_split", "needs 2 cores");
    }
    http_peer("split", "nginx");
}

/// 10 MB through the echo server from a Python client, byte-exact, and again
/// with the client half-closing first.
#[test]
fn kernel_client_echoes_10_mb_and_half_closes() {
    http_peer("echo", "tshark");
}

/// An IPv6 interop mode of scripts/test-http-peer.sh, needing `tools`.
fn http_peer_v6(mode: &str, tools: &[&str]) {
    let test = format!("http_peer_{mode}");
    let mut all = vec!["ip", "ethtool", "python3", "tcpdump", "tshark"];
    all.extend_from_slice(tools);
    peer_script(
        &test,
        "test-http-peer.sh",
        mode,
        &all,
        &format!("test-http-peer({mode}): PASS"),
    );
}

/// Over IPv6 (a namespace with fd78::1/64 `nodad`, sluice at fd78::2):
/// `ping -6` answered and `ip -6 neigh` showing sluice's MAC; curl -6 x20
/// and keep-alive, wrk (keep-alive and close) and ab -n 10000 against
/// `sluice server --ip fd78::2`; sluice's SYN-ACKs carry MSS 1440; every
/// capture checked by tshark.
#[test]
fn kernel_loads_sluice_server_over_ipv6() {
    http_peer_v6("server6", &["ping", "curl", "wrk", "ab"]);
}

/// `sluice client --ip fd78::3` against nginx listening on `[::]:80`,
/// short and keep-alive, 0 errors; its SYNs carry MSS 1440.
#[test]
fn sluice_client_loads_kernel_nginx_over_ipv6() {
    http_peer_v6("client6", &["nginx"]);
}

/// 10 MB through the echo server over IPv6, byte-exact, and again with the
/// client half-closing first.
#[test]
fn kernel_client_echoes_10_mb_over_ipv6() {
    http_peer_v6("echo6", &[]);
}

/// The wire-level suite (scripts/test-wire.sh, tests/wire/cases.py): raw
/// segments from scapy against `sluice server` on af_packet and against the
/// Linux kernel; sluice must pass every case but the documented known ones.
#[test]
fn wire_suite_against_sluice_and_linux() {
    if !is_root() {
        return skip("wire_suite", "network namespaces and raw sockets need root");
    }
    let scapy = ["python3", "/usr/bin/python3"].iter().any(|py| {
        Command::new(py)
            .args(["-c", "import scapy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if !scapy {
        return skip(
            "wire_suite",
            "scapy is not installed (scripts/setup.sh installs python3-scapy)",
        );
    }
    peer_script(
        "wire_suite",
        "test-wire.sh",
        "all",
        &["ip", "ethtool", "nft"],
        "test-wire(wire): PASS",
    );
}

fn bench_json(extra: &[&str]) -> Option<serde_json::Value> {
    let _run = one_dpdk_run();
    if !is_root() {
        skip("bench", "DPDK's EAL needs root here");
        return None;
    }
    let out = Command::new(BIN)
        .args([
            "bench",
            "--quiet",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--json",
            "-",
        ])
        .args(extra)
        .output()
        .expect("run sluice bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sluice bench {extra:?} failed: {}\n{stdout}\n{stderr}",
        out.status,
    );
    // Teardown included: no "EAL: Error: Invalid memory" (memif freed twice).
    assert!(
        !stderr.contains("Error"),
        "sluice bench {extra:?}:\n{stderr}"
    );
    Some(serde_json::from_str(&stdout).expect("JSON result"))
}

/// --hgrm, --plot, --hlog and --pcap from a bench run, each read back: the
/// .hgrm totals and the merged .hlog (read with the hdrhistogram crate via
/// `sluice merge`) match the report's counts, the SVG has its lines, and
/// tshark reads exactly --pcap-count frames, none malformed.
#[test]
fn bench_writes_hgrm_svg_hlog_and_pcap() {
    let dir = std::env::temp_dir().join(format!("sluice-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (hgrm, svg, hlog, pcap) = (f("lat.hgrm"), f("lat.svg"), f("run.hlog"), f("first.pcap"));
    let Some(v) = bench_json(&[
        "--hgrm",
        &hgrm,
        "--plot",
        &svg,
        "--hlog",
        &hlog,
        "--pcap",
        &pcap,
        "--pcap-count",
        "300",
    ]) else {
        return;
    };
    let requests = v["latency_us"]["request"]["count"].as_u64().unwrap();
    assert!(requests > 1000, "{v}");
    // .hgrm: the last row's cumulative count is the histogram's.
    let text = std::fs::read_to_string(f("lat.request.hgrm")).unwrap();
    let total = format!("Total count    = {requests:>12}]");
    assert!(text.contains(&total), "{total} in\n{text}");
    for name in ["connect", "first_byte"] {
        assert!(dir.join(format!("lat.{name}.hgrm")).exists());
    }
    // SVG.
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(
        s.starts_with("<svg") && s.matches("<polyline").count() >= 3,
        "{svg}"
    );
    // .hlog: the intervals add up to what was recorded after warm-up.
    let out = Command::new(BIN)
        .args(["merge", &hlog, "--json", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["latency_us"]["request"]["count"].as_u64(),
        Some(requests),
        "{m}"
    );
    assert!(m["intervals"].as_u64().unwrap() >= 3 * 2, "{m}");
    // pcap, read by tshark.
    if have("tshark") {
        let out = Command::new("tshark")
            .args([
                "-r",
                &pcap,
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "_ws.malformed",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = String::from_utf8_lossy(&out.stdout);
        assert_eq!(rows.lines().count(), 300, "--pcap-count frames");
        assert!(
            rows.lines()
                .all(|r| r.split('\t').nth(1).unwrap_or("").is_empty()),
            "malformed: {rows}"
        );
        let out = Command::new("tshark")
            .args([
                "-r",
                &pcap,
                "-Y",
                "tcp.flags.syn == 1",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ])
            .output()
            .unwrap();
        assert!(!out.stdout.is_empty(), "SYNs in the capture");
    } else {
        skip(
            "bench_pcap_tshark",
            "tshark is not installed (scripts/setup.sh installs it)",
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's main job, short: every connection completes, none fails,
/// every one is held in TIME_WAIT at the end (2MSL is 60 s), and the JSON
/// carries the documented fields.
#[test]
fn bench_short_connections_over_memif() {
    let Some(v) = bench_json(&[]) else { return };
    let completed = v["connections_completed"].as_u64().unwrap();
    assert!(completed > 1000, "{v}");
    assert_eq!(v["errors_total"], 0, "{v}");
    assert_eq!(v["connections_opened"].as_u64(), Some(completed), "{v}");
    assert_eq!(v["time_wait"]["entered"].as_u64(), Some(completed), "{v}");
    assert_eq!(
        v["time_wait"]["held_at_end"].as_u64(),
        Some(completed),
        "{v}"
    );
    assert_eq!(v["time_wait"]["expired"], 0, "{v}");
    // Exact per-state accounting: every connection ended in TIME_WAIT (the
    // server closed first) and nothing is left anywhere else.
    let states = v["states_at_end"].as_object().expect("states_at_end");
    assert_eq!(states.len(), 11, "{v}");
    for (name, n) in states {
        let want = match name.as_str() {
            "TIME_WAIT" => completed,
            "LISTEN" => 2, // the server's listeners: HTTP on 80, echo on 7
            _ => 0,
        };
        assert_eq!(n.as_u64(), Some(want), "{name}: {v}");
    }
    assert!(v["cps"].as_f64().unwrap() > 0.0);
    for h in ["connect", "request"] {
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                v["latency_us"][h][k].as_f64().unwrap() > 0.0,
                "{h}.{k}: {v}"
            );
        }
    }
    for k in [
        "reset_by_peer",
        "refused",
        "timed_out_syn",
        "timed_out_retransmit",
    ] {
        assert_eq!(v["errors"][k], 0, "{k}: {v}");
    }
    assert!(v["retransmits"].is_u64());
    eprintln!("bench: {:.0} conn/s", v["cps"].as_f64().unwrap());
}

#[test]
fn bench_keep_alive_over_ring() {
    let Some(v) = bench_json(&["--keep-alive", "--link", "ring", "-c", "16"]) else {
        return;
    };
    assert_eq!(v["errors_total"], 0, "{v}");
    assert!(v["rps"].as_f64().unwrap() > 1000.0, "{v}");
    assert_eq!(v["connections_opened"], 16, "{v}");
    assert!(v["responses"].as_u64().unwrap() > 16 * 100, "{v}");
}

/// Issue 12 item 4 end to end: `sluice bench --syn-flood` sends SYNs from
/// random spoofed sources beside the normal load over memif. Past the
/// half-open limit the server answers them with SYN cookies (RFC 4987), and
/// the normal client is served with no error: keep-alive connections opened
/// before the flood filled the limit, and short connections opened through
/// cookies while it runs.
#[test]
fn bench_serves_its_client_through_a_syn_flood() {
    let Some(v) = bench_json(&["--keep-alive", "-c", "16", "--syn-flood", "100000"]) else {
        return;
    };
    assert_eq!(v["errors_total"], 0, "{v}");
    assert_eq!(v["connections_opened"], 16, "{v}");
    assert!(v["responses"].as_u64().unwrap() > 16 * 100, "{v}");
    assert!(v["syn_cookies_sent"].as_u64().unwrap() > 10_000, "{v}");
    let Some(v) = bench_json(&["-c", "16", "--syn-flood", "100000"]) else {
        return;
    };
    assert_eq!(v["errors_total"], 0, "{v}");
    assert!(v["connections_completed"].as_u64().unwrap() > 1000, "{v}");
    assert!(v["syn_cookies_sent"].as_u64().unwrap() > 10_000, "{v}");
}

/// The same flood over IPv6 (`--family 6`): spoofed global unicast
/// sources, answered with SYN cookies (RFC 4987 3.6) from the IPv6 MSS
/// table, while the keep-alive client keeps its 16 connections served.
#[test]
fn bench_serves_its_client_through_a_syn_flood_over_ipv6() {
    let Some(v) = bench_json(&[
        "--family",
        "6",
        "--keep-alive",
        "-c",
        "16",
        "--syn-flood",
        "100000",
    ]) else {
        return;
    };
    assert_eq!(v["errors_total"], 0, "{v}");
    assert_eq!(v["connections_opened"], 16, "{v}");
    assert!(v["responses"].as_u64().unwrap() > 16 * 100, "{v}");
    assert!(v["syn_cookies_sent"].as_u64().unwrap() > 10_000, "{v}");
}

/// Keep-alive over memif ended, one run in four on a busy machine, with
/// `EAL: Error: Invalid memory`: memif's interrupt thread and the bench both
/// disconnected the server end. Three short runs, each with a clean stderr.
#[test]
fn bench_over_memif_tears_down_without_eal_errors() {
    for _ in 0..3 {
        let Some(v) = bench_json(&["--keep-alive", "-c", "16"]) else {
            return;
        };
        assert_eq!(v["errors_total"], 0, "{v}");
    }
}

/// A memif client whose server is not up says which side to start first.
#[test]
fn memif_client_without_a_server_says_to_start_the_server() {
    if !is_root() {
        return skip("memif_client_without_server", "DPDK's EAL needs root here");
    }
    let sock = std::env::temp_dir().join(format!("sluice-nomemif-{}.sock", std::process::id()));
    let sock = sock.to_str().unwrap();
    let vdev = format!("net_memif0,role=client,socket={sock},socket-abstract=no");
    let out = Command::new(BIN)
        .args([
            "client",
            "--vdev",
            &vdev,
            "--ip",
            "10.9.0.2",
            "http://10.9.0.1/",
        ])
        .args(["-d", "2", "--quiet"])
        .output()
        .expect("run sluice");
    let line = one_error_line(&out);
    assert!(
        line.contains("no memif server listens on socket")
            && line.contains(sock)
            && line.contains("role=server")
            && line.contains("first"),
        "{line}"
    );
}

/// Ctrl-C: the run stops early, connections finish or are reset, the report
/// is printed and the JSON written, and the process exits promptly.
#[test]
fn bench_stops_cleanly_on_sigint() {
    let _run = one_dpdk_run();
    if !is_root() {
        return skip("bench_sigint", "DPDK's EAL needs root here");
    }
    let dir = std::env::temp_dir().join(format!("sluice-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--quiet",
            "--duration",
            "60",
            "--warmup",
            "0.5",
            "--json",
        ])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sluice bench");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let t0 = std::time::Instant::now();
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "no exit 15 s after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Connections/sec:"), "no report: {text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written")).unwrap();
    assert!(v["connections_completed"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["errors"]["unfinished"], 0, "every connection ended: {v}");
    assert!(
        v["measured_s"].as_f64().unwrap() < 10.0,
        "stopped early: {v}"
    );
    let _ = status;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14: `sluice server --ip <IPv6>` on `net_af_packet` (a veth), the
/// kernel in a namespace (e14-named) as its IPv6 peer: 20 curl -6 requests
/// all answered 200, ping -6 answered, the kernel's neighbour entry for the
/// server holds sluice's MAC (its NA), and the server's JSON report counts
/// 20 connections, 20 responses and no drops of TCP.
#[test]
fn e14_kernel_curl6_gets_http_from_sluice_server_over_ipv6() {
    let _run = one_dpdk_run();
    let test = "e14_kernel_curl6";
    if !is_root() {
        return skip(test, "network namespaces and raw sockets need root");
    }
    for tool in ["ip", "ethtool", "curl", "ping"] {
        if !have(tool) {
            return skip(test, &format!("{tool} is not installed"));
        }
    }
    let dir = std::env::temp_dir().join(format!("e14-curl6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("server.json");
    let script = r#"
set -u
NS=e14v6ns; H=e14v6h; P=e14v6p
cleanup() { ip netns del $NS 2>/dev/null; ip link del $H 2>/dev/null; true; }
cleanup
trap cleanup EXIT
ip netns add $NS
ip link add $H type veth peer name $P
ip link set $P netns $NS
sysctl -qw net.ipv6.conf.$H.disable_ipv6=1
ip link set $H up
ip netns exec $NS ip link set lo up
ip netns exec $NS ip link set $P up
ip netns exec $NS ethtool -K $P tx off gso off tso off >/dev/null
ip netns exec $NS ip -6 addr add 2001:db8:e14::2/64 dev $P nodad
"$BIN" server --vdev net_af_packet0,iface=$H --ip 2001:db8:e14::1 --listen 80:http \
    --duration 6 --json "$JSON" 2>"$JSON.err" &
SP=$!
for _ in $(seq 100); do grep -q ready "$JSON.err" && break; sleep 0.1; done
ok=0
for _ in $(seq 20); do
    code=$(ip netns exec $NS curl -6 -s -m 3 -o /dev/null -w '%{http_code}' 'http://[2001:db8:e14::1]/')
    [ "$code" = 200 ] && ok=$((ok + 1))
done
echo "curl6 200: $ok/20"
ip netns exec $NS ping -6 -c 3 -i 0.2 -W 1 2001:db8:e14::1 | grep -o '[0-9]* received'
echo "neigh: $(ip netns exec $NS ip -6 neigh show 2001:db8:e14::1 dev $P)"
echo "mac: $(grep -o 'mac=[0-9a-f:]*' "$JSON.err" | head -1 | cut -d= -f2)"
wait $SP
echo "server exit: $?"
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("BIN", BIN)
        .env("JSON", &json)
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = std::fs::read_to_string(dir.join("server.json.err")).unwrap_or_default();
    eprintln!("{text}\n{}\n{err}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("curl6 200: 20/20"), "{text}");
    assert!(text.contains("3 received"), "{text}");
    assert!(text.contains("server exit: 0"), "{text}");
    let mac = text
        .lines()
        .find_map(|l| l.strip_prefix("mac: "))
        .expect("the server's MAC");
    let neigh = text.lines().find(|l| l.starts_with("neigh: ")).unwrap();
    assert!(!mac.is_empty() && neigh.contains(mac), "{neigh} / {mac}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["accepted"], 20, "{report}");
    assert_eq!(report["responses"], 20, "{report}");
    assert_eq!(report["retransmits"], 0, "{report}");
    for reason in [
        "bad_checksum",
        "no_connection",
        "refused_by_tcp",
        "truncated",
        "malformed",
    ] {
        assert_eq!(report["drops"][reason], 0, "{reason}: {report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14: `sluice bench --family 6` over memif: short HTTP connections
/// over IPv6 between two DPDK shards, every one completed with no error and
/// held in TIME_WAIT at the end (the server closes first), the target named
/// by its IPv6 address.
#[test]
fn e14_bench_family_6_over_memif() {
    let Some(v) = bench_json(&["--family", "6"]) else {
        return;
    };
    let completed = v["connections_completed"].as_u64().unwrap();
    assert!(completed > 100, "{v}");
    assert_eq!(v["errors_total"], 0, "{v}");
    assert_eq!(v["connections_opened"].as_u64(), Some(completed), "{v}");
    assert_eq!(v["responses"].as_u64(), Some(completed), "{v}");
    assert_eq!(
        v["time_wait"]["held_at_end"].as_u64(),
        Some(completed),
        "{v}"
    );
    assert_eq!(v["target"], "http://[2001:db8::2]:80/", "{v}");
    eprintln!("bench --family 6: {:.0} conn/s", v["cps"].as_f64().unwrap());
}

/// The same over net_ring with keep-alive requests.
#[test]
fn e14_bench_family_6_keep_alive_over_ring() {
    let Some(v) = bench_json(&[
        "--family",
        "6",
        "--keep-alive",
        "--link",
        "ring",
        "-c",
        "16",
    ]) else {
        return;
    };
    assert_eq!(v["errors_total"], 0, "{v}");
    assert_eq!(v["connections_opened"], 16, "{v}");
    assert!(v["responses"].as_u64().unwrap() > 16 * 100, "{v}");
}

/// Runs `body` under bash beside a veth pair whose far end is in a network
/// namespace: `$NS`, `$H` (this end) and `$P` (that end) named from `name`
/// (each test its own), both up, the namespace's loopback up and its end's
/// offloads off (af_packet sees whole frames); torn down after, with
/// whatever runs in the namespace. `$BIN` is sluice, `$DIR` a fresh
/// directory, `$JSON` `$DIR/out.json`, then `env`. Its stdout and `$DIR`;
/// `None` (the test skipped, and why) without root or a tool in `tools`.
fn in_veth_namespace(
    test: &str,
    tools: &[&str],
    name: &str,
    body: &str,
    env: &[(&str, &str)],
) -> Option<(String, std::path::PathBuf)> {
    let _run = one_dpdk_run();
    if !is_root() {
        skip(test, "network namespaces and raw sockets need root");
        return None;
    }
    if let Some(tool) = tools.iter().find(|t| !have(t)) {
        skip(test, &format!("{tool} is not installed"));
        return None;
    }
    let dir = std::env::temp_dir().join(format!("{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        r#"
set -u
NS={name}ns; H={name}h; P={name}p
cleanup() {{ ip netns pids $NS 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del $NS 2>/dev/null; ip link del $H 2>/dev/null; true; }}
cleanup
trap cleanup EXIT
ip netns add $NS
ip link add $H type veth peer name $P
ip link set $P netns $NS
sysctl -qw net.ipv6.conf.$H.disable_ipv6=1
ip link set $H up
ip netns exec $NS ip link set lo up
ip netns exec $NS ip link set $P up
ip netns exec $NS ethtool -K $P tx off gso off tso off >/dev/null
{body}"#
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("BIN", BIN)
        .env("JSON", dir.join("out.json"))
        .env("DIR", &dir)
        .envs(env.iter().copied())
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    Some((text, dir))
}

/// Issue 14: `sluice client http://[addr]:port/ --ip <IPv6 prefix>` over
/// DPDK (af_packet on a veth) against a kernel HTTP server (python3's) in
/// a namespace: the server's MAC found by Neighbor Solicitation, responses
/// with no error, and the kernel sees several of our sources from the
/// prefix (two source ports an address: the generator walks ports, then
/// addresses).
#[test]
fn e14_sluice_client_loads_a_kernel_server_over_ipv6() {
    let script = r#"
ip netns exec $NS ip -6 addr add 2001:db8:e14::2/64 dev $P nodad
echo hello > "$DIR/index.html"
(cd "$DIR" && exec ip netns exec $NS python3 -m http.server -b 2001:db8:e14::2 8080) >/dev/null 2>&1 &
for _ in $(seq 50); do ip netns exec $NS ss -ltn | grep -q 8080 && break; sleep 0.1; done
"$BIN" client --vdev net_af_packet0,iface=$H --ip 2001:db8:e14::100/120 --src-ports 40000-40001 -c 4 --duration 2 \
    --quiet --json "$JSON" 'http://[2001:db8:e14::2]:8080/'
echo "client exit: $?"
echo "neigh: $(ip netns exec $NS ip -6 neigh show dev $P | grep -c '2001:db8:e14::1[0-9a-f][0-9a-f]')"
"#;
    let tools = ["ip", "ethtool", "python3"];
    let Some((text, dir)) = in_veth_namespace("e14_client6", &tools, "e14c6", script, &[]) else {
        return;
    };
    let json = dir.join("out.json");
    assert!(text.contains("client exit: 0"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["errors_total"], 0, "{v}");
    let responses = v["responses"].as_u64().unwrap();
    assert!(responses > 10, "{v}");
    assert_eq!(v["status"]["2xx"].as_u64(), Some(responses), "{v}");
    // The kernel learnt several of our sources (one per connection's address).
    let neigh: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("neigh: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(neigh > 1, "sources spread over the prefix: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14: ONE `sluice server --ip 10.14.0.2 --ip 2001:db8:d14::2` on
/// `net_af_packet` (a veth; the kernel in a d14-named namespace as its
/// peer) serves both families at once: ARP and Neighbor Solicitation
/// answered (ping and ping -6), curl -4 and curl -6 ×10 each answered 200,
/// then `sluice client --kernel` from the namespace loading it over IPv4
/// and over IPv6 at the same time with no error; the server's report counts
/// every connection both clients and curl made, and drops no TCP. `cores`
/// "0,1" (af_packet qpairs=2): two dual-stack shards, the kernel spreading
/// flows by its own hash, software steering handing frames of either family
/// to the shard that owns the flow.
fn d14_dual_stack_server(cores: &str) {
    let test = format!("d14_dual_stack_{}", cores.replace(',', "_"));
    let two = cores.contains(',');
    let script = r#"
ip netns exec $NS ip addr add 10.14.0.1/24 dev $P
ip netns exec $NS ip -6 addr add 2001:db8:d14::1/64 dev $P nodad
"$BIN" server --vdev "net_af_packet0,iface=$H$QP" --cores "$CORES" --ip 10.14.0.2 --ip 2001:db8:d14::2 \
    --listen 80:http --duration 10 --quiet --json "$JSON" 2>"$JSON.err" &
SP=$!
for _ in $(seq 100); do grep -q ready "$JSON.err" && break; sleep 0.1; done
echo "ping4: $(ip netns exec $NS ping -c 2 -i 0.2 -W 1 10.14.0.2 | grep -o '[0-9]* received')"
echo "ping6: $(ip netns exec $NS ping -6 -c 2 -i 0.2 -W 1 2001:db8:d14::2 | grep -o '[0-9]* received')"
ok4=0; ok6=0
for _ in $(seq 10); do
    c=$(ip netns exec $NS curl -4 -s -m 3 -o /dev/null -w '%{http_code}' 'http://10.14.0.2/')
    [ "$c" = 200 ] && ok4=$((ok4 + 1))
    c=$(ip netns exec $NS curl -6 -s -m 3 -o /dev/null -w '%{http_code}' 'http://[2001:db8:d14::2]/')
    [ "$c" = 200 ] && ok6=$((ok6 + 1))
done
echo "curl4 200: $ok4/10"
echo "curl6 200: $ok6/10"
ip netns exec $NS "$BIN" client --kernel http://10.14.0.2/ -c 4 -d 2 --cores 0 --quiet --json "$DIR/c4.json" &
A=$!
ip netns exec $NS "$BIN" client --kernel 'http://[2001:db8:d14::2]/' -c 4 -d 2 --cores 0 --quiet --json "$DIR/c6.json" &
B=$!
wait $A; echo "client4 exit: $?"
wait $B; echo "client6 exit: $?"
wait $SP
echo "server exit: $?"
"#;
    let env = [("CORES", cores), ("QP", if two { ",qpairs=2" } else { "" })];
    let tools = ["ip", "ethtool", "curl", "ping"];
    let name = if two { "d14ds2" } else { "d14ds1" };
    let Some((text, dir)) = in_veth_namespace(&test, &tools, name, script, &env) else {
        return;
    };
    let json = dir.join("out.json");
    let err = std::fs::read_to_string(dir.join("out.json.err")).unwrap_or_default();
    let report = std::fs::read_to_string(&json).unwrap_or_default();
    eprintln!("{err}\n{report}");
    for want in [
        "ping4: 2 received",
        "ping6: 2 received",
        "curl4 200: 10/10",
        "curl6 200: 10/10",
        "client4 exit: 0",
        "client6 exit: 0",
        "server exit: 0",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let (c4, c6, s) = (read("c4.json"), read("c6.json"), read("out.json"));
    let mut completed = 20;
    for c in [&c4, &c6] {
        assert_eq!(c["errors_total"], 0, "{c}");
        let n = c["connections_completed"].as_u64().unwrap();
        assert!(n > 10, "{c}");
        assert_eq!(c["status"]["2xx"].as_u64(), c["responses"].as_u64(), "{c}");
        completed += n;
    }
    assert_eq!(
        s["ips"],
        serde_json::json!(["10.14.0.2", "2001:db8:d14::2"])
    );
    assert_eq!(s["shards"], if two { 2 } else { 1 }, "{s}");
    let accepted = s["accepted"].as_u64().unwrap();
    assert!(
        accepted >= completed,
        "server {accepted} < {completed}: {s}"
    );
    assert!(s["responses"].as_u64().unwrap() >= completed, "{s}");
    assert_eq!(s["retransmits"], 0, "{s}");
    for reason in [
        "bad_checksum",
        "no_connection",
        "truncated",
        "malformed",
        "steer_full",
    ] {
        assert_eq!(s["drops"][reason], 0, "{reason}: {s}");
    }
    let refused = s["drops"]["refused_by_tcp"].as_u64().unwrap();
    if two {
        assert!(s["steered"].as_u64().unwrap() > 0, "{s}");
        // A frame the kernel put on the other shard's queue is handed over
        // a turn later, behind one of the same flow that came straight to
        // its owner: now and then one arrives out of order and TCP refuses
        // it (the kernel sends it again). Bounded at 1% of the connections
        // (seen: 0 to 2 of some 300).
        assert!(refused * 100 <= completed, "{refused} of {completed}: {s}");
    } else {
        assert_eq!(refused, 0, "{s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn d14_one_dual_stack_server_serves_curl_and_sluice_over_both_families() {
    d14_dual_stack_server("0");
}

/// The same with two dual-stack shards (issue 14: several shards over IPv6).
#[test]
fn d14_two_dual_stack_shards_steer_both_families() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return skip("d14_dual_stack_0_1", "needs 2 cores");
    }
    d14_dual_stack_server("0,1");
}

/// Issue 14 item 2: `sluice client --cores 0,1` over IPv6 (af_packet with
/// qpairs=2, the kernel spreading flows over the two sockets by its own
/// hash) against `sluice server --kernel` on [2001:db8:d14::2] in a
/// namespace: each shard opens only tuples it owns, and replies that reach
/// the other shard's queue are handed over, so no connection is reset or
/// lost and both shards' loads complete.
#[test]
fn d14_two_client_shards_load_a_kernel_server_over_ipv6() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return skip("d14_client6_two_shards", "needs 2 cores");
    }
    let script = r#"
ip netns exec $NS ip -6 addr add 2001:db8:d14::2/64 dev $P nodad
ip netns exec $NS "$BIN" server --kernel --ip 2001:db8:d14::2 --listen 8080:http --cores 0 \
    --duration 20 --quiet --json "$DIR/server.json" 2>"$DIR/server.err" &
KS=$!
for _ in $(seq 100); do grep -q ready "$DIR/server.err" && break; sleep 0.1; done
"$BIN" client --vdev net_af_packet0,iface=$H,qpairs=2 --cores 0,1 --ip 2001:db8:d14::100/120 \
    -c 16 --duration 3 --quiet --json "$JSON" 'http://[2001:db8:d14::2]:8080/'
echo "client exit: $?"
kill -INT $KS; wait $KS
echo "server exit: $?"
"#;
    let tools = ["ip", "ethtool"];
    let Some((text, dir)) =
        in_veth_namespace("d14_client6_two_shards", &tools, "d14c2", script, &[])
    else {
        return;
    };
    let json = dir.join("out.json");
    assert!(text.contains("client exit: 0"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["client_cores"], serde_json::json!([0, 1]), "{v}");
    assert_eq!(v["errors_total"], 0, "{v}");
    let responses = v["responses"].as_u64().unwrap();
    assert!(responses > 100, "{v}");
    assert_eq!(v["status"]["2xx"].as_u64(), Some(responses), "{v}");
    // The server reset nothing, and hardly a segment reached a shard
    // without its connection (a shard answering its peer's flows would see
    // about half). Frames steered to their owner may arrive after later
    // ones that came straight to it: some are refused by TCP as out of
    // order and recovered, a rare one comes after its connection closed,
    // as over IPv4.
    assert_eq!(v["client"]["rsts_in"], 0, "{v}");
    let stray = v["client"]["drops"]["no_connection"].as_u64().unwrap();
    let opened = v["connections_opened"].as_u64().unwrap();
    assert!(stray * 100 <= opened, "{stray} of {opened}: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14: `sluice client` over IPv6 with `--gateway` and `--split`. The
/// target, 2001:db8:99::2, is on the namespace's loopback, so no Neighbor
/// Solicitation on the link is answered for it (Linux answers only for the
/// receiving interface's addresses): through `--gateway 2001:db8:d14::2`
/// (the namespace's veth address, its router for the target) the load
/// completes with no error. `--split 2/2` of `--ip 2001:db8:d14::100/120`:
/// every source the kernel learnt is in the second half of the range.
#[test]
fn d14_client_over_ipv6_through_a_gateway_with_split() {
    let script = r#"
ip netns exec $NS ip -6 addr add 2001:db8:d14::2/64 dev $P nodad
ip netns exec $NS ip -6 addr add 2001:db8:99::2/128 dev lo
ip netns exec $NS "$BIN" server --kernel --ip 2001:db8:99::2 --listen 8080:http --cores 0 \
    --duration 30 --quiet 2>"$DIR/server.err" &
for _ in $(seq 100); do grep -q ready "$DIR/server.err" && break; sleep 0.1; done
"$BIN" client --vdev net_af_packet0,iface=$H --ip 2001:db8:d14::100/120 -c 4 --duration 1 \
    --warmup 0 --quiet 'http://[2001:db8:99::2]:8080/' >/dev/null 2>"$DIR/nogw.err"
echo "no gateway exit: $?"
"$BIN" client --vdev net_af_packet0,iface=$H --ip 2001:db8:d14::100/120 --split 2/2 --src-ports 40000-40001 \
    --gateway 2001:db8:d14::2 -c 8 --duration 2 --quiet --json "$JSON" 'http://[2001:db8:99::2]:8080/'
echo "gateway exit: $?"
echo "neigh: $(ip netns exec $NS ip -6 neigh show dev $P | grep -o '^2001:db8:d14::1[0-9a-f]*' | sort -u | tr '\n' ' ')"
"#;
    let tools = ["ip", "ethtool"];
    let Some((text, dir)) = in_veth_namespace("d14_client6_gateway", &tools, "d14gw", script, &[])
    else {
        return;
    };
    let json = dir.join("out.json");
    let nogw = std::fs::read_to_string(dir.join("nogw.err")).unwrap_or_default();
    eprintln!("{nogw}");
    assert!(!text.contains("no gateway exit: 0"), "{text}");
    assert!(nogw.contains("give --gateway"), "{nogw}");
    assert!(text.contains("gateway exit: 0"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["errors_total"], 0, "{v}");
    assert!(v["responses"].as_u64().unwrap() > 10, "{v}");
    let neigh: Vec<std::net::Ipv6Addr> = text
        .lines()
        .find_map(|l| l.strip_prefix("neigh: "))
        .unwrap()
        .split_whitespace()
        .map(|a| a.parse().unwrap())
        .collect();
    assert!(neigh.len() > 1, "{text}");
    // The /120's 255 addresses (::101 to ::1ff) halved: 2/2 is ::180 on.
    let half: std::net::Ipv6Addr = "2001:db8:d14::180".parse().unwrap();
    assert!(neigh.iter().all(|a| *a >= half), "{neigh:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
