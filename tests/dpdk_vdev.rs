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

fn smoke(link: &str, frames: u64, size: u16) {
    smoke_with(link, frames, size, &[]);
}

fn smoke_with(link: &str, frames: u64, size: u16, extra: &[&str]) {
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

fn kernel_peer(mode: &str) {
    let test = format!("kernel_peer_{mode}");
    if !is_root() {
        return skip(&test, "network namespaces and raw sockets need root");
    }
    for tool in ["ip", "ethtool", "ping"] {
        if !have(tool) {
            return skip(
                &test,
                &format!("{tool} is not installed (scripts/setup.sh installs it)"),
            );
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-kernel-peer.sh");
    let out = Command::new(script)
        .args([mode, BIN])
        .output()
        .expect("run test-kernel-peer.sh");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{all}");
    assert!(
        out.status.success(),
        "kernel peer over {mode} failed:\n{all}"
    );
    assert!(all.contains("PASS: 5/5 ping replies"), "{all}");
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
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("sluice: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("EAL init"), "{}", lines[0]);
}
