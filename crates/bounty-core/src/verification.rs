//! An agent's verification policy: which verifiers judge its output, how
//! their decisions combine, and the window in which the ticket source may
//! still confirm or reopen the outcome.
//!
//! ```json
//! {
//!   "mode": "all_of",
//!   "verifiers": [
//!     {"kind": "rules", "non_empty": true, "schema": true, "forbidden_phrases": ["as an AI"]},
//!     {"kind": "judge", "model": "small", "rubric": "Did the reply answer the question?", "threshold": 0.7},
//!     {"kind": "external"}
//!   ],
//!   "window_hours": 72,
//!   "lapse_decision": "pass"
//! }
//! ```
//!
//! **Nothing is billed unverified.** A policy always lists at least one
//! verifier: an explicitly empty list is refused (`verifiers`), and a
//! policy that does not say (no policy at all, or one without
//! `verifiers`) gets the industry's "assumed resolution" (Intercom Fin,
//! Zendesk): the reply must not be empty, and the ticket source has
//! [`DEFAULT_WINDOW_HOURS`] to reopen the ticket; a ticket not reopened in
//! that window is resolved ([`VerificationPolicy::default`]).

use serde::{Deserialize, Serialize};

use crate::verdict::{Decision, PolicyMode};

/// The policy. The default is the "assumed resolution": `rules
/// {non_empty}` then `external`, a 24-hour window that lapses to `pass`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationPolicy {
    /// How the verifiers' decisions combine (default `all_of`).
    #[serde(default)]
    pub mode: PolicyMode,
    /// The verifiers, in order (`first_decisive` stops at the first that
    /// decides); at least one. Absent: the default's (`rules {non_empty}`,
    /// `external`).
    #[serde(default = "default_verifiers")]
    pub verifiers: Vec<VerifierSpec>,
    /// How long after the agent finished the ticket source may still
    /// confirm or reopen the outcome, in hours (default 24).
    #[serde(default = "default_window_hours")]
    pub window_hours: u32,
    /// The decision when the window lapses with no signal, for outcomes
    /// still waiting on one (default `pass`: "no reopen means resolved").
    #[serde(default = "default_lapse")]
    pub lapse_decision: Decision,
    /// CSAT scores at or above this (1-5) confirm a waiting outcome; below
    /// it they fail it (default 4).
    #[serde(default = "default_csat_threshold")]
    pub csat_threshold: u8,
    /// Days after the window during which an operator may still reverse a
    /// resolved outcome as goodwill (default 0: no goodwill reversals).
    #[serde(default)]
    pub goodwill_days: u32,
}

/// The verification window when a policy does not set one, in hours.
pub const DEFAULT_WINDOW_HOURS: u32 = 24;

fn default_window_hours() -> u32 {
    DEFAULT_WINDOW_HOURS
}
/// The "assumed resolution": a reply that is not empty, which the ticket
/// source may still reopen within the window.
fn default_verifiers() -> Vec<VerifierSpec> {
    vec![
        VerifierSpec::Rules(RulesSpec {
            non_empty: true,
            ..RulesSpec::default()
        }),
        VerifierSpec::External(ExternalSpec {}),
    ]
}
fn default_lapse() -> Decision {
    Decision::Pass
}
fn default_csat_threshold() -> u8 {
    4
}

impl Default for VerificationPolicy {
    fn default() -> Self {
        VerificationPolicy {
            mode: PolicyMode::AllOf,
            verifiers: default_verifiers(),
            window_hours: default_window_hours(),
            lapse_decision: default_lapse(),
            csat_threshold: default_csat_threshold(),
            goodwill_days: 0,
        }
    }
}

/// One verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerifierSpec {
    /// Deterministic checks of the output text.
    Rules(RulesSpec),
    /// An LLM judge with a rubric; its answer is constrained to
    /// `{resolved, confidence, reason}`.
    Judge(JudgeSpec),
    /// A resolution signal from the ticket source (`solved`, `reopened`,
    /// `customer_confirmed`, `csat`), awaited within the window.
    External(ExternalSpec),
    /// The answer is grounded in the agent's knowledge: it cites at least
    /// one chunk retrieved for this turn (`[kc_…]`), and every chunk id it
    /// cites was retrieved.
    Grounded(GroundedSpec),
    /// Named tools were called in this turn and answered 2xx (for
    /// example, the refund was issued).
    ToolSucceeded(ToolSucceededSpec),
}

