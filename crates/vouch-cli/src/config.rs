//! Where every setting comes from: built-in defaults < the TOML file (`<datadir>/config.toml` or `--config`) <
//! environment variables (`VOUCH_*`) < command-line flags.
//!
//! The data directory itself is chosen before the file is read (flag, `VOUCH_DATADIR`, else `~/.vouch`), because
//! the file lives in it. Relative paths in the file are relative to the file's directory.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use eyre::{WrapErr, bail};
use serde::Deserialize;

use crate::{GlobalArgs, duration::parse_duration};

/// The JSON-RPC endpoint when nothing else names one: a local devnet.
pub(crate) const DEFAULT_RPC: &str = "http://127.0.0.1:8545";
/// Seconds to wait for an RPC answer or a receipt when nothing else says.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Built in.
    Default,
    /// The TOML file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(var) => write!(f, "env {var}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    rpc: Option<String>,
    addresses: Option<PathBuf>,
    from: Option<String>,
    password_file: Option<PathBuf>,
    timeout: Option<DurationValue>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(u64),
    Text(String),
}

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Keys, the address book and the config file live here.
    pub(crate) datadir: Setting<PathBuf>,
    /// The config file that was read, if any.
    pub(crate) config_file: Option<PathBuf>,
    /// JSON-RPC endpoint.
    pub(crate) rpc: Setting<String>,
    /// The deployment's address book.
    pub(crate) addresses: Setting<PathBuf>,
    /// The transaction key (a name in `<datadir>/keys` or a keystore path), if chosen.
    pub(crate) from: Option<Setting<String>>,
    /// Password file of the transaction key, if given.
    pub(crate) password_file: Option<Setting<PathBuf>>,
    /// Seconds to wait for an RPC answer or a receipt.
    pub(crate) timeout: Setting<u64>,
}

impl Settings {
    /// Resolves the settings from the parsed flags (`matches` tells flags from environment variables).
    pub(crate) fn resolve(args: &GlobalArgs, matches: &clap::ArgMatches) -> eyre::Result<Self> {
        Self::resolve_with(args, matches, true)
    }

    /// The settings from flags, environment variables and defaults only, for commands whose `--config` names their
    /// own file (`vouch gateway run`): no CLI config file is read.
    pub(crate) fn resolve_without_file(args: &GlobalArgs, matches: &clap::ArgMatches) -> eyre::Result<Self> {
        Self::resolve_with(args, matches, false)
    }

