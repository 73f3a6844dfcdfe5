//! Store-level fixtures for billing tests: an account with a plain agent,
//! and a task taken through the real claim path.

use std::time::Duration;

use bounty_core::verification::RulesSpec;
use bounty_core::{
    AccountId, AccountName, AgentId, AgentName, ApiKeyMode, ApiKeySecret, KeyName, ModelRoute, OutcomeType,
    TaskInput, VerificationPolicy, VerifierSpec,
};
use bounty_store::{AgentSpec, ClaimedTask, NewTask, Store};

/// The policy of store-level tests, which hand the store their decisions
/// themselves: one rule (a policy lists at least one verifier) and the
/// 72-hour window they were written against.
pub fn store_test_policy() -> VerificationPolicy {
    VerificationPolicy {
        verifiers: vec![VerifierSpec::Rules(RulesSpec {
            non_empty: true,
            ..RulesSpec::default()
        })],
        window_hours: 72,
        ..VerificationPolicy::default()
    }
}

/// An account with one agent named `support` on model `m` under `policy`.
pub async fn account_with_agent(store: &Store, policy: VerificationPolicy) -> (AccountId, AgentId) {
    let (account, _) = store
        .create_account(
            &AccountName::parse("Acme").unwrap(),
            &KeyName::parse("k").unwrap(),
            &ApiKeySecret::generate(ApiKeyMode::Live),
        )
        .await
        .unwrap();
    (account.id, add_agent(store, account.id, policy).await)
}

/// Gives `account` an agent named `support` on model `m` under `policy`.
pub async fn add_agent(store: &Store, account: AccountId, policy: VerificationPolicy) -> AgentId {
    let agent = store
        .create_agent(
            account,
            &AgentSpec {
                name: AgentName::parse("support").unwrap(),
                instructions: "x".into(),
                model_route: ModelRoute::parse(vec!["m".into()]).unwrap(),
                output_schema: None,
                outcome_type: OutcomeType::parse("ticket.resolved").unwrap(),
                verifier_policy: policy,
                params: Default::default(),
                routing: Default::default(),
                tools: Vec::new(),
                knowledge: Vec::new(),
                max_steps: bounty_store::DEFAULT_MAX_STEPS,
                handoff: false,
            },
        )
        .await
        .unwrap();
    agent.id
}

/// Queues a one-attempt task for `agent` and claims it.
pub async fn queue_and_claim(store: &Store, account: AccountId, agent: AgentId, body: String) -> ClaimedTask {
    let new = NewTask {
        agent_id: agent,
        agent_version: 1,
        input: TaskInput {
            body,
            ..Default::default()
        },
        external_ref: None,
        idempotency: None,
        max_attempts: 1,
        mode: bounty_core::ApiKeyMode::Live,
    };
    let bounty_store::Inserted::New(task) = store.create_task(account, &new).await.unwrap() else {
        panic!("the task was not created");
    };
    loop {
        let claimed = store
            .claim_tasks("test", 1, Duration::from_secs(3600))
            .await
            .unwrap()
            .pop()
            .expect("the new task is due");
        if claimed.task.id == task.id {
            return claimed;
        }
        // A reopen resumed an earlier task's conversation, and its turn
        // was due first: it is answered (worked for free) out of the way.
        let end = answered("resumed", bounty_core::Decision::Pass);
        let finished = bounty_agents::finish::finish_attempt(store, &claimed, &end, &[]).await;
        assert!(finished.unwrap());
    }
}

/// A completed attempt whose answer is `text` and whose verifiers decided
/// `decision`.
pub fn answered(text: &str, decision: bounty_core::Decision) -> bounty_store::AttemptEnd {
    bounty_store::AttemptEnd::Completed(bounty_store::TaskOutput {
        handoff: None,
        text: text.into(),
        errors: None,
        model: "m".into(),
        transcript: serde_json::json!([]),
        decision,
        verdicts: Vec::new(),
        cache: None,
    })
}
