//! Bounty's billing: settlement, the one home of every change to an outcome
//! and its charge ([`settle`]); and the Stripe edge: the outbound Stripe client ([`stripe`]), the outbox sender
//! ([`outbox`]), the catalogue `bounty stripe setup` makes ([`catalog`]), invoices fetched on
//! demand ([`invoices`]), reconciliation of the ledger with Stripe's meter ([`reconcile`]),
//! webhook signature verification ([`signature`]) and, behind the `test-support` feature, a fake
//! Stripe that speaks Stripe's wire format ([`testing`]).
//!
//! Only rustls on aws-lc-rs is compiled in (DESIGN.md, "TLS crypto"): async-stripe is built with
//! `rustls-aws-lc-rs`, never its default native-tls nor `rustls-ring`.

pub mod catalog;
pub mod disputes;
pub mod events;
pub mod exports;
pub mod gateway;
pub mod invoices;
pub mod outbox;
pub mod reconcile;
pub mod settle;
pub mod signature;
pub mod stripe;
pub mod stripe_events;
#[cfg(feature = "test-support")]
pub mod testing;
