//! The overview's charts, as inline SVG geometry computed on the server.
//!
//! The charges chart ([`layout`]): bars are each day's charges. Drawn for
//! the operator, a dashed line marks, for each day, the charges that would
//! give exactly a 30% gross margin on that day's inference cost (cost ÷
//! 0.7): a bar above the line is a day with more than 30% margin. Drawn
//! for the customer, there is no line and no cost anywhere.
//!
//! The resolution chart ([`resolution_layout`]): bars are each day's
//! resolved ÷ decided outcomes, in integer basis points on a fixed 0–100%
//! axis; a day with nothing decided has no bar (its tooltip says so).
//!
//! Both share one frame: coordinates are integers in a fixed view box,
//! and the SVG has fixed proportions, so nothing moves as it loads. Each
//! chart is laid out twice ([`Charts`]): [`WIDE`] (720 × 260) for screens
//! from 700 px, and [`NARROW`] (360 × 240) for phones, where the wide one
//! would shrink its text below 11 px; CSS shows one of the two.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::format::{amount, money, percent_bp, ratio_bp};
use crate::usage::Day;

/// A chart's view box and margins, in its own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub(crate) width: i64,
    pub(crate) height: i64,
    left: i64,
    right: i64,
    top: i64,
    bottom: i64,
    /// The labels' font size.
    font: i64,
    /// The SVG's class, which CSS shows or hides by screen width.
    class: &'static str,
}

/// Screens from 700 px: at that width the view box is drawn at least
/// 0.9× its size, so 13-unit labels are 11 px or more.
pub(crate) const WIDE: Size = Size {
    width: 720,
    height: 260,
    left: 64,
    right: 8,
    top: 12,
    bottom: 28,
    font: 13,
    class: "wide",
};

/// Phones: 360 units drawn across about 330 px at 390 px, so 13-unit
/// labels stay 11 px or more. (CSS caps it at 480 px wide.)
pub(crate) const NARROW: Size = Size {
    width: 360,
    height: 240,
    left: 62,
    right: 6,
    top: 12,
    bottom: 28,
    font: 13,
    class: "narrow",
};
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

/// A chart in both sizes; the page draws both and CSS shows one.
pub(crate) struct Charts {
    pub(crate) wide: Chart,
    pub(crate) narrow: Chart,
}

impl Charts {
    /// `draw` laid out at [`WIDE`] and at [`NARROW`].
    pub(crate) fn of(draw: impl Fn(Size) -> Chart) -> Charts {
        Charts {
            wide: draw(WIDE),
            narrow: draw(NARROW),
        }
    }
    /// Both, wide first, for the template to draw.
    pub(crate) fn both(&self) -> [&Chart; 2] {
        [&self.wide, &self.narrow]
    }
}

/// Everything the template draws.
pub(crate) struct Chart {
    pub(crate) width: i64,
    pub(crate) height: i64,
    /// The labels' font size, in view-box units.
    pub(crate) font: i64,
    pub(crate) class: &'static str,
    /// What the y axis counts: the currency code, or `%`.
    pub(crate) unit: String,
    pub(crate) bars: Vec<Bar>,
    /// The SVG path of the 30% margin line; empty when there is no cost
    /// (and always, in the resolution chart).
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

/// The days drawn and the plot's geometry, shared by both charts.
struct Frame {
    size: Size,
    /// `from..=to`, clipped to [`MAX_DAYS`]; never empty.
    dates: Vec<NaiveDate>,
    plot_h: i64,
    baseline: i64,
}

impl Frame {
    fn new(from: NaiveDate, to: NaiveDate, size: Size) -> Frame {
        let n = ((to - from).num_days() + 1).clamp(1, MAX_DAYS);
        let plot_h = size.height - size.top - size.bottom;
        Frame {
            size,
            dates: (0..n).map(|i| from + Duration::days(i)).collect(),
            plot_h,
            baseline: size.top + plot_h,
        }
    }

    fn first(&self) -> NaiveDate {
        self.dates[0]
    }

