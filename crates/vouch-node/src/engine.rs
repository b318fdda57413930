//! [`Engine`]: runs a paid call's job and signs its result — the one path both job sources (the HTTP API and the
//! chain watcher) go through. Order: the job runs (bounded in time and concurrency; a panic is a job error), then the
//! signing guard records `(service, call) → result` and only then returns the signature.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy_primitives::{Address, Bytes, keccak256};
use tokio::sync::Semaphore;
use vouch_crypto::SecretKey;
use vouch_primitives::{
    CallId, ResultRef, ServiceId,
    wire::{SignedResult, WIRE_VERSION},
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
}
