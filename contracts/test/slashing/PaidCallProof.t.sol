// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {SystemBase, SystemMath} from "../integration/SystemBase.sol";
import {PaidTree} from "../protocol/PaidBatch.t.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @title PaidCallProofTest
/// @notice `VouchSlasher.provePaidCall` against a paid batch recorded in the mock protocol, and the reports it enables.
/// @dev `BATCH` is a five-entry paid batch of service 1 signed by op0 and op1 (bitmap 0x3); entry 3 was skipped
/// (payment 0); entry 2 is `PAYER`'s call with inputs `INPUTS` and certified result `RESULT`. `BATCH_ONE` has one
/// entry.
contract PaidCallProofTest is SlashingBase {
    uint256 internal constant BATCH = 7;
    uint256 internal constant BATCH_ONE = 8;
    uint256 internal constant BITMAP = 0x3;
    uint64 internal constant SETTLED_AT = START + 5 minutes;

    /// @dev One entry of a paid batch as the protocol records it.
    struct Rec {
        address from;
        bytes32 nonce;
        uint8 jobIndex;
        uint256 payment;
        bytes32 inputsHash;
        bytes32 resultHash;
    }

    function setUp() public override {
        super.setUp();
        protocol.setPaidBatch(BATCH, _batchOf(_five()));
        protocol.setPaidBatch(BATCH_ONE, _batchOf(_one()));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    function _five() internal pure returns (Rec[] memory r) {
        r = new Rec[](5);
        for (uint256 i; i < 5; ++i) {
            r[i] = Rec({
                // forge-lint: disable-next-line(unsafe-typecast)
                from: i == 2 ? PAYER : address(uint160(0xF000 + i)), // i < 5
                nonce: keccak256(abi.encode("nonce", i)),
                // forge-lint: disable-next-line(unsafe-typecast)
                jobIndex: uint8(i % 2),
                payment: i == 3 ? 0 : 1e6 + i,
                inputsHash: i == 2 ? INPUTS : keccak256(abi.encode("inputs", i)),
                resultHash: i == 2 ? RESULT : keccak256(abi.encode("result", i))
            });
        }
    }

    function _one() internal pure returns (Rec[] memory r) {
        r = new Rec[](1);
        r[0] = Rec({
            from: address(0x0E1),
            nonce: keccak256("single"),
            jobIndex: 0,
            payment: 1e6,
            inputsHash: keccak256("single inputs"),
            resultHash: keccak256("single result")
        });
    }

    function _leaf(Rec memory r) internal pure returns (bytes32) {
        return PaidTree.record(r.from, r.nonce, r.jobIndex, r.payment, r.inputsHash, r.resultHash);
    }

    function _leaves(Rec[] memory rs) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](rs.length);
        for (uint256 i; i < rs.length; ++i) {
            leaves[i] = _leaf(rs[i]);
        }
    }

    function _batchOf(Rec[] memory rs) internal pure returns (IVouchProtocol.PaidBatch memory b) {
        b.serviceId = SERVICE;
        b.settledAt = SETTLED_AT;
        // forge-lint: disable-next-line(unsafe-typecast)
        b.count = uint32(rs.length); // small
        b.signerBitmap = BITMAP;
        b.recordRoot = PaidTree.root(_leaves(rs));
    }

    /// @dev The proof of entry `i` of `rs`.
    function _proofOf(Rec[] memory rs, uint256 i) internal pure returns (VouchSlasher.PaidCallProof memory p) {
        Rec memory r = rs[i];
        p.from = r.from;
        p.nonce = r.nonce;
        p.jobIndex = r.jobIndex;
        p.payment = r.payment;
        p.inputsHash = r.inputsHash;
        p.resultHash = r.resultHash;
        p.proof = PaidTree.proof(_leaves(rs), i);
    }

    /// @dev The id of a paid call of `BATCH` or `BATCH_ONE` (service 1), from its definition.
    function _id(Rec memory r) internal pure returns (uint256) {
        return PaidTree.callId(SERVICE, r.jobIndex, r.from, r.nonce);
    }

    function _leafOf(VouchSlasher.PaidCallProof memory p) internal pure returns (bytes32) {
        return PaidTree.record(p.from, p.nonce, p.jobIndex, p.payment, p.inputsHash, p.resultHash);
    }

    /// @dev Proves entry 2 of `BATCH` (PAYER, INPUTS, RESULT).
    function _proveMiddle() internal returns (uint256) {
        return slasher.provePaidCall(BATCH, _proofOf(_five(), 2));
    }

    function _assertProven(uint256 callId, Rec memory r) internal view {
        IVouchProtocol.Call memory c = slasher.getCall(callId);
        assertEq(c.serviceId, SERVICE, "serviceId");
        assertEq(c.jobIndex, r.jobIndex, "jobIndex");
        assertTrue(c.status == IVouchProtocol.CallStatus.Settled, "settled");
        assertEq(c.deadline, SETTLED_AT, "deadline = settledAt");
        assertEq(c.settledAt, SETTLED_AT, "settledAt");
        assertEq(c.payer, r.from, "payer");
        assertEq(c.payment, r.payment, "payment");
        assertEq(c.inputsHash, r.inputsHash, "inputsHash");
        assertEq(c.resultHash, r.resultHash, "resultHash");
        assertEq(c.signerBitmap, BITMAP, "signerBitmap");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // provePaidCall
    // ---------------------------------------------------------------------------------------------------------------

    function test_ProvePaidCall_FirstMiddleLastOfOddBatch() external {
        Rec[] memory rs = _five();
        uint256[3] memory indexes = [uint256(0), 2, 4];
        // 5 leaves: levels 5 → 3 → 2 → 1; the last leaf moves up unchanged twice.
        uint256[3] memory depths = [uint256(3), 3, 1];
        for (uint256 j; j < 3; ++j) {
            uint256 i = indexes[j];
            VouchSlasher.PaidCallProof memory p = _proofOf(rs, i);
            assertEq(p.proof.length, depths[j], "proof length");
            uint256 expectedId = _id(rs[i]);
            assertTrue(slasher.getCall(expectedId).status == IVouchProtocol.CallStatus.None, "unknown before");
            vm.expectEmit(address(slasher));
            emit VouchSlasher.PaidCallProven(expectedId, BATCH, rs[i].from);
            vm.prank(REPORTER);
            assertEq(slasher.provePaidCall(BATCH, p), expectedId, "call id");
            _assertProven(expectedId, rs[i]);
        }
    }

    function test_ProvePaidCall_SingleEntryEmptyProof() external {
        Rec[] memory rs = _one();
        VouchSlasher.PaidCallProof memory p = _proofOf(rs, 0);
        assertEq(p.proof.length, 0, "empty proof");
        assertEq(protocol.getPaidBatch(BATCH_ONE).recordRoot, _leaf(rs[0]), "root = leaf");
        uint256 callId = slasher.provePaidCall(BATCH_ONE, p);
        assertEq(callId, _id(rs[0]), "call id");
        _assertProven(callId, rs[0]);
    }

    function test_ProvePaidCall_AgainReturnsTheSameId() external {
        Rec[] memory rs = _five();
        VouchSlasher.PaidCallProof memory p = _proofOf(rs, 0);
        uint256 callId = slasher.provePaidCall(BATCH, p);
        vm.recordLogs();
        assertEq(slasher.provePaidCall(BATCH, p), callId, "same id");
        // Once proven, the record is final: other data for the same call (service, job, from, nonce) changes nothing.
        p.resultHash = WRONG;
        p.payment = 0;
        p.proof = new bytes32[](0);
        assertEq(slasher.provePaidCall(BATCH, p), callId, "same id, record kept");
        assertEq(slasher.provePaidCall(BATCH_ONE, p), callId, "from another batch of the service too");
        assertEq(vm.getRecordedLogs().length, 0, "no second PaidCallProven");
        _assertProven(callId, rs[0]);
        // The id is derived with the batch's service, so an unknown batch is refused before anything else.
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownPaidBatch.selector, 99));
        slasher.provePaidCall(99, p);
    }

    /// @dev The call id is derived from the batch's service and the proof's job: the same authorization in a batch of
    /// another service, or relabelled as another job, is another call (and the relabelled one is not in the record).
    function test_ProvePaidCall_IdBindsTheBatchServiceAndTheJob() external {
        Rec[] memory rs = _five();
        IVouchProtocol.PaidBatch memory other = _batchOf(rs);
        other.serviceId = OTHER_SERVICE;
        protocol.setPaidBatch(9, other);
        uint256 here = slasher.provePaidCall(BATCH, _proofOf(rs, 0));
        uint256 there = slasher.provePaidCall(9, _proofOf(rs, 0));
        assertEq(here, _id(rs[0]), "service 1 id");
        assertEq(there, PaidTree.callId(OTHER_SERVICE, rs[0].jobIndex, rs[0].from, rs[0].nonce), "service 2 id");
        assertTrue(here != there, "bound to the service");
        assertEq(slasher.getCall(there).serviceId, OTHER_SERVICE, "recorded in the batch's service");
        // Another job index is another call id, whose record leaf is not in the tree.
        VouchSlasher.PaidCallProof memory p = _proofOf(rs, 2);
        p.jobIndex = 1 - rs[2].jobIndex;
        uint256 relabelled = PaidTree.callId(SERVICE, p.jobIndex, p.from, p.nonce);
        assertTrue(relabelled != _id(rs[2]), "bound to the job");
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidMerkleProof.selector, protocol.getPaidBatch(BATCH).recordRoot, _leafOf(p)
            )
        );
        slasher.provePaidCall(BATCH, p);
        assertTrue(slasher.getCall(relabelled).status == IVouchProtocol.CallStatus.None, "relabelled: not a call");
    }

    function test_RevertWhen_ProvePaidCallUnknownBatch() external {
        VouchSlasher.PaidCallProof memory p = _proofOf(_five(), 0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownPaidBatch.selector, 99));
        slasher.provePaidCall(99, p);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownPaidBatch.selector, 0));
        slasher.provePaidCall(0, p);
    }

    function test_RevertWhen_ProvePaidCallAnyFieldAltered() external {
        Rec[] memory rs = _five();
        bytes32 root = protocol.getPaidBatch(BATCH).recordRoot;
        for (uint256 k; k < 9; ++k) {
            VouchSlasher.PaidCallProof memory p = _proofOf(rs, 2);
            if (k == 0) p.from = address(0xBAD);
            if (k == 1) p.nonce = keccak256("other nonce");
            if (k == 2) p.jobIndex = 1;
            if (k == 3) p.payment += 1;
            if (k == 4) p.inputsHash = keccak256("other inputs");
            if (k == 5) p.resultHash = WRONG;
            if (k == 6) p.proof[1] = bytes32(uint256(p.proof[1]) ^ 1);
            if (k == 7) p.proof = _proofOf(rs, 1).proof; // another entry's path
            if (k == 8) {
                bytes32[] memory shorter = new bytes32[](p.proof.length - 1);
                for (uint256 i; i < shorter.length; ++i) {
                    shorter[i] = p.proof[i];
                }
                p.proof = shorter;
            }
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidMerkleProof.selector, root, _leafOf(p)));
            slasher.provePaidCall(BATCH, p);
        }
        // A valid proof of another batch's entry.
        VouchSlasher.PaidCallProof memory single = _proofOf(_one(), 0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidMerkleProof.selector, root, _leafOf(single)));
        slasher.provePaidCall(BATCH, single);
        // Nothing was recorded.
        assertTrue(slasher.getCall(_id(rs[2])).status == IVouchProtocol.CallStatus.None, "middle entry unproven");
        _proveMiddle(); // the unaltered proof passes
    }

    function test_RevertWhen_ProvePaidCallSkippedEntry() external {
        Rec[] memory rs = _five();
        VouchSlasher.PaidCallProof memory p = _proofOf(rs, 3); // payment 0 in the tree: a valid proof
        uint256 callId = _id(rs[3]);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.PaidCallNotCollected.selector, callId));
        slasher.provePaidCall(BATCH, p);
        // Claiming it was collected does not match the record.
        p.payment = 1e6;
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidMerkleProof.selector, protocol.getPaidBatch(BATCH).recordRoot, _leafOf(p)
            )
        );
        slasher.provePaidCall(BATCH, p);
        assertTrue(slasher.getCall(callId).status == IVouchProtocol.CallStatus.None, "not a call");
    }

    function test_RevertWhen_ProvePaidCallIsAProtocolCall() external {
        Rec[] memory rs = _five();
        uint256 callId = _id(rs[0]);
        // The authorization opened a protocol call (`openPaidCall`): it is reported by id, never proven.
        protocol.setCall(callId, _call(SERVICE, IVouchProtocol.CallStatus.Open, 0, 0));
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotAPaidBatchCall.selector, callId));
        slasher.provePaidCall(BATCH, _proofOf(rs, 0));
        protocol.setCall(callId, _call(SERVICE, IVouchProtocol.CallStatus.Settled, RESULT, 0x1));
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotAPaidBatchCall.selector, callId));
        slasher.provePaidCall(BATCH, _proofOf(rs, 0));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reports on a proven paid call (mock staking)
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_ReportingAnUnprovenPaidCall() external {
        uint256 callId = _id(_five()[2]);
        VouchSlasher.SignedResult memory wrong = _signed(sk2, callId, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, callId, IVouchProtocol.CallStatus.None)
        );
        slasher.proposeDeviation(callId, op2, 2, wrong);
        VouchSlasher.SignedResult memory right = _signed(sk2, callId, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownCall.selector, callId));
        slasher.reportEquivocation(SERVICE, callId, op2, 2, right, wrong);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, callId));
        slasher.reportMissedDeadline(callId, op2, 2);
        assertEq(staking.slashCount(), 0, "nothing slashed");
    }

    function test_Deviation_OnProvenPaidCall() external {
        uint256 callId = _proveMiddle();
        VouchSlasher.SignedResult memory wrong = _signed(sk2, callId, INPUTS, WRONG);
        vm.prank(REPORTER);
        uint256 proposalId = slasher.proposeDeviation(callId, op2, 2, wrong);
        assertEq(proposalId, slasher.proposalIdOf(op2, callId), "proposal id");
        vm.warp(block.timestamp + DISPUTE_WINDOW);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(STAKE, DEVIATION_BPS, PAYER_BPS, REPORTER_BPS);
        vm.prank(address(0xE4EC));
        assertEq(slasher.executeDeviation(proposalId), amount, "slashed");
        _assertSlash(0, op2, amount, PAYER, toPayer, REPORTER, toReporter);
        // The certified result itself is not a deviation.
        VouchSlasher.SignedResult memory honest = _signed(sk0, callId, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotDeviating.selector, callId, RESULT));
        slasher.proposeDeviation(callId, op0, 0, honest);
    }

    function test_Equivocation_OnProvenPaidCall() external {
        uint256 callId = _proveMiddle();
        VouchSlasher.SignedResult memory a = _signed(sk0, callId, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, _threeLeaves(callId, WRONG), 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.CallNotInService.selector, callId, OTHER_SERVICE, SERVICE));
        slasher.reportEquivocation(OTHER_SERVICE, callId, op0, 0, a, b);
        (uint256 amount, uint256 toPayer, uint256 toReporter) =
            _expected(STAKE, EQUIVOCATION_BPS, PAYER_BPS, REPORTER_BPS);
        vm.prank(REPORTER);
        assertEq(slasher.reportEquivocation(SERVICE, callId, op0, 0, a, b), amount, "slashed");
        _assertSlash(0, op0, amount, PAYER, toPayer, REPORTER, toReporter);
        assertTrue(slasher.isReported(op0, callId, VouchSlasher.Fault.Equivocation), "reported");
    }

    /// @dev An x402 call's inputs reach operators only through the gateway, so a missing signature proves nothing:
    /// a proven paid-batch call cannot be reported for a missed deadline, by anyone, for any operator, however long
    /// after its alibi window. (Its signers' bits would also refuse it: `MissNotProvable` comes first.)
    function test_RevertWhen_MissedDeadline_OnProvenPaidCall() external {
        uint256 callId = _proveMiddle();
        assertGt(callId, type(uint64).max, "an x402 id");
        vm.warp(uint256(SETTLED_AT) + DISPUTE_WINDOW + 1); // the alibi window is over
        for (uint256 slot; slot < 3; ++slot) {
            address op = [op0, op1, op2][slot];
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, callId));
            vm.prank(REPORTER);
            slasher.reportMissedDeadline(callId, op, slot); // op2 is not in the bitmap, op0 and op1 are
            assertFalse(slasher.isReported(op, callId, VouchSlasher.Fault.MissedDeadline), "not reported");
            assertEq(slasher.missesOf(op, BLUEPRINT).total, 0, "no miss counted");
        }
        assertEq(staking.slashCount(), 0, "nothing slashed");
        // A `callJob` call of the same service, settled without op2's bit, is reportable once its window is over.
        vm.warp(uint256(START) + 10 minutes + DISPUTE_WINDOW + 1);
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 1, "the counter-id call is reportable");
    }

    /// @dev The same for a call opened with `openPaidCall` (an x402 id with a protocol call record) that was refunded:
    /// whoever paid may have opened it with inputs nobody was given, so nobody missed it.
    function test_RevertWhen_MissedDeadline_OnRefundedOpenPaidCall() external {
        Rec memory r = _five()[2];
        uint256 callId = _id(r);
        protocol.setCall(callId, _call(SERVICE, IVouchProtocol.CallStatus.Refunded, 0, 0));
        vm.warp(uint256(START) + 1 hours + DISPUTE_WINDOW + 1); // past the deadline's alibi window
        for (uint256 slot; slot < 3; ++slot) {
            address op = [op0, op1, op2][slot];
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, callId));
            vm.prank(REPORTER);
            slasher.reportMissedDeadline(callId, op, slot);
        }
        // Any id above 2^64 - 1 is refused, whatever its status; the last counter id is not.
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, uint256(type(uint64).max) + 1));
        slasher.reportMissedDeadline(uint256(type(uint64).max) + 1, op2, 2);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.CallNotFinal.selector, uint256(type(uint64).max), IVouchProtocol.CallStatus.None
            )
        );
        slasher.reportMissedDeadline(type(uint64).max, op2, 2);
        // The refunded counter-id call of the fixture is reportable.
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op2, 2);
        assertEq(staking.slashCount(), 1, "only the counter-id call slashed");
    }
}

