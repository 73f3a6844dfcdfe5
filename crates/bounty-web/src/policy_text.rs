//! A verification policy in plain words: one line per thing it decides
//! ("Window: 24 hours", "Verifier 2: judge with model large, threshold
//! 0.7 — rubric: …"), so that two versions of an agent's policy can be
//! compared line by line ([`crate::line_diff`]), and one short summary of
//! a version for the history list.
//!
//! Each rule of a rules verifier has its own line, so adding one pattern
//! shows as one added line, not as a changed paragraph. Entries are quoted,
//! and a line break or tab inside one is written `\n`, `\r` or `\t`, so
//! every line stays one line. The words here are also the policy form's
//! choices ([`mode_label`], [`lapse_label`]), so the form and the history
//! say the same thing.

use bounty_core::verification::{JudgeSpec, RulesSpec};
use bounty_core::{Decision, PolicyMode, VerificationPolicy, VerifierSpec};

/// How the verifiers' decisions combine, in words.
pub(crate) fn mode_label(mode: PolicyMode) -> &'static str {
    match mode {
        PolicyMode::AllOf => "every verifier must pass",
        PolicyMode::AnyOf => "one passing verifier is enough",
        PolicyMode::FirstDecisive => "the first verifier that decides, in order, decides",
    }
}

/// What an outcome still waiting when the window ends comes to, in words.
pub(crate) fn lapse_label(decision: Decision) -> &'static str {
    match decision {
        Decision::Pass => "resolved and charged (no reopen means resolved)",
        Decision::Fail => "not resolved, no charge (no confirmation means not resolved)",
        Decision::Pending => "still waiting",
    }
}

/// `n hours`, singular for one.
pub(crate) fn hours(h: u32) -> String {
    if h == 1 {
        "1 hour".to_owned()
    } else {
        format!("{h} hours")
    }
}

fn days(d: u32) -> String {
    if d == 1 {
        "1 day".to_owned()
    } else {
        format!("{d} days")
    }
}

/// An entry in quotes, its line breaks and tabs escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('“');
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('”');
    out
}

/// The policy, one line per setting, in the order the form shows them.
pub(crate) fn lines(p: &VerificationPolicy) -> Vec<String> {
    let mut out = vec![format!("Mode: {}", mode_label(p.mode))];
    for (i, v) in p.verifiers.iter().enumerate() {
        let n = i + 1;
        match v {
            VerifierSpec::Rules(r) => rules_lines(n, r, &mut out),
            VerifierSpec::Judge(j) => out.push(judge_line(n, j)),
            VerifierSpec::External(_) => out.push(format!(
                "Verifier {n}: external — the helpdesk's signal (solved, reopened, satisfaction rating), \
                 within the window"
            )),
            VerifierSpec::Grounded(_) => out.push(format!(
                "Verifier {n}: grounded — the reply cites knowledge retrieved for it, and only that"
            )),
            VerifierSpec::ToolSucceeded(t) => out.push(format!(
                "Verifier {n}: tool succeeded — {} answered 2xx",
                t.tools.join(", ")
            )),
        }
    }
    out.push(format!("Window: {}", hours(p.window_hours)));
    out.push(format!(
        "No signal by the end of the window: {}",
        lapse_label(p.lapse_decision)
    ));
    out.push(format!(
        "Satisfaction ratings: {} of 5 or more confirm the outcome, lower ones fail it",
        p.csat_threshold
    ));
    out.push(match p.goodwill_days {
        0 => "Goodwill reversals: none".to_owned(),
        d => format!("Goodwill reversals: up to {} after the window", days(d)),
    });
    out
}

fn rules_lines(n: usize, r: &RulesSpec, out: &mut Vec<String>) {
    let start = out.len();
    out.push(format!("Verifier {n}: rules, checks of the reply's text"));
    if r.non_empty {
        out.push(format!("Verifier {n}: the reply must not be empty"));
    }
    if r.schema {
        out.push(format!("Verifier {n}: the reply must match the output schema"));
    }
    let lists = [
        ("must have the field", &r.required_fields),
        ("must match the pattern", &r.must_match),
        ("must not match the pattern", &r.must_not_match),
        ("must not contain the phrase", &r.forbidden_phrases),
    ];
    for (what, items) in lists {
        for item in items {
            out.push(format!("Verifier {n}: {what} {}", quoted(item)));
        }
    }
    if let Some(min) = r.min_length {
        out.push(format!("Verifier {n}: at least {min} characters"));
    }
    if let Some(max) = r.max_length {
        out.push(format!("Verifier {n}: at most {max} characters"));
    }
    if out.len() == start + 1 {
        out.push(format!("Verifier {n}: no rule set, so every reply passes"));
    }
}

