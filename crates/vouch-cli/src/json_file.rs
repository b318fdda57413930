//! Versioned JSON files (certificates, evidence): read, check `version` before anything else, then parse strictly
//! (unknown fields refused) with errors that name the file and the line and column.

use std::path::Path;

use eyre::{bail, eyre};
use serde::de::DeserializeOwned;

/// Reads `path` as a `what` (e.g. "certificate") of format `version`.
pub(crate) fn read_versioned<T: DeserializeOwned>(path: &Path, what: &str, version: u64) -> eyre::Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| eyre!("cannot read {what} {}: {e}", path.display()))?;
    parse_versioned(&text, what, version).map_err(|e| eyre!("{what} {}: {e}", path.display()))
}

/// Parses `text` as a `what` of format `version` (errors without the path).
pub(crate) fn parse_versioned<T: DeserializeOwned>(text: &str, what: &str, version: u64) -> eyre::Result<T> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| eyre!("not valid JSON: {e}"))?;
    match value.get("version") {
        Some(v) if v.as_u64() == Some(version) => {}
        Some(v) => bail!("has version {v}, this vouch reads {what} version {version}"),
        None if value.is_object() => bail!("has no `version` field (this vouch reads {what} version {version})"),
        None => bail!("is not a JSON object"),
    }
    serde_json::from_str(text).map_err(|e| eyre!("is not a valid {what}: {e}"))
}
