//! [`ChainView`]: what nodes and gateways read from the chain — services (operators, snapshot stakes, BLS keys),
//! blueprints (policy, job prices and deadlines), calls, endpoints — cached where the contracts make the data
//! immutable.
//!
//! Services and endpoints are cached for [`DEFAULT_CACHE_TTL`] (a node) or for the TTL given to
//! [`ChainView::with_cache_ttl`] (the gateway, which also drops entries as the chain's events say they changed:
//! [`ChainView::invalidate_service`], [`ChainView::invalidate_endpoint`], [`ChainView::invalidate_key`],
//! [`ChainView::invalidate_all`]). A read that was in flight while an entry was invalidated is returned to its caller
//! but not cached, so an invalidation is never undone by a read that started before it.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use vouch_crypto::PublicKey;
use vouch_primitives::{CallId, ChainBinding, ServiceId, wire::Verification};

use crate::{AddressBook, KeyRegistry, VouchProtocol, VouchStaking};

/// How long a service (its status can move to `Terminated`; its operator set and snapshot stakes never change after
/// activation) or an operator's endpoint is trusted before it is read again, unless [`ChainView::with_cache_ttl`]
/// says otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);

/// `IVouchProtocol.ServiceStatus.Active`.
pub const SERVICE_ACTIVE: u8 = 2;
/// `IVouchProtocol.CallStatus.Open`.
pub const CALL_OPEN: u8 = 1;
/// `IVouchProtocol.CallStatus.Settled`.
pub const CALL_SETTLED: u8 = 2;

/// `IVouchProtocol.Verification` of `v`: the number the contracts store (declaration order).
pub fn verification_code(v: Verification) -> u8 {
    match v {
        Verification::Exact => 0,
        Verification::Tolerant => 1,
        Verification::Checked => 2,
    }
}

/// The [`Verification`] the contracts store as `code`; `None` for a number the enum does not have (the contracts
/// never store one: ABI decoding refuses it).
pub fn verification_from_code(code: u8) -> Option<Verification> {
    match code {
        0 => Some(Verification::Exact),
        1 => Some(Verification::Tolerant),
        2 => Some(Verification::Checked),
        _ => None,
    }
}

/// One job of a blueprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTerms {
    /// Price per call, payment-token units.
    pub price: u128,
    /// Seconds from opening to the latest settlement.
    pub deadline: u32,
    /// How its operators come to sign one result, as the blueprint registered it on chain (only exact jobs can be
    /// opened with `callJob`).
    pub verification: Verification,
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

/// Entries read, each with when, and a generation that every invalidation bumps.
#[derive(Debug)]
struct Cache<K, V> {
    entries: HashMap<K, (Instant, V)>,
    generation: u64,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self { entries: HashMap::new(), generation: 0 }
    }
}

/// A [`Cache`] shared by the clones of a [`ChainView`].
type Shared<K, V> = Arc<Mutex<Cache<K, V>>>;

/// Locks `cache`; a poisoned lock still holds consistent data (every critical section is a plain map operation).
fn lock<K, V>(cache: &Shared<K, V>) -> std::sync::MutexGuard<'_, Cache<K, V>> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// The entry of `key` if it was read less than `ttl` ago.
    fn fresh(&self, key: &K, ttl: Duration) -> Option<V> {
        self.entries.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| v.clone())
    }

    /// Caches `value` read under `generation`, unless something was invalidated since.
    fn insert_read(&mut self, generation: u64, key: K, value: V) {
        if self.generation == generation {
            self.entries.insert(key, (Instant::now(), value));
        }
    }

    /// Drops the entries `drop` selects and bumps the generation (reads in flight will not be cached).
    fn invalidate(&mut self, mut drop: impl FnMut(&K, &V) -> bool) {
        self.generation = self.generation.wrapping_add(1);
        self.entries.retain(|k, (_, v)| !drop(k, v));
    }
}

/// Cached chain reads.
#[derive(Clone, Debug)]
pub struct ChainView {
    provider: DynProvider,
    book: AddressBook,
    services: Shared<u64, Arc<ServiceInfo>>,
    endpoints: Shared<Address, String>,
    ttl: Duration,
}

impl ChainView {
    /// Reads through `provider` the deployment named by `book`, caching services and endpoints for
    /// [`DEFAULT_CACHE_TTL`].
    pub fn new(provider: DynProvider, book: AddressBook) -> Self {
        Self { provider, book, services: Arc::default(), endpoints: Arc::default(), ttl: DEFAULT_CACHE_TTL }
    }

