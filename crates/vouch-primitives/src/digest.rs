//! The 32-byte digests Vouch operators sign, built exactly as `docs/design/bls.md` specifies.
//!
//! All digests are `keccak256` over Solidity ABI words so that the contracts rebuild them with a
//! plain `abi.encode`. Each starts with a tag from [`crate::domain`], so no two kinds of digest can
//! collide, and each binds the chain id and the verifying contract.

use crate::{
    domain::{BATCH_TAG, COMMIT_TAG, PAID_CALL_TAG, POP_TAG, RESULT_TAG},
    ids::{CallId, ChainBinding, ServiceId},
};
use alloy_primitives::{Address, B256, U256, keccak256};
use serde::{Deserialize, Serialize};

/// What operators vouch for in one call: the inputs they ran and the result they got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResultRef {
    /// Service the call belongs to.
    pub service_id: ServiceId,
    /// The call.
    pub call_id: CallId,
    /// Hash of the call's inputs, as opened on-chain.
    pub inputs_hash: B256,
    /// Hash of the result the signer vouches for.
    pub result_hash: B256,
}

/// One call of a batch certificate (the service is common to the whole batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchEntry {
    /// The call.
    pub call_id: CallId,
    /// Hash of the call's inputs.
    pub inputs_hash: B256,
    /// Hash of the certified result.
    pub result_hash: B256,
}

/// Why a batch digest cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A batch holds at least one call.
    #[error("a batch must hold at least one call")]
    Empty,
    /// The count is a `uint32`.
    #[error("a batch holds at most 2^32-1 calls, got {0}")]
    TooLarge(usize),
}

