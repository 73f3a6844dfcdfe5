//! Agents, versioned: an update never changes a version, it adds one.

use bounty_core::{
    AccountId, AgentId, AgentName, GenerationParams, KnowledgeSourceId, ModelRoute, OutcomeType, PageLimit,
    RoutingPolicy, Timestamp, ToolHeader, ToolSpec, VerificationPolicy,
};

use crate::column::{Json, Text};
use crate::db::{BeginWrite, on_pool};
use crate::{Page, Store, StoreError};

/// Everything that defines one version of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub name: AgentName,
    /// The system prompt.
    pub instructions: String,
    pub model_route: ModelRoute,
    pub output_schema: Option<serde_json::Value>,
    pub outcome_type: OutcomeType,
    pub verifier_policy: VerificationPolicy,
    pub params: GenerationParams,
    /// Cascade, cache and shadow settings.
    pub routing: RoutingPolicy,
    /// HTTP tools, their header values sealed ([`bounty_core::ToolHeader::Sealed`]).
    pub tools: Vec<ToolSpec>,
    /// The account's knowledge sources the agent may search.
    pub knowledge: Vec<KnowledgeSourceId>,
    /// Tool calls per turn before the agent must answer.
    pub max_steps: u32,
    /// Offer the built-in `handoff` tool; escalate instead of failing when
    /// the last cascade step is not verified.
    pub handoff: bool,
}

/// The values of the agent fields added with tools (migration 0023) for a
/// definition that names none.
pub const DEFAULT_MAX_STEPS: u32 = 4;

/// A partial update: unset fields keep the current version's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentPatch {
    pub name: Option<AgentName>,
    pub instructions: Option<String>,
    pub model_route: Option<ModelRoute>,
    /// `Some(None)` removes the schema.
    pub output_schema: Option<Option<serde_json::Value>>,
    pub outcome_type: Option<OutcomeType>,
    pub verifier_policy: Option<VerificationPolicy>,
    pub params: Option<GenerationParams>,
    pub routing: Option<RoutingPolicy>,
    /// Replaces the whole list (header values sealed).
    pub tools: Option<Vec<ToolSpec>>,
    pub knowledge: Option<Vec<KnowledgeSourceId>>,
    pub max_steps: Option<u32>,
    pub handoff: Option<bool>,
}

/// One version of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: AgentId,
    pub account_id: AccountId,
    /// The version shown.
    pub version: i32,
    /// The version new tasks run.
    pub current_version: i32,
    pub name: String,
    pub instructions: String,
    pub model_route: Vec<String>,
    pub output_schema: Option<serde_json::Value>,
    pub outcome_type: OutcomeType,
    pub verifier_policy: VerificationPolicy,
    pub params: GenerationParams,
    pub routing: RoutingPolicy,
    /// HTTP tools; header values sealed, opened only for a call.
    pub tools: Vec<ToolSpec>,
    /// Knowledge sources it may search; a deleted one stops matching.
    pub knowledge: Vec<KnowledgeSourceId>,
    /// Tool calls per turn before it must answer.
    pub max_steps: u32,
    /// Whether the built-in `handoff` tool is offered, and a last cascade
    /// step that is not verified escalates rather than fails.
    pub handoff: bool,
    /// When the agent was created.
    pub created_at: Timestamp,
    /// When this version was created.
    pub version_created_at: Timestamp,
}

macro_rules! agent_columns {
    () => {
        "a.id, a.account_id, v.version, a.current_version, v.name, v.instructions, v.model_route,
         v.output_schema, v.outcome_type, v.verifier_policy, v.params, v.routing, v.tools, v.knowledge,
         v.max_steps, v.handoff, a.created_at, v.created_at as version_created_at"
    };
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: Text<AgentId>,
    account_id: Text<AccountId>,
    version: i32,
    current_version: i32,
    name: String,
    instructions: String,
    model_route: Json<Vec<String>>,
    output_schema: Option<Json<serde_json::Value>>,
    outcome_type: Text<OutcomeType>,
    verifier_policy: Json<VerificationPolicy>,
    params: Json<GenerationParams>,
    routing: Json<RoutingPolicy>,
    tools: Json<Vec<ToolSpec>>,
    knowledge: Json<Vec<KnowledgeSourceId>>,
    max_steps: i32,
    handoff: bool,
    created_at: Timestamp,
    version_created_at: Timestamp,
}

