// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../src/KeyRegistry.sol";
import {BLSHarness} from "./utils/Harness.sol";
import {VectorTest} from "./utils/Vectors.sol";

/// @title BLSGasTest
/// @notice Gas of the on-chain BLS operations, recorded with `vm.snapshotGasLastCall` in snapshots/BLSGasTest.json.
/// CI checks the file with `FORGE_SNAPSHOT_CHECK=true forge test`, which fails on any difference.
/// @dev verifyAggregate is measured with the golden aggregates of 3, 10 and 100 signers against keys[0..127]
/// registered in setUp. registerKey is measured with a fresh key (not in the vectors) whose PoP is made here with the
/// G1MSM / G2MSM precompiles (`_keyWithPop`). Each measured call is the first touch of the registry's storage and of the key set in its
/// test, so SLOADs and EXTCODE* are cold, as in a real transaction.
contract BLSGasTest is VectorTest {
    KeyRegistry internal registry;
    BLSHarness internal harness;
    address internal keySet;
    bytes32 internal digest;
    Aggregate[] internal aggregates;

    function setUp() external {
        string memory json = _readVectors();
        registry = _deployRegistry(json);
        harness = new BLSHarness();
        keySet = _registerAll(registry, _keys(json));
        digest = vm.parseJsonBytes32(json, ".result.digest");
        Aggregate[] memory all = _aggregates(json);
        for (uint256 j; j < all.length; ++j) {
            aggregates.push(all[j]);
        }
    }

    function test_Gas_VerifyAggregate_3Signers() external {
        Aggregate memory a = _aggregate(3);
        bool valid = registry.verifyAggregate(keySet, a.bitmap, digest, a.signature);
        uint256 gasUsed = vm.snapshotGasLastCall("verifyAggregate_3_signers");
        assertTrue(valid, "valid");
        assertLt(gasUsed, 220_000, "3-signer verifyAggregate call");
        // Whole transaction: 21,000 + calldata + execution (the EIP-7623 calldata floor is far lower here).
        uint256 txGas = 21_000
            + _calldataGas(abi.encodeCall(registry.verifyAggregate, (keySet, a.bitmap, digest, a.signature))) + gasUsed;
        assertLt(txGas, 220_000, "3-signer verifyAggregate transaction");
    }

    function test_Gas_VerifyAggregate_10Signers() external {
        Aggregate memory a = _aggregate(10);
        bool valid = registry.verifyAggregate(keySet, a.bitmap, digest, a.signature);
        vm.snapshotGasLastCall("verifyAggregate_10_signers");
        assertTrue(valid, "valid");
    }

    function test_Gas_VerifyAggregate_100Signers() external {
        Aggregate memory a = _aggregate(100);
        bool valid = registry.verifyAggregate(keySet, a.bitmap, digest, a.signature);
        vm.snapshotGasLastCall("verifyAggregate_100_signers");
        assertTrue(valid, "valid");
    }

    function test_Gas_RegisterKey() external {
        // A fresh secret key: not registered, distinct from every vector key.
        uint256 secretKey = uint256(keccak256(abi.encode(_secretKeys(_readVectors())[0], "gas"))) % R;
        address operator = address(0x6A5);
        (bytes memory pubkey, bytes memory pop) = _keyWithPop(secretKey, address(registry), operator);

        vm.prank(operator);
        registry.registerKey(pubkey, pop);
        vm.snapshotGasLastCall("registerKey");
        assertEq(registry.keyOf(operator), pubkey, "registered");
    }

    /// @dev The golden aggregate with `signers` signers.
    function _aggregate(uint256 signers) internal view returns (Aggregate memory) {
        for (uint256 j; j < aggregates.length; ++j) {
            if (aggregates[j].signers == signers) return aggregates[j];
        }
        revert(string.concat("vectors: no aggregate with ", _toString(signers), " signers"));
    }

    /// @dev Calldata gas of a transaction: 4 per zero byte, 16 per non-zero byte.
    function _calldataGas(bytes memory data) internal pure returns (uint256 gas) {
        for (uint256 i; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }
}
