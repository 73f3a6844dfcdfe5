//! The agent form: what a person types, and the checks that turn it into
//! an [`AgentSpec`] or an [`AgentPatch`].
//!
//! Every field goes through the API's own checks, [`bounty_agents::spec`]
//! (names, instructions, route, output schema, outcome type, verifier
//! policy). What is the form's own: reading text fields (comma-separated
//! models, a JSON Schema typed into a textarea, the verifier policy's
//! fields, [`PolicyForm`]), and where model names come from: the API asks
//! its model registry, the dashboard its `WebState::models` list
//! ([`Configured`]; empty: any name).
//!
//! Unlike the API, the form reports every wrong field at once
//! ([`FieldErrors`]), so one submit shows everything to fix. A new agent's
//! form starts with the API's default policy (`rules {non_empty}` then
//! `external`, [`bounty_core::verification::DEFAULT_WINDOW_HOURS`]);
//! removing every verifier is refused by the same check the API runs
//! ([`bounty_core::VerificationPolicy::validate`]): nothing is billed
//! unverified. JSON typed into the schema may not spell a NUL character
//! (`\u0000`), which Postgres cannot store.

use bounty_agents::spec::{self, AgentSpecError, DEFAULT_OUTCOME_TYPE, KnownModels};
use bounty_core::{ModelRoute, VerificationPolicy};
use bounty_store::{Agent, AgentPatch, AgentSpec};
use serde::Deserialize;

use crate::pages::field_errors::FieldErrors;
use crate::pages::policy_form::PolicyForm;

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
pub(crate) fn message(e: AgentSpecError) -> String {
    match e {
        AgentSpecError::UnknownModel { model, .. } => format!("names no configured model ({model:?})"),
        AgentSpecError::Invalid { message, .. } => message,
    }
}

/// The agent's own fields in page order, with their labels; the policy's
/// follow ([`AgentForm::fields`]).
const FIELDS: [(&str, &str); 5] = [
    ("name", "Name"),
    ("instructions", "Instructions"),
    ("model_route", "Model route"),
    ("outcome_type", "Outcome type"),
    ("output_schema", "Output schema"),
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
    /// The verifier policy's fields.
    #[serde(flatten)]
    pub(crate) policy: PolicyForm,
}

impl AgentForm {
    /// A blank form for a new agent, with the defaults filled in (the
    /// default policy among them).
    pub(crate) fn blank() -> AgentForm {
        AgentForm {
            outcome_type: DEFAULT_OUTCOME_TYPE.to_owned(),
            policy: PolicyForm::of(&VerificationPolicy::default()),
            ..AgentForm::default()
        }
    }

    /// The form filled with an agent's version, as an edit starts.
    pub(crate) fn of(agent: &Agent) -> AgentForm {
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
            policy: PolicyForm::of(&agent.verifier_policy),
        }
    }

    /// Every field in page order, with its label, for the error summary.
    pub(crate) fn fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = FIELDS
            .iter()
            .map(|(id, label)| ((*id).to_owned(), (*label).to_owned()))
            .collect();
        out.extend(self.policy.fields());
        out
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
        let policy = self.policy.parse(models, &mut errors);
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
                tools: Vec::new(),
                knowledge: Vec::new(),
                max_steps: bounty_store::DEFAULT_MAX_STEPS,
                handoff: false,
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
            tools: None,
            knowledge: None,
            max_steps: None,
            handoff: None,
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
}

#[cfg(test)]
mod tests {
    use bounty_core::verification::{JudgeSpec, RulesSpec};
    use bounty_core::{PolicyMode, VerifierSpec};

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
    fn a_good_form_parses_with_its_policy() {
        let s = names(&["small", "large"]);
        let mut f = form();
        f.policy.window_hours = "48".into();
        f.policy.mode = "any_of".into();
        f.policy.rows[2].kind = "judge".into();
        f.policy.rows[2].model = "large".into();
        f.policy.rows[2].rubric = "Resolved?".into();
        let spec = f.parse(&s).unwrap();
        assert_eq!(spec.model_route.names(), ["small", "large"]);
        assert_eq!(spec.verifier_policy.window_hours, 48);
        assert_eq!(spec.verifier_policy.mode, PolicyMode::AnyOf);
        assert_eq!(spec.verifier_policy.verifiers.len(), 3);
        assert_eq!(spec.outcome_type.as_str(), "ticket.resolved");
    }

