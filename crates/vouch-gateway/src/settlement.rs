//! Batched x402 settlement: paid, answered calls go on chain many at a time with
//! `VouchProtocol.settlePaidBatch` — payment and certificate in one transaction (docs/design/x402-batch-settlement.md).
//!
//! The gateway verifies an x402 payment, has the operators run and sign the call (`POST /v1/jobs`), answers the
//! client, and records a [`PendingSettlement`] in its [`SettlementStore`]. The [`SettlementBatcher`] then, per round:
//!
//! 1. takes the oldest unsettled calls and picks one service whose calls are due: `max_batch` of them wait, the
//!    oldest has waited `max_delay`, or an authorization is about to expire;
//! 2. in order of expiry (the authorization that lapses first goes first), and only as many calls as the batch takes
//!    (plus those dropped on the way, so that a backlog does not cost its chain reads several times per settled call),
//!    drops, before anything is signed, every call that can no longer be collected, marking it *unpayable* (never
//!    charged): an authorization that expires within the validity margin, was used outside the protocol (front-run to
//!    the token, cancelled, or opened as an escrowed call with `openPaidCall`), fails its EIP-3009 checks, or whose
//!    payer's balance no longer covers it. An authorization already collected by an earlier paid batch stays in: the
//!    contract skips it;
//! 3. chooses calls whose individual signers have, together, a quorum (`quorumReached`), and asks exactly those
//!    operators for one batch signature each (`POST /v1/batches` on the endpoint each announced in `VouchStaking`);
//!    every answer is checked against the operator's registered key (`KeyRegistry.keyOf`) over
//!    `batch_digest(binding, serviceId, entries)`, and the valid ones are aggregated;
//! 4. sends `settlePaidBatch(serviceId, PaidResult[] in entry order, signerBitmap, aggregate)` and marks the calls
//!    settled with the transaction and the paid batch id.
//!
//! Submission is idempotent: a batch whose every authorization was already used reverts `NothingToCollect`, which
//! counts as success (the calls are marked settled with batch id 0, "unknown"). Any other failure is returned as a
//! [`SettlementError`] and that service is retried in a later round with exponential backoff; nothing panics.

mod chain;
mod store;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use alloy_primitives::{Address, B256, Bytes, U256};
use futures_util::{StreamExt as _, future::join_all, stream};
use tokio::sync::OnceCell;
use vouch_contracts::{
    AddressBook, Contract, ContractError, PaymentError, PaymentExpectation, TokenDomain, VouchProtocol, VouchUSD,
    check_payment, decode_revert_for,
    vouch_protocol::VouchProtocol::{PaidBatchSettled, PaidCallSettled, PaidResult, VouchProtocolErrors},
    vouch_usd::VouchUSD::VouchUSDErrors,
};
use vouch_crypto::{Signature, aggregate_signatures};
use vouch_primitives::{
    BatchEntry, CallId, ChainBinding, ServiceId, batch_digest, batch_leaf, batch_root, paid_call_id,
    wire::{BatchSignRequest, BatchSignature, MAX_BATCH_SIGN_ENTRIES, TransferAuthorization, WIRE_VERSION},
};

use chain::{SERVICE_ACTIVE, ServiceView, chain_error, read_service};
pub use store::{MemoryStore, SettlementState, SettlementStore};

