// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeySet} from "../src/bls/KeySet.sol";
import {BLSHarness} from "./utils/Harness.sol";
import {Test} from "./utils/Test.sol";

/// @title KeySetTest
/// @notice Layout, limits and reads of key-set data contracts.
contract KeySetTest is Test {
    BLSHarness internal harness;

    function setUp() external {
        harness = new BLSHarness();
    }

    function testFuzz_Write_LayoutAndReads(bytes32 seed, uint8 count) external {
        uint256 n = 1 + uint256(count) % 24;
        bytes memory keys = _randomKeys(seed, n);
        address keySet = harness.writeKeySet(keys);
        assertEq(keySet.code, bytes.concat(hex"00", keys), "runtime code = 0x00 || keys");
        assertEq(harness.size(keySet), n, "size");
        (bool valid, uint256 size) = harness.trySize(keySet);
        assertTrue(valid, "valid");
        assertEq(size, n, "trySize");
        for (uint256 i; i < n; ++i) {
            assertEq(harness.keyAt(keySet, i), _slice(keys, 128 * i, 128), "keyAt");
        }
    }

    function test_Write_MaxKeys() external {
        assertEq(KeySet.MAX_KEYS, 191, "EIP-170: (24576 - 1) / 128");
        address keySet = harness.writeKeySet(_randomKeys(keccak256("max"), KeySet.MAX_KEYS));
        assertEq(harness.size(keySet), KeySet.MAX_KEYS, "size");
        assertEq(keySet.code.length, 1 + 128 * KeySet.MAX_KEYS, "code size");
    }

    /// @dev The leading STOP: calling the data contract does nothing.
    function test_DataContract_DoesNotRun() external {
        address keySet = harness.writeKeySet(_randomKeys(keccak256("stop"), 2));
        (bool ok, bytes memory ret) = keySet.call(hex"deadbeef");
        assertTrue(ok, "STOP succeeds");
        assertEq(ret.length, 0, "no output");
    }

    function test_RevertWhen_WriteLengthInvalid() external {
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetInvalidLength.selector, 0));
        harness.writeKeySet("");
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetInvalidLength.selector, 127));
        harness.writeKeySet(new bytes(127));
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetInvalidLength.selector, 129));
        harness.writeKeySet(new bytes(129));
        uint256 tooMany = 128 * (KeySet.MAX_KEYS + 1);
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetInvalidLength.selector, tooMany));
        harness.writeKeySet(new bytes(tooMany));
    }

    function test_RevertWhen_NotAKeySet() external {
        (bool valid, uint256 size) = harness.trySize(address(0xdead));
        assertFalse(valid, "no code");
        assertEq(size, 0, "size 0");
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetInvalid.selector, address(0xdead)));
        harness.size(address(0xdead));
        // harness code is not a key set
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetInvalid.selector, address(harness)));
        harness.keyAt(address(harness), 0);
        // 0x00 alone: no keys
        vm.etch(address(0x1234), hex"00");
        (valid,) = harness.trySize(address(0x1234));
        assertFalse(valid, "STOP only");
    }

    function test_RevertWhen_IndexOutOfRange() external {
        address keySet = harness.writeKeySet(_randomKeys(keccak256("range"), 3));
        vm.expectRevert(abi.encodeWithSelector(KeySet.KeySetIndexOutOfRange.selector, 3, 3));
        harness.keyAt(keySet, 3);
    }

    function _randomKeys(bytes32 seed, uint256 n) internal pure returns (bytes memory keys) {
        keys = new bytes(128 * n);
        for (uint256 w; w < 4 * n; ++w) {
            bytes32 word = keccak256(abi.encode(seed, w));
            assembly ("memory-safe") {
                mstore(add(add(keys, 0x20), mul(w, 0x20)), word)
            }
        }
    }

    function _slice(bytes memory data, uint256 start, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i; i < length; ++i) {
            out[i] = data[start + i];
        }
    }
}
