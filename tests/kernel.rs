//! Kernel-socket mode (`--kernel`) on loopback: the sluice applications over
//! Linux sockets, server and load generator, with no DPDK at all; and the
//! binary's `server --kernel` and `client --kernel`, in the build with DPDK
//! and in the one without.

mod common;

use sluice::app::{ClientConfig, Request, ServerApp, echo_byte, http};
use sluice::kernel::{ClientOutcome, Clock, KernelShard, drive_client, serve};
use sluice::stats::Published;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A kernel-mode server on 127.0.0.1 (or another address: `start_on`; HTTP
/// and echo, ports from the kernel) on its own thread; returns the ports and
/// a stop handle.
struct Server {
    http: SocketAddr,
    echo: SocketAddr,
    stop: Arc<AtomicBool>,
    out: Arc<Published>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(close_after: u32) -> Server {
        Server::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), close_after)
    }

    fn start_on(ip: IpAddr, close_after: u32) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Published::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let (s, o) = (stop.clone(), out.clone());
        let thread = std::thread::spawn(move || {
            let clock = Clock::new();
            let mut shard = KernelShard::new().unwrap();
            let lo = SocketAddr::new(ip, 0);
            shard.listen(lo, ServerApp::http(321, close_after)).unwrap();
            shard.listen(lo, ServerApp::Echo).unwrap();
            let port = |i| shard.listen_addr(i).unwrap();
            tx.send((port(0), port(1))).unwrap();
            serve(&mut shard, &clock, &o, &s).unwrap();
        });
        let (http, echo) = rx.recv().unwrap();
        Server {
            http,
            echo,
            stop,
            out,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> sluice::stats::ShardStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.out.load()
    }
}

/// The load's settings; an IPv6 target is given to the shard by `load`
/// (`aim_v6`), the IPv4-only `ClientConfig` keeping its port alone.
fn cfg(
    target: impl Into<SocketAddr>,
    connections: u32,
    requests: u32,
    close: bool,
) -> ClientConfig {
    let target = match target.into() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, a.port()),
    };
    ClientConfig {
        target,
        src_first: Ipv4Addr::LOCALHOST,
        src_count: 1,
        ports: (1024, 65535),
        connections,
        requests,
        cps: 0,
        rps: 0,
        echo: None,
        request_list: Request::only(
            http::request("127.0.0.1", "/", false),
            http::request("127.0.0.1", "/", close),
        ),
        think: Duration::ZERO,
        open_burst: 16,
    }
}

fn load(c: ClientConfig, secs: f64) -> ClientOutcome {
    load_v6(None, c, secs)
}

/// `load`, over IPv6 to `v6` (target, and source addresses) if given.
fn load_v6(
    v6: Option<(SocketAddr, Option<(Ipv6Addr, u128)>)>,
    c: ClientConfig,
    secs: f64,
) -> ClientOutcome {
    let clock = Clock::new();
    let mut shard = KernelShard::new().unwrap();
    if let Some((SocketAddr::V6(t), src)) = v6 {
        shard.aim_v6(t, src);
    }
    let stop = AtomicBool::new(false);
    let d = Duration::from_secs_f64(secs);
    drive_client(&mut shard, &clock, c, (d, d / 4), &stop, false, |_| {}).unwrap()
}

fn assert_clean(o: &ClientOutcome, what: &str) {
    let s = &o.stats;
    assert_eq!(s.app_errors, 0, "{what}: application errors");
    assert_eq!(s.non_2xx, 0, "{what}: non-2xx");
    assert_eq!(
        s.abnormal_closes(),
        0,
        "{what}: closes {:?}",
        s.closes_map()
    );
    assert!(s.responses > 50, "{what}: only {} responses", s.responses);
    assert_eq!(
        s.responses, s.requests_sent,
        "{what}: every request answered"
    );
    assert_eq!(
        o.latency.request.len(),
        o.latency.first_byte.len(),
        "{what}"
    );
    assert!(!o.latency.request.is_empty(), "{what}: latencies recorded");
}

#[test]
fn short_connections_server_closes_first() {
    let srv = Server::start(0);
    let o = load(cfg(srv.http, 8, 1, true), 1.0);
    assert_clean(&o, "short");
    assert_eq!(
        o.stats.completed, o.stats.opened,
        "each connection did its request"
    );
    assert!(!o.latency.connect.is_empty());
    let s = srv.stop();
    assert_eq!(s.accepted, o.stats.opened);
    assert_eq!(s.responses, o.stats.responses);
    assert_eq!(s.abnormal_closes(), 0, "server closes {:?}", s.closes_map());
}

