//! The injectable clock.
//!
//! Every rule that depends on time (lease expiry, retry schedules, the
//! verdict window, "last used" throttling) reads a [`Clock`] handed to it,
//! never the system time directly, so tests move time instead of sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, DurationRound, Utc};

/// A UTC instant with microsecond precision: the finest both SQLite text
/// timestamps and Postgres `timestamptz` round-trip exactly.
pub type Timestamp = DateTime<Utc>;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, truncated to microseconds.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Mutex::new(truncate_to_micros(at)))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = truncate_to_micros(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drops sub-microsecond precision.
pub fn truncate_to_micros(t: Timestamp) -> Timestamp {
    t.duration_trunc(Duration::microseconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(start);
        let t0 = clock.now();
        assert_eq!(t0.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::seconds(90));
        assert_eq!(clock.now() - t0, Duration::seconds(90));
    }

    #[test]
    fn system_clock_has_no_sub_micro_digits() {
        assert_eq!(SystemClock.now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
