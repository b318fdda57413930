//! The operator node's settings for `vouch node …`: built-in defaults < the node config file (`--config node.toml`,
//! [`NodeConfig`]) < environment variables < flags.
//!
//! The node config is its own file, not the CLI's `config.toml`: of the global options, `--config` names it and
//! `--rpc` / `--addresses` (or `VOUCH_RPC` / `VOUCH_ADDRESSES`) override its `[chain]` keys; `--datadir`, `--from`
//! and `--password-file` belong to the CLI's own commands and are refused when given on a `vouch node` command
//! line, so nobody believes they moved the node's data or keys. The node's own overrides (`--data-dir`, `--listen`,
//! …) read `VOUCH_NODE_*` variables.

use std::{path::PathBuf, time::Duration};

use clap::parser::ValueSource;
use eyre::{bail, eyre};
use vouch_node::NodeConfig;

use crate::{
    GlobalArgs,
    config::{DEFAULT_TIMEOUT_SECS, Source},
    duration::parse_duration,
};

/// The node config, with every override applied, and where the settings that matter for errors came from.
#[derive(Debug, Clone)]
pub(crate) struct NodeSettings {
    /// The resolved configuration.
    pub(crate) config: NodeConfig,
    /// The file it was read from.
    pub(crate) file: PathBuf,
    /// Where `chain.rpc_url` came from.
    pub(crate) rpc_source: Source,
    /// Where `chain.address_book` came from.
    pub(crate) address_book_source: Source,
    /// How long to wait for the RPC (`--timeout`) in the commands that only read the chain.
    pub(crate) timeout: Duration,
}

/// Global options that mean nothing to the node, with what to use instead.
const NOT_FOR_THE_NODE: &[(&str, &str, &str)] = &[
    ("datadir", "--datadir", "the node's data directory is `data_dir` in its config file, or --data-dir"),
    ("from", "--from", "the node's transaction key is `[operator] tx_keystore` in its config file"),
    (
        "password_file",
        "--password-file",
        "the node's password files are `[operator] tx_password_file` and `bls_password_file` in its config file",
    ),
];

impl NodeSettings {
    /// Reads the file named by `--config` and applies the global overrides and `--data-dir`.
    pub(crate) fn resolve(
        global: &GlobalArgs,
        matches: &clap::ArgMatches,
        data_dir: Option<&PathBuf>,
    ) -> eyre::Result<Self> {
        let from_flag = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let origin = |id: &str, env: &'static str, flag: &'static str| {
            if from_flag(id) { Source::Flag(flag) } else { Source::Env(env) }
        };
        for (id, flag, instead) in NOT_FOR_THE_NODE {
            if from_flag(id) {
                bail!("{flag} does not apply to `vouch node`: {instead}");
            }
        }
        let Some(file) = global.config.clone() else {
            bail!(
                "`vouch node` needs the node's config file: pass --config <node.toml> (`vouch config default --node > \
                 node.toml` writes one with every key, to edit)"
            );
        };
        if !file.is_file() {
            bail!(
                "node config file {} does not exist ({})",
                file.display(),
                origin("config", "VOUCH_CONFIG", "--config")
            );
        }
        // Absolute, so that the paths resolved against its directory (data_dir, keystores) print unambiguously.
        let file = std::path::absolute(&file).unwrap_or(file);
        let mut config = NodeConfig::read(&file).map_err(|e| {
            let hint = if from_flag("config") {
                String::new()
            } else {
                " (named by VOUCH_CONFIG, which may be the CLI's config.toml: `vouch node` needs a node config, pass \
                 --config <node.toml>)"
                    .to_owned()
            };
            eyre!("{e}{hint}")
        })?;
        let file_source = Source::File(file.clone());
        let mut rpc_source = file_source.clone();
        if let Some(rpc) = &global.rpc {
            config.chain.rpc_url.clone_from(rpc);
            rpc_source = origin("rpc", "VOUCH_RPC", "--rpc");
        }
        let mut address_book_source = file_source;
        if let Some(book) = &global.addresses {
            config.chain.address_book.clone_from(book);
            address_book_source = origin("addresses", "VOUCH_ADDRESSES", "--addresses");
        }
        if let Some(dir) = data_dir {
            config.data_dir.clone_from(dir);
        }
        let timeout = match &global.timeout {
            Some(text) => parse_duration(text).map_err(|e| eyre!("--timeout: {e}"))?,
            None => DEFAULT_TIMEOUT_SECS,
        };
        if timeout == 0 {
            bail!("--timeout must be at least 1s");
        }
        Ok(Self { config, file, rpc_source, address_book_source, timeout: Duration::from_secs(timeout) })
    }
}

