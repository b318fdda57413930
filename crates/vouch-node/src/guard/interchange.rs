//! The versioned JSON interchange format of signing records (see the [module docs](super) for the schema).

use super::error::{GuardError, InterchangeError};
use alloy_primitives::{Address, B256, Bytes, FixedBytes};
use serde::{Deserialize, Serialize};
use std::{io::Write, path::Path};
use vouch_primitives::{CallId, ServiceId};

/// The interchange version this node writes and reads.
pub const INTERCHANGE_VERSION: u32 = 1;

/// Largest interchange file [`Interchange::read_file`] reads (1 GiB, about 3 million records).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// All the records of one signing database, bound to its chain, protocol contract and BLS key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Interchange {
    /// Format version, [`INTERCHANGE_VERSION`].
    pub version: u32,
    /// EIP-155 chain id the signatures are bound to.
    pub chain_id: u64,
    /// Protocol contract the signatures are bound to.
    pub protocol: Address,
    /// The operator's BLS public key, 48-byte compressed.
    pub public_key: FixedBytes<48>,
    /// The records, in `(serviceId, callId)` order when exported.
    pub records: Vec<InterchangeRecord>,
    /// The output commitments (tolerant jobs), in `(serviceId, callId)` order when exported. Omitted when empty, so
    /// a document without commitments is the one earlier nodes write and read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commitments: Vec<InterchangeCommitment>,
}

/// One signed output commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InterchangeCommitment {
    /// The service.
    pub service_id: ServiceId,
    /// The call (`0x` hex when written; hex or decimal string when read).
    pub call_id: CallId,
    /// Inputs hash of the commitment.
    pub inputs_hash: B256,
    /// `keccak256(output)`.
    pub output_hash: B256,
    /// The committed output, hex.
    pub output: Bytes,
    /// The signature over the commitment digest, 96-byte compressed.
    pub signature: FixedBytes<96>,
    /// When it was signed, Unix seconds.
    pub signed_at: u64,
}

/// One signed result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InterchangeRecord {
    /// The service.
    pub service_id: ServiceId,
    /// The call (`0x` hex when written; hex or decimal string when read).
    pub call_id: CallId,
    /// Inputs hash of the signed result.
    pub inputs_hash: B256,
    /// Result hash that was signed.
    pub result_hash: B256,
    /// The signature, 96-byte compressed.
    pub signature: FixedBytes<96>,
    /// When it was signed, Unix seconds.
    pub signed_at: u64,
}

impl Interchange {
    /// Parses a document. The version is read first, so a document of another version fails as such rather than
    /// on a field this version does not know; then unknown fields are rejected.
    pub fn from_json(bytes: &[u8]) -> Result<Self, InterchangeError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let Versioned { version } = serde_json::from_slice(bytes)?;
        if version != INTERCHANGE_VERSION {
            return Err(InterchangeError::UnsupportedVersion { found: version, supported: INTERCHANGE_VERSION });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The document as pretty-printed JSON.
    pub fn to_json_pretty(&self) -> Result<String, InterchangeError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a document from a file.
    pub fn read_file(path: &Path) -> Result<Self, GuardError> {
        let io = |action: &'static str| move |source| GuardError::Io { path: path.to_path_buf(), action, source };
        let len = std::fs::metadata(path).map_err(io("reading the interchange file"))?.len();
        if len > MAX_FILE_BYTES {
            return Err(GuardError::Io {
                path: path.to_path_buf(),
                action: "reading the interchange file",
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("larger than {MAX_FILE_BYTES} bytes"),
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io("reading the interchange file"))?;
        Self::from_json(&bytes)
            .map_err(|source| GuardError::InterchangeFile { path: path.to_path_buf(), source: Box::new(source) })
    }

    /// Writes the document to a new file (an existing file is never overwritten) and syncs it to disk.
    pub fn write_new_file(&self, path: &Path) -> Result<(), GuardError> {
        let io = |action: &'static str| move |source| GuardError::Io { path: path.to_path_buf(), action, source };
        let json = self
            .to_json_pretty()
            .map_err(|source| GuardError::InterchangeFile { path: path.to_path_buf(), source: Box::new(source) })?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io("creating the export file"))?;
        file.write_all(json.as_bytes()).map_err(io("writing the export file"))?;
        file.write_all(b"\n").map_err(io("writing the export file"))?;
        file.sync_all().map_err(io("syncing the export file"))
    }
}