    fn resolve_with(args: &GlobalArgs, matches: &clap::ArgMatches, read_file: bool) -> eyre::Result<Self> {
        let origin = |id: &str, env: &'static str, flag: &'static str| match matches.value_source(id) {
            Some(ValueSource::EnvVariable) => Source::Env(env),
            _ => Source::Flag(flag),
        };

        let datadir = match &args.datadir {
            Some(dir) => Setting { value: dir.clone(), source: origin("datadir", "VOUCH_DATADIR", "--datadir") },
            None => match std::env::home_dir() {
                Some(home) => Setting { value: home.join(".vouch"), source: Source::Default },
                None => bail!("cannot find the home directory for the default data directory ~/.vouch: pass --datadir"),
            },
        };

        let (file, config_file) = match &args.config {
            _ if !read_file => (ConfigFile::default(), None),
            Some(path) => {
                if !path.is_file() {
                    bail!(
                        "config file {} does not exist ({})",
                        path.display(),
                        origin("config", "VOUCH_CONFIG", "--config")
                    );
                }
                (read_config(path)?, Some(path.clone()))
            }
            None => {
                let path = datadir.value.join("config.toml");
                if path.is_file() { (read_config(&path)?, Some(path)) } else { (ConfigFile::default(), None) }
            }
        };
        let file_dir = config_file.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let from_file = |v: PathBuf| if v.is_absolute() { v } else { file_dir.join(v) };
        let file_source = || Source::File(config_file.clone().unwrap_or_default());

        let rpc = match (&args.rpc, file.rpc) {
            (Some(url), _) => Setting { value: url.clone(), source: origin("rpc", "VOUCH_RPC", "--rpc") },
            (None, Some(url)) => Setting { value: url, source: file_source() },
            (None, None) => Setting { value: DEFAULT_RPC.to_owned(), source: Source::Default },
        };
        let addresses = match (&args.addresses, file.addresses) {
            (Some(path), _) => {
                Setting { value: path.clone(), source: origin("addresses", "VOUCH_ADDRESSES", "--addresses") }
            }
            (None, Some(path)) => Setting { value: from_file(path), source: file_source() },
            (None, None) => Setting { value: datadir.value.join("addresses.json"), source: Source::Default },
        };
        let from = match (&args.from, file.from) {
            (Some(key), _) => Some(Setting { value: key.clone(), source: origin("from", "VOUCH_FROM", "--from") }),
            (None, Some(key)) => Some(Setting { value: key, source: file_source() }),
            (None, None) => None,
        };
        let password_file = match (&args.password_file, file.password_file) {
            (Some(path), _) => Some(Setting {
                value: path.clone(),
                source: origin("password_file", "VOUCH_PASSWORD_FILE", "--password-file"),
            }),
            (None, Some(path)) => Some(Setting { value: from_file(path), source: file_source() }),
            (None, None) => None,
        };
        let timeout = match (&args.timeout, file.timeout) {
            (Some(text), _) => Setting {
                value: parse_duration(text).map_err(|e| eyre::eyre!("--timeout: {e}"))?,
                source: origin("timeout", "VOUCH_TIMEOUT", "--timeout"),
            },
            (None, Some(value)) => {
                let seconds = match value {
                    DurationValue::Seconds(s) => s,
                    DurationValue::Text(t) => parse_duration(&t).map_err(|e| {
                        eyre::eyre!("{}: timeout: {e}", config_file.as_deref().unwrap_or(Path::new("")).display())
                    })?,
                };
                Setting { value: seconds, source: file_source() }
            }
            (None, None) => Setting { value: DEFAULT_TIMEOUT_SECS, source: Source::Default },
        };
        if timeout.value == 0 {
            bail!("timeout ({}) must be at least 1s", timeout.source);
        }
        Ok(Self { datadir, config_file, rpc, addresses, from, password_file, timeout })
    }

    /// `<datadir>/keys`.
    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.datadir.value.join("keys")
    }
}

fn read_config(path: &Path) -> eyre::Result<ConfigFile> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| eyre::eyre!("config file {} is invalid: {}", path.display(), e.to_string().trim_end()))
}

/// A complete config file with every key, its default and what it means (`vouch config default`).
pub(crate) fn default_config_toml() -> String {
    format!(
        r#"# vouch CLI configuration: <datadir>/config.toml, or the file named by --config / VOUCH_CONFIG.
# Precedence: built-in defaults < this file < environment variables (VOUCH_*) < command-line flags.
# Relative paths are relative to this file's directory.

# JSON-RPC endpoint of the chain (VOUCH_RPC, --rpc).
rpc = "{DEFAULT_RPC}"

# The deployment's address book, as `vouch devnet up` or vouch-contracts' deploy writes it (VOUCH_ADDRESSES,
# --addresses).
addresses = "addresses.json"

# The transaction key that signs and pays for transactions: a key name in <datadir>/keys or a keystore path
# (VOUCH_FROM, --from). Unset: the only transaction key in <datadir>/keys.
# from = "operator"

# Password file of that key (VOUCH_PASSWORD_FILE, --password-file). Unset: the `.password` file beside the keystore.
# password_file = "keys/operator.eth.password"

# How long to wait for an RPC answer or a transaction receipt (VOUCH_TIMEOUT, --timeout).
timeout = "{DEFAULT_TIMEOUT_SECS}s"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_parses_and_refuses_unknown_keys() {
        let file: ConfigFile = toml::from_str(&default_config_toml()).expect("the default config parses");
        assert_eq!(file.rpc.as_deref(), Some(DEFAULT_RPC));
        let err = toml::from_str::<ConfigFile>("rcp = \"x\"").expect_err("typo");
        assert!(err.to_string().contains("unknown field `rcp`"), "{err}");
    }
}
