//! [`Devnet`]: start, use and tear down one local network.

use std::{
    fmt,
    fs::{self, File},
    future::Future,
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    eips::BlockNumberOrTag,
    network::EthereumWallet,
    primitives::{Address, U256, keccak256},
    providers::{Provider, ProviderBuilder, WalletProvider},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    transports::http::reqwest::Url,
};
use tempfile::TempDir;
use tokio::signal::unix::{SignalKind, signal};
use vouch_contracts::{
    AddressBook, CallError, Contract, ContractAddresses, KeyRegistry, StakeToken, VouchProtocol, VouchStaking,
    VouchUSD, deploy,
    view::verification_code,
    vouch_protocol::IVouchProtocol::{Job, Policy},
};
use vouch_crypto::{PublicKey, SecretKey};
use vouch_primitives::ChainBinding;

use crate::{
    DevnetConfig, DevnetError, Funding,
    anvil::{Anvil, find_anvil},
    config::JobConfig,
    keys::{ANVIL_DEV_KEY_0, Account, BlsKey, create_private_dir, random_signer, write_account, write_bls_key},
    manifest::{
        ADDRESS_BOOK_FILE, ANVIL_LOG_FILE, BLUEPRINT_FILE, DevnetManifest, KEYS_DIR, MANIFEST_VERSION, ManifestAccount,
        ManifestAccounts, ManifestBlueprint, ManifestJob, ManifestOperator, ManifestService,
    },
};

/// How often [`Devnet::run_until`] checks that anvil is still alive.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(250);

/// A running local network: anvil, the deployed protocol, funded accounts, staked operators, the demo blueprint and
/// an active service run by every operator. Dropping it kills anvil (and waits for it); [`Devnet::stop`] does the
/// same and reports errors.
#[derive(Debug)]
pub struct Devnet {
    process: Process,
    url: Url,
    port: u16,
    book: AddressBook,
    deployer: Account,
    developer: Account,
    customer: Account,
    operators: Vec<Operator>,
    manifest: DevnetManifest,
    config: DevnetConfig,
}

/// An operator of the devnet: its transaction account, its BLS key (registered with a proof of possession), its
/// registration in `VouchStaking` and its slot in the service.
pub struct Operator {
    index: usize,
    account: Account,
    bls_secret: SecretKey,
    bls_public: PublicKey,
    bls_keystore: PathBuf,
    bls_password_file: PathBuf,
    endpoint: String,
    commission_bps: u16,
    self_stake: U256,
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("index", &self.index)
            .field("address", &self.account.address())
            .field("bls_public", &self.bls_public)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// Its slot in the service's operator set (bit `index` of a signer bitmap), and its position in
    /// [`Devnet::operators`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its EVM address.
    pub fn address(&self) -> Address {
        self.account.address()
    }

    /// Its transaction account (`operator-<index>`): signer, keystore, password file.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Its transaction signer, for [`Devnet::provider`].
    pub fn signer(&self) -> &PrivateKeySigner {
        self.account.signer()
    }

    /// Its BLS secret key (it signs results: [`SecretKey::sign`]).
    pub fn bls_secret(&self) -> &SecretKey {
        &self.bls_secret
    }

    /// Its BLS public key, as registered in `KeyRegistry`.
    pub fn bls_public(&self) -> PublicKey {
        self.bls_public
    }

    /// Its EIP-2335 keystore (absolute path).
    pub fn bls_keystore(&self) -> &Path {
        &self.bls_keystore
    }

    /// The password file of its EIP-2335 keystore (absolute path).
    pub fn bls_password_file(&self) -> &Path {
        &self.bls_password_file
    }

    /// The endpoint it registered (a placeholder: nothing serves it yet).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Its commission in basis points.
    pub fn commission_bps(&self) -> u16 {
        self.commission_bps
    }

    /// Its self-stake at start, in stake-token base units.
    pub fn self_stake(&self) -> U256 {
        self.self_stake
    }
}

