//! Prometheus metrics (`/metrics`) and health (`/health`), served on their own listener — loopback by default.
//!
//! Health follows lighthouse: `200` when the node is synced and can sign, `206` while the chain watcher is behind,
//! `503` when it cannot sign (guard unavailable) or has not reached the chain recently.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// Label set: one `outcome` label.
pub type Outcome = Vec<(&'static str, &'static str)>;

/// Every metric the node exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Jobs run, by `source` (`http`, `chain`) and `outcome` (`signed`, `job_error`, `refused`).
    pub jobs: Family<Outcome, Counter>,
    /// `POST /v1/commitments` answers, by `outcome` (`signed`, `job_error`, `refused`).
    pub commitments: Family<Outcome, Counter>,
    /// `POST /v1/endorsements` answers, by `outcome` (`signed`, `disagree`, `job_error`, `refused`).
    pub endorsements: Family<Outcome, Counter>,
    /// Result signatures returned (fresh or from the guard's record).
    pub signatures: Counter,
    /// Sign attempts the guard refused (a different result for a call already signed).
    pub guard_refusals: Counter,
    /// Shares received from peers, by `outcome` (`accepted`, `duplicate`, `invalid`, `equivocation`).
    pub shares: Family<Outcome, Counter>,
    /// Certificate submissions, by `outcome` (`settled`, `already_settled`, `failed`, `vanished`).
    pub certificates: Family<Outcome, Counter>,
    /// On-chain calls discovered by the watcher.
    pub chain_calls: Counter,
    /// Calls reported vanished by a reorg.
    pub vanished_calls: Counter,
    /// Last block the watcher processed.
    pub checkpoint: Gauge,
    /// HTTP API requests, by `status` class.
    pub http_requests: Family<Outcome, Counter>,
    health: Arc<HealthState>,
}

/// What `/health` reports.
#[derive(Debug, Default)]
pub struct HealthState {
    guard_ok: AtomicBool,
    last_chain_contact: AtomicU64,
    behind: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `vouch_node` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vouch_node");
        let jobs = Family::<Outcome, Counter>::default();
        registry.register("jobs", "Jobs run, by source and outcome", jobs.clone());
        let commitments = Family::<Outcome, Counter>::default();
        registry.register(
            "commitments",
            "Output commitments (tolerant jobs) answered, by outcome",
            commitments.clone(),
        );
        let endorsements = Family::<Outcome, Counter>::default();
        registry.register(
            "endorsements",
            "Endorsements of a proposed output answered, by outcome (disagree: this node did not agree)",
            endorsements.clone(),
        );
        let signatures = Counter::default();
        registry.register("signatures", "Result signatures returned", signatures.clone());
        let guard_refusals = Counter::default();
        registry.register("guard_refusals", "Sign attempts refused by the signing guard", guard_refusals.clone());
        let shares = Family::<Outcome, Counter>::default();
        registry.register("shares", "Signed results received from peers, by outcome", shares.clone());
        let certificates = Family::<Outcome, Counter>::default();
        registry.register("certificates", "Certificate submissions, by outcome", certificates.clone());
        let chain_calls = Counter::default();
        registry.register("chain_calls", "On-chain calls discovered", chain_calls.clone());
        let vanished_calls = Counter::default();
        registry.register("vanished_calls", "Calls removed by a chain reorganisation", vanished_calls.clone());
        let checkpoint = Gauge::default();
        registry.register("checkpoint_block", "Last block processed by the chain watcher", checkpoint.clone());
        let http_requests = Family::<Outcome, Counter>::default();
        registry.register("http_requests", "HTTP API requests, by status class", http_requests.clone());
        Self {
            registry: Arc::new(registry),
            jobs,
            commitments,
            endorsements,
            signatures,
            guard_refusals,
            shares,
            certificates,
            chain_calls,
            vanished_calls,
            checkpoint,
            http_requests,
            health: Arc::default(),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Marks the signing guard usable or not.
    pub fn set_guard_ok(&self, ok: bool) {
        self.health.guard_ok.store(ok, Ordering::Relaxed);
    }

    /// Records a successful chain read by the watcher, and whether it is still catching up.
    pub fn chain_contact(&self, behind: bool) {
        self.health.last_chain_contact.store(unix_now(), Ordering::Relaxed);
        self.health.behind.store(behind, Ordering::Relaxed);
    }

    /// The health status code and a one-line reason.
    pub fn health(&self) -> (StatusCode, &'static str) {
        if !self.health.guard_ok.load(Ordering::Relaxed) {
            return (StatusCode::SERVICE_UNAVAILABLE, "signing guard unavailable");
        }
        let last = self.health.last_chain_contact.load(Ordering::Relaxed);
        if last == 0 || unix_now().saturating_sub(last) > 60 {
            return (StatusCode::SERVICE_UNAVAILABLE, "no chain contact in the last 60 s");
        }
        if self.health.behind.load(Ordering::Relaxed) {
            return (StatusCode::PARTIAL_CONTENT, "catching up with the chain");
        }
        (StatusCode::OK, "ok")
    }

    /// The `/metrics` + `/health` router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/health", get(health_handler))
            .with_state(self.clone())
    }
}

async fn metrics_handler(State(m): State<Metrics>) -> impl IntoResponse {
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
}

async fn health_handler(State(m): State<Metrics>) -> impl IntoResponse {
    let (status, reason) = m.health();
    (status, format!("{reason}\n"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `[("outcome", v)]`.
pub fn outcome(v: &'static str) -> Outcome {
    vec![("outcome", v)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_health_fails_closed() {
        let m = Metrics::new();
        m.jobs.get_or_create(&vec![("source", "http"), ("outcome", "signed")]).inc();
        let text = m.render();
        assert!(text.contains("vouch_node_jobs_total{source=\"http\",outcome=\"signed\"} 1"), "{text}");
        assert_eq!(m.health().0, StatusCode::SERVICE_UNAVAILABLE);
        m.set_guard_ok(true);
        m.chain_contact(true);
        assert_eq!(m.health().0, StatusCode::PARTIAL_CONTENT);
        m.chain_contact(false);
        assert_eq!(m.health().0, StatusCode::OK);
    }
}
