//! Setup shared by the Postgres benchmarks: a fresh database per run on
//! the server `BENCH_DATABASE_URL` names, and a tenant with one agent.

use std::sync::Arc;
use std::time::Duration;

use bounty_core::verification::RulesSpec;
use bounty_core::{
    AccountId, AccountName, AgentId, AgentName, ApiKeyMode, ApiKeySecret, KeyName, ModelRoute, OutcomeType,
    SystemClock, VerificationPolicy, VerifierSpec,
};
use bounty_store::{AgentSpec, DatabaseOptions, Store};
use sqlx::Connection;

/// A database created for one run and dropped after it.
pub struct BenchDb {
    pub url: String,
    name: String,
    admin: sqlx::PgConnection,
}

impl BenchDb {
    pub async fn create(admin_url: &str, prefix: &str) -> BenchDb {
        let name = format!(
            "{prefix}_{}",
            bounty_core::id::new_ulid().to_string().to_lowercase()
        );
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to BENCH_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        BenchDb {
            url: bounty_store::testing::with_database(admin_url, &name),
            name,
            admin,
        }
    }

    /// A migrated store over the database.
    pub async fn store(&self, max_connections: u32) -> Store {
        store_at(&self.url, max_connections).await
    }

    pub async fn drop_database(mut self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database {} with (force)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .unwrap();
    }
}

/// An agent `name` routed to `model`, verified at once (`rules
/// {non_empty}`, no external signal to wait for).
pub fn verified_agent(name: &str, model: &str) -> AgentSpec {
    AgentSpec {
        name: AgentName::parse(name).unwrap(),
        instructions: "Answer.".to_owned(),
        model_route: ModelRoute::parse(vec![model.to_owned()]).unwrap(),
        output_schema: None,
        outcome_type: OutcomeType::parse("ticket.resolved").unwrap(),
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
    }
}

/// An account named `name` with one agent `bench` routed to `model`,
/// verified at once (`rules {non_empty}`, no external signal to wait for),
/// so a finished task is resolved and charged as soon as it ends.
pub async fn tenant(store: &Store, name: &str, model: &str) -> (AccountId, AgentId) {
    let (account, _) = store
        .create_account(
            &AccountName::parse(name).unwrap(),
            &KeyName::parse("bench").unwrap(),
            &ApiKeySecret::generate(ApiKeyMode::Live),
        )
        .await
        .unwrap();
    let agent = store
        .create_agent(account.id, &verified_agent("bench", model))
        .await
        .unwrap();
    (account.id, agent.id)
}

/// A live task for `agent` (version 1) with `body`, allowed `max_attempts`.
pub fn new_task(agent: AgentId, body: String, max_attempts: u32) -> bounty_store::NewTask {
    bounty_store::NewTask {
        agent_id: agent,
        agent_version: 1,
        input: bounty_core::TaskInput {
            body,
            ..Default::default()
        },
        external_ref: None,
        idempotency: None,
        max_attempts,
        mode: ApiKeyMode::Live,
    }
}

/// A completed attempt that its verifiers passed: the finish resolves and
/// charges it.
#[allow(dead_code)] // not every bench finishes tasks
pub fn resolved() -> bounty_store::AttemptEnd {
    bounty_store::AttemptEnd::Completed(bounty_store::TaskOutput {
        handoff: None,
        text: "ok".into(),
        errors: None,
        model: "m".into(),
        transcript: serde_json::json!([]),
        decision: bounty_core::Decision::Pass,
        verdicts: Vec::new(),
        cache: None,
    })
}

/// A migrated store over the database at `url` (SQLite or Postgres).
pub async fn store_at(url: &str, max_connections: u32) -> Store {
    let store = Store::connect(
        &DatabaseOptions {
            url: url.to_owned(),
            max_connections,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(5),
        },
        Arc::new(SystemClock),
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// The value after `name` on the command line, or `default`.
#[allow(dead_code)] // queue_throughput parses its own
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}