/// `VouchProtocol.MAX_BATCH_SIZE`: most entries of one `settlePaidBatch`.
pub const CONTRACT_MAX_BATCH: usize = 1024;
/// How long an authorization must stay valid beyond the chain's time to be put in a batch, by default: time to
/// collect the signatures and have the transaction mined.
pub const DEFAULT_VALIDITY_MARGIN: Duration = Duration::from_secs(12);
/// How long an operator has to answer `POST /v1/batches`, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Unsettled calls read per round, as a multiple of the batch size (so that another service's due calls are seen
/// behind a full batch).
const WINDOW_FACTOR: usize = 4;
/// How long a service's operators, keys, endpoints and prices are trusted before they are read again.
const SERVICE_TTL: Duration = Duration::from_secs(30);
/// Payment checks run at once (two or three chain reads each).
const CHECK_CONCURRENCY: usize = 16;
/// How long the batcher waits for its transaction's receipt.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest pause before a failing service is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One paid, answered call waiting for settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSettlement {
    /// The call: `paid_call_id(service_id, job_index, authorization.from, authorization.nonce)`.
    pub call_id: CallId,
    /// Its service.
    pub service_id: ServiceId,
    /// Its job.
    pub job_index: u8,
    /// `keccak256` of the inputs.
    pub inputs_hash: B256,
    /// The certified result hash.
    pub result_hash: B256,
    /// The payer's EIP-3009 authorization (to the protocol, for the job's price).
    pub authorization: TransferAuthorization,
    /// Its 65-byte signature.
    pub payment_signature: Bytes,
    /// Operators whose individual signature is in the call's certificate.
    pub signers: Vec<Address>,
}

/// How the batcher trades gas for latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Most calls per batch (capped at 256, what an operator signs at once, below the contract's 1,024).
    pub max_batch: usize,
    /// Latency bound: a call waits at most this long for its batch to fill.
    pub max_delay: Duration,
    /// Pause between rounds that settled nothing.
    pub poll: Duration,
}

impl Default for BatcherConfig {
    /// Batches of up to 100 calls, sent at the latest 5 s after their oldest call arrived; a look every second.
    fn default() -> Self {
        Self { max_batch: 100, max_delay: Duration::from_secs(5), poll: Duration::from_secs(1) }
    }
}

/// One settled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledBatch {
    /// The `settlePaidBatch` transaction (zero when the batch had been settled before: `NothingToCollect`).
    pub tx: B256,
    /// The paid batch id (`getPaidBatch`); 0 when unknown (`NothingToCollect`).
    pub batch_id: U256,
    /// The calls it settled, in entry order.
    pub calls: Vec<CallId>,
}

