//! Verification policies against real models: the judge on the fake
//! OpenAI server (scripted answers, wire format, cost) and on a tiny local
//! GGUF (grammar-constrained output of a random-weight llama), rules on
//! that model's real output, and the policy modes' short-circuiting.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bounty_agents::verify::{
    JUDGE_MAX_TOKENS, PolicyRun, VerifyInput, judge_messages, judge_schema, local_judge_schema, run_policy,
    validate_policy,
};
use bounty_core::verification::{ExternalSpec, JudgeSpec, RulesSpec};
use bounty_core::{Decision, PolicyMode, TaskInput, VerificationPolicy, VerifierSpec};
use bounty_models::router::Overrides;
use bounty_models::testing::gguf::write_tiny_llama;
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use bounty_models::{Message, ModelConfig, ModelRegistry, ProviderKind, Role, Router};
use serde_json::{Value, json};

fn remote_model(base_url: &str) -> Value {
    json!({
        "provider": "openai",
        "base_url": base_url,
        "model": "judge-model",
        "api_key": "sk-test-judge",
        "request_timeout_ms": 2_000,
        "max_retries": 0,
        "price": {"input_per_million": "2", "output_per_million": "4"}
    })
}

/// The tiny llama's training context is 512 tokens of single characters;
/// the judge's prompt needs more, and llama.cpp runs past it.
fn local_model(path: &Path) -> Value {
    json!({
        "provider": "llama",
        "path": path,
        "context_size": 2048,
        "threads": 2,
        "price": {"per_cpu_second": "0.0001"}
    })
}

fn router(models: &[(&str, Value)]) -> Router {
    let models: BTreeMap<String, ModelConfig> = models
        .iter()
        .map(|(name, config)| {
            (
                (*name).to_owned(),
                serde_json::from_value(config.clone()).expect("a valid model"),
            )
        })
        .collect();
    Router::new(Arc::new(
        ModelRegistry::from_config(&models).expect("the registry builds"),
    ))
}

fn ticket() -> TaskInput {
    TaskInput {
        subject: "Refund".into(),
        body: "Where is my refund for order 42?".into(),
        ..Default::default()
    }
}

const REPLY: &str = "Your refund for order 42 was sent today; expect it within 5 days.";

fn input<'a>(task: &'a TaskInput, output: &'a str) -> VerifyInput<'a> {
    VerifyInput {
        output,
        output_schema: None,
        task,
        instructions: "Answer billing questions.",
        retrieved: &[],
        tool_results: &[],
    }
}

fn judge(model: &str, threshold: f64) -> JudgeSpec {
    JudgeSpec {
        model: model.into(),
        rubric: "The reply says when the refund arrives.".into(),
        threshold,
    }
}

fn policy(mode: PolicyMode, verifiers: Vec<VerifierSpec>) -> VerificationPolicy {
    VerificationPolicy {
        mode,
        verifiers,
        ..Default::default()
    }
}

async fn judge_once(fake: &FakeOpenAi, answer: &str, threshold: f64) -> PolicyRun {
    fake.push(Behavior::reply(answer, 1_000, 500));
    let router = router(&[("judge", remote_model(&fake.base_url()))]);
    let task = ticket();
    let judged = policy(
        PolicyMode::AllOf,
        vec![VerifierSpec::Judge(judge("judge", threshold))],
    );
    run_policy(&judged, &input(&task, REPLY), &router).await
}

#[tokio::test]
async fn a_confident_resolved_judge_passes_and_its_call_is_costed() {
    let fake = FakeOpenAi::start().await;
    let run = judge_once(
        &fake,
        r#" {"resolved":true,"confidence":0.9,"reason":"ok"} "#,
        0.7,
    )
    .await;
    assert_eq!(run.decision, Decision::Pass);
    let verdict = &run.verdicts[0];
    assert_eq!(
        (verdict.verifier.as_str(), verdict.version.as_str()),
        ("judge", "judge/1")
    );
    assert_eq!(verdict.reason, "judge: ok");
    assert_eq!(verdict.confidence, Some(0.9));
    assert_eq!(verdict.inputs_hash.len(), 64);

    // One call, priced: 1000 input tokens at 2/M plus 500 output at 4/M.
    assert_eq!(run.judge_calls.len(), 1);
    let call = &run.judge_calls[0];
    assert_eq!(
        (call.model.as_str(), call.provider),
        ("judge", Some(ProviderKind::Openai))
    );
    assert_eq!(call.cost.micros, 4_000);
    assert!(call.error.is_none());

    // The request asked for the answer's schema, greedily, with room to answer.
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["schema"], judge_schema());
    assert_eq!(body["temperature"], 0.0);
    let limit = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"));
    assert_eq!(limit, Some(&json!(JUDGE_MAX_TOKENS)));
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("The reply says when the refund arrives."),
        "{system}"
    );
    let user = requests[0].last_user_message().unwrap();
    assert!(
        user.contains("Subject: Refund") && user.contains("order 42?") && user.contains(REPLY),
        "{user}"
    );
    assert!(user.contains("Answer billing questions."), "{user}");

    // The same inputs hash the same.
    let again = judge_once(&fake, r#"{"resolved":true,"confidence":0.9,"reason":"ok"}"#, 0.7).await;
    assert_eq!(again.verdicts[0].inputs_hash, verdict.inputs_hash);
}

