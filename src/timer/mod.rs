//! Timers for a shard: a hierarchical timing wheel (6 levels x 64 slots, an
//! occupancy bitmap per level) with O(1) schedule, cancel and reschedule, and a
//! FIFO queue for fixed-length timers. No clock inside: `advance(now)` returns
//! what expired, at most a budget of it per call.

mod fifo;
mod wheel;

pub use fifo::FifoTimers;
pub use wheel::{TimerId, Wheel};
