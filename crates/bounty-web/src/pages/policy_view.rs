//! The policy form as the template shows it ([`PolicyView`]): each field
//! with its id (also its name), its value as posted or stored, and its
//! error; each select's choices in plain words (the same words as the
//! policy's history, [`crate::policy_text`]); and per verifier row the
//! configured judge models, with the row's own first when it names one no
//! longer configured, so that saving does not silently change it.

use bounty_core::Decision;

use crate::pages::field_errors::FieldErrors;
use crate::pages::policy_form::{LISTS, MODES, PolicyForm, VerifierRow};
use crate::policy_text::{lapse_label, mode_label};

impl PolicyForm {
    /// What the template shows: each field with its id, value and error.
    pub(crate) fn view(&self, errors: &FieldErrors, models: &[String]) -> PolicyView {
        let input = |id: String, value: &str| Input {
            error: errors.get(&id).map(str::to_owned),
            id,
            value: value.to_owned(),
        };
        PolicyView {
            modes: MODES
                .iter()
                .map(|m| Choice::new(m.as_str(), upper_first(mode_label(*m)), &self.mode))
                .collect(),
            mode: input("mode".into(), &self.mode),
            verifiers_error: errors.get("verifiers").map(str::to_owned),
            rows: self
                .rows
                .iter()
                .map(|r| RowView::new(r, errors, models))
                .collect(),
            window_hours: input("window_hours".into(), &self.window_hours),
            lapses: [Decision::Pass, Decision::Fail]
                .iter()
                .map(|d| Choice::new(d.as_str(), upper_first(lapse_label(*d)), &self.lapse_decision))
                .collect(),
            lapse_decision: input("lapse_decision".into(), &self.lapse_decision),
            csat_threshold: input("csat_threshold".into(), &self.csat_threshold),
            goodwill_days: input("goodwill_days".into(), &self.goodwill_days),
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One field to show: its id (also its name), value and error.
pub(crate) struct Input {
    pub(crate) id: String,
    pub(crate) value: String,
    pub(crate) error: Option<String>,
}

/// One option of a select.
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

impl Choice {
    fn new(value: &str, label: String, current: &str) -> Choice {
        Choice {
            value: value.to_owned(),
            label,
            selected: value == current.trim(),
        }
    }
}

/// A rules list's textarea.
pub(crate) struct ListView {
    pub(crate) input: Input,
    pub(crate) label: &'static str,
    pub(crate) hint: &'static str,
}

/// A hidden input carrying a kept stored value.
pub(crate) struct Hidden {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// One verifier row to show.
pub(crate) struct RowView {
    /// 1-based, for labels.
    pub(crate) number: usize,
    pub(crate) kind: Input,
    pub(crate) kinds: Vec<Choice>,
    pub(crate) schema: Input,
    pub(crate) non_empty: Input,
    pub(crate) lists: Vec<ListView>,
    pub(crate) min_length: Input,
    pub(crate) max_length: Input,
    pub(crate) model: Input,
    /// The configured models to choose from (the row's own first when it
    /// names another); empty: the model is typed.
    pub(crate) models: Vec<Choice>,
    pub(crate) rubric: Input,
    pub(crate) threshold: Input,
    pub(crate) tools: Input,
    pub(crate) kept: Vec<Hidden>,
}

impl RowView {
    fn new(row: &VerifierRow, errors: &FieldErrors, configured: &[String]) -> RowView {
        let id = |field: &str| format!("verifiers[{}].{field}", row.index);
        let input = |field: &str, value: &str| {
            let id = id(field);
            Input {
                error: errors.get(&id).map(str::to_owned),
                id,
                value: value.to_owned(),
            }
        };
        let flag = |on: bool| if on { "true" } else { "" };
        let none = if row.kind.trim().is_empty() && row.index > 0 {
            "None: no verifier in this row"
        } else {
            "None: remove this verifier"
        };
        let kinds = [
            ("rules", "Rules: checks of the reply's text"),
            ("judge", "Judge: a model grades the reply"),
            (
                "external",
                "External: the helpdesk confirms (solved, reopened, rating)",
            ),
            ("grounded", "Grounded: the reply cites the knowledge it retrieved"),
            ("tool_succeeded", "Tool succeeded: named tools answered 2xx"),
            ("", none),
        ];
        let model = row.model.trim();
        let mut models: Vec<Choice> = Vec::new();
        if !configured.is_empty() && !model.is_empty() && !configured.iter().any(|m| m == model) {
            models.push(Choice::new(model, format!("{model} (not configured)"), model));
        }
        models.extend(configured.iter().map(|m| Choice::new(m, m.clone(), model)));
        RowView {
            number: row.index + 1,
            kind: input("kind", &row.kind),
            kinds: kinds
                .iter()
                .map(|(v, l)| Choice::new(v, (*l).to_owned(), &row.kind))
                .collect(),
            schema: input("schema", flag(row.schema)),
            non_empty: input("non_empty", flag(row.non_empty)),
            lists: LISTS
                .iter()
                .enumerate()
                .map(|(k, (field, label, hint))| ListView {
                    input: input(field, &row.lists[k]),
                    label,
                    hint,
                })
                .collect(),
            min_length: input("min_length", &row.min_length),
            max_length: input("max_length", &row.max_length),
            model: input("model", &row.model),
            models: if configured.is_empty() { Vec::new() } else { models },
            rubric: input("rubric", &row.rubric),
            threshold: input("threshold", &row.threshold),
            tools: input("tools", &row.tools),
            kept: row
                .kept
                .iter()
                .map(|(field, value)| Hidden {
                    name: id(&format!("kept.{field}")),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

/// The policy part of the agent form, ready to show.
pub(crate) struct PolicyView {
    pub(crate) modes: Vec<Choice>,
    pub(crate) mode: Input,
    /// A problem of the list as a whole (none, too many, two externals).
    pub(crate) verifiers_error: Option<String>,
    pub(crate) rows: Vec<RowView>,
    pub(crate) window_hours: Input,
    pub(crate) lapses: Vec<Choice>,
    pub(crate) lapse_decision: Input,
    pub(crate) csat_threshold: Input,
    pub(crate) goodwill_days: Input,
}

#[cfg(test)]
mod tests {
    use bounty_core::VerificationPolicy;
    use bounty_core::VerifierSpec;
    use bounty_core::verification::{JudgeSpec, RulesSpec};

    use super::*;

    fn names(models: &[&str]) -> Vec<String> {
        models.iter().map(|m| (*m).to_owned()).collect()
    }

    fn judge(model: &str, rubric: &str, threshold: f64) -> VerifierSpec {
        VerifierSpec::Judge(JudgeSpec {
            model: model.into(),
            rubric: rubric.into(),
            threshold,
        })
    }

    #[test]
    fn the_view_offers_the_configured_models_and_keeps_an_unknown_one() {
        let form = PolicyForm::of(&VerificationPolicy {
            verifiers: vec![judge("retired", "ok?", 0.5)],
            ..Default::default()
        });
        let view = form.view(&FieldErrors::default(), &names(&["small", "large"]));
        let models: Vec<(&str, bool)> = view.rows[0]
            .models
            .iter()
            .map(|c| (c.value.as_str(), c.selected))
            .collect();
        assert_eq!(models, [("retired", true), ("small", false), ("large", false)]);
        assert_eq!(view.rows.len(), 2, "the verifier and one empty row");
        assert!(
            view.rows[1]
                .kinds
                .iter()
                .any(|k| k.value.is_empty() && k.selected)
        );
        assert!(form.view(&FieldErrors::default(), &[]).rows[0].models.is_empty());
        let full = PolicyForm::of(&VerificationPolicy {
            verifiers: vec![VerifierSpec::Rules(RulesSpec::default()); VerificationPolicy::MAX_VERIFIERS],
            ..Default::default()
        });
        assert_eq!(
            full.rows.len(),
            VerificationPolicy::MAX_VERIFIERS,
            "no empty row past the limit"
        );
    }
}