/// Why a settlement round failed. The calls stay unsettled and are tried again.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// The store failed.
    #[error("settlement store: {0}")]
    Store(String),
    /// A chain read failed.
    #[error("chain read {what}: {reason}")]
    Chain {
        /// What was read.
        what: String,
        /// The RPC or decoding error.
        reason: String,
    },
    /// Too few operators answered with a valid batch signature.
    #[error("{service}: no quorum of batch signatures ({signed} of {asked} operators signed): {failures}")]
    NoQuorum {
        /// The service.
        service: ServiceId,
        /// Valid signatures.
        signed: usize,
        /// Operators asked.
        asked: usize,
        /// What the others answered.
        failures: String,
    },
    /// `settlePaidBatch` reverted with a known error (other than `NothingToCollect`).
    #[error("settlePaidBatch for {service} reverted: {error}")]
    Reverted {
        /// The service.
        service: ServiceId,
        /// The decoded revert.
        error: ContractError,
    },
    /// The transaction could not be sent or its receipt not obtained.
    #[error("settlePaidBatch for {service}: {reason}")]
    Send {
        /// The service.
        service: ServiceId,
        /// Why.
        reason: String,
    },
    /// The transaction was mined but reverted.
    #[error("settlePaidBatch for {service} was mined but reverted (tx {tx})")]
    FailedOnChain {
        /// The service.
        service: ServiceId,
        /// The transaction.
        tx: B256,
    },
    /// The batch's digest or aggregate signature could not be built.
    #[error("batch certificate: {0}")]
    Certificate(String),
    /// A configuration value is invalid (e.g. the RPC URL of [`wallet_provider`]).
    #[error("configuration: {0}")]
    Config(String),
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// The provider the batcher sends transactions with: gas estimated (so a reverting batch is refused before it is
/// sent, and its revert decoded), the nonce read from the node for each transaction, signed by `signer`.
pub fn wallet_provider(rpc_url: &str, signer: PrivateKeySigner) -> Result<DynProvider, SettlementError> {
    let url = rpc_url.parse().map_err(|e| SettlementError::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}

/// What the checks decided for one call.
#[derive(Debug)]
enum Verdict {
    /// Its authorization is usable: collect it.
    Collect,
    /// Its authorization was collected by an earlier paid batch: the contract skips it.
    Collected,
    /// It can never be collected.
    Unpayable(String),
    /// Not yet valid: leave it for a later round.
    Later,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    until: Instant,
    next: Duration,
}

/// Settles paid, answered calls in batches with `settlePaidBatch` (see the module docs).
pub struct SettlementBatcher<S> {
    read: DynProvider,
    wallet: DynProvider,
    book: AddressBook,
    store: Arc<S>,
    config: BatcherConfig,
    validity_margin: Duration,
    request_timeout: Duration,
    http: reqwest::Client,
    token: OnceCell<TokenDomain>,
    services: Mutex<HashMap<ServiceId, (Instant, Arc<ServiceView>)>>,
    first_seen: Mutex<HashMap<CallId, Instant>>,
    backoff: Mutex<HashMap<ServiceId, Backoff>>,
}

impl<S> std::fmt::Debug for SettlementBatcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlementBatcher")
            .field("protocol", &self.book.contracts.protocol)
            .field("config", &self.config)
            .field("validity_margin", &self.validity_margin)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bit(slot: usize) -> U256 {
    U256::from(1u8) << slot
}

impl<S: SettlementStore> SettlementBatcher<S> {
    /// A batcher reading the chain through `read`, sending through `wallet` (see [`wallet_provider`]; it pays the
    /// gas), for the deployment `book`, over the calls of `store`.
    pub fn new(
        read: DynProvider,
        wallet: DynProvider,
        book: AddressBook,
        store: Arc<S>,
        config: BatcherConfig,
    ) -> Self {
        Self {
            read,
            wallet,
            book,
            store,
            config,
            validity_margin: DEFAULT_VALIDITY_MARGIN,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            http: reqwest::Client::new(),
            token: OnceCell::new(),
            services: Mutex::default(),
            first_seen: Mutex::default(),
            backoff: Mutex::default(),
        }
    }

    /// How long beyond the chain's time an authorization must stay valid to be batched (default
    /// [`DEFAULT_VALIDITY_MARGIN`]); one that expires sooner is marked unpayable.
    pub fn with_validity_margin(mut self, margin: Duration) -> Self {
        self.validity_margin = margin;
        self
    }

    /// How long each operator has to answer `POST /v1/batches` (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The batch size in effect: `config.max_batch` within 1 and 256.
    pub fn max_batch(&self) -> usize {
        self.config.max_batch.clamp(1, MAX_BATCH_SIGN_ENTRIES.min(CONTRACT_MAX_BATCH))
    }

    /// Runs rounds until `shutdown` resolves: right away again after a settled batch, after `poll` otherwise. Errors
    /// are logged and retried; a round in progress is finished before returning.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let pause = match self.settle_once().await {
                Ok(Some(batch)) => {
                    tracing::info!(tx = %batch.tx, batch = %batch.batch_id, calls = batch.calls.len(), "paid batch settled");
                    Duration::ZERO
                }
                Ok(None) => self.config.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "settlement round failed; will retry");
                    self.config.poll
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: settles at most one batch, of one service, if any service's calls are due (see the module docs).
    /// `Ok(None)` when nothing was due or everything due was dropped as unpayable.
    pub async fn settle_once(&self) -> Result<Option<SettledBatch>, SettlementError> {
        let limit = self.max_batch().saturating_mul(WINDOW_FACTOR);
        let pending = self.with_store(move |s| s.unsettled(limit)).await?;
        let seen = self.note_seen(&pending);
        if pending.is_empty() {
            return Ok(None);
        }
        let now = vouch_contracts::chain_now(&self.read).await.map_err(|e| chain_error("latest block", e))?;
        // Services in the order of their oldest call; each with its calls, oldest first.
        let mut order: Vec<ServiceId> = Vec::new();
        let mut groups: HashMap<ServiceId, Vec<PendingSettlement>> = HashMap::new();
        for p in pending {
            if !groups.contains_key(&p.service_id) {
                order.push(p.service_id);
            }
            groups.entry(p.service_id).or_default().push(p);
        }
        for service in order {
            let Some(calls) = groups.remove(&service) else { continue };
            if self.backing_off(service) || !self.due(&calls, &seen, now) {
                continue;
            }
            match self.settle_service(service, calls, now).await {
                Ok(Some(batch)) => {
                    lock(&self.backoff).remove(&service);
                    return Ok(Some(batch));
                }
                Ok(None) => {}
                Err(e) => {
                    self.back_off(service);
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> Result<T, SettlementError> + Send + 'static,
    ) -> Result<T, SettlementError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| SettlementError::Task(e.to_string()))?
    }

    /// Records when each call was first seen (the latency bound counts from there); forgets the others.
    fn note_seen(&self, pending: &[PendingSettlement]) -> HashMap<CallId, Instant> {
        let mut seen = lock(&self.first_seen);
        let now = Instant::now();
        let current: HashSet<CallId> = pending.iter().map(|p| p.call_id).collect();
        seen.retain(|c, _| current.contains(c));
        for p in pending {
            seen.entry(p.call_id).or_insert(now);
        }
        seen.clone()
    }

    /// A service's calls are due when a batch is full, the oldest waited `max_delay`, or one expires soon.
    fn due(&self, calls: &[PendingSettlement], seen: &HashMap<CallId, Instant>, now: u64) -> bool {
        let waited = calls.iter().filter_map(|p| seen.get(&p.call_id)).map(Instant::elapsed).max().unwrap_or_default();
        let soon = now
            .saturating_add(self.validity_margin.as_secs())
            .saturating_add(self.config.max_delay.as_secs())
            .saturating_add(self.config.poll.as_secs());
        calls.len() >= self.max_batch()
            || waited >= self.config.max_delay
            || calls.iter().any(|p| p.authorization.valid_before <= U256::from(soon))
    }

    fn backing_off(&self, service: ServiceId) -> bool {
        lock(&self.backoff).get(&service).is_some_and(|b| b.until > Instant::now())
    }

    fn back_off(&self, service: ServiceId) {
        let base = self.config.poll.max(Duration::from_secs(1));
        let mut map = lock(&self.backoff);
        let b = map.entry(service).or_insert(Backoff { until: Instant::now(), next: base });
        b.until = Instant::now() + b.next;
        b.next = (b.next * 2).min(MAX_BACKOFF);
    }

    async fn service(&self, id: ServiceId) -> Result<Option<Arc<ServiceView>>, SettlementError> {
        if let Some((at, view)) = lock(&self.services).get(&id)
            && at.elapsed() < SERVICE_TTL
        {
            return Ok(Some(view.clone()));
        }
        let Some(view) = read_service(&self.read, &self.book, id).await? else { return Ok(None) };
        let view = Arc::new(view);
        lock(&self.services).insert(id, (Instant::now(), view.clone()));
        Ok(Some(view))
    }

    async fn token(&self) -> Result<&TokenDomain, SettlementError> {
        self.token
            .get_or_try_init(|| TokenDomain::read(&self.read, self.book.contracts.vouch_usd))
            .await
            .map_err(|e| chain_error("payment token domain", e))
    }

    async fn mark_unpayable(&self, calls: Vec<(CallId, String)>) -> Result<(), SettlementError> {
        if calls.is_empty() {
            return Ok(());
        }
        for (call, reason) in &calls {
            tracing::warn!(%call, %reason, "call unpayable: it will not be charged");
        }
        self.with_store(move |s| calls.iter().try_for_each(|(call, reason)| s.mark_unpayable(*call, reason))).await
    }

    async fn mark_settled(&self, calls: &[CallId], tx: B256, batch_id: U256) -> Result<(), SettlementError> {
        let calls = calls.to_vec();
        self.with_store(move |s| s.mark_settled(&calls, tx, batch_id)).await
    }

    async fn quorum(
        &self,
        service: ServiceId,
        bitmap: U256,
        memo: &mut HashMap<U256, bool>,
    ) -> Result<bool, SettlementError> {
        if bitmap.is_zero() {
            return Ok(false);
        }
        if let Some(known) = memo.get(&bitmap) {
            return Ok(*known);
        }
        let protocol = VouchProtocol::new(self.book.contracts.protocol, &self.read);
        let reached = protocol
            .quorumReached(service.0, bitmap)
            .call()
            .await
            .map_err(|e| chain_error(format!("quorumReached({})", service.0), e))?;
        memo.insert(bitmap, reached);
        Ok(reached)
    }

    /// Settles one batch of `service` from `calls` (oldest first).
    async fn settle_service(
        &self,
        service: ServiceId,
        calls: Vec<PendingSettlement>,
        now: u64,
    ) -> Result<Option<SettledBatch>, SettlementError> {
        let Some(view) = self.service(service).await? else {
            let reason = format!("{service} does not exist");
            self.mark_unpayable(calls.iter().map(|p| (p.call_id, reason.clone())).collect()).await?;
            return Ok(None);
        };
        if view.status != SERVICE_ACTIVE || now > view.expiry {
            let reason = format!("{service} is no longer active (status {}, expiry {})", view.status, view.expiry);
            self.mark_unpayable(calls.iter().map(|p| (p.call_id, reason.clone())).collect()).await?;
            return Ok(None);
        }

        // 1–2. In order of expiry (the authorization that lapses first goes first), a batch's worth of calls at a
        // time: drop what can no longer be collected, before anything is signed, and keep the calls whose signers,
        // together, still reach the quorum. Only as many calls are checked as the batch can take (plus the ones
        // dropped on the way): under a backlog, checking the whole window each round would cost its chain reads
        // several times per settled call.
        let mut calls = calls;
        calls.sort_by_key(|p| p.authorization.valid_before);
        let domain = self.token().await?;
        let mut memo = HashMap::new();
        let mut chosen: Vec<(PendingSettlement, bool)> = Vec::new();
        let mut common = U256::ZERO;
        let mut rest = calls.into_iter().peekable();
        while chosen.len() < self.max_batch() && rest.peek().is_some() {
            let chunk: Vec<PendingSettlement> = rest.by_ref().take(self.max_batch() - chosen.len()).collect();
            for (p, collect) in self.screen(service, &view, domain, chunk, now).await? {
                let own = p.signers.iter().filter_map(|s| view.slot_of(*s)).fold(U256::ZERO, |b, slot| b | bit(slot));
                let next = if chosen.is_empty() { own } else { common & own };
                if self.quorum(service, next, &mut memo).await? {
                    common = next;
                    chosen.push((p, collect));
                } else {
                    tracing::debug!(call = %p.call_id, "its signers and the batch's have no quorum together; left for another batch");
                }
            }
        }
        // A payer whose balance does not cover all of its calls in the batch: the calls beyond it are unpayable.
        // Dropping calls keeps `common` a quorum inside every remaining call's signers.
        let over = self.over_balance(domain, &chosen).await?;
        chosen.retain(|(p, _)| !over.iter().any(|(c, _)| *c == p.call_id));
        self.mark_unpayable(over).await?;
        if chosen.is_empty() {
            return Ok(None);
        }

        // 3. One batch signature from each of those operators; keep the ones that verify.
        let entries: Vec<BatchEntry> = chosen
            .iter()
            .map(|(p, _)| BatchEntry { call_id: p.call_id, inputs_hash: p.inputs_hash, result_hash: p.result_hash })
            .collect();
        let binding = ChainBinding::new(self.book.chain_id, self.book.contracts.protocol);
        let digest =
            batch_digest(&binding, service, &entries).map_err(|e| SettlementError::Certificate(e.to_string()))?;
        let leaves: Vec<B256> = entries.iter().map(batch_leaf).collect();
        let root = batch_root(&leaves).ok_or_else(|| SettlementError::Certificate("empty batch".into()))?;
        let request = BatchSignRequest { version: WIRE_VERSION, service_id: service, entries };
        let slots: Vec<usize> = (0..view.operators.len()).filter(|s| common.bit(*s)).collect();
        let answers = join_all(slots.iter().map(|&slot| self.ask(&view, slot, &request, root, digest))).await;
        let mut bitmap = U256::ZERO;
        let mut signatures = Vec::new();
        let mut failures = Vec::new();
        for (&slot, answer) in slots.iter().zip(answers) {
            match answer {
                Ok(signature) => {
                    bitmap |= bit(slot);
                    signatures.push(signature);
                }
                Err(reason) => failures.push(format!("{}: {reason}", view.operators[slot])),
            }
        }
        if !failures.is_empty() {
            tracing::warn!(%service, failures = %failures.join("; "), "some operators did not sign the batch");
        }
        if !self.quorum(service, bitmap, &mut memo).await? {
            return Err(SettlementError::NoQuorum {
                service,
                signed: signatures.len(),
                asked: slots.len(),
                failures: failures.join("; "),
            });
        }
        let aggregate = aggregate_signatures(&signatures).map_err(|e| SettlementError::Certificate(e.to_string()))?;

        // 4. Settle.
        self.submit(service, &chosen, bitmap, Bytes::from(aggregate.to_eip2537().to_vec())).await
    }

    /// Checks `calls` (at most [`CHECK_CONCURRENCY`] at once), marks the ones that can never be collected unpayable,
    /// and returns the others that can go in a batch now, in order, each with whether its authorization is still to
    /// collect (`false`: an earlier paid batch collected it; the contract skips it).
    async fn screen(
        &self,
        service: ServiceId,
        view: &ServiceView,
        domain: &TokenDomain,
        calls: Vec<PendingSettlement>,
        now: u64,
    ) -> Result<Vec<(PendingSettlement, bool)>, SettlementError> {
        // Indices, not references, into the stream: its closure must not be higher-ranked over a lifetime (the
        // future stays `Send` for `tokio::spawn`).
        let calls_ref = &calls;
        let verdicts: Vec<Result<Verdict, SettlementError>> = stream::iter(0..calls.len())
            .map(|i| self.check(service, view, domain, &calls_ref[i], now))
            .buffered(CHECK_CONCURRENCY)
            .collect()
            .await;
        let mut unpayable = Vec::new();
        let mut candidates = Vec::new();
        for (p, verdict) in calls.into_iter().zip(verdicts) {
            match verdict? {
                Verdict::Collect => candidates.push((p, true)),
                Verdict::Collected => candidates.push((p, false)),
                Verdict::Unpayable(reason) => unpayable.push((p.call_id, reason)),
                Verdict::Later => {}
            }
        }
        self.mark_unpayable(unpayable).await?;
        Ok(candidates)
    }

    /// The checks of one call (chain reads at the latest block).
    async fn check(
        &self,
        service: ServiceId,
        view: &ServiceView,
        domain: &TokenDomain,
        p: &PendingSettlement,
        now: u64,
    ) -> Result<Verdict, SettlementError> {
        let a = &p.authorization;
        if paid_call_id(service, p.job_index, a.from, a.nonce) != p.call_id {
            return Ok(Verdict::Unpayable(format!(
                "{} is not the call its authorization pays for (paid_call_id(service, job, from, nonce))",
                p.call_id
            )));
        }
        let Some(price) = view.prices.get(usize::from(p.job_index)).copied() else {
            return Ok(Verdict::Unpayable(format!("{service} has no job {}", p.job_index)));
        };
        let token = VouchUSD::new(domain.token, &self.read);
        let used = token
            .authorizationState(a.from, a.nonce)
            .call()
            .await
            .map_err(|e| chain_error(format!("authorizationState({}, {})", a.from, a.nonce), e))?;
        if used {
            return self.classify_used(p).await;
        }
        if !view.public_access {
            let protocol = VouchProtocol::new(self.book.contracts.protocol, &self.read);
            let permitted = protocol
                .isPermittedCaller(service.0, a.from)
                .call()
                .await
                .map_err(|e| chain_error(format!("isPermittedCaller({}, {})", service.0, a.from), e))?;
            if !permitted {
                return Ok(Verdict::Unpayable(format!("{} may not call {service}", a.from)));
            }
        }
        let expect = PaymentExpectation {
            pay_to: self.book.contracts.protocol,
            amount: price,
            min_validity: self.validity_margin,
        };
        match check_payment(&self.read, domain, a, &p.payment_signature, &expect, now).await {
            Ok(()) => Ok(Verdict::Collect),
            Err(PaymentError::NonceAlreadyUsed { .. }) => self.classify_used(p).await,
            Err(PaymentError::ValidAfter { .. }) => Ok(Verdict::Later),
            Err(e) if !e.is_payment_fault() => Err(chain_error(format!("payment check of {}", p.call_id), e)),
            Err(e) => Ok(Verdict::Unpayable(format!("{e} ({})", e.code()))),
        }
    }

    /// An authorization the token already consumed: collected by a paid batch for this call (keep it, the contract
    /// skips it), or used elsewhere (unpayable).
    async fn classify_used(&self, p: &PendingSettlement) -> Result<Verdict, SettlementError> {
        let protocol = VouchProtocol::new(self.book.contracts.protocol, &self.read);
        let call = protocol
            .getCall(p.call_id.0)
            .call()
            .await
            .map_err(|e| chain_error(format!("getCall({})", p.call_id), e))?;
        if call.status != 0 {
            return Ok(Verdict::Unpayable(
                "the authorization opened an escrowed call (openPaidCall); it settles on that path".into(),
            ));
        }
        let filter = Filter::new()
            .address(self.book.contracts.protocol)
            .event_signature(PaidCallSettled::SIGNATURE_HASH)
            .topic1(B256::from(p.call_id.0))
            .from_block(self.book.deployed_at_block);
        match self.read.get_logs(&filter).await {
            Ok(logs) if !logs.is_empty() => Ok(Verdict::Collected),
            Ok(_) => Ok(Verdict::Unpayable(
                "the authorization was used outside the protocol (sent straight to the token, or cancelled)".into(),
            )),
            Err(e) => {
                // Without the logs the contract decides: it skips an authorization already used.
                tracing::warn!(call = %p.call_id, error = %e, "cannot look up PaidCallSettled; keeping the call");
                Ok(Verdict::Collected)
            }
        }
    }

    /// Calls to collect whose payer cannot pay for all of its calls of the batch (in entry order): unpayable.
    async fn over_balance(
        &self,
        domain: &TokenDomain,
        candidates: &[(PendingSettlement, bool)],
    ) -> Result<Vec<(CallId, String)>, SettlementError> {
        let mut per_payer: HashMap<Address, usize> = HashMap::new();
        for (p, collect) in candidates {
            if *collect {
                *per_payer.entry(p.authorization.from).or_default() += 1;
            }
        }
        let token = VouchUSD::new(domain.token, &self.read);
        let mut over = Vec::new();
        for (payer, _) in per_payer.into_iter().filter(|(_, n)| *n > 1) {
            let balance =
                token.balanceOf(payer).call().await.map_err(|e| chain_error(format!("balanceOf({payer})"), e))?;
            let mut needed = U256::ZERO;
            for (p, collect) in candidates {
                if *collect && p.authorization.from == payer {
                    needed = needed.saturating_add(p.authorization.value);
                    if needed > balance {
                        over.push((
                            p.call_id,
                            format!("{payer} holds {balance}, its calls in this batch need {needed}"),
                        ));
                    }
                }
            }
        }
        Ok(over)
    }

    /// Asks the operator in `slot` for its batch signature and checks it; the signature, or why not.
    async fn ask(
        &self,
        view: &ServiceView,
        slot: usize,
        request: &BatchSignRequest,
        root: B256,
        digest: B256,
    ) -> Result<Signature, String> {
        let operator = view.operators.get(slot).copied().ok_or("no such slot")?;
        let endpoint = view.endpoints.get(slot).cloned().flatten().ok_or("no endpoint announced")?;
        let key = view.keys.get(slot).copied().flatten().ok_or("no registered BLS key")?;
        let url = format!("{}/v1/batches", endpoint.trim_end_matches('/'));
        let response = self
            .http
            .post(&url)
            .json(request)
            .timeout(self.request_timeout)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {}", String::from_utf8_lossy(&body)));
        }
        let answer: BatchSignature = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
        let count = u32::try_from(request.entries.len()).unwrap_or(u32::MAX);
        if answer.version != WIRE_VERSION
            || answer.operator != operator
            || answer.service_id != request.service_id
            || answer.count != count
            || answer.root != root
        {
            return Err(format!("{url} signed something else: {answer:?}"));
        }
        let signature = Signature::from_compressed(&answer.signature).map_err(|e| format!("{url}: {e}"))?;
        tokio::task::spawn_blocking(move || signature.verify(&key, &digest).map(|()| signature))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the signature does not verify against {operator}'s registered key: {e}"))
    }

    /// Sends `settlePaidBatch` and records the outcome.
    async fn submit(
        &self,
        service: ServiceId,
        chosen: &[(PendingSettlement, bool)],
        bitmap: U256,
        signature: Bytes,
    ) -> Result<Option<SettledBatch>, SettlementError> {
        let calls: Vec<CallId> = chosen.iter().map(|(p, _)| p.call_id).collect();
        let entries: Vec<PaidResult> = chosen
            .iter()
            .map(|(p, _)| PaidResult {
                from: p.authorization.from,
                jobIndex: p.job_index,
                validAfter: p.authorization.valid_after,
                validBefore: p.authorization.valid_before,
                nonce: p.authorization.nonce,
                signature: p.payment_signature.clone(),
                inputsHash: p.inputs_hash,
                resultHash: p.result_hash,
            })
            .collect();
        let protocol_address = self.book.contracts.protocol;
        let protocol = VouchProtocol::new(protocol_address, &self.wallet);
        let pending = match protocol.settlePaidBatch(service.0, entries, bitmap, signature).send().await {
            Ok(pending) => pending,
            Err(e) => {
                return match decode_revert_for(Contract::Protocol, e) {
                    Ok(ContractError::Protocol(VouchProtocolErrors::NothingToCollect(_))) => {
                        tracing::info!(%service, calls = calls.len(), "batch already settled (NothingToCollect)");
                        self.mark_settled(&calls, B256::ZERO, U256::ZERO).await?;
                        Ok(Some(SettledBatch { tx: B256::ZERO, batch_id: U256::ZERO, calls }))
                    }
                    Ok(error) => {
                        self.drop_refused(chosen, &error).await?;
                        Err(SettlementError::Reverted { service, error })
                    }
                    Err(e) => Err(SettlementError::Send { service, reason: e.to_string() }),
                };
            }
        };
        let receipt = pending
            .with_timeout(Some(RECEIPT_TIMEOUT))
            .get_receipt()
            .await
            .map_err(|e| SettlementError::Send { service, reason: format!("receipt: {e}") })?;
        let tx = receipt.transaction_hash;
        if !receipt.status() {
            return Err(SettlementError::FailedOnChain { service, tx });
        }
        let batch_id = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == protocol_address)
            .find_map(|log| log.log_decode::<PaidBatchSettled>().ok())
            .map(|log| log.inner.data.batchId)
            .unwrap_or_default();
        self.mark_settled(&calls, tx, batch_id).await?;
        Ok(Some(SettledBatch { tx, batch_id, calls }))
    }

    /// After a revert that names a payer (not permitted, refused by the blueprint's hooks, balance gone), that
    /// payer's calls of the batch are unpayable; the rest is tried again.
    async fn drop_refused(
        &self,
        chosen: &[(PendingSettlement, bool)],
        error: &ContractError,
    ) -> Result<(), SettlementError> {
        let payer = match error.to_interface::<VouchProtocolErrors>() {
            Some(VouchProtocolErrors::CallerNotPermitted(e)) => Some(e.caller),
            Some(VouchProtocolErrors::JobCallRefused(e)) => Some(e.caller),
            _ => match error.to_interface::<VouchUSDErrors>() {
                Some(VouchUSDErrors::ERC20InsufficientBalance(e)) => Some(e.sender),
                _ => None,
            },
        };
        let Some(payer) = payer else { return Ok(()) };
        let reason = format!("settlePaidBatch refused {payer}'s payment: {error}");
        let calls = chosen
            .iter()
            .filter(|(p, collect)| *collect && p.authorization.from == payer)
            .map(|(p, _)| (p.call_id, reason.clone()))
            .collect();
        self.mark_unpayable(calls).await
    }
}
