//! Vouch primitives: the identifiers, domain constants and message digests that every other
//! Vouch crate (and the Solidity contracts) must agree on byte for byte.
//!
//! This crate is deliberately light: it depends on `alloy-primitives` and `serde` only, and must
//! never depend on crypto backends, networking or storage. The wire formats it fixes are specified
//! in `docs/design/bls.md`; golden vectors in `contracts/test/vectors/bls.json` pin them.

pub mod certificate;
pub mod digest;
pub mod domain;
pub mod ids;
pub mod merkle;
pub mod wire;
pub mod x402;

pub use alloy_primitives::{Address, B256, U256};
pub use certificate::{BatchProof, CERTIFICATE_VERSION, Certificate};
pub use digest::{
    BatchEntry, BatchError, CommitmentRef, PaidRecord, ResultRef, batch_digest, batch_leaf, batch_root,
    commitment_digest, paid_call_id, paid_record_leaf, pop_digest, result_digest,
};
pub use ids::{CallId, ChainBinding, ServiceId};
