//! Domain separation: the BLS DSTs and the digest tags, defined once.
//!
//! Every signature Vouch produces is over a 32-byte digest that starts from one of these tags and
//! binds the chain id and the contract address; the DST then separates result signatures from
//! proofs of possession inside the hash-to-curve itself. Changing any value here is a protocol
//! version bump (see `docs/design/bls.md`).

use alloy_primitives::{B256, b256};

/// DST for signatures over result and batch digests (RFC 9380 hash-to-G2, proof-of-possession scheme).
pub const DST_RESULT: &[u8] = b"VOUCH-V1-RESULT_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// DST for proofs of possession of a BLS key.
pub const DST_POP: &[u8] = b"VOUCH-V1-KEY_BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// `keccak256("vouch.v1.result")`: first word of every single-call result digest.
pub const RESULT_TAG: B256 = b256!("0x03ebdd9bce081a58067e4de90a0b139bd5c0f3cfbed359156679bda1fa8fffa9");

/// `keccak256("vouch.v1.batch")`: first word of every batch digest.
pub const BATCH_TAG: B256 = b256!("0x76992b3870e8d24acd03ce65dbd2827b06437ab5a2666c3ea7164f03e814119b");

/// `keccak256("vouch.v1.paid-call")`: first word of the preimage of an x402 call id.
pub const PAID_CALL_TAG: B256 = b256!("0xb329aed3709254fdbf6485986c8b138adb8ec142761c8e45725ea812e36fa4ab");

/// `keccak256("vouch.v1.pop")`: first word of every proof-of-possession preimage.
pub const POP_TAG: B256 = b256!("0xc2c8cc8084fd9b64e72f219581a0889f74016e370a485aab1632d6c87958581c");

/// `keccak256("vouch.v1.commit")`: first word of every output commitment digest (tolerant jobs,
/// `docs/design/tolerant-verification.md`). A commitment is not a result statement, so committing to
/// one output and then signing a canonical output within tolerance of it is not equivocation.
pub const COMMIT_TAG: B256 = b256!("0xdfbca34c7084257e2dd8b6150a0d61b14531ce405d6f19aa7ad85bfb794c6ae8");

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    #[test]
    fn tags_are_the_keccak_of_their_names() {
        assert_eq!(RESULT_TAG, keccak256("vouch.v1.result"));
        assert_eq!(BATCH_TAG, keccak256("vouch.v1.batch"));
        assert_eq!(POP_TAG, keccak256("vouch.v1.pop"));
        assert_eq!(PAID_CALL_TAG, keccak256("vouch.v1.paid-call"));
        assert_eq!(COMMIT_TAG, keccak256("vouch.v1.commit"));
    }

    #[test]
    fn dsts_are_distinct_and_end_in_pop() {
        assert_ne!(DST_RESULT, DST_POP);
        for dst in [DST_RESULT, DST_POP] {
            assert!(dst.ends_with(b"_POP_"));
            assert!(dst.len() <= 255, "RFC 9380 limits a DST to 255 bytes");
        }
    }
}