impl Devnet {
    /// Starts a devnet: anvil (Prague), the protocol, the accounts, `config.operators` staked operators, the demo
    /// blueprint and a public service run by every operator; writes the data directory. On failure everything started
    /// is stopped (an ephemeral data directory is removed; a persistent one is left for its `anvil.log`).
    pub async fn start(config: DevnetConfig) -> Result<Self, DevnetError> {
        config.validate().map_err(DevnetError::Config)?;
        let bin = find_anvil(config.anvil.as_deref())?;
        let (data_dir, temp_dir) = prepare_data_dir(config.data_dir.as_deref())?;
        let ephemeral = config.ephemeral || temp_dir.is_some();
        let log_path = data_dir.join(ANVIL_LOG_FILE);
        let log = match File::create(&log_path) {
            Ok(log) => log,
            Err(source) => {
                if ephemeral {
                    let _ = fs::remove_dir_all(&data_dir);
                }
                return Err(DevnetError::Io { path: log_path, source });
            }
        };
        let started = Instant::now();
        let (anvil, address) = match Anvil::spawn(&bin, config.port, config.chain_id, log) {
            Ok(spawned) => spawned,
            Err(e) => {
                if ephemeral && temp_dir.is_none() {
                    let _ = fs::remove_dir_all(&data_dir);
                }
                return Err(e);
            }
        };
        let mut process = Process { anvil, data_dir, temp_dir, ephemeral, stopped: false };
        let address = process.anvil.listening(address, config.startup_timeout).await?;
        let rpc_url = format!("http://{address}");
        let url = parse_url(&rpc_url)?;
        let remaining = config.startup_timeout.saturating_sub(started.elapsed());
        wait_until_answering(&url, config.chain_id, remaining, &process.anvil).await?;

        let setup = Setup { url: url.clone(), port: address.port(), config: &config, data_dir: &process.data_dir };
        let built = setup.run().await?;
        let manifest = built.manifest(&rpc_url, config.chain_id, process.anvil.pid());
        manifest.save(&process.data_dir)?;
        Ok(Self {
            process,
            url,
            port: address.port(),
            book: built.book,
            deployer: built.deployer,
            developer: built.developer,
            customer: built.customer,
            operators: built.operators,
            manifest,
            config,
        })
    }

    /// anvil's JSON-RPC URL, e.g. `http://127.0.0.1:37411`.
    pub fn rpc_url(&self) -> &str {
        &self.manifest.rpc_url
    }

