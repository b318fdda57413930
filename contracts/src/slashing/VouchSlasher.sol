// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {KeyRegistry} from "../KeyRegistry.sol";
import {BLS} from "../bls/BLS.sol";
import {Domain} from "../bls/Domain.sol";
import {VouchDigest} from "../bls/VouchDigest.sol";
import {IVouchProtocol} from "../interfaces/IVouchProtocol.sol";
import {IVouchStaking} from "../interfaces/IVouchStaking.sol";

/// @title VouchSlasher
/// @notice Permissionless slashing of the faults an operator's own BLS signatures prove (DESIGN.md §4.3):
/// equivocation (slashed at once), deviation from a settled certificate (slashed after the blueprint's dispute window
/// unless its arbiter vetoes) and missed deadlines (small penalty, jailing after repeated misses).
/// @dev Decisions:
/// - Evidence is one operator's signature under `Domain.DST_RESULT`, on a result digest (`batchCount == 0`) or on a
///   batch digest plus a Merkle proof of the call's leaf. It is checked against `registry.keyOf(operator)`, and the
///   operator must sit at the given slot of the call's service.
/// - A *statement* is `(inputsHash, resultHash)` for one `(serviceId, callId)`. Equivocation is two signed, different
///   statements for one call: a different `resultHash` **or** a different `inputsHash`. An honest node signs at most
///   one statement per call (its signing guard is keyed by `(serviceId, callId)`), so both are faults. The same
///   statement signed twice (e.g. alone and inside a batch) is not.
/// - Deviation is a signed statement with the call's own `inputsHash` and a `resultHash` other than the settled one. A
///   statement on other inputs is not compared with the certificate (it is equivocation material if the operator also
///   signed the real inputs).
/// - A tolerant job's operator first signs a *commitment* to its own output (`VouchDigest.commitmentDigest`, tag
///   `COMMIT_TAG`, same DST) and then the canonical output only if it agrees with its own within the blueprint's
///   tolerance (docs/design/tolerant-verification.md). A commitment to an output other than the certified one is a
///   deviation too (`proposeCommitmentDeviation`), proposed with the committed bytes in calldata so that anyone can
///   check the tolerance during the dispute window. Whether two outputs agree is decided off-chain, so such a proposal
///   is accepted only where the blueprint's arbiter can veto it (an arbiter and a non-zero dispute window). Both kinds
///   share the proposal id space: one deviation proposal per (operator, callId), whichever evidence it rests on.
/// - Amounts: `slashableStake(operator) × bps / 10_000` read when the slash happens (at execution for deviations), with
///   the blueprint's policy read at that time. Of it, `payerShareBps` go to the call's payer, `reporterShareBps` to the
///   reporter (the proposer for deviations), the rest is burned; `VouchStaking.slash` credits them. Basis points are
///   clamped (a slash to 100 %, the reporter share to what the payer share leaves) so a misconfigured policy can never
///   make an operator unslashable. A zero amount skips the staking call but still records the report.
/// - One report per (operator, callId, fault): a repeated report reverts `AlreadyReported`. A vetoed deviation is
///   final: it cannot be proposed again for the same operator and call.
/// - Missed deadlines (`callJob` calls only): reportable once the alibi window (the blueprint's dispute window after
///   settlement, or after the deadline of a refunded call) has passed without `presentAlibi`; jail for `JAIL_DURATION`
///   when the operator's misses in that blueprint since its last jailing for them reach the blueprint's
///   `jailAfterMisses` (0 = never); that counter then restarts.
contract VouchSlasher is ReentrancyGuardTransient {
    // ------------------------------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------------------------------

    /// @notice One operator's signature on a statement about a call, alone or inside a batch.
    /// @dev Single form when `batchCount == 0`: the signed digest is
    /// `resultDigest(chainid, protocol, serviceId, callId, inputsHash, resultHash)` and `batchRoot`, `proof` are
    /// ignored. Batch form otherwise: the signed digest is `batchDigest(chainid, protocol, serviceId, batchRoot,
    /// batchCount)` and `proof` proves `batchLeaf(callId, inputsHash, resultHash)` under `batchRoot`.
    struct SignedResult {
        bytes32 inputsHash;
        bytes32 resultHash;
        bytes signature; // 256-byte EIP-2537 G2 signature by the operator alone
        bytes32 batchRoot;
        uint32 batchCount;
        bytes32[] proof;
    }

    /// @notice One operator's signed commitment to its own output for a call of a tolerant job: a signature under
    /// `Domain.DST_RESULT` on `commitmentDigest(chainid, protocol, serviceId, callId, inputsHash, outputHash)`.
    struct SignedCommitment {
        bytes32 inputsHash;
        bytes32 outputHash; // keccak256 of the committed output bytes
        bytes signature; // 256-byte EIP-2537 G2 signature by the operator alone
    }

    /// @notice Kinds of fault; one report per (operator, callId, fault).
    enum Fault {
        Equivocation,
        Deviation,
        MissedDeadline
    }

    /// @notice Lifecycle of a deviation proposal: Pending → Vetoed (arbiter, before the window ends) or Pending →
    /// Executed (anyone, once the window has ended).
    enum ProposalStatus {
        None,
        Pending,
        Vetoed,
        Executed
    }

    /// @notice A deviation proposal.
    struct DeviationProposal {
        address operator; // the operator whose signature deviates
        uint64 executableAt; // proposal time + the blueprint's dispute window (unix seconds)
        ProposalStatus status;
        uint256 callId; // the settled call
        address proposer; // receives the reporter share
    }

    /// @notice One collected entry of a paid batch (`VouchProtocol.settlePaidBatch`) and its Merkle proof under the
    /// batch's `recordRoot` (leaf `VouchDigest.paidRecordLeaf`).
    struct PaidCallProof {
        address from; // payer
        bytes32 nonce; // authorization nonce; the call id is `VouchDigest.paidCallId(serviceId, jobIndex, from, nonce)`
        uint8 jobIndex;
        uint256 payment; // amount collected (non-zero: skipped entries are not settled calls)
        bytes32 inputsHash;
        bytes32 resultHash;
        bytes32[] proof;
    }

    /// @notice Missed-deadline record of an operator in one blueprint.
    struct MissRecord {
        uint32 sinceJail; // misses in this blueprint since the operator was last jailed for them
        uint32 total; // every miss reported
        uint64 jailedUntil; // end of the last jailing by this contract (0 = never)
    }

    // ------------------------------------------------------------------------------------------------------------
    // Constants and immutables
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Basis-point denominator.
    uint256 public constant BPS = 10_000;

    /// @notice How long an operator is jailed once its misses reach the blueprint's `jailAfterMisses`.
    uint64 public constant JAIL_DURATION = 30 days;

    /// @dev Bit in `_reported` set once an alibi (`presentAlibi`) was shown; above every `Fault` bit.
    uint256 private constant ALIBI = 1 << 7;

    /// @notice The protocol: calls, services, blueprints; its address is bound in every signed digest.
    IVouchProtocol public immutable PROTOCOL;

    /// @notice The staking contract that slashes and jails (it accepts these calls only from this contract).
    IVouchStaking public immutable STAKING;

    /// @notice The key registry holding the operators' BLS keys.
    KeyRegistry public immutable REGISTRY;

    // ------------------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------------------

    /// @dev Bit `1 << uint8(fault)` set once `fault` of `operator` on `callId` was reported (equivocation, missed
    /// deadline; deviations live in `_proposals`).
    mapping(address operator => mapping(uint256 callId => uint256 faults)) private _reported;

    /// @dev Deviation proposals by id (`proposalIdOf(operator, callId)`).
    mapping(uint256 proposalId => DeviationProposal) private _proposals;

    /// @dev Calls of paid batches proven with `provePaidCall` (the protocol stores nothing per call of a paid batch).
    mapping(uint256 callId => IVouchProtocol.Call) private _paidCalls;

    /// @dev Missed-deadline records.
    mapping(address operator => mapping(uint64 blueprintId => MissRecord)) private _misses;

    // ------------------------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------------------------

    /// @notice A call of a paid batch was proven; from now on it can be reported like any settled call.
    /// @param callId The call.
    /// @param batchId Its paid batch.
    /// @param payer The payer.
    event PaidCallProven(uint256 indexed callId, uint256 indexed batchId, address indexed payer);

    /// @notice An equivocation was proven and slashed.
    /// @param operator The slashed operator.
    /// @param serviceId The call's service.
    /// @param callId The call both statements are about.
    /// @param reporter Sender; receives the reporter share.
    /// @param statementA `keccak256(abi.encode(inputsHash, resultHash))` of the first statement.
    /// @param statementB Same for the second statement.
    /// @param amount Amount requested from staking (before its cap).
    /// @param slashed Amount staking actually slashed.
    event EquivocationSlashed(
        address indexed operator,
        uint64 indexed serviceId,
        uint256 indexed callId,
        address reporter,
        bytes32 statementA,
        bytes32 statementB,
        uint256 amount,
        uint256 slashed
    );

    /// @notice A deviation was proposed.
    /// @param proposalId The new proposal.
    /// @param operator The operator whose signature deviates.
    /// @param callId The settled call.
    /// @param proposer Sender; receives the reporter share on execution.
    /// @param resultHash The result the operator signed.
    /// @param settledResultHash The result of the certificate.
    /// @param executableAt When the proposal becomes executable and the veto window closes.
    event DeviationProposed(
        uint256 indexed proposalId,
        address indexed operator,
        uint256 indexed callId,
        address proposer,
        bytes32 resultHash,
        bytes32 settledResultHash,
        uint64 executableAt
    );

    /// @notice A deviation resting on an output commitment was proposed (`proposeCommitmentDeviation`); it is vetoed
    /// and executed like any deviation proposal. The committed output is in the proposal's calldata.
    /// @param proposalId The new proposal.
    /// @param operator The operator whose commitment deviates.
    /// @param callId The settled call.
    /// @param proposer Sender; receives the reporter share on execution.
    /// @param outputHash `keccak256` of the output the operator committed to.
    /// @param certifiedResultHash The result of the certificate.
    /// @param executableAt When the proposal becomes executable and the veto window closes.
    event CommitmentDeviationProposed(
        uint256 indexed proposalId,
        address indexed operator,
        uint256 indexed callId,
        address proposer,
        bytes32 outputHash,
        bytes32 certifiedResultHash,
        uint64 executableAt
    );

    /// @notice The blueprint's arbiter vetoed a deviation proposal; it can never execute.
    /// @param proposalId The proposal.
    /// @param arbiter The sender.
    event DeviationVetoed(uint256 indexed proposalId, address indexed arbiter);

    /// @notice A deviation proposal was executed.
    /// @param proposalId The proposal.
    /// @param operator The slashed operator.
    /// @param callId The settled call.
    /// @param executor Sender (anyone).
    /// @param amount Amount requested from staking (before its cap).
    /// @param slashed Amount staking actually slashed.
    event DeviationSlashed(
        uint256 indexed proposalId,
        address indexed operator,
        uint256 indexed callId,
        address executor,
        uint256 amount,
        uint256 slashed
    );

    /// @notice A missed deadline was reported and penalised.
    /// @param operator The operator that did not sign.
    /// @param callId The settled or refunded call.
    /// @param reporter Sender; receives the reporter share.
    /// @param amount Amount requested from staking (before its cap).
    /// @param slashed Amount staking actually slashed.
    /// @param missesSinceJail The operator's misses in the call's blueprint since its last jailing for them, this one
    /// included (0 if it jailed now).
    /// @param totalMisses Every miss of the operator in the call's blueprint, this one included.
    event MissedDeadlineSlashed(
        address indexed operator,
        uint256 indexed callId,
        address indexed reporter,
        uint256 amount,
        uint256 slashed,
        uint32 missesSinceJail,
        uint32 totalMisses
    );

    /// @notice An operator's signature on a call was shown, so it cannot be reported for missing it.
    /// @param operator The operator.
    /// @param callId The call.
    /// @param presenter Sender (the operator or anyone holding its signature).
    event AlibiPresented(address indexed operator, uint256 indexed callId, address indexed presenter);

    /// @notice The operator reached its blueprint's miss limit and was jailed.
    /// @param operator The operator.
    /// @param callId The miss that reached the limit.
    /// @param misses Misses counted (the limit or more).
    /// @param until End of the jailing (unix seconds).
    event OperatorJailed(address indexed operator, uint256 indexed callId, uint32 misses, uint64 until);

    // ------------------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------------------

    /// @notice A constructor argument is the zero address.
    error ZeroAddress();

    /// @notice The call does not exist.
    /// @param callId The call.
    error UnknownCall(uint256 callId);

    /// @notice No paid batch `batchId`.
    /// @param batchId The batch.
    error UnknownPaidBatch(uint256 batchId);

    /// @notice A skipped entry (payment 0) of a paid batch is not a settled call.
    /// @param callId The call.
    error PaidCallNotCollected(uint256 callId);

    /// @notice The call is a protocol call (opened with `callJob` or `openPaidCall`); report it by id.
    /// @param callId The call.
    error NotAPaidBatchCall(uint256 callId);

    /// @notice The call belongs to another service.
    /// @param callId The call.
    /// @param serviceId The service named by the report.
    /// @param callServiceId The call's service.
    error CallNotInService(uint256 callId, uint64 serviceId, uint64 callServiceId);

    /// @notice The operator is not at `slot` of the service's operator set.
    /// @param serviceId The service.
    /// @param slot The slot given.
    /// @param operator The operator given.
    /// @param atSlot The operator at that slot (zero if the slot is out of range).
    error WrongSlot(uint64 serviceId, uint256 slot, address operator, address atSlot);

    /// @notice The operator has no registered BLS key.
    /// @param operator The operator.
    error OperatorKeyNotRegistered(address operator);

    /// @notice The signature is not the operator's signature on `digest`.
    /// @param operator The operator.
    /// @param digest The digest the evidence claims was signed.
    error InvalidSignature(address operator, bytes32 digest);

    /// @notice The Merkle proof does not place the call's leaf under the batch root.
    /// @param batchRoot The root.
    /// @param leaf The leaf `batchLeaf(callId, inputsHash, resultHash)`.
    error InvalidMerkleProof(bytes32 batchRoot, bytes32 leaf);

    /// @notice Both pieces of evidence sign the same statement: not an equivocation.
    /// @param callId The call.
    /// @param inputsHash The common inputs hash.
    /// @param resultHash The common result hash.
    error NotConflicting(uint256 callId, bytes32 inputsHash, bytes32 resultHash);

    /// @notice This fault of this operator on this call was already reported (or proposed).
    /// @param operator The operator.
    /// @param callId The call.
    /// @param fault The fault.
    error AlreadyReported(address operator, uint256 callId, Fault fault);

    /// @notice The call is not settled.
    /// @param callId The call.
    /// @param status Its status.
    error CallNotSettled(uint256 callId, IVouchProtocol.CallStatus status);

    /// @notice The signed inputs hash is not the call's.
    /// @param callId The call.
    /// @param expected The call's inputs hash.
    /// @param actual The signed inputs hash.
    error InputsMismatch(uint256 callId, bytes32 expected, bytes32 actual);

    /// @notice The signed result (or committed output) is the settled result: no deviation.
    /// @param callId The call.
    /// @param resultHash The settled result hash.
    error NotDeviating(uint256 callId, bytes32 resultHash);

    /// @notice The output published with a commitment deviation is not the committed one.
    /// @param callId The call.
    /// @param outputHash The committed output hash.
    /// @param actual `keccak256` of the published output.
    error OutputMismatch(uint256 callId, bytes32 outputHash, bytes32 actual);

    /// @notice Whether a committed output is within tolerance of the certified one is decided off-chain, so a
    /// commitment deviation needs a blueprint whose arbiter can veto it: an arbiter and a non-zero dispute window.
    /// @param callId The call.
    /// @param blueprintId Its blueprint.
    /// @param arbiter The blueprint's arbiter (zero = none).
    /// @param disputeWindow The blueprint's dispute window (seconds).
    error CommitmentNotDisputable(uint256 callId, uint64 blueprintId, address arbiter, uint32 disputeWindow);

    /// @notice The proposal is not pending (unknown, vetoed or executed).
    /// @param proposalId The proposal.
    /// @param status Its status.
    error ProposalNotPending(uint256 proposalId, ProposalStatus status);

    /// @notice The sender is not the arbiter of the call's blueprint (or the blueprint has none).
    /// @param proposalId The proposal.
    /// @param sender The sender.
    /// @param arbiter The blueprint's arbiter (zero = none).
    error NotArbiter(uint256 proposalId, address sender, address arbiter);

    /// @notice The dispute window has ended: the proposal can no longer be vetoed.
    /// @param proposalId The proposal.
    /// @param executableAt When the window ended.
    error VetoWindowClosed(uint256 proposalId, uint64 executableAt);

    /// @notice The dispute window is still open: the proposal cannot be executed yet.
    /// @param proposalId The proposal.
    /// @param executableAt When it becomes executable.
    error DisputeWindowOpen(uint256 proposalId, uint64 executableAt);

    /// @notice An x402 call's inputs reach operators only through the gateway that took the payment, so a missing
    /// signature proves nothing against an operator (the gateway may never have sent it the call, or a payer may have
    /// opened it with inputs nobody was given). Only `callJob` calls, whose inputs are on-chain, can be missed.
    /// @param callId The x402 call.
    error MissNotProvable(uint256 callId);

    /// @notice The call's job is tolerant or checked: its operators sign only what an aggregator proposes (they endorse
    /// an output, or check an executor's), so one that did not sign may never have been asked, and a call nobody
    /// aggregated is missed by all. Only exact jobs, which each operator can run and sign alone, can be missed.
    /// @param callId The call.
    /// @param verification Its job's verification mode.
    error MissNotProvableForJob(uint256 callId, IVouchProtocol.Verification verification);

    /// @notice Missed-deadline reports wait until the operator's alibi window has ended.
    /// @param callId The call.
    /// @param alibiUntil Last second of the window (settlement time, or the deadline of a refunded call, plus the
    /// blueprint's dispute window).
    error AlibiWindowOpen(uint256 callId, uint256 alibiUntil);

    /// @notice The operator proved it signed the call (`presentAlibi`), so it did not miss it.
    /// @param operator The operator.
    /// @param callId The call.
    error OperatorHasAlibi(address operator, uint256 callId);

    /// @notice An alibi for a settled call must sign the certified result (another result is a deviation).
    /// @param callId The call.
    /// @param certified The settled result hash.
    /// @param signed The signed result hash.
    error AlibiResultMismatch(uint256 callId, bytes32 certified, bytes32 signed);

    /// @notice The call is neither settled nor refunded, so no deadline was missed yet.
    /// @param callId The call.
    /// @param status Its status.
    error CallNotFinal(uint256 callId, IVouchProtocol.CallStatus status);

    /// @notice The operator signed the settled certificate: it did not miss the deadline.
    /// @param callId The call.
    /// @param operator The operator.
    /// @param slot Its slot (bit in the signer bitmap).
    error OperatorSigned(uint256 callId, address operator, uint256 slot);

    // ------------------------------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Deploys the slasher; `staking.initialize(protocol, slasher)` must then name this contract.
    /// @param protocol The protocol (its address is bound in every signed digest).
    /// @param staking The staking contract.
    /// @param registry The key registry.
    constructor(IVouchProtocol protocol, IVouchStaking staking, KeyRegistry registry) {
        if (address(protocol) == address(0) || address(staking) == address(0) || address(registry) == address(0)) {
            revert ZeroAddress();
        }
        PROTOCOL = protocol;
        STAKING = staking;
        REGISTRY = registry;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Equivocation
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Proves that `operator` signed two different statements for one call and slashes it at once:
    /// `equivocationSlashBps` of its slashable stake, split between the call's payer, the sender and the burn.
    /// @dev Checks: the call exists and belongs to `serviceId`; not reported yet; `operator` is at `slot`; the
    /// statements differ (`inputsHash` or `resultHash`); both signatures verify. The call may be in any status.
    /// @param serviceId The service of the call (bound in the digests).
    /// @param callId The call.
    /// @param operator The operator.
    /// @param slot The operator's slot in the service's operator set.
    /// @param a First signed statement.
    /// @param b Second signed statement.
    /// @return slashed Amount staking slashed.
    function reportEquivocation(
        uint64 serviceId,
        uint256 callId,
        address operator,
        uint256 slot,
        SignedResult calldata a,
        SignedResult calldata b
    ) external nonReentrant returns (uint256 slashed) {
        IVouchProtocol.Call memory call = _call(callId);
        if (call.status == IVouchProtocol.CallStatus.None) revert UnknownCall(callId);
        if (call.serviceId != serviceId) revert CallNotInService(callId, serviceId, call.serviceId);
        uint256 flag = _flag(Fault.Equivocation);
        if (_reported[operator][callId] & flag != 0) revert AlreadyReported(operator, callId, Fault.Equivocation);
        IVouchProtocol.Service memory service = PROTOCOL.getService(serviceId);
        _checkSlot(serviceId, service, slot, operator);
        if (a.inputsHash == b.inputsHash && a.resultHash == b.resultHash) {
            revert NotConflicting(callId, a.inputsHash, a.resultHash);
        }
        bytes memory pubkey = _keyOf(operator);
        _verify(serviceId, callId, operator, pubkey, a);
        _verify(serviceId, callId, operator, pubkey, b);
        IVouchProtocol.Policy memory policy = PROTOCOL.getBlueprint(service.blueprintId).policy;

        _reported[operator][callId] |= flag;

        uint256 amount;
        (amount, slashed) = _slash(operator, policy.equivocationSlashBps, policy, call.payer, msg.sender);
        emit EquivocationSlashed(
            operator,
            serviceId,
            callId,
            msg.sender,
            _statement(a.inputsHash, a.resultHash),
            _statement(b.inputsHash, b.resultHash),
            amount,
            slashed
        );
    }

    // ------------------------------------------------------------------------------------------------------------
    // Paid batches
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Proves that a call was paid and settled in paid batch `batchId`, so that it can be reported by id with
    /// `reportEquivocation`, `proposeDeviation`, `proposeCommitmentDeviation` and `reportMissedDeadline` like a protocol
    /// call. Anyone; proving a call again returns its id.
    /// @dev The recorded call has the batch's service, signers and settlement time, the payer `p.from` and a deadline
    /// equal to its settlement time (a paid batch is never late). Only collected entries (payment > 0) are calls: the
    /// token lets an authorization be collected once, so a call has at most one such entry in any batch.
    /// @param batchId The paid batch.
    /// @param p The entry and its proof.
    /// @return callId The call (`VouchDigest.paidCallId(batch's serviceId, p.jobIndex, p.from, p.nonce)`).
    function provePaidCall(uint256 batchId, PaidCallProof calldata p) external returns (uint256 callId) {
        IVouchProtocol.PaidBatch memory batch = PROTOCOL.getPaidBatch(batchId);
        if (batch.count == 0) revert UnknownPaidBatch(batchId);
        callId = VouchDigest.paidCallId(batch.serviceId, p.jobIndex, p.from, p.nonce);
        if (_paidCalls[callId].status != IVouchProtocol.CallStatus.None) return callId;
        if (PROTOCOL.getCall(callId).status != IVouchProtocol.CallStatus.None) revert NotAPaidBatchCall(callId);
        if (p.payment == 0) revert PaidCallNotCollected(callId);
        bytes32 leaf = VouchDigest.paidRecordLeaf(p.from, p.nonce, p.jobIndex, p.payment, p.inputsHash, p.resultHash);
        if (!MerkleProof.verifyCalldata(p.proof, batch.recordRoot, leaf)) {
            revert InvalidMerkleProof(batch.recordRoot, leaf);
        }
        _paidCalls[callId] = IVouchProtocol.Call({
            serviceId: batch.serviceId,
            jobIndex: p.jobIndex,
            status: IVouchProtocol.CallStatus.Settled,
            deadline: batch.settledAt,
            settledAt: batch.settledAt,
            payer: p.from,
            // forge-lint: disable-next-line(unsafe-typecast)
            payment: uint128(p.payment), // a job price (≤ the protocol's MAX_PRICE, 96 bits)
            inputsHash: p.inputsHash,
            resultHash: p.resultHash,
            signerBitmap: batch.signerBitmap
        });
        emit PaidCallProven(callId, batchId, p.from);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Deviation
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Proposes to slash `operator` for signing, on the inputs of settled call `callId`, a result other than
    /// the certified one. Executable by anyone once the blueprint's dispute window has passed, unless its arbiter
    /// vetoes first; the sender receives the reporter share.
    /// @dev Checks: the call is settled; no proposal yet for (operator, callId), from either entry point
    /// (`proposeCommitmentDeviation` shares the ids); `operator` is at `slot`; the signed inputs hash is the call's and
    /// the signed result hash is not; the signature verifies.
    /// @param callId The settled call.
    /// @param operator The operator.
    /// @param slot The operator's slot in the call's service.
    /// @param s The operator's signed statement.
    /// @return proposalId The new proposal.
    function proposeDeviation(uint256 callId, address operator, uint256 slot, SignedResult calldata s)
        external
        nonReentrant
        returns (uint256 proposalId)
    {
        IVouchProtocol.Call memory call;
        uint64 blueprintId;
        (call, blueprintId, proposalId) = _checkDeviation(callId, operator, slot, s.inputsHash, s.resultHash);
        _verify(call.serviceId, callId, operator, _keyOf(operator), s);
        uint32 disputeWindow = PROTOCOL.getBlueprint(blueprintId).policy.disputeWindow;

        uint64 executableAt = _storeProposal(proposalId, operator, callId, disputeWindow);
        emit DeviationProposed(proposalId, operator, callId, msg.sender, s.resultHash, call.resultHash, executableAt);
    }

    /// @notice Proposes to slash `operator` of a tolerant job for committing, on the inputs of settled call `callId`,
    /// to an output other than the certified one (docs/design/tolerant-verification.md). The committed bytes are
    /// published as `output` so that anyone, and the arbiter, can check during the dispute window whether they agree
    /// with the certified output within the blueprint's tolerance; the arbiter vetoes a proposal whose outputs agree.
    /// Otherwise the same deviation proposal as `proposeDeviation` (`vetoDeviation`, `executeDeviation`, the sender
    /// receives the reporter share), in the same id space: one deviation proposal per (operator, callId).
    /// @dev Checks: the call is settled; no deviation proposal yet for (operator, callId); `operator` is at `slot`;
    /// the committed inputs hash is the call's and the committed output hash is not the certified result hash; the
    /// blueprint has an arbiter and a non-zero dispute window; `keccak256(output)` is the committed output hash; the
    /// signature verifies on the commitment digest (`COMMIT_TAG`: a result signature is not a commitment).
    /// @param callId The settled call.
    /// @param operator The operator.
    /// @param slot The operator's slot in the call's service.
    /// @param c The operator's signed commitment.
    /// @param output The committed output bytes (`keccak256(output) == c.outputHash`).
    /// @return proposalId The new proposal (`proposalIdOf(operator, callId)`).
    function proposeCommitmentDeviation(
        uint256 callId,
        address operator,
        uint256 slot,
        SignedCommitment calldata c,
        bytes calldata output
    ) external nonReentrant returns (uint256 proposalId) {
        IVouchProtocol.Call memory call;
        uint64 blueprintId;
        (call, blueprintId, proposalId) = _checkDeviation(callId, operator, slot, c.inputsHash, c.outputHash);
        uint32 disputeWindow = _commitmentDisputeWindow(callId, blueprintId);
        bytes32 published = keccak256(output);
        if (published != c.outputHash) revert OutputMismatch(callId, c.outputHash, published);
        _verifyCommitment(call.serviceId, callId, operator, c);

        uint64 executableAt = _storeProposal(proposalId, operator, callId, disputeWindow);
        emit CommitmentDeviationProposed(
            proposalId, operator, callId, msg.sender, c.outputHash, call.resultHash, executableAt
        );
    }

    /// @notice Cancels a pending deviation proposal for good. Only the arbiter of the call's blueprint, strictly
    /// before `executableAt`.
    /// @param proposalId The proposal.
    function vetoDeviation(uint256 proposalId) external nonReentrant {
        DeviationProposal storage proposal = _pending(proposalId);
        // Validators can skew timestamps by seconds; dispute windows are hours or days.
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp >= proposal.executableAt) revert VetoWindowClosed(proposalId, proposal.executableAt);
        IVouchProtocol.Call memory call = _call(proposal.callId);
        uint64 blueprintId = PROTOCOL.getService(call.serviceId).blueprintId;
        address arbiter = PROTOCOL.getBlueprint(blueprintId).arbiter;
        if (arbiter == address(0) || msg.sender != arbiter) revert NotArbiter(proposalId, msg.sender, arbiter);

        proposal.status = ProposalStatus.Vetoed;
        emit DeviationVetoed(proposalId, msg.sender);
    }

    /// @notice Executes a pending deviation proposal once its dispute window has passed (from `executableAt` on):
    /// slashes `deviationSlashBps` of the operator's current slashable stake, split between the call's payer, the
    /// proposer and the burn. Anyone may call it.
    /// @param proposalId The proposal.
    /// @return slashed Amount staking slashed.
    function executeDeviation(uint256 proposalId) external nonReentrant returns (uint256 slashed) {
        DeviationProposal storage proposal = _pending(proposalId);
        uint64 executableAt = proposal.executableAt;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp < executableAt) revert DisputeWindowOpen(proposalId, executableAt);
        address operator = proposal.operator;
        uint256 callId = proposal.callId;
        address proposer = proposal.proposer;
        IVouchProtocol.Call memory call = _call(callId);
        uint64 blueprintId = PROTOCOL.getService(call.serviceId).blueprintId;
        IVouchProtocol.Policy memory policy = PROTOCOL.getBlueprint(blueprintId).policy;

        proposal.status = ProposalStatus.Executed;

        uint256 amount;
        (amount, slashed) = _slash(operator, policy.deviationSlashBps, policy, call.payer, proposer);
        emit DeviationSlashed(proposalId, operator, callId, msg.sender, amount, slashed);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Missed deadline
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Shows that `operator` signed call `callId`, so that it cannot be reported for missing it (an aggregator
    /// may leave an honest signer out of a certificate's bitmap). Anyone may present it; it earns nothing.
    /// @dev Too late once the miss was reported (`AlreadyReported`). The signed statement must be on the call's inputs
    /// and, once the call is settled, on the certified result (for an open or refunded call any result counts: the
    /// operator did the work, and nothing certifies what the right result was). It
    /// is accepted while the call is open, settled or refunded; reports wait for the blueprint's dispute window after
    /// settlement (or after the deadline of a refunded call), so an operator watching the chain always has that long.
    /// @param callId The call (a protocol call, or a paid-batch call proven with `provePaidCall`).
    /// @param operator The operator.
    /// @param slot The operator's slot in the call's service.
    /// @param s The operator's signed statement (single or batch form).
    function presentAlibi(uint256 callId, address operator, uint256 slot, SignedResult calldata s) external {
        IVouchProtocol.Call memory call = _call(callId);
        if (call.status == IVouchProtocol.CallStatus.None) revert UnknownCall(callId);
        uint256 reported = _reported[operator][callId];
        if (reported & ALIBI != 0) return;
        if (reported & _flag(Fault.MissedDeadline) != 0) {
            revert AlreadyReported(operator, callId, Fault.MissedDeadline);
        }
        _checkSlot(call.serviceId, PROTOCOL.getService(call.serviceId), slot, operator);
        if (s.inputsHash != call.inputsHash) revert InputsMismatch(callId, call.inputsHash, s.inputsHash);
        if (call.status == IVouchProtocol.CallStatus.Settled && s.resultHash != call.resultHash) {
            revert AlibiResultMismatch(callId, call.resultHash, s.resultHash);
        }
        _verify(call.serviceId, callId, operator, _keyOf(operator), s);

        _reported[operator][callId] |= ALIBI;
        emit AlibiPresented(operator, callId, msg.sender);
    }

    /// @dev The policy of blueprint `blueprintId`; reverts `MissNotProvableForJob` unless its job `jobIndex` (of call
    /// `callId`) is exact.
    function _exactJobPolicy(uint256 callId, uint8 jobIndex, uint64 blueprintId)
        private
        view
        returns (IVouchProtocol.Policy memory)
    {
        IVouchProtocol.Blueprint memory blueprint = PROTOCOL.getBlueprint(blueprintId);
        IVouchProtocol.Verification verification = blueprint.jobs[jobIndex].verification;
        if (verification != IVouchProtocol.Verification.Exact) revert MissNotProvableForJob(callId, verification);
        return blueprint.policy;
    }

    /// @notice Reports that `operator` did not sign `callJob` call `callId` in time: the call was refunded (nobody certified it)
    /// or settled without the operator's bit, and no alibi was presented within the blueprint's dispute window after
    /// the settlement (or after the deadline of a refunded call). Slashes `missedDeadlineSlashBps` (payer and reporter
    /// shares, rest burned), counts the miss and jails the operator for `JAIL_DURATION` when its misses in this
    /// blueprint since its last jailing for them reach the blueprint's `jailAfterMisses` (0 = never). x402 calls are
    /// refused (`MissNotProvable`), and so are calls of tolerant or checked jobs (`MissNotProvableForJob`).
    /// @param callId The call.
    /// @param operator The operator.
    /// @param slot The operator's slot in the call's service (its bit in the signer bitmap).
    /// @return slashed Amount staking slashed.
    function reportMissedDeadline(uint256 callId, address operator, uint256 slot)
        external
        nonReentrant
        returns (uint256 slashed)
    {
        // Counter ids (< 2^64) are `callJob` calls; larger ids are x402 calls (`VouchDigest.paidCallId`).
        if (callId > type(uint64).max) revert MissNotProvable(callId);
        IVouchProtocol.Call memory call = _call(callId);
        if (call.status != IVouchProtocol.CallStatus.Settled && call.status != IVouchProtocol.CallStatus.Refunded) {
            revert CallNotFinal(callId, call.status);
        }
        uint256 flag = _flag(Fault.MissedDeadline);
        uint256 reported = _reported[operator][callId];
        if (reported & flag != 0) revert AlreadyReported(operator, callId, Fault.MissedDeadline);
        if (reported & ALIBI != 0) revert OperatorHasAlibi(operator, callId);
        IVouchProtocol.Service memory service = PROTOCOL.getService(call.serviceId);
        _checkSlot(call.serviceId, service, slot, operator);
        // slot < operators.length ≤ 256 here, so the shift is in range.
        if (call.status == IVouchProtocol.CallStatus.Settled && (call.signerBitmap >> slot) & 1 == 1) {
            revert OperatorSigned(callId, operator, slot);
        }
        IVouchProtocol.Policy memory policy = _exactJobPolicy(callId, call.jobIndex, service.blueprintId);
        _requireAlibiWindowOver(callId, call, policy.disputeWindow);

        _reported[operator][callId] |= flag;
        (MissRecord memory record, uint32 reached, uint64 until) =
            _countMiss(operator, service.blueprintId, policy.jailAfterMisses);

        uint256 amount;
        (amount, slashed) = _slash(operator, policy.missedDeadlineSlashBps, policy, call.payer, msg.sender);
        emit MissedDeadlineSlashed(operator, callId, msg.sender, amount, slashed, record.sinceJail, record.total);
        if (until != 0) {
            STAKING.jail(operator, until);
            emit OperatorJailed(operator, callId, reached, until);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Call `callId` as the slasher sees it: the protocol's call, or else the paid-batch call proven with
    /// `provePaidCall` (status None if neither).
    /// @param callId The call.
    /// @return The call.
    function getCall(uint256 callId) external view returns (IVouchProtocol.Call memory) {
        return _call(callId);
    }

    /// @notice Whether `fault` of `operator` on `callId` was reported (for deviations: proposed, in any status).
    /// @param operator The operator.
    /// @param callId The call.
    /// @param fault The fault.
    /// @return True if a new report of this fault would revert `AlreadyReported`.
    function isReported(address operator, uint256 callId, Fault fault) external view returns (bool) {
        if (fault == Fault.Deviation) return _proposals[proposalIdOf(operator, callId)].status != ProposalStatus.None;
        return _reported[operator][callId] & _flag(fault) != 0;
    }

    /// @notice Id of the (only possible) deviation proposal of (operator, callId), whether or not it exists:
    /// `uint256(keccak256(abi.encode(operator, callId)))`. Deterministic, so no counter or index is stored.
    /// @param operator The operator.
    /// @param callId The call.
    /// @return The proposal id.
    function proposalIdOf(address operator, uint256 callId) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(operator, callId)));
    }

    /// @notice Deviation proposal `proposalId` (all zero, status None, if unknown).
    /// @param proposalId The proposal.
    /// @return The proposal.
    function getProposal(uint256 proposalId) external view returns (DeviationProposal memory) {
        return _proposals[proposalId];
    }

    /// @notice Missed-deadline record of `operator` in blueprint `blueprintId` (each blueprint's `jailAfterMisses` counts
    /// that blueprint's misses only).
    /// @param operator The operator.
    /// @param blueprintId The blueprint.
    /// @return The record (misses since its last jailing for them, total misses, end of that jailing).
    function missesOf(address operator, uint64 blueprintId) external view returns (MissRecord memory) {
        return _misses[operator][blueprintId];
    }

    /// @notice Whether an alibi of `operator` for `callId` was presented.
    /// @param operator The operator.
    /// @param callId The call.
    /// @return True if a missed-deadline report would revert `OperatorHasAlibi`.
    function hasAlibi(address operator, uint256 callId) external view returns (bool) {
        return _reported[operator][callId] & ALIBI != 0;
    }

    /// @notice The digest an operator signs for `s` about `(serviceId, callId)` on this chain and protocol.
    /// @dev Does not check the Merkle proof of a batch-form statement.
    /// @param serviceId The service.
    /// @param callId The call.
    /// @param s The statement (signature and proof unused).
    /// @return The result digest (single form) or batch digest (batch form).
    function evidenceDigest(uint64 serviceId, uint256 callId, SignedResult calldata s) external view returns (bytes32) {
        return _digest(serviceId, callId, s);
    }

    /// @notice The digest an operator signs for commitment `c` about `(serviceId, callId)` on this chain and protocol.
    /// @param serviceId The service.
    /// @param callId The call.
    /// @param c The commitment (signature unused).
    /// @return The commitment digest (`VouchDigest.commitmentDigest`).
    function commitmentEvidenceDigest(uint64 serviceId, uint256 callId, SignedCommitment calldata c)
        external
        view
        returns (bytes32)
    {
        return _commitmentDigest(serviceId, callId, c);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------------------

    /// @dev The checks both deviation proposals share, in this order: the call is settled (`CallNotSettled`); no
    /// proposal of (operator, callId) exists (`AlreadyReported`); `operator` is at `slot` (`WrongSlot`); the signed
    /// inputs hash is the call's (`InputsMismatch`); the signed result or output hash is not the certified one
    /// (`NotDeviating`). Returns the call, its blueprint and the proposal id.
    function _checkDeviation(uint256 callId, address operator, uint256 slot, bytes32 inputsHash, bytes32 signedHash)
        private
        view
        returns (IVouchProtocol.Call memory call, uint64 blueprintId, uint256 proposalId)
    {
        call = _call(callId);
        if (call.status != IVouchProtocol.CallStatus.Settled) revert CallNotSettled(callId, call.status);
        proposalId = proposalIdOf(operator, callId);
        if (_proposals[proposalId].status != ProposalStatus.None) {
            revert AlreadyReported(operator, callId, Fault.Deviation);
        }
        IVouchProtocol.Service memory service = PROTOCOL.getService(call.serviceId);
        _checkSlot(call.serviceId, service, slot, operator);
        if (inputsHash != call.inputsHash) revert InputsMismatch(callId, call.inputsHash, inputsHash);
        if (signedHash == call.resultHash) revert NotDeviating(callId, call.resultHash);
        blueprintId = service.blueprintId;
    }

    /// @dev Records pending proposal `proposalId` by the sender, executable `disputeWindow` from now; returns when.
    function _storeProposal(uint256 proposalId, address operator, uint256 callId, uint32 disputeWindow)
        private
        returns (uint64 executableAt)
    {
        executableAt = uint64(block.timestamp) + disputeWindow;
        _proposals[proposalId] = DeviationProposal({
            operator: operator,
            callId: callId,
            proposer: msg.sender,
            executableAt: executableAt,
            status: ProposalStatus.Pending
        });
    }

    /// @dev The dispute window of blueprint `blueprintId`; reverts `CommitmentNotDisputable` unless the blueprint has
    /// an arbiter and a non-zero window (a commitment deviation must be vetoable).
    function _commitmentDisputeWindow(uint256 callId, uint64 blueprintId) private view returns (uint32 disputeWindow) {
        IVouchProtocol.Blueprint memory blueprint = PROTOCOL.getBlueprint(blueprintId);
        disputeWindow = blueprint.policy.disputeWindow;
        if (blueprint.arbiter == address(0) || disputeWindow == 0) {
            revert CommitmentNotDisputable(callId, blueprintId, blueprint.arbiter, disputeWindow);
        }
    }

    /// @dev Reverts `InvalidSignature` unless `c` is `operator`'s valid signature on its commitment about
    /// `(serviceId, callId)`.
    function _verifyCommitment(uint64 serviceId, uint256 callId, address operator, SignedCommitment calldata c)
        private
        view
    {
        bytes32 digest = _commitmentDigest(serviceId, callId, c);
        if (!BLS.verify(_keyOf(operator), digest, Domain.DST_RESULT, c.signature)) {
            revert InvalidSignature(operator, digest);
        }
    }

    /// @dev The commitment digest signed for `c` (see `SignedCommitment`).
    function _commitmentDigest(uint64 serviceId, uint256 callId, SignedCommitment calldata c)
        private
        view
        returns (bytes32)
    {
        return VouchDigest.commitmentDigest(
            block.chainid, address(PROTOCOL), serviceId, callId, c.inputsHash, c.outputHash
        );
    }

    /// @dev The protocol's call `callId`, or else the proven paid-batch call (status None if neither).
    function _call(uint256 callId) private view returns (IVouchProtocol.Call memory call) {
        call = PROTOCOL.getCall(callId);
        if (call.status == IVouchProtocol.CallStatus.None) call = _paidCalls[callId];
    }

    /// @dev Reverts `WrongSlot` unless `operator` (non-zero) is `service.operators[slot]`.
    function _checkSlot(uint64 serviceId, IVouchProtocol.Service memory service, uint256 slot, address operator)
        private
        pure
    {
        address atSlot = slot < service.operators.length ? service.operators[slot] : address(0);
        if (atSlot != operator || operator == address(0)) revert WrongSlot(serviceId, slot, operator, atSlot);
    }

    /// @dev The registered key of `operator`; reverts `OperatorKeyNotRegistered` if none.
    function _keyOf(address operator) private view returns (bytes memory pubkey) {
        pubkey = REGISTRY.keyOf(operator);
        if (pubkey.length == 0) revert OperatorKeyNotRegistered(operator);
    }

    /// @dev The digest signed for `s` (see `SignedResult`).
    function _digest(uint64 serviceId, uint256 callId, SignedResult calldata s) private view returns (bytes32) {
        if (s.batchCount == 0) {
            return
                VouchDigest.resultDigest(
                    block.chainid, address(PROTOCOL), serviceId, callId, s.inputsHash, s.resultHash
                );
        }
        return VouchDigest.batchDigest(block.chainid, address(PROTOCOL), serviceId, s.batchRoot, s.batchCount);
    }

    /// @dev Reverts unless `s` is `operator`'s valid signature on its statement about `(serviceId, callId)`: the Merkle
    /// proof first (batch form, `InvalidMerkleProof`), then the BLS signature (`InvalidSignature`).
    function _verify(uint64 serviceId, uint256 callId, address operator, bytes memory pubkey, SignedResult calldata s)
        private
        view
    {
        if (s.batchCount != 0) {
            bytes32 leaf = VouchDigest.batchLeaf(callId, s.inputsHash, s.resultHash);
            if (!MerkleProof.verifyCalldata(s.proof, s.batchRoot, leaf)) revert InvalidMerkleProof(s.batchRoot, leaf);
        }
        bytes32 digest = _digest(serviceId, callId, s);
        if (!BLS.verify(pubkey, digest, Domain.DST_RESULT, s.signature)) revert InvalidSignature(operator, digest);
    }

    /// @dev Slashes `bps` of `operator`'s slashable stake, credited to `payer` and `reporter` per `policy`. Skips the
    /// staking call when the amount is zero. Returns the amount requested and the amount slashed.
    function _slash(address operator, uint16 bps, IVouchProtocol.Policy memory policy, address payer, address reporter)
        private
        returns (uint256 amount, uint256 slashed)
    {
        amount = Math.mulDiv(STAKING.slashableStake(operator), Math.min(bps, BPS), BPS);
        if (amount == 0) return (0, 0);
        uint256 payerBps = Math.min(policy.payerShareBps, BPS);
        uint256 reporterBps = Math.min(policy.reporterShareBps, BPS - payerBps);
        IVouchStaking.SlashSplit memory split = IVouchStaking.SlashSplit({
            payer: payer,
            toPayer: Math.mulDiv(amount, payerBps, BPS),
            reporter: reporter,
            toReporter: Math.mulDiv(amount, reporterBps, BPS)
        });
        slashed = STAKING.slash(operator, amount, split);
    }

    /// @dev The pending proposal `proposalId`; reverts `ProposalNotPending` otherwise.
    function _pending(uint256 proposalId) private view returns (DeviationProposal storage proposal) {
        proposal = _proposals[proposalId];
        if (proposal.status != ProposalStatus.Pending) revert ProposalNotPending(proposalId, proposal.status);
    }

    /// @dev Reverts `AlibiWindowOpen` until the blueprint's dispute window after the settlement (or after the deadline
    /// of a refunded call) has passed.
    function _requireAlibiWindowOver(uint256 callId, IVouchProtocol.Call memory call, uint32 disputeWindow)
        private
        view
    {
        uint64 start = call.status == IVouchProtocol.CallStatus.Settled ? call.settledAt : call.deadline;
        uint256 alibiUntil = uint256(start) + disputeWindow;
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= alibiUntil) revert AlibiWindowOpen(callId, alibiUntil);
    }

    /// @dev Counts a miss of `operator` in `blueprintId`; when its misses since the last jailing for them reach
    /// `jailAfterMisses` (0 = never), restarts the count and returns the jail end `until` (else 0).
    function _countMiss(address operator, uint64 blueprintId, uint8 jailAfterMisses)
        private
        returns (MissRecord memory record, uint32 reached, uint64 until)
    {
        record = _misses[operator][blueprintId];
        ++record.total;
        ++record.sinceJail;
        reached = record.sinceJail;
        if (jailAfterMisses != 0 && reached >= jailAfterMisses) {
            until = uint64(block.timestamp) + JAIL_DURATION;
            record.sinceJail = 0;
            record.jailedUntil = until;
        }
        _misses[operator][blueprintId] = record;
    }

    /// @dev Bit of `fault` in `_reported`.
    function _flag(Fault fault) private pure returns (uint256) {
        return uint256(1) << uint8(fault);
    }

    /// @dev Identifier of a statement in events.
    function _statement(bytes32 inputsHash, bytes32 resultHash) private pure returns (bytes32) {
        return keccak256(abi.encode(inputsHash, resultHash));
    }
}
