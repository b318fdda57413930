// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Domain
/// @notice The BLS domain separation tags and message tags of Vouch protocol version 1, defined in one place.
/// @dev Normative source: docs/design/bls.md. Changing any value here is a protocol version bump (`V1` -> `V2` in
/// every tag and DST) and regenerates contracts/test/vectors/bls.json. The Rust twins live in
/// `vouch_primitives::domain`.
library Domain {
    /// @notice RFC 9380 DST for result, batch and commitment signatures (hash-to-G2 under `expand_message_xmd` with
    /// SHA-256); the digests' tags keep the three apart.
    bytes internal constant DST_RESULT = "VOUCH-V1-RESULT_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    /// @notice RFC 9380 DST for proofs of possession of registered keys.
    bytes internal constant DST_POP = "VOUCH-V1-KEY_BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    /// @notice Tag of a result digest: `keccak256("vouch.v1.result")`.
    bytes32 internal constant RESULT_TAG = keccak256("vouch.v1.result");

    /// @notice Tag of a batch digest: `keccak256("vouch.v1.batch")`.
    bytes32 internal constant BATCH_TAG = keccak256("vouch.v1.batch");

    /// @notice Tag of the call id of an x402 payment: `keccak256("vouch.v1.paid-call")`.
    bytes32 internal constant PAID_CALL_TAG = keccak256("vouch.v1.paid-call");

    /// @notice Tag of a proof-of-possession digest: `keccak256("vouch.v1.pop")`.
    bytes32 internal constant POP_TAG = keccak256("vouch.v1.pop");

    /// @notice Tag of an output commitment digest (tolerant jobs): `keccak256("vouch.v1.commit")`.
    /// @dev A commitment is not a result statement: committing to one output and then signing a canonical output
    /// within tolerance of it is not equivocation (docs/design/tolerant-verification.md).
    bytes32 internal constant COMMIT_TAG = keccak256("vouch.v1.commit");
}
