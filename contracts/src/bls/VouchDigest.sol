// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {Domain} from "./Domain.sol";

/// @title VouchDigest
/// @notice The 32-byte digests Vouch operators sign, exactly as specified in docs/design/bls.md.
/// @dev `abi.encode` puts every value in one 32-byte word; the PoP digest alone uses `abi.encodePacked`.
library VouchDigest {
    /// @notice A batch needs at least one leaf (and a batch digest a count of at least 1).
    error EmptyBatch();

    /// @notice Digest of one result, signed under `Domain.DST_RESULT`:
    /// `keccak256(abi.encode(RESULT_TAG, chainId, protocol, serviceId, callId, inputsHash, resultHash))`.
    /// @param chainId Chain id the certificate is valid on.
    /// @param protocol Address of the protocol contract the result is for.
    /// @param serviceId Service identifier.
    /// @param callId Call identifier within the service.
    /// @param inputsHash Hash of the call inputs.
    /// @param resultHash Hash of the result.
    /// @return The result digest.
    function resultDigest(
        uint256 chainId,
        address protocol,
        uint64 serviceId,
        uint256 callId,
        bytes32 inputsHash,
        bytes32 resultHash
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(Domain.RESULT_TAG, chainId, protocol, serviceId, callId, inputsHash, resultHash));
    }

    /// @notice Digest of an output commitment of a tolerant job, signed under `Domain.DST_RESULT`:
    /// `keccak256(abi.encode(COMMIT_TAG, chainId, protocol, serviceId, callId, inputsHash, outputHash))`.
    /// @dev Same shape as `resultDigest` under another tag, so a commitment can never be read as a result statement
    /// (or the reverse). The Rust twin is `vouch_primitives::commitment_digest`.
    /// @param chainId Chain id of the protocol.
    /// @param protocol Address of the protocol contract the call belongs to.
    /// @param serviceId Service identifier.
    /// @param callId Call identifier within the service.
    /// @param inputsHash Hash of the call inputs.
    /// @param outputHash `keccak256` of the operator's own output.
    /// @return The commitment digest.
    function commitmentDigest(
        uint256 chainId,
        address protocol,
        uint64 serviceId,
        uint256 callId,
        bytes32 inputsHash,
        bytes32 outputHash
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(Domain.COMMIT_TAG, chainId, protocol, serviceId, callId, inputsHash, outputHash));
    }

    /// @notice Call id of the call an x402 (EIP-3009) authorization pays for:
    /// `uint256(keccak256(abi.encode(PAID_CALL_TAG, serviceId, jobIndex, from, nonce)))`.
    /// @dev Known before anything reaches the chain, so operators can sign a paid call's result first and the payment
    /// and certificate can be settled together later. The token lets `(from, nonce)` be used once, so at most one such
    /// call is ever paid. Binding the service and the job means a certificate cannot be moved to another job of the
    /// same price. 256 bits keep the id apart from the counter ids of `callJob` (below 2^64) and from every other
    /// paid call (a 64-bit id could be ground to collide and frame operators for equivocation).
    /// @param serviceId The service.
    /// @param jobIndex The job.
    /// @param from The payer (authorizer).
    /// @param nonce The authorization's EIP-3009 nonce.
    /// @return The call id.
    function paidCallId(uint64 serviceId, uint8 jobIndex, address from, bytes32 nonce) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(Domain.PAID_CALL_TAG, serviceId, jobIndex, from, nonce)));
    }

    /// @notice Leaf of a batch tree: `keccak256(abi.encode(callId, inputsHash, resultHash))`.
    /// @dev The 96-byte preimage cannot be confused with a 64-byte inner node.
    /// @param callId Call identifier.
    /// @param inputsHash Hash of the call inputs.
    /// @param resultHash Hash of the result.
    /// @return The leaf.
    function batchLeaf(uint256 callId, bytes32 inputsHash, bytes32 resultHash) internal pure returns (bytes32) {
        return keccak256(abi.encode(callId, inputsHash, resultHash));
    }

    /// @notice Leaf of a paid batch's record tree (`VouchProtocol.settlePaidBatch`), which the protocol keeps so that
    /// one call of the batch can later be proven (for slashing) without storing anything per call:
    /// `keccak256(abi.encode(from, nonce, jobIndex, payment, inputsHash, resultHash))`.
    /// @param from The payer.
    /// @param nonce The authorization's nonce.
    /// @param jobIndex The job.
    /// @param payment The amount collected (0 when the authorization had been used elsewhere).
    /// @param inputsHash Hash of the call inputs.
    /// @param resultHash The certified result.
    /// @return The leaf.
    function paidRecordLeaf(
        address from,
        bytes32 nonce,
        uint8 jobIndex,
        uint256 payment,
        bytes32 inputsHash,
        bytes32 resultHash
    ) internal pure returns (bytes32) {
        return keccak256(abi.encode(from, nonce, jobIndex, payment, inputsHash, resultHash));
    }

    /// @notice Root of the batch tree over `leaves` in batch order.
    /// @dev Built bottom-up; a pair hashes with `Hashes.commutativeKeccak256` (sorted pair, so `MerkleProof.verify`
    /// proves membership); an odd last node moves up unchanged; the root of one leaf is that leaf. `leaves` is not
    /// modified.
    /// @param leaves Batch leaves (`batchLeaf`), at least one.
    /// @return root The tree root.
    function batchRoot(bytes32[] memory leaves) internal pure returns (bytes32 root) {
        uint256 n = leaves.length;
        if (n == 0) revert EmptyBatch();
        bytes32[] memory level = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            level[i] = leaves[i];
        }
        while (n > 1) {
            uint256 pairs = n / 2;
            // Writing level[i] only overwrites entries already consumed (i ≤ 2i).
            for (uint256 i; i < pairs; ++i) {
                level[i] = Hashes.commutativeKeccak256(level[2 * i], level[2 * i + 1]);
            }
            if (n % 2 == 1) level[pairs] = level[n - 1];
            n -= pairs;
        }
        return level[0];
    }

    /// @notice Digest of a batch, signed under `Domain.DST_RESULT`:
    /// `keccak256(abi.encode(BATCH_TAG, chainId, protocol, serviceId, root, count))`.
    /// @param chainId Chain id the certificate is valid on.
    /// @param protocol Address of the protocol contract the batch is for.
    /// @param serviceId Service identifier.
    /// @param root Batch tree root (`batchRoot`).
    /// @param count Number of leaves, at least 1 (bound so a root cannot be reinterpreted with another size).
    /// @return The batch digest.
    function batchDigest(uint256 chainId, address protocol, uint64 serviceId, bytes32 root, uint32 count)
        internal
        pure
        returns (bytes32)
    {
        if (count == 0) revert EmptyBatch();
        return keccak256(abi.encode(Domain.BATCH_TAG, chainId, protocol, serviceId, root, count));
    }

    /// @notice Digest a proof of possession signs, under `Domain.DST_POP`:
    /// `keccak256(abi.encodePacked(POP_TAG, chainId, registry, operator, pubkey))`.
    /// @dev Binding `operator` stops a PoP copied from the mempool being registered by someone else; `chainId` and
    /// `registry` stop replay across deployments.
    /// @param chainId Chain id of the registry.
    /// @param registry Address of the key registry.
    /// @param operator Address registering the key.
    /// @param pubkey 128-byte EIP-2537 G1 public key.
    /// @return The PoP digest.
    function popDigest(uint256 chainId, address registry, address operator, bytes memory pubkey)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(Domain.POP_TAG, chainId, registry, operator, pubkey));
    }
}
