//! [`Node`]: starts every part of an operator node on one tokio runtime and stops them together.
//!
//! Start-up order: address book checked against the chain → this operator's BLS key checked against the one
//! registered on chain → signing guard opened (fails closed) → state store → listeners bound → endpoint announced
//! → tasks: API, metrics, chain watcher, on-chain job runner, submitter. Every task is named; SIGINT/SIGTERM (or
//! [`RunningNode::shutdown`]) stops them after the requests in progress.

use std::{
    collections::HashMap,
    net::SocketAddr,
    os::unix::fs::DirBuilderExt as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
};
use alloy_primitives::Address;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use vouch_contracts::{AddressBook, VouchStaking};
use vouch_primitives::ServiceId;
use vouch_sdk::{Blueprint, Router};

use crate::{
    NodeConfig, NodeError,
    api::{self, ApiState},
    chain::ChainView,
    chain_jobs::{ChainJobs, RESCAN},
    engine::Engine,
    guard::{OpenMode, SigningGuard},
    keys::NodeKeys,
    metrics::Metrics,
    peers::Peers,
    quorum::QuorumTracker,
    submitter::Submitter,
    watcher::{StateStore, Watcher, WatcherConfig},
};

/// Builds a node: its configuration, keys and the blueprints it runs.
pub struct Node {
    config: NodeConfig,
    keys: NodeKeys,
    routers: HashMap<u64, Router>,
    hooks: Vec<(u64, Arc<dyn Blueprint>)>,
    init_guard: bool,
    book: Option<AddressBook>,
}

/// A node that is running.
#[derive(Debug)]
pub struct RunningNode {
    operator: Address,
    api_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    announced: String,
    metrics: Metrics,
    guard: SigningGuard,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .field("blueprints", &self.routers.keys().collect::<Vec<_>>())
            .field("init_guard", &self.init_guard)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node with `config`, signing with `keys`.
    pub fn new(config: NodeConfig, keys: NodeKeys) -> Self {
        Self { config, keys, routers: HashMap::new(), hooks: Vec::new(), init_guard: false, book: None }
    }

    /// Runs `router` for every service of blueprint `blueprint_id` that names this operator.
    pub fn blueprint(mut self, blueprint_id: u64, router: Router) -> Self {
        self.routers.insert(blueprint_id, router);
        self
    }

    /// Runs a whole [`Blueprint`] for blueprint `blueprint_id`: its router, its background services (supervised:
    /// logged when they end) and its `on_service_activated` hook, called at start for every active service of the
    /// blueprint that names this operator.
    pub fn serve(mut self, blueprint_id: u64, blueprint: impl Blueprint) -> Self {
        self.routers.insert(blueprint_id, blueprint.router());
        self.hooks.push((blueprint_id, Arc::new(blueprint)));
        self
    }

    /// Creates the signing database if it is missing (only for an operator that has never signed on this chain, or
    /// before importing its records). Without it a missing database stops the node.
    pub fn init_guard(mut self, init: bool) -> Self {
        self.init_guard = init;
        self
    }

    /// Uses this address book instead of reading `chain.address_book`.
    pub fn address_book(mut self, book: AddressBook) -> Self {
        self.book = Some(book);
        self
    }

    /// Starts every task; returns once the listeners are bound and the node is serving.
    pub async fn start(self) -> Result<RunningNode, NodeError> {
        let Self { config, keys, routers, hooks, init_guard, book } = self;
        let operator = keys.tx.address();
        let book = match book {
            Some(b) => b,
            None => AddressBook::load(&config.chain.address_book)?,
        };
        let url = config
            .chain
            .rpc_url
            .parse()
            .map_err(|e| NodeError::Config { path: "chain.rpc_url".into(), reason: format!("{e}") })?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        book.check(&provider).await?;
        let chain = ChainView::new(provider.clone(), book.clone());
        let public = keys.bls.public_key();
        let registered = chain.key_of(operator).await?;
        if registered.as_ref() != Some(&public) {
            return Err(NodeError::KeyMismatch {
                operator,
                local: alloy_primitives::hex::encode_prefixed(public.to_compressed()),
                registered: registered
                    .map(|k| alloy_primitives::hex::encode_prefixed(k.to_compressed()))
                    .unwrap_or_else(|| "none".into()),
            });
        }
        // Private to the operator: the signing records and chain state live here.
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&config.data_dir).map_err(|e| {
            NodeError::Config {
                path: config.data_dir.clone(),
                reason: format!("cannot create the data directory: {e}"),
            }
        })?;
        let mode = if init_guard { OpenMode::Initialise } else { OpenMode::Existing };
        let guard = SigningGuard::open(&config.guard_path(), mode, chain.binding(), &public)?;
        let store = StateStore::open(&config.state_path())?;
        let metrics = Metrics::new();
        metrics.set_guard_ok(true);

