//! `sluice client --split K/N`: one test from N machines. Machine K takes the
//! K-th of N disjoint slices of the source 4-tuple space and its share of the
//! connections and rates, so the same command line, K aside, can run on every
//! machine without two of them opening the same 4-tuple; their `--hlog`
//! files add up with `sluice merge`.

use crate::wire::Ipv6Range;
use anyhow::{Context, bail};
use std::net::Ipv4Addr;

/// The K-th (1-based) of N slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub k: u32,
    pub n: u32,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Split {
    /// `2/4` → the second of four.
    pub fn parse(s: &str) -> anyhow::Result<Split> {
        let bad = || format!("--split {s:?}: use K/N with 1 <= K <= N, e.g. --split 1/2");
        let (k, n) = s.split_once('/').with_context(bad)?;
        let (k, n): (u32, u32) = (
            k.trim().parse().ok().with_context(bad)?,
            n.trim().parse().ok().with_context(bad)?,
        );
        if k == 0 || n == 0 || k > n {
            bail!("{}", bad());
        }
        Ok(Split { k, n })
    }

    /// This slice of `0..len`: (start, count). The N slices are contiguous,
    /// disjoint, cover `0..len`, and differ in size by at most one.
    pub fn range(&self, len: u64) -> (u64, u64) {
        let (k, n) = (u64::from(self.k - 1), u64::from(self.n));
        let (base, extra) = (len / n, len % n);
        (k * base + k.min(extra), base + u64::from(k < extra))
    }

    /// This slice's part of a total (connections, a rate): the N parts add
    /// up to `total`.
    pub fn share(&self, total: u64) -> u64 {
        self.range(total).1
    }

    /// This slice of the source addresses `(first, count)` and ports
    /// `(lo, hi)`: a block of the addresses (all ports) when there are at
    /// least N of them, so each machine answers ARP for addresses of its
    /// own; else every address and a block of the ports.
    pub fn sources(
        &self,
        (first, count): (Ipv4Addr, u32),
        (lo, hi): (u16, u16),
    ) -> anyhow::Result<((Ipv4Addr, u32), (u16, u16))> {
        if count >= self.n {
            let (start, c) = self.range(u64::from(count));
            let first = Ipv4Addr::from(u32::from(first).wrapping_add(start as u32));
            return Ok(((first, c as u32), (lo, hi)));
        }
        let span = u64::from(hi - lo) + 1;
        if span < u64::from(self.n) {
            bail!(
                "--split {self}: {count} source address(es) and {span} port(s) cannot be cut into {} slices; widen --ip or --src-ports",
                self.n
            );
        }
        let (start, c) = self.range(span);
        let from = lo + start as u16;
        Ok(((first, count), (from, from + (c as u16 - 1))))
    }
}

