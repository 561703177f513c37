//! The two cost harnesses' link (bench/stack_cost.rs, bench/flood_cost.rs):
//! a memif pair `net_memif0` (server) and `net_memif1` (client), each port
//! started with one queue on `pool`, waited for until both links are up.

use sluice::dpdk::{EthPort, Mbuf, PktPool, PortConfig, Queue};
use sluice::wire::EthernetAddress;
use std::time::Duration;

/// One end of the pair: its port (kept to stop it), queue and MAC.
pub struct End {
    pub port: EthPort,
    pub queue: Queue,
    pub mac: EthernetAddress,
}

/// Configures and starts both ends on `pool`, then polls them until both
/// links are up (at most 20 s). Returns (server end, client end).
pub fn memif_pair(pool: &PktPool) -> Result<(End, End), Box<dyn std::error::Error>> {
    let end = |name: &str, what: &'static str| -> Result<End, Box<dyn std::error::Error>> {
        let port = EthPort::by_name(name)?;
        port.configure(&PortConfig::default(), pool)?;
        let queue = port.start(1)?.pop().ok_or(what)?;
        let mac = port.mac()?;
        Ok(End { port, queue, mac })
    };
    let mut s = end("net_memif0", "no server queue")?;
    let mut c = end("net_memif1", "no client queue")?;
    let mut scratch: Vec<Mbuf> = Vec::with_capacity(32);
    let t0 = std::time::Instant::now();
    while !(s.port.link()?.up && c.port.link()?.up) {
        s.queue.rx_burst(&mut scratch, 32);
        c.queue.rx_burst(&mut scratch, 32);
        scratch.clear();
        if t0.elapsed() > Duration::from_secs(20) {
            return Err("the memif link did not come up within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((s, c))
}
