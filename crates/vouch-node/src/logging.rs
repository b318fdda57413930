//! `tracing` output for the node binary: text or one JSON object per line, filtered by `log.filter` (or `RUST_LOG`).

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogConfig;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if config.json { builder.json().try_init() } else { builder.try_init() };
}
