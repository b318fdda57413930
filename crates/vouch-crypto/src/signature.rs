//! Signatures (G2 points) over result and batch digests.

use crate::{
    eip2537,
    error::{CryptoError, PointError},
    keys::PublicKey,
};
use alloy_primitives::B256;
use blst::{BLST_ERROR, min_pk};
use vouch_primitives::domain::DST_RESULT;

/// A BLS12-381 signature (a G2 point). Parsed signatures are validated: on the curve, in the
/// subgroup, not infinity. Aggregates are signatures too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(min_pk::Signature);

impl Signature {
    pub(crate) fn from_blst(sig: min_pk::Signature) -> Self {
        Self(sig)
    }

    pub(crate) fn as_blst(&self) -> &min_pk::Signature {
        &self.0
    }

    /// Parses the 96-byte compressed form and validates it.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 96 {
            return Err(CryptoError::InvalidSignature(PointError::Length { expected: 96, actual: bytes.len() }));
        }
        Self::validated(min_pk::Signature::uncompress(bytes))
    }

    /// Parses the 256-byte EIP-2537 form and validates it.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, CryptoError> {
        let blst = eip2537::g2_from_eip2537(bytes).map_err(CryptoError::InvalidSignature)?;
        Self::validated(min_pk::Signature::deserialize(&blst))
    }

    fn validated(parsed: Result<min_pk::Signature, BLST_ERROR>) -> Result<Self, CryptoError> {
        let sig = parsed.map_err(|e| CryptoError::InvalidSignature(PointError::from_blst(e)))?;
        sig.validate(true).map_err(|e| CryptoError::InvalidSignature(PointError::from_blst(e)))?;
        Ok(Self(sig))
    }

    /// The 96-byte compressed form.
    pub fn to_compressed(&self) -> [u8; 96] {
        self.0.compress()
    }

    /// The 256-byte EIP-2537 form the contracts take.
    pub fn to_eip2537(&self) -> [u8; eip2537::G2_LEN] {
        eip2537::g2_to_eip2537(&self.0.serialize())
    }

    /// Checks this signature over a result or batch digest by `public_key` (under [`DST_RESULT`]).
    pub fn verify(&self, public_key: &PublicKey, digest: &B256) -> Result<(), CryptoError> {
        check(self.0.verify(true, digest.as_slice(), DST_RESULT, &[], public_key.as_blst(), false))
    }
}

/// Maps blst's verification status to our error.
pub(crate) fn check(status: BLST_ERROR) -> Result<(), CryptoError> {
    match status {
        BLST_ERROR::BLST_SUCCESS => Ok(()),
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Err(CryptoError::InvalidSignature(PointError::NotInSubgroup)),
        _ => Err(CryptoError::VerificationFailed),
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature(0x{})", alloy_primitives::hex::encode(self.to_compressed()))
    }
}