    fn last(&self) -> NaiveDate {
        self.dates[self.dates.len() - 1]
    }

    /// Each date with its day, a zero day where nothing happened.
    fn values(&self, days: &BTreeMap<NaiveDate, Day>) -> Vec<(NaiveDate, Day)> {
        self.dates
            .iter()
            .map(|d| (*d, days.get(d).cloned().unwrap_or_default()))
            .collect()
    }

    /// The y of `v` on an axis from 0 to `top` (> 0), clamped to the plot.
    fn y_of(&self, v: i64, top: i64) -> i64 {
        let h = i128::from(v.clamp(0, top)) * i128::from(self.plot_h) / i128::from(top.max(1));
        self.baseline - i64::try_from(h).unwrap_or(self.plot_h)
    }

    /// The left edge of day `i`'s slot; `slot(n)` is the plot's right edge.
    fn slot(&self, i: i64) -> i64 {
        let n = self.dates.len() as i64;
        let s = self.size;
        s.left + i * (s.width - s.left - s.right) / n
    }

    /// Day `i`'s bar reaching up to `y`.
    fn bar(&self, i: i64, y: i64, title: String) -> Bar {
        let (x0, x1) = (self.slot(i), self.slot(i + 1));
        let gap = if x1 - x0 > 3 { 1 } else { 0 };
        Bar {
            x: x0 + gap,
            y,
            w: (x1 - x0 - 2 * gap).max(1),
            h: self.baseline - y,
            title,
        }
    }

    /// The first and (for more than one day) last date under the axis.
    fn x_labels(&self) -> Vec<XLabel> {
        let mut out = vec![XLabel {
            x: self.size.left,
            label: self.first().format("%b %-d").to_string(),
        }];
        if self.dates.len() > 1 {
            out.push(XLabel {
                x: self.size.width - self.size.right,
                label: self.last().format("%b %-d").to_string(),
            });
        }
        out
    }

    fn chart(
        &self,
        unit: &str,
        bars: Vec<Bar>,
        margin_path: String,
        ticks: Vec<Tick>,
        summary: String,
    ) -> Chart {
        let s = self.size;
        Chart {
            unit: unit.to_owned(),
            width: s.width,
            height: s.height,
            font: s.font,
            class: s.class,
            bars,
            margin_path,
            ticks,
            x_labels: self.x_labels(),
            baseline: self.baseline,
            left: s.left,
            right: s.width - s.right,
            summary,
        }
    }
}

/// Who a chart is drawn for: the customer sees its charges only; the
/// operator also sees each day's inference cost and the 30% margin line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Customer,
    Operator,
}

/// Lays out the charges chart for days `from..=to` (clipped to
/// [`MAX_DAYS`]).
pub(crate) fn layout(
    days: &BTreeMap<NaiveDate, Day>,
    from: NaiveDate,
    to: NaiveDate,
    currency: &str,
    audience: Audience,
    size: Size,
) -> Chart {
    let frame = Frame::new(from, to, size);
    let values = frame.values(days);
    let operator = audience == Audience::Operator;
    let floor = |d: &Day| if operator { margin_floor(d.cost_micros) } else { 0 };
    let peak = values
        .iter()
        .map(|(_, d)| d.charges_micros.max(floor(d)))
        .max()
        .unwrap_or(0)
        .max(1);
    let top = nice_max(peak);
    let mut bars = Vec::with_capacity(values.len());
    let mut path = String::new();
    let any_cost = operator && values.iter().any(|(_, d)| d.cost_micros > 0);
    for (i, (date, d)) in values.iter().enumerate() {
        let i = i as i64;
        let y = frame.y_of(d.charges_micros, top);
        let title = if operator {
            format!(
                "{date}: charges {}, inference cost {}",
                money(d.charges_micros, currency),
                money(d.cost_micros, currency)
            )
        } else {
            format!("{date}: charges {}", money(d.charges_micros, currency))
        };
        bars.push(frame.bar(i, y, title));
        if any_cost {
            let fy = frame.y_of(margin_floor(d.cost_micros), top);
            let (x0, x1) = (frame.slot(i), frame.slot(i + 1));
            let cmd = if i == 0 { 'M' } else { 'L' };
            path.push_str(&format!("{cmd}{x0} {fy} L{x1} {fy} "));
        }
    }
    let ticks = (0..=4)
        .map(|k| Tick {
            y: frame.y_of(top / 4 * k, top),
            label: amount(top / 4 * k, currency),
        })
        .collect();
    let total: i64 = values
        .iter()
        .map(|(_, d)| d.charges_micros)
        .fold(0, i64::saturating_add);
    let summary = format!(
        "Charges per day from {} to {}, {} in total{}.",
        frame.first(),
        frame.last(),
        money(total, currency),
        if any_cost {
            ", with the charges needed for a 30% gross margin marked"
        } else {
            ""
        }
    );
    frame.chart(currency, bars, path.trim_end().to_owned(), ticks, summary)
}