#[test]
fn short_connections_client_closes_first() {
    let srv = Server::start(0);
    let o = load(cfg(srv.http, 8, 1, false), 1.0);
    assert_clean(&o, "client-first");
    let s = srv.stop();
    assert_eq!(s.abnormal_closes(), 0, "server closes {:?}", s.closes_map());
}

#[test]
fn keep_alive_and_open_loop_rps() {
    let srv = Server::start(0);
    let o = load(cfg(srv.http, 4, u32::MAX, false), 1.0);
    assert_clean(&o, "keep-alive");
    assert!(
        o.stats.opened <= 4,
        "kept alive: {} connections",
        o.stats.opened
    );
    // Open loop: 2000 requests/s over 8 connections for 1 s.
    let mut c = cfg(srv.http, 8, u32::MAX, false);
    c.rps = 2000;
    let o = load(c, 1.0);
    assert_clean(&o, "rps");
    let n = o.stats.responses;
    assert!(
        (1500..=2100).contains(&n),
        "about 2000 scheduled requests in 1 s, got {n}"
    );
    srv.stop();
}

#[test]
fn echo_payloads_come_back_exactly() {
    let srv = Server::start(0);
    let mut c = cfg(srv.echo, 4, 20, false);
    c.echo = Some(100_000);
    let bytes: Vec<u8> = (0..100_000).map(echo_byte).collect();
    c.request_list = Request::only(bytes.clone(), bytes);
    let o = load(c, 1.0);
    assert_clean(&o, "echo");
    srv.stop();
}

/// Whether this host has IPv6 on loopback (::1); a container may not.
fn ipv6_loopback(test: &str) -> bool {
    let ok = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        common::skip(test, "no IPv6 on loopback (::1 cannot be bound)");
    }
    ok
}

/// Kernel mode over IPv6 (issue 14): the server listening on ::1, the load
/// generator aimed at it from ::1; short connections, every request
/// answered, both sides agreeing on the counts.
#[test]
fn short_connections_over_ipv6_loopback() {
    if !ipv6_loopback("kernel_ipv6_loopback") {
        return;
    }
    let srv = Server::start_on(IpAddr::V6(Ipv6Addr::LOCALHOST), 0);
    assert!(srv.http.is_ipv6(), "{}", srv.http);
    let src = Some((Ipv6Addr::LOCALHOST, 1));
    let o = load_v6(Some((srv.http, src)), cfg(srv.http, 8, 1, true), 1.0);
    assert_clean(&o, "IPv6 short");
    assert_eq!(o.stats.completed, o.stats.opened);
    let mut c = cfg(srv.echo, 2, 5, false);
    c.echo = Some(20_000);
    let bytes: Vec<u8> = (0..20_000).map(echo_byte).collect();
    c.request_list = Request::only(bytes.clone(), bytes);
    let e = load_v6(Some((srv.echo, None)), c, 0.5);
    assert_clean(&e, "IPv6 echo");
    let s = srv.stop();
    assert_eq!(s.accepted, o.stats.opened + e.stats.opened);
    assert_eq!(s.responses, o.stats.responses);
    assert_eq!(s.abnormal_closes(), 0, "server closes {:?}", s.closes_map());
}

/// A listener on [::] takes IPv4 connections too when the host says so
/// (`net.ipv6.bindv6only` 0, Linux's default; IPv4-mapped, RFC 4291 2.5.5.2).
#[test]
fn a_listener_on_the_ipv6_any_address_serves_ipv4_too() {
    if !ipv6_loopback("kernel_ipv6_any") {
        return;
    }
    let dual =
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0");
    if !dual {
        return common::skip("kernel_ipv6_any", "net.ipv6.bindv6only is not 0");
    }
    let srv = Server::start_on(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
    let v4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, srv.http.port());
    let o = load(cfg(v4, 4, 1, true), 0.5);
    assert_clean(&o, "IPv4 to [::]");
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, srv.http.port()));
    let o6 = load_v6(Some((v6, None)), cfg(v6, 4, 1, true), 0.5);
    assert_clean(&o6, "IPv6 to [::]");
    let s = srv.stop();
    assert_eq!(s.responses, o.stats.responses + o6.stats.responses);
}

