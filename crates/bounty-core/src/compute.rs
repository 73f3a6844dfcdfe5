//! Compute units: the unit a resolved outcome is billed in.
//!
//! A compute unit (CU) is what the customer's plan prices; a resolved
//! outcome earns some number of them and a failed one earns zero. They are
//! stored as `i64` milli-CU so that fractional units (1.250 CU) stay exact.

use std::fmt;

use crate::decimal::{self, DecimalError};

/// Milli-CU in one CU.
pub const MILLI_PER_CU: i64 = 1_000;

/// An exact number of compute units, held as milli-CU.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ComputeUnits(i64);

impl ComputeUnits {
    /// No compute units: what every failed outcome earns.
    pub const ZERO: ComputeUnits = ComputeUnits(0);

    /// From milli-CU.
    pub const fn from_milli(milli: i64) -> Self {
        ComputeUnits(milli)
    }

    /// Whole CU, refusing overflow.
    pub fn from_whole(cu: i64) -> Option<Self> {
        cu.checked_mul(MILLI_PER_CU).map(ComputeUnits)
    }

    /// Parses an exact decimal (`"1.25"`), at most three decimal places.
    pub fn parse_decimal(s: &str) -> Result<Self, DecimalError> {
        decimal::parse_scaled(s, 3).map(ComputeUnits)
    }

    /// The exact decimal, without the unit (`"1.250"`).
    pub fn decimal(self) -> String {
        struct Show(i64);
        impl fmt::Display for Show {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                decimal::write_scaled(f, self.0, 3)
            }
        }
        Show(self.0).to_string()
    }

    /// The value in milli-CU.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(ComputeUnits)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(ComputeUnits)
    }

    /// `self × n`, or `None` on overflow.
    pub fn checked_mul(self, n: i64) -> Option<Self> {
        self.0.checked_mul(n).map(ComputeUnits)
    }
}

impl fmt::Display for ComputeUnits {
    /// `1.250 CU`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        decimal::write_scaled(f, self.0, 3)?;
        f.write_str(" CU")
    }
}

impl fmt::Debug for ComputeUnits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_fractions() {
        assert_eq!(ComputeUnits::parse_decimal("1.25").unwrap().milli(), 1_250);
        assert_eq!(ComputeUnits::from_whole(3).unwrap().to_string(), "3.000 CU");
        assert!(ComputeUnits::parse_decimal("0.0005").is_err());
        assert_eq!(ComputeUnits::from_whole(i64::MAX), None);
    }

    #[test]
    fn overflow_is_none() {
        let max = ComputeUnits::from_milli(i64::MAX);
        assert_eq!(max.checked_add(ComputeUnits::from_milli(1)), None);
        assert_eq!(
            ComputeUnits::from_milli(i64::MIN).checked_sub(ComputeUnits::from_milli(1)),
            None
        );
        assert_eq!(max.checked_mul(2), None);
    }

    proptest! {
        #[test]
        fn add_is_commutative_and_checked(a: i64, b: i64) {
            let (x, y) = (ComputeUnits::from_milli(a), ComputeUnits::from_milli(b));
            prop_assert_eq!(x.checked_add(y), y.checked_add(x));
            let wide = i128::from(a) + i128::from(b);
            prop_assert_eq!(x.checked_add(y).map(|c| i128::from(c.milli())), i64::try_from(wide).ok().map(i128::from));
        }

        #[test]
        fn display_round_trips(a: i64) {
            let c = ComputeUnits::from_milli(a);
            let s = c.to_string();
            prop_assert_eq!(ComputeUnits::parse_decimal(s.strip_suffix(" CU").unwrap()).unwrap(), c);
        }
    }
}
