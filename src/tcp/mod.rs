//! The TCP engine, sans-I/O: segments and time in; segments, application
//! events and the next deadline out. No DPDK, no clock, no I/O.

pub mod buffer;
pub mod cc;
pub mod config;
pub mod conn;
pub mod isn;
pub mod rtt;
pub mod syncookie;
pub mod timewait;
mod tuple;

pub use config::{DataAfterClose, Keepalive, Micros, TcpConfig};
pub use conn::{
    CloseReason, CommandError, Connection, Ends, Event, FourTuple, QueuedSum, SegmentVerdict,
    State, TcpStats, emit_cookie_syn_ack, max_segment_len, rst_reply,
};
pub use isn::{HostPair, TupleHasher};
pub use syncookie::SynCookies;
pub use timewait::{TimeWaitRecord, TimeWaitVerdict};
