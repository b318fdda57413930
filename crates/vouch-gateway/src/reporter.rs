//! [`Reporter`]: turns the evidence the fan-out keeps — an operator's valid signature on a result other than the one
//! its call's quorum certified ([`crate::store::Evidence`]) — into a deviation slash (DESIGN.md §4.3,
//! docs/design/slashing.md).
//!
//! Per piece of evidence, once its call is settled (request status `settled`, with its settlement transaction):
//!
//! 1. **prove** the call to the slasher: a paid-batch call has no storage of its own, so
//!    `VouchSlasher.provePaidCall(batchId, entry, proof)` records it. The batch id, the entries and the record root
//!    come from the settlement transaction (its `PaidCallSettled` / `PaidBatchSettled` logs; its calldata when the
//!    batch skipped entries, whose `PaidCallSkipped` logs do not carry them); the proof is the entry's path in the tree
//!    of `paid_record_leaf`s ([`vouch_primitives::merkle::proof_for`]). Skipped when the slasher already knows the call;
//! 2. **propose** the deviation: `proposeDeviation(callId, operator, slot, signature)` with the operator's own
//!    signature (single form). The gateway's submitter is the proposer and receives the reporter share;
//! 3. **execute** it once the blueprint's dispute window has passed (chain time ≥ `executableAt`):
//!    `executeDeviation(proposalId)`, unless the blueprint's arbiter vetoed it first.
//!
//! Commitment evidence ([`crate::store::CommitmentEvidence`]: a tolerant job's operator committed to an output that
//! the certificate contradicts, `crate::rounds`) follows the same steps, proposed with
//! `proposeCommitmentDeviation(callId, operator, slot, SignedCommitment, output)` — the committed bytes published so
//! that anyone can re-check the tolerance during the dispute window — and executed the same way (one deviation
//! proposal per operator and call, whatever its kind). The slasher accepts it only for a blueprint with an arbiter
//! and a dispute window (`CommitmentNotDisputable` otherwise, which marks it `failed`).
//!
//! Every step is idempotent: the slasher's state is read first, and the reverts that mean "done already"
//! (`AlreadyReported`, `ProposalNotPending` on an executed proposal) count as success. A failure the chain will
//! always give (the evidence does not verify, the call was never settled, the arbiter vetoed) marks the evidence
//! `failed` with why; any other failure (RPC, a nonce race with the settlement batcher) is retried with exponential
//! backoff. Nothing panics; every step survives a restart because its state is in the store and on chain.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy::{
    consensus::Transaction as _,
    network::Ethereum,
    providers::{DynProvider, PendingTransactionBuilder, Provider},
    rpc::types::{Filter, TransactionReceipt},
    sol_types::{SolCall, SolEvent},
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use tokio::task::JoinHandle;
use vouch_contracts::{
    AddressBook, Contract, ContractError, VouchSlasher, decode_revert_for,
    vouch_protocol::VouchProtocol::{PaidBatchSettled, PaidCallSettled, PaidCallSkipped, settlePaidBatchCall},
    vouch_slasher::VouchSlasher::{
        CommitmentDeviationProposed, DeviationProposed, DeviationSlashed, PaidCallProof,
        SignedCommitment as SlasherCommitment, SignedResult, VouchSlasherErrors,
    },
};
use vouch_crypto::Signature;
use vouch_primitives::{CallId, PaidRecord, ServiceId, batch_root, merkle::proof_for, paid_call_id, paid_record_leaf};

use crate::store::{
    CommitmentEvidence, Evidence, EvidenceStatus, RequestStatus, RequestStore, SettlementRecord, StoreError,
};