fn word_u64(v: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

fn word_u256(v: U256) -> [u8; 32] {
    v.to_be_bytes()
}

fn word_address(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

/// What an operator of a tolerant job commits to before the canonical output is chosen: the hash of
/// its own output for a call (`docs/design/tolerant-verification.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitmentRef {
    /// Service the call belongs to.
    pub service_id: ServiceId,
    /// The call.
    pub call_id: CallId,
    /// Hash of the call's inputs.
    pub inputs_hash: B256,
    /// `keccak256` of the operator's own output.
    pub output_hash: B256,
}

/// Digest of an output commitment:
/// `keccak256(abi.encode(COMMIT_TAG, chainId, protocol, serviceId, callId, inputsHash, outputHash))`.
/// Same shape as [`result_digest`] under another tag, so the two can never be confused.
pub fn commitment_digest(binding: &ChainBinding, commitment: &CommitmentRef) -> B256 {
    tagged_call_digest(
        COMMIT_TAG,
        binding,
        commitment.service_id,
        commitment.call_id,
        commitment.inputs_hash,
        commitment.output_hash,
    )
}

/// Digest of a single-call result:
/// `keccak256(abi.encode(RESULT_TAG, chainId, protocol, serviceId, callId, inputsHash, resultHash))`.
pub fn result_digest(binding: &ChainBinding, result: &ResultRef) -> B256 {
    tagged_call_digest(RESULT_TAG, binding, result.service_id, result.call_id, result.inputs_hash, result.result_hash)
}

/// `keccak256(abi.encode(tag, chainId, protocol, serviceId, callId, inputsHash, hash))`.
fn tagged_call_digest(
    tag: B256,
    binding: &ChainBinding,
    service_id: ServiceId,
    call_id: CallId,
    inputs_hash: B256,
    hash: B256,
) -> B256 {
    let mut buf = [0u8; 32 * 7];
    buf[0..32].copy_from_slice(tag.as_slice());
    buf[32..64].copy_from_slice(&word_u64(binding.chain_id));
    buf[64..96].copy_from_slice(&word_address(binding.contract));
    buf[96..128].copy_from_slice(&word_u64(service_id.0));
    buf[128..160].copy_from_slice(&word_u256(call_id.0));
    buf[160..192].copy_from_slice(inputs_hash.as_slice());
    buf[192..224].copy_from_slice(hash.as_slice());
    keccak256(buf)
}

/// Leaf of a batch tree: `keccak256(abi.encode(callId, inputsHash, resultHash))`.
pub fn batch_leaf(entry: &BatchEntry) -> B256 {
    let mut buf = [0u8; 32 * 3];
    buf[0..32].copy_from_slice(&word_u256(entry.call_id.0));
    buf[32..64].copy_from_slice(entry.inputs_hash.as_slice());
    buf[64..96].copy_from_slice(entry.result_hash.as_slice());
    keccak256(buf)
}

/// Root over leaves in batch order: pairs hash commutatively (`keccak256(min ‖ max)`, as
/// OpenZeppelin's `Hashes.commutativeKeccak256`), an odd last node moves up unchanged, and the
/// root of one leaf is the leaf. `None` for an empty batch.
pub fn batch_root(leaves: &[B256]) -> Option<B256> {
    let mut level: Vec<B256> = leaves.to_vec();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => {
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(lo.as_slice());
                    buf[32..].copy_from_slice(hi.as_slice());
                    keccak256(buf)
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level.first().copied()
}

/// Digest of a batch certificate:
/// `keccak256(abi.encode(BATCH_TAG, chainId, protocol, serviceId, batchRoot, uint32 count))`.
pub fn batch_digest(binding: &ChainBinding, service_id: ServiceId, entries: &[BatchEntry]) -> Result<B256, BatchError> {
    let count = u32::try_from(entries.len()).map_err(|_| BatchError::TooLarge(entries.len()))?;
    let leaves: Vec<B256> = entries.iter().map(batch_leaf).collect();
    let root = batch_root(&leaves).ok_or(BatchError::Empty)?;
    let mut buf = [0u8; 32 * 6];
    buf[0..32].copy_from_slice(BATCH_TAG.as_slice());
    buf[32..64].copy_from_slice(&word_u64(binding.chain_id));
    buf[64..96].copy_from_slice(&word_address(binding.contract));
    buf[96..128].copy_from_slice(&word_u64(service_id.0));
    buf[128..160].copy_from_slice(root.as_slice());
    buf[160..192].copy_from_slice(&word_u64(u64::from(count)));
    Ok(keccak256(buf))
}

/// Id of the call of job `job_index` on `service_id` that an x402 (EIP-3009) authorization pays
/// for: `uint256(keccak256(abi.encode(PAID_CALL_TAG, uint64 serviceId, uint8 jobIndex, from, nonce)))`.
/// The token accepts `(from, nonce)` once, so at most one such call is ever paid; operators can
/// sign a paid call's result before the chain sees it, and the certificate cannot be moved to
/// another service or job.
pub fn paid_call_id(service_id: ServiceId, job_index: u8, from: Address, nonce: B256) -> CallId {
    let mut buf = [0u8; 32 * 5];
    buf[0..32].copy_from_slice(PAID_CALL_TAG.as_slice());
    buf[32..64].copy_from_slice(&word_u64(service_id.0));
    buf[95] = job_index;
    buf[96..128].copy_from_slice(&word_address(from));
    buf[128..160].copy_from_slice(nonce.as_slice());
    CallId(U256::from_be_bytes(keccak256(buf).0))
}

/// One entry of a paid batch as the protocol records it (`VouchProtocol.settlePaidBatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaidRecord {
    /// The payer.
    pub from: Address,
    /// The authorization's nonce.
    pub nonce: B256,
    /// The job.
    pub job_index: u8,
    /// Amount collected (0 for an entry skipped because its authorization was used elsewhere).
    pub payment: U256,
    /// Hash of the call's inputs.
    pub inputs_hash: B256,
    /// Hash of the certified result.
    pub result_hash: B256,
}

/// Leaf of a paid batch's record tree, which proves one call of the batch to the slasher:
/// `keccak256(abi.encode(from, nonce, uint8 jobIndex, payment, inputsHash, resultHash))`, in the
/// tree of [`batch_root`].
pub fn paid_record_leaf(record: &PaidRecord) -> B256 {
    let mut buf = [0u8; 32 * 6];
    buf[0..32].copy_from_slice(&word_address(record.from));
    buf[32..64].copy_from_slice(record.nonce.as_slice());
    buf[95] = record.job_index;
    buf[96..128].copy_from_slice(&word_u256(record.payment));
    buf[128..160].copy_from_slice(record.inputs_hash.as_slice());
    buf[160..192].copy_from_slice(record.result_hash.as_slice());
    keccak256(buf)
}

/// Digest a proof of possession signs:
/// `keccak256(abi.encodePacked(POP_TAG, uint256 chainId, address registry, address operator, bytes pubkey))`
/// with the 128-byte EIP-2537 public key. `binding.contract` is the key registry.
pub fn pop_digest(binding: &ChainBinding, operator: Address, pubkey_eip2537: &[u8; 128]) -> B256 {
    let mut buf = [0u8; 32 + 32 + 20 + 20 + 128];
    buf[0..32].copy_from_slice(POP_TAG.as_slice());
    buf[32..64].copy_from_slice(&word_u64(binding.chain_id));
    buf[64..84].copy_from_slice(binding.contract.as_slice());
    buf[84..104].copy_from_slice(operator.as_slice());
    buf[104..].copy_from_slice(pubkey_eip2537);
    keccak256(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;
    use proptest::prelude::*;

    const BINDING: ChainBinding = ChainBinding::new(31337, address!("0x00000000000000000000000000000000000c0de5"));

    fn entry(call: u64) -> BatchEntry {
        BatchEntry {
            call_id: CallId::from(call),
            inputs_hash: keccak256(call.to_be_bytes()),
            result_hash: keccak256((call + 1).to_be_bytes()),
        }
    }

    #[test]
    fn root_of_one_leaf_is_the_leaf_and_empty_has_none() {
        let leaf = batch_leaf(&entry(1));
        assert_eq!(batch_root(&[leaf]), Some(leaf));
        assert_eq!(batch_root(&[]), None);
        assert_eq!(batch_digest(&BINDING, ServiceId(1), &[]), Err(BatchError::Empty));
    }

    #[test]
    fn odd_node_moves_up_unchanged() {
        let l: Vec<B256> = (0..3).map(|i| batch_leaf(&entry(i))).collect();
        let pair = batch_root(&l[..2]).unwrap();
        assert_eq!(batch_root(&l), batch_root(&[pair, l[2]]));
    }

    #[test]
    fn result_and_batch_of_one_never_share_a_digest() {
        let e = entry(9);
        let r = ResultRef {
            service_id: ServiceId(3),
            call_id: e.call_id,
            inputs_hash: e.inputs_hash,
            result_hash: e.result_hash,
        };
        assert_ne!(result_digest(&BINDING, &r), batch_digest(&BINDING, ServiceId(3), &[e]).unwrap());
    }

    proptest! {
        #[test]
        fn every_field_of_a_result_changes_the_digest(
            chain in any::<u64>(), service in any::<u64>(), call in any::<u64>(),
            inputs in any::<[u8; 32]>(), result in any::<[u8; 32]>(), flip in 0usize..6,
        ) {
            let binding = ChainBinding::new(chain, BINDING.contract);
            let r = ResultRef { service_id: ServiceId(service), call_id: CallId::from(call),
                inputs_hash: B256::from(inputs), result_hash: B256::from(result) };
            let mut b2 = binding;
            let mut r2 = r;
            match flip {
                0 => b2.chain_id ^= 1,
                1 => b2.contract = address!("0x00000000000000000000000000000000000c0de6"),
                2 => r2.service_id.0 ^= 1,
                3 => r2.call_id.0 ^= U256::from(1u8),
                4 => r2.inputs_hash.0[31] ^= 1,
                _ => r2.result_hash.0[0] ^= 1,
            }
            prop_assert_ne!(result_digest(&binding, &r), result_digest(&b2, &r2));
        }

        #[test]
        fn batch_root_depends_on_every_leaf(n in 1usize..40, which in any::<prop::sample::Index>()) {
            let mut entries: Vec<BatchEntry> = (0..n as u64).map(entry).collect();
            let before = batch_digest(&BINDING, ServiceId(1), &entries).unwrap();
            let i = which.index(n);
            entries[i].result_hash.0[5] ^= 0x80;
            prop_assert_ne!(before, batch_digest(&BINDING, ServiceId(1), &entries).unwrap());
        }
    }

    #[test]
    fn paid_call_ids_are_256_bit_and_bind_payer_and_nonce() {
        let from = address!("0x00000000000000000000000000000000000a11ce");
        let id = paid_call_id(ServiceId(1), 0, from, B256::ZERO);
        assert!(u64::try_from(id.0).is_err(), "far above the callJob counter range");
        assert_ne!(id, paid_call_id(ServiceId(1), 0, from, B256::with_last_byte(1)));
        assert_ne!(id, paid_call_id(ServiceId(1), 0, Address::ZERO, B256::ZERO));
        assert_ne!(id, paid_call_id(ServiceId(2), 0, from, B256::ZERO));
        assert_ne!(id, paid_call_id(ServiceId(1), 1, from, B256::ZERO));
        assert!(id.to_string().starts_with("call 0x"));
        assert_eq!(CallId::from(7).to_string(), "call 7");
    }

    #[test]
    fn paid_record_leaf_binds_every_field() {
        let base = PaidRecord {
            from: address!("0x00000000000000000000000000000000000a11ce"),
            nonce: B256::with_last_byte(9),
            job_index: 1,
            payment: U256::from(1_000_000u64),
            inputs_hash: B256::with_last_byte(2),
            result_hash: B256::with_last_byte(3),
        };
        let leaf = paid_record_leaf(&base);
        let variants = [
            PaidRecord { from: Address::ZERO, ..base },
            PaidRecord { nonce: B256::ZERO, ..base },
            PaidRecord { job_index: 2, ..base },
            PaidRecord { payment: U256::ZERO, ..base },
            PaidRecord { inputs_hash: B256::ZERO, ..base },
            PaidRecord { result_hash: B256::ZERO, ..base },
        ];
        for v in variants {
            assert_ne!(paid_record_leaf(&v), leaf, "{v:?}");
        }
    }
}
