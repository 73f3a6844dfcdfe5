//! `bounty serve --demo`: a working dashboard within a minute. Seeds a
//! demo account (named as such), a dashboard user, two agents on a real
//! local model, a Standard Webhooks integration, a few tickets that the
//! in-process worker then really works (one agent's answers pass, the
//! other's never do, so both a charge and "No charge" are there to see),
//! and a sample invoice.
//!
//! The model is a tiny random-weight GGUF written to
//! `bounty-data/demo-model.gguf`: llama.cpp runs it for real, but its text
//! is noise. Seeding is idempotent: a second `--demo` finds the demo user,
//! gives it a new password, and seeds nothing again.

use std::path::Path;

use anyhow::Context;
use bounty_core::{
    AccountName, AgentName, ApiKeyMode, ApiKeySecret, KeyName, ModelRoute, OutcomeType, TaskInput,
    VerificationPolicy,
};
use bounty_integrations::{IntegrationKind, Keyring, generate_secret};
use bounty_models::ModelConfig;
use bounty_store::{AgentSpec, Email, NewIntegration, NewTask, Store, UserRole};
use secrecy::ExposeSecret;

use super::users::generate_password;

/// The demo user's login.
pub const DEMO_EMAIL: &str = "demo@bounty.local";
/// The model name the demo agents use.
pub const DEMO_MODEL: &str = "demo";
const DEMO_ACCOUNT: &str = "Demo (sample data)";

/// What a newcomer needs to log in and send a ticket.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
    pub account: bounty_core::AccountId,
    /// The demo integration and its inbound secret, when it was made now.
    pub integration: Option<(bounty_core::IntegrationId, String)>,
}

/// The demo model's configuration, writing the GGUF when it is missing.
pub fn demo_model(data_dir: &Path) -> anyhow::Result<ModelConfig> {
    let path = data_dir.join("demo-model.gguf");
    if !path.is_file() {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        bounty_models::tiny_gguf::TinyLlama::default()
            .write(&path)
            .with_context(|| format!("cannot write the demo model to {}", path.display()))?;
    }
    let table = serde_json::json!({
        "provider": "llama",
        "path": path,
        "context_size": 512,
        "threads": 1,
        "defaults": {"max_tokens": 48},
        "price": {"per_cpu_second": "0.0002"},
    });
    serde_json::from_value(table).context("the demo model's configuration")
}

/// Seeds the demo (see the module doc); `keyring` seals the integration's
/// secret.
pub async fn seed(store: &Store, keyring: &Keyring) -> anyhow::Result<DemoLogin> {
    let hasher = bounty_web::PasswordHasher::default();
    let email = Email::parse(DEMO_EMAIL).map_err(|_| anyhow::anyhow!("the demo email does not parse"))?;
    let password = generate_password()?;
    let hash = hasher.hash(&password).context("cannot hash the demo password")?;
    if let Some(existing) = store.find_user_by_email(&email).await? {
        store
            .set_password(existing.user.account_id, existing.user.id, &hash)
            .await?;
        return Ok(DemoLogin {
            email: DEMO_EMAIL.to_owned(),
            password,
            account: existing.user.account_id,
            integration: None,
        });
    }
    let (account, _) = store
        .create_account(
            &AccountName::parse(DEMO_ACCOUNT).map_err(|e| anyhow::anyhow!("{e}"))?,
            &KeyName::parse("demo").map_err(|e| anyhow::anyhow!("{e}"))?,
            &ApiKeySecret::generate(ApiKeyMode::Test),
        )
        .await?;
    store
        .create_user(account.id, &email, &hash, UserRole::Owner)
        .await?
        .context("the demo user was not created")?;
    let agent = |name: &str, instructions: &str, policy: serde_json::Value| -> anyhow::Result<AgentSpec> {
        Ok(AgentSpec {
            name: AgentName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
            instructions: instructions.to_owned(),
            model_route: ModelRoute::parse(vec![DEMO_MODEL.to_owned()])
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            output_schema: None,
            outcome_type: OutcomeType::parse("ticket.resolved").map_err(|e| anyhow::anyhow!("{e}"))?,
            verifier_policy: serde_json::from_value::<VerificationPolicy>(policy)?,
            params: Default::default(),
            routing: Default::default(),
        })
    };
    let support = store
        .create_agent(
            account.id,
            &agent(
                "demo-support",
                "You answer support tickets kindly. (Demo agent: its model is random noise.)",
                serde_json::json!({"verifiers": [{"kind": "rules", "non_empty": true}]}),
            )?,
        )
        .await?;
    let strict = store
        .create_agent(
            account.id,
            &agent(
                "demo-strict",
                "Demo agent whose verifier never passes: every outcome is failed, never charged.",
                serde_json::json!({"verifiers": [{"kind": "rules", "must_match": ["(?i)refund issued"]}]}),
            )?,
        )
        .await?;
    // A Standard Webhooks integration for demo-support.
    let integration_id = bounty_core::IntegrationId::new();
    let secret = generate_secret(IntegrationKind::Standard).context("the OS random generator failed")?;
    let aad = bounty_integrations::settings::sealing_aad(
        &account.id.to_string(),
        &integration_id.to_string(),
        "inbound",
    );
    let sealed = keyring
        .seal(secret.expose_secret().as_bytes(), aad.as_bytes())
        .context("cannot seal the demo integration's secret")?;
    store
        .create_integration(
            account.id,
            &NewIntegration {
                id: integration_id,
                kind: IntegrationKind::Standard.as_str().to_owned(),
                name: "Demo helpdesk (Standard Webhooks)".to_owned(),
                agent_id: support.id,
                secret_sealed: sealed,
                reply_sealed: None,
                mode: bounty_core::ApiKeyMode::Live,
            },
        )
        .await?;
    // Tickets the worker runs as soon as `serve` starts.
    let tickets = [
        (
            &support,
            "Where is my refund?",
            "I returned the blue jacket two weeks ago. (demo ticket)",
        ),
        (
            &support,
            "Change my delivery address",
            "Please ship order 1042 to my office instead. (demo ticket)",
        ),
        (
            &strict,
            "Cancel my subscription",
            "I would like to cancel at the end of the month. (demo ticket)",
        ),
    ];
    for (agent, subject, body) in tickets {
        store
            .create_task(
                account.id,
                &NewTask {
                    agent_id: agent.id,
                    agent_version: agent.current_version,
                    input: TaskInput {
                        subject: subject.to_owned(),
                        body: body.to_owned(),
                        customer: None,
                        metadata: serde_json::Map::from_iter([("demo".to_owned(), serde_json::json!(true))]),
                    },
                    external_ref: None,
                    idempotency: None,
                    max_attempts: 1,
                    mode: bounty_core::ApiKeyMode::Live,
                },
            )
            .await?;
    }
    // A sample invoice, as Stripe would send it (no Stripe in the demo).
    let now = store.now().timestamp();
    store
        .upsert_invoices(
            account.id,
            &[serde_json::json!({
                "id": format!("in_demo_{}", &account.id.to_string()[5..15]),
                "object": "invoice",
                "status": "paid",
                "currency": "usd",
                "amount_due": 1200,
                "amount_paid": 1200,
                "total": 1200,
                "period_start": now - 30 * 86_400,
                "period_end": now,
                "hosted_invoice_url": null,
            })],
        )
        .await?;
    Ok(DemoLogin {
        email: DEMO_EMAIL.to_owned(),
        password,
        account: account.id,
        integration: Some((integration_id, secret.expose_secret().to_owned())),
    })
}
