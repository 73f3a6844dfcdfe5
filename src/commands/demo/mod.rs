//! `bounty serve --demo`: a working dashboard within a minute, telling the
//! true story of outcome billing. Seeds a demo account (named as such), a
//! dashboard user, two agents on a real local model, a Standard Webhooks
//! integration, a sample invoice, an operator for the console, and a
//! month of history for the demo account and a second customer
//! ([`history`]).
//!
//! The model is a tiny random-weight GGUF written to
//! `bounty-data/demo-model.gguf`: llama.cpp runs it for real, but its text
//! is noise, and noise is never charged on its own:
//!
//! - `demo-strict` has a real rule its noise never meets
//!   (`must_match: (?i)refund issued`); its ticket, queued here, fails
//!   verification: "No charge".
//! - `demo-support` has no policy of its own, so it gets the default, the
//!   "assumed resolution": a reply that is not empty waits `provisional`
//!   until the helpdesk says. Its tickets come in through the integration
//!   from the demo's own helpdesk ([`helpdesk`]), which then marks one
//!   solved (charged) and the other solved and then reopened (reversed).
//!
//! The integration's secret is sealed under a master key kept in the data
//! directory ([`master_key`]), so a restarted demo still verifies its
//! deliveries. Seeding is idempotent: a second `--demo` finds the demo
//! user, gives it a new password, opens the integration's secret again to
//! show it, and seeds nothing again.

pub mod helpdesk;
pub mod history;
pub mod master_key;

use std::path::Path;

use anyhow::Context;
use bounty_agents::submit::{AgentRef, Source, TaskRequest, submit_task};
use bounty_core::{
    AccountId, AccountName, AgentId, AgentName, ApiKeyMode, ApiKeySecret, IntegrationId, IntegrationName,
    KeyName, ModelRoute, OutcomeType, PageLimit, SealPurpose, TaskInput, VerificationPolicy,
};
use bounty_integrations::{IntegrationKind, Keyring, generate_secret};
use bounty_models::ModelConfig;
use bounty_store::{AgentSpec, Email, NewIntegration, Store, UserRole};
use secrecy::{ExposeSecret, SecretString};

use super::users::generate_password;

/// The demo user's login.
pub const DEMO_EMAIL: &str = "demo@bounty.local";
/// The model name the demo agents use.
pub const DEMO_MODEL: &str = "demo";
const DEMO_ACCOUNT: &str = "Demo (sample data)";
/// The demo integration's name.
const DEMO_INTEGRATION: &str = "Demo helpdesk (Standard Webhooks)";

/// The demo operator's login (the console at `/ops`).
pub const DEMO_OPERATOR_EMAIL: &str = "ops@bounty.local";

/// What a newcomer needs to log in and send a ticket.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
    /// The demo operator's password (its email is [`DEMO_OPERATOR_EMAIL`]),
    /// new each run.
    pub operator_password: String,
    pub account: AccountId,
    /// The demo integration, when the account has it.
    pub integration: Option<DemoIntegration>,
}

