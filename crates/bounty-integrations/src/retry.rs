//! When to try a failed reply again.
//!
//! Replies follow the [Standard Webhooks retry
//! schedule](https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
//! ten tries spread over about three days, the first immediate, so a vendor
//! outage of a day is ridden out and a dead endpoint is given up on within
//! a bounded time. The function is pure: the caller owns the clock and the
//! randomness, and stores `now + delay` on the outbox row.
//!
//! Each step is jittered by ±10% so that replies which failed together
//! (one vendor outage) do not all come back in the same second. A rate
//! limit is honoured: the delay is never shorter than the vendor's
//! `Retry-After`, but a `Retry-After` is capped at [`MAX_RETRY_AFTER`] so a
//! confused vendor cannot park a reply for a year.

use std::time::Duration;

use crate::reply::ReplyError;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

/// The wait before each try, counted from the failure of the one before:
/// `SCHEDULE[0]` is the first try (immediately), `SCHEDULE[n]` the wait
/// after try `n` failed. Ten tries in all.
pub const SCHEDULE: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * MINUTE),
    Duration::from_secs(30 * MINUTE),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(5 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(14 * HOUR),
    Duration::from_secs(20 * HOUR),
    Duration::from_secs(24 * HOUR),
];

/// The longest `Retry-After` honoured: the longest step of the schedule.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * HOUR);

/// How far a step may be moved either way, in thousandths of it.
const JITTER_PERMILLE: u32 = 100;

