//! [`Engine`]: runs a paid call's job and signs its result — the one path both job sources (the HTTP API and the
//! chain watcher) go through. Order: the job runs (bounded in time and concurrency; a panic is a job error), then the
//! signing guard records `(service, call) → result` and only then returns the signature.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy_primitives::{Address, B256, Bytes, keccak256};
use tokio::sync::Semaphore;
use vouch_crypto::SecretKey;
use vouch_primitives::{
    BatchEntry, CallId, ResultRef, ServiceId, batch_digest, batch_leaf, batch_root,
    wire::{BatchSignature, MAX_BATCH_SIGN_ENTRIES, SignedResult, WIRE_VERSION},
};
use vouch_sdk::{JobCall, JobError, Router};

use crate::{
    chain::{ChainView, SERVICE_ACTIVE, ServiceInfo},
    guard::{GuardError, SigningGuard},
    metrics::Metrics,
};

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
    /// The signing guard refused or failed.
    #[error(transparent)]
    Guard(#[from] GuardError),
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
            metrics,
        }
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

    /// Runs job `job_index` of `service` for call `call_id` paid by `caller`, then signs the result through the guard.
    pub async fn run_and_sign(
        &self,
        service: &ServiceInfo,
        call_id: CallId,
        job_index: u8,
        caller: Address,
        inputs: Bytes,
    ) -> Result<SignedResult, ExecError> {
        let router = self
            .routers
            .get(&service.blueprint_id)
            .cloned()
            .ok_or(ExecError::BlueprintNotServed { service: service.id, blueprint: service.blueprint_id })?;
        let inputs_hash = keccak256(&inputs);
        let call = JobCall { service_id: service.id, call_id, job_index, caller, inputs: inputs.into() };
        let output = {
            let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
                return Err(ExecError::Job(JobError::Overloaded));
            };
            // Run on its own task: whatever the handler does, a panic stays a job error.
            let task = tokio::spawn(async move { router.call(call).await });
            match tokio::time::timeout(self.timeout, task).await {
                Err(_) => return Err(ExecError::Job(JobError::Timeout)),
                Ok(Err(join)) => return Err(ExecError::Job(JobError::Panicked(join.to_string()))),
                Ok(Ok(Err(e))) => return Err(ExecError::Job(e)),
                Ok(Ok(Ok(out))) => out,
            }
        };
        let output = Bytes::from(output.bytes.to_vec());
        let result = ResultRef { service_id: service.id, call_id, inputs_hash, result_hash: keccak256(&output) };
        let signed = match self.guard.sign_async(self.bls.clone(), vec![result]).await {
            Ok(s) => s,
            Err(e) => {
                self.metrics.guard_refusals.inc();
                return Err(e.into());
            }
        };
        let Some(first) = signed.into_iter().next() else {
            return Err(ExecError::Job(JobError::Handler("the signing guard returned no signature".into())));
        };
        self.metrics.signatures.inc();
        Ok(SignedResult {
            version: WIRE_VERSION,
            operator: self.operator,
            result,
            output: Some(output),
            signature: Bytes::from(first.signature.to_compressed().to_vec()),
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
                    .map_err(|g| Box::new(ExecError::Guard(g)))?
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
                ExecError::Guard(GuardError::SigningTask {
                    path: self.guard.path().to_path_buf(),
                    reason: e.to_string(),
                })
            })?
            .map_err(|e| *e)?;
        self.metrics.signatures.inc();
        Ok(signed)
    }
}
