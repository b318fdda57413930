// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BLS} from "../src/bls/BLS.sol";
import {Domain} from "../src/bls/Domain.sol";
import {VouchDigest} from "../src/bls/VouchDigest.sol";
import {BLSHarness} from "./utils/Harness.sol";
import {VectorTest} from "./utils/Vectors.sol";

/// @title BLSTest
/// @notice The BLS library alone: hash-to-G2 against the golden vectors and RFC 9380, single verification, input
/// refusal, gas caps and behaviour without EIP-2537.
contract BLSTest is VectorTest {
    BLSHarness internal harness;

    /// @dev keys[0] of the vectors and the digest its PoP signs.
    bytes internal pk0;
    bytes internal pop0;
    bytes32 internal popDigest0;

    /// @dev RFC 9380 J.10.1 suite DST (BLS12381G2_XMD:SHA-256_SSWU_RO_).
    bytes internal constant RFC_DST = "QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_";

    function setUp() external {
        harness = new BLSHarness();
        string memory json = _readVectors();
        Key[] memory keys = _keys(json);
        pk0 = keys[0].pubkey;
        pop0 = keys[0].pop;
        popDigest0 = VouchDigest.popDigest(
            vm.parseJsonUint(json, ".chainId"), vm.parseJsonAddress(json, ".registry"), keys[0].operator, keys[0].pubkey
        );
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Constants
    // ---------------------------------------------------------------------------------------------------------------

    function test_Domain_MatchesVectorsAndSpec() external view {
        string memory json = _readVectors();
        assertEq(vm.parseJsonUint(json, ".version"), 1, "vectors version");
        assertEq(bytes(vm.parseJsonString(json, ".dstResult")), Domain.DST_RESULT, "dstResult");
        assertEq(bytes(vm.parseJsonString(json, ".dstPop")), Domain.DST_POP, "dstPop");
        assertEq(Domain.RESULT_TAG, keccak256(bytes("vouch.v1.result")), "RESULT_TAG");
        assertEq(Domain.BATCH_TAG, keccak256(bytes("vouch.v1.batch")), "BATCH_TAG");
        assertEq(Domain.POP_TAG, keccak256(bytes("vouch.v1.pop")), "POP_TAG");
        assertEq(Domain.PAID_CALL_TAG, keccak256(bytes("vouch.v1.paid-call")), "PAID_CALL_TAG");
        assertEq(Domain.COMMIT_TAG, keccak256(bytes("vouch.v1.commit")), "COMMIT_TAG");
        // The Rust twin, `vouch_primitives::domain::COMMIT_TAG`.
        assertEq(
            Domain.COMMIT_TAG, 0xdfbca34c7084257e2dd8b6150a0d61b14531ce405d6f19aa7ad85bfb794c6ae8, "Rust COMMIT_TAG"
        );
        assertTrue(keccak256(Domain.DST_RESULT) != keccak256(Domain.DST_POP), "DSTs differ");
    }

    function test_NegG1_IsTheNegatedGenerator() external view {
        bytes memory g1 = bytes.concat(
            bytes16(0),
            hex"17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
            bytes16(0),
            hex"08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1"
        );
        bytes memory negG1 = abi.encode(BLS.NEG_G1_X_HI, BLS.NEG_G1_X_LO, BLS.NEG_G1_Y_HI, BLS.NEG_G1_Y_LO);
        (bool ok, bytes memory sum) = BLS.G1ADD.staticcall(bytes.concat(g1, negG1));
        assertTrue(ok, "G1ADD accepts -g1");
        assertEq(sum, new bytes(128), "g1 + (-g1) = infinity");
        // and -g1 is not g1 itself
        assertTrue(keccak256(g1) != keccak256(negG1), "-g1 != g1");
        // p encoded in the two modulus words
        assertEq(
            abi.encode(BLS.P_HI, BLS.P_LO),
            bytes.concat(
                bytes16(0),
                hex"1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab"
            ),
            "p"
        );
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Hash to G2
    // ---------------------------------------------------------------------------------------------------------------

    function test_HashToG2_MatchesEveryVector() external view {
        HashToG2Vector[] memory vectors = _hashToG2Vectors(_readVectors());
        assertGe(vectors.length, 6, "vectors: hashToG2 entries");
        for (uint256 j; j < vectors.length; ++j) {
            assertEq(
                harness.hashToG2(vectors[j].msg, bytes(vectors[j].dst)),
                vectors[j].point,
                string.concat("hashToG2[", _toString(j), "]")
            );
        }
    }

    /// @dev RFC 9380 Appendix J.10.1 (BLS12381G2_XMD:SHA-256_SSWU_RO_): independent of the Rust vectors.
    function test_HashToG2_MatchesRfc9380() external view {
        assertEq(
            harness.hashToG2Bytes("", RFC_DST),
            _g2(
                hex"0141ebfbdca40eb85b87142e130ab689c673cf60f1a3e98d69335266f30d9b8d4ac44c1038e9dcdd5393faf5c41fb78a",
                hex"05cb8437535e20ecffaef7752baddf98034139c38452458baeefab379ba13dff5bf5dd71b72418717047f5b0f37da03d",
                hex"0503921d7f6a12805e72940b963c0cf3471c7b2a524950ca195d11062ee75ec076daf2d4bc358c4b190c0c98064fdd92",
                hex"12424ac32561493f3fe3c260708a12b7c620e7be00099a974e259ddc7d1f6395c3c811cdd19f1e8dbf3e9ecfdcbab8d6"
            ),
            "RFC 9380 msg=\"\""
        );
        assertEq(
            harness.hashToG2Bytes("abc", RFC_DST),
            _g2(
                hex"02c2d18e033b960562aae3cab37a27ce00d80ccd5ba4b7fe0e7a210245129dbec7780ccc7954725f4168aff2787776e6",
                hex"139cddbccdc5e91b9623efd38c49f81a6f83f175e80b06fc374de9eb4b41dfe4ca3a230ed250fbe3a2acf73a41177fd8",
                hex"1787327b68159716a37440985269cf584bcb1e621d3a7202be6ea05c4cfe244aeb197642555a0645fb87bf7466b2ba48",
                hex"00aa65dae3c8d732d10ecd2c50f8a1baf3001578f71c694e03866e9f3d49ac1e1ce70dd94a733534f106d4cec0eddd16"
            ),
            "RFC 9380 msg=abc"
        );
        assertEq(
            harness.hashToG2Bytes("abcdef0123456789", RFC_DST),
            _g2(
                hex"121982811d2491fde9ba7ed31ef9ca474f0e1501297f68c298e9f4c0028add35aea8bb83d53c08cfc007c1e005723cd0",
                hex"190d119345b94fbd15497bcba94ecf7db2cbfd1e1fe7da034d26cbba169fb3968288b3fafb265f9ebd380512a71c3f2c",
                hex"05571a0f8d3c08d094576981f4a3b8eda0a8e771fcdcc8ecceaf1356a6acf17574518acb506e435b639353c2e14827c8",
                hex"0bb5e7572275c567462d91807de765611490205a941a5a6af3b1691bfe596c31225d3aabdf15faff860cb4ef17c7c3be"
            ),
            "RFC 9380 msg=abcdef0123456789"
        );
    }

    /// @dev RFC 9380 J.10.1 intermediate values u[0], u[1] for msg = "abc": each 64-byte chunk reduced mod p.
    function test_HashToField_MatchesRfc9380() external view {
        assertEq(
            harness.hashToField("abc", RFC_DST),
            _g2(
                hex"15f7c0aa8f6b296ab5ff9c2c7581ade64f4ee6f1bf18f55179ff44a2cf355fa53dd2a2158c5ecb17d7c52f63e7195771",
                hex"01c8067bf4c0ba709aa8b9abc3d1cef589a4758e09ef53732d670fd8739a7274e111ba2fcaa71b3d33df2a3a0c8529dd",
                hex"187111d5e088b6b9acfdfad078c4dacf72dcd17ca17c82be35e79f8c372a693f60a033b461d81b025864a0ad051a06e4",
                hex"08b852331c96ed983e497ebc6dee9b75e373d923b729194af8e72a051ea586f3538a6ebb1e80881a082fa2b24df9f566"
            ),
            "u0.c0 u0.c1 u1.c0 u1.c1"
        );
    }

    /// @dev hash_to_field reduces the whole 64-byte chunk: the reduced value differs from the truncated low 48 bytes
    /// whenever the chunk's top 16 bytes are non-zero, which is the case for essentially every chunk.
    function test_HashToField_ReducesInsteadOfTruncating() external view {
        bytes memory uniform = harness.expandMessageXmd("abc", RFC_DST);
        bytes memory u = harness.hashToField("abc", RFC_DST);
        for (uint256 i; i < 4; ++i) {
            bytes memory chunk = _slice(uniform, 64 * i, 64);
            bytes memory element = _slice(u, 64 * i, 64);
            assertEq(_slice(element, 0, 16), new bytes(16), "element has 16 zero bytes");
            assertTrue(keccak256(_slice(chunk, 16, 48)) != keccak256(_slice(element, 16, 48)), "not truncated");
        }
    }

    function testFuzz_HashToG2_Bytes32MatchesBytes(bytes32 message) external view {
        assertEq(
            harness.hashToG2(message, Domain.DST_RESULT),
            harness.hashToG2Bytes(abi.encodePacked(message), Domain.DST_RESULT),
            "overloads agree"
        );
    }

    function test_HashToG2_DomainsSeparate() external view {
        bytes32 message = keccak256("m");
        assertTrue(
            keccak256(harness.hashToG2(message, Domain.DST_RESULT))
                != keccak256(harness.hashToG2(message, Domain.DST_POP)),
            "H_result(m) != H_pop(m)"
        );
    }

    function test_HashToG2_AcceptsDstOf255Bytes() external view {
        assertEq(harness.hashToG2(bytes32(0), new bytes(255)).length, 256, "point");
    }

    function test_RevertWhen_DstLongerThan255Bytes() external {
        vm.expectRevert(abi.encodeWithSelector(BLS.BLSInvalidDSTLength.selector, 256));
        harness.hashToG2(bytes32(0), new bytes(256));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Single verification (the PoP path)
    // ---------------------------------------------------------------------------------------------------------------

    function test_Verify_AcceptsEveryVectorPop() external view {
        string memory json = _readVectors();
        Key[] memory keys = _keys(json);
        uint256 chainId = vm.parseJsonUint(json, ".chainId");
        address registry = vm.parseJsonAddress(json, ".registry");
        for (uint256 i; i < keys.length; ++i) {
            bytes32 digest = VouchDigest.popDigest(chainId, registry, keys[i].operator, keys[i].pubkey);
            assertTrue(
                harness.verify(keys[i].pubkey, digest, Domain.DST_POP, keys[i].pop),
                string.concat("pop of key ", _toString(i))
            );
        }
    }

    function test_Verify_RefusesBadInputs() external view {
        bytes32 digest = popDigest0;
        bytes memory pk = pk0;
        bytes memory pop = pop0;
        assertTrue(harness.verify(pk, digest, Domain.DST_POP, pop), "baseline");
        assertFalse(harness.verify(pk, digest, Domain.DST_RESULT, pop), "wrong DST");
        assertFalse(harness.verify(pk, bytes32(uint256(digest) ^ 1), Domain.DST_POP, pop), "wrong message");
        assertFalse(harness.verify(_keys(_readVectors())[1].pubkey, digest, Domain.DST_POP, pop), "wrong key");
        assertFalse(harness.verify(_slice(pk, 0, 127), digest, Domain.DST_POP, pop), "short key");
        assertFalse(harness.verify(bytes.concat(pk, hex"00"), digest, Domain.DST_POP, pop), "long key");
        assertFalse(harness.verify(pk, digest, Domain.DST_POP, _slice(pop, 0, 255)), "short signature");
        assertFalse(harness.verify(pk, digest, Domain.DST_POP, new bytes(256)), "infinity signature");
        // The classic hole: e(0, H) · e(−g1, 0) = 1 passes a raw pairing check.
        assertFalse(harness.verify(new bytes(128), digest, Domain.DST_POP, new bytes(256)), "infinity key + signature");
        // blst G2 byte order (x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0)
        bytes memory swapped =
            bytes.concat(_slice(pop, 64, 64), _slice(pop, 0, 64), _slice(pop, 192, 64), _slice(pop, 128, 64));
        assertFalse(harness.verify(pk, digest, Domain.DST_POP, swapped), "blst order");
        // non-canonical field element: x.c0 + p encodes the same point but is refused
        assertFalse(harness.verify(pk, digest, Domain.DST_POP, _addP(pop, 0)), "signature x.c0 + p");
        assertFalse(harness.verify(_addP(pk, 0), digest, Domain.DST_POP, pop), "key x + p");
    }

    function testFuzz_Verify_RefusesRandomSignatures(bytes32[8] calldata words) external view {
        bytes32 digest = popDigest0;
        bytes memory signature = abi.encodePacked(words);
        vm.assume(keccak256(signature) != keccak256(pop0));
        assertFalse(harness.verify(pk0, digest, Domain.DST_POP, signature), "random signature");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Gas caps and chains without EIP-2537
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_GasCannotCoverPairingCap() external {
        bytes32 digest = popDigest0;
        // Enough for hashing (~55k) but not for the 150k pairing cap: a revert, never `false`.
        vm.expectRevert(BLS.BLSInsufficientGas.selector);
        harness.verify{gas: 120_000}(pk0, digest, Domain.DST_POP, pop0);
    }

    /// @dev Every gas limit gives `true` or a revert (out of gas / BLSInsufficientGas), never `false`.
    function test_Verify_TightGasSweepNeverReadsValidAsInvalid() external {
        bytes memory data = abi.encodeCall(BLSHarness.verify, (pk0, popDigest0, Domain.DST_POP, pop0));
        bool accepted;
        for (uint256 gasLimit = 5000; gasLimit < 260_000; gasLimit += 53) {
            (bool ok, bytes memory ret) = address(harness).call{gas: gasLimit}(data);
            if (ok) {
                assertTrue(abi.decode(ret, (bool)), string.concat("false under gas limit ", _toString(gasLimit)));
                accepted = true;
            } else {
                assertTrue(ret.length == 0 || _selector(ret) == BLS.BLSInsufficientGas.selector, "unexpected revert");
            }
        }
        assertTrue(accepted, "accepted with enough gas");
    }

    /// @dev Before Prague, 0x0b–0x11 are empty accounts whose calls succeed with no output: hashing must revert rather
    /// than read garbage, and a valid signature must never come out as `false`. `vm.setEvmVersion` does not remove
    /// precompiles, so this runs only under `forge test --evm-version cancun --mt NoEip2537` (skipped otherwise).
    function test_RevertWhen_NoEip2537Precompiles() external {
        (bool live, bytes memory out) = BLS.MAP_FP2_TO_G2.staticcall(new bytes(128));
        vm.skip(live && out.length == 256, "EIP-2537 is live: run with --evm-version cancun");
        vm.expectRevert(abi.encodeWithSelector(BLS.BLSPrecompileFailed.selector, BLS.MAP_FP2_TO_G2));
        harness.verify(pk0, popDigest0, Domain.DST_POP, pop0);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev EIP-2537 G2 encoding from four 48-byte big-endian coordinates.
    function _g2(bytes memory xc0, bytes memory xc1, bytes memory yc0, bytes memory yc1)
        internal
        pure
        returns (bytes memory)
    {
        return bytes.concat(bytes16(0), xc0, bytes16(0), xc1, bytes16(0), yc0, bytes16(0), yc1);
    }

    function _slice(bytes memory data, uint256 start, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i; i < length; ++i) {
            out[i] = data[start + i];
        }
    }

    /// @dev Adds p to the 64-byte field element at `offset` (the value stays < 2^512 and encodes the same residue).
    function _addP(bytes memory point, uint256 offset) internal pure returns (bytes memory out) {
        out = bytes.concat(point);
        uint256 hi;
        uint256 lo;
        assembly ("memory-safe") {
            hi := mload(add(add(out, 0x20), offset))
            lo := mload(add(add(out, 0x40), offset))
        }
        unchecked {
            uint256 newLo = lo + BLS.P_LO;
            hi += BLS.P_HI + (newLo < lo ? 1 : 0);
            lo = newLo;
        }
        assembly ("memory-safe") {
            mstore(add(add(out, 0x20), offset), hi)
            mstore(add(add(out, 0x40), offset), lo)
        }
    }
}