/// @title PaidCallProofSystemTest
/// @notice End to end with the real contracts: a paid batch settled by `VouchProtocol.settlePaidBatch`, one of its
/// calls proven to `VouchSlasher.provePaidCall` against the protocol's own record root, then slashed in `VouchStaking`.
/// @dev The batch has three entries (payer: job 0, payer2: job 1, payer: job 1) signed by op1 and op2 (bitmap 0x6:
/// 50,000 of 65,000 stake); op0 (15,000: 10,000 own, 5,000 delegated) did not sign.
contract PaidCallProofSystemTest is SystemBase {
    uint256 internal constant SIGNERS = 0x6;
    bytes32 internal constant WRONG_RESULT = keccak256("a wrong result");

    VouchProtocol.PaidResult[] internal entries;
    uint256 internal batchId;

    function setUp() public override {
        super.setUp();
        entries.push(_entry(payerKey, 0));
        entries.push(_entry(payer2Key, 1));
        entries.push(_entry(payerKey, 1));
        VouchProtocol.PaidResult[] memory es = entries;
        bytes memory signature = BlsSigner.signBitmap(serviceSecretKeys, SIGNERS, _paidDigest(es));
        vm.prank(gateway);
        batchId = protocol.settlePaidBatch(serviceId, es, SIGNERS, signature);
    }

    function _entry(uint256 key, uint8 job) internal returns (VouchProtocol.PaidResult memory e) {
        uint256 n = nextNonce++;
        e.from = vm.addr(key);
        e.jobIndex = job;
        e.validAfter = block.timestamp - 1;
        e.validBefore = block.timestamp + 5 minutes;
        e.nonce = keccak256(abi.encode("paid-batch nonce", n));
        e.inputsHash = keccak256(abi.encode("paid-batch inputs", n));
        e.resultHash = keccak256(abi.encode("paid-batch result", n));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            key, _transferAuthDigest(e.from, address(protocol), _price(job), e.validAfter, e.validBefore, e.nonce)
        );
        e.signature = abi.encodePacked(r, s, v);
    }

    /// @dev The certified batch as slashing leaves (`batchLeaf(paidCallId, inputsHash, resultHash)`).
    function _batchLeaves(VouchProtocol.PaidResult[] memory es) internal view returns (Leaf[] memory leaves) {
        leaves = new Leaf[](es.length);
        for (uint256 i; i < es.length; ++i) {
            leaves[i] = Leaf({
                callId: _paidCallId(serviceId, es[i].jobIndex, es[i].from, es[i].nonce),
                inputsHash: es[i].inputsHash,
                resultHash: es[i].resultHash
            });
        }
    }

    function _paidDigest(VouchProtocol.PaidResult[] memory es) internal view returns (bytes32) {
        bytes32[] memory hashes = _leafHashes(_batchLeaves(es));
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(es.length); // small
        return keccak256(
            abi.encode(
                keccak256("vouch.v1.batch"), block.chainid, address(protocol), serviceId, PaidTree.root(hashes), count
            )
        );
    }

    function _records() internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](entries.length);
        for (uint256 i; i < entries.length; ++i) {
            VouchProtocol.PaidResult memory e = entries[i];
            leaves[i] = PaidTree.record(e.from, e.nonce, e.jobIndex, _price(e.jobIndex), e.inputsHash, e.resultHash);
        }
    }

    function _proofOf(uint256 i) internal view returns (VouchSlasher.PaidCallProof memory p) {
        VouchProtocol.PaidResult memory e = entries[i];
        p.from = e.from;
        p.nonce = e.nonce;
        p.jobIndex = e.jobIndex;
        p.payment = _price(e.jobIndex);
        p.inputsHash = e.inputsHash;
        p.resultHash = e.resultHash;
        p.proof = PaidTree.proof(_records(), i);
    }

    function test_EndToEnd_ProtocolRecordRootMatchesTheProofs() external {
        IVouchProtocol.PaidBatch memory b = protocol.getPaidBatch(batchId);
        assertEq(b.recordRoot, PaidTree.root(_records()), "record root");
        assertEq(b.count, 3, "count");
        assertEq(b.signerBitmap, SIGNERS, "bitmap");
        for (uint256 i; i < entries.length; ++i) {
            uint256 callId = slasher.provePaidCall(batchId, _proofOf(i));
            VouchProtocol.PaidResult memory e = entries[i];
            assertEq(callId, _paidCallId(serviceId, e.jobIndex, e.from, e.nonce), "call id");
            assertEq(protocol.paidCallId(serviceId, e.jobIndex, e.from, e.nonce), callId, "the protocol's view agrees");
            IVouchProtocol.Call memory c = slasher.getCall(callId);
            assertEq(c.payer, entries[i].from, "payer");
            assertEq(c.payment, _price(entries[i].jobIndex), "payment");
            assertEq(c.resultHash, entries[i].resultHash, "result");
            assertEq(c.settledAt, b.settledAt, "settledAt");
            assertEq(c.signerBitmap, SIGNERS, "signers");
        }
    }

    function test_EndToEnd_DeviationOnPaidBatchCall_SlashedAfterDisputeWindow() external {
        VouchProtocol.PaidResult memory e = entries[1]; // payer2's call
        uint256 callId = _paidCallId(serviceId, e.jobIndex, e.from, e.nonce);
        address op0 = operators[0];
        // op0 (not a signer) signed the call's inputs with another result.
        VouchSlasher.SignedResult memory deviating =
            _single(secretKeys[0], address(protocol), serviceId, callId, e.inputsHash, WRONG_RESULT);

        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, callId, IVouchProtocol.CallStatus.None)
        );
        slasher.proposeDeviation(callId, op0, 0, deviating);

        vm.prank(reporter);
        assertEq(slasher.provePaidCall(batchId, _proofOf(1)), callId, "proven");
        uint64 executableAt = uint64(block.timestamp) + DISPUTE_WINDOW;
        uint256 expectedId = slasher.proposalIdOf(op0, callId);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.DeviationProposed(expectedId, op0, callId, reporter, WRONG_RESULT, e.resultHash, executableAt);
        vm.prank(reporter);
        uint256 proposalId = slasher.proposeDeviation(callId, op0, 0, deviating);

        // A signer's own batch signature carries the certified result: no deviation.
        VouchSlasher.SignedResult memory honest =
            _batch(secretKeys[1], address(protocol), serviceId, _batchLeaves(entries), 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotDeviating.selector, callId, e.resultHash));
        slasher.proposeDeviation(callId, operators[1], 1, honest);

        vm.warp(executableAt - 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.DisputeWindowOpen.selector, proposalId, executableAt));
        slasher.executeDeviation(proposalId);
        vm.warp(executableAt);
        (uint256 amount, uint256 toPayer, uint256 toReporter, uint256 burned) = SystemMath.slash(
            staking.slashableStake(op0), staking.selfStake(op0), DEVIATION_BPS, PAYER_SHARE_BPS, REPORTER_SHARE_BPS
        );
        assertEq(amount, 3000e18, "20 % of 15,000");
        vm.prank(keeper);
        assertEq(slasher.executeDeviation(proposalId), amount, "slashed");

        assertEq(staking.slashableStake(op0), 12_000e18, "pool lost 20 %");
        assertEq(staking.slashedClaimable(payer2), toPayer, "the paid call's payer credited");
        assertEq(staking.slashedClaimable(reporter), toReporter, "the proposer credited");
        assertEq(staking.slashedClaimable(keeper), 0, "the executor gets nothing");
        assertEq(staking.slashedClaimable(payer), 0, "another payer of the batch gets nothing");
        assertEq(stk.balanceOf(BURN), burned, "rest burned");
        assertEq(staking.slashableStake(operators[1]), 20_000e18, "signer op1 untouched");
        assertEq(staking.slashableStake(operators[2]), 30_000e18, "signer op2 untouched");
        assertEq(_claimSlashed(payer2), toPayer, "payer claimed");
        assertEq(_claimSlashed(reporter), toReporter, "reporter claimed");
        _assertBooksBalance();
    }

    /// @dev A tolerant job on a paid batch (docs/design/tolerant-verification.md). op0 (not a signer) committed to an
    /// output the certificate contradicts: proposed with the committed bytes in calldata and slashed after the window
    /// against the real staking. op1 (a signer) committed to its own, slightly different output that agrees with the
    /// certified one: proposed too (the chain cannot tell), and the arbiter vetoes it.
    function test_EndToEnd_CommitmentDeviationOnPaidBatchCall() external {
        VouchProtocol.PaidResult memory e = entries[1]; // payer2's call
        uint256 callId = _paidCallId(serviceId, e.jobIndex, e.from, e.nonce);
        address op0 = operators[0];
        bytes memory far = hex"0000803f000000c0"; // [1.0, -2.0] as f32 LE
        VouchSlasher.SignedCommitment memory c0 =
            _commit(secretKeys[0], address(protocol), serviceId, callId, e.inputsHash, far);

        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, callId, IVouchProtocol.CallStatus.None)
        );
        slasher.proposeCommitmentDeviation(callId, op0, 0, c0, far);
        vm.prank(reporter);
        assertEq(slasher.provePaidCall(batchId, _proofOf(1)), callId, "proven");

        uint64 executableAt = uint64(block.timestamp) + DISPUTE_WINDOW;
        vm.expectEmit(address(slasher));
        emit VouchSlasher.CommitmentDeviationProposed(
            slasher.proposalIdOf(op0, callId), op0, callId, reporter, keccak256(far), e.resultHash, executableAt
        );
        vm.prank(reporter);
        uint256 proposalId = slasher.proposeCommitmentDeviation(callId, op0, 0, c0, far);
        uint256 vetoed = _proposeAndVetoCommitment(callId, e.inputsHash);

        vm.warp(executableAt);
        (uint256 amount, uint256 toPayer, uint256 toReporter, uint256 burned) = SystemMath.slash(
            staking.slashableStake(op0), staking.selfStake(op0), DEVIATION_BPS, PAYER_SHARE_BPS, REPORTER_SHARE_BPS
        );
        assertEq(amount, 3000e18, "20 % of 15,000");
        vm.prank(keeper);
        assertEq(slasher.executeDeviation(proposalId), amount, "slashed");
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, vetoed, VouchSlasher.ProposalStatus.Vetoed)
        );
        slasher.executeDeviation(vetoed);

        assertEq(staking.slashableStake(op0), 12_000e18, "pool lost 20 %");
        assertEq(staking.slashedClaimable(payer2), toPayer, "the paid call's payer credited");
        assertEq(staking.slashedClaimable(reporter), toReporter, "the proposer credited");
        assertEq(stk.balanceOf(BURN), burned, "rest burned");
        assertEq(staking.slashableStake(operators[1]), 20_000e18, "vetoed signer op1 untouched");
        _assertBooksBalance();
    }

    /// @dev op1 committed to `near` (1 ulp from [1.0, -2.0]); the reporter proposes it and the arbiter vetoes.
    function _proposeAndVetoCommitment(uint256 callId, bytes32 inputsHash) internal returns (uint256 vetoed) {
        bytes memory near = hex"0100803f000000c0";
        VouchSlasher.SignedCommitment memory c1 =
            _commit(secretKeys[1], address(protocol), serviceId, callId, inputsHash, near);
        vm.prank(reporter);
        vetoed = slasher.proposeCommitmentDeviation(callId, operators[1], 1, c1, near);
        vm.prank(arbiter);
        slasher.vetoDeviation(vetoed);
    }

    function test_EndToEnd_EquivocationOnPaidBatchCall_SlashedAtOnce() external {
        VouchProtocol.PaidResult memory e = entries[2]; // payer's second call
        uint256 callId = _paidCallId(serviceId, e.jobIndex, e.from, e.nonce);
        address op1 = operators[1];
        // op1 signed the batch (the certified result) and, alone, another result for the same call.
        VouchSlasher.SignedResult memory a =
            _batch(secretKeys[1], address(protocol), serviceId, _batchLeaves(entries), 2);
        VouchSlasher.SignedResult memory b =
            _single(secretKeys[1], address(protocol), serviceId, callId, e.inputsHash, WRONG_RESULT);

        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownCall.selector, callId));
        slasher.reportEquivocation(serviceId, callId, op1, 1, a, b);

        slasher.provePaidCall(batchId, _proofOf(2));
        (uint256 amount, uint256 toPayer, uint256 toReporter, uint256 burned) = SystemMath.slash(
            staking.slashableStake(op1), staking.selfStake(op1), EQUIVOCATION_BPS, PAYER_SHARE_BPS, REPORTER_SHARE_BPS
        );
        assertEq(amount, 10_000e18, "50 % of 20,000");
        vm.prank(reporter);
        assertEq(slasher.reportEquivocation(serviceId, callId, op1, 1, a, b), amount, "slashed");

        assertEq(staking.slashableStake(op1), 10_000e18, "pool halved");
        assertEq(staking.slashedClaimable(payer), toPayer, "the paid call's payer credited");
        assertEq(staking.slashedClaimable(reporter), toReporter, "reporter credited");
        assertEq(staking.slashedClaimable(payer2), 0, "another payer of the batch gets nothing");
        assertEq(stk.balanceOf(BURN), burned, "rest burned");
        assertEq(_claimSlashed(payer), toPayer, "payer claimed");
        assertEq(_claimSlashed(reporter), toReporter, "reporter claimed");

        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlreadyReported.selector, op1, callId, VouchSlasher.Fault.Equivocation)
        );
        slasher.reportEquivocation(serviceId, callId, op1, 1, b, a);
        _assertBooksBalance();
    }

    /// @dev x402 calls cannot be reported for a missed deadline, on the real contracts: neither a proven paid-batch
    /// call that op0 did not sign, nor an `openPaidCall` call nobody certified and that was refunded, even once their
    /// alibi windows are over. A `callJob` call refunded alongside is reportable.
    function test_EndToEnd_MissedDeadline_NotProvableForX402Calls() external {
        address op0 = operators[0];
        VouchProtocol.PaidResult memory e = entries[0];
        uint256 batchCall = slasher.provePaidCall(batchId, _proofOf(0));
        assertEq(batchCall, _paidCallId(serviceId, e.jobIndex, e.from, e.nonce), "proven");

        VouchProtocol.PaidCall memory p = _paidCall(payer2Key, serviceId, 1, keccak256("inputs nobody was given"));
        vm.prank(gateway);
        uint256 paidCall = protocol.openPaidCall(p);
        assertEq(paidCall, _paidCallId(serviceId, 1, payer2, p.nonce), "openPaidCall id");
        uint256 counterCall = _callJob(payer, 1, "a callJob call");
        IVouchProtocol.Call memory c = protocol.getCall(paidCall);
        vm.warp(uint256(c.deadline) + 1);
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (paidCall, counterCall);
        vm.prank(keeper);
        protocol.refundBatch(ids);
        assertTrue(protocol.getCall(paidCall).status == IVouchProtocol.CallStatus.Refunded, "refunded");
        vm.warp(uint256(c.deadline) + DISPUTE_WINDOW + 1); // every alibi window is over

        uint256 stake = staking.slashableStake(op0);
        for (uint256 slot; slot < SERVICE_SIZE; ++slot) {
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, batchCall));
            vm.prank(reporter);
            slasher.reportMissedDeadline(batchCall, operators[slot], slot);
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, paidCall));
            vm.prank(payer2); // the payer itself, who would take the payer share
            slasher.reportMissedDeadline(paidCall, operators[slot], slot);
        }
        assertEq(staking.slashableStake(op0), stake, "nothing slashed");
        assertEq(slasher.missesOf(op0, blueprintId).total, 0, "no miss counted");
        assertEq(staking.slashedClaimable(payer2), 0, "the payer gained nothing");

        vm.prank(reporter);
        assertGt(slasher.reportMissedDeadline(counterCall, op0, 0), 0, "the callJob call is reportable");
        assertEq(slasher.missesOf(op0, blueprintId).total, 1, "one miss");
        _assertBooksBalance();
    }
}
