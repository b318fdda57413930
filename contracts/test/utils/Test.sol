// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Vm
/// @notice The forge (1.7) cheatcodes these tests use. forge-std is not available here (see
/// docs/design/toolchain.md), so this is a minimal copy of the signatures.
interface Vm {
    /// @notice Sets msg.sender for the next call.
    function prank(address msgSender) external;
    /// @notice Sets msg.sender for every call until `stopPrank`.
    function startPrank(address msgSender) external;
    /// @notice Ends `startPrank`.
    function stopPrank() external;
    /// @notice Sets the code of `target`.
    function etch(address target, bytes calldata newRuntimeBytecode) external;
    /// @notice Nonce of an account.
    function getNonce(address account) external view returns (uint64 nonce);
    /// @notice Sets block.chainid.
    function chainId(uint256 newChainId) external;
    /// @notice Expects the next call to revert with exactly `revertData`.
    function expectRevert(bytes calldata revertData) external;
    /// @notice Expects the next call to revert with exactly the error `revertData` (no arguments).
    function expectRevert(bytes4 revertData) external;
    /// @notice Expects the next emitted event to match the one emitted next by the test, from `emitter`.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
    /// @notice Rejects the current fuzz input when `condition` is false.
    function assume(bool condition) external pure;
    /// @notice Reads a file (subject to `fs_permissions`).
    function readFile(string calldata path) external view returns (string memory data);
    /// @notice Reads an environment variable, or returns `defaultValue`.
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
    /// @notice Reads the JSON value at `key` as the ABI type `typeDescription` (e.g. `S(uint256 a,bytes b)`).
    function parseJsonType(string calldata json, string calldata key, string calldata typeDescription)
        external
        pure
        returns (bytes memory);
    /// @notice Reads the JSON array at `key` as an array of the ABI type `typeDescription`.
    function parseJsonTypeArray(string calldata json, string calldata key, string calldata typeDescription)
        external
        pure
        returns (bytes memory);
    /// @notice Reads a JSON value as bytes32.
    function parseJsonBytes32(string calldata json, string calldata key) external pure returns (bytes32);
    /// @notice Reads a JSON value (number or hex string) as uint256.
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    /// @notice Reads a JSON value as an address.
    function parseJsonAddress(string calldata json, string calldata key) external pure returns (address);
    /// @notice Reads a JSON value as a string.
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    /// @notice Reads a JSON value (a `0x`-hex string) as bytes.
    function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
    /// @notice Records the gas of the last call as `name` in snapshots/<test contract>.json.
    function snapshotGasLastCall(string calldata name) external returns (uint256 gasUsed);
    /// @notice Marks the current test as skipped when `skipTest` is true.
    function skip(bool skipTest, string calldata reason) external;
    /// @notice Sets block.timestamp.
    function warp(uint256 newTimestamp) external;
    /// @notice Sets block.number.
    function roll(uint256 newHeight) external;
    /// @notice Sets the ether balance of `account`.
    function deal(address account, uint256 newBalance) external;
    /// @notice Signs `digest` with `privateKey` (secp256k1).
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    /// @notice Address of `privateKey`.
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    /// @notice Expects the next call to revert, with any data.
    function expectRevert() external;
    /// @notice Expects the next emitted event to match the one emitted next by the test (all topics and data).
    function expectEmit() external;
    /// @notice Expects the next emitted event from `emitter` to match (all topics and data).
    function expectEmit(address emitter) external;
    /// @notice Starts recording emitted logs.
    function recordLogs() external;

    /// @notice A recorded log.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }
    /// @notice Logs recorded since `recordLogs`, and clears them.
    function getRecordedLogs() external returns (Log[] memory logs);
    /// @notice Names an address in traces.
    function label(address account, string calldata newLabel) external;
    /// @notice Stores the current state; returns its id.
    function snapshotState() external returns (uint256 snapshotId);
    /// @notice Reverts to a stored state.
    function revertToState(uint256 snapshotId) external returns (bool success);
}

