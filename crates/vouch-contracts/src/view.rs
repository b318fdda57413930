//! [`ChainView`]: what nodes and gateways read from the chain — services (operators, snapshot stakes, BLS keys),
//! blueprints (policy, job prices and deadlines), calls, endpoints — cached where the contracts make the data
//! immutable.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use vouch_crypto::PublicKey;
use vouch_primitives::{CallId, ChainBinding, ServiceId};

use crate::{AddressBook, KeyRegistry, VouchProtocol, VouchStaking};

/// How long a service's status is trusted before it is read again (its operator set and stakes never change after
/// activation; its status can move to `Terminated`).
const SERVICE_TTL: Duration = Duration::from_secs(30);

/// `IVouchProtocol.ServiceStatus.Active`.
pub const SERVICE_ACTIVE: u8 = 2;
/// `IVouchProtocol.CallStatus.Open`.
pub const CALL_OPEN: u8 = 1;
/// `IVouchProtocol.CallStatus.Settled`.
pub const CALL_SETTLED: u8 = 2;

/// One job of a blueprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTerms {
    /// Price per call, payment-token units.
    pub price: u128,
    /// Seconds from opening to the latest settlement.
    pub deadline: u32,
}

/// An active (or once active) service, as nodes and gateways need it.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    /// The service.
    pub id: ServiceId,
    /// Its blueprint.
    pub blueprint_id: u64,
    /// `IVouchProtocol.ServiceStatus` as a number.
    pub status: u8,
    /// No calls open after this unix time.
    pub expiry: u64,
    /// Operators in slot order (slot i = bitmap bit i).
    pub operators: Vec<Address>,
    /// Snapshot stakes in slot order.
    pub stakes: Vec<U256>,
    /// Their sum.
    pub total_stake: U256,
    /// Registered BLS keys in slot order (`None` if an operator has none, which the contracts never allow in an
    /// active service).
    pub keys: Vec<Option<PublicKey>>,
    /// Quorum, basis points of stake.
    pub quorum_bps: u16,
    /// Minimum signers.
    pub min_signers: u16,
    /// Jobs by index.
    pub jobs: Vec<JobTerms>,
}

impl ServiceInfo {
    /// The slot of `operator`, if it is in the service.
    pub fn slot_of(&self, operator: Address) -> Option<usize> {
        self.operators.iter().position(|o| *o == operator)
    }

    /// Whether the signers in `bitmap` reach the quorum by snapshot stake and count (the contract also caps each
    /// weight by the stake still slashable; the submitter asks `quorumReached` before sending).
    pub fn quorum_by_snapshot(&self, bitmap: U256) -> bool {
        let mut weight = U256::ZERO;
        let mut count = 0u16;
        for (slot, stake) in self.stakes.iter().enumerate() {
            if bitmap.bit(slot) {
                weight += *stake;
                count = count.saturating_add(1);
            }
        }
        count >= self.min_signers && weight * U256::from(10_000u64) >= self.total_stake * U256::from(self.quorum_bps)
    }
}

/// A call as stored on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnChainCall {
    /// Its service.
    pub service_id: ServiceId,
    /// Its job.
    pub job_index: u8,
    /// `IVouchProtocol.CallStatus` (0 = none).
    pub status: u8,
    /// Latest settlement time.
    pub deadline: u64,
    /// Who paid.
    pub payer: Address,
    /// `keccak256(inputs)`.
    pub inputs_hash: B256,
}

/// A chain read failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("chain read {what}: {reason}")]
pub struct ViewError {
    /// What was read.
    pub what: String,
    /// The RPC or decoding error.
    pub reason: String,
}

impl ViewError {
    fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self { what: what.into(), reason: reason.to_string() }
    }
}

/// Services read, with when.
type ServiceCache = Arc<Mutex<HashMap<u64, (Instant, Arc<ServiceInfo>)>>>;

/// Endpoints read, with when.
type EndpointCache = Arc<Mutex<HashMap<Address, (Instant, String)>>>;

/// How long an operator's announced endpoint is reused before it is read again.
const ENDPOINT_TTL: Duration = Duration::from_secs(30);

/// Cached chain reads.
#[derive(Clone, Debug)]
pub struct ChainView {
    provider: DynProvider,
    book: AddressBook,
    services: ServiceCache,
    endpoints: EndpointCache,
}

impl ChainView {
    /// Reads through `provider` the deployment named by `book`.
    pub fn new(provider: DynProvider, book: AddressBook) -> Self {
        Self { provider, book, services: Arc::default(), endpoints: Arc::default() }
    }

    /// The provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The deployment.
    pub fn book(&self) -> &AddressBook {
        &self.book
    }

    /// What every result signature is bound to.
    pub fn binding(&self) -> ChainBinding {
        ChainBinding::new(self.book.chain_id, self.book.contracts.protocol)
    }

