//! Certificates (`docs/design/certificate.md`, version 1): what a customer keeps after a call — the operators'
//! aggregate BLS signature vouching that a call's inputs produced a result — as the JSON every Vouch tool reads and
//! writes. Verification against the chain lives with the tools that read the chain (`vouch verify`).

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::{CallId, ChainBinding, ResultRef, ServiceId, merkle::batch_digest_from_root, result_digest};

/// The certificate format this build reads and writes.
pub const CERTIFICATE_VERSION: u64 = 1;

/// A certificate: operators' aggregate BLS signature vouching that a call's inputs produced a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// Format version, [`CERTIFICATE_VERSION`].
    pub version: u64,
    /// Chain the signatures are bound to.
    pub chain_id: u64,
    /// `VouchProtocol` the signatures are bound to.
    pub protocol: Address,
    /// The service.
    pub service_id: u64,
    /// The call (a number, or a decimal or `0x` hex string).
    pub call_id: U256,
    /// `keccak256` of the call's inputs.
    pub inputs_hash: B256,
    /// Hash of the result the signers vouch for.
    pub result_hash: B256,
    /// Bit i set = the operator at slot i of the service signed.
    pub signer_bitmap: U256,
    /// Aggregate signature: 256-byte EIP-2537 G2 point, or the 96-byte compressed form.
    pub signature: Bytes,
    /// Present when the signers signed a batch digest: the call's place in the batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchProof>,
    /// The service's pinned key set (informational; checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_set: Option<Address>,
    /// Stake the signers had at risk when it was issued, in stake-token base units (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake_at_risk: Option<U256>,
}

/// Where a call sits in a batch certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchProof {
    /// Root over the batch's leaves `batchLeaf(callId, inputsHash, resultHash)`.
    pub root: B256,
    /// Number of calls in the batch.
    pub count: u32,
    /// Sibling hashes from the call's leaf up to the root.
    pub proof: Vec<B256>,
}

impl Certificate {
    /// The digest the signers signed: the single-call result digest, or the batch digest.
    pub fn digest(&self) -> B256 {
        match &self.batch {
            None => result_digest(
                &ChainBinding::new(self.chain_id, self.protocol),
                &ResultRef {
                    service_id: ServiceId(self.service_id),
                    call_id: CallId(self.call_id),
                    inputs_hash: self.inputs_hash,
                    result_hash: self.result_hash,
                },
            ),
            Some(b) => batch_digest_from_root(self.chain_id, self.protocol, self.service_id, b.root, b.count),
        }
    }
}

/// Slots whose bit is set, ascending.
pub fn bitmap_slots(bitmap: U256) -> Vec<usize> {
    (0..256).filter(|i| bitmap.bit(*i)).collect()
}
