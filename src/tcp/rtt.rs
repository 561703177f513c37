//! RTO computation (RFC 6298): SRTT, RTTVAR, Karn's rule is the caller's (it
//! only feeds samples from segments never retransmitted, or timestamps).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEstimator {
    /// Smoothed RTT and variance, in microseconds; srtt 0 = no sample yet.
    srtt_us: u32,
    rttvar_us: u32,
    rto_us: u32,
    min_us: u32,
    max_us: u32,
}

impl RttEstimator {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        RttEstimator {
            srtt_us: 0,
            rttvar_us: 0,
            rto_us: us(initial),
            min_us: us(min),
            max_us: us(max),
        }
    }

    /// RFC 6298 2.2 / 2.3 with alpha = 1/8, beta = 1/4, K = 4, G = 1 µs.
    pub fn sample(&mut self, rtt: Duration) {
        let r = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        if self.srtt_us == 0 {
            self.srtt_us = r;
            self.rttvar_us = r / 2;
        } else {
            let diff = self.srtt_us.abs_diff(r);
            self.rttvar_us = (3 * (self.rttvar_us as u64) / 4 + diff as u64 / 4) as u32;
            self.srtt_us = (7 * (self.srtt_us as u64) / 8 + r as u64 / 8) as u32;
        }
        let rto = self.srtt_us as u64 + (4 * self.rttvar_us as u64).max(1);
        self.rto_us = rto.clamp(self.min_us as u64, self.max_us as u64) as u32;
    }

    pub fn rto(&self) -> Duration {
        Duration::from_micros(u64::from(self.rto_us))
    }

    /// RTO after `backoffs` doublings (RFC 6298 5.5), capped at the maximum.
    pub fn rto_backed_off(&self, backoffs: u8) -> Duration {
        let rto = u64::from(self.rto_us) << backoffs.min(20);
        Duration::from_micros(rto.min(u64::from(self.max_us)))
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
        let mut r = RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(60),
        );
        assert_eq!(r.rto(), Duration::from_secs(1));
        r.sample(Duration::from_millis(100));
        // RTO = SRTT + 4 * RTTVAR = 100 + 4 * 50 = 300 ms.
        assert_eq!(r.rto(), Duration::from_millis(300));
        for _ in 0..50 {
            r.sample(Duration::from_millis(100));
        }
        // Variance decays; the RTO floors at the minimum.
        assert_eq!(r.rto(), Duration::from_millis(200));
        assert_eq!(r.rto_backed_off(3), Duration::from_millis(1600));
        assert_eq!(r.rto_backed_off(30), Duration::from_secs(60));
    }
}
