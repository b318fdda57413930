// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IVouchProtocol
/// @notice Blueprints, services, paid calls, certificates and settlement: the types and read functions other
/// contracts (the slasher, indexers, the Rust bindings) rely on. Implemented by `VouchProtocol`.
/// @dev Amounts are in the protocol's payment token (an EIP-3009 stablecoin such as USDC or Vouch USD).
interface IVouchProtocol {
    /// @notice How a job's operators come to sign one result (docs/design/tolerant-verification.md).
    /// @dev `Exact`: each operator runs the job and signs its own output; identical outputs aggregate. `Tolerant`:
    /// each commits to its own output, then endorses a proposed one within its tolerance. `Checked`: one executes, the
    /// others check its output. The last two need an aggregator (a gateway) to propose the output: an operator cannot
    /// sign such a call on its own, so missing one is not slashable (`VouchSlasher.reportMissedDeadline`).
    enum Verification {
        Exact,
        Tolerant,
        Checked
    }

    /// @notice One job of a blueprint.
    struct Job {
        uint128 price; // payment-token units per call
        uint32 deadline; // seconds from opening to the latest settlement
        Verification verification; // how its operators come to sign one result
    }

    /// @notice How certificates are accepted and faults punished for a blueprint.
    struct Policy {
        uint16 quorumBps; // signers' snapshot stake ≥ quorumBps × the service's total snapshot stake / 10_000
        uint16 minSigners; // and at least this many signers
        uint16 developerFeeBps; // developer's cut of each call's price
        uint16 equivocationSlashBps; // of the operator's slashable stake
        uint16 deviationSlashBps;
        uint16 missedDeadlineSlashBps;
        uint16 payerShareBps; // of slashed stake, to the call's payer
        uint16 reporterShareBps; // of slashed stake, to the reporter; the rest is burned
        uint32 disputeWindow; // seconds a deviation proposal waits for the arbiter
        uint8 jailAfterMisses; // missed deadlines before jailing (0 = never)
    }

    /// @notice A blueprint as registered.
    struct Blueprint {
        address owner; // receives the developer fee
        address arbiter; // may veto deviation slashes (zero = none)
        address hooks; // IBlueprintHooks (zero = none)
        bytes32 metadataHash; // content hash of the metadata at `metadataUri`
        string metadataUri;
        Policy policy;
        Job[] jobs;
    }

    /// @notice Lifecycle of a service.
    enum ServiceStatus {
        None,
        Requested,
        Active,
        Terminated
    }

    /// @notice A service: a blueprint instance with a fixed, ordered operator set (slot i = bitmap bit i).
    struct Service {
        uint64 blueprintId;
        ServiceStatus status;
        uint64 expiry; // unix seconds; no calls open after it
        bool publicAccess; // anyone who pays may call; otherwise only permitted callers
        address owner;
        address keySet; // KeyRegistry key-set data contract of `operators` (set at activation)
        uint256 totalStake; // sum of `stakes` (set at activation)
        address[] operators;
        uint256[] stakes; // active stake of each operator at activation: the quorum weights
    }

    /// @notice Lifecycle of a call: Open → Settled (certificate before the deadline) or Open → Refunded (after it).
    enum CallStatus {
        None,
        Open,
        Settled,
        Refunded
    }

    /// @notice One paid job invocation.
    struct Call {
        uint64 serviceId;
        uint8 jobIndex;
        CallStatus status;
        uint64 deadline; // unix seconds
        uint64 settledAt;
        address payer;
        uint128 payment; // escrowed amount
        bytes32 inputsHash;
        bytes32 resultHash; // set on settlement
        uint256 signerBitmap; // set on settlement
    }

    /// @notice A batch of x402 calls paid and settled at once by `settlePaidBatch` (nothing is stored per call; one
    /// call is proven against `recordRoot`, see `VouchDigest.paidRecordLeaf`).
    struct PaidBatch {
        uint64 serviceId;
        uint64 settledAt; // block time of the settlement
        uint32 count; // entries, paid or skipped
        uint256 signerBitmap; // the certificate's signers
        bytes32 recordRoot; // `VouchDigest.batchRoot` over the entries' record leaves, in entry order
    }

    /// @notice Registered blueprint `blueprintId`.
    function getBlueprint(uint64 blueprintId) external view returns (Blueprint memory);

    /// @notice Service `serviceId`.
    function getService(uint64 serviceId) external view returns (Service memory);

    /// @notice Call `callId` (call ids are global).
    function getCall(uint256 callId) external view returns (Call memory);

    /// @notice Paid batch `batchId` (all zero if unknown).
    function getPaidBatch(uint256 batchId) external view returns (PaidBatch memory);

    /// @notice Payment token (EIP-3009).
    function paymentToken() external view returns (address);
}
