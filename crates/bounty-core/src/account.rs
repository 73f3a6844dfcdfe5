//! Validated names for accounts, API keys and integrations, and an
//! account's billing status.
//!
//! Names are shown in the dashboard and in logs, so they are trimmed,
//! bounded and free of control characters (NUL among them, which Postgres
//! refuses) before anything stores them. One rule (`parse_name`) serves
//! every kind of name; each kind only sets its length.

use std::fmt;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// Contains a control character (newline, tab, NUL, …).
    #[error("must not contain control characters")]
    ControlCharacter,
}

fn parse_name(raw: &str, max: usize) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > max {
        return Err(NameError::TooLong(max));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(name.to_owned())
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The most characters a name may have.
            pub const MAX_CHARS: usize = $max;

            /// Trims and validates `raw`.
            pub fn parse(raw: &str) -> Result<Self, NameError> {
                parse_name(raw, $max).map($name)
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// An account's display name (`Acme Corp`).
    AccountName,
    200
);
name_type!(
    /// An API key's label (`production`, `ci`).
    KeyName,
    100
);
name_type!(
    /// An integration's label (`Zendesk (EU)`).
    IntegrationName,
    100
);
name_type!(
    /// A knowledge source's label (`Help center`).
    KnowledgeName,
    100
);

crate::stored_enum! {
    /// Where an account stands with billing, as Stripe's events say.
    pub enum AccountStatus("account status") {
        /// In good standing.
        Active = "active",
        /// An invoice payment failed; work goes on while Stripe retries.
        PastDue = "past_due",
        /// The subscription ended: new tasks are refused (402
        /// `account_suspended`); queued and running work finishes.
        Suspended = "suspended",
    }
}

impl AccountStatus {
    /// Whether new tasks may be submitted.
    pub const fn takes_new_tasks(self) -> bool {
        !matches!(self, AccountStatus::Suspended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_suspended_refuses_tasks() {
        for st in [
            AccountStatus::Active,
            AccountStatus::PastDue,
            AccountStatus::Suspended,
        ] {
            assert_eq!(st.as_str().parse::<AccountStatus>(), Ok(st));
            assert_eq!(st.takes_new_tasks(), st != AccountStatus::Suspended);
        }
        assert!("closed".parse::<AccountStatus>().is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(AccountName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert_eq!(AccountName::parse("   "), Err(NameError::Empty));
        assert_eq!(AccountName::parse("a\nb"), Err(NameError::ControlCharacter));
        assert!(KeyName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(KeyName::parse(&"é".repeat(101)), Err(NameError::TooLong(100)));
        assert_eq!(
            IntegrationName::parse(" Zendesk (EU) ").unwrap().as_str(),
            "Zendesk (EU)"
        );
        assert_eq!(
            IntegrationName::parse("a\u{0}b"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(IntegrationName::parse("\t"), Err(NameError::Empty));
    }
}