impl From<AgentRow> for Agent {
    fn from(r: AgentRow) -> Self {
        // Written only through `spec::max_steps` (1 to 16); a value out of
        // u32 cannot have been stored, and reads as the default.
        let max_steps = u32::try_from(r.max_steps).unwrap_or(DEFAULT_MAX_STEPS);
        Agent {
            id: r.id.0,
            account_id: r.account_id.0,
            version: r.version,
            current_version: r.current_version,
            name: r.name,
            instructions: r.instructions,
            model_route: r.model_route.0,
            output_schema: r.output_schema.map(Json::into_inner),
            outcome_type: r.outcome_type.0,
            verifier_policy: r.verifier_policy.0,
            params: r.params.0,
            routing: r.routing.0,
            tools: r.tools.0,
            knowledge: r.knowledge.0,
            max_steps,
            handoff: r.handoff,
            created_at: r.created_at,
            version_created_at: r.version_created_at,
        }
    }
}

fn to_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("agent parts serialize to JSON")
}

/// Inserts one version row.
async fn insert_version<'c, DB>(
    conn: impl sqlx::Executor<'c, Database = DB>,
    account: AccountId,
    id: AgentId,
    version: i32,
    spec: &AgentSpec,
    now: Timestamp,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Timestamp: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    // Header values are secrets: this table holds them sealed, or not at
    // all. A plain value here is a caller's bug, refused before any write.
    if let Some((tool, header)) = spec.tools.iter().find_map(|t| {
        t.headers
            .iter()
            .find(|(_, h)| !matches!(h, ToolHeader::Sealed(_)))
            .map(|(name, _)| (&t.name, name))
    }) {
        return Err(StoreError::Corrupt(format!(
            "tool {tool:?}: header {header:?} is not sealed; tool header values are stored sealed only"
        )));
    }
    sqlx::query::<DB>(
        "insert into agent_versions (agent_id, version, account_id, name, instructions, model_route,
             output_schema, outcome_type, verifier_policy, params, routing, created_at,
             tools, knowledge, max_steps, handoff)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(id.to_string())
    .bind(version)
    .bind(account.to_string())
    .bind(spec.name.as_str().to_owned())
    .bind(spec.instructions.clone())
    .bind(to_json(&spec.model_route))
    .bind(spec.output_schema.as_ref().map(to_json))
    .bind(spec.outcome_type.as_str().to_owned())
    .bind(to_json(&spec.verifier_policy))
    .bind(to_json(&spec.params))
    .bind(to_json(&spec.routing))
    .bind(now)
    .bind(to_json(&spec.tools))
    .bind(to_json(&spec.knowledge))
    .bind(i64::from(spec.max_steps))
    .bind(spec.handoff)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Creates an agent at version 1. A name already used by the account
    /// fails with constraint `agents_account_id_name_key`.
    pub async fn create_agent(&self, account: AccountId, spec: &AgentSpec) -> Result<Agent, StoreError> {
        self.create_agent_with_id(account, AgentId::new(), spec).await
    }

    /// [`Store::create_agent`] under an id chosen beforehand: the id its
    /// tools' header values were sealed for
    /// ([`bounty_core::tool::tool_header_aad`]).
    pub async fn create_agent_with_id(
        &self,
        account: AccountId,
        id: AgentId,
        spec: &AgentSpec,
    ) -> Result<Agent, StoreError> {
        let now = self.now();
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "insert into agents (id, account_id, name, current_version, created_at, updated_at)
                 values ($1, $2, $3, 1, $4, $4)",
            )
            .bind(id.to_string())
            .bind(account.to_string())
            .bind(spec.name.as_str().to_owned())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_version(&mut *tx, account, id, 1, spec, now).await?;
            tx.commit().await?;
        });
        Ok(Agent {
            id,
            account_id: account,
            version: 1,
            current_version: 1,
            name: spec.name.as_str().to_owned(),
            instructions: spec.instructions.clone(),
            model_route: spec.model_route.names().to_vec(),
            output_schema: spec.output_schema.clone(),
            outcome_type: spec.outcome_type.clone(),
            verifier_policy: spec.verifier_policy.clone(),
            params: spec.params,
            routing: spec.routing.clone(),
            tools: spec.tools.clone(),
            knowledge: spec.knowledge.clone(),
            max_steps: spec.max_steps,
            handoff: spec.handoff,
            created_at: now,
            version_created_at: now,
        })
    }

    /// One of the account's agents: its current version, or `version`.
    pub async fn get_agent(
        &self,
        account: AccountId,
        id: AgentId,
        version: Option<i32>,
    ) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", agent_columns!(), " from agents a
                 join agent_versions v on v.agent_id = a.id and v.version = coalesce($3, a.current_version)
                 where a.account_id = $1 and a.id = $2"
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(version)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Agent::from))
    }

    /// One of the account's agents by name, at its current version.
    pub async fn find_agent_by_name(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<Agent>, StoreError> {
        let row: Option<AgentRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", agent_columns!(), " from agents a
                 join agent_versions v on v.agent_id = a.id and v.version = a.current_version
                 where a.account_id = $1 and a.name = $2"
            ))
            .bind(account.to_string())
            .bind(name.to_owned())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Agent::from))
    }

    /// The account's agents at their current versions, newest first.
    pub async fn list_agents(
        &self,
        account: AccountId,
        limit: PageLimit,
        after: Option<AgentId>,
    ) -> Result<Page<Agent>, StoreError> {
        let rows: Vec<AgentRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", agent_columns!(), " from agents a
                 join agent_versions v on v.agent_id = a.id and v.version = a.current_version
                 where a.account_id = $1 and ($2 is null or a.id < $2)
                 order by a.id desc
                 limit $3"
            ))
            .bind(account.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let agents = rows.into_iter().map(Agent::from).collect();
        Ok(Page::from_overfetch(agents, limit.get(), |a| a.id.to_string()))
    }

    /// One of the account's agents, every version of it, newest first
    /// (each whole, its policy included): the dashboard's policy history.
    /// `before` continues from a page's cursor (a version number); empty
    /// when the account has no such agent.
    pub async fn list_agent_versions(
        &self,
        account: AccountId,
        id: AgentId,
        limit: PageLimit,
        before: Option<i32>,
    ) -> Result<Page<Agent>, StoreError> {
        let rows: Vec<AgentRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", agent_columns!(), " from agents a
                 join agent_versions v on v.agent_id = a.id and v.account_id = a.account_id
                 where a.account_id = $1 and a.id = $2 and ($3 is null or v.version < $3)
                 order by v.version desc
                 limit $4"
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(before)
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let versions = rows.into_iter().map(Agent::from).collect();
        Ok(Page::from_overfetch(versions, limit.get(), |a| {
            a.version.to_string()
        }))
    }

    /// Adds a version made of the current one with `patch` applied, and
    /// makes it current. `None` when the account has no such agent.
    ///
    /// The transaction starts with the write to `agents`, so concurrent
    /// updates queue on that row (or on SQLite's write lock) and each gets
    /// its own version number.
    pub async fn update_agent(
        &self,
        account: AccountId,
        id: AgentId,
        patch: &AgentPatch,
    ) -> Result<Option<Agent>, StoreError> {
        let now = self.now();
        let updated = on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let version: Option<(i32,)> = sqlx::query_as(
                "update agents set current_version = current_version + 1, updated_at = $3,
                     name = coalesce($4, name)
                 where account_id = $1 and id = $2
                 returning current_version",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(now)
            .bind(patch.name.as_ref().map(|n| n.as_str().to_owned()))
            .fetch_optional(&mut *tx)
            .await?;
            let Some((version,)) = version else {
                return Ok(None);
            };
            let previous: AgentRow = sqlx::query_as(concat!(
                "select ", agent_columns!(), " from agents a
                 join agent_versions v on v.agent_id = a.id and v.version = $3
                 where a.account_id = $1 and a.id = $2"
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(version - 1)
            .fetch_one(&mut *tx)
            .await?;
            let previous = Agent::from(previous);
            let spec = merge(previous, patch)?;
            insert_version(&mut *tx, account, id, version, &spec, now).await?;
            // Cached answers were verified for an older version: a changed
            // agent must not serve them.
            sqlx::query("delete from answer_cache where account_id = $1 and agent_id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            version
        });
        self.get_agent(account, id, Some(updated)).await
    }
}

fn merge(previous: Agent, patch: &AgentPatch) -> Result<AgentSpec, StoreError> {
    let stored = |column: &str, e: bounty_core::agent::AgentFieldError| {
        StoreError::Corrupt(format!("agents.{column}: {e}"))
    };
    Ok(AgentSpec {
        name: match &patch.name {
            Some(n) => n.clone(),
            None => AgentName::parse(&previous.name).map_err(|e| stored("name", e))?,
        },
        instructions: patch.instructions.clone().unwrap_or(previous.instructions),
        model_route: match &patch.model_route {
            Some(r) => r.clone(),
            None => ModelRoute::parse(previous.model_route).map_err(|e| stored("model_route", e))?,
        },
        output_schema: patch.output_schema.clone().unwrap_or(previous.output_schema),
        outcome_type: match &patch.outcome_type {
            Some(o) => o.clone(),
            None => previous.outcome_type,
        },
        verifier_policy: patch.verifier_policy.clone().unwrap_or(previous.verifier_policy),
        params: patch.params.unwrap_or(previous.params),
        routing: patch.routing.clone().unwrap_or(previous.routing),
        tools: patch.tools.clone().unwrap_or(previous.tools),
        knowledge: patch.knowledge.clone().unwrap_or(previous.knowledge),
        max_steps: patch.max_steps.unwrap_or(previous.max_steps),
        handoff: patch.handoff.unwrap_or(previous.handoff),
    })
}

/// The agent a task names: its id, or its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKey<'a> {
    Id(AgentId),
    Name(&'a str),
}

/// What admitting a task reads, in the transaction that inserts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The account's status; `None` when there is no such account.
    pub status: Option<bounty_core::AccountStatus>,
    /// The agent and the version new tasks run; `None` when the account
    /// has no such agent.
    pub agent: Option<(AgentId, i32)>,
    /// Whether the account has a monthly spending cap: only then does a
    /// live task take the billing lock to reserve under it.
    pub capped: bool,
}

