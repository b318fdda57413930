//! [`Engine`]: runs a paid call's job and signs its result — the one path both job sources (the HTTP API and the
//! chain watcher) go through. Order: the job runs (bounded in time and concurrency; a panic is a job error), then the
//! signing guard records `(service, call) → result` and only then returns the signature.
//!
//! The two other verification modes (`docs/design/tolerant-verification.md`) go through it too:
//!
//! - [`Engine::commit`] ([`Verification::Tolerant`]): runs the job and signs a *commitment* to its own output
//!   (`commitment_digest`), recorded by the guard with the output, once per call.
//! - [`Engine::endorse`] ([`Verification::Tolerant`] or [`Verification::Checked`]): signs another operator's output
//!   as this operator's result if it agrees — within the job's verifier tolerance of this node's own commitment, or
//!   passing the job's checker — through the guard, so an honest node never signs two results for one call.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use alloy_primitives::{Address, B256, Bytes, keccak256};
use tokio::sync::Semaphore;
use vouch_crypto::SecretKey;
use vouch_primitives::{
    BatchEntry, CallId, ResultRef, ServiceId, batch_digest, batch_leaf, batch_root,
    wire::{BatchSignature, MAX_BATCH_SIGN_ENTRIES, SignedCommitment, SignedResult, Verification, WIRE_VERSION},
};
use vouch_sdk::{Agreement, JobCall, JobError, Router};

use crate::{
    chain::{ChainView, SERVICE_ACTIVE, ServiceInfo},
    guard::{CommitmentRecord, Committed, GuardError, NotSafe, Record, SigningGuard},
    metrics::Metrics,
};

/// Default bound of a committed output ([`Engine::with_max_output_bytes`]): the API's default body limit.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Why a call was not signed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The chain has no such service.
    #[error("unknown service {0}")]
    UnknownService(ServiceId),
    /// The service is not active (requested or terminated).
    #[error("service {0} is not active")]
    ServiceNotActive(ServiceId),
    /// This operator is not in the service.
    #[error("operator {operator} is not in service {service}'s operator set")]
    NotInService {
        /// The service.
        service: ServiceId,
        /// This operator.
        operator: Address,
    },
    /// This node does not run the service's blueprint.
    #[error("this node does not run blueprint {blueprint} (service {service})")]
    BlueprintNotServed {
        /// The service.
        service: ServiceId,
        /// Its blueprint.
        blueprint: u64,
    },
    /// The blueprint has no such job.
    #[error("service {service} has no job {job_index} (its blueprint has {jobs} jobs)")]
    UnknownJob {
        /// The service.
        service: ServiceId,
        /// The job.
        job_index: u8,
        /// Jobs of the blueprint.
        jobs: usize,
    },
    /// The job failed.
    #[error("job failed: {0}")]
    Job(JobError),
    /// The signing guard refused or failed (boxed: the guard's errors are large).
    #[error(transparent)]
    Guard(Box<GuardError>),
    /// A chain read failed.
    #[error(transparent)]
    Node(#[from] crate::NodeError),
    /// A batch to sign holds no entry or more than this node signs at once.
    #[error("a batch must hold 1 to {max} calls, got {count}")]
    BatchSize {
        /// Entries received.
        count: usize,
        /// Most entries accepted ([`MAX_BATCH_SIGN_ENTRIES`]).
        max: usize,
    },
    /// A batch to sign names one call twice.
    #[error("{call} appears more than once in the batch")]
    DuplicateCall {
        /// The call.
        call: CallId,
    },
    /// A batch names a call this node never signed: it restates signed results only.
    #[error("this node has not signed {call} of {service}: a batch may hold only calls it signed one by one")]
    NotSigned {
        /// The service.
        service: ServiceId,
        /// The call.
        call: CallId,
    },
    /// A batch entry differs from what this node signed for the call.
    #[error("{0}")]
    ConflictingEntry(Box<EntryConflict>),
    /// The job is verified another way than the endpoint (or job source) serves.
    #[error(
        "job {job_index} of {service} is verified `{}`, which {endpoint} does not serve: {}",
        verification_name(*.verification), verification_hint(*.verification)
    )]
    WrongVerification {
        /// The service.
        service: ServiceId,
        /// The job.
        job_index: u8,
        /// How the job is verified (the blueprint's router).
        verification: Verification,
        /// What was asked (`POST /v1/jobs`, `POST /v1/commitments`, …).
        endpoint: &'static str,
    },
    /// This operator does not endorse the proposed output.
    #[error("this operator does not endorse the proposed output for {call} of {service}: {reason}")]
    Disagree {
        /// The service.
        service: ServiceId,
        /// The call.
        call: CallId,
        /// Why (the verifier's or checker's reason).
        reason: String,
    },
    /// The job's output is too large to commit to (and to endorse: an endorsement request carries it).
    #[error("the job's output is {len} bytes, above the {max} bytes this node commits to")]
    OutputTooLarge {
        /// Output size.
        len: usize,
        /// The bound.
        max: usize,
    },
}