impl Split {
    /// `sources` for IPv6 sources: this slice of the range's addresses (of
    /// its first 2^32 - 1, as many as the generator walks), a block of them
    /// when there are at least N, else every address and a block of the
    /// ports.
    pub fn sources6(
        &self,
        range: Ipv6Range,
        ports: (u16, u16),
    ) -> anyhow::Result<(Ipv6Range, (u16, u16))> {
        let usable = u32::try_from(range.count).unwrap_or(u32::MAX);
        // Indexes into the range stand for its addresses (0.0.0.0 + i: the
        // i-th), so the IPv4 arithmetic cuts it.
        let ((start, count), ports) = self.sources((Ipv4Addr::UNSPECIFIED, usable), ports)?;
        let first = range
            .nth(u128::from(u32::from(start)))
            .context("--split: an empty source range")?;
        let count = u128::from(count);
        Ok((Ipv6Range { first, count }, ports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Split::parse("2/3").unwrap(), Split { k: 2, n: 3 });
        for bad in ["0/2", "3/2", "1/0", "1", "a/b", "1/2/3", ""] {
            let e = Split::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--split") && e.contains("K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for n in 1..=7u32 {
            for total in [0u64, 1, 5, 64, 1000, 100_001] {
                let parts: Vec<u64> = (1..=n).map(|k| Split { k, n }.share(total)).collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {n}");
                let (lo, hi) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
                assert!(hi - lo <= 1, "{parts:?}");
            }
        }
    }

    /// Every (address, port) pair of the space lands in exactly one slice.
    #[test]
    fn source_slices_are_disjoint_and_cover_the_space() {
        let first = Ipv4Addr::new(10, 0, 0, 64);
        for (count, ports) in [
            (1u32, (1024u16, 1040u16)),
            (2, (1024, 1030)),
            (3, (5000, 5000)),
            (5, (1024, 1026)),
            (8, (2000, 2003)),
            (13, (60000, 60004)),
        ] {
            for n in 1..=5u32 {
                let mut all = BTreeSet::new();
                let mut total = 0;
                let mut ok = true;
                for k in 1..=n {
                    let Ok(((f, c), (lo, hi))) = Split { k, n }.sources((first, count), ports)
                    else {
                        ok = false;
                        break;
                    };
                    for a in 0..c {
                        for p in lo..=hi {
                            total += 1;
                            all.insert((u32::from(f) + a, p));
                        }
                    }
                }
                let span = u32::from(ports.1 - ports.0) + 1;
                if !ok {
                    // Refused only when neither addresses nor ports go round.
                    assert!(count < n && span < n, "{count} x {span} over {n}");
                    continue;
                }
                assert_eq!(total, all.len(), "overlap: {count} x {ports:?} over {n}");
                assert_eq!(
                    all.len() as u32,
                    count * span,
                    "gap: {count} x {ports:?} over {n}"
                );
                let base = u32::from(first);
                assert!(
                    all.iter().all(|(a, p)| (base..base + count).contains(a)
                        && (ports.0..=ports.1).contains(p))
                );
            }
        }
    }

    #[test]
    fn addresses_are_split_when_there_are_enough() {
        let s = Split { k: 2, n: 2 };
        let ((f, c), ports) = s
            .sources((Ipv4Addr::new(10, 78, 0, 64), 4), (1024, 65535))
            .unwrap();
        assert_eq!(
            (f, c, ports),
            (Ipv4Addr::new(10, 78, 0, 66), 2, (1024, 65535))
        );
        let ((f, c), ports) = s
            .sources((Ipv4Addr::new(10, 78, 0, 9), 1), (1024, 65535))
            .unwrap();
        assert_eq!(
            (f, c, ports),
            (Ipv4Addr::new(10, 78, 0, 9), 1, (33280, 65535))
        );
    }

    /// IPv6 sources: a /120 (255 addresses: no subnet-router anycast) cut
    /// into 3 disjoint blocks that cover it; one
    /// address keeps it and cuts the ports; a /64 cuts the first 2^32 - 1
    /// addresses (what the generator walks).
    #[test]
    fn ipv6_source_slices_are_disjoint_and_cover_the_range() {
        let net: std::net::Ipv6Addr = "2001:db8:1::".parse().unwrap();
        let r = Ipv6Range::prefix(net, 120).unwrap();
        let mut all = BTreeSet::new();
        for k in 1..=3 {
            let (s, ports) = Split { k, n: 3 }.sources6(r, (1024, 2047)).unwrap();
            assert_eq!(ports, (1024, 2047), "addresses cut, not ports");
            for i in 0..s.count {
                assert!(all.insert(s.nth(i).unwrap()), "slice {k} overlaps");
            }
        }
        assert_eq!(all.len() as u128, r.count);
        assert!(all.iter().all(|a| r.owns(a)));
        let one = Ipv6Range::single(net);
        let (s1, p1) = Split { k: 1, n: 2 }.sources6(one, (1000, 1009)).unwrap();
        let (s2, p2) = Split { k: 2, n: 2 }.sources6(one, (1000, 1009)).unwrap();
        assert_eq!((s1, s2), (one, one));
        assert_eq!((p1, p2), ((1000, 1004), (1005, 1009)));
        let wide = Ipv6Range::prefix(net, 64).unwrap();
        let (s, _) = Split { k: 2, n: 2 }.sources6(wide, (1024, 65535)).unwrap();
        assert_eq!(s.count, u128::from(u32::MAX / 2));
        assert_eq!(s.first, wide.nth(u128::from(u32::MAX / 2 + 1)).unwrap());
    }
}
