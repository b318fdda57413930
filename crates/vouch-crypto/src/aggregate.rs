//! Aggregation of signatures and keys, and verification of an aggregate on one digest.
//!
//! Under the proof-of-possession scheme every key was checked with a PoP when it was registered,
//! so an aggregate over one message is verified against the sum of the signers' keys with a
//! single pairing check (`fast_aggregate_verify`), exactly as the contract does.

use crate::{error::CryptoError, keys::PublicKey, signature::Signature, signature::check};
use alloy_primitives::B256;
use blst::min_pk::{AggregatePublicKey, AggregateSignature};
use vouch_primitives::domain::DST_RESULT;

/// Sums signatures into one. Every input was validated when it was parsed or produced; a sum at
/// infinity is refused.
pub fn aggregate_signatures(signatures: &[Signature]) -> Result<Signature, CryptoError> {
    let refs: Vec<_> = signatures.iter().map(Signature::as_blst).collect();
    let agg = AggregateSignature::aggregate(&refs, false).map_err(|_| CryptoError::EmptyAggregate)?;
    let sig = agg.to_signature();
    // σ + (−σ) sums to infinity, which no verifier accepts: refuse it here rather than emit zeros.
    sig.validate(true).map_err(|e| CryptoError::InvalidSignature(crate::PointError::from_blst(e)))?;
    Ok(Signature::from_blst(sig))
}

/// Sums public keys into one (the aggregate key the contract rebuilds from the signer bitmap).
/// Fails on an empty set and on a sum at infinity.
pub fn aggregate_public_keys(keys: &[PublicKey]) -> Result<PublicKey, CryptoError> {
    let refs: Vec<_> = keys.iter().map(PublicKey::as_blst).collect();
    let agg = AggregatePublicKey::aggregate(&refs, false).map_err(|_| CryptoError::EmptyAggregate)?;
    let pk = agg.to_public_key();
    pk.validate().map_err(|e| CryptoError::InvalidPublicKey(crate::PointError::from_blst(e)))?;
    Ok(PublicKey::from_validated(pk))
}

/// Verifies an aggregate signature by `keys` over one result or batch digest.
///
/// The keys must have been checked with a proof of possession (see [`crate::ProofOfPossession`]):
/// with unchecked keys a rogue key `pk_attacker − pk_victim` forges aggregates. Pass each signer once,
/// as the contract rebuilds the aggregate key from a bitmap (a repeated key would count twice here).
pub fn fast_aggregate_verify(keys: &[PublicKey], digest: &B256, signature: &Signature) -> Result<(), CryptoError> {
    if keys.is_empty() {
        return Err(CryptoError::EmptyAggregate);
    }
    let refs: Vec<_> = keys.iter().map(PublicKey::as_blst).collect();
    check(signature.as_blst().fast_aggregate_verify(true, digest.as_slice(), DST_RESULT, &refs))
}
