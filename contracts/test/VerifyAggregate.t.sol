// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../src/KeyRegistry.sol";
import {BLS} from "../src/bls/BLS.sol";
import {Domain} from "../src/bls/Domain.sol";
import {BLSHarness} from "./utils/Harness.sol";
import {VectorTest} from "./utils/Vectors.sol";

/// @title VerifyAggregateTest
/// @notice Aggregate verification against the operator set keys[0..127], registered through KeyRegistry with their
/// proofs of possession at the vectors' registry address and chain id.
contract VerifyAggregateTest is VectorTest {
    KeyRegistry internal registry;
    BLSHarness internal harness;
    address internal keySet;
    bytes32 internal digest;

    /// @dev The valid (bitmap, signature) pairs of `aggregates`.
    uint256[] internal validBitmaps;
    bytes[] internal validSignatures;

    function setUp() external {
        string memory json = _readVectors();
        registry = _deployRegistry(json);
        harness = new BLSHarness();
        keySet = _registerAll(registry, _keys(json));
        digest = vm.parseJsonBytes32(json, ".result.digest");
        Aggregate[] memory aggregates = _aggregates(json);
        for (uint256 j; j < aggregates.length; ++j) {
            validBitmaps.push(aggregates[j].bitmap);
            validSignatures.push(aggregates[j].signature);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Valid certificates
    // ---------------------------------------------------------------------------------------------------------------

    function test_VerifyAggregate_AcceptsEveryValidAggregate() external view {
        Aggregate[] memory aggregates = _aggregates(_readVectors());
        uint256[6] memory required = [uint256(1), 3, 10, 50, 100, 128];
        bool[6] memory seen;
        for (uint256 j; j < aggregates.length; ++j) {
            Aggregate memory a = aggregates[j];
            string memory label = string.concat("aggregates[", _toString(j), "] ", a.name);
            assertEq(_popcount(a.bitmap), a.signers, string.concat(label, ": signers vs bitmap"));
            assertTrue(registry.verifyAggregate(keySet, a.bitmap, digest, a.signature), label);
            assertTrue(harness.verifyAggregate(keySet, a.bitmap, digest, a.signature), string.concat(label, " (lib)"));
            (, uint256 count) = harness.aggregateKeys(keySet, a.bitmap);
            assertEq(count, a.signers, string.concat(label, ": aggregateKeys count"));
            for (uint256 k; k < required.length; ++k) {
                if (a.signers == required[k]) seen[k] = true;
            }
        }
        for (uint256 k; k < required.length; ++k) {
            assertTrue(seen[k], string.concat("vectors: no aggregate with ", _toString(required[k]), " signers"));
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Invalid certificates
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Wrong message, missing/extra signer bit, empty bitmap, bit for an unregistered slot, tampered signature,
    /// blst byte order, infinity, non-subgroup point: each must be `false` (never a revert, never `true`).
    function test_VerifyAggregate_RejectsEveryInvalidSignature() external view {
        InvalidSignature[] memory entries = _invalidSignatures(_readVectors());
        assertGe(entries.length, 16, "vectors: invalidSignatures entries");
        for (uint256 j; j < entries.length; ++j) {
            InvalidSignature memory e = entries[j];
            string memory label = string.concat("invalidSignatures[", _toString(j), "] ", e.name);
            assertFalse(registry.verifyAggregate(keySet, e.bitmap, e.digest, e.signature), label);
            assertFalse(
                harness.verifyAggregate(keySet, e.bitmap, e.digest, e.signature), string.concat(label, " (lib)")
            );
        }
    }

    function test_VerifyAggregate_RefusesKeySetsTheRegistryDidNotCreate() external {
        // Same keys, same layout, but written directly: the library accepts it, the registry does not know it.
        address copy = harness.writeKeySet(_concatKeys(_keys(_readVectors())));
        assertTrue(harness.verifyAggregate(copy, validBitmaps[0], digest, validSignatures[0]), "lib on copy");
        assertFalse(registry.verifyAggregate(copy, validBitmaps[0], digest, validSignatures[0]), "registry on copy");
        assertFalse(registry.verifyAggregate(address(0), validBitmaps[0], digest, validSignatures[0]), "zero address");
        assertFalse(registry.verifyAggregate(address(registry), 1, digest, validSignatures[0]), "registry address");
    }

    function test_VerifyAggregate_RefusesMalformedKeySets() external {
        bytes memory signature = validSignatures[0];
        uint256 bitmap = validBitmaps[0];
        // no code
        assertFalse(harness.verifyAggregate(address(0xdead), bitmap, digest, signature), "no code");
        // wrong size: 0x00 ‖ 127 bytes
        address odd = address(0x1111);
        vm.etch(odd, new bytes(128));
        assertFalse(harness.verifyAggregate(odd, bitmap, digest, signature), "bad size");
        // right size, leading byte not STOP
        bytes memory code = bytes.concat(hex"01", _concatKeys(_keys(_readVectors())));
        address notStop = address(0x2222);
        vm.etch(notStop, code);
        assertFalse(harness.verifyAggregate(notStop, bitmap, digest, signature), "leading byte");
        (bool valid,) = harness.trySize(notStop);
        assertFalse(valid, "trySize leading byte");
    }

    /// @dev A key G1ADD refuses (off the curve) makes the result false, not a revert.
    function test_VerifyAggregate_FalseWhenG1AddRefusesAKey() external {
        Key[] memory keys = _keys(_readVectors());
        bytes memory concatenated = _concatKeys(keys);
        concatenated[128 + 127] ^= 0x01; // key 1: flip the last bit of y
        address broken = harness.writeKeySet(concatenated);
        (bytes memory apk, uint256 count) = harness.aggregateKeys(broken, 3);
        assertEq(count, 0, "refused");
        assertEq(apk.length, 0, "no apk");
        assertFalse(harness.verifyAggregate(broken, 3, digest, validSignatures[0]), "false");
    }

    /// @dev Two registered keys pk and −pk (both with valid PoPs: whoever knows sk knows −sk) sum to infinity. A raw
    /// pairing check accepts e(0, H) · e(−g1, 0) = 1, so without the explicit infinity checks the owner of the two
    /// operators could "certify" anything with the zero signature.
    function test_VerifyAggregate_RefusesKeysSummingToInfinity() external {
        string memory json = _readVectors();
        Key memory key = _keys(json)[7];
        address negOperator = address(0x4E6);
        (bytes memory negKey, bytes memory negPop) =
            _keyWithPop(R - _secretKeys(json)[7], address(registry), negOperator);
        vm.prank(negOperator);
        registry.registerKey(negKey, negPop);
        address[] memory operators = new address[](2);
        operators[0] = key.operator;
        operators[1] = negOperator;
        address pair = registry.createKeySet(operators);

        (bytes memory apk, uint256 count) = harness.aggregateKeys(pair, 3);
        assertEq(count, 2, "two keys");
        assertEq(apk, new bytes(128), "pk + (-pk) = infinity");
        assertFalse(registry.verifyAggregate(pair, 3, digest, new bytes(256)), "zero signature");
        assertFalse(registry.verifyAggregate(pair, 3, digest, validSignatures[0]), "some signature");
        // What the explicit checks stop: the raw pairing equation holds for (0, H, −g1, 0).
        bytes memory input = bytes.concat(
            new bytes(128),
            harness.hashToG2(digest, Domain.DST_RESULT),
            abi.encode(BLS.NEG_G1_X_HI, BLS.NEG_G1_X_LO, BLS.NEG_G1_Y_HI, BLS.NEG_G1_Y_LO),
            new bytes(256)
        );
        (bool ok, bytes memory out) = BLS.PAIRING_CHECK.staticcall(input);
        assertTrue(ok && abi.decode(out, (uint256)) == 1, "raw pairing accepts the infinity pair");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Rogue-key attack: the registry's PoP check is what stops it
    // ---------------------------------------------------------------------------------------------------------------

    function test_RogueKey_RefusedByRegistry_ButForgesWithoutPop() external {
        string memory json = _readVectors();
        RogueKey memory rogue = _rogueKey(json);
        assertEq(rogue.digest, digest, "vectors: rogue digest is result.digest");
        assertEq(rogue.bitmap, (uint256(1) << rogue.victim) | (uint256(1) << SET_SIZE), "vectors: rogue bitmap");

        // 1. The registry refuses the rogue key: the attacker cannot sign for pk_attacker - pk_victim.
        vm.prank(rogue.operator);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.InvalidProofOfPossession.selector, rogue.operator));
        registry.registerKey(rogue.pubkey, rogue.pop);

        // 2. Without the PoP check (a set written directly: keys[0..127] ‖ rogue key as slot 128), the attacker's
        //    own signature passes as "victim + rogue signed": the test can fail, and the PoP is what protects.
        address unchecked_ = harness.writeKeySet(bytes.concat(_concatKeys(_keys(json)), rogue.pubkey));
        assertTrue(harness.verifyAggregate(unchecked_, rogue.bitmap, rogue.digest, rogue.signature), "forgery works");
        (bytes memory apk, uint256 count) = harness.aggregateKeys(unchecked_, rogue.bitmap);
        assertEq(count, 2, "two keys");
        assertTrue(keccak256(apk) != keccak256(rogue.pubkey), "apk is the attacker key, not the rogue key");

        // 3. Against the registry's set the forgery claims the victim alone and fails; and the registry does not
        //    know the unchecked set.
        uint256 victimOnly = uint256(1) << rogue.victim;
        assertFalse(registry.verifyAggregate(keySet, victimOnly, rogue.digest, rogue.signature), "victim alone");
        assertFalse(registry.verifyAggregate(unchecked_, rogue.bitmap, rogue.digest, rogue.signature), "unknown set");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------------------

    function testFuzz_VerifyAggregate_ArbitrarySignatureBytes(bytes calldata signature, uint256 which) external view {
        uint256 j = which % validBitmaps.length;
        vm.assume(keccak256(signature) != keccak256(validSignatures[j]));
        assertFalse(registry.verifyAggregate(keySet, validBitmaps[j], digest, signature), "arbitrary bytes");
    }

    function testFuzz_VerifyAggregate_Arbitrary256ByteSignature(bytes32[8] calldata words, uint256 which)
        external
        view
    {
        uint256 j = which % validBitmaps.length;
        bytes memory signature = abi.encodePacked(words);
        vm.assume(keccak256(signature) != keccak256(validSignatures[j]));
        assertFalse(registry.verifyAggregate(keySet, validBitmaps[j], digest, signature), "arbitrary 256 bytes");
    }

    /// @dev One flipped bit anywhere in a valid signature.
    function testFuzz_VerifyAggregate_BitFlippedSignature(uint256 which, uint256 bit) external view {
        uint256 j = which % validBitmaps.length;
        bytes memory signature = bytes.concat(validSignatures[j]);
        bit %= 256 * 8;
        // forge-lint: disable-next-line(unsafe-typecast)
        signature[bit / 8] ^= bytes1(uint8(1) << uint8(bit % 8)); // bit % 8 < 8
        assertFalse(registry.verifyAggregate(keySet, validBitmaps[j], digest, signature), "bit flip");
    }

    /// @dev Any bitmap with a valid signature: true exactly for that signature's own bitmap.
    function testFuzz_VerifyAggregate_ArbitraryBitmap(uint256 bitmap, uint256 which) external view {
        uint256 j = which % validBitmaps.length;
        bool expected = bitmap == validBitmaps[j];
        assertTrue(registry.verifyAggregate(keySet, bitmap, digest, validSignatures[j]) == expected, "bitmap");
    }

    /// @dev Bitmaps inside the set (bits 0..127) and one bit away from a valid bitmap.
    function testFuzz_VerifyAggregate_NearbyBitmap(uint256 which, uint256 bit, uint128 random) external view {
        uint256 j = which % validBitmaps.length;
        uint256 flipped = validBitmaps[j] ^ (uint256(1) << (bit % 256));
        assertFalse(registry.verifyAggregate(keySet, flipped, digest, validSignatures[j]), "one bit away");
        if (uint256(random) != validBitmaps[j]) {
            assertFalse(registry.verifyAggregate(keySet, random, digest, validSignatures[j]), "in-set bitmap");
        }
    }

    function testFuzz_VerifyAggregate_WrongDigest(bytes32 other, uint256 which) external view {
        vm.assume(other != digest);
        uint256 j = which % validBitmaps.length;
        assertFalse(registry.verifyAggregate(keySet, validBitmaps[j], other, validSignatures[j]), "digest");
    }

    /// @dev Under any gas limit a valid certificate is true or a revert (out of gas / BLSInsufficientGas), never
    /// false: the caps are checked before each precompile call. The sweep steps 53 gas at a time through every
    /// precompile call of a 3-signer verification (the narrowest window, a starved G1ADD, is ~380 gas wide).
    function test_VerifyAggregate_TightGasSweepNeverReadsValidAsInvalid() external {
        uint256 j = 1; // 3 signers
        bytes memory data =
            abi.encodeCall(KeyRegistry.verifyAggregate, (keySet, validBitmaps[j], digest, validSignatures[j]));
        bool accepted;
        for (uint256 gasLimit = 5000; gasLimit < 260_000; gasLimit += 53) {
            (bool ok, bytes memory ret) = address(registry).call{gas: gasLimit}(data);
            if (ok) {
                assertTrue(abi.decode(ret, (bool)), string.concat("false under gas limit ", _toString(gasLimit)));
                accepted = true;
            } else {
                assertTrue(ret.length == 0 || _selector(ret) == BLS.BLSInsufficientGas.selector, "unexpected revert");
            }
        }
        assertTrue(accepted, "accepted with enough gas");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    function _popcount(uint256 x) internal pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) {
            ++n;
        }
    }
}
