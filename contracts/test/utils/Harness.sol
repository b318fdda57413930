// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BLS} from "../../src/bls/BLS.sol";
import {KeySet} from "../../src/bls/KeySet.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";

/// @title BLSHarness
/// @notice Exposes the internal library functions as external calls (so tests can expect reverts and meter gas).
contract BLSHarness {
    /// @notice `BLS.hashToG2(bytes32, bytes)`.
    function hashToG2(bytes32 message, bytes memory dst) external view returns (bytes memory) {
        return BLS.hashToG2(message, dst);
    }

    /// @notice `BLS.hashToG2(bytes, bytes)`.
    function hashToG2Bytes(bytes memory message, bytes memory dst) external view returns (bytes memory) {
        return BLS.hashToG2(message, dst);
    }

    /// @notice `BLS.hashToField`.
    function hashToField(bytes memory message, bytes memory dst) external view returns (bytes memory) {
        return BLS.hashToField(message, dst);
    }

    /// @notice `BLS.expandMessageXmd`.
    function expandMessageXmd(bytes memory message, bytes memory dst) external view returns (bytes memory) {
        return BLS.expandMessageXmd(message, dst);
    }

    /// @notice `BLS.verify`.
    function verify(bytes memory pubkey, bytes32 message, bytes memory dst, bytes memory signature)
        external
        view
        returns (bool)
    {
        return BLS.verify(pubkey, message, dst, signature);
    }

    /// @notice `BLS.aggregateKeys`.
    function aggregateKeys(address keySet, uint256 bitmap) external view returns (bytes memory apk, uint256 count) {
        return BLS.aggregateKeys(keySet, bitmap);
    }

    /// @notice `BLS.verifyAggregate` (no registry: any key set is trusted).
    function verifyAggregate(address keySet, uint256 bitmap, bytes32 message, bytes memory signature)
        external
        view
        returns (bool)
    {
        return BLS.verifyAggregate(keySet, bitmap, message, signature);
    }

    /// @notice `KeySet.write`.
    function writeKeySet(bytes memory concatenatedKeys) external returns (address) {
        return KeySet.write(concatenatedKeys);
    }

    /// @notice `KeySet.trySize`.
    function trySize(address keySet) external view returns (bool, uint256) {
        return KeySet.trySize(keySet);
    }

    /// @notice `KeySet.size`.
    function size(address keySet) external view returns (uint256) {
        return KeySet.size(keySet);
    }

    /// @notice `KeySet.keyAt`.
    function keyAt(address keySet, uint256 index) external view returns (bytes memory) {
        return KeySet.keyAt(keySet, index);
    }

    /// @notice `VouchDigest.batchRoot`.
    function batchRoot(bytes32[] memory leaves) external pure returns (bytes32) {
        return VouchDigest.batchRoot(leaves);
    }

    /// @notice `VouchDigest.batchDigest`.
    function batchDigest(uint256 chainId, address protocol, uint64 serviceId, bytes32 root, uint32 count)
        external
        pure
        returns (bytes32)
    {
        return VouchDigest.batchDigest(chainId, protocol, serviceId, root, count);
    }
}
