//! The period a figures page covers: `?from&to` (dates, both days
//! included, UTC), by default this calendar month up to today. The
//! overview and the usage page (and its CSV) read it the same way, so
//! they count the same outcomes.

use chrono::{Datelike, Duration, NaiveDate};

use crate::error::WebError;
use crate::pages::{day_start, parse_date};
use crate::state::WebState;

/// The longest period a page accepts.
const MAX_PERIOD_DAYS: i64 = 400;

/// A checked period, both days included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    pub(crate) from: NaiveDate,
    pub(crate) to: NaiveDate,
}

impl Period {
    /// The period `from`..=`to` from the query, defaulted and checked.
    pub(crate) fn parse(
        state: &WebState,
        from: &Option<String>,
        to: &Option<String>,
    ) -> Result<Period, WebError> {
        let today = state.store.now().date_naive();
        let month_start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
        let from = parse_date("from", from)?.unwrap_or(month_start);
        let to = parse_date("to", to)?.unwrap_or(today);
        if to < from {
            return Err(WebError::BadRequest("`to` must not be before `from`.".into()));
        }
        if (to - from).num_days() >= MAX_PERIOD_DAYS {
            return Err(WebError::BadRequest(format!(
                "The period may be at most {MAX_PERIOD_DAYS} days."
            )));
        }
        Ok(Period { from, to })
    }

    /// The period as instants: `[from's start, the day after to's start)`.
    pub(crate) fn bounds(&self) -> (bounty_core::Timestamp, bounty_core::Timestamp) {
        (day_start(self.from), day_start(self.to + Duration::days(1)))
    }

    /// The usage buckets of outcomes the account decided in the period
    /// (whole days: read from the store's daily rollup).
    pub(crate) async fn usage(
        &self,
        state: &WebState,
        account: bounty_core::AccountId,
        mode: bounty_core::ApiKeyMode,
    ) -> Result<Vec<bounty_store::UsageBucket>, WebError> {
        let (from, to) = self.bounds();
        Ok(state.store.usage(account, mode, from, to).await?)
    }
}
