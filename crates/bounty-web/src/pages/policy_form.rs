//! The verification policy as a form: how the verifiers combine, one row
//! per verifier (its kind and that kind's settings), the helpdesk's
//! window, what a lapse comes to, the satisfaction threshold and the
//! goodwill days; and the checks that turn it into a
//! [`VerificationPolicy`] or every error at once.
//!
//! **Field names.** Policy-wide fields are named as the API names them
//! (`window_hours`); a verifier row's fields are `verifiers[i].rubric`,
//! `verifiers[i].must_match`, … where `i` is the row's place in the form.
//! Every field is text (a checkbox is present or not), so a bad value is
//! shown back as typed. The form shows the policy's verifiers plus one
//! empty row, up to [`VerificationPolicy::MAX_VERIFIERS`]; a row whose
//! kind is blank is no verifier (an empty row, or one removed). Each row
//! carries every kind's fields; only the chosen kind's are read.
//!
//! **The same checks as the API.** The policy built from the form goes
//! through [`spec::verifier_policy_errors`], the API's checks, all of
//! them: each error comes back under the API's path
//! (`verifier_policy.verifiers[1].must_match[0]`), and is shown beside
//! the form field it names (`verifiers[1].must_match`, with the entry
//! quoted). What is the form's own: reading numbers and lists from text.
//! How the form is shown is [`super::policy_view`]'s.
//!
//! **Nothing is lost by saving unchanged.** A list is one entry per line
//! (`\r\n` and `\r` count as line breaks; an empty line is no entry, and a
//! blank one none either where a blank entry cannot be stored: field names
//! and phrases). Patterns keep their spaces. A threshold is written with
//! Rust's shortest exact float form, so it parses back to the same value.
//! Text a textarea cannot give back as stored (a list entry holding a
//! line break, a rubric holding a carriage return) rides along as JSON in
//! a hidden `verifiers[i].kept.<field>` input: when the field comes back
//! with the same lines, the stored value is kept as it was.

use std::collections::BTreeMap;

use bounty_agents::spec::{self, AgentSpecError};
use bounty_core::verification::{ExternalSpec, GroundedSpec, JudgeSpec, RulesSpec, ToolSucceededSpec};
use bounty_core::{Decision, PolicyMode, VerificationPolicy, VerifierSpec};
use serde::Deserialize;

use crate::pages::agent_form::{Configured, message};
use crate::pages::field_errors::FieldErrors;

/// Every mode, in the order the form offers them.
pub(crate) const MODES: [PolicyMode; 3] = [PolicyMode::AllOf, PolicyMode::AnyOf, PolicyMode::FirstDecisive];
/// A judge's threshold when its field is left blank (the API's default).
const DEFAULT_THRESHOLD: f64 = 0.5;

/// A rules verifier's lists: field name, label and hint, in form order.
pub(crate) const LISTS: [(&str, &str, &str); 4] = [
    (
        "required_fields",
        "Required fields",
        "One field name per line: the reply, a JSON object, must have each, not null.",
    ),
    (
        "must_match",
        "Must match",
        "One regular expression per line; the reply must match each. Spaces count.",
    ),
    (
        "must_not_match",
        "Must not match",
        "One regular expression per line; the reply must match none. Spaces count.",
    ),
    (
        "forbidden_phrases",
        "Forbidden phrases",
        "One phrase per line; the reply must contain none (upper or lower case alike).",
    ),
];

/// One verifier row as posted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VerifierRow {
    /// Its place in the form, which names its fields (`verifiers[3].kind`).
    pub(crate) index: usize,
    /// `rules`, `judge`, `external`, or blank: no verifier.
    pub(crate) kind: String,
    pub(crate) schema: bool,
    pub(crate) non_empty: bool,
    /// The lists' text, in [`LISTS`] order.
    pub(crate) lists: [String; 4],
    pub(crate) min_length: String,
    pub(crate) max_length: String,
    pub(crate) model: String,
    pub(crate) rubric: String,
    pub(crate) threshold: String,
    /// `tool_succeeded`'s tool names, one per line.
    pub(crate) tools: String,
    /// Stored values a textarea cannot give back exactly, as JSON, by
    /// field (`must_match`, `rubric`).
    pub(crate) kept: BTreeMap<String, String>,
}

