// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {IVouchStaking} from "../../src/interfaces/IVouchStaking.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @title EquivocationTest
/// @notice `reportEquivocation`: two real BLS signatures by one operator on different statements for one call.
contract EquivocationTest is SlashingBase {
    // ---------------------------------------------------------------------------------------------------------------
    // Success
    // ---------------------------------------------------------------------------------------------------------------

    function test_ReportEquivocation_DifferentResults_SlashesAndSplits() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        (uint256 amount, uint256 toPayer, uint256 toReporter) =
            _expected(STAKE, EQUIVOCATION_BPS, PAYER_BPS, REPORTER_BPS);
        assertEq(amount, STAKE / 2, "50 %");

        vm.expectEmit(address(slasher));
        emit VouchSlasher.EquivocationSlashed(
            op0,
            SERVICE,
            CALL_OPEN,
            REPORTER,
            keccak256(abi.encode(INPUTS, RESULT)),
            keccak256(abi.encode(INPUTS, WRONG)),
            amount,
            amount
        );
        vm.prank(REPORTER);
        uint256 slashed = slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);

        assertEq(slashed, amount, "returned");
        assertEq(staking.slashCount(), 1, "one slash");
        _assertSlash(0, op0, amount, PAYER, toPayer, REPORTER, toReporter);
        assertEq(staking.stakeOf(op0), STAKE - amount, "stake left");
        assertTrue(slasher.isReported(op0, CALL_OPEN, VouchSlasher.Fault.Equivocation), "reported");
        assertFalse(slasher.isReported(op0, CALL_OPEN, VouchSlasher.Fault.MissedDeadline), "other fault");
        assertFalse(slasher.isReported(op0, CALL_OPEN, VouchSlasher.Fault.Deviation), "deviation");
        assertFalse(slasher.isReported(op1, CALL_OPEN, VouchSlasher.Fault.Equivocation), "other operator");
        assertEq(staking.jailCount(), 0, "no jail");
    }

    /// @dev Signing two different inputs hashes for one call is equivocation too (documented decision).
    function test_ReportEquivocation_DifferentInputsSameResult() external {
        VouchSlasher.SignedResult memory a = _signed(sk1, CALL_SETTLED, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk1, CALL_SETTLED, keccak256("other inputs"), RESULT);
        vm.prank(REPORTER);
        slasher.reportEquivocation(SERVICE, CALL_SETTLED, op1, 1, a, b);
        assertEq(staking.slashCount(), 1, "slashed");
        assertEq(staking.slashAt(0).operator, op1, "op1");
    }

    function test_ReportEquivocation_SingleAgainstBatch() external {
        VouchSlasher.SignedResult memory a = _signed(sk2, CALL_REFUNDED, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b =
            _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_REFUNDED, WRONG), 1);
        vm.prank(REPORTER);
        slasher.reportEquivocation(SERVICE, CALL_REFUNDED, op2, 2, a, b);
        assertEq(staking.slashCount(), 1, "slashed");
        // And in the other order for another operator.
        a = _signed(sk0, CALL_REFUNDED, INPUTS, RESULT);
        b = _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_REFUNDED, WRONG), 1);
        slasher.reportEquivocation(SERVICE, CALL_REFUNDED, op0, 0, b, a);
        assertEq(staking.slashCount(), 2, "slashed twice");
    }

    /// @dev Two leaves of one signed batch about the same call: one signature, two proofs.
    function test_ReportEquivocation_TwoLeavesOfOneBatch() external {
        Leaf[] memory leaves = new Leaf[](5);
        leaves[0] = Leaf({callId: CALL_OPEN, inputsHash: INPUTS, resultHash: RESULT});
        leaves[1] = Leaf({callId: 1001, inputsHash: INPUTS, resultHash: RESULT});
        leaves[2] = Leaf({callId: 1002, inputsHash: INPUTS, resultHash: RESULT});
        leaves[3] = Leaf({callId: 1003, inputsHash: INPUTS, resultHash: RESULT});
        leaves[4] = Leaf({callId: CALL_OPEN, inputsHash: INPUTS, resultHash: WRONG}); // odd last leaf
        VouchSlasher.SignedResult memory a = _batch(sk0, address(protocol), SERVICE, leaves, 0);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, leaves, 4);
        assertEq(b.proof.length, 1, "odd last leaf: one sibling");
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        assertEq(staking.slashCount(), 1, "slashed");
    }

    /// @dev Two batches, one leaf each (root = leaf, empty proof).
    function test_ReportEquivocation_OneLeafBatches() external {
        Leaf[] memory one = new Leaf[](1);
        one[0] = Leaf({callId: CALL_OPEN, inputsHash: INPUTS, resultHash: RESULT});
        VouchSlasher.SignedResult memory a = _batch(sk0, address(protocol), SERVICE, one, 0);
        one[0].resultHash = WRONG;
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, one, 0);
        assertEq(a.proof.length, 0, "empty proof");
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        assertEq(staking.slashCount(), 1, "slashed");
    }

    /// @dev The same operator in another service at another slot.
    function test_ReportEquivocation_OtherServiceOtherSlot() external {
        VouchSlasher.SignedResult memory a =
            _single(sk0, address(protocol), OTHER_SERVICE, CALL_OTHER_SERVICE, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b =
            _single(sk0, address(protocol), OTHER_SERVICE, CALL_OTHER_SERVICE, INPUTS, WRONG);
        slasher.reportEquivocation(OTHER_SERVICE, CALL_OTHER_SERVICE, op0, 1, a, b);
        assertEq(staking.slashCount(), 1, "slashed");
    }

    /// @dev Equivocation and a missed deadline on the same call are different faults: both reportable.
    function test_ReportEquivocation_IndependentOfOtherFaults() external {
        vm.warp(START + 1 hours + DISPUTE_WINDOW + 1); // past the refunded call's alibi window
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        slasher.reportEquivocation(
            SERVICE,
            CALL_REFUNDED,
            op0,
            0,
            _signed(sk0, CALL_REFUNDED, INPUTS, RESULT),
            _signed(sk0, CALL_REFUNDED, INPUTS, WRONG)
        );
        assertEq(staking.slashCount(), 2, "two faults");
    }

    function test_ReportEquivocation_ZeroStake_RecordsWithoutSlashing() external {
        staking.setSlashableStake(op0, 0);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.EquivocationSlashed(
            op0,
            SERVICE,
            CALL_OPEN,
            address(this),
            keccak256(abi.encode(INPUTS, RESULT)),
            keccak256(abi.encode(INPUTS, WRONG)),
            0,
            0
        );
        uint256 slashed = slasher.reportEquivocation(
            SERVICE, CALL_OPEN, op0, 0, _signed(sk0, CALL_OPEN, INPUTS, RESULT), _signed(sk0, CALL_OPEN, INPUTS, WRONG)
        );
        assertEq(slashed, 0, "nothing");
        assertEq(staking.slashCount(), 0, "no staking call");
        assertTrue(slasher.isReported(op0, CALL_OPEN, VouchSlasher.Fault.Equivocation), "recorded");
    }

    /// @dev Policies above 100 % are clamped: everything is slashed, the reporter gets what the payer leaves.
    function test_ReportEquivocation_ClampsOversizedPolicy() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.equivocationSlashBps = 20_000;
        policy.payerShareBps = 8000;
        policy.reporterShareBps = 5000;
        _setPolicy(policy);
        slasher.reportEquivocation(
            SERVICE, CALL_OPEN, op0, 0, _signed(sk0, CALL_OPEN, INPUTS, RESULT), _signed(sk0, CALL_OPEN, INPUTS, WRONG)
        );
        _assertSlash(0, op0, STAKE, PAYER, STAKE * 8 / 10, address(this), STAKE * 2 / 10);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reverts
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_ReportEquivocation_SameResultTwice() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotConflicting.selector, CALL_OPEN, INPUTS, RESULT));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, a);
    }

    /// @dev The same statement signed alone and inside a batch is not equivocation.
    function test_RevertWhen_ReportEquivocation_SameStatementAloneAndInBatch() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_OPEN, RESULT), 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotConflicting.selector, CALL_OPEN, INPUTS, RESULT));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    /// @dev A signature by a key nobody registered (the reporter's own forgery).
    function test_RevertWhen_ReportEquivocation_ForgedSignature() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(0x1234567, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, WRONG))
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    /// @dev A valid signature on the first statement reused for the second.
    function test_RevertWhen_ReportEquivocation_SignatureOfAnotherStatement() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        b.resultHash = WRONG;
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, WRONG))
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    function test_RevertWhen_ReportEquivocation_TamperedSignature() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        a.signature[255] ^= 0x01;
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, RESULT)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    function test_RevertWhen_ReportEquivocation_MalformedSignature() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        b.signature = new bytes(256); // infinity
        bytes memory expected = abi.encodeWithSelector(
            VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, WRONG)
        );
        vm.expectRevert(expected);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        b.signature = hex"1234";
        vm.expectRevert(expected);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    /// @dev Both statements signed, but by op1 while op0 is accused (and at op0's slot).
    function test_RevertWhen_ReportEquivocation_SignatureByAnotherOperator() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk1, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, WRONG))
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        // Two operators' different results are a disagreement, not an equivocation, whoever is accused.
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op1, _resultDigest(CALL_OPEN, INPUTS, RESULT)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op1, 1, a, b);
    }

    function test_RevertWhen_ReportEquivocation_WrongSlot() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 1, op0, op1));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 1, a, b);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 3, op0, address(0)));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 3, a, b);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, type(uint256).max, op0, address(0))
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, type(uint256).max, a, b);
    }

    /// @dev An operator registered and equivocating, but not in the call's service.
    function test_RevertWhen_ReportEquivocation_OperatorNotInService() external {
        VouchSlasher.SignedResult memory a = _signed(skOutsider, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(skOutsider, CALL_OPEN, INPUTS, WRONG);
        for (uint256 slot; slot < 3; ++slot) {
            address atSlot = slot == 0 ? op0 : slot == 1 ? op1 : op2;
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, slot, outsider, atSlot));
            slasher.reportEquivocation(SERVICE, CALL_OPEN, outsider, slot, a, b);
        }
    }

    function test_RevertWhen_ReportEquivocation_CallOfAnotherService() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OTHER_SERVICE, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OTHER_SERVICE, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotInService.selector, CALL_OTHER_SERVICE, SERVICE, OTHER_SERVICE)
        );
        slasher.reportEquivocation(SERVICE, CALL_OTHER_SERVICE, op0, 0, a, b);
    }

    /// @dev Statements signed for service 2 presented for a call of service 1: the digests differ.
    function test_RevertWhen_ReportEquivocation_SignedForAnotherService() external {
        VouchSlasher.SignedResult memory a = _single(sk0, address(protocol), OTHER_SERVICE, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _single(sk0, address(protocol), OTHER_SERVICE, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, RESULT)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    /// @dev Signatures bound to another protocol deployment or another chain do not count here.
    function test_RevertWhen_ReportEquivocation_SignedForAnotherDeployment() external {
        VouchSlasher.SignedResult memory a = _single(sk0, address(0xCAFE), SERVICE, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _single(sk0, address(0xCAFE), SERVICE, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, RESULT)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);

        vm.chainId(1);
        a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        vm.chainId(31_337);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, RESULT)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    function test_RevertWhen_ReportEquivocation_UnknownCall() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, 99, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, 99, INPUTS, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownCall.selector, uint256(99)));
        slasher.reportEquivocation(SERVICE, 99, op0, 0, a, b);
    }

    function test_RevertWhen_ReportEquivocation_BadMerkleProof() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_OPEN, WRONG), 1);
        bytes32 leaf = VouchDigest.batchLeaf(CALL_OPEN, INPUTS, WRONG);

        // A tampered sibling.
        VouchSlasher.SignedResult memory tampered = _copy(b);
        tampered.proof[0] = bytes32(uint256(tampered.proof[0]) ^ 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidMerkleProof.selector, b.batchRoot, leaf));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, tampered);

        // No proof at all.
        tampered = _copy(b);
        tampered.proof = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidMerkleProof.selector, b.batchRoot, leaf));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, tampered);

        // The proof of another leaf of the batch.
        tampered = _copy(b);
        tampered.proof = _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_OPEN, WRONG), 0).proof;
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidMerkleProof.selector, b.batchRoot, leaf));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, tampered);

        // A claimed result that is not the batch's.
        tampered = _copy(b);
        tampered.resultHash = WRONG_2;
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidMerkleProof.selector, b.batchRoot, VouchDigest.batchLeaf(CALL_OPEN, INPUTS, WRONG_2)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, tampered);

        // A proof into the batch of another call id (the leaf binds the call id).
        VouchSlasher.SignedResult memory other =
            _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, WRONG), 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidMerkleProof.selector, other.batchRoot, leaf));
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, other);
    }

    /// @dev A valid proof under a root the operator signed with another count: the digest differs.
    function test_RevertWhen_ReportEquivocation_WrongBatchCount() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_OPEN, WRONG), 1);
        b.batchCount = 4;
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector,
                op0,
                VouchDigest.batchDigest(block.chainid, address(protocol), SERVICE, b.batchRoot, 4)
            )
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    /// @dev A batch-form signature presented as single form (and the reverse) does not verify.
    function test_RevertWhen_ReportEquivocation_FormSwapped() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _batch(sk0, address(protocol), SERVICE, _threeLeaves(CALL_OPEN, WRONG), 1);
        b.batchCount = 0;
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_OPEN, INPUTS, WRONG))
        );
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    function test_RevertWhen_ReportEquivocation_DoubleReport() external {
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        VouchSlasher.SignedResult memory c = _signed(sk0, CALL_OPEN, INPUTS, WRONG_2);
        vm.prank(REPORTER);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        bytes memory expected = abi.encodeWithSelector(
            VouchSlasher.AlreadyReported.selector, op0, CALL_OPEN, VouchSlasher.Fault.Equivocation
        );
        // The same evidence, swapped evidence, and a third statement: each pays nothing twice.
        vm.expectRevert(expected);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        vm.expectRevert(expected);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, b, a);
        vm.expectRevert(expected);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, c);
        assertEq(staking.slashCount(), 1, "one slash");
        // Another operator's equivocation on the same call is a separate report.
        slasher.reportEquivocation(
            SERVICE, CALL_OPEN, op1, 1, _signed(sk1, CALL_OPEN, INPUTS, RESULT), _signed(sk1, CALL_OPEN, INPUTS, WRONG)
        );
        assertEq(staking.slashCount(), 2, "second operator");
    }

    function test_RevertWhen_ReportEquivocation_OperatorWithoutKey() external {
        VouchSlasher.SignedResult memory a =
            _single(sk0, address(protocol), KEYLESS_SERVICE, CALL_KEYLESS, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b =
            _single(sk0, address(protocol), KEYLESS_SERVICE, CALL_KEYLESS, INPUTS, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorKeyNotRegistered.selector, KEYLESS));
        slasher.reportEquivocation(KEYLESS_SERVICE, CALL_KEYLESS, KEYLESS, 0, a, b);
    }

    /// @dev A staking contract that calls back into the slasher during `slash` hits the reentrancy guard.
    function test_RevertWhen_ReportEquivocation_Reentered() external {
        staking.setReenter(address(slasher), abi.encodeCall(VouchSlasher.reportMissedDeadline, (CALL_REFUNDED, op1, 1)));
        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
    }

    function test_RevertWhen_Constructor_ZeroAddress() external {
        vm.expectRevert(VouchSlasher.ZeroAddress.selector);
        new VouchSlasher(IVouchProtocol(address(0)), staking, registry);
        vm.expectRevert(VouchSlasher.ZeroAddress.selector);
        new VouchSlasher(protocol, IVouchStaking(address(0)), registry);
        vm.expectRevert(VouchSlasher.ZeroAddress.selector);
        new VouchSlasher(protocol, staking, KeyRegistry(address(0)));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Any stake and policy: the requested amount and split follow the formula, the shares never exceed it.
    function testFuzz_ReportEquivocation_Amounts(
        uint256 stake,
        uint16 bps,
        uint16 payerBps,
        uint16 reporterBps,
        address reporter
    ) external {
        vm.assume(reporter != address(0));
        stake = bound(stake, 1, 1e36);
        IVouchProtocol.Policy memory policy = _policy();
        policy.equivocationSlashBps = bps;
        policy.payerShareBps = payerBps;
        policy.reporterShareBps = reporterBps;
        _setPolicy(policy);
        staking.setSlashableStake(op0, stake);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(stake, bps, payerBps, reporterBps);

        VouchSlasher.SignedResult memory a = _signed(sk0, CALL_OPEN, INPUTS, RESULT);
        VouchSlasher.SignedResult memory b = _signed(sk0, CALL_OPEN, INPUTS, WRONG);
        vm.prank(reporter);
        uint256 slashed = slasher.reportEquivocation(SERVICE, CALL_OPEN, op0, 0, a, b);
        assertEq(slashed, amount, "slashed");
        if (amount == 0) {
            assertEq(staking.slashCount(), 0, "no call");
        } else {
            _assertSlash(0, op0, amount, PAYER, toPayer, reporter, toReporter);
            assertLe(toPayer + toReporter, amount, "shares within amount");
        }
        assertTrue(slasher.isReported(op0, CALL_OPEN, VouchSlasher.Fault.Equivocation), "reported");
    }

    /// @dev Any two different result hashes are an equivocation; identical ones are not.
    function testFuzz_ReportEquivocation_AnyResults(bytes32 r1, bytes32 r2) external {
        VouchSlasher.SignedResult memory a = _signed(sk2, CALL_OPEN, INPUTS, r1);
        VouchSlasher.SignedResult memory b = _signed(sk2, CALL_OPEN, INPUTS, r2);
        if (r1 == r2) {
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotConflicting.selector, CALL_OPEN, INPUTS, r1));
        }
        slasher.reportEquivocation(SERVICE, CALL_OPEN, op2, 2, a, b);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    function _copy(VouchSlasher.SignedResult memory s) internal pure returns (VouchSlasher.SignedResult memory c) {
        c = VouchSlasher.SignedResult({
            inputsHash: s.inputsHash,
            resultHash: s.resultHash,
            signature: bytes.concat(s.signature),
            batchRoot: s.batchRoot,
            batchCount: s.batchCount,
            proof: new bytes32[](s.proof.length)
        });
        for (uint256 i; i < s.proof.length; ++i) {
            c.proof[i] = s.proof[i];
        }
    }
}
