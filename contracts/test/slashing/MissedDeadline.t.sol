// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {Vm} from "../utils/Test.sol";
import {MockVouchStaking} from "./Mocks.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @title MissedDeadlineTest
/// @notice `reportMissedDeadline`: an operator that did not sign a refunded call, or a settled call without its bit;
/// small penalty, miss counting per blueprint and jailing. Reports wait for the blueprint's dispute window after the
/// settlement (or after the deadline of a refunded call), during which `presentAlibi` can show the operator's
/// signature on the call (an aggregator may leave an honest signer out of the bitmap).
/// @dev Fixture times (SlashingBase): every call's deadline is START + 1 hour, settled calls settled at
/// START + 10 minutes, and both blueprints' dispute window is `DISPUTE_WINDOW` (2 days).
contract MissedDeadlineTest is SlashingBase {
    /// @dev First id of the extra refunded calls made by `_refunded`.
    uint256 internal constant EXTRA_CALLS = 1000;
    /// @dev First id of the extra refunded calls of service 2 (blueprint 2) made by `_refundedIn`.
    uint256 internal constant EXTRA_CALLS_2 = 2000;
    /// @dev Last second of the alibi window of a fixture settled call (settlement + dispute window).
    uint256 internal constant SETTLED_ALIBI_UNTIL = START + 10 minutes + DISPUTE_WINDOW;
    /// @dev Last second of the alibi window of a fixture refunded call (deadline + dispute window).
    uint256 internal constant REFUNDED_ALIBI_UNTIL = START + 1 hours + DISPUTE_WINDOW;
    /// @dev First second from which every fixture call can be reported.
    uint64 internal constant REPORTS_FROM = START + 1 hours + DISPUTE_WINDOW + 1;

    bytes32 internal constant OTHER_INPUTS = keccak256("other inputs");

    // ---------------------------------------------------------------------------------------------------------------
    // Success
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Nobody certified a refunded call: every operator of the service missed it.
    function test_ReportMissedDeadline_RefundedCall_EveryOperator() external {
        vm.warp(REPORTS_FROM);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(STAKE, MISSED_BPS, PAYER_BPS, REPORTER_BPS);
        assertEq(amount, STAKE / 100, "1 %");
        vm.expectEmit(address(slasher));
        emit VouchSlasher.MissedDeadlineSlashed(op0, CALL_REFUNDED, REPORTER, amount, amount, 1, 1);
        vm.prank(REPORTER);
        uint256 slashed = slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(slashed, amount, "returned");
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op1, 1);
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op2, 2);

        assertEq(staking.slashCount(), 3, "three slashes");
        _assertSlash(0, op0, amount, PAYER, toPayer, REPORTER, toReporter);
        _assertSlash(1, op1, amount, PAYER, toPayer, REPORTER, toReporter);
        _assertSlash(2, op2, amount, PAYER, toPayer, REPORTER, toReporter);
        VouchSlasher.MissRecord memory record = slasher.missesOf(op1, BLUEPRINT);
        assertEq(record.sinceJail, 1, "since jail");
        assertEq(record.total, 1, "total");
        assertEq(record.jailedUntil, 0, "not jailed");
        assertTrue(slasher.isReported(op2, CALL_REFUNDED, VouchSlasher.Fault.MissedDeadline), "reported");
        assertEq(staking.jailCount(), 0, "no jail");
    }

    /// @dev Settled call with bitmap 0b011: op2 (slot 2) did not sign.
    function test_ReportMissedDeadline_SettledWithoutBit() external {
        vm.warp(REPORTS_FROM);
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 1, "slashed");
        assertEq(staking.slashAt(0).operator, op2, "op2");
        assertEq(slasher.missesOf(op2, BLUEPRINT).total, 1, "counted");
        assertEq(slasher.missesOf(op2, BLUEPRINT_NO_ARBITER).total, 0, "other blueprint untouched");
    }

    /// @dev The third miss reaches `jailAfterMisses` = 3: jailed for 30 days, counter restarts.
    function test_ReportMissedDeadline_JailsAtLimit() external {
        _refunded(3);
        vm.warp(REPORTS_FROM);
        slasher.reportMissedDeadline(EXTRA_CALLS, op1, 1);
        vm.warp(REPORTS_FROM + 1 days);
        slasher.reportMissedDeadline(EXTRA_CALLS + 1, op1, 1);
        assertEq(staking.jailCount(), 0, "not yet");
        uint64 until = REPORTS_FROM + 2 days + 30 days;
        vm.warp(REPORTS_FROM + 2 days);
        uint256 amount = staking.stakeOf(op1) / 100; // the stake left after two 1 % slashes
        vm.expectEmit(address(slasher));
        emit VouchSlasher.MissedDeadlineSlashed(op1, EXTRA_CALLS + 2, address(this), amount, amount, 0, 3);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.OperatorJailed(op1, EXTRA_CALLS + 2, 3, until);
        slasher.reportMissedDeadline(EXTRA_CALLS + 2, op1, 1);

        assertEq(staking.jailCount(), 1, "jailed");
        MockVouchStaking.JailRecord memory jail = staking.jailAt(0);
        assertEq(jail.operator, op1, "jail operator");
        assertEq(jail.until, until, "until now + 30 days");
        assertEq(slasher.JAIL_DURATION(), 30 days, "constant");
        VouchSlasher.MissRecord memory record = slasher.missesOf(op1, BLUEPRINT);
        assertEq(record.sinceJail, 0, "restarted");
        assertEq(record.total, 3, "total");
        assertEq(record.jailedUntil, until, "jailedUntil");

        // The next miss counts again from zero.
        slasher.reportMissedDeadline(CALL_REFUNDED, op1, 1);
        assertEq(staking.jailCount(), 1, "not again");
        assertEq(slasher.missesOf(op1, BLUEPRINT).sinceJail, 1, "one since jail");
    }

    function test_ReportMissedDeadline_NeverJailsWhenLimitIsZero() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.jailAfterMisses = 0;
        _setPolicy(policy);
        _refunded(5);
        vm.warp(REPORTS_FROM);
        for (uint64 i; i < 5; ++i) {
            slasher.reportMissedDeadline(EXTRA_CALLS + i, op0, 0);
        }
        assertEq(staking.jailCount(), 0, "never");
        assertEq(slasher.missesOf(op0, BLUEPRINT).sinceJail, 5, "counted");
    }

    /// @dev A zero penalty still counts the miss and jails at the limit; no staking slash call is made.
    function test_ReportMissedDeadline_ZeroPenaltyStillCountsAndJails() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.missedDeadlineSlashBps = 0;
        policy.jailAfterMisses = 1;
        _setPolicy(policy);
        vm.warp(REPORTS_FROM);
        uint256 slashed = slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(slashed, 0, "nothing");
        assertEq(staking.slashCount(), 0, "no slash call");
        assertEq(staking.jailCount(), 1, "jailed");
    }

    /// @dev op0 serves blueprint 1 (service 1, slot 0, jails after 3) and blueprint 2 (service 2, slot 1, jails after
    /// 2). Each limit counts only its own blueprint's misses: three misses in all (two in blueprint 1, one in
    /// blueprint 2) jail nobody, although a shared counter would have reached both limits.
    function test_ReportMissedDeadline_CountsMissesPerBlueprint() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.jailAfterMisses = 2;
        protocol.setBlueprint(BLUEPRINT_NO_ARBITER, _blueprint(address(0), policy));
        _refunded(3);
        _refundedIn(OTHER_SERVICE, EXTRA_CALLS_2, 2);
        vm.warp(REPORTS_FROM);

        slasher.reportMissedDeadline(EXTRA_CALLS, op0, 0);
        slasher.reportMissedDeadline(EXTRA_CALLS + 1, op0, 0);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.MissedDeadlineSlashed(
            op0, EXTRA_CALLS_2, address(this), staking.stakeOf(op0) / 100, staking.stakeOf(op0) / 100, 1, 1
        );
        slasher.reportMissedDeadline(EXTRA_CALLS_2, op0, 1);
        assertEq(staking.jailCount(), 0, "three misses in two blueprints: below both limits");
        _assertMisses(op0, BLUEPRINT, 2, 2, 0);
        _assertMisses(op0, BLUEPRINT_NO_ARBITER, 1, 1, 0);

        // The second miss in blueprint 2 reaches its limit of 2; blueprint 1's count is untouched.
        vm.warp(REPORTS_FROM + 1 days);
        uint64 until2 = REPORTS_FROM + 1 days + 30 days;
        vm.expectEmit(address(slasher));
        emit VouchSlasher.OperatorJailed(op0, EXTRA_CALLS_2 + 1, 2, until2);
        slasher.reportMissedDeadline(EXTRA_CALLS_2 + 1, op0, 1);
        assertEq(staking.jailCount(), 1, "jailed by blueprint 2");
        _assertMisses(op0, BLUEPRINT_NO_ARBITER, 0, 2, until2);
        _assertMisses(op0, BLUEPRINT, 2, 2, 0);

        // The third miss in blueprint 1 reaches its limit of 3.
        vm.warp(REPORTS_FROM + 2 days);
        uint64 until1 = REPORTS_FROM + 2 days + 30 days;
        vm.expectEmit(address(slasher));
        emit VouchSlasher.OperatorJailed(op0, EXTRA_CALLS + 2, 3, until1);
        slasher.reportMissedDeadline(EXTRA_CALLS + 2, op0, 0);
        assertEq(staking.jailCount(), 2, "jailed by blueprint 1");
        assertEq(staking.jailAt(1).until, until1, "second term");
        _assertMisses(op0, BLUEPRINT, 0, 3, until1);
        _assertMisses(op0, BLUEPRINT_NO_ARBITER, 0, 2, until2);
        _assertMisses(op0, 3, 0, 0, 0); // a blueprint op0 never missed
        _assertMisses(op1, BLUEPRINT, 0, 0, 0);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Alibis
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev op2 signed the certified result of the settled call, but the aggregator left its bit (slot 2) out of the
    /// bitmap 0b011. Anyone holding its single-form signature shows it; the report then fails.
    function test_PresentAlibi_SettledCall_SingleForm() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, RESULT);
        assertFalse(slasher.hasAlibi(op2, CALL_SETTLED), "no alibi yet");
        vm.expectEmit(address(slasher));
        emit VouchSlasher.AlibiPresented(op2, CALL_SETTLED, REPORTER);
        vm.prank(REPORTER);
        slasher.presentAlibi(CALL_SETTLED, op2, 2, s);

        assertTrue(slasher.hasAlibi(op2, CALL_SETTLED), "alibi");
        assertFalse(slasher.hasAlibi(op2, CALL_REFUNDED), "for this call only");
        assertFalse(slasher.hasAlibi(op1, CALL_SETTLED), "for this operator only");
        assertFalse(slasher.isReported(op2, CALL_SETTLED, VouchSlasher.Fault.MissedDeadline), "not a fault");

        vm.warp(REPORTS_FROM);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorHasAlibi.selector, op2, CALL_SETTLED));
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 0, "not slashed");
        _assertMisses(op2, BLUEPRINT, 0, 0, 0);
    }

    /// @dev Same, with op2's signature on a batch (digest of three calls) and the Merkle proof of the call's leaf; the
    /// operator presents it itself.
    function test_PresentAlibi_SettledCall_BatchForm() external {
        VouchSlasher.SignedResult memory s =
            _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, RESULT), 1);
        assertEq(s.proof.length, 2, "two-node proof");
        vm.expectEmit(address(slasher));
        emit VouchSlasher.AlibiPresented(op2, CALL_SETTLED, op2);
        vm.prank(op2);
        slasher.presentAlibi(CALL_SETTLED, op2, 2, s);
        assertTrue(slasher.hasAlibi(op2, CALL_SETTLED), "alibi");

        vm.warp(REPORTS_FROM);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorHasAlibi.selector, op2, CALL_SETTLED));
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 0, "not slashed");
    }

    /// @dev An alibi shown while the call is open (any result: nothing is certified yet) still holds once the call is
    /// refunded; the operators without one are reported as before.
    function test_PresentAlibi_OpenCallLaterRefunded() external {
        vm.expectEmit(address(slasher));
        emit VouchSlasher.AlibiPresented(op1, CALL_OPEN, address(this));
        slasher.presentAlibi(CALL_OPEN, op1, 1, _signed(sk1, CALL_OPEN, INPUTS, WRONG));
        assertTrue(slasher.hasAlibi(op1, CALL_OPEN), "alibi");

        protocol.setCall(CALL_OPEN, _call(SERVICE, IVouchProtocol.CallStatus.Refunded, 0, 0));
        vm.warp(REPORTS_FROM);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorHasAlibi.selector, op1, CALL_OPEN));
        slasher.reportMissedDeadline(CALL_OPEN, op1, 1);
        slasher.reportMissedDeadline(CALL_OPEN, op0, 0);
        slasher.reportMissedDeadline(CALL_OPEN, op2, 2);
        assertEq(staking.slashCount(), 2, "op0 and op2 only");
        assertEq(staking.slashAt(0).operator, op0, "op0");
        assertEq(staking.slashAt(1).operator, op2, "op2");
    }

    /// @dev A second presentation (same evidence, or the batch form of the same statement) changes nothing and emits
    /// nothing.
    function test_PresentAlibi_Twice_IsNoOp() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, RESULT);
        slasher.presentAlibi(CALL_SETTLED, op2, 2, s);
        vm.recordLogs();
        vm.prank(REPORTER);
        slasher.presentAlibi(CALL_SETTLED, op2, 2, s);
        slasher.presentAlibi(
            CALL_SETTLED, op2, 2, _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, RESULT), 1)
        );
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 0, "no event");
        assertTrue(slasher.hasAlibi(op2, CALL_SETTLED), "still an alibi");
        assertFalse(slasher.isReported(op2, CALL_SETTLED, VouchSlasher.Fault.MissedDeadline), "no fault");
    }

    /// @dev op0 shows an alibi for the refunded call (within the window); op1 and op2, without one, are still reported.
    function test_RevertWhen_ReportMissedDeadline_OperatorHasAlibi() external {
        vm.warp(REFUNDED_ALIBI_UNTIL); // last second of the window
        slasher.presentAlibi(CALL_REFUNDED, op0, 0, _signed(sk0, CALL_REFUNDED, INPUTS, RESULT));

        vm.warp(REPORTS_FROM);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorHasAlibi.selector, op0, CALL_REFUNDED));
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op1, 1);
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op2, 2);

        assertEq(staking.slashCount(), 2, "two slashes");
        assertEq(staking.slashAt(0).operator, op1, "op1");
        assertEq(staking.slashAt(1).operator, op2, "op2");
        assertFalse(slasher.isReported(op0, CALL_REFUNDED, VouchSlasher.Fault.MissedDeadline), "op0 not reported");
        _assertMisses(op0, BLUEPRINT, 0, 0, 0);
        _assertMisses(op1, BLUEPRINT, 1, 1, 0);
        // The alibi is for this call only: op0 (slot 1 of service 2) is still reported for missing call 20.
        assertFalse(slasher.hasAlibi(op0, CALL_OTHER_SERVICE), "no alibi for call 20");
        slasher.reportMissedDeadline(CALL_OTHER_SERVICE, op0, 1);
        assertEq(staking.slashCount(), 3, "op0 reported for call 20");
        _assertMisses(op0, BLUEPRINT_NO_ARBITER, 1, 1, 0);
    }

    function test_RevertWhen_PresentAlibi_UnknownCall() external {
        VouchSlasher.SignedResult memory s = _signed(sk0, 99, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.UnknownCall.selector, uint256(99)));
        slasher.presentAlibi(99, op0, 0, s);
    }

    /// @dev A signature on other inputs is no alibi (settled, open or refunded call).
    function test_RevertWhen_PresentAlibi_InputsMismatch() external {
        uint256[3] memory calls = [CALL_SETTLED, CALL_OPEN, CALL_REFUNDED];
        for (uint256 i; i < calls.length; ++i) {
            VouchSlasher.SignedResult memory s = _signed(sk2, calls[i], OTHER_INPUTS, RESULT);
            vm.expectRevert(
                abi.encodeWithSelector(VouchSlasher.InputsMismatch.selector, calls[i], INPUTS, OTHER_INPUTS)
            );
            slasher.presentAlibi(calls[i], op2, 2, s);
        }
    }

    /// @dev On a settled call, a signature on another result is no alibi, but the same signature is deviation
    /// evidence; and op2 can still be reported for the missed call.
    function test_RevertWhen_PresentAlibi_AlibiResultMismatch() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.AlibiResultMismatch.selector, CALL_SETTLED, RESULT, WRONG));
        slasher.presentAlibi(CALL_SETTLED, op2, 2, s);
        VouchSlasher.SignedResult memory b =
            _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, WRONG), 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.AlibiResultMismatch.selector, CALL_SETTLED, RESULT, WRONG));
        slasher.presentAlibi(CALL_SETTLED, op2, 2, b);
        assertFalse(slasher.hasAlibi(op2, CALL_SETTLED), "no alibi");

        uint256 proposalId = slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        VouchSlasher.DeviationProposal memory proposal = slasher.getProposal(proposalId);
        assertEq(uint256(proposal.status), uint256(VouchSlasher.ProposalStatus.Pending), "deviation proposed");
        assertEq(proposal.operator, op2, "deviating operator");

        vm.warp(REPORTS_FROM);
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 1, "missed deadline slashed");
    }

    function test_RevertWhen_PresentAlibi_WrongSlot() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 0, op2, op0));
        slasher.presentAlibi(CALL_SETTLED, op2, 0, s);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 5, op2, address(0)));
        slasher.presentAlibi(CALL_SETTLED, op2, 5, s);
        // op3 is not in the call's service.
        VouchSlasher.SignedResult memory s3 = _signed(sk3, CALL_SETTLED, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 2, op3, op2));
        slasher.presentAlibi(CALL_SETTLED, op3, 2, s3);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 3, address(0), address(0)));
        slasher.presentAlibi(CALL_SETTLED, address(0), 3, s);
        assertFalse(slasher.hasAlibi(op2, CALL_SETTLED), "no alibi");
    }

    /// @dev Another operator's signature, or op2's signature on another call (same inputs and result), is no alibi.
    function test_RevertWhen_PresentAlibi_InvalidSignature() external {
        bytes32 digest = _resultDigest(CALL_SETTLED, INPUTS, RESULT);
        VouchSlasher.SignedResult memory byOp1 = _signed(sk1, CALL_SETTLED, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidSignature.selector, op2, digest));
        slasher.presentAlibi(CALL_SETTLED, op2, 2, byOp1);

        VouchSlasher.SignedResult memory otherCall = _signed(sk2, CALL_OPEN, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InvalidSignature.selector, op2, digest));
        slasher.presentAlibi(CALL_SETTLED, op2, 2, otherCall);

        // Batch form signed by another operator.
        VouchSlasher.SignedResult memory batchByOp1 =
            _batch(sk1, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, RESULT), 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, slasher.evidenceDigest(SERVICE, CALL_SETTLED, batchByOp1)
            )
        );
        slasher.presentAlibi(CALL_SETTLED, op2, 2, batchByOp1);
        assertFalse(slasher.hasAlibi(op2, CALL_SETTLED), "no alibi");
    }

    /// @dev A batch whose proof does not place the call's leaf under the signed root, and an operator without a key.
    function test_RevertWhen_PresentAlibi_BadProofOrNoKey() external {
        VouchSlasher.SignedResult memory s =
            _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, RESULT), 1);
        s.proof[0] = keccak256("not a sibling");
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidMerkleProof.selector,
                s.batchRoot,
                _leafHashes(_threeLeaves(CALL_SETTLED, RESULT))[1]
            )
        );
        slasher.presentAlibi(CALL_SETTLED, op2, 2, s);

        VouchSlasher.SignedResult memory k = _single(sk0, address(protocol), KEYLESS_SERVICE, CALL_KEYLESS, INPUTS, 0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorKeyNotRegistered.selector, KEYLESS));
        slasher.presentAlibi(CALL_KEYLESS, KEYLESS, 0, k);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reverts
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Reports wait for the alibi window: settlement + dispute window for a settled call (not deadline + window),
    /// deadline + dispute window for a refunded one. At its last second a report still reverts; one second later it
    /// succeeds.
    function test_RevertWhen_ReportMissedDeadline_AlibiWindowOpen() external {
        // Settled call (settled at START + 10 minutes, deadline START + 1 hour).
        vm.warp(START + 10 minutes);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, CALL_SETTLED, SETTLED_ALIBI_UNTIL)
        );
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        vm.warp(SETTLED_ALIBI_UNTIL);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, CALL_SETTLED, SETTLED_ALIBI_UNTIL)
        );
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        vm.warp(SETTLED_ALIBI_UNTIL + 1);
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 1, "settled call reported");

        // Refunded call (deadline START + 1 hour): still in its window when the settled call's has ended.
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, CALL_REFUNDED, REFUNDED_ALIBI_UNTIL)
        );
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        vm.warp(REFUNDED_ALIBI_UNTIL);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, CALL_REFUNDED, REFUNDED_ALIBI_UNTIL)
        );
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        vm.warp(REFUNDED_ALIBI_UNTIL + 1);
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(staking.slashCount(), 2, "refunded call reported");
        _assertMisses(op0, BLUEPRINT, 1, 1, 0);
    }

    function test_RevertWhen_ReportMissedDeadline_OperatorSigned() external {
        vm.warp(REPORTS_FROM);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorSigned.selector, CALL_SETTLED, op0, 0));
        slasher.reportMissedDeadline(CALL_SETTLED, op0, 0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorSigned.selector, CALL_SETTLED, op1, 1));
        slasher.reportMissedDeadline(CALL_SETTLED, op1, 1);
    }

    /// @dev A tolerant or checked job's operators sign only what an aggregator proposes: a refunded call of one (opened
    /// with `callJob`, which no operator can sign alone) must not let anyone slash them all.
    function test_RevertWhen_ReportMissedDeadline_NotAnExactJob() external {
        // Blueprint 9 (service 9, the same three operators): job 0 exact, job 1 tolerant, job 2 checked.
        IVouchProtocol.Verification[2] memory modes =
            [IVouchProtocol.Verification.Tolerant, IVouchProtocol.Verification.Checked];
        IVouchProtocol.Blueprint memory b = _blueprint(ARBITER, _policy());
        b.jobs = new IVouchProtocol.Job[](3);
        for (uint256 j; j < 3; ++j) {
            b.jobs[j] =
                IVouchProtocol.Job({price: 1e6, deadline: 1 hours, verification: IVouchProtocol.Verification(j)});
        }
        protocol.setBlueprint(9, b);
        protocol.setService(9, _service(9, _three(op0, op1, op2)));
        for (uint8 job = 1; job <= 2; ++job) {
            uint256 callId = 40 + job;
            IVouchProtocol.Call memory c = _call(9, IVouchProtocol.CallStatus.Refunded, 0, 0);
            c.jobIndex = job;
            protocol.setCall(callId, c);
            vm.warp(REPORTS_FROM);
            for (uint256 slot; slot < 3; ++slot) {
                vm.expectRevert(
                    abi.encodeWithSelector(VouchSlasher.MissNotProvableForJob.selector, callId, modes[job - 1])
                );
                vm.prank(REPORTER);
                slasher.reportMissedDeadline(callId, [op0, op1, op2][slot], slot);
            }
        }
        assertEq(staking.slashCount(), 0, "nothing slashed");
        // The same refunded call of the exact job is a miss.
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(staking.slashCount(), 1, "the exact job's miss is slashed");
    }

    function test_RevertWhen_ReportMissedDeadline_CallNotFinal() external {
        vm.warp(REPORTS_FROM);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotFinal.selector, CALL_OPEN, IVouchProtocol.CallStatus.Open)
        );
        slasher.reportMissedDeadline(CALL_OPEN, op0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotFinal.selector, uint256(99), IVouchProtocol.CallStatus.None)
        );
        slasher.reportMissedDeadline(99, op0, 0);
    }

    function test_RevertWhen_ReportMissedDeadline_DoubleReport() external {
        vm.warp(REPORTS_FROM);
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.AlreadyReported.selector, op0, CALL_REFUNDED, VouchSlasher.Fault.MissedDeadline
            )
        );
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(staking.slashCount(), 1, "one slash");
        assertEq(slasher.missesOf(op0, BLUEPRINT).total, 1, "counted once");
    }

    function test_RevertWhen_ReportMissedDeadline_WrongSlot() external {
        vm.warp(REPORTS_FROM);
        // op2 did not sign the settled call, but is at slot 2, not 0 (whose bit is set) nor 1.
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 0, op2, op0));
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 5, op2, address(0)));
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 5);
        // op3 is not in the call's service.
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 2, op3, op2));
        slasher.reportMissedDeadline(CALL_REFUNDED, op3, 2);
        // Nor is the zero address, even at an empty slot.
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 3, address(0), address(0)));
        slasher.reportMissedDeadline(CALL_REFUNDED, address(0), 3);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev With limit L > 0, n misses jail exactly floor(n / L) times and leave n mod L since the last jailing.
    function testFuzz_ReportMissedDeadline_JailsEveryLimit(uint8 limit, uint8 misses) external {
        limit = uint8(bound(limit, 1, 6));
        misses = uint8(bound(misses, 0, 20));
        IVouchProtocol.Policy memory policy = _policy();
        policy.jailAfterMisses = limit;
        _setPolicy(policy);
        _refunded(misses);
        for (uint64 i; i < misses; ++i) {
            vm.warp(REPORTS_FROM + i * 1 hours);
            slasher.reportMissedDeadline(EXTRA_CALLS + i, op2, 2);
        }
        assertEq(staking.jailCount(), misses / limit, "jailings");
        VouchSlasher.MissRecord memory record = slasher.missesOf(op2, BLUEPRINT);
        assertEq(record.sinceJail, misses % limit, "since jail");
        assertEq(record.total, misses, "total");
        if (misses >= limit) {
            uint64 lastJail = REPORTS_FROM + uint64(misses - misses % limit - 1) * 1 hours;
            assertEq(record.jailedUntil, lastJail + 30 days, "last jailing");
        }
    }

    /// @dev Any stake and policy: amount and split follow the formula.
    function testFuzz_ReportMissedDeadline_Amounts(uint256 stake, uint16 bps, uint16 payerBps, uint16 reporterBps)
        external
    {
        stake = bound(stake, 0, 1e36);
        IVouchProtocol.Policy memory policy = _policy();
        policy.missedDeadlineSlashBps = bps;
        policy.payerShareBps = payerBps;
        policy.reporterShareBps = reporterBps;
        _setPolicy(policy);
        staking.setSlashableStake(op2, stake);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(stake, bps, payerBps, reporterBps);
        vm.warp(REPORTS_FROM);
        vm.prank(REPORTER);
        uint256 slashed = slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(slashed, amount, "slashed");
        if (amount != 0) _assertSlash(0, op2, amount, PAYER, toPayer, REPORTER, toReporter);
    }

    /// @dev Any dispute window and any time within 3 days of the window's end: a report reverts `AlibiWindowOpen` up
    /// to `alibiUntil` (settlement or, for a refunded call, deadline + window) included, and succeeds after it.
    function testFuzz_ReportMissedDeadline_AlibiWindow(bool settled, uint32 window, uint256 offset) external {
        window = uint32(bound(window, 0, 30 days));
        IVouchProtocol.Policy memory policy = _policy();
        policy.disputeWindow = window;
        _setPolicy(policy);
        (uint256 callId, address op, uint256 slot) = (CALL_REFUNDED, op0, 0);
        if (settled) (callId, op, slot) = (CALL_SETTLED, op2, 2); // op2 is not in the settled call's bitmap
        uint256 alibiUntil = (settled ? START + 10 minutes : START + 1 hours) + uint256(window);
        uint256 t = alibiUntil - 3 days + bound(offset, 0, 6 days);
        vm.warp(t);
        if (t <= alibiUntil) {
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, callId, alibiUntil));
            slasher.reportMissedDeadline(callId, op, slot);
            assertFalse(slasher.isReported(op, callId, VouchSlasher.Fault.MissedDeadline), "not reported");
            assertEq(staking.slashCount(), 0, "not slashed");
        } else {
            slasher.reportMissedDeadline(callId, op, slot);
            assertTrue(slasher.isReported(op, callId, VouchSlasher.Fault.MissedDeadline), "reported");
            assertEq(staking.slashCount(), 1, "slashed");
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Refunded calls `EXTRA_CALLS .. EXTRA_CALLS + n - 1` of service 1.
    function _refunded(uint256 n) internal {
        _refundedIn(SERVICE, EXTRA_CALLS, n);
    }

    /// @dev Refunded calls `firstId .. firstId + n - 1` of `serviceId`.
    function _refundedIn(uint64 serviceId, uint256 firstId, uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            protocol.setCall(firstId + i, _call(serviceId, IVouchProtocol.CallStatus.Refunded, 0, 0));
        }
    }

    /// @dev Asserts the miss record of `operator` in `blueprintId`.
    function _assertMisses(address operator, uint64 blueprintId, uint32 sinceJail, uint32 total, uint64 jailedUntil)
        internal
        view
    {
        VouchSlasher.MissRecord memory record = slasher.missesOf(operator, blueprintId);
        assertEq(record.sinceJail, sinceJail, "misses since jail");
        assertEq(record.total, total, "total misses");
        assertEq(record.jailedUntil, jailedUntil, "jailed until");
    }
}
