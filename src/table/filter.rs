//! A filter over the 4-tuples of a shard's TIME_WAIT records: the cheap
//! "no" before the TIME_WAIT index's probe on every SYN that finds no open
//! connection (RFC 9293 3.10.7.4 and RFC 6191: a SYN may reopen a TIME_WAIT
//! 4-tuple, so each new one is looked up there first).
//!
//! A bit per place, in two bitmaps: `recent` has the bits of the records
//! queued (for their 2MSL) since `since`, `older` those of the records
//! queued before. A tuple whose place is clear in both has no record, and
//! the lookup stops there; a set bit may be another tuple's (or a record's
//! that has gone), and then the index answers, as without the filter. The
//! answer is exact either way; only its cost moves.
//!
//! Nothing is done as a record goes: TIME_WAIT is a queue of fixed 2MSL, so
//! once every record queued before `since` has left the queue, `older`
//! holds no live record's bit. Then (`rotate`) it is cleared and becomes
//! `recent`, and `recent` becomes `older`: a bitmap is cleared once per
//! 2MSL or so, with no work per record. A record queued again (its 2MSL
//! restarted) sets its bit in `recent` again (`add`).
//!
//! The place is the top bits of the tuple's hash in the connection index
//! (`FlowHashBuilder`, keyed): the SYN path has it already, from the lookup
//! of an open connection that just missed.

use crate::time::Instant;

/// Bits per record that a rebuild sizes each bitmap for (rounded up to a
/// power of two), and the fewest before one: each bitmap holds about 2MSL
/// of records, the two at most twice the live ones, so at most about one
/// place in eight is taken where the filter is sized for its records.
const BITS_PER_RECORD: usize = 16;
const BITS_PER_RECORD_AT_LEAST: usize = 8;

/// The fewest places (512 bits a bitmap).
const MIN_PLACES: usize = 512;

#[derive(Debug, Clone)]
pub(super) struct TupleFilter {
    /// Word `i` of both bitmaps, side by side: `[recent, older]` when
    /// `recent` is 0, `[older, recent]` when it is 1.
    words: Vec<[u64; 2]>,
    recent: usize,
    /// 64 - log2(places): a place is the hash's top bits.
    shift: u32,
    /// Every record queued since has its bit in `recent`.
    since: Instant,
}

impl TupleFilter {
    /// An empty filter (no places: `may_hold` says yes until `fit`).
    pub(super) fn new() -> TupleFilter {
        TupleFilter {
            words: Vec::new(),
            recent: 0,
            shift: 63,
            since: Instant(0),
        }
    }

    /// The word and bit of the tuple whose hash is `hash`.
    #[inline(always)]
    fn place(&self, hash: u64) -> (usize, u64) {
        // (`shift` < 64: `MIN_PLACES` > 1.)
        let p = hash >> self.shift;
        ((p >> 6) as usize, 1 << (p & 63))
    }

    /// False only if no record holds the tuple whose hash is `hash`.
    #[inline(always)]
    pub(super) fn may_hold(&self, hash: u64) -> bool {
        let (w, bit) = self.place(hash);
        self.words.get(w).is_none_or(|&[a, b]| (a | b) & bit != 0)
    }

    /// Whether `records` records fit without a rebuild (`fit`).
    #[inline(always)]
    pub(super) fn fits(&self, records: usize) -> bool {
        records.saturating_mul(BITS_PER_RECORD_AT_LEAST) <= self.words.len() * 64
    }

    /// Sized for `records` records, the ones there (their tuples' hashes,
    /// `hashes`) set in `recent` anew.
    pub(super) fn fit(&mut self, records: usize, hashes: impl Iterator<Item = u64>) {
        let places = records
            .saturating_mul(BITS_PER_RECORD)
            .max(MIN_PLACES)
            .next_power_of_two();
        // (Zeroed memory: pages no record touches stay unmapped.)
        self.words = vec![[0; 2]; places / 64];
        self.shift = 64 - places.trailing_zeros();
        self.recent = 0;
        // Every record there is in `recent`, whenever it was queued.
        self.since = Instant(0);
        for h in hashes {
            self.add(h);
        }
    }

    /// A record for the tuple whose hash is `hash` was queued.
    #[inline(always)]
    pub(super) fn add(&mut self, hash: u64) {
        let (w, bit) = self.place(hash);
        let r = self.recent;
        if let Some(pair) = self.words.get_mut(w) {
            pair[r] |= bit;
        }
    }

    /// When the records in `recent` began to be queued.
    #[inline]
    pub(super) fn since(&self) -> Instant {
        self.since
    }