#[tokio::test]
async fn an_unsure_or_unresolved_judge_fails() {
    let fake = FakeOpenAi::start().await;
    let run = judge_once(
        &fake,
        r#"{"resolved":true,"confidence":0.5,"reason":"maybe"}"#,
        0.7,
    )
    .await;
    assert_eq!(run.decision, Decision::Fail);
    assert_eq!(run.verdicts[0].confidence, Some(0.5));
    assert_eq!(run.verdicts[0].reason, "judge: maybe");

    let run = judge_once(
        &fake,
        r#"{"resolved":false,"confidence":0.95,"reason":"no date given"}"#,
        0.7,
    )
    .await;
    assert_eq!(run.decision, Decision::Fail);
    assert_eq!(run.verdicts[0].reason, "judge: no date given");
    assert_eq!(run.judge_calls.len(), 1);
}

#[tokio::test]
async fn a_judge_that_cannot_judge_fails_with_its_calls_recorded() {
    let fake = FakeOpenAi::start().await;
    let run = judge_once(&fake, "Yes, it is resolved.", 0.5).await;
    assert_eq!(run.decision, Decision::Fail);
    let reason = &run.verdicts[0].reason;
    assert!(
        reason.starts_with("judge: the judge's answer is not the expected JSON"),
        "{reason}"
    );
    assert_eq!(run.verdicts[0].confidence, None);
    assert_eq!(run.judge_calls.len(), 1);
    assert!(run.judge_calls[0].cost.micros > 0);

    let run = judge_once(&fake, r#"{"resolved":true,"confidence":3,"reason":"sure"}"#, 0.5).await;
    assert_eq!(run.decision, Decision::Fail);
    assert!(
        run.verdicts[0].reason.contains("outside 0 to 1"),
        "{}",
        run.verdicts[0].reason
    );

    fake.push(Behavior::error(400, "bad schema"));
    let router = router(&[("judge", remote_model(&fake.base_url()))]);
    let task = ticket();
    let judged = policy(PolicyMode::AllOf, vec![VerifierSpec::Judge(judge("judge", 0.5))]);
    let run = run_policy(&judged, &input(&task, REPLY), &router).await;
    assert_eq!(run.decision, Decision::Fail);
    let reason = &run.verdicts[0].reason;
    assert!(
        reason.starts_with("judge: the model call failed (provider_rejected"),
        "{reason}"
    );
    assert_eq!(run.judge_calls.len(), 1);
    assert!(run.judge_calls[0].error.is_some());
}

/// The tiny random llama answers through the judge's grammar: its choice
/// is arbitrary, but the answer must parse and the verdict must follow it.
#[tokio::test]
async fn a_local_judge_answers_through_the_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_llama(dir.path()).unwrap();
    let router = router(&[("tiny", local_model(&path))]);
    let task = ticket();
    let input = input(&task, REPLY);
    let spec = judge("tiny", 0.5);
    let judged = policy(PolicyMode::AllOf, vec![VerifierSpec::Judge(spec.clone())]);
    let run = run_policy(&judged, &input, &router).await;

    assert_eq!(run.judge_calls.len(), 1);
    let call = &run.judge_calls[0];
    assert_eq!(call.provider, Some(ProviderKind::Llama));
    assert!(call.error.is_none(), "{:?}", call.error);
    assert!(call.cost.micros > 0);

    // Greedy decoding is deterministic: the same request shows what the
    // judge answered.
    let overrides = Overrides {
        max_tokens: Some(JUDGE_MAX_TOKENS),
        temperature: Some(0.0),
        seed: None,
    };
    let again = router
        .generate(
            &["tiny".to_owned()],
            &judge_messages(&spec, &input),
            overrides,
            Some(&local_judge_schema()),
        )
        .await;
    let text = again.result.expect("the tiny llama answers").generation.text;
    let answer: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    let resolved = answer["resolved"].as_bool().expect("resolved is a boolean");
    let confidence = answer["confidence"].as_f64().expect("confidence is a number");
    let reason = answer["reason"].as_str().expect("reason is a string");
    assert_eq!(answer.as_object().unwrap().len(), 3, "{answer}");

    // The grammar bounds what the schema asks.
    assert!((0.0..=1.0).contains(&confidence), "{answer}");
    assert!(reason.chars().count() <= 200, "{answer}");

    let verdict = &run.verdicts[0];
    assert_eq!(verdict.confidence, Some(confidence));
    let pass = resolved && confidence >= spec.threshold;
    assert_eq!(
        verdict.decision == Decision::Pass,
        pass,
        "{answer} gave {verdict:?}"
    );
    let said = reason.trim();
    let said = if said.is_empty() {
        "(no reason given)"
    } else {
        said
    };
    assert_eq!(verdict.reason, format!("judge: {said}"));
    assert_eq!(run.decision, verdict.decision);
}

