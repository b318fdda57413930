// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchProtocolEvents} from "../../src/protocol/VouchProtocolEvents.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {FeeToken, MockHooks, MockStaking} from "./Mocks.sol";
import {ProtocolBase} from "./ProtocolBase.sol";
import {Vm} from "../utils/Test.sol";

/// @title VouchProtocolTest
/// @notice Unit and fuzz tests of `VouchProtocol`: every function's success path and every revert.
contract VouchProtocolTest is ProtocolBase, VouchProtocolEvents {
    // ===============================================================================================================
    // Test helper: BlsSigner agrees with the golden vectors
    // ===============================================================================================================

    function test_BlsSigner_ReproducesGoldenAggregates() external view {
        string memory json = _readVectors();
        Aggregate[] memory aggregates = _aggregates(json);
        uint256[] memory sks = _secretKeys(json);
        bytes32 digest = vm.parseJsonBytes32(json, ".result.digest");
        for (uint256 j; j < aggregates.length; ++j) {
            assertEq(
                BlsSigner.signBitmap(sks, aggregates[j].bitmap, digest), aggregates[j].signature, aggregates[j].name
            );
        }
        // Individual signatures aggregated with G2ADD give the same point as the scalar sum.
        bytes[] memory sigs = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            sigs[i] = BlsSigner.sign(sks[i], digest);
        }
        assertEq(BlsSigner.aggregate(sigs), BlsSigner.signBitmap(sks, 7, digest), "G2ADD aggregate");
    }

    // ===============================================================================================================
    // Constructor
    // ===============================================================================================================

    function test_Constructor_SetsConfiguration() external view {
        assertEq(protocol.paymentToken(), address(token), "token");
        assertEq(address(protocol.STAKING()), address(staking), "staking");
        assertEq(address(protocol.KEY_REGISTRY()), address(registry), "registry");
        assertEq(protocol.TREASURY(), treasury, "treasury");
        assertEq(protocol.PROTOCOL_FEE_BPS(), PROTOCOL_FEE_BPS, "fee");
    }

    function test_RevertWhen_ConstructorGetsZeroAddresses() external {
        IERC20 t = IERC20(address(token));
        vm.expectRevert(ZeroAddress.selector);
        new VouchProtocol(IERC20(address(0)), staking, registry, treasury, 0);
        vm.expectRevert(ZeroAddress.selector);
        new VouchProtocol(t, MockStaking(address(0)), registry, treasury, 0);
        vm.expectRevert(ZeroAddress.selector);
        new VouchProtocol(t, staking, KeyRegistry(address(0)), treasury, 0);
        vm.expectRevert(ZeroAddress.selector);
        new VouchProtocol(t, staking, registry, address(0), 0);
    }

    function test_RevertWhen_StakingPaysRewardsInAnotherToken() external {
        MockStaking other = new MockStaking(IERC20(address(0xBEEF)));
        vm.expectRevert(abi.encodeWithSelector(PaymentTokenMismatch.selector, address(token), address(0xBEEF)));
        new VouchProtocol(IERC20(address(token)), other, registry, treasury, 0);
    }

    function test_RevertWhen_ConstructorFeeAbove10000() external {
        vm.expectRevert(abi.encodeWithSelector(InvalidBps.selector, 10_001));
        new VouchProtocol(IERC20(address(token)), staking, registry, treasury, 10_001);
    }

    // ===============================================================================================================
    // Blueprints
    // ===============================================================================================================

    function test_CreateBlueprint_StoresEverythingAndEmits() external {
        IVouchProtocol.Job[] memory jobs = _jobs();
        IVouchProtocol.Policy memory policy = _policy();
        vm.expectEmit(address(protocol));
        emit BlueprintCreated(2, developer, address(0xA4B), address(hooks), keccak256("m"), "uri", policy, jobs);
        vm.prank(developer);
        uint64 id = protocol.createBlueprint("uri", keccak256("m"), jobs, policy, address(0xA4B), address(hooks));
        assertEq(id, 2, "id");
        assertEq(protocol.blueprintCount(), 2, "count");
        IVouchProtocol.Blueprint memory b = protocol.getBlueprint(id);
        assertEq(b.owner, developer, "owner");
        assertEq(b.arbiter, address(0xA4B), "arbiter");
        assertEq(b.hooks, address(hooks), "hooks");
        assertEq(b.metadataHash, keccak256("m"), "hash");
        assertEq(bytes(b.metadataUri), bytes("uri"), "uri");
        assertEq(abi.encode(b.policy), abi.encode(policy), "policy");
        assertEq(abi.encode(b.jobs), abi.encode(jobs), "jobs");
    }

    function test_CreateBlueprint_AcceptsBoundaryValues() external {
        IVouchProtocol.Job[] memory jobs = new IVouchProtocol.Job[](32);
        for (uint256 i; i < 32; ++i) {
            jobs[i] = IVouchProtocol.Job({
                price: i % 2 == 0 ? uint96(1) : type(uint96).max,
                deadline: i % 2 == 0 ? uint32(60) : uint32(7 days),
                verification: IVouchProtocol.Verification(i % 3)
            });
        }
        IVouchProtocol.Policy memory policy = _policy();
        policy.quorumBps = 10_000;
        policy.developerFeeBps = 10_000 - PROTOCOL_FEE_BPS;
        policy.payerShareBps = 9000;
        policy.reporterShareBps = 1000;
        policy.disputeWindow = uint32(14 days - 7 days - 1);
        vm.prank(developer);
        protocol.createBlueprint("", bytes32(0), jobs, policy, address(0), address(0));
    }

    function _expectCreateRevert(
        IVouchProtocol.Job[] memory jobs,
        IVouchProtocol.Policy memory policy,
        bytes memory err
    ) internal {
        vm.expectRevert(err);
        vm.prank(developer);
        protocol.createBlueprint("", bytes32(0), jobs, policy, address(0), address(0));
    }

    function test_RevertWhen_CreateBlueprintWithBadJobs() external {
        IVouchProtocol.Policy memory policy = _policy();
        _expectCreateRevert(new IVouchProtocol.Job[](0), policy, abi.encodeWithSelector(InvalidJobCount.selector, 0));
        _expectCreateRevert(new IVouchProtocol.Job[](33), policy, abi.encodeWithSelector(InvalidJobCount.selector, 33));
        IVouchProtocol.Job[] memory jobs = _jobs();
        jobs[1].price = 0;
        _expectCreateRevert(jobs, policy, abi.encodeWithSelector(InvalidJobPrice.selector, 1, 0));
        jobs[1].price = uint128(type(uint96).max) + 1;
        _expectCreateRevert(
            jobs, policy, abi.encodeWithSelector(InvalidJobPrice.selector, 1, uint256(type(uint96).max) + 1)
        );
        jobs = _jobs();
        jobs[0].deadline = 59;
        _expectCreateRevert(jobs, policy, abi.encodeWithSelector(InvalidJobDeadline.selector, 0, 59));
        jobs[0].deadline = 7 days + 1;
        _expectCreateRevert(jobs, policy, abi.encodeWithSelector(InvalidJobDeadline.selector, 0, 7 days + 1));
    }

    function test_RevertWhen_CreateBlueprintWithBadPolicy() external {
        IVouchProtocol.Job[] memory jobs = _jobs();
        IVouchProtocol.Policy memory p = _policy();
        p.quorumBps = 0;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidQuorum.selector, 0));
        p.quorumBps = 10_001;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidQuorum.selector, 10_001));
        p = _policy();
        p.minSigners = 0;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidMinSigners.selector, 0));
        p = _policy();
        p.developerFeeBps = 10_001;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidBps.selector, 10_001));
        p.developerFeeBps = 9501;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(FeesTooHigh.selector, 9501, PROTOCOL_FEE_BPS));
        p = _policy();
        p.equivocationSlashBps = 10_001;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidBps.selector, 10_001));
        p = _policy();
        p.deviationSlashBps = 20_000;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidBps.selector, 20_000));
        p = _policy();
        p.missedDeadlineSlashBps = 10_001;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidBps.selector, 10_001));
        p = _policy();
        p.payerShareBps = 9001;
        p.reporterShareBps = 1000;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(InvalidSlashSplit.selector, 9001, 1000));
    }

    function test_RevertWhen_CreateBlueprintOutlivesUnbonding() external {
        IVouchProtocol.Job[] memory jobs = _jobs(); // max deadline 3600
        IVouchProtocol.Policy memory p = _policy();
        p.disputeWindow = uint32(14 days - 3600); // deadline + window == unbonding delay
        _expectCreateRevert(
            jobs, p, abi.encodeWithSelector(UnbondingTooShort.selector, 3600, 14 days - 3600, uint64(14 days))
        );
        staking.setUnbondingDelay(1 hours);
        p = _policy();
        p.disputeWindow = 0;
        _expectCreateRevert(jobs, p, abi.encodeWithSelector(UnbondingTooShort.selector, 3600, 0, uint64(1 hours)));
    }

    function test_RevertWhen_CreateBlueprintHooksHaveNoCode() external {
        vm.expectRevert(abi.encodeWithSelector(InvalidHooks.selector, address(0x1234)));
        vm.prank(developer);
        protocol.createBlueprint("", bytes32(0), _jobs(), _policy(), address(0), address(0x1234));
    }

    function test_TransferBlueprintOwnership() external {
        vm.expectEmit(address(protocol));
        emit BlueprintOwnershipTransferred(blueprintId, developer, stranger);
        vm.prank(developer);
        protocol.transferBlueprintOwnership(blueprintId, stranger);
        assertEq(protocol.getBlueprint(blueprintId).owner, stranger, "owner");
        // Developer fees now go to the new owner.
        _settleOne(serviceId, 0, 0xE);
        assertEq(protocol.claimable(stranger), PRICE0 / 10, "new owner credited");
        assertEq(protocol.claimable(developer), 0, "old owner not credited");
    }

    function test_RevertWhen_TransferBlueprintOwnershipUnauthorized() external {
        vm.expectRevert(abi.encodeWithSelector(NotBlueprintOwner.selector, blueprintId, stranger));
        vm.prank(stranger);
        protocol.transferBlueprintOwnership(blueprintId, stranger);
        vm.expectRevert(ZeroAddress.selector);
        vm.prank(developer);
        protocol.transferBlueprintOwnership(blueprintId, address(0));
        vm.expectRevert(abi.encodeWithSelector(UnknownBlueprint.selector, 99));
        vm.prank(developer);
        protocol.transferBlueprintOwnership(99, stranger);
    }

    function test_UpdateBlueprintMetadata() external {
        vm.expectEmit(address(protocol));
        emit BlueprintMetadataUpdated(blueprintId, "ipfs://v2", keccak256("v2"));
        vm.prank(developer);
        protocol.updateBlueprintMetadata(blueprintId, "ipfs://v2", keccak256("v2"));
        IVouchProtocol.Blueprint memory b = protocol.getBlueprint(blueprintId);
        assertEq(bytes(b.metadataUri), bytes("ipfs://v2"), "uri");
        assertEq(b.metadataHash, keccak256("v2"), "hash");
    }

    function test_RevertWhen_UpdateBlueprintMetadataUnauthorized() external {
        vm.expectRevert(abi.encodeWithSelector(NotBlueprintOwner.selector, blueprintId, stranger));
        vm.prank(stranger);
        protocol.updateBlueprintMetadata(blueprintId, "x", bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(UnknownBlueprint.selector, 7));
        protocol.updateBlueprintMetadata(7, "x", bytes32(0));
    }

    // ===============================================================================================================
    // Services
    // ===============================================================================================================

    function test_RequestService_StoresAndEmits() external {
        address[] memory operators = _operators(3);
        address[] memory callers = new address[](1);
        callers[0] = stranger;
        uint64 expiry = uint64(block.timestamp + 1 days);
        vm.expectEmit(address(protocol));
        emit ServiceRequested(2, blueprintId, serviceOwner, expiry, false, operators, callers);
        vm.prank(serviceOwner);
        uint64 id = protocol.requestService(blueprintId, operators, expiry, false, callers);
        assertEq(id, 2, "id");
        IVouchProtocol.Service memory s = protocol.getService(id);
        assertEq(s.blueprintId, blueprintId, "blueprint");
        assertTrue(s.status == IVouchProtocol.ServiceStatus.Requested, "status");
        assertEq(s.expiry, expiry, "expiry");
        assertFalse(s.publicAccess, "public");
        assertEq(s.owner, serviceOwner, "owner");
        assertEq(s.keySet, address(0), "no key set yet");
        assertEq(abi.encode(s.operators), abi.encode(operators), "operators");
        assertTrue(protocol.isPermittedCaller(id, stranger), "permitted");
        (bool member, uint256 slot) = protocol.operatorSlot(id, operators[2]);
        assertTrue(member && slot == 2, "slot");
        (member,) = protocol.operatorSlot(id, stranger);
        assertFalse(member, "not member");
    }

    function _expectRequestRevert(address[] memory operators, uint64 expiry, bytes memory err) internal {
        vm.expectRevert(err);
        vm.prank(serviceOwner);
        protocol.requestService(blueprintId, operators, expiry, true, new address[](0));
    }

    function test_RevertWhen_RequestServiceInvalid() external {
        uint64 expiry = uint64(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(UnknownBlueprint.selector, 42));
        protocol.requestService(42, _operators(3), expiry, true, new address[](0));
        _expectRequestRevert(new address[](0), expiry, abi.encodeWithSelector(InvalidOperatorCount.selector, 0));
        _expectRequestRevert(new address[](192), expiry, abi.encodeWithSelector(InvalidOperatorCount.selector, 192));
        _expectRequestRevert(_operators(1), expiry, abi.encodeWithSelector(TooFewOperators.selector, 1, 2));
        _expectRequestRevert(
            _operators(3), uint64(block.timestamp), abi.encodeWithSelector(InvalidExpiry.selector, block.timestamp)
        );
        address[] memory dup = _operators(3);
        dup[2] = dup[0];
        _expectRequestRevert(dup, expiry, abi.encodeWithSelector(DuplicateOperator.selector, dup[0]));
        address[] memory unknown = _operators(3);
        unknown[1] = stranger;
        _expectRequestRevert(unknown, expiry, abi.encodeWithSelector(NotOperator.selector, stranger));
        staking.setJailed(keys[2].operator, true);
        _expectRequestRevert(_operators(3), expiry, abi.encodeWithSelector(OperatorJailed.selector, keys[2].operator));
    }

    function test_RevertWhen_HooksRefuseServiceRequest() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 expiry = uint64(block.timestamp + 1 days);
        address[] memory operators = _operators(3);
        MockHooks.Mode[4] memory refusals =
            [MockHooks.Mode.Deny, MockHooks.Mode.Revert, MockHooks.Mode.BurnGas, MockHooks.Mode.ShortReturn];
        for (uint256 i; i < refusals.length; ++i) {
            hooks.setModes(refusals[i], MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow);
            vm.expectRevert(abi.encodeWithSelector(OperatorRefused.selector, bp, operators[0]));
            vm.prank(serviceOwner);
            protocol.requestService(bp, operators, expiry, true, new address[](0));

            hooks.setModes(MockHooks.Mode.Allow, refusals[i], MockHooks.Mode.Allow, MockHooks.Mode.Allow);
            vm.expectRevert(abi.encodeWithSelector(ServiceRequestRefused.selector, bp, serviceOwner));
            vm.prank(serviceOwner);
            protocol.requestService(bp, operators, expiry, true, new address[](0));
        }
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow);
        hooks.setDenied(operators[1], address(0));
        vm.expectRevert(abi.encodeWithSelector(OperatorRefused.selector, bp, operators[1]));
        vm.prank(serviceOwner);
        protocol.requestService(bp, operators, expiry, true, new address[](0));
        hooks.setDenied(address(0), address(0));
        vm.prank(serviceOwner);
        protocol.requestService(bp, operators, expiry, true, new address[](0));
    }

    function test_ApproveService_ActivatesOnLastApproval() external {
        address[] memory operators = _operators(3);
        vm.prank(serviceOwner);
        uint64 id =
            protocol.requestService(blueprintId, operators, uint64(block.timestamp + 1 days), true, new address[](0));
        vm.expectEmit(address(protocol));
        emit ServiceApproved(id, operators[1]);
        vm.prank(operators[1]);
        protocol.approveService(id);
        assertEq(protocol.approvals(id), 2, "bitmap");
        vm.prank(operators[0]);
        protocol.approveService(id);
        assertTrue(protocol.getService(id).status == IVouchProtocol.ServiceStatus.Requested, "still requested");

        vm.recordLogs();
        vm.prank(operators[2]);
        protocol.approveService(id);
        IVouchProtocol.Service memory s = protocol.getService(id);
        assertTrue(s.status == IVouchProtocol.ServiceStatus.Active, "active");
        assertTrue(registry.isKeySet(s.keySet), "registry key set");
        assertEq(s.stakes.length, 3, "stakes");
        assertEq(s.stakes[0], 1000e18, "stake 0");
        assertEq(s.stakes[2], 3000e18, "stake 2");
        assertEq(s.totalStake, 6000e18, "total");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool seen;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == ServiceActivated.selector && logs[i].emitter == address(protocol)) {
                seen = true;
                (address keySet, uint256[] memory stakes, uint256 total) =
                    abi.decode(logs[i].data, (address, uint256[], uint256));
                assertEq(keySet, s.keySet, "event key set");
                assertEq(stakes[1], 2000e18, "event stake");
                assertEq(total, 6000e18, "event total");
            }
        }
        assertTrue(seen, "ServiceActivated");
        // Stake changes after activation do not move the snapshot.
        staking.setActiveStake(operators[0], 1);
        assertEq(protocol.getService(id).stakes[0], 1000e18, "snapshot");
    }

    function test_RevertWhen_ApproveServiceInvalid() external {
        address[] memory operators = _operators(3);
        vm.prank(serviceOwner);
        uint64 id =
            protocol.requestService(blueprintId, operators, uint64(block.timestamp + 1 days), true, new address[](0));
        vm.expectRevert(abi.encodeWithSelector(NotServiceOperator.selector, id, stranger));
        vm.prank(stranger);
        protocol.approveService(id);
        vm.prank(operators[0]);
        protocol.approveService(id);
        vm.expectRevert(abi.encodeWithSelector(AlreadyApproved.selector, id, operators[0]));
        vm.prank(operators[0]);
        protocol.approveService(id);
        staking.removeOperator(operators[1]);
        vm.expectRevert(abi.encodeWithSelector(NotOperator.selector, operators[1]));
        vm.prank(operators[1]);
        protocol.approveService(id);
        staking.setOperator(operators[1], 2000e18, 500);
        staking.setJailed(operators[1], true);
        vm.expectRevert(abi.encodeWithSelector(OperatorJailed.selector, operators[1]));
        vm.prank(operators[1]);
        protocol.approveService(id);
        vm.expectRevert(
            abi.encodeWithSelector(ServiceNotRequested.selector, serviceId, IVouchProtocol.ServiceStatus.Active)
        );
        vm.prank(keys[0].operator);
        protocol.approveService(serviceId);
        vm.expectRevert(abi.encodeWithSelector(ServiceNotRequested.selector, 77, IVouchProtocol.ServiceStatus.None));
        protocol.approveService(77);
    }

    function test_RevertWhen_ActivationFindsJailedOrStakelessOperator() external {
        address[] memory operators = _operators(3);
        vm.prank(serviceOwner);
        uint64 id =
            protocol.requestService(blueprintId, operators, uint64(block.timestamp + 1 days), true, new address[](0));
        vm.prank(operators[0]);
        protocol.approveService(id);
        vm.prank(operators[1]);
        protocol.approveService(id);
        staking.setActiveStake(operators[1], 0);
        vm.expectRevert(abi.encodeWithSelector(NoActiveStake.selector, operators[1]));
        vm.prank(operators[2]);
        protocol.approveService(id);
        staking.setActiveStake(operators[1], 5);
        // An operator that deregistered after approving cannot be activated into the service.
        staking.removeOperator(operators[0]);
        vm.expectRevert(abi.encodeWithSelector(NotOperator.selector, operators[0]));
        vm.prank(operators[2]);
        protocol.approveService(id);
        staking.setOperator(operators[0], 1000e18, 0);
        staking.setJailed(operators[0], true);
        vm.expectRevert(abi.encodeWithSelector(OperatorJailed.selector, operators[0]));
        vm.prank(operators[2]);
        protocol.approveService(id);
        staking.setJailed(operators[0], false);
        vm.prank(operators[2]);
        protocol.approveService(id);
        assertEq(protocol.getService(id).stakes[1], 5, "stake");
    }

    function test_RevertWhen_ActivationHitsUnregisteredKey() external {
        address noKey = address(0xBEEF);
        staking.setOperator(noKey, 1e18, 0);
        address[] memory operators = _operators(2);
        operators[1] = noKey;
        vm.prank(serviceOwner);
        uint64 id =
            protocol.requestService(blueprintId, operators, uint64(block.timestamp + 1 days), true, new address[](0));
        vm.prank(operators[0]);
        protocol.approveService(id);
        vm.expectRevert(abi.encodeWithSelector(KeyRegistry.OperatorNotRegistered.selector, noKey));
        vm.prank(noKey);
        protocol.approveService(id);
    }

    function test_TerminateService() external {
        uint256 open = _call(serviceId, 0);
        vm.expectEmit(address(protocol));
        emit ServiceTerminated(serviceId);
        vm.prank(serviceOwner);
        protocol.terminateService(serviceId);
        assertTrue(protocol.getService(serviceId).status == IVouchProtocol.ServiceStatus.Terminated, "status");
        vm.expectRevert(
            abi.encodeWithSelector(ServiceNotActive.selector, serviceId, IVouchProtocol.ServiceStatus.Terminated)
        );
        vm.prank(payer);
        protocol.callJob(serviceId, 0, "");
        // Calls opened before still settle.
        bytes32 resultHash = keccak256("r");
        protocol.settle(open, resultHash, 0xE, _certify(serviceId, open, resultHash, 0xE));
        assertTrue(protocol.getCall(open).status == IVouchProtocol.CallStatus.Settled, "settled");
    }

    function test_TerminateService_CancelsARequest() external {
        vm.prank(serviceOwner);
        uint64 id = protocol.requestService(
            blueprintId, _operators(3), uint64(block.timestamp + 1 days), true, new address[](0)
        );
        vm.prank(serviceOwner);
        protocol.terminateService(id);
        vm.expectRevert(
            abi.encodeWithSelector(ServiceNotRequested.selector, id, IVouchProtocol.ServiceStatus.Terminated)
        );
        vm.prank(keys[0].operator);
        protocol.approveService(id);
    }

    function test_RevertWhen_TerminateServiceInvalid() external {
        vm.expectRevert(abi.encodeWithSelector(NotServiceOwner.selector, serviceId, stranger));
        vm.prank(stranger);
        protocol.terminateService(serviceId);
        vm.expectRevert(abi.encodeWithSelector(UnknownService.selector, 9));
        protocol.terminateService(9);
        vm.prank(serviceOwner);
        protocol.terminateService(serviceId);
        vm.expectRevert(abi.encodeWithSelector(ServiceAlreadyTerminated.selector, serviceId));
        vm.prank(serviceOwner);
        protocol.terminateService(serviceId);
    }

    function test_PermittedCallersAndPublicAccess() external {
        vm.expectEmit(address(protocol));
        emit PublicAccessSet(serviceId, false);
        vm.prank(serviceOwner);
        protocol.setPublicAccess(serviceId, false);
        vm.expectRevert(abi.encodeWithSelector(CallerNotPermitted.selector, serviceId, payer));
        vm.prank(payer);
        protocol.callJob(serviceId, 0, "");

        address[] memory callers = new address[](1);
        callers[0] = payer;
        vm.expectEmit(address(protocol));
        emit PermittedCallerSet(serviceId, payer, true);
        vm.prank(serviceOwner);
        protocol.setPermittedCallers(serviceId, callers, true);
        assertTrue(protocol.isPermittedCaller(serviceId, payer), "permitted");
        vm.prank(payer);
        protocol.callJob(serviceId, 0, "");

        vm.prank(serviceOwner);
        protocol.setPermittedCallers(serviceId, callers, false);
        vm.expectRevert(abi.encodeWithSelector(CallerNotPermitted.selector, serviceId, payer));
        vm.prank(payer);
        protocol.callJob(serviceId, 0, "");

        vm.prank(serviceOwner);
        protocol.setPublicAccess(serviceId, true);
        vm.prank(payer);
        protocol.callJob(serviceId, 0, "");
    }

    function test_RevertWhen_AccessSettingsUnauthorized() external {
        address[] memory callers = new address[](1);
        vm.expectRevert(abi.encodeWithSelector(NotServiceOwner.selector, serviceId, stranger));
        vm.prank(stranger);
        protocol.setPermittedCallers(serviceId, callers, true);
        vm.expectRevert(abi.encodeWithSelector(NotServiceOwner.selector, serviceId, stranger));
        vm.prank(stranger);
        protocol.setPublicAccess(serviceId, false);
        vm.expectRevert(abi.encodeWithSelector(UnknownService.selector, 5));
        protocol.setPublicAccess(5, false);
        vm.expectRevert(abi.encodeWithSelector(UnknownService.selector, 5));
        protocol.setPermittedCallers(5, callers, true);
    }

    // ===============================================================================================================
    // callJob / callJobs
    // ===============================================================================================================

    function test_CallJob_EscrowsAndEmits() external {
        bytes memory inputs = "hello vouch";
        uint256 balanceBefore = token.balanceOf(payer);
        vm.expectEmit(address(protocol));
        emit CallOpened(1, serviceId, 1, payer, PRICE1, block.timestamp + DEADLINE1, keccak256(inputs));
        vm.expectEmit(address(protocol));
        emit CallInputs(1, inputs);
        vm.prank(payer);
        uint256 callId = protocol.callJob(serviceId, 1, inputs);
        assertEq(callId, 1, "id");
        assertEq(protocol.callCount(), 1, "count");
        IVouchProtocol.Call memory c = protocol.getCall(callId);
        assertEq(c.serviceId, serviceId, "service");
        assertEq(c.jobIndex, 1, "job");
        assertTrue(c.status == IVouchProtocol.CallStatus.Open, "open");
        assertEq(c.deadline, block.timestamp + DEADLINE1, "deadline");
        assertEq(c.settledAt, 0, "settledAt");
        assertEq(c.payer, payer, "payer");
        assertEq(c.payment, PRICE1, "payment");
        assertEq(c.inputsHash, keccak256(inputs), "inputsHash");
        assertEq(c.resultHash, bytes32(0), "resultHash");
        assertEq(c.signerBitmap, 0, "bitmap");
        assertEq(balanceBefore - token.balanceOf(payer), PRICE1, "paid");
        assertEq(protocol.accounted(), PRICE1, "accounted");
        _assertSolvent();
    }

    function test_RevertWhen_CallJobInvalid() external {
        vm.startPrank(payer);
        vm.expectRevert(abi.encodeWithSelector(ServiceNotActive.selector, 99, IVouchProtocol.ServiceStatus.None));
        protocol.callJob(99, 0, "");
        vm.expectRevert(abi.encodeWithSelector(InvalidJobIndex.selector, serviceId, 2, 2));
        protocol.callJob(serviceId, 2, "");
        vm.stopPrank();

        vm.prank(serviceOwner);
        uint64 requested =
            protocol.requestService(blueprintId, _operators(2), uint64(block.timestamp + 1), true, new address[](0));
        vm.expectRevert(
            abi.encodeWithSelector(ServiceNotActive.selector, requested, IVouchProtocol.ServiceStatus.Requested)
        );
        vm.prank(payer);
        protocol.callJob(requested, 0, "");

        uint64 expiry = protocol.getService(serviceId).expiry;
        vm.warp(expiry);
        vm.prank(payer);
        protocol.callJob(serviceId, 0, ""); // at expiry: still open
        vm.warp(expiry + 1);
        vm.expectRevert(abi.encodeWithSelector(ServiceExpired.selector, serviceId, expiry));
        vm.prank(payer);
        protocol.callJob(serviceId, 0, "");
    }

    function test_RevertWhen_CallJobUnfunded() external {
        vm.expectRevert(); // ERC20InsufficientAllowance from the token
        vm.prank(stranger);
        protocol.callJob(serviceId, 0, "");
    }

    /// @dev Each job's verification mode is stored with it; both payment paths open calls of every mode (misses of
    /// tolerant and checked jobs are not slashable: `VouchSlasher.MissNotProvableForJob`).
    function test_CreateBlueprint_StoresEachJobsVerification() external {
        IVouchProtocol.Job[] memory jobs = _jobs();
        jobs[0].verification = IVouchProtocol.Verification.Tolerant;
        jobs[1].verification = IVouchProtocol.Verification.Checked;
        vm.prank(developer);
        uint64 bp = protocol.createBlueprint("", bytes32(0), jobs, _policy(), address(0), address(0));
        IVouchProtocol.Job[] memory stored = protocol.getBlueprint(bp).jobs;
        assertTrue(stored[0].verification == IVouchProtocol.Verification.Tolerant, "tolerant");
        assertTrue(stored[1].verification == IVouchProtocol.Verification.Checked, "checked");
        uint64 id = _activeService(bp, 3, true);
        uint256 onChain = _call(id, 0);
        uint256 paid = protocol.openPaidCall(_paidCall(id, 1));
        assertTrue(protocol.getCall(onChain).status == IVouchProtocol.CallStatus.Open, "callJob");
        assertTrue(protocol.getCall(paid).status == IVouchProtocol.CallStatus.Open, "openPaidCall");
    }

    function test_RevertWhen_HooksRefuseJobCall() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 3, true);
        MockHooks.Mode[4] memory refusals =
            [MockHooks.Mode.Deny, MockHooks.Mode.Revert, MockHooks.Mode.BurnGas, MockHooks.Mode.ShortReturn];
        for (uint256 i; i < refusals.length; ++i) {
            hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, refusals[i], MockHooks.Mode.Allow);
            vm.expectRevert(abi.encodeWithSelector(JobCallRefused.selector, id, 0, payer));
            vm.prank(payer);
            protocol.callJob(id, 0, "");
        }
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow);
        vm.prank(payer);
        protocol.callJob(id, 0, "");
    }

    function test_RevertWhen_TokenTakesAFee() external {
        FeeToken fee = new FeeToken();
        MockStaking feeStaking = new MockStaking(IERC20(address(fee)));
        for (uint256 i; i < 2; ++i) {
            feeStaking.setOperator(keys[i].operator, (i + 1) * 1000e18, 0);
        }
        VouchProtocol p = new VouchProtocol(IERC20(address(fee)), feeStaking, registry, treasury, PROTOCOL_FEE_BPS);
        vm.prank(developer);
        uint64 bp = p.createBlueprint("", bytes32(0), _jobs(), _policy(), address(0), address(0));
        address[] memory operators = _operators(2);
        vm.prank(serviceOwner);
        uint64 id = p.requestService(bp, operators, uint64(block.timestamp + 1 days), true, new address[](0));
        for (uint256 i; i < 2; ++i) {
            vm.prank(operators[i]);
            p.approveService(id);
        }
        fee.mint(payer, 10e6);
        vm.startPrank(payer);
        fee.approve(address(p), type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(PaymentNotReceived.selector, PRICE0, PRICE0 - PRICE0 / 100));
        p.callJob(id, 0, "");
        vm.stopPrank();
    }

    function test_CallJobs_OpensConsecutiveCalls() external {
        uint8[] memory jobs = new uint8[](3);
        jobs[1] = 1;
        bytes[] memory inputs = new bytes[](3);
        inputs[0] = "a";
        inputs[1] = "b";
        inputs[2] = "c";
        _call(serviceId, 0);
        vm.prank(payer);
        uint256 first = protocol.callJobs(serviceId, jobs, inputs);
        assertEq(first, 2, "first");
        assertEq(protocol.callCount(), 4, "count");
        assertEq(protocol.getCall(3).jobIndex, 1, "job");
        assertEq(protocol.getCall(4).inputsHash, keccak256("c"), "inputs");
        assertEq(protocol.accounted(), 3 * PRICE0 + PRICE1, "accounted");
        _assertSolvent();
    }

    function test_RevertWhen_CallJobsLengths() external {
        vm.expectRevert(abi.encodeWithSelector(LengthMismatch.selector, 0, 0));
        protocol.callJobs(serviceId, new uint8[](0), new bytes[](0));
        vm.expectRevert(abi.encodeWithSelector(LengthMismatch.selector, 2, 1));
        protocol.callJobs(serviceId, new uint8[](2), new bytes[](1));
    }

    // ===============================================================================================================
    // x402: openPaidCall / openPaidCalls / sweepSurplus
    // ===============================================================================================================

    function test_OpenPaidCall_ExecutesTheAuthorization() external {
        VouchProtocol.PaidCall memory p = _paidCall(serviceId, 0);
        uint256 expectedId = _paidCallId(serviceId, 0, payer, p.nonce);
        uint256 before = token.balanceOf(payer);
        vm.expectEmit(address(protocol));
        emit CallOpened(expectedId, serviceId, 0, payer, PRICE0, block.timestamp + DEADLINE0, p.inputsHash);
        vm.expectEmit(address(protocol));
        emit PaidCallOpened(expectedId, payer, p.nonce);
        vm.prank(stranger); // anyone (the gateway) submits
        uint256 callId = protocol.openPaidCall(p);
        assertEq(callId, expectedId, "id derived from (serviceId, jobIndex, from, nonce)");
        assertEq(protocol.paidCallId(serviceId, 0, payer, p.nonce), expectedId, "paidCallId");
        assertGt(callId, type(uint64).max, "apart from counter ids");
        // The id binds the service and the job: the same authorization names another call elsewhere.
        assertTrue(_paidCallId(serviceId, 1, payer, p.nonce) != expectedId, "bound to the job");
        assertTrue(_paidCallId(serviceId + 1, 0, payer, p.nonce) != expectedId, "bound to the service");
        assertEq(protocol.callCount(), 0, "x402 calls take no counter id");
        IVouchProtocol.Call memory c = protocol.getCall(callId);
        assertTrue(c.status == IVouchProtocol.CallStatus.Open, "open");
        assertEq(c.serviceId, serviceId, "service");
        assertEq(c.payer, payer, "payer = from");
        assertEq(c.payment, PRICE0, "payment");
        assertEq(c.inputsHash, p.inputsHash, "inputs");
        assertEq(before - token.balanceOf(payer), PRICE0, "paid");
        assertTrue(token.authorizationState(payer, p.nonce), "nonce used");
        // The counter is untouched: the next on-chain call still gets id 1.
        assertEq(_call(serviceId, 0), 1, "next counter id");
        assertEq(protocol.callCount(), 1, "count");
        _assertSolvent();
    }

    function test_RevertWhen_OpenPaidCallTwice() external {
        VouchProtocol.PaidCall memory p = _paidCall(serviceId, 0);
        uint256 callId = protocol.openPaidCall(p);
        vm.expectRevert(
            abi.encodeWithSelector(
                PaidCallAlreadyOpened.selector, payer, p.nonce, _paidCallId(serviceId, 0, payer, p.nonce)
            )
        );
        protocol.openPaidCall(p);
        assertEq(protocol.callCount(), 0, "x402 calls take no counter id");
        assertTrue(protocol.getCall(callId).status == IVouchProtocol.CallStatus.Open, "still open");
    }

    function test_RevertWhen_OpenPaidCallFrontRun_FundsBecomeSurplus() external {
        VouchProtocol.PaidCall memory p = _paidCall(serviceId, 0);
        // Someone submits the authorization to the token directly.
        vm.prank(stranger);
        token.transferWithAuthorization(
            p.from, address(protocol), p.value, p.validAfter, p.validBefore, p.nonce, p.signature
        );
        vm.expectRevert(abi.encodeWithSelector(AuthorizationAlreadyUsed.selector, payer, p.nonce));
        protocol.openPaidCall(p);
        assertEq(protocol.callCount(), 0, "no call");
        assertTrue(
            protocol.getCall(_paidCallId(serviceId, 0, payer, p.nonce)).status == IVouchProtocol.CallStatus.None,
            "no paid call"
        );
        assertEq(protocol.accounted(), 0, "not credited");
        assertEq(token.balanceOf(address(protocol)), PRICE0, "funds arrived");

        vm.expectEmit(address(protocol));
        emit SurplusSwept(treasury, PRICE0);
        vm.prank(stranger);
        assertEq(protocol.sweepSurplus(), PRICE0, "swept");
        assertEq(token.balanceOf(treasury), PRICE0, "treasury");
        _assertSolvent();
    }

    function test_RevertWhen_OpenPaidCallNonceCancelled() external {
        VouchProtocol.PaidCall memory p = _paidCall(serviceId, 0);
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                token.DOMAIN_SEPARATOR(),
                keccak256(abi.encode(token.CANCEL_AUTHORIZATION_TYPEHASH(), payer, p.nonce))
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(payerKey, digest);
        token.cancelAuthorization(payer, p.nonce, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(AuthorizationAlreadyUsed.selector, payer, p.nonce));
        protocol.openPaidCall(p);
    }

    function test_RevertWhen_OpenPaidCallWrongValue() external {
        VouchProtocol.PaidCall memory p = _paidCallFrom(payerKey, serviceId, 0, PRICE0 - 1);
        vm.expectRevert(abi.encodeWithSelector(WrongPaymentValue.selector, PRICE0, PRICE0 - 1));
        protocol.openPaidCall(p);
        p = _paidCallFrom(payerKey, serviceId, 0, PRICE0 + 1);
        vm.expectRevert(abi.encodeWithSelector(WrongPaymentValue.selector, PRICE0, PRICE0 + 1));
        protocol.openPaidCall(p);
    }

    function test_RevertWhen_OpenPaidCallPayerNotPermitted() external {
        vm.prank(serviceOwner);
        protocol.setPublicAccess(serviceId, false);
        address[] memory callers = new address[](1);
        callers[0] = stranger; // the submitter is permitted, the payer is not
        vm.prank(serviceOwner);
        protocol.setPermittedCallers(serviceId, callers, true);
        VouchProtocol.PaidCall memory p = _paidCall(serviceId, 0);
        vm.expectRevert(abi.encodeWithSelector(CallerNotPermitted.selector, serviceId, payer));
        vm.prank(stranger);
        protocol.openPaidCall(p);
        callers[0] = payer;
        vm.prank(serviceOwner);
        protocol.setPermittedCallers(serviceId, callers, true);
        protocol.openPaidCall(p); // submitted by an unpermitted account, paid by a permitted payer
    }

    function test_RevertWhen_OpenPaidCallAuthorizationInvalid() external {
        VouchProtocol.PaidCall memory p = _paidCall(serviceId, 0);
        vm.warp(p.validBefore);
        vm.expectRevert(abi.encodeWithSelector(VouchUSD.AuthorizationExpired.selector, p.validBefore, p.validBefore));
        protocol.openPaidCall(p);
        p = _paidCall(serviceId, 0);
        p.inputsHash = keccak256("x"); // not signed, fine
        p.signature[5] ^= 0x01;
        vm.expectRevert(VouchUSD.InvalidAuthorizationSignature.selector);
        protocol.openPaidCall(p);
        p = _paidCallFrom(0xB0B, serviceId, 0, PRICE0); // no balance
        vm.expectRevert();
        protocol.openPaidCall(p);
    }

    function test_OpenPaidCalls_SkipsUsedAuthorizations() external {
        VouchProtocol.PaidCall[] memory ps = new VouchProtocol.PaidCall[](4);
        ps[0] = _paidCall(serviceId, 0);
        ps[1] = _paidCall(serviceId, 1);
        ps[2] = _paidCall(serviceId, 0);
        ps[3] = ps[0]; // duplicate inside the batch
        // ps[2] is front-run.
        token.transferWithAuthorization(
            ps[2].from,
            address(protocol),
            ps[2].value,
            ps[2].validAfter,
            ps[2].validBefore,
            ps[2].nonce,
            ps[2].signature
        );
        uint256 id0 = _paidCallId(serviceId, 0, payer, ps[0].nonce);
        uint256 id1 = _paidCallId(serviceId, 1, payer, ps[1].nonce);
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, ps[2].nonce, 0);
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, ps[0].nonce, id0);
        uint256[] memory ids = protocol.openPaidCalls(ps);
        assertEq(ids[0], id0, "first");
        assertEq(ids[1], id1, "second");
        assertEq(ids[2], 0, "front-run");
        assertEq(ids[3], id0, "duplicate");
        assertEq(protocol.getCall(id0).jobIndex, 0, "first job");
        assertEq(protocol.getCall(id1).jobIndex, 1, "second job");
        assertEq(protocol.getCall(id1).payment, PRICE1, "second payment");
        assertTrue(
            protocol.getCall(_paidCallId(serviceId, 0, payer, ps[2].nonce)).status == IVouchProtocol.CallStatus.None,
            "no front-run call"
        );
        assertEq(protocol.accounted(), PRICE0 + PRICE1, "accounted");
        // Resubmitting is idempotent.
        vm.expectEmit(address(protocol));
        emit PaidCallSkipped(payer, ps[1].nonce, id1);
        ids = protocol.openPaidCalls(ps);
        assertEq(ids[1], id1, "again");
        assertEq(protocol.accounted(), PRICE0 + PRICE1, "accounted once");
        assertEq(protocol.callCount(), 0, "x402 calls take no counter id");
        assertEq(protocol.sweepSurplus(), PRICE0, "surplus");
        _assertSolvent();
    }

    function test_RevertWhen_OpenPaidCallsEntryInvalid() external {
        VouchProtocol.PaidCall[] memory ps = new VouchProtocol.PaidCall[](2);
        ps[0] = _paidCall(serviceId, 0);
        ps[1] = _paidCallFrom(payerKey, serviceId, 1, PRICE0);
        vm.expectRevert(abi.encodeWithSelector(WrongPaymentValue.selector, PRICE1, PRICE0));
        protocol.openPaidCalls(ps);
    }

    function test_RevertWhen_SweepWithoutSurplus() external {
        _call(serviceId, 0);
        vm.expectRevert(abi.encodeWithSelector(NoSurplus.selector, PRICE0, PRICE0));
        protocol.sweepSurplus();
        vm.prank(payer);
        token.transfer(address(protocol), 5);
        assertEq(protocol.sweepSurplus(), 5, "plain transfer swept");
    }

    // ===============================================================================================================
    // settle
    // ===============================================================================================================

    function test_Settle_RecordsAndSplitsFees() external {
        uint256 callId = _call(serviceId, 0);
        bytes32 resultHash = keccak256("result");
        uint256 bitmap = 0xE; // slots 1, 2, 3: stakes 2000, 3000, 4000 of 10000
        bytes memory signature = _certify(serviceId, callId, resultHash, bitmap);
        vm.expectEmit(address(protocol));
        emit SignerBitmapRecorded(1, bitmap);
        vm.expectEmit(address(protocol));
        emit CallSettled(callId, resultHash, bitmap);
        vm.prank(stranger);
        protocol.settle(callId, resultHash, bitmap, signature);

        IVouchProtocol.Call memory c = protocol.getCall(callId);
        assertTrue(c.status == IVouchProtocol.CallStatus.Settled, "settled");
        assertEq(c.resultHash, resultHash, "resultHash");
        assertEq(c.signerBitmap, bitmap, "bitmap");
        assertEq(c.settledAt, block.timestamp, "settledAt");
        assertEq(protocol.bitmapIdOf(bitmap), 1, "bitmap id");
        assertEq(protocol.signerBitmapOf(1), bitmap, "bitmap record");

        // price 1,000,000: developer 100,000, protocol 50,000, rest 850,000 over stakes 2:3:4 (sum 9).
        uint256 dev = 100_000;
        uint256 prot = 50_000;
        uint256 rest = 850_000;
        uint256[3] memory shares = [rest * 2 / 9, rest * 3 / 9, rest * 4 / 9];
        uint256 dust = 850_000 - shares[0] - shares[1] - shares[2];
        // Commissions: slot 1 = 5%, slot 2 = 10%, slot 3 = 15%.
        uint256[3] memory commissions = [shares[0] * 500 / 10_000, shares[1] * 1000 / 10_000, shares[2] * 1500 / 10_000];
        assertEq(protocol.claimable(developer), dev, "developer");
        assertEq(protocol.claimable(treasury), prot + dust, "treasury");
        uint256 sum = dev + prot + dust;
        for (uint256 k; k < 3; ++k) {
            address op = serviceOperators[k + 1];
            assertEq(protocol.claimable(op), commissions[k], "commission");
            assertEq(staking.rewardsOf(op), shares[k] - commissions[k], "delegators");
            sum += protocol.claimable(op) + staking.rewardsOf(op);
        }
        assertEq(protocol.claimable(serviceOperators[0]), 0, "non-signer");
        assertEq(staking.rewardsOf(serviceOperators[0]), 0, "non-signer rewards");
        assertEq(sum, PRICE0, "exact split");
        assertEq(token.balanceOf(address(staking)), staking.totalRewards(), "staking funded");
        _assertSolvent();
    }

    function test_Settle_EmitsSettlementAndSignerPaid() external {
        uint256 callId = _call(serviceId, 1);
        bytes32 resultHash = keccak256("r");
        bytes memory signature = _certify(serviceId, callId, resultHash, 0xC);
        vm.recordLogs();
        protocol.settle(callId, resultHash, 0xC, signature);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 signerEvents;
        uint256 credited;
        uint256 rewards;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(protocol)) continue;
            if (logs[i].topics[0] == SignerPaid.selector) {
                (uint256 commission, uint256 reward) = abi.decode(logs[i].data, (uint256, uint256));
                credited += commission + reward;
                ++signerEvents;
            } else if (logs[i].topics[0] == Settlement.selector) {
                (
                    uint256 bitmap,
                    uint32 count,
                    uint256 payment,
                    address dev,
                    uint256 devFee,
                    uint256 protFee,
                    uint256 dust,
                    uint256 delegatorRewards
                ) = abi.decode(logs[i].data, (uint256, uint32, uint256, address, uint256, uint256, uint256, uint256));
                assertEq(bitmap, 0xC, "bitmap");
                assertEq(count, 1, "count");
                assertEq(payment, PRICE1, "payment");
                assertEq(dev, developer, "developer");
                credited += devFee + protFee + dust;
                rewards = delegatorRewards;
            }
        }
        assertEq(signerEvents, 2, "SignerPaid per signer");
        assertEq(credited, PRICE1, "events add up to the price");
        assertEq(rewards, staking.totalRewards(), "rewards");
    }

    function test_RevertWhen_SettleCallNotOpen() external {
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, 5, IVouchProtocol.CallStatus.None));
        protocol.settle(5, bytes32(0), 0xE, new bytes(256));
        uint256 callId = _settleOne(serviceId, 0, 0xE);
        bytes32 resultHash = keccak256(abi.encode("result", callId));
        bytes memory signature = _certify(serviceId, callId, resultHash, 0xE);
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, callId, IVouchProtocol.CallStatus.Settled));
        protocol.settle(callId, resultHash, 0xE, signature);
    }

    function test_RevertWhen_SettleAfterDeadline() external {
        uint256 callId = _call(serviceId, 0);
        bytes32 resultHash = keccak256("r");
        bytes memory signature = _certify(serviceId, callId, resultHash, 0xE);
        uint64 deadline = protocol.getCall(callId).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(DeadlinePassed.selector, callId, deadline));
        protocol.settle(callId, resultHash, 0xE, signature);
        vm.warp(deadline);
        protocol.settle(callId, resultHash, 0xE, signature); // at the deadline: still on time
    }

    function test_RevertWhen_SettleBitmapOrQuorumInvalid() external {
        uint256 callId = _call(serviceId, 0);
        bytes32 r = keccak256("r");
        vm.expectRevert(abi.encodeWithSelector(InvalidSignerBitmap.selector, 0, 4));
        protocol.settle(callId, r, 0, new bytes(256));
        vm.expectRevert(abi.encodeWithSelector(InvalidSignerBitmap.selector, 0x1E, 4));
        protocol.settle(callId, r, 0x1E, new bytes(256));
        vm.expectRevert(abi.encodeWithSelector(InvalidSignerBitmap.selector, uint256(1) << 255, 4));
        protocol.settle(callId, r, uint256(1) << 255, new bytes(256));
        bytes memory one = _certify(serviceId, callId, r, 0x8);
        vm.expectRevert(abi.encodeWithSelector(TooFewSigners.selector, 1, 2));
        protocol.settle(callId, r, 0x8, one);
        // slots 0, 1, 2: 6000 of 10000 < 66.67%
        bytes memory light = _certify(serviceId, callId, r, 0x7);
        vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, 6000e18, 10_000e18, 6667));
        protocol.settle(callId, r, 0x7, light);
    }

    function test_RevertWhen_SignerStakeLeftSinceActivation() external {
        uint256 callId = _call(serviceId, 0);
        bytes32 r = keccak256("r");
        // Snapshot 1000 / 2000 / 3000 / 4000. Slots 0, 1, 2 (6000 of 10000) miss the 2/3 quorum.
        bytes memory light = _certify(serviceId, callId, r, 0x7);
        assertFalse(protocol.quorumReached(serviceId, 0x7), "6000 of 10000");
        // The operator of slot 2 (snapshot 3000) has since unstaked down to 1000: it vouches with 1000 only, and
        // the set's total shrinks to 8000: 1000 + 2000 + 1000 = 4000 of 8000 still misses.
        staking.setActiveStake(serviceOperators[2], 1000e18);
        vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, 4000e18, 8000e18, 6667));
        protocol.settle(callId, r, 0x7, light);
        // The operator of slot 3 (snapshot 4000) leaves instead: slots 0, 1, 2 now hold 6000 of 6000 at risk, so a
        // departure does not block the others (liveness), and stake above the snapshot never adds weight.
        staking.setActiveStake(serviceOperators[2], 50_000e18);
        staking.setActiveStake(serviceOperators[3], 0);
        assertTrue(protocol.quorumReached(serviceId, 0x7), "6000 of 6000");
        protocol.settle(callId, r, 0x7, light);
    }

    function test_RevertWhen_NothingAtRisk() external {
        uint256 callId = _call(serviceId, 0);
        bytes32 r = keccak256("r");
        bytes memory all = _certify(serviceId, callId, r, 0xF);
        for (uint256 i; i < 4; ++i) {
            staking.setActiveStake(serviceOperators[i], 0);
        }
        assertFalse(protocol.quorumReached(serviceId, 0xF), "no stake at risk");
        vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, 0, 0, 6667));
        protocol.settle(callId, r, 0xF, all);
    }

    function test_RevertWhen_SettleCertificateInvalid() external {
        uint256 callId = _call(serviceId, 0);
        bytes32 r = keccak256("r");
        bytes32 digest = _resultDigest(serviceId, callId, r);
        // Signed by other signers than claimed.
        bytes memory others = _certify(serviceId, callId, r, 0xD);
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, serviceId, 0xE, digest));
        protocol.settle(callId, r, 0xE, others);
        // Another result.
        bytes memory otherResult = _certify(serviceId, callId, keccak256("other"), 0xE);
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, serviceId, 0xE, digest));
        protocol.settle(callId, r, 0xE, otherResult);
        // Bound to another protocol address.
        bytes memory foreign = _sign(
            0xE,
            keccak256(
                abi.encode(
                    keccak256("vouch.v1.result"),
                    block.chainid,
                    address(0xcafe),
                    serviceId,
                    callId,
                    _inputsHash(callId),
                    r
                )
            )
        );
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, serviceId, 0xE, digest));
        protocol.settle(callId, r, 0xE, foreign);
        // Garbage and wrong lengths.
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, serviceId, 0xE, digest));
        protocol.settle(callId, r, 0xE, new bytes(256));
        vm.expectRevert(abi.encodeWithSelector(InvalidCertificate.selector, serviceId, 0xE, digest));
        protocol.settle(callId, r, 0xE, new bytes(12));
    }

    function test_Settle_CertificateOfOneServiceDoesNotSettleAnother() external {
        uint64 other = _activeService(blueprintId, 4, true); // same operators, another service
        uint256 callId = _call(other, 0);
        bytes32 r = keccak256("r");
        bytes memory wrongService = _sign(
            0xE,
            keccak256(
                abi.encode(
                    keccak256("vouch.v1.result"),
                    block.chainid,
                    address(protocol),
                    serviceId,
                    callId,
                    _inputsHash(callId),
                    r
                )
            )
        );
        vm.expectRevert(
            abi.encodeWithSelector(InvalidCertificate.selector, other, 0xE, _resultDigest(other, callId, r))
        );
        protocol.settle(callId, r, 0xE, wrongService);
    }

    function test_Settle_NotifiesHooks() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 4, true);
        uint256 callId = _settleOne(id, 0, 0xE);
        assertEq(hooks.results(callId), keccak256(abi.encode("result", callId)), "onResult");
    }

    function test_Settle_HookFailureNeverBlocks() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 4, true);
        MockHooks.Mode[2] memory failures = [MockHooks.Mode.Revert, MockHooks.Mode.BurnGas];
        for (uint256 i; i < failures.length; ++i) {
            hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, failures[i]);
            uint256 callId = _call(id, 0);
            bytes32 r = keccak256("r");
            bytes memory signature = _certify(id, callId, r, 0xE);
            vm.expectEmit(address(protocol));
            emit HookFailed(id, callId, address(hooks));
            protocol.settle(callId, r, 0xE, signature);
            assertTrue(protocol.getCall(callId).status == IVouchProtocol.CallStatus.Settled, "settled");
        }
    }

    function test_Settle_HookCannotReenter() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 4, true);
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Deny);
        hooks.setReentry(address(protocol), abi.encodeCall(VouchProtocol.sweepSurplus, ()));
        uint256 callId = _call(id, 0);
        bytes32 r = keccak256("r");
        bytes memory signature = _certify(id, callId, r, 0xE);
        vm.expectEmit(address(protocol));
        emit HookFailed(id, callId, address(hooks));
        protocol.settle(callId, r, 0xE, signature);
        assertEq(hooks.resultCount(), 0, "re-entry failed");
    }

    function test_RevertWhen_SettleStarvesTheHook() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 4, true);
        hooks.setModes(MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.Allow, MockHooks.Mode.BurnGas);
        uint256 callId = _call(id, 0);
        bytes32 r = keccak256("r");
        bytes memory signature = _certify(id, callId, r, 0xE);
        // Below some gas limit the hook cannot get its full allowance: settle must revert rather than skip it.
        bool starved;
        for (uint256 gasLimit = 200_000; gasLimit < 800_000; gasLimit += 5000) {
            (bool ok, bytes memory reason) =
                address(protocol).call{gas: gasLimit}(abi.encodeCall(VouchProtocol.settle, (callId, r, 0xE, signature)));
            if (ok) break;
            if (_selector(reason) == InsufficientGasForHook.selector) starved = true;
        }
        assertTrue(starved, "InsufficientGasForHook seen");
        assertTrue(protocol.getCall(callId).status == IVouchProtocol.CallStatus.Settled, "settled with enough gas");
    }

    function test_Settle_CommissionAbove100PercentIsCapped() external {
        staking.setCommission(serviceOperators[1], 20_000);
        _settleOne(serviceId, 0, 0xE);
        assertEq(staking.rewardsOf(serviceOperators[1]), 0, "all commission");
        _assertSolvent();
    }

    // ===============================================================================================================
    // settleBatch
    // ===============================================================================================================

    function _openBatch(uint64 service, uint256 n)
        internal
        returns (uint256[] memory callIds, bytes32[] memory results)
    {
        callIds = new uint256[](n);
        results = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            callIds[i] = _call(service, uint8(i % 2));
            results[i] = keccak256(abi.encode("batch", i));
        }
    }

    function test_SettleBatch_SettlesEveryCallAndSplitsExactly() external {
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(serviceId, 7);
        uint256 bitmap = 0xF;
        bytes memory signature = _sign(bitmap, _batchDigest(serviceId, callIds, results));
        protocol.settleBatch(serviceId, callIds, results, bitmap, signature);
        uint256 total = 4 * uint256(PRICE0) + 3 * uint256(PRICE1);
        uint256 sum = protocol.claimable(developer) + protocol.claimable(treasury);
        for (uint256 i; i < 7; ++i) {
            IVouchProtocol.Call memory c = protocol.getCall(callIds[i]);
            assertTrue(c.status == IVouchProtocol.CallStatus.Settled, "settled");
            assertEq(c.resultHash, results[i], "result");
            assertEq(c.signerBitmap, bitmap, "bitmap");
        }
        for (uint256 k; k < 4; ++k) {
            sum += protocol.claimable(serviceOperators[k]) + staking.rewardsOf(serviceOperators[k]);
        }
        assertEq(sum, total, "exact split");
        assertEq(staking.distributeCalls(), 4, "one distribution per signer");
        // Per call: 4 × split(PRICE0) + 3 × split(PRICE1), identical to settling one by one.
        assertEq(protocol.claimable(developer), 4 * (PRICE0 / 10) + 3 * (PRICE1 / 10), "developer per call");
        _assertSolvent();
    }

    function test_SettleBatch_SameFeesAsIndividualSettlements() external {
        uint256 snap = vm.snapshotState();
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(serviceId, 5);
        protocol.settleBatch(serviceId, callIds, results, 0xE, _sign(0xE, _batchDigest(serviceId, callIds, results)));
        uint256[6] memory batched;
        batched[0] = protocol.claimable(developer);
        batched[1] = protocol.claimable(treasury);
        for (uint256 k; k < 4; ++k) {
            batched[2 + k] = protocol.claimable(serviceOperators[k]) + staking.rewardsOf(serviceOperators[k]);
        }
        vm.revertToState(snap);
        (callIds, results) = _openBatch(serviceId, 5);
        for (uint256 i; i < 5; ++i) {
            protocol.settle(callIds[i], results[i], 0xE, _certify(serviceId, callIds[i], results[i], 0xE));
        }
        assertEq(protocol.claimable(developer), batched[0], "developer");
        assertEq(protocol.claimable(treasury), batched[1], "treasury");
        for (uint256 k; k < 4; ++k) {
            assertEq(
                protocol.claimable(serviceOperators[k]) + staking.rewardsOf(serviceOperators[k]),
                batched[2 + k],
                "signer"
            );
        }
    }

    function test_SettleBatch_100Calls() external {
        uint64 big = _activeService(blueprintId, N_OPERATORS, true);
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(big, 100);
        uint256 bitmap = _firstSlots(N_OPERATORS);
        protocol.settleBatch(big, callIds, results, bitmap, _sign(bitmap, _batchDigest(big, callIds, results)));
        for (uint256 i; i < 100; ++i) {
            assertTrue(protocol.getCall(callIds[i]).status == IVouchProtocol.CallStatus.Settled, "settled");
        }
        assertEq(staking.distributeCalls(), N_OPERATORS, "one distribution per signer");
        _assertSolvent();
    }

    function test_SettleBatch_NotifiesHooksPerCall() external {
        uint64 bp = _createBlueprint(address(hooks));
        uint64 id = _activeService(bp, 4, true);
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(id, 3);
        protocol.settleBatch(id, callIds, results, 0xE, _sign(0xE, _batchDigest(id, callIds, results)));
        assertEq(hooks.resultCount(), 3, "three results");
        assertEq(hooks.results(callIds[2]), results[2], "result");
    }

    function test_RevertWhen_SettleBatchInvalid() external {
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(serviceId, 3);
        vm.expectRevert(abi.encodeWithSelector(LengthMismatch.selector, 3, 2));
        protocol.settleBatch(serviceId, callIds, new bytes32[](2), 0xE, "");
        vm.expectRevert(abi.encodeWithSelector(InvalidBatchSize.selector, 0));
        protocol.settleBatch(serviceId, new uint256[](0), new bytes32[](0), 0xE, "");
        vm.expectRevert(abi.encodeWithSelector(InvalidBatchSize.selector, 1025));
        protocol.settleBatch(serviceId, new uint256[](1025), new bytes32[](1025), 0xE, "");

        // A call of another service.
        uint64 other = _activeService(blueprintId, 4, true);
        uint256 foreign = _call(other, 0);
        uint256[] memory mixed = new uint256[](2);
        mixed[0] = callIds[0];
        mixed[1] = foreign;
        vm.expectRevert(abi.encodeWithSelector(CallServiceMismatch.selector, foreign, other, serviceId));
        protocol.settleBatch(serviceId, mixed, new bytes32[](2), 0xE, "");

        // A duplicate.
        uint256[] memory dup = new uint256[](2);
        dup[0] = callIds[1];
        dup[1] = callIds[1];
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, callIds[1], IVouchProtocol.CallStatus.Settled));
        protocol.settleBatch(serviceId, dup, new bytes32[](2), 0xE, "");

        // A result the signers did not sign.
        bytes memory signature = _sign(0xE, _batchDigest(serviceId, callIds, results));
        results[2] = keccak256("tampered");
        vm.expectRevert(
            abi.encodeWithSelector(
                InvalidCertificate.selector, serviceId, 0xE, _batchDigest(serviceId, callIds, results)
            )
        );
        protocol.settleBatch(serviceId, callIds, results, 0xE, signature);

        // A single-call certificate is not a batch certificate.
        uint256[] memory one = new uint256[](1);
        one[0] = callIds[0];
        bytes32[] memory oneResult = new bytes32[](1);
        oneResult[0] = results[0];
        bytes memory single = _certify(serviceId, callIds[0], results[0], 0xE);
        vm.expectRevert(
            abi.encodeWithSelector(InvalidCertificate.selector, serviceId, 0xE, _batchDigest(serviceId, one, oneResult))
        );
        protocol.settleBatch(serviceId, one, oneResult, 0xE, single);

        // Quorum is checked as for settle.
        vm.expectRevert(abi.encodeWithSelector(QuorumNotReached.selector, 6000e18, 10_000e18, 6667));
        protocol.settleBatch(serviceId, one, oneResult, 0x7, single);
    }

    function test_RevertWhen_SettleBatchContainsLateOrSettledCall() external {
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(serviceId, 2);
        protocol.settle(callIds[1], results[1], 0xE, _certify(serviceId, callIds[1], results[1], 0xE));
        bytes memory signature = _sign(0xE, _batchDigest(serviceId, callIds, results));
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, callIds[1], IVouchProtocol.CallStatus.Settled));
        protocol.settleBatch(serviceId, callIds, results, 0xE, signature);

        (callIds, results) = _openBatch(serviceId, 2); // job 0 (600 s) and job 1 (3600 s)
        signature = _sign(0xE, _batchDigest(serviceId, callIds, results));
        uint64 deadline = protocol.getCall(callIds[0]).deadline;
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(DeadlinePassed.selector, callIds[0], deadline));
        protocol.settleBatch(serviceId, callIds, results, 0xE, signature);
    }

    // ===============================================================================================================
    // Refunds and claims
    // ===============================================================================================================

    function test_Refund_AfterDeadline() external {
        uint256 callId = _call(serviceId, 0);
        uint64 deadline = protocol.getCall(callId).deadline;
        vm.warp(deadline + 1);
        vm.expectEmit(address(protocol));
        emit CallRefunded(callId, payer, PRICE0);
        vm.prank(stranger);
        protocol.refund(callId);
        assertTrue(protocol.getCall(callId).status == IVouchProtocol.CallStatus.Refunded, "refunded");
        assertEq(protocol.claimable(payer), PRICE0, "claimable");
        uint256 before = token.balanceOf(payer);
        vm.expectEmit(address(protocol));
        emit Claimed(payer, PRICE0);
        vm.prank(payer);
        assertEq(protocol.claim(), PRICE0, "claimed");
        assertEq(token.balanceOf(payer) - before, PRICE0, "paid back");
        assertEq(protocol.claimable(payer), 0, "cleared");
        _assertSolvent();
    }

    function test_RevertWhen_RefundInvalid() external {
        uint256 callId = _call(serviceId, 0);
        uint64 deadline = protocol.getCall(callId).deadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(DeadlineNotPassed.selector, callId, deadline));
        protocol.refund(callId);
        vm.warp(deadline + 1);
        protocol.refund(callId);
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, callId, IVouchProtocol.CallStatus.Refunded));
        protocol.refund(callId);
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, 99, IVouchProtocol.CallStatus.None));
        protocol.refund(99);
    }

    function test_SettledCallIsNeverRefunded_AndRefundedNeverSettled() external {
        uint256 settled = _settleOne(serviceId, 0, 0xE);
        uint256 open = _call(serviceId, 0);
        bytes32 r = keccak256("late");
        bytes memory signature = _certify(serviceId, open, r, 0xE);
        vm.warp(block.timestamp + 7 days);
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, settled, IVouchProtocol.CallStatus.Settled));
        protocol.refund(settled);
        protocol.refund(open);
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, open, IVouchProtocol.CallStatus.Refunded));
        protocol.settle(open, r, 0xE, signature);
    }

    function test_RefundBatch() external {
        uint256 a = _call(serviceId, 0);
        uint256 b = _call(serviceId, 1);
        vm.warp(block.timestamp + DEADLINE1 + 1);
        uint256[] memory ids = new uint256[](2);
        ids[0] = a;
        ids[1] = b;
        protocol.refundBatch(ids);
        assertEq(protocol.claimable(payer), PRICE0 + PRICE1, "both");
        vm.expectRevert(abi.encodeWithSelector(CallNotOpen.selector, a, IVouchProtocol.CallStatus.Refunded));
        protocol.refundBatch(ids);
    }

    function test_Claim_EveryParty() external {
        _settleOne(serviceId, 0, 0xF);
        address[] memory parties = new address[](5);
        parties[0] = developer;
        parties[1] = treasury;
        parties[2] = serviceOperators[1];
        parties[3] = serviceOperators[2];
        parties[4] = serviceOperators[3];
        for (uint256 i; i < parties.length; ++i) {
            uint256 owed = protocol.claimable(parties[i]);
            assertGt(owed, 0, "owed");
            vm.prank(parties[i]);
            protocol.claim();
            assertEq(token.balanceOf(parties[i]), owed, "received");
        }
        assertEq(protocol.accounted(), 0, "all paid out");
        assertEq(token.balanceOf(address(protocol)), 0, "empty");
    }

    function test_RevertWhen_NothingToClaim() external {
        vm.expectRevert(abi.encodeWithSelector(NothingToClaim.selector, stranger));
        vm.prank(stranger);
        protocol.claim();
    }

    // ===============================================================================================================
    // Views
    // ===============================================================================================================

    function test_QuorumReached() external view {
        assertTrue(protocol.quorumReached(serviceId, 0xE), "9000");
        assertTrue(protocol.quorumReached(serviceId, 0xC), "7000");
        assertFalse(protocol.quorumReached(serviceId, 0x7), "6000");
        assertFalse(protocol.quorumReached(serviceId, 0x8), "one signer");
        assertFalse(protocol.quorumReached(serviceId, 0), "empty");
        assertFalse(protocol.quorumReached(serviceId, 0x10), "out of range");
        assertFalse(protocol.quorumReached(99, 0x3), "unknown service");
    }

    // ===============================================================================================================
    // Fuzz
    // ===============================================================================================================

    /// @dev Any price, developer fee, stakes, commissions and quorum-reaching bitmap: the split is exact and solvent.
    function testFuzz_Settle_FeeSplitIsExact(
        uint96 price,
        uint16 developerFeeBps,
        uint256[4] memory stakes,
        uint16[4] memory commissions,
        uint256 bitmap
    ) external {
        price = uint96(bound(price, 1, type(uint96).max));
        developerFeeBps = uint16(bound(developerFeeBps, 0, 10_000 - PROTOCOL_FEE_BPS));
        for (uint256 i; i < 4; ++i) {
            // Stake ratios up to 1000: a single signer always reaches the 1 bps quorum.
            staking.setOperator(keys[i].operator, bound(stakes[i], 1e18, 1e21), commissions[i]);
        }
        IVouchProtocol.Job[] memory jobs = new IVouchProtocol.Job[](1);
        jobs[0] = IVouchProtocol.Job({price: price, deadline: 600, verification: IVouchProtocol.Verification.Exact});
        IVouchProtocol.Policy memory policy = _policy();
        policy.developerFeeBps = developerFeeBps;
        policy.quorumBps = 1;
        policy.minSigners = 1;
        vm.prank(developer);
        uint64 bp = protocol.createBlueprint("", bytes32(0), jobs, policy, address(0), address(0));
        uint64 id = _activeService(bp, 4, true);
        token.mint(payer, price);
        bitmap = bound(bitmap, 1, 15);

        uint256 callId = _call(id, 0);
        bytes32 r = keccak256("r");
        protocol.settle(callId, r, bitmap, _certify(id, callId, r, bitmap));

        uint256 sum = protocol.claimable(developer) + protocol.claimable(treasury);
        for (uint256 k; k < 4; ++k) {
            uint256 got = protocol.claimable(keys[k].operator) + staking.rewardsOf(keys[k].operator);
            if ((bitmap >> k) & 1 == 0) assertEq(got, 0, "non-signer paid");
            sum += got;
        }
        assertEq(sum, price, "split != price");
        assertEq(protocol.claimable(developer), uint256(price) * developerFeeBps / 10_000, "developer fee");
        _assertSolvent();
    }

    /// @dev Settlement succeeds iff the bitmap fits, has ≥ minSigners bits and ≥ quorum stake; `quorumReached` agrees.
    function testFuzz_Settle_QuorumDecision(uint256 bitmap) external {
        bitmap = bitmap & 0x1F; // include one out-of-range bit sometimes
        uint256 callId = _call(serviceId, 0);
        bytes32 r = keccak256("r");
        bool fits = bitmap != 0 && bitmap < 16;
        bytes memory signature = fits ? _certify(serviceId, callId, r, bitmap) : new bytes(256);
        bool expected = protocol.quorumReached(serviceId, bitmap);
        uint256 stake;
        for (uint256 k; k < 4; ++k) {
            if ((bitmap >> k) & 1 == 1) stake += (k + 1) * 1000;
        }
        assertEq(expected, fits && _popcount(bitmap) >= 2 && stake * 10_000 >= 6667 * 10_000, "model");
        (bool ok,) = address(protocol).call(abi.encodeCall(VouchProtocol.settle, (callId, r, bitmap, signature)));
        assertEq(ok, expected, "settle outcome");
    }

    /// @dev Exactly one of settle / refund is possible at any time (settle iff now ≤ deadline), whichever is tried
    /// first, and after it neither transition is possible again.
    function testFuzz_SettleOrRefund_Timing(uint256 elapsed, bool settleFirst) external {
        elapsed = bound(elapsed, 0, 2 * DEADLINE0);
        uint256 callId = _call(serviceId, 0);
        bytes32 r = keccak256("r");
        bytes memory settleCall =
            abi.encodeCall(VouchProtocol.settle, (callId, r, 0xE, _certify(serviceId, callId, r, 0xE)));
        bytes memory refundCall = abi.encodeCall(VouchProtocol.refund, (callId));
        vm.warp(block.timestamp + elapsed);
        bool onTime = elapsed <= DEADLINE0;
        bool settled;
        bool refunded;
        if (settleFirst) {
            (settled,) = address(protocol).call(settleCall);
            (refunded,) = address(protocol).call(refundCall);
        } else {
            (refunded,) = address(protocol).call(refundCall);
            (settled,) = address(protocol).call(settleCall);
        }
        assertEq(settled, onTime, "settle iff on time");
        assertEq(refunded, !onTime, "refund iff late");
        (settled,) = address(protocol).call(settleCall);
        (refunded,) = address(protocol).call(refundCall);
        assertFalse(settled || refunded, "final");
        IVouchProtocol.CallStatus status = protocol.getCall(callId).status;
        assertTrue(
            status == (onTime ? IVouchProtocol.CallStatus.Settled : IVouchProtocol.CallStatus.Refunded), "status"
        );
        _assertSolvent();
    }

    /// @dev Batches of any size and job mix split exactly.
    function testFuzz_SettleBatch_Exact(uint8 n, uint256 bitmapSeed) external {
        n = uint8(bound(n, 1, 20));
        uint256 bitmap = [uint256(0xE), 0xC, 0xF, 0xB, 0xD][bitmapSeed % 5];
        (uint256[] memory callIds, bytes32[] memory results) = _openBatch(serviceId, n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            total += protocol.getCall(callIds[i]).payment;
        }
        protocol.settleBatch(
            serviceId, callIds, results, bitmap, _sign(bitmap, _batchDigest(serviceId, callIds, results))
        );
        uint256 sum = protocol.claimable(developer) + protocol.claimable(treasury);
        for (uint256 k; k < 4; ++k) {
            sum += protocol.claimable(serviceOperators[k]) + staking.rewardsOf(serviceOperators[k]);
        }
        assertEq(sum, total, "exact");
        _assertSolvent();
    }
}
