//! [`WatcherError`]: what can go wrong reading the chain or the node's state store.

use std::path::PathBuf;

use alloy::{primitives::B256, transports::TransportError};
use vouch_primitives::CallId;

/// An error of the chain watcher or its [`super::StateStore`].
///
/// [`WatcherError::is_fatal`] splits them: store errors stop [`super::Watcher::run`]; everything the chain or the
/// RPC endpoint causes is logged and retried.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// The state database could not be opened or prepared.
    #[error("cannot open the node state database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The directory of the state database could not be created.
    #[error("cannot create the directory {path} of the node state database: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state database was written by a newer node.
    #[error("the node state database {path} has schema version {found}; this node knows up to {supported}")]
    UnsupportedSchema {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this node reads.
        supported: i64,
    },
    /// A statement on the state database failed.
    #[error("node state database, {operation}: {source}")]
    Store {
        /// What the store was doing (`"recording calls of blocks 10..=20"`).
        operation: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A row of the state database does not hold what this node wrote.
    #[error("node state database holds an invalid {column} ({detail})")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A blocking store task panicked or was cancelled.
    #[error("node state database task failed: {0}")]
    StoreTask(String),
    /// [`super::StateStore::set_status`] on a call the store does not know.
    #[error("{call_id} is not in the node state database")]
    UnknownCall {
        /// The call.
        call_id: CallId,
    },
    /// [`super::StateStore::set_status`] on a call whose block was reorged away: it stays vanished until the watcher
    /// finds it on the canonical chain again.
    #[error("{call_id} vanished in a chain reorganization; its status stays `vanished`")]
    CallVanished {
        /// The call.
        call_id: CallId,
    },
    /// An RPC request failed.
    #[error("RPC {request} failed: {source}")]
    Rpc {
        /// The request (`"eth_getLogs for blocks 10..=20"`).
        request: String,
        /// Why.
        source: TransportError,
    },
    /// The RPC endpoint does not know a block at or below its own head (a lagging node behind a load balancer).
    #[error("the RPC endpoint has no block {number}")]
    BlockNotFound {
        /// The block height.
        number: u64,
    },
    /// The chain changed while a block range was being read; the next poll handles the reorganization.
    #[error("block {number} changed from {expected} to {found:?} while blocks {from}..={to} were read")]
    ChainChanged {
        /// The height whose hash changed.
        number: u64,
        /// The hash seen first (or stored).
        expected: B256,
        /// The hash seen afterwards (`None`: no such block any more).
        found: Option<B256>,
        /// First block of the range being read.
        from: u64,
        /// Last block of the range being read.
        to: u64,
    },
    /// A log returned by `eth_getLogs` lacks its block or transaction (a pending log).
    #[error("eth_getLogs for blocks {from}..={to} returned a log without its {missing}")]
    IncompleteLog {
        /// First block of the range.
        from: u64,
        /// Last block of the range.
        to: u64,
        /// The missing field.
        missing: &'static str,
    },
    /// A protocol log with a call event's signature that does not decode as that event.
    #[error("cannot decode the {event} log {log_index} of transaction {tx_hash}: {source}")]
    Decode {
        /// `CallOpened` or `CallInputs`.
        event: &'static str,
        /// Its transaction.
        tx_hash: B256,
        /// Its index in the block.
        log_index: u64,
        /// Why (boxed: the decoder's error is large).
        source: Box<alloy::sol_types::Error>,
    },
}

impl WatcherError {
    /// Whether [`super::Watcher::run`] stops on this error: only store errors do (the node cannot record what it
    /// finds). RPC failures and chain changes are transient: logged and retried with backoff.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Open { .. }
            | Self::CreateDir { .. }
            | Self::UnsupportedSchema { .. }
            | Self::Store { .. }
            | Self::Corrupt { .. }
            | Self::StoreTask(_)
            | Self::UnknownCall { .. }
            | Self::CallVanished { .. } => true,
            Self::Rpc { .. }
            | Self::BlockNotFound { .. }
            | Self::ChainChanged { .. }
            | Self::IncompleteLog { .. }
            | Self::Decode { .. } => false,
        }
    }

    pub(crate) fn store(operation: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
        let operation = operation.into();
        move |source| Self::Store { operation, source }
    }

    pub(crate) fn rpc(request: impl Into<String>) -> impl FnOnce(TransportError) -> Self {
        let request = request.into();
        move |source| Self::Rpc { request, source }
    }
}