/// The policy's fields, as posted.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "RawPolicyForm")]
pub(crate) struct PolicyForm {
    pub(crate) mode: String,
    pub(crate) window_hours: String,
    pub(crate) lapse_decision: String,
    pub(crate) csat_threshold: String,
    pub(crate) goodwill_days: String,
    /// The rows in form order.
    pub(crate) rows: Vec<VerifierRow>,
}

/// What serde reads: the named fields, and every other field of the
/// form, from which the rows' are picked out.
#[derive(Deserialize)]
struct RawPolicyForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    window_hours: String,
    #[serde(default)]
    lapse_decision: String,
    #[serde(default)]
    csat_threshold: String,
    #[serde(default)]
    goodwill_days: String,
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

/// `verifiers[12].must_match` → `(12, "must_match")`; only the canonical
/// spelling of the index.
fn row_field(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("verifiers[")?;
    let (index, field) = rest.split_once("].")?;
    let i: usize = index.parse().ok()?;
    (i.to_string() == index).then_some((i, field))
}

impl From<RawPolicyForm> for PolicyForm {
    fn from(raw: RawPolicyForm) -> Self {
        let mut rows: BTreeMap<usize, VerifierRow> = BTreeMap::new();
        for (name, value) in raw.rest {
            let Some((index, field)) = row_field(&name) else {
                continue;
            };
            let row = rows.entry(index).or_insert_with(|| VerifierRow {
                index,
                ..VerifierRow::default()
            });
            if let Some(kept) = field.strip_prefix("kept.") {
                row.kept.insert(kept.to_owned(), value);
                continue;
            }
            if let Some(k) = LISTS.iter().position(|(list, _, _)| *list == field) {
                row.lists[k] = value;
                continue;
            }
            match field {
                "kind" => row.kind = value,
                "schema" => row.schema = !value.is_empty(),
                "non_empty" => row.non_empty = !value.is_empty(),
                "min_length" => row.min_length = value,
                "max_length" => row.max_length = value,
                "model" => row.model = value,
                "rubric" => row.rubric = value,
                "threshold" => row.threshold = value,
                "tools" => row.tools = value,
                _ => {}
            }
        }
        PolicyForm {
            mode: raw.mode,
            window_hours: raw.window_hours,
            lapse_decision: raw.lapse_decision,
            csat_threshold: raw.csat_threshold,
            goodwill_days: raw.goodwill_days,
            rows: rows.into_values().collect(),
        }
    }
}

