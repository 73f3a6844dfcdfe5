//! How numbers and times read on a page. Money is integer micros, shown
//! two ways:
//! - [`money`]: totals, balances, caps and projections, at the currency's
//!   precision (cents; none for JPY), rounded half up as a payment is;
//! - [`micros`]: one outcome's charge, a price, a model call's cost, where
//!   a fraction of a cent matters: exact, at the currency's precision or
//!   more (any non-zero micro stays visible).

use bounty_core::{ComputeUnits, Currency, Timestamp};

/// Decimal places of `currency`'s minor unit (2 when it is not a known
/// code).
fn exponent(currency: &str) -> u32 {
    currency
        .to_uppercase()
        .parse::<Currency>()
        .map(|c| c.minor_exponent())
        .unwrap_or(2)
}

/// Exact: `1_234` micros of `USD` → `0.001234 USD`; `12_500_000` →
/// `12.50 USD`; `3_000_000` of `JPY` → `3 JPY`.
pub(crate) fn micros(micros: i64, currency: &str) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = i128::from(micros).abs();
    let whole = abs / 1_000_000;
    let mut frac = format!("{:06}", abs % 1_000_000);
    let keep = exponent(currency) as usize;
    while frac.len() > keep && frac.ends_with('0') {
        frac.pop();
    }
    if frac.is_empty() {
        format!("{sign}{whole} {currency}")
    } else {
        format!("{sign}{whole}.{frac} {currency}")
    }
}

/// At the currency's precision, rounded half up (away from zero):
/// `12_345_678` micros of `USD` → `12.35 USD`; of `JPY` → `12 JPY`.
pub(crate) fn money(micros: i64, currency: &str) -> String {
    format!("{} {currency}", amount(micros, currency))
}

/// [`money`] without the currency code, for a chart's axis.
pub(crate) fn amount(micros: i64, currency: &str) -> String {
    let exp = exponent(currency);
    let per_minor = 10_i128.pow(6 - exp);
    let abs = i128::from(micros).abs();
    let minor = (abs + per_minor / 2) / per_minor;
    let sign = if micros < 0 && minor > 0 { "-" } else { "" };
    let unit = 10_i128.pow(exp);
    if exp == 0 {
        format!("{sign}{minor}")
    } else {
        format!("{sign}{}.{:0w$}", minor / unit, minor % unit, w = exp as usize)
    }
}