impl From<GuardError> for ExecError {
    fn from(e: GuardError) -> Self {
        Self::Guard(Box::new(e))
    }
}

/// The name of a verification mode, as in blueprint metadata.
fn verification_name(v: Verification) -> &'static str {
    match v {
        Verification::Exact => "exact",
        Verification::Tolerant => "tolerant",
        Verification::Checked => "checked",
    }
}

/// Which endpoints serve a verification mode.
fn verification_hint(v: Verification) -> &'static str {
    match v {
        Verification::Exact => "use POST /v1/jobs",
        Verification::Tolerant => {
            "use POST /v1/commitments, then POST /v1/endorsements with the output proposed for certification"
        }
        Verification::Checked => {
            "the executor uses POST /v1/jobs, every other operator POST /v1/endorsements with the executor's output"
        }
    }
}

/// A batch entry that differs from the guard's record of its call ([`ExecError::ConflictingEntry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryConflict {
    /// The service.
    pub service: ServiceId,
    /// The call.
    pub call: CallId,
    /// Inputs hash in the batch.
    pub inputs_hash: B256,
    /// Result hash in the batch.
    pub result_hash: B256,
    /// Inputs hash the guard recorded.
    pub signed_inputs: B256,
    /// Result hash the guard recorded.
    pub signed_result: B256,
}

impl std::fmt::Display for EntryConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} was signed with inputs hash {} and result hash {}, the batch says {} and {}: refusing to sign a \
             conflicting statement",
            self.call, self.service, self.signed_inputs, self.signed_result, self.inputs_hash, self.result_hash
        )
    }
}

/// Runs jobs and signs results for one operator.
pub struct Engine {
    operator: Address,
    bls: Arc<SecretKey>,
    guard: SigningGuard,
    chain: ChainView,
    routers: HashMap<u64, Router>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    max_output_bytes: usize,
    metrics: Metrics,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("operator", &self.operator)
            .field("blueprints", &self.routers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine signing as `operator` with `bls`, running `routers` (by blueprint id).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        operator: Address,
        bls: Arc<SecretKey>,
        guard: SigningGuard,
        chain: ChainView,
        routers: HashMap<u64, Router>,
        max_concurrent: usize,
        timeout: Duration,
        metrics: Metrics,
    ) -> Self {
        Self {
            operator,
            bls,
            guard,
            chain,
            routers,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            timeout,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            metrics,
        }
    }

    /// Commits only to outputs of at most `max` bytes ([`ExecError::OutputTooLarge`] above): the guard keeps
    /// committed outputs, and an endorsement request, bounded by the API's body limit, must be able to carry one.
    /// Default [`DEFAULT_MAX_OUTPUT_BYTES`]; the node sets its `api.max_body_bytes`.
    #[must_use]
    pub fn with_max_output_bytes(mut self, max: usize) -> Self {
        self.max_output_bytes = max;
        self
    }

    /// This operator.
    pub fn operator(&self) -> Address {
        self.operator
    }

