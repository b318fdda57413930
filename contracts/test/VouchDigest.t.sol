// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Domain} from "../src/bls/Domain.sol";
import {VouchDigest} from "../src/bls/VouchDigest.sol";
import {BLSHarness} from "./utils/Harness.sol";
import {VectorTest} from "./utils/Vectors.sol";

/// @title VouchDigestTest
/// @notice Result, commitment, batch and PoP digests against the golden vectors and docs/design/bls.md.
contract VouchDigestTest is VectorTest {
    /// @notice `result`.
    struct ResultVector {
        uint256 serviceId;
        uint256 callId;
        bytes32 inputsHash;
        bytes32 resultHash;
        bytes32 digest;
    }

    /// @notice `batch` without its leaves.
    struct BatchVector {
        uint256 serviceId;
        uint256 count;
        bytes32 root;
        bytes32 digest;
    }

    /// @notice `batch.leaves[k]`.
    struct LeafVector {
        uint256 callId;
        bytes32 inputsHash;
        bytes32 resultHash;
        bytes32 leaf;
    }

    BLSHarness internal harness;

    function setUp() external {
        harness = new BLSHarness();
    }

    function test_PaidCallIdAndRecordLeaf_MatchVector() external view {
        string memory json = _readVectors();
        address from = vm.parseJsonAddress(json, ".paidCall.from");
        bytes32 nonce = vm.parseJsonBytes32(json, ".paidCall.nonce");
        uint64 serviceId = uint64(vm.parseJsonUint(json, ".paidCall.serviceId"));
        uint8 jobIndex = uint8(vm.parseJsonUint(json, ".paidCall.jobIndex"));
        uint256 callId = VouchDigest.paidCallId(serviceId, jobIndex, from, nonce);
        assertEq(callId, uint256(vm.parseJsonBytes32(json, ".paidCall.callId")), "paidCall.callId");
        assertEq(
            callId,
            uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), serviceId, jobIndex, from, nonce))),
            "spec encoding"
        );
        assertGt(callId, type(uint64).max, "far from the callJob counter range");
        bytes32 leaf = VouchDigest.paidRecordLeaf(
            from,
            nonce,
            jobIndex,
            vm.parseJsonUint(json, ".paidCall.payment"),
            vm.parseJsonBytes32(json, ".paidCall.inputsHash"),
            vm.parseJsonBytes32(json, ".paidCall.resultHash")
        );
        assertEq(leaf, vm.parseJsonBytes32(json, ".paidCall.recordLeaf"), "paidCall.recordLeaf");
    }

    function test_ResultDigest_MatchesVector() external view {
        string memory json = _readVectors();
        ResultVector memory r = abi.decode(
            vm.parseJsonType(
                json,
                ".result",
                "ResultVector(uint256 serviceId,uint256 callId,bytes32 inputsHash,bytes32 resultHash,bytes32 digest)"
            ),
            (ResultVector)
        );
        uint256 chainId = vm.parseJsonUint(json, ".chainId");
        address protocol = vm.parseJsonAddress(json, ".protocol");
        bytes32 digest =
            VouchDigest.resultDigest(chainId, protocol, _u64(r.serviceId), _u64(r.callId), r.inputsHash, r.resultHash);
        assertEq(digest, r.digest, "result.digest");
        // spelled out from the spec
        assertEq(
            digest,
            keccak256(
                abi.encode(
                    keccak256("vouch.v1.result"), chainId, protocol, r.serviceId, r.callId, r.inputsHash, r.resultHash
                )
            ),
            "spec encoding"
        );
    }

    /// @notice `commitment`.
    struct CommitmentVector {
        uint256 serviceId;
        uint256 callId;
        bytes32 inputsHash;
        bytes32 outputHash;
        bytes32 digest;
    }

    /// @dev The commitment digest agrees with `vouch_primitives::commitment_digest` (the vector) and the spec.
    function test_CommitmentDigest_MatchesVector() external view {
        string memory json = _readVectors();
        CommitmentVector memory c = CommitmentVector({
            serviceId: vm.parseJsonUint(json, ".commitment.serviceId"),
            callId: vm.parseJsonUint(json, ".commitment.callId"),
            inputsHash: vm.parseJsonBytes32(json, ".commitment.inputsHash"),
            outputHash: vm.parseJsonBytes32(json, ".commitment.outputHash"),
            digest: vm.parseJsonBytes32(json, ".commitment.digest")
        });
        assertEq(keccak256(vm.parseJsonBytes(json, ".commitment.output")), c.outputHash, "commitment.outputHash");
        uint256 chainId = vm.parseJsonUint(json, ".chainId");
        address protocol = vm.parseJsonAddress(json, ".protocol");
        bytes32 digest =
            VouchDigest.commitmentDigest(chainId, protocol, _u64(c.serviceId), c.callId, c.inputsHash, c.outputHash);
        assertEq(digest, c.digest, "commitment.digest");
        assertEq(
            digest,
            keccak256(
                abi.encode(
                    keccak256("vouch.v1.commit"), chainId, protocol, c.serviceId, c.callId, c.inputsHash, c.outputHash
                )
            ),
            "spec encoding"
        );
        // The same words under the result tag are another digest.
        assertTrue(
            digest
                != VouchDigest.resultDigest(chainId, protocol, _u64(c.serviceId), c.callId, c.inputsHash, c.outputHash),
            "not a result digest"
        );
    }

    /// @dev The commitment tag keeps a commitment digest apart from every result and batch digest.
    function testFuzz_CommitmentDigestNeverEqualsResultOrBatchDigest(
        uint64 serviceId,
        uint256 callId,
        bytes32 inputsHash,
        bytes32 hash,
        uint32 count
    ) external view {
        bytes32 commitment = VouchDigest.commitmentDigest(
            block.chainid, address(this), serviceId, callId, inputsHash, hash
        );
        bytes32 result = VouchDigest.resultDigest(block.chainid, address(this), serviceId, callId, inputsHash, hash);
        assertTrue(commitment != result, "commitment vs result");
        if (count != 0) {
            bytes32 batch = VouchDigest.batchDigest(block.chainid, address(this), serviceId, inputsHash, count);
            assertTrue(commitment != batch, "commitment vs batch");
        }
    }

    function test_Batch_MatchesVector() external view {
        string memory json = _readVectors();
        BatchVector memory b = abi.decode(
            vm.parseJsonType(
                json, ".batch", "BatchVector(uint256 serviceId,uint256 count,bytes32 root,bytes32 digest)"
            ),
            (BatchVector)
        );
        LeafVector[] memory leaves = abi.decode(
            vm.parseJsonTypeArray(
                json, ".batch.leaves", "LeafVector(uint256 callId,bytes32 inputsHash,bytes32 resultHash,bytes32 leaf)"
            ),
            (LeafVector[])
        );
        assertEq(leaves.length, b.count, "batch.count = leaves");
        assertGe(leaves.length, 3, "vectors: a batch worth a tree");

        bytes32[] memory computed = new bytes32[](leaves.length);
        for (uint256 k; k < leaves.length; ++k) {
            computed[k] = VouchDigest.batchLeaf(_u64(leaves[k].callId), leaves[k].inputsHash, leaves[k].resultHash);
            assertEq(computed[k], leaves[k].leaf, string.concat("batch.leaves[", _toString(k), "].leaf"));
        }
        bytes32 root = VouchDigest.batchRoot(computed);
        assertEq(root, b.root, "batch.root");
        assertEq(
            VouchDigest.batchDigest(
                vm.parseJsonUint(json, ".chainId"),
                vm.parseJsonAddress(json, ".protocol"),
                _u64(b.serviceId),
                root,
                uint32(leaves.length)
            ),
            b.digest,
            "batch.digest"
        );
        // Every leaf is provable with OpenZeppelin's MerkleProof against the root.
        for (uint256 k; k < computed.length; ++k) {
            assertTrue(MerkleProof.verify(_proof(computed, k), root, computed[k]), "MerkleProof.verify");
        }
    }

    function test_BatchRoot_SmallTrees() external pure {
        bytes32 a = keccak256("a");
        bytes32 b = keccak256("b");
        bytes32 c = keccak256("c");
        bytes32[] memory one = new bytes32[](1);
        one[0] = a;
        assertEq(VouchDigest.batchRoot(one), a, "one leaf: the leaf");

        bytes32[] memory three = new bytes32[](3);
        three[0] = a;
        three[1] = b;
        three[2] = c;
        bytes32 ab = a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
        bytes32 abc = ab < c ? keccak256(abi.encode(ab, c)) : keccak256(abi.encode(c, ab));
        assertEq(VouchDigest.batchRoot(three), abc, "three leaves: odd leaf carried up");
        // input untouched
        assertEq(three[0], a, "leaves not modified");
        assertEq(three[1], b, "leaves not modified");
    }

    function test_RevertWhen_BatchIsEmpty() external {
        vm.expectRevert(VouchDigest.EmptyBatch.selector);
        harness.batchRoot(new bytes32[](0));
        vm.expectRevert(VouchDigest.EmptyBatch.selector);
        harness.batchDigest(1, address(1), 1, bytes32(0), 0);
    }

    /// @dev The batch tag keeps a batch digest apart from a result digest even over the same words.
    function testFuzz_BatchDigestNeverEqualsResultDigest(uint64 serviceId, bytes32 root, uint32 count) external view {
        vm.assume(count != 0);
        bytes32 batch = VouchDigest.batchDigest(block.chainid, address(this), serviceId, root, count);
        bytes32 result = VouchDigest.resultDigest(block.chainid, address(this), serviceId, 0, root, bytes32(0));
        assertTrue(batch != result, "tags separate digests");
    }

    function testFuzz_BatchRoot_EveryLeafProvable(bytes32 seed, uint8 size) external pure {
        uint256 n = 1 + uint256(size) % 33;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 k; k < n; ++k) {
            leaves[k] = keccak256(abi.encode(seed, k));
        }
        bytes32 root = VouchDigest.batchRoot(leaves);
        for (uint256 k; k < n; ++k) {
            assertTrue(MerkleProof.verify(_proof(leaves, k), root, leaves[k]), "leaf provable");
        }
    }

    function test_PopDigest_EncodesPacked() external pure {
        bytes memory pubkey = new bytes(128);
        pubkey[5] = 0x01;
        bytes32 expected = keccak256(
            bytes.concat(
                Domain.POP_TAG, bytes32(uint256(31_337)), bytes20(address(0xAA)), bytes20(address(0xBB)), pubkey
            )
        );
        assertEq(VouchDigest.popDigest(31_337, address(0xAA), address(0xBB), pubkey), expected, "232-byte preimage");
    }

    /// @dev Merkle proof of leaf `index` in the tree `batchRoot` builds (sorted pairs, odd node carried up).
    function _proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory proof) {
        bytes32[] memory level = new bytes32[](leaves.length);
        for (uint256 k; k < leaves.length; ++k) {
            level[k] = leaves[k];
        }
        bytes32[] memory path = new bytes32[](64);
        uint256 depth;
        uint256 n = leaves.length;
        while (n > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < n) path[depth++] = level[sibling];
            for (uint256 k; k < n / 2; ++k) {
                bytes32 x = level[2 * k];
                bytes32 y = level[2 * k + 1];
                level[k] = x < y ? keccak256(abi.encode(x, y)) : keccak256(abi.encode(y, x));
            }
            if (n % 2 == 1) level[n / 2] = level[n - 1];
            n = (n + 1) / 2;
            index /= 2;
        }
        proof = new bytes32[](depth);
        for (uint256 k; k < depth; ++k) {
            proof[k] = path[k];
        }
    }

    function _u64(uint256 value) internal pure returns (uint64) {
        require(value <= type(uint64).max, "vectors: value exceeds uint64");
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(value); // checked above
    }
}
