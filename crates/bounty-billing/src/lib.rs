//! Bounty's Stripe edge: the outbound Stripe client ([`stripe`]), webhook signature verification
//! ([`signature`]) and, behind the `test-support` feature, a fake Stripe that speaks Stripe's wire
//! format ([`testing`]).
//!
//! Only rustls on aws-lc-rs is compiled in (DESIGN.md, "TLS crypto"): async-stripe is built with
//! `rustls-aws-lc-rs`, never its default native-tls nor `rustls-ring`.

pub mod outbox;
pub mod signature;
pub mod stripe;
#[cfg(feature = "test-support")]
pub mod testing;
