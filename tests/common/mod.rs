//! Shared by the integration tests: skip accounting.
//!
//! A test that cannot run here (not root, a tool missing) calls `skip(reason)`:
//! it prints the reason, appends it to `$SLUICE_SKIP_LOG` (scripts/test.sh counts
//! and reports those lines as skipped), and returns — unless
//! `SLUICE_REQUIRE_ALL=1` (set by CI), where a skip is a failure.

#![allow(dead_code)]

pub mod tcp;

use std::io::Write;

pub fn skip(test: &str, reason: &str) {
    if std::env::var("SLUICE_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{test}: cannot run here ({reason}) and SLUICE_REQUIRE_ALL=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: {reason}");
    if let Ok(path) = std::env::var("SLUICE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
