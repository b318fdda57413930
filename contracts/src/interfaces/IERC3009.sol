// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IERC3009
/// @notice EIP-3009 "Transfer With Authorization", as USDC and Vouch USD implement it.
interface IERC3009 {
    /// @notice Executes a signed transfer (anyone may submit it). `signature` is 65-byte ECDSA or ERC-1271.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice `transferWithAuthorization` with the signature split into v, r, s.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Like `transferWithAuthorization`, but only `to` may submit it (no front-running).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice True once `nonce` of `authorizer` was used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
}
