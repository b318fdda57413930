//! The chain watcher: on-chain calls from the protocol's `CallOpened` / `CallInputs` logs, with a durable
//! checkpoint, a confirmation depth, reorganization handling and catch-up after downtime (DESIGN.md §4.2).
//!
//! - [`StateStore`]: the node's SQLite state (`<data_dir>/node.sqlite`): the checkpoint, recent block hashes and
//!   every call found with its [`CallStatus`]. A range of blocks, its calls and the checkpoint advance are written in
//!   one transaction, so nothing is lost and no block is skipped across crashes.
//! - [`Watcher`]: polls `head − confirmations`, starting from the checkpoint (or the configured start block, the
//!   protocol's deployment block — never "N blocks back"), and reports [`WatcherEvent`]s: new calls, and calls whose
//!   block a reorganization removed.
//!
//! Design: `docs/design/chain-watcher.md`.

mod call_log;
mod chain_watcher;
mod config;
mod error;
mod state_store;

pub use chain_watcher::{PollOutcome, Watcher, WatcherEvent};
pub use config::WatcherConfig;
pub use error::WatcherError;
pub use state_store::{CallStatus, ChainCall, StateStore};