/// `IVouchProtocol.CallStatus.None`.
const CALL_NONE: u8 = 0;
/// `IVouchProtocol.CallStatus.Settled`.
const CALL_SETTLED: u8 = 2;
/// `VouchSlasher.ProposalStatus`.
const PROPOSAL_NONE: u8 = 0;
const PROPOSAL_PENDING: u8 = 1;
const PROPOSAL_VETOED: u8 = 2;
const PROPOSAL_EXECUTED: u8 = 3;
/// Evidence read per status and round.
const ROUND_LIMIT: usize = 256;
/// How long the reporter waits for one of its transactions' receipt.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the reporter looks, and how it backs off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReporterConfig {
    /// Pause between rounds.
    pub poll: Duration,
    /// First pause before a piece of evidence whose step failed is tried again (doubled on each failure).
    pub min_backoff: Duration,
    /// Longest such pause.
    pub max_backoff: Duration,
}

impl Default for ReporterConfig {
    /// A look every second; retries after 1 s, 2 s, 4 s, … up to 5 minutes.
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Why a round could not run (the evidence is untouched and tried again).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain's time could not be read.
    #[error("chain: {0}")]
    Chain(String),
}

/// What one step of one piece of evidence did.
#[derive(Debug)]
enum Step {
    /// It moved on (proposed, executed, or found so on chain).
    Moved,
    /// Nothing to do yet (call not settled, dispute window open).
    Waiting,
}

/// Why a step did not complete.
#[derive(Debug)]
enum StepError {
    /// Try again later.
    Transient(String),
    /// The evidence can never be reported.
    Final(String),
}

