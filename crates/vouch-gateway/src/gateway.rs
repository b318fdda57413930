//! [`Gateway`]: starts the HTTP API, finishes requests a previous run left unanswered, and runs settlement.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use axum::serve::ListenerExt as _;
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use vouch_contracts::{AddressBook, TokenDomain, view::ChainView};

use crate::{
    api::{self, GatewayState},
    catalogue::Catalogue,
    fanout::FanOut,
    store::RequestStore,
};

/// `gateway.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listen address (port 0 = any free port).
    pub listen: SocketAddr,
    /// Public base URL (x402 `resource`); default `http://<listen address>`.
    pub public_url: Option<String>,
    /// JSON-RPC URL.
    pub rpc_url: String,
    /// Where the request log (`gateway.sqlite`) lives.
    pub data_dir: PathBuf,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Seconds each operator has to answer.
    pub operator_timeout_secs: u64,
    /// Seconds added to a job's deadline in `maxTimeoutSeconds`: the authorization must outlive the settlement.
    pub settlement_margin_secs: u64,
    /// Most calls in one settlement transaction.
    pub max_batch: usize,
    /// Longest a paid, answered call waits for its settlement transaction, milliseconds.
    pub max_batch_delay_ms: u64,
    /// Models served on `/v1/embeddings` and `/v1/chat/completions` (`[[openai]]` tables).
    pub openai: Vec<crate::openai::OpenAiModel>,
    /// How often the chain's events are read to drop stale cached services, endpoints and blueprint metadata,
    /// milliseconds (at least 50; [`crate::events`]).
    pub events_poll_ms: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8402)),
            public_url: None,
            rpc_url: "http://127.0.0.1:8545".into(),
            data_dir: PathBuf::from("vouch-gateway"),
            max_body_bytes: 1 << 20,
            operator_timeout_secs: 30,
            settlement_margin_secs: 600,
            max_batch: 100,
            max_batch_delay_ms: 2_000,
            openai: Vec::new(),
            events_poll_ms: 1_000,
        }
    }
}

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    /// Bad configuration.
    #[error("config: {0}")]
    Config(String),
    /// The chain or the deployment is not usable.
    #[error("chain: {0}")]
    Chain(String),
    /// The request store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The listener.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A gateway to start.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    book: AddressBook,
    submitter: PrivateKeySigner,
}

/// A running gateway.
#[derive(Debug)]
pub struct RunningGateway {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    state: Arc<GatewayState>,
}

impl Gateway {
    /// A gateway for the deployment `book`, submitting settlements with `submitter` (it pays the gas).
    pub fn new(config: GatewayConfig, book: AddressBook, submitter: PrivateKeySigner) -> Self {
        Self { config, book, submitter }
    }

    /// Binds, recovers, and starts serving.
    pub async fn start(self) -> Result<RunningGateway, GatewayStartError> {
        let Self { config, book, submitter } = self;
        let url = config.rpc_url.parse().map_err(|e| GatewayStartError::Config(format!("rpc_url: {e}")))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        book.check(&provider).await.map_err(|e| GatewayStartError::Chain(e.to_string()))?;
        let token = TokenDomain::read(&provider, book.contracts.vouch_usd)
            .await
            .map_err(|e| GatewayStartError::Chain(e.to_string()))?;
        // Events drop what changed (crate::events): the TTL is only a backstop.
        let chain = ChainView::new(provider.clone(), book.clone()).with_cache_ttl(crate::events::BACKSTOP_TTL);
        let store = RequestStore::open(&config.data_dir.join("gateway.sqlite"))?;
        let key_path = config.data_dir.join("result-urls.key");
        let result_key = crate::calls::ResultKey::load_or_create(&key_path)
            .map_err(|e| GatewayStartError::Config(format!("result URL key {}: {e}", key_path.display())))?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| GatewayStartError::Listen { addr: config.listen, reason: e.to_string() })?;
        let addr = listener
            .local_addr()
            .map_err(|e| GatewayStartError::Listen { addr: config.listen, reason: e.to_string() })?;
        let state = Arc::new(GatewayState {
            chain: chain.clone(),
            token,
            catalogue: Catalogue::new(chain.clone()).with_ttl(crate::events::BACKSTOP_TTL),
            store: store.clone(),
            fanout: FanOut::new(chain.clone(), Duration::from_secs(config.operator_timeout_secs.max(1))),
            settlement_margin: Duration::from_secs(config.settlement_margin_secs),
            public_url: config.public_url.clone().unwrap_or_else(|| format!("http://{addr}")),
            openai: config.openai.clone(),
            clock: api::ChainClock::default(),
            calls: Default::default(),
            result_key,
        });
        let signing = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(submitter))
            .connect_provider(provider.clone());
        let facilitator =
            crate::x402::FacilitatorState::new(provider.clone(), state.token.clone(), book.contracts.protocol)
                .with_wallet(signing.clone());
        let wallet = signing.erased();
        let (shutdown, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        let app = api::router(state.clone(), config.max_body_bytes).merge(crate::x402::facilitator_router(facilitator));
        let stop = stopped(rx.clone());
        // Answers go out as soon as they are written (no Nagle delay behind an unacknowledged segment).
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on a client connection");
            }
        });
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(error = %e, "the gateway's HTTP server stopped");
            }
        }));
        let recovering = state.clone();
        tasks.push(tokio::spawn(async move {
            match api::finish_received(&recovering).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(requests = n, "finished requests left unanswered by the previous run"),
                Err(e) => tracing::error!(error = ?e, "cannot finish unanswered requests"),
            }
        }));
        tasks.push(crate::events::spawn(
            provider.clone(),
            book.contracts,
            chain.clone(),
            state.catalogue.clone(),
            Duration::from_millis(config.events_poll_ms),
            stopped(rx.clone()),
        ));
        tasks.push(crate::reporter::spawn(
            provider.clone(),
            wallet.clone(),
            book.clone(),
            store.clone(),
            stopped(rx.clone()),
        ));
        tasks.push(crate::settle::spawn(provider, wallet, book, store, &config, stopped(rx)));
        tracing::info!(%addr, "gateway started");
        Ok(RunningGateway { addr, shutdown, tasks, state })
    }
}

impl RunningGateway {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request store.
    pub fn store(&self) -> &RequestStore {
        &self.state.store
    }

    /// Stops after the requests in progress.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        // Calls answered `202` (or whose client hung up) are finished too.
        self.state.calls.drain(Duration::from_secs(10)).await;
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Stops at once, as a crash would.
    pub fn kill(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.state.calls.abort_all();
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.state.calls.abort_all();
    }
}