/// Micros as a plain decimal with all six places, for machines (CSV):
/// `2_500` → `0.002500`, `-12_500_000` → `-12.500000`. Exact: integer
/// arithmetic only.
pub(crate) fn micros_decimal(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = i128::from(micros).abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// Basis points as a plain percentage with two places: `3333` → `33.33`.
pub(crate) fn bp_decimal(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// An amount in a currency's minor units (Stripe's invoices: cents).
pub(crate) fn minor_units(amount: i64, currency: &str) -> String {
    let code = currency.to_uppercase();
    let exp = exponent(&code);
    let factor = 10_i128.pow(6_u32.saturating_sub(exp));
    let as_micros = i128::from(amount).saturating_mul(factor);
    match i64::try_from(as_micros) {
        Ok(m) => micros(m, &code),
        Err(_) => format!("{amount} (minor units) {code}"),
    }
}

/// Milli-CU as a decimal CU amount: `1500` → `1.5`.
pub(crate) fn cu(milli: i64) -> String {
    ComputeUnits::from_milli(milli).decimal()
}

/// Basis points as a percentage with one decimal: `3150` → `31.5%`.
pub(crate) fn percent_bp(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    let abs = bp.unsigned_abs();
    // One decimal, rounded half up from basis points.
    let tenths = (abs + 5) / 10;
    format!("{sign}{}.{}%", tenths / 10, tenths % 10)
}

/// `part / whole` in basis points, rounded half away from zero; `None`
/// when `whole` is 0 (the margin comparison's, so both agree).
pub(crate) use bounty_core::margin::ratio_bp;

/// `2026-05-01 12:34:56 UTC`.
pub(crate) fn time(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional time, or an em dash.
pub(crate) fn time_or_dash(t: Option<Timestamp>) -> String {
    t.map(time).unwrap_or_else(|| "—".to_owned())
}

/// `opened (accepted)` and the dispute rate over `charged` outcomes.
pub(crate) fn dispute_rate(opened: i64, accepted: i64, charged: u64) -> String {
    let rate = ratio_bp(opened, i64::try_from(charged).unwrap_or(i64::MAX))
        .map(percent_bp)
        .unwrap_or_else(|| "—".into());
    format!("{opened} ({accepted} accepted) · {rate}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_every_micro() {
        assert_eq!(micros(12_500_000, "USD"), "12.50 USD");
        assert_eq!(micros(1_234, "USD"), "0.001234 USD");
        assert_eq!(micros(-1_000_000, "EUR"), "-1.00 EUR");
        assert_eq!(micros(0, "USD"), "0.00 USD");
        assert_eq!(micros(i64::MIN, "USD"), "-9223372036854.775808 USD");
        assert_eq!(micros(3_000_000, "JPY"), "3 JPY");
        assert_eq!(micros(3_500_000, "JPY"), "3.5 JPY");
        assert_eq!(micros(1_500_000, "KWD"), "1.500 KWD");
    }

    #[test]
    fn totals_are_at_the_currency_precision() {
        assert_eq!(money(12_345_678, "USD"), "12.35 USD");
        assert_eq!(money(12_344_999, "USD"), "12.34 USD");
        assert_eq!(
            money(-5_000, "EUR"),
            "-0.01 EUR",
            "half a cent rounds away from zero"
        );
        assert_eq!(money(-4_999, "EUR"), "0.00 EUR", "no minus sign on a zero");
        assert_eq!(money(0, "USD"), "0.00 USD");
        assert_eq!(money(12_500_000, "JPY"), "13 JPY");
        assert_eq!(money(1_234_500, "KWD"), "1.235 KWD");
        assert_eq!(money(1_000_000, "XYZ"), "1.00 XYZ", "an unknown code gets cents");
        assert_eq!(amount(2_500_000, "USD"), "2.50");
        assert_eq!(money(i64::MAX, "USD"), "9223372036854.78 USD");
    }

    #[test]
    fn machine_decimals_are_exact() {
        assert_eq!(micros_decimal(2_500), "0.002500");
        assert_eq!(micros_decimal(-12_500_000), "-12.500000");
        assert_eq!(micros_decimal(0), "0.000000");
        assert_eq!(micros_decimal(i64::MIN), "-9223372036854.775808");
        assert_eq!(bp_decimal(3333), "33.33");
        assert_eq!(bp_decimal(-50), "-0.50");
        assert_eq!(bp_decimal(10_000), "100.00");
    }

    #[test]
    fn minor_units_follow_the_currency() {
        assert_eq!(minor_units(1250, "usd"), "12.50 USD");
        assert_eq!(minor_units(500, "jpy"), "500 JPY", "yen have no decimals");
    }

    #[test]
    fn dispute_rates_are_over_charged_outcomes() {
        assert_eq!(dispute_rate(1, 0, 20), "1 (0 accepted) · 5.0%");
        assert_eq!(dispute_rate(0, 0, 0), "0 (0 accepted) · —");
    }

    #[test]
    fn percentages() {
        assert_eq!(ratio_bp(1, 3), Some(3333));
        assert_eq!(ratio_bp(2, 3), Some(6667));
        assert_eq!(ratio_bp(-1, 3), Some(-3333));
        assert_eq!(ratio_bp(1, 0), None);
        assert_eq!(percent_bp(3333), "33.3%");
        assert_eq!(percent_bp(3000), "30.0%");
        assert_eq!(percent_bp(-1250), "-12.5%");
        assert_eq!(percent_bp(10_000), "100.0%");
        assert_eq!(cu(1500), "1.500");
    }
}
