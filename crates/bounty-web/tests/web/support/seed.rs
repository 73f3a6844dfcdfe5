//! Seeding through the store's public API, the way the workspace's
//! billing fixtures do: accounts with an agent, tasks taken through the
//! real claim and finish path (so outcomes, receipts and charges are the
//! real ones), users, and invoices as Stripe would describe them.

use std::time::Duration;

use bounty_core::verification::RulesSpec;
use bounty_core::{
    AccountId, AccountName, AgentId, AgentName, ApiKeyId, ApiKeyMode, ApiKeySecret, Currency, Decision,
    KeyName, ModelRoute, Money, OperatorId, OutcomeType, TaskId, TaskInput, UserId, VerificationPolicy,
    VerifierSpec, VerifierVerdict,
};
use bounty_store::{
    AgentSpec, AttemptEnd, Email, NewModelCall, NewTask, Store, TaskError, TaskOutput, UserRole,
};

use super::cheap_hasher;

/// The password every seeded user has.
pub const PASSWORD: &str = "correct horse battery staple";

/// An account with one agent and its first key.
pub struct Tenant {
    pub account: AccountId,
    pub agent: AgentId,
    pub key: ApiKeyId,
    pub key_prefix: String,
}

/// A new account `name` with agent `support` and key `first key`.
pub async fn tenant(store: &Store, name: &str) -> Tenant {
    let secret = ApiKeySecret::generate(ApiKeyMode::Live);
    let (account, key) = store
        .create_account(
            &AccountName::parse(name).expect("name"),
            &KeyName::parse("first key").expect("key name"),
            &secret,
        )
        .await
        .expect("account");
    let agent = store
        .create_agent(
            account.id,
            &AgentSpec {
                name: AgentName::parse("support").expect("agent name"),
                instructions: "Answer the ticket.".into(),
                model_route: ModelRoute::parse(vec!["small".into()]).expect("route"),
                output_schema: None,
                outcome_type: OutcomeType::parse("ticket.resolved").expect("outcome type"),
                // Verified at once: no external signal to wait for.
                verifier_policy: VerificationPolicy {
                    verifiers: vec![VerifierSpec::Rules(RulesSpec {
                        non_empty: true,
                        ..RulesSpec::default()
                    })],
                    ..VerificationPolicy::default()
                },
                params: Default::default(),
                routing: Default::default(),
                tools: Vec::new(),
                knowledge: Vec::new(),
                max_steps: bounty_store::DEFAULT_MAX_STEPS,
                handoff: false,
            },
        )
        .await
        .expect("agent");
    Tenant {
        account: account.id,
        agent: agent.id,
        key: key.id,
        key_prefix: key.prefix,
    }
}

/// A user of `account` with [`PASSWORD`]; its id.
pub async fn user(store: &Store, account: AccountId, email: &str, role: UserRole) -> UserId {
    let hash = cheap_hasher().hash(PASSWORD).expect("hash");
    store
        .create_user(account, &Email::parse(email).expect("email"), &hash, role)
        .await
        .expect("create user")
        .expect("the account exists")
        .id
}

/// An operator with [`PASSWORD`]; its id.
pub async fn operator(store: &Store, email: &str) -> OperatorId {
    let hash = cheap_hasher().hash(PASSWORD).expect("hash");
    store
        .create_operator(&Email::parse(email).expect("email"), &hash)
        .await
        .expect("create operator")
        .expect("a new operator")
        .id
}

/// Queues a live task and leaves it queued.
pub async fn queued_task(store: &Store, t: &Tenant, subject: &str) -> TaskId {
    queued_task_in(store, t, subject, ApiKeyMode::Live).await
}

/// Queues a task of `mode` (as a key of that mode would) and leaves it
/// queued.
pub async fn queued_task_in(store: &Store, t: &Tenant, subject: &str, mode: ApiKeyMode) -> TaskId {
    let new = NewTask {
        agent_id: t.agent,
        agent_version: 1,
        input: TaskInput {
            subject: subject.into(),
            body: format!("Body of {subject}"),
            ..Default::default()
        },
        external_ref: None,
        idempotency: None,
        max_attempts: 1,
        mode,
    };
    match store.create_task(t.account, &new).await.expect("create task") {
        bounty_store::Inserted::New(task) => task.id,
        other => panic!("not created: {other:?}"),
    }
}

fn call(cost_micros: i64) -> NewModelCall {
    NewModelCall {
        model: "small-model-q4".into(),
        provider: Some("local".into()),
        prompt_tokens: 120,
        completion_tokens: 48,
        cached_tokens: 0,
        reasoning_tokens: 0,
        latency_us: 250_000,
        cost: Money::from_micros(cost_micros, Currency::USD),
        cache_hit: false,
        byok: false,
        error: None,
        verdict: None,
        shadow: false,
    }
}

async fn finish(store: &Store, t: &Tenant, subject: &str, end: AttemptEnd, calls: &[NewModelCall]) -> TaskId {
    let id = queued_task(store, t, subject).await;
    let mut claimed = store
        .claim_tasks("test-worker", 1, Duration::from_secs(3600))
        .await
        .expect("claim");
    let claimed = claimed.pop().expect("the new task is due");
    assert_eq!(claimed.task.id, id, "only the new task is due");
    assert!(
        bounty_agents::finish::finish_attempt(store, &claimed, &end, calls)
            .await
            .expect("finish")
    );
    id
}

/// A task the verifier passed: resolved and charged, with one model call.
pub async fn resolved_task(store: &Store, t: &Tenant, subject: &str) -> TaskId {
    let end = AttemptEnd::Completed(TaskOutput {
        handoff: None,
        text: "Your refund is on its way.".into(),
        errors: None,
        model: "small-model-q4".into(),
        transcript: serde_json::json!([
            {"role": "system", "content": "Answer the ticket."},
            {"role": "user", "content": subject},
            {"role": "assistant", "content": "Your refund is on its way."}
        ]),
        decision: Decision::Pass,
        verdicts: vec![VerifierVerdict {
            verifier: "rules".into(),
            version: "rules/1".into(),
            decision: Decision::Pass,
            reason: "the reply names the refund".into(),
            inputs_hash: "0".repeat(64),
            confidence: None,
        }],
        cache: None,
    });
    finish(store, t, subject, end, &[call(2_500)]).await
}

/// A task whose attempt failed: failed outcome, never charged.
pub async fn failed_task(store: &Store, t: &Tenant, subject: &str) -> TaskId {
    let end = AttemptEnd::Failed(TaskError {
        code: "provider_error".into(),
        message: "the model was unreachable".into(),
    });
    finish(store, t, subject, end, &[call(1_000)]).await
}

/// An invoice of `account`, as a Stripe invoice object.
pub async fn invoice(store: &Store, account: AccountId, id: &str) {
    store
        .upsert_invoices(
            account,
            &[bounty_billing::stripe_events::parse_invoice(&serde_json::json!({
                "id": id,
                "status": "open",
                "currency": "usd",
                "amount_due": 1250,
                "amount_paid": 0,
                "total": 1250,
                "period_start": 1_777_593_600,
                "period_end": 1_780_272_000,
                "hosted_invoice_url": format!("https://invoice.stripe.com/i/{id}"),
            }))
            .expect("an invoice")],
        )
        .await
        .expect("invoice");
}