    /// anvil's port (the one the OS picked when the config said 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.manifest.chain_id
    }

    /// anvil's process id.
    pub fn anvil_pid(&self) -> u32 {
        self.manifest.anvil_pid
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.process.data_dir
    }

    /// The deployment (also in `<data dir>/addresses.json`).
    pub fn address_book(&self) -> &AddressBook {
        &self.book
    }

    /// What `devnet.json` says.
    pub fn manifest(&self) -> &DevnetManifest {
        &self.manifest
    }

    /// The config the devnet was started with.
    pub fn config(&self) -> &DevnetConfig {
        &self.config
    }

    /// The operators, in service slot order.
    pub fn operators(&self) -> &[Operator] {
        &self.operators
    }

    /// The customer: owns the service and holds Vouch USD to pay for calls.
    pub fn customer(&self) -> &Account {
        &self.customer
    }

    /// The blueprint developer: owns the blueprint and earns its developer fee.
    pub fn developer(&self) -> &Account {
        &self.developer
    }

    /// The deployer: anvil's development account 0, owner (minter) of the dev tokens and the protocol's treasury.
    pub fn deployer(&self) -> &Account {
        &self.deployer
    }

    /// The demo blueprint's id.
    pub fn blueprint_id(&self) -> u64 {
        self.manifest.blueprint.id
    }

    /// The demo blueprint's jobs (index = `jobIndex`).
    pub fn jobs(&self) -> &[JobConfig] {
        &self.config.blueprint.jobs
    }

    /// The demo blueprint's policy.
    pub fn policy(&self) -> &Policy {
        &self.config.blueprint.policy
    }

    /// The service's id.
    pub fn service_id(&self) -> u64 {
        self.manifest.service.id
    }

    /// What result and batch digests bind: this chain and `VouchProtocol` ([`vouch_primitives::result_digest`]).
    pub fn protocol_binding(&self) -> ChainBinding {
        ChainBinding::new(self.chain_id(), self.book.contracts.protocol)
    }

    /// What proofs of possession bind: this chain and `KeyRegistry` ([`SecretKey::prove_possession`]).
    pub fn registry_binding(&self) -> ChainBinding {
        ChainBinding::new(self.chain_id(), self.book.contracts.key_registry)
    }

    /// A provider that signs with `signer`: gas, chain id and nonce filled in. The nonce is read from the node for every
    /// transaction, so a transaction refused in `eth_estimateGas` (a revert) leaves no gap.
    pub fn provider(&self, signer: &PrivateKeySigner) -> impl Provider + WalletProvider + Clone + use<> {
        provider_for(&self.url, signer)
    }

    /// A provider without a signer, for reads.
    pub fn read_provider(&self) -> impl Provider + Clone + use<> {
        ProviderBuilder::new().connect_http(self.url.clone())
    }

    /// Gives `account` ETH (sets its balance) and mints it stake tokens and Vouch USD, as the deployer.
    pub async fn fund(&self, account: Address, funding: &Funding) -> Result<(), DevnetError> {
        fund(&provider_for(&self.url, self.deployer.signer()), &self.book, account, funding).await
    }

    /// A fresh account (not written to the data directory) funded with `funding`.
    pub async fn new_account(&self, funding: &Funding) -> Result<PrivateKeySigner, DevnetError> {
        let signer = random_signer()?;
        self.fund(signer.address(), funding).await?;
        Ok(signer)
    }

    /// Kills anvil, waits for it, and removes the data directory if it is ephemeral.
    pub fn stop(mut self) -> Result<(), DevnetError> {
        self.process.shutdown()
    }

    /// Runs until `shutdown` completes or anvil exits, then tears down as [`Devnet::stop`] does. anvil exiting by
    /// itself with success, or on SIGINT / SIGTERM (Ctrl-C in a terminal reaches anvil too), counts as a requested
    /// stop; any other exit is [`DevnetError::AnvilDied`].
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DevnetError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut liveness = tokio::time::interval(LIVENESS_INTERVAL);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = liveness.tick() => {
                    if let Some(status) = self.process.anvil.try_wait() {
                        let requested = status.success() || matches!(status.signal(), Some(SIGINT | SIGTERM));
                        let died = DevnetError::AnvilDied {
                            pid: self.process.anvil.pid(),
                            status: status.to_string(),
                            output: self.process.anvil.output(),
                        };
                        self.process.shutdown()?;
                        return if requested { Ok(()) } else { Err(died) };
                    }
                }
            }
        }
        self.process.shutdown()
    }

    /// [`Devnet::run_until`] Ctrl-C (SIGINT) or SIGTERM: what `vouch devnet` runs in the foreground. The data directory
    /// stays (unless ephemeral), with `devnet.json` naming a stopped anvil.
    pub async fn run_until_ctrl_c(self) -> Result<(), DevnetError> {
        let mut interrupt = signal(SignalKind::interrupt()).map_err(DevnetError::Signal)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(DevnetError::Signal)?;
        self.run_until(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
        .await
    }
}

/// `IVouchProtocol.ServiceStatus.Active` (see vouch-contracts' `artifacts/enums.json`).
const SERVICE_ACTIVE: u8 = 2;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// anvil plus the data directory; tears both down once.
#[derive(Debug)]
struct Process {
    anvil: Anvil,
    data_dir: PathBuf,
    temp_dir: Option<TempDir>,
    ephemeral: bool,
    stopped: bool,
}

