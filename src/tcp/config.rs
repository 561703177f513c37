//! Per-endpoint TCP settings, with defaults suited to a load generator and a
//! high-connection-rate server.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Our MSS (advertised, and the most we send per segment).
    pub mss: u16,
    /// Receive buffer per connection (bytes); sets the advertised window.
    pub recv_buffer: usize,
    /// Send buffer per connection (bytes).
    pub send_buffer: usize,
    /// Offer window scaling (RFC 7323); the shift follows from `recv_buffer`.
    pub window_scale: bool,
    /// Offer timestamps (RFC 7323: RTT measurement and PAWS).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Nagle's algorithm (RFC 1122 4.2.3.4). Off by default: a load generator wants it off.
    pub nagle: bool,
    /// Longest an ACK may be delayed (RFC 1122 4.2.3.2: under 0.5 s).
    pub delayed_ack: Duration,
    /// RTO bounds and initial value (RFC 6298: initial 1 s), in whole
    /// microseconds: every RTT sample reads the bounds, and a `Duration`
    /// would be converted each time.
    pub rto_initial: Micros,
    pub rto_min: Micros,
    pub rto_max: Micros,
    /// SYN (or SYN-ACK) transmissions before giving up (RFC 6298 5.5 backoff between).
    pub syn_retries: u8,
    /// Data retransmissions before giving up (RFC 1122 4.2.3.5 "R2").
    pub max_retries: u8,
    /// Keepalive (RFC 1122 4.2.3.6): `None` disables it.
    pub keepalive: Option<Keepalive>,
    /// Maximum segment lifetime; TIME_WAIT lasts 2 x MSL (RFC 9293 3.4.2).
    pub msl: Duration,
    /// How long FIN_WAIT_2 waits for the peer's FIN once we can send no more
    /// (not in the RFC; Linux's tcp_fin_timeout). `None`: forever.
    pub fin_wait_2_timeout: Option<Duration>,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_cwnd_segments: u32,
    /// Challenge ACKs (RFC 5961) per connection per second, at most (section
    /// 7); 255 at most.
    pub challenge_acks_per_sec: u16,
    /// An ACK answering an out-of-window or PAWS-failed segment without data
    /// goes out at most once per this, per connection (Linux's
    /// tcp_invalid_ratelimit): no ACK loops, no reflection.
    pub invalid_ack_ratelimit: Duration,
    /// Answer SYNs with SYN cookies (RFC 4987) once this many connections are
    /// half-open (SYN_RECEIVED). `usize::MAX`: never.
    pub syn_cookie_threshold: usize,
    /// New data that arrives after the application called `close` (RFC 1122
    /// 4.2.2.13): reset the connection (the default, as the RFC says) or
    /// acknowledge and discard it.
    pub data_after_close: DataAfterClose,
}

/// What the engine does with new data that arrives after `close`: nobody
/// will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataAfterClose {
    /// Send RST (RFC 1122 4.2.2.13 SHOULD; Linux does the same): the peer
    /// learns its data was lost. Counted in `resets_on_data_after_close`;
    /// the close reason is `Aborted`.
    #[default]
    Reset,
    /// Acknowledge and drop it (counted in `bytes_discarded_after_close`)
    /// and let the close finish normally.
    Discard,
}

/// A span of time in whole microseconds, up to 71 minutes (`u32`): for the
/// settings the engine reads per segment, with no conversion on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub u32);

impl Micros {
    /// `ms` milliseconds (saturating at 71 minutes).
    pub const fn from_millis(ms: u32) -> Micros {
        Micros(ms.saturating_mul(1000))
    }

    pub const fn as_micros(self) -> u64 {
        self.0 as u64
    }
}

impl From<Duration> for Micros {
    /// Whole microseconds, saturating at `u32::MAX` (71 minutes).
    fn from(d: Duration) -> Micros {
        Micros(u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
    }
}

impl From<Micros> for Duration {
    fn from(m: Micros) -> Duration {
        Duration::from_micros(m.as_micros())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub count: u8,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 64 * 1024,
            send_buffer: 64 * 1024,
            window_scale: true,
            timestamps: true,
            sack: true,
            nagle: false,
            delayed_ack: Duration::from_millis(40),
            rto_initial: Micros::from_millis(1000),
            rto_min: Micros::from_millis(200),
            rto_max: Micros::from_millis(60_000),
            syn_retries: 6,
            max_retries: 15,
            keepalive: None,
            msl: Duration::from_secs(30),
            fin_wait_2_timeout: Some(Duration::from_secs(60)),
            initial_cwnd_segments: 10,
            syn_cookie_threshold: 1024,
            challenge_acks_per_sec: 10,
            invalid_ack_ratelimit: Duration::from_millis(500),
            data_after_close: DataAfterClose::Reset,
        }
    }
}

impl TcpConfig {
    /// TIME_WAIT duration: 2 x MSL.
    pub fn time_wait(&self) -> Duration {
        self.msl * 2
    }

    /// The window-scale shift needed to advertise the whole receive buffer.
    pub fn rcv_wscale(&self) -> u8 {
        if !self.window_scale {
            return 0;
        }
        let mut shift = 0u8;
        while shift < 14 && (self.recv_buffer >> shift) > 65535 {
            shift += 1;
        }
        shift
    }
}
