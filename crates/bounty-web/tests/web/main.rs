//! Black-box tests of the dashboard over real HTTP: the router served on
//! `127.0.0.1:0` over a real store, on SQLite (a temp file) and on
//! Postgres (a fresh database per test from `TEST_DATABASE_URL`; without
//! it the Postgres variants panic, saying so).

mod support;

mod agents;
mod auth;
mod disputes;
mod integrations;
mod isolation;
mod knowledge;
mod ops;
mod pages;
mod password_reset;
mod policy;
mod store_team;
mod store_users;
mod task_search;
mod team;
mod test_mode;
mod usage;
