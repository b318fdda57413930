//! [`Catalogue`]: the services a customer can call through this gateway — active services, their jobs with price,
//! deadline and verification mode, and the stake behind them — read from the chain and cached.
//!
//! Each job's [`Verification`] mode is the one its blueprint registered on chain with the job
//! (`IVouchProtocol.Job.verification`, in [`ServiceInfo`]; docs/design/verification-on-chain.md): the paid-call path
//! asks [`Catalogue::verification`], which needs no metadata. Names and schemas come from the blueprint's verified
//! metadata (it must hash to the on-chain `metadataHash`); a blueprint read more than one TTL ago is read again in the
//! background while the cached one is still used.
//!
//! The TTL is [`DEFAULT_TTL`] (5 s) unless [`Catalogue::with_ttl`] sets another. The gateway sets a long one (a
//! backstop) because its event watcher (`crate::events`) drops what the chain changed as it happens:
//! [`Catalogue::invalidate_service`] (the listing), [`Catalogue::invalidate_blueprint`] (a blueprint's metadata,
//! read again before its next use, and the listing), [`Catalogue::invalidate_all`]. A read that was in flight during
//! an invalidation is not cached as fresh.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy_primitives::{B256, keccak256};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use vouch_contracts::{
    VouchProtocol,
    view::{ChainView, SERVICE_ACTIVE, ServiceInfo, ViewError},
};
use vouch_primitives::{ServiceId, wire::Verification};

/// How long a listing or a blueprint's metadata is served from memory, unless [`Catalogue::with_ttl`] says
/// otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Largest blueprint metadata document read, bytes.
const MAX_METADATA: usize = 256 << 10;

/// One job as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobListing {
    /// Index in the blueprint.
    pub index: u8,
    /// Its name, from the blueprint's verified metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its input schema (or description), from the verified metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Its output schema (or description), from the verified metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// How its operators come to sign one result: `"exact"`, `"tolerant"` or `"checked"` (from the verified
    /// metadata; `"exact"` without it).
    pub verification: Verification,
    /// Price per call, payment-token base units (decimal string).
    pub price: String,
    /// Seconds from opening to the latest settlement.
    pub deadline: u32,
    /// Where to call it.
    pub path: String,
}

/// One service as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceListing {
    /// The service.
    pub service_id: u64,
    /// Its blueprint.
    pub blueprint_id: u64,
    /// The blueprint's name, from its verified metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
    /// Where the blueprint's metadata is published, and whether its content matched the on-chain hash.
    pub metadata: MetadataStatus,
    /// Operators in slot order.
    pub operators: Vec<String>,
    /// Their snapshot stakes (stake-token base units, decimal strings).
    pub stakes: Vec<String>,
    /// Total snapshot stake.
    pub total_stake: String,
    /// Quorum in basis points of stake.
    pub quorum_bps: u16,
    /// Minimum signers.
    pub min_signers: u16,
    /// Its jobs.
    pub jobs: Vec<JobListing>,
}

/// The blueprint metadata as the gateway found it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataStatus {
    /// `metadataUri` on chain.
    pub uri: String,
    /// Whether the document was fetched and hashes (sha256 or keccak256) to `metadataHash`.
    pub verified: bool,
}

