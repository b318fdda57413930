//! Vouch's BLS12-381 cryptography: keys, signatures, aggregation, proofs of possession, the
//! EIP-2537 encodings the contracts read, and EIP-2335 keystores.
//!
//! The scheme is **min-pk** (public keys in G1, signatures in G2) with the **proof-of-possession**
//! scheme, on `blst`. Every signature is over a 32-byte digest from [`vouch_primitives::digest`],
//! hashed to G2 under one of the two DSTs in [`vouch_primitives::domain`]; see `docs/design/bls.md`.
//!
//! Signing is deliberately narrow: [`SecretKey::sign`] signs result and batch digests, and
//! [`SecretKey::prove_possession`] signs the proof-of-possession digest of its own key. There is
//! no way to sign arbitrary bytes under an arbitrary DST.
//!
//! This crate must not depend on networking, storage or the chain; the node and the CLI build on it.

mod aggregate;
pub mod eip2537;
mod error;
mod keys;
pub mod keystore;
mod pop;
mod signature;

pub use aggregate::{aggregate_public_keys, aggregate_signatures, fast_aggregate_verify};
pub use error::{CryptoError, KeystoreError, PointError};
pub use keys::{PublicKey, SecretKey};
pub use keystore::Keystore;
pub use pop::ProofOfPossession;
pub use signature::Signature;
pub use vouch_primitives::domain::{DST_POP, DST_RESULT};
