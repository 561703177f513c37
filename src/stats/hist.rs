//! A latency histogram recorded in its own fixed buckets: HdrHistogram's
//! layout for 1 ns to 100 s at 3 significant digits, kept as a plain array
//! of counts, so recording a value (three per short connection, on the
//! data path) is an index computation and an increment. Reading it
//! (percentiles, files, logs) goes through `to_hdr`, an `hdrhistogram`
//! histogram with the same bounds holding the same counts: every
//! percentile, mean, maximum and serialised log is what recording into
//! that histogram directly would have given (`matches_hdrhistogram`).

use hdrhistogram::Histogram;

/// Lowest value told apart (ns), highest tracked, significant digits: the
/// bounds `to_hdr` builds its histogram with.
const LOW: u64 = 1;
const HIGH: u64 = 100_000_000_000;
const SIGFIG: u8 = 3;
/// HdrHistogram's layout for those bounds: 2 x 10^3 rounded up to a power
/// of two (2048) values per bucket, of which a bucket past the first uses
/// its upper half; the first bucket counts by 1 ns (unit magnitude 0).
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;
const SUB_BUCKET_MASK: u64 = (1 << (SUB_BUCKET_HALF_MAGNITUDE + 1)) - 1;
/// 64 less the bits of the largest value the first bucket holds.
const LEADING_ZERO_BASE: u32 = 64 - (SUB_BUCKET_HALF_MAGNITUDE + 1);
/// Buckets to cover `HIGH`: 2048 << 26 is the first power-of-two multiple
/// of the first bucket's range past 10^11.
const BUCKETS: usize = 27;
/// Counts: a half bucket per bucket, and the first bucket's lower half.
const LEN: usize = (BUCKETS + 1) << SUB_BUCKET_HALF_MAGNITUDE;

/// Where value `v` is counted (HdrHistogram's `index_for`); `LEN` or more
/// for a value past the last bucket.
#[inline(always)]
fn index_of(v: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (v | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = (v >> bucket) as usize;
    ((bucket as usize) << SUB_BUCKET_HALF_MAGNITUDE) + sub_bucket
}

/// The lowest value counted at `index` (HdrHistogram's `value_for`).
fn value_of(index: usize) -> u64 {
    let half = 1usize << SUB_BUCKET_HALF_MAGNITUDE;
    let bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE).saturating_sub(1);
    let sub_bucket = if index < half {
        index
    } else {
        (index & (half - 1)) + half
    };
    (sub_bucket as u64) << bucket
}

/// Latency values in nanoseconds, counted in fixed buckets.
#[derive(Clone)]
pub struct Hist {
    counts: Box<[u64; LEN]>,
    total: u64,
}

impl Default for Hist {
    fn default() -> Self {
        let counts = vec![0u64; LEN].into_boxed_slice();
        Hist {
            counts: counts.try_into().expect("LEN counts"),
            total: 0,
        }
    }
}

impl std::fmt::Debug for Hist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hist").field("len", &self.total).finish()
    }
}

