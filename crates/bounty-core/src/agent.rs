//! Validated parts of an agent definition.
//!
//! An agent is referred to by id (`agt_…`) or by its name, so a name is a
//! slug that can never be mistaken for an id.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a part of an agent was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AgentFieldError(pub String);

fn err(msg: impl Into<String>) -> AgentFieldError {
    AgentFieldError(msg.into())
}

fn is_slug(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || extra.contains(&b))
}

/// An agent's name: 1-64 of `a-z 0-9 - _`, starting with a letter or
/// digit, and never `agt_…` (that spelling is an id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AgentName(String);

impl AgentName {
    pub fn parse(raw: &str) -> Result<Self, AgentFieldError> {
        let ok_start = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if raw.is_empty() || raw.len() > 64 || !ok_start || !is_slug(raw, &[]) {
            return Err(err(
                "must be 1-64 characters of lower-case letters, digits, - and _, starting with a letter or digit",
            ));
        }
        if raw.starts_with("agt_") {
            return Err(err(
                "must not start with `agt_`, which is how agent ids are spelled",
            ));
        }
        Ok(AgentName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a resolved task of this agent counts as: dotted lower-case words
/// such as `ticket.resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct OutcomeType(String);

impl OutcomeType {
    pub fn parse(raw: &str) -> Result<Self, AgentFieldError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.split('.').all(|part| !part.is_empty() && is_slug(part, &[]));
        if !ok {
            return Err(err(
                "must be dotted lower-case words of a-z 0-9 - _, like `ticket.resolved`",
            ));
        }
        Ok(OutcomeType(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for OutcomeType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        OutcomeType::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for OutcomeType {
    type Err = AgentFieldError;

    fn from_str(raw: &str) -> Result<Self, AgentFieldError> {
        OutcomeType::parse(raw)
    }
}

impl fmt::Display for OutcomeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The models an agent tries, in order; 1 to [`ModelRoute::MAX`] names,
/// no repeats. Whether each name is configured is checked by the caller,
/// which knows the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ModelRoute(Vec<String>);

impl ModelRoute {
    pub const MAX: usize = 8;

    pub fn parse(names: Vec<String>) -> Result<Self, AgentFieldError> {
        if names.is_empty() {
            return Err(err("must name at least one model"));
        }
        if names.len() > Self::MAX {
            return Err(err(format!("may name at most {} models", Self::MAX)));
        }
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() || name.len() > 64 {
                return Err(err(format!("model {i} must be 1-64 characters")));
            }
            if names[..i].contains(name) {
                return Err(err(format!("names model {name:?} twice")));
            }
        }
        Ok(ModelRoute(names))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// Generation overrides of an agent; unset ones take the model's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationParams {
    /// Most tokens to generate, 1-32768.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 (greedy) to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Sampler seed, for reproducible output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
}

impl GenerationParams {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, AgentFieldError)> {
        if let Some(m) = self.max_tokens
            && !(1..=32_768).contains(&m)
        {
            return Err(("max_tokens", err("must be between 1 and 32768")));
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err(("temperature", err("must be between 0 and 2")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs_and_never_ids() {
        assert!(AgentName::parse("support-bot_2").is_ok());
        for bad in ["", "Support", "-x", "a b", "agt_01", &"a".repeat(65), "é"] {
            assert!(AgentName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outcome_types_are_dotted_words() {
        assert!(OutcomeType::parse("ticket.resolved").is_ok());
        assert!(OutcomeType::parse("lead").is_ok());
        for bad in ["", ".x", "x.", "x..y", "Ticket.Resolved", "a b"] {
            assert!(OutcomeType::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn routes_are_bounded_and_unique() {
        assert!(ModelRoute::parse(vec!["a".into(), "b".into()]).is_ok());
        assert!(ModelRoute::parse(vec![]).is_err());
        assert!(ModelRoute::parse(vec!["a".into(), "a".into()]).is_err());
        assert!(ModelRoute::parse((0..9).map(|i| i.to_string()).collect()).is_err());
    }

    #[test]
    fn params_name_the_bad_field() {
        let p = GenerationParams {
            max_tokens: Some(0),
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "max_tokens");
        let p = GenerationParams {
            temperature: Some(f32::NAN),
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "temperature");
        assert!(GenerationParams::default().validate().is_ok());
    }
}