    /// Every record queued before `since` has left the queue (`now`): the
    /// older bitmap, cleared, takes the records queued from now on.
    pub(super) fn rotate(&mut self, now: Instant) {
        let older = 1 - self.recent;
        for pair in &mut self.words {
            // (A word left zero is not written: pages no record touched
            // stay unmapped.)
            if pair[older] != 0 {
                pair[older] = 0;
            }
        }
        self.recent = older;
        // (After `now`: a record queued at `now` before this call has its
        // bit in what is now `older`.)
        self.since = Instant(now.0 + 1);
    }

    /// Places (bits a bitmap).
    #[cfg(test)]
    pub(super) fn places(&self) -> usize {
        self.words.len() * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::FlowHashBuilder;
    use crate::wire::FlowKey;
    use std::hash::BuildHasher;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn key(port: u32) -> FlowKey<Ipv4Addr> {
        FlowKey {
            local_ip: 0x0a00_0001,
            remote_ip: 0x0a00_0002 + port / 60_000,
            local_port: 80,
            remote_port: (1024 + port % 60_000) as u16,
        }
    }

    /// A load generator's tuples (sequential ports) under several keys,
    /// as TIME_WAIT holds them: each 2MSL (here 7040 records' time) the
    /// records of the last two are in the bitmaps, the last one's live.
    /// A new tuple mostly stops at the filter; a live one never does.
    #[test]
    fn sequential_tuples_mostly_pass_by_and_held_ones_never_do() {
        for (k0, k1) in [
            (0, 0),
            (1, 2),
            (0xdead, 0xbeef_1234_5678_9abc),
            (u64::MAX, 7),
        ] {
            let b = FlowHashBuilder::with_key(k0, k1);
            let h = |p: u32| b.hash_one(key(p));
            let mut f = TupleFilter::new();
            f.fit(7040, std::iter::empty());
            let mut passed = 0;
            for p in 0..100_000u32 {
                if p >= 7040 {
                    passed += usize::from(f.may_hold(h(p)));
                    // The live records' (the last 7040 tuples').
                    assert!(f.may_hold(h(p - 1)) && f.may_hold(h(p - 7040)));
                }
                // The one queued at "time" p - 7040 has gone: rotate when
                // every record queued before `since` has.
                if u64::from(p).saturating_sub(7040) >= f.since().0 {
                    f.rotate(Instant(u64::from(p)));
                }
                f.add(h(p));
            }
            // Up to two 2MSL's records (14080) in 2 x 131072 places, a new
            // tuple's place taken in either: at most about 10 %.
            let rate = passed as f64 / 92_960.0;
            assert!(rate < 0.12, "key ({k0}, {k1}): {rate}");
        }
    }

    #[test]
    fn no_places_no_answer_and_a_rotation_clears_the_older_bitmap() {
        let mut f = TupleFilter::new();
        assert!(f.may_hold(5), "no places yet: no answer");
        f.fit(1, std::iter::empty());
        assert_eq!(f.places(), 512);
        assert!(f.fits(64) && !f.fits(65));
        let (a, b) = (9 << 55, 10 << 55);
        f.add(a);
        assert!(f.may_hold(a) && !f.may_hold(b));
        f.rotate(Instant(5));
        assert_eq!(f.since(), Instant(6));
        f.add(b);
        assert!(f.may_hold(a) && f.may_hold(b), "both bitmaps answer");
        f.rotate(Instant(9));
        assert!(!f.may_hold(a) && f.may_hold(b));
        f.rotate(Instant(12));
        assert!(!f.may_hold(a) && !f.may_hold(b));
        f.fit(40, [a, b].into_iter());
        assert_eq!(f.places(), 1024);
        assert_eq!(f.since(), Instant(0));
        assert!(f.may_hold(a) && f.may_hold(b) && !f.may_hold(7 << 55));
    }

    #[test]
    fn ipv6_tuples_spread() {
        let b = FlowHashBuilder::with_key(3, 4);
        let k = |port: u32, host: u128| {
            b.hash_one(FlowKey::<Ipv6Addr> {
                local_ip: Ipv6Addr::from(0x2001_0db8_u128 << 96 | 0x80),
                remote_ip: Ipv6Addr::from(0x2001_0db8_0001_u128 << 80 | host),
                local_port: 80,
                remote_port: (1024 + port) as u16,
            })
        };
        let mut f = TupleFilter::new();
        f.fit(2000, std::iter::empty());
        for i in 0..2000 {
            f.add(k(i % 500, u128::from(i / 500)));
        }
        let passed = (0..10_000)
            .filter(|&i| f.may_hold(k(30_000 + i % 5000, u128::from(i / 5000) + 9)))
            .count();
        assert!(passed < 1000, "{passed} of 10000 free tuples pass");
    }
}
