//! [`TestNetwork`]: a devnet with in-process nodes.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, Bytes, U256, keccak256};
use serde::{Serialize, de::DeserializeOwned};
use tempfile::TempDir;
use vouch_contracts::{VouchProtocol, VouchUSD, alloy::providers::Provider};
use vouch_devnet::{Devnet, DevnetConfig, JobConfig};
use vouch_node::{Node, NodeConfig, NodeKeys, RunningNode, config::WatcherSettings};
use vouch_primitives::{
    CallId, Certificate, ServiceId,
    wire::{EndorseRequest, ErrorBody, JobRequest, PaymentProof, SignedCommitment, SignedResult, WIRE_VERSION},
};
use vouch_sdk::Router;

/// What can go wrong in a test network.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The devnet did not start or a setup step failed.
    #[error(transparent)]
    Devnet(#[from] vouch_devnet::DevnetError),
    /// A node did not start.
    #[error("node {index}: {source}")]
    Node {
        /// Operator index.
        index: usize,
        /// Why.
        source: vouch_node::NodeError,
    },
    /// A transaction or chain read failed.
    #[error("{0}")]
    Chain(String),
    /// A node answered an error.
    #[error("node answered {status}: {body}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The body.
        body: String,
    },
    /// Inputs or outputs could not be (de)serialized.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The call was not settled in time.
    #[error("call {call} was not settled within {waited:?}")]
    Timeout {
        /// The call.
        call: CallId,
        /// How long the harness waited.
        waited: Duration,
    },
    /// A temporary directory could not be created.
    #[error("temporary directory: {0}")]
    Io(#[from] std::io::Error),
}

impl HarnessError {
    /// The machine-readable code of a node's error answer (`disagree`, `wrong_verification`, …), if this is one.
    pub fn api_code(&self) -> Option<String> {
        match self {
            Self::Api { body, .. } => serde_json::from_str::<ErrorBody>(body).ok().map(|b| b.error.code),
            _ => None,
        }
    }

    /// The HTTP status and code of a node's error answer, if this is one: `(409, "disagree")`.
    pub fn api_status_code(&self) -> Option<(u16, String)> {
        match self {
            Self::Api { status, .. } => self.api_code().map(|code| (*status, code)),
            _ => None,
        }
    }
}

/// Configures a [`TestNetwork`].
#[derive(Debug)]
pub struct TestNetworkBuilder {
    router: Router,
    node_routers: HashMap<usize, Router>,
    devnet: DevnetConfig,
    confirmations: u64,
    turn: Duration,
    settle_timeout: Duration,
}

/// A local network running a blueprint on in-process nodes.
#[derive(Debug)]
pub struct TestNetwork {
    devnet: Devnet,
    router: Router,
    node_routers: HashMap<usize, Router>,
    nodes: Vec<Option<RunningNode>>,
    configs: Vec<NodeConfig>,
    settle_timeout: Duration,
    http: reqwest::Client,
    _dir: TempDir,
}

/// A settled call.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The call.
    pub call_id: CallId,
    /// The job's output (from operator 0's node).
    pub output: Bytes,
    /// The certificate that settled it.
    pub certificate: Certificate,
}

impl CallOutcome {
    /// The output parsed as JSON.
    pub fn output_json<T: DeserializeOwned>(&self) -> Result<T, HarnessError> {
        Ok(serde_json::from_slice(&self.output)?)
    }
}

impl TestNetworkBuilder {
    /// Number of operators (and nodes); default 3.
    pub fn operators(mut self, n: usize) -> Self {
        self.devnet.operators = n;
        self
    }

    /// The blueprint's jobs on chain (default: every routed job at 0.01 vUSD with a 10-minute deadline).
    pub fn jobs(mut self, jobs: Vec<JobConfig>) -> Self {
        self.devnet.blueprint.jobs = jobs;
        self
    }

    /// Quorum in basis points of stake (default 6,667: with equal stakes, every one of 3 operators must sign).
    pub fn quorum_bps(mut self, bps: u16) -> Self {
        self.devnet.blueprint.policy.quorumBps = bps;
        self
    }