        let api_listener = TcpListener::bind(config.api.listen)
            .await
            .map_err(|e| NodeError::Listen { addr: config.api.listen.to_string(), reason: e.to_string() })?;
        let api_addr = api_listener
            .local_addr()
            .map_err(|e| NodeError::Listen { addr: config.api.listen.to_string(), reason: e.to_string() })?;
        let metrics_listener =
            if config.metrics.enabled {
                Some(TcpListener::bind(config.metrics.listen).await.map_err(|e| NodeError::Listen {
                    addr: config.metrics.listen.to_string(),
                    reason: e.to_string(),
                })?)
            } else {
                None
            };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());

        let wallet = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(keys.tx.clone()))
            .connect_provider(provider.clone())
            .erased();
        let announced = announce(&chain, &wallet, operator, config.api.announce.as_deref(), api_addr).await?;

        let engine = Arc::new(
            Engine::new(
                operator,
                Arc::new(keys.bls),
                guard.clone(),
                chain.clone(),
                routers,
                config.jobs.max_concurrent,
                Duration::from_secs(config.jobs.timeout_secs.max(1)),
                metrics.clone(),
            )
            .with_max_output_bytes(config.api.max_body_bytes),
        );
        let tracker = Arc::new(QuorumTracker::default());
        let peers = Peers::new(chain.clone(), operator);
        let certificates = Arc::new(Mutex::new(HashMap::new()));
        let (shutdown, rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();

        let state = Arc::new(ApiState {
            engine: engine.clone(),
            tracker: tracker.clone(),
            certificates: certificates.clone(),
            peers: peers.clone(),
            token: tokio::sync::OnceCell::new(),
        });
        let app = api::router(state, config.api.max_body_bytes);
        let stop = stopped(rx.clone());
        tasks.push((
            "api",
            tokio::spawn(async move {
                if let Err(e) = axum::serve(api_listener, app).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "the API server stopped");
                }
            }),
        ));
        if let Some(listener) = metrics_listener {
            let app = metrics.router();
            let stop = stopped(rx.clone());
            tasks.push((
                "metrics",
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                        tracing::error!(error = %e, "the metrics server stopped");
                    }
                }),
            ));
        }

        let jobs = Arc::new(ChainJobs::new(engine.clone(), store.clone(), tracker.clone(), peers));
        jobs.run_pending();
        let watcher = Watcher::new(
            provider.clone(),
            store.clone(),
            WatcherConfig {
                protocol: book.contracts.protocol,
                confirmations: config.watcher.confirmations,
                poll_interval: config.watcher.poll_interval(),
                max_block_range: config.watcher.max_block_range.max(1),
                start_block: config.watcher.start_block.unwrap_or(book.deployed_at_block),
            },
        );
        let stop = stopped(rx.clone());
        let interval = config.watcher.poll_interval();
        let confirmations = config.watcher.confirmations;
        let head = provider.clone();
        tasks.push((
            "watcher",
            tokio::spawn(watch_chain(watcher, head, confirmations, jobs, metrics.clone(), interval, stop)),
        ));

        let submitter =
            Arc::new(Submitter::new(engine.clone(), tracker, wallet, store, config.submitter.clone(), certificates));
        let stop = stopped(rx.clone());
        tasks.push(("submitter", tokio::spawn(submitter.run(stop))));

        for (blueprint_id, blueprint) in hooks {
            for background in blueprint.background_services() {
                let name = background.name;
                let task = background.task;
                let blueprint_name = blueprint.name().to_owned();
                tasks.push((
                    "blueprint background service",
                    tokio::spawn(async move {
                        match task.await {
                            Ok(()) => tracing::info!(blueprint = %blueprint_name, service = %name, "background service ended"),
                            Err(e) => tracing::error!(blueprint = %blueprint_name, service = %name, error = %e, "background service failed"),
                        }
                    }),
                ));
            }
            let stop = stopped(rx.clone());
            tasks.push((
                "service activations",
                tokio::spawn(announce_services(chain.clone(), blueprint_id, blueprint, operator, stop)),
            ));
        }

        tracing::info!(%operator, api = %api_addr, endpoint = %announced, blueprints = ?engine.blueprints(), "node started");
        Ok(RunningNode { operator, api_addr, metrics_addr, announced, metrics, guard, shutdown, tasks })
    }
}

