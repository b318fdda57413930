//! Secret and public keys.

use crate::{
    eip2537,
    error::{CryptoError, PointError},
    pop::ProofOfPossession,
    signature::Signature,
};
use alloy_primitives::{Address, B256};
use blst::min_pk;
use vouch_primitives::{ChainBinding, domain::DST_RESULT};
use zeroize::Zeroizing;

/// A BLS12-381 secret key.
///
/// It has no `Debug`, `Display` or `Clone`, and its memory is zeroized on drop (by `blst`), so it
/// cannot end up in a log by accident. Persist it only through [`crate::Keystore`].
pub struct SecretKey(min_pk::SecretKey);

impl SecretKey {
    /// Derives a key from at least 32 bytes of input key material with the IETF BLS `KeyGen`
    /// (draft-irtf-cfrg-bls-signature, HKDF-SHA256).
    pub fn from_ikm(ikm: &[u8]) -> Result<Self, CryptoError> {
        min_pk::SecretKey::key_gen(ikm, &[]).map(Self).map_err(|_| CryptoError::ShortKeyMaterial(ikm.len()))
    }

    /// Derives the EIP-2333 master key from a seed of at least 32 bytes (e.g. a BIP-39 seed).
    pub fn from_seed_eip2333(seed: &[u8]) -> Result<Self, CryptoError> {
        min_pk::SecretKey::derive_master_eip2333(seed).map(Self).map_err(|_| CryptoError::ShortKeyMaterial(seed.len()))
    }

    /// Derives EIP-2333 child `index` of this key.
    pub fn derive_child_eip2333(&self, index: u32) -> Self {
        Self(self.0.derive_child_eip2333(index))
    }

    /// A fresh key from 32 bytes of operating-system randomness.
    pub fn random() -> Result<Self, CryptoError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut_slice()).map_err(|e| CryptoError::Randomness(e.to_string()))?;
        Self::from_ikm(ikm.as_slice())
    }

    /// Reads a 32-byte big-endian scalar; refuses zero and values not below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        min_pk::SecretKey::from_bytes(bytes).map(Self).map_err(|_| CryptoError::InvalidSecretKey)
    }

    /// The 32-byte big-endian scalar, zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    /// Signs a result or batch digest (from [`vouch_primitives::digest`]) under [`DST_RESULT`].
    ///
    /// The caller is responsible for never signing two different results for one call: in the
    /// node that is the signing guard's job.
    pub fn sign(&self, digest: &B256) -> Signature {
        Signature::from_blst(self.0.sign(digest.as_slice(), DST_RESULT, &[]))
    }

    /// Proves possession of this key for `operator` on the key registry `registry`.
    pub fn prove_possession(&self, registry: &ChainBinding, operator: Address) -> ProofOfPossession {
        ProofOfPossession::prove(&self.0, &self.public_key(), registry, operator)
    }
}

/// A BLS12-381 public key (a G1 point), always validated: on the curve, in the subgroup, not
/// infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(min_pk::PublicKey);

impl PublicKey {
    pub(crate) fn from_validated(pk: min_pk::PublicKey) -> Self {
        Self(pk)
    }

    pub(crate) fn as_blst(&self) -> &min_pk::PublicKey {
        &self.0
    }

    /// Parses the 48-byte compressed form and validates it.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 48 {
            return Err(CryptoError::InvalidPublicKey(PointError::Length { expected: 48, actual: bytes.len() }));
        }
        Self::validated(min_pk::PublicKey::uncompress(bytes))
    }

    /// Parses the 128-byte EIP-2537 form and validates it.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self, CryptoError> {
        let blst = eip2537::g1_from_eip2537(bytes).map_err(CryptoError::InvalidPublicKey)?;
        Self::validated(min_pk::PublicKey::deserialize(&blst))
    }

    fn validated(parsed: Result<min_pk::PublicKey, blst::BLST_ERROR>) -> Result<Self, CryptoError> {
        let pk = parsed.map_err(|e| CryptoError::InvalidPublicKey(PointError::from_blst(e)))?;
        pk.validate().map_err(|e| CryptoError::InvalidPublicKey(PointError::from_blst(e)))?;
        Ok(Self(pk))
    }

    /// The 48-byte compressed form (the key's canonical id off-chain).
    pub fn to_compressed(&self) -> [u8; 48] {
        self.0.compress()
    }

    /// The 128-byte EIP-2537 form the contracts store.
    pub fn to_eip2537(&self) -> [u8; eip2537::G1_LEN] {
        eip2537::g1_to_eip2537(&self.0.serialize())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(0x{})", alloy_primitives::hex::encode(self.to_compressed()))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", alloy_primitives::hex::encode(self.to_compressed()))
    }
}
