//! Batch proofs: a call's leaf under a batch root, in the tree of [`crate::batch_root`] (pairs hashed
//! commutatively, as OpenZeppelin's `MerkleProof.processProof` checks them), and the batch digest signed over a root.

use alloy_primitives::{Address, B256, keccak256};

use crate::domain::BATCH_TAG;

/// `keccak256(min(a, b) ‖ max(a, b))`.
fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// The root a proof leads to from `leaf` (OpenZeppelin's `processProof` with commutative hashing).
pub fn process_proof(leaf: B256, proof: &[B256]) -> B256 {
    proof.iter().fold(leaf, |node, sibling| hash_pair(node, *sibling))
}

/// The proof of leaf `index` in the tree [`crate::batch_root`] builds over `leaves` (`None` if out of range).
pub fn proof_for(leaves: &[B256], index: usize) -> Option<Vec<B256>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            proof.push(level[sibling]);
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => hash_pair(*a, *b),
                [single] => *single,
                _ => B256::ZERO,
            })
            .collect();
        i /= 2;
    }
    Some(proof)
}

/// `keccak256(abi.encode(BATCH_TAG, chainId, protocol, serviceId, batchRoot, uint32 count))`, the digest a batch
/// certificate signs ([`crate::batch_digest`] computes the same from the entries).
pub fn batch_digest_from_root(chain_id: u64, protocol: Address, service_id: u64, root: B256, count: u32) -> B256 {
    let mut buf = [0u8; 32 * 6];
    buf[0..32].copy_from_slice(BATCH_TAG.as_slice());
    buf[56..64].copy_from_slice(&chain_id.to_be_bytes());
    buf[76..96].copy_from_slice(protocol.as_slice());
    buf[120..128].copy_from_slice(&service_id.to_be_bytes());
    buf[128..160].copy_from_slice(root.as_slice());
    buf[188..192].copy_from_slice(&count.to_be_bytes());
    keccak256(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchEntry, CallId, ChainBinding, ServiceId, batch_digest, batch_leaf, batch_root};
    use alloy_primitives::address;

    fn entries(n: u64) -> Vec<BatchEntry> {
        (1..=n)
            .map(|i| BatchEntry {
                call_id: CallId::from(i),
                inputs_hash: keccak256(i.to_be_bytes()),
                result_hash: keccak256((i + 100).to_be_bytes()),
            })
            .collect()
    }

    #[test]
    fn every_leaf_proves_to_the_root_primitives_builds() {
        for n in 1..=9 {
            let leaves: Vec<B256> = entries(n).iter().map(batch_leaf).collect();
            let root = batch_root(&leaves).expect("non-empty");
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = proof_for(&leaves, i).expect("in range");
                assert_eq!(process_proof(*leaf, &proof), root, "leaf {i} of {n}");
            }
            assert!(proof_for(&leaves, leaves.len()).is_none());
        }
    }

    #[test]
    fn digest_from_root_matches_primitives() {
        let protocol = address!("0x00000000000000000000000000000000000c0de5");
        let e = entries(5);
        let leaves: Vec<B256> = e.iter().map(batch_leaf).collect();
        let root = batch_root(&leaves).expect("non-empty");
        let expected = batch_digest(&ChainBinding::new(31337, protocol), ServiceId(7), &e).expect("digest");
        assert_eq!(batch_digest_from_root(31337, protocol, 7, root, 5), expected);
    }
}
