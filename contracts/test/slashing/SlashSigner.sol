// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {VectorTest} from "../utils/Vectors.sol";

/// @title SlashSigner
/// @notice Makes real BLS signatures and slashing evidence in tests: `sig = sk · H(digest)` with the EIP-2537 G2MSM
/// precompile on `BLS.hashToG2(digest, Domain.DST_RESULT)`, and batch trees with their Merkle proofs.
abstract contract SlashSigner is VectorTest {
    /// @notice One leaf of a batch: a statement about a call.
    struct Leaf {
        uint256 callId;
        bytes32 inputsHash;
        bytes32 resultHash;
    }

    /// @notice `sk · H(digest)` under `Domain.DST_RESULT` (256-byte EIP-2537 G2 point), via the shared `BlsSigner`.
    function _sign(uint256 secretKey, bytes32 digest) internal view returns (bytes memory signature) {
        return BlsSigner.sign(secretKey, digest);
    }

    /// @notice Single-form evidence: `secretKey` signs the result digest of the statement.
    function _single(
        uint256 secretKey,
        address protocol,
        uint64 serviceId,
        uint256 callId,
        bytes32 inputsHash,
        bytes32 resultHash
    ) internal view returns (VouchSlasher.SignedResult memory s) {
        s.inputsHash = inputsHash;
        s.resultHash = resultHash;
        s.signature = _sign(
            secretKey, VouchDigest.resultDigest(block.chainid, protocol, serviceId, callId, inputsHash, resultHash)
        );
    }

    /// @notice A signed output commitment (tolerant jobs): `secretKey` signs the commitment digest of
    /// `keccak256(output)` (tag `COMMIT_TAG`, DST `Domain.DST_RESULT`).
    function _commit(
        uint256 secretKey,
        address protocol,
        uint64 serviceId,
        uint256 callId,
        bytes32 inputsHash,
        bytes memory output
    ) internal view returns (VouchSlasher.SignedCommitment memory c) {
        c.inputsHash = inputsHash;
        c.outputHash = keccak256(output);
        c.signature = _sign(
            secretKey,
            VouchDigest.commitmentDigest(block.chainid, protocol, serviceId, callId, inputsHash, c.outputHash)
        );
    }

    /// @notice Batch-form evidence for `leaves[index]`: `secretKey` signs the batch digest of all `leaves`.
    function _batch(uint256 secretKey, address protocol, uint64 serviceId, Leaf[] memory leaves, uint256 index)
        internal
        view
        returns (VouchSlasher.SignedResult memory s)
    {
        bytes32[] memory hashes = _leafHashes(leaves);
        s.inputsHash = leaves[index].inputsHash;
        s.resultHash = leaves[index].resultHash;
        s.batchRoot = VouchDigest.batchRoot(hashes);
        // forge-lint: disable-next-line(unsafe-typecast)
        s.batchCount = uint32(leaves.length); // small test batches
        s.proof = _proof(hashes, index);
        s.signature =
            _sign(secretKey, VouchDigest.batchDigest(block.chainid, protocol, serviceId, s.batchRoot, s.batchCount));
    }

    /// @notice `batchLeaf` of each leaf.
    function _leafHashes(Leaf[] memory leaves) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](leaves.length);
        for (uint256 i; i < leaves.length; ++i) {
            hashes[i] = VouchDigest.batchLeaf(leaves[i].callId, leaves[i].inputsHash, leaves[i].resultHash);
        }
    }

    /// @notice Merkle proof of `hashes[index]` in the tree `VouchDigest.batchRoot` builds (sorted pairs; an odd last
    /// node moves up unchanged and adds nothing to the proof).
    function _proof(bytes32[] memory hashes, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory level = new bytes32[](hashes.length);
        for (uint256 i; i < hashes.length; ++i) {
            level[i] = hashes[i];
        }
        bytes32[] memory path = new bytes32[](256);
        uint256 depth;
        uint256 n = hashes.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) path[depth++] = level[sibling];
            uint256 pairs = n / 2;
            for (uint256 i; i < pairs; ++i) {
                bytes32 x = level[2 * i];
                bytes32 y = level[2 * i + 1];
                level[i] = x < y ? keccak256(abi.encodePacked(x, y)) : keccak256(abi.encodePacked(y, x));
            }
            if (n % 2 == 1) level[pairs] = level[n - 1];
            n -= pairs;
            index /= 2;
        }
        proof = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            proof[i] = path[i];
        }
    }
}
