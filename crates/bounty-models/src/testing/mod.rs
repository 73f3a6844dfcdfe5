//! Test support (helpers fill in).

pub mod gguf;
pub mod openai;
