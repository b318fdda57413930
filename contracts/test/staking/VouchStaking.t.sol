// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {VouchStaking} from "../../src/staking/VouchStaking.sol";
import {StakingBase} from "./StakingBase.sol";

/// @title VouchStakingTest
/// @notice Unit and fuzz tests of VouchStaking: every function's success path and every revert, slashing during
/// unbonding, the first-depositor (inflation) attack, and rewards exactness.
contract VouchStakingTest is StakingBase {
    uint256 internal constant SELF = 1000e18;

    function setUp() external {
        _deployFixture();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Constructor and initialize
    // ------------------------------------------------------------------------------------------------------------

    function test_Constructor_SetsParameters() external view {
        assertEq(staking.stakeToken(), address(stk), "stakeToken");
        assertEq(staking.paymentToken(), address(usd), "paymentToken");
        assertEq(address(staking.keyRegistry()), address(registry), "keyRegistry");
        assertEq(uint256(staking.unbondingDelay()), UNBONDING, "unbondingDelay");
        assertEq(uint256(staking.commissionDelay()), COMMISSION_DELAY, "commissionDelay");
        assertEq(staking.minSelfStake(), MIN_SELF_STAKE, "minSelfStake");
        assertEq(staking.deployer(), address(this), "deployer");
        assertEq(staking.nextWithdrawalId(), 1, "first withdrawal id");
    }

    function test_RevertWhen_ConstructorZeroStakeToken() external {
        vm.expectRevert(VouchStaking.ZeroAddress.selector);
        new VouchStaking(IERC20(address(0)), IERC20(address(usd)), registry, UNBONDING, COMMISSION_DELAY, 1);
    }

    function test_RevertWhen_ConstructorZeroPaymentToken() external {
        vm.expectRevert(VouchStaking.ZeroAddress.selector);
        new VouchStaking(IERC20(address(stk)), IERC20(address(0)), registry, UNBONDING, COMMISSION_DELAY, 1);
    }

    function test_RevertWhen_ConstructorZeroKeyRegistry() external {
        vm.expectRevert(VouchStaking.ZeroAddress.selector);
        new VouchStaking(
            IERC20(address(stk)), IERC20(address(usd)), KeyRegistry(address(0)), UNBONDING, COMMISSION_DELAY, 1
        );
    }

    function test_RevertWhen_ConstructorSameToken() external {
        vm.expectRevert(VouchStaking.SameToken.selector);
        new VouchStaking(IERC20(address(stk)), IERC20(address(stk)), registry, UNBONDING, COMMISSION_DELAY, 1);
    }

    function test_RevertWhen_ConstructorZeroMinSelfStake() external {
        vm.expectRevert(VouchStaking.ZeroMinSelfStake.selector);
        _newStaking(0);
    }

    function test_Initialize_SetsRolesAndEmits() external {
        VouchStaking fresh = _newStaking(1);
        vm.expectEmit(address(fresh));
        emit VouchStaking.Initialized(protocol, slasher);
        fresh.initialize(protocol, slasher);
        assertEq(fresh.protocol(), protocol, "protocol");
        assertEq(fresh.slasher(), slasher, "slasher");
    }

    function test_RevertWhen_InitializeNotDeployer() external {
        VouchStaking fresh = _newStaking(1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.NotDeployer.selector, alice));
        fresh.initialize(protocol, slasher);
    }

    function test_RevertWhen_InitializeTwice() external {
        vm.expectRevert(VouchStaking.AlreadyInitialized.selector);
        staking.initialize(alice, bob);
    }

    function test_RevertWhen_InitializeZeroProtocol() external {
        VouchStaking fresh = _newStaking(1);
        vm.expectRevert(VouchStaking.ZeroAddress.selector);
        fresh.initialize(address(0), slasher);
    }

    function test_RevertWhen_InitializeZeroSlasher() external {
        VouchStaking fresh = _newStaking(1);
        vm.expectRevert(VouchStaking.ZeroAddress.selector);
        fresh.initialize(protocol, address(0));
    }

    function test_RevertWhen_SlashBeforeInitialize() external {
        VouchStaking fresh = _newStaking(1);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.NotSlasher.selector, slasher));
        fresh.slash(op1, 1, _split(address(0), 0, address(0), 0));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Operators
    // ------------------------------------------------------------------------------------------------------------

    function test_RegisterOperator() external {
        uint256 before = stk.balanceOf(op1);
        vm.expectEmit(address(staking));
        emit VouchStaking.OperatorRegistered(op1, "https://op1.example", 500);
        vm.expectEmit(address(staking));
        emit VouchStaking.Delegated(op1, op1, SELF, SELF * 1000);
        vm.prank(op1);
        staking.registerOperator("https://op1.example", 500, SELF);

        assertTrue(staking.isOperator(op1), "isOperator");
        assertEq(uint256(staking.commissionBps(op1)), 500, "commission");
        assertEq(staking.activeStake(op1), SELF, "activeStake");
        assertEq(staking.slashableStake(op1), SELF, "slashableStake");
        assertEq(staking.selfStake(op1), SELF, "selfStake");
        assertEq(staking.sharesOf(op1, op1), SELF * 1000, "shares (offset 10^3)");
        assertEq(stk.balanceOf(op1), before - SELF, "tokens pulled");
        assertEq(stk.balanceOf(address(staking)), SELF, "tokens held");

        VouchStaking.Operator memory info = staking.operatorInfo(op1);
        assertTrue(info.status == VouchStaking.OperatorStatus.Active, "status");
        assertEq(bytes(info.endpoint), bytes("https://op1.example"), "endpoint");
        assertEq(uint256(info.commissionReadyAt), 0, "no proposal");
        assertEq(uint256(info.jailedUntil), 0, "not jailed");
        VouchStaking.Pool memory pool = staking.poolInfo(op1);
        assertEq(pool.assets, SELF, "pool assets");
        assertEq(pool.totalShares, SELF * 1000, "pool shares");
        assertEq(pool.queuedShares, 0, "queued");
    }

    function test_RegisterOperator_MaxEndpointAndCommission() external {
        string memory endpoint = string(new bytes(256));
        vm.prank(op1);
        staking.registerOperator(endpoint, 10_000, MIN_SELF_STAKE);
        assertEq(uint256(staking.commissionBps(op1)), 10_000, "100% commission");
        assertEq(staking.selfStake(op1), MIN_SELF_STAKE, "exactly the minimum");
    }

    function test_RevertWhen_RegisterOperatorKeyNotRegistered() external {
        vm.prank(noKey);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorKeyNotRegistered.selector, noKey));
        staking.registerOperator("https://x", 0, SELF);
    }

    function test_RevertWhen_RegisterOperatorTwice() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorAlreadyRegistered.selector, op1));
        staking.registerOperator("https://x", 0, SELF);
    }

    function test_RevertWhen_RegisterOperatorAfterDeregister() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorAlreadyRegistered.selector, op1));
        staking.registerOperator("https://x", 0, SELF);
    }

    function test_RevertWhen_RegisterOperatorEmptyEndpoint() external {
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InvalidEndpoint.selector, 0));
        staking.registerOperator("", 0, SELF);
    }

    function test_RevertWhen_RegisterOperatorEndpointTooLong() external {
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InvalidEndpoint.selector, 257));
        staking.registerOperator(string(new bytes(257)), 0, SELF);
    }

    function test_RevertWhen_RegisterOperatorCommissionTooHigh() external {
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InvalidCommission.selector, 10_001));
        staking.registerOperator("https://x", 10_001, SELF);
    }

    function test_RevertWhen_RegisterOperatorSelfStakeBelowMinimum() external {
        vm.prank(op1);
        vm.expectRevert(
            abi.encodeWithSelector(VouchStaking.SelfStakeBelowMinimum.selector, MIN_SELF_STAKE - 1, MIN_SELF_STAKE)
        );
        staking.registerOperator("https://x", 0, MIN_SELF_STAKE - 1);
    }

    function test_RevertWhen_RegisterOperatorWithoutAllowance() external {
        vm.prank(op1);
        stk.approve(address(staking), 0);
        vm.prank(op1);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(staking), 0, SELF)
        );
        staking.registerOperator("https://x", 0, SELF);
    }

    function test_SetEndpoint() external {
        _registerOperator(op1, SELF);
        vm.expectEmit(address(staking));
        emit VouchStaking.EndpointUpdated(op1, "https://new.example");
        vm.prank(op1);
        staking.setEndpoint("https://new.example");
        assertEq(bytes(staking.operatorInfo(op1).endpoint), bytes("https://new.example"), "endpoint");
    }

    function test_RevertWhen_SetEndpointNotOperator() external {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, alice));
        staking.setEndpoint("https://x");
    }

    function test_RevertWhen_SetEndpointInvalid() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InvalidEndpoint.selector, 0));
        staking.setEndpoint("");
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InvalidEndpoint.selector, 300));
        staking.setEndpoint(string(new bytes(300)));
    }

    function test_RevertWhen_SetEndpointAfterDeregister() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, op1));
        staking.setEndpoint("https://x");
    }

    function test_Deregister() external {
        _registerOperator(op1, SELF);
        vm.expectEmit(address(staking));
        emit VouchStaking.OperatorDeregistered(op1);
        vm.prank(op1);
        staking.deregister();
        assertFalse(staking.isOperator(op1), "not an operator");
        assertTrue(staking.operatorInfo(op1).status == VouchStaking.OperatorStatus.Exited, "exited");
        // The pool stays, slashable, until the stake is withdrawn.
        assertEq(staking.slashableStake(op1), SELF, "stake stays");
    }

    function test_RevertWhen_DeregisterNotOperator() external {
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, op1));
        staking.deregister();
    }

    function test_RevertWhen_DeregisterTwice() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, op1));
        staking.deregister();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Commission
    // ------------------------------------------------------------------------------------------------------------

    function test_ProposeAndApplyCommission() external {
        _registerOperator(op1, SELF);
        uint64 readyAt = uint64(block.timestamp) + COMMISSION_DELAY;
        vm.expectEmit(address(staking));
        emit VouchStaking.CommissionProposed(op1, 2500, readyAt);
        vm.prank(op1);
        staking.proposeCommission(2500);
        VouchStaking.Operator memory info = staking.operatorInfo(op1);
        assertEq(uint256(info.pendingCommissionBps), 2500, "pending");
        assertEq(uint256(info.commissionReadyAt), readyAt, "readyAt");
        assertEq(uint256(staking.commissionBps(op1)), 1000, "unchanged until applied");

        vm.warp(readyAt);
        vm.expectEmit(address(staking));
        emit VouchStaking.CommissionApplied(op1, 2500);
        vm.prank(op1);
        staking.applyCommission();
        assertEq(uint256(staking.commissionBps(op1)), 2500, "applied");
        info = staking.operatorInfo(op1);
        assertEq(uint256(info.commissionReadyAt), 0, "proposal cleared");
        assertEq(uint256(info.pendingCommissionBps), 0, "pending cleared");
    }

    function test_ProposeCommission_ReplacesAndRestartsDelay() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.proposeCommission(5000);
        vm.warp(block.timestamp + COMMISSION_DELAY - 1);
        vm.prank(op1);
        staking.proposeCommission(200);
        uint64 readyAt = uint64(block.timestamp) + COMMISSION_DELAY;
        vm.warp(block.timestamp + 1);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.CommissionNotReady.selector, readyAt));
        staking.applyCommission();
        vm.warp(readyAt);
        vm.prank(op1);
        staking.applyCommission();
        assertEq(uint256(staking.commissionBps(op1)), 200, "latest proposal applied");
    }

    function test_RevertWhen_ProposeCommissionTooHigh() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InvalidCommission.selector, 10_001));
        staking.proposeCommission(10_001);
    }

    function test_RevertWhen_ProposeCommissionNotOperator() external {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, alice));
        staking.proposeCommission(1);
    }

    function test_RevertWhen_ApplyCommissionNotOperator() external {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, alice));
        staking.applyCommission();
    }

    function test_RevertWhen_ApplyCommissionNoProposal() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        vm.expectRevert(VouchStaking.NoPendingCommission.selector);
        staking.applyCommission();
    }

    function test_RevertWhen_ApplyCommissionTooEarly() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.proposeCommission(0);
        uint64 readyAt = uint64(block.timestamp) + COMMISSION_DELAY;
        vm.warp(readyAt - 1);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.CommissionNotReady.selector, readyAt));
        staking.applyCommission();
    }

    function testFuzz_CommissionTimelock(uint16 bps, uint64 wait) external {
        bps = uint16(bound(bps, 0, 10_000));
        wait = uint64(bound(wait, 0, 2 * COMMISSION_DELAY));
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.proposeCommission(bps);
        vm.warp(block.timestamp + wait);
        vm.prank(op1);
        if (wait < COMMISSION_DELAY) {
            vm.expectRevert();
            staking.applyCommission();
            assertEq(uint256(staking.commissionBps(op1)), 1000, "unchanged");
        } else {
            staking.applyCommission();
            assertEq(uint256(staking.commissionBps(op1)), bps, "applied");
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Delegation
    // ------------------------------------------------------------------------------------------------------------

    function test_Delegate() external {
        _registerOperator(op1, SELF);
        vm.expectEmit(address(staking));
        emit VouchStaking.Delegated(op1, alice, 250e18, 250e21);
        uint256 shares = _delegate(alice, op1, 250e18);
        assertEq(shares, 250e21, "shares");
        assertEq(staking.sharesOf(op1, alice), shares, "sharesOf");
        assertEq(staking.delegatedStake(op1, alice), 250e18, "delegatedStake");
        assertEq(staking.activeStake(op1), SELF + 250e18, "activeStake");
        assertEq(staking.slashableStake(op1), SELF + 250e18, "slashableStake");
        assertEq(staking.selfStake(op1), SELF, "selfStake unchanged");
        assertEq(staking.delegation(op1, alice).shares, shares, "delegation record");
        assertEq(staking.convertToShares(op1, 1e18), 1e21, "convertToShares");
        assertEq(staking.convertToAssets(op1, 1e21), 1e18, "convertToAssets");
    }

    function test_Delegate_JailedOperatorAccepts() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        staking.jail(op1, uint64(block.timestamp + 1 days));
        _delegate(alice, op1, 1e18);
        assertEq(staking.delegatedStake(op1, alice), 1e18, "delegated");
    }

    function test_Delegate_OperatorTopsUp() external {
        _registerOperator(op1, SELF);
        _delegate(op1, op1, 5e18);
        assertEq(staking.selfStake(op1), SELF + 5e18, "self-stake topped up");
    }

    function test_RevertWhen_DelegateToNonOperator() external {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, bob));
        staking.delegate(bob, 1e18);
    }

    function test_RevertWhen_DelegateToDeregistered() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.OperatorNotRegistered.selector, op1));
        staking.delegate(op1, 1e18);
    }

    function test_RevertWhen_DelegateToDepletedPool() external {
        _registerOperator(op1, MIN_SELF_STAKE);
        uint256 shares = _delegate(alice, op1, 1e18);
        assertTrue(staking.acceptsDelegations(op1), "open before");
        _slashAll(op1, type(uint256).max); // the whole pool
        assertFalse(staking.acceptsDelegations(op1), "closed after");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.PoolDepleted.selector, op1));
        staking.delegate(op1, 1e18);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.PoolDepleted.selector, op1));
        staking.delegate(op1, 1e18);
        // Holders can still leave (with nothing).
        uint256 id = _requestUnstake(alice, op1, shares);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        assertEq(staking.withdraw(id), 0, "nothing left");
    }

    function test_Delegate_HeavilySlashedPoolStillAccepts() external {
        _registerOperator(op1, MIN_SELF_STAKE);
        _slashAll(op1, MIN_SELF_STAKE - MIN_SELF_STAKE / 10_000); // 99.99 %: a share lost 10^4×, below 10^6×
        assertTrue(staking.acceptsDelegations(op1), "still open");
        uint256 shares = _delegate(alice, op1, 1e18);
        assertEq(staking.convertToAssets(op1, shares), 1e18 - 1, "fair price (rounded down)");
    }

    function test_AcceptsDelegations() external {
        assertFalse(staking.acceptsDelegations(op1), "not registered");
        _registerOperator(op1, SELF);
        assertTrue(staking.acceptsDelegations(op1), "active");
        vm.prank(op1);
        staking.deregister();
        assertFalse(staking.acceptsDelegations(op1), "deregistered");
    }

    function test_RevertWhen_DelegateZero() external {
        _registerOperator(op1, SELF);
        vm.prank(alice);
        vm.expectRevert(VouchStaking.ZeroAmount.selector);
        staking.delegate(op1, 0);
    }

    function test_RevertWhen_DelegateInsufficientBalance() external {
        _registerOperator(op1, SELF);
        address poor = address(0xF00);
        vm.prank(poor);
        stk.approve(address(staking), type(uint256).max);
        vm.prank(poor);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, poor, 0, 1e18));
        staking.delegate(op1, 1e18);
    }

    function testFuzz_DelegateThenWithdrawRoundTrip(uint256 amount, uint256 wait) external {
        amount = bound(amount, 1, 1e30);
        wait = bound(wait, UNBONDING, 10 * UNBONDING);
        _fund(alice, amount);
        _registerOperator(op1, SELF);
        uint256 before = stk.balanceOf(alice);
        uint256 shares = _delegate(alice, op1, amount);
        uint256 id = _requestUnstake(alice, op1, shares);
        vm.warp(block.timestamp + wait);
        vm.prank(alice);
        uint256 paid = staking.withdraw(id);
        // Without slashes the price is exact: no loss at all.
        assertEq(paid, amount, "round trip");
        assertEq(stk.balanceOf(alice), before, "balance restored");
        assertEq(staking.slashableStake(op1), SELF, "pool back to self-stake");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Unbonding
    // ------------------------------------------------------------------------------------------------------------

    function test_RequestUnstake() external {
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, 400e18);
        uint64 readyAt = uint64(block.timestamp) + UNBONDING;
        vm.expectEmit(address(staking));
        emit VouchStaking.UnstakeRequested(1, alice, op1, shares / 4, 100e18, readyAt);
        uint256 id = _requestUnstake(alice, op1, shares / 4);
        assertEq(id, 1, "first id");
        assertEq(staking.nextWithdrawalId(), 2, "next id");

        VouchStaking.Withdrawal memory w = staking.withdrawalRequest(id);
        assertEq(w.owner, alice, "owner");
        assertEq(w.operator, op1, "operator");
        assertEq(w.shares, shares / 4, "shares");
        assertEq(uint256(w.readyAt), readyAt, "readyAt");
        assertEq(staking.previewWithdraw(id), 100e18, "preview");
        uint256[] memory ids = staking.withdrawalIds(alice);
        assertEq(ids.length, 1, "ids");
        assertEq(ids[0], id, "id listed");

        assertEq(staking.sharesOf(op1, alice), shares - shares / 4, "active shares");
        assertEq(staking.activeStake(op1), SELF + 300e18, "queued stake is not active");
        assertEq(staking.slashableStake(op1), SELF + 400e18, "queued stake stays slashable");
        assertEq(staking.poolInfo(op1).queuedShares, shares / 4, "queuedShares");
    }

    function test_RevertWhen_RequestUnstakeZero() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        vm.expectRevert(VouchStaking.ZeroShares.selector);
        staking.requestUnstake(op1, 0);
    }

    function test_RevertWhen_RequestUnstakeMoreThanActive() external {
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, 1e18);
        _requestUnstake(alice, op1, shares / 2);
        uint256 left = shares - shares / 2;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.InsufficientShares.selector, left, left + 1));
        staking.requestUnstake(op1, left + 1);
    }

    function test_RequestUnstake_OperatorDownToMinimum() external {
        _registerOperator(op1, SELF);
        uint256 excess = staking.convertToShares(op1, SELF - MIN_SELF_STAKE);
        _requestUnstake(op1, op1, excess);
        assertEq(staking.selfStake(op1), MIN_SELF_STAKE, "at the minimum");
    }

    function test_RevertWhen_RequestUnstakeOperatorBelowMinimum() external {
        _registerOperator(op1, SELF);
        uint256 excess = staking.convertToShares(op1, SELF - MIN_SELF_STAKE);
        vm.prank(op1);
        vm.expectRevert(
            abi.encodeWithSelector(
                VouchStaking.SelfStakeBelowMinimum.selector, MIN_SELF_STAKE - 1e-3 ether, MIN_SELF_STAKE
            )
        );
        staking.requestUnstake(op1, excess + 1e18);
    }

    function test_RevertWhen_RequestUnstakeOperatorAfterSlashBelowMinimum() external {
        _registerOperator(op1, MIN_SELF_STAKE);
        _slashAll(op1, 1e18);
        // Already below the minimum: even one share cannot leave while registered...
        vm.prank(op1);
        vm.expectRevert();
        staking.requestUnstake(op1, 1);
        // ...but topping up restores the headroom.
        _delegate(op1, op1, 2e18);
        _requestUnstake(op1, op1, staking.convertToShares(op1, 0.5e18));
        assertGe(staking.selfStake(op1), MIN_SELF_STAKE, "still at least the minimum");
    }

    function test_RequestUnstake_OperatorExitsFullyAfterDeregister() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        uint256 id = _requestUnstake(op1, op1, staking.sharesOf(op1, op1));
        assertEq(staking.activeStake(op1), 0, "no active stake");
        assertEq(staking.slashableStake(op1), SELF, "still slashable while unbonding");
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(op1);
        assertEq(staking.withdraw(id), SELF, "everything back");
        assertEq(staking.slashableStake(op1), 0, "pool empty");
    }

    function testFuzz_RequestUnstake_OperatorSelfStakeFloor(uint256 selfStake_, uint256 shares) external {
        selfStake_ = bound(selfStake_, MIN_SELF_STAKE, 1e27);
        _fund(op1, selfStake_);
        _registerOperator(op1, selfStake_);
        uint256 all = staking.sharesOf(op1, op1);
        shares = bound(shares, 1, all);
        uint256 remaining = staking.convertToAssets(op1, all - shares);
        vm.prank(op1);
        if (remaining < MIN_SELF_STAKE) {
            vm.expectRevert(
                abi.encodeWithSelector(VouchStaking.SelfStakeBelowMinimum.selector, remaining, MIN_SELF_STAKE)
            );
            staking.requestUnstake(op1, shares);
        } else {
            staking.requestUnstake(op1, shares);
            assertGe(staking.selfStake(op1), MIN_SELF_STAKE, "floor kept");
        }
    }

    function test_Withdraw() external {
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, 10e18);
        uint256 id = _requestUnstake(alice, op1, shares);
        vm.warp(block.timestamp + UNBONDING);
        uint256 before = stk.balanceOf(alice);
        vm.expectEmit(address(staking));
        emit VouchStaking.Withdrawn(id, alice, op1, shares, 10e18);
        vm.prank(alice);
        uint256 paid = staking.withdraw(id);
        assertEq(paid, 10e18, "paid");
        assertEq(stk.balanceOf(alice), before + 10e18, "received");
        assertEq(staking.withdrawalRequest(id).owner, address(0), "request removed");
        assertEq(staking.previewWithdraw(id), 0, "preview of removed request");
        VouchStaking.Pool memory pool = staking.poolInfo(op1);
        assertEq(pool.assets, SELF, "assets");
        assertEq(pool.totalShares, SELF * 1000, "shares burned");
        assertEq(pool.queuedShares, 0, "queue empty");
    }

    function test_RevertWhen_WithdrawUnknown() external {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.UnknownWithdrawal.selector, 42));
        staking.withdraw(42);
    }

    function test_RevertWhen_WithdrawTwice() external {
        _registerOperator(op1, SELF);
        uint256 id = _requestUnstake(alice, op1, _delegate(alice, op1, 1e18));
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        staking.withdraw(id);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.UnknownWithdrawal.selector, id));
        staking.withdraw(id);
    }

    function test_RevertWhen_WithdrawNotOwner() external {
        _registerOperator(op1, SELF);
        uint256 id = _requestUnstake(alice, op1, _delegate(alice, op1, 1e18));
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.NotWithdrawalOwner.selector, bob, alice));
        staking.withdraw(id);
    }

    function test_RevertWhen_WithdrawTooEarly() external {
        _registerOperator(op1, SELF);
        uint256 id = _requestUnstake(alice, op1, _delegate(alice, op1, 1e18));
        uint64 readyAt = uint64(block.timestamp) + UNBONDING;
        vm.warp(readyAt - 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.WithdrawalNotReady.selector, readyAt));
        staking.withdraw(id);
    }

    function testFuzz_WithdrawTiming(uint256 wait) external {
        wait = bound(wait, 0, 3 * UNBONDING);
        _registerOperator(op1, SELF);
        uint256 id = _requestUnstake(alice, op1, _delegate(alice, op1, 1e18));
        vm.warp(block.timestamp + wait);
        vm.prank(alice);
        if (wait < UNBONDING) {
            vm.expectRevert();
            staking.withdraw(id);
        } else {
            assertEq(staking.withdraw(id), 1e18, "paid after the delay");
        }
    }

    function test_MultipleRequestsListedPerOwner() external {
        _registerOperator(op1, SELF);
        _registerOperator(op2, SELF);
        uint256 s1 = _delegate(alice, op1, 3e18);
        uint256 s2 = _delegate(alice, op2, 3e18);
        _requestUnstake(alice, op1, s1 / 3);
        _requestUnstake(bob, op1, _delegate(bob, op1, 1e18));
        _requestUnstake(alice, op2, s2);
        uint256[] memory ids = staking.withdrawalIds(alice);
        assertEq(ids.length, 2, "alice's requests");
        assertEq(ids[0], 1, "first");
        assertEq(ids[1], 3, "third");
        assertEq(staking.withdrawalRequest(3).operator, op2, "pool of the third");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Slashing
    // ------------------------------------------------------------------------------------------------------------

    function test_Slash_SplitsAndBurns() external {
        _registerOperator(op1, SELF);
        _delegate(alice, op1, 1000e18);
        // Payer and reporter ask for 60 of a 200 slash; the operator's own stake (half the pool) loses 100, so
        // together they get at most 50, scaled proportionally; the rest is burned.
        uint256 toPayer = uint256(50e18) * 50e18 / 60e18;
        uint256 toReporter = uint256(10e18) * 50e18 / 60e18;
        uint256 burned = 200e18 - toPayer - toReporter;
        vm.expectEmit(address(staking));
        emit VouchStaking.Slashed(op1, 200e18, carol, toPayer, bob, toReporter, burned);
        vm.prank(slasher);
        uint256 slashed = staking.slash(op1, 200e18, _split(carol, 50e18, bob, 10e18));
        assertEq(slashed, 200e18, "slashed");
        assertEq(staking.slashableStake(op1), 1800e18, "pool assets");
        assertEq(staking.slashedClaimable(carol), toPayer, "payer credit");
        assertEq(staking.slashedClaimable(bob), toReporter, "reporter credit");
        assertEq(stk.balanceOf(DEAD), burned, "burned");
        // Every share lost 10 %.
        assertEq(staking.delegatedStake(op1, alice), 900e18, "alice lost 10%");
        assertEq(staking.selfStake(op1), 900e18, "operator lost 10%");
        assertEq(stk.balanceOf(address(staking)), 1800e18 + toPayer + toReporter, "held: pool + claimable");
    }

    function test_Slash_SelfReportNeverPays() external {
        // The operator holds 10 % of its pool, pays for a call, equivocates and reports itself (payer and reporter
        // are its own addresses) under a blueprint asking 100 % slash and 100 % to payer + reporter.
        _registerOperator(op1, SELF);
        _delegate(alice, op1, 9 * SELF);
        uint256 pool = staking.slashableStake(op1);
        vm.prank(slasher);
        staking.slash(op1, pool, _split(op1, pool / 2, op1, pool / 2));
        // It lost its whole self-stake and got back at most half of it.
        assertLe(staking.slashedClaimable(op1), SELF / 2, "credit capped at half of the own loss");
        assertEq(staking.selfStake(op1), 0, "self-stake gone");
        assertEq(staking.delegatedStake(op1, alice), 0, "delegators' stake burned, not taken");
        assertEq(stk.balanceOf(DEAD), pool - staking.slashedClaimable(op1), "the rest burned");
    }

    function test_Slash_CappedScalesSplit() external {
        _registerOperator(op1, SELF);
        vm.expectEmit(address(staking));
        emit VouchStaking.Slashed(op1, SELF, carol, 250e18, bob, 100e18, 650e18);
        vm.prank(slasher);
        uint256 slashed = staking.slash(op1, 4 * SELF, _split(carol, 1000e18, bob, 400e18));
        assertEq(slashed, SELF, "capped at the pool");
        assertEq(staking.slashableStake(op1), 0, "pool empty");
        assertEq(staking.activeStake(op1), 0, "no active stake");
        assertEq(staking.slashedClaimable(carol), 250e18, "payer scaled by 1/4");
        assertEq(staking.slashedClaimable(bob), 100e18, "reporter scaled by 1/4");
        assertEq(stk.balanceOf(DEAD), 650e18, "rest burned");
    }

    function test_Slash_SamePayerAndReporter() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        staking.slash(op1, 100e18, _split(carol, 30e18, carol, 20e18));
        assertEq(staking.slashedClaimable(carol), 50e18, "both parts");
    }

    function test_Slash_UnknownOperatorIsZero() external {
        vm.prank(slasher);
        uint256 slashed = staking.slash(alice, 1e18, _split(carol, 1e18, address(0), 0));
        assertEq(slashed, 0, "nothing to slash");
        assertEq(staking.slashedClaimable(carol), 0, "nothing credited");
    }

    function test_RevertWhen_SlashNotSlasher() external {
        _registerOperator(op1, SELF);
        vm.prank(protocol);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.NotSlasher.selector, protocol));
        staking.slash(op1, 1, _split(address(0), 0, address(0), 0));
    }

    function test_RevertWhen_SlashSplitExceedsAmount() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.SplitExceedsAmount.selector, 11, 10));
        staking.slash(op1, 10, _split(carol, 6, bob, 5));
    }

    function test_RevertWhen_SlashPayerZero() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        vm.expectRevert(VouchStaking.ZeroRecipient.selector);
        staking.slash(op1, 10, _split(address(0), 1, bob, 1));
    }

    function test_RevertWhen_SlashReporterZero() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        vm.expectRevert(VouchStaking.ZeroRecipient.selector);
        staking.slash(op1, 10, _split(carol, 1, address(0), 1));
    }

    function test_SlashDuringUnbonding() external {
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, 1000e18);
        uint256 id = _requestUnstake(alice, op1, shares);
        assertEq(staking.activeStake(op1), SELF, "alice's stake no longer active");
        vm.warp(block.timestamp + UNBONDING / 2);
        _slashAll(op1, 1000e18); // half of the pool
        assertEq(staking.previewWithdraw(id), 500e18, "the pending withdrawal lost half");
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        uint256 paid = staking.withdraw(id);
        assertEq(paid, 500e18, "the slash is felt at withdrawal");
        assertEq(staking.selfStake(op1), 500e18, "the operator lost half too");
    }

    function testFuzz_SlashDuringUnbonding(uint256 stake, uint256 slashAmount, uint256 queuedPart) external {
        stake = bound(stake, 1e6, 1e27);
        slashAmount = bound(slashAmount, 0, 2 * (stake + SELF));
        _fund(alice, stake);
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, stake);
        queuedPart = bound(queuedPart, 1, shares);
        uint256 id = _requestUnstake(alice, op1, queuedPart);
        uint256 poolBefore = staking.slashableStake(op1);
        uint256 valueBefore = staking.previewWithdraw(id);

        uint256 slashed = _slashAll(op1, slashAmount);
        assertEq(slashed, slashAmount < poolBefore ? slashAmount : poolBefore, "capped");
        uint256 poolAfter = staking.slashableStake(op1);
        assertEq(poolAfter, poolBefore - slashed, "pool reduced");

        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        uint256 paid = staking.withdraw(id);
        // The queued shares lose the pool's fraction (within rounding): paid ≈ valueBefore × after / before.
        uint256 expected = valueBefore * poolAfter / poolBefore;
        assertLe(paid, expected + 1, "no more than its fraction");
        assertGe(paid + 2, expected, "no less than its fraction (rounding)");
    }

    function test_ClaimSlashed() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        staking.slash(op1, 100e18, _split(carol, 40e18, bob, 0));
        uint256 before = stk.balanceOf(carol);
        vm.expectEmit(address(staking));
        emit VouchStaking.SlashedClaimed(carol, 40e18);
        vm.prank(carol);
        assertEq(staking.claimSlashed(), 40e18, "claimed");
        assertEq(stk.balanceOf(carol), before + 40e18, "received");
        assertEq(staking.slashedClaimable(carol), 0, "cleared");
    }

    function test_RevertWhen_ClaimSlashedNothing() external {
        vm.prank(carol);
        vm.expectRevert(VouchStaking.NothingToClaim.selector);
        staking.claimSlashed();
    }

    function testFuzz_SlashSplitAccounting(uint256 amount, uint256 toPayer, uint256 toReporter) external {
        _registerOperator(op1, SELF);
        _delegate(alice, op1, 500e18);
        amount = bound(amount, 0, 4 * (SELF + 500e18));
        toPayer = bound(toPayer, 0, amount);
        toReporter = bound(toReporter, 0, amount - toPayer);
        uint256 pool = staking.slashableStake(op1);
        vm.prank(slasher);
        uint256 slashed = staking.slash(op1, amount, _split(carol, toPayer, bob, toReporter));
        uint256 credited = staking.slashedClaimable(carol) + staking.slashedClaimable(bob);
        assertEq(slashed + staking.slashableStake(op1), pool, "pool conserved");
        assertEq(slashed, credited + stk.balanceOf(DEAD), "slashed = credited + burned");
        assertLe(staking.slashedClaimable(carol), toPayer, "payer never above its part");
        assertLe(staking.slashedClaimable(bob), toReporter, "reporter never above its part");
        assertEq(stk.balanceOf(address(staking)), staking.slashableStake(op1) + credited, "balance = pool + claimable");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Jail
    // ------------------------------------------------------------------------------------------------------------

    function test_Jail() external {
        _registerOperator(op1, SELF);
        uint64 until = uint64(block.timestamp + 2 days);
        vm.expectEmit(address(staking));
        emit VouchStaking.Jailed(op1, until);
        vm.prank(slasher);
        staking.jail(op1, until);
        assertTrue(staking.isJailed(op1), "jailed");
        vm.warp(until - 1);
        assertTrue(staking.isJailed(op1), "still jailed");
        vm.warp(until);
        assertFalse(staking.isJailed(op1), "released");
    }

    function test_Jail_NeverShortens() external {
        _registerOperator(op1, SELF);
        uint64 long = uint64(block.timestamp + 30 days);
        vm.prank(slasher);
        staking.jail(op1, long);
        vm.expectEmit(address(staking));
        emit VouchStaking.Jailed(op1, long);
        vm.prank(slasher);
        staking.jail(op1, uint64(block.timestamp + 1 days));
        assertEq(uint256(staking.operatorInfo(op1).jailedUntil), long, "kept the later release");
    }

    function test_Jail_DeregisteredOperator() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        vm.prank(slasher);
        staking.jail(op1, uint64(block.timestamp + 1));
        assertTrue(staking.isJailed(op1), "jailed");
    }

    function test_RevertWhen_JailNotSlasher() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.NotSlasher.selector, op1));
        staking.jail(op1, type(uint64).max);
    }

    function test_RevertWhen_JailUnknownOperator() external {
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.UnknownOperator.selector, alice));
        staking.jail(alice, type(uint64).max);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Rewards
    // ------------------------------------------------------------------------------------------------------------

    function test_DistributeRewards_ProRata() external {
        _registerOperator(op1, SELF); // 1000
        _delegate(alice, op1, 3000e18); // 3000
        usd.mint(address(staking), 4000e6);
        uint256 acc = 4000e6 * PRECISION / (4000e21);
        vm.expectEmit(address(staking));
        emit VouchStaking.RewardsDistributed(op1, 4000e6, 4000e21, acc, 0);
        vm.prank(protocol);
        staking.distributeRewards(op1, 4000e6);
        assertEq(staking.pendingRewards(op1, op1), 1000e6, "operator's self-stake share");
        assertEq(staking.pendingRewards(op1, alice), 3000e6, "alice's share");
        assertEq(staking.rewardReserve(), 4000e6, "reserve");
        assertEq(staking.rewardDust(op1), 0, "no dust");
    }

    function test_DistributeRewards_QueuedSharesEarnNothing() external {
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, SELF);
        _requestUnstake(alice, op1, shares);
        _distribute(op1, 500e6);
        assertEq(staking.pendingRewards(op1, op1), 500e6, "all to the active shares");
        assertEq(staking.pendingRewards(op1, alice), 0, "queued shares earn nothing");
    }

    function test_DistributeRewards_EarnedBeforeUnstakeStaysClaimable() external {
        _registerOperator(op1, SELF);
        uint256 shares = _delegate(alice, op1, SELF);
        _distribute(op1, 100e6);
        _requestUnstake(alice, op1, shares);
        _distribute(op1, 100e6);
        assertEq(staking.pendingRewards(op1, alice), 50e6, "earned while active");
        vm.prank(alice);
        assertEq(staking.claimRewards(op1), 50e6, "claimed");
        assertEq(staking.pendingRewards(op1, op1), 150e6, "operator");
    }

    function test_DistributeRewards_NoActiveSharesCreditsOperator() external {
        _registerOperator(op1, SELF);
        uint256 aliceShares = _delegate(alice, op1, SELF);
        _delegate(bob, op1, SELF);
        _distribute(op1, 1); // a third of a unit each, in scaled units; the remainder is dust
        uint256 dust = staking.poolInfo(op1).rewardDustScaled;
        assertGt(dust, 0, "dust left");
        vm.prank(op1);
        staking.deregister();
        _requestUnstake(op1, op1, staking.sharesOf(op1, op1));
        _requestUnstake(alice, op1, aliceShares);
        _requestUnstake(bob, op1, staking.sharesOf(op1, bob));
        assertEq(staking.activeStake(op1), 0, "no active shares");

        uint256 before = staking.pendingRewardsScaled(op1, op1);
        usd.mint(address(staking), 77e6);
        uint256 acc = staking.poolInfo(op1).accRewardPerShare;
        vm.expectEmit(address(staking));
        emit VouchStaking.RewardsDistributed(op1, 77e6, 0, acc, 0);
        vm.prank(protocol);
        staking.distributeRewards(op1, 77e6);
        assertEq(
            staking.pendingRewardsScaled(op1, op1), before + 77e6 * PRECISION + dust, "amount and dust to the operator"
        );
        assertEq(staking.poolInfo(op1).rewardDustScaled, 0, "dust consumed");
        assertEq(staking.pendingRewards(op1, alice), 0, "unbonding shares earn nothing");
        vm.prank(op1);
        assertEq(staking.claimRewards(op1), 77e6, "claimable by the operator");
        _assertRewardsConserved(op1);
    }

    function test_DistributeRewards_DustRollsIntoNextDistribution() external {
        _registerOperator(op1, SELF);
        _delegate(alice, op1, SELF);
        _delegate(bob, op1, SELF); // three equal holders
        _distribute(op1, 1); // one unit over 3e24 shares: all three get a third, in scaled units
        assertEq(staking.pendingRewards(op1, alice), 0, "a third of a unit rounds down");
        _distribute(op1, 2);
        assertEq(staking.pendingRewards(op1, alice), 1, "three units: one each");
        assertEq(staking.pendingRewards(op1, bob), 1, "bob");
        assertEq(staking.pendingRewards(op1, op1), 1, "operator");
        _assertRewardsConserved(op1);
    }

    function test_DistributeRewards_ZeroIsNoop() external {
        _registerOperator(op1, SELF);
        vm.recordLogs();
        vm.prank(protocol);
        staking.distributeRewards(op1, 0);
        assertEq(vm.getRecordedLogs().length, 0, "no event");
        assertEq(staking.rewardReserve(), 0, "no change");
    }

    function test_DistributeRewards_DeregisteredOperator() external {
        _registerOperator(op1, SELF);
        vm.prank(op1);
        staking.deregister();
        _distribute(op1, 9e6);
        assertEq(staking.pendingRewards(op1, op1), 9e6, "delegators of a leaving operator still get paid");
    }

    function test_RevertWhen_DistributeRewardsNotProtocol() external {
        _registerOperator(op1, SELF);
        vm.prank(slasher);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.NotProtocol.selector, slasher));
        staking.distributeRewards(op1, 1);
    }

    function test_RevertWhen_DistributeRewardsUnknownOperator() external {
        vm.prank(protocol);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.UnknownOperator.selector, alice));
        staking.distributeRewards(alice, 1);
    }

    function test_RevertWhen_DistributeRewardsNotFunded() external {
        _registerOperator(op1, SELF);
        _distribute(op1, 10e6);
        usd.mint(address(staking), 5e6);
        vm.prank(protocol);
        vm.expectRevert(abi.encodeWithSelector(VouchStaking.RewardsNotFunded.selector, 15e6, 16e6));
        staking.distributeRewards(op1, 6e6);
    }

    function test_ClaimRewards() external {
        _registerOperator(op1, SELF);
        _delegate(alice, op1, SELF);
        _distribute(op1, 10e6 + 1); // odd unit: half a unit each stays owed
        uint256 before = usd.balanceOf(alice);
        vm.expectEmit(address(staking));
        emit VouchStaking.RewardsClaimed(op1, alice, 5e6);
        vm.prank(alice);
        uint256 paid = staking.claimRewards(op1);
        assertEq(paid, 5e6, "whole units");
        assertEq(usd.balanceOf(alice), before + 5e6, "received");
        assertEq(staking.pendingRewards(op1, alice), 0, "nothing left in whole units");
        assertEq(staking.pendingRewardsScaled(op1, alice), PRECISION / 2, "half a unit stays owed");
        assertEq(staking.rewardReserve(), 5e6 + 1, "reserve");
        _distribute(op1, 1); // another half unit each: now a whole one
        vm.prank(alice);
        assertEq(staking.claimRewards(op1), 1, "the halves add up");
        _assertRewardsConserved(op1);
    }

    function test_RevertWhen_ClaimRewardsNothing() external {
        _registerOperator(op1, SELF);
        vm.prank(alice);
        vm.expectRevert(VouchStaking.NothingToClaim.selector);
        staking.claimRewards(op1);
    }

    function test_RewardsExactness() external {
        // Awkward holdings (1000, 333, 7, and 1 wei-scaled shares) and prime amounts.
        _registerOperator(op1, SELF);
        _delegate(alice, op1, 333e18);
        _delegate(bob, op1, 7e18);
        _delegate(carol, op1, 1);
        uint256[4] memory amounts = [uint256(1_000_003), 999_983, 17, 123_456_789_011];
        uint256 total;
        for (uint256 i; i < amounts.length; ++i) {
            _distribute(op1, amounts[i]);
            total += amounts[i];
            _assertRewardsConserved(op1);
        }
        uint256 active = staking.poolInfo(op1).totalShares;
        // Each holder gets its exact pro-rata part, rounded down, and loses less than one unit.
        address[4] memory holders = [op1, alice, bob, carol];
        uint256 paid;
        for (uint256 i; i < holders.length; ++i) {
            uint256 exact = total * staking.sharesOf(op1, holders[i]) / active;
            uint256 pending = staking.pendingRewards(op1, holders[i]);
            assertLe(pending, exact, "never above the exact part");
            assertGe(pending + 1, exact, "less than a unit below it");
            if (pending != 0) {
                vm.prank(holders[i]);
                staking.claimRewards(op1);
            }
            paid += pending;
        }
        assertLe(paid, total, "never pays more than received");
        assertEq(usd.balanceOf(address(staking)), total - paid, "the rest stays");
        _assertRewardsConserved(op1);
    }

    function testFuzz_RewardsNeverExceedReceived(uint256[3] memory stakes, uint256[4] memory amounts, uint8 unstakeMask)
        external
    {
        _registerOperator(op1, SELF);
        address[3] memory holders = [alice, bob, carol];
        for (uint256 i; i < 3; ++i) {
            stakes[i] = bound(stakes[i], 1, 1e27);
            _fund(holders[i], stakes[i]);
            _delegate(holders[i], op1, stakes[i]);
        }
        uint256 total;
        for (uint256 j; j < 4; ++j) {
            amounts[j] = bound(amounts[j], 0, 1e15);
            _distribute(op1, amounts[j]);
            total += amounts[j];
            // Some holders leave between distributions (their rewards stay claimable).
            uint256 i = j % 3;
            uint256 shares = staking.sharesOf(op1, holders[i]);
            if ((unstakeMask >> j) & 1 == 1 && shares != 0) _requestUnstake(holders[i], op1, shares);
            _assertRewardsConserved(op1);
        }
        uint256 paid;
        address[4] memory all = [op1, alice, bob, carol];
        for (uint256 i; i < 4; ++i) {
            if (staking.pendingRewards(op1, all[i]) != 0) {
                vm.prank(all[i]);
                paid += staking.claimRewards(op1);
            }
        }
        assertLe(paid, total, "paid <= received");
        assertEq(usd.balanceOf(address(staking)), total - paid, "balance = received - paid");
        assertLt(total - paid, 5, "at most a unit per holder and the dust are left");
        _assertRewardsConserved(op1);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inflation (first depositor / donation) attack
    // ------------------------------------------------------------------------------------------------------------

    function test_InflationAttackDefeated() external {
        // A pool seeded with a single wei, then a huge donation by plain transfer before the victim delegates.
        VouchStaking fresh = _newStaking(1);
        fresh.initialize(protocol, slasher);
        vm.prank(op1);
        stk.approve(address(fresh), type(uint256).max);
        vm.prank(alice);
        stk.approve(address(fresh), type(uint256).max);
        vm.prank(op1);
        fresh.registerOperator("https://attacker", 0, 1);
        vm.prank(op1);
        assertTrue(stk.transfer(address(fresh), 100_000e18), "the donation"); // plain transfer, not delegate

        assertEq(fresh.slashableStake(op1), 1, "the donation is not pool assets");
        vm.prank(alice);
        uint256 shares = fresh.delegate(op1, 10_000e18);
        assertEq(shares, 10_000e18 * 1000, "victim gets the full share count");
        uint256 id;
        vm.prank(alice);
        id = fresh.requestUnstake(op1, shares);
        vm.prank(op1);
        fresh.deregister();
        uint256 opShares = fresh.sharesOf(op1, op1);
        vm.prank(op1);
        uint256 opId = fresh.requestUnstake(op1, opShares);
        vm.warp(block.timestamp + UNBONDING);
        vm.prank(alice);
        assertEq(fresh.withdraw(id), 10_000e18, "victim loses nothing");
        vm.prank(op1);
        assertEq(fresh.withdraw(opId), 1, "attacker gets only its wei back");
    }

    function testFuzz_InflationAttackDefeated(uint256 seed, uint256 donation, uint256 deposit) external {
        seed = bound(seed, 1, 1e18);
        donation = bound(donation, 1, 1e27);
        deposit = bound(deposit, 1, 1e27);
        VouchStaking fresh = _newStaking(1);
        fresh.initialize(protocol, slasher);
        _fund(op1, seed + donation);
        _fund(alice, deposit);
        vm.prank(op1);
        stk.approve(address(fresh), type(uint256).max);
        vm.prank(alice);
        stk.approve(address(fresh), type(uint256).max);
        vm.prank(op1);
        fresh.registerOperator("https://attacker", 0, seed);
        vm.prank(op1);
        assertTrue(stk.transfer(address(fresh), donation), "donation");
        vm.prank(alice);
        uint256 shares = fresh.delegate(op1, deposit);
        assertEq(fresh.convertToAssets(op1, shares), deposit, "victim's stake is exact");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Exact scaled conservation of one pool's rewards (single-pool tests): reserve × P = Σ owed + dust.
    function _assertRewardsConserved(address operator) internal view {
        address[5] memory accounts = [op1, op2, alice, bob, carol];
        uint256 owed;
        for (uint256 i; i < accounts.length; ++i) {
            owed += staking.pendingRewardsScaled(operator, accounts[i]);
        }
        VouchStaking.Pool memory pool = staking.poolInfo(operator);
        assertEq(staking.rewardReserve() * PRECISION, owed + pool.rewardDustScaled, "scaled rewards conserved");
        assertEq(usd.balanceOf(address(staking)), staking.rewardReserve(), "balance = reserve");
    }
}
