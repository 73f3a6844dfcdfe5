//! An agent's definition, checked: the one set of checks behind the API's
//! `POST`/`PATCH /v1/agents` and the dashboard's agent form.
//!
//! Each part of an [`bounty_store::AgentSpec`] has its check here, which
//! turns what a client or a person wrote into the typed part or an
//! [`AgentSpecError`] naming the field. The API stops at the first error
//! and maps it to its codes (`unknown_model`, `validation_failed`); the
//! form runs them all and shows every error at once. Where model names
//! come from is the caller's ([`KnownModels`]): the server's model
//! registry, or the dashboard's configured list.

use bounty_core::{AgentName, GenerationParams, ModelRoute, OutcomeType, RoutingPolicy, VerificationPolicy};
use bounty_models::ModelRegistry;

use crate::OutputSchema;

/// Most characters of an agent's `instructions`.
pub const MAX_INSTRUCTIONS_CHARS: usize = 32_000;
/// The outcome type of an agent that names none.
pub const DEFAULT_OUTCOME_TYPE: &str = "ticket.resolved";

/// The model names an agent may use.
pub trait KnownModels {
    /// Whether `name` is a configured model.
    fn knows(&self, name: &str) -> bool;
}

impl KnownModels for ModelRegistry {
    fn knows(&self, name: &str) -> bool {
        self.contains(name)
    }
}

/// A refused part of an agent's definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentSpecError {
    /// `field` names a model that is not configured (`model_route[1]`,
    /// `routing.shadow.model`).
    #[error("`{field}` names no configured model ({model:?})")]
    UnknownModel { field: String, model: String },
    /// Any other refused value.
    #[error("`{field}` {message}")]
    Invalid { field: String, message: String },
}

impl AgentSpecError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AgentSpecError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field at fault, as the API names it (`verifier_policy.verifiers[0].model`).
    pub fn field(&self) -> &str {
        match self {
            AgentSpecError::UnknownModel { field, .. } | AgentSpecError::Invalid { field, .. } => field,
        }
    }
}

/// The agent's name: a slug that cannot look like an id.
pub fn name(raw: &str) -> Result<AgentName, AgentSpecError> {
    AgentName::parse(raw).map_err(|e| AgentSpecError::invalid("name", e.to_string()))
}

