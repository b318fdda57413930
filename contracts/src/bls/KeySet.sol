// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title KeySet
/// @notice Stores the BLS public keys of a fixed operator set as the runtime code of one data contract, so that
/// `BLS.aggregateKeys` reads a selected key with one warm `EXTCODECOPY` instead of several cold `SLOAD`s.
/// @dev Layout (docs/design/bls.md): runtime code = `0x00 ‖ key₀ ‖ key₁ ‖ …`, each key a 128-byte EIP-2537 G1 point
/// in slot order. The leading `0x00` (STOP) means the data can never run as code. Key `i` is at code offset
/// `1 + 128·i`; the set size is `(codesize − 1) / 128`.
/// This library writes and reads the layout only: it does not validate the points. Key sets must be built from keys
/// that passed a proof-of-possession check (see `KeyRegistry.createKeySet`); a set written directly with `write` from
/// unchecked keys is open to rogue-key forgeries.
library KeySet {
    /// @notice Length of one key: an uncompressed EIP-2537 G1 point.
    uint256 internal constant KEY_LENGTH = 128;

    /// @notice Code offset of key 0 (after the leading STOP byte).
    uint256 internal constant DATA_OFFSET = 1;

    /// @notice Largest set a reader accepts: the width of a signer bitmap.
    uint256 internal constant MAX_READ_KEYS = 256;

    /// @notice Largest set `write` can deploy: EIP-170 caps runtime code at 24,576 bytes, so
    /// `(24,576 − 1) / 128 = 191` keys. Larger sets would need a layout change (docs/design/bls.md).
    uint256 internal constant MAX_KEYS = (24_576 - DATA_OFFSET) / KEY_LENGTH;

    /// @notice Init code prefix: `PUSH2 len ‖ DUP1 ‖ PUSH1 0x0a ‖ PUSH0 ‖ CODECOPY ‖ PUSH0 ‖ RETURN`.
    /// @dev It copies everything after its own 10 bytes (the runtime code, whose length `len` is patched in as the
    /// two bytes after 0x61) to memory 0 and returns it. Written as `0x61 ‖ len(2) ‖ INIT_TAIL`.
    bytes7 private constant INIT_TAIL = 0x80600a5f395ff3;

    /// @notice The concatenated keys are empty, not a multiple of 128 bytes, or more than `MAX_KEYS` keys.
    /// @param length Byte length received.
    error KeySetInvalidLength(uint256 length);

    /// @notice `CREATE` of the data contract failed (for example, not enough gas for the code deposit).
    error KeySetDeploymentFailed();

    /// @notice The address does not hold a key set in the documented layout.
    /// @param keySet Address read.
    error KeySetInvalid(address keySet);

    /// @notice A key index at or above the set size.
    /// @param index Index requested.
    /// @param size Number of keys in the set.
    error KeySetIndexOutOfRange(uint256 index, uint256 size);

    /// @notice Deploys a data contract holding `concatenatedKeys` (128 bytes per key, slot order).
    /// @param concatenatedKeys `key₀ ‖ key₁ ‖ …`, 1 to `MAX_KEYS` keys.
    /// @return keySet Address of the new data contract.
    function write(bytes memory concatenatedKeys) internal returns (address keySet) {
        uint256 length = concatenatedKeys.length;
        if (length == 0 || length % KEY_LENGTH != 0 || length / KEY_LENGTH > MAX_KEYS) {
            revert KeySetInvalidLength(length);
        }
        // runtime = 0x00 ‖ keys
        // forge-lint: disable-next-line(unsafe-typecast)
        uint16 runtimeLength = uint16(length + DATA_OFFSET); // safe: ≤ 1 + 128·MAX_KEYS = 24,449 < 2^16
        bytes memory initCode = abi.encodePacked(hex"61", runtimeLength, INIT_TAIL, hex"00", concatenatedKeys);
        assembly ("memory-safe") {
            keySet := create(0, add(initCode, 0x20), mload(initCode))
        }
        if (keySet == address(0)) revert KeySetDeploymentFailed();
    }

    /// @notice Reads the size of a key set without reverting.
    /// @dev Valid means: code size `1 + 128·n` with `1 ≤ n ≤ 256` and a leading `0x00` byte.
    /// @param keySet Address to inspect.
    /// @return valid Whether the code has the key-set layout.
    /// @return n Number of keys (0 when not valid).
    function trySize(address keySet) internal view returns (bool valid, uint256 n) {
        uint256 codeSize = keySet.code.length;
        if (codeSize <= DATA_OFFSET) return (false, 0);
        uint256 dataSize = codeSize - DATA_OFFSET;
        if (dataSize % KEY_LENGTH != 0 || dataSize / KEY_LENGTH > MAX_READ_KEYS) return (false, 0);
        uint256 first;
        assembly ("memory-safe") {
            // Copy the first code byte into scratch space and read it back.
            extcodecopy(keySet, 0x00, 0, 1)
            first := byte(0, mload(0x00))
        }
        if (first != 0) return (false, 0);
        return (true, dataSize / KEY_LENGTH);
    }

    /// @notice Number of keys in a key set.
    /// @param keySet Key-set data contract.
    /// @return Number of keys; reverts with `KeySetInvalid` if `keySet` does not have the layout.
    function size(address keySet) internal view returns (uint256) {
        (bool valid, uint256 n) = trySize(keySet);
        if (!valid) revert KeySetInvalid(keySet);
        return n;
    }

    /// @notice Key `index` of a key set.
    /// @param keySet Key-set data contract.
    /// @param index Slot index, below the set size.
    /// @return key The 128-byte EIP-2537 G1 point stored in slot `index`.
    function keyAt(address keySet, uint256 index) internal view returns (bytes memory key) {
        uint256 n = size(keySet);
        if (index >= n) revert KeySetIndexOutOfRange(index, n);
        key = new bytes(KEY_LENGTH);
        assembly ("memory-safe") {
            extcodecopy(keySet, add(key, 0x20), add(DATA_OFFSET, mul(index, KEY_LENGTH)), KEY_LENGTH)
        }
    }
}
