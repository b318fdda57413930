// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchProtocolEvents} from "../../src/protocol/VouchProtocolEvents.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {VouchStaking} from "../../src/staking/VouchStaking.sol";
import {StakeToken} from "../../src/tokens/StakeToken.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {Vm} from "../utils/Test.sol";
import {SystemBase, SystemMath} from "./SystemBase.sol";

/// @title SystemHandler
/// @notice Random sequences of actions on the whole system, by a fixed cast: stakers delegate, unstake and withdraw;
/// payers open calls on-chain and with x402 authorizations; a keeper settles them (single and batch, with real
/// certificates of random signer subsets, sometimes below quorum) or refunds them after their deadline; a gateway pays
/// and settles x402 calls in one step with paid batches (`settlePaidBatch`), which anyone may resubmit and nobody may
/// refund; reporters report equivocations and missed deadlines (after the alibi window, which operators left out of a
/// certificate may use to show they signed); everyone claims. Every action predicts its outcome from the spec: an
/// expected refusal must revert with exactly the documented error, an expected success must move exactly the
/// documented amounts. Any mismatch reverts the handler, and the invariant contract runs with `fail-on-revert`.
/// @dev Ghost ledgers (what each account put in, was credited and took out) back the invariants.
contract SystemHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant BPS = 10_000;
    uint256 internal constant PRECISION = 1e36;
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;
    uint256 internal constant SLOTS = 3;
    uint256 internal constant MAX_BATCH = 8;

    /// @notice Who does what (slot order for `operators[0..2]` and `serviceKeys`).
    struct Cast {
        VouchUSD usd;
        StakeToken stk;
        VouchStaking staking;
        VouchProtocol protocol;
        VouchSlasher slasher;
        uint64 serviceId;
        address[] operators; // 0..2 run the service, 3 does not
        uint256[] serviceKeys; // BLS secret keys of slots 0..2
        address[] delegators;
        uint256[] payerKeys;
        address[] reporters;
        address keeper;
        address gateway;
        address developer;
        address treasury;
        // Stake deposited before the handler existed: depositors[i] put deposits[i] into pool depositPools[i].
        address[] depositors;
        address[] depositPools;
        uint256[] deposits;
    }

    /// @dev Balances a settlement changes, read before it.
    struct Before {
        uint256 developer;
        uint256 treasury;
        uint256[] commissions; // claimable of each service operator (slot order)
        uint256[] dustScaled; // rewardDustScaled of each service operator's pool
        uint256 reserve;
    }

    /// @dev An x402 paid batch as the gateway submits it, and what each entry must collect.
    struct PaidPlan {
        VouchProtocol.PaidResult[] entries;
        uint256[] prices; // job price each entry must collect; 0 = its authorization was already used (skipped)
        uint256 total; // Σ prices
        uint256 bitmap;
        bytes signature;
    }

    /// @dev A slash's expected amounts and the balances before it.
    struct SlashCheck {
        uint256 assets;
        uint256 amount;
        uint256 toPayer;
        uint256 toReporter;
        uint256 toBurn;
        uint256 payerBefore;
        uint256 reporterBefore;
        uint256 burnBefore;
    }

    VouchUSD internal immutable usd;
    StakeToken internal immutable stk;
    VouchStaking internal immutable staking;
    VouchProtocol internal immutable protocol;
    VouchSlasher internal immutable slasher;
    uint64 internal immutable service;
    address internal immutable keeper;
    address internal immutable gateway;
    address internal immutable developer;
    address internal immutable treasury;
    uint256 internal immutable minSelfStake;

    address[] public operators;
    uint256[] internal serviceKeys;
    /// @notice Accounts that stake (the four operators and the delegators).
    address[] public stakers;
    address[] public payers;
    uint256[] internal payerKeys;
    address[] public reporters;
    /// @notice Every account that can hold a balance anywhere.
    address[] public accounts;

    // ---- calls ----
    /// @notice Every call opened, and its status as the handler saw it change.
    uint256[] public callIds;
    mapping(uint256 callId => IVouchProtocol.CallStatus) public ghostStatus;
    mapping(uint256 callId => bytes32) public ghostResult;
    mapping(uint256 callId => uint256) public ghostBitmap;
    /// @notice Pending withdrawal requests.
    uint256[] public openRequests;

    // ---- ghost ledgers ----
    /// @notice vUSD each account paid into calls.
    mapping(address => uint256) public usdPaid;
    /// @notice vUSD the protocol should have credited to each account (refunds + fees + commissions), per the spec.
    mapping(address => uint256) public protocolCredit;
    /// @notice Of `protocolCredit`, refunds.
    mapping(address => uint256) public refundCredit;
    /// @notice vUSD each account claimed from the protocol.
    mapping(address => uint256) public protocolClaimed;
    /// @notice Upper bound of the rewards each account earned (its pro-rata part of each distribution, rounded up).
    mapping(address => uint256) public rewardBound;
    /// @notice vUSD each account claimed from staking.
    mapping(address => uint256) public rewardsClaimed;
    /// @notice Stake each account delegated, in total and per pool.
    mapping(address => uint256) public stakeIn;
    mapping(address pool => mapping(address => uint256)) public poolIn;
    /// @notice Stake each account withdrew, in total and per pool.
    mapping(address => uint256) public stakeOut;
    mapping(address pool => mapping(address => uint256)) public poolOut;
    /// @notice Slashed stake that should have been credited to / was claimed by each account.
    mapping(address => uint256) public slashCredit;
    mapping(address => uint256) public slashClaimed;
    /// @notice Stake sent to 0x…dEaD.
    uint256 public burned;

    // ---- fault bookkeeping ----
    mapping(address => mapping(uint256 => bool)) internal equivocationReported;
    mapping(address => mapping(uint256 => bool)) internal missReported;
    /// @notice Alibis presented: `(operator, call)` can never be reported for a miss.
    mapping(address => mapping(uint256 => bool)) public alibiShown;
    /// @notice Misses per (operator, blueprint) since the last jailing for them, and in total (`missesOf`).
    mapping(address => mapping(uint64 => uint32)) public missesSinceJail;
    mapping(address => mapping(uint64 => uint32)) public missesTotal;
    /// @notice End of the last jailing for misses per (operator, blueprint) (0 = never).
    mapping(address => mapping(uint64 => uint64)) public missJailedUntil;
    /// @notice The fixture service's blueprint (the one whose misses and dispute window count here).
    uint64 public immutable blueprint;
    /// @notice Its dispute window: the alibi window after a settlement, or after a refunded call's deadline.
    uint256 internal immutable disputeWindow;

    /// @notice Successful actions by name (to see that a run does something).
    mapping(bytes32 => uint256) public done;

    uint256 internal inputNonce;

    // ---- x402 paid batches (`settlePaidBatch`: nothing is stored per call) ----
    /// @notice Call id of every entry a paid batch collected. None may ever have a call record.
    uint256[] public paidIds;
    /// @dev Where a collected entry was first submitted: index in `paidSubmissions` << 32 | index in its batch.
    mapping(uint256 callId => uint256) internal paidWhere;
    /// @dev Every paid batch that settled on its first submission: `abi.encode(entries, signerBitmap, signature)`.
    bytes[] internal paidSubmissions;
    /// @dev The record each paid batch id must have (`getPaidBatch`), as predicted when it settled.
    mapping(uint256 batchId => IVouchProtocol.PaidBatch) internal ghostPaidBatch;
    /// @notice Successful `settlePaidBatch` transactions (each collected at least one entry).
    uint256 public freshPaidBatches;
    /// @notice Σ job prices of the entries paid batches collected (the spec's amounts).
    uint256 public paidBatchPrices;
    /// @notice Σ vUSD the protocol and staking received during paid batches (measured).
    uint256 public paidBatchReceived;
    /// @notice Of `usdPaid`, what each payer paid through paid batches (Σ its collected entries' prices).
    mapping(address => uint256) public paidBatchPaid;
    /// @notice vUSD each account held when the handler was built.
    mapping(address => uint256) public usdInitial;

    constructor(Cast memory cast) {
        usd = cast.usd;
        stk = cast.stk;
        staking = cast.staking;
        protocol = cast.protocol;
        slasher = cast.slasher;
        service = cast.serviceId;
        keeper = cast.keeper;
        gateway = cast.gateway;
        developer = cast.developer;
        treasury = cast.treasury;
        minSelfStake = cast.staking.minSelfStake();
        blueprint = cast.protocol.getService(cast.serviceId).blueprintId;
        disputeWindow = cast.protocol.getBlueprint(blueprint).policy.disputeWindow;
        operators = cast.operators;
        serviceKeys = cast.serviceKeys;
        reporters = cast.reporters;
        payerKeys = cast.payerKeys;
        for (uint256 i; i < cast.operators.length; ++i) {
            stakers.push(cast.operators[i]);
            accounts.push(cast.operators[i]);
        }
        for (uint256 i; i < cast.delegators.length; ++i) {
            stakers.push(cast.delegators[i]);
            accounts.push(cast.delegators[i]);
        }
        for (uint256 i; i < cast.payerKeys.length; ++i) {
            payers.push(vm.addr(cast.payerKeys[i]));
            accounts.push(vm.addr(cast.payerKeys[i]));
        }
        for (uint256 i; i < cast.reporters.length; ++i) {
            accounts.push(cast.reporters[i]);
        }
        accounts.push(cast.keeper);
        accounts.push(cast.gateway);
        accounts.push(cast.developer);
        accounts.push(cast.treasury);
        for (uint256 i; i < cast.depositors.length; ++i) {
            stakeIn[cast.depositors[i]] += cast.deposits[i];
            poolIn[cast.depositPools[i]][cast.depositors[i]] += cast.deposits[i];
        }
        for (uint256 i; i < accounts.length; ++i) {
            usdInitial[accounts[i]] = cast.usd.balanceOf(accounts[i]);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Staking actions
    // ------------------------------------------------------------------------------------------------------------

    /// @notice A staker delegates to (or an operator tops up) a pool that accepts delegations.
    function delegate(uint256 stakerSeed, uint256 poolSeed, uint256 amount) external {
        address account = stakers[stakerSeed % stakers.length];
        address pool = operators[poolSeed % operators.length];
        if (!staking.acceptsDelegations(pool)) return;
        amount = _bound(amount, 1e18, 5000e18);
        uint256 expected = staking.convertToShares(pool, amount);
        uint256 before = staking.sharesOf(pool, account);
        vm.prank(account);
        uint256 shares = staking.delegate(pool, amount);
        _require(shares == expected && staking.sharesOf(pool, account) == before + shares, "delegate: shares");
        stakeIn[account] += amount;
        poolIn[pool][account] += amount;
        ++done["delegate"];
    }

    /// @notice A staker queues part of its active shares; an active operator may not go below the self-stake floor.
    function requestUnstake(uint256 pairSeed, uint256 shares) external {
        (address account, address pool, bool found) = _findShares(pairSeed);
        if (!found) return;
        uint256 available = staking.sharesOf(pool, account);
        bool floor = account == pool && staking.isOperator(pool);
        // Operators usually ask for a little (so some requests pass the floor), delegators for anything.
        shares = floor && shares % 2 == 0 ? _bound(shares, 1, available / 10 + 1) : _bound(shares, 1, available);
        uint256 remaining = staking.convertToAssets(pool, available - shares);
        (bool ok, bytes memory ret) =
            _as(account, address(staking), abi.encodeCall(VouchStaking.requestUnstake, (pool, shares)));
        if (floor && remaining < minSelfStake) {
            _requireRevert(
                ok,
                ret,
                abi.encodeWithSelector(VouchStaking.SelfStakeBelowMinimum.selector, remaining, minSelfStake),
                "requestUnstake: floor"
            );
            return;
        }
        _require(ok, "requestUnstake refused");
        openRequests.push(abi.decode(ret, (uint256)));
        _require(staking.sharesOf(pool, account) == available - shares, "requestUnstake: shares");
        ++done["requestUnstake"];
    }

    /// @notice The owner of a pending request withdraws it: when it is ready; or too early (refused); or, one time
    /// in five, after warping to its `readyAt` (a week: open calls expire).
    function withdraw(uint256 index, uint256 wait) external {
        if (openRequests.length == 0) return;
        index %= openRequests.length;
        uint256 id = openRequests[index];
        VouchStaking.Withdrawal memory w = staking.withdrawalRequest(id);
        if (block.timestamp < w.readyAt) {
            if (wait % 5 == 0) {
                (bool early, bytes memory reason) =
                    _as(w.owner, address(staking), abi.encodeCall(VouchStaking.withdraw, (id)));
                _requireRevert(
                    early,
                    reason,
                    abi.encodeWithSelector(VouchStaking.WithdrawalNotReady.selector, w.readyAt),
                    "withdraw: early"
                );
                return;
            }
            if (wait % 5 != 1) return;
            vm.warp(uint256(w.readyAt) + _bound(wait, 0, 1 days));
        }
        uint256 preview = staking.previewWithdraw(id);
        uint256 balance = stk.balanceOf(w.owner);
        vm.prank(w.owner);
        uint256 paid = staking.withdraw(id);
        _require(paid == preview && stk.balanceOf(w.owner) - balance == paid, "withdraw: amount");
        stakeOut[w.owner] += paid;
        poolOut[w.operator][w.owner] += paid;
        openRequests[index] = openRequests[openRequests.length - 1];
        openRequests.pop();
        ++done["withdraw"];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Calls
    // ------------------------------------------------------------------------------------------------------------

    /// @notice A payer opens a call on-chain (`transferFrom`).
    function callJob(uint256 payerSeed, bool job1) external {
        address from = payers[payerSeed % payers.length];
        uint8 job = job1 ? 1 : 0;
        uint256 accounted = protocol.accounted();
        uint256 balance = usd.balanceOf(from);
        uint64 count = protocol.callCount();
        vm.prank(from);
        uint256 id = protocol.callJob(service, job, abi.encode("inputs", inputNonce++));
        _require(id == uint256(count) + 1 && protocol.callCount() == id, "callJob: next counter id");
        _opened(id, from, job, accounted, balance);
        ++done["callJob"];
    }

    /// @notice A payer signs an x402 authorization; the gateway opens the call with it.
    function openPaidCall(uint256 payerSeed, bool job1) external {
        uint256 p = payerSeed % payers.length;
        uint8 job = job1 ? 1 : 0;
        VouchProtocol.PaidCall memory call = _authorization(p, job);
        uint256 accounted = protocol.accounted();
        uint256 balance = usd.balanceOf(call.from);
        uint64 count = protocol.callCount();
        vm.prank(gateway);
        uint256 id = protocol.openPaidCall(call);
        _require(
            id == _paidId(job, call.from, call.nonce) && protocol.paidCallId(service, job, call.from, call.nonce) == id,
            "openPaidCall: id derived from (serviceId, jobIndex, from, nonce)"
        );
        _require(protocol.callCount() == count, "openPaidCall: no counter id");
        _opened(id, call.from, job, accounted, balance);
        ++done["openPaidCall"];
    }

    /// @notice The keeper settles one call with a certificate of a random signer subset. Refusals (final call, late,
    /// too few signers, no quorum) must revert with exactly their documented error and change nothing.
    function settle(uint256 callSeed, uint256 bitmapSeed) external {
        if (callIds.length == 0) return;
        uint256 id = callSeed % 4 == 0 ? _pickCall(callSeed, false) : _pickSettleable(callSeed);
        uint256 bitmap = _signers(bitmapSeed);
        IVouchProtocol.Call memory c = protocol.getCall(id);
        bytes32 result = keccak256(abi.encode("result", id));
        bytes memory sig = BlsSigner.signBitmap(
            serviceKeys,
            bitmap,
            VouchDigest.resultDigest(block.chainid, address(protocol), service, id, c.inputsHash, result)
        );
        bytes memory refusal = _settleRefusal(id, c, bitmap);
        if (refusal.length != 0) {
            (bool ok, bytes memory ret) =
                _as(keeper, address(protocol), abi.encodeCall(VouchProtocol.settle, (id, result, bitmap, sig)));
            _requireRevert(ok, ret, refusal, "settle: refusal");
            _require(protocol.getCall(id).status == c.status, "settle: refused but changed");
            ++done["settleRefused"];
            return;
        }
        Before memory before = _before();
        vm.prank(keeper);
        protocol.settle(id, result, bitmap, sig);
        _credited(_split(c.payment, bitmap), bitmap, before);
        _settled(id, result, bitmap);
        ++done["settle"];
    }

    /// @notice The keeper settles up to `MAX_BATCH` open, on-time calls under one aggregate; sometimes a final call
    /// is appended, and the whole batch must then revert `CallNotOpen` for it.
    function settleBatch(uint256 bitmapSeed, uint256 sizeSeed) external {
        uint256[] memory ids = _batchable(_bound(sizeSeed, 1, MAX_BATCH));
        uint256 n = ids.length;
        if (n == 0) return;
        uint256 stale;
        if (bitmapSeed % 5 == 0) {
            stale = _pickCall(bitmapSeed / 5, false);
            if (ghostStatus[stale] == IVouchProtocol.CallStatus.Open) stale = 0;
        }
        uint256[] memory batch = new uint256[](stale == 0 ? n : n + 1);
        for (uint256 i; i < n; ++i) {
            batch[i] = ids[i];
        }
        if (stale != 0) batch[n] = stale;
        uint256 bitmap = _signers(bitmapSeed >> 8);
        (bytes32[] memory results, bytes memory sig) = _batchCertificate(batch, bitmap);

        bytes memory refusal = _quorumRefusal(bitmap);
        if (refusal.length == 0 && stale != 0) {
            refusal = abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, stale, ghostStatus[stale]);
        }
        if (refusal.length != 0) {
            (bool ok, bytes memory ret) = _as(
                keeper,
                address(protocol),
                abi.encodeCall(VouchProtocol.settleBatch, (service, batch, results, bitmap, sig))
            );
            _requireRevert(ok, ret, refusal, "settleBatch: refusal");
            for (uint256 i; i < n; ++i) {
                _require(protocol.getCall(ids[i]).status == IVouchProtocol.CallStatus.Open, "settleBatch: partial");
            }
            ++done["settleBatchRefused"];
            return;
        }
        SystemMath.Split memory e = _split(protocol.getCall(batch[0]).payment, bitmap);
        for (uint256 i = 1; i < n; ++i) {
            SystemMath.add(e, _split(protocol.getCall(batch[i]).payment, bitmap));
        }
        Before memory before = _before();
        vm.prank(keeper);
        protocol.settleBatch(service, batch, results, bitmap, sig);
        _credited(e, bitmap, before);
        for (uint256 i; i < n; ++i) {
            _settled(batch[i], results[i], bitmap);
        }
        ++done["settleBatch"];
    }

    /// @notice Anyone refunds a call: an open call after its deadline (warping past it), else the documented refusal.
    function refund(uint256 callSeed, uint256 wait) external {
        if (callIds.length == 0) return;
        uint256 id = _pickCall(callSeed, callSeed % 4 != 0);
        IVouchProtocol.Call memory c = protocol.getCall(id);
        if (ghostStatus[id] != IVouchProtocol.CallStatus.Open) {
            (bool ok, bytes memory ret) = _as(keeper, address(protocol), abi.encodeCall(VouchProtocol.refund, (id)));
            _requireRevert(
                ok,
                ret,
                abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, id, ghostStatus[id]),
                "refund: final"
            );
            ++done["refundRefused"];
            return;
        }
        if (block.timestamp <= c.deadline) {
            if (wait % 4 == 0) {
                (bool ok, bytes memory ret) = _as(keeper, address(protocol), abi.encodeCall(VouchProtocol.refund, (id)));
                _requireRevert(
                    ok,
                    ret,
                    abi.encodeWithSelector(VouchProtocolEvents.DeadlineNotPassed.selector, id, c.deadline),
                    "refund: early"
                );
                ++done["refundRefused"];
                return;
            }
            vm.warp(uint256(c.deadline) + 1 + _bound(wait, 0, 1 hours));
        }
        uint256 before = protocol.claimable(c.payer);
        vm.prank(keeper);
        protocol.refund(id);
        _require(protocol.claimable(c.payer) - before == c.payment, "refund: amount");
        protocolCredit[c.payer] += c.payment;
        refundCredit[c.payer] += c.payment;
        ghostStatus[id] = IVouchProtocol.CallStatus.Refunded;
        ++done["refund"];
    }

    // ------------------------------------------------------------------------------------------------------------
    // x402 paid batches
    // ------------------------------------------------------------------------------------------------------------

    /// @notice The gateway pays and settles 1..`MAX_BATCH` fresh x402 authorizations of random payers for random jobs
    /// with one certificate of a random signer subset (`settlePaidBatch`); one time in four an entry of an earlier
    /// paid batch (its authorization already used) is slipped in and must be skipped. Below quorum the batch must
    /// revert with exactly the documented error and collect nothing. Otherwise each payer must lose exactly its
    /// entries' prices and `accounted`, every claimable and every reward balance must move exactly as the entries'
    /// splits (one per collected entry, summed) say; nothing is stored per call.
    function settlePaidBatch(uint256 payerSeed, uint256 sizeSeed, uint256 bitmapSeed, uint256 staleSeed) external {
        PaidPlan memory plan = _planPaidBatch(payerSeed, _bound(sizeSeed, 1, MAX_BATCH), staleSeed);
        plan.bitmap = _signers(bitmapSeed);
        plan.signature = BlsSigner.signBitmap(serviceKeys, plan.bitmap, _paidBatchDigest(plan.entries));
        uint256 count = protocol.paidBatchCount();
        bytes memory refusal = _quorumRefusal(plan.bitmap);
        if (refusal.length != 0) {
            bytes32 balances = _balancesDigest();
            (bool ok, bytes memory ret) = _as(
                gateway,
                address(protocol),
                abi.encodeCall(VouchProtocol.settlePaidBatch, (service, plan.entries, plan.bitmap, plan.signature))
            );
            _requireRevert(ok, ret, refusal, "settlePaidBatch: refusal");
            _require(protocol.paidBatchCount() == count, "settlePaidBatch: refused but counted");
            _require(_balancesDigest() == balances, "settlePaidBatch: refused but a balance changed");
            for (uint256 i; i < plan.entries.length; ++i) {
                if (plan.prices[i] == 0) continue;
                _require(
                    !usd.authorizationState(plan.entries[i].from, plan.entries[i].nonce),
                    "settlePaidBatch: refused but an authorization was used"
                );
            }
            ++done["settlePaidBatchRefused"];
            return;
        }
        _settlePaidBatch(plan, count);
        ++done["settlePaidBatch"];
    }

    /// @notice Anyone resubmits a paid batch that settled, with the same entries and certificate. Every entry's
    /// authorization is used, so there is nothing to collect: it must revert `NothingToCollect(count)` (or, if the
    /// signers lost the quorum since, the quorum refusal, which `settlePaidBatch` checks first), record no batch, take
    /// no batch id and change no balance at all.
    function resubmitPaidBatch(uint256 batchSeed, uint256 submitterSeed) external {
        if (paidSubmissions.length == 0) return;
        (VouchProtocol.PaidResult[] memory es, uint256 bitmap, bytes memory sig) = abi.decode(
            paidSubmissions[batchSeed % paidSubmissions.length], (VouchProtocol.PaidResult[], uint256, bytes)
        );
        uint256 count = protocol.paidBatchCount();
        bytes memory refusal = _quorumRefusal(bitmap);
        bool quorumLost = refusal.length != 0;
        if (!quorumLost) refusal = abi.encodeWithSelector(VouchProtocolEvents.NothingToCollect.selector, es.length);
        bytes32 balances = _balancesDigest();
        (bool ok, bytes memory ret) = _as(
            accounts[submitterSeed % accounts.length],
            address(protocol),
            abi.encodeCall(VouchProtocol.settlePaidBatch, (service, es, bitmap, sig))
        );
        _requireRevert(ok, ret, refusal, "resubmitPaidBatch: refusal");
        _require(_balancesDigest() == balances, "resubmitPaidBatch: a balance changed");
        _require(protocol.paidBatchCount() == count, "resubmitPaidBatch: a batch id was taken");
        _require(protocol.getPaidBatch(count + 1).count == 0, "resubmitPaidBatch: a batch was recorded");
        if (quorumLost) {
            ++done["resubmitPaidBatchRefused"];
            return;
        }
        ++done["resubmitNothingToCollect"];
    }

    /// @notice Someone tries to refund the call of a collected paid-batch entry (`refund` or `refundBatch`), to
    /// settle it with a valid certificate, or to open it again with its authorization. There is no call record:
    /// the first three must revert `CallNotOpen(id, None)`, the last `AuthorizationAlreadyUsed(from, nonce)`; no
    /// balance changes and the call stays without a record.
    function refundPaidCall(uint256 idSeed, uint256 how) external {
        if (paidIds.length == 0) return;
        uint256 id = paidIds[idSeed % paidIds.length];
        uint256 where = paidWhere[id];
        (VouchProtocol.PaidResult[] memory es,,) =
            abi.decode(paidSubmissions[where >> 32], (VouchProtocol.PaidResult[], uint256, bytes));
        VouchProtocol.PaidResult memory e = es[where & type(uint32).max];
        _require(_paidId(e.jobIndex, e.from, e.nonce) == id, "refundPaidCall: entry");
        bytes memory expected =
            abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, id, IVouchProtocol.CallStatus.None);
        bytes memory data;
        uint256 mode = how % 4;
        if (mode == 0) {
            data = abi.encodeCall(VouchProtocol.refund, (id));
        } else if (mode == 1) {
            uint256[] memory ids = new uint256[](1);
            ids[0] = id;
            data = abi.encodeCall(VouchProtocol.refundBatch, (ids));
        } else if (mode == 2) {
            bytes memory sig = BlsSigner.signBitmap(
                serviceKeys,
                0x7,
                VouchDigest.resultDigest(block.chainid, address(protocol), service, id, e.inputsHash, e.resultHash)
            );
            data = abi.encodeCall(VouchProtocol.settle, (id, e.resultHash, 0x7, sig));
        } else {
            data = abi.encodeCall(VouchProtocol.openPaidCall, (_asPaidCall(e)));
            expected = abi.encodeWithSelector(VouchProtocolEvents.AuthorizationAlreadyUsed.selector, e.from, e.nonce);
        }
        bytes32 balances = _balancesDigest();
        (bool ok, bytes memory ret) = _as(keeper, address(protocol), data);
        _requireRevert(ok, ret, expected, "refundPaidCall: refusal");
        _require(_balancesDigest() == balances, "refundPaidCall: a balance changed");
        _require(protocol.getCall(id).status == IVouchProtocol.CallStatus.None, "refundPaidCall: call record");
        ++done["refundPaidCallRefused"];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Faults
    // ------------------------------------------------------------------------------------------------------------

    /// @notice A service operator signs two different results for a call (any status); a reporter proves it.
    function reportEquivocation(uint256 callSeed, uint256 slotSeed, uint256 reporterSeed) external {
        if (callIds.length == 0) return;
        uint256 id = callIds[callSeed % callIds.length];
        uint256 slot = slotSeed % SLOTS;
        address op = operators[slot];
        address rep = reporters[reporterSeed % reporters.length];
        IVouchProtocol.Call memory c = protocol.getCall(id);
        VouchSlasher.SignedResult memory a = _signed(slot, id, c.inputsHash, keccak256(abi.encode("result", id)));
        VouchSlasher.SignedResult memory b = _signed(slot, id, c.inputsHash, keccak256(abi.encode("equivocal", id)));
        bytes memory data = abi.encodeCall(VouchSlasher.reportEquivocation, (service, id, op, slot, a, b));
        if (equivocationReported[op][id]) {
            (bool ok, bytes memory ret) = _as(rep, address(slasher), data);
            _requireRevert(
                ok,
                ret,
                abi.encodeWithSelector(VouchSlasher.AlreadyReported.selector, op, id, VouchSlasher.Fault.Equivocation),
                "equivocation: twice"
            );
            return;
        }
        equivocationReported[op][id] = true;
        _slashed(op, rep, c.payer, 5000, data);
        ++done["equivocation"];
    }

    /// @notice A reporter reports a service operator for a call it did not sign in time (refunded, or settled without
    /// its bit): usually a final `callJob` call, one time in eight any call (open, or an `openPaidCall` one), one time
    /// in eight a paid-batch call. Refusals must be exactly the documented ones, in the order the slasher checks them:
    /// an x402 call (`openPaidCall` or paid batch: id ≥ 2^64) `MissNotProvable`; an open call `CallNotFinal`; a second
    /// report `AlreadyReported`; an operator that presented an alibi `OperatorHasAlibi`; a signer `OperatorSigned`;
    /// then, until the alibi window (the blueprint's dispute window after the settlement, or after a refunded call's
    /// deadline) is over, `AlibiWindowOpen(id, alibiUntil)`: the reporter tries inside the window (one time in three
    /// at its very last second), then usually waits it out and reports. The third miss in the blueprint since the last
    /// jailing for them jails (`missesOf(operator, blueprint)`).
    function reportMissedDeadline(uint256 callSeed, uint256 slotSeed, uint256 reporterSeed, uint256 wait) external {
        uint256 id;
        if (paidIds.length != 0 && (callIds.length == 0 || callSeed % 8 == 7)) {
            id = paidIds[(callSeed >> 3) % paidIds.length];
        } else if (callIds.length != 0) {
            id = callSeed % 8 == 6 ? callIds[(callSeed >> 3) % callIds.length] : _pickFinalCounter(callSeed >> 3);
        } else {
            return;
        }
        uint256 slot = slotSeed % SLOTS;
        address op = operators[slot];
        address rep = reporters[reporterSeed % reporters.length];
        IVouchProtocol.Call memory c = protocol.getCall(id);
        bytes memory data = abi.encodeCall(VouchSlasher.reportMissedDeadline, (id, op, slot));
        bytes memory refusal = _missRefusal(id, slot, c);
        if (refusal.length != 0) {
            (bool ok, bytes memory ret) = _as(rep, address(slasher), data);
            _requireRevert(ok, ret, refusal, "missed deadline: refusal");
            bytes4 selector = bytes4(refusal);
            if (selector == VouchSlasher.MissNotProvable.selector) ++done["missNotProvable"];
            else if (selector == VouchSlasher.OperatorHasAlibi.selector) ++done["missHasAlibi"];
            else ++done["missRefused"];
            return;
        }
        uint256 alibiUntil =
            uint256(c.status == IVouchProtocol.CallStatus.Settled ? c.settledAt : c.deadline) + disputeWindow;
        if (block.timestamp <= alibiUntil) {
            if (wait % 3 == 0) vm.warp(alibiUntil); // the window's last second
            (bool early, bytes memory reason) = _as(rep, address(slasher), data);
            _requireRevert(
                early,
                reason,
                abi.encodeWithSelector(VouchSlasher.AlibiWindowOpen.selector, id, alibiUntil),
                "missed deadline: alibi window"
            );
            _require(!slasher.isReported(op, id, VouchSlasher.Fault.MissedDeadline), "missed deadline: early report");
            ++done["missAlibiWindowOpen"];
            if ((wait >> 8) % 4 == 0) return; // the reporter comes back later
            vm.warp(alibiUntil + 1 + _bound(wait >> 16, 0, 1 hours));
        }
        missReported[op][id] = true;
        uint32 total = ++missesTotal[op][blueprint];
        bool jailNow = ++missesSinceJail[op][blueprint] >= 3;
        if (jailNow) {
            missesSinceJail[op][blueprint] = 0;
            missJailedUntil[op][blueprint] = uint64(block.timestamp) + 30 days;
        }
        _slashed(op, rep, c.payer, 100, data);
        VouchSlasher.MissRecord memory record = slasher.missesOf(op, blueprint);
        _require(record.sinceJail == missesSinceJail[op][blueprint], "missed deadline: counter");
        _require(record.total == total, "missed deadline: total");
        _require(record.jailedUntil == missJailedUntil[op][blueprint], "missed deadline: jailed until");
        _require(slasher.isReported(op, id, VouchSlasher.Fault.MissedDeadline), "missed deadline: not recorded");
        if (jailNow) {
            _require(staking.isJailed(op), "missed deadline: not jailed");
            _require(staking.operatorInfo(op).jailedUntil >= block.timestamp + 30 days, "missed deadline: term");
        }
        ++done["missedDeadline"];
    }

    /// @notice Someone presents the alibi of a service operator for a call: the operator's own signature on the call's
    /// inputs and, for a settled call, on the certified result (for an open or refunded call, a result of its own).
    /// It must be accepted unless the miss was already reported (`AlreadyReported`); presenting it again is a no-op.
    /// Afterwards the operator can never be reported for missing the call. One time in four, for a settled call, the
    /// signature is on another result: refused `AlibiResultMismatch` (unless an alibi was already shown: a no-op).
    function presentAlibi(uint256 callSeed, uint256 slotSeed, uint256 presenterSeed) external {
        if (callIds.length == 0) return;
        uint256 id = callIds[callSeed % callIds.length];
        uint256 slot = slotSeed % SLOTS;
        address op = operators[slot];
        IVouchProtocol.Call memory c = protocol.getCall(id);
        bool settled = c.status == IVouchProtocol.CallStatus.Settled;
        bool wrong = settled && presenterSeed % 4 == 3;
        bytes32 result = settled && !wrong ? c.resultHash : keccak256(abi.encode("alibi result", id));
        VouchSlasher.SignedResult memory signedResult = _signed(slot, id, c.inputsHash, result);
        bytes memory data = abi.encodeCall(VouchSlasher.presentAlibi, (id, op, slot, signedResult));
        (bool ok, bytes memory ret) = _as(accounts[(presenterSeed >> 2) % accounts.length], address(slasher), data);
        if (wrong && !alibiShown[op][id] && !missReported[op][id]) {
            _requireRevert(
                ok,
                ret,
                abi.encodeWithSelector(VouchSlasher.AlibiResultMismatch.selector, id, c.resultHash, result),
                "alibi: another result"
            );
            _require(!slasher.hasAlibi(op, id), "alibi: recorded for another result");
            ++done["alibiRefused"];
            return;
        }
        if (missReported[op][id] && !alibiShown[op][id]) {
            _requireRevert(
                ok,
                ret,
                abi.encodeWithSelector(
                    VouchSlasher.AlreadyReported.selector, op, id, VouchSlasher.Fault.MissedDeadline
                ),
                "alibi: after the report"
            );
            ++done["alibiRefused"];
            return;
        }
        _require(ok, "alibi refused");
        _require(slasher.hasAlibi(op, id), "alibi: not recorded");
        alibiShown[op][id] = true;
        ++done["alibi"];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Claims and time
    // ------------------------------------------------------------------------------------------------------------

    /// @notice An account with a protocol balance claims it.
    function claim(uint256 accountSeed) external {
        address account;
        for (uint256 k; k < accounts.length; ++k) {
            address candidate = accounts[(accountSeed % accounts.length + k) % accounts.length];
            if (protocol.claimable(candidate) != 0) {
                account = candidate;
                break;
            }
        }
        if (account == address(0)) return;
        uint256 owed = protocol.claimable(account);
        uint256 balance = usd.balanceOf(account);
        vm.prank(account);
        uint256 paid = protocol.claim();
        _require(paid == owed && usd.balanceOf(account) - balance == paid, "claim: amount");
        protocolClaimed[account] += paid;
        ++done["claim"];
    }

    /// @notice An account with pending rewards in a pool claims them.
    function claimRewards(uint256 pairSeed) external {
        uint256 pairs = accounts.length * operators.length;
        for (uint256 k; k < pairs; ++k) {
            uint256 p = (pairSeed % pairs + k) % pairs;
            address account = accounts[p / operators.length];
            address pool = operators[p % operators.length];
            uint256 pending = staking.pendingRewards(pool, account);
            if (pending == 0) continue;
            uint256 balance = usd.balanceOf(account);
            vm.prank(account);
            uint256 paid = staking.claimRewards(pool);
            _require(paid == pending && usd.balanceOf(account) - balance == paid, "claimRewards: amount");
            rewardsClaimed[account] += paid;
            ++done["claimRewards"];
            return;
        }
    }

    /// @notice An account with slashed stake credited claims it.
    function claimSlashed(uint256 accountSeed) external {
        for (uint256 k; k < accounts.length; ++k) {
            address account = accounts[(accountSeed % accounts.length + k) % accounts.length];
            uint256 owed = staking.slashedClaimable(account);
            if (owed == 0) continue;
            uint256 balance = stk.balanceOf(account);
            vm.prank(account);
            uint256 paid = staking.claimSlashed();
            _require(paid == owed && stk.balanceOf(account) - balance == paid, "claimSlashed: amount");
            slashClaimed[account] += paid;
            stakeOut[account] += paid;
            ++done["claimSlashed"];
            return;
        }
    }

    /// @notice Time passes (up to two hours: calls expire, the unbonding queue advances).
    function warp(uint256 secondsForward) external {
        vm.warp(block.timestamp + _bound(secondsForward, 0, 2 hours));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views for the invariants
    // ------------------------------------------------------------------------------------------------------------

    function callCount() external view returns (uint256) {
        return callIds.length;
    }

    function accountCount() external view returns (uint256) {
        return accounts.length;
    }

    function operatorCount() external view returns (uint256) {
        return operators.length;
    }

    function openRequestCount() external view returns (uint256) {
        return openRequests.length;
    }

    function paidIdCount() external view returns (uint256) {
        return paidIds.length;
    }

    function payerCount() external view returns (uint256) {
        return payers.length;
    }

    /// @notice The record paid batch `batchId` must have.
    function paidBatchRecord(uint256 batchId) external view returns (IVouchProtocol.PaidBatch memory) {
        return ghostPaidBatch[batchId];
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Records an opened call after checking its escrow and the payer's debit.
    function _opened(uint256 id, address from, uint8 job, uint256 accountedBefore, uint256 balanceBefore) private {
        uint256 price = job == 0 ? 1_000_000 : 333_333;
        IVouchProtocol.Call memory c = protocol.getCall(id);
        _require(c.status == IVouchProtocol.CallStatus.Open && c.payer == from && c.payment == price, "open: call");
        _require(protocol.accounted() == accountedBefore + price, "open: escrow");
        _require(balanceBefore - usd.balanceOf(from) == price, "open: debit");
        _require(ghostStatus[id] == IVouchProtocol.CallStatus.None, "open: id reused");
        callIds.push(id);
        ghostStatus[id] = IVouchProtocol.CallStatus.Open;
        usdPaid[from] += price;
    }

    /// @dev Records a settled call.
    function _settled(uint256 id, bytes32 result, uint256 bitmap) private {
        _require(ghostStatus[id] == IVouchProtocol.CallStatus.Open, "settle: not open");
        ghostStatus[id] = IVouchProtocol.CallStatus.Settled;
        ghostResult[id] = result;
        ghostBitmap[id] = bitmap;
    }

    /// @dev An x402 authorization of payer `p` for `job`, signed the EIP-712 way.
    function _authorization(uint256 p, uint8 job) private returns (VouchProtocol.PaidCall memory call) {
        call.serviceId = service;
        call.jobIndex = job;
        call.inputsHash = keccak256(abi.encode("x402 inputs", inputNonce));
        call.from = payers[p];
        call.value = job == 0 ? 1_000_000 : 333_333;
        call.validAfter = block.timestamp - 1;
        call.validBefore = block.timestamp + 5 minutes;
        call.nonce = keccak256(abi.encode("x402 nonce", inputNonce++));
        bytes32 structHash = keccak256(
            abi.encode(
                usd.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
                call.from,
                address(protocol),
                call.value,
                call.validAfter,
                call.validBefore,
                call.nonce
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(payerKeys[p], keccak256(abi.encodePacked("\x19\x01", usd.DOMAIN_SEPARATOR(), structHash)));
        call.signature = abi.encodePacked(r, s, v);
    }

    /// @dev The error `settle` must revert with, or empty if it must succeed.
    function _settleRefusal(uint256 id, IVouchProtocol.Call memory c, uint256 bitmap)
        private
        view
        returns (bytes memory)
    {
        if (ghostStatus[id] != IVouchProtocol.CallStatus.Open) {
            return abi.encodeWithSelector(VouchProtocolEvents.CallNotOpen.selector, id, ghostStatus[id]);
        }
        if (block.timestamp > c.deadline) {
            return abi.encodeWithSelector(VouchProtocolEvents.DeadlinePassed.selector, id, c.deadline);
        }
        return _quorumRefusal(bitmap);
    }

    /// @dev `TooFewSigners` / `QuorumNotReached` for `bitmap` (policy: 2 signers whose weights — snapshot stake
    /// capped by the stake still slashable — reach 6667 bps of the whole set's weights, and are not zero).
    function _quorumRefusal(uint256 bitmap) private view returns (bytes memory) {
        uint256[] memory weights = _weights();
        uint256 count;
        uint256 stake;
        uint256 total;
        for (uint256 i; i < SLOTS; ++i) {
            total += weights[i];
            if ((bitmap >> i) & 1 == 1) {
                ++count;
                stake += weights[i];
            }
        }
        if (count < 2) return abi.encodeWithSelector(VouchProtocolEvents.TooFewSigners.selector, count, 2);
        if (stake == 0 || stake * BPS < 6667 * total) {
            return abi.encodeWithSelector(VouchProtocolEvents.QuorumNotReached.selector, stake, total, uint16(6667));
        }
        return "";
    }

    /// @dev Open calls that may still settle, at most `max`.
    function _batchable(uint256 max) private view returns (uint256[] memory ids) {
        uint256[] memory found = new uint256[](max);
        uint256 n;
        for (uint256 i = callIds.length; i > 0 && n < max; --i) {
            uint256 id = callIds[i - 1];
            if (ghostStatus[id] != IVouchProtocol.CallStatus.Open) continue;
            if (block.timestamp > protocol.getCall(id).deadline) continue;
            found[n++] = id;
        }
        ids = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = found[i];
        }
    }

    /// @dev Results and the aggregate certificate of `bitmap` over the batch digest of `batch`.
    function _batchCertificate(uint256[] memory batch, uint256 bitmap)
        private
        view
        returns (bytes32[] memory results, bytes memory sig)
    {
        results = new bytes32[](batch.length);
        bytes32[] memory leaves = new bytes32[](batch.length);
        for (uint256 i; i < batch.length; ++i) {
            results[i] = keccak256(abi.encode("result", batch[i]));
            leaves[i] = VouchDigest.batchLeaf(batch[i], protocol.getCall(batch[i]).inputsHash, results[i]);
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(batch.length); // ≤ MAX_BATCH + 1
        bytes32 digest =
            VouchDigest.batchDigest(block.chainid, address(protocol), service, VouchDigest.batchRoot(leaves), count);
        sig = BlsSigner.signBitmap(serviceKeys, bitmap, digest);
    }

    /// @dev The spec's split of `payment` among the `bitmap` signers.
    function _split(uint256 payment, uint256 bitmap) private view returns (SystemMath.Split memory) {
        uint256[] memory bps = new uint256[](SLOTS);
        for (uint256 i; i < SLOTS; ++i) {
            bps[i] = staking.commissionBps(operators[i]);
        }
        return SystemMath.split(
            payment,
            protocol.getBlueprint(protocol.getService(service).blueprintId).policy.developerFeeBps,
            protocol.PROTOCOL_FEE_BPS(),
            _weights(),
            bps,
            bitmap
        );
    }

    /// @dev Each service operator's weight now: `min(snapshot stake, slashable stake now)`.
    function _weights() private view returns (uint256[] memory weights) {
        IVouchProtocol.Service memory s = protocol.getService(service);
        weights = new uint256[](SLOTS);
        for (uint256 i; i < SLOTS; ++i) {
            weights[i] = Math.min(s.stakes[i], staking.slashableStake(s.operators[i]));
        }
    }

    /// @dev Balances a settlement changes.
    function _before() private view returns (Before memory b) {
        b.developer = protocol.claimable(developer);
        b.treasury = protocol.claimable(treasury);
        b.commissions = new uint256[](SLOTS);
        b.dustScaled = new uint256[](SLOTS);
        for (uint256 i; i < SLOTS; ++i) {
            b.commissions[i] = protocol.claimable(operators[i]);
            b.dustScaled[i] = staking.poolInfo(operators[i]).rewardDustScaled;
        }
        b.reserve = staking.rewardReserve();
    }

    /// @dev Checks a settlement credited exactly `e`, and books it in the ghost ledgers (rewards: each holder's
    /// pro-rata part of its pool's distribution, rounded up, as an upper bound).
    function _credited(SystemMath.Split memory e, uint256 bitmap, Before memory b) private {
        _require(protocol.claimable(developer) - b.developer == e.developerFee, "settle: developer fee");
        _require(protocol.claimable(treasury) - b.treasury == e.protocolFee + e.dust, "settle: treasury");
        protocolCredit[developer] += e.developerFee;
        protocolCredit[treasury] += e.protocolFee + e.dust;
        uint256 rewards;
        for (uint256 k; k < e.slots.length; ++k) {
            uint256 slot = e.slots[k];
            address op = operators[slot];
            _require(protocol.claimable(op) - b.commissions[slot] == e.commissions[k], "settle: commission");
            protocolCredit[op] += e.commissions[k];
            rewards += e.rewards[k];
            _boundRewards(op, e.rewards[k], b.dustScaled[slot]);
        }
        for (uint256 slot; slot < SLOTS; ++slot) {
            if ((bitmap >> slot) & 1 == 0) {
                _require(protocol.claimable(operators[slot]) == b.commissions[slot], "settle: non-signer paid");
            }
        }
        _require(staking.rewardReserve() - b.reserve == rewards, "settle: delegators' part");
    }

    /// @dev Adds each holder's rounded-up pro-rata part of a distribution of `amount` (plus the pool's carried dust)
    /// to its reward bound.
    function _boundRewards(address pool, uint256 amount, uint256 dustScaled) private {
        if (amount == 0) return;
        VouchStaking.Pool memory info = staking.poolInfo(pool);
        uint256 active = info.totalShares - info.queuedShares;
        uint256 total = amount * PRECISION + dustScaled;
        if (active == 0) {
            rewardBound[pool] += Math.ceilDiv(total, PRECISION);
            return;
        }
        for (uint256 i; i < stakers.length; ++i) {
            uint256 shares = staking.sharesOf(pool, stakers[i]);
            if (shares != 0) {
                rewardBound[
                    stakers[i]
                ] += Math.ceilDiv(Math.mulDiv(total, shares, active, Math.Rounding.Ceil), PRECISION);
            }
        }
    }

    /// @dev Sends a slashing report `data` from `rep` and checks the slash of `bps` of `op`'s stake: the amount, the
    /// payer's and reporter's credits and the burn (policy: payer 50 %, reporter 10 %).
    function _slashed(address op, address rep, address callPayer, uint256 bps, bytes memory data) private {
        SlashCheck memory x;
        x.assets = staking.slashableStake(op);
        (x.amount, x.toPayer, x.toReporter, x.toBurn) =
            SystemMath.slash(x.assets, staking.selfStake(op), bps, 5000, 1000);
        x.payerBefore = staking.slashedClaimable(callPayer);
        x.reporterBefore = staking.slashedClaimable(rep);
        x.burnBefore = stk.balanceOf(BURN);
        (bool ok, bytes memory ret) = _as(rep, address(slasher), data);
        _require(ok, "report refused");
        _require(abi.decode(ret, (uint256)) == x.amount, "report: slashed amount");
        _require(staking.slashableStake(op) == x.assets - x.amount, "report: pool");
        _require(staking.slashedClaimable(callPayer) - x.payerBefore == x.toPayer, "report: payer share");
        _require(staking.slashedClaimable(rep) - x.reporterBefore == x.toReporter, "report: reporter share");
        _require(stk.balanceOf(BURN) - x.burnBefore == x.toBurn, "report: burn");
        slashCredit[callPayer] += x.toPayer;
        slashCredit[rep] += x.toReporter;
        burned += x.toBurn;
    }

    /// @dev Single-form evidence signed by the operator at `slot`.
    function _signed(uint256 slot, uint256 id, bytes32 inputsHash, bytes32 resultHash)
        private
        view
        returns (VouchSlasher.SignedResult memory s)
    {
        s.inputsHash = inputsHash;
        s.resultHash = resultHash;
        s.signature = BlsSigner.sign(
            serviceKeys[slot],
            VouchDigest.resultDigest(block.chainid, address(protocol), service, id, inputsHash, resultHash)
        );
    }

    /// @dev A call from `seed`: the first open one from there when `open`, else any.
    function _pickCall(uint256 seed, bool open) private view returns (uint256) {
        uint256 n = callIds.length;
        if (open) {
            for (uint256 k; k < n; ++k) {
                uint256 id = callIds[(seed % n + k) % n];
                if (ghostStatus[id] == IVouchProtocol.CallStatus.Open) return id;
            }
        }
        return callIds[seed % n];
    }

    /// @dev An open call from `seed` on that may still settle; else any open call; else any call.
    function _pickSettleable(uint256 seed) private view returns (uint256) {
        uint256 n = callIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 id = callIds[(seed % n + k) % n];
            if (ghostStatus[id] == IVouchProtocol.CallStatus.Open && block.timestamp <= protocol.getCall(id).deadline) {
                return id;
            }
        }
        return _pickCall(seed, true);
    }

    /// @dev A signer bitmap: half the time one that reaches the quorum ({0,2}, {1,2}, {0,1,2}), otherwise any
    /// non-empty subset of the three slots (singletons: too few signers; {0,1}: 35k of 65k, below quorum).
    function _signers(uint256 seed) private pure returns (uint256) {
        if (seed % 2 == 0) return [uint256(0x5), 0x6, 0x7][(seed >> 1) % 3];
        return 1 + (seed >> 1) % 7;
    }

    /// @dev The error a missed-deadline report of operator `slot` for call `id` must revert with, in the slasher's
    /// order, before the alibi window is looked at (the handler checks it next); empty if there is none.
    function _missRefusal(uint256 id, uint256 slot, IVouchProtocol.Call memory c) private view returns (bytes memory) {
        address op = operators[slot];
        if (id > type(uint64).max) return abi.encodeWithSelector(VouchSlasher.MissNotProvable.selector, id);
        if (c.status != IVouchProtocol.CallStatus.Settled && c.status != IVouchProtocol.CallStatus.Refunded) {
            return abi.encodeWithSelector(VouchSlasher.CallNotFinal.selector, id, c.status);
        }
        if (missReported[op][id]) {
            return
                abi.encodeWithSelector(VouchSlasher.AlreadyReported.selector, op, id, VouchSlasher.Fault.MissedDeadline);
        }
        if (alibiShown[op][id]) return abi.encodeWithSelector(VouchSlasher.OperatorHasAlibi.selector, op, id);
        if (c.status == IVouchProtocol.CallStatus.Settled && (c.signerBitmap >> slot) & 1 == 1) {
            return abi.encodeWithSelector(VouchSlasher.OperatorSigned.selector, id, op, slot);
        }
        return "";
    }

    /// @dev The first final `callJob` call (counter id) from `seed` on; else `_pickFinal`.
    function _pickFinalCounter(uint256 seed) private view returns (uint256) {
        uint256 n = callIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 id = callIds[(seed % n + k) % n];
            if (id <= type(uint64).max && ghostStatus[id] != IVouchProtocol.CallStatus.Open) return id;
        }
        return _pickFinal(seed);
    }

    /// @dev Usually a final call (settled or refunded), one time in eight any call.
    function _pickFinal(uint256 seed) private view returns (uint256) {
        uint256 n = callIds.length;
        if (seed % 8 != 0) {
            for (uint256 k; k < n; ++k) {
                uint256 id = callIds[(seed % n + k) % n];
                if (ghostStatus[id] != IVouchProtocol.CallStatus.Open) return id;
            }
        }
        return callIds[seed % n];
    }

    /// @dev First (staker, pool) from `seed` on where the staker holds active shares.
    function _findShares(uint256 seed) private view returns (address account, address pool, bool found) {
        uint256 pairs = stakers.length * operators.length;
        for (uint256 k; k < pairs; ++k) {
            uint256 p = (seed % pairs + k) % pairs;
            account = stakers[p / operators.length];
            pool = operators[p % operators.length];
            if (staking.sharesOf(pool, account) != 0) return (account, pool, true);
        }
    }

    /// @dev The entries of a paid batch: `fresh` new authorizations (payer and job of each drawn from `payerSeed`)
    /// and, one time in four (`staleSeed`), an entry of an earlier paid batch at a random position.
    function _planPaidBatch(uint256 payerSeed, uint256 fresh, uint256 staleSeed)
        private
        returns (PaidPlan memory plan)
    {
        bool stale = staleSeed % 4 == 0 && paidSubmissions.length != 0;
        uint256 n = stale ? fresh + 1 : fresh;
        uint256 at = stale ? (staleSeed >> 2) % n : n;
        plan.entries = new VouchProtocol.PaidResult[](n);
        plan.prices = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            if (i == at) {
                plan.entries[i] = _usedEntry(staleSeed >> 8);
                continue;
            }
            uint256 r = uint256(keccak256(abi.encode(payerSeed, i)));
            uint8 job = uint8((r >> 128) & 1);
            plan.entries[i] = _paidEntry(r % payers.length, job);
            plan.prices[i] = job == 0 ? 1_000_000 : 333_333;
            plan.total += plan.prices[i];
        }
    }

    /// @dev Submits a paid batch that must settle and checks every balance it moves to the unit, then books it.
    function _settlePaidBatch(PaidPlan memory plan, uint256 count) private {
        SystemMath.Split memory e = _split(0, plan.bitmap);
        for (uint256 i; i < plan.entries.length; ++i) {
            if (plan.prices[i] != 0) SystemMath.add(e, _split(plan.prices[i], plan.bitmap));
        }
        uint256 rewards;
        for (uint256 k; k < e.rewards.length; ++k) {
            rewards += e.rewards[k];
        }
        Before memory before = _before();
        uint256[] memory balances = _payerBalances();
        uint256 accounted = protocol.accounted();
        uint256 held = usd.balanceOf(address(protocol)) + usd.balanceOf(address(staking));
        vm.prank(gateway);
        uint256 batchId = protocol.settlePaidBatch(service, plan.entries, plan.bitmap, plan.signature);
        _require(batchId == count + 1 && protocol.paidBatchCount() == batchId, "settlePaidBatch: next batch id");
        uint256 received = usd.balanceOf(address(protocol)) + usd.balanceOf(address(staking)) - held;
        _require(received == plan.total, "settlePaidBatch: received");
        _require(protocol.accounted() - accounted == plan.total - rewards, "settlePaidBatch: accounted");
        _credited(e, plan.bitmap, before);
        _debited(plan, balances);
        _paidRecorded(batchId, plan.entries, plan.prices, plan.bitmap);
        for (uint256 i; i < plan.entries.length; ++i) {
            VouchProtocol.PaidResult memory x = plan.entries[i];
            uint256 id = _paidId(x.jobIndex, x.from, x.nonce);
            _require(usd.authorizationState(x.from, x.nonce), "settlePaidBatch: authorization not used");
            IVouchProtocol.Call memory c = protocol.getCall(id);
            _require(
                c.status == IVouchProtocol.CallStatus.None && c.payer == address(0) && c.payment == 0,
                "settlePaidBatch: a call record was stored"
            );
            if (plan.prices[i] == 0) continue;
            _require(ghostStatus[id] == IVouchProtocol.CallStatus.None, "paid call id is an opened call's");
            paidIds.push(id);
            paidWhere[id] = (paidSubmissions.length << 32) | i;
        }
        paidSubmissions.push(abi.encode(plan.entries, plan.bitmap, plan.signature));
        paidBatchPrices += plan.total;
        paidBatchReceived += received;
        ++freshPaidBatches;
    }

    /// @dev Checks each payer lost exactly the prices of its collected entries, and books them as its payments.
    function _debited(PaidPlan memory plan, uint256[] memory balancesBefore) private {
        for (uint256 p; p < payers.length; ++p) {
            uint256 owed;
            for (uint256 i; i < plan.entries.length; ++i) {
                if (plan.entries[i].from == payers[p]) owed += plan.prices[i];
            }
            _require(balancesBefore[p] - usd.balanceOf(payers[p]) == owed, "settlePaidBatch: payer debit");
            usdPaid[payers[p]] += owed;
            paidBatchPaid[payers[p]] += owed;
        }
    }

    /// @dev Checks the record of paid batch `batchId` (entry i collected `payments[i]`, 0 = skipped) and keeps it
    /// for the invariants.
    function _paidRecorded(
        uint256 batchId,
        VouchProtocol.PaidResult[] memory es,
        uint256[] memory payments,
        uint256 bitmap
    ) private {
        bytes32[] memory records = new bytes32[](es.length);
        for (uint256 i; i < es.length; ++i) {
            records[i] = VouchDigest.paidRecordLeaf(
                es[i].from, es[i].nonce, es[i].jobIndex, payments[i], es[i].inputsHash, es[i].resultHash
            );
        }
        IVouchProtocol.PaidBatch memory g = IVouchProtocol.PaidBatch({
            serviceId: service,
            settledAt: uint64(block.timestamp),
            // forge-lint: disable-next-line(unsafe-typecast)
            count: uint32(es.length), // ≤ MAX_BATCH + 1
            signerBitmap: bitmap,
            recordRoot: VouchDigest.batchRoot(records)
        });
        IVouchProtocol.PaidBatch memory b = protocol.getPaidBatch(batchId);
        _require(
            b.serviceId == g.serviceId && b.settledAt == g.settledAt && b.count == g.count
                && b.signerBitmap == g.signerBitmap,
            "paid batch: record"
        );
        _require(b.recordRoot == g.recordRoot, "paid batch: record root");
        ghostPaidBatch[batchId] = g;
    }

    /// @dev A fresh x402 authorization of payer `p` for `job` as a paid-batch entry, with its result.
    function _paidEntry(uint256 p, uint8 job) private returns (VouchProtocol.PaidResult memory e) {
        VouchProtocol.PaidCall memory a = _authorization(p, job);
        e.from = a.from;
        e.jobIndex = job;
        e.validAfter = a.validAfter;
        e.validBefore = a.validBefore;
        e.nonce = a.nonce;
        e.signature = a.signature;
        e.inputsHash = a.inputsHash;
        e.resultHash = keccak256(abi.encode("result", _paidId(job, a.from, a.nonce)));
    }

    /// @dev An entry of an earlier paid batch (its authorization is used).
    function _usedEntry(uint256 seed) private view returns (VouchProtocol.PaidResult memory) {
        (VouchProtocol.PaidResult[] memory es,,) =
            abi.decode(paidSubmissions[seed % paidSubmissions.length], (VouchProtocol.PaidResult[], uint256, bytes));
        return es[(seed >> 64) % es.length];
    }

    /// @dev The `openPaidCall` form of a paid-batch entry's authorization.
    function _asPaidCall(VouchProtocol.PaidResult memory e) private view returns (VouchProtocol.PaidCall memory p) {
        p.serviceId = service;
        p.jobIndex = e.jobIndex;
        p.inputsHash = e.inputsHash;
        p.from = e.from;
        p.value = e.jobIndex == 0 ? 1_000_000 : 333_333;
        p.validAfter = e.validAfter;
        p.validBefore = e.validBefore;
        p.nonce = e.nonce;
        p.signature = e.signature;
    }

    /// @dev The batch digest a paid batch's certificate signs: leaves `batchLeaf(paidCallId, inputsHash,
    /// resultHash)` in entry order.
    function _paidBatchDigest(VouchProtocol.PaidResult[] memory es) private view returns (bytes32) {
        bytes32[] memory leaves = new bytes32[](es.length);
        for (uint256 i; i < es.length; ++i) {
            leaves[i] = VouchDigest.batchLeaf(
                _paidId(es[i].jobIndex, es[i].from, es[i].nonce), es[i].inputsHash, es[i].resultHash
            );
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(es.length); // ≤ MAX_BATCH + 1
        return VouchDigest.batchDigest(block.chainid, address(protocol), service, VouchDigest.batchRoot(leaves), count);
    }

    /// @dev Call id of the call of job `job` on the fixture service paid by the x402 authorization `(from, nonce)`,
    /// from its definition (not through the protocol).
    function _paidId(uint8 job, address from, bytes32 nonce) private view returns (uint256) {
        return uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), service, job, from, nonce)));
    }

    /// @dev Each payer's vUSD balance.
    function _payerBalances() private view returns (uint256[] memory balances) {
        balances = new uint256[](payers.length);
        for (uint256 p; p < payers.length; ++p) {
            balances[p] = usd.balanceOf(payers[p]);
        }
    }

    /// @dev A digest of every vUSD balance the protocol can move: each account's wallet balance, protocol claimable
    /// and (scaled) pending rewards in every pool; the protocol's and staking's balances, `accounted`, the reward
    /// reserve and each pool's reward dust.
    function _balancesDigest() private view returns (bytes32 h) {
        for (uint256 i; i < accounts.length; ++i) {
            address a = accounts[i];
            h = keccak256(abi.encode(h, usd.balanceOf(a), protocol.claimable(a)));
            for (uint256 j; j < operators.length; ++j) {
                h = keccak256(abi.encode(h, staking.pendingRewardsScaled(operators[j], a)));
            }
        }
        for (uint256 j; j < operators.length; ++j) {
            h = keccak256(abi.encode(h, staking.poolInfo(operators[j]).rewardDustScaled));
        }
        h = keccak256(
            abi.encode(
                h,
                usd.balanceOf(address(protocol)),
                usd.balanceOf(address(staking)),
                protocol.accounted(),
                staking.rewardReserve()
            )
        );
    }

    /// @dev Low-level call from `from` (for calls that may revert).
    function _as(address from, address target, bytes memory data) private returns (bool ok, bytes memory ret) {
        vm.prank(from);
        (ok, ret) = target.call(data);
    }

    function _requireRevert(bool ok, bytes memory ret, bytes memory expected, string memory what) private pure {
        _require(!ok, string.concat(what, ": did not revert"));
        _require(keccak256(ret) == keccak256(expected), string.concat(what, ": wrong error"));
    }

    function _require(bool condition, string memory what) private pure {
        require(condition, what);
    }

    function _bound(uint256 x, uint256 min, uint256 max) private pure returns (uint256) {
        return min + x % (max - min + 1);
    }
}

