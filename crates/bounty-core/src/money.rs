//! Money: integer micros of one ISO 4217 currency.
//!
//! A float never comes near money. Amounts are `i64` millionths of the
//! currency's major unit (1 USD = 1_000_000 micros), which is exact for
//! every price per token we have met and leaves ±9.2 trillion of headroom.
//! Arithmetic is checked: overflow and mixing currencies are errors, not
//! wrap-arounds.

use std::fmt;
use std::str::FromStr;

use crate::decimal::{self, DecimalError};

/// Micros in one major unit of any currency.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// Why a money operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The result does not fit in i64 micros.
    #[error("money arithmetic overflowed")]
    Overflow,
    /// Not a three-letter ISO 4217 code.
    #[error("`{0}` is not a three-letter ISO 4217 currency code")]
    BadCurrency(String),
    /// The amount string is not an exact decimal.
    #[error(transparent)]
    Decimal(#[from] DecimalError),
}

/// An ISO 4217 currency code, stored upper case (`USD`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars.
    pub const USD: Currency = Currency(*b"USD");
    /// Euros.
    pub const EUR: Currency = Currency(*b"EUR");

    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Decimal places of the currency's minor unit, as Stripe counts them:
    /// 0 for zero-decimal currencies (JPY), 3 for BHD/JOD/KWD/OMR/TND, 2
    /// for the rest.
    pub fn minor_exponent(&self) -> u32 {
        const ZERO: [&str; 16] = [
            "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
            "XOF", "XPF",
        ];
        const THREE: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];
        if ZERO.contains(&self.as_str()) {
            0
        } else if THREE.contains(&self.as_str()) {
            3
        } else {
            2
        }
    }
}

