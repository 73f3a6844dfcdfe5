//! Verdicts: what each verifier decided about a task's output, and how a
//! policy combines them into one decision.

use serde::{Deserialize, Serialize};

crate::stored_enum! {
    /// One verifier's decision.
    #[derive(Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Decision("decision") {
        /// The work is done.
        Pass = "pass",
        /// The work is not done.
        Fail = "fail",
        /// No decision yet: an external signal is awaited (its window is open).
        Pending = "pending",
    }
}

/// How a policy combines its verifiers' decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Every verifier must pass: one fail fails; otherwise one pending
    /// keeps it pending.
    #[default]
    AllOf,
    /// One pass is enough: one pass passes; otherwise one pending keeps it
    /// pending; all failing fails.
    AnyOf,
    /// In order, the first verifier that is not pending decides.
    FirstDecisive,
}

impl PolicyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::AllOf => "all_of",
            PolicyMode::AnyOf => "any_of",
            PolicyMode::FirstDecisive => "first_decisive",
        }
    }

    /// Combines decisions given in the policy's order. No verifiers at all
    /// (a pass-through policy) passes.
    pub fn combine(self, decisions: &[Decision]) -> Decision {
        if decisions.is_empty() {
            return Decision::Pass;
        }
        let any = |d: Decision| decisions.contains(&d);
        match self {
            PolicyMode::AllOf if any(Decision::Fail) => Decision::Fail,
            PolicyMode::AllOf if any(Decision::Pending) => Decision::Pending,
            PolicyMode::AllOf => Decision::Pass,
            PolicyMode::AnyOf if any(Decision::Pass) => Decision::Pass,
            PolicyMode::AnyOf if any(Decision::Pending) => Decision::Pending,
            PolicyMode::AnyOf => Decision::Fail,
            PolicyMode::FirstDecisive => decisions
                .iter()
                .copied()
                .find(|d| *d != Decision::Pending)
                .unwrap_or(Decision::Pending),
        }
    }

    /// Whether the decisions so far settle the result whatever the rest
    /// decide, so later (costly) verifiers can be skipped.
    pub fn settled(self, so_far: &[Decision]) -> bool {
        match self {
            PolicyMode::AllOf => so_far.contains(&Decision::Fail),
            PolicyMode::AnyOf => so_far.contains(&Decision::Pass),
            PolicyMode::FirstDecisive => so_far.iter().any(|d| *d != Decision::Pending),
        }
    }
}

/// One verifier's verdict, with the evidence a customer can audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifierVerdict {
    /// `rules`, `judge` or `external`.
    pub verifier: String,
    /// The verifier's implementation version, e.g. `rules/1`.
    pub version: String,
    pub decision: Decision,
    /// Why, in words: the rule that failed, the judge's reason, the signal.
    pub reason: String,
    /// SHA-256 (hex) of exactly what the verifier looked at.
    pub inputs_hash: String,
    /// The judge's confidence, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use Decision::*;

    #[test]
    fn combines_as_documented() {
        assert_eq!(PolicyMode::AllOf.combine(&[]), Pass);
        assert_eq!(PolicyMode::AllOf.combine(&[Pass, Pending]), Pending);
        assert_eq!(PolicyMode::AllOf.combine(&[Pending, Fail]), Fail);
        assert_eq!(PolicyMode::AnyOf.combine(&[Fail, Pending]), Pending);
        assert_eq!(PolicyMode::AnyOf.combine(&[Fail, Pass]), Pass);
        assert_eq!(PolicyMode::AnyOf.combine(&[Fail, Fail]), Fail);
        assert_eq!(PolicyMode::FirstDecisive.combine(&[Pending, Fail, Pass]), Fail);
        assert_eq!(PolicyMode::FirstDecisive.combine(&[Pending]), Pending);
    }

    fn decision() -> impl Strategy<Value = Decision> {
        prop_oneof![Just(Pass), Just(Fail), Just(Pending)]
    }

    proptest! {
        /// Once `settled` says so, no further decision changes the result.
        #[test]
        fn settled_means_final(
            mode in prop_oneof![Just(PolicyMode::AllOf), Just(PolicyMode::AnyOf), Just(PolicyMode::FirstDecisive)],
            head in proptest::collection::vec(decision(), 0..5),
            tail in proptest::collection::vec(decision(), 0..5),
        ) {
            if mode.settled(&head) {
                let mut all = head.clone();
                all.extend(tail);
                prop_assert_eq!(mode.combine(&head), mode.combine(&all));
            }
        }
    }
}
