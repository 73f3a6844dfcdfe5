//! The agent runtime.
//!
//! - [`worker`]: claims tasks from the durable queue, runs each through the
//!   model router under a renewed lease, records every model call, and
//!   finishes the attempt (completed, retried with backoff, or failed).
//! - [`prompt`]: the chat messages an agent's instructions and a task's
//!   input become.
//! - [`schema`]: an agent's output JSON Schema, compiled once and checked
//!   against every output.
//! - [`verify`]: runs an agent's verification policy (rules, LLM judge,
//!   external signal) on an output and combines the verdicts.
//!
//! A worker verifies each output under the lease that produced it, and
//! writes the task's end, its model calls and its outcome (with the charge
//! when the verifiers pass) in one transaction. Workers also lapse
//! outcomes whose signal window ended.

pub mod finish;
pub mod prompt;
pub mod schema;
pub mod verify;
pub mod worker;

pub use schema::OutputSchema;
pub use worker::{OpenSecret, Worker, WorkerConfig};
