// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {IVouchStaking} from "../../src/interfaces/IVouchStaking.sol";
import {VouchStaking} from "../../src/staking/VouchStaking.sol";
import {VectorTest} from "../utils/Vectors.sol";
import {MockERC20} from "./MockERC20.sol";

/// @title StakingBase
/// @notice Shared fixture of the staking tests: a real KeyRegistry, a stake token (18 decimals), a payment token
/// (6 decimals), a VouchStaking deployed and initialized by the test, and helpers that register BLS keys (fresh keys
/// with their proofs of possession made via the EIP-2537 precompiles) and operators.
abstract contract StakingBase is VectorTest {
    uint64 internal constant UNBONDING = 7 days;
    uint64 internal constant COMMISSION_DELAY = 3 days;
    uint256 internal constant MIN_SELF_STAKE = 100e18;
    uint256 internal constant PRECISION = 1e36;
    address internal constant DEAD = 0x000000000000000000000000000000000000dEaD;

    KeyRegistry internal registry;
    MockERC20 internal stk;
    MockERC20 internal usd;
    VouchStaking internal staking;

    address internal protocol = address(0xB0B0);
    address internal slasher = address(0x5A5A);
    address internal op1 = address(0x1001);
    address internal op2 = address(0x1002);
    address internal noKey = address(0x1003);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA201);

    /// @dev Secret keys are derived from a counter so every registered key is distinct.
    uint256 internal _nextSecret = 0x5eed;

    /// @notice Deploys the fixture; registers BLS keys for `op1` and `op2` (not `noKey`).
    function _deployFixture() internal {
        vm.warp(1_000_000);
        registry = new KeyRegistry();
        stk = new MockERC20("Stake", "STK", 18);
        usd = new MockERC20("Vouch USD", "vUSD", 6);
        staking = _newStaking(MIN_SELF_STAKE);
        staking.initialize(protocol, slasher);
        _registerKey(op1);
        _registerKey(op2);
        address[6] memory accounts = [op1, op2, noKey, alice, bob, carol];
        for (uint256 i; i < accounts.length; ++i) {
            _fund(accounts[i], 1_000_000e18);
        }
    }

    /// @notice A new staking contract on the fixture's tokens and registry (not initialized).
    function _newStaking(uint256 minSelfStake) internal returns (VouchStaking) {
        return new VouchStaking(
            IERC20(address(stk)), IERC20(address(usd)), registry, UNBONDING, COMMISSION_DELAY, minSelfStake
        );
    }

    /// @notice Registers a fresh BLS key for `operator` in the registry.
    function _registerKey(address operator) internal {
        (bytes memory pubkey, bytes memory pop) = _keyWithPop(_nextSecret++, address(registry), operator);
        vm.prank(operator);
        registry.registerKey(pubkey, pop);
    }

    /// @notice Mints `amount` stake tokens to `account` and approves the staking contract for all of it.
    function _fund(address account, uint256 amount) internal {
        stk.mint(account, amount);
        vm.prank(account);
        stk.approve(address(staking), type(uint256).max);
    }

    /// @notice Registers `operator` with `selfStake` and 10 % commission.
    function _registerOperator(address operator, uint256 selfStake) internal {
        vm.prank(operator);
        staking.registerOperator("https://op.example", 1000, selfStake);
    }

    /// @notice `account` delegates `amount` to `operator`; returns the shares.
    function _delegate(address account, address operator, uint256 amount) internal returns (uint256 shares) {
        vm.prank(account);
        shares = staking.delegate(operator, amount);
    }

    /// @notice `account` queues `shares` of `operator`'s pool; returns the request id.
    function _requestUnstake(address account, address operator, uint256 shares) internal returns (uint256 id) {
        vm.prank(account);
        id = staking.requestUnstake(operator, shares);
    }

    /// @notice The protocol funds and distributes `amount` rewards to `operator`'s pool.
    function _distribute(address operator, uint256 amount) internal {
        usd.mint(address(staking), amount);
        vm.prank(protocol);
        staking.distributeRewards(operator, amount);
    }

    /// @notice The slasher slashes `amount` from `operator` with no payer/reporter part (all burned).
    function _slashAll(address operator, uint256 amount) internal returns (uint256) {
        vm.prank(slasher);
        return staking.slash(operator, amount, _split(address(0), 0, address(0), 0));
    }

    /// @notice A slash split.
    function _split(address payer, uint256 toPayer, address reporter, uint256 toReporter)
        internal
        pure
        returns (IVouchStaking.SlashSplit memory)
    {
        return IVouchStaking.SlashSplit({payer: payer, toPayer: toPayer, reporter: reporter, toReporter: toReporter});
    }
}
