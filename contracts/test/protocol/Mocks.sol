// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IBlueprintHooks} from "../../src/interfaces/IBlueprintHooks.sol";
import {IVouchStaking} from "../../src/interfaces/IVouchStaking.sol";

/// @title MockStaking
/// @notice Test double of `IVouchStaking` for the protocol tests: settable operators, stakes, commissions and jails;
/// `distributeRewards` checks that the protocol transferred the tokens first and records them per operator.
contract MockStaking is IVouchStaking {
    /// @notice The payment token rewards arrive in.
    IERC20 public immutable PAYMENT_TOKEN;
    /// @notice The only caller of `distributeRewards`.
    address public protocol;
    /// @inheritdoc IVouchStaking
    uint64 public unbondingDelay = 14 days;
    /// @dev Registered operators.
    mapping(address => bool) private _registered;
    /// @dev Jailed operators.
    mapping(address => bool) private _jailed;
    /// @dev Active stake per operator.
    mapping(address => uint256) private _active;
    /// @dev Commission per operator.
    mapping(address => uint16) private _commission;
    /// @notice Rewards distributed per operator.
    mapping(address => uint256) public rewardsOf;
    /// @notice Sum of distributed rewards.
    uint256 public totalRewards;
    /// @notice Number of `distributeRewards` calls.
    uint256 public distributeCalls;

    /// @notice A distribution was recorded.
    event RewardsDistributed(address indexed operator, uint256 amount);

    /// @notice Called by someone other than the protocol.
    error NotProtocol(address caller);
    /// @notice The tokens were not transferred before `distributeRewards`.
    error RewardsNotFunded(uint256 balance, uint256 owed);
    /// @notice Slashing is not part of the protocol tests.
    error Unsupported();

    /// @param paymentToken The payment token.
    constructor(IERC20 paymentToken) {
        PAYMENT_TOKEN = paymentToken;
    }

    /// @notice Sets the protocol allowed to distribute rewards.
    function setProtocol(address protocol_) external {
        protocol = protocol_;
    }

    /// @notice Sets the unbonding delay.
    function setUnbondingDelay(uint64 delay) external {
        unbondingDelay = delay;
    }

    /// @notice Registers (or updates) an operator.
    function setOperator(address operator, uint256 activeStake_, uint16 commissionBps_) external {
        _registered[operator] = true;
        _active[operator] = activeStake_;
        _commission[operator] = commissionBps_;
    }

    /// @notice Removes an operator's registration.
    function removeOperator(address operator) external {
        _registered[operator] = false;
    }

    /// @notice Jails or frees an operator.
    function setJailed(address operator, bool jailed) external {
        _jailed[operator] = jailed;
    }

    /// @notice Sets an operator's active stake.
    function setActiveStake(address operator, uint256 stake) external {
        _active[operator] = stake;
    }

    /// @notice Sets an operator's commission (may exceed 10,000 to test the protocol's cap).
    function setCommission(address operator, uint16 bps) external {
        _commission[operator] = bps;
    }

    /// @inheritdoc IVouchStaking
    function stakeToken() external pure returns (address) {
        return address(0);
    }

    /// @inheritdoc IVouchStaking
    function paymentToken() external view returns (address) {
        return address(PAYMENT_TOKEN);
    }

    /// @inheritdoc IVouchStaking
    function isOperator(address operator) external view returns (bool) {
        return _registered[operator];
    }

    /// @inheritdoc IVouchStaking
    function isJailed(address operator) external view returns (bool) {
        return _jailed[operator];
    }

    /// @inheritdoc IVouchStaking
    function slashableStake(address operator) external view returns (uint256) {
        return _active[operator];
    }

    /// @inheritdoc IVouchStaking
    function activeStake(address operator) external view returns (uint256) {
        return _active[operator];
    }

    /// @inheritdoc IVouchStaking
    function commissionBps(address operator) external view returns (uint16) {
        return _commission[operator];
    }

    /// @inheritdoc IVouchStaking
    function slash(address, uint256, SlashSplit calldata) external pure returns (uint256) {
        revert Unsupported();
    }

    /// @inheritdoc IVouchStaking
    function jail(address, uint64) external pure {
        revert Unsupported();
    }

    /// @inheritdoc IVouchStaking
    function distributeRewards(address operator, uint256 amount) external {
        if (msg.sender != protocol) revert NotProtocol(msg.sender);
        uint256 owed = totalRewards + amount;
        uint256 balance = PAYMENT_TOKEN.balanceOf(address(this));
        if (balance < owed) revert RewardsNotFunded(balance, owed);
        rewardsOf[operator] += amount;
        totalRewards = owed;
        ++distributeCalls;
        emit RewardsDistributed(operator, amount);
    }
}

