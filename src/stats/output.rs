//! Latency output that other tools read: the HdrHistogram percentile
//! distribution (`.hgrm`, as wrk2 prints it and the HdrHistogram plotter
//! reads it), interval logs (`.hlog`, HdrHistogram's log format: merge runs
//! from several machines with `sluice merge`), and an SVG plot of latency by
//! percentile.

use super::Latency;
use super::hist::Hist;
use crate::time::Instant;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use std::io::{self, Write};
use std::time::SystemTime;

/// The three histograms by name, as files and logs name them.
pub fn named(l: &Latency) -> [(&'static str, &Hist); 3] {
    [
        ("connect", &l.connect),
        ("first_byte", &l.first_byte),
        ("request", &l.request),
    ]
}

fn named_mut(l: &mut Latency) -> [(&'static str, &mut Hist); 3] {
    [
        ("connect", &mut l.connect),
        ("first_byte", &mut l.first_byte),
        ("request", &mut l.request),
    ]
}

/// `out.hgrm` + `request` → `out.request.hgrm`.
pub fn with_name(path: &str, name: &str, ext: &str) -> String {
    let stem = path.strip_suffix(ext).unwrap_or(path);
    format!("{stem}.{name}{ext}")
}

/// Writes `h` (nanoseconds) as a percentile distribution in milliseconds,
/// five steps per halving of the remaining tail, as HdrHistogram's
/// `outputPercentileDistribution` (and wrk2) do.
pub fn write_hgrm(w: &mut impl Write, h: &Hist) -> io::Result<()> {
    const MS: f64 = 1e6;
    let h = &h.to_hdr();
    writeln!(
        w,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    if h.is_empty() {
        writeln!(
            w,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
            0.0, 0.0
        )?;
        writeln!(w, "#[Max     = {:>12.3}, Total count    = {:>12}]", 0.0, 0)?;
        return Ok(());
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / MS;
        if q < 1.0 {
            writeln!(
                w,
                "{:>12.3} {:>14.12} {:>10} {:>14.2}",
                value,
                q,
                total,
                1.0 / (1.0 - q)
            )?;
        } else {
            writeln!(w, "{:>12.3} {:>14.12} {:>10}", value, q, h.len())?;
        }
    }
    writeln!(
        w,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / MS,
        h.stdev() / MS
    )?;
    writeln!(
        w,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / MS,
        h.len()
    )?;
    writeln!(
        w,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        // 2 x 10^digits, rounded up to a power of two (HdrHistogram's own).
        (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    )?;
    Ok(())
}

/// Writes `path.connect.hgrm`, `path.first_byte.hgrm`, `path.request.hgrm`;
/// returns their names.
pub fn write_hgrm_files(path: &str, l: &Latency) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for (name, h) in named(l) {
        let p = with_name(path, name, ".hgrm");
        let mut f = io::BufWriter::new(std::fs::File::create(&p)?);
        write_hgrm(&mut f, h)?;
        f.flush()?;
        out.push(p);
    }
    Ok(out)
}

/// Latency per interval (one second of the load), for `.hlog`.
#[derive(Debug, Clone, Default)]
pub struct Intervals {
    last: Option<(Instant, Latency)>,
    pub list: Vec<(Instant, Instant, Latency)>,
}

impl Intervals {
    /// Closes the interval that ends `now` with the cumulative `cur`.
    pub fn tick(&mut self, now: Instant, cur: &Latency) {
        if let Some((t0, prev)) = &self.last {
            let mut d = cur.clone();
            for ((_, h), (_, p)) in named_mut(&mut d).into_iter().zip(named(prev)) {
                // `cur` only grew since `prev`: cannot underflow.
                h.subtract(p);
            }
            self.list.push((*t0, now, d));
        }
        self.last = Some((now, cur.clone()));
    }
}

/// Writes interval histograms (tags `connect`, `first_byte`, `request`;
/// values in ns, the log's max column in ms) in HdrHistogram's log format.
/// `t0` is the run's start on the shard clock and `wall0` the same moment
/// on the wall clock.
pub fn write_hlog(
    w: &mut impl Write,
    wall0: SystemTime,
    t0: Instant,
    intervals: &[(Instant, Instant, Latency)],
) -> io::Result<()> {
    let mut ser = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("sluice latency intervals, values in nanoseconds")
        .with_start_time(wall0)
        .with_base_time(wall0)
        .with_max_value_divisor(1e6)
        .begin_log_with(w, &mut ser)?;
    let mut sorted: Vec<&(Instant, Instant, Latency)> = intervals.iter().collect();
    sorted.sort_by_key(|(a, _, _)| *a);
    for (a, b, l) in sorted {
        for (name, h) in named(l) {
            log.write_histogram(
                &h.to_hdr(),
                a.saturating_since(t0),
                b.saturating_since(*a),
                Tag::new(name),
            )
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
    }
    Ok(())
}

/// Reads `.hlog` files and adds up their histograms by tag.
pub fn merge_hlogs(paths: &[String]) -> anyhow::Result<(Latency, usize)> {
    use base64::Engine;
    let mut total = Latency::default();
    let mut n = 0;
    for p in paths {
        let bytes = std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {p}: {e}"))?;
        for (k, e) in IntervalLogIterator::new(&bytes).enumerate() {
            let e =
                e.map_err(|e| anyhow::anyhow!("{p}: entry {k}: not a HdrHistogram log ({e:?})"))?;
            let LogEntry::Interval(ih) = e else { continue };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(ih.encoded_histogram())
                .map_err(|e| anyhow::anyhow!("{p}: interval {k}: bad base64: {e}"))?;
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut io::Cursor::new(raw))
                .map_err(|e| anyhow::anyhow!("{p}: interval {k}: bad histogram: {e:?}"))?;
            let tag = ih.tag().map(|t| t.as_str()).unwrap_or("request");
            let Some((_, dst)) = named_mut(&mut total).into_iter().find(|(n, _)| *n == tag) else {
                continue;
            };
            dst.add_hdr(&h)
                .map_err(|e| anyhow::anyhow!("{p}: interval {k}: {e}"))?;
            n += 1;
        }
    }
    Ok((total, n))
}

/// Latency by percentile for the three histograms, x on a log scale of
/// 1/(1-p) (so 90%, 99%, 99.9% … are evenly spaced, as HdrHistogram's
/// plots have it), y in microseconds on a log scale.
pub fn write_svg(path: &str, title: &str, l: &Latency) -> anyhow::Result<()> {
    use plotters::prelude::*;
    // (name, (1/(1-p), µs) points, colour) per non-empty histogram.
    type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);
    let series: Vec<Series> = named(l)
        .into_iter()
        .zip([
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
        ])
        .filter(|((_, h), _)| !h.is_empty())
        .map(|((name, h), color)| {
            let h = h.to_hdr();
            let pts = h
                .iter_quantiles(5)
                .filter(|v| v.quantile_iterated_to() < 1.0)
                .map(|v| {
                    let x = 1.0 / (1.0 - v.quantile_iterated_to());
                    (x, h.highest_equivalent(v.value_iterated_to()) as f64 / 1e3)
                })
                .collect();
            (name, pts, color)
        })
        .collect();
    let all = series.iter().flat_map(|(_, p, _)| p.iter());
    let (mut xmax, mut ymin, mut ymax) = (10.0f64, f64::MAX, 0.0f64);
    for &(x, y) in all {
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if ymax <= 0.0 {
        ymin = 1.0;
        ymax = 10.0;
    }
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0f64..xmax * 1.5).log_scale(),
            (ymin.max(0.01) / 1.5..ymax * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 1.0 / x);
            if p < 99.0 {
                format!("{p:.0}%")
            } else {
                let digits = (-(1.0 - p / 100.0).log10()).round() as usize;
                format!("{:.*}%", digits.saturating_sub(2), p)
            }
        })
        .draw()?;
    for (name, pts, color) in series {
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::record;
    use std::time::Duration;

    fn sample() -> Latency {
        let mut l = Latency::default();
        for us in 1..=1000u64 {
            record(&mut l.request, Duration::from_micros(us));
            record(&mut l.connect, Duration::from_micros(us / 2 + 1));
        }
        l
    }

    #[test]
    fn hgrm_has_the_distribution_and_totals() {
        let l = sample();
        let mut out = Vec::new();
        write_hgrm(&mut out, &l.request).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<Vec<f64>> = text
            .lines()
            .filter(|r| !r.starts_with('#') && !r.trim().is_empty() && !r.contains("Value"))
            .map(|r| r.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        // Values in ms rise with the percentile; the cumulative count ends at 1000.
        assert!(
            rows.windows(2)
                .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1])
        );
        let p50 = rows.iter().find(|r| r[1] >= 0.5).unwrap();
        assert!((p50[0] - 0.5).abs() < 0.01, "p50 {} ms", p50[0]);
        assert_eq!(rows.last().unwrap()[2], 1000.0);
        assert!(text.contains("Total count    =         1000]"), "{text}");
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
    }

    #[test]
    fn hlog_intervals_merge_back_to_the_whole() {
        let l = sample();
        let mut iv = Intervals::default();
        let t = |s: u64| Instant::from_millis(1000 * s + 1);
        iv.tick(t(0), &Latency::default());
        let mut half = Latency::default();
        for us in 1..=500u64 {
            record(&mut half.request, Duration::from_micros(us));
            record(&mut half.connect, Duration::from_micros(us / 2 + 1));
        }
        iv.tick(t(1), &half);
        iv.tick(t(2), &l);
        assert_eq!(iv.list.len(), 2);
        assert_eq!(
            iv.list[1].2.request.len(),
            500,
            "the second interval holds only its own"
        );
        let path = std::env::temp_dir().join(format!("sluice-test-{}.hlog", std::process::id()));
        let p = path.to_str().unwrap().to_string();
        let mut f = std::fs::File::create(&p).unwrap();
        write_hlog(&mut f, SystemTime::now(), t(0), &iv.list).unwrap();
        drop(f);
        let (m, n) = merge_hlogs(&[p.clone(), p.clone()]).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(n, 12, "2 files x 2 intervals x 3 tags");
        assert_eq!(m.request.len(), 2000);
        assert_eq!(
            m.request.value_at_quantile(0.5),
            l.request.value_at_quantile(0.5)
        );
        assert_eq!(m.connect.max(), l.connect.max());
        assert!(m.first_byte.is_empty());
        assert!(merge_hlogs(&["/nonexistent.hlog".into()]).is_err());
    }

    #[test]
    fn svg_draws_each_histogram() {
        let path = std::env::temp_dir().join(format!("sluice-test-{}.svg", std::process::id()));
        let p = path.to_str().unwrap();
        write_svg(p, "test", &sample()).unwrap();
        let svg = std::fs::read_to_string(p).unwrap();
        std::fs::remove_file(p).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        for name in ["connect", "request"] {
            assert!(svg.contains(name), "legend has {name}");
        }
        assert!(
            svg.matches("<polyline").count() >= 2,
            "a line per non-empty histogram"
        );
    }
}
