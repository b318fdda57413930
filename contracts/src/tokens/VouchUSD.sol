// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IERC3009} from "../interfaces/IERC3009.sol";

/// @title VouchUSD
/// @notice "Vouch USD" (vUSD): a 6-decimal stablecoin stand-in with EIP-2612 `permit` and EIP-3009 transfers with
/// authorization, signed under the EIP-712 domain {name: "Vouch USD", version: "1", chainId, verifyingContract: this},
/// so x402 `exact` clients pay with it exactly as with USDC.
/// @dev DEVELOPMENT / TEST TOKEN ONLY: the owner can mint any amount to anyone, so it has no economic value. Production
/// deployments use real USDC, which has the same EIP-3009 interface and semantics.
/// EIP-3009 semantics follow USDC (FiatToken v2.2): an authorization is valid while
/// `validAfter < block.timestamp < validBefore`; every nonce of an authorizer can be used (or cancelled) once, and the
/// nonces of transfer, receive and cancel authorizations share one space; the nonce is marked used before the
/// transfer (checks-effects-interactions). Signatures are checked first as 65-byte ECDSA (r‖s‖v, low s, v ∈ {27, 28})
/// from `from` (also when `from` has code, e.g. an EIP-7702 account), then, if `from` has code, with ERC-1271 through
/// OpenZeppelin's `SignatureChecker`. The v, r, s overloads pass `r‖s‖v` to ERC-1271 wallets, as USDC does.
contract VouchUSD is ERC20, ERC20Permit, Ownable, IERC3009 {
    /// @notice EIP-3009 typehash of a transfer authorization (anyone may submit it).
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @notice EIP-3009 typehash of a receive authorization (only the payee may submit it).
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @notice EIP-3009 typehash of a cancellation.
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// @dev Whether each nonce of each authorizer was used or cancelled.
    mapping(address authorizer => mapping(bytes32 nonce => bool used)) private _authorizationStates;

    /// @notice An authorization was executed (emitted before its `Transfer`).
    /// @param authorizer The payer who signed it.
    /// @param nonce Its nonce.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

    /// @notice An authorization was cancelled before use.
    /// @param authorizer The payer who signed the cancellation.
    /// @param nonce The cancelled nonce.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    /// @notice The authorization is not valid yet: `block.timestamp <= validAfter`.
    /// @param validAfter The authorization's lower bound (exclusive).
    /// @param timestamp The current block timestamp.
    error AuthorizationNotYetValid(uint256 validAfter, uint256 timestamp);

    /// @notice The authorization has expired: `block.timestamp >= validBefore`.
    /// @param validBefore The authorization's upper bound (exclusive).
    /// @param timestamp The current block timestamp.
    error AuthorizationExpired(uint256 validBefore, uint256 timestamp);

    /// @notice The nonce of this authorizer was already used or cancelled.
    /// @param authorizer The authorizer.
    /// @param nonce The nonce.
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);

    /// @notice The signature is not a valid signature of the authorization by the authorizer (ECDSA or ERC-1271).
    error InvalidAuthorizationSignature();

    /// @notice `receiveWithAuthorization` was submitted by someone other than the payee.
    /// @param caller The submitter.
    /// @param payee The authorization's `to`.
    error CallerMustBePayee(address caller, address payee);

    /// @notice Deploys the token with no supply.
    /// @param initialOwner The account allowed to mint.
    constructor(address initialOwner) ERC20("Vouch USD", "vUSD") ERC20Permit("Vouch USD") Ownable(initialOwner) {}

    /// @notice Mints `value` units to `to` (owner only; dev/test token). Emits `Transfer(address(0), to, value)`.
    /// @param to The recipient.
    /// @param value The amount, in 6-decimal units.
    function mint(address to, uint256 value) external onlyOwner {
        _mint(to, value);
    }

    /// @notice Executes a transfer signed by `from` (anyone may submit it). `signature` is 65-byte ECDSA (r‖s‖v) or
    /// anything the ERC-1271 wallet `from` accepts.
    /// @param from The payer (signer).
    /// @param to The payee.
    /// @param value The amount.
    /// @param validAfter The authorization is valid only when `block.timestamp > validAfter`.
    /// @param validBefore The authorization is valid only when `block.timestamp < validBefore`.
    /// @param nonce A unique 32-byte nonce chosen by the payer.
    /// @param signature The signature of the EIP-712 `TransferWithAuthorization` message.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        bytes32 digest = _checkAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, digest, signature);
        _useAuthorizationAndTransfer(from, to, value, nonce);
    }

    /// @notice `transferWithAuthorization` with the signature split into v, r, s.
    /// @param from The payer (signer).
    /// @param to The payee.
    /// @param value The amount.
    /// @param validAfter The authorization is valid only when `block.timestamp > validAfter`.
    /// @param validBefore The authorization is valid only when `block.timestamp < validBefore`.
    /// @param nonce A unique 32-byte nonce chosen by the payer.
    /// @param v Recovery byte of the signature (27 or 28).
    /// @param r First half of the signature.
    /// @param s Second half of the signature (low s).
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
    ) external {
        bytes32 digest = _checkAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce
        );
        _requireValidSignature(from, digest, v, r, s);
        _useAuthorizationAndTransfer(from, to, value, nonce);
    }

    /// @notice Executes a transfer signed by `from` that only the payee `to` may submit, so a third party who sees the
    /// signed message cannot front-run the payee's own call.
    /// @param from The payer (signer).
    /// @param to The payee, who must be the caller.
    /// @param value The amount.
    /// @param validAfter The authorization is valid only when `block.timestamp > validAfter`.
    /// @param validBefore The authorization is valid only when `block.timestamp < validBefore`.
    /// @param nonce A unique 32-byte nonce chosen by the payer.
    /// @param signature The signature of the EIP-712 `ReceiveWithAuthorization` message (ECDSA or ERC-1271).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        bytes32 digest =
            _checkAuthorization(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _requireValidSignature(from, digest, signature);
        _useAuthorizationAndTransfer(from, to, value, nonce);
    }

    /// @notice `receiveWithAuthorization` with the signature split into v, r, s.
    /// @param from The payer (signer).
    /// @param to The payee, who must be the caller.
    /// @param value The amount.
    /// @param validAfter The authorization is valid only when `block.timestamp > validAfter`.
    /// @param validBefore The authorization is valid only when `block.timestamp < validBefore`.
    /// @param nonce A unique 32-byte nonce chosen by the payer.
    /// @param v Recovery byte of the signature (27 or 28).
    /// @param r First half of the signature.
    /// @param s Second half of the signature (low s).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        bytes32 digest =
            _checkAuthorization(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce);
        _requireValidSignature(from, digest, v, r, s);
        _useAuthorizationAndTransfer(from, to, value, nonce);
    }

    /// @notice Cancels an unused authorization of `authorizer` (anyone may submit the signed cancellation).
    /// @param authorizer The payer whose nonce is cancelled (signer).
    /// @param nonce The nonce to cancel.
    /// @param v Recovery byte of the signature (27 or 28).
    /// @param r First half of the signature.
    /// @param s Second half of the signature (low s).
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        bytes32 digest = _checkCancellation(authorizer, nonce);
        _requireValidSignature(authorizer, digest, v, r, s);
        _cancel(authorizer, nonce);
    }

    /// @notice Cancels an unused authorization of `authorizer` (anyone may submit the signed cancellation).
    /// @param authorizer The payer whose nonce is cancelled (signer).
    /// @param nonce The nonce to cancel.
    /// @param signature The signature of the EIP-712 `CancelAuthorization` message (ECDSA or ERC-1271).
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external {
        bytes32 digest = _checkCancellation(authorizer, nonce);
        _requireValidSignature(authorizer, digest, signature);
        _cancel(authorizer, nonce);
    }

    /// @notice Whether `nonce` of `authorizer` was used or cancelled.
    /// @param authorizer The authorizer.
    /// @param nonce The nonce.
    /// @return True once the nonce was used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @notice The EIP-712 domain version, "1" (x402 `extra.version`).
    /// @return The version string.
    function version() external view returns (string memory) {
        return _EIP712Version();
    }

    /// @notice 6 decimals, as USDC.
    /// @return 6.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev Refuses an authorization outside its time window or with a used nonce, and returns its EIP-712 digest.
    function _checkAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) private view returns (bytes32) {
        // EIP-3009 time windows are in seconds; a validator's few seconds of timestamp leeway is accepted by design.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter, block.timestamp);
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore, block.timestamp);
        _requireUnused(from, nonce);
        return _hashTypedDataV4(keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce)));
    }

    /// @dev Refuses a cancellation of a used nonce and returns its EIP-712 digest.
    function _checkCancellation(address authorizer, bytes32 nonce) private view returns (bytes32) {
        _requireUnused(authorizer, nonce);
        return _hashTypedDataV4(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
    }

    /// @dev Reverts `AuthorizationAlreadyUsed` if the nonce was used or cancelled.
    function _requireUnused(address authorizer, bytes32 nonce) private view {
        if (_authorizationStates[authorizer][nonce]) revert AuthorizationAlreadyUsed(authorizer, nonce);
    }

    /// @dev Marks the nonce used (effect) before moving the tokens (interaction-free OZ `_transfer`).
    function _useAuthorizationAndTransfer(address from, address to, uint256 value, bytes32 nonce) private {
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    /// @dev Marks the nonce cancelled.
    function _cancel(address authorizer, bytes32 nonce) private {
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    /// @dev Reverts unless `signature` is `signer`'s 65-byte ECDSA signature of `digest`, or `signer` has code and
    /// accepts it through ERC-1271.
    function _requireValidSignature(address signer, bytes32 digest, bytes memory signature) private view {
        if (signature.length == 65) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
            if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        }
        _requireValidERC1271Signature(signer, digest, signature);
    }

    /// @dev `_requireValidSignature` for a signature split into v, r, s (`r‖s‖v` for ERC-1271).
    function _requireValidSignature(address signer, bytes32 digest, uint8 v, bytes32 r, bytes32 s) private view {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
        if (err == ECDSA.RecoverError.NoError && recovered == signer) return;
        _requireValidERC1271Signature(signer, digest, abi.encodePacked(r, s, v));
    }

    /// @dev Reverts unless `signer` has code and its ERC-1271 `isValidSignature` accepts `signature` for `digest`.
    function _requireValidERC1271Signature(address signer, bytes32 digest, bytes memory signature) private view {
        if (signer.code.length == 0 || !SignatureChecker.isValidERC1271SignatureNow(signer, digest, signature)) {
            revert InvalidAuthorizationSignature();
        }
    }
}
