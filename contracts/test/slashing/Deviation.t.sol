// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {MockVouchProtocol} from "./Mocks.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @title DeviationTest
/// @notice `proposeDeviation`, `vetoDeviation`, `executeDeviation`: a signed result that contradicts a settled
/// certificate, slashed after the dispute window unless the blueprint's arbiter vetoes.
contract DeviationTest is SlashingBase {
    address internal constant PROPOSER = address(0x9409053);
    address internal constant EXECUTOR = address(0xE8EC);

    // ---------------------------------------------------------------------------------------------------------------
    // Success
    // ---------------------------------------------------------------------------------------------------------------

    function test_ProposeDeviation_CreatesPendingProposal() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, WRONG);
        uint64 executableAt = START + DISPUTE_WINDOW;
        uint256 expectedId = uint256(keccak256(abi.encode(op2, CALL_SETTLED)));
        vm.expectEmit(address(slasher));
        emit VouchSlasher.DeviationProposed(expectedId, op2, CALL_SETTLED, PROPOSER, WRONG, RESULT, executableAt);
        vm.prank(PROPOSER);
        uint256 id = slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);

        assertEq(id, expectedId, "deterministic id");
        _assertPendingProposal(id, op2, CALL_SETTLED, PROPOSER, executableAt);
    }

    function test_ExecuteDeviation_SlashesAfterWindow() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        vm.warp(START + DISPUTE_WINDOW);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(STAKE, DEVIATION_BPS, PAYER_BPS, REPORTER_BPS);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.DeviationSlashed(id, op2, CALL_SETTLED, EXECUTOR, amount, amount);
        vm.prank(EXECUTOR);
        uint256 slashed = slasher.executeDeviation(id);

        assertEq(slashed, amount, "returned");
        // The reporter share goes to the proposer, not to whoever executes.
        _assertSlash(0, op2, amount, PAYER, toPayer, PROPOSER, toReporter);
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Executed, "executed");
    }

    /// @dev The amount is taken from the stake at execution, not at proposal.
    function test_ExecuteDeviation_UsesStakeAtExecution() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        staking.setSlashableStake(op2, STAKE / 4);
        vm.warp(START + DISPUTE_WINDOW + 1 days);
        slasher.executeDeviation(id);
        (uint256 amount, uint256 toPayer, uint256 toReporter) =
            _expected(STAKE / 4, DEVIATION_BPS, PAYER_BPS, REPORTER_BPS);
        _assertSlash(0, op2, amount, PAYER, toPayer, PROPOSER, toReporter);
    }

    function test_ProposeDeviation_BatchForm() external {
        VouchSlasher.SignedResult memory s =
            _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, WRONG), 1);
        uint256 id = slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        vm.warp(START + DISPUTE_WINDOW);
        slasher.executeDeviation(id);
        assertEq(staking.slashCount(), 1, "slashed");
    }

    /// @dev An operator in the certificate's bitmap that also signed another result alone is still deviating.
    function test_ProposeDeviation_BySignerOfTheCertificate() external {
        uint256 id = _propose(sk0, op0, 0, WRONG);
        assertEq(slasher.getProposal(id).operator, op0, "op0");
    }

    function test_ProposeDeviation_ZeroWindow_ExecutableAtOnce() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.disputeWindow = 0;
        _setPolicy(policy);
        uint256 id = _propose(sk2, op2, 2, WRONG);
        assertEq(slasher.getProposal(id).executableAt, START, "now");
        slasher.executeDeviation(id);
        assertEq(staking.slashCount(), 1, "slashed");
    }

    function test_VetoDeviation_CancelsForGood() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        vm.warp(START + DISPUTE_WINDOW - 1);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.DeviationVetoed(id, ARBITER);
        vm.prank(ARBITER);
        slasher.vetoDeviation(id);
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Vetoed, "vetoed");
        assertTrue(slasher.isReported(op2, CALL_SETTLED, VouchSlasher.Fault.Deviation), "still recorded");
        vm.warp(START + DISPUTE_WINDOW + 1 days);
        assertEq(staking.slashCount(), 0, "nothing slashed");
    }

    /// @dev Two operators' deviations on one call are separate proposals.
    function test_ProposeDeviation_OnePerOperator() external {
        uint256 a = _propose(sk2, op2, 2, WRONG);
        uint256 b = _propose(sk0, op0, 0, WRONG_2);
        assertEq(a, slasher.proposalIdOf(op2, CALL_SETTLED), "a");
        assertEq(b, slasher.proposalIdOf(op0, CALL_SETTLED), "b");
        assertTrue(a != b, "distinct");
        vm.warp(START + DISPUTE_WINDOW);
        vm.prank(ARBITER);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.VetoWindowClosed.selector, b, START + DISPUTE_WINDOW));
        slasher.vetoDeviation(b);
        slasher.executeDeviation(a);
        slasher.executeDeviation(b);
        assertEq(staking.slashCount(), 2, "both");
    }

    /// @dev Digest agreement with the Rust side: the golden "1 signer" aggregate is key 7's own signature on
    /// `result.digest` (chain 31337, protocol 0xcafE, service 7, call 42); a slasher whose protocol sits at 0xcafE
    /// accepts it as evidence.
    function test_ProposeDeviation_AcceptsGoldenVectorSignature() external {
        string memory json = _readVectors();
        Key memory key7 = _keys(json)[7];
        Aggregate memory one = _aggregates(json)[0];
        assertEq(one.bitmap, 1 << 7, "vectors: 1 signer is key 7");
        vm.prank(key7.operator);
        registry.registerKey(key7.pubkey, key7.pop);

        MockVouchProtocol golden = MockVouchProtocol(vm.parseJsonAddress(json, ".protocol"));
        vm.etch(address(golden), address(protocol).code);
        VouchSlasher goldenSlasher = new VouchSlasher(golden, staking, registry);
        staking.setSlasher(address(goldenSlasher));
        uint64 serviceId = uint64(vm.parseJsonUint(json, ".result.serviceId"));
        uint256 callId = vm.parseJsonUint(json, ".result.callId");
        bytes32 inputsHash = vm.parseJsonBytes32(json, ".result.inputsHash");
        bytes32 resultHash = vm.parseJsonBytes32(json, ".result.resultHash");

        address[] memory operators = new address[](8);
        operators[7] = key7.operator;
        for (uint256 i; i < 7; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            operators[i] = address(uint160(0x1000 + i)); // i < 7
        }
        golden.setBlueprint(BLUEPRINT, _blueprint(ARBITER, _policy()));
        golden.setService(serviceId, _service(BLUEPRINT, operators));
        IVouchProtocol.Call memory call = _call(serviceId, IVouchProtocol.CallStatus.Settled, WRONG, 1);
        call.inputsHash = inputsHash;
        golden.setCall(callId, call);

        VouchSlasher.SignedResult memory s;
        s.inputsHash = inputsHash;
        s.resultHash = resultHash;
        s.signature = one.signature;
        assertEq(
            goldenSlasher.evidenceDigest(serviceId, callId, s), vm.parseJsonBytes32(json, ".result.digest"), "digest"
        );
        uint256 id = goldenSlasher.proposeDeviation(callId, key7.operator, 7, s);
        assertEq(goldenSlasher.getProposal(id).operator, key7.operator, "proposed");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reverts: proposal
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_ProposeDeviation_CallNotSettled() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_OPEN, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, CALL_OPEN, IVouchProtocol.CallStatus.Open)
        );
        slasher.proposeDeviation(CALL_OPEN, op2, 2, s);
        s = _signed(sk2, CALL_REFUNDED, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.CallNotSettled.selector, CALL_REFUNDED, IVouchProtocol.CallStatus.Refunded
            )
        );
        slasher.proposeDeviation(CALL_REFUNDED, op2, 2, s);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, uint256(99), IVouchProtocol.CallStatus.None)
        );
        slasher.proposeDeviation(99, op2, 2, s);
    }

    function test_RevertWhen_ProposeDeviation_SameResultAsCertificate() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, RESULT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotDeviating.selector, CALL_SETTLED, RESULT));
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    function test_RevertWhen_ProposeDeviation_OtherInputs() external {
        bytes32 other = keccak256("other inputs");
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, other, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InputsMismatch.selector, CALL_SETTLED, INPUTS, other));
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    function test_RevertWhen_ProposeDeviation_ForgedSignature() external {
        VouchSlasher.SignedResult memory s = _signed(0xF0F0, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, _resultDigest(CALL_SETTLED, INPUTS, WRONG)
            )
        );
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    function test_RevertWhen_ProposeDeviation_SignatureByAnotherOperator() external {
        VouchSlasher.SignedResult memory s = _signed(sk1, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, _resultDigest(CALL_SETTLED, INPUTS, WRONG)
            )
        );
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    function test_RevertWhen_ProposeDeviation_WrongSlot() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 0, op2, op0));
        slasher.proposeDeviation(CALL_SETTLED, op2, 0, s);
        // op3 is in service 2, not in the call's service 1.
        s = _signed(sk3, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 0, op3, op0));
        slasher.proposeDeviation(CALL_SETTLED, op3, 0, s);
    }

    /// @dev The deviation must be about the call's own service: a signature bound to another service fails.
    function test_RevertWhen_ProposeDeviation_SignedForAnotherService() external {
        VouchSlasher.SignedResult memory s = _single(sk0, address(protocol), OTHER_SERVICE, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op0, _resultDigest(CALL_SETTLED, INPUTS, WRONG)
            )
        );
        slasher.proposeDeviation(CALL_SETTLED, op0, 0, s);
    }

    function test_RevertWhen_ProposeDeviation_BadMerkleProof() external {
        VouchSlasher.SignedResult memory s =
            _batch(sk2, address(protocol), SERVICE, _threeLeaves(CALL_SETTLED, WRONG), 1);
        s.proof[1] = keccak256("not a sibling");
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidMerkleProof.selector,
                s.batchRoot,
                keccak256(abi.encode(CALL_SETTLED, INPUTS, WRONG))
            )
        );
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    function test_RevertWhen_ProposeDeviation_Twice() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, WRONG_2);
        bytes memory expected = abi.encodeWithSelector(
            VouchSlasher.AlreadyReported.selector, op2, CALL_SETTLED, VouchSlasher.Fault.Deviation
        );
        vm.expectRevert(expected);
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        // Vetoed is final: no second proposal either.
        vm.prank(ARBITER);
        slasher.vetoDeviation(id);
        vm.expectRevert(expected);
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Vetoed, "still vetoed");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reverts: veto and execution
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_VetoDeviation_AfterWindow() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        uint64 executableAt = START + DISPUTE_WINDOW;
        bytes memory expected = abi.encodeWithSelector(VouchSlasher.VetoWindowClosed.selector, id, executableAt);
        vm.warp(executableAt);
        vm.prank(ARBITER);
        vm.expectRevert(expected);
        slasher.vetoDeviation(id);
        vm.warp(executableAt + 30 days);
        vm.prank(ARBITER);
        vm.expectRevert(expected);
        slasher.vetoDeviation(id);
    }

    function test_RevertWhen_VetoDeviation_NotArbiter() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        vm.prank(PROPOSER);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotArbiter.selector, id, PROPOSER, ARBITER));
        slasher.vetoDeviation(id);
        vm.prank(op2);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotArbiter.selector, id, op2, ARBITER));
        slasher.vetoDeviation(id);
    }

    /// @dev A blueprint without an arbiter: nobody can veto (not even address zero's impersonator).
    function test_RevertWhen_VetoDeviation_NoArbiter() external {
        VouchSlasher.SignedResult memory s =
            _single(sk3, address(protocol), OTHER_SERVICE, CALL_OTHER_SERVICE, INPUTS, WRONG);
        uint256 id = slasher.proposeDeviation(CALL_OTHER_SERVICE, op3, 0, s);
        vm.prank(ARBITER);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotArbiter.selector, id, ARBITER, address(0)));
        slasher.vetoDeviation(id);
        vm.prank(address(0));
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotArbiter.selector, id, address(0), address(0)));
        slasher.vetoDeviation(id);
    }

    function test_RevertWhen_VetoDeviation_NotPending() external {
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, 1, VouchSlasher.ProposalStatus.None)
        );
        slasher.vetoDeviation(1);
        uint256 id = _propose(sk2, op2, 2, WRONG);
        vm.startPrank(ARBITER);
        slasher.vetoDeviation(id);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, id, VouchSlasher.ProposalStatus.Vetoed)
        );
        slasher.vetoDeviation(id);
        vm.stopPrank();
    }

    function test_RevertWhen_ExecuteDeviation_BeforeWindow() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        bytes memory expected =
            abi.encodeWithSelector(VouchSlasher.DisputeWindowOpen.selector, id, START + DISPUTE_WINDOW);
        vm.expectRevert(expected);
        slasher.executeDeviation(id);
        vm.warp(START + DISPUTE_WINDOW - 1);
        vm.expectRevert(expected);
        slasher.executeDeviation(id);
    }

    function test_RevertWhen_ExecuteDeviation_AfterVeto() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        vm.prank(ARBITER);
        slasher.vetoDeviation(id);
        vm.warp(START + DISPUTE_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, id, VouchSlasher.ProposalStatus.Vetoed)
        );
        slasher.executeDeviation(id);
        assertEq(staking.slashCount(), 0, "nothing slashed");
    }

    function test_RevertWhen_ExecuteDeviation_Twice() external {
        uint256 id = _propose(sk2, op2, 2, WRONG);
        vm.warp(START + DISPUTE_WINDOW);
        slasher.executeDeviation(id);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, id, VouchSlasher.ProposalStatus.Executed)
        );
        slasher.executeDeviation(id);
        // Nor can the arbiter veto an executed proposal.
        vm.prank(ARBITER);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, id, VouchSlasher.ProposalStatus.Executed)
        );
        slasher.vetoDeviation(id);
        assertEq(staking.slashCount(), 1, "one slash");
    }

    function test_RevertWhen_ExecuteDeviation_UnknownProposal() external {
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, 7, VouchSlasher.ProposalStatus.None)
        );
        slasher.executeDeviation(7);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev For any window and any elapsed time: before `executableAt` only the veto works, from it only execution.
    function testFuzz_Deviation_Timing(uint32 window, uint256 elapsed, uint64 start) external {
        start = uint64(bound(start, START, type(uint32).max));
        elapsed = bound(elapsed, 0, uint256(window) * 2 + 1);
        IVouchProtocol.Policy memory policy = _policy();
        policy.disputeWindow = window;
        _setPolicy(policy);
        vm.warp(start);
        uint256 id = _propose(sk2, op2, 2, WRONG);
        uint64 executableAt = start + window;
        assertEq(slasher.getProposal(id).executableAt, executableAt, "executableAt");
        vm.warp(start + elapsed);

        if (elapsed < window) {
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.DisputeWindowOpen.selector, id, executableAt));
            slasher.executeDeviation(id);
            vm.prank(ARBITER);
            slasher.vetoDeviation(id);
            vm.warp(uint256(executableAt) + 1);
            vm.expectRevert(
                abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, id, VouchSlasher.ProposalStatus.Vetoed)
            );
            slasher.executeDeviation(id);
            assertEq(staking.slashCount(), 0, "vetoed: no slash");
        } else {
            vm.prank(ARBITER);
            vm.expectRevert(abi.encodeWithSelector(VouchSlasher.VetoWindowClosed.selector, id, executableAt));
            slasher.vetoDeviation(id);
            slasher.executeDeviation(id);
            assertEq(staking.slashCount(), 1, "executed: one slash");
        }
    }

    /// @dev Any stake and policy at execution time: amount and split follow the formula, with the proposer as reporter.
    function testFuzz_ExecuteDeviation_Amounts(uint256 stake, uint16 bps, uint16 payerBps, uint16 reporterBps)
        external
    {
        stake = bound(stake, 0, 1e36);
        uint256 id = _propose(sk2, op2, 2, WRONG);
        IVouchProtocol.Policy memory policy = _policy();
        policy.deviationSlashBps = bps;
        policy.payerShareBps = payerBps;
        policy.reporterShareBps = reporterBps;
        _setPolicy(policy);
        staking.setSlashableStake(op2, stake);
        vm.warp(START + DISPUTE_WINDOW);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(stake, bps, payerBps, reporterBps);

        vm.prank(EXECUTOR);
        uint256 slashed = slasher.executeDeviation(id);
        assertEq(slashed, amount, "slashed");
        if (amount == 0) {
            assertEq(staking.slashCount(), 0, "no call");
        } else {
            _assertSlash(0, op2, amount, PAYER, toPayer, PROPOSER, toReporter);
        }
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Executed, "executed");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev `PROPOSER` proposes that the operator of `slot` signed `resultHash` on the settled call.
    function _propose(uint256 secretKey, address operator, uint256 slot, bytes32 resultHash)
        internal
        returns (uint256 id)
    {
        VouchSlasher.SignedResult memory s = _signed(secretKey, CALL_SETTLED, INPUTS, resultHash);
        vm.prank(PROPOSER);
        id = slasher.proposeDeviation(CALL_SETTLED, operator, slot, s);
    }
}
