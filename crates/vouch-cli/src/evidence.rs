//! Slashing evidence as JSON (version 1, documented in `docs/design/certificate.md`): two statements signed by one
//! operator about one call, for `VouchSlasher.reportEquivocation`.

use std::path::Path;

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};
use vouch_crypto::PublicKey;
use vouch_primitives::{
    BatchEntry, CallId, ChainBinding, ResultRef, ServiceId, batch_leaf,
    merkle::{batch_digest_from_root, process_proof},
    result_digest,
};

use crate::{
    certificate::{BatchProof, parse_signature},
    json_file,
};

/// The evidence format this build reads and writes.
pub(crate) const EVIDENCE_VERSION: u64 = 1;

/// The fault the evidence proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fault {
    /// Two different statements signed for one call.
    Equivocation,
}

/// Evidence of an equivocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Evidence {
    /// Format version, [`EVIDENCE_VERSION`].
    pub(crate) version: u64,
    /// Always `equivocation` in version 1.
    pub(crate) fault: Fault,
    /// Chain the signatures are bound to.
    pub(crate) chain_id: u64,
    /// `VouchProtocol` the signatures are bound to.
    pub(crate) protocol: Address,
    /// The call's service.
    pub(crate) service_id: u64,
    /// The call.
    pub(crate) call_id: U256,
    /// The operator that signed both statements.
    pub(crate) operator: Address,
    /// Its slot in the service's operator set (looked up when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) slot: Option<u64>,
    /// Exactly two signed statements.
    pub(crate) statements: Vec<SignedStatement>,
}

/// One statement `(inputsHash, resultHash)` about the call, signed by the operator alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SignedStatement {
    /// Inputs hash the operator signed.
    pub(crate) inputs_hash: B256,
    /// Result hash the operator signed.
    pub(crate) result_hash: B256,
    /// The operator's signature: 256-byte EIP-2537 or 96-byte compressed G2 point.
    pub(crate) signature: Bytes,
    /// Present when the operator signed a batch digest containing the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) batch: Option<BatchProof>,
}

impl Evidence {
    /// Reads an evidence file.
    pub(crate) fn read(path: &Path) -> eyre::Result<Self> {
        let evidence: Self = json_file::read_versioned(path, "evidence", EVIDENCE_VERSION)?;
        if evidence.statements.len() != 2 {
            eyre::bail!(
                "evidence {}: `statements` must hold exactly 2 signed statements, it holds {}",
                path.display(),
                evidence.statements.len()
            );
        }
        Ok(evidence)
    }

    /// The two statements.
    pub(crate) fn pair(&self) -> eyre::Result<(&SignedStatement, &SignedStatement)> {
        match self.statements.as_slice() {
            [a, b] => Ok((a, b)),
            other => eyre::bail!("evidence needs exactly 2 statements, not {}", other.len()),
        }
    }
}

impl SignedStatement {
    /// The digest this statement's signature must be over, after checking its batch proof if it has one.
    pub(crate) fn digest(&self, ev: &Evidence) -> Result<B256, String> {
        match &self.batch {
            None => Ok(result_digest(
                &ChainBinding::new(ev.chain_id, ev.protocol),
                &ResultRef {
                    service_id: ServiceId(ev.service_id),
                    call_id: CallId(ev.call_id),
                    inputs_hash: self.inputs_hash,
                    result_hash: self.result_hash,
                },
            )),
            Some(b) => {
                let leaf = batch_leaf(&BatchEntry {
                    call_id: CallId(ev.call_id),
                    inputs_hash: self.inputs_hash,
                    result_hash: self.result_hash,
                });
                if b.count == 0 || process_proof(leaf, &b.proof) != b.root {
                    return Err(format!("its batch proof does not place the call's leaf {leaf} under root {}", b.root));
                }
                Ok(batch_digest_from_root(ev.chain_id, ev.protocol, ev.service_id, b.root, b.count))
            }
        }
    }

    /// Checks the signature against the operator's key; returns the EIP-2537 form the slasher takes.
    pub(crate) fn check(&self, ev: &Evidence, key: &PublicKey) -> Result<Bytes, String> {
        let digest = self.digest(ev)?;
        let signature = parse_signature(&self.signature)?;
        signature
            .verify(key, &digest)
            .map_err(|_| format!("its signature is not {}'s signature over digest {digest}", ev.operator))?;
        Ok(Bytes::from(signature.to_eip2537().to_vec()))
    }
}