    /// Caches services and endpoints for `ttl` instead: longer is safe only when something calls the `invalidate_*`
    /// methods as the chain changes (the gateway's event watcher), the TTL then being a backstop.
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long services and endpoints are cached.
    pub fn cache_ttl(&self) -> Duration {
        self.ttl
    }

    /// Drops service `id` (its status changed: `ServiceActivated`, `ServiceTerminated`).
    pub fn invalidate_service(&self, id: ServiceId) {
        lock(&self.services).invalidate(|k, _| *k == id.0);
    }

    /// Drops the cached endpoint of `operator` (`OperatorRegistered`, `EndpointUpdated`, or a failed connection).
    pub fn invalidate_endpoint(&self, operator: Address) {
        lock(&self.endpoints).invalidate(|k, _| *k == operator);
    }

    /// Drops every service `operator` is in: their BLS keys were read with it (`KeyRegistered`).
    pub fn invalidate_key(&self, operator: Address) {
        lock(&self.services).invalidate(|_, s| s.operators.contains(&operator));
    }

    /// Drops everything cached (events were missed, or the chain reorganised below what was read).
    pub fn invalidate_all(&self) {
        lock(&self.services).invalidate(|_, _| true);
        lock(&self.endpoints).invalidate(|_, _| true);
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
        let generation = {
            let cache = lock(&self.services);
            if let Some(info) = cache.fresh(&id.0, self.ttl) {
                return Ok(Some(info));
            }
            cache.generation
        };
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
            jobs: b
                .jobs
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    let verification = verification_from_code(j.verification).ok_or_else(|| {
                        ViewError::new(
                            format!("getBlueprint({}).jobs[{i}]", s.blueprintId),
                            format!("verification {} is not an IVouchProtocol.Verification", j.verification),
                        )
                    })?;
                    Ok(JobTerms { price: j.price, deadline: j.deadline, verification })
                })
                .collect::<Result<_, ViewError>>()?,
        });
        lock(&self.services).insert_read(generation, id.0, info.clone());
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

    /// The endpoint `operator` announced (cached for the [cache TTL](Self::cache_ttl); [`Self::forget_endpoint`]
    /// after a failed connection).
    pub async fn endpoint_of(&self, operator: Address) -> Result<String, ViewError> {
        let generation = {
            let cache = lock(&self.endpoints);
            if let Some(endpoint) = cache.fresh(&operator, self.ttl) {
                return Ok(endpoint);
            }
            cache.generation
        };
        let staking = VouchStaking::new(self.book.contracts.staking, &self.provider);
        let info = staking
            .operatorInfo(operator)
            .call()
            .await
            .map_err(|e| ViewError::new(format!("operatorInfo({operator})"), e))?;
        lock(&self.endpoints).insert_read(generation, operator, info.endpoint.clone());
        Ok(info.endpoint)
    }

    /// Drops `operator`'s cached endpoint (it may have announced a new one): [`Self::invalidate_endpoint`].
    pub fn forget_endpoint(&self, operator: Address) {
        self.invalidate_endpoint(operator);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_in_flight_during_an_invalidation_is_not_cached() {
        let mut cache: Cache<u64, &str> = Cache::default();
        let before = cache.generation;
        cache.insert_read(before, 1, "active");
        assert_eq!(cache.fresh(&1, Duration::from_secs(60)), Some("active"));

        // A read starts, an event invalidates service 2, the read finishes: the old value must not come back.
        let started = cache.generation;
        cache.invalidate(|k, _| *k == 2);
        cache.insert_read(started, 2, "stale");
        assert_eq!(cache.fresh(&2, Duration::from_secs(60)), None);
        // Service 1 was not selected.
        assert_eq!(cache.fresh(&1, Duration::from_secs(60)), Some("active"));

        cache.invalidate(|_, v| *v == "active");
        assert_eq!(cache.fresh(&1, Duration::from_secs(60)), None);
        let now = cache.generation;
        cache.insert_read(now, 1, "terminated");
        assert_eq!(cache.fresh(&1, Duration::from_secs(60)), Some("terminated"));
        assert_eq!(cache.fresh(&1, Duration::ZERO), None, "older than the TTL");
    }
}