    /// The chain view.
    pub fn chain(&self) -> &ChainView {
        &self.chain
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The guard.
    pub fn guard(&self) -> &SigningGuard {
        &self.guard
    }

    /// Blueprints this node runs.
    pub fn blueprints(&self) -> Vec<u64> {
        self.routers.keys().copied().collect()
    }

    /// Checks that `service` exists, is active, names this operator, runs a blueprint this node serves, and has job
    /// `job_index`; returns the service and this operator's slot.
    pub async fn admit(&self, service: ServiceId, job_index: u8) -> Result<(Arc<ServiceInfo>, usize), ExecError> {
        let info = self.chain.service(service).await?.ok_or(ExecError::UnknownService(service))?;
        if info.status != SERVICE_ACTIVE {
            return Err(ExecError::ServiceNotActive(service));
        }
        let slot = info.slot_of(self.operator).ok_or(ExecError::NotInService { service, operator: self.operator })?;
        if !self.routers.contains_key(&info.blueprint_id) {
            return Err(ExecError::BlueprintNotServed { service, blueprint: info.blueprint_id });
        }
        if usize::from(job_index) >= info.jobs.len() {
            return Err(ExecError::UnknownJob { service, job_index, jobs: info.jobs.len() });
        }
        Ok((info, slot))
    }

    fn router_of(&self, service: &ServiceInfo) -> Result<Router, ExecError> {
        self.routers
            .get(&service.blueprint_id)
            .cloned()
            .ok_or(ExecError::BlueprintNotServed { service: service.id, blueprint: service.blueprint_id })
    }

    /// How job `job_index` of `service` is verified, as this node's router for its blueprint declares it.
    pub fn verification(&self, service: &ServiceInfo, job_index: u8) -> Result<Verification, ExecError> {
        Ok(self.router_of(service)?.verification_for(job_index))
    }

    /// `Ok` if job `job_index` of `service` is verified one of the `allowed` ways; else
    /// [`ExecError::WrongVerification`] naming `endpoint`.
    pub fn require_verification(
        &self,
        service: &ServiceInfo,
        job_index: u8,
        allowed: &[Verification],
        endpoint: &'static str,
    ) -> Result<Verification, ExecError> {
        let verification = self.verification(service, job_index)?;
        if allowed.contains(&verification) {
            Ok(verification)
        } else {
            Err(ExecError::WrongVerification { service: service.id, job_index, verification, endpoint })
        }
    }

    /// Runs `work` on its own task under a concurrency permit and the job timeout: whatever it does, a panic stays a
    /// job error.
    async fn run_bounded<T, F>(&self, work: F) -> Result<T, ExecError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, JobError>> + Send + 'static,
    {
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return Err(ExecError::Job(JobError::Overloaded));
        };
        let task = tokio::spawn(work);
        match tokio::time::timeout(self.timeout, task).await {
            Err(_) => Err(ExecError::Job(JobError::Timeout)),
            Ok(Err(join)) => Err(ExecError::Job(JobError::Panicked(join.to_string()))),
            Ok(Ok(Err(e))) => Err(ExecError::Job(e)),
            Ok(Ok(Ok(out))) => Ok(out),
        }
    }

    /// Runs the job of `call` with `router` (bounded); its output.
    async fn run_job(&self, router: Router, call: JobCall) -> Result<Bytes, ExecError> {
        let output = self.run_bounded(async move { router.call(call).await }).await?;
        Ok(Bytes::from(output.bytes.to_vec()))
    }

    /// Signs `result` through the guard; a refusal is counted.
    async fn sign_result(&self, result: ResultRef) -> Result<Bytes, ExecError> {
        let signed = match self.guard.sign_async(self.bls.clone(), vec![result]).await {
            Ok(s) => s,
            Err(e) => {
                if e.not_safe().is_some() {
                    self.metrics.guard_refusals.inc();
                }
                return Err(e.into());
            }
        };
        let Some(first) = signed.into_iter().next() else {
            return Err(ExecError::Job(JobError::Handler("the signing guard returned no signature".into())));
        };
        self.metrics.signatures.inc();
        Ok(Bytes::from(first.signature.to_compressed().to_vec()))
    }

