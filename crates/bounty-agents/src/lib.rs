//! The agent runtime.
//!
//! - [`worker`]: claims tasks from the durable queue, runs each through the
//!   model router under a renewed lease, records every model call, and
//!   finishes the attempt (completed, retried with backoff, or failed).
//! - [`prompt`]: the chat messages an agent's instructions and a task's
//!   input become.
//! - [`schema`]: an agent's output JSON Schema, compiled once and checked
//!   against every output.
//!
//! Verification of the output (did it resolve the ticket?) is the next
//! stage of the pipeline; a `completed` task is what it starts from.

pub mod prompt;
pub mod schema;
pub mod worker;

pub use schema::OutputSchema;
pub use worker::{Worker, WorkerConfig};
