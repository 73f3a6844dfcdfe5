//! Disputes: a customer contests a charged outcome, and the operator (or
//! the plan's dispute policy) accepts or rejects it. An accepted dispute
//! reverses the charge through the outcome's ordinary reversal path; a
//! rejected one keeps it, with the operator's reason shown to the
//! customer. Each dispute carries an evidence pack fixed when it opens.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

crate::stored_enum! {
    /// Where a dispute stands.
    pub enum DisputeStatus("dispute status") {
        /// Waiting for the operator.
        Open = "open",
        /// Accepted: the charge is reversed.
        Accepted = "accepted",
        /// Rejected: the charge stands.
        Rejected = "rejected",
    }
}

crate::stored_enum! {
    /// Why the customer contests the charge.
    pub enum DisputeReason("dispute reason") {
        /// The ticket was not actually resolved.
        NotResolved = "not_resolved",
        /// The answer was wrong or harmful.
        WrongAnswer = "wrong_answer",
        /// The same ticket was charged more than once.
        Duplicate = "duplicate",
        /// Anything else; the comment says what.
        Other = "other",
    }
}

/// The plan's dispute policy: a dispute is accepted at once, with no
/// operator, when it comes within `within_days` of the charge and the
/// account's accepted disputes this month, this one included, stay at or
/// under `max_accepted_bp` of its charged outcomes this month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputePolicy {
    /// Days after the charge within which a dispute may be auto-accepted,
    /// 1 to 365.
    pub auto_accept_within_days: u32,
    /// The most accepted disputes a month may hold, in basis points of the
    /// month's charged outcomes (500 = 5%), 0 to 10000.
    pub max_accepted_bp: u32,
}

impl DisputePolicy {
    /// The first field that is out of range, and why.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(1..=365).contains(&self.auto_accept_within_days) {
            return Err(("auto_accept_within_days", "must be 1 to 365"));
        }
        if self.max_accepted_bp > 10_000 {
            return Err(("max_accepted_bp", "must be 0 to 10000"));
        }
        Ok(())
    }
}

/// The month's figures the policy weighs, without this dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisputeMonth {
    /// Disputes accepted so far this month.
    pub accepted: i64,
    /// Outcomes charged this month (resolved, or resolved and reversed since).
    pub charged: i64,
}

/// Whether `policy` accepts, on its own, a dispute opened at `now` of a
/// charge made at `charged_at`.
pub fn auto_accepts(
    policy: Option<&DisputePolicy>,
    charged_at: Timestamp,
    now: Timestamp,
    month: DisputeMonth,
) -> bool {
    let Some(p) = policy else {
        return false;
    };
    if now - charged_at > Duration::days(i64::from(p.auto_accept_within_days)) {
        return false;
    }
    let after = i128::from(month.accepted.max(0)) + 1;
    after * 10_000 <= i128::from(p.max_accepted_bp) * i128::from(month.charged.max(0))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 5, day, 12, 0, 0).unwrap()
    }

    const P: DisputePolicy = DisputePolicy {
        auto_accept_within_days: 7,
        max_accepted_bp: 1_000,
    };

    #[test]
    fn only_recent_disputes_under_the_rate_are_accepted_on_their_own() {
        let month = |accepted, charged| DisputeMonth { accepted, charged };
        // No policy: every dispute waits for the operator.
        assert!(!auto_accepts(None, at(1), at(2), month(0, 100)));
        // 1 of 10 charged is 10%: at the limit, accepted.
        assert!(auto_accepts(Some(&P), at(1), at(2), month(0, 10)));
        // A second would make 20%: it waits.
        assert!(!auto_accepts(Some(&P), at(1), at(2), month(1, 10)));
        // 7 days after the charge still counts; 8 do not.
        assert!(auto_accepts(Some(&P), at(1), at(8), month(0, 10)));
        assert!(!auto_accepts(Some(&P), at(1), at(9), month(0, 10)));
        // Nothing charged this month: no room at all.
        assert!(!auto_accepts(Some(&P), at(1), at(2), month(0, 0)));
    }

    #[test]
    fn policies_are_checked_and_names_round_trip() {
        assert!(P.validate().is_ok());
        let bad = DisputePolicy {
            auto_accept_within_days: 0,
            ..P
        };
        assert_eq!(
            bad.validate(),
            Err(("auto_accept_within_days", "must be 1 to 365"))
        );
        let bad = DisputePolicy {
            max_accepted_bp: 10_001,
            ..P
        };
        assert_eq!(bad.validate().unwrap_err().0, "max_accepted_bp");
        for r in DisputeReason::ALL {
            assert_eq!(r.as_str().parse::<DisputeReason>().unwrap(), *r);
        }
        assert!(
            "angry"
                .parse::<DisputeReason>()
                .unwrap_err()
                .to_string()
                .contains("`not_resolved`")
        );
    }
}