/// With source addresses given, connections take them in turn (the kernel
/// picks the ports): a plain listener sees both 127.0.0.2 and 127.0.0.3.
#[test]
fn source_addresses_are_used_in_turn() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(a) = l.local_addr().unwrap() else {
        unreachable!()
    };
    let seen = std::thread::spawn(move || {
        let mut peers = std::collections::BTreeMap::new();
        for _ in 0..20 {
            let (mut s, peer) = l.accept().unwrap();
            *peers.entry(peer.ip()).or_insert(0) += 1;
            let mut buf = [0u8; 1024];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(&http::response(10, true)).unwrap();
        }
        peers
    });
    let mut c = cfg(a, 1, 1, true);
    c.src_first = Ipv4Addr::new(127, 0, 0, 2);
    c.src_count = 2;
    let clock = Clock::new();
    let mut shard = KernelShard::new().unwrap();
    let stop = AtomicBool::new(false);
    let d = Duration::from_secs(5);
    let mut c2 = c.clone();
    c2.connections = 1;
    // 20 connections one after another, then the listener stops accepting.
    let o = drive_client(
        &mut shard,
        &clock,
        c2,
        (d, Duration::ZERO),
        &stop,
        false,
        |s| {
            if s.completed >= 20 {
                stop.store(true, Ordering::Relaxed);
            }
        },
    );
    let o = o.unwrap();
    let peers = seen.join().unwrap();
    assert!(o.stats.completed >= 20, "{:?}", o.stats.closes_map());
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(peers.values().all(|&n| n == 10), "{peers:?}");
}

#[test]
fn refused_connections_are_counted_as_refused() {
    // A port bound but not listening (held for the whole test, so no other
    // test's listener can take it): SYNs to it are answered with RST.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let a = sock.local_addr().unwrap().as_socket_ipv4().unwrap();
    let o = load(cfg(a, 2, 1, false), 0.4);
    drop(sock);
    let refused = o.stats.closes_map()["refused"];
    assert!(refused > 0, "{:?}", o.stats.closes_map());
    assert_eq!(o.stats.responses, 0);
}

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A loopback port nothing listens on (now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sluice server ARGS --json -` as a user runs it, up to its ready line
/// (stderr's first line).
struct BinServer {
    child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    ready: String,
}

impl BinServer {
    fn start(args: &[&str]) -> BinServer {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(BIN)
            .arg("server")
            .args(args)
            .args(["--json", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut ready = String::new();
        stderr.read_line(&mut ready).unwrap();
        BinServer {
            child,
            stderr,
            ready,
        }
    }

    /// Ends it with SIGTERM (not a deadline a slow, busy machine could reach
    /// first); its JSON report, once it exited cleanly.
    fn stop(mut self) -> serde_json::Value {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut last = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut last).unwrap();
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "{last}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// `sluice client ARGS --quiet --json -`: its JSON report, once it exited
/// cleanly.
fn bin_client(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(BIN)
        .arg("client")
        .args(args)
        .args(["--quiet", "--json", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The binary as a user runs it, in either build: `sluice server --kernel`
/// answers `sluice client --kernel` on loopback, and both reports agree.
#[test]
fn the_binary_serves_and_loads_in_kernel_mode() {
    let port = free_port();
    let listen = format!("{port}:http");
    let server = BinServer::start(&[
        "--kernel",
        "--ip",
        "127.0.0.1",
        "--quiet",
        "--listen",
        &listen,
        "--duration",
        "120",
    ]);
    assert!(
        server.ready.contains("ready on kernel sockets"),
        "{:?}",
        server.ready
    );
    let c = bin_client(&[
        "--kernel",
        &format!("http://127.0.0.1:{port}/"),
        "-c",
        "4",
        "-d",
        "1",
        "--warmup",
        "0.2",
    ]);
    let s = server.stop();
    assert_eq!(c["errors_total"], 0, "{c}");
    assert!(c["responses"].as_u64().unwrap() > 50, "{c}");
    assert_eq!(c["connections_completed"], c["connections_opened"], "{c}");
    assert_eq!(s["accepted"], c["connections_opened"], "{s}");
    assert_eq!(s["responses"], c["responses"], "{s}");
}

/// The binary over IPv6 (issue 14), either build: `sluice server --kernel
/// --ip ::1` answers `sluice client --kernel http://[::1]:PORT/` at a fixed
/// request rate; no errors, every scheduled request sent and answered, and
/// the server counts what the client does.
#[test]
fn the_binary_serves_and_loads_over_ipv6() {
    if !ipv6_loopback("kernel_ipv6_binary") {
        return;
    }
    let port = std::net::TcpListener::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("{port}:http");
    let server = BinServer::start(&[
        "--kernel",
        "--ip",
        "[::1]",
        "--quiet",
        "--listen",
        &listen,
        "--duration",
        "120",
    ]);
    assert!(
        server.ready.contains("ready on kernel sockets ip=::1"),
        "{:?}",
        server.ready
    );
    // 300 requests/s for 1 s over 4 kept-alive connections, from ::1.
    let c = bin_client(&[
        "--kernel",
        "--ip",
        "::1",
        &format!("http://[::1]:{port}/"),
        "-c",
        "4",
        "--keep-alive",
        "--rps",
        "300",
        "-d",
        "1",
        "--warmup",
        "0.2",
    ]);
    let s = server.stop();
    assert_eq!(c["errors_total"], 0, "{c}");
    assert_eq!(c["target"], format!("http://[::1]:{port}/"), "{c}");
    let n = c["responses"].as_u64().unwrap();
    assert!(
        (150..=301).contains(&n),
        "about 300 requests in 1 s, got {n}: {c}"
    );
    assert_eq!(c["requests"], n, "{c}");
    assert_eq!(s["ip"], "::1", "{s}");
    assert_eq!(s["responses"], n, "{s}");
    assert_eq!(s["accepted"], c["connections_opened"], "{s}");
}

/// `sluice server --kernel` with `--ip` repeated (issue 14 item 3): listeners
/// on `0.0.0.0` and `[::]` on one port at once, a client of each family
/// served; the report lists both addresses and counts both clients.
#[test]
fn the_server_listens_on_every_ip_given_both_families() {
    if !ipv6_loopback("kernel_dual_ip") {
        return;
    }
    let port = free_port();
    let listen = format!("{port}:http");
    let server = BinServer::start(&[
        "--kernel",
        "--ip",
        "0.0.0.0",
        "--ip",
        "[::]",
        "--listen",
        &listen,
        "--duration",
        "120",
        "--quiet",
    ]);
    assert!(
        server
            .ready
            .contains("ready on kernel sockets ip=0.0.0.0,::"),
        "{:?}",
        server.ready
    );
    let mut clients = Vec::new();
    for target in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::1]:{port}/"),
    ] {
        let c = bin_client(&[
            "--kernel", &target, "-c", "2", "-d", "0.5", "--warmup", "0.1",
        ]);
        assert_eq!(c["errors_total"], 0, "{target}: {c}");
        assert!(c["responses"].as_u64().unwrap() > 0, "{target}: {c}");
        clients.push(c);
    }
    let s = server.stop();
    assert_eq!(s["ips"], serde_json::json!(["0.0.0.0", "::"]), "{s}");
    let sum = |k: &str| clients.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        s["accepted"].as_u64(),
        Some(sum("connections_opened")),
        "{s}"
    );
    assert_eq!(s["responses"].as_u64(), Some(sum("responses")), "{s}");
}

