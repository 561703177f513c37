//! RTO computation (RFC 6298): SRTT, RTTVAR, Karn's rule is the caller's (it
//! only feeds samples from segments never retransmitted, or timestamps).

use super::TcpConfig;
use super::config::Micros;
use std::time::Duration;

/// The bounds (`rto_min`, `rto_max`) come from the configuration on each call,
/// in microseconds already, so they cost the control block nothing and a
/// sample no conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    /// Smoothed RTT and variance, in microseconds; srtt 0 = no sample yet.
    srtt_us: u32,
    rttvar_us: u32,
    rto_us: u32,
}

/// Whole microseconds, saturating at `u32::MAX` (in 64-bit arithmetic: the
/// 128-bit `as_micros` costs more on every sample).
#[inline]
fn us(d: Duration) -> u32 {
    let us = d
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()));
    u32::try_from(us).unwrap_or(u32::MAX)
}

impl RttEstimator {
    pub fn new(initial: Micros) -> RttEstimator {
        RttEstimator {
            srtt_us: 0,
            rttvar_us: 0,
            rto_us: initial.0,
        }
    }

    /// RFC 6298 2.2 / 2.3 with alpha = 1/8, beta = 1/4, K = 4, G = 1 µs.
    pub fn sample(&mut self, rtt: Duration, cfg: &TcpConfig) {
        self.sample_us(us(rtt), cfg);
    }

    /// `sample` with the RTT in microseconds.
    #[inline]
    pub fn sample_us(&mut self, rtt_us: u32, cfg: &TcpConfig) {
        let r = rtt_us.max(1);
        if self.srtt_us == 0 {
            self.srtt_us = r;
            self.rttvar_us = r / 2;
        } else {
            let diff = self.srtt_us.abs_diff(r);
            self.rttvar_us = (3 * (self.rttvar_us as u64) / 4 + diff as u64 / 4) as u32;
            self.srtt_us = (7 * (self.srtt_us as u64) / 8 + r as u64 / 8) as u32;
        }
        let rto = self.srtt_us as u64 + (4 * self.rttvar_us as u64).max(1);
        let min = cfg.rto_min.0;
        let max = cfg.rto_max.0.max(min);
        self.rto_us = rto.clamp(u64::from(min), u64::from(max)) as u32;
    }

    /// Raises the RTO to at least `floor` (within `rto_max`): RFC 6298 5.7's
    /// 3 s once data flows after a retransmitted SYN.
    pub fn at_least(&mut self, floor: Duration, cfg: &TcpConfig) {
        self.rto_us = self.rto_us.max(us(floor).min(cfg.rto_max.0));
    }

    pub fn rto(&self) -> Duration {
        Duration::from_micros(u64::from(self.rto_us))
    }

    /// RTO after `backoffs` doublings (RFC 6298 5.5), capped at the maximum.
    pub fn rto_backed_off(&self, backoffs: u8, cfg: &TcpConfig) -> Duration {
        Duration::from_micros(self.rto_backed_off_us(backoffs, cfg))
    }

    /// `rto_backed_off` in microseconds (the deadline arithmetic wants no
    /// `Duration` in between).
    #[inline]
    pub fn rto_backed_off_us(&self, backoffs: u8, cfg: &TcpConfig) -> u64 {
        let rto = u64::from(self.rto_us);
        if backoffs == 0 {
            // The usual case: no doubling, so no cap to apply (the RTO is
            // within `rto_max` already, or above it only if it started so).
            return rto;
        }
        (rto << backoffs.min(20)).min(cfg.rto_max.as_micros().max(rto))
    }

    /// The RTO in microseconds.
    #[inline]
    pub fn rto_us(&self) -> u64 {
        u64::from(self.rto_us)
    }

    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt_us > 0).then(|| Duration::from_micros(u64::from(self.srtt_us)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_and_smoothing() {
        let cfg = TcpConfig {
            rto_min: Micros::from_millis(200),
            rto_max: Micros::from_millis(60_000),
            ..TcpConfig::default()
        };
        let mut r = RttEstimator::new(Micros::from_millis(1000));
        assert_eq!(r.rto(), Duration::from_secs(1));
        r.sample(Duration::from_millis(100), &cfg);
        // RTO = SRTT + 4 * RTTVAR = 100 + 4 * 50 = 300 ms.
        assert_eq!(r.rto(), Duration::from_millis(300));
        for _ in 0..50 {
            r.sample(Duration::from_millis(100), &cfg);
        }
        // Variance decays; the RTO floors at the minimum.
        assert_eq!(r.rto(), Duration::from_millis(200));
        assert_eq!(r.rto_backed_off(3, &cfg), Duration::from_millis(1600));
        assert_eq!(r.rto_backed_off(30, &cfg), Duration::from_secs(60));
    }
}