/// @title Test
/// @notice Minimal test base: the cheatcode handle and require-based assertions.
abstract contract Test {
    /// @notice The cheatcode address.
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @notice forge runs contracts that expose `IS_TEST() == true`.
    bool public constant IS_TEST = true;

    /// @dev Fails with `message` unless `condition`.
    function assertTrue(bool condition, string memory message) internal pure {
        require(condition, message);
    }

    /// @dev Fails with `message` if `condition`.
    function assertFalse(bool condition, string memory message) internal pure {
        require(!condition, message);
    }

    /// @dev Fails with `message` and both values unless `a == b`.
    function assertEq(uint256 a, uint256 b, string memory message) internal pure {
        if (a != b) revert(string.concat(message, ": ", _toString(a), " != ", _toString(b)));
    }

    /// @dev Fails with `message` and both values unless `a == b`.
    function assertEq(address a, address b, string memory message) internal pure {
        if (a != b) {
            revert(string.concat(message, ": ", _toHex(abi.encodePacked(a)), " != ", _toHex(abi.encodePacked(b))));
        }
    }

    /// @dev Fails with `message` and both values unless `a == b`.
    function assertEq(bytes32 a, bytes32 b, string memory message) internal pure {
        if (a != b) {
            revert(string.concat(message, ": ", _toHex(abi.encodePacked(a)), " != ", _toHex(abi.encodePacked(b))));
        }
    }

    /// @dev Fails with `message` and both values unless the byte strings are equal.
    function assertEq(bytes memory a, bytes memory b, string memory message) internal pure {
        if (keccak256(a) != keccak256(b)) revert(string.concat(message, ": ", _toHex(a), " != ", _toHex(b)));
    }

    /// @dev Fails with `message` and both values unless `a < b`.
    function assertLt(uint256 a, uint256 b, string memory message) internal pure {
        if (a >= b) revert(string.concat(message, ": ", _toString(a), " >= ", _toString(b)));
    }

    /// @dev Fails with `message` and both values unless `a >= b`.
    function assertGe(uint256 a, uint256 b, string memory message) internal pure {
        if (a < b) revert(string.concat(message, ": ", _toString(a), " < ", _toString(b)));
    }

    /// @dev Fails with `message` and both values unless `a <= b`.
    function assertLe(uint256 a, uint256 b, string memory message) internal pure {
        if (a > b) revert(string.concat(message, ": ", _toString(a), " > ", _toString(b)));
    }

    /// @dev Fails with `message` and both values unless `a > b`.
    function assertGt(uint256 a, uint256 b, string memory message) internal pure {
        if (a <= b) revert(string.concat(message, ": ", _toString(a), " <= ", _toString(b)));
    }

    /// @dev Fails with `message` and both values unless `a == b`.
    function assertEq(bool a, bool b, string memory message) internal pure {
        if (a != b) revert(string.concat(message, ": ", a ? "true" : "false", " != ", b ? "true" : "false"));
    }

    /// @dev Maps `x` into [min, max] (inclusive) for fuzz inputs, without rejecting runs.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (min == 0 && max == type(uint256).max) return x;
        return min + x % (max - min + 1);
    }

    /// @dev Fails the test.
    function fail(string memory message) internal pure {
        revert(message);
    }

    /// @dev Decimal string of `value`.
    function _toString(uint256 value) internal pure returns (string memory) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) {
            ++digits;
        }
        bytes memory out = new bytes(digits);
        for (; value != 0; value /= 10) {
            // forge-lint: disable-next-line(unsafe-typecast)
            out[--digits] = bytes1(uint8(48 + value % 10)); // a decimal digit
        }
        return string(out);
    }

    /// @dev The first four bytes of `data` (zero if shorter): the selector of a revert reason.
    function _selector(bytes memory data) internal pure returns (bytes4 selector) {
        if (data.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := mload(add(data, 0x20))
        }
    }

    /// @dev 0x-hex string of `data`.
    function _toHex(bytes memory data) internal pure returns (string memory) {
        bytes16 alphabet = "0123456789abcdef";
        bytes memory out = new bytes(2 + 2 * data.length);
        out[0] = "0";
        out[1] = "x";
        for (uint256 i; i < data.length; ++i) {
            out[2 + 2 * i] = alphabet[uint8(data[i]) >> 4];
            out[3 + 2 * i] = alphabet[uint8(data[i]) & 0x0f];
        }
        return string(out);
    }
}
