//! Exact decimal strings to scaled integers and back.
//!
//! Prices arrive from config and APIs as decimal strings (`"0.15"`), and
//! money and compute units are stored as scaled integers. Going through a
//! float would round; this module converts digit by digit and refuses
//! anything that would lose precision or overflow.

use std::fmt;

/// Why a decimal string could not become a scaled integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `-?digits(.digits)?`.
    #[error("`{0}` is not a decimal number")]
    Malformed(String),
    /// More fractional digits than the scale can hold exactly.
    #[error("`{input}` has more than {max} decimal places")]
    TooPrecise {
        /// The input as given.
        input: String,
        /// The most decimal places the scale keeps.
        max: u32,
    },
    /// The value does not fit in an i64 at this scale.
    #[error("`{0}` is out of range")]
    OutOfRange(String),
}

/// Parses `s` into an integer count of `10^-places` units.
pub fn parse_scaled(s: &str, places: u32) -> Result<i64, DecimalError> {
    let malformed = || DecimalError::Malformed(s.to_owned());
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(malformed());
    }
    if digits.contains('.') && frac_part.is_empty() {
        return Err(malformed());
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > places as usize {
        return Err(DecimalError::TooPrecise {
            input: s.to_owned(),
            max: places,
        });
    }
    let out_of_range = || DecimalError::OutOfRange(s.to_owned());
    let scale = 10i128.pow(places);
    let mut value: i128 = 0;
    for b in int_part.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .filter(|v| *v <= i128::from(i64::MAX) + 1)
            .ok_or_else(out_of_range)?;
    }
    value = value.checked_mul(scale).ok_or_else(out_of_range)?;
    let mut frac: i128 = 0;
    for b in frac_trimmed.bytes() {
        frac = frac * 10 + i128::from(b - b'0');
    }
    frac *= 10i128.pow(places - frac_trimmed.len() as u32);
    value += frac;
    if negative {
        value = -value;
    }
    i64::try_from(value).map_err(|_| out_of_range())
}

/// Writes `value` (a count of `10^-places` units) as a decimal with exactly
/// `places` fractional digits.
pub fn write_scaled(f: &mut fmt::Formatter<'_>, value: i64, places: u32) -> fmt::Result {
    let scale = 10u64.pow(places);
    let abs = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    if places == 0 {
        return write!(f, "{sign}{abs}");
    }
    write!(
        f,
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = places as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Show(i64, u32);
    impl fmt::Display for Show {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_scaled(f, self.0, self.1)
        }
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_scaled("0.15", 6), Ok(150_000));
        assert_eq!(parse_scaled("12", 6), Ok(12_000_000));
        assert_eq!(parse_scaled("-1.5", 3), Ok(-1_500));
        assert_eq!(parse_scaled("0.000001", 6), Ok(1));
        assert_eq!(parse_scaled("1.2500000", 3), Ok(1_250));
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        assert!(matches!(
            parse_scaled("0.0000001", 6),
            Err(DecimalError::TooPrecise { .. })
        ));
        assert!(matches!(parse_scaled("1e5", 6), Err(DecimalError::Malformed(_))));
        assert!(matches!(parse_scaled("", 6), Err(DecimalError::Malformed(_))));
        assert!(matches!(parse_scaled(".5", 6), Err(DecimalError::Malformed(_))));
        assert!(matches!(parse_scaled("5.", 6), Err(DecimalError::Malformed(_))));
        assert!(matches!(parse_scaled("+5", 6), Err(DecimalError::Malformed(_))));
        assert!(matches!(
            parse_scaled("99999999999999999999", 0),
            Err(DecimalError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_scaled("9223372036854.775808", 6),
            Err(DecimalError::OutOfRange(_))
        ));
        assert_eq!(parse_scaled("-9223372036854.775808", 6), Ok(i64::MIN));
    }

    #[test]
    fn writes_fixed_places() {
        assert_eq!(Show(150_000, 6).to_string(), "0.150000");
        assert_eq!(Show(-1_500, 3).to_string(), "-1.500");
        assert_eq!(Show(i64::MIN, 6).to_string(), "-9223372036854.775808");
        assert_eq!(Show(42, 0).to_string(), "42");
    }

    proptest! {
        #[test]
        fn write_then_parse_round_trips(v: i64, places in 0u32..=9) {
            let s = Show(v, places).to_string();
            prop_assert_eq!(parse_scaled(&s, places), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}", places in 0u32..=9) {
            let _ = parse_scaled(&s, places);
        }
    }
}
