//! Test support (feature `test-support`): a fake helpdesk that speaks
//! Zendesk's, Intercom's, Chatwoot's and Standard Webhooks' wire formats,
//! so the reply-back clients, and the outbox sender that drives them, are
//! tested over real HTTP without reaching a vendor (STYLE.md: fakes only
//! for outside services we cannot run, and faithful to their wire format).

pub mod fake_helpdesk;

pub use fake_helpdesk::{FakeHelpdesk, Fault, PostKind, RecordedPost, RecordedRequest};