impl Process {
    fn shutdown(&mut self) -> Result<(), DevnetError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pid = self.anvil.pid();
        let killed = self.anvil.kill().map_err(|source| DevnetError::AnvilKill { pid, source });
        let removed = if let Some(temp) = self.temp_dir.take() {
            let path = temp.path().to_owned();
            temp.close().map_err(DevnetError::io(path))
        } else if self.ephemeral {
            match fs::remove_dir_all(&self.data_dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(DevnetError::Io { path: self.data_dir.clone(), source: e })
                }
                _ => Ok(()),
            }
        } else {
            Ok(())
        };
        killed.and(removed)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Creates the data directory (or a temporary one); refuses a non-empty one.
fn prepare_data_dir(requested: Option<&Path>) -> Result<(PathBuf, Option<TempDir>), DevnetError> {
    let Some(dir) = requested else {
        let temp = tempfile::Builder::new()
            .prefix("vouch-devnet-")
            .tempdir()
            .map_err(DevnetError::io(std::env::temp_dir()))?;
        return Ok((temp.path().to_owned(), Some(temp)));
    };
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(DevnetError::DataDirNotEmpty(dir.to_owned()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(DevnetError::io(dir))?;
        }
        Err(source) => return Err(DevnetError::Io { path: dir.to_owned(), source }),
    }
    let dir = dir.canonicalize().map_err(DevnetError::io(dir))?;
    Ok((dir, None))
}

/// Polls `eth_chainId` until anvil answers (it listens before it serves) and checks the chain id.
async fn wait_until_answering(url: &Url, chain_id: u64, timeout: Duration, anvil: &Anvil) -> Result<(), DevnetError> {
    let provider = ProviderBuilder::new().connect_http(url.clone());
    let deadline = Instant::now() + timeout;
    loop {
        match provider.get_chain_id().await {
            Ok(id) if id == chain_id => return Ok(()),
            Ok(id) => {
                return Err(DevnetError::ChainMismatch { rpc_url: url.to_string(), expected: chain_id, actual: id });
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => return Err(DevnetError::AnvilTimeout { waited: timeout, output: anvil.output() }),
        }
    }
}

/// Parses a JSON-RPC URL.
pub(crate) fn parse_url(url: &str) -> Result<Url, DevnetError> {
    url.parse::<Url>().map_err(|e| DevnetError::RpcUrl { url: url.to_owned(), reason: e.to_string() })
}

/// A provider signing with `signer`: gas estimated, chain id fetched once, and the nonce read from the node
/// (`pending`) for every transaction. alloy's default nonce cache counts a transaction that failed before it was sent
/// (a revert in `eth_estimateGas`), which leaves a gap that stalls every later transaction of the account; tests send
/// such transactions on purpose.
pub(crate) fn provider_for(url: &Url, signer: &PrivateKeySigner) -> impl Provider + WalletProvider + Clone + use<> {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_http(url.clone())
}

/// Gas limit of the devnet's own setup transactions (below EIP-7825's 2^24 cap of later hardforks). The largest is the
/// approval that activates a service of 191 operators (a 24 KB key set and 191 stake snapshots, about 11M gas).
const SETUP_GAS_LIMIT: u64 = 16_000_000;

/// Sends `call` with a fixed gas limit, waits for its receipt and requires success; errors name `step` and decode
/// reverts (`contract`'s errors first).
///
/// The fixed limit skips `eth_estimateGas`, which anvil answers by executing the transaction many times (a binary
/// search): that was half of anvil's work during a devnet's setup. A transaction that reverts on chain is replayed
/// with `eth_call` to recover its revert data.
pub(crate) async fn transact<P: Provider, D: CallDecoder>(
    step: impl Into<String>,
    contract: Contract,
    call: CallBuilder<P, D>,
) -> Result<TransactionReceipt, DevnetError> {
    let step = step.into();
    let call = call.gas(SETUP_GAS_LIMIT);
    let pending = match call.send().await {
        Ok(pending) => pending,
        Err(e) => return Err(DevnetError::step(step, CallError::for_contract(contract, e))),
    };
    let receipt = match pending.get_receipt().await {
        Ok(receipt) => receipt,
        Err(e) => return Err(DevnetError::step(step, e)),
    };
    if receipt.status() {
        return Ok(receipt);
    }
    if receipt.gas_used < SETUP_GAS_LIMIT
        && let Err(e) = call.call_raw().await
    {
        return Err(DevnetError::step(step, CallError::for_contract(contract, e)));
    }
    Err(DevnetError::Reverted { step, tx_hash: receipt.transaction_hash })
}

/// `anvil_setBalance`.
async fn set_balance<P: Provider>(provider: &P, account: Address, wei: U256) -> Result<(), DevnetError> {
    provider
        .raw_request::<_, serde_json::Value>("anvil_setBalance".into(), (account, wei))
        .await
        .map(drop)
        .map_err(|e| DevnetError::step(format!("anvil_setBalance({account})"), e))
}

/// Funds `account` as the deployer (`provider` signs with it).
async fn fund<P: Provider>(provider: &P, book: &AddressBook, account: Address, f: &Funding) -> Result<(), DevnetError> {
    if !f.eth.is_zero() {
        set_balance(provider, account, f.eth).await?;
    }
    if !f.stake.is_zero() {
        let token = StakeToken::new(book.contracts.stake_token, provider);
        transact(
            format!("StakeToken.mint({account}, {})", f.stake),
            Contract::StakeToken,
            token.mint(account, f.stake),
        )
        .await?;
    }
    if !f.usd.is_zero() {
        let token = VouchUSD::new(book.contracts.vouch_usd, provider);
        transact(format!("VouchUSD.mint({account}, {})", f.usd), Contract::VouchUsd, token.mint(account, f.usd))
            .await?;
    }
    Ok(())
}

/// The on-chain and on-disk setup, once anvil answers.
struct Setup<'a> {
    url: Url,
    port: u16,
    config: &'a DevnetConfig,
    data_dir: &'a Path,
}

