//! The agent form: what a person types, and the checks that turn it into
//! an [`AgentSpec`] or an [`AgentPatch`].
//!
//! Every field goes through the API's own checks, [`bounty_agents::spec`]
//! (names, instructions, route, output schema, outcome type, verifier
//! policy). What is the form's own: reading text fields (comma-separated
//! models, JSON typed into a textarea, the window in its own field), and
//! where model names come from: the API asks its model registry, the
//! dashboard its `WebState::models` list ([`Configured`]; empty: any name).
//!
//! Unlike the API, the form reports every wrong field at once
//! ([`FieldErrors`]), so one submit shows everything to fix.
//!
//! A blank policy is the API's default (`rules {non_empty}` then
//! `external`, [`bounty_core::verification::DEFAULT_WINDOW_HOURS`]); an
//! empty `verifiers` list is refused by the same check the API runs
//! ([`bounty_core::VerificationPolicy::validate`]): nothing is billed
//! unverified. JSON typed into the schema or policy may not spell a NUL
//! character (`\u0000`), which Postgres cannot store.

use bounty_agents::spec::{self, AgentSpecError, DEFAULT_OUTCOME_TYPE, KnownModels};
use bounty_core::verification::DEFAULT_WINDOW_HOURS;
use bounty_core::{ModelRoute, VerificationPolicy};
use bounty_store::{Agent, AgentPatch, AgentSpec};
use serde::Deserialize;

use crate::pages::field_errors::FieldErrors;

/// The models the dashboard offers: its configured list, or any name when
/// the list is empty (no models configured: nothing to check).
pub(crate) struct Configured<'a>(pub(crate) &'a [String]);

impl KnownModels for Configured<'_> {
    fn knows(&self, name: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|m| m == name)
    }
}

/// What the form says of a refused field: the check's message (the field
/// is where the form shows it).
fn message(e: AgentSpecError) -> String {
    match e {
        AgentSpecError::UnknownModel { model, .. } => format!("names no configured model ({model:?})"),
        AgentSpecError::Invalid { message, .. } => message,
    }
}

/// The form's fields in page order, with their labels.
pub(crate) const FIELDS: [(&str, &str); 7] = [
    ("name", "Name"),
    ("instructions", "Instructions"),
    ("model_route", "Model route"),
    ("outcome_type", "Outcome type"),
    ("output_schema", "Output schema"),
    ("verifier_policy", "Verifier policy"),
    ("window_hours", "Verification window"),
];

/// The form's fields, as posted. Every field is text, so a bad value is
/// shown back as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AgentForm {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) instructions: String,
    /// Comma-separated model names, tried in order.
    #[serde(default)]
    pub(crate) model_route: String,
    #[serde(default)]
    pub(crate) outcome_type: String,
    /// A JSON Schema, or blank for none.
    #[serde(default)]
    pub(crate) output_schema: String,
    /// The policy as JSON without `window_hours`, or blank for the default
    /// (`rules {non_empty}` then `external`).
    #[serde(default)]
    pub(crate) verifier_policy: String,
    #[serde(default)]
    pub(crate) window_hours: String,
}

impl AgentForm {
    /// A blank form for a new agent, with the defaults filled in.
    pub(crate) fn blank() -> AgentForm {
        AgentForm {
            outcome_type: DEFAULT_OUTCOME_TYPE.to_owned(),
            window_hours: DEFAULT_WINDOW_HOURS.to_string(),
            ..AgentForm::default()
        }
    }

    /// The form filled with an agent's version, as an edit starts.
    pub(crate) fn of(agent: &Agent) -> AgentForm {
        let mut policy = serde_json::to_value(&agent.verifier_policy).unwrap_or_default();
        if let Some(o) = policy.as_object_mut() {
            o.remove("window_hours");
        }
        AgentForm {
            name: agent.name.clone(),
            instructions: agent.instructions.clone(),
            model_route: agent.model_route.join(", "),
            outcome_type: agent.outcome_type.to_string(),
            output_schema: agent
                .output_schema
                .as_ref()
                .and_then(|s| serde_json::to_string_pretty(s).ok())
                .unwrap_or_default(),
            verifier_policy: serde_json::to_string_pretty(&policy).unwrap_or_default(),
            window_hours: agent.verifier_policy.window_hours.to_string(),
        }
    }