    /// The blueprint's arbiter, who may veto deviation proposals (default: none).
    pub fn arbiter(mut self, arbiter: Address) -> Self {
        self.devnet.blueprint.arbiter = arbiter;
        self
    }

    /// Minimum signers (default 2).
    pub fn min_signers(mut self, n: u16) -> Self {
        self.devnet.blueprint.policy.minSigners = n;
        self
    }

    /// Blocks a call waits before nodes run it (default 0: a devnet mines one block per transaction).
    pub fn confirmations(mut self, n: u64) -> Self {
        self.confirmations = n;
        self
    }

    /// How long each operator has to submit before the next takes over (default 2 s).
    pub fn submitter_turn(mut self, turn: Duration) -> Self {
        self.turn = turn;
        self
    }

    /// How long [`TestNetwork::call`] waits for settlement (default 60 s).
    pub fn settle_timeout(mut self, timeout: Duration) -> Self {
        self.settle_timeout = timeout;
        self
    }

    /// Node `index` runs `router` instead of the network's (e.g. a faulty operator). The blueprint's jobs on chain
    /// still come from the network's router; [`TestNetwork::call`] computes outputs with it too.
    pub fn router_for(mut self, index: usize, router: Router) -> Self {
        self.node_routers.insert(index, router);
        self
    }

    /// Starts the devnet and every node.
    pub async fn start(self) -> Result<TestNetwork, HarnessError> {
        let Self { router, node_routers, mut devnet, confirmations, turn, settle_timeout } = self;
        if devnet.blueprint.jobs.is_empty() {
            let count = router.jobs().iter().copied().max().map_or(0, |m| usize::from(m) + 1);
            devnet.blueprint.jobs = (0..count)
                .map(|i| {
                    let index = u8::try_from(i).unwrap_or(u8::MAX);
                    JobConfig::new(format!("job{i}"), 10_000, 600).with_verification(router.verification_for(index))
                })
                .collect();
        }
        devnet.blueprint.name = "vouch-testing".into();
        let devnet = Devnet::start(devnet).await?;
        let dir = tempfile::tempdir()?;
        let mut configs = Vec::new();
        for i in 0..devnet.operators().len() {
            let mut config = NodeConfig { data_dir: dir.path().join(format!("node{i}")), ..NodeConfig::default() };
            config.chain.rpc_url = devnet.rpc_url().to_owned();
            config.api.listen = "127.0.0.1:0".parse().map_err(|e| HarnessError::Chain(format!("{e}")))?;
            config.api.announce = Some("auto".into());
            config.metrics.listen = "127.0.0.1:0".parse().map_err(|e| HarnessError::Chain(format!("{e}")))?;
            config.watcher =
                WatcherSettings { confirmations, poll_interval_ms: 100, max_block_range: 1_000, start_block: None };
            config.submitter.turn_secs = turn.as_secs().max(1);
            config.submitter.backoff_ms = 200;
            config.submitter.max_backoff_ms = 2_000;
            configs.push(config);
        }
        let mut net = TestNetwork {
            devnet,
            router,
            node_routers,
            nodes: Vec::new(),
            configs,
            settle_timeout,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for i in 0..net.configs.len() {
            let node = net.start_node_inner(i, true).await?;
            net.nodes.push(Some(node));
        }
        Ok(net)
    }
}

impl TestNetwork {
    /// A network running `router`.
    pub fn builder(router: Router) -> TestNetworkBuilder {
        TestNetworkBuilder {
            router,
            node_routers: HashMap::new(),
            devnet: {
                let mut devnet = DevnetConfig { ephemeral: true, ..DevnetConfig::default() };
                // Derived from the router at start unless `jobs` sets them.
                devnet.blueprint.jobs.clear();
                devnet
            },
            confirmations: 0,
            turn: Duration::from_secs(2),
            settle_timeout: Duration::from_secs(60),
        }
    }