/// Line breaks as one `\n`, however the browser sent them.
fn normalized(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A textarea's entries: one per line; an empty line is none, and so is a
/// blank one unless spaces are an entry (`keep_blank`: patterns).
fn entries(text: &str, keep_blank: bool) -> Vec<String> {
    normalized(text)
        .split('\n')
        .filter(|l| {
            if keep_blank {
                !l.is_empty()
            } else {
                !l.trim().is_empty()
            }
        })
        .map(str::to_owned)
        .collect()
}

/// Whether a stored text needs a kept copy to come back exactly.
fn needs_keeping(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// The stored value of `field` kept in the row, when the field came back
/// showing exactly it.
fn kept<T: serde::de::DeserializeOwned>(
    row: &VerifierRow,
    field: &str,
    text: &str,
    shown: impl Fn(&T) -> String,
    has_nul: impl Fn(&T) -> bool,
) -> Option<T> {
    let value: T = serde_json::from_str(row.kept.get(field)?).ok()?;
    (!has_nul(&value) && normalized(&shown(&value)) == normalized(text)).then_some(value)
}

fn rule_list(row: &VerifierRow, k: usize) -> Vec<String> {
    let (field, _, _) = LISTS[k];
    let text = &row.lists[k];
    kept(
        row,
        field,
        text,
        |v: &Vec<String>| v.join("\n"),
        |v| v.iter().any(|s| bounty_core::text::has_nul(s)),
    )
    .unwrap_or_else(|| entries(text, field.starts_with("must_")))
}

/// A whole number field, or the message saying what it must be.
fn number<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, String> {
    raw.trim().parse().map_err(|_| format!("must be {what}"))
}

/// An optional whole number: blank is none.
fn optional_number(raw: &str, what: &str) -> Result<Option<u32>, String> {
    match raw.trim() {
        "" => Ok(None),
        v => number(v, what).map(Some),
    }
}

/// A read value, or `None` with its problem recorded under `field`.
fn taken<T>(problems: &mut Vec<(String, String)>, field: String, r: Result<T, String>) -> Option<T> {
    r.map_err(|m| problems.push((field, m))).ok()
}

/// The API's path of an error → the form's field and the message to show
/// beside it: `verifier_policy.verifiers[1].must_match[0]` →
/// `verifiers[r].must_match` (r: the row the second verifier came from),
/// the entry quoted in the message.
fn form_error(e: AgentSpecError, policy: &VerificationPolicy, rows: &[usize]) -> (String, String) {
    let path = e.field().to_owned();
    let message = message(e);
    let path = path.strip_prefix("verifier_policy.").unwrap_or(&path);
    let Some((i, field)) = path
        .strip_prefix("verifiers[")
        .and_then(|r| r.split_once("]."))
        .and_then(|(i, f)| Some((i.parse::<usize>().ok()?, f)))
    else {
        return (path.to_owned(), message);
    };
    let row = rows.get(i).copied().unwrap_or(i);
    let (name, entry) = match field.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (field, None),
    };
    let message = match (entry, policy.verifiers.get(i)) {
        (Some(j), Some(VerifierSpec::Rules(r))) => {
            let item = match name {
                "required_fields" => r.required_fields.get(j),
                "must_match" => r.must_match.get(j),
                "must_not_match" => r.must_not_match.get(j),
                _ => r.forbidden_phrases.get(j),
            };
            format!(
                "the entry {:?} {message}",
                item.map(String::as_str).unwrap_or_default()
            )
        }
        _ if name == "min_length" => "must not be more than the most characters".to_owned(),
        _ => message,
    };
    (format!("verifiers[{row}].{name}"), message)
}

impl PolicyForm {
    /// The form filled with `policy`, plus one empty row when another
    /// verifier fits.
    pub(crate) fn of(policy: &VerificationPolicy) -> PolicyForm {
        let mut rows: Vec<VerifierRow> = policy
            .verifiers
            .iter()
            .enumerate()
            .map(|(i, v)| row_of(i, v))
            .collect();
        if rows.len() < VerificationPolicy::MAX_VERIFIERS {
            rows.push(VerifierRow {
                index: rows.len(),
                ..VerifierRow::default()
            });
        }
        PolicyForm {
            mode: policy.mode.as_str().to_owned(),
            window_hours: policy.window_hours.to_string(),
            lapse_decision: policy.lapse_decision.to_string(),
            csat_threshold: policy.csat_threshold.to_string(),
            goodwill_days: policy.goodwill_days.to_string(),
            rows,
        }
    }

    /// The policy, checked as the API checks it; `None` with every
    /// problem added to `errors` under the form's field names.
    pub(crate) fn parse(&self, models: &[String], errors: &mut FieldErrors) -> Option<VerificationPolicy> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let mode = MODES.iter().copied().find(|m| m.as_str() == self.mode.trim());
        let window_hours = taken(
            &mut problems,
            "window_hours".into(),
            number(&self.window_hours, "a whole number of hours, 1 to 2160"),
        );
        let csat = taken(
            &mut problems,
            "csat_threshold".into(),
            number::<u8>(&self.csat_threshold, "a whole number from 1 to 5"),
        );
        let goodwill_days = taken(
            &mut problems,
            "goodwill_days".into(),
            number(&self.goodwill_days, "a whole number of days, 0 to 365"),
        );
        let lapse = self.lapse_decision.trim().parse::<Decision>().ok();
        let mut origin = Vec::new();
        let mut verifiers = Vec::new();
        for row in &self.rows {
            if let Some(v) = self.verifier(row, &mut problems) {
                origin.push(row.index);
                verifiers.push(v);
            }
        }
        if mode.is_none() {
            problems.push(("mode".into(), "must be one of the choices offered".into()));
        }
        if lapse.is_none() {
            problems.push((
                "lapse_decision".into(),
                "must be one of the choices offered".into(),
            ));
        }
        let policy = VerificationPolicy {
            mode: mode.unwrap_or_default(),
            verifiers,
            // A value that could not be read stands in as the default, so
            // the other fields are still checked.
            window_hours: window_hours.unwrap_or(bounty_core::verification::DEFAULT_WINDOW_HOURS),
            lapse_decision: lapse.unwrap_or(Decision::Pass),
            csat_threshold: csat.unwrap_or(4),
            goodwill_days: goodwill_days.unwrap_or(0),
        };
        for e in spec::verifier_policy_errors(&policy, &Configured(models)) {
            problems.push(form_error(e, &policy, &origin));
        }
        if problems.is_empty() {
            return Some(policy);
        }
        for (field, message) in problems {
            errors.add(field, message);
        }
        None
    }

    /// A row's verifier: `None` for a blank kind, or when a field cannot
    /// be read (its problem recorded; the rest are still read).
    fn verifier(&self, row: &VerifierRow, problems: &mut Vec<(String, String)>) -> Option<VerifierSpec> {
        let at = |field: &str| format!("verifiers[{}].{field}", row.index);
        let before = problems.len();
        let spec = match row.kind.trim() {
            "" => return None,
            "rules" => {
                let what = "a whole number of characters, or blank";
                let min_length = taken(problems, at("min_length"), optional_number(&row.min_length, what));
                let max_length = taken(problems, at("max_length"), optional_number(&row.max_length, what));
                VerifierSpec::Rules(RulesSpec {
                    schema: row.schema,
                    required_fields: rule_list(row, 0),
                    must_match: rule_list(row, 1),
                    must_not_match: rule_list(row, 2),
                    min_length: min_length.flatten(),
                    max_length: max_length.flatten(),
                    forbidden_phrases: rule_list(row, 3),
                    non_empty: row.non_empty,
                })
            }
            "judge" => {
                let model = row.model.trim();
                if model.is_empty() {
                    problems.push((at("model"), "must name a model".into()));
                }
                let threshold = match row.threshold.trim() {
                    "" => Some(DEFAULT_THRESHOLD),
                    t => taken(problems, at("threshold"), number(t, "a number from 0 to 1")),
                };
                let rubric = kept(
                    row,
                    "rubric",
                    &row.rubric,
                    |r: &String| r.clone(),
                    |r| bounty_core::text::has_nul(r),
                )
                .unwrap_or_else(|| normalized(&row.rubric));
                VerifierSpec::Judge(JudgeSpec {
                    model: model.to_owned(),
                    rubric,
                    threshold: threshold.unwrap_or(DEFAULT_THRESHOLD),
                })
            }
            "external" => VerifierSpec::External(ExternalSpec {}),
            "grounded" => VerifierSpec::Grounded(GroundedSpec {}),
            "tool_succeeded" => VerifierSpec::ToolSucceeded(ToolSucceededSpec {
                tools: normalized(&row.tools)
                    .lines()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }),
            _ => {
                problems.push((
                    at("kind"),
                    "must be rules, judge, external, grounded, tool_succeeded or none".into(),
                ));
                return None;
            }
        };
        // A field that could not be read leaves the verifier out, but its
        // problem stands, so the policy is refused.
        (problems.len() == before).then_some(spec)
    }

    /// The form's fields in page order, with their labels, for the error
    /// summary.
    pub(crate) fn fields(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("mode".to_owned(), "How verifiers combine".to_owned()),
            ("verifiers".to_owned(), "Verifiers".to_owned()),
        ];
        for row in &self.rows {
            let n = row.index + 1;
            let mut field = |name: &str, label: &str| {
                out.push((
                    format!("verifiers[{}].{name}", row.index),
                    format!("Verifier {n}: {label}"),
                ));
            };
            field("kind", "kind");
            for (name, label, _) in LISTS {
                field(name, label);
            }
            field("min_length", "fewest characters");
            field("max_length", "most characters");
            field("model", "judge model");
            field("rubric", "rubric");
            field("threshold", "threshold");
            field("tools", "tools that must succeed");
        }
        for (id, label) in [
            ("window_hours", "Window"),
            ("lapse_decision", "When the window ends"),
            ("csat_threshold", "Satisfaction threshold"),
            ("goodwill_days", "Goodwill days"),
        ] {
            out.push((id.to_owned(), label.to_owned()));
        }
        out
    }
}