/// A TOML string literal (JSON's escapes are a subset of TOML's basic strings).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// A complete node config with every key, its default and what it means (`vouch config default --node`). Keys
/// without a default value (keystores, `announce`, `start_block`) are commented examples.
pub(crate) fn default_node_toml() -> String {
    let d = NodeConfig::default();
    format!(
        r#"# Vouch operator node configuration: `vouch node run|init|guard … --config node.toml`. See docs/operator-guide.md.
# Precedence: built-in defaults < this file < environment variables < command-line flags. Every key is optional;
# unknown keys are errors. Relative paths are relative to this file's directory.

# The node's state: guard.sqlite (the signing guard: every result this operator key signed, never delete it) and
# node.sqlite (chain checkpoint and calls). Created by `vouch node init` (VOUCH_NODE_DATA_DIR, --data-dir).
data_dir = {data_dir}

[chain]
# JSON-RPC URL of the chain (VOUCH_RPC, --rpc).
rpc_url = {rpc_url}
# The deployment's address book, as `vouch devnet up` or a deploy writes it (VOUCH_ADDRESSES, --addresses).
address_book = {address_book}

[operator]
# Keystores with password files (the password alone, on one line; keep both mode 0600). Passwords are never read
# from the command line or from this file.
# Transaction key (Web3 Secret Storage JSON, as `vouch keys new` writes keys/<name>.eth.json): its address is the
# operator; it sends certificates and endpoint updates, so it needs a little ETH for gas.
# tx_keystore = "keys/operator.eth.json"
# tx_password_file = "keys/operator.eth.password"
# Result-signing BLS key (EIP-2335 JSON, keys/<name>.bls.json), the one registered by `vouch operator register`.
# bls_keystore = "keys/operator.bls.json"
# bls_password_file = "keys/operator.bls.password"

[api]
# The HTTP API gateways and peers call (docs/node-api.md); port 0 = any free port (VOUCH_NODE_LISTEN, --listen).
listen = {api_listen}
# The URL gateways and peers reach this node at. When set and different from the endpoint registered on chain, the
# node publishes it at start (VouchStaking.setEndpoint, a transaction); "auto" = http://<listen address> once bound.
# Unset: the registered endpoint stays as it is (VOUCH_NODE_ANNOUNCE, --announce).
# announce = "https://node.example.com"
# Largest accepted request body, bytes.
max_body_bytes = {max_body_bytes}

[metrics]
# Prometheus /metrics and /health (200 ok, 206 catching up with the chain, 503 cannot sign or no chain contact).
enabled = {metrics_enabled}
# Loopback by default, so they are not public unless you choose (VOUCH_NODE_METRICS_LISTEN, --metrics-listen).
listen = {metrics_listen}

[watcher]
# On-chain calls (`callJob`) are read from the protocol's logs, from a durable checkpoint in node.sqlite.
# Blocks a call must be buried under before the node runs it (reorg safety).
confirmations = {confirmations}
# How often the chain is polled, milliseconds.
poll_interval_ms = {poll_interval_ms}
# Largest block range per eth_getLogs (lower it if the RPC provider refuses large ranges).
max_block_range = {max_block_range}
# First block to scan when node.sqlite has no checkpoint yet. Unset: the address book's deployment block.
# start_block = 0

[submitter]
# Certificates of on-chain calls: the operator in slot (call id mod operators) submits first; each next one in the
# rotation takes over after another turn of this many seconds.
turn_secs = {turn_secs}
# First retry delay after a failed submission, milliseconds (doubles up to max_backoff_ms).
backoff_ms = {backoff_ms}
max_backoff_ms = {max_backoff_ms}

[jobs]
# Longest a job may run, seconds (then it fails with `timeout`).
timeout_secs = {timeout_secs}
# Jobs running at once; more are refused with `overloaded`.
max_concurrent = {max_concurrent}

[log]
# One JSON object per line on stderr instead of text (VOUCH_NODE_LOG_JSON, --log-json).
json = {log_json}
# tracing filter in RUST_LOG syntax, e.g. "info,vouch_node=debug" (RUST_LOG, when set, wins).
filter = {log_filter}
"#,
        data_dir = quoted(&d.data_dir.display().to_string()),
        rpc_url = quoted(&d.chain.rpc_url),
        address_book = quoted(&d.chain.address_book.display().to_string()),
        api_listen = quoted(&d.api.listen.to_string()),
        max_body_bytes = d.api.max_body_bytes,
        metrics_enabled = d.metrics.enabled,
        metrics_listen = quoted(&d.metrics.listen.to_string()),
        confirmations = d.watcher.confirmations,
        poll_interval_ms = d.watcher.poll_interval_ms,
        max_block_range = d.watcher.max_block_range,
        turn_secs = d.submitter.turn_secs,
        backoff_ms = d.submitter.backoff_ms,
        max_backoff_ms = d.submitter.max_backoff_ms,
        timeout_secs = d.jobs.timeout_secs,
        max_concurrent = d.jobs.max_concurrent,
        log_json = d.log.json,
        log_filter = quoted(&d.log.filter),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_node_file_is_the_defaults_and_names_every_key() {
        let text = default_node_toml();
        let parsed: NodeConfig = toml::from_str(&text).expect("the default node config parses");
        assert_eq!(parsed, NodeConfig::default());
        // Every key vouch-node knows appears, set or as a commented example: a new key is not forgotten here.
        let mut full = NodeConfig::default();
        full.api.announce = Some("auto".into());
        full.watcher.start_block = Some(0);
        let known = serde_json::to_value(&full).expect("serialises");
        for (key, value) in known.as_object().expect("an object") {
            let keys: Vec<String> = match value {
                serde_json::Value::Object(section) => {
                    assert!(text.contains(&format!("\n[{key}]\n")), "section [{key}] missing");
                    section.keys().cloned().collect()
                }
                _ => vec![key.clone()],
            };
            for k in keys {
                assert!(
                    text.contains(&format!("\n{k} = ")) || text.contains(&format!("\n# {k} = ")),
                    "key {key}.{k} missing from the default node config"
                );
            }
        }
    }
}
