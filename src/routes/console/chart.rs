//! The dashboard's sign-in chart: the last 24 hours in hourly buckets, drawn as SVG geometry
//! the template writes out as markup (no script, no style attribute).

use chrono::{DateTime, Duration, DurationRound, Utc};

/// Hours shown.
pub const HOURS: usize = 24;
/// Drawing size, in SVG user units.
const HEIGHT: u32 = 120;
const SLOT: u32 = 20;
const BAR: u32 = 8;

/// One hour: its start and how many sign-ins succeeded and failed.
#[derive(serde::Serialize)]
pub struct Hour {
    pub start: DateTime<Utc>,
    pub succeeded: u32,
    pub failed: u32,
}

/// One bar to draw.
#[derive(serde::Serialize)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    /// `succeeded` or `failed`: the stylesheet's class, and what the bar's title says.
    pub class: &'static str,
    pub title: String,
}

/// The chart: its hours (also shown as a table) and the bars drawn from them.
#[derive(serde::Serialize)]
pub struct Chart {
    pub hours: Vec<Hour>,
    pub bars: Vec<Bar>,
    pub width: u32,
    pub height: u32,
    pub succeeded: u32,
    pub failed: u32,
}

/// The first hour shown when the chart is drawn at `now`.
pub fn since(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(HOURS as i64 - 1)
}

/// Buckets `sign_ins` (time, succeeded) into the hours ending with the one holding `now`.
pub fn draw(now: DateTime<Utc>, sign_ins: &[(DateTime<Utc>, bool)]) -> Chart {
    let first = since(now);
    let mut hours: Vec<Hour> = (0..HOURS)
        .map(|i| Hour { start: first + Duration::hours(i as i64), succeeded: 0, failed: 0 })
        .collect();
    for (at, ok) in sign_ins {
        let Ok(index) = usize::try_from((*at - first).num_hours()) else { continue };
        if *at < first {
            continue;
        }
        if let Some(hour) = hours.get_mut(index) {
            if *ok { hour.succeeded += 1 } else { hour.failed += 1 }
        }
    }
    let peak = hours.iter().map(|h| h.succeeded.max(h.failed)).max().unwrap_or(0).max(1);
    let scale = |n: u32| (u64::from(n) * u64::from(HEIGHT - 10) / u64::from(peak)) as u32;
    let mut bars = Vec::new();
    for (i, hour) in hours.iter().enumerate() {
        let x = i as u32 * SLOT + 2;
        let label = hour.start.format("%H:00");
        for (offset, count, class) in
            [(0, hour.succeeded, "succeeded"), (BAR, hour.failed, "failed")]
        {
            let height = scale(count);
            bars.push(Bar {
                x: x + offset,
                y: HEIGHT - height,
                height,
                class,
                title: format!("{label} UTC: {count} {class}"),
            });
        }
    }
    let succeeded = hours.iter().map(|h| h.succeeded).sum();
    let failed = hours.iter().map(|h| h.failed).sum();
    Chart { hours, bars, width: HOURS as u32 * SLOT, height: HEIGHT, succeeded, failed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_land_in_their_hour_and_older_ones_are_left_out() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T15:30:00Z").expect("time").to_utc();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").to_utc();
        let chart = draw(
            now,
            &[
                (at("2026-12-04T15:10:00Z"), true),
                (at("2026-12-04T15:20:00Z"), false),
                (at("2026-12-04T14:59:59Z"), true),
                (at("2026-12-03T16:00:00Z"), true),
                (at("2026-12-03T15:59:59Z"), true),
            ],
        );

        assert_eq!(chart.hours.len(), HOURS);
        assert_eq!(chart.hours[0].start, at("2026-12-03T16:00:00Z"));
        assert_eq!((chart.hours[23].succeeded, chart.hours[23].failed), (1, 1));
        assert_eq!(chart.hours[22].succeeded, 1);
        assert_eq!(chart.hours[0].succeeded, 1);
        assert_eq!((chart.succeeded, chart.failed), (3, 1));
        let tallest = chart.bars.iter().map(|b| b.height).max().expect("bars");
        assert_eq!(tallest, HEIGHT - 10);
    }
}
