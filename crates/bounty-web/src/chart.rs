//! The overview's chart, as inline SVG geometry computed on the server.
//!
//! Bars are each day's charges. The dashed line is, for each day, the
//! charges that would give exactly a 30% gross margin on that day's
//! inference cost (cost ÷ 0.7): a bar above the line is a day with more
//! than 30% margin. Coordinates are integers in a fixed 720 × 260 view
//! box, and the SVG has fixed proportions, so nothing moves as it loads.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::format::micros;
use crate::usage::Day;

/// The view box.
pub(crate) const WIDTH: i64 = 720;
/// The view box.
pub(crate) const HEIGHT: i64 = 260;
const LEFT: i64 = 64;
const RIGHT: i64 = 8;
const TOP: i64 = 12;
const BOTTOM: i64 = 28;
/// The longest period drawn day by day.
const MAX_DAYS: i64 = 400;

/// One day's bar.
pub(crate) struct Bar {
    pub(crate) x: i64,
    pub(crate) y: i64,
    pub(crate) w: i64,
    pub(crate) h: i64,
    /// Its tooltip.
    pub(crate) title: String,
}

/// A labelled gridline.
pub(crate) struct Tick {
    pub(crate) y: i64,
    pub(crate) label: String,
}

/// A date under the axis.
pub(crate) struct XLabel {
    pub(crate) x: i64,
    pub(crate) label: String,
}

/// Everything the template draws.
pub(crate) struct Chart {
    pub(crate) bars: Vec<Bar>,
    /// The SVG path of the 30% margin line; empty when there is no cost.
    pub(crate) margin_path: String,
    pub(crate) ticks: Vec<Tick>,
    pub(crate) x_labels: Vec<XLabel>,
    pub(crate) baseline: i64,
    pub(crate) left: i64,
    pub(crate) right: i64,
    /// A sentence for screen readers.
    pub(crate) summary: String,
}

/// The charges a day needs for a 30% gross margin on `cost`: cost ÷ 0.7,
/// rounded up.
pub(crate) fn margin_floor(cost_micros: i64) -> i64 {
    let v = (i128::from(cost_micros.max(0)) * 10 + 6) / 7;
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A round axis maximum at or above `v`: 1, 2 or 5 times a power of ten.
fn nice_max(v: i64) -> i64 {
    let mut step: i64 = 1;
    loop {
        for m in [1, 2, 5] {
            if let Some(n) = step.checked_mul(m)
                && n >= v
            {
                return n;
            }
        }
        match step.checked_mul(10) {
            Some(s) => step = s,
            None => return i64::MAX,
        }
    }
}

/// Lays out the chart for days `from..=to` (clipped to [`MAX_DAYS`]).
pub(crate) fn layout(
    days: &BTreeMap<NaiveDate, Day>,
    from: NaiveDate,
    to: NaiveDate,
    currency: &str,
) -> Chart {
    let n = ((to - from).num_days() + 1).clamp(1, MAX_DAYS);
    let dates: Vec<NaiveDate> = (0..n).map(|i| from + Duration::days(i)).collect();
    let zero = Day::default();
    let values: Vec<(&NaiveDate, &Day)> = dates.iter().map(|d| (d, days.get(d).unwrap_or(&zero))).collect();
    let peak = values
        .iter()
        .map(|(_, d)| d.charges_micros.max(margin_floor(d.cost_micros)))
        .max()
        .unwrap_or(0)
        .max(1);
    let top = nice_max(peak);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let baseline = TOP + plot_h;
    let y_of = |v: i64| -> i64 {
        let h = i128::from(v.max(0)) * i128::from(plot_h) / i128::from(top);
        baseline - i64::try_from(h).unwrap_or(plot_h)
    };
    let slot = |i: i64| LEFT + i * plot_w / n;
    let mut bars = Vec::with_capacity(values.len());
    let mut path = String::new();
    let any_cost = values.iter().any(|(_, d)| d.cost_micros > 0);
    for (i, (date, d)) in values.iter().enumerate() {
        let i = i as i64;
        let (x0, x1) = (slot(i), slot(i + 1));
        let gap = if x1 - x0 > 3 { 1 } else { 0 };
        let y = y_of(d.charges_micros);
        bars.push(Bar {
            x: x0 + gap,
            y,
            w: (x1 - x0 - 2 * gap).max(1),
            h: baseline - y,
            title: format!(
                "{date}: charges {}, inference cost {}",
                micros(d.charges_micros, currency),
                micros(d.cost_micros, currency)
            ),
        });
        if any_cost {
            let fy = y_of(margin_floor(d.cost_micros));
            let cmd = if i == 0 { 'M' } else { 'L' };
            path.push_str(&format!("{cmd}{x0} {fy} L{x1} {fy} "));
        }
    }
    let ticks = (0..=4)
        .map(|k| Tick {
            y: y_of(top / 4 * k),
            label: micros(top / 4 * k, currency),
        })
        .collect();
    let mut x_labels = vec![XLabel {
        x: LEFT,
        label: from.format("%b %-d").to_string(),
    }];
    if n > 1 {
        x_labels.push(XLabel {
            x: WIDTH - RIGHT,
            label: dates[dates.len() - 1].format("%b %-d").to_string(),
        });
    }
    let total: i64 = values
        .iter()
        .map(|(_, d)| d.charges_micros)
        .fold(0, i64::saturating_add);
    Chart {
        bars,
        margin_path: path.trim_end().to_owned(),
        ticks,
        x_labels,
        baseline,
        left: LEFT,
        right: WIDTH - RIGHT,
        summary: format!(
            "Charges per day from {from} to {}, {} in total, with the charges needed for a 30% gross margin marked.",
            dates[dates.len() - 1],
            micros(total, currency)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_floor_is_cost_over_point_seven_rounded_up() {
        assert_eq!(margin_floor(700_000), 1_000_000);
        assert_eq!(margin_floor(1), 2);
        assert_eq!(margin_floor(0), 0);
        assert_eq!(margin_floor(7), 10);
    }

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(1_100_000), 2_000_000);
        assert_eq!(nice_max(i64::MAX), i64::MAX);
    }

    #[test]
    fn bars_fit_the_plot() {
        let from = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 5, 31).unwrap();
        let mut days = BTreeMap::new();
        days.insert(
            from,
            Day {
                charges_micros: 2_000_000,
                cost_micros: 700_000,
            },
        );
        let c = layout(&days, from, to, "USD");
        assert_eq!(c.bars.len(), 31);
        assert!(
            c.bars
                .iter()
                .all(|b| b.x >= LEFT && b.x + b.w <= WIDTH - RIGHT && b.y >= TOP)
        );
        assert_eq!(c.bars[0].y, TOP, "the tallest bar reaches the top");
        assert!(c.margin_path.starts_with("M64 "));
        assert_eq!(c.x_labels.len(), 2);
    }
}
