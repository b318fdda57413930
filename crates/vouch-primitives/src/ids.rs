//! Identifiers of protocol objects and the chain binding every signature carries.

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::fmt;

/// On-chain id of a service (an instance of a blueprint with a fixed operator set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceId(pub u64);

/// Id of one job call, a `uint256` on-chain.
///
/// Calls opened with `callJob` take the next value of a counter (1, 2, …). A call paid with an x402
/// authorization has the id [`crate::paid_call_id`]`(from, nonce)`, known before anything reaches
/// the chain. Serialized as a `0x`-prefixed hex string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub U256);

impl From<u64> for CallId {
    fn from(id: u64) -> Self {
        Self(U256::from(id))
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}", self.0)
    }
}

impl fmt::Display for CallId {
    /// Counter ids in decimal (`call 7`), derived x402 ids in hex (`call 0x3f…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match u64::try_from(self.0) {
            Ok(small) => write!(f, "call {small}"),
            Err(_) => write!(f, "call {:#x}", self.0),
        }
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
