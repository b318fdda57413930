//! [`Peers`]: sends this node's signed results of on-chain calls to the other operators of the service
//! (`POST /v1/results` on their announced endpoints), with a few retries. Endpoints are read from `VouchStaking`.

use std::time::Duration;

use alloy_primitives::Address;
use vouch_primitives::wire::SignedResult;

use crate::chain::{ChainView, ServiceInfo};

/// Attempts per peer before giving up on one share (the peer also gets the call from the chain).
const ATTEMPTS: u32 = 4;

/// The other operators, reached over HTTP.
#[derive(Debug, Clone)]
pub struct Peers {
    client: reqwest::Client,
    chain: ChainView,
    me: Address,
}

impl Peers {
    /// Peers of `me`.
    pub fn new(chain: ChainView, me: Address) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self { client, chain, me }
    }

    /// Sends `share` (without its output) to every other operator of `service`, in the background.
    pub fn broadcast(&self, service: &ServiceInfo, share: &SignedResult) {
        let mut share = share.clone();
        share.output = None;
        for operator in service.operators.iter().copied().filter(|o| *o != self.me) {
            let peers = self.clone();
            let share = share.clone();
            tokio::spawn(async move { peers.send(operator, &share).await });
        }
    }

    async fn send(&self, operator: Address, share: &SignedResult) {
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            let Ok(endpoint) = self.chain.endpoint_of(operator).await else {
                tracing::debug!(%operator, "no endpoint for peer");
                return;
            };
            let url = format!("{}/v1/results", endpoint.trim_end_matches('/'));
            match self.client.post(&url).json(share).send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) if r.status().is_client_error() => {
                    tracing::warn!(%operator, status = %r.status(), call = %share.result.call_id, "peer refused our share");
                    return;
                }
                Ok(r) => tracing::debug!(%operator, status = %r.status(), attempt, "peer answered an error"),
                Err(e) => {
                    tracing::debug!(%operator, error = %e, attempt, "peer unreachable");
                    // The endpoint may have changed (a restarted node announces a new one).
                    self.chain.forget_endpoint(operator);
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}