/// @title MockHooks
/// @notice Configurable `IBlueprintHooks`: each hook allows, refuses, reverts, burns all its gas or returns garbage.
contract MockHooks is IBlueprintHooks {
    /// @notice What a hook does.
    enum Mode {
        Allow,
        Deny,
        Revert,
        BurnGas,
        ShortReturn
    }

    /// @notice Mode of `allowOperator`.
    Mode public operatorMode;
    /// @notice Mode of `allowServiceRequest`.
    Mode public requestMode;
    /// @notice Mode of `allowJobCall`.
    Mode public callMode;
    /// @notice Mode of `onResult` (Allow = record, Deny = try to re-enter the target).
    Mode public resultMode;
    /// @notice A specific operator `allowOperator` refuses (zero = none).
    address public deniedOperator;
    /// @notice A specific caller `allowJobCall` refuses (zero = none).
    address public deniedCaller;
    /// @notice Jobs `allowJobCall` refuses.
    mapping(uint8 jobIndex => bool) public deniedJobs;
    /// @notice Contract `onResult` re-enters in `Deny` mode.
    address public reentryTarget;
    /// @notice Calldata `onResult` sends to `reentryTarget`.
    bytes public reentryData;
    /// @notice Results seen: callId → resultHash.
    mapping(uint256 => bytes32) public results;
    /// @notice Number of results seen.
    uint256 public resultCount;

    /// @notice The hook refused by reverting.
    error HookReverted();

    /// @notice Sets the four modes.
    function setModes(Mode operator_, Mode request_, Mode call_, Mode result_) external {
        operatorMode = operator_;
        requestMode = request_;
        callMode = call_;
        resultMode = result_;
    }

    /// @notice Refuses one operator / one caller.
    function setDenied(address operator, address caller) external {
        deniedOperator = operator;
        deniedCaller = caller;
    }

    /// @notice Refuses (or allows again) every call of job `jobIndex`.
    function setDeniedJob(uint8 jobIndex, bool denied) external {
        deniedJobs[jobIndex] = denied;
    }

    /// @notice Sets the re-entry of `onResult` in `Deny` mode.
    function setReentry(address target, bytes calldata data) external {
        reentryTarget = target;
        reentryData = data;
    }

    /// @inheritdoc IBlueprintHooks
    function allowOperator(uint64, address operator) external view returns (bool) {
        if (operator == deniedOperator) return false;
        return _veto(operatorMode);
    }

    /// @inheritdoc IBlueprintHooks
    function allowServiceRequest(uint64, address, address[] calldata) external view returns (bool) {
        return _veto(requestMode);
    }

    /// @inheritdoc IBlueprintHooks
    function allowJobCall(uint64, uint8 jobIndex, address caller) external view returns (bool) {
        if (caller == deniedCaller && caller != address(0)) return false;
        if (deniedJobs[jobIndex]) return false;
        return _veto(callMode);
    }

    /// @inheritdoc IBlueprintHooks
    function onResult(uint64, uint256 callId, bytes32 resultHash) external {
        Mode mode = resultMode;
        if (mode == Mode.Revert) revert HookReverted();
        if (mode == Mode.BurnGas) _burn();
        if (mode == Mode.Deny) {
            (bool ok, bytes memory reason) = reentryTarget.call(reentryData);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
        results[callId] = resultHash;
        ++resultCount;
    }

    /// @dev Applies a veto mode.
    function _veto(Mode mode) private view returns (bool) {
        if (mode == Mode.Allow) return true;
        if (mode == Mode.Deny) return false;
        if (mode == Mode.Revert) revert HookReverted();
        if (mode == Mode.BurnGas) _burn();
        // ShortReturn: 1 byte of return data instead of a 32-byte bool.
        assembly ("memory-safe") {
            mstore(0x00, 0x0100000000000000000000000000000000000000000000000000000000000000)
            return(0x00, 0x01)
        }
    }

    /// @dev Loops until out of gas.
    function _burn() private view {
        uint256 x = block.number;
        while (x != 0) {
            x = uint256(keccak256(abi.encode(x, gasleft()))) | 1;
        }
    }
}

/// @title FeeToken
/// @notice An ERC-20 that burns 1% of every transfer (the protocol must refuse it).
contract FeeToken is ERC20 {
    constructor() ERC20("Fee", "FEE") {}

    /// @notice Mints freely.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }

    /// @dev Burns 1% of each transfer between accounts.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }

    /// @notice Mimics EIP-3009's `authorizationState` (never used).
    function authorizationState(address, bytes32) external pure returns (bool) {
        return false;
    }
}
