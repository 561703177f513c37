//! The engine's IPv4 `FourTuple` as a family-generic `FlowKey` (for the
//! connection table and the keyed hashes, which take either family).

use super::conn::FourTuple;
use crate::wire::{AsFlowKey, FlowKey};
use std::net::{Ipv4Addr, SocketAddrV4};

impl From<FourTuple> for FlowKey<Ipv4Addr> {
    #[inline]
    fn from(t: FourTuple) -> FlowKey<Ipv4Addr> {
        FlowKey::new(t.local, t.remote)
    }
}

impl From<FlowKey<Ipv4Addr>> for FourTuple {
    #[inline]
    fn from(k: FlowKey<Ipv4Addr>) -> FourTuple {
        FourTuple {
            local: k.local(),
            remote: k.remote(),
        }
    }
}

impl From<(SocketAddrV4, SocketAddrV4)> for FourTuple {
    /// `(local, remote)`.
    #[inline]
    fn from((local, remote): (SocketAddrV4, SocketAddrV4)) -> FourTuple {
        FourTuple { local, remote }
    }
}

impl AsFlowKey for FourTuple {
    type Ip = Ipv4Addr;
    #[inline]
    fn flow_key(&self) -> FlowKey<Ipv4Addr> {
        FlowKey::from(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_four_tuple_and_its_key_convert_both_ways() {
        let t = FourTuple {
            local: "10.0.0.1:80".parse().unwrap(),
            remote: "10.0.0.2:40000".parse().unwrap(),
        };
        let k = FlowKey::from(t);
        assert_eq!(k.local_host(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            k.local_ip, 0x0a00_0001,
            "host order, as the table always held it"
        );
        assert_eq!((k.local_port, k.remote_port), (80, 40000));
        assert_eq!(k.remote_host(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(FourTuple::from(k), t);
        assert_eq!(t.flow_key(), k);
    }
}
