//! Wire-format micro benchmarks: `cargo bench --bench wire`.
//!
//! Numbers, not pass/fail. Each figure is the median of 7 rounds, and the
//! checksum is reported against a baseline measured in the same run (the plain
//! RFC 1071 loop, one 16-bit word at a time), since the machine is noisy.

use sluice::wire::{ChecksumMode, checksum, emit_frame, parse_frame};
use std::hint::black_box;
use std::time::Instant;

fn median_ns_per_op(rounds: usize, iters: u64, f: &mut dyn FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[rounds / 2]
}

fn frames() -> Vec<Vec<u8>> {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/linux.pcap"
    ))
    .expect("tests/fixtures/linux.pcap");
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= raw.len() {
        let incl = u32::from_le_bytes(raw[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        out.push(raw[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    out
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary
    // without it, where one quick pass checks that it works.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, iters) = if full { (7, 200_000) } else { (1, 10) };
    let median_ns_per_op =
        |_r: usize, _i: u64, f: &mut dyn FnMut()| median_ns_per_op(rounds, iters, f);
    let payload: Vec<u8> = (0..1460u32).map(|i| (i * 7) as u8).collect();
    let ours = median_ns_per_op(7, 200_000, &mut || {
        black_box(checksum::checksum(black_box(&payload)));
    });
    let base = median_ns_per_op(7, 200_000, &mut || {
        black_box(checksum::reference_checksum(black_box(&payload)));
    });
    println!("| benchmark | ns/op | baseline ns/op | speed-up |");
    println!("|---|---|---|---|");
    println!(
        "| checksum 1460 B | {ours:.1} | {base:.1} (RFC 1071 loop) | {:.2}x |",
        base / ours
    );

    let fs = frames();
    let syn = fs
        .iter()
        .find(|f| f.len() > 47 && f[12] == 8 && f[23] == 6 && f[47] == 0x02)
        .expect("a SYN in the capture");
    let data = fs.iter().max_by_key(|f| f.len()).expect("frames");
    for (name, f) in [
        ("parse SYN frame (verify checksums)", syn),
        ("parse 1514 B data frame (verify checksums)", data),
    ] {
        let ns = median_ns_per_op(7, 200_000, &mut || {
            black_box(parse_frame(black_box(f), ChecksumMode::Verify).is_ok());
        });
        println!("| {name} | {ns:.1} | | |");
    }
    let ns = median_ns_per_op(7, 200_000, &mut || {
        black_box(parse_frame(black_box(data), ChecksumMode::Ignore).is_ok());
    });
    println!("| parse 1514 B data frame (checksum offloaded) | {ns:.1} | | |");
    let p = parse_frame(data, ChecksumMode::Verify).expect("parses");
    let mut out = vec![0u8; 2048];
    let ns = median_ns_per_op(7, 200_000, &mut || {
        black_box(emit_frame(black_box(&p), &mut out));
    });
    println!("| emit 1514 B data frame (checksums computed) | {ns:.1} | | |");
}