impl VerifierSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            VerifierSpec::Rules(_) => "rules",
            VerifierSpec::Judge(_) => "judge",
            VerifierSpec::External(_) => "external",
            VerifierSpec::Grounded(_) => "grounded",
            VerifierSpec::ToolSucceeded(_) => "tool_succeeded",
        }
    }
}

/// `grounded`: no settings of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroundedSpec {}

/// `tool_succeeded`: the tools that must have answered 2xx.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolSucceededSpec {
    /// Tool names (the agent's own tools), each of which must have been
    /// called with a 2xx answer.
    pub tools: Vec<String>,
}

/// Rules; every set rule must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    /// The output must be valid against the agent's output schema.
    #[serde(default)]
    pub schema: bool,
    /// Top-level fields the output (a JSON object) must have, non-null.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_fields: Vec<String>,
    /// Regular expressions the output must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_match: Vec<String>,
    /// Regular expressions the output must not match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_not_match: Vec<String>,
    /// Fewest characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Most characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Phrases that must not appear (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_phrases: Vec<String>,
    /// The reply must not be empty (whitespace only counts as empty).
    #[serde(default)]
    pub non_empty: bool,
}

/// An LLM judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// A configured model (local or remote).
    pub model: String,
    /// What "resolved" means for this agent.
    pub rubric: String,
    /// Least confidence (0 to 1) for a `resolved: true` to pass (default 0.5).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.5
}

/// An external signal; no settings of its own (the window is the policy's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalSpec {}

impl VerificationPolicy {
    /// Most verifiers in one policy.
    pub const MAX_VERIFIERS: usize = 8;