/// Fetches a blueprint's metadata (`file://` or `http(s)://`, at most [`MAX_METADATA`] bytes) and returns it if it
/// hashes to `hash`; anything else is `None` (listed as unverified).
async fn verified_metadata(client: &reqwest::Client, uri: &str, hash: B256) -> Option<Value> {
    let bytes: Vec<u8> = if let Some(path) = uri.strip_prefix("file://") {
        let meta = tokio::fs::metadata(path).await.ok()?;
        if meta.len() > MAX_METADATA as u64 {
            return None;
        }
        tokio::fs::read(path).await.ok()?
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        let r = client.get(uri).send().await.ok()?;
        let body = r.bytes().await.ok()?;
        if body.len() > MAX_METADATA {
            return None;
        }
        body.to_vec()
    } else {
        return None;
    };
    let sha: [u8; 32] = Sha256::digest(&bytes).into();
    if B256::from(sha) != hash && keccak256(&bytes) != hash {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// The metadata entry of job `index` (the `jobs` array, by `index` or position).
fn job_meta(metadata: Option<&Value>, index: usize) -> Option<&Value> {
    let jobs = metadata?.get("jobs")?.as_array()?;
    jobs.iter().find(|j| j.get("index").and_then(Value::as_u64) == Some(index as u64)).or_else(|| jobs.get(index))
}

/// A blueprint's metadata as last read.
#[derive(Debug, Clone)]
pub struct BlueprintMetadata {
    /// `metadataUri` on chain.
    pub uri: String,
    /// `metadataHash` on chain.
    pub hash: B256,
    /// The document, if it was fetched and hashes to the on-chain `metadataHash`.
    pub metadata: Option<Value>,
    read_at: Instant,
}

impl BlueprintMetadata {
    fn new(uri: String, hash: B256, metadata: Option<Value>) -> Self {
        Self { uri, hash, metadata, read_at: Instant::now() }
    }
}

/// The listing as last read, and a generation that every invalidation bumps.
#[derive(Debug, Default)]
struct Listing {
    read: Option<(Instant, Vec<ServiceListing>)>,
    generation: u64,
}

/// Blueprint metadata by blueprint id, the blueprints being read again, those invalidated (kept only as the
/// fallback of their next read), and a generation that every invalidation bumps.
#[derive(Debug, Default)]
struct Blueprints {
    read: HashMap<u64, Arc<BlueprintMetadata>>,
    refreshing: HashSet<u64>,
    stale: HashSet<u64>,
    generation: u64,
}

/// Locks `m`; a poisoned lock still holds consistent data (every critical section is a plain map operation).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Cached listing of active services.
#[derive(Debug, Clone)]
pub struct Catalogue {
    chain: ChainView,
    cache: Arc<Mutex<Listing>>,
    blueprints: Arc<Mutex<Blueprints>>,
    client: reqwest::Client,
    ttl: Duration,
}

impl Catalogue {
    /// A catalogue over `chain`, caching for [`DEFAULT_TTL`].
    pub fn new(chain: ChainView) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
        Self { chain, cache: Arc::default(), blueprints: Arc::default(), client, ttl: DEFAULT_TTL }
    }

    /// Caches for `ttl` instead: longer is safe only when something calls the `invalidate_*` methods as the chain
    /// changes (the gateway's event watcher), the TTL then being a backstop.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Drops the listing: service `id` was activated or terminated. (Its [`ServiceInfo`] is the [`ChainView`]'s to
    /// drop.)
    ///
    /// [`ServiceInfo`]: vouch_contracts::view::ServiceInfo
    pub fn invalidate_service(&self, id: ServiceId) {
        tracing::trace!(service = %id, "listing invalidated");
        self.invalidate_listing();
    }

    /// Blueprint `id`'s metadata changed (`BlueprintMetadataUpdated`): it is read again before its next use, and the
    /// listing is dropped.
    pub fn invalidate_blueprint(&self, id: u64) {
        {
            let mut blueprints = lock(&self.blueprints);
            blueprints.generation = blueprints.generation.wrapping_add(1);
            if blueprints.read.contains_key(&id) {
                blueprints.stale.insert(id);
            }
        }
        self.invalidate_listing();
    }

    /// Drops everything: every blueprint is read again before its next use, and the listing is dropped.
    pub fn invalidate_all(&self) {
        {
            let mut blueprints = lock(&self.blueprints);
            blueprints.generation = blueprints.generation.wrapping_add(1);
            let ids: Vec<u64> = blueprints.read.keys().copied().collect();
            blueprints.stale.extend(ids);
        }
        self.invalidate_listing();
    }

    fn invalidate_listing(&self) {
        let mut listing = lock(&self.cache);
        listing.generation = listing.generation.wrapping_add(1);
        listing.read = None;
    }

    /// The verification mode of job `job_index` of `service`: the one registered on chain with the job
    /// ([`Verification::Exact`] for an index the service does not have, which the paid-call path refuses first).
    pub fn verification(service: &ServiceInfo, job_index: u8) -> Verification {
        service.jobs.get(usize::from(job_index)).map(|j| j.verification).unwrap_or_default()
    }

    /// Blueprint `id`'s metadata: from memory if read within the TTL; if read earlier, from memory too while one
    /// background task reads it again; read now if never read or invalidated since.
    pub async fn blueprint(&self, id: u64) -> Result<Arc<BlueprintMetadata>, ViewError> {
        let cached = {
            let mut blueprints = lock(&self.blueprints);
            let stale = blueprints.stale.contains(&id);
            match blueprints.read.get(&id).cloned() {
                Some(_) if stale => None,
                Some(b) if b.read_at.elapsed() < self.ttl => return Ok(b),
                Some(b) => {
                    if blueprints.refreshing.insert(id) {
                        let this = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = this.read_blueprint(id).await {
                                tracing::debug!(blueprint = id, error = %e, "cannot read the blueprint again");
                            }
                            lock(&this.blueprints).refreshing.remove(&id);
                        });
                    }
                    Some(b)
                }
                None => None,
            }
        };
        match cached {
            Some(b) => Ok(b),
            None => self.read_blueprint(id).await,
        }
    }

    /// Reads blueprint `id` and its metadata from the chain and caches them (as stale if something was invalidated
    /// during the read: the next use reads again).
    async fn read_blueprint(&self, id: u64) -> Result<Arc<BlueprintMetadata>, ViewError> {
        let generation = lock(&self.blueprints).generation;
        let protocol = VouchProtocol::new(self.chain.book().contracts.protocol, self.chain.provider());
        let b = protocol
            .getBlueprint(id)
            .call()
            .await
            .map_err(|e| ViewError { what: format!("getBlueprint({id})"), reason: e.to_string() })?;
        let mut metadata = verified_metadata(&self.client, &b.metadataUri, b.metadataHash).await;
        if metadata.is_none() {
            // The document could not be fetched this time: one read before under the same hash is the same document.
            let before = lock(&self.blueprints).read.get(&id).cloned();
            metadata =
                before.filter(|m| m.uri == b.metadataUri && m.hash == b.metadataHash).and_then(|m| m.metadata.clone());
        }
        let read = Arc::new(BlueprintMetadata::new(b.metadataUri, b.metadataHash, metadata));
        let mut blueprints = lock(&self.blueprints);
        blueprints.read.insert(id, read.clone());
        if blueprints.generation == generation {
            blueprints.stale.remove(&id);
        } else {
            blueprints.stale.insert(id);
        }
        Ok(read)
    }

    /// Every active service.
    pub async fn list(&self) -> Result<Vec<ServiceListing>, ViewError> {
        let generation = {
            let listing = lock(&self.cache);
            if let Some((at, list)) = listing.read.as_ref()
                && at.elapsed() < self.ttl
            {
                return Ok(list.clone());
            }
            listing.generation
        };
        let protocol = VouchProtocol::new(self.chain.book().contracts.protocol, self.chain.provider());
        let count = protocol
            .serviceCount()
            .call()
            .await
            .map_err(|e| ViewError { what: "serviceCount".into(), reason: e.to_string() })?;
        let mut list = Vec::new();
        for id in 1..=count {
            let Some(s) = self.chain.service(ServiceId(id)).await? else { continue };
            if s.status != SERVICE_ACTIVE {
                continue;
            }
            let b = self.blueprint(s.blueprint_id).await?;
            let metadata = &b.metadata;
            let field = |j: Option<&Value>, keys: &[&str]| j.and_then(|j| keys.iter().find_map(|k| j.get(*k).cloned()));
            list.push(ServiceListing {
                service_id: id,
                blueprint_id: s.blueprint_id,
                blueprint: metadata.as_ref().and_then(|m| m.get("name")).and_then(Value::as_str).map(str::to_owned),
                metadata: MetadataStatus { uri: b.uri.clone(), verified: metadata.is_some() },
                operators: s.operators.iter().map(ToString::to_string).collect(),
                stakes: s.stakes.iter().map(ToString::to_string).collect(),
                total_stake: s.total_stake.to_string(),
                quorum_bps: s.quorum_bps,
                min_signers: s.min_signers,
                jobs: s
                    .jobs
                    .iter()
                    .enumerate()
                    .map(|(i, j)| JobListing {
                        index: u8::try_from(i).unwrap_or(u8::MAX),
                        name: job_meta(metadata.as_ref(), i)
                            .and_then(|m| m.get("name"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        input_schema: field(job_meta(metadata.as_ref(), i), &["inputSchema", "inputs"]),
                        output_schema: field(job_meta(metadata.as_ref(), i), &["outputSchema", "output"]),
                        verification: j.verification,
                        price: j.price.to_string(),
                        deadline: j.deadline,
                        path: format!("/v1/services/{id}/jobs/{i}"),
                    })
                    .collect(),
            });
        }
        let mut listing = lock(&self.cache);
        if listing.generation == generation {
            listing.read = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use alloy::providers::{Provider as _, ProviderBuilder};
    use alloy_primitives::Address;
    use serde_json::json;
    use vouch_contracts::{AddressBook, ContractAddresses};

    use super::*;

    /// A catalogue over a chain that never answers (port 1).
    fn offline() -> Result<Catalogue, Box<dyn std::error::Error>> {
        let provider = ProviderBuilder::new().connect_http("http://127.0.0.1:1".parse()?).erased();
        let a = Address::repeat_byte(1);
        let contracts = ContractAddresses {
            vouch_usd: a,
            stake_token: a,
            key_registry: a,
            staking: a,
            protocol_admin: a,
            protocol: a,
            slasher: a,
        };
        let book = AddressBook { version: 1, chain_id: 31337, deployed_at_block: 0, contracts, treasury: a };
        Ok(Catalogue::new(ChainView::new(provider, book)).with_ttl(Duration::from_secs(60)))
    }

    #[tokio::test]
    async fn an_invalidated_blueprint_is_read_again_before_its_next_use() -> Result<(), Box<dyn std::error::Error>> {
        let catalogue = offline()?;
        let metadata = json!({"jobs": [{"index": 0, "verification": "tolerant"}]});
        let read = Arc::new(BlueprintMetadata::new("file:///x".into(), B256::ZERO, Some(metadata)));
        lock(&catalogue.blueprints).read.insert(1, read);
        lock(&catalogue.blueprints)
            .read
            .insert(2, Arc::new(BlueprintMetadata::new("file:///y".into(), B256::ZERO, None)));
        assert!(catalogue.blueprint(1).await?.metadata.is_some(), "served from memory");

        catalogue.invalidate_blueprint(1);
        // Read again now: the chain does not answer, so it fails rather than serve the old modes.
        assert!(catalogue.blueprint(1).await.is_err());
        assert!(catalogue.blueprint(2).await.is_ok(), "another blueprint is still served from memory");
        // The old document is kept as the fallback of the next read.
        assert!(lock(&catalogue.blueprints).read.contains_key(&1));

        catalogue.invalidate_all();
        assert!(catalogue.blueprint(2).await.is_err());
        Ok(())
    }
}