/// The demo integration.
pub struct DemoIntegration {
    pub id: IntegrationId,
    /// Its inbound secret; `None` when it does not open under this run's
    /// master keys (sealed by a key no longer configured: `broken`).
    pub secret: Option<String>,
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

/// The demo operator, with a new password: created the first time, given
/// a new password (and its sessions ended) after.
async fn demo_operator(store: &Store, hasher: &bounty_web::PasswordHasher) -> anyhow::Result<String> {
    let email =
        Email::parse(DEMO_OPERATOR_EMAIL).map_err(|_| anyhow::anyhow!("the demo operator's email"))?;
    let password = generate_password()?;
    let hash = hasher
        .hash(&password)
        .context("cannot hash the demo operator's password")?;
    match store.operator_by_email(&email).await? {
        Some(op) => {
            store.set_operator_password(op.id, &hash).await?;
        }
        None => {
            store
                .create_operator(&email, &hash)
                .await?
                .context("the demo operator was not created")?;
        }
    }
    Ok(password)
}

/// Seeds the demo (see the module doc); `keyring` seals the integration's
/// secret, or opens it again when the demo was seeded before.
pub async fn seed(store: &Store, keyring: &Keyring) -> anyhow::Result<DemoLogin> {
    let hasher = bounty_web::PasswordHasher::default();
    let operator_password = demo_operator(store, &hasher).await?;
    let email = Email::parse(DEMO_EMAIL).map_err(|_| anyhow::anyhow!("the demo email does not parse"))?;
    let password = generate_password()?;
    let hash = hasher.hash(&password).context("cannot hash the demo password")?;
    if let Some(existing) = store.find_user_by_email(&email).await? {
        store
            .set_password(existing.user.account_id, existing.user.id, &hash)
            .await?;
        let account = existing.user.account_id;
        return Ok(DemoLogin {
            email: DEMO_EMAIL.to_owned(),
            password,
            operator_password,
            account,
            integration: demo_integration(store, keyring, account).await?,
        });
    }
    let (account, _) = store
        .create_account(
            &AccountName::parse(DEMO_ACCOUNT).map_err(|e| anyhow::anyhow!("{e}"))?,
            &KeyName::parse("demo").map_err(|e| anyhow::anyhow!("{e}"))?,
            &ApiKeySecret::generate(ApiKeyMode::Test),
        )
        .await?;
    let user = store
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
            tools: Vec::new(),
            knowledge: Vec::new(),
            max_steps: bounty_store::DEFAULT_MAX_STEPS,
            handoff: false,
        })
    };
    // No policy of its own: the default, charged only once the helpdesk
    // says the ticket is solved (or it is not reopened within the window).
    let support = store
        .create_agent(
            account.id,
            &agent(
                "demo-support",
                "You answer support tickets kindly. (Demo agent: its model is random noise, so a ticket is \
                 charged only when the helpdesk marks it solved.)",
                serde_json::to_value(VerificationPolicy::default())?,
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
    // A month of history, so every page shows something true: this
    // account's, and a second customer's beside it in the console.
    let today = store.now();
    history::seed(
        store,
        account.id,
        support.id,
        today,
        3,
        &bounty_core::Actor::User(user.id),
    )
    .await
    .context("cannot seed the demo's history")?;
    second_customer(store, today).await?;
    let (integration_id, secret) = create_integration(store, keyring, account.id, support.id).await?;
    queue_strict_ticket(store, account.id, strict.id).await?;
    sample_invoice(store, account.id).await?;
    Ok(DemoLogin {
        email: DEMO_EMAIL.to_owned(),
        password,
        operator_password,
        account: account.id,
        integration: Some(DemoIntegration {
            id: integration_id,
            secret: Some(secret.expose_secret().to_owned()),
        }),
    })
}

/// A second customer account with its own month of history (no login of
/// its own: the operator sees it in the console).
async fn second_customer(store: &Store, today: bounty_core::Timestamp) -> anyhow::Result<()> {
    let (account, _) = store
        .create_account(
            &AccountName::parse("Northwind (sample data)").map_err(|e| anyhow::anyhow!("{e}"))?,
            &KeyName::parse("demo").map_err(|e| anyhow::anyhow!("{e}"))?,
            &ApiKeySecret::generate(ApiKeyMode::Test),
        )
        .await?;
    let agent = store
        .create_agent(
            account.id,
            &AgentSpec {
                name: AgentName::parse("northwind-support").map_err(|e| anyhow::anyhow!("{e}"))?,
                instructions: "You answer Northwind's support tickets.".to_owned(),
                model_route: ModelRoute::parse(vec![DEMO_MODEL.to_owned()])
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                output_schema: None,
                outcome_type: OutcomeType::parse("ticket.resolved").map_err(|e| anyhow::anyhow!("{e}"))?,
                verifier_policy: VerificationPolicy::default(),
                params: Default::default(),
                routing: Default::default(),
                tools: Vec::new(),
                knowledge: Vec::new(),
                max_steps: bounty_store::DEFAULT_MAX_STEPS,
                handoff: false,
            },
        )
        .await?;
    let customer = bounty_core::Actor::operator("northwind-finance").map_err(|e| anyhow::anyhow!("{e}"))?;
    history::seed(store, account.id, agent.id, today, 2, &customer)
        .await
        .context("cannot seed the second demo customer's history")
}

/// A Standard Webhooks integration for `agent`, its secret sealed with
/// `keyring`: its id and the secret, to show.
async fn create_integration(
    store: &Store,
    keyring: &Keyring,
    account: AccountId,
    agent: AgentId,
) -> anyhow::Result<(IntegrationId, SecretString)> {
    let integration_id = IntegrationId::new();
    let secret = generate_secret(IntegrationKind::Standard).context("the OS random generator failed")?;
    let sealed = keyring
        .seal_for(
            account,
            integration_id,
            SealPurpose::Inbound,
            secret.expose_secret().as_bytes(),
        )
        .context("cannot seal the demo integration's secret")?;
    store
        .create_integration(
            account,
            &NewIntegration {
                id: integration_id,
                kind: IntegrationKind::Standard,
                name: IntegrationName::parse(DEMO_INTEGRATION).map_err(|e| anyhow::anyhow!("{e}"))?,
                agent_id: agent,
                secret_sealed: sealed,
                reply_sealed: None,
                mode: bounty_core::ApiKeyMode::Live,
            },
        )
        .await?;
    Ok((integration_id, secret))
}

/// The strict agent's ticket, which the worker runs as soon as `serve`
/// starts. The support tickets come from the demo's helpdesk instead,
/// through the integration (see `helpdesk`).
async fn queue_strict_ticket(store: &Store, account: AccountId, strict: AgentId) -> anyhow::Result<()> {
    let ticket = TaskRequest {
        agent: AgentRef::Id(strict),
        input: TaskInput {
            subject: "Cancel my subscription".to_owned(),
            body: "I would like to cancel at the end of the month. (demo ticket)".to_owned(),
            customer: None,
            metadata: serde_json::Map::from_iter([("demo".to_owned(), serde_json::json!(true))]),
        },
        external_ref: None,
        source: Source::Api { idempotency: None },
        mode: bounty_core::ApiKeyMode::Live,
        max_attempts: 1,
    };
    submit_task(store, account, ticket)
        .await
        .context("cannot queue the demo's ticket")?;
    Ok(())
}

/// A sample invoice, as Stripe would send it (no Stripe in the demo).
async fn sample_invoice(store: &Store, account: AccountId) -> anyhow::Result<()> {
    // The invoice Stripe would issue for the history's days: its usage
    // line is the export's `invoiced_amount_minor` over the same period,
    // so the invoice and its charges reconcile, as they do with Stripe.
    let today = store.now().date_naive();
    let start = today - chrono::Duration::days(history::DAYS);
    let midnight = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let (Some(from), Some(to)) = (midnight(start), midnight(today)) else {
        anyhow::bail!("the sample invoice's period");
    };
    let export = bounty_billing::exports::charge_export(store, account, ApiKeyMode::Live, from, to)
        .await
        .map_err(|e| anyhow::anyhow!("the sample invoice's charges: {e}"))?;
    let total = export.totals.invoiced_amount_minor;
    store
        .upsert_invoices(
            account,
            &[bounty_billing::stripe_events::parse_invoice(&serde_json::json!({
                "id": format!("in_demo_{}", &account.to_string()[5..15]),
                "object": "invoice",
                "status": "paid",
                "currency": "usd",
                "amount_due": total,
                "amount_paid": total,
                "total": total,
                "period_start": from.timestamp(),
                "period_end": to.timestamp(),
                "hosted_invoice_url": null,
            }))
            .map_err(|e| anyhow::anyhow!("the sample invoice: {e}"))?],
        )
        .await?;
    Ok(())
}

/// The demo account's integration, its secret opened with `keyring`.
async fn demo_integration(
    store: &Store,
    keyring: &Keyring,
    account: AccountId,
) -> anyhow::Result<Option<DemoIntegration>> {
    let limit = PageLimit::new(100).map_err(|e| anyhow::anyhow!("{e}"))?;
    let page = store.list_integrations(account, limit, None).await?;
    let Some(found) = page.items.into_iter().find(|i| i.name == DEMO_INTEGRATION) else {
        return Ok(None);
    };
    let secret = bounty_integrations::status::open_inbound(keyring, &found)
        .ok()
        .and_then(|plain| String::from_utf8(plain.to_vec()).ok());
    Ok(Some(DemoIntegration { id: found.id, secret }))
}