fn judge_line(n: usize, j: &JudgeSpec) -> String {
    format!(
        "Verifier {n}: judge with model {}, threshold {} — rubric: {}",
        j.model,
        j.threshold,
        quoted(&j.rubric)
    )
}

/// One line for the history: how the verifiers combine, which they are,
/// and the window.
pub(crate) fn summary(p: &VerificationPolicy) -> String {
    let kinds: Vec<String> = p
        .verifiers
        .iter()
        .map(|v| match v {
            VerifierSpec::Judge(j) => format!("judge ({})", j.model),
            other => other.kind().to_owned(),
        })
        .collect();
    let lapse = match p.lapse_decision {
        Decision::Pass => "charged",
        Decision::Fail => "not charged",
        Decision::Pending => "waiting",
    };
    let mut mode = mode_label(p.mode).to_owned();
    if let Some(first) = mode.get(..1) {
        mode = first.to_uppercase() + &mode[1..];
    }
    format!(
        "{mode}: {} · window {} · unconfirmed: {lapse}",
        kinds.join(", "),
        hours(p.window_hours)
    )
}

#[cfg(test)]
mod tests {
    use bounty_core::verification::ExternalSpec;

    use super::*;

    fn policy() -> VerificationPolicy {
        VerificationPolicy {
            mode: PolicyMode::AnyOf,
            verifiers: vec![
                VerifierSpec::Rules(RulesSpec {
                    non_empty: true,
                    must_match: vec![r"\d+".into()],
                    forbidden_phrases: vec!["as an AI\nmodel".into()],
                    max_length: Some(500),
                    ..Default::default()
                }),
                VerifierSpec::Judge(JudgeSpec {
                    model: "large".into(),
                    rubric: "Did it answer?".into(),
                    threshold: 0.7,
                }),
                VerifierSpec::External(ExternalSpec {}),
            ],
            window_hours: 1,
            lapse_decision: Decision::Fail,
            csat_threshold: 3,
            goodwill_days: 2,
        }
    }

    #[test]
    fn every_setting_has_its_line() {
        assert_eq!(
            lines(&policy()),
            [
                "Mode: one passing verifier is enough",
                "Verifier 1: rules, checks of the reply's text",
                "Verifier 1: the reply must not be empty",
                r"Verifier 1: must match the pattern “\d+”",
                r"Verifier 1: must not contain the phrase “as an AI\nmodel”",
                "Verifier 1: at most 500 characters",
                "Verifier 2: judge with model large, threshold 0.7 — rubric: “Did it answer?”",
                "Verifier 3: external — the helpdesk's signal (solved, reopened, satisfaction rating), within \
                 the window",
                "Window: 1 hour",
                "No signal by the end of the window: not resolved, no charge (no confirmation means not \
                 resolved)",
                "Satisfaction ratings: 3 of 5 or more confirm the outcome, lower ones fail it",
                "Goodwill reversals: up to 2 days after the window",
            ]
        );
    }

    #[test]
    fn the_default_policy_reads_as_the_assumed_resolution() {
        let l = lines(&VerificationPolicy::default());
        assert_eq!(l[0], "Mode: every verifier must pass");
        assert_eq!(l[2], "Verifier 1: the reply must not be empty");
        assert!(l.contains(&"Window: 24 hours".to_owned()));
        assert!(l.contains(&"Goodwill reversals: none".to_owned()));
        let empty_rules = VerificationPolicy {
            verifiers: vec![VerifierSpec::Rules(RulesSpec::default())],
            ..Default::default()
        };
        assert_eq!(
            lines(&empty_rules)[2],
            "Verifier 1: no rule set, so every reply passes"
        );
    }

    #[test]
    fn the_summary_is_one_line() {
        assert_eq!(
            summary(&policy()),
            "One passing verifier is enough: rules, judge (large), external · window 1 hour · unconfirmed: \
             not charged"
        );
        assert_eq!(
            summary(&VerificationPolicy::default()),
            "Every verifier must pass: rules, external · window 24 hours · unconfirmed: charged"
        );
    }
}