/// Basis points in 100%.
const FULL_BP: i64 = 10_000;

/// Lays out the resolution-rate chart for days `from..=to` (clipped to
/// [`MAX_DAYS`]): each day's resolved ÷ decided, on a 0–100% axis.
pub(crate) fn resolution_layout(
    days: &BTreeMap<NaiveDate, Day>,
    from: NaiveDate,
    to: NaiveDate,
    size: Size,
) -> Chart {
    let frame = Frame::new(from, to, size);
    let values = frame.values(days);
    let bars = values
        .iter()
        .enumerate()
        .map(|(i, (date, d))| {
            let rate = day_rate_bp(d);
            let y = frame.y_of(rate.unwrap_or(0), FULL_BP);
            let title = match rate {
                Some(bp) => format!(
                    "{date}: {} resolved ({} of {} decided)",
                    percent_bp(bp),
                    d.resolved,
                    d.decided
                ),
                None => format!("{date}: no tasks decided"),
            };
            frame.bar(i as i64, y, title)
        })
        .collect();
    let ticks = (0..=4)
        .map(|k| Tick {
            y: frame.y_of(FULL_BP / 4 * k, FULL_BP),
            label: format!("{}%", 25 * k),
        })
        .collect();
    let (resolved, decided) = values
        .iter()
        .fold((0u64, 0u64), |(r, n), (_, d)| (r + d.resolved, n + d.decided));
    let overall = match i64::try_from(resolved)
        .ok()
        .zip(i64::try_from(decided).ok())
        .and_then(|(r, n)| ratio_bp(r, n))
    {
        Some(bp) => format!(
            "{resolved} of {decided} decided tasks resolved, {} overall",
            percent_bp(bp)
        ),
        None => "no tasks decided".to_owned(),
    };
    let summary = format!(
        "Resolution rate per day from {} to {}: {overall}.",
        frame.first(),
        frame.last()
    );
    frame.chart("%", bars, String::new(), ticks, summary)
}