    /// Service `id`, or `None` if the chain has no such service.
    pub async fn service(&self, id: ServiceId) -> Result<Option<Arc<ServiceInfo>>, ViewError> {
        if let Ok(cache) = self.services.lock()
            && let Some((at, info)) = cache.get(&id.0)
            && at.elapsed() < SERVICE_TTL
        {
            return Ok(Some(info.clone()));
        }
        let protocol = VouchProtocol::new(self.book.contracts.protocol, &self.provider);
        let s = protocol.getService(id.0).call().await.map_err(|e| ViewError::new(format!("getService({id})"), e))?;
        if s.status == 0 {
            return Ok(None);
        }
        let b = protocol
            .getBlueprint(s.blueprintId)
            .call()
            .await
            .map_err(|e| ViewError::new(format!("getBlueprint({})", s.blueprintId), e))?;
        let registry = KeyRegistry::new(self.book.contracts.key_registry, &self.provider);
        let mut keys = Vec::with_capacity(s.operators.len());
        for op in &s.operators {
            let raw = registry.keyOf(*op).call().await.map_err(|e| ViewError::new(format!("keyOf({op})"), e))?;
            keys.push(PublicKey::from_eip2537(&raw).ok());
        }
        let info = Arc::new(ServiceInfo {
            id,
            blueprint_id: s.blueprintId,
            status: s.status,
            expiry: s.expiry,
            operators: s.operators,
            stakes: s.stakes,
            total_stake: s.totalStake,
            keys,
            quorum_bps: b.policy.quorumBps,
            min_signers: b.policy.minSigners,
            jobs: b.jobs.iter().map(|j| JobTerms { price: j.price, deadline: j.deadline }).collect(),
        });
        if let Ok(mut cache) = self.services.lock() {
            cache.insert(id.0, (Instant::now(), info.clone()));
        }
        Ok(Some(info))
    }

    /// Call `id` as stored on chain (status 0 if unknown).
    pub async fn call(&self, id: CallId) -> Result<OnChainCall, ViewError> {
        let protocol = VouchProtocol::new(self.book.contracts.protocol, &self.provider);
        let c = protocol.getCall(id.0).call().await.map_err(|e| ViewError::new(format!("getCall({id})"), e))?;
        Ok(OnChainCall {
            service_id: ServiceId(c.serviceId),
            job_index: c.jobIndex,
            status: c.status,
            deadline: c.deadline,
            payer: c.payer,
            inputs_hash: c.inputsHash,
        })
    }

    /// Whether the contract counts `bitmap` as a quorum of `service` now.
    pub async fn quorum_reached(&self, service: ServiceId, bitmap: U256) -> Result<bool, ViewError> {
        let protocol = VouchProtocol::new(self.book.contracts.protocol, &self.provider);
        protocol
            .quorumReached(service.0, bitmap)
            .call()
            .await
            .map_err(|e| ViewError::new(format!("quorumReached({service})"), e))
    }

    /// The endpoint `operator` announced (cached for 30 s; [`Self::forget_endpoint`] after a failed connection).
    pub async fn endpoint_of(&self, operator: Address) -> Result<String, ViewError> {
        if let Ok(cache) = self.endpoints.lock()
            && let Some((at, endpoint)) = cache.get(&operator)
            && at.elapsed() < ENDPOINT_TTL
        {
            return Ok(endpoint.clone());
        }
        let staking = VouchStaking::new(self.book.contracts.staking, &self.provider);
        let info = staking
            .operatorInfo(operator)
            .call()
            .await
            .map_err(|e| ViewError::new(format!("operatorInfo({operator})"), e))?;
        if let Ok(mut cache) = self.endpoints.lock() {
            cache.insert(operator, (Instant::now(), info.endpoint.clone()));
        }
        Ok(info.endpoint)
    }

    /// Drops `operator`'s cached endpoint (it may have announced a new one).
    pub fn forget_endpoint(&self, operator: Address) {
        if let Ok(mut cache) = self.endpoints.lock() {
            cache.remove(&operator);
        }
    }

    /// The registered BLS key of `operator`, if any.
    pub async fn key_of(&self, operator: Address) -> Result<Option<PublicKey>, ViewError> {
        let registry = KeyRegistry::new(self.book.contracts.key_registry, &self.provider);
        let raw = registry.keyOf(operator).call().await.map_err(|e| ViewError::new(format!("keyOf({operator})"), e))?;
        Ok(PublicKey::from_eip2537(&raw).ok())
    }

    /// Latest block timestamp.
    pub async fn now(&self) -> Result<u64, ViewError> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| ViewError::new("latest block", e))?
            .ok_or_else(|| ViewError::new("latest block", "the node returned none"))?;
        Ok(block.header.timestamp)
    }
}
