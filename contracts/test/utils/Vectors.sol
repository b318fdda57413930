// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {BLS} from "../../src/bls/BLS.sol";
import {Domain} from "../../src/bls/Domain.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {Test} from "./Test.sol";

/// @title VectorTest
/// @notice Reads the golden vectors (contracts/test/vectors/bls.json, layout in test/vectors/README.md) and builds the
/// registry and operator set they describe.
/// @dev The file is ~400 KB and every cheatcode call copies it into memory, so each reader makes one
/// `parseJsonType(Array)` call that decodes all the fields it needs at once. `VOUCH_BLS_VECTORS` overrides the path
/// (relative to contracts/, inside test/vectors because of `fs_permissions`).
abstract contract VectorTest is Test {
    /// @notice `keys[i]` (fields used on-chain).
    struct Key {
        address operator;
        bytes pubkey;
        bytes pop;
    }

    /// @notice `aggregates[j]`.
    struct Aggregate {
        string name;
        uint256 signers;
        uint256 bitmap;
        bytes signature;
    }

    /// @notice `invalidSignatures[j]`.
    struct InvalidSignature {
        string name;
        uint256 bitmap;
        bytes32 digest;
        bytes signature;
    }

    /// @notice `invalidKeys[j]`; `error` is the full custom-error signature.
    struct InvalidKey {
        string name;
        address operator;
        bytes pubkey;
        bytes pop;
        string error;
    }

    /// @notice `rogueKey`.
    struct RogueKey {
        uint256 victim;
        bytes pubkey;
        bytes pop;
        address operator;
        uint256 bitmap;
        bytes signature;
        bytes32 digest;
    }

    /// @notice `keys[i].secretKey` (Rust only in production; tests use it to make new keys and signatures).
    struct SecretKey {
        bytes32 secretKey;
    }

    /// @notice `hashToG2[j]`.
    struct HashToG2Vector {
        string dst;
        bytes32 msg;
        bytes point;
    }

    /// @notice BLS12-381 subgroup order r.
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;

    /// @notice Size of the operator set of `aggregates` (`keys[0..127]`).
    uint256 internal constant SET_SIZE = 128;

    /// @notice Default vector file, relative to contracts/.
    string internal constant DEFAULT_VECTORS = "test/vectors/bls.json";

    /// @notice Reads the vector file.
    function _readVectors() internal view returns (string memory) {
        return vm.readFile(vm.envOr("VOUCH_BLS_VECTORS", DEFAULT_VECTORS));
    }

    /// @notice `keys[*]` ({operator, pubkey, pop}); requires exactly `SET_SIZE` keys.
    function _keys(string memory json) internal pure returns (Key[] memory keys) {
        keys = abi.decode(vm.parseJsonTypeArray(json, ".keys", "Key(address operator,bytes pubkey,bytes pop)"), (Key[]));
        assertEq(keys.length, SET_SIZE, "vectors: keys");
    }

    /// @notice `keys[*].secretKey`.
    function _secretKeys(string memory json) internal pure returns (uint256[] memory secretKeys) {
        SecretKey[] memory secrets =
            abi.decode(vm.parseJsonTypeArray(json, ".keys", "SecretKey(bytes32 secretKey)"), (SecretKey[]));
        secretKeys = new uint256[](secrets.length);
        for (uint256 i; i < secrets.length; ++i) {
            secretKeys[i] = uint256(secrets[i].secretKey);
        }
    }

    /// @notice `aggregates[*]`.
    function _aggregates(string memory json) internal pure returns (Aggregate[] memory) {
        return abi.decode(
            vm.parseJsonTypeArray(
                json, ".aggregates", "Aggregate(string name,uint256 signers,uint256 bitmap,bytes signature)"
            ),
            (Aggregate[])
        );
    }

    /// @notice `invalidSignatures[*]`.
    function _invalidSignatures(string memory json) internal pure returns (InvalidSignature[] memory) {
        return abi.decode(
            vm.parseJsonTypeArray(
                json,
                ".invalidSignatures",
                "InvalidSignature(string name,uint256 bitmap,bytes32 digest,bytes signature)"
            ),
            (InvalidSignature[])
        );
    }

    /// @notice `invalidKeys[*]`.
    function _invalidKeys(string memory json) internal pure returns (InvalidKey[] memory) {
        return abi.decode(
            vm.parseJsonTypeArray(
                json, ".invalidKeys", "InvalidKey(string name,address operator,bytes pubkey,bytes pop,string error)"
            ),
            (InvalidKey[])
        );
    }

    /// @notice `rogueKey`.
    function _rogueKey(string memory json) internal pure returns (RogueKey memory) {
        return abi.decode(
            vm.parseJsonType(
                json,
                ".rogueKey",
                "RogueKey(uint256 victim,bytes pubkey,bytes pop,address operator,uint256 bitmap,bytes signature,bytes32 digest)"
            ),
            (RogueKey)
        );
    }

    /// @notice `hashToG2[*]`.
    function _hashToG2Vectors(string memory json) internal pure returns (HashToG2Vector[] memory) {
        return abi.decode(
            vm.parseJsonTypeArray(json, ".hashToG2", "HashToG2Vector(string dst,bytes32 msg,bytes point)"),
            (HashToG2Vector[])
        );
    }

    /// @notice Sets the vectors' chain id and places a KeyRegistry at the vectors' registry address.
    function _deployRegistry(string memory json) internal returns (KeyRegistry registry) {
        vm.chainId(vm.parseJsonUint(json, ".chainId"));
        registry = KeyRegistry(vm.parseJsonAddress(json, ".registry"));
        vm.etch(address(registry), address(new KeyRegistry()).code);
    }

    /// @notice Registers every key (from its operator, with its PoP) and creates the set `keys[0..127]`.
    function _registerAll(KeyRegistry registry, Key[] memory keys) internal returns (address keySet) {
        address[] memory operators = new address[](keys.length);
        for (uint256 i; i < keys.length; ++i) {
            operators[i] = keys[i].operator;
            vm.prank(keys[i].operator);
            registry.registerKey(keys[i].pubkey, keys[i].pop);
        }
        keySet = registry.createKeySet(operators);
    }

    /// @notice A new key pk = sk·g1 (G1MSM) with its PoP sk·H_pop(popDigest(chainid, registry, operator, pk)) (G2MSM).
    function _keyWithPop(uint256 secretKey, address registry, address operator)
        internal
        view
        returns (bytes memory pubkey, bytes memory pop)
    {
        bytes memory g1 = bytes.concat(
            bytes16(0),
            hex"17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
            bytes16(0),
            hex"08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1"
        );
        bool ok;
        (ok, pubkey) = address(0x0c).staticcall(abi.encodePacked(g1, secretKey)); // G1MSM
        assertTrue(ok && pubkey.length == 128, "G1MSM");
        bytes32 digest = VouchDigest.popDigest(block.chainid, registry, operator, pubkey);
        (ok, pop) = address(0x0e).staticcall(abi.encodePacked(BLS.hashToG2(digest, Domain.DST_POP), secretKey)); // G2MSM
        assertTrue(ok && pop.length == 256, "G2MSM");
    }

    /// @notice Concatenates the public keys of `keys`.
    function _concatKeys(Key[] memory keys) internal pure returns (bytes memory out) {
        out = new bytes(128 * keys.length);
        for (uint256 i; i < keys.length; ++i) {
            bytes memory key = keys[i].pubkey;
            assertEq(key.length, 128, "key length");
            assembly ("memory-safe") {
                mcopy(add(add(out, 0x20), mul(i, 128)), add(key, 0x20), 128)
            }
        }
    }
}
