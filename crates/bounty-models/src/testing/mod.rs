//! Test support (helpers fill in).

pub use crate::tiny_gguf as gguf;
pub mod openai;
