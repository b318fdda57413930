// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {MockVouchProtocol} from "./Mocks.sol";
import {SlashingBase} from "./SlashingBase.sol";

/// @title CommitmentDeviationTest
/// @notice `proposeCommitmentDeviation`: an operator of a tolerant job committed (tag `COMMIT_TAG`) to an output other
/// than the certified one; the proposal is vetoed or executed like any deviation (docs/design/tolerant-verification.md).
contract CommitmentDeviationTest is SlashingBase {
    address internal constant PROPOSER = address(0x9409053);
    address internal constant EXECUTOR = address(0xE8EC);

    /// @dev A settled call of service 3 (blueprint 1, arbiter set), whose only operator has no BLS key.
    uint256 internal constant CALL_KEYLESS_SETTLED = 31;

    bytes internal constant OUTPUT = hex"0000803f000000400000404000008040"; // [1.0, 2.0, 3.0, 4.0] as f32 LE
    bytes internal constant OUTPUT_2 = hex"cdcc8c3f000000400000404000008040"; // [1.1, 2.0, 3.0, 4.0]

    function setUp() public override {
        super.setUp();
        protocol.setCall(CALL_KEYLESS_SETTLED, _call(KEYLESS_SERVICE, IVouchProtocol.CallStatus.Settled, RESULT, 0x1));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Success
    // ---------------------------------------------------------------------------------------------------------------

    function test_ProposeCommitmentDeviation_CreatesPendingProposal() external {
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        uint64 executableAt = START + DISPUTE_WINDOW;
        uint256 expectedId = uint256(keccak256(abi.encode(op2, CALL_SETTLED)));
        vm.expectEmit(address(slasher));
        emit VouchSlasher.CommitmentDeviationProposed(
            expectedId, op2, CALL_SETTLED, PROPOSER, keccak256(OUTPUT), RESULT, executableAt
        );
        vm.prank(PROPOSER);
        uint256 id = slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);

        assertEq(id, expectedId, "deterministic id");
        _assertPendingProposal(id, op2, CALL_SETTLED, PROPOSER, executableAt);
    }

    /// @dev End to end: proposed, not executable during the window, then slashed exactly `deviationSlashBps` with the
    /// proposer as reporter.
    function test_ExecuteCommitmentDeviation_SlashesDeviationBps() external {
        uint256 id = _propose(sk2, op2, 2, OUTPUT);
        vm.warp(START + DISPUTE_WINDOW - 1);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.DisputeWindowOpen.selector, id, START + DISPUTE_WINDOW));
        slasher.executeDeviation(id);

        vm.warp(START + DISPUTE_WINDOW);
        (uint256 amount, uint256 toPayer, uint256 toReporter) = _expected(STAKE, DEVIATION_BPS, PAYER_BPS, REPORTER_BPS);
        assertEq(amount, STAKE * DEVIATION_BPS / 10_000, "deviationSlashBps of the stake");
        vm.expectEmit(address(slasher));
        emit VouchSlasher.DeviationSlashed(id, op2, CALL_SETTLED, EXECUTOR, amount, amount);
        vm.prank(EXECUTOR);
        uint256 slashed = slasher.executeDeviation(id);

        assertEq(slashed, amount, "returned");
        assertEq(staking.slashCount(), 1, "one slash");
        _assertSlash(0, op2, amount, PAYER, toPayer, PROPOSER, toReporter);
        assertEq(staking.stakeOf(op2), STAKE - amount, "stake reduced by exactly the amount");
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Executed, "executed");
    }

    /// @dev The arbiter re-checks the tolerance during the window and vetoes; the proposal never executes.
    function test_VetoCommitmentDeviation_CancelsForGood() external {
        uint256 id = _propose(sk2, op2, 2, OUTPUT);
        vm.warp(START + DISPUTE_WINDOW - 1);
        vm.expectEmit(address(slasher));
        emit VouchSlasher.DeviationVetoed(id, ARBITER);
        vm.prank(ARBITER);
        slasher.vetoDeviation(id);
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Vetoed, "vetoed");

        vm.warp(START + DISPUTE_WINDOW + 1 days);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.ProposalNotPending.selector, id, VouchSlasher.ProposalStatus.Vetoed)
        );
        slasher.executeDeviation(id);
        assertEq(staking.slashCount(), 0, "nothing slashed");
    }

    /// @dev Only the arbiter vetoes a commitment deviation, as any deviation.
    function test_RevertWhen_VetoCommitmentDeviation_NotArbiter() external {
        uint256 id = _propose(sk2, op2, 2, OUTPUT);
        vm.prank(op2);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotArbiter.selector, id, op2, ARBITER));
        slasher.vetoDeviation(id);
    }

    /// @dev An operator in the certificate's bitmap (it signed the canonical result) whose own commitment is another
    /// output can be proposed: the arbiter decides whether the two agree within tolerance.
    function test_ProposeCommitmentDeviation_SignerOfTheCertificate() external {
        uint256 id = _propose(sk0, op0, 0, OUTPUT);
        assertEq(slasher.getProposal(id).operator, op0, "op0");
    }

    /// @dev An empty output is an output like any other (`keccak256("")`).
    function test_ProposeCommitmentDeviation_EmptyOutput() external {
        uint256 id = _propose(sk2, op2, 2, "");
        assertEq(slasher.getProposal(id).operator, op2, "an empty output is an output");
    }

    function test_CommitmentEvidenceDigest_IsTheCommitmentDigest() external view {
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        bytes32 digest = slasher.commitmentEvidenceDigest(SERVICE, CALL_SETTLED, c);
        assertEq(digest, _commitmentDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT)), "commitmentDigest");
        assertEq(
            digest,
            keccak256(
                abi.encode(
                    keccak256("vouch.v1.commit"),
                    block.chainid,
                    address(protocol),
                    SERVICE,
                    CALL_SETTLED,
                    INPUTS,
                    keccak256(OUTPUT)
                )
            ),
            "spec encoding"
        );
        assertTrue(digest != _resultDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT)), "not the result digest");
    }

    /// @dev Digest and signature agreement with the Rust side: `commitment` in the golden vectors is key 7's signature,
    /// made by `vouch_crypto`, on `vouch_primitives::commitment_digest` (chain 31337, protocol 0xcafE, service 7, call
    /// 42); a slasher whose protocol sits at 0xcafE accepts it, and its published output, as evidence.
    function test_ProposeCommitmentDeviation_AcceptsGoldenVectorCommitment() external {
        string memory json = _readVectors();
        uint256 signer = vm.parseJsonUint(json, ".commitment.signer");
        Key memory key = _keys(json)[signer];
        vm.prank(key.operator);
        registry.registerKey(key.pubkey, key.pop);

        MockVouchProtocol golden = MockVouchProtocol(vm.parseJsonAddress(json, ".protocol"));
        vm.etch(address(golden), address(protocol).code);
        VouchSlasher goldenSlasher = new VouchSlasher(golden, staking, registry);
        staking.setSlasher(address(goldenSlasher));
        uint64 serviceId = uint64(vm.parseJsonUint(json, ".commitment.serviceId"));
        uint256 callId = vm.parseJsonUint(json, ".commitment.callId");
        bytes memory output = vm.parseJsonBytes(json, ".commitment.output");
        VouchSlasher.SignedCommitment memory c = VouchSlasher.SignedCommitment({
            inputsHash: vm.parseJsonBytes32(json, ".commitment.inputsHash"),
            outputHash: vm.parseJsonBytes32(json, ".commitment.outputHash"),
            signature: vm.parseJsonBytes(json, ".commitment.signature")
        });
        assertEq(keccak256(output), c.outputHash, "vectors: outputHash = keccak256(output)");

        address[] memory operators = new address[](signer + 1);
        for (uint256 i; i < signer; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            operators[i] = address(uint160(0x1000 + i)); // i < signer, a small slot
        }
        operators[signer] = key.operator;
        golden.setBlueprint(BLUEPRINT, _blueprint(ARBITER, _policy()));
        golden.setService(serviceId, _service(BLUEPRINT, operators));
        IVouchProtocol.Call memory call = _call(serviceId, IVouchProtocol.CallStatus.Settled, RESULT, 1);
        call.inputsHash = c.inputsHash;
        golden.setCall(callId, call);

        assertEq(
            goldenSlasher.commitmentEvidenceDigest(serviceId, callId, c),
            vm.parseJsonBytes32(json, ".commitment.digest"),
            "digest"
        );
        uint256 id = goldenSlasher.proposeCommitmentDeviation(callId, key.operator, signer, c, output);
        assertEq(goldenSlasher.getProposal(id).operator, key.operator, "proposed");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reverts
    // ---------------------------------------------------------------------------------------------------------------

    function test_RevertWhen_ProposeCommitmentDeviation_CallNotSettled() external {
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_OPEN, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, CALL_OPEN, IVouchProtocol.CallStatus.Open)
        );
        slasher.proposeCommitmentDeviation(CALL_OPEN, op2, 2, c, OUTPUT);
        c = _committed(sk2, CALL_REFUNDED, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.CallNotSettled.selector, CALL_REFUNDED, IVouchProtocol.CallStatus.Refunded
            )
        );
        slasher.proposeCommitmentDeviation(CALL_REFUNDED, op2, 2, c, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.CallNotSettled.selector, uint256(99), IVouchProtocol.CallStatus.None)
        );
        slasher.proposeCommitmentDeviation(99, op2, 2, c, OUTPUT);
    }

    /// @dev A commitment to the certified output is no deviation (`RESULT` is `keccak256("result")`).
    function test_RevertWhen_ProposeCommitmentDeviation_SameHashAsCertified() external {
        bytes memory certified = bytes("result");
        assertEq(keccak256(certified), RESULT, "fixture");
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, certified);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.NotDeviating.selector, CALL_SETTLED, RESULT));
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, certified);
    }

    function test_RevertWhen_ProposeCommitmentDeviation_OtherInputs() external {
        bytes32 other = keccak256("other inputs");
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, other, OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.InputsMismatch.selector, CALL_SETTLED, INPUTS, other));
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
    }

    /// @dev The published bytes must be the committed ones, so the arbiter re-checks what was really committed.
    function test_RevertWhen_ProposeCommitmentDeviation_WrongOutputBytes() external {
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.OutputMismatch.selector, CALL_SETTLED, keccak256(OUTPUT), keccak256(OUTPUT_2)
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT_2);
        vm.expectRevert(
            abi.encodeWithSelector(VouchSlasher.OutputMismatch.selector, CALL_SETTLED, keccak256(OUTPUT), keccak256(""))
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, "");
    }

    function test_RevertWhen_ProposeCommitmentDeviation_ForgedSignature() external {
        VouchSlasher.SignedCommitment memory c = _committed(0xF0F0, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, _commitmentDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT))
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
    }

    function test_RevertWhen_ProposeCommitmentDeviation_SignatureByAnotherOperator() external {
        VouchSlasher.SignedCommitment memory c = _committed(sk1, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, _commitmentDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT))
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
    }

    /// @dev The commitment is bound to the call's service, call id and protocol.
    function test_RevertWhen_ProposeCommitmentDeviation_SignedForAnotherCall() external {
        bytes memory expected = abi.encodeWithSelector(
            VouchSlasher.InvalidSignature.selector, op0, _commitmentDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT))
        );
        VouchSlasher.SignedCommitment memory c =
            _commit(sk0, address(protocol), OTHER_SERVICE, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(expected);
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op0, 0, c, OUTPUT);
        c = _committed(sk0, CALL_OPEN, INPUTS, OUTPUT);
        vm.expectRevert(expected);
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op0, 0, c, OUTPUT);
        c = _commit(sk0, address(0xDEAD), SERVICE, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(expected);
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op0, 0, c, OUTPUT);
    }

    /// @dev Domain separation: the operator's RESULT-tag signature over the very same words (inputs, hash of the
    /// output) is not a commitment. An honest operator's result signature can never be replayed as one.
    function test_RevertWhen_ProposeCommitmentDeviation_ResultSignatureAsCommitment() external {
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, keccak256(OUTPUT));
        VouchSlasher.SignedCommitment memory c =
            VouchSlasher.SignedCommitment({inputsHash: INPUTS, outputHash: keccak256(OUTPUT), signature: s.signature});
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, _commitmentDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT))
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
        // The same signature does prove a result deviation: the evidence is real, only its kind is wrong.
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    /// @dev Domain separation the other way: a commitment is not a result statement, so it neither proves a result
    /// deviation nor, with the operator's signature on the canonical result, an equivocation (the honest tolerant
    /// flow: commit to one's own output, then sign the canonical one).
    function test_RevertWhen_CommitmentSignatureAsResult() external {
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        VouchSlasher.SignedResult memory s;
        s.inputsHash = INPUTS;
        s.resultHash = keccak256(OUTPUT);
        s.signature = c.signature;
        bytes memory expected = abi.encodeWithSelector(
            VouchSlasher.InvalidSignature.selector, op2, _resultDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT))
        );
        vm.expectRevert(expected);
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        VouchSlasher.SignedResult memory canonical = _signed(sk2, CALL_SETTLED, INPUTS, RESULT);
        vm.expectRevert(expected);
        slasher.reportEquivocation(SERVICE, CALL_SETTLED, op2, 2, canonical, s);
    }

    function test_RevertWhen_ProposeCommitmentDeviation_Twice() external {
        uint256 id = _propose(sk2, op2, 2, OUTPUT);
        bytes memory expected = abi.encodeWithSelector(
            VouchSlasher.AlreadyReported.selector, op2, CALL_SETTLED, VouchSlasher.Fault.Deviation
        );
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT_2);
        vm.expectRevert(expected);
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT_2);
        // Nor through the other entry point: one deviation per operator and call.
        VouchSlasher.SignedResult memory s = _signed(sk2, CALL_SETTLED, INPUTS, WRONG);
        vm.expectRevert(expected);
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
        // Vetoed is final.
        vm.prank(ARBITER);
        slasher.vetoDeviation(id);
        vm.expectRevert(expected);
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT_2);
        vm.expectRevert(expected);
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, s);
    }

    /// @dev A result deviation proposed first blocks a commitment deviation of the same operator and call.
    function test_RevertWhen_ProposeCommitmentDeviation_AfterResultDeviation() external {
        slasher.proposeDeviation(CALL_SETTLED, op2, 2, _signed(sk2, CALL_SETTLED, INPUTS, WRONG));
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.AlreadyReported.selector, op2, CALL_SETTLED, VouchSlasher.Fault.Deviation
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
        // Another operator of the same call is a separate proposal.
        uint256 id = _propose(sk1, op1, 1, OUTPUT);
        assertEq(id, slasher.proposalIdOf(op1, CALL_SETTLED), "op1's own proposal");
    }

    function test_RevertWhen_ProposeCommitmentDeviation_WrongSlot() external {
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 0, op2, op0));
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 0, c, OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 3, op2, address(0)));
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 3, c, OUTPUT);
        // op3 is in service 2, not in the call's service 1.
        c = _committed(sk3, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.WrongSlot.selector, SERVICE, 0, op3, op0));
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op3, 0, c, OUTPUT);
    }

    /// @dev Without an arbiter nobody could veto a proposal against honest floating-point noise: refused.
    function test_RevertWhen_ProposeCommitmentDeviation_NoArbiter() external {
        VouchSlasher.SignedCommitment memory c =
            _commit(sk3, address(protocol), OTHER_SERVICE, CALL_OTHER_SERVICE, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.CommitmentNotDisputable.selector,
                CALL_OTHER_SERVICE,
                BLUEPRINT_NO_ARBITER,
                address(0),
                DISPUTE_WINDOW
            )
        );
        slasher.proposeCommitmentDeviation(CALL_OTHER_SERVICE, op3, 0, c, OUTPUT);
    }

    /// @dev A zero dispute window leaves the arbiter no time to veto: refused too.
    function test_RevertWhen_ProposeCommitmentDeviation_ZeroWindow() external {
        IVouchProtocol.Policy memory policy = _policy();
        policy.disputeWindow = 0;
        _setPolicy(policy);
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.CommitmentNotDisputable.selector, CALL_SETTLED, BLUEPRINT, ARBITER, uint32(0)
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
    }

    function test_RevertWhen_ProposeCommitmentDeviation_OperatorKeyNotRegistered() external {
        VouchSlasher.SignedCommitment memory c =
            _commit(sk0, address(protocol), KEYLESS_SERVICE, CALL_KEYLESS_SETTLED, INPUTS, OUTPUT);
        vm.expectRevert(abi.encodeWithSelector(VouchSlasher.OperatorKeyNotRegistered.selector, KEYLESS));
        slasher.proposeCommitmentDeviation(CALL_KEYLESS_SETTLED, KEYLESS, 0, c, OUTPUT);
    }

    /// @dev A staking contract that calls back into the slasher during `slash` hits the reentrancy guard.
    function test_RevertWhen_ProposeCommitmentDeviation_Reentered() external {
        uint256 id = _propose(sk2, op2, 2, OUTPUT);
        VouchSlasher.SignedCommitment memory c = _committed(sk1, CALL_SETTLED, INPUTS, OUTPUT);
        staking.setReenter(
            address(slasher), abi.encodeCall(VouchSlasher.proposeCommitmentDeviation, (CALL_SETTLED, op1, 1, c, OUTPUT))
        );
        vm.warp(START + DISPUTE_WINDOW);
        vm.expectRevert(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        slasher.executeDeviation(id);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fuzz
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev For any committed output other than the certified one: the proposal goes through with exactly the
    /// committed bytes, and reverts `OutputMismatch` with any other bytes.
    function testFuzz_ProposeCommitmentDeviation_OutputBinding(bytes calldata output, bytes calldata published)
        external
    {
        vm.assume(keccak256(output) != RESULT);
        VouchSlasher.SignedCommitment memory c = _committed(sk2, CALL_SETTLED, INPUTS, output);
        if (keccak256(published) != keccak256(output)) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    VouchSlasher.OutputMismatch.selector, CALL_SETTLED, keccak256(output), keccak256(published)
                )
            );
            slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, published);
        }
        uint256 id = slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, output);
        assertTrue(slasher.getProposal(id).status == VouchSlasher.ProposalStatus.Pending, "pending");
    }

    /// @dev A commitment signed for any other call id is not evidence about this call.
    function testFuzz_RevertWhen_CommitmentForAnotherCall(uint256 otherCallId) external {
        vm.assume(otherCallId != CALL_SETTLED);
        VouchSlasher.SignedCommitment memory c = _committed(sk2, otherCallId, INPUTS, OUTPUT);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchSlasher.InvalidSignature.selector, op2, _commitmentDigest(CALL_SETTLED, INPUTS, keccak256(OUTPUT))
            )
        );
        slasher.proposeCommitmentDeviation(CALL_SETTLED, op2, 2, c, OUTPUT);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev `PROPOSER` proposes that the operator of `slot` committed to `output` on the settled call.
    function _propose(uint256 secretKey, address operator, uint256 slot, bytes memory output)
        internal
        returns (uint256 id)
    {
        VouchSlasher.SignedCommitment memory c = _committed(secretKey, CALL_SETTLED, INPUTS, output);
        vm.prank(PROPOSER);
        id = slasher.proposeCommitmentDeviation(CALL_SETTLED, operator, slot, c, output);
    }
}