    #[test]
    fn every_wrong_field_is_named() {
        let s = names(&["small"]);
        let mut f = AgentForm {
            name: "Not A Name".into(),
            model_route: "small, huge".into(),
            output_schema: "[1]".into(),
            ..AgentForm::blank()
        };
        f.policy.window_hours = "0".into();
        f.policy.rows[2].kind = "judge".into();
        f.policy.rows[2].model = "huge".into();
        f.policy.rows[2].rubric = "ok?".into();
        let e = f.parse(&s).unwrap_err();
        assert!(e.get("name").is_some());
        assert!(e.get("model_route").unwrap().contains("\"huge\""));
        assert!(e.get("output_schema").unwrap().contains("JSON Schema object"));
        assert_eq!(
            e.get("window_hours"),
            Some("must be between 1 and 2160 (90 days)")
        );
        assert_eq!(
            e.get("verifiers[2].model"),
            Some("names no configured model (\"huge\")")
        );
        let labels: Vec<String> = f.fields().into_iter().map(|(_, l)| l).collect();
        assert!(
            labels.contains(&"Verifier 3: judge model".to_owned()),
            "{labels:?}"
        );
        let summary = e.summary(&f.fields());
        assert_eq!(summary[0].label, "Name", "the summary is in page order");
        assert!(summary.iter().any(|l| l.field == "verifiers[2].model"));
    }

    #[test]
    fn a_new_agent_starts_with_the_default_policy() {
        let s = names(&["small", "large"]);
        let spec = form().parse(&s).unwrap();
        assert_eq!(spec.verifier_policy, VerificationPolicy::default());
        let mut f = form();
        f.output_schema = r#"{"type": "object", "title": "\u0000"}"#.into();
        let e = f.parse(&s).unwrap_err();
        assert!(e.get("output_schema").unwrap().contains("NUL"), "{e:?}");
    }

    #[test]
    fn an_agent_fills_the_form_back() {
        let policy = VerificationPolicy {
            window_hours: 12,
            verifiers: vec![
                VerifierSpec::Rules(RulesSpec {
                    must_match: vec!["a".into(), "b".into()],
                    ..Default::default()
                }),
                VerifierSpec::Judge(JudgeSpec {
                    model: "a".into(),
                    rubric: "ok?".into(),
                    threshold: 0.25,
                }),
            ],
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
            verifier_policy: policy.clone(),
            params: Default::default(),
            routing: Default::default(),
            tools: Vec::new(),
            knowledge: Vec::new(),
            max_steps: bounty_store::DEFAULT_MAX_STEPS,
            handoff: false,
            created_at: chrono::Utc::now(),
            version_created_at: chrono::Utc::now(),
        };
        let f = AgentForm::of(&agent);
        assert_eq!(f.model_route, "a, b");
        assert_eq!(f.policy.window_hours, "12");
        assert_eq!(f.policy.rows[0].lists[1], "a\nb");
        assert_eq!(f.policy.rows[1].threshold, "0.25");
        assert!(f.output_schema.contains("\"object\""));
        assert_eq!(f.parse(&names(&["a", "b"])).unwrap().verifier_policy, policy);
    }

    #[test]
    fn the_whole_form_posts_through_serde() {
        let body = "csrf=t&name=support&instructions=Answer.&model_route=small&outcome_type=&output_schema=\
            &mode=all_of&window_hours=24&lapse_decision=pass&csat_threshold=4&goodwill_days=0\
            &verifiers%5B0%5D.kind=rules&verifiers%5B0%5D.non_empty=true&verifiers%5B1%5D.kind=";
        let f: AgentForm = serde_urlencoded::from_str(body).unwrap();
        assert_eq!(f.name, "support");
        assert_eq!(f.policy.rows.len(), 2);
        let spec = f.parse(&names(&["small"])).unwrap();
        assert_eq!(spec.verifier_policy.verifiers.len(), 1);
    }
}