/// `--ip` given twice with the same address is a one-line error (exit 2);
/// over DPDK, two addresses of one family too, or a third (the server takes
/// one IPv4 address, one IPv6 address, or one of each: dual-stack, which
/// `dpdk_vdev.rs` runs).
#[test]
fn a_repeated_ip_or_two_of_one_family_over_dpdk_is_a_one_line_error() {
    let mut runs: Vec<(&[&str], &str)> = vec![(
        &["server", "--kernel", "--ip", "::1", "--ip", "[::1]"],
        "--ip ::1 is given twice",
    )];
    if cfg!(feature = "dpdk") {
        let want = "over DPDK the server takes one IPv4 address, one IPv6 address, or one of each";
        runs.push((&["server", "--ip", "10.0.0.1", "--ip", "10.0.0.2"], want));
        runs.push((
            &["server", "--ip", "2001:db8::1", "--ip", "2001:db8::2"],
            want,
        ));
        runs.push((
            &[
                "server",
                "--ip",
                "10.0.0.1",
                "--ip",
                "2001:db8::1",
                "--ip",
                "10.0.0.2",
            ],
            want,
        ));
        // One of each, the IPv6 one not a host's own unicast address.
        runs.push((
            &["server", "--ip", "10.0.0.1", "--ip", "::"],
            "--ip ::: over DPDK give the server's own unicast IPv6 address",
        ));
    }
    for (args, want) in runs {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `--metrics` and `--stats` in kernel mode (either build), with the
/// client's target given by host name: `curl` scrapes the server's counters
/// in Prometheus' text format while it runs; after the client's N responses
/// the server's response counter reaches N; both write a JSON line a second.
#[test]
fn metrics_and_stats_with_a_host_name_target() {
    use std::process::{Command, Stdio};
    if !common::have("curl") {
        return common::skip(
            "metrics_curl",
            "curl is not installed (scripts/setup.sh installs it)",
        );
    }
    let (port, mport) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("sluice-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sstats, cstats) = (dir.join("server.jsonl"), dir.join("client.jsonl"));
    let mut server = Command::new(BIN)
        .args(["server", "--kernel", "--ip", "127.0.0.1", "--quiet"])
        .args(["--listen", &format!("{port}:http"), "--duration", "120"])
        .args(["--metrics", &format!("127.0.0.1:{mport}")])
        .arg("--stats")
        .arg(&sstats)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let scrape = || {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{mport}/metrics"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let t0 = std::time::Instant::now();
    while !scrape().contains("sluice_responses_total") {
        assert!(t0.elapsed().as_secs() < 10, "no metrics after 10 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let c = bin_client(&[
        "--kernel",
        &format!("http://localhost:{port}/"),
        "-c",
        "4",
        "-d",
        "1.5",
        "--warmup",
        "0.2",
        "--stats",
        cstats.to_str().unwrap(),
    ]);
    let n = c["responses"].as_u64().unwrap();
    assert!(n > 50, "{c}");
    assert_eq!(c["target"], format!("http://localhost:{port}/"));
    // The shards publish once a second: wait for the last of them.
    let value = |text: &str, name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let mut text = scrape();
    while value(&text, "sluice_responses_total").unwrap_or(0.0) < n as f64 {
        assert!(
            t0.elapsed().as_secs() < 20,
            "responses never reached {n}:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = scrape();
    }
    for (name, kind) in [
        ("sluice_responses_total", "counter"),
        ("sluice_accepted_total", "counter"),
        ("sluice_closed_total", "counter"),
        ("sluice_drops_total", "counter"),
        ("sluice_connections", "gauge"),
        ("sluice_latency_seconds", "histogram"),
        ("sluice_uptime_seconds", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} {kind}:\n{text}"
        );
    }
    assert!(
        value(&text, "sluice_accepted_total").unwrap() >= c["connections_opened"].as_f64().unwrap()
    );
    assert_eq!(
        value(&text, "sluice_connections{state=\"LISTEN\"}"),
        Some(1.0)
    );
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(server.wait().unwrap().success());
    for (f, min) in [(&sstats, 1), (&cstats, 1)] {
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= min, "{f:?}: {lines:?}");
        for k in [
            "unix_s",
            "elapsed_s",
            "cps",
            "rps",
            "active",
            "states",
            "drops",
        ] {
            assert!(lines[0].get(k).is_some(), "{k} in {f:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host name that resolves nowhere is refused at start, in one line.
#[test]
fn an_unresolvable_target_is_a_one_line_error() {
    let out = std::process::Command::new(BIN)
        .args(["client", "--kernel", "http://no-such-host.invalid:8080/"])
        .args(["-d", "2", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot resolve \"no-such-host.invalid\""),
        "{err}"
    );
}

/// IPv6 over DPDK (issue 14) refuses, in one line (exit code 2) and before
/// DPDK starts, what is not built for it yet or cannot be: a server on the
/// unspecified address, a SYN flood beside `bench --family 6`, a client to
/// an IPv6 target through an IPv4 gateway.
#[cfg(feature = "dpdk")]
#[test]
fn ipv6_over_dpdk_refuses_what_is_not_built_in_one_line() {
    // (`bench --family 6 --syn-flood` is built: dpdk_vdev's
    // bench_serves_its_client_through_a_syn_flood_over_ipv6.)
    let runs: [(&[&str], &str); 2] = [
        (
            &["server", "--ip", "::"],
            "over DPDK give the server's own unicast IPv6 address",
        ),
        (
            &[
                "client",
                "--ip",
                "2001:db8::9",
                "--gateway",
                "10.0.0.1",
                "http://[2001:db8::1]/",
            ],
            "--gateway 10.0.0.1: an IPv4 gateway for an IPv6 target",
        ),
    ];
    for (args, want) in runs {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Built without DPDK, what needs it says so in one line (exit code 2).
#[cfg(not(feature = "dpdk"))]
#[test]
fn without_dpdk_what_needs_it_says_so_in_one_line() {
    let runs: [&[&str]; 5] = [
        &["bench"],
        &["smoke"],
        &["server", "--ip", "127.0.0.1"],
        &["client", "--ip", "10.0.0.9", "http://127.0.0.1/"],
        &[
            "server",
            "--kernel",
            "--ip",
            "127.0.0.1",
            "--vdev",
            "net_tap0",
        ],
    ];
    for args in runs {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("built without DPDK"), "{args:?}: {err}");
    }
    let v = std::process::Command::new(BIN)
        .arg("version")
        .output()
        .unwrap();
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).contains("without DPDK"));
}
