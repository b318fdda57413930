// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {KeyRegistry} from "../KeyRegistry.sol";
import {IVouchStaking} from "../interfaces/IVouchStaking.sol";

/// @title VouchStaking
/// @notice Operator stake pools for Vouch: self-stake plus delegations with share accounting, an unbonding queue
/// whose pending withdrawals stay slashable, time-locked commission, jailing, and payment-token rewards for the
/// delegators of each pool.
/// @dev Accounting rules (all amounts are tracked internally; `balanceOf` is never used to price anything):
///
/// - **Pools.** Each operator has one pool: `assets` (stake-token units, active and unbonding) and `totalShares`
///   (active and queued). Shares convert with a virtual offset (OZ ERC-4626 style, `DECIMALS_OFFSET`):
///   `shares = assets × (totalShares + 10^offset) / (assets + 1)` on delegation and
///   `assets = shares × (assets + 1) / (totalShares + 10^offset)` on withdrawal, both rounded down (in the pool's
///   favour). A donation by plain `transfer` changes nothing (it is not counted), so the share price can only fall
///   (by slashing), never be inflated; the offset is defence in depth. A pool whose share price fell by more than
///   `MAX_SHARE_DILUTION` takes no new delegations (`PoolDepleted`), which bounds share counts.
/// - **Unbonding.** `requestUnstake` moves active shares into a withdrawal request; the shares stay in the pool, so a
///   slash hits them exactly like active shares, but they stop earning rewards and stop counting in `activeStake`.
///   `withdraw` pays them at the pool's price at withdrawal time, after `unbondingDelay`.
/// - **Self-stake.** The operator's self-stake is its own delegation to its pool. While registered, an operator
///   may unstake only down to `minSelfStake` of active self-stake (measured at the current price); it may top up at
///   any time with `delegate`. To leave completely it calls `deregister()`: it stops being an operator (no new
///   services, no new delegations) for good, and may then unstake everything through the same queue, so its stake
///   stays slashable for `unbondingDelay` after it asks to leave. A slash may leave the self-stake below the minimum;
///   the operator then cannot unstake until it tops up or deregisters. Deregistration is final: the operator's
///   address holds its BLS key in `KeyRegistry` (one key, no rotation), so a returning operator uses a new address.
/// - **Rewards.** `distributeRewards` adds to a per-pool accumulator of payment-token units per active share, scaled
///   by `REWARD_PRECISION`. Everything is kept in scaled units (the pool's undistributed remainder, each delegator's
///   owed amount), and only whole payment-token units are paid, so the sum of all payouts never exceeds what was
///   received; the pool's remainder (`rewardDustScaled`) rolls into its next distribution. A pool with no active
///   shares (only possible once the operator deregistered and everyone unstaked, since an active operator keeps
///   `minSelfStake` of active shares) credits the distribution and the pool's dust to the operator itself, as
///   rewards it claims with `claimRewards(operator)`: the operator did the work, and nothing is stranded.
/// - **Slashing.** Reduces `assets` (every share, active or unbonding, loses the same fraction); the payer's and the
///   reporter's parts become claimable stake-token balances (`claimSlashed`), the rest is sent to `BURN_ADDRESS`.
///
/// Unsupported tokens: fee-on-transfer and rebasing tokens (the contract credits the amounts it asks to move). The
/// stake token and the payment token must differ (each token's balance backs exactly one ledger).
contract VouchStaking is IVouchStaking, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Lifecycle of an operator: None → Active (`registerOperator`) → Exited (`deregister`, final).
    enum OperatorStatus {
        None,
        Active,
        Exited
    }

    /// @notice Operator record (one storage slot plus the endpoint).
    struct Operator {
        OperatorStatus status; // None, Active or Exited
        uint16 commissionBps; // current commission, basis points
        uint16 pendingCommissionBps; // proposed commission (meaningful while commissionReadyAt != 0)
        uint64 commissionReadyAt; // unix seconds when the proposal may be applied; 0 = no proposal
        uint64 jailedUntil; // unix seconds; jailed while block.timestamp < jailedUntil
        string endpoint; // announced HTTP endpoint, 1..MAX_ENDPOINT_LENGTH bytes
    }

    /// @notice Stake pool of one operator.
    struct Pool {
        uint256 assets; // stake-token units backing every share (active and queued); the slashable stake
        uint256 totalShares; // active + queued shares
        uint256 queuedShares; // shares in pending withdrawal requests (slashable, earn no rewards)
        uint256 accRewardPerShare; // Σ payment-token units × REWARD_PRECISION per active share
        uint256 rewardDustScaled; // undistributed rewards × REWARD_PRECISION, rolled into the next distribution
    }

    /// @notice One account's delegation to one pool.
    struct Delegation {
        uint256 shares; // active shares (queued shares live in withdrawal requests)
        uint256 rewardSnapshot; // pool.accRewardPerShare when the rewards of `shares` were last settled
        uint256 owedScaled; // settled, unclaimed rewards × REWARD_PRECISION
    }

    /// @notice A pending withdrawal: queued shares of `operator`'s pool owned by `owner`.
    struct Withdrawal {
        address owner; // who may withdraw; zero if the request does not exist or was withdrawn
        uint64 readyAt; // unix seconds from which `withdraw` pays
        address operator; // pool of the shares
        uint256 shares; // queued shares
    }

    // ------------------------------------------------------------------------------------------------------------
    // Constants and immutables
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Where burned stake is sent (arbitrary ERC-20s have no burn).
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @notice Payer and reporter together get at most `1 / SELF_SLASH_PAYOUT_DIVISOR` of the operator's own loss.
    uint256 public constant SELF_SLASH_PAYOUT_DIVISOR = 2;

    /// @notice Largest commission: 100 %.
    uint16 public constant MAX_COMMISSION_BPS = 10_000;

    /// @notice Largest endpoint, in bytes.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;

    /// @notice Decimal offset between shares and assets (virtual shares = 10^offset, virtual assets = 1).
    uint8 public constant DECIMALS_OFFSET = 3;

    /// @notice Largest factor by which slashing may shrink a share's value (from 1 asset per 10^DECIMALS_OFFSET shares)
    /// before the pool refuses new delegations (`PoolDepleted`). Minting into an almost empty pool would create
    /// astronomically many shares (a pool slashed to 1 wei prices a share near zero), which would make the rewards
    /// accumulator lose its precision (rewards would wait as dust until they exceed one unit per 10^36 active
    /// shares) and eventually overflow. A pool that lost more than 99.9999 % is dead: holders can still unstake,
    /// withdraw and claim, and the operator must register anew from another address.
    uint256 public constant MAX_SHARE_DILUTION = 1e6;

    /// @notice Scale of `accRewardPerShare`, `rewardDustScaled` and `owedScaled`.
    uint256 public constant REWARD_PRECISION = 1e36;

    /// @dev 10^DECIMALS_OFFSET.
    uint256 private constant VIRTUAL_SHARES = 10 ** DECIMALS_OFFSET;

    /// @dev Virtual assets of every pool.
    uint256 private constant VIRTUAL_ASSETS = 1;

    /// @dev The stake token.
    IERC20 private immutable _stakeToken;

    /// @dev The payment token (rewards).
    IERC20 private immutable _paymentToken;

    /// @notice Registry where operators register their BLS key before registering here.
    KeyRegistry public immutable keyRegistry;

    /// @notice Delay between an unstake request and its withdrawal.
    uint64 public immutable unbondingDelay;

    /// @notice Delay between a commission proposal and when it may be applied.
    uint64 public immutable commissionDelay;

    /// @notice Least self-stake to register, and the floor of an active operator's active self-stake when it unstakes.
    uint256 public immutable minSelfStake;

    /// @notice Account that deployed the contract; the only one allowed to `initialize`.
    address public immutable deployer;

    // ------------------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------------------

    /// @notice The protocol contract: the only caller of `distributeRewards` (zero until `initialize`).
    address public protocol;

    /// @notice The slasher contract: the only caller of `slash` and `jail` (zero until `initialize`).
    address public slasher;

    /// @notice Id the next withdrawal request gets (ids start at 1).
    uint256 public nextWithdrawalId = 1;

    /// @notice Payment-token units received through `distributeRewards` and not yet claimed.
    uint256 public rewardReserve;

    /// @notice Stake-token units credited by slashes to `account` and not yet claimed.
    mapping(address account => uint256 amount) public slashedClaimable;

    /// @dev Operator records.
    mapping(address operator => Operator) private _operators;

    /// @dev Stake pools.
    mapping(address operator => Pool) private _pools;

    /// @dev Delegations per pool and account.
    mapping(address operator => mapping(address account => Delegation)) private _delegations;

    /// @dev Pending withdrawal requests.
    mapping(uint256 requestId => Withdrawal) private _withdrawals;

    /// @dev Every withdrawal request id each account created (withdrawn ones included).
    mapping(address owner => uint256[] requestIds) private _withdrawalIds;

    // ------------------------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------------------------

    /// @notice The protocol and slasher were set (once).
    /// @param protocol The protocol contract.
    /// @param slasher The slasher contract.
    event Initialized(address indexed protocol, address indexed slasher);

    /// @notice An operator registered. Followed by the `Delegated` event of its initial self-stake.
    /// @param operator The operator.
    /// @param endpoint Its HTTP endpoint.
    /// @param commissionBps Its commission.
    event OperatorRegistered(address indexed operator, string endpoint, uint16 commissionBps);

    /// @notice An operator left for good (no new delegations; it may unstake all its self-stake).
    /// @param operator The operator.
    event OperatorDeregistered(address indexed operator);

    /// @notice An operator changed its endpoint.
    /// @param operator The operator.
    /// @param endpoint The new endpoint.
    event EndpointUpdated(address indexed operator, string endpoint);

    /// @notice An operator proposed a commission (replacing any earlier proposal).
    /// @param operator The operator.
    /// @param commissionBps The proposed commission.
    /// @param readyAt When it may be applied.
    event CommissionProposed(address indexed operator, uint16 commissionBps, uint64 readyAt);

    /// @notice A proposed commission took effect.
    /// @param operator The operator.
    /// @param commissionBps The new commission.
    event CommissionApplied(address indexed operator, uint16 commissionBps);

    /// @notice Stake was delegated (including an operator's self-stake).
    /// @param operator The pool.
    /// @param delegator The account credited.
    /// @param assets Stake-token units added to the pool.
    /// @param shares Active shares minted to `delegator`.
    event Delegated(address indexed operator, address indexed delegator, uint256 assets, uint256 shares);

    /// @notice Active shares moved into a withdrawal request.
    /// @param requestId The request.
    /// @param owner The account that may withdraw.
    /// @param operator The pool.
    /// @param shares Shares queued.
    /// @param assets Their value at request time (the payout is valued at withdrawal time).
    /// @param readyAt When `withdraw` pays.
    event UnstakeRequested(
        uint256 indexed requestId,
        address indexed owner,
        address indexed operator,
        uint256 shares,
        uint256 assets,
        uint64 readyAt
    );

    /// @notice A withdrawal request was paid and removed.
    /// @param requestId The request.
    /// @param owner The account paid.
    /// @param operator The pool.
    /// @param shares Shares burned.
    /// @param assets Stake-token units paid.
    event Withdrawn(
        uint256 indexed requestId, address indexed owner, address indexed operator, uint256 shares, uint256 assets
    );

    /// @notice A pool was slashed.
    /// @param operator The pool.
    /// @param amount Stake-token units removed from the pool.
    /// @param payer Account credited `toPayer`.
    /// @param toPayer Claimable by `payer`.
    /// @param reporter Account credited `toReporter`.
    /// @param toReporter Claimable by `reporter`.
    /// @param burned Sent to `BURN_ADDRESS`.
    event Slashed(
        address indexed operator,
        uint256 amount,
        address indexed payer,
        uint256 toPayer,
        address indexed reporter,
        uint256 toReporter,
        uint256 burned
    );

    /// @notice Slashed stake credited to `account` was paid out.
    /// @param account The account.
    /// @param amount Stake-token units paid.
    event SlashedClaimed(address indexed account, uint256 amount);

    /// @notice An operator is jailed until `until`.
    /// @param operator The operator.
    /// @param until Unix seconds (the later of the existing and the requested release time).
    event Jailed(address indexed operator, uint64 until);

    /// @notice Rewards were added to a pool.
    /// @param operator The pool.
    /// @param amount Payment-token units received.
    /// @param activeShares Active shares they were spread over (zero: the amount and the pool's previous dust were
    /// credited to the operator's own rewards).
    /// @param accRewardPerShare The pool's accumulator after the distribution.
    /// @param rewardDustScaled The pool's undistributed remainder (× REWARD_PRECISION) after the distribution.
    event RewardsDistributed(
        address indexed operator,
        uint256 amount,
        uint256 activeShares,
        uint256 accRewardPerShare,
        uint256 rewardDustScaled
    );

    /// @notice A delegator claimed its rewards from a pool.
    /// @param operator The pool.
    /// @param account The delegator.
    /// @param amount Payment-token units paid.
    event RewardsClaimed(address indexed operator, address indexed account, uint256 amount);

    // ------------------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------------------

    /// @notice A required address is zero.
    error ZeroAddress();

    /// @notice The stake token and the payment token are the same contract.
    error SameToken();

    /// @notice `minSelfStake` is zero.
    error ZeroMinSelfStake();

    /// @notice Only the deployer may initialize.
    /// @param caller The sender.
    error NotDeployer(address caller);

    /// @notice `initialize` was already called.
    error AlreadyInitialized();

    /// @notice Only the slasher may call this.
    /// @param caller The sender.
    error NotSlasher(address caller);

    /// @notice Only the protocol may call this.
    /// @param caller The sender.
    error NotProtocol(address caller);

    /// @notice The operator has no BLS key in the key registry.
    /// @param operator The operator.
    error OperatorKeyNotRegistered(address operator);

    /// @notice The operator is already registered, or registered before and left (deregistration is final).
    /// @param operator The operator.
    error OperatorAlreadyRegistered(address operator);

    /// @notice The address is not an active (registered, not deregistered) operator.
    /// @param operator The address.
    error OperatorNotRegistered(address operator);

    /// @notice The address never registered as an operator.
    /// @param operator The address.
    error UnknownOperator(address operator);

    /// @notice The endpoint is empty or longer than `MAX_ENDPOINT_LENGTH` bytes.
    /// @param length Its length.
    error InvalidEndpoint(uint256 length);

    /// @notice The commission exceeds `MAX_COMMISSION_BPS`.
    /// @param commissionBps The commission.
    error InvalidCommission(uint16 commissionBps);

    /// @notice The self-stake is below `minSelfStake`.
    /// @param selfStake The self-stake (after the operation).
    /// @param minimum `minSelfStake`.
    error SelfStakeBelowMinimum(uint256 selfStake, uint256 minimum);

    /// @notice There is no commission proposal.
    error NoPendingCommission();

    /// @notice The commission proposal's delay has not passed.
    /// @param readyAt When it may be applied.
    error CommissionNotReady(uint64 readyAt);

    /// @notice An amount is zero.
    error ZeroAmount();

    /// @notice A share count is zero (also: an amount too small to mint a share).
    error ZeroShares();

    /// @notice The pool lost so much to slashing that a share is worth less than `1 / MAX_SHARE_DILUTION` of its
    /// initial value; it takes no more delegations (see `MAX_SHARE_DILUTION`).
    /// @param operator The pool.
    error PoolDepleted(address operator);

    /// @notice The account has fewer active shares in the pool than requested.
    /// @param available Its active shares.
    /// @param requested Shares requested.
    error InsufficientShares(uint256 available, uint256 requested);

    /// @notice No pending withdrawal request has this id.
    /// @param requestId The id.
    error UnknownWithdrawal(uint256 requestId);

    /// @notice Only the owner of the request may withdraw it.
    /// @param caller The sender.
    /// @param owner The owner.
    error NotWithdrawalOwner(address caller, address owner);

    /// @notice The request's unbonding delay has not passed.
    /// @param readyAt When it may be withdrawn.
    error WithdrawalNotReady(uint64 readyAt);

    /// @notice The split gives away more than the requested slash amount.
    /// @param split `toPayer + toReporter`.
    /// @param amount The requested slash amount.
    error SplitExceedsAmount(uint256 split, uint256 amount);

    /// @notice The split credits a non-zero amount to the zero address.
    error ZeroRecipient();

    /// @notice Nothing to claim.
    error NothingToClaim();

    /// @notice The contract holds fewer payment tokens than the rewards it owes plus the new distribution.
    /// @param balance Payment-token balance of this contract.
    /// @param required `rewardReserve + amount`.
    error RewardsNotFunded(uint256 balance, uint256 required);

    // ------------------------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Only the slasher.
    modifier onlySlasher() {
        if (msg.sender != slasher) revert NotSlasher(msg.sender);
        _;
    }

    /// @dev Only an active operator (the sender).
    modifier onlyActiveOperator() {
        if (_operators[msg.sender].status != OperatorStatus.Active) revert OperatorNotRegistered(msg.sender);
        _;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Setup
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Deploys the staking contract; `initialize` must follow (from the same account).
    /// @param stakeToken_ Token staked in every pool (plain ERC-20: no fee on transfer, no rebasing).
    /// @param paymentToken_ Token rewards are paid in (the protocol's payment token); must differ from `stakeToken_`.
    /// @param keyRegistry_ Registry holding operators' BLS keys.
    /// @param unbondingDelay_ Seconds between an unstake request and its withdrawal.
    /// @param commissionDelay_ Seconds between a commission proposal and when it may be applied.
    /// @param minSelfStake_ Least self-stake (stake-token units, > 0).
    constructor(
        IERC20 stakeToken_,
        IERC20 paymentToken_,
        KeyRegistry keyRegistry_,
        uint64 unbondingDelay_,
        uint64 commissionDelay_,
        uint256 minSelfStake_
    ) {
        if (address(stakeToken_) == address(0) || address(paymentToken_) == address(0)) {
            revert ZeroAddress();
        }
        if (address(keyRegistry_) == address(0)) revert ZeroAddress();
        if (address(stakeToken_) == address(paymentToken_)) revert SameToken();
        if (minSelfStake_ == 0) revert ZeroMinSelfStake();
        _stakeToken = stakeToken_;
        _paymentToken = paymentToken_;
        keyRegistry = keyRegistry_;
        unbondingDelay = unbondingDelay_;
        commissionDelay = commissionDelay_;
        minSelfStake = minSelfStake_;
        deployer = msg.sender;
    }

    /// @notice Sets the protocol (rewards) and the slasher (slash, jail). Once, by the deployer.
    /// @param protocol_ The protocol contract.
    /// @param slasher_ The slasher contract.
    function initialize(address protocol_, address slasher_) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (protocol != address(0)) revert AlreadyInitialized();
        if (protocol_ == address(0) || slasher_ == address(0)) revert ZeroAddress();
        protocol = protocol_;
        slasher = slasher_;
        emit Initialized(protocol_, slasher_);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Operators
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Registers the sender as an operator and stakes its initial self-stake.
    /// @dev The sender must have a BLS key in `keyRegistry` and must never have registered here before. The
    /// self-stake is pulled from the sender (approve first) and is a delegation to its own pool.
    /// @param endpoint HTTP endpoint, 1..`MAX_ENDPOINT_LENGTH` bytes.
    /// @param commissionBps_ Commission in basis points (≤ `MAX_COMMISSION_BPS`).
    /// @param selfStakeAmount Stake-token units, ≥ `minSelfStake`.
    function registerOperator(string calldata endpoint, uint16 commissionBps_, uint256 selfStakeAmount)
        external
        nonReentrant
    {
        Operator storage op = _operators[msg.sender];
        if (op.status != OperatorStatus.None) revert OperatorAlreadyRegistered(msg.sender);
        if (keyRegistry.keyOf(msg.sender).length == 0) revert OperatorKeyNotRegistered(msg.sender);
        _checkEndpoint(endpoint);
        if (commissionBps_ > MAX_COMMISSION_BPS) revert InvalidCommission(commissionBps_);
        if (selfStakeAmount < minSelfStake) revert SelfStakeBelowMinimum(selfStakeAmount, minSelfStake);

        op.status = OperatorStatus.Active;
        op.commissionBps = commissionBps_;
        op.endpoint = endpoint;
        emit OperatorRegistered(msg.sender, endpoint, commissionBps_);
        _delegate(msg.sender, msg.sender, selfStakeAmount);
    }

    /// @notice Leaves for good: the sender stops being an operator (no new services or delegations) and may then
    /// unstake all its self-stake. Its pool stays (delegators unstake, withdraw and claim as usual; the slasher can
    /// still slash and jail it; the protocol can still pay rewards for work already done).
    function deregister() external onlyActiveOperator {
        _operators[msg.sender].status = OperatorStatus.Exited;
        emit OperatorDeregistered(msg.sender);
    }

    /// @notice Changes the sender's HTTP endpoint.
    /// @param endpoint New endpoint, 1..`MAX_ENDPOINT_LENGTH` bytes.
    function setEndpoint(string calldata endpoint) external onlyActiveOperator {
        _checkEndpoint(endpoint);
        _operators[msg.sender].endpoint = endpoint;
        emit EndpointUpdated(msg.sender, endpoint);
    }

    /// @notice Proposes a new commission, applicable with `applyCommission` after `commissionDelay`. Replaces (and
    /// restarts the delay of) any earlier proposal; proposing the current commission cancels a change.
    /// @param commissionBps_ New commission in basis points (≤ `MAX_COMMISSION_BPS`).
    function proposeCommission(uint16 commissionBps_) external onlyActiveOperator {
        if (commissionBps_ > MAX_COMMISSION_BPS) revert InvalidCommission(commissionBps_);
        Operator storage op = _operators[msg.sender];
        uint64 readyAt = uint64(block.timestamp) + commissionDelay;
        op.pendingCommissionBps = commissionBps_;
        op.commissionReadyAt = readyAt;
        emit CommissionProposed(msg.sender, commissionBps_, readyAt);
    }

    /// @notice Applies the sender's proposed commission once its delay has passed.
    function applyCommission() external onlyActiveOperator {
        Operator storage op = _operators[msg.sender];
        uint64 readyAt = op.commissionReadyAt;
        if (readyAt == 0) revert NoPendingCommission();
        // Day-scale delay: a validator's few seconds of timestamp drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < readyAt) revert CommissionNotReady(readyAt);
        uint16 newBps = op.pendingCommissionBps;
        op.commissionBps = newBps;
        op.pendingCommissionBps = 0;
        op.commissionReadyAt = 0;
        emit CommissionApplied(msg.sender, newBps);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Delegation and unbonding
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Delegates `amount` stake-token units (pulled from the sender) to `operator`'s pool.
    /// @dev The operator must be active (jailed operators accept delegations: jailing only keeps them out of new
    /// services) and its pool not depleted (`PoolDepleted`, also for the operator's own top-ups). Shares are rounded
    /// down; reverts `ZeroShares` if `amount` buys none.
    /// @param operator The pool.
    /// @param amount Stake-token units.
    /// @return shares Active shares minted to the sender.
    function delegate(address operator, uint256 amount) external nonReentrant returns (uint256 shares) {
        if (_operators[operator].status != OperatorStatus.Active) revert OperatorNotRegistered(operator);
        return _delegate(operator, msg.sender, amount);
    }

    /// @notice Moves `shares` of the sender's active shares in `operator`'s pool into a withdrawal request, payable
    /// after `unbondingDelay`. The queued shares stay slashable, stop earning rewards and stop counting as active
    /// stake. Rewards earned so far stay claimable.
    /// @dev While `operator` is active, the operator itself may only unstake down to `minSelfStake` of active
    /// self-stake (see the contract notes).
    /// @param operator The pool.
    /// @param shares Active shares to queue.
    /// @return requestId Id of the withdrawal request.
    function requestUnstake(address operator, uint256 shares) external returns (uint256 requestId) {
        if (shares == 0) revert ZeroShares();
        Pool storage pool = _pools[operator];
        Delegation storage d = _delegations[operator][msg.sender];
        uint256 available = d.shares;
        if (shares > available) revert InsufficientShares(available, shares);
        uint256 remaining = available - shares;
        if (msg.sender == operator && _operators[operator].status == OperatorStatus.Active) {
            uint256 remainingStake = _toAssets(pool, remaining);
            if (remainingStake < minSelfStake) revert SelfStakeBelowMinimum(remainingStake, minSelfStake);
        }

        _settle(pool, d);
        d.shares = remaining;
        pool.queuedShares += shares;

        requestId = nextWithdrawalId++;
        uint64 readyAt = uint64(block.timestamp) + unbondingDelay;
        _withdrawals[requestId] = Withdrawal({owner: msg.sender, readyAt: readyAt, operator: operator, shares: shares});
        _withdrawalIds[msg.sender].push(requestId);
        emit UnstakeRequested(requestId, msg.sender, operator, shares, _toAssets(pool, shares), readyAt);
    }

    /// @notice Pays a withdrawal request whose unbonding delay has passed, at the pool's price now (a slash during
    /// unbonding is felt), and removes it. Only the request's owner.
    /// @param requestId The request.
    /// @return assets Stake-token units paid to the sender.
    function withdraw(uint256 requestId) external nonReentrant returns (uint256 assets) {
        Withdrawal memory w = _withdrawals[requestId];
        if (w.owner == address(0)) revert UnknownWithdrawal(requestId);
        if (w.owner != msg.sender) revert NotWithdrawalOwner(msg.sender, w.owner);
        // Day-scale delay: a validator's few seconds of timestamp drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < w.readyAt) revert WithdrawalNotReady(w.readyAt);

        Pool storage pool = _pools[w.operator];
        assets = _toAssets(pool, w.shares);
        pool.assets -= assets;
        pool.totalShares -= w.shares;
        pool.queuedShares -= w.shares;
        delete _withdrawals[requestId];
        emit Withdrawn(requestId, msg.sender, w.operator, w.shares, assets);

        if (assets != 0) _stakeToken.safeTransfer(msg.sender, assets);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Slashing and jailing
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IVouchStaking
    /// @dev `split.toPayer + split.toReporter` must not exceed `amount`, and a non-zero part needs a non-zero
    /// recipient. Capping scales both parts by `slashed / amount` (rounded down; the rounding is burned). Then both
    /// parts together are capped at half of the operator's own loss (`slashed × own assets / pool assets / 2`),
    /// scaled proportionally: a self-report by an operator that is also the payer never pays off. A pool
    /// without assets (or an address that never registered) is slashed by zero, with an event.
    function slash(address operator, uint256 amount, SlashSplit calldata split)
        external
        onlySlasher
        nonReentrant
        returns (uint256 slashed)
    {
        uint256 toPayer = split.toPayer;
        uint256 toReporter = split.toReporter;
        if (toPayer + toReporter > amount) revert SplitExceedsAmount(toPayer + toReporter, amount);
        if ((toPayer != 0 && split.payer == address(0)) || (toReporter != 0 && split.reporter == address(0))) {
            revert ZeroRecipient();
        }

        Pool storage pool = _pools[operator];
        uint256 assets = pool.assets;
        slashed = amount;
        if (amount > assets) {
            slashed = assets;
            toPayer = Math.mulDiv(toPayer, slashed, amount);
            toReporter = Math.mulDiv(toReporter, slashed, amount);
        }
        // Payer and reporter together receive at most half of what the operator's own stake loses, so an operator
        // (or its sybils as payer and reporter) can never profit from slashing itself at its delegators' expense.
        if (slashed != 0) {
            uint256 ownLoss = Math.mulDiv(slashed, _toAssets(pool, _delegations[operator][operator].shares), assets);
            uint256 payoutCap = ownLoss / SELF_SLASH_PAYOUT_DIVISOR;
            uint256 payout = toPayer + toReporter;
            if (payout > payoutCap) {
                toPayer = Math.mulDiv(toPayer, payoutCap, payout);
                toReporter = Math.mulDiv(toReporter, payoutCap, payout);
            }
        }
        uint256 burned = slashed - toPayer - toReporter;

        pool.assets = assets - slashed;
        if (toPayer != 0) slashedClaimable[split.payer] += toPayer;
        if (toReporter != 0) slashedClaimable[split.reporter] += toReporter;
        emit Slashed(operator, slashed, split.payer, toPayer, split.reporter, toReporter, burned);

        if (burned != 0) _stakeToken.safeTransfer(BURN_ADDRESS, burned);
    }

    /// @notice Pays the sender the slashed stake credited to it.
    /// @return amount Stake-token units paid.
    function claimSlashed() external nonReentrant returns (uint256 amount) {
        amount = slashedClaimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        slashedClaimable[msg.sender] = 0;
        emit SlashedClaimed(msg.sender, amount);
        _stakeToken.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IVouchStaking
    /// @dev Jail terms never shorten: the release time becomes the later of the current one and `until` (a past
    /// `until` leaves it unchanged). The operator must have registered (active or deregistered).
    function jail(address operator, uint64 until) external onlySlasher {
        Operator storage op = _operators[operator];
        if (op.status == OperatorStatus.None) revert UnknownOperator(operator);
        if (until > op.jailedUntil) op.jailedUntil = until;
        emit Jailed(operator, op.jailedUntil);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Rewards
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IVouchStaking
    /// @dev The operator must have registered (a deregistered operator's delegators still get rewards for work done).
    /// `amount == 0` is a no-op. Checks that this contract holds at least `rewardReserve + amount` payment tokens.
    /// The pool's dust is added, spread over the active shares in whole scaled units, and the remainder becomes the
    /// new dust. With no active shares, the amount and the dust are credited to the operator's own rewards.
    function distributeRewards(address operator, uint256 amount) external {
        if (msg.sender != protocol) revert NotProtocol(msg.sender);
        if (_operators[operator].status == OperatorStatus.None) revert UnknownOperator(operator);
        if (amount == 0) return;
        uint256 required = rewardReserve + amount;
        uint256 balance = _paymentToken.balanceOf(address(this));
        if (balance < required) revert RewardsNotFunded(balance, required);

        rewardReserve = required;
        Pool storage pool = _pools[operator];
        uint256 total = amount * REWARD_PRECISION + pool.rewardDustScaled;
        uint256 active = pool.totalShares - pool.queuedShares;
        uint256 acc = pool.accRewardPerShare;
        uint256 dust;
        if (active != 0) {
            uint256 increment = total / active;
            acc += increment;
            dust = total - increment * active;
            pool.accRewardPerShare = acc;
        } else {
            Delegation storage self = _delegations[operator][operator];
            _settle(pool, self);
            self.owedScaled += total;
        }
        pool.rewardDustScaled = dust;
        emit RewardsDistributed(operator, amount, active, acc, dust);
    }

    /// @notice Pays the sender its rewards (whole payment-token units) from `operator`'s pool; the sub-unit remainder
    /// stays owed.
    /// @param operator The pool.
    /// @return amount Payment-token units paid.
    function claimRewards(address operator) external nonReentrant returns (uint256 amount) {
        Pool storage pool = _pools[operator];
        Delegation storage d = _delegations[operator][msg.sender];
        _settle(pool, d);
        uint256 owed = d.owedScaled;
        amount = owed / REWARD_PRECISION;
        if (amount == 0) revert NothingToClaim();
        d.owedScaled = owed - amount * REWARD_PRECISION;
        rewardReserve -= amount;
        emit RewardsClaimed(operator, msg.sender, amount);
        _paymentToken.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IVouchStaking
    function stakeToken() external view returns (address) {
        return address(_stakeToken);
    }

    /// @inheritdoc IVouchStaking
    function paymentToken() external view returns (address) {
        return address(_paymentToken);
    }

    /// @inheritdoc IVouchStaking
    function isOperator(address operator) external view returns (bool) {
        return _operators[operator].status == OperatorStatus.Active;
    }

    /// @inheritdoc IVouchStaking
    function isJailed(address operator) external view returns (bool) {
        // Jail terms are long; a validator's few seconds of timestamp drift do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        return block.timestamp < _operators[operator].jailedUntil;
    }

    /// @inheritdoc IVouchStaking
    function slashableStake(address operator) external view returns (uint256) {
        return _pools[operator].assets;
    }

    /// @inheritdoc IVouchStaking
    /// @dev Value of the pool's active shares at the current price, rounded down.
    function activeStake(address operator) external view returns (uint256) {
        Pool storage pool = _pools[operator];
        return _toAssets(pool, pool.totalShares - pool.queuedShares);
    }

    /// @inheritdoc IVouchStaking
    function commissionBps(address operator) external view returns (uint16) {
        return _operators[operator].commissionBps;
    }

    /// @notice Whether `delegate(operator, …)` is open: the operator is active and its pool not depleted.
    /// @param operator The operator.
    /// @return True if delegations are accepted.
    function acceptsDelegations(address operator) external view returns (bool) {
        return _operators[operator].status == OperatorStatus.Active && !_isDepleted(_pools[operator]);
    }

    /// @notice The operator's record (status, commission and proposal, jail, endpoint).
    /// @param operator The operator.
    /// @return The record (all zero for an address that never registered).
    function operatorInfo(address operator) external view returns (Operator memory) {
        return _operators[operator];
    }

    /// @notice The operator's pool.
    /// @param operator The operator.
    /// @return The pool (all zero if none).
    function poolInfo(address operator) external view returns (Pool memory) {
        return _pools[operator];
    }

    /// @notice Active self-stake of `operator`: the value of its own active shares in its pool.
    /// @param operator The operator.
    /// @return Stake-token units, rounded down.
    function selfStake(address operator) external view returns (uint256) {
        Pool storage pool = _pools[operator];
        return _toAssets(pool, _delegations[operator][operator].shares);
    }

    /// @notice `account`'s delegation record in `operator`'s pool.
    /// @param operator The pool.
    /// @param account The delegator.
    /// @return The record (active shares, reward snapshot, settled scaled rewards).
    function delegation(address operator, address account) external view returns (Delegation memory) {
        return _delegations[operator][account];
    }

    /// @notice `account`'s active shares in `operator`'s pool.
    /// @param operator The pool.
    /// @param account The delegator.
    /// @return Active shares.
    function sharesOf(address operator, address account) external view returns (uint256) {
        return _delegations[operator][account].shares;
    }

    /// @notice Value of `account`'s active shares in `operator`'s pool at the current price.
    /// @param operator The pool.
    /// @param account The delegator.
    /// @return Stake-token units, rounded down.
    function delegatedStake(address operator, address account) external view returns (uint256) {
        Pool storage pool = _pools[operator];
        return _toAssets(pool, _delegations[operator][account].shares);
    }

    /// @notice Shares `assets` would buy in `operator`'s pool now (what `delegate` mints).
    /// @param operator The pool.
    /// @param assets Stake-token units.
    /// @return Shares, rounded down.
    function convertToShares(address operator, uint256 assets) external view returns (uint256) {
        return _toShares(_pools[operator], assets);
    }

    /// @notice Value of `shares` of `operator`'s pool now (what `withdraw` would pay for them).
    /// @param operator The pool.
    /// @param shares Shares.
    /// @return Stake-token units, rounded down.
    function convertToAssets(address operator, uint256 shares) external view returns (uint256) {
        return _toAssets(_pools[operator], shares);
    }

    /// @notice A withdrawal request.
    /// @param requestId The request.
    /// @return The request (owner zero if it does not exist or was withdrawn).
    function withdrawalRequest(uint256 requestId) external view returns (Withdrawal memory) {
        return _withdrawals[requestId];
    }

    /// @notice What `withdraw(requestId)` would pay now (zero for an unknown or withdrawn request).
    /// @param requestId The request.
    /// @return Stake-token units.
    function previewWithdraw(uint256 requestId) external view returns (uint256) {
        Withdrawal storage w = _withdrawals[requestId];
        if (w.owner == address(0)) return 0;
        return _toAssets(_pools[w.operator], w.shares);
    }

    /// @notice Every withdrawal request id `owner` created, in order (withdrawn ones included: check
    /// `withdrawalRequest`).
    /// @param owner The account.
    /// @return The ids.
    function withdrawalIds(address owner) external view returns (uint256[] memory) {
        return _withdrawalIds[owner];
    }

    /// @notice Rewards `account` could claim now from `operator`'s pool (whole payment-token units).
    /// @param operator The pool.
    /// @param account The delegator.
    /// @return Payment-token units.
    function pendingRewards(address operator, address account) external view returns (uint256) {
        return pendingRewardsScaled(operator, account) / REWARD_PRECISION;
    }

    /// @notice `account`'s unclaimed rewards in `operator`'s pool, × `REWARD_PRECISION` (settled plus accrued).
    /// @param operator The pool.
    /// @param account The delegator.
    /// @return Scaled payment-token units.
    function pendingRewardsScaled(address operator, address account) public view returns (uint256) {
        Delegation storage d = _delegations[operator][account];
        return d.owedScaled + d.shares * (_pools[operator].accRewardPerShare - d.rewardSnapshot);
    }

    /// @notice Rewards of `operator`'s pool not yet spread over shares (whole payment-token units, rounded down).
    /// @param operator The pool.
    /// @return Payment-token units.
    function rewardDust(address operator) external view returns (uint256) {
        return _pools[operator].rewardDustScaled / REWARD_PRECISION;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Mints shares of `operator`'s pool for `amount` to `account` and pulls `amount` from `account`.
    function _delegate(address operator, address account, uint256 amount) private returns (uint256 shares) {
        if (amount == 0) revert ZeroAmount();
        Pool storage pool = _pools[operator];
        if (_isDepleted(pool)) revert PoolDepleted(operator);
        shares = _toShares(pool, amount);
        if (shares == 0) revert ZeroShares();
        Delegation storage d = _delegations[operator][account];
        _settle(pool, d);
        d.shares += shares;
        pool.assets += amount;
        pool.totalShares += shares;
        emit Delegated(operator, account, amount, shares);
        _stakeToken.safeTransferFrom(account, address(this), amount);
    }

    /// @dev True once a share is worth less than 1 / MAX_SHARE_DILUTION of its initial 10^-DECIMALS_OFFSET assets:
    /// `(totalShares + VIRTUAL_SHARES) / (assets + VIRTUAL_ASSETS) > MAX_SHARE_DILUTION × VIRTUAL_SHARES`.
    function _isDepleted(Pool storage pool) private view returns (bool) {
        return pool.totalShares + VIRTUAL_SHARES > MAX_SHARE_DILUTION * VIRTUAL_SHARES * (pool.assets + VIRTUAL_ASSETS);
    }

    /// @dev Moves the rewards accrued by `d`'s active shares since its snapshot into `d.owedScaled`.
    function _settle(Pool storage pool, Delegation storage d) private {
        uint256 acc = pool.accRewardPerShare;
        uint256 snapshot = d.rewardSnapshot;
        if (acc == snapshot) return;
        uint256 shares = d.shares;
        if (shares != 0) d.owedScaled += shares * (acc - snapshot);
        d.rewardSnapshot = acc;
    }

    /// @dev `assets × (totalShares + VIRTUAL_SHARES) / (pool.assets + VIRTUAL_ASSETS)`, rounded down.
    function _toShares(Pool storage pool, uint256 assets) private view returns (uint256) {
        return Math.mulDiv(assets, pool.totalShares + VIRTUAL_SHARES, pool.assets + VIRTUAL_ASSETS);
    }

    /// @dev `shares × (pool.assets + VIRTUAL_ASSETS) / (totalShares + VIRTUAL_SHARES)`, rounded down.
    function _toAssets(Pool storage pool, uint256 shares) private view returns (uint256) {
        return Math.mulDiv(shares, pool.assets + VIRTUAL_ASSETS, pool.totalShares + VIRTUAL_SHARES);
    }

    /// @dev Reverts unless the endpoint is 1..MAX_ENDPOINT_LENGTH bytes.
    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 length = bytes(endpoint).length;
        if (length == 0 || length > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint(length);
    }
}
