//! The Vouch operator node (`vouch node run`): one process that serves every service, of every blueprint it runs,
//! that names this operator.
//!
//! - [`guard`]: the signing guard. `(service, call) → result hash` (and, for tolerant jobs, `(service, call) →
//!   committed output`) is recorded in SQLite in one exclusive transaction before any signature leaves the process;
//!   the same result gets the same signature, a different one is refused, and a missing database fails closed.
//! - [`watcher`]: on-chain calls from `CallOpened`/`CallInputs` logs, with a durable checkpoint, a confirmation
//!   depth, reorg handling and catch-up after downtime.
//! - [`engine`]: runs a job through the blueprint's `vouch_sdk::Router` and signs the result through the guard;
//!   for tolerant and checked jobs, commits to the node's own output and endorses a proposed one if it agrees.
//! - [`api`]: the HTTP API gateways and peers call (`docs/node-api.md`); no unpaid work is done.
//! - [`quorum`], [`peers`], [`submitter`]: on-chain calls are signed by every operator, shared directly between
//!   them, and settled by a rotating submitter with takeover.
//! - [`metrics`]: Prometheus `/metrics` and `/health` on loopback by default; [`config`]: `node.toml`.
//!
//! This crate must never depend on the gateway or on ML crates; blueprints reach it only through `vouch-sdk`.

pub mod api;
pub mod chain;
pub mod chain_jobs;
pub mod config;
pub mod engine;
mod error;
pub mod guard;
pub mod keys;
pub mod logging;
pub mod metrics;
mod node;
pub mod peers;
pub mod quorum;
pub mod submitter;
pub mod watcher;

pub use config::NodeConfig;
pub use error::NodeError;
pub use keys::NodeKeys;
pub use node::{Node, RunningNode};
