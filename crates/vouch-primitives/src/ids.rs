//! Identifiers of protocol objects and the chain binding every signature carries.

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use std::fmt;

/// On-chain id of a service (an instance of a blueprint with a fixed operator set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceId(pub u64);

/// On-chain id of one job call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}", self.0)
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// The deployment a signature is valid for: a chain id and the contract that checks it.
///
/// Every signed digest binds both, so a signature cannot be replayed on another chain or
/// against another deployment of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainBinding {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Address of the contract that verifies the signature (protocol or key registry).
    pub contract: Address,
}

impl ChainBinding {
    /// Binds signatures to `contract` on chain `chain_id`.
    pub const fn new(chain_id: u64, contract: Address) -> Self {
        Self { chain_id, contract }
    }
}