/// Rules on what the tiny llama really wrote.
#[tokio::test]
async fn rules_check_real_local_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_llama(dir.path()).unwrap();
    let router = router(&[("tiny", local_model(&path))]);
    let task = ticket();
    let messages = vec![
        Message::new(Role::System, "Answer billing questions."),
        Message::new(Role::User, task.body.clone()),
    ];
    let overrides = Overrides {
        max_tokens: Some(24),
        temperature: Some(0.0),
        seed: None,
    };
    let routed = router
        .generate(&["tiny".to_owned()], &messages, overrides, None)
        .await;
    let output = routed.result.expect("the tiny llama answers").generation.text;
    assert!(!output.is_empty());

    let rules = |phrase: String| {
        policy(
            PolicyMode::AllOf,
            vec![VerifierSpec::Rules(RulesSpec {
                non_empty: true,
                min_length: Some(10),
                forbidden_phrases: vec!["as an AI".into(), phrase],
                ..Default::default()
            })],
        )
    };
    let lower = output.to_lowercase();
    let expected_pass =
        !output.trim().is_empty() && output.chars().count() >= 10 && !lower.contains("as an ai");
    let run = run_policy(
        &rules("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".into()),
        &input(&task, &output),
        &router,
    )
    .await;
    assert_eq!(
        run.decision == Decision::Pass,
        expected_pass,
        "{output:?}: {:?}",
        run.verdicts
    );
    if expected_pass {
        assert_eq!(run.verdicts[0].reason, "all 4 rules hold");
    }

    // A phrase the model did write, in another case, fails the rules.
    let written: String = output.chars().take(6).collect::<String>().to_uppercase();
    let run = run_policy(&rules(written.clone()), &input(&task, &output), &router).await;
    assert_eq!(run.decision, Decision::Fail, "{output:?}");
    assert!(
        run.verdicts[0]
            .reason
            .contains(&format!("forbidden phrase {written:?} found")),
        "{:?}",
        run.verdicts
    );
    assert!(run.judge_calls.is_empty());
}

fn passing_rules() -> VerifierSpec {
    VerifierSpec::Rules(RulesSpec {
        non_empty: true,
        must_match: vec![r"(?i)\brefund\b".into()],
        ..Default::default()
    })
}

fn failing_rules() -> VerifierSpec {
    VerifierSpec::Rules(RulesSpec {
        forbidden_phrases: vec!["REFUND".into()],
        ..Default::default()
    })
}

fn external() -> VerifierSpec {
    VerifierSpec::External(ExternalSpec {})
}

fn kinds(run: &PolicyRun) -> Vec<&str> {
    run.verdicts.iter().map(|v| v.verifier.as_str()).collect()
}