/// @title SystemInvariantTest
/// @notice Whole-system invariants under random sequences of staking, calls, settlements, refunds, fault reports and
/// claims (see `SystemHandler`): token balances equal the ledgers, nobody takes out more than it put in or earned,
/// settled / refunded calls stay final, paid-batch calls never get a call record, paid batches are counted and
/// collect exactly their entries' prices, and missed deadlines are counted per operator and blueprint.
/// forge-config: default.invariant.fail-on-revert = true
contract SystemInvariantTest is SystemBase {
    SystemHandler internal handler;
    address internal delegator2 = address(0xDE1E2);
    address internal reporter2 = address(0x4E90472);

    function setUp() public override {
        super.setUp();
        _fundStake(delegator2, 1_000_000e18);
        for (uint256 i; i < N_OPERATORS; ++i) {
            _fundStake(operators[i], 1_000_000e18);
        }

        SystemHandler.Cast memory cast;
        cast.usd = usd;
        cast.stk = stk;
        cast.staking = staking;
        cast.protocol = protocol;
        cast.slasher = slasher;
        cast.serviceId = serviceId;
        cast.operators = operators;
        cast.serviceKeys = serviceSecretKeys;
        cast.delegators = new address[](2);
        (cast.delegators[0], cast.delegators[1]) = (delegator, delegator2);
        cast.payerKeys = new uint256[](2);
        (cast.payerKeys[0], cast.payerKeys[1]) = (payerKey, payer2Key);
        cast.reporters = new address[](2);
        (cast.reporters[0], cast.reporters[1]) = (reporter, reporter2);
        cast.keeper = keeper;
        cast.gateway = gateway;
        cast.developer = developer;
        cast.treasury = treasury;
        cast.depositors = new address[](N_OPERATORS + 1);
        cast.depositPools = new address[](N_OPERATORS + 1);
        cast.deposits = new uint256[](N_OPERATORS + 1);
        for (uint256 i; i < N_OPERATORS; ++i) {
            (cast.depositors[i], cast.depositPools[i], cast.deposits[i]) = (operators[i], operators[i], selfStakes[i]);
        }
        (cast.depositors[N_OPERATORS], cast.depositPools[N_OPERATORS], cast.deposits[N_OPERATORS]) =
        (delegator, operators[0], DELEGATION);
        handler = new SystemHandler(cast);
        vm.label(address(handler), "handler");
    }

    /// @notice forge fuzzes only the handler.
    function targetContracts() external view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice (i) For each token, what the protocol and staking hold equals the sum of their ledgers: vUSD = escrow of
    /// open calls + protocol claimables + staking's reward reserve (itself exactly the unclaimed rewards and pool dust,
    /// in scaled units); VST = Σ pool assets (the delegations' and pending withdrawals' values, up to rounding kept
    /// by the pools) + slashed claimables. Nothing is created or lost overall.
    function invariant_TokensHeldEqualLedgers() external view {
        uint256 n = handler.accountCount();
        // vUSD
        uint256 escrow;
        for (uint256 i; i < handler.callCount(); ++i) {
            uint256 id = handler.callIds(i);
            if (handler.ghostStatus(id) == IVouchProtocol.CallStatus.Open) escrow += protocol.getCall(id).payment;
        }
        uint256 claimables;
        uint256 owedScaled;
        uint256 held;
        for (uint256 i; i < n; ++i) {
            address account = handler.accounts(i);
            claimables += protocol.claimable(account);
            held += usd.balanceOf(account);
            for (uint256 j; j < N_OPERATORS; ++j) {
                owedScaled += staking.pendingRewardsScaled(operators[j], account);
            }
        }
        uint256 dustScaled;
        for (uint256 j; j < N_OPERATORS; ++j) {
            dustScaled += staking.poolInfo(operators[j]).rewardDustScaled;
        }
        assertEq(
            usd.balanceOf(address(protocol)) + usd.balanceOf(address(staking)),
            escrow + claimables + staking.rewardReserve(),
            "vUSD held = escrow + claimables + reward reserve"
        );
        assertEq(protocol.accounted(), escrow + claimables, "accounted = escrow + claimables");
        assertEq(usd.balanceOf(address(staking)), staking.rewardReserve(), "staking vUSD = reward reserve");
        assertEq(staking.rewardReserve() * PRECISION, owedScaled + dustScaled, "reserve = owed + dust (scaled)");
        assertEq(
            usd.totalSupply(),
            held + usd.balanceOf(address(protocol)) + usd.balanceOf(address(staking)),
            "vUSD conserved"
        );

        // VST
        uint256 assets;
        uint256 slashedClaimables;
        uint256 stakeHeld;
        for (uint256 i; i < n; ++i) {
            slashedClaimables += staking.slashedClaimable(handler.accounts(i));
            stakeHeld += stk.balanceOf(handler.accounts(i));
        }
        for (uint256 j; j < N_OPERATORS; ++j) {
            assets += _checkPool(operators[j]);
        }
        assertEq(stk.balanceOf(address(protocol)), 0, "protocol holds no stake");
        assertEq(stk.balanceOf(address(staking)), assets + slashedClaimables, "VST held = pools + slashed claimables");
        assertEq(stk.totalSupply(), stakeHeld + stk.balanceOf(address(staking)) + stk.balanceOf(BURN), "VST conserved");
        assertEq(stk.balanceOf(BURN), handler.burned(), "burned as predicted");
    }

    /// @dev A pool's shares add up, and its assets back its delegations and pending withdrawals (the pool keeps
    /// less than one unit of rounding per holder and request). Returns its assets.
    function _checkPool(address pool) internal view returns (uint256) {
        VouchStaking.Pool memory info = staking.poolInfo(pool);
        uint256 active;
        uint256 value;
        uint256 holders;
        for (uint256 i; i < handler.accountCount(); ++i) {
            uint256 shares = staking.sharesOf(pool, handler.accounts(i));
            active += shares;
            value += staking.convertToAssets(pool, shares);
            if (shares != 0) ++holders;
        }
        uint256 queued;
        for (uint256 k; k < handler.openRequestCount(); ++k) {
            uint256 id = handler.openRequests(k);
            if (staking.withdrawalRequest(id).operator != pool) continue;
            queued += staking.withdrawalRequest(id).shares;
            value += staking.previewWithdraw(id);
            ++holders;
        }
        assertEq(active + queued, info.totalShares, "shares: active + queued = total");
        assertEq(queued, info.queuedShares, "queued shares = pending requests");
        assertLe(value, info.assets, "delegations + withdrawals <= pool assets");
        assertLe(info.assets - value, holders + 2, "pool keeps only rounding");
        return info.assets;
    }

    /// @notice (ii) Nobody takes out more than it put in plus what it earned: protocol credits are exactly the
    /// spec's refunds and fees; rewards never exceed each holder's pro-rata bound; slashed-stake credits are exactly
    /// the spec's shares; stake withdrawn from a pool never exceeds what was put into it; every wallet holds exactly
    /// what it started with, less what it paid (escrowed calls and paid batches), plus what it claimed.
    function invariant_NobodyTakesMoreThanPutInOrEarned() external view {
        for (uint256 i; i < handler.accountCount(); ++i) {
            address a = handler.accounts(i);
            assertEq(
                protocol.claimable(a) + handler.protocolClaimed(a),
                handler.protocolCredit(a),
                "protocol credits = refunds + fees"
            );
            assertLe(handler.refundCredit(a), handler.usdPaid(a), "refunds <= payments");
            assertEq(
                usd.balanceOf(a) + handler.usdPaid(a),
                handler.usdInitial(a) + handler.protocolClaimed(a) + handler.rewardsClaimed(a),
                "vUSD balance = initial - paid (escrow and paid batches) + claimed"
            );
            uint256 pending;
            for (uint256 j; j < N_OPERATORS; ++j) {
                pending += staking.pendingRewards(operators[j], a);
                assertLe(handler.poolOut(operators[j], a), handler.poolIn(operators[j], a), "pool: out <= in");
            }
            assertLe(handler.rewardsClaimed(a) + pending, handler.rewardBound(a), "rewards <= earned");
            assertLe(
                handler.protocolClaimed(a) + handler.rewardsClaimed(a),
                handler.usdPaid(a) + (handler.protocolCredit(a) - handler.refundCredit(a)) + handler.rewardBound(a),
                "vUSD out <= in + earned"
            );
            assertEq(
                staking.slashedClaimable(a) + handler.slashClaimed(a), handler.slashCredit(a), "slash credits exact"
            );
            assertLe(handler.stakeOut(a), handler.stakeIn(a) + handler.slashCredit(a), "VST out <= in + credited");
        }
    }

    /// @notice (iii) Every call's on-chain status is the one the handler saw: a settled call was never refunded, a
    /// refunded call never settled (the handler's attempts to do so all reverted `CallNotOpen`); a call paid and settled
    /// by a paid batch was never Open, Settled or Refunded.
    function invariant_FinalStatesStayFinal() external view {
        for (uint256 i; i < handler.callCount(); ++i) {
            uint256 id = handler.callIds(i);
            IVouchProtocol.Call memory c = protocol.getCall(id);
            IVouchProtocol.CallStatus expected = handler.ghostStatus(id);
            assertTrue(c.status == expected, "status as tracked");
            if (expected == IVouchProtocol.CallStatus.Settled) {
                assertEq(c.resultHash, handler.ghostResult(id), "settled result");
                assertEq(c.signerBitmap, handler.ghostBitmap(id), "settled bitmap");
                assertTrue(c.settledAt != 0, "settledAt");
            } else {
                assertEq(c.resultHash, bytes32(0), "no result");
                assertEq(c.signerBitmap, 0, "no bitmap");
            }
        }
        // A call paid and settled by a paid batch has no call record: never Open, Settled or Refunded (the handler's
        // attempts to refund, settle or reopen it all reverted).
        for (uint256 i; i < handler.paidIdCount(); ++i) {
            uint256 id = handler.paidIds(i);
            IVouchProtocol.Call memory c = protocol.getCall(id);
            assertTrue(c.status == IVouchProtocol.CallStatus.None, "paid-batch call: no call record");
            assertTrue(handler.ghostStatus(id) == IVouchProtocol.CallStatus.None, "paid-batch call: never opened");
            assertEq(c.payer, address(0), "paid-batch call: no payer");
            assertEq(c.payment, 0, "paid-batch call: no escrow");
            assertEq(c.resultHash, bytes32(0), "paid-batch call: no stored result");
            assertEq(c.settledAt, 0, "paid-batch call: no settledAt");
            assertEq(c.signerBitmap, 0, "paid-batch call: no bitmap");
        }
    }

    /// @notice (iv) x402 paid batches: the protocol counts exactly the batches that collected something (a
    /// resubmission of a settled batch reverts `NothingToCollect` and takes no id), and each batch's record is the one
    /// the handler predicted when it settled (the record root commits to what each entry collected); no batch is
    /// recorded beyond the count. What the paid batches collected — received by the protocol and staking during them, and missing from the payers' wallets — is
    /// exactly the sum of the prices of their collected entries.
    function invariant_PaidBatchesCounted() external view {
        uint256 batches = protocol.paidBatchCount();
        assertEq(batches, handler.freshPaidBatches(), "paidBatchCount = paid batches that collected");
        for (uint256 id = 1; id <= batches + 1; ++id) {
            IVouchProtocol.PaidBatch memory b = protocol.getPaidBatch(id);
            IVouchProtocol.PaidBatch memory g = handler.paidBatchRecord(id);
            assertEq(b.serviceId, g.serviceId, "paid batch: service");
            assertEq(b.settledAt, g.settledAt, "paid batch: settledAt");
            assertEq(b.count, g.count, "paid batch: count");
            assertEq(b.signerBitmap, g.signerBitmap, "paid batch: signers");
            assertEq(b.recordRoot, g.recordRoot, "paid batch: record root");
        }
        uint256 prices = handler.paidBatchPrices();
        assertEq(handler.paidBatchReceived(), prices, "received in paid batches = prices of collected entries");
        uint256 payersIn;
        uint256 payersOut;
        uint256 booked;
        for (uint256 i; i < handler.payerCount(); ++i) {
            address a = handler.payers(i);
            uint256 paidBatch = handler.paidBatchPaid(a);
            booked += paidBatch;
            payersIn += handler.usdInitial(a) + handler.protocolClaimed(a) + handler.rewardsClaimed(a);
            payersOut += usd.balanceOf(a) + (handler.usdPaid(a) - paidBatch);
        }
        assertEq(booked, prices, "payers' paid-batch payments = prices of collected entries");
        assertEq(payersIn, payersOut + prices, "taken from payers by paid batches = prices of collected entries");
    }

    /// @notice (v) Missed deadlines are counted per (operator, blueprint), exactly as the handler's successful reports
    /// predict: misses since the last jailing for them, in total, and the end of that jailing. Nothing is counted
    /// under any other blueprint.
    function invariant_MissesCountedPerBlueprint() external view {
        uint64 bp = handler.blueprint();
        for (uint256 i; i < N_OPERATORS; ++i) {
            address op = operators[i];
            VouchSlasher.MissRecord memory r = slasher.missesOf(op, bp);
            assertEq(r.sinceJail, handler.missesSinceJail(op, bp), "misses since jail");
            assertEq(r.total, handler.missesTotal(op, bp), "misses in total");
            assertEq(r.jailedUntil, handler.missJailedUntil(op, bp), "jailed until");
            VouchSlasher.MissRecord memory other = slasher.missesOf(op, bp + 1);
            assertEq(other.total + other.sinceJail + other.jailedUntil, 0, "no misses under another blueprint");
        }
    }
}
