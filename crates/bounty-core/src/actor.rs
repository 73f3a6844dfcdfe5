//! Who made an outcome's event: recorded on every receipt event, so a
//! reversal always says whose decision it was.
//!
//! A customer's API key may send the ticket source's signals; only an
//! operator reverses a charge as goodwill; the worker decides verdicts and
//! the window decides lapses. The stored form is `kind:detail`
//! (`api_key:key_…`, `integration:int_…`, `operator:alice`, `worker`,
//! `window`), parsed back by [`Actor::from_str`].

use std::fmt;
use std::str::FromStr;

use crate::id::{ApiKeyId, IntegrationId, UserId};

/// Longest operator name kept on a receipt.
pub const MAX_OPERATOR_CHARS: usize = 64;

/// The maker of an outcome event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A request authenticated by one of the account's API keys.
    ApiKey(ApiKeyId),
    /// A verified delivery from one of the account's helpdesk integrations.
    Integration(IntegrationId),
    /// A dashboard user of the account.
    User(UserId),
    /// An operator of this Bounty (the CLI, the operator console), by name.
    Operator(String),
    /// The worker that ran the task and its verifiers.
    Worker,
    /// The end of the verification window (the lapse decision).
    Window,
    /// The plan's dispute policy, accepting a dispute on its own.
    DisputePolicy,
}

/// An operator name that is empty, too long, or not printable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an operator name must be 1 to {MAX_OPERATOR_CHARS} printable characters without `:`")]
pub struct BadOperator;

impl Actor {
    /// An operator actor, checked: 1 to 64 printable characters, no `:`.
    pub fn operator(name: &str) -> Result<Actor, BadOperator> {
        let name = name.trim();
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_OPERATOR_CHARS
            && name.chars().all(|c| !c.is_control() && c != ':');
        if ok {
            Ok(Actor::Operator(name.to_owned()))
        } else {
            Err(BadOperator)
        }
    }

    /// Words for a receipt: "an operator (alice)", "the helpdesk (int_…)".
    pub fn describe(&self) -> String {
        match self {
            Actor::ApiKey(k) => format!("the account's API key {k}"),
            Actor::Integration(i) => format!("the helpdesk integration {i}"),
            Actor::User(u) => format!("the account's user {u}"),
            Actor::Operator(name) => format!("an operator ({name})"),
            Actor::Worker => "the verifiers".to_owned(),
            Actor::Window => "the verification window".to_owned(),
            Actor::DisputePolicy => "the plan's dispute policy".to_owned(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::ApiKey(k) => write!(f, "api_key:{k}"),
            Actor::Integration(i) => write!(f, "integration:{i}"),
            Actor::User(u) => write!(f, "user:{u}"),
            Actor::Operator(name) => write!(f, "operator:{name}"),
            Actor::Worker => f.write_str("worker"),
            Actor::Window => f.write_str("window"),
            Actor::DisputePolicy => f.write_str("dispute_policy"),
        }
    }
}

/// Not a stored actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an actor")]
pub struct BadActor(pub String);

impl FromStr for Actor {
    type Err = BadActor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadActor(s.to_owned());
        match s.split_once(':') {
            None if s == "worker" => Ok(Actor::Worker),
            None if s == "window" => Ok(Actor::Window),
            None if s == "dispute_policy" => Ok(Actor::DisputePolicy),
            Some(("api_key", k)) => k.parse().map(Actor::ApiKey).map_err(|_| bad()),
            Some(("integration", i)) => i.parse().map(Actor::Integration).map_err(|_| bad()),
            Some(("user", u)) => u.parse().map(Actor::User).map_err(|_| bad()),
            Some(("operator", name)) => Actor::operator(name).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_actor_round_trips_through_its_stored_form() {
        for actor in [
            Actor::ApiKey(ApiKeyId::new()),
            Actor::Integration(IntegrationId::new()),
            Actor::User(UserId::new()),
            Actor::operator("alice").unwrap(),
            Actor::Worker,
            Actor::Window,
            Actor::DisputePolicy,
        ] {
            assert_eq!(actor.to_string().parse::<Actor>().unwrap(), actor);
        }
    }

    #[test]
    fn bad_operator_names_and_stored_forms_are_refused() {
        assert!(Actor::operator("").is_err());
        assert!(Actor::operator("a:b").is_err());
        assert!(Actor::operator("nul\0").is_err());
        assert!(Actor::operator(&"x".repeat(65)).is_err());
        assert!("operator:".parse::<Actor>().is_err());
        assert!("api_key:nope".parse::<Actor>().is_err());
        assert!("someone".parse::<Actor>().is_err());
    }
}