    async fn start_node_inner(&self, index: usize, init: bool) -> Result<RunningNode, HarnessError> {
        let op = &self.devnet.operators()[index];
        let bls = vouch_crypto::SecretKey::from_bytes(op.bls_secret().to_bytes().as_slice())
            .map_err(|e| HarnessError::Chain(format!("operator {index}'s BLS key: {e}")))?;
        let keys = NodeKeys { tx: op.signer().clone(), bls };
        Node::new(self.configs[index].clone(), keys)
            .blueprint(self.devnet.blueprint_id(), self.node_routers.get(&index).unwrap_or(&self.router).clone())
            .address_book(self.devnet.address_book().clone())
            .init_guard(init)
            .start()
            .await
            .map_err(|source| HarnessError::Node { index, source })
    }

    /// The devnet (chain, contracts, accounts).
    pub fn devnet(&self) -> &Devnet {
        &self.devnet
    }

    /// Node `index`, if running.
    pub fn node(&self, index: usize) -> Option<&RunningNode> {
        self.nodes.get(index).and_then(Option::as_ref)
    }

    /// The service the nodes serve.
    pub fn service_id(&self) -> ServiceId {
        ServiceId(self.devnet.service_id())
    }

    /// Stops node `index` at once, as a crash would.
    pub fn kill_node(&mut self, index: usize) {
        if let Some(node) = self.nodes.get_mut(index).and_then(Option::take) {
            node.kill();
        }
    }

    /// Restarts node `index` over its existing data directory (signing guard and chain checkpoint).
    pub async fn restart_node(&mut self, index: usize) -> Result<(), HarnessError> {
        self.kill_node(index);
        let node = self.start_node_inner(index, false).await?;
        if let Some(slot) = self.nodes.get_mut(index) {
            *slot = Some(node);
        }
        Ok(())
    }

    /// The customer opens a call of `job` with `inputs` serialized as JSON; returns its id.
    pub async fn open_call<T: Serialize + ?Sized>(&self, job: u8, inputs: &T) -> Result<CallId, HarnessError> {
        self.open_call_raw(job, Bytes::from(serde_json::to_vec(inputs)?)).await
    }

    /// The customer opens a call of `job` with raw `inputs`; returns its id.
    pub async fn open_call_raw(&self, job: u8, inputs: Bytes) -> Result<CallId, HarnessError> {
        let c = self.devnet.address_book().contracts;
        let customer = self.devnet.provider(self.devnet.customer().signer());
        let price = self
            .devnet
            .jobs()
            .get(usize::from(job))
            .map(|j| U256::from(j.price))
            .ok_or_else(|| HarnessError::Chain(format!("the blueprint has no job {job}")))?;
        let chain = |e: &dyn std::fmt::Display| HarnessError::Chain(e.to_string());
        let usd = VouchUSD::new(c.vouch_usd, &customer);
        usd.approve(c.protocol, price)
            .send()
            .await
            .map_err(|e| chain(&e))?
            .get_receipt()
            .await
            .map_err(|e| chain(&e))?;
        let protocol = VouchProtocol::new(c.protocol, &customer);
        let receipt = protocol
            .callJob(self.devnet.service_id(), job, inputs)
            .send()
            .await
            .map_err(|e| chain(&e))?
            .get_receipt()
            .await
            .map_err(|e| chain(&e))?;
        if !receipt.status() {
            return Err(HarnessError::Chain(format!("callJob reverted ({})", receipt.transaction_hash)));
        }
        let id = protocol.callCount().call().await.map_err(|e| chain(&e))?;
        Ok(CallId(U256::from(id)))
    }

