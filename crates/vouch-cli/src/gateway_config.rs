//! The gateway's settings for `vouch gateway run`: built-in defaults < the gateway config file (`--config
//! gateway.toml`, [`GatewayConfig`]) < environment variables < flags.
//!
//! The gateway config is its own file, not the CLI's `config.toml` (which is not read): of the global options,
//! `--config` names it and `--rpc` (or `VOUCH_RPC`) overrides its `rpc_url`; the address book (`--addresses`,
//! default `<datadir>/addresses.json`) and the submitter's transaction key (`--from`, `--password-file`, default the
//! only transaction key in `<datadir>/keys`) are the CLI's, because they live in its data directory. The gateway's
//! own overrides (`--listen`, `--data-dir`, …) read `VOUCH_GATEWAY_*` variables.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use eyre::{bail, eyre};
use vouch_gateway::GatewayConfig;

use crate::{
    GlobalArgs,
    config::{Setting, Settings, Source},
};

/// The gateway config with the global overrides applied, and the CLI settings the submitter key and the address
/// book come from.
#[derive(Debug, Clone)]
pub(crate) struct GatewaySettings {
    /// The resolved configuration (`data_dir` absolute or relative to the working directory).
    pub(crate) config: GatewayConfig,
    /// The file it was read from, if any.
    pub(crate) file: Option<PathBuf>,
    /// The CLI's settings (no `config.toml` read): data directory, keys, address book, timeout, and `rpc` = the
    /// gateway's `rpc_url` with its source.
    pub(crate) cli: Settings,
}

impl GatewaySettings {
    /// Reads the file named by `--config` (if any) and applies `--rpc`.
    pub(crate) fn resolve(global: &GlobalArgs, matches: &clap::ArgMatches) -> eyre::Result<Self> {
        let mut cli = Settings::resolve_without_file(global, matches)?;
        let from_flag = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let (mut config, file) = match &global.config {
            Some(file) => {
                if !file.is_file() {
                    let source = if from_flag("config") { "--config" } else { "VOUCH_CONFIG" };
                    bail!("gateway config file {} does not exist ({source})", file.display());
                }
                let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
                let mut config = read(&file, from_flag("config"))?;
                if config.data_dir.is_relative()
                    && let Some(dir) = file.parent()
                {
                    config.data_dir = dir.join(&config.data_dir);
                }
                (config, Some(file))
            }
            // No file: the defaults, with the request log in the data directory rather than the working directory.
            None => (GatewayConfig { data_dir: cli.datadir.value.join("gateway"), ..GatewayConfig::default() }, None),
        };
        let rpc_source = if global.rpc.is_some() {
            cli.rpc.source.clone()
        } else {
            file.as_ref().map_or(Source::Default, |f| Source::File(f.clone()))
        };
        if let Some(rpc) = &global.rpc {
            config.rpc_url.clone_from(rpc);
        }
        cli.rpc = Setting { value: config.rpc_url.clone(), source: rpc_source };
        Ok(Self { config, file, cli })
    }
}

fn read(file: &Path, named_by_flag: bool) -> eyre::Result<GatewayConfig> {
    let text =
        std::fs::read_to_string(file).map_err(|e| eyre!("cannot read gateway config file {}: {e}", file.display()))?;
    toml::from_str(&text).map_err(|e| {
        let hint = if named_by_flag {
            String::new()
        } else {
            " (named by VOUCH_CONFIG, which may be the CLI's config.toml: `vouch gateway` needs a gateway config, pass \
             --config <gateway.toml>)"
                .to_owned()
        };
        eyre!("gateway config file {} is invalid: {}{hint}", file.display(), e.to_string().trim_end())
    })
}

