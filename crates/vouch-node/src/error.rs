//! Errors of the node's building blocks. HTTP answers are built from them in [`crate::api`].

use std::path::PathBuf;

use alloy_primitives::Address;
use vouch_primitives::{CallId, ServiceId};

/// What can stop the node from starting or from serving a call.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration file is unreadable or invalid.
    #[error("config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key could not be loaded.
    #[error("{what} {path}: {reason}")]
    Key {
        /// Which key (`transaction keystore`, `BLS keystore`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The address book is unreadable or does not match the chain.
    #[error("address book: {0}")]
    AddressBook(#[from] vouch_contracts::AddressBookError),
    /// A chain read failed.
    #[error("chain read {what}: {reason}")]
    Chain {
        /// What was read.
        what: String,
        /// The RPC or decoding error.
        reason: String,
    },
    /// This operator's BLS key differs from the one registered for its address.
    #[error(
        "the BLS key in the keystore ({local}) is not the key registered for operator {operator} ({registered}): \
         refusing to sign with a key the contracts would not accept"
    )]
    KeyMismatch {
        /// The operator.
        operator: Address,
        /// The configured key.
        local: String,
        /// The registered key (or "none").
        registered: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The signing guard refused or failed.
    #[error(transparent)]
    Guard(Box<crate::guard::GuardError>),
    /// The chain watcher's store failed.
    #[error(transparent)]
    Watcher(Box<crate::watcher::WatcherError>),
    /// The service is unknown to the chain.
    #[error("unknown {0}")]
    UnknownService(ServiceId),
    /// A call is not open on chain.
    #[error("{call} is not open on chain")]
    CallNotOpen {
        /// The call.
        call: CallId,
    },
}

impl NodeError {
    /// A chain read error with context.
    pub(crate) fn chain(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Chain { what: what.into(), reason: reason.to_string() }
    }
}

impl From<crate::guard::GuardError> for NodeError {
    fn from(e: crate::guard::GuardError) -> Self {
        Self::Guard(Box::new(e))
    }
}

impl From<crate::watcher::WatcherError> for NodeError {
    fn from(e: crate::watcher::WatcherError) -> Self {
        Self::Watcher(Box::new(e))
    }
}
