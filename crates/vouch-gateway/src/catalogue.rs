//! [`Catalogue`]: the services a customer can call through this gateway — active services, their jobs with price
//! and deadline, and the stake behind them — read from the chain and cached for a few seconds.

use std::{
    sync::{Arc, Mutex},
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
use vouch_primitives::ServiceId;

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

/// A listing and when it was read.
type Cached = Arc<Mutex<Option<(Instant, Vec<ServiceListing>)>>>;

/// Cached listing of active services.
#[derive(Debug, Clone)]
pub struct Catalogue {
    chain: ChainView,
    cache: Cached,
    client: reqwest::Client,
}

impl Catalogue {
    /// A catalogue over `chain`.
    pub fn new(chain: ChainView) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
        Self { chain, cache: Arc::default(), client }
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
            let b = protocol
                .getBlueprint(s.blueprint_id)
                .call()
                .await
                .map_err(|e| ViewError { what: format!("getBlueprint({})", s.blueprint_id), reason: e.to_string() })?;
            let metadata = verified_metadata(&self.client, &b.metadataUri, b.metadataHash).await;
            let field = |j: Option<&Value>, keys: &[&str]| j.and_then(|j| keys.iter().find_map(|k| j.get(*k).cloned()));
            list.push(ServiceListing {
                service_id: id,
                blueprint_id: s.blueprint_id,
                blueprint: metadata.as_ref().and_then(|m| m.get("name")).and_then(Value::as_str).map(str::to_owned),
                metadata: MetadataStatus { uri: b.metadataUri.clone(), verified: metadata.is_some() },
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
