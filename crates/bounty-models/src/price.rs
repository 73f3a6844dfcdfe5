//! What one model call costs, in integer micros.
//!
//! - Remote: `ceil((prompt × input + completion × output) / 1,000,000)`
//!   micros, where the prices are micros per million tokens.
//! - Local on CPU: `ceil(wall_ns × threads × rate / 10⁹)` micros, the rate
//!   being micros per CPU-second.
//! - Local on GPU: `ceil(wall_ns × rate / 10⁹)` micros.
//!
//! Intermediate products are saturating `i128`; rounding is always up, so a cost is
//! never under-counted. A result beyond `i64` saturates (it cannot happen
//! with real prices, and must not panic with absurd ones).

use std::time::Duration;

use bounty_core::Money;

use crate::config::Price;
use crate::types::Usage;

fn ceil_div(n: i128, d: i128) -> i128 {
    if n <= 0 { 0 } else { n / d + i128::from(n % d != 0) }
}

fn nanos(wall: Duration) -> i128 {
    i128::try_from(wall.as_nanos()).unwrap_or(i128::MAX)
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The cost of one call that used `usage` and took `wall` time.
pub fn cost(price: &Price, usage: Usage, wall: Duration) -> Money {
    let micros = match *price {
        Price::MillionTokens { input, output } => ceil_div(
            (i128::from(usage.prompt_tokens).saturating_mul(i128::from(input.micros))).saturating_add(
                i128::from(usage.completion_tokens).saturating_mul(i128::from(output.micros)),
            ),
            1_000_000,
        ),
        Price::CpuSecond { rate, threads } => ceil_div(
            nanos(wall)
                .saturating_mul(i128::from(threads))
                .saturating_mul(i128::from(rate.micros)),
            1_000_000_000,
        ),
        Price::GpuSecond { rate } => {
            ceil_div(nanos(wall).saturating_mul(i128::from(rate.micros)), 1_000_000_000)
        }
    };
    Money::from_micros(saturate(micros), price.currency())
}

#[cfg(test)]
mod tests {
    use bounty_core::Currency;

    use super::*;

    fn usd(amount: &str) -> Money {
        Money::parse_decimal(amount, "USD".parse::<Currency>().unwrap()).unwrap()
    }

    #[test]
    fn remote_cost_rounds_up_per_call() {
        let price = Price::MillionTokens {
            input: usd("0.15"),
            output: usd("0.60"),
        };
        // 1000 × 150000 + 500 × 600000 = 450,000,000 → 450 µ$
        let c = cost(
            &price,
            Usage {
                prompt_tokens: 1000,
                completion_tokens: 500,
            },
            Duration::ZERO,
        );
        assert_eq!(c.micros, 450);
        // 1 token of input at 0.15/M is 0.15 µ$: rounds up to 1.
        let c = cost(
            &price,
            Usage {
                prompt_tokens: 1,
                completion_tokens: 0,
            },
            Duration::ZERO,
        );
        assert_eq!(c.micros, 1);
        assert_eq!(cost(&price, Usage::default(), Duration::from_secs(9)).micros, 0);
    }

    #[test]
    fn local_cost_is_time_times_threads() {
        let price = Price::CpuSecond {
            rate: usd("0.0001"),
            threads: 4,
        };
        // 2.5 s × 4 threads × 100 µ$/s = 1000 µ$
        assert_eq!(
            cost(&price, Usage::default(), Duration::from_millis(2500)).micros,
            1000
        );
        let gpu = Price::GpuSecond { rate: usd("0.001") };
        assert_eq!(
            cost(&gpu, Usage::default(), Duration::from_millis(1500)).micros,
            1500
        );
        assert_eq!(cost(&gpu, Usage::default(), Duration::from_nanos(1)).micros, 1);
    }

    #[test]
    fn absurd_prices_saturate_instead_of_panicking() {
        let price = Price::MillionTokens {
            input: usd("9000000000000"),
            output: usd("9000000000000"),
        };
        let c = cost(
            &price,
            Usage {
                prompt_tokens: u64::MAX,
                completion_tokens: u64::MAX,
            },
            Duration::MAX,
        );
        assert_eq!(c.micros, i64::MAX);
    }
}
