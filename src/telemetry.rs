//! Logging setup: `tracing` to stderr, as text or JSON.
//!
//! stdout is kept for command output (keys, JSON) so that it can be piped.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// llama.cpp logs every tensor it loads at info; keep that at warn unless
/// the filter names it.
const LLAMA_TARGET: &str = "llama-cpp-2";

/// Installs the global subscriber. `RUST_LOG` overrides `log.level`.
pub fn init(log: &LogConfig) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| log.level.clone());
    let directives = if directives.contains(LLAMA_TARGET) {
        directives
    } else {
        format!("{directives},{LLAMA_TARGET}=warn")
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests calling in-process) is harmless: keep the first.
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