/// The row showing verifier `i` of a stored policy.
fn row_of(i: usize, v: &VerifierSpec) -> VerifierRow {
    let mut row = VerifierRow {
        index: i,
        kind: v.kind().to_owned(),
        ..VerifierRow::default()
    };
    match v {
        VerifierSpec::Rules(r) => {
            row.schema = r.schema;
            row.non_empty = r.non_empty;
            let lists = [
                &r.required_fields,
                &r.must_match,
                &r.must_not_match,
                &r.forbidden_phrases,
            ];
            for (k, items) in lists.into_iter().enumerate() {
                row.lists[k] = items.join("\n");
                if items.iter().any(|s| needs_keeping(s)) {
                    row.kept.insert(
                        LISTS[k].0.to_owned(),
                        serde_json::to_string(items).unwrap_or_default(),
                    );
                }
            }
            row.min_length = r.min_length.map(|n| n.to_string()).unwrap_or_default();
            row.max_length = r.max_length.map(|n| n.to_string()).unwrap_or_default();
        }
        VerifierSpec::Judge(j) => {
            row.model = j.model.clone();
            row.rubric = j.rubric.clone();
            row.threshold = j.threshold.to_string();
            if j.rubric.contains('\r') {
                row.kept.insert(
                    "rubric".into(),
                    serde_json::to_string(&j.rubric).unwrap_or_default(),
                );
            }
        }
        VerifierSpec::ToolSucceeded(t) => row.tools = t.tools.join("\n"),
        VerifierSpec::External(_) | VerifierSpec::Grounded(_) => {}
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(models: &[&str]) -> Vec<String> {
        models.iter().map(|m| (*m).to_owned()).collect()
    }

    /// The form as a browser posts it: every input's name and value, line
    /// breaks in textareas sent as `\r\n`, unchecked boxes left out.
    fn posted(f: &PolicyForm) -> Vec<(String, String)> {
        let crlf = |s: &str| normalized(s).replace('\n', "\r\n");
        let mut out = vec![
            ("mode".to_owned(), f.mode.clone()),
            ("window_hours".to_owned(), f.window_hours.clone()),
            ("lapse_decision".to_owned(), f.lapse_decision.clone()),
            ("csat_threshold".to_owned(), f.csat_threshold.clone()),
            ("goodwill_days".to_owned(), f.goodwill_days.clone()),
        ];
        for r in &f.rows {
            let at = |field: &str| format!("verifiers[{}].{field}", r.index);
            out.push((at("kind"), r.kind.clone()));
            for (on, field) in [(r.schema, "schema"), (r.non_empty, "non_empty")] {
                if on {
                    out.push((at(field), "true".into()));
                }
            }
            for (k, (field, _, _)) in LISTS.iter().enumerate() {
                out.push((at(field), crlf(&r.lists[k])));
            }
            for (field, value) in [
                ("min_length", &r.min_length),
                ("max_length", &r.max_length),
                ("model", &r.model),
                ("threshold", &r.threshold),
            ] {
                out.push((at(field), value.clone()));
            }
            out.push((at("rubric"), crlf(&r.rubric)));
            for (field, value) in &r.kept {
                out.push((at(&format!("kept.{field}")), value.clone()));
            }
        }
        out
    }

    /// Opens `policy` in the form, posts it unchanged (through the real
    /// url-encoding and serde path), and parses it back.
    fn round_trip(policy: &VerificationPolicy, models: &[String]) -> Result<VerificationPolicy, FieldErrors> {
        let body = serde_urlencoded::to_string(posted(&PolicyForm::of(policy))).unwrap();
        let form: PolicyForm = serde_urlencoded::from_str(&body).unwrap();
        let mut errors = FieldErrors::default();
        form.parse(models, &mut errors).ok_or(errors)
    }

    fn judge(model: &str, rubric: &str, threshold: f64) -> VerifierSpec {
        VerifierSpec::Judge(JudgeSpec {
            model: model.into(),
            rubric: rubric.into(),
            threshold,
        })
    }

    /// A policy as the API may hold it: several judges, every rules field,
    /// entries with spaces, line breaks and HTML's special characters, a
    /// threshold with no short decimal form. Shared with the web tests.
    fn rich_policy() -> VerificationPolicy {
        serde_json::from_str(include_str!("../../tests/fixtures/rich_policy.json")).expect("the fixture")
    }

    #[test]
    fn a_policy_comes_back_unchanged_with_several_judges_and_every_rules_field() {
        let policy = rich_policy();
        assert!(policy.verifiers.len() >= 4, "several judges and more");
        let models = names(&["small", "large"]);
        assert!(spec::verifier_policy(policy.clone(), &Configured(&models)).is_ok());
        assert_eq!(round_trip(&policy, &models).unwrap(), policy);
        // With no model list, the judge's model is typed: the same.
        assert_eq!(round_trip(&policy, &[]).unwrap(), policy);
        let defaults = VerificationPolicy::default();
        assert_eq!(round_trip(&defaults, &models).unwrap(), defaults);
    }

    #[test]
    fn text_a_line_cannot_carry_is_kept_when_it_comes_back_unchanged() {
        let policy = VerificationPolicy {
            verifiers: vec![
                VerifierSpec::Rules(RulesSpec {
                    must_match: vec!["first\nsecond".into(), "ok".into()],
                    forbidden_phrases: vec!["a\r\nb".into()],
                    ..Default::default()
                }),
                judge("small", "Windows\r\nline breaks\rand old Mac ones", 0.5),
            ],
            ..Default::default()
        };
        let form = PolicyForm::of(&policy);
        assert!(form.rows[0].kept.contains_key("must_match"));
        assert!(form.rows[1].kept.contains_key("rubric"));
        assert_eq!(round_trip(&policy, &[]).unwrap(), policy);
        // Edited, the field is read line by line.
        let mut edited = form.clone();
        edited.rows[0].lists[1] = "first\nsecond\nok\nthird".into();
        let mut errors = FieldErrors::default();
        let parsed = edited.parse(&[], &mut errors).unwrap();
        let VerifierSpec::Rules(r) = &parsed.verifiers[0] else {
            panic!("rules");
        };
        assert_eq!(r.must_match, ["first", "second", "ok", "third"]);
        assert_eq!(r.forbidden_phrases, ["a\r\nb"], "the untouched list is kept");
    }

    #[test]
    fn rows_are_added_removed_and_read_from_the_posted_names() {
        let body = "mode=any_of&window_hours=48&lapse_decision=pass&csat_threshold=4&goodwill_days=0\
            &verifiers%5B0%5D.kind=&verifiers%5B0%5D.non_empty=true\
            &verifiers%5B1%5D.kind=judge&verifiers%5B1%5D.model=large&verifiers%5B1%5D.rubric=Solved%3F\
            &verifiers%5B1%5D.threshold=\
            &verifiers%5B2%5D.kind=rules&verifiers%5B2%5D.must_match=a%0D%0A%0D%0Ab%0D%0A\
            &verifiers%5B02%5D.kind=external&csrf=x&name=ignored";
        let form: PolicyForm = serde_urlencoded::from_str(body).unwrap();
        assert_eq!(form.rows.len(), 3, "{form:?}");
        let mut errors = FieldErrors::default();
        let p = form.parse(&names(&["large"]), &mut errors).unwrap();
        assert_eq!(p.mode, PolicyMode::AnyOf);
        assert_eq!(p.window_hours, 48);
        assert_eq!(p.verifiers.len(), 2, "the row with no kind is no verifier");
        assert_eq!(
            p.verifiers[0],
            judge("large", "Solved?", 0.5),
            "a blank threshold is 0.5"
        );
        let VerifierSpec::Rules(r) = &p.verifiers[1] else {
            panic!("rules");
        };
        assert_eq!(r.must_match, ["a", "b"], "empty lines are no entries");
    }

    #[test]
    fn every_wrong_field_is_named_by_its_row() {
        let mut form = PolicyForm::of(&VerificationPolicy {
            verifiers: vec![
                judge("small", "ok?", 0.5),
                VerifierSpec::External(ExternalSpec {}),
                VerifierSpec::Rules(RulesSpec::default()),
            ],
            ..Default::default()
        });
        form.window_hours = "soon".into();
        form.csat_threshold = "9".into();
        form.goodwill_days = "-1".into();
        form.rows[0].model = "huge".into();
        form.rows[0].rubric = "  ".into();
        form.rows[0].threshold = "1.5".into();
        form.rows[2].lists[1] = "ok\n(unclosed".into();
        form.rows[2].lists[3] = "fine\n   \n".into();
        form.rows[2].min_length = "10".into();
        form.rows[2].max_length = "5".into();
        form.rows[3].kind = "external".into();
        let mut errors = FieldErrors::default();
        assert!(form.parse(&names(&["small"]), &mut errors).is_none());
        let e = |f: &str| {
            errors
                .get(f)
                .unwrap_or_else(|| panic!("no error for {f}: {errors:?}"))
        };
        assert!(e("window_hours").contains("whole number of hours"));
        assert_eq!(e("csat_threshold"), "must be between 1 and 5");
        assert!(e("goodwill_days").contains("0 to 365"));
        assert_eq!(e("verifiers[0].model"), "names no configured model (\"huge\")");
        assert_eq!(e("verifiers[0].rubric"), "must not be empty");
        assert_eq!(e("verifiers[0].threshold"), "must be between 0 and 1");
        assert_eq!(
            e("verifiers[2].must_match"),
            "the entry \"(unclosed\" is not a usable regular expression: unclosed group"
        );
        assert_eq!(
            e("verifiers[2].min_length"),
            "must not be more than the most characters"
        );
        assert_eq!(e("verifiers"), "may list `external` once");
        assert!(
            errors.get("verifiers[2].forbidden_phrases").is_none(),
            "a blank line is no entry"
        );
        // Removing every verifier is refused: nothing is billed unverified.
        let mut none = PolicyForm::of(&VerificationPolicy::default());
        for r in &mut none.rows {
            r.kind.clear();
        }
        let mut errors = FieldErrors::default();
        assert!(none.parse(&[], &mut errors).is_none());
        assert!(errors.get("verifiers").unwrap().contains("at least one verifier"));
        // A kind nobody offered, and a judge with no model.
        let mut odd = PolicyForm::of(&VerificationPolicy::default());
        odd.rows[2].kind = "magic".into();
        odd.mode = "most_of".into();
        odd.lapse_decision = "maybe".into();
        let mut errors = FieldErrors::default();
        assert!(odd.parse(&[], &mut errors).is_none());
        assert!(errors.get("verifiers[2].kind").is_some());
        assert!(errors.get("mode").is_some());
        assert!(errors.get("lapse_decision").is_some());
    }
}
