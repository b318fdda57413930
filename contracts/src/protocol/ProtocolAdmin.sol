// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {KeyRegistry} from "../KeyRegistry.sol";
import {IBlueprintHooks} from "../interfaces/IBlueprintHooks.sol";
import {IVouchProtocol} from "../interfaces/IVouchProtocol.sol";
import {IVouchStaking} from "../interfaces/IVouchStaking.sol";
import {VouchProtocolEvents as E} from "./VouchProtocolEvents.sol";

/// @title ProtocolAdmin
/// @notice The cold paths of `VouchProtocol` (blueprint validation and registration, service requests and activation),
/// kept in a linked library so the protocol stays under EIP-170.
/// @dev Its `external` functions run by `DELEGATECALL` in the protocol's context: they read and write the protocol's
/// storage through the storage pointers they are given and emit the protocol's events (the emitter is the protocol).
/// Deploying `VouchProtocol` therefore needs this library deployed and linked first (forge does it automatically; the
/// Rust deploy helper replaces the `__$…$__` placeholder of the bytecode with the library address).
library ProtocolAdmin {
    /// @notice Basis-point denominator.
    uint256 internal constant BPS = 10_000;
    /// @notice Most jobs a blueprint may declare.
    uint256 internal constant MAX_JOBS = 32;
    /// @notice Shortest job deadline, in seconds.
    uint32 internal constant MIN_JOB_DEADLINE = 60;
    /// @notice Longest job deadline, in seconds.
    uint32 internal constant MAX_JOB_DEADLINE = 7 days;
    /// @notice Highest job price (the escrow of a call is stored in 96 bits).
    uint256 internal constant MAX_PRICE = type(uint96).max;
    /// @notice Largest operator set of a service (a key set's capacity, `KeyRegistry.MAX_SET_SIZE`).
    uint256 internal constant MAX_OPERATORS = 191;
    /// @notice Gas forwarded to each blueprint hook call.
    uint256 internal constant HOOK_GAS_LIMIT = 100_000;

    // ---------------------------------------------------------------------------------------------------------------
    // Blueprints
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Validates a blueprint (see `VouchProtocol.createBlueprint`) and writes it, owned by `msg.sender`.
    /// @param b Storage of the new blueprint (empty).
    /// @param blueprintId Its id.
    /// @param staking Staking contract (for the unbonding delay).
    /// @param protocolFeeBps The protocol fee.
    /// @param args ABI encoding of `createBlueprint`'s arguments `(string metadataUri, bytes32 metadataHash, Job[] jobs,
    /// Policy policy, address arbiter, address hooks)`.
    function createBlueprint(
        IVouchProtocol.Blueprint storage b,
        uint64 blueprintId,
        IVouchStaking staking,
        uint16 protocolFeeBps,
        bytes calldata args
    ) external {
        (
            string memory metadataUri,
            bytes32 metadataHash,
            IVouchProtocol.Job[] memory jobs,
            IVouchProtocol.Policy memory policy,
            address arbiter,
            address hooks
        ) = abi.decode(args, (string, bytes32, IVouchProtocol.Job[], IVouchProtocol.Policy, address, address));
        _validatePolicy(policy, _validateJobs(jobs), staking, protocolFeeBps);
        if (hooks != address(0) && hooks.code.length == 0) revert E.InvalidHooks(hooks);
        b.owner = msg.sender;
        b.arbiter = arbiter;
        b.hooks = hooks;
        b.metadataHash = metadataHash;
        b.metadataUri = metadataUri;
        b.policy = policy;
        for (uint256 i; i < jobs.length; ++i) {
            b.jobs.push(jobs[i]);
        }
        emit E.BlueprintCreated(blueprintId, msg.sender, arbiter, hooks, metadataHash, metadataUri, policy, jobs);
    }

    /// @notice Transfers a blueprint to `newOwner` (not zero). Only its owner. Emits `BlueprintOwnershipTransferred`.
    /// @param b The blueprint.
    /// @param blueprintId Its id.
    /// @param newOwner The new owner.
    function transferBlueprintOwnership(IVouchProtocol.Blueprint storage b, uint64 blueprintId, address newOwner)
        external
    {
        _requireBlueprintOwner(b, blueprintId);
        if (newOwner == address(0)) revert E.ZeroAddress();
        emit E.BlueprintOwnershipTransferred(blueprintId, b.owner, newOwner);
        b.owner = newOwner;
    }

    /// @notice Replaces a blueprint's metadata pointer. Only its owner. Emits `BlueprintMetadataUpdated`.
    /// @param b The blueprint.
    /// @param blueprintId Its id.
    /// @param metadataUri New location.
    /// @param metadataHash New content hash.
    function updateMetadata(
        IVouchProtocol.Blueprint storage b,
        uint64 blueprintId,
        string calldata metadataUri,
        bytes32 metadataHash
    ) external {
        _requireBlueprintOwner(b, blueprintId);
        b.metadataUri = metadataUri;
        b.metadataHash = metadataHash;
        emit E.BlueprintMetadataUpdated(blueprintId, metadataUri, metadataHash);
    }

    /// @dev Validates the jobs; returns the longest deadline.
    function _validateJobs(IVouchProtocol.Job[] memory jobs) private pure returns (uint256 maxDeadline) {
        uint256 n = jobs.length;
        if (n == 0 || n > MAX_JOBS) revert E.InvalidJobCount(n);
        for (uint256 i; i < n; ++i) {
            IVouchProtocol.Job memory job = jobs[i];
            if (job.price == 0 || job.price > MAX_PRICE) revert E.InvalidJobPrice(i, job.price);
            if (job.deadline < MIN_JOB_DEADLINE || job.deadline > MAX_JOB_DEADLINE) {
                revert E.InvalidJobDeadline(i, job.deadline);
            }
            if (job.deadline > maxDeadline) maxDeadline = job.deadline;
        }
    }

    /// @dev Validates a policy.
    function _validatePolicy(
        IVouchProtocol.Policy memory policy,
        uint256 maxDeadline,
        IVouchStaking staking,
        uint16 protocolFeeBps
    ) private view {
        if (policy.quorumBps == 0 || policy.quorumBps > BPS) {
            revert E.InvalidQuorum(policy.quorumBps);
        }
        if (policy.minSigners == 0) revert E.InvalidMinSigners(policy.minSigners);
        if (policy.developerFeeBps > BPS) revert E.InvalidBps(policy.developerFeeBps);
        if (uint256(policy.developerFeeBps) + protocolFeeBps > BPS) {
            revert E.FeesTooHigh(policy.developerFeeBps, protocolFeeBps);
        }
        if (policy.equivocationSlashBps > BPS) revert E.InvalidBps(policy.equivocationSlashBps);
        if (policy.deviationSlashBps > BPS) revert E.InvalidBps(policy.deviationSlashBps);
        if (policy.missedDeadlineSlashBps > BPS) revert E.InvalidBps(policy.missedDeadlineSlashBps);
        if (uint256(policy.payerShareBps) + policy.reporterShareBps > BPS) {
            revert E.InvalidSlashSplit(policy.payerShareBps, policy.reporterShareBps);
        }
        uint64 unbondingDelay = staking.unbondingDelay();
        if (maxDeadline + policy.disputeWindow >= unbondingDelay) {
            revert E.UnbondingTooShort(maxDeadline, policy.disputeWindow, unbondingDelay);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Services
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Checks a service request (see `VouchProtocol.requestService`) and writes the new service, owned by
    /// `msg.sender`, with each operator's slot + 1 and the permitted callers. Emits `ServiceRequested`.
    /// @param b The blueprint (must exist).
    /// @param s Storage of the new service (empty).
    /// @param slotPlusOne The new service's slot map (empty).
    /// @param permitted The new service's permitted-caller map (empty).
    /// @param serviceId The new service's id.
    /// @param staking Staking contract.
    /// @param args ABI encoding of `requestService`'s arguments `(uint64 blueprintId, address[] operators, uint64 expiry,
    /// bool publicAccess, address[] permittedCallers)`.
    function requestService(
        IVouchProtocol.Blueprint storage b,
        IVouchProtocol.Service storage s,
        mapping(address operator => uint256) storage slotPlusOne,
        mapping(address caller => bool) storage permitted,
        uint64 serviceId,
        IVouchStaking staking,
        bytes calldata args
    ) external {
        (
            uint64 blueprintId,
            address[] memory operators,
            uint64 expiry,
            bool publicAccess,
            address[] memory permittedCallers
        ) = abi.decode(args, (uint64, address[], uint64, bool, address[]));
        _checkRequest(b, slotPlusOne, staking, blueprintId, operators, expiry);
        s.blueprintId = blueprintId;
        s.status = IVouchProtocol.ServiceStatus.Requested;
        s.expiry = expiry;
        s.publicAccess = publicAccess;
        s.owner = msg.sender;
        s.operators = operators;
        for (uint256 i; i < permittedCallers.length; ++i) {
            permitted[permittedCallers[i]] = true;
        }
        emit E.ServiceRequested(serviceId, blueprintId, msg.sender, expiry, publicAccess, operators, permittedCallers);
    }

    /// @dev Checks a service request and records each operator's slot + 1.
    function _checkRequest(
        IVouchProtocol.Blueprint storage b,
        mapping(address operator => uint256) storage slotPlusOne,
        IVouchStaking staking,
        uint64 blueprintId,
        address[] memory operators,
        uint64 expiry
    ) private {
        if (b.owner == address(0)) revert E.UnknownBlueprint(blueprintId);
        uint256 n = operators.length;
        if (n == 0 || n > MAX_OPERATORS) revert E.InvalidOperatorCount(n);
        if (n < b.policy.minSigners) revert E.TooFewOperators(n, b.policy.minSigners);
        // forge-lint: disable-next-line(block-timestamp) expiry granularity is hours to months, not seconds
        if (expiry <= block.timestamp) revert E.InvalidExpiry(expiry);
        address hooks = b.hooks;
        for (uint256 i; i < n; ++i) {
            address operator = operators[i];
            if (slotPlusOne[operator] != 0) revert E.DuplicateOperator(operator);
            if (!staking.isOperator(operator)) revert E.NotOperator(operator);
            if (staking.isJailed(operator)) revert E.OperatorJailed(operator);
            if (
                hooks != address(0)
                    && !hookAllows(hooks, abi.encodeCall(IBlueprintHooks.allowOperator, (blueprintId, operator)))
            ) revert E.OperatorRefused(blueprintId, operator);
            slotPlusOne[operator] = i + 1;
        }
        if (
            hooks != address(0)
                && !hookAllows(
                    hooks, abi.encodeCall(IBlueprintHooks.allowServiceRequest, (blueprintId, msg.sender, operators))
                )
        ) revert E.ServiceRequestRefused(blueprintId, msg.sender);
    }

    /// @notice Terminates a requested or active service. Only its owner. Emits `ServiceTerminated`.
    /// @param s The service.
    /// @param serviceId Its id.
    function terminate(IVouchProtocol.Service storage s, uint64 serviceId) external {
        _requireServiceOwner(s, serviceId);
        if (s.status == IVouchProtocol.ServiceStatus.Terminated) revert E.ServiceAlreadyTerminated(serviceId);
        s.status = IVouchProtocol.ServiceStatus.Terminated;
        emit E.ServiceTerminated(serviceId);
    }

    /// @notice Sets a service's access mode. Only its owner. Emits `PublicAccessSet`.
    /// @param s The service.
    /// @param serviceId Its id.
    /// @param publicAccess The new mode.
    function setPublicAccess(IVouchProtocol.Service storage s, uint64 serviceId, bool publicAccess) external {
        _requireServiceOwner(s, serviceId);
        s.publicAccess = publicAccess;
        emit E.PublicAccessSet(serviceId, publicAccess);
    }

    /// @notice Sets the permission of each of `callers`. Only the service owner. Emits `PermittedCallerSet` for each.
    /// @param s The service.
    /// @param permitted The service's permitted-caller map.
    /// @param serviceId The service.
    /// @param callers The callers.
    /// @param allowed Their new permission.
    function setPermittedCallers(
        IVouchProtocol.Service storage s,
        mapping(address caller => bool) storage permitted,
        uint64 serviceId,
        address[] calldata callers,
        bool allowed
    ) external {
        _requireServiceOwner(s, serviceId);
        for (uint256 i; i < callers.length; ++i) {
            permitted[callers[i]] = allowed;
            emit E.PermittedCallerSet(serviceId, callers[i], allowed);
        }
    }

    /// @notice Records `msg.sender`'s approval of a requested service (it must be one of its operators and not
    /// jailed); the last approval activates the service (`activate`). Emits `ServiceApproved`.
    /// @param s The service.
    /// @param slotPlusOne The service's slot map.
    /// @param approvals The approval bitmaps of all services.
    /// @param serviceId The service's id.
    /// @param staking Staking contract.
    /// @param registry Key registry.
    function approve(
        IVouchProtocol.Service storage s,
        mapping(address operator => uint256) storage slotPlusOne,
        mapping(uint64 serviceId => uint256) storage approvals,
        uint64 serviceId,
        IVouchStaking staking,
        KeyRegistry registry
    ) external {
        if (s.status != IVouchProtocol.ServiceStatus.Requested) {
            revert E.ServiceNotRequested(serviceId, s.status);
        }
        uint256 slot = slotPlusOne[msg.sender];
        if (slot == 0) revert E.NotServiceOperator(serviceId, msg.sender);
        if (!staking.isOperator(msg.sender)) revert E.NotOperator(msg.sender);
        if (staking.isJailed(msg.sender)) revert E.OperatorJailed(msg.sender);
        // forge-lint: disable-next-line(incorrect-shift) bit `slot - 1` of the approval bitmap
        uint256 bit = 1 << (slot - 1);
        uint256 approved = approvals[serviceId];
        if (approved & bit != 0) revert E.AlreadyApproved(serviceId, msg.sender);
        approved |= bit;
        approvals[serviceId] = approved;
        emit E.ServiceApproved(serviceId, msg.sender);
        // forge-lint: disable-next-line(incorrect-shift) all-ones mask of the set size (≤ 191, so no overflow)
        if (approved == (1 << s.operators.length) - 1) _activate(s, serviceId, staking, registry);
    }

    /// @dev Activates a fully approved service: checks every operator is still registered and not jailed, snapshots each operator's active stake
    /// (each must be non-zero), creates the set's key set (the protocol is the registry's caller) and sets the status to
    /// `Active`. Emits `ServiceActivated`.
    function _activate(IVouchProtocol.Service storage s, uint64 serviceId, IVouchStaking staking, KeyRegistry registry)
        private
    {
        address[] memory operators = s.operators;
        uint256 n = operators.length;
        uint256[] memory stakes = new uint256[](n);
        uint256 totalStake;
        for (uint256 i; i < n; ++i) {
            address operator = operators[i];
            // An operator may have deregistered between the request and the last approval.
            if (!staking.isOperator(operator)) revert E.NotOperator(operator);
            if (staking.isJailed(operator)) revert E.OperatorJailed(operator);
            uint256 stake = staking.activeStake(operator);
            if (stake == 0) revert E.NoActiveStake(operator);
            stakes[i] = stake;
            totalStake += stake;
        }
        address keySet = registry.createKeySet(operators);
        s.keySet = keySet;
        s.totalStake = totalStake;
        s.stakes = stakes;
        s.status = IVouchProtocol.ServiceStatus.Active;
        emit E.ServiceActivated(serviceId, keySet, stakes, totalStake);
    }

    /// @dev Reverts unless the blueprint exists and `msg.sender` owns it.
    function _requireBlueprintOwner(IVouchProtocol.Blueprint storage b, uint64 blueprintId) private view {
        address owner = b.owner;
        if (owner == address(0)) revert E.UnknownBlueprint(blueprintId);
        if (owner != msg.sender) revert E.NotBlueprintOwner(blueprintId, msg.sender);
    }

    /// @dev Reverts unless the service exists and `msg.sender` owns it.
    function _requireServiceOwner(IVouchProtocol.Service storage s, uint64 serviceId) private view {
        if (s.status == IVouchProtocol.ServiceStatus.None) revert E.UnknownService(serviceId);
        if (s.owner != msg.sender) revert E.NotServiceOwner(serviceId, msg.sender);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Hooks
    // ---------------------------------------------------------------------------------------------------------------

    // ---------------------------------------------------------------------------------------------------------------
    // Views (their ABI encoders are large; the protocol returns these bytes as they are)
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice ABI encoding of a blueprint as `VouchProtocol.getBlueprint` returns it.
    /// @param b The blueprint.
    /// @return The encoded return data.
    /// @dev `pure` because solc 0.8.30 does not count reads through a storage parameter of an external library function
    /// as state access (it warns on `view`); the function does read the protocol's storage through `b`.
    function encodeBlueprint(IVouchProtocol.Blueprint storage b) external pure returns (bytes memory) {
        return abi.encode(b);
    }

    /// @notice ABI encoding of a service as `VouchProtocol.getService` returns it.
    /// @param s The service.
    /// @return The encoded return data.
    /// @dev `pure` for the reason given on `encodeBlueprint`.
    function encodeService(IVouchProtocol.Service storage s) external pure returns (bytes memory) {
        return abi.encode(s);
    }

    /// @notice Calls a veto hook with `HOOK_GAS_LIMIT` gas (static: it cannot change state). Allowed only if it returns
    /// exactly `true`; a revert, a short return or running out of gas refuses. Copies at most 32 bytes of return data.
    /// @param hooks The hooks contract.
    /// @param data The call.
    /// @return allowed Whether the hook allowed the action.
    function hookAllows(address hooks, bytes memory data) internal view returns (bool allowed) {
        assembly ("memory-safe") {
            let ok := staticcall(HOOK_GAS_LIMIT, hooks, add(data, 0x20), mload(data), 0x00, 0x20)
            allowed := and(and(ok, gt(returndatasize(), 0x1f)), eq(mload(0x00), 1))
        }
    }
}
