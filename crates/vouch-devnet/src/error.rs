//! [`DevnetError`]: why a devnet could not start, stop, or be found.

use std::{io, path::PathBuf, time::Duration};

use alloy::{primitives::B256, signers::local::LocalSignerError};
use vouch_contracts::{AddressBookError, CallError, DeployError};
use vouch_crypto::{CryptoError, KeystoreError};

/// Why a devnet could not start, stop, or be read back.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// No anvil binary on `PATH` nor where `./scripts/setup.sh` installs it.
    #[error(
        "anvil not found on PATH nor at {}: run ./scripts/setup.sh in the Vouch repository (it installs Foundry's \
         anvil under node_modules/.bin), or `source scripts/env.sh` to put it on PATH",
        repo_anvil.display()
    )]
    AnvilNotFound {
        /// Where `./scripts/setup.sh` installs anvil in this repository.
        repo_anvil: PathBuf,
    },
    /// The anvil binary could not be started.
    #[error("cannot start {}: {source}", path.display())]
    AnvilSpawn {
        /// The binary.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// anvil exited before it listened (a port in use, an unknown flag, …).
    #[error("anvil exited ({status}) before it was ready; its last output:\n{output}")]
    AnvilExited {
        /// Its exit status.
        status: String,
        /// Its last lines of output.
        output: String,
    },
    /// anvil did not listen, or did not answer JSON-RPC, in time.
    #[error("anvil was not ready within {} s; its last output:\n{output}", waited.as_secs())]
    AnvilTimeout {
        /// How long we waited.
        waited: Duration,
        /// Its last lines of output.
        output: String,
    },
    /// anvil died while the devnet was running.
    #[error("anvil (pid {pid}) exited unexpectedly ({status}); its last output:\n{output}")]
    AnvilDied {
        /// Its process id.
        pid: u32,
        /// Its exit status.
        status: String,
        /// Its last lines of output.
        output: String,
    },
    /// The configuration cannot describe a devnet.
    #[error("invalid devnet config: {0}")]
    Config(String),
    /// The data directory already holds files (a devnet never overwrites keys).
    #[error(
        "data directory {} is not empty: choose a new directory or remove this one (a devnet never overwrites keys)",
        .0.display()
    )]
    DataDirNotEmpty(PathBuf),
    /// A file or directory could not be created, read, written or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An EIP-2335 (BLS) keystore or a password file could not be written or read.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A transaction keystore (Web3 Secret Storage v3) could not be written or decrypted.
    #[error("transaction keystore {}: {source}", path.display())]
    EthKeystore {
        /// The keystore.
        path: PathBuf,
        /// What went wrong.
        source: Box<LocalSignerError>,
    },
    /// A transaction keystore is not what the devnet wrote.
    #[error("transaction keystore {}: {reason}", path.display())]
    EthKeystoreFormat {
        /// The keystore.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key could not be generated or parsed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// System randomness is unavailable.
    #[error("system randomness unavailable: {0}")]
    Randomness(String),
    /// The protocol could not be deployed.
    #[error("deploying the protocol: {0}")]
    Deploy(Box<DeployError>),
    /// A setup request failed or a contract refused it (the revert decoded).
    #[error("{step}: {source}")]
    Step {
        /// What the devnet was doing, e.g. `operator-1: VouchStaking.registerOperator`.
        step: String,
        /// What went wrong.
        source: Box<CallError>,
    },
    /// A setup transaction was mined but reverted.
    #[error("{step}: transaction {tx_hash} reverted")]
    Reverted {
        /// What the devnet was doing.
        step: String,
        /// The transaction.
        tx_hash: B256,
    },
    /// The address book could not be written, read or confirmed against the chain.
    #[error(transparent)]
    AddressBook(Box<AddressBookError>),
    /// There is no `devnet.json` in the data directory.
    #[error("{} does not exist: start a devnet with this data directory first", path.display())]
    ManifestNotFound {
        /// The path.
        path: PathBuf,
    },
    /// `devnet.json` is not JSON or not a devnet manifest.
    #[error("devnet manifest {} is invalid: {source}", path.display())]
    ManifestJson {
        /// The path.
        path: PathBuf,
        /// The parse error, with line and column.
        source: serde_json::Error,
    },
    /// `devnet.json` is of another format version.
    #[error("devnet manifest {} has version {found}, this build reads version {}", path.display(), crate::MANIFEST_VERSION)]
    ManifestVersion {
        /// The path.
        path: PathBuf,
        /// The `version` found (JSON text; `none` when missing).
        found: String,
    },
    /// The manifest's RPC URL does not parse.
    #[error("invalid RPC URL {url:?}: {reason}")]
    RpcUrl {
        /// The URL.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The devnet's RPC endpoint does not answer.
    #[error(
        "the devnet at {rpc_url} does not answer (anvil pid {pid} was started for it; is it still running?): {source}"
    )]
    NotRunning {
        /// The RPC URL of the manifest.
        rpc_url: String,
        /// The anvil pid of the manifest.
        pid: u32,
        /// The transport error.
        source: Box<CallError>,
    },
    /// The RPC endpoint serves another chain than the manifest says.
    #[error("{rpc_url} serves chain {actual}, but the devnet manifest says chain {expected}")]
    ChainMismatch {
        /// The RPC URL.
        rpc_url: String,
        /// Chain id in the manifest.
        expected: u64,
        /// Chain id the endpoint reports.
        actual: u64,
    },
    /// The RPC endpoint serves a chain with this deployment's addresses, but not this devnet (e.g. a later devnet on
    /// the same port: deployments are deterministic, keys are not).
    #[error("{rpc_url} is not the devnet of this data directory: {reason}")]
    OtherDevnet {
        /// The RPC URL.
        rpc_url: String,
        /// What differs.
        reason: String,
    },
    /// anvil could not be killed or reaped.
    #[error("stopping anvil (pid {pid}): {source}")]
    AnvilKill {
        /// Its process id.
        pid: u32,
        /// The OS error.
        source: io::Error,
    },
    /// Waiting for Ctrl-C or SIGTERM failed.
    #[error("cannot listen for Ctrl-C / SIGTERM: {0}")]
    Signal(io::Error),
}

impl From<DeployError> for DevnetError {
    fn from(err: DeployError) -> Self {
        Self::Deploy(Box::new(err))
    }
}

impl From<AddressBookError> for DevnetError {
    fn from(err: AddressBookError) -> Self {
        Self::AddressBook(Box::new(err))
    }
}

impl DevnetError {
    /// A failed step of the setup.
    pub(crate) fn step(step: impl Into<String>, source: impl Into<CallError>) -> Self {
        Self::Step { step: step.into(), source: Box::new(source.into()) }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