/// What [`Setup::run`] built.
struct Built {
    book: AddressBook,
    deployer: Account,
    developer: Account,
    customer: Account,
    operators: Vec<Operator>,
    blueprint: ManifestBlueprint,
    service: ManifestService,
}

impl Setup<'_> {
    async fn run(&self) -> Result<Built, DevnetError> {
        let config = self.config;
        let keys_dir = self.data_dir.join(KEYS_DIR);
        create_private_dir(&keys_dir)?;
        let deployer_key = PrivateKeySigner::from_bytes(&ANVIL_DEV_KEY_0)
            .map_err(|e| DevnetError::Config(format!("anvil's development key 0: {e}")))?;

        // The keystores (scrypt: CPU-bound) are written on blocking threads while the protocol deploys.
        let keys = tokio::task::spawn_blocking({
            let (keys_dir, deployer_key, operators) = (keys_dir.clone(), deployer_key.clone(), config.operators);
            move || generate_keys(&keys_dir, &deployer_key, operators)
        });
        let deployer_provider = provider_for(&self.url, &deployer_key);
        let deployed = async {
            set_balance(&deployer_provider, deployer_key.address(), config.account_eth).await?;
            let book = deploy(&deployer_provider, &config.deploy).await?;
            book.save(self.data_dir.join(ADDRESS_BOOK_FILE))?;
            Ok::<_, DevnetError>(book)
        }
        .await;
        // Wait for the key writer even if the deployment failed: the data directory may be removed next.
        let keys = keys.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let (book, keys) = (deployed?, keys?);
        let c = book.contracts;

        // Funding: every mint is a transaction of the deployer, so one after the other.
        let eth = Funding { eth: config.account_eth, ..Funding::default() };
        fund(&deployer_provider, &book, keys.developer.address(), &eth).await?;
        let customer_funding = Funding { usd: config.customer_usd, ..eth.clone() };
        fund(&deployer_provider, &book, keys.customer.address(), &customer_funding).await?;
        let operator_funding = Funding { stake: config.operator_stake, ..eth };
        for (account, _) in &keys.operators {
            fund(&deployer_provider, &book, account.address(), &operator_funding).await?;
        }

        // Each operator registers from its own account, so all at once; the developer registers the blueprint
        // meanwhile.
        let registry_binding = ChainBinding::new(book.chain_id, c.key_registry);
        let mut registrations = tokio::task::JoinSet::new();
        for (index, (account, bls)) in keys.operators.into_iter().enumerate() {
            let operator = Operator {
                index,
                account,
                bls_secret: bls.secret,
                bls_public: bls.public,
                bls_keystore: bls.keystore,
                bls_password_file: bls.password_file,
                endpoint: format!("http://127.0.0.1:{}", endpoint_port(self.port, index)),
                commission_bps: config.operator_commission_bps,
                self_stake: config.operator_stake,
            };
            let url = self.url.clone();
            registrations.spawn(async move {
                let result = register_operator(&url, &c, &registry_binding, &operator).await;
                result.map(|()| operator)
            });
        }
        let blueprint = self.register_blueprint(&book, &keys.developer).await;
        let mut operators = join_all(registrations).await?;
        operators.sort_by_key(Operator::index);
        let blueprint = blueprint?;

        let service = self.create_service(&book, &keys.customer, &operators, blueprint.id).await?;
        Ok(Built {
            book,
            deployer: keys.deployer,
            developer: keys.developer,
            customer: keys.customer,
            operators,
            blueprint,
            service,
        })
    }

    /// Writes the metadata document and registers the blueprint as the developer.
    async fn register_blueprint(
        &self,
        book: &AddressBook,
        developer: &Account,
    ) -> Result<ManifestBlueprint, DevnetError> {
        let spec = &self.config.blueprint;
        let jobs: Vec<ManifestJob> = spec
            .jobs
            .iter()
            .enumerate()
            .map(|(index, job)| {
                let index = u8::try_from(index).map_err(|_| DevnetError::Config("more than 255 jobs".into()))?;
                Ok(ManifestJob { index, name: job.name.clone(), price: job.price, deadline: job.deadline })
            })
            .collect::<Result<_, DevnetError>>()?;
        let metadata = serde_json::json!({
            "name": spec.name,
            "description": "The demo blueprint of a Vouch devnet",
            "jobs": jobs.iter().zip(&spec.jobs).map(|(j, config)| serde_json::json!({
                "index": j.index, "name": j.name, "price": j.price.to_string(), "deadline": j.deadline,
                "verification": config.verification,
            })).collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_string_pretty(&metadata).unwrap_or_default();
        text.push('\n');
        let path = self.data_dir.join(BLUEPRINT_FILE);
        fs::write(&path, &text).map_err(DevnetError::io(&path))?;
        let metadata_uri = format!("file://{}", path.display());
        let metadata_hash = keccak256(text.as_bytes());

        let provider = provider_for(&self.url, developer.signer());
        let protocol = VouchProtocol::new(book.contracts.protocol, &provider);
        let on_chain_jobs: Vec<Job> = spec
            .jobs
            .iter()
            .map(|j| Job { price: j.price, deadline: j.deadline, verification: verification_code(j.verification) })
            .collect();
        let create = protocol.createBlueprint(
            metadata_uri.clone(),
            metadata_hash,
            on_chain_jobs,
            spec.policy.clone(),
            spec.arbiter,
            Address::ZERO,
        );
        transact("developer: VouchProtocol.createBlueprint", Contract::Protocol, create).await?;
        // Nothing else sends transactions during setup: the newest blueprint is ours.
        let id =
            protocol.blueprintCount().call().await.map_err(|e| DevnetError::step("VouchProtocol.blueprintCount", e))?;
        Ok(ManifestBlueprint { id, owner: developer.address(), metadata_uri, metadata_hash, jobs })
    }

    /// Requests a public service of the blueprint with every operator (as the customer), and has each approve it.
    async fn create_service(
        &self,
        book: &AddressBook,
        customer: &Account,
        operators: &[Operator],
        blueprint_id: u64,
    ) -> Result<ManifestService, DevnetError> {
        let provider = provider_for(&self.url, customer.signer());
        let latest = provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| DevnetError::step("eth_getBlockByNumber(latest)", e))?
            .ok_or_else(|| DevnetError::Config("anvil has no latest block".into()))?;
        let expiry = latest.header.timestamp.saturating_add(self.config.service_duration.as_secs());
        let addresses: Vec<Address> = operators.iter().map(Operator::address).collect();
        let protocol = VouchProtocol::new(book.contracts.protocol, &provider);
        let request = protocol.requestService(blueprint_id, addresses.clone(), expiry, true, Vec::new());
        transact("customer: VouchProtocol.requestService", Contract::Protocol, request).await?;
        let id =
            protocol.serviceCount().call().await.map_err(|e| DevnetError::step("VouchProtocol.serviceCount", e))?;
        // One after the other: the last approval activates the service (key set, stake snapshot) and costs more gas
        // than an estimate made before the other approvals landed.
        for operator in operators {
            let provider = provider_for(&self.url, operator.signer());
            let protocol = VouchProtocol::new(book.contracts.protocol, &provider);
            let step = format!("{}: VouchProtocol.approveService({id})", operator.account.name());
            transact(step, Contract::Protocol, protocol.approveService(id)).await?;
        }
        let service = protocol
            .getService(id)
            .call()
            .await
            .map_err(|e| DevnetError::step(format!("VouchProtocol.getService({id})"), e))?;
        if service.status != SERVICE_ACTIVE {
            return Err(DevnetError::Config(format!(
                "service {id} has status {} after every operator approved it, not Active ({SERVICE_ACTIVE})",
                service.status
            )));
        }
        Ok(ManifestService { id, owner: customer.address(), operators: addresses, expiry, public_access: true })
    }
}

