//! Test support (feature `test-support`): a fake Stripe that speaks Stripe's wire format, so the
//! client and, later, the billing worker are tested over real HTTP without reaching Stripe.

pub mod fake_stripe;

pub use fake_stripe::{FakeStripe, Fault, RecordedMeterEvent, RecordedRequest};
