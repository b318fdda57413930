// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {MockVouchProtocol, MockVouchStaking} from "./Mocks.sol";
import {SlashSigner} from "./SlashSigner.sol";

/// @title SlashingBase
/// @notice Fixture of the slasher tests: the golden-vector keys 0..4 registered in a real `KeyRegistry` (etched at the
/// vectors' address, chain id 31337), a mock protocol and a mock staking contract, and a `VouchSlasher` over them.
/// @dev Service 1 (blueprint 1, arbiter set) has operators [op0, op1, op2]; service 2 (blueprint 2, no arbiter) has
/// [op3, op0]; service 3 has one operator without a BLS key. `outsider` (key 4) is registered but in no service.
/// Calls: 10 open, 11 settled (op0 and op1 signed `RESULT`), 12 refunded (all in service 1); 20 settled in service 2;
/// 30 open in service 3.
abstract contract SlashingBase is SlashSigner {
    uint64 internal constant BLUEPRINT = 1;
    uint64 internal constant BLUEPRINT_NO_ARBITER = 2;
    uint64 internal constant SERVICE = 1;
    uint64 internal constant OTHER_SERVICE = 2;
    uint64 internal constant KEYLESS_SERVICE = 3;
    uint256 internal constant CALL_OPEN = 10;
    uint256 internal constant CALL_SETTLED = 11;
    uint256 internal constant CALL_REFUNDED = 12;
    uint256 internal constant CALL_OTHER_SERVICE = 20;
    uint256 internal constant CALL_KEYLESS = 30;

    uint16 internal constant EQUIVOCATION_BPS = 5000;
    uint16 internal constant DEVIATION_BPS = 2000;
    uint16 internal constant MISSED_BPS = 100;
    uint16 internal constant PAYER_BPS = 5000;
    uint16 internal constant REPORTER_BPS = 1000;
    uint32 internal constant DISPUTE_WINDOW = 2 days;
    uint8 internal constant JAIL_AFTER = 3;
    uint256 internal constant STAKE = 1_000_000e18;
    uint64 internal constant START = 1_700_000_000;

    bytes32 internal constant INPUTS = keccak256("inputs");
    bytes32 internal constant RESULT = keccak256("result");
    bytes32 internal constant WRONG = keccak256("wrong result");
    bytes32 internal constant WRONG_2 = keccak256("another wrong result");

    address internal constant PAYER = address(0xBA7E5);
    address internal constant REPORTER = address(0x5E9047);
    address internal constant ARBITER = address(0xA5B17E5);
    address internal constant KEYLESS = address(0xBEEF);

    KeyRegistry internal registry;
    MockVouchProtocol internal protocol;
    MockVouchStaking internal staking;
    VouchSlasher internal slasher;

    address internal op0;
    address internal op1;
    address internal op2;
    address internal op3;
    address internal outsider;
    uint256 internal sk0;
    uint256 internal sk1;
    uint256 internal sk2;
    uint256 internal sk3;
    uint256 internal skOutsider;

    function setUp() public virtual {
        string memory json = _readVectors();
        registry = _deployRegistry(json);
        Key[] memory keys = _keys(json);
        uint256[] memory secretKeys = _secretKeys(json);
        for (uint256 i; i < 5; ++i) {
            vm.prank(keys[i].operator);
            registry.registerKey(keys[i].pubkey, keys[i].pop);
        }
        (op0, op1, op2, op3, outsider) =
        (keys[0].operator, keys[1].operator, keys[2].operator, keys[3].operator, keys[4].operator);
        (sk0, sk1, sk2, sk3, skOutsider) = (secretKeys[0], secretKeys[1], secretKeys[2], secretKeys[3], secretKeys[4]);
        vm.warp(START);

        protocol = new MockVouchProtocol();
        staking = new MockVouchStaking();
        slasher = new VouchSlasher(protocol, staking, registry);
        staking.setSlasher(address(slasher));
        vm.label(address(slasher), "slasher");
        vm.label(op0, "op0");
        vm.label(op1, "op1");
        vm.label(op2, "op2");
        vm.label(op3, "op3");

        protocol.setBlueprint(BLUEPRINT, _blueprint(ARBITER, _policy()));
        protocol.setBlueprint(BLUEPRINT_NO_ARBITER, _blueprint(address(0), _policy()));
        protocol.setService(SERVICE, _service(BLUEPRINT, _three(op0, op1, op2)));
        address[] memory other = new address[](2);
        (other[0], other[1]) = (op3, op0);
        protocol.setService(OTHER_SERVICE, _service(BLUEPRINT_NO_ARBITER, other));
        address[] memory keyless = new address[](1);
        keyless[0] = KEYLESS;
        protocol.setService(KEYLESS_SERVICE, _service(BLUEPRINT, keyless));

        protocol.setCall(CALL_OPEN, _call(SERVICE, IVouchProtocol.CallStatus.Open, 0, 0));
        protocol.setCall(CALL_SETTLED, _call(SERVICE, IVouchProtocol.CallStatus.Settled, RESULT, 0x3));
        protocol.setCall(CALL_REFUNDED, _call(SERVICE, IVouchProtocol.CallStatus.Refunded, 0, 0));
        protocol.setCall(CALL_OTHER_SERVICE, _call(OTHER_SERVICE, IVouchProtocol.CallStatus.Settled, RESULT, 0x1));
        protocol.setCall(CALL_KEYLESS, _call(KEYLESS_SERVICE, IVouchProtocol.CallStatus.Open, 0, 0));

        staking.setSlashableStake(op0, STAKE);
        staking.setSlashableStake(op1, STAKE);
        staking.setSlashableStake(op2, STAKE);
        staking.setSlashableStake(op3, STAKE);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fixture builders
    // ---------------------------------------------------------------------------------------------------------------

    function _policy() internal pure returns (IVouchProtocol.Policy memory) {
        return IVouchProtocol.Policy({
            quorumBps: 6667,
            minSigners: 1,
            developerFeeBps: 500,
            equivocationSlashBps: EQUIVOCATION_BPS,
            deviationSlashBps: DEVIATION_BPS,
            missedDeadlineSlashBps: MISSED_BPS,
            payerShareBps: PAYER_BPS,
            reporterShareBps: REPORTER_BPS,
            disputeWindow: DISPUTE_WINDOW,
            jailAfterMisses: JAIL_AFTER
        });
    }

    function _blueprint(address arbiter, IVouchProtocol.Policy memory policy)
        internal
        pure
        returns (IVouchProtocol.Blueprint memory blueprint)
    {
        blueprint.owner = address(0xB1E);
        blueprint.arbiter = arbiter;
        blueprint.metadataHash = keccak256("metadata");
        blueprint.metadataUri = "ipfs://blueprint";
        blueprint.policy = policy;
        blueprint.jobs = new IVouchProtocol.Job[](1);
        blueprint.jobs[0] =
            IVouchProtocol.Job({price: 1e6, deadline: 1 hours, verification: IVouchProtocol.Verification.Exact});
    }

    function _service(uint64 blueprintId, address[] memory operators)
        internal
        pure
        returns (IVouchProtocol.Service memory service)
    {
        service.blueprintId = blueprintId;
        service.status = IVouchProtocol.ServiceStatus.Active;
        service.expiry = START + 365 days;
        service.publicAccess = true;
        service.owner = address(0x0517E);
        service.operators = operators;
        service.stakes = new uint256[](operators.length);
        for (uint256 i; i < operators.length; ++i) {
            service.stakes[i] = STAKE;
            service.totalStake += STAKE;
        }
    }

    function _call(uint64 serviceId, IVouchProtocol.CallStatus status, bytes32 resultHash, uint256 bitmap)
        internal
        pure
        returns (IVouchProtocol.Call memory)
    {
        bool settled = status == IVouchProtocol.CallStatus.Settled;
        return IVouchProtocol.Call({
            serviceId: serviceId,
            jobIndex: 0,
            status: status,
            deadline: START + 1 hours,
            settledAt: settled ? START + 10 minutes : 0,
            payer: PAYER,
            payment: 1e6,
            inputsHash: INPUTS,
            resultHash: resultHash,
            signerBitmap: bitmap
        });
    }

    function _three(address a, address b, address c) internal pure returns (address[] memory operators) {
        operators = new address[](3);
        (operators[0], operators[1], operators[2]) = (a, b, c);
    }

    /// @dev Replaces blueprint 1's policy.
    function _setPolicy(IVouchProtocol.Policy memory policy) internal {
        protocol.setBlueprint(BLUEPRINT, _blueprint(ARBITER, policy));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Evidence helpers
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Single-form evidence about a service-1 call, bound to this protocol.
    function _signed(uint256 secretKey, uint256 callId, bytes32 inputsHash, bytes32 resultHash)
        internal
        view
        returns (VouchSlasher.SignedResult memory)
    {
        return _single(secretKey, address(protocol), SERVICE, callId, inputsHash, resultHash);
    }

    /// @dev A signed output commitment about a service-1 call, bound to this protocol.
    function _committed(uint256 secretKey, uint256 callId, bytes32 inputsHash, bytes memory output)
        internal
        view
        returns (VouchSlasher.SignedCommitment memory)
    {
        return _commit(secretKey, address(protocol), SERVICE, callId, inputsHash, output);
    }

    /// @dev The commitment digest of a commitment about a service-1 call.
    function _commitmentDigest(uint256 callId, bytes32 inputsHash, bytes32 outputHash) internal view returns (bytes32) {
        return VouchDigest.commitmentDigest(block.chainid, address(protocol), SERVICE, callId, inputsHash, outputHash);
    }

    /// @dev The result digest of a statement about a service-1 call.
    function _resultDigest(uint256 callId, bytes32 inputsHash, bytes32 resultHash) internal view returns (bytes32) {
        return VouchDigest.resultDigest(block.chainid, address(protocol), SERVICE, callId, inputsHash, resultHash);
    }

    /// @dev A three-leaf batch of service 1: other call, `callId` with `resultHash`, other call.
    function _threeLeaves(uint256 callId, bytes32 resultHash) internal pure returns (Leaf[] memory leaves) {
        leaves = new Leaf[](3);
        leaves[0] = Leaf({callId: 1000, inputsHash: keccak256("i0"), resultHash: keccak256("r0")});
        leaves[1] = Leaf({callId: callId, inputsHash: INPUTS, resultHash: resultHash});
        leaves[2] = Leaf({callId: 1002, inputsHash: keccak256("i2"), resultHash: keccak256("r2")});
    }

    /// @dev Asserts slash record `i`.
    function _assertSlash(
        uint256 i,
        address operator,
        uint256 amount,
        address payer,
        uint256 toPayer,
        address reporter,
        uint256 toReporter
    ) internal view {
        MockVouchStaking.SlashRecord memory r = staking.slashAt(i);
        assertEq(r.operator, operator, "slash operator");
        assertEq(r.amount, amount, "slash amount");
        assertEq(r.split.payer, payer, "split payer");
        assertEq(r.split.toPayer, toPayer, "split toPayer");
        assertEq(r.split.reporter, reporter, "split reporter");
        assertEq(r.split.toReporter, toReporter, "split toReporter");
    }

    /// @dev The split `VouchSlasher` computes for `stake`, `bps` and the shares (clamped as the contract does).
    function _expected(uint256 stake, uint256 bps, uint256 payerBps, uint256 reporterBps)
        internal
        pure
        returns (uint256 amount, uint256 toPayer, uint256 toReporter)
    {
        if (bps > 10_000) bps = 10_000;
        if (payerBps > 10_000) payerBps = 10_000;
        if (reporterBps > 10_000 - payerBps) reporterBps = 10_000 - payerBps;
        amount = stake * bps / 10_000;
        toPayer = amount * payerBps / 10_000;
        toReporter = amount * reporterBps / 10_000;
    }

    /// @dev Proposal `id` is pending against `operator` for `callId`, by `proposer`, executable at `executableAt`, and
    /// the fault is marked reported with nothing slashed yet.
    function _assertPendingProposal(uint256 id, address operator, uint256 callId, address proposer, uint64 executableAt)
        internal
        view
    {
        assertEq(slasher.proposalIdOf(operator, callId), id, "id of");
        VouchSlasher.DeviationProposal memory p = slasher.getProposal(id);
        assertEq(p.operator, operator, "operator");
        assertEq(p.callId, callId, "call");
        assertEq(p.proposer, proposer, "proposer");
        assertEq(p.executableAt, executableAt, "executableAt");
        assertTrue(p.status == VouchSlasher.ProposalStatus.Pending, "pending");
        assertTrue(slasher.isReported(operator, callId, VouchSlasher.Fault.Deviation), "reported");
        assertEq(staking.slashCount(), 0, "nothing slashed yet");
    }
}
