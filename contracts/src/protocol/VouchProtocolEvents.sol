// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IVouchProtocol} from "../interfaces/IVouchProtocol.sol";

/// @title VouchProtocolEvents
/// @notice Events and errors of `VouchProtocol`.
/// @dev The events are complete: an indexer rebuilds every stored value from them (plus block timestamps):
/// - blueprints: `BlueprintCreated`, `BlueprintOwnershipTransferred`, `BlueprintMetadataUpdated`;
/// - services: `ServiceRequested` (operators in slot order, permitted callers), `ServiceApproved` (approval bitmap),
///   `ServiceActivated` (key set, stake snapshot), `ServiceTerminated`, `PermittedCallerSet`, `PublicAccessSet`;
/// - calls: `CallOpened` (+ `PaidCallOpened` for x402 calls), `CallSettled` (status, settledAt = block time,
///   resultHash, signerBitmap; `SignerBitmapRecorded` for the bitmap ids), `CallRefunded`;
/// - paid batches (`settlePaidBatch`, no per-call storage): `PaidCallSettled` / `PaidCallSkipped` per entry, then
///   `PaidBatchSettled` (`getPaidBatch`);
/// - money: `accounted` += `CallOpened.payment`, += `Settlement.payment` of a paid batch, −= `Settlement.delegatorRewards`,
///   −= `Claimed.amount`;
///   `claimable` += `SignerPaid.commission` (operator), `Settlement.developerFee` (developer),
///   `Settlement.protocolFee + Settlement.dust` (treasury, from `ProtocolDeployed`), `CallRefunded.amount` (payer);
///   = 0 on `Claimed`.
abstract contract VouchProtocolEvents {
    // ---------------------------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice The protocol was deployed with this configuration (all immutable).
    /// @param paymentToken EIP-3009 payment token.
    /// @param staking Staking contract.
    /// @param registry Key registry.
    /// @param treasury Treasury.
    /// @param protocolFeeBps Protocol fee in basis points.
    event ProtocolDeployed(
        address paymentToken, address staking, address registry, address treasury, uint16 protocolFeeBps
    );

    /// @notice A blueprint was created.
    /// @param blueprintId Its id.
    /// @param owner Its owner (receives developer fees).
    /// @param arbiter Its arbiter (zero = none).
    /// @param hooks Its hooks contract (zero = none).
    /// @param metadataHash Content hash of its metadata.
    /// @param metadataUri Location of its metadata.
    /// @param policy Its policy.
    /// @param jobs Its jobs.
    event BlueprintCreated(
        uint64 indexed blueprintId,
        address indexed owner,
        address arbiter,
        address hooks,
        bytes32 metadataHash,
        string metadataUri,
        IVouchProtocol.Policy policy,
        IVouchProtocol.Job[] jobs
    );

    /// @notice A blueprint changed owner.
    /// @param blueprintId The blueprint.
    /// @param previousOwner The previous owner.
    /// @param newOwner The new owner.
    event BlueprintOwnershipTransferred(
        uint64 indexed blueprintId, address indexed previousOwner, address indexed newOwner
    );

    /// @notice A blueprint's metadata pointer changed.
    /// @param blueprintId The blueprint.
    /// @param metadataUri New location.
    /// @param metadataHash New content hash.
    event BlueprintMetadataUpdated(uint64 indexed blueprintId, string metadataUri, bytes32 metadataHash);

    /// @notice A service was requested (status `Requested`).
    /// @param serviceId Its id.
    /// @param blueprintId Its blueprint.
    /// @param owner Its owner.
    /// @param expiry Unix time after which no call opens.
    /// @param publicAccess Whether anyone who pays may call it.
    /// @param operators Its operators in slot order.
    /// @param permittedCallers Callers permitted from the start.
    event ServiceRequested(
        uint64 indexed serviceId,
        uint64 indexed blueprintId,
        address indexed owner,
        uint64 expiry,
        bool publicAccess,
        address[] operators,
        address[] permittedCallers
    );

    /// @notice An operator approved a requested service.
    /// @param serviceId The service.
    /// @param operator The operator.
    event ServiceApproved(uint64 indexed serviceId, address indexed operator);

    /// @notice Every operator approved: the service is `Active`, with a pinned key set and stake snapshot.
    /// @param serviceId The service.
    /// @param keySet Key-set data contract of its operators.
    /// @param stakes Active stake of each operator (slot order) at activation: the quorum weights.
    /// @param totalStake Sum of `stakes`.
    event ServiceActivated(uint64 indexed serviceId, address keySet, uint256[] stakes, uint256 totalStake);

    /// @notice A service was terminated by its owner.
    /// @param serviceId The service.
    event ServiceTerminated(uint64 indexed serviceId);

    /// @notice A caller was permitted or removed.
    /// @param serviceId The service.
    /// @param caller The caller.
    /// @param allowed Whether it is now permitted.
    event PermittedCallerSet(uint64 indexed serviceId, address indexed caller, bool allowed);

    /// @notice A service's access mode changed.
    /// @param serviceId The service.
    /// @param publicAccess Whether anyone who pays may now call it.
    event PublicAccessSet(uint64 indexed serviceId, bool publicAccess);

    /// @notice A call was opened and its payment escrowed.
    /// @param callId The call.
    /// @param serviceId Its service.
    /// @param jobIndex Its job.
    /// @param payer Who paid (refunds go to it).
    /// @param payment Escrowed amount (the job price).
    /// @param deadline Latest settlement time (unix seconds).
    /// @param inputsHash keccak256 of the inputs.
    event CallOpened(
        uint256 indexed callId,
        uint64 indexed serviceId,
        uint8 jobIndex,
        address indexed payer,
        uint256 payment,
        uint256 deadline,
        bytes32 inputsHash
    );

    /// @notice The inputs of an on-chain call, for the nodes.
    /// @param callId The call.
    /// @param inputs The inputs.
    event CallInputs(uint256 indexed callId, bytes inputs);

    /// @notice A call was opened by the EIP-3009 authorization `(from, nonce)`.
    /// @param callId The call.
    /// @param from The payer.
    /// @param nonce The authorization nonce.
    event PaidCallOpened(uint256 indexed callId, address indexed from, bytes32 indexed nonce);

    /// @notice `openPaidCalls` skipped an authorization that was already used.
    /// @param from The payer.
    /// @param nonce The authorization nonce.
    /// @param callId The call it opened earlier, or 0 if it was used elsewhere (front-run: unattributed surplus).
    event PaidCallSkipped(address indexed from, bytes32 indexed nonce, uint256 callId);

    /// @notice Emitted by `settlePaidBatch` for each entry it collects: the call, paid and settled at once.
    /// @param callId The call (`VouchDigest.paidCallId(serviceId, jobIndex, payer, nonce)`).
    /// @param batchId The paid batch (its service, signers and time are in `PaidBatchSettled`).
    /// @param payer The payer.
    /// @param nonce The authorization's nonce.
    /// @param jobIndex The job.
    /// @param payment The amount collected (the job price).
    /// @param inputsHash Hash of the inputs.
    /// @param resultHash The certified result.
    event PaidCallSettled(
        uint256 indexed callId,
        uint256 indexed batchId,
        address indexed payer,
        bytes32 nonce,
        uint8 jobIndex,
        uint256 payment,
        bytes32 inputsHash,
        bytes32 resultHash
    );

    /// @notice Emitted once per `settlePaidBatch`, after its entries' `PaidCallSettled` / `PaidCallSkipped`.
    /// @param batchId The paid batch.
    /// @param serviceId The service.
    /// @param signerBitmap The certificate's signers.
    /// @param count Number of entries (paid or skipped).
    /// @param recordRoot Root of the record tree (`VouchDigest.paidRecordLeaf` leaves, entry order).
    event PaidBatchSettled(
        uint256 indexed batchId, uint64 indexed serviceId, uint256 signerBitmap, uint32 count, bytes32 recordRoot
    );

    /// @notice A call was settled (the transaction's `Settlement` event, emitted after its `CallSettled` events, holds
    /// the fees).
    /// @param callId The call.
    /// @param resultHash The certified result hash.
    /// @param signerBitmap The certificate's signers (bit i = operator slot i of the call's service).
    event CallSettled(uint256 indexed callId, bytes32 resultHash, uint256 signerBitmap);

    /// @notice A signer bitmap was stored for the first time (settled calls refer to it by id).
    /// @param bitmapId Its id.
    /// @param signerBitmap The bitmap.
    event SignerBitmapRecorded(uint48 indexed bitmapId, uint256 signerBitmap);

    /// @notice A certificate settled `count` calls of a service; fees were credited. Emitted once per `settle` or
    /// `settleBatch`, after the `CallSettled` and `SignerPaid` events of the same transaction.
    /// @param serviceId The service.
    /// @param signerBitmap The signers (bit i = operator slot i).
    /// @param count Number of calls settled.
    /// @param payment Sum of their payments.
    /// @param developer Blueprint owner credited with the developer fee.
    /// @param developerFee Credited (claimable) to `developer`.
    /// @param protocolFee Credited (claimable) to the treasury.
    /// @param dust Integer-division remainder, credited (claimable) to the treasury.
    /// @param delegatorRewards Sent to staking for the signers' delegators (see `SignerPaid`).
    event Settlement(
        uint64 indexed serviceId,
        uint256 signerBitmap,
        uint32 count,
        uint256 payment,
        address developer,
        uint256 developerFee,
        uint256 protocolFee,
        uint256 dust,
        uint256 delegatorRewards
    );

    /// @notice A signer's part of a settlement (emitted before the transaction's `Settlement` event).
    /// @param operator The signer.
    /// @param serviceId The service.
    /// @param commission Credited (claimable) to the operator.
    /// @param delegatorReward Distributed by staking to the operator's pool.
    event SignerPaid(address indexed operator, uint64 indexed serviceId, uint256 commission, uint256 delegatorReward);

    /// @notice A blueprint's `onResult` hook failed (ignored: it never blocks settlement).
    /// @param serviceId The service.
    /// @param callId The call.
    /// @param hooks The hooks contract.
    event HookFailed(uint64 indexed serviceId, uint256 indexed callId, address hooks);

    /// @notice A call was refunded after its deadline.
    /// @param callId The call.
    /// @param payer Credited (claimable) with the payment.
    /// @param amount The payment.
    event CallRefunded(uint256 indexed callId, address indexed payer, uint256 amount);

    /// @notice An account withdrew its claimable balance.
    /// @param account The account.
    /// @param amount The amount.
    event Claimed(address indexed account, uint256 amount);

    /// @notice Unattributed surplus was sent to the treasury.
    /// @param treasury The treasury.
    /// @param amount The amount.
    event SurplusSwept(address indexed treasury, uint256 amount);

    // ---------------------------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------------------------

    /// @notice A required address is zero.
    error ZeroAddress();

    /// @notice The staking contract pays delegator rewards in another token than the protocol's payment token.
    /// @param paymentToken The protocol's payment token.
    /// @param stakingPaymentToken The staking contract's reward token.
    error PaymentTokenMismatch(address paymentToken, address stakingPaymentToken);

    /// @notice A basis-point value above 10,000.
    /// @param bps The value.
    error InvalidBps(uint256 bps);

    /// @notice A blueprint needs 1 to `MAX_JOBS` jobs.
    /// @param count Jobs received.
    error InvalidJobCount(uint256 count);

    /// @notice A job price of 0 or above `MAX_PRICE`.
    /// @param jobIndex The job.
    /// @param price Its price.
    error InvalidJobPrice(uint256 jobIndex, uint256 price);

    /// @notice A job deadline outside [`MIN_JOB_DEADLINE`, `MAX_JOB_DEADLINE`].
    /// @param jobIndex The job.
    /// @param deadline Its deadline (seconds).
    error InvalidJobDeadline(uint256 jobIndex, uint256 deadline);

    /// @notice `quorumBps` must be in (0, 10,000].
    /// @param quorumBps The value.
    error InvalidQuorum(uint16 quorumBps);

    /// @notice `minSigners` must be at least 1.
    /// @param minSigners The value.
    error InvalidMinSigners(uint16 minSigners);

    /// @notice Developer fee plus protocol fee above 10,000 bps.
    /// @param developerFeeBps The developer fee.
    /// @param protocolFeeBps The protocol fee.
    error FeesTooHigh(uint16 developerFeeBps, uint16 protocolFeeBps);

    /// @notice Payer share plus reporter share above 10,000 bps.
    /// @param payerShareBps The payer share.
    /// @param reporterShareBps The reporter share.
    error InvalidSlashSplit(uint16 payerShareBps, uint16 reporterShareBps);

    /// @notice The staking unbonding delay must exceed the longest job deadline plus the dispute window.
    /// @param maxDeadline The longest job deadline (seconds).
    /// @param disputeWindow The dispute window (seconds).
    /// @param unbondingDelay The staking unbonding delay (seconds).
    error UnbondingTooShort(uint256 maxDeadline, uint32 disputeWindow, uint64 unbondingDelay);

    /// @notice A non-zero hooks address without code.
    /// @param hooks The address.
    error InvalidHooks(address hooks);

    /// @notice No such blueprint.
    /// @param blueprintId The id.
    error UnknownBlueprint(uint64 blueprintId);

    /// @notice Only the blueprint owner may do this.
    /// @param blueprintId The blueprint.
    /// @param account The sender.
    error NotBlueprintOwner(uint64 blueprintId, address account);

    /// @notice A service needs 1 to `MAX_OPERATORS` operators.
    /// @param count Operators received.
    error InvalidOperatorCount(uint256 count);

    /// @notice Fewer operators than the policy's `minSigners`: no certificate could ever settle.
    /// @param count Operators received.
    /// @param minSigners The policy's minimum.
    error TooFewOperators(uint256 count, uint16 minSigners);

    /// @notice A service expiry must be in the future.
    /// @param expiry The value.
    error InvalidExpiry(uint64 expiry);

    /// @notice An operator appears twice in a service's set.
    /// @param operator The operator.
    error DuplicateOperator(address operator);

    /// @notice Not a registered operator in staking.
    /// @param operator The address.
    error NotOperator(address operator);

    /// @notice The operator is jailed.
    /// @param operator The operator.
    error OperatorJailed(address operator);

    /// @notice The blueprint's hooks refused an operator (`allowOperator` false, reverted or out of gas).
    /// @param blueprintId The blueprint.
    /// @param operator The operator.
    error OperatorRefused(uint64 blueprintId, address operator);

    /// @notice The blueprint's hooks refused the request (`allowServiceRequest` false, reverted or out of gas).
    /// @param blueprintId The blueprint.
    /// @param owner The requester.
    error ServiceRequestRefused(uint64 blueprintId, address owner);

    /// @notice The service is not awaiting approvals.
    /// @param serviceId The service.
    /// @param status Its status.
    error ServiceNotRequested(uint64 serviceId, IVouchProtocol.ServiceStatus status);

    /// @notice The sender is not an operator of the service.
    /// @param serviceId The service.
    /// @param account The sender.
    error NotServiceOperator(uint64 serviceId, address account);

    /// @notice The operator already approved the service.
    /// @param serviceId The service.
    /// @param operator The operator.
    error AlreadyApproved(uint64 serviceId, address operator);

    /// @notice An operator has no active stake at activation (it would weigh nothing in the quorum).
    /// @param operator The operator.
    error NoActiveStake(address operator);

    /// @notice No such service.
    /// @param serviceId The id.
    error UnknownService(uint64 serviceId);

    /// @notice Only the service owner may do this.
    /// @param serviceId The service.
    /// @param account The sender.
    error NotServiceOwner(uint64 serviceId, address account);

    /// @notice The service is already terminated.
    /// @param serviceId The service.
    error ServiceAlreadyTerminated(uint64 serviceId);

    /// @notice Calls open only on active services.
    /// @param serviceId The service.
    /// @param status Its status.
    error ServiceNotActive(uint64 serviceId, IVouchProtocol.ServiceStatus status);

    /// @notice The service expired.
    /// @param serviceId The service.
    /// @param expiry Its expiry.
    error ServiceExpired(uint64 serviceId, uint64 expiry);

    /// @notice The service is not public and the caller (for x402: the payer) is not permitted.
    /// @param serviceId The service.
    /// @param caller The caller.
    error CallerNotPermitted(uint64 serviceId, address caller);

    /// @notice No such job in the service's blueprint.
    /// @param serviceId The service.
    /// @param jobIndex The job index.
    /// @param jobCount Number of jobs.
    error InvalidJobIndex(uint64 serviceId, uint8 jobIndex, uint256 jobCount);

    /// @notice The blueprint's hooks refused the call (`allowJobCall` false, reverted or out of gas).
    /// @param serviceId The service.
    /// @param jobIndex The job.
    /// @param caller The caller (for x402: the payer).
    error JobCallRefused(uint64 serviceId, uint8 jobIndex, address caller);

    /// @notice Parallel arrays differ in length, or are empty.
    /// @param length The first array's length.
    /// @param otherLength The other array's length.
    error LengthMismatch(uint256 length, uint256 otherLength);

    /// @notice This authorization already opened a call (a submitter treats this as success).
    /// @param from The payer.
    /// @param nonce The nonce.
    /// @param callId The call it opened.
    error PaidCallAlreadyOpened(address from, bytes32 nonce, uint256 callId);

    /// @notice The authorization's nonce was used or cancelled outside this contract (e.g. front-run straight to the
    /// token). Its funds, if they arrived, are unattributed surplus (`sweepSurplus`).
    /// @param from The payer.
    /// @param nonce The nonce.
    error AuthorizationAlreadyUsed(address from, bytes32 nonce);

    /// @notice An x402 payment's value differs from the job price.
    /// @param price The job price.
    /// @param value The authorized value.
    error WrongPaymentValue(uint256 price, uint256 value);

    /// @notice The token delivered a different amount than expected (fee-on-transfer or misbehaving token).
    /// @param expected Expected balance increase.
    /// @param received Actual balance increase.
    error PaymentNotReceived(uint256 expected, uint256 received);

    /// @notice The call is not open (unknown, settled or refunded). Settling a settled call reverts with this.
    /// @param callId The call.
    /// @param status Its status.
    error CallNotOpen(uint256 callId, IVouchProtocol.CallStatus status);

    /// @notice Too late to settle: the deadline passed (the call can be refunded).
    /// @param callId The call.
    /// @param deadline Its deadline.
    error DeadlinePassed(uint256 callId, uint64 deadline);

    /// @notice Too early to refund: the deadline has not passed.
    /// @param callId The call.
    /// @param deadline Its deadline.
    error DeadlineNotPassed(uint256 callId, uint64 deadline);

    /// @notice A call of a batch belongs to another service.
    /// @param callId The call.
    /// @param callServiceId Its service.
    /// @param serviceId The batch's service.
    error CallServiceMismatch(uint256 callId, uint64 callServiceId, uint64 serviceId);

    /// @notice A batch needs 1 to `MAX_BATCH_SIZE` calls.
    /// @param size Calls received.
    error InvalidBatchSize(uint256 size);

    /// @notice Every authorization of a paid batch was used already (usually: the batch was settled before; a submitter
    /// treats this as success). Nothing is collected, paid or recorded.
    /// @param count Entries in the batch.
    error NothingToCollect(uint256 count);

    /// @notice The signer bitmap is empty or has a bit at or above the set size.
    /// @param bitmap The bitmap.
    /// @param setSize Number of operators of the service.
    error InvalidSignerBitmap(uint256 bitmap, uint256 setSize);

    /// @notice Fewer signers than the policy's `minSigners`.
    /// @param count Signers.
    /// @param minSigners The minimum.
    error TooFewSigners(uint256 count, uint16 minSigners);

    /// @notice The signers' snapshot stake is below `quorumBps` of the service's.
    /// @param signerStake The signers' stake.
    /// @param totalStake The service's stake.
    /// @param quorumBps The quorum.
    error QuorumNotReached(uint256 signerStake, uint256 totalStake, uint16 quorumBps);

    /// @notice The aggregate signature does not verify against the service's key set.
    /// @param serviceId The service.
    /// @param signerBitmap The claimed signers.
    /// @param digest The digest it should sign.
    error InvalidCertificate(uint64 serviceId, uint256 signerBitmap, bytes32 digest);

    /// @notice Nothing to claim.
    /// @param account The sender.
    error NothingToClaim(address account);

    /// @notice No unattributed surplus.
    /// @param balance The token balance.
    /// @param accounted The accounted total.
    error NoSurplus(uint256 balance, uint256 accounted);

    /// @notice Not enough gas left to give a result hook its full allowance (raise the transaction gas limit).
    /// @param available Gas left.
    /// @param required Gas needed.
    error InsufficientGasForHook(uint256 available, uint256 required);
}
