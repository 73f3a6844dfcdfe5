//! Black-box tests of Bounty: the real server on `127.0.0.1:0` against real
//! SQLite (a temp file) and real Postgres (a fresh database per test), and
//! the real `bounty` binary for the CLI and multi-process behaviour.
//!
//! Postgres tests need `TEST_DATABASE_URL`; `scripts/test.sh` provides one,
//! starting a throwaway server when none is given.

#[macro_use]
mod support;

mod account;
mod agent_loop;
mod agent_tools;
mod agents;
mod api_keys;
mod billing_integrity;
mod byok;
mod cli;
mod conversations;
mod disputes;
mod distill;
mod errors;
mod exports;
mod gateway;
mod group_commit;
mod health;
mod helpdesk;
mod helpdesk_replies;
mod hostile_input;
mod knowledge;
mod knowledge_hybrid;
mod ledger_props;
mod margin;
mod notifications;
mod openapi;
mod ops;
mod outcomes;
mod shutdown;
mod store;
mod stripe_billing;
mod stripe_outbox;
mod stripe_webhooks;
mod tasks;
mod webhooks;
mod workers;
mod write_load;