    /// Every field checked; the spec of a new version, or every error.
    pub(crate) fn parse(&self, models: &[String]) -> Result<AgentSpec, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = spec::name(self.name.trim()).map_err(|e| errors.add("name", message(e)));
        let instructions =
            spec::instructions(&self.instructions).map_err(|e| errors.add("instructions", message(e)));
        let route = self.route(models).map_err(|e| errors.add("model_route", e));
        let outcome = spec::outcome_type(match self.outcome_type.trim() {
            "" => DEFAULT_OUTCOME_TYPE,
            raw => raw,
        })
        .map_err(|e| errors.add("outcome_type", message(e)));
        let schema = self.schema().map_err(|e| errors.add("output_schema", e));
        let window = match self.window_hours.trim().parse::<u32>() {
            Ok(w) => Some(w),
            Err(_) => {
                errors.add("window_hours", "must be a whole number of hours, 1 to 2160");
                None
            }
        };
        let policy = self.policy(models, window, &mut errors);
        match (name, instructions, route, outcome, schema, policy) {
            (
                Ok(name),
                Ok(instructions),
                Ok(model_route),
                Ok(outcome_type),
                Ok(output_schema),
                Some(verifier_policy),
            ) if errors.is_empty() => Ok(AgentSpec {
                name,
                instructions,
                model_route,
                output_schema,
                outcome_type,
                verifier_policy,
                params: Default::default(),
                routing: Default::default(),
            }),
            _ => Err(errors),
        }
    }

    /// The update an edit makes: every field of the form, the generation
    /// parameters and the routing policy (set through the API) kept as
    /// they are.
    pub(crate) fn patch(&self, models: &[String]) -> Result<AgentPatch, FieldErrors> {
        let spec = self.parse(models)?;
        Ok(AgentPatch {
            name: Some(spec.name),
            instructions: Some(spec.instructions),
            model_route: Some(spec.model_route),
            output_schema: Some(spec.output_schema),
            outcome_type: Some(spec.outcome_type),
            verifier_policy: Some(spec.verifier_policy),
            params: None,
            routing: None,
        })
    }

    fn route(&self, models: &[String]) -> Result<ModelRoute, String> {
        let names: Vec<String> = self
            .model_route
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        spec::model_route(names.clone(), &Configured(models)).map_err(|e| match e {
            AgentSpecError::UnknownModel { model, .. } => format!(
                "model {} ({model:?}) is not a configured model; configured: {}",
                names.iter().position(|n| *n == model).unwrap_or(0) + 1,
                models.join(", ")
            ),
            AgentSpecError::Invalid { message, .. } => message,
        })
    }

    fn schema(&self) -> Result<Option<serde_json::Value>, String> {
        let raw = self.output_schema.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("is not valid JSON: {e}"))?;
        spec::output_schema(value).map(Some).map_err(message)
    }

    /// The policy from its JSON and the window field. Errors go to
    /// `verifier_policy`, except the window's own, which go to
    /// `window_hours`; `None` when there is any.
    fn policy(
        &self,
        models: &[String],
        window: Option<u32>,
        errors: &mut FieldErrors,
    ) -> Option<VerificationPolicy> {
        let raw = self.verifier_policy.trim();
        let mut value = if raw.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(v) => v,
                Err(e) => {
                    errors.add("verifier_policy", format!("is not valid JSON: {e}"));
                    return None;
                }
            }
        };
        if let Some(path) = bounty_core::text::nul_path(&value) {
            errors.add(
                "verifier_policy",
                format!("must not contain a NUL character (at `{path}`)"),
            );
            return None;
        }
        let Some(object) = value.as_object_mut() else {
            errors.add(
                "verifier_policy",
                "must be a JSON object, like {\"verifiers\": [{\"kind\": \"rules\", \"non_empty\": true}]}",
            );
            return None;
        };
        if object.contains_key("window_hours") {
            errors.add(
                "verifier_policy",
                "must not set `window_hours`: use the verification window field",
            );
            return None;
        }
        object.insert(
            "window_hours".to_owned(),
            serde_json::Value::from(window.unwrap_or(DEFAULT_WINDOW_HOURS)),
        );
        let policy: VerificationPolicy = match serde_json::from_value(value) {
            Ok(p) => p,
            Err(e) => {
                errors.add("verifier_policy", format!("is not a verifier policy: {e}"));
                return None;
            }
        };
        let check = |p: &VerificationPolicy| spec::verifier_policy(p.clone(), &Configured(models));
        let mut result = check(&policy);
        if let Err(e) = &result
            && e.field() == "verifier_policy.window_hours"
        {
            errors.add("window_hours", message(e.clone()));
            // The window is checked first: check the rest with a good one,
            // so its problems show on the same submit.
            let mut rest = policy.clone();
            rest.window_hours = DEFAULT_WINDOW_HOURS;
            result = check(&rest);
        }
        match result {
            Ok(_) if errors.get("window_hours").is_none() => Some(policy),
            Ok(_) => None,
            Err(e) => {
                let path = e.field().to_owned();
                errors.add("verifier_policy", format!("`{path}` {}", message(e)));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(models: &[&str]) -> Vec<String> {
        models.iter().map(|m| (*m).to_owned()).collect()
    }

    fn form() -> AgentForm {
        AgentForm {
            name: "support".into(),
            instructions: "Answer.".into(),
            model_route: "small, large".into(),
            ..AgentForm::blank()
        }
    }

    #[test]
    fn a_good_form_parses_with_the_window_in_the_policy() {
        let s = names(&["small", "large"]);
        let mut f = form();
        f.window_hours = "24".into();
        f.verifier_policy = r#"{"mode": "any_of", "verifiers": [{"kind": "judge", "model": "large", "rubric": "Resolved?"}]}"#.into();
        let spec = f.parse(&s).unwrap();
        assert_eq!(spec.model_route.names(), ["small", "large"]);
        assert_eq!(spec.verifier_policy.window_hours, 24);
        assert_eq!(spec.outcome_type.as_str(), "ticket.resolved");
    }

    #[test]
    fn every_wrong_field_is_named() {
        let s = names(&["small"]);
        let f = AgentForm {
            name: "Not A Name".into(),
            model_route: "small, huge".into(),
            output_schema: "[1]".into(),
            verifier_policy: r#"{"verifiers": [{"kind": "judge", "model": "huge", "rubric": "ok?"}]}"#.into(),
            window_hours: "0".into(),
            ..AgentForm::blank()
        };
        let e = f.parse(&s).unwrap_err();
        assert!(e.get("name").is_some());
        assert!(e.get("model_route").unwrap().contains("\"huge\""));
        assert!(e.get("output_schema").unwrap().contains("JSON Schema object"));
        assert!(e.get("window_hours").is_some(), "{e:?}");
        let f = AgentForm {
            verifier_policy: r#"{"verifiers": [{"kind": "judge", "model": "huge", "rubric": "ok?"}]}"#.into(),
            ..form()
        };
        let s = names(&["small", "large"]);
        let e = f.parse(&s).unwrap_err();
        assert_eq!(
            e.get("verifier_policy"),
            Some("`verifier_policy.verifiers[0].model` names no configured model (\"huge\")")
        );
    }

    #[test]
    fn judges_are_checked_one_by_one_and_other_checks_still_run() {
        let s = names(&[]);
        let two_judges = r#"{"verifiers": [
            {"kind": "judge", "model": "any", "rubric": "ok?"},
            {"kind": "rules", "must_match": ["("]}]}"#;
        let f = AgentForm {
            verifier_policy: two_judges.into(),
            ..form()
        };
        let e = f.parse(&s).unwrap_err();
        let msg = e.get("verifier_policy").unwrap();
        assert!(
            msg.starts_with("`verifier_policy.verifiers[1].must_match[0]`"),
            "{msg}"
        );
        let f = AgentForm {
            verifier_policy: r#"{"window_hours": 5}"#.into(),
            ..form()
        };
        assert!(
            f.parse(&s)
                .unwrap_err()
                .get("verifier_policy")
                .unwrap()
                .contains("window")
        );
    }

    #[test]
    fn a_blank_policy_is_the_default_and_an_empty_list_is_refused() {
        let s = names(&["small", "large"]);
        let spec = form().parse(&s).unwrap();
        assert_eq!(spec.verifier_policy, VerificationPolicy::default());
        assert_eq!(spec.verifier_policy.window_hours, DEFAULT_WINDOW_HOURS);
        let f = AgentForm {
            verifier_policy: r#"{"verifiers": []}"#.into(),
            ..form()
        };
        let e = f.parse(&s).unwrap_err();
        let msg = e.get("verifier_policy").unwrap();
        assert!(
            msg.starts_with("`verifier_policy.verifiers` must list at least one verifier"),
            "{msg}"
        );
        let f = AgentForm {
            verifier_policy: r#"{"verifiers": [{"kind": "rules", "forbidden_phrases": ["a\u0000"]}]}"#.into(),
            output_schema: r#"{"type": "object", "title": "\u0000"}"#.into(),
            ..form()
        };
        let e = f.parse(&s).unwrap_err();
        assert!(e.get("verifier_policy").unwrap().contains("NUL"), "{e:?}");
        assert!(e.get("output_schema").unwrap().contains("NUL"), "{e:?}");
    }

    #[test]
    fn an_agent_fills_the_form_back() {
        let policy = VerificationPolicy {
            window_hours: 12,
            ..Default::default()
        };
        let agent = Agent {
            id: bounty_core::AgentId::new(),
            account_id: bounty_core::AccountId::new(),
            version: 2,
            current_version: 2,
            name: "support".into(),
            instructions: "Answer.".into(),
            model_route: vec!["a".into(), "b".into()],
            output_schema: Some(serde_json::json!({"type": "object"})),
            outcome_type: "ticket.resolved".parse().expect("an outcome type"),
            verifier_policy: policy,
            params: Default::default(),
            routing: Default::default(),
            created_at: chrono::Utc::now(),
            version_created_at: chrono::Utc::now(),
        };
        let f = AgentForm::of(&agent);
        assert_eq!(f.model_route, "a, b");
        assert_eq!(f.window_hours, "12");
        assert!(!f.verifier_policy.contains("window_hours"));
        assert!(f.output_schema.contains("\"object\""));
    }
}