/// A day's resolved ÷ decided in basis points; `None` with nothing decided.
fn day_rate_bp(d: &Day) -> Option<i64> {
    ratio_bp(i64::try_from(d.resolved).ok()?, i64::try_from(d.decided).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEFT: i64 = WIDE.left;
    const TOP: i64 = WIDE.top;
    const WIDTH: i64 = WIDE.width;
    const RIGHT: i64 = WIDE.right;

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
                ..Day::default()
            },
        );
        let c = layout(&days, from, to, "USD", Audience::Operator, WIDE);
        assert_eq!(c.bars.len(), 31);
        assert!(
            c.bars
                .iter()
                .all(|b| b.x >= LEFT && b.x + b.w <= WIDTH - RIGHT && b.y >= TOP)
        );
        assert_eq!(c.bars[0].y, TOP, "the tallest bar reaches the top");
        assert!(c.margin_path.starts_with("M64 "));
        assert_eq!(c.x_labels.len(), 2);
        // The customer's chart of the same days shows charges only.
        let c = layout(&days, from, to, "USD", Audience::Customer, WIDE);
        assert!(c.margin_path.is_empty());
        assert!(
            c.bars.iter().all(|b| !b.title.contains("cost")),
            "{:?}",
            c.bars[0].title
        );
        assert!(!c.summary.contains("margin"), "{}", c.summary);
    }

    fn may(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, d).unwrap()
    }

    fn decided(resolved: u64, decided: u64) -> Day {
        Day {
            resolved,
            decided,
            ..Day::default()
        }
    }

    #[test]
    fn a_period_with_nothing_decided_has_no_resolution_bars() {
        let c = resolution_layout(&BTreeMap::new(), may(1), may(10), WIDE);
        assert_eq!(c.bars.len(), 10);
        assert!(c.bars.iter().all(|b| b.h == 0 && b.y == c.baseline));
        assert!(c.bars.iter().all(|b| b.title.ends_with("no tasks decided")));
        assert!(c.margin_path.is_empty());
        let labels: Vec<&str> = c.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0%", "25%", "50%", "75%", "100%"]);
        assert_eq!(c.ticks[0].y, c.baseline);
        assert_eq!(c.ticks[4].y, TOP);
        assert!(c.summary.contains("no tasks decided"), "{}", c.summary);
    }

    #[test]
    fn a_day_with_everything_resolved_reaches_the_top() {
        let days = BTreeMap::from([(may(2), decided(3, 3))]);
        let c = resolution_layout(&days, may(1), may(3), WIDE);
        assert_eq!(c.bars[1].y, TOP);
        assert_eq!(c.bars[1].h, c.baseline - TOP);
        assert_eq!(c.bars[1].title, "2026-05-02: 100.0% resolved (3 of 3 decided)");
        assert_eq!(c.bars[0].h, 0);
        assert!(
            c.summary
                .contains("3 of 3 decided tasks resolved, 100.0% overall")
        );
    }

    #[test]
    fn mixed_days_are_scaled_by_their_own_rate() {
        let days = BTreeMap::from([
            (may(1), decided(1, 2)),
            (may(2), decided(0, 4)),
            (may(3), decided(3, 4)),
        ]);
        let c = resolution_layout(&days, may(1), may(3), WIDE);
        let full = c.baseline - TOP;
        assert_eq!(c.bars[0].h, full / 2);
        assert_eq!(c.bars[1].h, 0, "decided but none resolved");
        assert_eq!(c.bars[1].title, "2026-05-02: 0.0% resolved (0 of 4 decided)");
        assert_eq!(c.bars[2].h, full * 3 / 4);
        assert!(
            c.bars
                .iter()
                .all(|b| b.x >= LEFT && b.x + b.w <= WIDTH - RIGHT && b.y >= TOP)
        );
        assert!(
            c.summary
                .contains("4 of 10 decided tasks resolved, 40.0% overall")
        );
        assert_eq!(c.x_labels.len(), 2);
    }

    #[test]
    fn the_narrow_chart_fits_its_own_frame_with_the_same_bars() {
        let days = BTreeMap::from([(may(2), decided(1, 2)), (may(20), decided(2, 2))]);
        let charts = Charts::of(|size| resolution_layout(&days, may(1), may(31), size));
        let n = &charts.narrow;
        assert_eq!((n.width, n.height, n.class), (360, 240, "narrow"));
        assert_eq!(n.bars.len(), charts.wide.bars.len());
        assert!(
            n.bars
                .iter()
                .all(|b| b.x >= NARROW.left && b.x + b.w <= NARROW.width - NARROW.right && b.y >= NARROW.top),
        );
        assert_eq!(n.x_labels[1].x, NARROW.width - NARROW.right);
        assert_eq!(n.summary, charts.wide.summary, "the same words for both");
        // 13 units over 360 drawn across 330 px is 11.9 px.
        assert!(n.font * 330 / n.width >= 11);
    }
}