#[tokio::test]
async fn settled_policies_skip_the_judge() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply(
        r#"{"resolved":true,"confidence":1,"reason":"ok"}"#,
        10,
        10,
    ));
    let router = router(&[("judge", remote_model(&fake.base_url()))]);
    let task = ticket();
    let input = input(&task, REPLY);
    let with_judge = |mode, rules| policy(mode, vec![rules, VerifierSpec::Judge(judge("judge", 0.5))]);

    let run = run_policy(&with_judge(PolicyMode::AllOf, failing_rules()), &input, &router).await;
    assert_eq!((run.decision, kinds(&run)), (Decision::Fail, vec!["rules"]));
    assert_eq!(run.verdicts[0].reason, "forbidden phrase \"REFUND\" found");

    let run = run_policy(&with_judge(PolicyMode::AnyOf, passing_rules()), &input, &router).await;
    assert_eq!((run.decision, kinds(&run)), (Decision::Pass, vec!["rules"]));
    assert_eq!(run.verdicts[0].reason, "all 2 rules hold");
    assert!(run.judge_calls.is_empty());
    assert_eq!(fake.request_count(), 0, "no model request was made");

    // Unsettled, the judge runs.
    let run = run_policy(&with_judge(PolicyMode::AllOf, passing_rules()), &input, &router).await;
    assert_eq!(
        (run.decision, kinds(&run)),
        (Decision::Pass, vec!["rules", "judge"])
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn external_signals_keep_outcomes_pending_unless_another_verifier_decides() {
    let router = Router::new(Arc::new(ModelRegistry::default()));
    let task = ticket();
    let input = input(&task, REPLY);

    let run = run_policy(
        &policy(PolicyMode::FirstDecisive, vec![external(), failing_rules()]),
        &input,
        &router,
    )
    .await;
    assert_eq!(
        (run.decision, kinds(&run)),
        (Decision::Fail, vec!["external", "rules"])
    );
    let run = run_policy(
        &policy(PolicyMode::FirstDecisive, vec![external(), passing_rules()]),
        &input,
        &router,
    )
    .await;
    assert_eq!(run.decision, Decision::Pass);

    let waiting = VerificationPolicy {
        window_hours: 48,
        lapse_decision: Decision::Fail,
        ..policy(PolicyMode::AllOf, vec![passing_rules(), external()])
    };
    let run = run_policy(&waiting, &input, &router).await;
    assert_eq!(
        (run.decision, kinds(&run)),
        (Decision::Pending, vec!["rules", "external"])
    );
    let verdict = &run.verdicts[1];
    assert_eq!(
        (verdict.decision, verdict.version.as_str()),
        (Decision::Pending, "external/1")
    );
    assert_eq!(
        verdict.reason,
        "awaiting a resolution signal from the ticket source within 48 h; lapses to fail"
    );
    let longer = VerificationPolicy {
        window_hours: 72,
        ..waiting.clone()
    };
    let again = run_policy(&waiting, &input, &router).await;
    assert_eq!(again.verdicts[1].inputs_hash, verdict.inputs_hash);
    let longer = run_policy(&longer, &input, &router).await;
    assert_ne!(longer.verdicts[1].inputs_hash, verdict.inputs_hash);
}

#[test]
fn validation_refuses_bad_patterns_and_unknown_judges() {
    let registry = ModelRegistry::from_config(&BTreeMap::from([(
        "judge".to_owned(),
        serde_json::from_value::<ModelConfig>(remote_model("http://127.0.0.1:9/v1")).unwrap(),
    )]))
    .unwrap();

    let bad_regex = policy(
        PolicyMode::AllOf,
        vec![
            passing_rules(),
            VerifierSpec::Rules(RulesSpec {
                must_match: vec!["[unclosed".into()],
                ..Default::default()
            }),
        ],
    );
    let (param, message) = validate_policy(&bad_regex, &registry).unwrap_err();
    assert_eq!(param, "verifier_policy.verifiers[1].must_match[0]");
    assert!(message.contains("regular expression"), "{message}");

    let unknown = policy(
        PolicyMode::AllOf,
        vec![VerifierSpec::Judge(judge("gpt-unknown", 0.5))],
    );
    let (param, message) = validate_policy(&unknown, &registry).unwrap_err();
    assert_eq!(param, "verifier_policy.verifiers[0].model");
    assert!(message.contains("gpt-unknown"), "{message}");

    let fine = policy(
        PolicyMode::AllOf,
        vec![
            passing_rules(),
            VerifierSpec::Judge(judge("judge", 0.5)),
            external(),
        ],
    );
    assert_eq!(validate_policy(&fine, &registry), Ok(()));
}
