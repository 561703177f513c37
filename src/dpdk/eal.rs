use super::error::DpdkError;
use super::ffi;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicU8, Ordering};

/// EAL can be initialised once per process, and never again after cleanup.
static EAL_STATE: AtomicU8 = AtomicU8::new(0);
const EAL_NEW: u8 = 0;
const EAL_RUNNING: u8 = 1;
const EAL_DONE: u8 = 2;

/// How EAL gets its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMode {
    /// Hugepages are reserved: `--in-memory` (no files left behind).
    Hugepages,
    /// No hugepages: `--no-huge -m <MB>` with a per-process file prefix.
    NoHuge { mb: u32 },
}

impl std::fmt::Display for MemoryMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryMode::Hugepages => write!(f, "hugepages (--in-memory)"),
            MemoryMode::NoHuge { mb } => write!(f, "no hugepages (--no-huge -m {mb})"),
        }
    }
}

/// EAL settings that need no set-up: virtual devices, no PCI, hugepages when
/// reserved and `--no-huge` otherwise.
#[derive(Debug, Clone)]
pub struct EalOptions {
    /// `--vdev` arguments, e.g. `net_memif0,role=server,socket=/tmp/m.sock`.
    pub vdevs: Vec<String>,
    /// `-l` core list, e.g. `0-1`; `None` lets EAL use the core it starts on.
    pub lcores: Option<String>,
    /// Memory for `--no-huge` mode, in MB.
    pub no_huge_mb: u32,
    /// Force a memory mode instead of detecting it.
    pub memory: Option<MemoryMode>,
    /// Scan PCI devices (real NICs). Off by default.
    pub pci: bool,
    /// EAL log level (`--log-level`), e.g. `notice`, `info`, `debug`.
    pub log_level: String,
    /// Further EAL arguments, passed as they are.
    pub extra: Vec<String>,
}

impl Default for EalOptions {
    fn default() -> Self {
        EalOptions {
            vdevs: Vec::new(),
            lcores: None,
            no_huge_mb: 512,
            memory: None,
            pci: false,
            log_level: "notice".into(),
            extra: Vec::new(),
        }
    }
}

