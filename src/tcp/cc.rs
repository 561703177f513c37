//! Congestion control: slow start and congestion avoidance (RFC 5681), fast
//! retransmit and NewReno fast recovery (RFC 6582). The sender's MSS is an
//! argument (the connection knows it), not a field.

use crate::wire::SeqNumber;

/// Packed to 2-byte alignment: 18 bytes, not 20 (the control block's size
/// is a multiple of 8, and those two bytes are what takes it past 200).
/// Its fields are read by value (no references into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(2))]
pub struct NewReno {
    pub cwnd: u32,
    pub ssthresh: u32,
    /// RFC 6582 "recover": fast recovery lasts until it is acknowledged.
    pub recover: SeqNumber,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    acked_in_ca: u32,
    pub dup_acks: u8,
    recovering: bool,
}

/// What the sender should do after an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckAction {
    Nothing,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or a
    /// partial ACK in recovery).
    RetransmitFirst,
}

impl NewReno {
    pub fn new(mss: u32, initial_segments: u32) -> NewReno {
        NewReno {
            cwnd: mss * initial_segments.max(1),
            ssthresh: u32::MAX,
            dup_acks: 0,
            recover: SeqNumber(0),
            recovering: false,
            acked_in_ca: 0,
        }
    }

    /// `recover` starts at the ISS (RFC 6582 3.2).
    pub fn starting_at(mut self, iss: SeqNumber) -> NewReno {
        self.recover = iss;
        self
    }

    pub fn set_mss(&mut self, mss: u32, initial_segments: u32) {
        self.cwnd = mss * initial_segments.max(1);
    }

    pub fn in_recovery(&self) -> bool {
        self.recovering
    }

    /// A new cumulative ACK for `acked` bytes; `ack` is its number.
    pub fn on_ack(
        &mut self,
        ack: SeqNumber,
        acked: u32,
        flight_before: u32,
        mss: u32,
    ) -> AckAction {
        self.dup_acks = 0;
        if self.recovering {
            if ack >= { self.recover } {
                // Full acknowledgment (RFC 6582 3.2 step 3): deflate and leave recovery.
                self.cwnd = self
                    .ssthresh
                    .min(flight_before.saturating_sub(acked) + mss)
                    .max(mss);
                self.recovering = false;
                return AckAction::Nothing;
            }
            // Partial acknowledgment (step 4): retransmit the next hole, deflate by
            // the amount acked, add back one MSS.
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= mss {
                self.cwnd += mss;
            }
            return AckAction::RetransmitFirst;
        }
        if self.cwnd < self.ssthresh {
            // Slow start (RFC 5681 3.1, with appropriate byte counting, L = 2 SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(2 * mss));
        } else {
            // Congestion avoidance: one MSS per window of data acknowledged.
            self.acked_in_ca += acked;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
        AckAction::Nothing
    }

    /// A duplicate ACK (RFC 5681 3.2). `snd_nxt` is the highest sequence sent.
    pub fn on_dup_ack(
        &mut self,
        snd_una: SeqNumber,
        snd_nxt: SeqNumber,
        flight: u32,
        mss: u32,
    ) -> AckAction {
        if self.in_recovery() {
            // Inflate for each segment that has left the network.
            self.cwnd = self.cwnd.saturating_add(mss);
            return AckAction::Nothing;
        }
        self.dup_acks = self.dup_acks.saturating_add(1);
        // RFC 6582 3.2 steps 1 and 2: only if the ACK covers more than
        // `recover` (this loss is after the last recovery or timeout).
        if self.dup_acks == 3 && snd_una > { self.recover } {
            self.ssthresh = (flight / 2).max(2 * mss);
            self.cwnd = self.ssthresh + 3 * mss;
            self.recover = snd_nxt;
            self.recovering = true;
            return AckAction::RetransmitFirst;
        }
        AckAction::Nothing
    }

    /// The retransmission timer fired (RFC 5681 eq. 4, and cwnd = 1 MSS);
    /// `snd_max` (the highest sequence sent) becomes `recover` (RFC 6582 3.2 step 4).
    pub fn on_rto(&mut self, flight: u32, mss: u32, snd_max: SeqNumber) {
        self.recover = snd_max;
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.dup_acks = 0;
        self.recovering = false;
        self.acked_in_ca = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(1000, 10);
        assert_eq!({ c.cwnd }, 10_000);
        c.on_ack(SeqNumber(1000), 1000, 10_000, 1000);
        assert_eq!({ c.cwnd }, 11_000);
        c.ssthresh = 11_000;
        for _ in 0..11 {
            c.on_ack(SeqNumber(0), 1000, 11_000, 1000);
        }
        assert_eq!({ c.cwnd }, 12_000);
    }

    #[test]
    fn fast_retransmit_and_recovery() {
        let mut c = NewReno::new(1000, 10);
        let (una, nxt) = (SeqNumber(1), SeqNumber(10_000));
        assert_eq!(c.on_dup_ack(una, nxt, 10_000, 1000), AckAction::Nothing);
        assert_eq!(c.on_dup_ack(una, nxt, 10_000, 1000), AckAction::Nothing);
        assert_eq!(
            c.on_dup_ack(una, nxt, 10_000, 1000),
            AckAction::RetransmitFirst
        );
        assert_eq!({ c.ssthresh }, 5000);
        assert_eq!({ c.cwnd }, 8000);
        c.on_dup_ack(una, nxt, 10_000, 1000);
        assert_eq!({ c.cwnd }, 9000);
        // Partial ACK: retransmit the next hole.
        assert_eq!(
            c.on_ack(SeqNumber(3000), 3000, 10_000, 1000),
            AckAction::RetransmitFirst
        );
        assert!(c.in_recovery());
        // Full ACK: leave recovery with cwnd <= ssthresh.
        assert_eq!(
            c.on_ack(SeqNumber(10_000), 7000, 7000, 1000),
            AckAction::Nothing
        );
        assert!(!c.in_recovery());
        assert!(c.cwnd <= 5000);
        c.on_rto(4000, 1000, SeqNumber(10_000));
        assert_eq!((c.cwnd, c.ssthresh), (1000, 2000));
    }
}
