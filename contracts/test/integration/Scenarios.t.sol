// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchProtocolEvents} from "../../src/protocol/VouchProtocolEvents.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {SystemBase, SystemMath} from "./SystemBase.sol";

/// @title ScenariosTest
/// @notice End-to-end scenarios on the real system (tokens, KeyRegistry, VouchStaking, VouchProtocol, VouchSlasher):
/// every balance is checked to the unit against docs/protocol.md.
contract ScenariosTest is SystemBase {
    bytes32 internal constant RESULT = keccak256("the honest result");
    bytes32 internal constant WRONG = keccak256("a different result");

    // ---------------------------------------------------------------------------------------------------------------
    // a. x402 paid call, three signers, every party claims its exact share
    // ---------------------------------------------------------------------------------------------------------------

    function test_A_PaidCall_ThreeSigners_EveryPartyClaimsItsExactShare() external {
        // The gateway submits the payer's EIP-3009 authorization (signed the standard EIP-712 way).
        assertEq(_usdDomainSeparator(), usd.DOMAIN_SEPARATOR(), "standard EIP-712 domain");
        VouchProtocol.PaidCall memory p = _paidCall(payerKey, serviceId, 0, keccak256("summarise ipfs://doc"));
        uint64 countBefore = protocol.callCount();
        vm.prank(gateway);
        uint256 callId = protocol.openPaidCall(p);

        assertEq(
            callId, _paidCallId(serviceId, 0, payer, p.nonce), "call id derived from (serviceId, jobIndex, from, nonce)"
        );
        assertEq(protocol.callCount(), countBefore, "x402 calls take no counter id");
        assertEq(usd.balanceOf(payer), PAYER_FUNDS - PRICE0, "payer paid exactly the price");
        assertEq(usd.balanceOf(address(protocol)), PRICE0, "escrowed");
        assertEq(usd.balanceOf(gateway), 0, "gateway paid nothing");
        assertTrue(usd.authorizationState(payer, p.nonce), "authorization used");
        assertEq(
            protocol.paidCallId(serviceId, 0, payer, p.nonce),
            callId,
            "id derived from (serviceId, jobIndex, from, nonce)"
        );
        IVouchProtocol.Call memory c = protocol.getCall(callId);
        assertTrue(c.status == IVouchProtocol.CallStatus.Open, "open");
        assertEq(c.payer, payer, "payer");
        assertEq(c.payment, PRICE0, "payment");
        assertEq(c.inputsHash, p.inputsHash, "inputs hash");
        assertEq(c.deadline, START + DEADLINE0, "deadline");

        // One authorization opens one call.
        vm.prank(gateway);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.PaidCallAlreadyOpened.selector, payer, p.nonce, callId)
        );
        protocol.openPaidCall(p);

        // All three operators sign; a third party submits the certificate.
        bytes memory sig = _certify(callId, RESULT, ALL_SIGNERS);
        vm.prank(keeper);
        protocol.settle(callId, RESULT, ALL_SIGNERS, sig);
        c = protocol.getCall(callId);
        assertTrue(c.status == IVouchProtocol.CallStatus.Settled, "settled");
        assertEq(c.resultHash, RESULT, "result");
        assertEq(c.signerBitmap, ALL_SIGNERS, "bitmap");
        assertEq(c.settledAt, block.timestamp, "settledAt");

        // The split, by hand: rest = 1,000,000 − 100,000 − 50,000 = 850,000 over stakes 15k/20k/30k (of 65k):
        // shares 196,153 / 261,538 / 392,307 (dust 2); commissions 10 % / 5 % / 20 %.
        SystemMath.Split memory e = _expectedSplit(PRICE0, ALL_SIGNERS);
        assertEq(e.developerFee, 100_000, "developer fee");
        assertEq(e.protocolFee, 50_000, "protocol fee");
        assertEq(e.dust, 2, "dust");
        assertEq(e.commissions[0], 19_615, "commission 0");
        assertEq(e.rewards[0], 176_538, "delegators 0");
        assertEq(e.commissions[1], 13_076, "commission 1");
        assertEq(e.rewards[1], 248_462, "delegators 1");
        assertEq(e.commissions[2], 78_461, "commission 2");
        assertEq(e.rewards[2], 313_846, "delegators 2");
        assertEq(SystemMath.total(e), PRICE0, "split sums to the price");

        assertEq(protocol.claimable(developer), 100_000, "developer claimable");
        assertEq(protocol.claimable(treasury), 50_002, "treasury claimable (fee + dust)");
        for (uint256 i; i < SERVICE_SIZE; ++i) {
            assertEq(protocol.claimable(operators[i]), e.commissions[i], "commission claimable");
        }
        assertEq(protocol.claimable(payer), 0, "payer owed nothing");
        assertEq(staking.rewardReserve(), 176_538 + 248_462 + 313_846, "delegators' part sent to staking");
        _assertBooksBalance();

        // Pool 0 (10,000 self + 5,000 delegated): 176,538 × 2/3 and × 1/3, exactly.
        assertEq(staking.pendingRewards(operators[0], operators[0]), 117_692, "op0 own rewards");
        assertEq(staking.pendingRewards(operators[0], delegator), 58_846, "external delegator rewards");
        assertEq(staking.pendingRewards(operators[1], operators[1]), 248_462, "op1 rewards");
        // Pool 2: 313,846 over 3e25 shares leaves a sub-unit remainder; only whole units are paid.
        assertEq(staking.pendingRewards(operators[2], operators[2]), 313_845, "op2 rewards (whole units)");

        // Everyone claims.
        assertEq(_claim(developer), 100_000, "developer claimed");
        assertEq(_claim(treasury), 50_002, "treasury claimed");
        uint256 received = 100_000 + 50_002;
        for (uint256 i; i < SERVICE_SIZE; ++i) {
            received += _claim(operators[i]);
        }
        assertEq(_claimRewards(operators[0], operators[0]), 117_692, "op0 rewards claimed");
        assertEq(_claimRewards(delegator, operators[0]), 58_846, "delegator rewards claimed");
        assertEq(_claimRewards(operators[1], operators[1]), 248_462, "op1 rewards claimed");
        assertEq(_claimRewards(operators[2], operators[2]), 313_845, "op2 rewards claimed");
        received += 117_692 + 58_846 + 248_462 + 313_845;
        assertEq(usd.balanceOf(operators[0]), 19_615 + 117_692, "op0 total");
        assertEq(usd.balanceOf(operators[1]), 13_076 + 248_462, "op1 total");
        assertEq(usd.balanceOf(operators[2]), 78_461 + 313_845, "op2 total");
        assertEq(usd.balanceOf(delegator), 58_846, "delegator total");

        // The price is fully accounted for: 999,999 paid out, 1 unit owed by pool 2 (op2's sub-unit remainder plus the
        // pool's dust are exactly one unit in scaled terms).
        assertEq(received + staking.rewardReserve(), PRICE0, "claims + reserve = price");
        assertEq(staking.rewardReserve(), 1, "one unit still owed");
        assertEq(
            staking.pendingRewardsScaled(operators[2], operators[2]) + staking.poolInfo(operators[2]).rewardDustScaled,
            PRECISION,
            "the unit is op2's remainder plus pool dust"
        );
        assertEq(usd.balanceOf(address(protocol)), 0, "protocol empty");
        assertEq(protocol.accounted(), 0, "nothing accounted");
        _assertBooksBalance();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // b. equivocation reported by a third party
    // ---------------------------------------------------------------------------------------------------------------

    function test_B_Equivocation_SlashedByThirdParty_PayerAndReporterPaid_RestBurned() external {
        uint256 callId = _callJob(payer, 0, "translate: bonjour");
        address op0 = operators[0];

        // The delegator queues a fifth of its shares before the fault: unbonding shares are slashed too.
        assertEq(staking.sharesOf(op0, delegator), 5e24, "delegator shares");
        vm.prank(delegator);
        uint256 requestId = staking.requestUnstake(op0, 1e24);
        assertEq(staking.selfStake(op0), 10_000e18, "op0 self-stake value");
        assertEq(staking.convertToAssets(op0, 4e24), 4000e18, "delegator active value");
        assertEq(staking.previewWithdraw(requestId), 1000e18, "delegator unbonding value");

        // op0 signs two different results for the call: one alone, one inside a batch with another call.
        (VouchSlasher.SignedResult memory a, VouchSlasher.SignedResult memory b) = _equivocation(callId);

        assertEq(staking.slashableStake(op0), 15_000e18, "pool assets");
        assertEq(staking.selfStake(op0), 10_000e18, "own stake");
        (uint256 amount, uint256 toPayer, uint256 toReporter, uint256 burned) =
            SystemMath.slash(15_000e18, 10_000e18, EQUIVOCATION_BPS, PAYER_SHARE_BPS, REPORTER_SHARE_BPS);
        assertEq(amount, 7500e18, "50 %");
        // Asked: payer 3,750 (50 %) + reporter 750 (10 %) = 4,500; op0's own stake loses 5,000, so together they get
        // at most 2,500, scaled 3,750 : 750.
        assertEq(toPayer, uint256(3750e18) * 2500e18 / 4500e18, "payer, capped");
        assertEq(toReporter, uint256(750e18) * 2500e18 / 4500e18, "reporter, capped");
        assertEq(burned, amount - toPayer - toReporter, "the rest burned");
        uint256 stakingBalance = stk.balanceOf(address(staking));

        vm.prank(reporter);
        assertEq(slasher.reportEquivocation(serviceId, callId, op0, 0, a, b), amount, "slashed");

        assertEq(staking.slashableStake(op0), 15_000e18 - amount, "pool lost the amount");
        assertEq(staking.slashedClaimable(payer), toPayer, "payer credited");
        assertEq(staking.slashedClaimable(reporter), toReporter, "reporter credited");
        assertEq(stk.balanceOf(BURN), burned, "burned to 0xdEaD");
        assertEq(stk.balanceOf(address(staking)), stakingBalance - burned, "staking kept the credits");
        assertTrue(slasher.isReported(op0, callId, VouchSlasher.Fault.Equivocation), "reported");

        // Every share of the pool, active or unbonding, lost exactly half.
        assertEq(staking.sharesOf(op0, delegator), 4e24, "shares unchanged");
        assertEq(staking.convertToAssets(op0, staking.sharesOf(op0, delegator)), 2000e18, "delegator active halved");
        assertEq(staking.delegatedStake(op0, delegator), 2000e18, "delegatedStake halved");
        assertEq(staking.previewWithdraw(requestId), 500e18, "unbonding halved");
        assertEq(staking.selfStake(op0), 5000e18, "self-stake halved");
        assertEq(staking.activeStake(op0), 7000e18, "active stake halved");
        // The other pools are untouched.
        assertEq(staking.slashableStake(operators[1]), 20_000e18, "op1 untouched");
        assertEq(staking.slashableStake(operators[2]), 30_000e18, "op2 untouched");

        // A fault is paid once.
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlreadyReported.selector, op0, callId, VouchSlasher.Fault.Equivocation)
        );
        slasher.reportEquivocation(serviceId, callId, op0, 0, b, a);

        // Payer and reporter claim their stake tokens.
        assertEq(_claimSlashed(payer), toPayer, "payer claimed");
        assertEq(_claimSlashed(reporter), toReporter, "reporter claimed");
        assertEq(stk.balanceOf(payer), toPayer, "payer holds its compensation");
        assertEq(stk.balanceOf(reporter), toReporter, "reporter holds its bounty");
        assertEq(
            stk.balanceOf(address(staking)), _poolAssets(), "staking holds exactly the pools once credits are claimed"
        );

        // The unbonding request pays its slashed value.
        vm.warp(block.timestamp + UNBONDING_DELAY);
        uint256 before = stk.balanceOf(delegator);
        vm.prank(delegator);
        assertEq(staking.withdraw(requestId), 500e18, "withdrawal slashed too");
        assertEq(stk.balanceOf(delegator) - before, 500e18, "delegator received");
        assertEq(stk.balanceOf(address(staking)), _poolAssets(), "staking = pools");
    }

    /// @dev op0's two conflicting statements about `callId`: `RESULT` signed alone, `WRONG` signed inside a two-call
    /// batch (with another call of payer2).
    function _equivocation(uint256 callId)
        internal
        returns (VouchSlasher.SignedResult memory a, VouchSlasher.SignedResult memory b)
    {
        uint256 otherCall = _callJob(payer2, 1, "translate: merci");
        a = _evidence(0, callId, RESULT);
        Leaf[] memory leaves = new Leaf[](2);
        leaves[0] = Leaf({callId: otherCall, inputsHash: protocol.getCall(otherCall).inputsHash, resultHash: RESULT});
        leaves[1] = Leaf({callId: callId, inputsHash: protocol.getCall(callId).inputsHash, resultHash: WRONG});
        b = _batch(secretKeys[0], address(protocol), serviceId, leaves, 1);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // c. deviation: executed after the dispute window, or vetoed by the arbiter
    // ---------------------------------------------------------------------------------------------------------------

    function test_C1_Deviation_MinoritySlashedAfterDisputeWindow() external {
        address op0 = operators[0];
        (uint256 callId, uint256 proposalId) = _settleAndProposeDeviation(payer2);
        VouchSlasher.DeviationProposal memory prop = slasher.getProposal(proposalId);
        uint64 executableAt = uint64(block.timestamp) + DISPUTE_WINDOW;
        assertEq(prop.operator, op0, "operator");
        assertEq(prop.callId, callId, "call");
        assertEq(prop.proposer, reporter, "proposer");
        assertEq(prop.executableAt, executableAt, "executableAt");
        assertTrue(prop.status == VouchSlasher.ProposalStatus.Pending, "pending");

        // Not before the window ends.
        vm.warp(executableAt - 1);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.DisputeWindowOpen.selector, proposalId, executableAt));
        slasher.executeDeviation(proposalId);
        assertEq(staking.slashableStake(op0), 15_000e18, "nothing slashed yet");

        // Once it has ended, the arbiter is too late and anyone executes.
        vm.warp(executableAt);
        vm.prank(arbiter);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.VetoWindowClosed.selector, proposalId, executableAt));
        slasher.vetoDeviation(proposalId);

        (uint256 amount, uint256 toPayer, uint256 toReporter, uint256 burned) = SystemMath.slash(
            15_000e18, staking.selfStake(operators[0]), DEVIATION_BPS, PAYER_SHARE_BPS, REPORTER_SHARE_BPS
        );
        assertEq(amount, 3000e18, "20 %");
        vm.prank(keeper);
        assertEq(slasher.executeDeviation(proposalId), amount, "slashed");

        assertEq(staking.slashableStake(op0), 12_000e18, "pool lost 20 %");
        assertEq(staking.slashedClaimable(payer2), toPayer, "the call's payer credited");
        assertEq(staking.slashedClaimable(reporter), toReporter, "the proposer credited");
        assertEq(staking.slashedClaimable(keeper), 0, "the executor gets nothing");
        assertEq(stk.balanceOf(BURN), burned, "rest burned");
        assertEq(staking.delegatedStake(op0, delegator), 4000e18, "delegator lost 20 %");
        assertEq(staking.selfStake(op0), 8000e18, "operator lost 20 %");
        assertTrue(slasher.getProposal(proposalId).status == VouchSlasher.ProposalStatus.Executed, "proposal executed");
        // The majority that certified is untouched, and the result stands.
        assertEq(staking.slashableStake(operators[1]), 20_000e18, "op1 untouched");
        assertEq(staking.slashableStake(operators[2]), 30_000e18, "op2 untouched");
        assertEq(protocol.getCall(callId).resultHash, RESULT, "certified result unchanged");

        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.ProposalNotPending.selector, proposalId, VouchSlasher.ProposalStatus.Executed
            )
        );
        slasher.executeDeviation(proposalId);

        assertEq(_claimSlashed(payer2), toPayer, "payer claimed");
        assertEq(_claimSlashed(reporter), toReporter, "proposer claimed");
        assertEq(stk.balanceOf(address(staking)), _poolAssets(), "staking = pools");
    }

    function test_C2_Deviation_VetoedByArbiter_NoSlash() external {
        address op0 = operators[0];
        (uint256 callId, uint256 proposalId) = _settleAndProposeDeviation(payer2);
        uint64 executableAt = uint64(block.timestamp) + DISPUTE_WINDOW;
        uint256 burnBefore = stk.balanceOf(BURN);

        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotArbiter.selector, proposalId, keeper, arbiter));
        slasher.vetoDeviation(proposalId);

        vm.warp(executableAt - 1);
        vm.prank(arbiter);
        slasher.vetoDeviation(proposalId);
        assertTrue(slasher.getProposal(proposalId).status == VouchSlasher.ProposalStatus.Vetoed, "vetoed");

        vm.warp(executableAt + 1 days);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.ProposalNotPending.selector, proposalId, VouchSlasher.ProposalStatus.Vetoed
            )
        );
        slasher.executeDeviation(proposalId);

        // A veto is final for (operator, call).
        VouchSlasher.SignedResult memory s = _evidence(0, callId, WRONG);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.AlreadyReported.selector, op0, callId, VouchSlasher.Fault.Deviation)
        );
        slasher.proposeDeviation(callId, op0, 0, s);

        assertEq(staking.slashableStake(op0), 15_000e18, "no slash");
        assertEq(staking.delegatedStake(op0, delegator), DELEGATION, "delegator untouched");
        assertEq(staking.slashedClaimable(payer2), 0, "payer credited nothing");
        assertEq(staking.slashedClaimable(reporter), 0, "proposer credited nothing");
        assertEq(stk.balanceOf(BURN), burnBefore, "nothing burned");
        assertEq(stk.balanceOf(address(staking)), _poolAssets(), "staking = pools");
    }

    /// @dev Opens a call paid by `callPayer`, settles it with slots {1, 2} on `RESULT`, and has `reporter` propose that
    /// op0 (slot 0, outside the certificate) deviated by signing `WRONG` on the same inputs.
    function _settleAndProposeDeviation(address callPayer) internal returns (uint256 callId, uint256 proposalId) {
        callId = _callJob(callPayer, 1, "classify: 42");
        bytes memory sig = _certify(callId, RESULT, 0x6);
        vm.prank(keeper);
        protocol.settle(callId, RESULT, 0x6, sig);

        // The majority's own result is not a deviation.
        VouchSlasher.SignedResult memory honest = _evidence(1, callId, RESULT);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotDeviating.selector, callId, RESULT));
        slasher.proposeDeviation(callId, operators[1], 1, honest);

        VouchSlasher.SignedResult memory s = _evidence(0, callId, WRONG);
        vm.prank(reporter);
        proposalId = slasher.proposeDeviation(callId, operators[0], 0, s);
        assertEq(proposalId, slasher.proposalIdOf(operators[0], callId), "deterministic id");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // d. no quorum: refunded in full; refunded and settled calls are final
    // ---------------------------------------------------------------------------------------------------------------

    function test_D_NoQuorum_RefundedInFull_FinalStatesStayFinal() external {
        uint256 callId = _callJob(payer, 0, "render: scene 7");
        uint64 deadline = protocol.getCall(callId).deadline;
        assertEq(usd.balanceOf(payer), PAYER_FUNDS - PRICE0, "paid");

        // Valid signatures, but too little stake (35k of 65k) or too few signers.
        bytes memory minority = _certify(callId, RESULT, 0x3);
        assertFalse(protocol.quorumReached(serviceId, 0x3), "{0,1} below quorum");
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.QuorumNotReached.selector, 35_000e18, 65_000e18, QUORUM_BPS)
        );
        protocol.settle(callId, RESULT, 0x3, minority);

        bytes memory lone = _certify(callId, RESULT, 0x4);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.TooFewSigners.selector, 1, MIN_SIGNERS));
        protocol.settle(callId, RESULT, 0x4, lone);

        // No refund until the deadline has passed (at the deadline itself the call may still settle).
        vm.warp(deadline);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.DeadlineNotPassed.selector, callId, deadline));
        protocol.refund(callId);

        // After it, even a full certificate is too late.
        vm.warp(uint256(deadline) + 1);
        bytes memory full = _certify(callId, RESULT, ALL_SIGNERS);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.DeadlinePassed.selector, callId, deadline));
        protocol.settle(callId, RESULT, ALL_SIGNERS, full);

        vm.prank(keeper);
        protocol.refund(callId);
        assertTrue(protocol.getCall(callId).status == IVouchProtocol.CallStatus.Refunded, "refunded");
        assertEq(protocol.claimable(payer), PRICE0, "whole payment claimable");
        assertEq(protocol.claimable(keeper), 0, "the refunder gets nothing");

        // Refunded is final.
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, callId, IVouchProtocol.CallStatus.Refunded)
        );
        protocol.settle(callId, RESULT, ALL_SIGNERS, full);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, callId, IVouchProtocol.CallStatus.Refunded)
        );
        protocol.refund(callId);

        assertEq(_claim(payer), PRICE0, "payer claims exactly the price");
        assertEq(usd.balanceOf(payer), PAYER_FUNDS, "payer whole again");
        assertEq(protocol.claimable(developer) + protocol.claimable(treasury), 0, "no fees on a refund");
        assertEq(staking.rewardReserve(), 0, "no rewards on a refund");

        // Settled is final too.
        uint256 settled = _callJob(payer, 0, "render: scene 8");
        bytes memory sig = _certify(settled, RESULT, 0x6);
        vm.prank(keeper);
        protocol.settle(settled, RESULT, 0x6, sig);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, settled, IVouchProtocol.CallStatus.Settled)
        );
        protocol.settle(settled, RESULT, 0x6, sig);
        vm.warp(block.timestamp + DEADLINE0 + 1);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, settled, IVouchProtocol.CallStatus.Settled)
        );
        protocol.refund(settled);
        assertEq(protocol.claimable(payer), 0, "no refund of a settled call");
        assertTrue(protocol.getCall(settled).status == IVouchProtocol.CallStatus.Settled, "still settled");
        _assertBooksBalance();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // e. batch settlement under one aggregate
    // ---------------------------------------------------------------------------------------------------------------

    function test_E_Batch_SettledUnderOneAggregate_ClaimsExact() external {
        // Five calls of both jobs, opened three ways: callJob, callJobs and x402.
        uint256[] memory ids = new uint256[](5);
        ids[0] = _callJob(payer, 0, "batch input 0");
        ids[1] = _callJob(payer, 1, "batch input 1");
        uint8[] memory jobs = new uint8[](2);
        (jobs[0], jobs[1]) = (1, 0);
        bytes[] memory inputs = new bytes[](2);
        (inputs[0], inputs[1]) = (bytes("batch input 2"), bytes("batch input 3"));
        vm.prank(payer2);
        ids[2] = protocol.callJobs(serviceId, jobs, inputs);
        ids[3] = ids[2] + 1;
        VouchProtocol.PaidCall memory p = _paidCall(payerKey, serviceId, 0, keccak256("batch input 4"));
        vm.prank(gateway);
        ids[4] = protocol.openPaidCall(p);
        assertEq(ids[3], 4, "counter ids 1 to 4");
        assertEq(
            ids[4],
            _paidCallId(serviceId, 0, payer, p.nonce),
            "x402 call id derived from (serviceId, jobIndex, from, nonce)"
        );
        assertEq(protocol.callCount(), 4, "x402 calls take no counter id");
        uint256 total = 3 * uint256(PRICE0) + 2 * uint256(PRICE1);
        assertEq(usd.balanceOf(address(protocol)), total, "escrowed");

        bytes32[] memory results = new bytes32[](5);
        for (uint256 i; i < 5; ++i) {
            results[i] = keccak256(abi.encode("batch result", i));
        }
        uint256 bitmap = 0x6; // op1 and op2 sign; op0 does not
        bytes memory sig = _certifyBatch(ids, results, bitmap);

        // Expected: the sum of each call's split.
        SystemMath.Split memory e = _expectedSplit(_price(protocol.getCall(ids[0]).jobIndex), bitmap);
        for (uint256 i = 1; i < 5; ++i) {
            SystemMath.add(e, _expectedSplit(_price(protocol.getCall(ids[i]).jobIndex), bitmap));
        }
        assertEq(SystemMath.total(e), total, "split sums to the payments");

        vm.prank(keeper);
        protocol.settleBatch(serviceId, ids, results, bitmap, sig);

        for (uint256 i; i < 5; ++i) {
            IVouchProtocol.Call memory c = protocol.getCall(ids[i]);
            assertTrue(c.status == IVouchProtocol.CallStatus.Settled, "settled");
            assertEq(c.resultHash, results[i], "result");
            assertEq(c.signerBitmap, bitmap, "bitmap");
        }
        assertEq(protocol.claimable(developer), e.developerFee, "developer");
        assertEq(protocol.claimable(treasury), e.protocolFee + e.dust, "treasury");
        assertEq(protocol.claimable(operators[0]), 0, "non-signer earns nothing");
        assertEq(protocol.claimable(operators[1]), e.commissions[0], "op1 commission");
        assertEq(protocol.claimable(operators[2]), e.commissions[1], "op2 commission");
        assertEq(staking.rewardReserve(), e.rewards[0] + e.rewards[1], "delegators' part");
        assertEq(staking.pendingRewards(operators[0], delegator), 0, "op0's delegators earn nothing");
        _assertBooksBalance();

        // Hand-checked: 3 × 1,000,000 + 2 × 333,333 = 3,666,666; developer 3 × 100,000 + 2 × 33,333; protocol
        // 3 × 50,000 + 2 × 16,666.
        assertEq(e.developerFee, 366_666, "developer fee");
        assertEq(e.protocolFee, 183_332, "protocol fee");

        uint256 received = _claim(developer) + _claim(treasury) + _claim(operators[1]) + _claim(operators[2]);
        uint256 r1 = _claimRewards(operators[1], operators[1]);
        uint256 r2 = _claimRewards(operators[2], operators[2]);
        assertEq(r1, _singleHolderClaim(e.rewards[0], staking.sharesOf(operators[1], operators[1])), "op1 rewards");
        assertEq(r2, _singleHolderClaim(e.rewards[1], staking.sharesOf(operators[2], operators[2])), "op2 rewards");
        received += r1 + r2;
        assertEq(received + staking.rewardReserve(), total, "claims + unclaimed sub-units = payments");
        assertLe(staking.rewardReserve(), 2, "at most one sub-unit per pool left");
        vm.prank(operators[0]);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.NothingToClaim.selector, operators[0]));
        protocol.claim();

        // A batch-settled call cannot settle again.
        bytes memory single = _certify(ids[0], results[0], bitmap);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, ids[0], IVouchProtocol.CallStatus.Settled)
        );
        protocol.settle(ids[0], results[0], bitmap, single);
        _assertBooksBalance();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // f. missed deadlines: anyone reports each operator, penalty credited, jail after `jailAfterMisses`
    // ---------------------------------------------------------------------------------------------------------------

    function test_F_MissedDeadline_ReportsPenaltiesAndJail() external {
        uint256[] memory missed = new uint256[](3);
        for (uint256 i; i < 3; ++i) {
            missed[i] = _callJob(payer, 0, abi.encode("never answered", i));
        }
        // One call settled without op0's bit.
        uint256 partCall = _callJob(payer2, 0, "answered by two");
        bytes memory sig = _certify(partCall, RESULT, 0x6);
        vm.prank(keeper);
        protocol.settle(partCall, RESULT, 0x6, sig);

        // Nothing to report while a call is open.
        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotFinal.selector, missed[0], IVouchProtocol.CallStatus.Open)
        );
        slasher.reportMissedDeadline(missed[0], operators[0], 0);

        vm.warp(block.timestamp + DEADLINE0 + 1);
        vm.prank(keeper);
        protocol.refundBatch(missed);
        assertEq(protocol.claimable(payer), 3 * uint256(PRICE0), "three refunds");

        // Reports wait for the alibi window: the blueprint's dispute window after the deadline of a refunded call.
        uint256 alibiUntil = uint256(protocol.getCall(missed[0]).deadline) + DISPUTE_WINDOW;
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, missed[0], alibiUntil));
        slasher.reportMissedDeadline(missed[0], operators[0], 0);
        vm.warp(alibiUntil + 1);

        uint256 toPayerTotal;
        uint256 toReporterTotal;
        uint256 burnedTotal;
        // Call 0: every operator missed it.
        for (uint256 slot; slot < SERVICE_SIZE; ++slot) {
            (uint256 p, uint256 r, uint256 b) = _reportMiss(missed[0], slot, payer);
            (toPayerTotal, toReporterTotal, burnedTotal) = (toPayerTotal + p, toReporterTotal + r, burnedTotal + b);
            VouchSlasher.MissRecord memory rec = slasher.missesOf(operators[slot], blueprintId);
            assertEq(rec.sinceJail, 1, "one miss");
            assertEq(rec.total, 1, "one miss in total");
        }
        // op0: 1 % of 15,000 = 150 VST, 75 to the payer, 15 to the reporter, 60 burned.
        assertEq(staking.slashableStake(operators[0]), 14_850e18, "op0 penalised 1 %");

        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.AlreadyReported.selector, operators[0], missed[0], VouchSlasher.Fault.MissedDeadline
            )
        );
        slasher.reportMissedDeadline(missed[0], operators[0], 0);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, serviceId, 1, operators[0], operators[1])
        );
        slasher.reportMissedDeadline(missed[1], operators[0], 1);

        // The settled call: its signers did not miss it, op0 did.
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorSigned.selector, partCall, operators[1], 1));
        slasher.reportMissedDeadline(partCall, operators[1], 1);
        {
            (uint256 p, uint256 r, uint256 b) = _reportMiss(partCall, 0, payer2);
            (toPayerTotal, toReporterTotal, burnedTotal) = (toPayerTotal + p, toReporterTotal + r, burnedTotal + b);
        }
        assertEq(slasher.missesOf(operators[0], blueprintId).sinceJail, 2, "op0: two misses");
        assertFalse(staking.isJailed(operators[0]), "not jailed yet");

        // Call 1: op0's third miss jails it; op1 and op2 reach two.
        {
            (uint256 p, uint256 r, uint256 b) = _reportMiss(missed[1], 0, payer);
            (toPayerTotal, toReporterTotal, burnedTotal) = (toPayerTotal + p, toReporterTotal + r, burnedTotal + b);
        }
        VouchSlasher.MissRecord memory jailed = slasher.missesOf(operators[0], blueprintId);
        assertEq(jailed.sinceJail, 0, "counter restarts");
        assertEq(jailed.total, 3, "three misses");
        assertEq(jailed.jailedUntil, block.timestamp + slasher.JAIL_DURATION(), "jailed 30 days");
        assertTrue(staking.isJailed(operators[0]), "op0 jailed");
        assertEq(staking.operatorInfo(operators[0]).jailedUntil, jailed.jailedUntil, "staking jail term");
        for (uint256 slot = 1; slot < SERVICE_SIZE; ++slot) {
            (uint256 p, uint256 r, uint256 b) = _reportMiss(missed[1], slot, payer);
            (toPayerTotal, toReporterTotal, burnedTotal) = (toPayerTotal + p, toReporterTotal + r, burnedTotal + b);
            assertEq(slasher.missesOf(operators[slot], blueprintId).sinceJail, 2, "two misses");
            assertFalse(staking.isJailed(operators[slot]), "not jailed");
        }

        // A jailed operator cannot join a new service, but its running service still settles.
        address[] memory ops = new address[](2);
        (ops[0], ops[1]) = (operators[3], operators[0]);
        vm.prank(serviceOwner);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.OperatorJailed.selector, operators[0]));
        protocol.requestService(blueprintId, ops, uint64(block.timestamp + 30 days), true, new address[](0));
        uint256 later = _callJob(payer, 0, "still served");
        bytes memory laterSig = _certify(later, RESULT, ALL_SIGNERS);
        vm.prank(keeper);
        protocol.settle(later, RESULT, ALL_SIGNERS, laterSig);

        // Money: penalties credited and claimable, the rest burned; the payer also has its refunds.
        assertEq(staking.slashedClaimable(payer) + staking.slashedClaimable(payer2), toPayerTotal, "payers credited");
        assertEq(staking.slashedClaimable(reporter), toReporterTotal, "reporter credited");
        assertEq(stk.balanceOf(BURN), burnedTotal, "burned");
        assertEq(
            stk.balanceOf(address(staking)), _poolAssets() + toPayerTotal + toReporterTotal, "staking = pools + credits"
        );
        uint256 payerCredit = staking.slashedClaimable(payer);
        assertEq(_claimSlashed(payer), payerCredit, "payer claims its compensation");
        assertEq(_claimSlashed(reporter), toReporterTotal, "reporter claims its bounties");
        assertEq(_claim(payer), 3 * uint256(PRICE0), "payer claims its refunds");

        // The jail ends after 30 days.
        vm.warp(jailed.jailedUntil);
        assertFalse(staking.isJailed(operators[0]), "released");
    }

    /// @dev `reporter` reports the operator at `slot` for `callId`; checks the exact penalty and its credits.
    function _reportMiss(uint256 callId, uint256 slot, address callPayer)
        internal
        returns (uint256 toPayer, uint256 toReporter, uint256 burned)
    {
        address op = operators[slot];
        uint256 stakeBefore = staking.slashableStake(op);
        uint256 payerBefore = staking.slashedClaimable(callPayer);
        uint256 reporterBefore = staking.slashedClaimable(reporter);
        uint256 burnBefore = stk.balanceOf(BURN);
        uint256 amount;
        (amount, toPayer, toReporter, burned) =
            SystemMath.slash(stakeBefore, staking.selfStake(op), MISSED_BPS, PAYER_SHARE_BPS, REPORTER_SHARE_BPS);
        vm.prank(reporter);
        assertEq(slasher.reportMissedDeadline(callId, op, slot), amount, "missed-deadline slash");
        assertEq(staking.slashableStake(op), stakeBefore - amount, "pool penalised");
        assertEq(staking.slashedClaimable(callPayer) - payerBefore, toPayer, "payer credited");
        assertEq(staking.slashedClaimable(reporter) - reporterBefore, toReporter, "reporter credited");
        assertEq(stk.balanceOf(BURN) - burnBefore, burned, "burned");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // g. signer weights: snapshot stake capped by the stake still slashable
    // ---------------------------------------------------------------------------------------------------------------

    function test_G1_SignerWeights_SlashedStakeStopsCounting_NewStakeAddsNothing() external {
        address op2 = operators[2];
        // op2 equivocates and loses half its pool: 30,000 → 15,000.
        uint256 evidenceCall = _callJob(payer, 0, "weights: evidence");
        VouchSlasher.SignedResult memory a = _evidence(2, evidenceCall, RESULT);
        VouchSlasher.SignedResult memory b = _evidence(2, evidenceCall, WRONG);
        vm.prank(reporter);
        slasher.reportEquivocation(serviceId, evidenceCall, op2, 2, a, b);
        assertEq(staking.slashableStake(op2), 15_000e18, "op2 halved");

        // {0, 2} weighed 45k of 65k at activation; now 15k + 15k = 30k of the set's 50k at risk: below the quorum.
        uint256 callId = _callJob(payer, 0, "weights: call");
        bytes memory pair = _certify(callId, RESULT, 0x5);
        assertFalse(protocol.quorumReached(serviceId, 0x5), "{0,2} below quorum now");
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.QuorumNotReached.selector, 30_000e18, 50_000e18, QUORUM_BPS)
        );
        protocol.settle(callId, RESULT, 0x5, pair);

        // All three: 15k + 20k + 15k = 50k; fees are shared by these weights: 850,000 × 15/50, 20/50, 15/50.
        bytes memory all = _certify(callId, RESULT, ALL_SIGNERS);
        SystemMath.Split memory e = _expectedSplit(PRICE0, ALL_SIGNERS);
        vm.prank(keeper);
        protocol.settle(callId, RESULT, ALL_SIGNERS, all);
        assertEq(e.dust, 0, "no dust");
        assertEq(e.commissions[0] + e.rewards[0], 255_000, "op0 share");
        assertEq(e.commissions[1] + e.rewards[1], 340_000, "op1 share");
        assertEq(e.commissions[2] + e.rewards[2], 255_000, "op2 share");
        assertEq(protocol.claimable(operators[0]), 25_500, "op0 commission 10 %");
        assertEq(protocol.claimable(operators[1]), 17_000, "op1 commission 5 %");
        assertEq(protocol.claimable(op2), 51_000, "op2 commission 20 %");
        assertEq(protocol.claimable(treasury), 50_000, "treasury");
        assertEq(staking.rewardReserve(), 229_500 + 323_000 + 204_000, "delegators' parts");

        _checkRefillIsCapped();
        _assertBooksBalance();
    }

    /// @dev op2 (slashed to 15k) is refilled to 115k: it weighs its 30k snapshot again, never more.
    function _checkRefillIsCapped() internal {
        address op2 = operators[2];
        _fundStake(address(0xDE1E2), 100_000e18);
        vm.prank(address(0xDE1E2));
        staking.delegate(op2, 100_000e18);
        assertTrue(protocol.quorumReached(serviceId, 0x5), "{0,2} back to 45k");
        uint256 capped = _callJob(payer, 0, "weights: capped");
        SystemMath.Split memory c = _expectedSplit(PRICE0, 0x5);
        assertEq(c.commissions[1] + c.rewards[1], 566_666, "op2 share uses its 30k snapshot");
        bytes memory sig = _certify(capped, RESULT, 0x5);
        uint256 before = protocol.claimable(op2);
        vm.prank(keeper);
        protocol.settle(capped, RESULT, 0x5, sig);
        assertEq(protocol.claimable(op2) - before, c.commissions[1], "op2 commission on the capped weight");
    }

    function test_G2_SignerWeights_UnbondingStakeCounts_WithdrawnStakeDoesNot() external {
        address op0 = operators[0];
        vm.prank(delegator);
        uint256 requestId = staking.requestUnstake(op0, DELEGATION * 1000);
        assertEq(staking.activeStake(op0), 10_000e18, "active stake fell");
        assertEq(_weights()[0], 15_000e18, "op0 still weighs 15k while the stake is unbonding (slashable)");
        uint256 early = _callJob(payer, 0, "weights: unbonding");
        bytes memory earlySig = _certify(early, RESULT, 0x5);
        vm.prank(keeper);
        protocol.settle(early, RESULT, 0x5, earlySig); // 15k + 30k = 45k of 65k

        vm.warp(block.timestamp + UNBONDING_DELAY);
        vm.prank(delegator);
        staking.withdraw(requestId);
        assertEq(_weights()[0], 10_000e18, "withdrawn: op0 weighs 10k");
        uint256 late = _callJob(payer, 0, "weights: after withdrawal");
        bytes memory lateSig = _certify(late, RESULT, 0x5);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(VouchProtocolEvents.QuorumNotReached.selector, 40_000e18, 60_000e18, QUORUM_BPS)
        );
        protocol.settle(late, RESULT, 0x5, lateSig);
        _assertBooksBalance();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // h. a deregistered operator takes no new service (regression: it could approve and be activated)
    // ---------------------------------------------------------------------------------------------------------------

    function test_H_DeregisteredOperator_CannotApproveOrBeActivated() external {
        address op3 = operators[3];
        address[] memory ops = new address[](3);
        (ops[0], ops[1], ops[2]) = (operators[0], operators[1], op3);

        // Leaves before approving: its approval is refused.
        vm.prank(serviceOwner);
        uint64 first =
            protocol.requestService(blueprintId, ops, uint64(block.timestamp + 30 days), true, new address[](0));
        // Approves, then leaves: the last approval cannot activate the service with it.
        vm.prank(serviceOwner);
        uint64 second =
            protocol.requestService(blueprintId, ops, uint64(block.timestamp + 30 days), true, new address[](0));
        vm.prank(op3);
        protocol.approveService(second);

        vm.prank(op3);
        staking.deregister();
        vm.prank(op3);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.NotOperator.selector, op3));
        protocol.approveService(first);

        vm.prank(operators[0]);
        protocol.approveService(second);
        vm.prank(operators[1]);
        vm.expectRevert(abi.encodeWithSelector(VouchProtocolEvents.NotOperator.selector, op3));
        protocol.approveService(second);
        assertTrue(
            protocol.getService(second).status == IVouchProtocol.ServiceStatus.Requested, "never activated with op3"
        );
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Σ pool assets of the registered operators.
    function _poolAssets() internal view returns (uint256 sum) {
        for (uint256 i; i < N_OPERATORS; ++i) {
            sum += staking.slashableStake(operators[i]);
        }
    }

    /// @dev What the only holder of `shares` active shares can claim after one distribution of `amount` into a pool
    /// without dust: `⌊⌊amount·10³⁶ / shares⌋ · shares / 10³⁶⌋` (VouchStaking's accumulator rules).
    function _singleHolderClaim(uint256 amount, uint256 shares) internal pure returns (uint256) {
        return (amount * PRECISION / shares) * shares / PRECISION;
    }
}
