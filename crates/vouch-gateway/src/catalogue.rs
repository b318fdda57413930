//! [`Catalogue`]: the services a customer can call through this gateway — active services, their jobs with price
//! and deadline, and the stake behind them — read from the chain and cached for a few seconds.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;
use vouch_contracts::{
    VouchProtocol,
    view::{ChainView, SERVICE_ACTIVE, ViewError},
};
use vouch_primitives::ServiceId;

/// How long a listing is served from memory.
const TTL: Duration = Duration::from_secs(5);

/// One job as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobListing {
    /// Index in the blueprint.
    pub index: u8,
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

/// A listing and when it was read.
type Cached = Arc<Mutex<Option<(Instant, Vec<ServiceListing>)>>>;

/// Cached listing of active services.
#[derive(Debug, Clone)]
pub struct Catalogue {
    chain: ChainView,
    cache: Cached,
}

impl Catalogue {
    /// A catalogue over `chain`.
    pub fn new(chain: ChainView) -> Self {
        Self { chain, cache: Arc::default() }
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
            list.push(ServiceListing {
                service_id: id,
                blueprint_id: s.blueprint_id,
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
