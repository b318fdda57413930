// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../src/KeyRegistry.sol";
import {BLS} from "../src/bls/BLS.sol";
import {VouchDigest} from "../src/bls/VouchDigest.sol";
import {BLSHarness} from "./utils/Harness.sol";
import {VectorTest} from "./utils/Vectors.sol";

/// @title KeyRegistryTest
/// @notice Key registration (proof of possession, duplicates, infinity, replay) and key-set creation.
contract KeyRegistryTest is VectorTest {
    KeyRegistry internal registry;
    BLSHarness internal harness;

    /// @dev Mirrors of the registry events, for expectEmit.
    event KeyRegistered(address indexed operator, bytes32 indexed keyHash, bytes pubkey);
    event KeySetCreated(address indexed keySet, bytes32 indexed operatorsHash, uint256 size);

    function setUp() external {
        registry = _deployRegistry(_readVectors());
        harness = new BLSHarness();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // registerKey
    // ---------------------------------------------------------------------------------------------------------------

    function test_RegisterKey_EveryVectorKey() external {
        Key[] memory keys = _keys(_readVectors());
        for (uint256 i; i < keys.length; ++i) {
            bytes32 keyHash = keccak256(keys[i].pubkey);
            vm.expectEmit(true, true, true, true, address(registry));
            emit KeyRegistered(keys[i].operator, keyHash, keys[i].pubkey);
            vm.prank(keys[i].operator);
            registry.registerKey(keys[i].pubkey, keys[i].pop);
            assertEq(registry.keyOf(keys[i].operator), keys[i].pubkey, "keyOf");
            assertEq(registry.operatorOf(keyHash), keys[i].operator, "operatorOf");
        }
    }

    function test_PopDigest_MatchesLibraryAndSpec() external view {
        Key memory key = _keys(_readVectors())[0];
        bytes32 expected = keccak256(
            abi.encodePacked(keccak256("vouch.v1.pop"), block.chainid, address(registry), key.operator, key.pubkey)
        );
        assertEq(registry.popDigest(key.operator, key.pubkey), expected, "registry.popDigest");
        assertEq(
            VouchDigest.popDigest(block.chainid, address(registry), key.operator, key.pubkey),
            expected,
            "VouchDigest.popDigest"
        );
    }

    /// @dev Protocol from test/vectors/README.md: register keys[0] from its operator, then send every entry.
    function test_RevertWhen_InvalidKeysFromVectors() external {
        string memory json = _readVectors();
        Key memory key0 = _keys(json)[0];
        vm.prank(key0.operator);
        registry.registerKey(key0.pubkey, key0.pop);

        InvalidKey[] memory entries = _invalidKeys(json);
        // infinity, duplicate, PoP replayed / wrong DST / other chain / other registry, key off the subgroup / curve,
        // wrong lengths (the rogue key has its own entry, `rogueKey`)
        assertGe(entries.length, 10, "vectors: invalidKeys entries");
        bool sawDuplicate;
        bool sawInfinity;
        uint256 popRefusals;
        for (uint256 j; j < entries.length; ++j) {
            InvalidKey memory entry = entries[j];
            bytes4 selector = bytes4(keccak256(bytes(entry.error)));
            bytes memory expected = _expectedRevert(selector, entry);
            address holderBefore = registry.operatorOf(keccak256(entry.pubkey));
            bytes memory keyBefore = registry.keyOf(entry.operator);

            vm.prank(entry.operator);
            try registry.registerKey(entry.pubkey, entry.pop) {
                fail(string.concat("invalidKeys[", _toString(j), "] registered: ", entry.name));
            } catch (bytes memory reason) {
                assertEq(reason, expected, string.concat("invalidKeys[", _toString(j), "] revert: ", entry.name));
            }
            assertEq(registry.operatorOf(keccak256(entry.pubkey)), holderBefore, "operatorOf unchanged");
            assertEq(registry.keyOf(entry.operator), keyBefore, "keyOf unchanged");

            if (selector == KeyRegistry.DuplicateKey.selector) sawDuplicate = true;
            if (selector == KeyRegistry.InfinityKey.selector) sawInfinity = true;
            if (selector == KeyRegistry.InvalidProofOfPossession.selector) ++popRefusals;
        }
        assertTrue(sawDuplicate, "vectors: no DuplicateKey entry");
        assertTrue(sawInfinity, "vectors: no InfinityKey entry");
        assertGe(popRefusals, 6, "vectors: InvalidProofOfPossession entries");
    }

    function test_RevertWhen_OperatorAlreadyRegistered() external {
        Key[] memory keys = _keys(_readVectors());
        vm.prank(keys[0].operator);
        registry.registerKey(keys[0].pubkey, keys[0].pop);
        vm.prank(keys[0].operator);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.OperatorAlreadyRegistered.selector, keys[0].operator));
        registry.registerKey(keys[1].pubkey, keys[1].pop);
    }

    function test_RevertWhen_DuplicateKey() external {
        Key[] memory keys = _keys(_readVectors());
        vm.prank(keys[0].operator);
        registry.registerKey(keys[0].pubkey, keys[0].pop);
        vm.prank(keys[1].operator);
        vm.expectRevert(
            abi.encodeWithSelector(KeyRegistry.DuplicateKey.selector, keccak256(keys[0].pubkey), keys[0].operator)
        );
        registry.registerKey(keys[0].pubkey, keys[0].pop);
    }

    function test_RevertWhen_WrongLengths() external {
        Key memory key = _keys(_readVectors())[0];
        vm.startPrank(key.operator);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidLength.selector, 128, 0));
        registry.registerKey("", key.pop);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidLength.selector, 128, 129));
        registry.registerKey(bytes.concat(key.pubkey, hex"00"), key.pop);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidLength.selector, 256, 255));
        registry.registerKey(key.pubkey, _truncate(key.pop, 255));
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidLength.selector, 256, 0));
        registry.registerKey(key.pubkey, "");
        vm.stopPrank();
    }

    function test_RevertWhen_InfinityKey() external {
        vm.prank(address(0xbeef));
        vm.expectRevert(KeyRegistry.InfinityKey.selector);
        registry.registerKey(new bytes(128), new bytes(256));
    }

    /// @dev A PoP binds chainId and registry: the same PoP fails on another chain and at another registry address.
    function test_RevertWhen_PopFromAnotherChainOrRegistry() external {
        Key memory key = _keys(_readVectors())[0];
        uint256 chainId = block.chainid;

        vm.chainId(chainId + 1);
        vm.prank(key.operator);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidProofOfPossession.selector, key.operator));
        registry.registerKey(key.pubkey, key.pop);

        vm.chainId(chainId);
        KeyRegistry other = new KeyRegistry();
        vm.prank(key.operator);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidProofOfPossession.selector, key.operator));
        other.registerKey(key.pubkey, key.pop);

        // and the original still works
        vm.prank(key.operator);
        registry.registerKey(key.pubkey, key.pop);
    }

    /// @dev Only the bound operator can use a PoP; any other sender is refused.
    function testFuzz_RevertWhen_PopSentByAnotherAddress(uint256 index, address sender) external {
        Key memory key = _keys(_readVectors())[index % SET_SIZE];
        vm.assume(sender != key.operator);
        vm.prank(sender);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidProofOfPossession.selector, sender));
        registry.registerKey(key.pubkey, key.pop);
    }

    function testFuzz_RevertWhen_ArbitraryBytes(bytes calldata pubkey, bytes calldata pop, address sender) external {
        vm.prank(sender);
        try registry.registerKey(pubkey, pop) {
            fail("arbitrary bytes registered");
        } catch {}
    }

    /// @dev Right lengths, random content: always refused (off-curve, non-canonical or wrong PoP), never registered.
    function testFuzz_RevertWhen_ArbitraryPoints(bytes32[4] calldata pk, bytes32[8] calldata pop, address sender)
        external
    {
        bytes memory pubkey = abi.encodePacked(pk);
        vm.prank(sender);
        try registry.registerKey(pubkey, abi.encodePacked(pop)) {
            fail("arbitrary point registered");
        } catch (bytes memory reason) {
            bytes4 selector = _selector(reason);
            assertTrue(
                selector == KeyRegistry.InvalidProofOfPossession.selector
                    || selector == KeyRegistry.InfinityKey.selector,
                "unexpected revert"
            );
        }
        assertEq(registry.operatorOf(keccak256(pubkey)), address(0), "not registered");
    }

    /// @dev A valid registration under a tight gas limit either succeeds or reverts for lack of gas; it is never
    /// reported as an invalid proof of possession. Sweeps the gas limit up in steps of 53 until it succeeds.
    function test_RegisterKey_TightGasSweepNeverRefusesValidPop() external {
        Key memory key = _keys(_readVectors())[0];
        bytes memory data = abi.encodeCall(KeyRegistry.registerKey, (key.pubkey, key.pop));
        for (uint256 gasLimit = 5000; gasLimit < 600_000; gasLimit += 53) {
            vm.prank(key.operator);
            (bool ok, bytes memory reason) = address(registry).call{gas: gasLimit}(data);
            if (ok) {
                assertEq(registry.keyOf(key.operator), key.pubkey, "registered");
                return;
            }
            assertTrue(
                reason.length == 0 || _selector(reason) == BLS.BLSInsufficientGas.selector,
                string.concat("valid PoP refused under gas limit ", _toString(gasLimit))
            );
        }
        fail("never registered");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // createKeySet
    // ---------------------------------------------------------------------------------------------------------------

    function test_CreateKeySet_StoresRegisteredKeysInSlotOrder() external {
        Key[] memory keys = _keys(_readVectors());
        address[] memory operators = new address[](5);
        for (uint256 i; i < 5; ++i) {
            // slot order differs from registration order
            Key memory key = keys[4 - i];
            operators[i] = key.operator;
            vm.prank(key.operator);
            registry.registerKey(key.pubkey, key.pop);
        }
        address keySet = registry.createKeySet(operators);
        assertTrue(registry.isKeySet(keySet), "isKeySet");
        assertEq(harness.size(keySet), 5, "size");
        for (uint256 i; i < 5; ++i) {
            assertEq(harness.keyAt(keySet, i), keys[4 - i].pubkey, "slot key");
        }
    }

    function test_CreateKeySet_EmitsKeySetCreated() external {
        Key[] memory keys = _keys(_readVectors());
        address[] memory operators = _registerFirst(keys, 3);
        // The key set is the registry's first CREATE.
        address predicted = _createAddress(address(registry), _nonce(address(registry)));
        vm.expectEmit(true, true, true, true, address(registry));
        emit KeySetCreated(predicted, keccak256(abi.encodePacked(operators)), 3);
        assertEq(registry.createKeySet(operators), predicted, "address");
    }

    /// @dev Both calls run in one transaction: the transient duplicate marks of the first must be gone.
    function test_CreateKeySet_TwiceInOneTransaction() external {
        Key[] memory keys = _keys(_readVectors());
        address[] memory operators = _registerFirst(keys, 3);
        address first = registry.createKeySet(operators);
        address second = registry.createKeySet(operators);
        assertTrue(first != second, "two sets");
        assertTrue(registry.isKeySet(first) && registry.isKeySet(second), "both known");
    }

    function test_RevertWhen_SetSizeIsZero() external {
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidSetSize.selector, 0));
        registry.createKeySet(new address[](0));
    }

    function test_RevertWhen_SetSizeAboveMax() external {
        uint256 max = registry.MAX_SET_SIZE();
        assertEq(max, 191, "EIP-170 bound");
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidSetSize.selector, max + 1));
        registry.createKeySet(new address[](max + 1));
    }

    function test_RevertWhen_OperatorNotRegistered() external {
        Key[] memory keys = _keys(_readVectors());
        address[] memory operators = _registerFirst(keys, 2);
        address[] memory withStranger = new address[](3);
        withStranger[0] = operators[0];
        withStranger[1] = keys[2].operator; // not registered
        withStranger[2] = operators[1];
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.OperatorNotRegistered.selector, keys[2].operator));
        registry.createKeySet(withStranger);
    }

    function test_RevertWhen_DuplicateOperator() external {
        Key[] memory keys = _keys(_readVectors());
        address[] memory operators = _registerFirst(keys, 2);
        address[] memory withDuplicate = new address[](3);
        withDuplicate[0] = operators[0];
        withDuplicate[1] = operators[1];
        withDuplicate[2] = operators[0];
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.DuplicateOperator.selector, operators[0]));
        registry.createKeySet(withDuplicate);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev The exact revert data an invalidKeys entry must produce, from its error signature.
    function _expectedRevert(bytes4 selector, InvalidKey memory entry) internal view returns (bytes memory) {
        if (selector == KeyRegistry.InfinityKey.selector) return abi.encodeWithSelector(selector);
        if (selector == KeyRegistry.InvalidProofOfPossession.selector) {
            return abi.encodeWithSelector(selector, entry.operator);
        }
        if (selector == KeyRegistry.OperatorAlreadyRegistered.selector) {
            return abi.encodeWithSelector(selector, entry.operator);
        }
        if (selector == KeyRegistry.DuplicateKey.selector) {
            bytes32 keyHash = keccak256(entry.pubkey);
            address holder = registry.operatorOf(keyHash);
            assertTrue(holder != address(0), "vectors: DuplicateKey entry for a key that is not registered");
            return abi.encodeWithSelector(selector, keyHash, holder);
        }
        if (selector == KeyRegistry.InvalidLength.selector) {
            return entry.pubkey.length != 128
                ? abi.encodeWithSelector(selector, 128, entry.pubkey.length)
                : abi.encodeWithSelector(selector, 256, entry.pop.length);
        }
        revert(string.concat("vectors: unknown error ", entry.error));
    }

    function _registerFirst(Key[] memory keys, uint256 n) internal returns (address[] memory operators) {
        operators = new address[](n);
        for (uint256 i; i < n; ++i) {
            operators[i] = keys[i].operator;
            vm.prank(keys[i].operator);
            registry.registerKey(keys[i].pubkey, keys[i].pop);
        }
    }

    function _truncate(bytes memory data, uint256 length) internal pure returns (bytes memory out) {
        out = bytes.concat(data);
        assembly ("memory-safe") {
            mstore(out, length)
        }
    }

    /// @dev Nonce of an account (the CREATE counter of a contract).
    function _nonce(address account) internal view returns (uint64) {
        return vm.getNonce(account);
    }

    /// @dev CREATE address for nonces below 0x80.
    function _createAddress(address deployer, uint64 nonce) internal pure returns (address) {
        require(nonce < 0x80, "nonce");
        // forge-lint: disable-next-line(unsafe-typecast)
        bytes memory rlpNonce = nonce == 0 ? bytes(hex"80") : abi.encodePacked(uint8(nonce)); // < 0x80
        return address(uint160(uint256(keccak256(abi.encodePacked(hex"d6", hex"94", deployer, rlpNonce)))));
    }
}