/// A TOML string literal (JSON's escapes are a subset of TOML's basic strings).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// A complete gateway config with every key, its default and what it means (`vouch config default --gateway`).
pub(crate) fn default_gateway_toml() -> String {
    let d = GatewayConfig::default();
    format!(
        r#"# Vouch gateway configuration: `vouch gateway run --config gateway.toml`. See docs/gateway.md.
# Precedence: built-in defaults < this file < environment variables < command-line flags. Every key is optional;
# unknown keys are errors. Relative paths are relative to this file's directory.
# Not in this file: the deployment's address book (--addresses, default <datadir>/addresses.json) and the submitter,
# the transaction key that sends the settlement transactions and pays their gas (--from, --password-file; default
# the only transaction key in <datadir>/keys).

# Where the HTTP API listens; port 0 = any free port (VOUCH_GATEWAY_LISTEN, --listen).
listen = {listen}
# The base URL clients reach the gateway at, used in every 402's `resource.url` (behind a proxy or TLS terminator).
# Unset: http://<listen address> (VOUCH_GATEWAY_PUBLIC_URL, --public-url).
# public_url = "https://gateway.example.com"
# JSON-RPC URL of the chain (VOUCH_RPC, --rpc).
rpc_url = {rpc_url}
# The request log, gateway.sqlite: every paid request is recorded here before it is fanned out, and settled from
# here; keep it across restarts (VOUCH_GATEWAY_DATA_DIR, --data-dir).
data_dir = {data_dir}
# Largest request body (a job's inputs), bytes; a larger one is refused with 413 body_too_large.
max_body_bytes = {max_body_bytes}
# Seconds each operator has to answer a request.
operator_timeout_secs = {operator_timeout_secs}
# Seconds added to a job's deadline to make the 402's maxTimeoutSeconds: the payer's authorization must stay valid
# until its settlement batch is mined.
settlement_margin_secs = {settlement_margin_secs}
# Most calls settled in one transaction (VouchProtocol.settlePaidBatch).
max_batch = {max_batch}
# Longest a paid, answered call waits for its settlement transaction, milliseconds.
max_batch_delay_ms = {max_batch_delay_ms}
# How often the chain's events are read, milliseconds (at least 50): a terminated service, a new endpoint or new
# blueprint metadata is seen within about one interval (cached chain data otherwise lives at most 60 s).
events_poll_ms = {events_poll_ms}

# Models served on the OpenAI-compatible routes POST /v1/embeddings and POST /v1/chat/completions, chosen by the
# request's `model`: one [[openai]] table each, naming the service job that takes the OpenAI request body and
# returns the OpenAI response object (paid with x402 like any job). None by default.
# [[openai]]
# model = "text-embedding-3-small"
# endpoint = "embeddings"     # or "chat_completions"
# service = 1
# job = 0
"#,
        listen = quoted(&d.listen.to_string()),
        rpc_url = quoted(&d.rpc_url),
        data_dir = quoted(&d.data_dir.display().to_string()),
        max_body_bytes = d.max_body_bytes,
        operator_timeout_secs = d.operator_timeout_secs,
        settlement_margin_secs = d.settlement_margin_secs,
        max_batch = d.max_batch,
        max_batch_delay_ms = d.max_batch_delay_ms,
        events_poll_ms = d.events_poll_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateway_file_is_the_defaults_and_names_every_key() {
        let text = default_gateway_toml();
        let parsed: GatewayConfig = toml::from_str(&text).expect("the default gateway config parses");
        assert_eq!(parsed, GatewayConfig::default());
        // Every key vouch-gateway knows appears, set or as a commented example: a new key is not forgotten here.
        let full = GatewayConfig { public_url: Some("https://gateway.example.com".into()), ..GatewayConfig::default() };
        let known = serde_json::to_value(&full).expect("serialises");
        for (key, value) in known.as_object().expect("an object") {
            let named = if value.is_array() {
                text.contains(&format!("\n[[{key}]]\n")) || text.contains(&format!("\n# [[{key}]]\n"))
            } else {
                text.contains(&format!("\n{key} = ")) || text.contains(&format!("\n# {key} = "))
            };
            assert!(named, "key {key} missing from the default gateway config");
        }
        // The commented [[openai]] example is a valid table.
        let example: String = text
            .lines()
            .skip_while(|l| *l != "# [[openai]]")
            .map(|l| l.trim_start_matches("# ").split(" #").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let with_model: GatewayConfig = toml::from_str(&example).expect("the [[openai]] example parses");
        assert_eq!(with_model.openai.len(), 1);
        let err = toml::from_str::<GatewayConfig>("listen_on = \"127.0.0.1:1\"").expect_err("typo");
        assert!(err.to_string().contains("unknown field `listen_on`"), "{err}");
    }
}