    /// Waits until `call` is settled on chain and returns the certificate a running node assembled.
    pub async fn wait_certificate(&self, call: CallId) -> Result<Certificate, HarnessError> {
        let started = Instant::now();
        let protocol = VouchProtocol::new(self.devnet.address_book().contracts.protocol, self.devnet.read_provider());
        loop {
            let on_chain = protocol.getCall(call.0).call().await.map_err(|e| HarnessError::Chain(e.to_string()))?;
            if on_chain.status == 2 {
                for node in self.nodes.iter().flatten() {
                    let url = format!("{}/v1/calls/{}/certificate", node.api_url(), call.0);
                    if let Ok(r) = self.http.get(&url).send().await
                        && r.status().is_success()
                        && let Ok(cert) = r.json::<Certificate>().await
                        && cert.result_hash == on_chain.resultHash
                    {
                        return Ok(cert);
                    }
                }
            }
            if started.elapsed() > self.settle_timeout {
                return Err(HarnessError::Timeout { call, waited: self.settle_timeout });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A request for `call` (open on chain) of `job` with `inputs`, paid on chain.
    pub fn job_request(&self, call: CallId, job: u8, inputs: Bytes) -> JobRequest {
        JobRequest {
            version: WIRE_VERSION,
            service_id: self.service_id(),
            call_id: call,
            job_index: job,
            inputs,
            payment: PaymentProof::OnChain,
        }
    }

    /// Posts `body` as JSON to `path` of node `index`; a non-200 answer is [`HarnessError::Api`].
    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        index: usize,
        path: &str,
        body: &B,
    ) -> Result<R, HarnessError> {
        let node = self.node(index).ok_or_else(|| HarnessError::Chain(format!("node {index} is not running")))?;
        let r = self
            .http
            .post(format!("{}{path}", node.api_url()))
            .json(body)
            .send()
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(|e| HarnessError::Chain(e.to_string()))?;
        if status != 200 {
            return Err(HarnessError::Api { status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// Asks node `index` to run `call` (open on chain) and return its signed result (`POST /v1/jobs`).
    pub async fn request(
        &self,
        index: usize,
        call: CallId,
        job: u8,
        inputs: Bytes,
    ) -> Result<SignedResult, HarnessError> {
        self.post(index, "/v1/jobs", &self.job_request(call, job, inputs)).await
    }

    /// Asks node `index` for its signed commitment to its own output of `call` (open on chain) of a tolerant `job`
    /// (`POST /v1/commitments`).
    pub async fn commit(
        &self,
        index: usize,
        call: CallId,
        job: u8,
        inputs: Bytes,
    ) -> Result<SignedCommitment, HarnessError> {
        self.post(index, "/v1/commitments", &self.job_request(call, job, inputs)).await
    }

    /// Asks node `index` to endorse `output` as its result of `call` (open on chain) of a tolerant or checked `job`
    /// (`POST /v1/endorsements`); a disagreement is [`HarnessError::Api`] with code `disagree`.
    pub async fn endorse(
        &self,
        index: usize,
        call: CallId,
        job: u8,
        inputs: Bytes,
        output: Bytes,
    ) -> Result<SignedResult, HarnessError> {
        let request = EndorseRequest { request: self.job_request(call, job, inputs), output };
        self.post(index, "/v1/endorsements", &request).await
    }

    /// Opens a call of `job` with `inputs` (JSON), waits for the nodes to settle it, and returns the output and the
    /// certificate.
    ///
    /// For exact jobs only: the nodes' chain watchers do not sign on-chain calls of tolerant or checked jobs (a
    /// gateway orchestrates those); drive them with [`Self::commit`], [`Self::request`] and [`Self::endorse`].
    pub async fn call<T: Serialize + ?Sized>(&self, job: u8, inputs: &T) -> Result<CallOutcome, HarnessError> {
        let raw = Bytes::from(serde_json::to_vec(inputs)?);
        let call_id = self.open_call_raw(job, raw.clone()).await?;
        let certificate = self.wait_certificate(call_id).await?;
        // The output as the blueprint computes it; it must hash to what the nodes certified.
        let call = vouch_sdk::JobCall::new(self.service_id(), call_id, job, self.devnet.customer().address(), raw);
        let output = Bytes::from(
            self.router
                .call(call)
                .await
                .map_err(|e| HarnessError::Chain(format!("the job failed locally: {e}")))?
                .bytes
                .to_vec(),
        );
        if keccak256(&output) != certificate.result_hash {
            return Err(HarnessError::Chain(format!(
                "the blueprint's output hashes to {}, the nodes certified {}",
                keccak256(&output),
                certificate.result_hash
            )));
        }
        Ok(CallOutcome { call_id, output, certificate })
    }

    /// Block number of the chain head.
    pub async fn block_number(&self) -> Result<u64, HarnessError> {
        self.devnet.read_provider().get_block_number().await.map_err(|e| HarnessError::Chain(e.to_string()))
    }
}
