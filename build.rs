//! Build script: with the `dpdk` feature (the default), find the system libdpdk
//! (>= 22.11) with pkg-config, generate Rust bindings for it with bindgen, and
//! compile the C shim that gives Rust DPDK's static-inline fast-path functions.
//! Without the feature it does nothing, so the crate builds with no DPDK at all.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    const MIN_VERSION: &str = "22.11";
    const FIX: &str = "install it with `sudo scripts/setup.sh` (Debian package libdpdk-dev), \
                       or build without DPDK: `cargo build --no-default-features`";

    fn fail(msg: &str) -> ! {
        // `cargo::error` shows one clean line instead of a panic backtrace.
        println!("cargo::error={msg}");
        std::process::exit(1);
    }

    fn pkg_config(args: &[&str]) -> Result<String, String> {
        let out = Command::new("pkg-config")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run pkg-config ({e})"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn build() {
        println!("cargo::rerun-if-changed=src/dpdk/shim.h");
        println!("cargo::rerun-if-changed=src/dpdk/shim.c");
        println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo::rerun-if-env-changed=PKG_CONFIG_LIBDIR");

        let version = match pkg_config(&["--modversion", "libdpdk"]) {
            Ok(v) => v,
            Err(_) => fail(&format!(
                "libdpdk (>= {MIN_VERSION}) not found by pkg-config: {FIX}"
            )),
        };
        if pkg_config(&["--atleast-version", MIN_VERSION, "libdpdk"]).is_err() {
            fail(&format!(
                "libdpdk {version} is too old, sluice needs >= {MIN_VERSION}: {FIX}"
            ));
        }
        let cflags = pkg_config(&["--cflags", "libdpdk"]).unwrap_or_else(|e| fail(&e));
        let libs = pkg_config(&["--libs", "libdpdk"]).unwrap_or_else(|e| fail(&e));
        let cflags: Vec<String> = split_flags(&cflags);

        // The C shim.
        let mut cc = cc::Build::new();
        cc.file("src/dpdk/shim.c").warnings(true).opt_level(3);
        for flag in &cflags {
            cc.flag(flag);
        }
        cc.compile("sluice_dpdk_shim");

        // Link flags for libdpdk itself (after the shim, which needs them).
        for flag in split_flags(&libs) {
            if let Some(lib) = flag.strip_prefix("-l") {
                println!("cargo::rustc-link-lib={lib}");
            } else if let Some(dir) = flag.strip_prefix("-L") {
                println!("cargo::rustc-link-search=native={dir}");
            } else {
                println!("cargo::rustc-link-arg={flag}");
            }
        }

        // rte_eth_from_rings (two ring ports wired back to back) lives in the ring
        // PMD, which pkg-config does not list: Debian ships PMDs as plugins.
        println!("cargo::rustc-link-lib=rte_net_ring");

        let bindings = bindgen::Builder::default()
            .header("src/dpdk/shim.h")
            .clang_args(cflags.iter())
            .allowlist_function("rte_.*|sluice_.*")
            .allowlist_type("rte_.*")
            .allowlist_var("RTE_.*")
            // Packed structs that contain aligned members, and a type whose derive fails.
            .opaque_type("rte_l2tpv2_combined_msg_hdr")
            .opaque_type("rte_gtp_psc_generic_hdr")
            .opaque_type("rte_arp_hdr")
            .opaque_type("rte_arp_ipv4")
            .derive_default(true)
            .layout_tests(false)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .generate()
            .unwrap_or_else(|e| {
                fail(&format!(
                    "bindgen could not read the DPDK headers ({e}); is libclang-dev installed? {FIX}"
                ))
            });
        let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
        bindings
            .write_to_file(out.join("dpdk_bindings.rs"))
            .unwrap_or_else(|e| fail(&format!("cannot write the DPDK bindings: {e}")));
        println!("cargo::rustc-env=SLUICE_DPDK_VERSION={version}");
    }

    fn split_flags(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }
}
