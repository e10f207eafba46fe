//! The dashboard's charts: the last 24 hours in hourly buckets, one bar per series in each
//! hour's slot, drawn as SVG geometry the template writes out as markup (no script, no style
//! attribute).

use chrono::{DateTime, Duration, DurationRound, Utc};

/// Hours shown.
pub const HOURS: usize = 24;
/// Drawing size, in SVG user units.
const HEIGHT: u32 = 120;
const SLOT: u32 = 20;
/// What of a slot its bars share (the rest is the gap between hours).
const BARS: u32 = 16;

/// One thing counted per hour: its counts, oldest hour first, and how its bars look.
pub struct Series {
    /// The stylesheet's class for its bars, also the word their titles use.
    pub class: &'static str,
    pub counts: [u32; HOURS],
}

impl Series {
    /// Buckets `counted` (time, how many) into the hours ending with the one holding `now`;
    /// what falls outside them is left out.
    pub fn bucket(
        now: DateTime<Utc>,
        class: &'static str,
        counted: impl IntoIterator<Item = (DateTime<Utc>, u32)>,
    ) -> Self {
        let first = since(now);
        let mut counts = [0u32; HOURS];
        for (at, n) in counted {
            if at < first {
                continue;
            }
            let Ok(index) = usize::try_from((at - first).num_hours()) else { continue };
            if let Some(count) = counts.get_mut(index) {
                *count = count.saturating_add(n);
            }
        }
        Self { class, counts }
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().fold(0, |sum, n| sum.saturating_add(*n))
    }
}

/// One bar to draw.
#[derive(serde::Serialize)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// The series' class: the stylesheet's, and what the bar's title says.
    pub class: &'static str,
    pub title: String,
}

/// A chart: the bars drawn from its series, scaled to the tallest.
#[derive(serde::Serialize)]
pub struct Chart {
    pub bars: Vec<Bar>,
    pub width: u32,
    pub height: u32,
}

/// One hour of the table under the charts: its start and each series' count.
#[derive(serde::Serialize)]
pub struct Row {
    pub start: DateTime<Utc>,
    pub counts: Vec<u32>,
}

/// The first hour shown when the chart is drawn at `now`.
pub fn since(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(HOURS as i64 - 1)
}

/// Draws `series` side by side in each hour's slot, all to one scale.
pub fn draw(now: DateTime<Utc>, series: &[&Series]) -> Chart {
    let first = since(now);
    let peak = series.iter().flat_map(|s| s.counts).max().unwrap_or(0).max(1);
    let scale = |n: u32| (u64::from(n) * u64::from(HEIGHT - 10) / u64::from(peak)) as u32;
    let width = BARS / u32::try_from(series.len()).unwrap_or(1).max(1);
    let mut bars = Vec::new();
    for i in 0..HOURS {
        let x = i as u32 * SLOT + 2;
        let label = (first + Duration::hours(i as i64)).format("%H:00");
        for (offset, s) in series.iter().enumerate() {
            let count = s.counts[i];
            let height = scale(count);
            bars.push(Bar {
                x: x + offset as u32 * width,
                y: HEIGHT - height,
                width,
                height,
                class: s.class,
                title: format!("{label} UTC: {count} {}", s.class),
            });
        }
    }
    Chart { bars, width: HOURS as u32 * SLOT, height: HEIGHT }
}

/// The same numbers as a table: each hour with every series' count, in `series` order.
pub fn table(now: DateTime<Utc>, series: &[&Series]) -> Vec<Row> {
    let first = since(now);
    (0..HOURS)
        .map(|i| Row {
            start: first + Duration::hours(i as i64),
            counts: series.iter().map(|s| s.counts[i]).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn counts_land_in_their_hour_and_older_ones_are_left_out() {
        let now = at("2026-12-04T15:30:00Z");
        let sign_ins = [
            (at("2026-12-04T15:10:00Z"), true),
            (at("2026-12-04T15:20:00Z"), false),
            (at("2026-12-04T14:59:59Z"), true),
            (at("2026-12-03T16:00:00Z"), true),
            (at("2026-12-03T15:59:59Z"), true),
        ];
        let of = |ok: bool| sign_ins.iter().filter(move |s| s.1 == ok).map(|s| (s.0, 1));
        let succeeded = Series::bucket(now, "succeeded", of(true));
        let failed = Series::bucket(now, "failed", of(false));
        let chart = draw(now, &[&succeeded, &failed]);
        let rows = table(now, &[&succeeded, &failed]);

        assert_eq!(rows.len(), HOURS);
        assert_eq!(rows[0].start, at("2026-12-03T16:00:00Z"));
        assert_eq!(rows[23].counts, [1, 1]);
        assert_eq!(rows[22].counts, [1, 0]);
        assert_eq!(rows[0].counts, [1, 0]);
        assert_eq!((succeeded.total(), failed.total()), (3, 1));
        assert_eq!(chart.bars.len(), 2 * HOURS);
        let tallest = chart.bars.iter().map(|b| b.height).max().expect("bars");
        assert_eq!(tallest, HEIGHT - 10);
    }

    #[test]
    fn one_series_gets_the_whole_slot_and_counts_scale_to_its_peak() {
        let now = at("2026-12-04T15:30:00Z");
        let tokens = Series::bucket(
            now,
            "tokens",
            [(at("2026-12-04T15:00:00Z"), 4), (at("2026-12-04T14:00:00Z"), 2)],
        );
        let chart = draw(now, &[&tokens]);

        assert_eq!(tokens.total(), 6);
        assert_eq!(chart.bars.len(), HOURS);
        assert!(chart.bars.iter().all(|b| b.width == BARS));
        assert_eq!(chart.bars[23].height, HEIGHT - 10);
        assert_eq!(chart.bars[22].height, (HEIGHT - 10) / 2);
        assert_eq!(chart.bars[23].title, "15:00 UTC: 4 tokens");
    }
}