impl Hist {
    /// Counts `ns`; past the range, at its top (HdrHistogram's
    /// `saturating_record`).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let mut i = index_of(ns);
        if i >= LEN {
            i = index_of(HIGH);
        }
        // (i < LEN: no bounds check, the array's length is a constant.)
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(1);
        }
        self.total = self.total.saturating_add(1);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    /// Adds `other`'s values.
    pub fn add(&mut self, other: &Hist) {
        if other.is_empty() {
            return;
        }
        for (c, o) in self.counts.iter_mut().zip(other.counts.iter()) {
            *c = c.saturating_add(*o);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// Takes away `earlier`'s values (a histogram this one grew from).
    pub fn subtract(&mut self, earlier: &Hist) {
        for (c, o) in self.counts.iter_mut().zip(earlier.counts.iter()) {
            *c = c.saturating_sub(*o);
        }
        self.total = self.total.saturating_sub(earlier.total);
    }

    /// Adds the values of an HdrHistogram (one read back from a log) as
    /// its `add` would: each of its buckets at its lowest value. An error
    /// if it holds values past this one's range.
    pub fn add_hdr(&mut self, h: &Histogram<u64>) -> Result<(), String> {
        if h.is_empty() {
            return Ok(());
        }
        if h.max() > value_of(LEN - 1) + (1 << (BUCKETS - 1)) - 1 {
            return Err(format!("a value ({} ns) past the range", h.max()));
        }
        for v in h.iter_recorded() {
            let i = index_of(h.lowest_equivalent(v.value_iterated_to()));
            let c = &mut self.counts[i.min(LEN - 1)];
            *c = c.saturating_add(v.count_at_value());
            self.total = self.total.saturating_add(v.count_at_value());
        }
        Ok(())
    }

    /// The same values as an HdrHistogram (1 ns to 100 s, 3 significant
    /// digits), for percentiles, files and logs.
    pub fn to_hdr(&self) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(LOW, HIGH, SIGFIG).expect("valid bounds");
        if self.total > 0 {
            for (i, &c) in self.counts.iter().enumerate() {
                if c > 0 {
                    h.saturating_record_n(value_of(i), c);
                }
            }
        }
        h
    }

    /// The value at quantile `q` (as HdrHistogram gives it).
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.to_hdr().value_at_quantile(q)
    }

    /// The largest value recorded, to the histogram's precision (as
    /// HdrHistogram gives it).
    pub fn max(&self) -> u64 {
        self.to_hdr().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2Serializer};

    /// The layout is HdrHistogram's for the same bounds: its length, and
    /// every value's bucket (checked at each bucket's edges).
    #[test]
    fn layout_is_hdrhistograms() {
        let h = Histogram::<u64>::new_with_bounds(LOW, HIGH, SIGFIG).unwrap();
        assert_eq!(h.distinct_values(), LEN);
        assert_eq!(h.buckets() as usize, BUCKETS);
        for i in 0..LEN {
            let v = value_of(i);
            assert_eq!(index_of(v), i, "value {v}");
            assert_eq!(h.lowest_equivalent(v), v, "index {i} starts a bucket");
            let top = h.highest_equivalent(v);
            assert_eq!(index_of(top), i, "value {top}");
            if i + 1 < LEN {
                assert_eq!(value_of(i + 1), top + 1);
            }
        }
        assert!(index_of(value_of(LEN - 1) + (1 << (BUCKETS - 1))) >= LEN);
    }

    fn serialised(h: &Histogram<u64>) -> Vec<u8> {
        let mut v = Vec::new();
        V2Serializer::new().serialize(h, &mut v).unwrap();
        v
    }

    /// Recorded here and read through `to_hdr`, values give what recording
    /// them into HdrHistogram gives: percentiles, mean, deviation, min, max,
    /// count, and the serialised form, over the whole range and past it.
    #[test]
    fn matches_hdrhistogram() {
        let mut ours = Hist::default();
        let mut theirs = Histogram::<u64>::new_with_bounds(LOW, HIGH, SIGFIG).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for k in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Spread over every magnitude, 0 and past the top included.
            let v = match k % 50 {
                0 => 0,
                1 => u64::MAX - k,
                2 => HIGH + k,
                _ => x >> (x % 64),
            };
            ours.record(v);
            theirs.saturating_record(v);
        }
        let h = ours.to_hdr();
        assert_eq!(h.len(), theirs.len());
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(
            (h.min(), h.max(), h.min_nz()),
            (theirs.min(), theirs.max(), theirs.min_nz())
        );
        assert_eq!(h.mean(), theirs.mean());
        assert_eq!(h.stdev(), theirs.stdev());
        for q in [0.0, 0.1, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0] {
            assert_eq!(h.value_at_quantile(q), theirs.value_at_quantile(q), "q {q}");
        }
        assert_eq!(serialised(&h), serialised(&theirs));
    }

    /// Adding, subtracting and reading back from an HdrHistogram keep the
    /// counts: the interval logs' arithmetic.
    #[test]
    fn add_subtract_and_read_back() {
        let (mut a, mut b) = (Hist::default(), Hist::default());
        for v in 1..=5_000u64 {
            a.record(v * 997);
            if v % 3 == 0 {
                b.record(v * 31);
            }
        }
        let mut sum = a.clone();
        sum.add(&b);
        assert_eq!(sum.len(), a.len() + b.len());
        let mut hdr_sum = a.to_hdr();
        hdr_sum.add(b.to_hdr()).unwrap();
        assert_eq!(serialised(&sum.to_hdr()), serialised(&hdr_sum));
        let mut back = sum.clone();
        back.subtract(&a);
        assert_eq!(serialised(&back.to_hdr()), serialised(&b.to_hdr()));
        let mut read = Hist::default();
        read.add_hdr(&sum.to_hdr()).unwrap();
        assert_eq!(serialised(&read.to_hdr()), serialised(&hdr_sum));
        let mut wide = Histogram::<u64>::new_with_bounds(1, HIGH * 100, 3).unwrap();
        wide.record(HIGH * 50).unwrap();
        assert!(Hist::default().add_hdr(&wide).is_err(), "past the range");
        sum.reset();
        assert!(sum.is_empty() && sum.to_hdr().is_empty());
    }
}
