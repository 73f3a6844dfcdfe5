//! The pricing-model comparison: what the same recorded work earns, and
//! what it leaves as gross margin, under three ways of pricing it.
//!
//! - **Cost-plus:** the inference we paid for, plus a markup. Revenue
//!   follows cost, so every saving from routing or caching is passed on
//!   and the margin stays a fixed share of a shrinking cost.
//! - **Value-based:** the plan that was actually charged: CU per resolved
//!   outcome, whatever the work cost. Savings become margin.
//! - **BYOK:** the customer pays inference with their own key; we earn a
//!   platform fee per resolved outcome and pay no inference.
//!
//! Beside them, the three lines the case for Bounty rests on: the raw
//! inference cost (the work done the naive way, every task on the
//! frontier model), the cost-plus price of that raw cost, and the
//! delivered cost after routing, caching and distillation.
//!
//! Everything is integer micros of one currency; markups are basis points,
//! rounded half up. The inputs come from recorded history (the store); this
//! module only does the arithmetic, so it can be checked by hand.

use serde::Serialize;

use crate::money::Money;
use crate::plan::Plan;
use crate::routing::BP_WHOLE;

/// The BYOK fee the comparison assumes for a plan without one: 0.10 of its
/// currency per resolved outcome.
pub const DEFAULT_PLATFORM_FEE_MICROS: i64 = 100_000;

/// The comparison's BYOK fee per resolved outcome for `plan`: its own
/// `byok_fee` at its CU price, or [`DEFAULT_PLATFORM_FEE_MICROS`].
pub fn platform_fee(plan: &Plan) -> Money {
    plan.byok_fee
        .and_then(|fee| plan.amount_for(fee.cu).ok())
        .unwrap_or_else(|| Money::from_micros(DEFAULT_PLATFORM_FEE_MICROS, plan.currency()))
}

/// Recorded figures of one account (or agent) over a period, in one
/// currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MarginInputs {
    /// Outcomes decided in the period.
    pub decided: i64,
    /// Of which resolved (net of reversals).
    pub resolved: i64,
    /// What the plan charged for them.
    pub charges_micros: i64,
    /// Inference we paid for: every attempt, rejected cascade steps and
    /// judges included, shadow runs included.
    pub delivered_cost_micros: i64,
    /// The naive cost: every decided task run once on the frontier model
    /// (the route's last), at its recorded average cost per call.
    pub raw_cost_micros: i64,
}

/// Revenue, cost and gross margin under one pricing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PricingLine {
    pub revenue_micros: i64,
    pub cost_micros: i64,
    pub margin_micros: i64,
    /// Margin over revenue, in basis points; `None` without revenue.
    pub margin_bp: Option<i64>,
}

impl PricingLine {
    fn new(revenue_micros: i64, cost_micros: i64) -> PricingLine {
        let margin_micros = revenue_micros.saturating_sub(cost_micros);
        PricingLine {
            revenue_micros,
            cost_micros,
            margin_micros,
            margin_bp: ratio_bp(margin_micros, revenue_micros),
        }
    }
}

/// The comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub cost_plus: PricingLine,
    pub value_based: PricingLine,
    pub byok: PricingLine,
    /// Every decided task on the frontier model.
    pub raw_cost_micros: i64,
    /// `raw_cost_micros` with the cost-plus markup: what a reseller of
    /// unoptimized inference would charge.
    pub cost_plus_price_micros: i64,
    /// What the work cost us after routing, caching and distillation.
    pub delivered_cost_micros: i64,
}

/// `part / whole` in basis points, rounded half away from zero.
pub fn ratio_bp(part: i64, whole: i64) -> Option<i64> {
    if whole == 0 {
        return None;
    }
    let num = i128::from(part) * i128::from(BP_WHOLE) * 2;
    let den = i128::from(whole) * 2;
    let q = (num + num.signum() * den.abs() / 2) / den;
    i64::try_from(q).ok()
}

/// `v × (1 + bp / 10000)`, rounded half up.
fn with_markup(v: i64, markup_bp: u32) -> i64 {
    let whole = i128::from(BP_WHOLE);
    let x = i128::from(v) * (whole + i128::from(markup_bp));
    i64::try_from((x + whole / 2).div_euclid(whole)).unwrap_or(i64::MAX)
}

/// Compares the three pricing models on `inputs`: cost-plus at
/// `markup_bp` over the delivered cost, the plan as charged, and BYOK at
/// `platform_fee_micros` per resolved outcome.
pub fn compare(inputs: &MarginInputs, markup_bp: u32, platform_fee_micros: i64) -> Comparison {
    Comparison {
        cost_plus: PricingLine::new(
            with_markup(inputs.delivered_cost_micros, markup_bp),
            inputs.delivered_cost_micros,
        ),
        value_based: PricingLine::new(inputs.charges_micros, inputs.delivered_cost_micros),
        byok: PricingLine::new(inputs.resolved.saturating_mul(platform_fee_micros), 0),
        raw_cost_micros: inputs.raw_cost_micros,
        cost_plus_price_micros: with_markup(inputs.raw_cost_micros, markup_bp),
        delivered_cost_micros: inputs.delivered_cost_micros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand: 100 decided, 90 resolved at 1.00 USD; we paid 12.50
    /// USD of inference; the frontier alone would have cost 37.30 USD.
    #[test]
    fn matches_the_hand_computed_fixture() {
        let inputs = MarginInputs {
            decided: 100,
            resolved: 90,
            charges_micros: 90_000_000,
            delivered_cost_micros: 12_500_000,
            raw_cost_micros: 37_300_000,
        };
        let c = compare(&inputs, 3_000, 150_000);
        // Cost-plus 30%: 12.50 × 1.3 = 16.25 revenue, 3.75 margin, 23.08%.
        assert_eq!(c.cost_plus.revenue_micros, 16_250_000);
        assert_eq!(c.cost_plus.margin_micros, 3_750_000);
        assert_eq!(c.cost_plus.margin_bp, Some(2_308));
        // Value: 90.00 revenue − 12.50 = 77.50, 86.11%.
        assert_eq!(c.value_based.margin_micros, 77_500_000);
        assert_eq!(c.value_based.margin_bp, Some(8_611));
        // BYOK: 90 × 0.15 = 13.50, all margin.
        assert_eq!(c.byok.revenue_micros, 13_500_000);
        assert_eq!(c.byok.cost_micros, 0);
        assert_eq!(c.byok.margin_bp, Some(10_000));
        // Lines: 37.30 raw, × 1.3 = 48.49, 12.50 delivered.
        assert_eq!(c.raw_cost_micros, 37_300_000);
        assert_eq!(c.cost_plus_price_micros, 48_490_000);
        assert_eq!(c.delivered_cost_micros, 12_500_000);
    }

    #[test]
    fn rounds_half_up_and_handles_nothing() {
        // 1 micro × 1.5 = 1.5 → 2.
        assert_eq!(with_markup(1, 5_000), 2);
        assert_eq!(with_markup(3, 0), 3);
        let empty = compare(&MarginInputs::default(), 3_000, 100);
        assert_eq!(empty.value_based.margin_bp, None);
        assert_eq!(empty.byok.revenue_micros, 0);
        assert_eq!(ratio_bp(-1, 3), Some(-3_333));
        assert_eq!(ratio_bp(2, 3), Some(6_667));
    }
}
