// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {IVouchStaking} from "../../src/interfaces/IVouchStaking.sol";

/// @title MockVouchProtocol
/// @notice Test double of `IVouchProtocol` whose blueprints, services and calls the tests set directly.
/// @dev Stored as a real protocol would store them (so reads cost about what they will cost there). Unknown ids read
/// as zero values, like unset storage.
contract MockVouchProtocol is IVouchProtocol {
    mapping(uint64 blueprintId => Blueprint) private _blueprints;
    mapping(uint64 serviceId => Service) private _services;
    mapping(uint256 callId => Call) private _calls;
    mapping(uint256 batchId => PaidBatch) private _paidBatches;

    /// @notice Sets blueprint `blueprintId`.
    function setBlueprint(uint64 blueprintId, Blueprint memory blueprint) external {
        Blueprint storage stored = _blueprints[blueprintId];
        stored.owner = blueprint.owner;
        stored.arbiter = blueprint.arbiter;
        stored.hooks = blueprint.hooks;
        stored.metadataHash = blueprint.metadataHash;
        stored.metadataUri = blueprint.metadataUri;
        stored.policy = blueprint.policy;
        delete stored.jobs;
        for (uint256 i; i < blueprint.jobs.length; ++i) {
            stored.jobs.push(blueprint.jobs[i]);
        }
    }

    /// @notice Sets service `serviceId`.
    function setService(uint64 serviceId, Service memory service) external {
        _services[serviceId] = service;
    }

    /// @notice Sets call `callId`.
    function setCall(uint256 callId, Call memory call) external {
        _calls[callId] = call;
    }

    /// @notice Sets paid batch `batchId`.
    function setPaidBatch(uint256 batchId, PaidBatch memory batch) external {
        _paidBatches[batchId] = batch;
    }

    /// @inheritdoc IVouchProtocol
    function getBlueprint(uint64 blueprintId) external view returns (Blueprint memory) {
        return _blueprints[blueprintId];
    }

    /// @inheritdoc IVouchProtocol
    function getService(uint64 serviceId) external view returns (Service memory) {
        return _services[serviceId];
    }

    /// @inheritdoc IVouchProtocol
    function getCall(uint256 callId) external view returns (Call memory) {
        return _calls[callId];
    }

    /// @inheritdoc IVouchProtocol
    function getPaidBatch(uint256 batchId) external view returns (PaidBatch memory) {
        return _paidBatches[batchId];
    }

    /// @inheritdoc IVouchProtocol
    function paymentToken() external pure returns (address) {
        return address(0);
    }
}

/// @title MockVouchStaking
/// @notice Test double of `IVouchStaking`: a configurable slashable stake per operator, and a record of every `slash`
/// and `jail` call. `slash` caps at the stake, reduces it and scales the split down like the real contract.
/// Optionally re-enters a target during `slash` (to test the slasher's reentrancy guard).
contract MockVouchStaking is IVouchStaking {
    /// @notice One recorded `slash` call.
    struct SlashRecord {
        address operator;
        uint256 amount;
        uint256 slashed;
        SlashSplit split;
    }

    /// @notice One recorded `jail` call.
    struct JailRecord {
        address operator;
        uint64 until;
    }

    /// @notice The only address allowed to slash and jail (zero = anyone).
    address public slasher;
    /// @notice Slashable stake per operator.
    mapping(address operator => uint256 stake) public stakeOf;
    /// @notice Jail end per operator.
    mapping(address operator => uint64 until) public jailedUntil;

    SlashRecord[] private _slashes;
    JailRecord[] private _jails;

    address private _reenterTarget;
    bytes private _reenterData;
    bool private _skipRecords;

    /// @notice Caller is not the slasher.
    error NotSlasher(address caller);

    /// @notice Restricts `slash` and `jail` to `slasher_`.
    function setSlasher(address slasher_) external {
        slasher = slasher_;
    }

    /// @notice Sets the slashable stake of `operator`.
    function setSlashableStake(address operator, uint256 stake) external {
        stakeOf[operator] = stake;
    }

    /// @notice Makes the next `slash` call `target` with `data` and bubble up its revert.
    function setReenter(address target, bytes calldata data) external {
        _reenterTarget = target;
        _reenterData = data;
    }

    /// @notice Stops recording `slash` and `jail` calls (gas measurements: the records are test overhead).
    function setSkipRecords(bool skip) external {
        _skipRecords = skip;
    }

    /// @notice Number of `slash` calls.
    function slashCount() external view returns (uint256) {
        return _slashes.length;
    }

    /// @notice `slash` call `i`.
    function slashAt(uint256 i) external view returns (SlashRecord memory) {
        return _slashes[i];
    }

    /// @notice Number of `jail` calls.
    function jailCount() external view returns (uint256) {
        return _jails.length;
    }

    /// @notice `jail` call `i`.
    function jailAt(uint256 i) external view returns (JailRecord memory) {
        return _jails[i];
    }

    /// @inheritdoc IVouchStaking
    function stakeToken() external pure returns (address) {
        return address(0);
    }

    /// @inheritdoc IVouchStaking
    function paymentToken() external pure returns (address) {
        return address(0);
    }

    /// @inheritdoc IVouchStaking
    function unbondingDelay() external pure returns (uint64) {
        return 60 days;
    }

    /// @inheritdoc IVouchStaking
    function isOperator(address) external pure returns (bool) {
        return true;
    }

    /// @inheritdoc IVouchStaking
    function isJailed(address operator) external view returns (bool) {
        // forge-lint: disable-next-line(block-timestamp)
        return jailedUntil[operator] > block.timestamp;
    }

    /// @inheritdoc IVouchStaking
    function slashableStake(address operator) external view returns (uint256) {
        return stakeOf[operator];
    }

    /// @inheritdoc IVouchStaking
    function activeStake(address operator) external view returns (uint256) {
        return stakeOf[operator];
    }

    /// @inheritdoc IVouchStaking
    function commissionBps(address) external pure returns (uint16) {
        return 0;
    }

    /// @inheritdoc IVouchStaking
    function slash(address operator, uint256 amount, SlashSplit calldata split) external returns (uint256 slashed) {
        if (slasher != address(0) && msg.sender != slasher) revert NotSlasher(msg.sender);
        require(split.toPayer + split.toReporter <= amount, "split exceeds amount");
        if (_reenterTarget != address(0)) {
            (bool ok, bytes memory ret) = _reenterTarget.call(_reenterData);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        uint256 stake = stakeOf[operator];
        slashed = amount < stake ? amount : stake;
        stakeOf[operator] = stake - slashed;
        SlashSplit memory scaled = split;
        if (slashed < amount) {
            scaled.toPayer = split.toPayer * slashed / amount;
            scaled.toReporter = split.toReporter * slashed / amount;
        }
        if (_skipRecords) return slashed;
        _slashes.push(SlashRecord({operator: operator, amount: amount, slashed: slashed, split: scaled}));
    }

    /// @inheritdoc IVouchStaking
    function jail(address operator, uint64 until) external {
        if (slasher != address(0) && msg.sender != slasher) revert NotSlasher(msg.sender);
        jailedUntil[operator] = until;
        if (_skipRecords) return;
        _jails.push(JailRecord({operator: operator, until: until}));
    }

    /// @inheritdoc IVouchStaking
    function distributeRewards(address, uint256) external pure {
        revert("not used");
    }
}
