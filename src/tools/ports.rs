//! `sluice ports`: what DPDK sees, with device capabilities.

use super::EalArgs;
use crate::dpdk::{Eal, EthPort};

pub fn run(eal_args: &EalArgs, json: bool) -> anyhow::Result<()> {
    let eal = Eal::init(&eal_args.to_options())?;
    let mut out = Vec::new();
    for p in EthPort::all() {
        let info = p.info()?;
        let mac = p.mac()?;
        let link = p.link()?;
        out.push(serde_json::json!({
            "port": p.id(),
            "name": info.name,
            "driver": info.driver,
            "mac": mac.to_string(),
            "link_up": link.up,
            "speed_mbps": link.speed_mbps,
            "max_rx_queues": info.max_rx_queues,
            "max_tx_queues": info.max_tx_queues,
            "rss_hash_functions": info.rss_hash_functions,
            "reta_size": info.reta_size,
            "hash_key_size": info.hash_key_size,
            "rx_checksum_offload": {"ipv4": info.rx_ipv4_cksum, "tcp": info.rx_tcp_cksum, "udp": info.rx_udp_cksum},
            "tx_checksum_offload": {"ipv4": info.tx_ipv4_cksum, "tcp": info.tx_tcp_cksum, "udp": info.tx_udp_cksum},
            "max_rx_pktlen": info.max_rx_pktlen,
            "socket": info.socket,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if out.is_empty() {
        println!("no DPDK ports (add one with --vdev, or --pci with a NIC bound to vfio-pci)");
    } else {
        for p in &out {
            println!(
                "port {} {} driver={} mac={} link={} rxq<={} txq<={} rss=[{}] rx_csum={} tx_csum={}",
                p["port"],
                p["name"].as_str().unwrap_or(""),
                p["driver"].as_str().unwrap_or(""),
                p["mac"].as_str().unwrap_or(""),
                if p["link_up"].as_bool() == Some(true) {
                    "up"
                } else {
                    "down"
                },
                p["max_rx_queues"],
                p["max_tx_queues"],
                p["rss_hash_functions"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default(),
                p["rx_checksum_offload"],
                p["tx_checksum_offload"],
            );
        }
    }
    for p in EthPort::all() {
        let _ = p.close();
    }
    drop(eal);
    Ok(())
}
