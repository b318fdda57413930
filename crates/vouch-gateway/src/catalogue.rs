//! [`Catalogue`]: the services a customer can call through this gateway — active services, their jobs with price,
//! deadline and verification mode, and the stake behind them — read from the chain and cached for a few seconds.
//!
//! Each job's [`Verification`] mode comes from the blueprint's verified metadata (`jobs[i].verification`:
//! `"exact"`, `"tolerant"` or `"checked"`); metadata that is absent, unverified (it does not hash to the on-chain
//! `metadataHash`) or silent about a job means [`Verification::Exact`]. The paid-call path asks
//! [`Catalogue::verification`] on every call: it is served from memory, and a blueprint read more than
//! a few seconds ago is read again in the background while the cached one is still used.

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
    view::{ChainView, SERVICE_ACTIVE, ViewError},
};
use vouch_primitives::{ServiceId, wire::Verification};

/// How long a listing is served from memory.
const TTL: Duration = Duration::from_secs(5);

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

/// The verification mode of job `index` declared in `metadata` (`jobs[i].verification`); [`Verification::Exact`]
/// when there is no verified metadata, no entry for the job, no `verification`, or a value this gateway does not know.
pub fn verification_of(metadata: Option<&Value>, index: usize) -> Verification {
    match job_meta(metadata, index).and_then(|j| j.get("verification")).and_then(Value::as_str) {
        Some("tolerant") => Verification::Tolerant,
        Some("checked") => Verification::Checked,
        _ => Verification::Exact,
    }
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
    /// The mode of each job index (0–255) the document names, computed once.
    modes: Vec<Verification>,
    read_at: Instant,
}

impl BlueprintMetadata {
    fn new(uri: String, hash: B256, metadata: Option<Value>) -> Self {
        let modes = match &metadata {
            Some(m) => (0..=usize::from(u8::MAX)).map(|i| verification_of(Some(m), i)).collect(),
            None => Vec::new(),
        };
        Self { uri, hash, metadata, modes, read_at: Instant::now() }
    }

    /// The verification mode of job `index` ([`verification_of`]).
    pub fn verification(&self, index: usize) -> Verification {
        self.modes.get(index).copied().unwrap_or_default()
    }
}

/// A listing and when it was read.
type Cached = Arc<Mutex<Option<(Instant, Vec<ServiceListing>)>>>;

/// Blueprint metadata by blueprint id, and the blueprints being read again.
#[derive(Debug, Default)]
struct Blueprints {
    read: HashMap<u64, Arc<BlueprintMetadata>>,
    refreshing: HashSet<u64>,
}

/// Cached listing of active services.
#[derive(Debug, Clone)]
pub struct Catalogue {
    chain: ChainView,
    cache: Cached,
    blueprints: Arc<Mutex<Blueprints>>,
    client: reqwest::Client,
}

impl Catalogue {
    /// A catalogue over `chain`.
    pub fn new(chain: ChainView) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
        Self { chain, cache: Arc::default(), blueprints: Arc::default(), client }
    }

    /// The verification mode of job `job_index` of `service` (see the module docs). Served from memory once the
    /// blueprint was read; fails only when the blueprint was never read and the chain cannot be.
    pub async fn verification(
        &self,
        service: &vouch_contracts::view::ServiceInfo,
        job_index: u8,
    ) -> Result<Verification, ViewError> {
        Ok(self.blueprint(service.blueprint_id).await?.verification(usize::from(job_index)))
    }

    /// Blueprint `id`'s metadata: from memory if read within the last few seconds; if read earlier, from memory
    /// too while one background task reads it again; read now if never read.
    pub async fn blueprint(&self, id: u64) -> Result<Arc<BlueprintMetadata>, ViewError> {
        let cached = {
            let mut blueprints = self.blueprints.lock().unwrap_or_else(PoisonError::into_inner);
            match blueprints.read.get(&id).cloned() {
                Some(b) if b.read_at.elapsed() < TTL => return Ok(b),
                Some(b) => {
                    if blueprints.refreshing.insert(id) {
                        let this = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = this.read_blueprint(id).await {
                                tracing::debug!(blueprint = id, error = %e, "cannot read the blueprint again");
                            }
                            this.blueprints.lock().unwrap_or_else(PoisonError::into_inner).refreshing.remove(&id);
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

    /// Reads blueprint `id` and its metadata from the chain and caches them.
    async fn read_blueprint(&self, id: u64) -> Result<Arc<BlueprintMetadata>, ViewError> {
        let protocol = VouchProtocol::new(self.chain.book().contracts.protocol, self.chain.provider());
        let b = protocol
            .getBlueprint(id)
            .call()
            .await
            .map_err(|e| ViewError { what: format!("getBlueprint({id})"), reason: e.to_string() })?;
        let mut metadata = verified_metadata(&self.client, &b.metadataUri, b.metadataHash).await;
        if metadata.is_none() {
            // The document could not be fetched this time: one read before under the same hash is the same document.
            let before = self.blueprints.lock().unwrap_or_else(PoisonError::into_inner).read.get(&id).cloned();
            metadata =
                before.filter(|m| m.uri == b.metadataUri && m.hash == b.metadataHash).and_then(|m| m.metadata.clone());
        }
        let read = Arc::new(BlueprintMetadata::new(b.metadataUri, b.metadataHash, metadata));
        self.blueprints.lock().unwrap_or_else(PoisonError::into_inner).read.insert(id, read.clone());
        Ok(read)
    }

    /// Every active service.
    pub async fn list(&self) -> Result<Vec<ServiceListing>, ViewError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, list)) = cache.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(list.clone());
        }
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
                        verification: verification_of(metadata.as_ref(), i),
                        price: j.price.to_string(),
                        deadline: j.deadline,
                        path: format!("/v1/services/{id}/jobs/{i}"),
                    })
                    .collect(),
            });
        }
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((Instant::now(), list.clone()));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn job_modes_come_from_the_metadata_and_default_to_exact() {
        let metadata = json!({"jobs": [
            {"index": 0, "name": "echo"},
            {"index": 1, "verification": "tolerant"},
            {"index": 2, "verification": "checked"},
            {"index": 3, "verification": "exact"},
            {"index": 4, "verification": "something-new"},
            {"index": 5, "verification": 7},
        ]});
        let modes: Vec<Verification> = (0..7).map(|i| verification_of(Some(&metadata), i)).collect();
        use Verification::{Checked, Exact, Tolerant};
        assert_eq!(modes, [Exact, Tolerant, Checked, Exact, Exact, Exact, Exact]);
        assert_eq!(verification_of(None, 1), Exact, "no verified metadata");
        // By `index` first, else by position.
        let unordered = json!({"jobs": [{"index": 1, "verification": "checked"}, {"verification": "tolerant"}]});
        assert_eq!(verification_of(Some(&unordered), 1), Checked);
        let positional = json!({"jobs": [{"verification": "tolerant"}]});
        assert_eq!(verification_of(Some(&positional), 0), Tolerant);
        let read = BlueprintMetadata::new("file:///x".into(), B256::ZERO, Some(metadata));
        assert_eq!((read.verification(1), read.verification(2), read.verification(300)), (Tolerant, Checked, Exact));
        assert_eq!(BlueprintMetadata::new("file:///x".into(), B256::ZERO, None).verification(1), Exact);
    }
}