/// Polls the chain, runs what it finds, rescans pending calls; never stops on an RPC error.
async fn watch_chain(
    watcher: Watcher<DynProvider>,
    head: DynProvider,
    confirmations: u64,
    jobs: Arc<ChainJobs>,
    metrics: Metrics,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = interval;
    let mut last_rescan = tokio::time::Instant::now();
    loop {
        let delay = match watcher.poll_once().await {
            Ok(outcome) => {
                backoff = interval;
                if let Ok(block) = i64::try_from(outcome.checkpoint) {
                    metrics.checkpoint.set(block);
                }
                // Behind = confirmed blocks remain past the checkpoint (a long catch-up reads them over several polls).
                let behind = match head.get_block_number().await {
                    Ok(h) => h.saturating_sub(confirmations) > outcome.checkpoint,
                    Err(_) => false,
                };
                metrics.chain_contact(behind);
                if !outcome.vanished.is_empty() {
                    tracing::warn!(calls = ?outcome.vanished, "calls removed by a chain reorganisation");
                    jobs.vanished(&outcome.vanished);
                }
                for call in outcome.new_calls {
                    metrics.chain_calls.inc();
                    jobs.start(call);
                }
                if last_rescan.elapsed() >= RESCAN {
                    last_rescan = tokio::time::Instant::now();
                    jobs.run_pending();
                }
                interval
            }
            Err(e) => {
                if e.is_fatal() {
                    tracing::error!(error = %e, "the chain watcher's store failed");
                } else {
                    tracing::warn!(error = %e, retry_in = ?backoff, "chain watcher poll failed");
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                backoff
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// How often the node looks for newly activated services of the blueprints it serves.
const SERVICE_SCAN: Duration = Duration::from_secs(10);

/// Calls `on_service_activated` once for every active service of `blueprint_id` naming `operator`: those active at
/// start, then those activated later (scanned every [`SERVICE_SCAN`]).
async fn announce_services(
    chain: ChainView,
    blueprint_id: u64,
    blueprint: Arc<dyn Blueprint>,
    operator: Address,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut announced = std::collections::HashSet::new();
    loop {
        match services_of(&chain, blueprint_id, operator).await {
            Ok(services) => {
                for service in services {
                    if !announced.insert(service) {
                        continue;
                    }
                    if let Err(e) = blueprint.on_service_activated(service).await {
                        tracing::warn!(%service, blueprint = blueprint.name(), error = %e, "on_service_activated failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list services"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(SERVICE_SCAN) => {}
        }
    }
}

/// Active services of `blueprint_id` that name `operator`.
async fn services_of(chain: &ChainView, blueprint_id: u64, operator: Address) -> Result<Vec<ServiceId>, NodeError> {
    let protocol = vouch_contracts::VouchProtocol::new(chain.book().contracts.protocol, chain.provider());
    let count = protocol.serviceCount().call().await.map_err(|e| NodeError::chain("serviceCount", e))?;
    let mut found = Vec::new();
    for id in 1..=count {
        if let Some(s) = chain.service(ServiceId(id)).await?
            && s.blueprint_id == blueprint_id
            && s.status == crate::chain::SERVICE_ACTIVE
            && s.slot_of(operator).is_some()
        {
            found.push(s.id);
        }
    }
    Ok(found)
}

/// Makes sure the chain announces where this node listens; returns the endpoint in effect.
async fn announce(
    chain: &ChainView,
    wallet: &DynProvider,
    operator: Address,
    announce: Option<&str>,
    api_addr: SocketAddr,
) -> Result<String, NodeError> {
    let current = chain.endpoint_of(operator).await?;
    let wanted = match announce {
        None => return Ok(current),
        Some("auto") => format!("http://{api_addr}"),
        Some(url) => url.to_owned(),
    };
    if wanted == current {
        return Ok(current);
    }
    let staking = VouchStaking::new(chain.book().contracts.staking, wallet);
    let receipt = staking
        .setEndpoint(wanted.clone())
        .send()
        .await
        .map_err(|e| NodeError::chain("VouchStaking.setEndpoint", e))?
        .get_receipt()
        .await
        .map_err(|e| NodeError::chain("VouchStaking.setEndpoint receipt", e))?;
    if !receipt.status() {
        return Err(NodeError::chain("VouchStaking.setEndpoint", "the transaction reverted"));
    }
    tracing::info!(%operator, endpoint = %wanted, "announced endpoint on chain");
    Ok(wanted)
}

impl RunningNode {
    /// The operator (transaction key address).
    pub fn operator(&self) -> Address {
        self.operator
    }

    /// Where the API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// `http://<api address>`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Where `/metrics` and `/health` are served, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The endpoint the chain announces for this operator.
    pub fn endpoint(&self) -> &str {
        &self.announced
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The signing guard.
    pub fn guard(&self) -> &SigningGuard {
        &self.guard
    }

    /// Stops every task after the requests in progress (graceful).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for (name, task) in self.tasks.drain(..) {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = name, error = %e, "task ended abnormally"),
                Err(_) => tracing::warn!(task = name, "task did not stop within 10 s"),
            }
        }
    }

    /// Stops every task at once, as a crash would (tests of takeover and recovery).
    pub fn kill(mut self) {
        for (_, task) in self.tasks.drain(..) {
            task.abort();
        }
    }

    /// Waits until any task ends (it should not) or SIGINT/SIGTERM arrives, then shuts down.
    pub async fn run_until_signal(self) {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = ctrl_c => tracing::info!("SIGINT: shutting down"),
            () = term => tracing::info!("SIGTERM: shutting down"),
        }
        self.shutdown().await;
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}
