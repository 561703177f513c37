use super::error::DpdkError;
use super::ethdev::EthPort;
use super::ffi;
use crate::wire::EthernetAddress;
use std::ffi::CString;

/// Two `net_ring` ports wired back to back: what `a` sends, `b` receives, and
/// the other way. The rings live until the process ends.
pub fn ring_pair(name_a: &str, name_b: &str, size: u32) -> Result<(EthPort, EthPort), DpdkError> {
    let make_ring = |name: String| -> Result<*mut ffi::rte_ring, DpdkError> {
        let c = CString::new(name.clone()).map_err(|_| DpdkError::msg("ring", "NUL in name"))?;
        // SAFETY: c is a valid C string; flags 0 = multi-producer/consumer.
        let r = unsafe { ffi::rte_ring_create(c.as_ptr(), size, 0, 0) };
        if r.is_null() {
            Err(DpdkError::last(format!("rte_ring_create({name}, {size})"))
                .with_hint(" (size must be a power of two; EAL needs enough memory)"))
        } else {
            Ok(r)
        }
    };
    let ab = make_ring(format!("{name_a}>{name_b}"))?;
    let ba = make_ring(format!("{name_b}>{name_a}"))?;
    let make_port = |name: &str, rx: *mut ffi::rte_ring, tx: *mut ffi::rte_ring| {
        let c = CString::new(name).map_err(|_| DpdkError::msg("ring port", "NUL in name"))?;
        // SAFETY: the ring pointers are valid rings that live for the process;
        // each array holds exactly one element, as the counts say.
        let rc = unsafe { ffi::rte_eth_from_rings(c.as_ptr(), &rx, 1, &tx, 1, 0) };
        if rc < 0 {
            Err(DpdkError::last(format!("rte_eth_from_rings({name})")))
        } else {
            Ok(EthPort::from_id(rc as u16))
        }
    };
    let a = make_port(name_a, ba, ab)?;
    let b = make_port(name_b, ab, ba)?;
    // Ring ports start with an all-zero MAC: give each a locally administered one.
    for p in [a, b] {
        let id = p.id().to_be_bytes();
        p.set_mac(EthernetAddress([0x02, 0x52, 0x49, 0x4e, id[0], id[1]]))?;
    }
    Ok((a, b))
}
