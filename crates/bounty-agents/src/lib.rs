//! The agent runtime, and the use cases that own tasks and agents.
//!
//! - [`spec`]: the checks of an agent's definition, one per field, for the
//!   API and the dashboard alike.
//! - [`submit`]: [`submit_task`], the one way a task enters the queue
//!   (the API, helpdesk intake, the CLI): account status, input policy,
//!   agent, then the insert with its idempotency and budget outcomes.
//! - [`conversation`]: a customer's message to a task (the API's
//!   `POST /v1/tasks/{id}/messages`, a helpdesk's reply): appended for the
//!   turn that will read it, or continuing a waiting answer as a new turn,
//!   or refused by a closed conversation.
//! - [`knowledge`]: knowledge sources: creating an upload source, adding
//!   documents, re-indexing (incremental and idempotent).
//! - [`tools`]: the tool executor: one HTTP call of an agent's tool, its
//!   arguments checked, its secrets opened and redacted, through the
//!   outbound policy; what the model is shown and what the record keeps.
//! - [`turn`]: one turn of an agent: the model, the tool calls it makes
//!   (at most `max_steps`, each recorded, side effects keyed for
//!   idempotency), the built-in `handoff`, and its answer.
//! - [`worker`]: claims tasks from the durable queue, runs each through the
//!   model router under a renewed lease, records every model call, and
//!   finishes the attempt (completed, retried with backoff, or failed).
//! - [`prompt`]: the chat messages an agent's instructions, a task's input
//!   and its conversation become.
//! - [`schema`]: an agent's output JSON Schema, compiled once and checked
//!   against every output.
//! - [`verify`]: runs an agent's verification policy (rules, LLM judge,
//!   external signal) on an output and combines the verdicts.
//!
//! A worker verifies each output under the lease that produced it, and
//! writes the task's end, its model calls and its outcome (with the charge
//! when the verifiers pass) in one transaction. Workers also lapse
//! outcomes whose signal window ended.

pub mod conversation;
pub mod finish;
pub mod gateway_task;
pub mod knowledge;
pub mod prompt;
pub mod schema;
pub mod spec;
pub mod submit;
pub mod tools;
pub mod turn;
pub mod verify;
pub mod worker;

pub use schema::OutputSchema;
pub use submit::{SubmitError, Submitted, TaskRequest, submit_task};
pub use worker::{OpenSecret, Worker, WorkerConfig};
