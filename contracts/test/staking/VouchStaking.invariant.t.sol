// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {IVouchStaking} from "../../src/interfaces/IVouchStaking.sol";
import {VouchStaking} from "../../src/staking/VouchStaking.sol";
import {Vm} from "../utils/Test.sol";
import {MockERC20} from "./MockERC20.sol";
import {StakingBase} from "./StakingBase.sol";

/// @title StakingHandler
/// @notice Random operations on VouchStaking for the invariant run, by a fixed set of actors (four operators with
/// BLS keys and four delegators), with ghost accounting of what each actor put in and took out.
contract StakingHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant PRECISION = 1e36;
    uint256 internal constant MAX_AMOUNT = 1e24;
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;

    VouchStaking public immutable staking;
    MockERC20 public immutable stk;
    MockERC20 public immutable usd;
    address public immutable protocol;
    address public immutable slasher;

    /// @notice Actors 0..3 are operators (keys registered), 4..7 delegators.
    address[] public actors;
    uint256 public constant OPERATORS = 4;

    /// @notice Withdrawal requests not yet withdrawn.
    uint256[] public openRequests;

    /// @notice Stake tokens each actor delegated (self-stake included) and got back through `withdraw`.
    mapping(address => uint256) public deposited;
    mapping(address => uint256) public withdrawn;
    /// @notice Slashed stake credited to / claimed by each actor.
    mapping(address => uint256) public slashCredited;
    mapping(address => uint256) public slashClaimed;
    /// @notice Rewards each actor claimed, and an upper bound of what it earned (its pro-rata part of every
    /// distribution plus the pool's carried dust, rounded up).
    mapping(address => uint256) public rewardsClaimed;
    mapping(address => uint256) public rewardsEarnedBound;

    /// @notice Totals.
    uint256 public totalDeposited;
    uint256 public totalWithdrawn;
    uint256 public totalBurned;
    uint256 public totalSlashClaimed;
    uint256 public totalDistributed;
    uint256 public totalRewardsClaimed;

    /// @notice Successful calls per action (to see that the run does something).
    mapping(bytes32 => uint256) public calls;

    /// @notice Checks made inside actions that failed (a revert in a handler is not a failure for forge, so they are
    /// counted here and asserted zero by an invariant), and the last one's description.
    uint256 public violations;
    string public lastViolation;

    constructor(
        VouchStaking staking_,
        MockERC20 stk_,
        MockERC20 usd_,
        address protocol_,
        address slasher_,
        address[] memory actors_
    ) {
        staking = staking_;
        stk = stk_;
        usd = usd_;
        protocol = protocol_;
        slasher = slasher_;
        actors = actors_;
        for (uint256 i; i < actors_.length; ++i) {
            stk_.mint(actors_[i], 1e30);
            vm.prank(actors_[i]);
            stk_.approve(address(staking_), type(uint256).max);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Actions
    // ------------------------------------------------------------------------------------------------------------

    /// @notice An operator (with a key) registers.
    function registerOperator(uint256 opSeed, uint16 commission, uint256 amount) external {
        address op = _operator(opSeed);
        if (staking.operatorInfo(op).status != VouchStaking.OperatorStatus.None) return;
        amount = _bound(amount, staking.minSelfStake(), MAX_AMOUNT);
        vm.prank(op);
        staking.registerOperator("https://op.example", uint16(_bound(commission, 0, 10_000)), amount);
        _deposited(op, amount);
        ++calls["register"];
    }

    /// @notice An actor delegates to an active operator.
    function delegate(uint256 actorSeed, uint256 opSeed, uint256 amount) external {
        address actor = _actor(actorSeed);
        address op;
        for (uint256 k; k < OPERATORS; ++k) {
            if (staking.acceptsDelegations(_operator(opSeed % OPERATORS + k))) {
                op = _operator(opSeed % OPERATORS + k);
                break;
            }
        }
        if (op == address(0)) return;
        amount = _bound(amount, 1, MAX_AMOUNT);
        vm.prank(actor);
        staking.delegate(op, amount);
        _deposited(actor, amount);
        ++calls["delegate"];
    }

    /// @notice An actor queues part of its active shares (an active operator's self-stake floor may refuse).
    function requestUnstake(uint256 pairSeed, uint256 shares) external {
        (address actor, address op, bool found) = _findPair(pairSeed, false);
        if (!found) return;
        uint256 available = staking.sharesOf(op, actor);
        shares = _bound(shares, 1, available);
        vm.prank(actor);
        try staking.requestUnstake(op, shares) returns (uint256 id) {
            openRequests.push(id);
            ++calls["requestUnstake"];
        } catch (bytes memory reason) {
            // Only the self-stake floor may refuse a request within the caller's active shares.
            // casting to bytes4 keeps the selector, which is all that is compared
            // forge-lint: disable-next-line(unsafe-typecast)
            _check(bytes4(reason) == VouchStaking.SelfStakeBelowMinimum.selector, "unexpected requestUnstake revert");
            _check(actor == op && staking.isOperator(op), "self-stake floor applied to a non-operator");
        }
    }

    /// @notice The owner of an open request withdraws it (warping to its readyAt if needed).
    function withdraw(uint256 index, uint256 extraWait) external {
        if (openRequests.length == 0) return;
        index %= openRequests.length;
        uint256 id = openRequests[index];
        VouchStaking.Withdrawal memory w = staking.withdrawalRequest(id);
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < w.readyAt) vm.warp(uint256(w.readyAt) + _bound(extraWait, 0, 1 days));
        uint256 preview = staking.previewWithdraw(id);
        vm.prank(w.owner);
        uint256 paid = staking.withdraw(id);
        _check(paid == preview, "withdraw != preview");
        withdrawn[w.owner] += paid;
        totalWithdrawn += paid;
        openRequests[index] = openRequests[openRequests.length - 1];
        openRequests.pop();
        ++calls["withdraw"];
    }

    /// @notice The slasher slashes an operator (sometimes beyond its pool), crediting random actors.
    function slash(
        uint256 opSeed,
        uint256 amount,
        uint256 payerSeed,
        uint256 reporterSeed,
        uint16 payerBps,
        uint16 reporterBps
    ) external {
        address op = _operator(opSeed);
        uint256 pool = staking.slashableStake(op);
        // Usually up to half the pool; one slash in eight asks for more than the pool (capped, and the pool is then
        // depleted for good).
        amount = amount % 8 == 0 ? _bound(amount >> 3, pool, 2 * pool + 1) : _bound(amount, 0, pool / 2);
        IVouchStaking.SlashSplit memory split = _split(amount, payerSeed, reporterSeed, payerBps, reporterBps);
        uint256[] memory claimableBefore = _claimables();
        uint256 burnedBefore = stk.balanceOf(BURN);

        vm.prank(slasher);
        uint256 slashed = staking.slash(op, amount, split);
        _check(slashed == (amount < pool ? amount : pool), "slash not capped at the pool");
        totalBurned += stk.balanceOf(BURN) - burnedBefore;
        for (uint256 i; i < actors.length; ++i) {
            slashCredited[actors[i]] += staking.slashedClaimable(actors[i]) - claimableBefore[i];
        }
        ++calls["slash"];
    }

    /// @notice The protocol funds and distributes rewards to a registered (possibly deregistered) operator's pool.
    function distributeRewards(uint256 opSeed, uint256 amount) external {
        address op = _operator(opSeed);
        if (staking.operatorInfo(op).status == VouchStaking.OperatorStatus.None) return;
        amount = _bound(amount, 0, 1e15);
        VouchStaking.Pool memory pool = staking.poolInfo(op);
        uint256 active = pool.totalShares - pool.queuedShares;
        uint256 total = amount * PRECISION + pool.rewardDustScaled;
        if (active == 0) {
            rewardsEarnedBound[op] += Math.ceilDiv(total, PRECISION);
        } else {
            for (uint256 i; i < actors.length; ++i) {
                uint256 shares = staking.sharesOf(op, actors[i]);
                if (shares != 0) {
                    // total × shares / active, rounded up, then to whole units rounded up (no overflow even after a pool
                    // was wiped out and re-filled, which makes share counts huge).
                    rewardsEarnedBound[
                        actors[i]
                    ] += Math.ceilDiv(Math.mulDiv(total, shares, active, Math.Rounding.Ceil), PRECISION);
                }
            }
        }
        usd.mint(address(staking), amount);
        vm.prank(protocol);
        staking.distributeRewards(op, amount);
        totalDistributed += amount;
        ++calls["distributeRewards"];
    }

    /// @notice An actor claims its rewards from a pool.
    function claimRewards(uint256 pairSeed) external {
        (address actor, address op, bool found) = _findPair(pairSeed, true);
        if (!found) return;
        uint256 pending = staking.pendingRewards(op, actor);
        vm.prank(actor);
        uint256 paid = staking.claimRewards(op);
        _check(paid == pending, "claimed != pending");
        rewardsClaimed[actor] += paid;
        totalRewardsClaimed += paid;
        ++calls["claimRewards"];
    }

    /// @notice An actor claims the slashed stake credited to it.
    function claimSlashed(uint256 actorSeed) external {
        address actor;
        for (uint256 k; k < actors.length; ++k) {
            if (staking.slashedClaimable(_actor(actorSeed % actors.length + k)) != 0) {
                actor = _actor(actorSeed % actors.length + k);
                break;
            }
        }
        if (actor == address(0)) return;
        vm.prank(actor);
        uint256 paid = staking.claimSlashed();
        slashClaimed[actor] += paid;
        totalSlashClaimed += paid;
        ++calls["claimSlashed"];
    }

    /// @notice An operator deregisters (one call in four, so pools stay open for a while).
    function deregister(uint256 opSeed) external {
        if (opSeed % 4 != 0) return;
        address op = _operator(opSeed >> 2);
        if (!staking.isOperator(op)) return;
        vm.prank(op);
        staking.deregister();
        ++calls["deregister"];
    }

    /// @notice The slasher jails an operator.
    function jail(uint256 opSeed, uint64 duration) external {
        address op = _operator(opSeed);
        if (staking.operatorInfo(op).status == VouchStaking.OperatorStatus.None) return;
        vm.prank(slasher);
        staking.jail(op, uint64(block.timestamp) + uint64(_bound(duration, 0, 30 days)));
        ++calls["jail"];
    }

    /// @notice Time passes.
    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + _bound(seconds_, 0, 10 days));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views for the invariants
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Number of actors.
    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    /// @notice Number of open requests.
    function openRequestCount() external view returns (uint256) {
        return openRequests.length;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------------------

    function _split(uint256 amount, uint256 payerSeed, uint256 reporterSeed, uint16 payerBps, uint16 reporterBps)
        private
        view
        returns (IVouchStaking.SlashSplit memory split)
    {
        split.payer = _actor(payerSeed);
        split.reporter = _actor(reporterSeed);
        split.toPayer = amount * _bound(payerBps, 0, 10_000) / 10_000;
        split.toReporter = (amount - split.toPayer) * _bound(reporterBps, 0, 10_000) / 10_000;
    }

    function _claimables() private view returns (uint256[] memory out) {
        out = new uint256[](actors.length);
        for (uint256 i; i < actors.length; ++i) {
            out[i] = staking.slashedClaimable(actors[i]);
        }
    }

    /// @dev First (actor, operator) pair from `seed` on where the actor has active shares (`pending` false) or
    /// claimable rewards (`pending` true) in the operator's pool.
    function _findPair(uint256 seed, bool pending) private view returns (address actor, address op, bool found) {
        uint256 pairs = actors.length * OPERATORS;
        for (uint256 k; k < pairs; ++k) {
            uint256 p = (seed % pairs + k) % pairs;
            actor = actors[p / OPERATORS];
            op = actors[p % OPERATORS];
            if (pending ? staking.pendingRewards(op, actor) != 0 : staking.sharesOf(op, actor) != 0) {
                return (actor, op, true);
            }
        }
    }

    function _check(bool condition, string memory description) private {
        if (!condition) {
            ++violations;
            lastViolation = description;
        }
    }

    function _deposited(address actor, uint256 amount) private {
        deposited[actor] += amount;
        totalDeposited += amount;
    }

    function _actor(uint256 seed) private view returns (address) {
        return actors[seed % actors.length];
    }

    function _operator(uint256 seed) private view returns (address) {
        return actors[seed % OPERATORS];
    }

    function _bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        return min + x % (max - min + 1);
    }
}