    /// Reads the guard on the blocking pool.
    async fn read_guard<T, F>(&self, read: F) -> Result<T, ExecError>
    where
        T: Send + 'static,
        F: FnOnce(&SigningGuard) -> Result<T, GuardError> + Send + 'static,
    {
        let guard = self.guard.clone();
        tokio::task::spawn_blocking(move || read(&guard))
            .await
            .map_err(|e| {
                ExecError::from(GuardError::SigningTask {
                    path: self.guard.path().to_path_buf(),
                    reason: e.to_string(),
                })
            })?
            .map_err(ExecError::from)
    }

    /// Runs job `job_index` of `service` for call `call_id` paid by `caller`, then signs the result through the guard.
    ///
    /// Refused for a [`Verification::Tolerant`] job ([`ExecError::WrongVerification`]): its operators commit first
    /// ([`Engine::commit`]) and sign the canonical output ([`Engine::endorse`]); a direct result would make the
    /// guard refuse that endorsement.
    pub async fn run_and_sign(
        &self,
        service: &ServiceInfo,
        call_id: CallId,
        job_index: u8,
        caller: Address,
        inputs: Bytes,
    ) -> Result<SignedResult, ExecError> {
        self.require_verification(service, job_index, &[Verification::Exact, Verification::Checked], "POST /v1/jobs")?;
        let router = self.router_of(service)?;
        let inputs_hash = keccak256(&inputs);
        let output = self.run_job(router, JobCall::new(service.id, call_id, job_index, caller, inputs)).await?;
        let result = ResultRef { service_id: service.id, call_id, inputs_hash, result_hash: keccak256(&output) };
        let signature = self.sign_result(result).await?;
        Ok(SignedResult { version: WIRE_VERSION, operator: self.operator, result, output: Some(output), signature })
    }

    /// Commits to this node's own output for call `call_id` of job `job_index` (a [`Verification::Tolerant`] job):
    /// runs the job, then the guard records the commitment with the output and only then returns the signature over
    /// `commitment_digest`.
    ///
    /// A node commits once per call: if it already committed for this call, the recorded commitment (output and
    /// signature) is answered again without running the job (a noisy job would compute another output); other inputs
    /// for the same call are refused by the guard.
    pub async fn commit(
        &self,
        service: &ServiceInfo,
        call_id: CallId,
        job_index: u8,
        caller: Address,
        inputs: Bytes,
    ) -> Result<SignedCommitment, ExecError> {
        self.require_verification(service, job_index, &[Verification::Tolerant], "POST /v1/commitments")?;
        let router = self.router_of(service)?;
        let committed = self.commit_own(router, service, call_id, job_index, caller, inputs).await?;
        Ok(SignedCommitment {
            version: WIRE_VERSION,
            operator: self.operator,
            commitment: committed.entry,
            output: committed.output,
            signature: Bytes::from(committed.signature.to_compressed().to_vec()),
        })
    }