impl Money {
    /// The amount in the currency's minor units (cents), rounded half up
    /// (away from zero): what a payment processor can represent.
    pub fn to_minor_units(&self) -> i64 {
        let per_minor = 10_i64.pow(6 - self.currency.minor_exponent());
        let whole = self.micros / per_minor;
        let rest = self.micros % per_minor;
        if rest.abs() * 2 >= per_minor {
            whole + self.micros.signum()
        } else {
            whole
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Accepts any case (`usd`, `USD`); Stripe speaks lower case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::BadCurrency(s.to_owned()));
        }
        Ok(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An exact amount of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Money {
    /// Millionths of the major unit; negative for credits and refunds.
    pub micros: i64,
    /// The currency the micros are of.
    pub currency: Currency,
}

impl Money {
    /// An amount from micros.
    pub const fn from_micros(micros: i64, currency: Currency) -> Self {
        Money { micros, currency }
    }

    /// Zero of `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Money { micros: 0, currency }
    }

    /// Parses an exact decimal amount of the major unit (`"0.15"`).
    pub fn parse_decimal(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let micros = decimal::parse_scaled(amount, 6)?;
        Ok(Money { micros, currency })
    }

    /// Whether the amount is zero.
    pub const fn is_zero(&self) -> bool {
        self.micros == 0
    }

    /// `self + other`, refusing overflow and mixed currencies.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let micros = self
            .micros
            .checked_add(other.micros)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { micros, ..self })
    }

    /// `self - other`, refusing overflow and mixed currencies.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let micros = self
            .micros
            .checked_sub(other.micros)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { micros, ..self })
    }

    /// `self × n`, refusing overflow.
    pub fn checked_mul(self, n: i64) -> Result<Money, MoneyError> {
        let micros = self.micros.checked_mul(n).ok_or(MoneyError::Overflow)?;
        Ok(Money { micros, ..self })
    }

    /// `-self`, refusing overflow.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let micros = self.micros.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money { micros, ..self })
    }

    /// The sum of `items`, all of `currency`.
    pub fn checked_sum(
        currency: Currency,
        items: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

impl fmt::Display for Money {
    /// `12.345678 USD`: every micro shown, so display never rounds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        decimal::write_scaled(f, self.micros, 6)?;
        write!(f, " {}", self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(micros: i64) -> Money {
        Money::from_micros(micros, Currency::USD)
    }

    #[test]
    fn minor_units_round_half_up() {
        let usd = |micros| Money {
            micros,
            currency: Currency::USD,
        };
        assert_eq!(usd(1_000_000).to_minor_units(), 100);
        assert_eq!(usd(4_999).to_minor_units(), 0);
        assert_eq!(usd(5_000).to_minor_units(), 1);
        assert_eq!(usd(-5_000).to_minor_units(), -1);
        assert_eq!(usd(123_456_789).to_minor_units(), 12_346);
        let jpy = Money {
            micros: 1_500_000,
            currency: "jpy".parse().unwrap(),
        };
        assert_eq!(jpy.to_minor_units(), 2);
        let kwd = Money {
            micros: 1_234_567,
            currency: "KWD".parse().unwrap(),
        };
        assert_eq!(kwd.to_minor_units(), 1_235);
    }

    #[test]
    fn currency_parses_any_case_and_refuses_junk() {
        assert_eq!("usd".parse::<Currency>().unwrap(), Currency::USD);
        assert_eq!("Eur".parse::<Currency>().unwrap(), Currency::EUR);
        for bad in ["", "US", "USDT", "U$D", "üsd"] {
            assert!(bad.parse::<Currency>().is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(usd(1).checked_add(usd(2)), Ok(usd(3)));
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_sub(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MAX).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        let eur = Money::from_micros(1, Currency::EUR);
        assert_eq!(
            usd(1).checked_add(eur),
            Err(MoneyError::CurrencyMismatch(Currency::USD, Currency::EUR))
        );
    }

    #[test]
    fn displays_every_micro() {
        assert_eq!(usd(12_345_678).to_string(), "12.345678 USD");
        assert_eq!(usd(-5).to_string(), "-0.000005 USD");
        assert_eq!(Money::parse_decimal("0.15", Currency::USD).unwrap(), usd(150_000));
    }

    #[test]
    fn serde_shape_is_stable() {
        let json = serde_json::to_value(usd(1_500_000)).unwrap();
        assert_eq!(json, serde_json::json!({"micros": 1_500_000, "currency": "USD"}));
        let back: Money = serde_json::from_value(json).unwrap();
        assert_eq!(back, usd(1_500_000));
        assert!(serde_json::from_str::<Money>(r#"{"micros":1.5,"currency":"USD"}"#).is_err());
    }

    proptest! {
        #[test]
        fn add_matches_wide_arithmetic(a: i64, b: i64) {
            let wide = i128::from(a) + i128::from(b);
            match usd(a).checked_add(usd(b)) {
                Ok(m) => prop_assert_eq!(i128::from(m.micros), wide),
                Err(e) => {
                    prop_assert_eq!(e, MoneyError::Overflow);
                    prop_assert!(i64::try_from(wide).is_err());
                }
            }
        }

        #[test]
        fn sub_undoes_add(a in -(1i64 << 60)..(1i64 << 60), b in -(1i64 << 60)..(1i64 << 60)) {
            let sum = usd(a).checked_add(usd(b)).unwrap();
            prop_assert_eq!(sum.checked_sub(usd(b)).unwrap(), usd(a));
        }

        #[test]
        fn mul_matches_wide_arithmetic(a: i64, n: i64) {
            let wide = i128::from(a) * i128::from(n);
            match usd(a).checked_mul(n) {
                Ok(m) => prop_assert_eq!(i128::from(m.micros), wide),
                Err(_) => prop_assert!(i64::try_from(wide).is_err()),
            }
        }

        #[test]
        fn sum_is_order_independent(mut xs in proptest::collection::vec(-(1i64 << 50)..(1i64 << 50), 0..50)) {
            let forward = Money::checked_sum(Currency::USD, xs.iter().copied().map(usd)).unwrap();
            xs.reverse();
            let backward = Money::checked_sum(Currency::USD, xs.iter().copied().map(usd)).unwrap();
            prop_assert_eq!(forward, backward);
        }

        #[test]
        fn display_then_parse_round_trips(a: i64) {
            let shown = usd(a).to_string();
            let amount = shown.strip_suffix(" USD").unwrap();
            prop_assert_eq!(Money::parse_decimal(amount, Currency::USD).unwrap(), usd(a));
        }
    }
}