/// @title VouchStakingInvariantTest
/// @notice Whatever sequence of registrations, delegations, unstakes, withdrawals, slashes, distributions and claims
/// runs, the contract's token balances equal its ledgers and nobody takes out more than it put in or earned.
contract VouchStakingInvariantTest is StakingBase {
    StakingHandler internal handler;
    address[] internal actors;

    function setUp() external {
        vm.warp(1_000_000);
        registry = new KeyRegistry();
        stk = new MockERC20("Stake", "STK", 18);
        usd = new MockERC20("Vouch USD", "vUSD", 6);
        staking = _newStaking(MIN_SELF_STAKE);
        staking.initialize(protocol, slasher);
        for (uint256 i; i < 8; ++i) {
            // casting to uint160 is safe because 0xAC7000 + i < 2^160
            // forge-lint: disable-next-line(unsafe-typecast)
            address actor = address(uint160(0xAC7000 + i));
            actors.push(actor);
            if (i < 4) _registerKey(actor);
        }
        handler = new StakingHandler(staking, stk, usd, protocol, slasher, actors);
        // Two operators start registered; the other two register (or not) during the run.
        handler.registerOperator(0, 1000, 500e18);
        handler.registerOperator(1, 0, 1e24);
    }

    /// @notice forge fuzzes only the handler.
    function targetContracts() external view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice Every check made inside the handler's actions held.
    function invariant_HandlerChecks() external view {
        assertEq(handler.violations(), 0, handler.lastViolation());
    }

    /// @notice (1) Stake-token balance = Σ pool assets + Σ slashed claimable, and the pools' share books balance.
    function invariant_StakeBalanceMatchesLedger() external view {
        uint256 pools;
        uint256 claimable;
        for (uint256 i; i < actors.length; ++i) {
            claimable += staking.slashedClaimable(actors[i]);
        }
        for (uint256 j; j < 4; ++j) {
            address op = actors[j];
            VouchStaking.Pool memory pool = staking.poolInfo(op);
            pools += pool.assets;
            uint256 active;
            for (uint256 i; i < actors.length; ++i) {
                active += staking.sharesOf(op, actors[i]);
            }
            assertEq(active + pool.queuedShares, pool.totalShares, "shares: active + queued = total");
            assertEq(staking.activeStake(op), staking.convertToAssets(op, active), "activeStake");
            assertLe(staking.activeStake(op), pool.assets, "activeStake <= slashable");
        }
        uint256 queued;
        for (uint256 k; k < handler.openRequestCount(); ++k) {
            queued += staking.withdrawalRequest(handler.openRequests(k)).shares;
        }
        uint256 allQueued;
        for (uint256 j; j < 4; ++j) {
            allQueued += staking.poolInfo(actors[j]).queuedShares;
        }
        assertEq(queued, allQueued, "queued shares = open requests");
        assertEq(stk.balanceOf(address(staking)), pools + claimable, "stake balance = pools + claimable");
        // Conservation: everything deposited is in a pool, claimable, claimed, withdrawn or burned.
        assertEq(
            handler.totalDeposited(),
            pools + claimable + handler.totalSlashClaimed() + handler.totalWithdrawn() + handler.totalBurned(),
            "stake conserved"
        );
    }

    /// @notice (2) Payment-token balance = unclaimed rewards + dust, exactly in scaled units, and ≥ Σ pendingRewards.
    function invariant_RewardBalanceMatchesLedger() external view {
        uint256 owedScaled;
        uint256 pending;
        uint256 dustScaled;
        for (uint256 j; j < 4; ++j) {
            address op = actors[j];
            dustScaled += staking.poolInfo(op).rewardDustScaled;
            for (uint256 i; i < actors.length; ++i) {
                owedScaled += staking.pendingRewardsScaled(op, actors[i]);
                pending += staking.pendingRewards(op, actors[i]);
            }
        }
        uint256 balance = usd.balanceOf(address(staking));
        assertEq(balance, staking.rewardReserve(), "balance = reserve");
        assertEq(balance * PRECISION, owedScaled + dustScaled, "reserve = owed + dust (scaled)");
        assertGe(balance, pending, "balance covers every pending claim");
        assertEq(balance + handler.totalRewardsClaimed(), handler.totalDistributed(), "rewards conserved");
    }

    /// @notice (3) No actor takes out more than it put in plus what it earned.
    function invariant_NoActorTakesMoreThanItPutInOrEarned() external view {
        for (uint256 i; i < actors.length; ++i) {
            address a = actors[i];
            assertLe(handler.withdrawn(a), handler.deposited(a), "withdrew more stake than deposited");
            assertLe(handler.slashClaimed(a), handler.slashCredited(a), "claimed more slashed stake than credited");
            uint256 pending;
            for (uint256 j; j < 4; ++j) {
                pending += staking.pendingRewards(actors[j], a);
            }
            assertLe(handler.rewardsClaimed(a) + pending, handler.rewardsEarnedBound(a), "rewards above earned");
        }
    }
}