/// The system prompt, at most [`MAX_INSTRUCTIONS_CHARS`].
pub fn instructions(raw: &str) -> Result<String, AgentSpecError> {
    if raw.chars().count() > MAX_INSTRUCTIONS_CHARS {
        return Err(AgentSpecError::invalid(
            "instructions",
            format!("must be at most {MAX_INSTRUCTIONS_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// The model route: configured models, tried in order.
pub fn model_route(names: Vec<String>, models: &dyn KnownModels) -> Result<ModelRoute, AgentSpecError> {
    if let Some((i, model)) = names.iter().enumerate().find(|(_, n)| !models.knows(n)) {
        return Err(AgentSpecError::UnknownModel {
            field: format!("model_route[{i}]"),
            model: model.clone(),
        });
    }
    ModelRoute::parse(names).map_err(|e| AgentSpecError::invalid("model_route", e.to_string()))
}

/// An output JSON Schema: no NUL character (Postgres cannot store one),
/// and it compiles.
pub fn output_schema(value: serde_json::Value) -> Result<serde_json::Value, AgentSpecError> {
    if let Some(path) = bounty_core::text::nul_path(&value) {
        return Err(AgentSpecError::invalid(
            "output_schema",
            format!("must not contain a NUL character (at `{path}`)"),
        ));
    }
    OutputSchema::compile(&value).map_err(|e| AgentSpecError::invalid("output_schema", e))?;
    Ok(value)
}

/// What a resolved task counts as.
pub fn outcome_type(raw: &str) -> Result<OutcomeType, AgentSpecError> {
    OutcomeType::parse(raw).map_err(|e| AgentSpecError::invalid("outcome_type", e.to_string()))
}

/// The verification policy ([`crate::verify::validate_policy`]): a judge
/// naming an unconfigured model is `Invalid` at
/// `verifier_policy.verifiers[i].model`, as the API has always answered.
/// The first of [`verifier_policy_errors`].
pub fn verifier_policy(
    policy: VerificationPolicy,
    models: &dyn KnownModels,
) -> Result<VerificationPolicy, AgentSpecError> {
    match verifier_policy_errors(&policy, models).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(policy),
    }
}

/// Every refused part of the verification policy, in the order
/// [`verifier_policy`] checks them (it answers the first): how the
/// dashboard's policy form shows them all at once. Empty: accepted.
pub fn verifier_policy_errors(policy: &VerificationPolicy, models: &dyn KnownModels) -> Vec<AgentSpecError> {
    crate::verify::policy_problems(policy, models)
        .into_iter()
        .map(|(field, message)| AgentSpecError::Invalid { field, message })
        .collect()
}

/// Generation parameters within their bounds.
pub fn params(p: GenerationParams) -> Result<GenerationParams, AgentSpecError> {
    p.validate()
        .map_err(|(field, e)| AgentSpecError::invalid(format!("params.{field}"), e.to_string()))?;
    Ok(p)
}

/// The routing policy; its shadow model must be configured.
pub fn routing(r: RoutingPolicy, models: &dyn KnownModels) -> Result<RoutingPolicy, AgentSpecError> {
    r.validate()
        .map_err(|e| AgentSpecError::invalid(e.field, e.message))?;
    if let Some(shadow) = &r.shadow
        && !models.knows(&shadow.model)
    {
        return Err(AgentSpecError::UnknownModel {
            field: "routing.shadow.model".to_owned(),
            model: shadow.model.clone(),
        });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Only(&'static [&'static str]);

    impl KnownModels for Only {
        fn knows(&self, name: &str) -> bool {
            self.0.contains(&name)
        }
    }

    #[test]
    fn an_unknown_model_names_its_place_in_the_route() {
        let models = Only(&["small", "large"]);
        let route = model_route(vec!["small".into(), "large".into()], &models).unwrap();
        assert_eq!(route.names(), ["small", "large"]);
        assert_eq!(
            model_route(vec!["small".into(), "huge".into()], &models),
            Err(AgentSpecError::UnknownModel {
                field: "model_route[1]".into(),
                model: "huge".into()
            })
        );
        assert_eq!(model_route(vec![], &models).unwrap_err().field(), "model_route");
    }

    #[test]
    fn each_check_names_its_field() {
        let models = Only(&["small"]);
        assert_eq!(name("Not A Name").unwrap_err().field(), "name");
        assert!(instructions(&"x".repeat(MAX_INSTRUCTIONS_CHARS)).is_ok());
        assert_eq!(
            instructions(&"x".repeat(MAX_INSTRUCTIONS_CHARS + 1))
                .unwrap_err()
                .field(),
            "instructions"
        );
        assert_eq!(
            outcome_type(DEFAULT_OUTCOME_TYPE).unwrap().as_str(),
            "ticket.resolved"
        );
        let nul = serde_json::json!({"type": "object", "title": "\u{0}"});
        let e = output_schema(nul).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        assert_eq!(
            output_schema(serde_json::json!([1])).unwrap_err().field(),
            "output_schema"
        );
        let judge: VerificationPolicy = serde_json::from_value(serde_json::json!({
            "verifiers": [{"kind": "judge", "model": "huge", "rubric": "ok?"}]
        }))
        .unwrap();
        assert_eq!(
            verifier_policy(judge, &models),
            Err(AgentSpecError::Invalid {
                field: "verifier_policy.verifiers[0].model".into(),
                message: "names no configured model (\"huge\")".into()
            })
        );
        assert!(verifier_policy(VerificationPolicy::default(), &models).is_ok());
    }
}
