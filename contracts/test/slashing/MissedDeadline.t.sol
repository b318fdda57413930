// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {MockVouchStaking} from "./Mocks.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @title MissedDeadlineTest
/// @notice `reportMissedDeadline`: an operator that did not sign a refunded call, or a settled call without its bit;
/// small penalty, miss counting and jailing.
contract MissedDeadlineTest is SlashingBase {
    /// @dev First id of the extra refunded calls made by `_refunded`.
    uint256 internal constant EXTRA_CALLS = 1000;

    // ---------------------------------------------------------------------------------------------------------------
    // Success
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Nobody certified a refunded call: every operator of the service missed it.
    function test_ReportMissedDeadline_RefundedCall_EveryOperator() external {
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
        VouchSlasher.MissRecord memory record = slasher.missesOf(op1);
        assertEq(record.sinceJail, 1, "since jail");
        assertEq(record.total, 1, "total");
        assertEq(record.jailedUntil, 0, "not jailed");
        assertTrue(slasher.isReported(op2, CALL_REFUNDED, VouchSlasher.Fault.MissedDeadline), "reported");
        assertEq(staking.jailCount(), 0, "no jail");
    }

    /// @dev Settled call with bitmap 0b011: op2 (slot 2) did not sign.
    function test_ReportMissedDeadline_SettledWithoutBit() external {
        slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(staking.slashCount(), 1, "slashed");
        assertEq(staking.slashAt(0).operator, op2, "op2");
        assertEq(slasher.missesOf(op2).total, 1, "counted");
    }

    /// @dev The third miss reaches `jailAfterMisses` = 3: jailed for 30 days, counter restarts.
    function test_ReportMissedDeadline_JailsAtLimit() external {
        _refunded(3);
        slasher.reportMissedDeadline(EXTRA_CALLS, op1, 1);
        vm.warp(START + 1 days);
        slasher.reportMissedDeadline(EXTRA_CALLS + 1, op1, 1);
        assertEq(staking.jailCount(), 0, "not yet");
        uint64 until = START + 2 days + 30 days;
        vm.warp(START + 2 days);
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
        VouchSlasher.MissRecord memory record = slasher.missesOf(op1);
        assertEq(record.sinceJail, 0, "restarted");
        assertEq(record.total, 3, "total");
        assertEq(record.jailedUntil, until, "jailedUntil");

        // The next miss counts again from zero.
        slasher.reportMissedDeadline(CALL_REFUNDED, op1, 1);
        assertEq(staking.jailCount(), 1, "not again");
        assertEq(slasher.missesOf(op1).sinceJail, 1, "one since jail");
    }

    function test_ReportMissedDeadline_NeverJailsWhenLimitIsZero() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.jailAfterMisses = 0;
        _setPolicy(policy);
        _refunded(5);
        for (uint64 i; i < 5; ++i) {
            slasher.reportMissedDeadline(EXTRA_CALLS + i, op0, 0);
        }
        assertEq(staking.jailCount(), 0, "never");
        assertEq(slasher.missesOf(op0).sinceJail, 5, "counted");
    }

    /// @dev A zero penalty still counts the miss and jails at the limit; no staking slash call is made.
    function test_ReportMissedDeadline_ZeroPenaltyStillCountsAndJails() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.missedDeadlineSlashBps = 0;
        policy.jailAfterMisses = 1;
        _setPolicy(policy);
        uint256 slashed = slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(slashed, 0, "nothing");
        assertEq(staking.slashCount(), 0, "no slash call");
        assertEq(staking.jailCount(), 1, "jailed");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reverts
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_ReportMissedDeadline_OperatorSigned() external {
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorSigned.selector, CALL_SETTLED, op0, 0));
        slasher.reportMissedDeadline(CALL_SETTLED, op0, 0);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorSigned.selector, CALL_SETTLED, op1, 1));
        slasher.reportMissedDeadline(CALL_SETTLED, op1, 1);
    }

    function test_RevertWhen_ReportMissedDeadline_CallNotFinal() external {
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
        vm.prank(REPORTER);
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.AlreadyReported.selector, op0, CALL_REFUNDED, VouchSlasher.Fault.MissedDeadline
            )
        );
        slasher.reportMissedDeadline(CALL_REFUNDED, op0, 0);
        assertEq(staking.slashCount(), 1, "one slash");
        assertEq(slasher.missesOf(op0).total, 1, "counted once");
    }

    function test_RevertWhen_ReportMissedDeadline_WrongSlot() external {
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
            vm.warp(START + i * 1 hours);
            slasher.reportMissedDeadline(EXTRA_CALLS + i, op2, 2);
        }
        assertEq(staking.jailCount(), misses / limit, "jailings");
        VouchSlasher.MissRecord memory record = slasher.missesOf(op2);
        assertEq(record.sinceJail, misses % limit, "since jail");
        assertEq(record.total, misses, "total");
        if (misses >= limit) {
            uint64 lastJail = START + uint64(misses - misses % limit - 1) * 1 hours;
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
        vm.prank(REPORTER);
        uint256 slashed = slasher.reportMissedDeadline(CALL_SETTLED, op2, 2);
        assertEq(slashed, amount, "slashed");
        if (amount != 0) _assertSlash(0, op2, amount, PAYER, toPayer, REPORTER, toReporter);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Refunded calls `EXTRA_CALLS .. EXTRA_CALLS + n - 1` of service 1.
    function _refunded(uint256 n) internal {
        for (uint256 i; i < n; ++i) {
            protocol.setCall(EXTRA_CALLS + i, _call(SERVICE, IVouchProtocol.CallStatus.Refunded, 0, 0));
        }
    }
}
