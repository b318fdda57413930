// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BLS} from "./bls/BLS.sol";
import {Domain} from "./bls/Domain.sol";
import {KeySet} from "./bls/KeySet.sol";
import {VouchDigest} from "./bls/VouchDigest.sol";

/// @title KeyRegistry
/// @notice Registers operators' BLS12-381 public keys (G1, min-pk) with a proof of possession, builds fixed operator
/// sets as key-set data contracts, and verifies aggregate signatures against the sets it built.
/// @dev The proof of possession (a signature under `Domain.DST_POP` over
/// `VouchDigest.popDigest(chainid, this, operator, pubkey)`) is what makes same-message aggregation safe: it stops
/// rogue keys (`pk_attacker − pk_victim`), and its pairing check also proves the key is on the curve and in the G1
/// subgroup, which later `G1ADD`s do not check. One key per operator, registered once: key rotation and removal are out
/// of scope for this version. The contract has no constructor-set state, so its runtime code can be placed anywhere.
contract KeyRegistry {
    /// @notice Length of a public key: an EIP-2537 G1 point.
    uint256 public constant PUBKEY_LENGTH = 128;

    /// @notice Length of a proof of possession: an EIP-2537 G2 point.
    uint256 public constant POP_LENGTH = 256;

    /// @notice Largest operator set `createKeySet` accepts (EIP-170 code size limit; see `KeySet.MAX_KEYS`).
    uint256 public constant MAX_SET_SIZE = KeySet.MAX_KEYS;

    /// @dev Transient-storage namespace XORed with an operator address to mark it as seen in `createKeySet`.
    uint256 private constant SEEN_NAMESPACE = uint256(keccak256("vouch.KeyRegistry.createKeySet.seen"));

    /// @dev Registered key of each operator (empty if none).
    mapping(address operator => bytes pubkey) private _keyOf;

    /// @notice Operator that registered the key with hash `keyHash` (`keccak256` of the 128-byte key); zero if none.
    mapping(bytes32 keyHash => address operator) public operatorOf;

    /// @notice Whether `keySet` is a key-set data contract created by this registry.
    mapping(address keySet => bool created) public isKeySet;

    /// @notice An operator registered its key.
    /// @param operator The operator (the sender).
    /// @param keyHash `keccak256(pubkey)`.
    /// @param pubkey The 128-byte EIP-2537 G1 public key.
    event KeyRegistered(address indexed operator, bytes32 indexed keyHash, bytes pubkey);

    /// @notice A key set was created.
    /// @param keySet Address of the key-set data contract.
    /// @param operatorsHash `keccak256(abi.encodePacked(operators))` (each address as a 32-byte word, slot order).
    /// @param size Number of operators.
    event KeySetCreated(address indexed keySet, bytes32 indexed operatorsHash, uint256 size);

    /// @notice A byte string has the wrong length.
    /// @param expected Required length.
    /// @param actual Length received.
    error InvalidLength(uint256 expected, uint256 actual);

    /// @notice The key is the point at infinity (all zeros).
    error InfinityKey();

    /// @notice The operator already has a key (one key per operator; no rotation).
    /// @param operator The operator.
    error OperatorAlreadyRegistered(address operator);

    /// @notice The key is already registered.
    /// @param keyHash `keccak256` of the key.
    /// @param registeredBy Operator that registered it.
    error DuplicateKey(bytes32 keyHash, address registeredBy);

    /// @notice The proof of possession does not verify for this key, sender, chain and registry (this includes keys
    /// off the curve, outside the subgroup or non-canonically encoded).
    /// @param operator The sender.
    error InvalidProofOfPossession(address operator);

    /// @notice An operator in a new set has no registered key.
    /// @param operator The operator.
    error OperatorNotRegistered(address operator);

    /// @notice An operator appears twice in a new set.
    /// @param operator The operator.
    error DuplicateOperator(address operator);

    /// @notice A new set has no operators or more than `MAX_SET_SIZE`.
    /// @param size Number of operators received.
    error InvalidSetSize(uint256 size);

    /// @notice Registers the sender's BLS public key.
    /// @dev Checks, in order: lengths, infinity, the sender has no key yet, the key is new, the proof of possession
    /// (`BLS.verify(pubkey, popDigest(msg.sender, pubkey), DST_POP, pop)`, which also subgroup-checks the key).
    /// @param pubkey 128-byte EIP-2537 G1 public key.
    /// @param pop 256-byte EIP-2537 G2 signature over `popDigest(msg.sender, pubkey)` under `Domain.DST_POP`.
    function registerKey(bytes calldata pubkey, bytes calldata pop) external {
        if (pubkey.length != PUBKEY_LENGTH) revert InvalidLength(PUBKEY_LENGTH, pubkey.length);
        if (pop.length != POP_LENGTH) revert InvalidLength(POP_LENGTH, pop.length);
        if (_isInfinity(pubkey)) revert InfinityKey();
        if (_keyOf[msg.sender].length != 0) revert OperatorAlreadyRegistered(msg.sender);
        bytes32 keyHash = keccak256(pubkey);
        address holder = operatorOf[keyHash];
        if (holder != address(0)) revert DuplicateKey(keyHash, holder);
        bytes32 digest = VouchDigest.popDigest(block.chainid, address(this), msg.sender, pubkey);
        if (!BLS.verify(pubkey, digest, Domain.DST_POP, pop)) revert InvalidProofOfPossession(msg.sender);

        _keyOf[msg.sender] = pubkey;
        operatorOf[keyHash] = msg.sender;
        emit KeyRegistered(msg.sender, keyHash, pubkey);
    }

    /// @notice Builds a key-set data contract from registered operators, in slot order (slot i = bit i of a bitmap).
    /// @dev Permissionless: anyone can build a set from registered operators (including operators they control), so
    /// a key set says nothing about who is trusted. Protocol contracts must pin the key set of the operator set they
    /// accept and never take a key-set address from the certificate submitter.
    /// @param operators 1 to `MAX_SET_SIZE` distinct registered operators.
    /// @return keySet Address of the key-set data contract.
    function createKeySet(address[] calldata operators) external returns (address keySet) {
        uint256 n = operators.length;
        if (n == 0 || n > MAX_SET_SIZE) revert InvalidSetSize(n);
        bytes memory keys = new bytes(n * PUBKEY_LENGTH);
        for (uint256 i; i < n; ++i) {
            address operator = operators[i];
            bytes memory key = _keyOf[operator];
            if (key.length == 0) revert OperatorNotRegistered(operator);
            // Duplicate check in O(n): mark each operator in transient storage. The marks are cleared below, and a
            // revert discards them too, so they never outlive this call.
            uint256 seen = SEEN_NAMESPACE ^ uint256(uint160(operator));
            bool duplicate;
            assembly ("memory-safe") {
                duplicate := tload(seen)
                tstore(seen, 1)
            }
            if (duplicate) revert DuplicateOperator(operator);
            assembly ("memory-safe") {
                // keys[128·i .. 128·i + 128) = key
                mcopy(add(add(keys, 0x20), mul(i, 128)), add(key, 0x20), 128)
            }
        }
        for (uint256 i; i < n; ++i) {
            uint256 seen = SEEN_NAMESPACE ^ uint256(uint160(operators[i]));
            assembly ("memory-safe") {
                tstore(seen, 0)
            }
        }
        keySet = KeySet.write(keys);
        isKeySet[keySet] = true;
        emit KeySetCreated(keySet, keccak256(abi.encodePacked(operators)), n);
    }

    /// @notice Verifies an aggregate signature over `digest` by the operators of `keySet` selected by `bitmap`.
    /// @dev Read path for off-chain callers and other contracts. `true` means the selected members of *this* set
    /// signed; the caller decides whether it trusts the set (see `createKeySet`). Returns false for a key set this
    /// registry did not create and in every case `BLS.verifyAggregate` refuses; reverts only with
    /// `BLS.BLSInsufficientGas` (raise the gas limit: the pairing needs ~153k gas available although it uses ~103k)
    /// or `BLS.BLSPrecompileFailed` (chain without EIP-2537).
    /// @param keySet Key-set data contract created by `createKeySet`.
    /// @param bitmap Signer bitmap (bit i = slot i signed).
    /// @param digest The signed 32-byte digest (result or batch digest), hashed under `Domain.DST_RESULT`.
    /// @param signature 256-byte EIP-2537 G2 aggregate signature.
    /// @return True iff the aggregate signature is valid.
    function verifyAggregate(address keySet, uint256 bitmap, bytes32 digest, bytes calldata signature)
        external
        view
        returns (bool)
    {
        if (!isKeySet[keySet]) return false;
        return BLS.verifyAggregate(keySet, bitmap, digest, signature);
    }

    /// @notice The key registered by `operator`.
    /// @param operator The operator.
    /// @return The 128-byte key, or empty bytes if none.
    function keyOf(address operator) external view returns (bytes memory) {
        return _keyOf[operator];
    }

    /// @notice The digest `operator` must sign (under `Domain.DST_POP`) to register `pubkey` here.
    /// @param operator The address that will send `registerKey`.
    /// @param pubkey 128-byte EIP-2537 G1 public key.
    /// @return `keccak256(abi.encodePacked(POP_TAG, block.chainid, address(this), operator, pubkey))`.
    function popDigest(address operator, bytes calldata pubkey) external view returns (bytes32) {
        return VouchDigest.popDigest(block.chainid, address(this), operator, pubkey);
    }

    /// @dev True iff all 128 bytes of the key are zero.
    function _isInfinity(bytes calldata pubkey) private pure returns (bool) {
        return
            bytes32(pubkey[0:32]) | bytes32(pubkey[32:64]) | bytes32(pubkey[64:96]) | bytes32(pubkey[96:128])
                == bytes32(0);
    }
}