/// The account's status, the agent's id and version, the account's cap.
type AdmissionRow = (String, Option<String>, Option<i32>, Option<i64>);

/// The account's status, its agent `key` at its current version, and
/// whether it has a spending cap, in one read of `tx`: what a new task needs checked in the transaction that
/// inserts it, so that nothing is read before it.
pub async fn admission(
    tx: &mut crate::Tx,
    account: AccountId,
    key: AgentKey<'_>,
) -> Result<Admission, StoreError> {
    let (id, name) = match key {
        AgentKey::Id(id) => (Some(id.to_string()), None),
        AgentKey::Name(name) => (None, Some(name.to_owned())),
    };
    let row: Option<AdmissionRow> = tx
        .fetch_optional(
            "select acc.status, a.id, a.current_version, b.monthly_cap_micros from accounts acc
             left join agents a on a.account_id = acc.id
                 and a.id = coalesce($2, (select n.id from agents n where n.account_id = $1 and n.name = $3))
             left join account_billing b on b.account_id = acc.id
             where acc.id = $1",
            crate::tx::args![account.to_string(), id, name],
        )
        .await?;
    let Some((status, id, version, cap)) = row else {
        return Ok(Admission {
            status: None,
            agent: None,
            capped: false,
        });
    };
    let status = status
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("accounts.status: {e}")))?;
    let agent = match (id, version) {
        (Some(id), Some(version)) => Some((
            id.parse()
                .map_err(|e| StoreError::Corrupt(format!("agents.id: {e}")))?,
            version,
        )),
        _ => None,
    };
    Ok(Admission {
        status: Some(status),
        agent,
        capped: cap.is_some(),
    })
}