/// The keys of a devnet, written to `keys/`.
struct Keys {
    deployer: Account,
    developer: Account,
    customer: Account,
    operators: Vec<(Account, BlsKey)>,
}

/// Writes every keystore of the devnet, spread over the available cores.
fn generate_keys(keys_dir: &Path, deployer: &PrivateKeySigner, operators: usize) -> Result<Keys, DevnetError> {
    enum Written {
        Account(Account),
        Operator(Account, Box<BlsKey>),
    }
    // Job i < 3: deployer, developer, customer; job 3 + j: operator j (transaction and BLS key).
    let jobs = 3 + operators;
    let job = |i: usize| -> Result<Written, DevnetError> {
        Ok(match i {
            0 => Written::Account(write_account(keys_dir, "deployer", deployer.clone())?),
            1 => Written::Account(write_account(keys_dir, "developer", random_signer()?)?),
            2 => Written::Account(write_account(keys_dir, "customer", random_signer()?)?),
            _ => {
                let name = format!("operator-{}", i - 3);
                let account = write_account(keys_dir, &name, random_signer()?)?;
                Written::Operator(account, Box::new(write_bls_key(keys_dir, &name)?))
            }
        })
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(jobs);
    let next = AtomicUsize::new(0);
    let mut written: Vec<(usize, Result<Written, DevnetError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= jobs {
                            return done;
                        }
                        done.push((i, job(i)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    written.sort_by_key(|(i, _)| *i);
    let mut accounts = Vec::with_capacity(3);
    let mut operator_keys = Vec::with_capacity(operators);
    for (_, result) in written {
        match result? {
            Written::Account(account) => accounts.push(account),
            Written::Operator(account, bls) => operator_keys.push((account, *bls)),
        }
    }
    let [deployer, developer, customer] = <[Account; 3]>::try_from(accounts)
        .map_err(|a| DevnetError::Config(format!("{} accounts written instead of 3", a.len())))?;
    Ok(Keys { deployer, developer, customer, operators: operator_keys })
}

/// Registers `operator`'s BLS key with its proof of possession, approves and registers it in staking with its
/// self-stake (the account holds ETH and the stake tokens already).
async fn register_operator(
    url: &Url,
    c: &ContractAddresses,
    registry_binding: &ChainBinding,
    operator: &Operator,
) -> Result<(), DevnetError> {
    let name = operator.account.name();
    let provider = provider_for(url, operator.signer());
    let pop = operator.bls_secret.prove_possession(registry_binding, operator.address());
    let registry = KeyRegistry::new(c.key_registry, &provider);
    let register_key =
        registry.registerKey(operator.bls_public.to_eip2537().into(), pop.signature().to_eip2537().into());
    transact(format!("{name}: KeyRegistry.registerKey"), Contract::KeyRegistry, register_key).await?;
    let stake = operator.self_stake;
    let token = StakeToken::new(c.stake_token, &provider);
    transact(format!("{name}: StakeToken.approve"), Contract::StakeToken, token.approve(c.staking, stake)).await?;
    let staking = VouchStaking::new(c.staking, &provider);
    let register = staking.registerOperator(operator.endpoint.clone(), operator.commission_bps, stake);
    transact(format!("{name}: VouchStaking.registerOperator"), Contract::Staking, register).await?;
    Ok(())
}

/// Waits for every task; returns their outputs, or the first error (re-raising a task's panic).
async fn join_all<T: 'static>(mut tasks: tokio::task::JoinSet<Result<T, DevnetError>>) -> Result<Vec<T>, DevnetError> {
    let mut outputs = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) {
            Ok(output) => outputs.push(output),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(outputs), Err)
}

impl Built {
    fn manifest(&self, rpc_url: &str, chain_id: u64, anvil_pid: u32) -> DevnetManifest {
        let account = |a: &Account| ManifestAccount {
            name: a.name().to_owned(),
            address: a.address(),
            keystore: Path::new(KEYS_DIR).join(format!("{}.eth.json", a.name())),
            password_file: Path::new(KEYS_DIR).join(format!("{}.eth.password", a.name())),
        };
        DevnetManifest {
            version: MANIFEST_VERSION,
            rpc_url: rpc_url.to_owned(),
            chain_id,
            anvil_pid,
            address_book: ADDRESS_BOOK_FILE.into(),
            anvil_log: ANVIL_LOG_FILE.into(),
            accounts: ManifestAccounts {
                deployer: account(&self.deployer),
                developer: account(&self.developer),
                customer: account(&self.customer),
            },
            operators: self
                .operators
                .iter()
                .map(|op| ManifestOperator {
                    index: op.index,
                    account: account(&op.account),
                    bls_public_key: op.bls_public.to_compressed().into(),
                    bls_keystore: Path::new(KEYS_DIR).join(format!("{}.bls.json", op.account.name())),
                    bls_password_file: Path::new(KEYS_DIR).join(format!("{}.bls.password", op.account.name())),
                    endpoint: op.endpoint.clone(),
                    commission_bps: op.commission_bps,
                    self_stake: op.self_stake,
                })
                .collect(),
            blueprint: self.blueprint.clone(),
            service: self.service.clone(),
        }
    }
}

/// Port of operator `index`'s placeholder endpoint: `port + 1 + index`, or below `port` if that would pass 65535.
fn endpoint_port(port: u16, index: usize) -> u32 {
    let above = u32::from(port) + 1 + index as u32;
    if above <= u32::from(u16::MAX) { above } else { u32::from(port).saturating_sub(1 + index as u32) }
}
