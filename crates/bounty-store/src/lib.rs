//! Bounty's storage: one store over SQLite or Postgres.
//!
//! [`Store`] is the only thing in Bounty that speaks SQL. It wraps either
//! an embedded SQLite database (the default, for one machine) or Postgres
//! (production, and scale-out across processes), and offers the same
//! repository functions over both. The SQL is written once, in the
//! portable subset both accept (`$N` placeholders included), and the
//! `on_pool!` macro compiles each query once per backend. Where SQL must
//! one day differ (the queue claim's `for update skip locked`), that
//! statement is chosen per backend in `queue.rs`.
//!
//! Use cases live above the store, in their capability crates: they begin
//! a [`Tx`] ([`Store::begin`]), call the repository functions that take it
//! (`insert_task`, `insert_delivery`, …), and commit. The store knows
//! tables, not business rules.
//!
//! Tenancy is by construction: every repository function that reads or
//! writes an account's rows takes that [`AccountId`](bounty_core::AccountId)
//! first and puts it in the `where` clause, so another tenant's row is
//! simply not found. The exceptions are named for what they are:
//! [`Store::authenticate`] (which is how a request learns its account) and
//! the `admin_*` functions used only by the operator CLI.

mod accounts;
mod agents;
pub mod answer_cache;
mod api_keys;
mod byok;
mod column;
pub mod conversation;
mod db;
mod deliveries;
pub mod disputes;
mod distill;
mod error;
pub mod gateway;
pub mod gateway_billing;
pub mod gateway_budget;
pub mod group;
pub mod health;
pub mod integrations;
pub mod knowledge;
mod knowledge_retrieval;
pub mod ledger;
mod margin;
pub mod notifications;
mod operators;
pub mod outbox;
pub mod outcomes;
mod page;
mod password_resets;
pub mod queue;
mod sql;
mod stripe_billing;
pub mod stripe_events;
pub mod tasks;
mod team;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tool_calls;
mod tx;
pub mod usage;
mod users;
pub mod webhooks;

pub use accounts::Account;
pub use agents::{Admission, Agent, AgentKey, AgentPatch, AgentSpec, DEFAULT_MAX_STEPS, admission};
pub use answer_cache::{CacheSummary, CacheUse, CachedAnswer, ModelRates};
pub use api_keys::{ApiKey, AuthenticatedKey};
pub use byok::{ByokRecord, byok_sealing_aad};
pub use conversation::ConversationMessage;
pub use db::{Backend, DatabaseOptions, Store};
pub use deliveries::{
    DeliveryAnswer, DeliveryRecord, DeliveryToInsert, NewDelivery, deliveries_by_dedupe_keys,
    delivery_by_dedupe_key, insert_answered_deliveries, insert_answered_delivery, insert_delivery,
    latest_outcome_of_ticket, save_delivery_result,
};
pub use disputes::{Dispute, NewDispute};
pub use distill::TraceRow;
pub use error::StoreError;
pub use group::{GroupCommit, GroupStats, Grouped, SetWork, SetWritten, TxFuture};
pub use integrations::{Integration, NewIntegration};
pub use knowledge::{
    ChunkHit, DocumentChange, EmbeddedChunk, KnowledgeDocument, KnowledgeSource, NewKnowledgeSource,
    StoredDocument,
};
pub use knowledge_retrieval::{ChunkDetail, ChunkToEmbed, KnowledgeUrl, RetrievalSource};
pub use ledger::period_start;
pub use margin::MarginFigures;
pub use operators::{Operator, OperatorKey, OperatorLogin, OperatorSession};
pub use outbox::{Delivered, METER_EVENT_NAME, OutboxClaim, OutboxItem, OutboxStats};
pub use outcomes::{BillingInfo, EventEvidence, Outcome, OutcomeEventRecord, OutcomeFilter, Transfer};
pub use page::Page;
pub use password_resets::{Realm, ResetHolder, ResetRequests};
pub use queue::{AttemptEnd, ClaimedTask, TaskOutput};
pub use stripe_billing::{LedgerDay, StripeIds};
pub use stripe_events::{Invoice, StripeInvoice};
pub use tasks::{
    Idempotency, Inserted, IntakeTicket, KeyedTask, ModelCall, NewModelCall, NewTask, Task, TaskAttempt,
    TaskCursor, TaskError, TaskFilter, TaskPage, TaskToInsert, insert_task, insert_tasks,
    task_by_idempotency_key, task_in, task_of_ticket,
};
pub use team::{Invite, InviteAccepted, InviteCreated, NewInvite, TeamChange};
pub use tool_calls::{NewToolCall, ToolCallOutcome, ToolCallRecord};
pub use tx::Tx;
pub use usage::UsageBucket;
pub use users::{
    BadEmail, BadRole, Email, LoginFailures, NewSession, Session, SessionId, SessionTokenHash, TokenHash,
    User, UserLogin, UserRole,
};
