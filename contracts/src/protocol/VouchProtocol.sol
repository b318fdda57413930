// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {KeyRegistry} from "../KeyRegistry.sol";
import {VouchDigest} from "../bls/VouchDigest.sol";
import {IBlueprintHooks} from "../interfaces/IBlueprintHooks.sol";
import {IERC3009} from "../interfaces/IERC3009.sol";
import {IVouchProtocol} from "../interfaces/IVouchProtocol.sol";
import {IVouchStaking} from "../interfaces/IVouchStaking.sol";
import {ProtocolAdmin} from "./ProtocolAdmin.sol";
import {VouchProtocolEvents} from "./VouchProtocolEvents.sol";

/// @title VouchProtocol
/// @notice Blueprints, services, paid calls, certificate settlement, refunds and fee claims of the Vouch network
/// (DESIGN.md §3–4, docs/protocol.md, docs/design/protocol-contracts.md).
/// @dev Money model: every payment-token unit this contract holds is either escrowed for an open call or claimable
/// by someone; `accounted` is their sum. Anything above it (an EIP-3009 authorization front-run straight to the token,
/// a plain transfer) is unattributed surplus that `sweepSurplus` sends to the treasury. Fees, commissions and refunds
/// are pulled with `claim`; the delegators' part of a signer's fee is pushed to `VouchStaking` with
/// `distributeRewards`. Blueprints are immutable except for their owner and metadata, so a job's price never
/// changes: every call of a job escrows the same amount.
contract VouchProtocol is IVouchProtocol, VouchProtocolEvents, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice An x402 payment: an EIP-3009 `TransferWithAuthorization` to this contract, plus the call it pays for.
    struct PaidCall {
        uint64 serviceId; // service to call
        uint8 jobIndex; // job of the service's blueprint
        bytes32 inputsHash; // keccak256 of the inputs (delivered off-chain by the gateway)
        address from; // payer (authorizer)
        uint256 value; // must equal the job price
        uint256 validAfter; // EIP-3009 validity window (exclusive bounds)
        uint256 validBefore;
        bytes32 nonce; // EIP-3009 nonce; the call id is `VouchDigest.paidCallId(serviceId, jobIndex, from, nonce)`
        bytes signature; // 65-byte ECDSA or ERC-1271 signature of the authorization
    }

    /// @notice One entry of `settlePaidBatch`: an x402 payment for a job of the batch's service and the certified
    /// result of that call. The authorization's value is the job price.
    struct PaidResult {
        address from; // payer (authorizer)
        uint8 jobIndex; // job of the service's blueprint
        uint256 validAfter; // EIP-3009 validity window (exclusive bounds)
        uint256 validBefore;
        bytes32 nonce; // EIP-3009 nonce; the call id is `VouchDigest.paidCallId(serviceId, jobIndex, from, nonce)`
        bytes signature; // 65-byte ECDSA or ERC-1271 signature of the authorization
        bytes32 inputsHash; // keccak256 of the inputs
        bytes32 resultHash; // the certified result
    }

    /// @dev Storage form of a `PaidBatch`: two slots for the whole batch, none per call.
    struct PaidBatchRecord {
        uint64 serviceId;
        uint48 bitmapId; // signer bitmap id (`signerBitmapOf`)
        uint64 settledAt; // block time of the settlement
        uint32 count; // number of entries, paid or skipped
        bytes32 recordRoot; // root over every entry's record leaf
    }

    /// @dev Storage form of a `Call`: four slots instead of six (the payment fits 96 bits because job prices are capped
    /// at `MAX_PRICE`; a signer bitmap is stored once, the first time it appears, and calls refer to it by id).
    struct CallRecord {
        uint64 serviceId;
        uint8 jobIndex;
        CallStatus status;
        uint64 deadline;
        uint64 settledAt;
        uint48 bitmapId;
        address payer;
        uint96 payment;
        bytes32 inputsHash;
        bytes32 resultHash;
    }

    /// @dev One settlement's context: the service's key set and blueprint parameters, the signers (parallel arrays,
    /// in slot order) and the fee parts it accumulates.
    struct Payout {
        uint256 bitmap; // signer bitmap
        uint48 bitmapId; // its id (`bitmapIdOf`), assigned when the certificate is accepted
        address keySet; // the service's pinned key set
        address developer; // blueprint owner
        address hooks; // blueprint hooks (zero = none)
        uint256 developerFeeBps; // blueprint developer fee
        uint256[] slots; // signer slots
        address[] operators; // signer operators
        uint256[] stakes; // their snapshot stakes
        uint256[] commissionBps; // their commission rates, read from staking once per settlement
        uint256 signerStake; // Σ stakes
        uint256[] commissions; // accumulated commission per signer (claimable by the operator)
        uint256[] rewards; // accumulated delegators' part per signer (pushed to staking)
        uint256 developerFee; // accumulated developer fee
        uint256 protocolFee; // accumulated protocol fee
        uint256 dust; // accumulated integer-division remainder
        uint256 payment; // accumulated payments
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Constants and configuration
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Basis-point denominator.
    uint256 public constant BPS = ProtocolAdmin.BPS;
    /// @notice Most jobs a blueprint may declare.
    uint256 public constant MAX_JOBS = ProtocolAdmin.MAX_JOBS;
    /// @notice Shortest job deadline, in seconds.
    uint32 public constant MIN_JOB_DEADLINE = ProtocolAdmin.MIN_JOB_DEADLINE;
    /// @notice Longest job deadline, in seconds.
    uint32 public constant MAX_JOB_DEADLINE = ProtocolAdmin.MAX_JOB_DEADLINE;
    /// @notice Highest job price (the escrow of a call is stored in 96 bits).
    uint256 public constant MAX_PRICE = ProtocolAdmin.MAX_PRICE;
    /// @notice Largest operator set of a service (a key set's capacity, `KeyRegistry.MAX_SET_SIZE`).
    uint256 public constant MAX_OPERATORS = ProtocolAdmin.MAX_OPERATORS;
    /// @notice Most calls in one `settleBatch`.
    uint256 public constant MAX_BATCH_SIZE = 1024;
    /// @notice Gas forwarded to each blueprint hook call.
    uint256 public constant HOOK_GAS_LIMIT = 100_000; // = ProtocolAdmin.HOOK_GAS_LIMIT (a literal, for assembly)
    /// @dev Gas a hook notification needs available so that the hook really receives `HOOK_GAS_LIMIT` (EIP-150 keeps
    /// 1/64 back; the rest covers the call's own cost).
    uint256 private constant HOOK_GAS_REQUIRED = HOOK_GAS_LIMIT + HOOK_GAS_LIMIT / 63 + 10_000;

    /// @dev The payment token (EIP-3009).
    IERC20 private immutable _TOKEN;
    /// @notice Operator stake pools: registration, jailing, quorum weights, commissions, delegator rewards.
    IVouchStaking public immutable STAKING;
    /// @notice Registry of operators' BLS keys; builds each service's key set.
    KeyRegistry public immutable KEY_REGISTRY;
    /// @notice Receives the protocol fee, integer-division dust and swept surplus.
    address public immutable TREASURY;
    /// @notice Protocol fee of every call, in basis points of its price.
    uint16 public immutable PROTOCOL_FEE_BPS;

    // ---------------------------------------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Number of blueprints created (the last blueprint id).
    uint64 public blueprintCount;
    /// @notice Number of services requested (the last service id).
    uint64 public serviceCount;
    /// @notice Number of calls opened (the last call id).
    uint64 public callCount;
    /// @notice Number of distinct signer bitmaps recorded (the last bitmap id).
    uint48 public bitmapCount;

    /// @notice Payment-token units owed by this contract: escrow of open calls plus every claimable balance.
    uint256 public accounted;

    /// @dev Blueprints by id.
    mapping(uint64 blueprintId => Blueprint) private _blueprints;
    /// @dev Services by id.
    mapping(uint64 serviceId => Service) private _services;
    /// @dev Slot + 1 of each operator in a service's set (0 = not in the set).
    mapping(uint64 serviceId => mapping(address operator => uint256 slotPlusOne)) private _slotPlusOne;
    /// @notice Approvals of a requested service: bit i set once operator slot i approved.
    mapping(uint64 serviceId => uint256 bitmap) public approvals;
    /// @notice Whether `caller` may open calls on a service without public access.
    mapping(uint64 serviceId => mapping(address caller => bool)) public isPermittedCaller;
    /// @dev Calls by id.
    mapping(uint256 callId => CallRecord) private _calls;
    /// @notice Signer bitmap with id `bitmapId` (settled calls refer to their certificate's bitmap by id).
    mapping(uint48 bitmapId => uint256 bitmap) public signerBitmapOf;
    /// @notice Id of a recorded signer bitmap (0 = not recorded yet).
    mapping(uint256 bitmap => uint48 bitmapId) public bitmapIdOf;
    /// @notice Number of `settlePaidBatch` batches (the last paid-batch id).
    uint256 public paidBatchCount;
    /// @dev Paid batches by id.
    mapping(uint256 batchId => PaidBatchRecord) private _paidBatches;
    /// @notice Payment-token balance `account` may withdraw with `claim`.
    mapping(address account => uint256 amount) public claimable;

    // ---------------------------------------------------------------------------------------------------------------
    // Constructor
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Deploys the protocol. It stores no state besides immutables, so its code may be placed anywhere.
    /// @param paymentToken_ EIP-3009 payment token (USDC, Vouch USD).
    /// @param staking_ Staking contract (its `initialize` must name this contract as the protocol).
    /// @param registry_ Key registry.
    /// @param treasury_ Treasury.
    /// @param protocolFeeBps_ Protocol fee in basis points (≤ 10,000).
    constructor(
        IERC20 paymentToken_,
        IVouchStaking staking_,
        KeyRegistry registry_,
        address treasury_,
        uint16 protocolFeeBps_
    ) {
        if (address(paymentToken_) == address(0)) revert ZeroAddress();
        if (address(staking_) == address(0)) revert ZeroAddress();
        if (address(registry_) == address(0)) revert ZeroAddress();
        if (treasury_ == address(0)) revert ZeroAddress();
        if (protocolFeeBps_ > BPS) revert InvalidBps(protocolFeeBps_);
        // Delegator rewards are transferred to staking in the payment token: both must name the same token.
        address rewardToken = staking_.paymentToken();
        if (rewardToken != address(paymentToken_)) revert PaymentTokenMismatch(address(paymentToken_), rewardToken);
        _TOKEN = paymentToken_;
        STAKING = staking_;
        KEY_REGISTRY = registry_;
        TREASURY = treasury_;
        PROTOCOL_FEE_BPS = protocolFeeBps_;
        emit ProtocolDeployed(address(paymentToken_), address(staking_), address(registry_), treasury_, protocolFeeBps_);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Blueprints
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Registers a blueprint owned by the sender.
    /// @dev Refuses: 0 or more than `MAX_JOBS` jobs; a price of 0 or above `MAX_PRICE`; a deadline outside
    /// [`MIN_JOB_DEADLINE`, `MAX_JOB_DEADLINE`]; any bps above 10,000; developer + protocol fee above 10,000; payer +
    /// reporter share above 10,000; `minSigners` 0; `quorumBps` 0; a longest deadline plus dispute window not shorter
    /// than the staking unbonding delay; hooks without code.
    /// @param metadataUri Where the metadata (name, version, schemas, artifact digest) is published.
    /// @param metadataHash Content hash of the metadata.
    /// @param jobs Jobs, indexed from 0.
    /// @param policy Verification, fee and slashing policy.
    /// @param arbiter May veto deviation slashes (zero = none).
    /// @param hooks `IBlueprintHooks` contract (zero = none).
    /// @return blueprintId The new blueprint's id.
    function createBlueprint(
        string calldata metadataUri,
        bytes32 metadataHash,
        Job[] calldata jobs,
        Policy calldata policy,
        address arbiter,
        address hooks
    ) external returns (uint64 blueprintId) {
        // The library decodes the arguments from the forwarded calldata (smaller than re-encoding them here).
        (metadataUri, metadataHash, jobs, policy, arbiter, hooks);
        blueprintId = ++blueprintCount;
        ProtocolAdmin.createBlueprint(_blueprints[blueprintId], blueprintId, STAKING, PROTOCOL_FEE_BPS, msg.data[4:]);
    }

    /// @notice Transfers a blueprint (and its future developer fees) to `newOwner`. Blueprint owner only.
    /// @param blueprintId The blueprint.
    /// @param newOwner The new owner (not zero).
    function transferBlueprintOwnership(uint64 blueprintId, address newOwner) external {
        ProtocolAdmin.transferBlueprintOwnership(_blueprints[blueprintId], blueprintId, newOwner);
    }

    /// @notice Replaces a blueprint's metadata pointer. Blueprint owner only.
    /// @param blueprintId The blueprint.
    /// @param metadataUri New metadata location.
    /// @param metadataHash New metadata content hash.
    function updateBlueprintMetadata(uint64 blueprintId, string calldata metadataUri, bytes32 metadataHash) external {
        ProtocolAdmin.updateMetadata(_blueprints[blueprintId], blueprintId, metadataUri, metadataHash);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Services
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Requests a service of `blueprintId` run by `operators` (slot i = bitmap bit i), owned by the sender.
    /// @dev Each operator must be registered in staking, not jailed and accepted by the blueprint's hooks; the owner
    /// must be accepted by `allowServiceRequest`. The service becomes `Active` when every operator approved it.
    /// @param blueprintId The blueprint.
    /// @param operators 1 to `MAX_OPERATORS` distinct operators, at least the policy's `minSigners`.
    /// @param expiry Unix time after which no call opens (must be in the future).
    /// @param publicAccess Whether anyone who pays may call the service.
    /// @param permittedCallers Callers allowed when access is not public (ignored while it is).
    /// @return serviceId The new service's id.
    function requestService(
        uint64 blueprintId,
        address[] calldata operators,
        uint64 expiry,
        bool publicAccess,
        address[] calldata permittedCallers
    ) external returns (uint64 serviceId) {
        // The library decodes the arguments from the forwarded calldata (smaller than re-encoding them here).
        (operators, expiry, publicAccess, permittedCallers);
        serviceId = ++serviceCount;
        ProtocolAdmin.requestService(
            _blueprints[blueprintId],
            _services[serviceId],
            _slotPlusOne[serviceId],
            isPermittedCaller[serviceId],
            serviceId,
            STAKING,
            msg.data[4:]
        );
    }

    /// @notice Approves a requested service as one of its operators. The last approval activates it: the protocol
    /// creates the set's key set and snapshots every operator's active stake (each must be non-zero).
    /// @param serviceId The service.
    function approveService(uint64 serviceId) external nonReentrant {
        ProtocolAdmin.approve(
            _services[serviceId], _slotPlusOne[serviceId], approvals, serviceId, STAKING, KEY_REGISTRY
        );
    }

    /// @notice Terminates a requested or active service: no further call opens. Open calls still settle before their
    /// deadline or are refunded after it. Service owner only.
    /// @param serviceId The service.
    function terminateService(uint64 serviceId) external {
        ProtocolAdmin.terminate(_services[serviceId], serviceId);
    }

    /// @notice Adds or removes permitted callers of a service. Service owner only.
    /// @param serviceId The service.
    /// @param callers The callers.
    /// @param allowed True to permit them, false to remove them.
    function setPermittedCallers(uint64 serviceId, address[] calldata callers, bool allowed) external {
        ProtocolAdmin.setPermittedCallers(
            _services[serviceId], isPermittedCaller[serviceId], serviceId, callers, allowed
        );
    }

    /// @notice Opens a service to anyone who pays, or restricts it to its permitted callers. Service owner only.
    /// @param serviceId The service.
    /// @param publicAccess The new access mode.
    function setPublicAccess(uint64 serviceId, bool publicAccess) external {
        ProtocolAdmin.setPublicAccess(_services[serviceId], serviceId, publicAccess);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Opening calls
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Opens a call of job `jobIndex` on `serviceId`, escrowing exactly the job price from the sender
    /// (`transferFrom`; approve first). Emits `CallOpened` and `CallInputs` (nodes read the inputs from the chain).
    /// @param serviceId An active, unexpired service the sender may call.
    /// @param jobIndex The job.
    /// @param inputs The job inputs; `inputsHash = keccak256(inputs)`.
    /// @return callId The new call's id.
    function callJob(uint64 serviceId, uint8 jobIndex, bytes calldata inputs)
        external
        nonReentrant
        returns (uint256 callId)
    {
        (uint256 price, uint256 deadline) = _checkCall(serviceId, jobIndex, msg.sender);
        uint64 id = callCount + 1;
        callCount = id;
        callId = id;
        _openCall(callId, serviceId, jobIndex, msg.sender, price, deadline, keccak256(inputs));
        emit CallInputs(callId, inputs);
        accounted += price;
        _pull(msg.sender, price);
    }

    /// @notice Opens one call per entry on `serviceId`, escrowing the sum of their prices with one `transferFrom`.
    /// @param serviceId An active, unexpired service the sender may call.
    /// @param jobIndexes Job of each call.
    /// @param inputs Inputs of each call (same length as `jobIndexes`, at least one).
    /// @return firstCallId Id of the first call; the others follow consecutively in entry order.
    function callJobs(uint64 serviceId, uint8[] calldata jobIndexes, bytes[] calldata inputs)
        external
        nonReentrant
        returns (uint256 firstCallId)
    {
        uint256 n = jobIndexes.length;
        if (n == 0 || n != inputs.length) revert LengthMismatch(n, inputs.length);
        uint64 callId = callCount;
        firstCallId = callId + 1;
        uint256 total;
        for (uint256 i; i < n; ++i) {
            (uint256 price, uint256 deadline) = _checkCall(serviceId, jobIndexes[i], msg.sender);
            ++callId;
            _openCall(callId, serviceId, jobIndexes[i], msg.sender, price, deadline, keccak256(inputs[i]));
            emit CallInputs(callId, inputs[i]);
            total += price;
        }
        callCount = callId;
        accounted += total;
        _pull(msg.sender, total);
    }

    /// @notice Opens a call paid by an x402 (EIP-3009) authorization: executes `transferWithAuthorization(p.from,
    /// this, p.value, …)` and opens the call for payer `p.from` in the same transaction. Anyone may submit it.
    /// @dev Reverts `PaidCallAlreadyOpened` if this authorization already opened a call (a submitter treats it as
    /// success) and `AuthorizationAlreadyUsed` if its nonce was used elsewhere (front-run straight to the token: the
    /// funds are unattributed surplus, never credited to a call; docs/design/protocol-contracts.md).
    /// @param p The payment and the call.
    /// @return callId The new call's id.
    function openPaidCall(PaidCall calldata p) external nonReentrant returns (uint256 callId) {
        callId = VouchDigest.paidCallId(p.serviceId, p.jobIndex, p.from, p.nonce);
        if (_calls[callId].status != CallStatus.None) revert PaidCallAlreadyOpened(p.from, p.nonce, callId);
        if (_authorizationUsed(p.from, p.nonce)) revert AuthorizationAlreadyUsed(p.from, p.nonce);
        (uint256 price, uint256 deadline) = _checkPaidCall(p);
        _openPaidCall(callId, p, price, deadline);
        accounted += price;
        uint256 balanceBefore = _TOKEN.balanceOf(address(this));
        _collect(p);
        _checkReceived(balanceBefore, price);
    }

    /// @notice Batch `openPaidCall`, for gateways. Entries whose authorization already opened a call, or was used
    /// elsewhere (front-run), are skipped with `PaidCallSkipped`, so resubmitting a batch is idempotent; any other
    /// failure reverts the whole batch.
    /// @param ps The payments and their calls.
    /// @return callIds The call of each entry: the new call, the call the authorization opened earlier, or 0 when the
    /// authorization was used elsewhere.
    function openPaidCalls(PaidCall[] calldata ps) external nonReentrant returns (uint256[] memory callIds) {
        uint256 n = ps.length;
        callIds = new uint256[](n);
        uint256 total;
        uint256 balanceBefore = _TOKEN.balanceOf(address(this));
        for (uint256 i; i < n; ++i) {
            PaidCall calldata p = ps[i];
            uint256 callId = VouchDigest.paidCallId(p.serviceId, p.jobIndex, p.from, p.nonce);
            bool opened = _calls[callId].status != CallStatus.None;
            if (!opened && !_authorizationUsed(p.from, p.nonce)) {
                (uint256 price, uint256 deadline) = _checkPaidCall(p);
                _openPaidCall(callId, p, price, deadline);
                // Checks-effects-interactions per entry: the call is recorded before the transfer; a failure reverts all.
                _collect(p);
                total += price;
                callIds[i] = callId;
            } else {
                uint256 existing = opened ? callId : 0;
                emit PaidCallSkipped(p.from, p.nonce, existing);
                callIds[i] = existing;
            }
        }
        accounted += total;
        _checkReceived(balanceBefore, total);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Settlement
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Settles an open call with a certificate: the signers' aggregate BLS signature over
    /// `VouchDigest.resultDigest(chainid, this, serviceId, callId, inputsHash, resultHash)`. Anyone may submit it.
    /// @dev Needs `now ≤ deadline`, at least `minSigners` signers whose snapshot stake reaches `quorumBps` of the
    /// service's, and a signature that verifies against the service's pinned key set. Splits the payment (developer,
    /// protocol, signers pro rata to snapshot stake; commission claimable, the rest to the pools' delegators; dust to
    /// the treasury) and then notifies the blueprint's hooks (`onResult`, gas-capped; a failure emits `HookFailed`).
    /// @param callId The call.
    /// @param resultHash Hash of the result the signers vouch for.
    /// @param signerBitmap Bit i set = service operator slot i signed.
    /// @param signature 256-byte EIP-2537 G2 aggregate signature.
    function settle(uint256 callId, bytes32 resultHash, uint256 signerBitmap, bytes calldata signature)
        external
        nonReentrant
    {
        CallRecord storage c = _calls[callId];
        _requireSettleable(c, callId);
        uint64 serviceId = c.serviceId;
        Payout memory pay = _quorum(serviceId, signerBitmap);
        bytes32 digest =
            VouchDigest.resultDigest(block.chainid, address(this), serviceId, callId, c.inputsHash, resultHash);
        _verify(pay.keySet, serviceId, signerBitmap, digest, signature);

        _recordBitmap(pay);
        _markSettled(c, callId, pay, resultHash);
        _split(pay, c.payment, 1);
        _payout(serviceId, pay, 1);
        if (pay.hooks != address(0)) _notifyResult(pay.hooks, serviceId, callId, resultHash);
    }

    /// @notice Settles several open calls of one service with one certificate over
    /// `VouchDigest.batchDigest(chainid, this, serviceId, root, count)`, where the tree's leaves are
    /// `batchLeaf(callIds[i], inputsHash_i, resultHashes[i])` in the given order. Anyone may submit it.
    /// @dev Every call must be open, of `serviceId` and not past its deadline (else the batch reverts, e.g.
    /// `CallNotOpen` for a call already settled). Fees are split per call as in `settle` and summed, so each signer's
    /// pool receives one `distributeRewards` per batch.
    /// @param serviceId The service.
    /// @param callIds The calls, 1 to `MAX_BATCH_SIZE`, in leaf order.
    /// @param resultHashes Result hash of each call.
    /// @param signerBitmap Bit i set = service operator slot i signed.
    /// @param signature 256-byte EIP-2537 G2 aggregate signature over the batch digest.
    function settleBatch(
        uint64 serviceId,
        uint256[] calldata callIds,
        bytes32[] calldata resultHashes,
        uint256 signerBitmap,
        bytes calldata signature
    ) external nonReentrant {
        if (callIds.length != resultHashes.length) {
            revert LengthMismatch(callIds.length, resultHashes.length);
        }
        if (callIds.length == 0 || callIds.length > MAX_BATCH_SIZE) revert InvalidBatchSize(callIds.length);
        Payout memory pay = _quorum(serviceId, signerBitmap);
        _recordBitmap(pay);
        bytes32 digest = _settleCalls(serviceId, callIds, resultHashes, pay);
        _verify(pay.keySet, serviceId, signerBitmap, digest, signature);
        // forge-lint: disable-next-line(unsafe-typecast)
        _payout(serviceId, pay, uint32(callIds.length)); // ≤ MAX_BATCH_SIZE

        if (pay.hooks != address(0)) {
            for (uint256 i; i < callIds.length; ++i) {
                _notifyResult(pay.hooks, serviceId, callIds[i], resultHashes[i]);
            }
        }
    }

    /// @notice x402 batch settlement: collects each entry's EIP-3009 payment and settles its call with one certificate
    /// over `VouchDigest.batchDigest(chainid, this, serviceId, root, count)`, whose leaves are
    /// `batchLeaf(paidCallId(serviceId, jobIndex, from, nonce), inputsHash, resultHash)` in entry order. Nothing is escrowed and nothing is
    /// stored per call: the payer pays only for a certified result, and the call can never be refunded or settled
    /// again (the token consumes the nonce). Anyone may submit it.
    /// @dev Checks every entry (service active and unexpired, payer permitted, job exists, hooks allow), the quorum and
    /// the certificate; records the batch (`getPaidBatch`, two slots) and credits the fees; then executes the
    /// authorizations, reverting the whole batch if one fails (e.g. the payer's balance is gone: the submitter drops
    /// it and has the batch re-signed). An entry whose authorization was already used (this batch was submitted
    /// before, or the authorization was opened with `openPaidCall` or front-run straight to the token) is certified
    /// but neither collected nor paid: `PaidCallSkipped`. So a resubmitted batch costs nothing twice.
    /// @param serviceId The service.
    /// @param entries Payments and results, 1 to `MAX_BATCH_SIZE`, in leaf order.
    /// @param signerBitmap Bit i set = service operator slot i signed.
    /// @param signature 256-byte EIP-2537 G2 aggregate signature over the batch digest.
    /// @return batchId The new paid batch.
    function settlePaidBatch(
        uint64 serviceId,
        PaidResult[] calldata entries,
        uint256 signerBitmap,
        bytes calldata signature
    ) external nonReentrant returns (uint256 batchId) {
        uint256 n = entries.length;
        if (n == 0 || n > MAX_BATCH_SIZE) revert InvalidBatchSize(n);
        Payout memory pay = _quorum(serviceId, signerBitmap);
        _recordBitmap(pay);
        batchId = ++paidBatchCount;
        (uint256[] memory prices, uint32 collected) = _acceptPaidBatch(serviceId, batchId, entries, pay, signature);
        uint256 total = pay.payment;
        accounted += total;
        uint256 rewardTotal = _credit(serviceId, pay, collected);

        uint256 balanceBefore = _TOKEN.balanceOf(address(this));
        for (uint256 i; i < n; ++i) {
            if (prices[i] != 0) _collectPaid(entries[i], prices[i]);
        }
        _checkReceived(balanceBefore, total);
        _payDelegators(pay, rewardTotal);
        if (pay.hooks != address(0)) _notifyPaid(pay.hooks, serviceId, entries, prices);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Refunds, claims, surplus
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice Refunds an open call whose deadline passed: its whole payment becomes claimable by its payer. Anyone.
    /// @param callId The call.
    function refund(uint256 callId) external {
        _refund(callId);
    }

    /// @notice `refund` for several calls; reverts if any cannot be refunded.
    /// @param callIds The calls.
    function refundBatch(uint256[] calldata callIds) external {
        for (uint256 i; i < callIds.length; ++i) {
            _refund(callIds[i]);
        }
    }

    /// @notice Withdraws the sender's whole claimable payment-token balance.
    /// @return amount The amount transferred.
    function claim() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        claimable[msg.sender] = 0;
        accounted -= amount;
        emit Claimed(msg.sender, amount);
        _TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @notice Sends the unattributed surplus (`balanceOf(this) − accounted`, e.g. front-run x402 payments) to the
    /// treasury, which refunds payers out of band. Anyone.
    /// @return amount The amount swept.
    function sweepSurplus() external nonReentrant returns (uint256 amount) {
        uint256 balance = _TOKEN.balanceOf(address(this));
        uint256 owed = accounted;
        if (balance <= owed) revert NoSurplus(balance, owed);
        amount = balance - owed;
        emit SurplusSwept(TREASURY, amount);
        _TOKEN.safeTransfer(TREASURY, amount);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------------------------

    /// @inheritdoc IVouchProtocol
    function getBlueprint(uint64 blueprintId) external view returns (Blueprint memory) {
        _returnRaw(ProtocolAdmin.encodeBlueprint(_blueprints[blueprintId]));
    }

    /// @inheritdoc IVouchProtocol
    function getService(uint64 serviceId) external view returns (Service memory) {
        _returnRaw(ProtocolAdmin.encodeService(_services[serviceId]));
    }

    /// @inheritdoc IVouchProtocol
    function getCall(uint256 callId) external view returns (Call memory call) {
        CallRecord storage c = _calls[callId];
        call.serviceId = c.serviceId;
        call.jobIndex = c.jobIndex;
        call.status = c.status;
        call.deadline = c.deadline;
        call.settledAt = c.settledAt;
        call.payer = c.payer;
        call.payment = c.payment;
        call.inputsHash = c.inputsHash;
        call.resultHash = c.resultHash;
        uint48 bitmapId = c.bitmapId;
        if (bitmapId != 0) call.signerBitmap = signerBitmapOf[bitmapId];
    }

    /// @inheritdoc IVouchProtocol
    function getPaidBatch(uint256 batchId) external view returns (PaidBatch memory batch) {
        PaidBatchRecord storage r = _paidBatches[batchId];
        batch.serviceId = r.serviceId;
        batch.settledAt = r.settledAt;
        batch.count = r.count;
        batch.recordRoot = r.recordRoot;
        uint48 bitmapId = r.bitmapId;
        if (bitmapId != 0) batch.signerBitmap = signerBitmapOf[bitmapId];
    }

    /// @inheritdoc IVouchProtocol
    function paymentToken() external view returns (address) {
        return address(_TOKEN);
    }

    /// @notice Id of the call of job `jobIndex` on `serviceId` that the x402 authorization `(from, nonce)` pays for
    /// (`VouchDigest.paidCallId`).
    /// @param serviceId The service.
    /// @param jobIndex The job.
    /// @param from The payer.
    /// @param nonce The authorization's nonce.
    /// @return The call id.
    function paidCallId(uint64 serviceId, uint8 jobIndex, address from, bytes32 nonce) external pure returns (uint256) {
        return VouchDigest.paidCallId(serviceId, jobIndex, from, nonce);
    }

    /// @notice Slot of `operator` in a service's operator set.
    /// @param serviceId The service.
    /// @param operator The operator.
    /// @return member Whether it is in the set.
    /// @return slot Its slot (bitmap bit), when it is.
    function operatorSlot(uint64 serviceId, address operator) external view returns (bool member, uint256 slot) {
        uint256 slotPlusOne = _slotPlusOne[serviceId][operator];
        if (slotPlusOne == 0) return (false, 0);
        return (true, slotPlusOne - 1);
    }

    /// @notice Whether a certificate with `signerBitmap` would meet the service's quorum (signature not checked).
    /// @param serviceId An active service (false otherwise).
    /// @param signerBitmap Bit i set = slot i signed.
    /// @return True iff the bitmap fits the set, has at least `minSigners` bits and reaches `quorumBps` of stake.
    function quorumReached(uint64 serviceId, uint256 signerBitmap) external view returns (bool) {
        Service storage s = _services[serviceId];
        if (s.status == ServiceStatus.None || s.totalStake == 0 || !_bitmapFits(signerBitmap, s.operators.length)) {
            return false;
        }
        Policy storage policy = _blueprints[s.blueprintId].policy;
        (uint256 count, uint256 stake, uint256 total) = _signerWeight(s, signerBitmap);
        return count >= policy.minSigners && stake != 0 && stake * BPS >= policy.quorumBps * total;
    }

    /// @dev Ends the call returning `data` verbatim (an ABI encoding made by `ProtocolAdmin`).
    function _returnRaw(bytes memory data) private pure {
        assembly ("memory-safe") {
            return(add(data, 0x20), mload(data))
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Internals: calls
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Checks that `caller` may open a call of `jobIndex` on `serviceId` now; returns the job's price and the
    /// call's deadline.
    function _checkCall(uint64 serviceId, uint8 jobIndex, address caller)
        private
        view
        returns (uint256 price, uint256 deadline)
    {
        Service storage s = _services[serviceId];
        if (s.status != ServiceStatus.Active) revert ServiceNotActive(serviceId, s.status);
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > s.expiry) revert ServiceExpired(serviceId, s.expiry);
        if (!s.publicAccess && !isPermittedCaller[serviceId][caller]) revert CallerNotPermitted(serviceId, caller);
        Blueprint storage b = _blueprints[s.blueprintId];
        uint256 jobCount = b.jobs.length;
        if (jobIndex >= jobCount) revert InvalidJobIndex(serviceId, jobIndex, jobCount);
        Job storage job = b.jobs[jobIndex];
        price = job.price;
        deadline = block.timestamp + job.deadline;
        address hooks = b.hooks;
        if (
            hooks != address(0)
                && !ProtocolAdmin.hookAllows(
                    hooks, abi.encodeCall(IBlueprintHooks.allowJobCall, (serviceId, jobIndex, caller))
                )
        ) revert JobCallRefused(serviceId, jobIndex, caller);
    }

    /// @dev `_checkCall` for an x402 payment (the payer is the caller); also checks the amount.
    function _checkPaidCall(PaidCall calldata p) private view returns (uint256 price, uint256 deadline) {
        (price, deadline) = _checkCall(p.serviceId, p.jobIndex, p.from);
        if (p.value != price) revert WrongPaymentValue(price, p.value);
    }

    /// @dev Records a new open call and emits `CallOpened`.
    function _openCall(
        uint256 callId,
        uint64 serviceId,
        uint8 jobIndex,
        address payer,
        uint256 price,
        uint256 deadline,
        bytes32 inputsHash
    ) private {
        CallRecord storage c = _calls[callId];
        c.serviceId = serviceId;
        c.jobIndex = jobIndex;
        c.status = CallStatus.Open;
        // forge-lint: disable-next-line(unsafe-typecast)
        c.deadline = uint64(deadline); // now + ≤ 7 days
        c.payer = payer;
        // forge-lint: disable-next-line(unsafe-typecast)
        c.payment = uint96(price); // ≤ MAX_PRICE
        c.inputsHash = inputsHash;
        emit CallOpened(callId, serviceId, jobIndex, payer, price, deadline, inputsHash);
    }

    /// @dev Records the call of an x402 payment (its id is derived from `(from, nonce)`).
    function _openPaidCall(uint256 callId, PaidCall calldata p, uint256 price, uint256 deadline) private {
        _openCall(callId, p.serviceId, p.jobIndex, p.from, price, deadline, p.inputsHash);
        emit PaidCallOpened(callId, p.from, p.nonce);
    }

    /// @dev Whether the token says `(from, nonce)` was used or cancelled.
    function _authorizationUsed(address from, bytes32 nonce) private view returns (bool) {
        return IERC3009(address(_TOKEN)).authorizationState(from, nonce);
    }

    /// @dev Executes the authorization (its revert bubbles up).
    function _collect(PaidCall calldata p) private {
        IERC3009(address(_TOKEN))
            .transferWithAuthorization(
                p.from, address(this), p.value, p.validAfter, p.validBefore, p.nonce, p.signature
            );
    }

    /// @dev Executes a paid-batch entry's authorization for `value` (its revert bubbles up).
    function _collectPaid(PaidResult calldata e, uint256 value) private {
        IERC3009(address(_TOKEN))
            .transferWithAuthorization(e.from, address(this), value, e.validAfter, e.validBefore, e.nonce, e.signature);
    }

    /// @dev Pulls exactly `amount` from `from` (fee-on-transfer tokens are refused).
    function _pull(address from, uint256 amount) private {
        uint256 balanceBefore = _TOKEN.balanceOf(address(this));
        _TOKEN.safeTransferFrom(from, address(this), amount);
        _checkReceived(balanceBefore, amount);
    }

    /// @dev Reverts unless the balance grew by exactly `expected` since `balanceBefore`.
    function _checkReceived(uint256 balanceBefore, uint256 expected) private view {
        uint256 received = _TOKEN.balanceOf(address(this)) - balanceBefore;
        if (received != expected) revert PaymentNotReceived(expected, received);
    }

    /// @dev Refunds one call.
    function _refund(uint256 callId) private {
        CallRecord storage c = _calls[callId];
        if (c.status != CallStatus.Open) revert CallNotOpen(callId, c.status);
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= c.deadline) revert DeadlineNotPassed(callId, c.deadline);
        c.status = CallStatus.Refunded;
        address payer = c.payer;
        uint256 payment = c.payment;
        claimable[payer] += payment;
        emit CallRefunded(callId, payer, payment);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Internals: settlement
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Reverts unless the call is open and not past its deadline.
    function _requireSettleable(CallRecord storage c, uint256 callId) private view {
        if (c.status != CallStatus.Open) revert CallNotOpen(callId, c.status);
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > c.deadline) revert DeadlinePassed(callId, c.deadline);
    }

    /// @dev Settles the calls of a batch and splits their payments into `pay` (effects only; the caller checks the
    /// certificate afterwards, and a failure reverts everything). Returns the batch digest the certificate must sign.
    function _settleCalls(
        uint64 serviceId,
        uint256[] calldata callIds,
        bytes32[] calldata resultHashes,
        Payout memory pay
    ) private returns (bytes32 digest) {
        bytes32[] memory leaves = new bytes32[](callIds.length);
        // Calls of one job all escrowed the job's (immutable) price: count them per job and split once per job.
        // jobs[j] = number of calls of job j, jobs[MAX_JOBS + j] = its price.
        uint256[] memory jobs = new uint256[](2 * MAX_JOBS);
        for (uint256 i; i < leaves.length; ++i) {
            (bytes32 leaf, uint256 job, uint256 payment) = _settleOne(serviceId, pay, callIds[i], resultHashes[i]);
            leaves[i] = leaf;
            ++jobs[job];
            jobs[MAX_JOBS + job] = payment;
        }
        for (uint256 j; j < MAX_JOBS; ++j) {
            if (jobs[j] != 0) _split(pay, jobs[MAX_JOBS + j], jobs[j]);
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(leaves.length); // ≤ MAX_BATCH_SIZE
        digest = VouchDigest.batchDigest(block.chainid, address(this), serviceId, VouchDigest.batchRoot(leaves), count);
    }

    /// @dev Settles one call of a batch of `serviceId`; returns its leaf, job and payment.
    function _settleOne(uint64 serviceId, Payout memory pay, uint256 callId, bytes32 resultHash)
        private
        returns (bytes32 leaf, uint256 job, uint256 payment)
    {
        CallRecord storage c = _calls[callId];
        _requireSettleable(c, callId);
        if (c.serviceId != serviceId) revert CallServiceMismatch(callId, c.serviceId, serviceId);
        leaf = VouchDigest.batchLeaf(callId, c.inputsHash, resultHash);
        _markSettled(c, callId, pay, resultHash);
        return (leaf, c.jobIndex, c.payment);
    }

    /// @dev Checks a paid batch's entries and certificate and records the batch (checks and effects); returns each
    /// entry's price to collect (0 = skip).
    function _acceptPaidBatch(
        uint64 serviceId,
        uint256 batchId,
        PaidResult[] calldata entries,
        Payout memory pay,
        bytes calldata signature
    ) private returns (uint256[] memory prices, uint32 collected) {
        bytes32 digest;
        bytes32 recordRoot;
        (digest, recordRoot, prices) = _paidEntries(serviceId, batchId, entries, pay);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(entries.length); // ≤ MAX_BATCH_SIZE
        for (uint256 i; i < count; ++i) {
            if (prices[i] != 0) ++collected;
        }
        // Every authorization was used already (typically: this batch was settled before). Nothing to pay or record.
        if (collected == 0) revert NothingToCollect(count);
        _verify(pay.keySet, serviceId, pay.bitmap, digest, signature);
        _paidBatches[batchId] = PaidBatchRecord({
            serviceId: serviceId,
            bitmapId: pay.bitmapId,
            settledAt: uint64(block.timestamp),
            count: count,
            recordRoot: recordRoot
        });
        emit PaidBatchSettled(batchId, serviceId, pay.bitmap, count, recordRoot);
    }

    /// @dev Checks the entries of a paid batch whose authorization is unused (service, payer, job, hooks), splits their
    /// payments into `pay` and emits their `PaidCallSettled`; an entry whose authorization was used is not checked and
    /// emits `PaidCallSkipped`. Returns the batch digest the certificate must sign, the record root and each entry's
    /// price to collect (0 = skip). Effects and checks only.
    function _paidEntries(uint64 serviceId, uint256 batchId, PaidResult[] calldata entries, Payout memory pay)
        private
        returns (bytes32 digest, bytes32 recordRoot, uint256[] memory prices)
    {
        uint256 n = entries.length;
        bytes32[] memory leaves = new bytes32[](n);
        bytes32[] memory records = new bytes32[](n);
        prices = new uint256[](n);
        // As in `_settleCalls`: jobs[j] = paid entries of job j, jobs[MAX_JOBS + j] = its price.
        uint256[] memory jobs = new uint256[](2 * MAX_JOBS);
        for (uint256 i; i < n; ++i) {
            uint256 price;
            (leaves[i], records[i], price) = _paidEntry(serviceId, batchId, entries[i]);
            if (price != 0) {
                uint8 job = entries[i].jobIndex;
                prices[i] = price;
                ++jobs[job];
                jobs[MAX_JOBS + job] = price;
            }
        }
        for (uint256 j; j < MAX_JOBS; ++j) {
            if (jobs[j] != 0) _split(pay, jobs[MAX_JOBS + j], jobs[j]);
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(n); // ≤ MAX_BATCH_SIZE
        digest = VouchDigest.batchDigest(block.chainid, address(this), serviceId, VouchDigest.batchRoot(leaves), count);
        recordRoot = VouchDigest.batchRoot(records);
    }

    /// @dev One entry of `_paidEntries`: its batch leaf, record leaf and price to collect (0 = skipped).
    function _paidEntry(uint64 serviceId, uint256 batchId, PaidResult calldata e)
        private
        returns (bytes32 leaf, bytes32 record, uint256 price)
    {
        uint256 callId = VouchDigest.paidCallId(serviceId, e.jobIndex, e.from, e.nonce);
        leaf = VouchDigest.batchLeaf(callId, e.inputsHash, e.resultHash);
        if (_authorizationUsed(e.from, e.nonce)) {
            emit PaidCallSkipped(e.from, e.nonce, _calls[callId].status == CallStatus.None ? 0 : callId);
        } else {
            (price,) = _checkCall(serviceId, e.jobIndex, e.from);
            emit PaidCallSettled(callId, batchId, e.from, e.nonce, e.jobIndex, price, e.inputsHash, e.resultHash);
        }
        record = VouchDigest.paidRecordLeaf(e.from, e.nonce, e.jobIndex, price, e.inputsHash, e.resultHash);
    }

    /// @dev Reverts `InvalidCertificate` unless `signature` is the aggregate over `digest` of the `bitmap` signers of
    /// `keySet` (the service's pinned key set, created by the registry at activation).
    function _verify(address keySet, uint64 serviceId, uint256 bitmap, bytes32 digest, bytes calldata signature)
        private
        view
    {
        if (!KEY_REGISTRY.verifyAggregate(keySet, bitmap, digest, signature)) {
            revert InvalidCertificate(serviceId, bitmap, digest);
        }
    }

    /// @dev Records a call's settlement and emits `CallSettled`.
    function _markSettled(CallRecord storage c, uint256 callId, Payout memory pay, bytes32 resultHash) private {
        c.status = CallStatus.Settled;
        c.settledAt = uint64(block.timestamp);
        c.bitmapId = pay.bitmapId;
        c.resultHash = resultHash;
        emit CallSettled(callId, resultHash, pay.bitmap);
    }

    /// @dev Checks the bitmap and the quorum; returns the signers with their weights (snapshot stake capped by current
    /// slashable stake), operators and current commission rates, and zeroed accumulators. The quorum is taken over the
    /// whole set's current weights, so a member that left neither counts for the signers nor blocks the others.
    function _quorum(uint64 serviceId, uint256 bitmap) private view returns (Payout memory pay) {
        Service storage s = _services[serviceId];
        Blueprint storage b = _blueprints[s.blueprintId];
        Policy storage policy = b.policy;
        pay.bitmap = bitmap;
        pay.keySet = s.keySet;
        // No key set and stake snapshot before activation (a paid batch names its service directly).
        if (pay.keySet == address(0)) revert ServiceNotActive(serviceId, s.status);
        pay.developer = b.owner;
        pay.hooks = b.hooks;
        pay.developerFeeBps = policy.developerFeeBps;
        uint256 n = s.operators.length;
        if (!_bitmapFits(bitmap, n)) revert InvalidSignerBitmap(bitmap, n);
        uint256 count = _popcount(bitmap);
        if (count < policy.minSigners) revert TooFewSigners(count, policy.minSigners);
        pay.slots = new uint256[](count);
        pay.stakes = new uint256[](count);
        pay.operators = new address[](count);
        uint256 stake;
        uint256 totalStake;
        uint256 k;
        for (uint256 slot; slot < n; ++slot) {
            address operator = s.operators[slot];
            uint256 weight = _weight(s.stakes[slot], operator);
            totalStake += weight;
            if ((bitmap >> slot) & 1 == 1) {
                pay.slots[k] = slot;
                pay.operators[k] = operator;
                pay.stakes[k] = weight;
                stake += weight;
                ++k;
            }
        }
        // Nothing at risk certifies nothing, even if every member's stake is gone.
        if (stake == 0 || stake * BPS < uint256(policy.quorumBps) * totalStake) {
            revert QuorumNotReached(stake, totalStake, policy.quorumBps);
        }
        pay.signerStake = stake;
        pay.commissionBps = new uint256[](count);
        pay.commissions = new uint256[](count);
        pay.rewards = new uint256[](count);
        for (uint256 j; j < count; ++j) {
            uint256 bps = STAKING.commissionBps(pay.operators[j]);
            pay.commissionBps[j] = bps > BPS ? BPS : bps;
        }
    }

    /// @dev Splits `count` payments of `price` per call (docs/protocol.md "Money flows") and adds the parts to `pay`:
    /// developer fee, protocol fee, each signer's share pro rata to snapshot stake (commission + delegators' part) and
    /// the integer-division dust. For each call, `price = developer + protocol + Σ shares + dust` exactly.
    function _split(Payout memory pay, uint256 price, uint256 count) private view {
        uint256 developerFee = price * pay.developerFeeBps / BPS;
        uint256 protocolFee = price * PROTOCOL_FEE_BPS / BPS;
        uint256 rest = price - developerFee - protocolFee;
        uint256 shared;
        uint256 m = pay.slots.length;
        for (uint256 k; k < m; ++k) {
            uint256 share = Math.mulDiv(rest, pay.stakes[k], pay.signerStake);
            uint256 commission = share * pay.commissionBps[k] / BPS;
            pay.commissions[k] += commission * count;
            pay.rewards[k] += (share - commission) * count;
            shared += share;
        }
        pay.developerFee += developerFee * count;
        pay.protocolFee += protocolFee * count;
        pay.dust += (rest - shared) * count;
        pay.payment += price * count;
    }

    /// @dev Sets `pay.bitmapId`, recording the bitmap the first time it is seen (later settlements by the same signer
    /// slots reuse it: one cold read instead of a new storage slot).
    function _recordBitmap(Payout memory pay) private {
        uint256 bitmap = pay.bitmap;
        uint48 id = bitmapIdOf[bitmap];
        if (id == 0) {
            id = ++bitmapCount;
            bitmapIdOf[bitmap] = id;
            signerBitmapOf[id] = bitmap;
            emit SignerBitmapRecorded(id, bitmap);
        }
        pay.bitmapId = id;
    }

    /// @dev Credits a settlement, then pays the delegators (effects before interactions).
    function _payout(uint64 serviceId, Payout memory pay, uint32 count) private {
        uint256 rewardTotal = _credit(serviceId, pay, count);
        _payDelegators(pay, rewardTotal);
    }

    /// @dev Credits a settlement (effects only): commissions to the signers, the developer fee to the blueprint owner,
    /// protocol fee and dust to the treasury (all claimable); the delegators' total leaves `accounted`. Emits
    /// `SignerPaid` per signer and `Settlement`. Returns the delegators' total.
    function _credit(uint64 serviceId, Payout memory pay, uint32 count) private returns (uint256 rewardTotal) {
        address developer = pay.developer;
        uint256 m = pay.slots.length;
        for (uint256 k; k < m; ++k) {
            address operator = pay.operators[k];
            uint256 commission = pay.commissions[k];
            uint256 reward = pay.rewards[k];
            if (commission != 0) claimable[operator] += commission;
            rewardTotal += reward;
            emit SignerPaid(operator, serviceId, commission, reward);
        }
        if (pay.developerFee != 0) claimable[developer] += pay.developerFee;
        uint256 toTreasury = pay.protocolFee + pay.dust;
        if (toTreasury != 0) claimable[TREASURY] += toTreasury;
        accounted -= rewardTotal;
        emit Settlement(
            serviceId,
            pay.bitmap,
            count,
            pay.payment,
            developer,
            pay.developerFee,
            pay.protocolFee,
            pay.dust,
            rewardTotal
        );
    }

    /// @dev Transfers the delegators' rewards to staking, then has it distribute each signer pool's part.
    function _payDelegators(Payout memory pay, uint256 rewardTotal) private {
        if (rewardTotal == 0) return;
        _TOKEN.safeTransfer(address(STAKING), rewardTotal);
        uint256 m = pay.slots.length;
        for (uint256 k; k < m; ++k) {
            uint256 reward = pay.rewards[k];
            if (reward != 0) STAKING.distributeRewards(pay.operators[k], reward);
        }
    }

    /// @dev Number of signers, their weight and the whole set's weight (bitmap assumed to fit).
    function _signerWeight(Service storage s, uint256 bitmap)
        private
        view
        returns (uint256 count, uint256 stake, uint256 total)
    {
        uint256 n = s.operators.length;
        for (uint256 slot; slot < n; ++slot) {
            uint256 weight = _weight(s.stakes[slot], s.operators[slot]);
            total += weight;
            if ((bitmap >> slot) & 1 == 1) {
                stake += weight;
                ++count;
            }
        }
    }

    /// @dev A signer's quorum and fee weight: its stake snapshotted at activation, capped by what is still slashable
    /// now. An operator that unstaked (or was slashed) since activation cannot vouch with stake it no longer risks.
    function _weight(uint256 snapshot, address operator) private view returns (uint256) {
        uint256 atRisk = STAKING.slashableStake(operator);
        return atRisk < snapshot ? atRisk : snapshot;
    }

    /// @dev Non-zero and no bit at or above `size`.
    function _bitmapFits(uint256 bitmap, uint256 size) private pure returns (bool) {
        return bitmap != 0 && (size >= 256 || bitmap >> size == 0);
    }

    /// @dev Number of set bits.
    function _popcount(uint256 x) private pure returns (uint256 count) {
        unchecked {
            for (; x != 0; x &= x - 1) {
                ++count;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Internals: hooks
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev Notifies the hooks of the results of a paid batch's collected entries (`prices[i] != 0`); a skipped entry
    /// was not settled here.
    function _notifyPaid(address hooks, uint64 serviceId, PaidResult[] calldata entries, uint256[] memory prices)
        private
    {
        for (uint256 i; i < entries.length; ++i) {
            if (prices[i] == 0) continue;
            PaidResult calldata e = entries[i];
            _notifyResult(
                hooks, serviceId, VouchDigest.paidCallId(serviceId, e.jobIndex, e.from, e.nonce), e.resultHash
            );
        }
    }

    /// @dev Notifies the hooks of a result with `HOOK_GAS_LIMIT` gas; a failure emits `HookFailed` and is otherwise
    /// ignored. Reverts `InsufficientGasForHook` if the transaction cannot give the hook its full allowance, so a
    /// submitter cannot skip the notification by starving it.
    function _notifyResult(address hooks, uint64 serviceId, uint256 callId, bytes32 resultHash) private {
        if (gasleft() < HOOK_GAS_REQUIRED) revert InsufficientGasForHook(gasleft(), HOOK_GAS_REQUIRED);
        bytes memory data = abi.encodeCall(IBlueprintHooks.onResult, (serviceId, callId, resultHash));
        bool ok;
        assembly ("memory-safe") {
            ok := call(HOOK_GAS_LIMIT, hooks, 0, add(data, 0x20), mload(data), 0x00, 0x00)
        }
        if (!ok) emit HookFailed(serviceId, callId, hooks);
    }
}