/// Free 2 MB/1 GB hugepages according to /proc/meminfo.
pub fn free_hugepages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A memif end asked to run zero-copy (`zero-copy=yes`; DPDK does it on the
/// client end, which exposes its mbuf memory to the peer instead of copying
/// each frame into a shared region).
pub fn memif_zero_copy(vdev: &str) -> bool {
    vdev.starts_with("net_memif") && vdev.split(',').any(|kv| kv == "zero-copy=yes")
}

impl EalOptions {
    /// The memory mode these options will use.
    pub fn memory_mode(&self) -> MemoryMode {
        self.memory.unwrap_or(if free_hugepages() > 0 {
            MemoryMode::Hugepages
        } else {
            MemoryMode::NoHuge {
                mb: self.no_huge_mb,
            }
        })
    }

    /// The EAL argument list (argv[0] included).
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["sluice".to_string()];
        if let Some(l) = &self.lcores {
            a.push("-l".into());
            a.push(l.clone());
        }
        if !self.pci {
            a.push("--no-pci".into());
        }
        match self.memory_mode() {
            MemoryMode::Hugepages => a.push("--in-memory".into()),
            MemoryMode::NoHuge { mb } => {
                a.push("--no-huge".into());
                a.push("-m".into());
                a.push(mb.to_string());
                // Without --in-memory EAL keeps runtime files; a per-process prefix
                // lets several sluice processes run at once.
                a.push(format!("--file-prefix=sluice-{}", std::process::id()));
            }
        }
        a.push("--no-telemetry".into());
        a.push(format!("--log-level={}", self.log_level));
        for v in &self.vdevs {
            a.push(format!("--vdev={v}"));
        }
        // memif zero-copy shares the memory behind the mbufs with the peer
        // as files, one per memory list: EAL must keep each list in one file
        // (with --no-huge it does so anyway, but memif asks for the option).
        // Both of sluice's memory modes allow it (--in-memory hugepages,
        // memfd-backed --no-huge); the one option EAL refuses beside it,
        // --huge-unlink without --in-memory, it refuses with --no-huge too.
        if self.vdevs.iter().any(|v| memif_zero_copy(v))
            && !self.extra.iter().any(|e| e == "--single-file-segments")
        {
            a.push("--single-file-segments".into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// The initialised DPDK environment. Dropping it calls `rte_eal_cleanup`;
/// everything DPDK (ports, pools, mbufs) must be dropped first.
#[derive(Debug)]
pub struct Eal {
    memory: MemoryMode,
    runtime_dir: Option<String>,
    args: Vec<String>,
}

impl Eal {
    /// Initialises EAL with `opts`. Fails with a one-line reason that says how to fix it.
    pub fn init(opts: &EalOptions) -> Result<Eal, DpdkError> {
        let args = opts.args();
        let memory = opts.memory_mode();
        if EAL_STATE
            .compare_exchange(EAL_NEW, EAL_RUNNING, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(DpdkError::msg(
                "EAL init",
                "EAL was already initialised in this process (it can be initialised only once)",
            ));
        }
        let cstrings: Vec<CString> = args
            .iter()
            .map(|s| CString::new(s.as_str()).expect("EAL arguments contain no NUL"))
            .collect();
        let mut argv: Vec<*mut c_char> =
            cstrings.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        // SAFETY: argv is a NULL-terminated array of valid C strings that outlive the
        // call; EAL may permute the pointers but does not free them.
        let rc = unsafe { ffi::rte_eal_init((argv.len() - 1) as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            EAL_STATE.store(EAL_DONE, Ordering::SeqCst);
            let hint = match memory {
                MemoryMode::Hugepages => {
                    " (hugepages are reserved but EAL could not use them; try --no-huge, or free hugepages)"
                }
                MemoryMode::NoHuge { .. } => {
                    " (check the --vdev arguments and the core list; run as root, or reserve hugepages: scripts/setup.sh)"
                }
            };
            return Err(DpdkError::last(format!("EAL init ({})", args.join(" "))).with_hint(hint));
        }
        let runtime_dir = match memory {
            MemoryMode::NoHuge { .. } => {
                Some(format!("/var/run/dpdk/sluice-{}", std::process::id()))
            }
            MemoryMode::Hugepages => None,
        };
        Ok(Eal {
            memory,
            runtime_dir,
            args,
        })
    }

    pub fn memory_mode(&self) -> MemoryMode {
        self.memory
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Number of lcores EAL enabled.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: EAL is initialised (self exists).
        unsafe { ffi::rte_lcore_count() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by this value and is cleaned up once; the
        // caller has dropped every port, pool and mbuf (documented contract).
        unsafe {
            ffi::rte_eal_cleanup();
        }
        EAL_STATE.store(EAL_DONE, Ordering::SeqCst);
        if let Some(dir) = &self.runtime_dir {
            // Best effort: --no-huge runs leave a small runtime directory behind.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(vdevs: &[&str], extra: &[&str]) -> EalOptions {
        EalOptions {
            vdevs: vdevs.iter().map(|v| v.to_string()).collect(),
            memory: Some(MemoryMode::NoHuge { mb: 64 }),
            extra: extra.iter().map(|v| v.to_string()).collect(),
            ..EalOptions::default()
        }
    }

    const ZC: &str = "net_memif1,role=client,socket=/tmp/x.sock,zero-copy=yes";

    #[test]
    fn memif_zero_copy_adds_single_file_segments_once() {
        let a = opts(&[ZC], &[]).args();
        assert_eq!(
            a.iter().filter(|x| *x == "--single-file-segments").count(),
            1
        );
        assert!(a.contains(&format!("--vdev={ZC}")));
        let huge = EalOptions {
            memory: Some(MemoryMode::Hugepages),
            ..opts(&[ZC], &[])
        };
        assert!(huge.args().iter().any(|x| x == "--single-file-segments"));
        let a = opts(&[ZC], &["--single-file-segments"]).args();
        assert_eq!(
            a.iter().filter(|x| *x == "--single-file-segments").count(),
            1
        );
    }

    #[test]
    fn copying_memif_keeps_eal_memory_as_it_was() {
        let a = opts(&["net_memif1,role=client,socket=/tmp/x.sock"], &[]).args();
        assert!(!a.iter().any(|x| x == "--single-file-segments"));
        assert!(!memif_zero_copy("net_ring0,zero-copy=yes"));
        assert!(!memif_zero_copy("net_memif0,zero-copy=no"));
    }
}