    /// This node's commitment for the call: the recorded one, or a new one (the job runs).
    async fn commit_own(
        &self,
        router: Router,
        service: &ServiceInfo,
        call_id: CallId,
        job_index: u8,
        caller: Address,
        inputs: Bytes,
    ) -> Result<Committed, ExecError> {
        let service_id = service.id;
        let inputs_hash = keccak256(&inputs);
        let recorded = self.read_guard(move |g| g.get_commitment(service_id, call_id)).await?;
        let output = match recorded {
            // Through the guard again: the same commitment gets its recorded signature, other inputs are refused.
            Some(record) => record.output,
            None => {
                let output = self.run_job(router, JobCall::new(service_id, call_id, job_index, caller, inputs)).await?;
                if output.len() > self.max_output_bytes {
                    return Err(ExecError::OutputTooLarge { len: output.len(), max: self.max_output_bytes });
                }
                output
            }
        };
        match self.guard.commit_async(self.bls.clone(), service_id, call_id, inputs_hash, output).await {
            Ok(committed) => {
                if committed.fresh {
                    tracing::debug!(call = %call_id, service = %service_id, output = %committed.entry.output_hash,
                        "committed to this node's output");
                }
                Ok(committed)
            }
            Err(e) if e.not_safe().is_some() => {
                // A concurrent request for the same call committed first: that is this node's commitment.
                let recorded = self.read_guard(move |g| g.get_commitment(service_id, call_id)).await?;
                match recorded {
                    Some(CommitmentRecord { entry, output, signature, .. }) if entry.inputs_hash == inputs_hash => {
                        Ok(Committed { entry, output, signature, fresh: false })
                    }
                    _ => {
                        self.metrics.guard_refusals.inc();
                        Err(e.into())
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Signs `claimed` — another operator's output for call `call_id` of job `job_index` — as this node's result if
    /// this node agrees with it:
    ///
    /// - [`Verification::Tolerant`]: `router.verifier_for(job).agrees(own, claimed)` with this node's committed output
    ///   `own` (if it has not committed yet, it runs the job and commits first, so a slow node can still endorse);
    /// - [`Verification::Checked`]: the job's checker accepts `claimed` (run like a job: bounded by the concurrency
    ///   permits and the job timeout);
    /// - [`Verification::Exact`]: refused ([`ExecError::WrongVerification`]).
    ///
    /// On agreement the result `keccak256(claimed)` is signed through the guard, so a second, different endorsement
    /// for the call is refused ([`GuardError::Refused`]). If the guard already holds a result for the call, it is
    /// answered (the same result) or refused (another one) before any check runs. A disagreement is
    /// [`ExecError::Disagree`]. The answer carries no output (the caller has it).
    #[allow(clippy::too_many_arguments)]
    pub async fn endorse(
        &self,
        service: &ServiceInfo,
        call_id: CallId,
        job_index: u8,
        caller: Address,
        inputs: Bytes,
        claimed: Bytes,
    ) -> Result<SignedResult, ExecError> {
        let verification = self.require_verification(
            service,
            job_index,
            &[Verification::Tolerant, Verification::Checked],
            "POST /v1/endorsements",
        )?;
        let router = self.router_of(service)?;
        let result = ResultRef {
            service_id: service.id,
            call_id,
            inputs_hash: keccak256(&inputs),
            result_hash: keccak256(&claimed),
        };
        let service_id = service.id;
        if let Some(record) = self.read_guard(move |g| g.get(service_id, call_id)).await? {
            return self.signed_again(result, &record);
        }
        let agreement = if verification == Verification::Tolerant {
            let own = self.commit_own(router.clone(), service, call_id, job_index, caller, inputs).await?;
            let verifier = router.verifier_for(job_index);
            let compared = claimed.clone();
            tokio::task::spawn_blocking(move || verifier.agrees(&own.output, &compared))
                .await
                .map_err(|e| ExecError::Job(JobError::Panicked(format!("the verifier panicked: {e}"))))?
        } else {
            let call = JobCall::new(service_id, call_id, job_index, caller, inputs).with_claimed(claimed.clone());
            self.run_bounded(async move { router.check(call).await }).await?
        };
        match agreement {
            Agreement::Agree => {
                let signature = self.sign_result(result).await?;
                tracing::debug!(call = %call_id, service = %service_id, result = %result.result_hash, "endorsed");
                Ok(SignedResult { version: WIRE_VERSION, operator: self.operator, result, output: None, signature })
            }
            Agreement::Disagree { reason } => {
                tracing::info!(call = %call_id, service = %service_id, claimed = %result.result_hash, %reason,
                    "not endorsing the proposed output");
                Err(ExecError::Disagree { service: service_id, call: call_id, reason })
            }
        }
    }

    /// The answer for `result` given the guard's `record` of its call: the recorded signature if they are the same
    /// result, the guard's refusal otherwise.
    fn signed_again(&self, result: ResultRef, record: &Record) -> Result<SignedResult, ExecError> {
        let recorded = record.entry;
        let refusal = if recorded.result_hash != result.result_hash {
            Some(NotSafe::ConflictingResult {
                service_id: result.service_id,
                call_id: result.call_id,
                recorded_result: recorded.result_hash,
                attempted_result: result.result_hash,
            })
        } else if recorded.inputs_hash != result.inputs_hash {
            Some(NotSafe::ConflictingInputs {
                service_id: result.service_id,
                call_id: result.call_id,
                recorded_inputs: recorded.inputs_hash,
                attempted_inputs: result.inputs_hash,
            })
        } else {
            None
        };
        if let Some(not_safe) = refusal {
            self.metrics.guard_refusals.inc();
            return Err(GuardError::Refused(not_safe).into());
        }
        self.metrics.signatures.inc();
        Ok(SignedResult {
            version: WIRE_VERSION,
            operator: self.operator,
            result,
            output: None,
            signature: Bytes::from(record.signature.to_compressed().to_vec()),
        })
    }

    /// Signs one batch certificate of `service` over `entries`: `batch_digest(binding, service, entries)`, whose
    /// leaves are `batch_leaf(entry)` in the given order (what `settlePaidBatch` and `settleBatch` verify).
    ///
    /// Signed only if the service exists and names this operator, the batch holds 1 to [`MAX_BATCH_SIGN_ENTRIES`]
    /// distinct calls, and every entry is recorded in the signing guard with exactly its inputs hash and result
    /// hash. So a batch signature restates results this node already signed one by one: it can never conflict
    /// with the guard's records (nothing new is recorded). The checks and the signing run on the blocking pool.
    pub async fn sign_batch(&self, service: ServiceId, entries: &[BatchEntry]) -> Result<BatchSignature, ExecError> {
        if entries.is_empty() || entries.len() > MAX_BATCH_SIGN_ENTRIES {
            return Err(ExecError::BatchSize { count: entries.len(), max: MAX_BATCH_SIGN_ENTRIES });
        }
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        if let Some(dup) = entries.iter().find(|e| !seen.insert(e.call_id)) {
            return Err(ExecError::DuplicateCall { call: dup.call_id });
        }
        let info = self.chain.service(service).await?.ok_or(ExecError::UnknownService(service))?;
        if info.slot_of(self.operator).is_none() {
            return Err(ExecError::NotInService { service, operator: self.operator });
        }
        let binding = self.chain.binding();
        let guard = self.guard.clone();
        let secret = self.bls.clone();
        let entries = entries.to_vec();
        let operator = self.operator;
        // The closure's error is boxed: `ExecError` is too large to return by value cheaply.
        let task = tokio::task::spawn_blocking(move || -> Result<BatchSignature, Box<ExecError>> {
            for e in &entries {
                let record = guard
                    .get(service, e.call_id)
                    .map_err(|g| Box::new(ExecError::from(g)))?
                    .ok_or_else(|| Box::new(ExecError::NotSigned { service, call: e.call_id }))?;
                let signed = record.entry;
                if signed.inputs_hash != e.inputs_hash || signed.result_hash != e.result_hash {
                    return Err(Box::new(ExecError::ConflictingEntry(Box::new(EntryConflict {
                        service,
                        call: e.call_id,
                        inputs_hash: e.inputs_hash,
                        result_hash: e.result_hash,
                        signed_inputs: signed.inputs_hash,
                        signed_result: signed.result_hash,
                    }))));
                }
            }
            let too_many = || Box::new(ExecError::BatchSize { count: entries.len(), max: MAX_BATCH_SIGN_ENTRIES });
            let digest = batch_digest(&binding, service, &entries).map_err(|_| too_many())?;
            let leaves: Vec<B256> = entries.iter().map(batch_leaf).collect();
            let root = batch_root(&leaves).ok_or_else(too_many)?;
            let count = u32::try_from(entries.len()).map_err(|_| too_many())?;
            let signature = secret.sign(&digest);
            Ok(BatchSignature {
                version: WIRE_VERSION,
                operator,
                service_id: service,
                root,
                count,
                signature: Bytes::from(signature.to_compressed().to_vec()),
            })
        });
        let signed = task
            .await
            .map_err(|e| {
                ExecError::from(GuardError::SigningTask {
                    path: self.guard.path().to_path_buf(),
                    reason: e.to_string(),
                })
            })?
            .map_err(|e| *e)?;
        self.metrics.signatures.inc();
        Ok(signed)
    }
}
