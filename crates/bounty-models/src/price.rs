//! What one model call costs, in integer micros.
//!
//! - Remote: `ceil((uncached × input + cached × cached_input + visible ×
//!   output + reasoning × reasoning_rate) / 1,000,000)` micros, where the
//!   prices are micros per million tokens, `cached` is the share of the
//!   prompt the provider read from its cache (`uncached = prompt −
//!   cached`) and `reasoning` the share of the completion spent on hidden
//!   reasoning (`visible = completion − reasoning`). Each token is priced
//!   exactly once, at its own rate; a provider's own `usage.cost` is never
//!   read. A sub-count larger than its total is clamped to the total.
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
        Price::MillionTokens {
            input,
            output,
            cached_input,
            reasoning,
        } => {
            let cached = usage.cached_tokens.min(usage.prompt_tokens);
            let thinking = usage.reasoning_tokens.min(usage.completion_tokens);
            let lines = [
                (usage.prompt_tokens - cached, input),
                (cached, cached_input),
                (usage.completion_tokens - thinking, output),
                (thinking, reasoning),
            ];
            let total = lines.iter().fold(0i128, |sum, (tokens, rate)| {
                sum.saturating_add(i128::from(*tokens).saturating_mul(i128::from(rate.micros)))
            });
            ceil_div(total, 1_000_000)
        }
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
            cached_input: usd("0.15"),
            reasoning: usd("0.60"),
        };
        // 1000 × 150000 + 500 × 600000 = 450,000,000 → 450 µ$
        let c = cost(&price, Usage::tokens(1000, 500), Duration::ZERO);
        assert_eq!(c.micros, 450);
        // 1 token of input at 0.15/M is 0.15 µ$: rounds up to 1.
        let c = cost(&price, Usage::tokens(1, 0), Duration::ZERO);
        assert_eq!(c.micros, 1);
        assert_eq!(cost(&price, Usage::default(), Duration::from_secs(9)).micros, 0);
    }

    #[test]
    fn cached_and_reasoning_tokens_are_priced_once_at_their_own_rates() {
        let price = Price::MillionTokens {
            input: usd("2.50"),
            output: usd("10"),
            cached_input: usd("1.25"),
            reasoning: usd("12"),
        };
        // 1000 prompt of which 400 cached, 500 completion of which 200
        // reasoning: 600 × 2.5 + 400 × 1.25 + 300 × 10 + 200 × 12
        // = 1500 + 500 + 3000 + 2400 = 7400 µ$.
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            cached_tokens: 400,
            reasoning_tokens: 200,
        };
        assert_eq!(cost(&price, usage, Duration::ZERO).micros, 7400);
        // Without details, every token is at the plain rates.
        assert_eq!(
            cost(&price, Usage::tokens(1000, 500), Duration::ZERO).micros,
            2500 + 5000
        );
        // A sub-count above its total (a provider bug) is clamped, never
        // negative and never counted twice.
        let odd = Usage {
            prompt_tokens: 10,
            completion_tokens: 10,
            cached_tokens: 50,
            reasoning_tokens: 50,
        };
        // 10 cached × 1.25 + 10 reasoning × 12 = 132.5 → 133 µ$.
        assert_eq!(cost(&price, odd, Duration::ZERO).micros, 133);
        assert_eq!(
            cost(&price, odd, Duration::ZERO),
            cost(
                &price,
                Usage {
                    cached_tokens: 10,
                    reasoning_tokens: 10,
                    ..odd
                },
                Duration::ZERO
            )
        );
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
            cached_input: usd("9000000000000"),
            reasoning: usd("9000000000000"),
        };
        let c = cost(
            &price,
            Usage {
                prompt_tokens: u64::MAX,
                completion_tokens: u64::MAX,
                cached_tokens: u64::MAX,
                reasoning_tokens: u64::MAX,
            },
            Duration::MAX,
        );
        assert_eq!(c.micros, i64::MAX);
    }
}