fn transient(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StepError {
    StepError::Transient(format!("{what}: {e}"))
}

/// A piece of evidence of either kind, as the reporter follows it.
#[derive(Debug, Clone)]
enum Piece {
    /// An operator's signature on another result than the certified one (`proposeDeviation`).
    Result(Evidence),
    /// A tolerant job's commitment to an output the certificate contradicts (`proposeCommitmentDeviation`).
    Commitment(CommitmentEvidence),
}

impl Piece {
    fn call_id(&self) -> CallId {
        match self {
            Self::Result(e) => e.call_id,
            Self::Commitment(e) => e.call_id,
        }
    }

    fn operator(&self) -> Address {
        match self {
            Self::Result(e) => e.operator,
            Self::Commitment(e) => e.operator,
        }
    }

    fn service_id(&self) -> ServiceId {
        match self {
            Self::Result(e) => e.service_id,
            Self::Commitment(e) => e.service_id,
        }
    }

    fn status(&self) -> EvidenceStatus {
        match self {
            Self::Result(e) => e.status,
            Self::Commitment(e) => e.status,
        }
    }

    fn executable_at(&self) -> Option<u64> {
        match self {
            Self::Result(e) => e.executable_at,
            Self::Commitment(e) => e.executable_at,
        }
    }

    fn inputs_hash(&self) -> B256 {
        match self {
            Self::Result(e) => e.inputs_hash,
            Self::Commitment(e) => e.inputs_hash,
        }
    }

    /// The result hash signed, or the output hash committed to.
    fn signed_hash(&self) -> B256 {
        match self {
            Self::Result(e) => e.result_hash,
            Self::Commitment(e) => e.output_hash,
        }
    }

    fn key(&self) -> BackoffKey {
        (self.call_id(), self.operator(), matches!(self, Self::Commitment(_)))
    }
}

/// Backoff per piece of evidence: call, operator, whether it is a commitment.
type BackoffKey = (CallId, Address, bool);

#[derive(Debug, Clone, Copy)]
struct Backoff {
    until: Instant,
    next: Duration,
}

/// Reports deviations from the evidence in a [`RequestStore`] (see the module docs).
#[derive(Debug)]
pub struct Reporter {
    read: DynProvider,
    wallet: DynProvider,
    book: AddressBook,
    store: RequestStore,
    config: ReporterConfig,
    backoff: Mutex<HashMap<BackoffKey, Backoff>>,
}

impl Reporter {
    /// A reporter reading the chain through `read` and sending through `wallet` (which pays the gas and, as the
    /// proposer, receives the reporter share), for the deployment `book`, over the evidence in `store`.
    pub fn new(read: DynProvider, wallet: DynProvider, book: AddressBook, store: RequestStore) -> Self {
        Self { read, wallet, book, store, config: ReporterConfig::default(), backoff: Mutex::default() }
    }

    /// Polling and backoff (default [`ReporterConfig::default`]).
    pub fn with_config(mut self, config: ReporterConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs rounds every `poll` until `shutdown` resolves; errors are logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.report_once().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(steps = n, "deviation reports advanced"),
                Err(e) => tracing::warn!(error = %e, "deviation report round failed; will retry"),
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// One round over the pending and proposed evidence; returns how many pieces moved on.
    pub async fn report_once(&self) -> Result<usize, ReportError> {
        let mut due: Vec<Piece> = Vec::new();
        for status in [EvidenceStatus::Pending, EvidenceStatus::Proposed] {
            due.extend(self.store.evidence_with_status(status, ROUND_LIMIT)?.into_iter().map(Piece::Result));
            due.extend(
                self.store.commitment_evidence_with_status(status, ROUND_LIMIT)?.into_iter().map(Piece::Commitment),
            );
        }
        due.retain(|e| !self.backing_off(e));
        if due.is_empty() {
            return Ok(0);
        }
        let now = vouch_contracts::chain_now(&self.read).await.map_err(|e| ReportError::Chain(e.to_string()))?;
        let mut moved = 0;
        for e in due {
            if e.status() == EvidenceStatus::Proposed && e.executable_at().is_some_and(|at| now < at) {
                continue;
            }
            let step = match e.status() {
                EvidenceStatus::Pending => self.report(&e).await,
                _ => self.execute(&e, now).await,
            };
            let key = e.key();
            let (call, operator) = (e.call_id(), e.operator());
            match step {
                Ok(Step::Moved) => {
                    moved += 1;
                    lock(&self.backoff).remove(&key);
                }
                Ok(Step::Waiting) => {}
                Err(StepError::Transient(why)) => {
                    let retry = self.back_off(key);
                    tracing::warn!(%call, %operator, error = %why, ?retry, "deviation report step failed; will retry");
                    match &e {
                        Piece::Result(_) => self.store.note_evidence_error(call, operator, &why)?,
                        Piece::Commitment(_) => self.store.note_commitment_evidence_error(call, operator, &why)?,
                    }
                }
                Err(StepError::Final(why)) => {
                    lock(&self.backoff).remove(&key);
                    tracing::warn!(%call, %operator, reason = %why, "deviation cannot be reported");
                    let failed = EvidenceStatus::Failed;
                    match &e {
                        Piece::Result(_) => {
                            self.store.update_evidence(call, operator, failed, None, None, Some(&why))?
                        }
                        Piece::Commitment(_) => {
                            self.store.update_commitment_evidence(call, operator, failed, None, None, Some(&why))?;
                        }
                    }
                }
            }
        }
        Ok(moved)
    }

    fn backing_off(&self, e: &Piece) -> bool {
        lock(&self.backoff).get(&e.key()).is_some_and(|b| b.until > Instant::now())
    }

    fn back_off(&self, key: BackoffKey) -> Duration {
        let mut map = lock(&self.backoff);
        let b = map.entry(key).or_insert(Backoff { until: Instant::now(), next: self.config.min_backoff });
        let wait = b.next;
        b.until = Instant::now() + wait;
        b.next = (b.next * 2).min(self.config.max_backoff);
        wait
    }

    fn slasher(&self, provider: &DynProvider) -> VouchSlasher::VouchSlasherInstance<DynProvider> {
        VouchSlasher::new(self.book.contracts.slasher, provider.clone())
    }

    /// Pending evidence: once the call is settled, prove it (if needed) and propose the deviation.
    async fn report(&self, e: &Piece) -> Result<Step, StepError> {
        let (call_id, operator) = (e.call_id(), e.operator());
        let request = self.store.get(call_id).map_err(|err| transient("request store", err))?;
        let Some(request) = request else {
            return Err(StepError::Final("no request recorded for this call".into()));
        };
        match request.status {
            RequestStatus::Settled => {}
            RequestStatus::Received | RequestStatus::Answered => return Ok(Step::Waiting),
            RequestStatus::Failed | RequestStatus::Unpayable => {
                return Err(StepError::Final(
                    "the call was never settled (failed or unpayable): there is no certificate to deviate from".into(),
                ));
            }
        }
        let Some(settlement) = self.store.settlement_of(call_id).map_err(|err| transient("request store", err))? else {
            return Ok(Step::Waiting);
        };
        let proposal_id = proposal_id(operator, call_id);
        // Proposed already (by us before a crash, or by anyone): follow the proposal.
        if let Some(step) = self.sync_proposal(e, proposal_id).await? {
            return Ok(step);
        }

        // 1. The slasher must know the call.
        let slasher = self.slasher(&self.read);
        let mut call =
            slasher.getCall(call_id.0).call().await.map_err(|err| transient(format!("getCall({call_id})"), err))?;
        if call.status == CALL_NONE {
            let (batch_id, proof) = self.paid_call_proof(call_id, e.service_id(), settlement).await?;
            let wallet = self.slasher(&self.wallet);
            match self.transact("provePaidCall", wallet.provePaidCall(batch_id, proof).send()).await? {
                Ok(receipt) => {
                    tracing::info!(call = %call_id, batch = %batch_id, tx = %receipt.transaction_hash, "paid call proven to the slasher");
                }
                Err(revert) => return Err(StepError::Final(format!("provePaidCall reverted: {revert}"))),
            }
            call =
                slasher.getCall(call_id.0).call().await.map_err(|err| transient(format!("getCall({call_id})"), err))?;
        }
        if call.status != CALL_SETTLED {
            return Err(StepError::Final(format!(
                "the slasher sees the call with status {}, not settled",
                call.status
            )));
        }
        if call.inputsHash != e.inputs_hash() {
            return Err(StepError::Final(format!(
                "the operator signed inputs {} but the call's are {}",
                e.inputs_hash(),
                call.inputsHash
            )));
        }
        if call.resultHash == e.signed_hash() {
            return Err(StepError::Final("the operator signed the settled result: no deviation".into()));
        }

        // 2. Propose, with the operator's own signature (and, for a commitment, the committed bytes).
        let (what, sent) = match e {
            Piece::Result(e) => {
                let signed = SignedResult {
                    inputsHash: e.inputs_hash,
                    resultHash: e.result_hash,
                    signature: eip2537(&e.signature)?,
                    batchRoot: B256::ZERO,
                    batchCount: 0,
                    proof: Vec::new(),
                };
                let wallet = self.slasher(&self.wallet);
                let propose = wallet.proposeDeviation(call_id.0, operator, U256::from(e.slot), signed);
                ("proposeDeviation", self.transact("proposeDeviation", propose.send()).await?)
            }
            Piece::Commitment(e) => {
                let signed = SlasherCommitment {
                    inputsHash: e.inputs_hash,
                    outputHash: e.output_hash,
                    signature: eip2537(&e.signature)?,
                };
                let wallet = self.slasher(&self.wallet);
                let propose = wallet.proposeCommitmentDeviation(
                    call_id.0,
                    operator,
                    U256::from(e.slot),
                    signed,
                    e.output.clone(),
                );
                ("proposeCommitmentDeviation", self.transact("proposeCommitmentDeviation", propose.send()).await?)
            }
        };
        match sent {
            Ok(receipt) => {
                let executable_at =
                    receipt.inner.logs().iter().filter(|l| l.address() == self.book.contracts.slasher).find_map(|l| {
                        l.log_decode::<DeviationProposed>()
                            .map(|l| l.inner.data.executableAt)
                            .or_else(|_| {
                                l.log_decode::<CommitmentDeviationProposed>().map(|l| l.inner.data.executableAt)
                            })
                            .ok()
                    });
                let executable_at = match executable_at {
                    Some(at) => at,
                    None => self.read_proposal(proposal_id).await?.executableAt,
                };
                tracing::info!(call = %call_id, %operator, tx = %receipt.transaction_hash, executable_at, "{what}: proposed");
                self.mark(e, EvidenceStatus::Proposed, Some(receipt.transaction_hash), Some(executable_at))?;
                Ok(Step::Moved)
            }
            Err(ContractError::Slasher(VouchSlasherErrors::AlreadyReported(_))) => {
                Ok(self.sync_proposal(e, proposal_id).await?.unwrap_or(Step::Waiting))
            }
            Err(revert) => Err(StepError::Final(format!("{what} reverted: {revert}"))),
        }
    }

    /// Proposed evidence: execute once the window has passed (`now` is the chain's time).
    async fn execute(&self, e: &Piece, now: u64) -> Result<Step, StepError> {
        let proposal_id = proposal_id(e.operator(), e.call_id());
        let executable_at = match e.executable_at() {
            Some(at) => at,
            None => {
                let p = self.read_proposal(proposal_id).await?;
                self.mark(e, EvidenceStatus::Proposed, None, Some(p.executableAt))?;
                p.executableAt
            }
        };
        if now < executable_at {
            return Ok(Step::Waiting);
        }
        let wallet = self.slasher(&self.wallet);
        match self.transact("executeDeviation", wallet.executeDeviation(proposal_id).send()).await? {
            Ok(receipt) => {
                let slashed = receipt
                    .inner
                    .logs()
                    .iter()
                    .filter(|l| l.address() == self.book.contracts.slasher)
                    .find_map(|l| l.log_decode::<DeviationSlashed>().ok())
                    .map(|l| l.inner.data.slashed)
                    .unwrap_or_default();
                tracing::info!(call = %e.call_id(), operator = %e.operator(), tx = %receipt.transaction_hash, %slashed, "deviation executed: operator slashed");
                self.mark(e, EvidenceStatus::Executed, Some(receipt.transaction_hash), None)?;
                Ok(Step::Moved)
            }
            Err(ContractError::Slasher(VouchSlasherErrors::DisputeWindowOpen(w))) => {
                self.mark(e, EvidenceStatus::Proposed, None, Some(w.executableAt))?;
                Ok(Step::Waiting)
            }
            Err(ContractError::Slasher(VouchSlasherErrors::ProposalNotPending(_))) => {
                Ok(self.sync_proposal(e, proposal_id).await?.unwrap_or(Step::Waiting))
            }
            Err(revert) => Err(StepError::Transient(format!("executeDeviation reverted: {revert}"))),
        }
    }

    /// Brings the evidence in line with proposal `proposal_id` on chain: `None` if there is no proposal.
    async fn sync_proposal(&self, e: &Piece, proposal_id: U256) -> Result<Option<Step>, StepError> {
        let p = self.read_proposal(proposal_id).await?;
        match p.status {
            PROPOSAL_NONE => Ok(None),
            PROPOSAL_PENDING if e.status() == EvidenceStatus::Proposed => Ok(Some(Step::Waiting)),
            PROPOSAL_PENDING => {
                self.mark(e, EvidenceStatus::Proposed, None, Some(p.executableAt))?;
                Ok(Some(Step::Moved))
            }
            PROPOSAL_EXECUTED => {
                self.mark(e, EvidenceStatus::Executed, None, Some(p.executableAt))?;
                Ok(Some(Step::Moved))
            }
            PROPOSAL_VETOED => Err(StepError::Final("the blueprint's arbiter vetoed the proposal".into())),
            other => Err(StepError::Transient(format!("unknown proposal status {other}"))),
        }
    }

    async fn read_proposal(&self, proposal_id: U256) -> Result<VouchSlasher::DeviationProposal, StepError> {
        self.slasher(&self.read)
            .getProposal(proposal_id)
            .call()
            .await
            .map_err(|err| transient(format!("getProposal({proposal_id})"), err))
    }

    fn mark(
        &self,
        e: &Piece,
        status: EvidenceStatus,
        tx: Option<B256>,
        executable_at: Option<u64>,
    ) -> Result<(), StepError> {
        let (call, operator) = (e.call_id(), e.operator());
        match e {
            Piece::Result(_) => self.store.update_evidence(call, operator, status, tx, executable_at, None),
            Piece::Commitment(_) => {
                self.store.update_commitment_evidence(call, operator, status, tx, executable_at, None)
            }
        }
        .map_err(|err| transient("request store", err))
    }

    /// Sends a transaction: its receipt, or the contract's revert (decoded). Anything else is transient.
    async fn transact(
        &self,
        what: &str,
        send: impl Future<Output = Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>>,
    ) -> Result<Result<TransactionReceipt, ContractError>, StepError> {
        let pending = match send.await {
            Ok(pending) => pending,
            Err(e) => {
                return match decode_revert_for(Contract::Slasher, e) {
                    Ok(revert) => Ok(Err(revert)),
                    Err(e) => Err(transient(what, e)),
                };
            }
        };
        let receipt = pending
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|e| transient(format!("{what} receipt"), e))?;
        if !receipt.status() {
            return Err(StepError::Transient(format!(
                "{what} was mined but reverted (tx {})",
                receipt.transaction_hash
            )));
        }
        Ok(Ok(receipt))
    }

    /// The paid batch of `call` and the proof of its entry, from its settlement transaction.
    async fn paid_call_proof(
        &self,
        call: CallId,
        service: ServiceId,
        settlement: SettlementRecord,
    ) -> Result<(U256, PaidCallProof), StepError> {
        let protocol = self.book.contracts.protocol;
        // A resubmission that found the batch settled (`NothingToCollect`) recorded no transaction: find it.
        let tx = if settlement.tx.is_zero() { self.settlement_tx(call).await? } else { settlement.tx };
        let receipt = self
            .read
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| transient(format!("receipt of {tx}"), e))?
            .ok_or_else(|| StepError::Transient(format!("no receipt for the settlement transaction {tx} yet")))?;
        let logs: Vec<_> = receipt.inner.logs().iter().filter(|l| l.address() == protocol).collect();
        let settled: Vec<PaidCallSettled> =
            logs.iter().filter_map(|l| l.log_decode::<PaidCallSettled>().ok()).map(|l| l.inner.data).collect();
        let ours = settled
            .iter()
            .find(|s| s.callId == call.0)
            .ok_or_else(|| StepError::Final(format!("the settlement transaction {tx} does not settle call {call}")))?;
        let batch_id = ours.batchId;
        let batch = logs
            .iter()
            .filter_map(|l| l.log_decode::<PaidBatchSettled>().ok())
            .map(|l| l.inner.data)
            .find(|b| b.batchId == batch_id)
            .ok_or_else(|| StepError::Final(format!("no PaidBatchSettled for batch {batch_id} in {tx}")))?;
        if batch_id != settlement.batch_id && !settlement.batch_id.is_zero() {
            tracing::warn!(%call, recorded = %settlement.batch_id, found = %batch_id, "the store and the chain disagree on the paid batch; using the chain's");
        }
        let in_batch: Vec<&PaidCallSettled> = settled.iter().filter(|s| s.batchId == batch_id).collect();
        let skipped = logs.iter().any(|l| l.log_decode::<PaidCallSkipped>().is_ok());
        // The record leaves, in entry order.
        let records: Vec<PaidRecord> = if !skipped && in_batch.len() == usize::try_from(batch.count).unwrap_or(0) {
            in_batch
                .iter()
                .map(|s| PaidRecord {
                    from: s.payer,
                    nonce: s.nonce,
                    job_index: s.jobIndex,
                    payment: s.payment,
                    inputs_hash: s.inputsHash,
                    result_hash: s.resultHash,
                })
                .collect()
        } else {
            // Skipped entries are in the tree with payment 0, and only the calldata names their job and hashes.
            let tx_data = self
                .read
                .get_transaction_by_hash(tx)
                .await
                .map_err(|e| transient(format!("transaction {tx}"), e))?
                .ok_or_else(|| StepError::Transient(format!("transaction {tx} not found")))?;
            let decoded = settlePaidBatchCall::abi_decode(tx_data.input()).map_err(|e| {
                StepError::Final(format!("{tx} is not a direct settlePaidBatch call, cannot rebuild its entries: {e}"))
            })?;
            decoded
                .entries
                .iter()
                .map(|p| {
                    let id = paid_call_id(service, p.jobIndex, p.from, p.nonce);
                    let payment = in_batch.iter().find(|s| s.callId == id.0).map(|s| s.payment).unwrap_or_default();
                    PaidRecord {
                        from: p.from,
                        nonce: p.nonce,
                        job_index: p.jobIndex,
                        payment,
                        inputs_hash: p.inputsHash,
                        result_hash: p.resultHash,
                    }
                })
                .collect()
        };
        let leaves: Vec<B256> = records.iter().map(paid_record_leaf).collect();
        if batch_root(&leaves) != Some(batch.recordRoot) {
            return Err(StepError::Final(format!(
                "the entries rebuilt from {tx} do not give batch {batch_id}'s record root {}",
                batch.recordRoot
            )));
        }
        let index = records
            .iter()
            .position(|r| r.from == ours.payer && r.nonce == ours.nonce && r.job_index == ours.jobIndex)
            .ok_or_else(|| StepError::Final(format!("call {call} is not among the entries of {tx}")))?;
        let proof = proof_for(&leaves, index)
            .ok_or_else(|| StepError::Final(format!("no proof for entry {index} of batch {batch_id}")))?;
        let r = records[index];
        Ok((
            batch_id,
            PaidCallProof {
                from: r.from,
                nonce: r.nonce,
                jobIndex: r.job_index,
                payment: r.payment,
                inputsHash: r.inputs_hash,
                resultHash: r.result_hash,
                proof,
            },
        ))
    }

    /// The transaction whose `PaidCallSettled` names `call`.
    async fn settlement_tx(&self, call: CallId) -> Result<B256, StepError> {
        let filter = Filter::new()
            .address(self.book.contracts.protocol)
            .event_signature(PaidCallSettled::SIGNATURE_HASH)
            .topic1(B256::from(call.0))
            .from_block(self.book.deployed_at_block);
        let logs = self.read.get_logs(&filter).await.map_err(|e| transient("PaidCallSettled logs", e))?;
        logs.first()
            .and_then(|l| l.transaction_hash)
            .ok_or_else(|| StepError::Transient(format!("no PaidCallSettled log for call {call}")))
    }
}

/// A kept 96-byte compressed signature in the contract's 256-byte EIP-2537 form.
fn eip2537(signature: &[u8]) -> Result<Bytes, StepError> {
    let signature = Signature::from_compressed(signature)
        .map_err(|err| StepError::Final(format!("the kept signature does not decode: {err}")))?;
    Ok(Bytes::from(signature.to_eip2537().to_vec()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `VouchSlasher.proposalIdOf(operator, callId)`: `uint256(keccak256(abi.encode(operator, callId)))`.
pub fn proposal_id(operator: Address, call: CallId) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(operator.as_slice());
    buf[32..].copy_from_slice(&call.0.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

/// Starts the reporter loop.
pub(crate) fn spawn(
    read: DynProvider,
    wallet: DynProvider,
    book: AddressBook,
    store: RequestStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(Reporter::new(read, wallet, book, store).run(shutdown))
}
