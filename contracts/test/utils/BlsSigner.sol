// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BLS} from "../../src/bls/BLS.sol";
import {Domain} from "../../src/bls/Domain.sol";

/// @title BlsSigner
/// @notice Makes BLS12-381 (min-pk) result signatures inside forge tests with the EIP-2537 precompiles, so certificates
/// can bind the protocol address a test deploys: `σ = sk · H(digest)` with G2MSM (0x0e) on
/// `BLS.hashToG2(digest, Domain.DST_RESULT)`, aggregated with G2ADD (0x0d).
/// @dev Test-only: secret keys come from the golden vectors (`keys[i].secretKey`).
library BlsSigner {
    /// @notice BLS12-381 subgroup order r.
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    /// @notice EIP-2537 G2ADD precompile.
    address internal constant G2ADD = address(0x0d);
    /// @notice EIP-2537 G2MSM precompile.
    address internal constant G2MSM = address(0x0e);

    /// @notice A precompile call failed or returned the wrong length.
    error BlsSignerPrecompileFailed(address precompile);

    /// @notice `sk · H(digest)` under `Domain.DST_RESULT`: one operator's signature (256-byte EIP-2537 G2).
    /// @param secretKey Scalar secret key.
    /// @param digest 32-byte result or batch digest.
    /// @return signature The signature.
    function sign(uint256 secretKey, bytes32 digest) internal view returns (bytes memory signature) {
        return _mul(BLS.hashToG2(digest, Domain.DST_RESULT), secretKey);
    }

    /// @notice Sum of G2 points with G2ADD: the aggregate of individual signatures.
    /// @param signatures 256-byte EIP-2537 G2 points (at least one).
    /// @return sum Their sum.
    function aggregate(bytes[] memory signatures) internal view returns (bytes memory sum) {
        sum = signatures[0];
        for (uint256 i = 1; i < signatures.length; ++i) {
            (bool ok, bytes memory out) = G2ADD.staticcall(bytes.concat(sum, signatures[i]));
            if (!ok || out.length != 256) revert BlsSignerPrecompileFailed(G2ADD);
            sum = out;
        }
    }

    /// @notice Aggregate signature over `digest` by the keys `secretKeys[i]` for every bit i of `bitmap`.
    /// @dev Computed as `(Σ sk_i mod r) · H(digest)`: one G2MSM, equal to aggregating the individual signatures.
    /// @param secretKeys Secret key of each slot.
    /// @param bitmap Signer bitmap (bit i = slot i).
    /// @param digest 32-byte digest.
    /// @return signature The aggregate signature.
    function signBitmap(uint256[] memory secretKeys, uint256 bitmap, bytes32 digest)
        internal
        view
        returns (bytes memory signature)
    {
        uint256 sum;
        for (uint256 i; i < secretKeys.length && i < 256; ++i) {
            if ((bitmap >> i) & 1 == 1) sum = addmod(sum, secretKeys[i], R);
        }
        return sign(sum, digest);
    }

    /// @dev `scalar · point` with G2MSM (one pair).
    function _mul(bytes memory point, uint256 scalar) private view returns (bytes memory out) {
        bool ok;
        (ok, out) = G2MSM.staticcall(abi.encodePacked(point, scalar));
        if (!ok || out.length != 256) revert BlsSignerPrecompileFailed(G2MSM);
    }
}