/// The wait before the next try on `schedule` (an operator's, or
/// [`SCHEDULE`]), after try `attempt_just_failed` (1-based) failed with
/// `error`; `None` when there is to be no next try: the schedule
/// is spent, or the error is permanent ([`ReplyError::Gone`],
/// [`ReplyError::Rejected`], [`ReplyError::Config`]).
///
/// `jitter` is a uniform draw from `0..1` by the caller: 0 waits 10% less
/// than the step, 0.5 exactly the step, 1 10% more (out-of-range values are
/// clamped, NaN reads as 0.5). For [`ReplyError::RateLimited`] the wait is
/// the larger of the jittered step and the `Retry-After` (capped at
/// [`MAX_RETRY_AFTER`]).
pub fn next_delay(
    schedule: &[Duration],
    attempt_just_failed: u32,
    error: &ReplyError,
    jitter: f64,
) -> Option<Duration> {
    if !error.is_transient() {
        return None;
    }
    let step = *schedule.get(usize::try_from(attempt_just_failed).ok()?)?;
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // Whole thousandths, so a step is exact to the millisecond, never off by float rounding.
    let spread = (f64::from(2 * JITTER_PERMILLE) * jitter).round() as u32;
    let step = step * (1000 - JITTER_PERMILLE + spread) / 1000;
    match error {
        ReplyError::RateLimited {
            retry_after: Some(after),
        } => Some(step.max((*after).min(MAX_RETRY_AFTER))),
        _ => Some(step),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> ReplyError {
        ReplyError::Transient("zendesk update ticket: answered 503".into())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn an_operators_schedule_replaces_the_default() {
        let schedule = [Duration::ZERO, secs(1), secs(2)];
        assert_eq!(next_delay(&schedule, 1, &transient(), 0.5), Some(secs(1)));
        assert_eq!(next_delay(&schedule, 2, &transient(), 0.5), Some(secs(2)));
        // Three tries in all: none after the third.
        assert_eq!(next_delay(&schedule, 3, &transient(), 0.5), None);
        assert_eq!(next_delay(&[], 1, &transient(), 0.5), None);
    }

    #[test]
    fn the_schedule_is_standard_webhooks() {
        assert_eq!(
            SCHEDULE.map(|d| d.as_secs()),
            [0, 5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400]
        );
    }

    #[test]
    fn every_step_at_middle_jitter_is_the_schedule() {
        let expected = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];
        for (failed, want) in (1u32..).zip(expected) {
            assert_eq!(
                next_delay(&SCHEDULE, failed, &transient(), 0.5),
                Some(secs(want)),
                "after try {failed}"
            );
        }
    }

    #[test]
    fn steps_are_jittered_by_ten_percent_either_way() {
        // After try 2 the step is 5 minutes.
        assert_eq!(next_delay(&SCHEDULE, 2, &transient(), 0.0), Some(secs(270)));
        assert_eq!(next_delay(&SCHEDULE, 2, &transient(), 1.0), Some(secs(330)));
        assert_eq!(next_delay(&SCHEDULE, 2, &transient(), 0.25), Some(secs(285)));
        // After try 1 the step is 5 s.
        assert_eq!(
            next_delay(&SCHEDULE, 1, &transient(), 0.0),
            Some(Duration::from_millis(4500))
        );
        assert_eq!(
            next_delay(&SCHEDULE, 1, &transient(), 1.0),
            Some(Duration::from_millis(5500))
        );
        // Out of range and NaN are tamed.
        assert_eq!(next_delay(&SCHEDULE, 2, &transient(), -3.0), Some(secs(270)));
        assert_eq!(next_delay(&SCHEDULE, 2, &transient(), 7.0), Some(secs(330)));
        assert_eq!(next_delay(&SCHEDULE, 2, &transient(), f64::NAN), Some(secs(300)));
    }

    #[test]
    fn the_first_immediate_try_is_never_jittered() {
        // "After try 0" is the first try itself: immediate, whatever the draw.
        for jitter in [0.0, 0.5, 1.0] {
            assert_eq!(
                next_delay(&SCHEDULE, 0, &transient(), jitter),
                Some(Duration::ZERO)
            );
        }
    }

    #[test]
    fn the_schedule_runs_out_after_ten_tries() {
        assert!(next_delay(&SCHEDULE, 9, &transient(), 0.5).is_some());
        for failed in [10, 11, 100, u32::MAX] {
            assert_eq!(next_delay(&SCHEDULE, failed, &transient(), 0.5), None, "{failed}");
            let limited = ReplyError::RateLimited {
                retry_after: Some(secs(1)),
            };
            assert_eq!(next_delay(&SCHEDULE, failed, &limited, 0.5), None, "{failed}");
        }
    }

    #[test]
    fn permanent_errors_are_never_retried() {
        let permanent = [
            ReplyError::Gone,
            ReplyError::Rejected {
                status: 401,
                message: "zendesk update ticket: Couldn't authenticate you".into(),
            },
            ReplyError::Config("the base URL must be http or https".into()),
        ];
        for error in permanent {
            for failed in [1, 5] {
                assert_eq!(next_delay(&SCHEDULE, failed, &error, 0.5), None, "{error:?}");
            }
        }
    }

    #[test]
    fn retry_after_wins_when_longer_than_the_step() {
        let limited = |after| ReplyError::RateLimited { retry_after: after };
        // Longer than the 5 s step: the vendor's word.
        assert_eq!(
            next_delay(&SCHEDULE, 1, &limited(Some(secs(90))), 0.5),
            Some(secs(90))
        );
        // Shorter than the 30 min step: the step.
        assert_eq!(
            next_delay(&SCHEDULE, 3, &limited(Some(secs(90))), 0.5),
            Some(secs(1800))
        );
        // The step's jitter applies, the Retry-After is exact.
        assert_eq!(
            next_delay(&SCHEDULE, 3, &limited(Some(secs(90))), 0.0),
            Some(secs(1620))
        );
        assert_eq!(
            next_delay(&SCHEDULE, 1, &limited(Some(secs(90))), 1.0),
            Some(secs(90))
        );
        // No Retry-After: the schedule.
        assert_eq!(next_delay(&SCHEDULE, 2, &limited(None), 0.5), Some(secs(300)));
        // A year is capped at a day.
        assert_eq!(
            next_delay(&SCHEDULE, 1, &limited(Some(secs(365 * 86_400))), 0.5),
            Some(MAX_RETRY_AFTER)
        );
    }
}
