//! Proofs of possession, bound to an operator and a key-registry deployment.
//!
//! A proof is a signature under [`DST_POP`] over
//! [`pop_digest`](vouch_primitives::digest::pop_digest)`(chainId, registry, operator, pubkey)`.
//! It shows the registrant knows the secret key (which defeats rogue-key attacks on aggregates),
//! and binding the operator stops a proof seen in the mempool being registered by someone else.

use crate::{error::CryptoError, keys::PublicKey, signature::Signature};
use alloy_primitives::Address;
use blst::min_pk;
use vouch_primitives::{ChainBinding, digest::pop_digest, domain::DST_POP};

/// A proof of possession of a BLS key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProofOfPossession(Signature);

impl ProofOfPossession {
    pub(crate) fn prove(sk: &min_pk::SecretKey, pk: &PublicKey, registry: &ChainBinding, operator: Address) -> Self {
        let digest = pop_digest(registry, operator, &pk.to_eip2537());
        Self(Signature::from_blst(sk.sign(digest.as_slice(), DST_POP, &[])))
    }

    /// Wraps a parsed signature as a proof (to check one read from a file or the chain).
    pub fn from_signature(signature: Signature) -> Self {
        Self(signature)
    }

    /// The proof as a signature (for encoding it).
    pub fn signature(&self) -> &Signature {
        &self.0
    }

    /// Checks the proof for `public_key`, registered by `operator` on `registry`.
    pub fn verify(
        &self,
        public_key: &PublicKey,
        registry: &ChainBinding,
        operator: Address,
    ) -> Result<(), CryptoError> {
        let digest = pop_digest(registry, operator, &public_key.to_eip2537());
        crate::signature::check(self.0.as_blst().verify(
            true,
            digest.as_slice(),
            DST_POP,
            &[],
            public_key.as_blst(),
            false,
        ))
        .map_err(|_| CryptoError::InvalidProofOfPossession { operator })
    }
}
