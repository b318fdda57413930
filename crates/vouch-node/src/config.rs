//! `node.toml`: the operator node's configuration. Every field has a default (`vouch config default --node` prints
//! them all); precedence is defaults < file < environment (`VOUCH_RPC`, `VOUCH_ADDRESSES`, `VOUCH_NODE_*`, applied by the CLI) < flags.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::NodeError;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node keeps its state: `guard.sqlite` (the signing guard) and `node.sqlite` (chain checkpoint and calls).
    pub data_dir: PathBuf,
    /// The chain and the deployment.
    pub chain: ChainConfig,
    /// This operator's keys.
    pub operator: OperatorConfig,
    /// The HTTP API gateways and peers call.
    pub api: ApiConfig,
    /// Prometheus metrics and health.
    pub metrics: MetricsConfig,
    /// How on-chain calls are found.
    pub watcher: WatcherSettings,
    /// Certificate submission for on-chain calls.
    pub submitter: SubmitterConfig,
    /// Job execution limits.
    pub jobs: JobsConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("vouch-node"),
            chain: ChainConfig::default(),
            operator: OperatorConfig::default(),
            api: ApiConfig::default(),
            metrics: MetricsConfig::default(),
            watcher: WatcherSettings::default(),
            submitter: SubmitterConfig::default(),
            jobs: JobsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// The chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC URL.
    pub rpc_url: String,
    /// The deployment's address book (`addresses.json`, written by `vouch devnet up` or a deploy).
    pub address_book: PathBuf,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self { rpc_url: "http://127.0.0.1:8545".into(), address_book: PathBuf::from("addresses.json") }
    }
}

/// Keystores and password files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorConfig {
    /// Transaction key (Web3 Secret Storage JSON): sends certificates and endpoint updates.
    pub tx_keystore: PathBuf,
    /// Its password file.
    pub tx_password_file: PathBuf,
    /// Result-signing BLS key (EIP-2335 JSON).
    pub bls_keystore: PathBuf,
    /// Its password file.
    pub bls_password_file: PathBuf,
}

/// The HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address (port 0 = any free port).
    pub listen: SocketAddr,
    /// The URL peers and gateways reach this node at. When set and different from the endpoint registered on chain,
    /// the node updates it (`VouchStaking.setEndpoint`) at start. `"auto"` = `http://<listen address>` after binding.
    pub announce: Option<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9750)), announce: None, max_body_bytes: 1 << 20 }
    }
}

/// Metrics and health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` and `/health`.
    pub enabled: bool,
    /// Listen address: loopback by default, so metrics are not public unless asked.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9751)) }
    }
}

/// The chain watcher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatcherSettings {
    /// Blocks a call must be buried under before it runs (reorg safety).
    pub confirmations: u64,
    /// Polling interval, milliseconds.
    pub poll_interval_ms: u64,
    /// Largest block range per `eth_getLogs`.
    pub max_block_range: u64,
    /// First block to scan when there is no checkpoint yet (default: the address book's deployment block, else 0).
    pub start_block: Option<u64>,
}

impl Default for WatcherSettings {
    fn default() -> Self {
        Self { confirmations: 2, poll_interval_ms: 1000, max_block_range: 1000, start_block: None }
    }
}

impl WatcherSettings {
    /// The polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }
}

/// Certificate submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmitterConfig {
    /// Seconds each operator in the rotation has before the next one takes over.
    pub turn_secs: u64,
    /// First retry delay after a failed submission, milliseconds (doubles up to `max_backoff_ms`).
    pub backoff_ms: u64,
    /// Largest retry delay, milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for SubmitterConfig {
    fn default() -> Self {
        Self { turn_secs: 10, backoff_ms: 500, max_backoff_ms: 30_000 }
    }
}

impl SubmitterConfig {
    /// One operator's turn.
    pub fn turn(&self) -> Duration {
        Duration::from_secs(self.turn_secs.max(1))
    }
}

/// Job execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Longest a job may run, seconds (then it fails with `timeout`).
    pub timeout_secs: u64,
    /// Jobs running at once; more are refused with `overloaded`.
    pub max_concurrent: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { timeout_secs: 60, max_concurrent: 256 }
    }
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// `tracing` filter (`RUST_LOG` syntax).
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { json: false, filter: "info".into() }
    }
}

impl NodeConfig {
    /// Reads a TOML file (missing fields take their defaults; unknown fields are errors). Relative paths in it are
    /// resolved against the file's directory.
    pub fn read(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NodeError::Config { path: path.to_owned(), reason: e.to_string() })?;
        let mut config: Self =
            toml::from_str(&text).map_err(|e| NodeError::Config { path: path.to_owned(), reason: e.to_string() })?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    /// The full default file, commented by its field docs in `docs/operator-guide.md`.
    pub fn default_toml() -> String {
        toml::to_string(&Self::default()).unwrap_or_default()
    }

    fn resolve_paths(&mut self, dir: &Path) {
        for p in [
            &mut self.data_dir,
            &mut self.chain.address_book,
            &mut self.operator.tx_keystore,
            &mut self.operator.tx_password_file,
            &mut self.operator.bls_keystore,
            &mut self.operator.bls_password_file,
        ] {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    /// The signing guard's database.
    pub fn guard_path(&self) -> PathBuf {
        self.data_dir.join("guard.sqlite")
    }

    /// The chain state database.
    pub fn state_path(&self) -> PathBuf {
        self.data_dir.join("node.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_round_trips_and_unknown_fields_are_refused() {
        let text = NodeConfig::default_toml();
        let back: NodeConfig = toml::from_str(&text).expect("default parses");
        assert_eq!(back, NodeConfig::default());
        let err = toml::from_str::<NodeConfig>("[api]\nlisten_on = \"x\"\n").expect_err("unknown field");
        assert!(err.to_string().contains("listen_on"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "data_dir = \"state\"\n[operator]\nbls_keystore = \"/abs/k.json\"\n").expect("write");
        let c = NodeConfig::read(&path).expect("reads");
        assert_eq!(c.data_dir, dir.path().join("state"));
        assert_eq!(c.operator.bls_keystore, PathBuf::from("/abs/k.json"));
        assert!(c.metrics.listen.ip().is_loopback());
    }
}