    /// Checks what needs no outside knowledge (regexes and models are
    /// checked by the runtime); the error names the field. The first of
    /// [`VerificationPolicy::problems`].
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every problem [`VerificationPolicy::validate`] checks for, as
    /// `(field, message)` in the order it checks them: the API answers the
    /// first, the dashboard's form shows them all.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut field = |name: String, msg: &str| problems.push((name, msg.to_owned()));
        if self.verifiers.is_empty() {
            field(
                "verifiers".into(),
                "must list at least one verifier: nothing is billed unverified (leave the policy out for the \
                 default, `rules {non_empty}` then `external`)",
            );
        }
        if self.verifiers.len() > Self::MAX_VERIFIERS {
            field("verifiers".into(), "may list at most 8 verifiers");
        }
        if self.window_hours == 0 || self.window_hours > 24 * 90 {
            field("window_hours".into(), "must be between 1 and 2160 (90 days)");
        }
        if self.lapse_decision == Decision::Pending {
            field("lapse_decision".into(), "must be `pass` or `fail`");
        }
        if !(1..=5).contains(&self.csat_threshold) {
            field("csat_threshold".into(), "must be between 1 and 5");
        }
        if self.goodwill_days > 365 {
            field("goodwill_days".into(), "must be at most 365");
        }
        if self
            .verifiers
            .iter()
            .filter(|v| matches!(v, VerifierSpec::External(_)))
            .count()
            > 1
        {
            field("verifiers".into(), "may list `external` once");
        }
        for (i, v) in self.verifiers.iter().enumerate() {
            match v {
                VerifierSpec::Rules(r) => {
                    if let (Some(min), Some(max)) = (r.min_length, r.max_length)
                        && min > max
                    {
                        field(format!("verifiers[{i}].min_length"), "must not exceed max_length");
                    }
                }
                VerifierSpec::Judge(j) => {
                    if !(j.threshold.is_finite() && (0.0..=1.0).contains(&j.threshold)) {
                        field(format!("verifiers[{i}].threshold"), "must be between 0 and 1");
                    }
                    if j.rubric.trim().is_empty() {
                        field(format!("verifiers[{i}].rubric"), "must not be empty");
                    }
                }
                VerifierSpec::External(_) | VerifierSpec::Grounded(_) => {}
                VerifierSpec::ToolSucceeded(t) => {
                    if t.tools.is_empty() {
                        field(format!("verifiers[{i}].tools"), "must name at least one tool");
                    }
                    for (j, name) in t.tools.iter().enumerate() {
                        if name.is_empty()
                            || name.len() > 64
                            || !name
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                        {
                            field(
                                format!("verifiers[{i}].tools[{j}]"),
                                "must be a tool name (1 to 64 letters, digits, `_` or `-`)",
                            );
                        }
                    }
                }
            }
        }
        problems
    }

    /// Whether the outcome waits for an external signal.
    pub fn has_external(&self) -> bool {
        self.verifiers
            .iter()
            .any(|v| matches!(v, VerifierSpec::External(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape_with_defaults() {
        let p: VerificationPolicy = serde_json::from_str(
            r#"{"verifiers": [{"kind": "rules", "non_empty": true}, {"kind": "judge", "model": "m", "rubric": "r"}, {"kind": "external"}]}"#,
        )
        .unwrap();
        assert_eq!(p.mode, PolicyMode::AllOf);
        assert_eq!(p.window_hours, DEFAULT_WINDOW_HOURS);
        assert_eq!(p.lapse_decision, Decision::Pass);
        assert!(p.has_external());
        assert!(p.validate().is_ok());
        assert!(serde_json::from_str::<VerificationPolicy>(r#"{"verifiers": [{"kind": "magic"}]}"#).is_err());
        assert!(serde_json::from_str::<VerificationPolicy>(r#"{"colour": 1}"#).is_err());
    }

    #[test]
    fn the_default_is_the_assumed_resolution() {
        let p = VerificationPolicy::default();
        assert_eq!(p.verifiers.len(), 2);
        assert!(matches!(&p.verifiers[0], VerifierSpec::Rules(r) if r.non_empty));
        assert!(p.has_external());
        assert_eq!(p.window_hours, 24);
        assert_eq!(p.lapse_decision, Decision::Pass);
        assert!(p.validate().is_ok());
        // A policy that leaves the verifiers out gets the default's.
        let p: VerificationPolicy = serde_json::from_str(r#"{"window_hours": 48}"#).unwrap();
        assert_eq!(p.verifiers, VerificationPolicy::default().verifiers);
        assert_eq!(p.window_hours, 48);
    }

    #[test]
    fn an_empty_verifier_list_is_refused() {
        let p: VerificationPolicy = serde_json::from_str(r#"{"verifiers": []}"#).unwrap();
        let (field, message) = p.validate().unwrap_err();
        assert_eq!(field, "verifiers");
        assert!(message.contains("at least one verifier"), "{message}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = VerificationPolicy {
            window_hours: 0,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "window_hours");
        p.window_hours = 1;
        p.verifiers = vec![VerifierSpec::Judge(JudgeSpec {
            model: "m".into(),
            rubric: "r".into(),
            threshold: 2.0,
        })];
        assert_eq!(p.validate().unwrap_err().0, "verifiers[0].threshold");
    }

    #[test]
    fn problems_lists_every_wrong_field_in_the_order_validate_checks() {
        let p = VerificationPolicy {
            window_hours: 0,
            csat_threshold: 9,
            verifiers: vec![
                VerifierSpec::Judge(JudgeSpec {
                    model: "m".into(),
                    rubric: " ".into(),
                    threshold: f64::NAN,
                }),
                VerifierSpec::External(ExternalSpec {}),
                VerifierSpec::External(ExternalSpec {}),
            ],
            ..Default::default()
        };
        let fields: Vec<String> = p.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "window_hours",
                "csat_threshold",
                "verifiers",
                "verifiers[0].threshold",
                "verifiers[0].rubric"
            ]
        );
        assert_eq!(p.validate().unwrap_err().0, "window_hours");
        assert!(VerificationPolicy::default().problems().is_empty());
    }
}
