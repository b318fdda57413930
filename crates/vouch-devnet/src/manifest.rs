//! `devnet.json`: what a running devnet is made of, for tools in other processes (the CLI, `status`). It names files
//! and public data only; private keys stay in the encrypted keystores it points to. Paths are relative to the data
//! directory, so the directory can be moved or mounted elsewhere.

use std::{
    fmt::Display,
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
    str::FromStr,
};

use alloy::{
    primitives::{Address, B256, FixedBytes, U256},
    signers::local::PrivateKeySigner,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vouch_crypto::{PublicKey, SecretKey};

use crate::{
    DevnetError,
    keys::{read_account, read_bls_key},
};

/// The `devnet.json` format this build reads and writes.
pub const MANIFEST_VERSION: u32 = 1;
/// File name of the manifest in the data directory.
pub const MANIFEST_FILE: &str = "devnet.json";
/// File name of the address book in the data directory.
pub const ADDRESS_BOOK_FILE: &str = "addresses.json";
/// File name of the blueprint's metadata document in the data directory.
pub const BLUEPRINT_FILE: &str = "blueprint.json";
/// File name of anvil's output in the data directory.
pub const ANVIL_LOG_FILE: &str = "anvil.log";
/// Directory of the keystores and password files in the data directory.
pub const KEYS_DIR: &str = "keys";

/// The contents of `devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevnetManifest {
    /// Format version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// anvil's JSON-RPC endpoint, e.g. `http://127.0.0.1:37411`.
    pub rpc_url: String,
    /// The chain id it serves.
    pub chain_id: u64,
    /// anvil's process id.
    pub anvil_pid: u32,
    /// The address book (relative to the data directory): `addresses.json`.
    pub address_book: PathBuf,
    /// anvil's output (relative to the data directory): `anvil.log`.
    pub anvil_log: PathBuf,
    /// The accounts that are not operators.
    pub accounts: ManifestAccounts,
    /// The operators, in service slot order (operator `i` is bit `i` of a signer bitmap).
    pub operators: Vec<ManifestOperator>,
    /// The demo blueprint.
    pub blueprint: ManifestBlueprint,
    /// The service of the blueprint run by every operator.
    pub service: ManifestService,
}

/// The accounts that are not operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestAccounts {
    /// Deployed the protocol; owns (mints) the dev tokens; the protocol's treasury. anvil's development account 0.
    pub deployer: ManifestAccount,
    /// Owns the blueprint and earns its developer fee.
    pub developer: ManifestAccount,
    /// Owns the service and pays for calls (holds Vouch USD).
    pub customer: ManifestAccount,
}

/// A transaction account and its keystore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestAccount {
    /// The key name: the keystore is `keys/<name>.eth.json` (the CLI's `--from <name>`).
    pub name: String,
    /// The account's address.
    pub address: Address,
    /// Encrypted JSON keystore (relative to the data directory).
    pub keystore: PathBuf,
    /// Its password file (relative to the data directory).
    pub password_file: PathBuf,
}

impl ManifestAccount {
    /// Decrypts the account's keystore (paths resolved against `data_dir`) and checks its address.
    pub fn signer(&self, data_dir: &Path) -> Result<PrivateKeySigner, DevnetError> {
        let keystore = data_dir.join(&self.keystore);
        let signer = read_account(&keystore, &data_dir.join(&self.password_file))?;
        if signer.address() != self.address {
            return Err(DevnetError::EthKeystoreFormat {
                path: keystore,
                reason: format!("holds the key of {}, but devnet.json says {}", signer.address(), self.address),
            });
        }
        Ok(signer)
    }
}

/// An operator: its transaction account, BLS key, endpoint and stake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestOperator {
    /// Slot in the service's operator set (bit of a signer bitmap).
    pub index: usize,
    /// Its transaction account (`operator-<index>`).
    pub account: ManifestAccount,
    /// Its BLS public key, 48-byte compressed (as registered in `KeyRegistry`, where it is stored EIP-2537-encoded).
    pub bls_public_key: FixedBytes<48>,
    /// Its EIP-2335 keystore (relative to the data directory).
    pub bls_keystore: PathBuf,
    /// Its password file (relative to the data directory).
    pub bls_password_file: PathBuf,
    /// The endpoint registered in `VouchStaking`: `http://127.0.0.1:<rpc port + 1 + index>`, a placeholder until a
    /// node serves it.
    pub endpoint: String,
    /// Its commission in basis points.
    pub commission_bps: u16,
    /// Its self-stake at start, in stake-token base units (decimal string).
    #[serde(with = "decimal")]
    pub self_stake: U256,
}

impl ManifestOperator {
    /// The BLS public key, validated.
    pub fn public_key(&self) -> Result<PublicKey, DevnetError> {
        Ok(PublicKey::from_compressed(self.bls_public_key.as_slice())?)
    }

    /// Decrypts the operator's BLS keystore (paths resolved against `data_dir`) and checks its public key.
    pub fn bls_secret(&self, data_dir: &Path) -> Result<SecretKey, DevnetError> {
        let keystore = data_dir.join(&self.bls_keystore);
        let secret = read_bls_key(&keystore, &data_dir.join(&self.bls_password_file))?;
        if secret.public_key().to_compressed() != self.bls_public_key.0 {
            return Err(vouch_crypto::KeystoreError::PublicKeyMismatch.into());
        }
        Ok(secret)
    }
}

/// The blueprint the devnet registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestBlueprint {
    /// Its id.
    pub id: u64,
    /// Its owner (the developer account).
    pub owner: Address,
    /// Where its metadata lives: `file://<data dir>/blueprint.json`.
    pub metadata_uri: String,
    /// keccak256 of the metadata file's bytes.
    pub metadata_hash: B256,
    /// Its jobs.
    pub jobs: Vec<ManifestJob>,
}

/// A job of the blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestJob {
    /// Its index (`callJob`'s `jobIndex`).
    pub index: u8,
    /// Its name in the metadata.
    pub name: String,
    /// Price per call in Vouch USD base units (decimal string).
    #[serde(with = "decimal")]
    pub price: u128,
    /// Seconds from opening to the latest settlement.
    pub deadline: u32,
}

/// The service the devnet created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestService {
    /// Its id.
    pub id: u64,
    /// Its owner (the customer account).
    pub owner: Address,
    /// Its operators in slot order.
    pub operators: Vec<Address>,
    /// Unix time after which no call opens.
    pub expiry: u64,
    /// Whether anyone who pays may call it (always true on the devnet).
    pub public_access: bool,
}

impl DevnetManifest {
    /// Reads `<data_dir>/devnet.json`.
    pub fn load(data_dir: &Path) -> Result<Self, DevnetError> {
        let path = data_dir.join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => DevnetError::ManifestNotFound { path: path.clone() },
            _ => DevnetError::Io { path: path.clone(), source },
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| DevnetError::ManifestJson { path: path.clone(), source })?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(MANIFEST_VERSION)) => {}
            found => {
                let found = found.map_or_else(|| "none".to_owned(), ToString::to_string);
                return Err(DevnetError::ManifestVersion { path, found });
            }
        }
        serde_json::from_value(value).map_err(|source| DevnetError::ManifestJson { path, source })
    }

    /// Writes `<data_dir>/devnet.json` atomically (a temporary file in the same directory, synced, then renamed).
    pub fn save(&self, data_dir: &Path) -> Result<(), DevnetError> {
        let path = data_dir.join(MANIFEST_FILE);
        let tmp = data_dir.join(format!(".{MANIFEST_FILE}.tmp-{}", std::process::id()));
        let mut json = serde_json::to_string_pretty(self)
            .map_err(|source| DevnetError::ManifestJson { path: path.clone(), source })?;
        json.push('\n');
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(json.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(DevnetError::io(path))
    }
}

/// Serializes a number as a decimal string (amounts exceed JSON's safe integers).
mod decimal {
    use super::*;

    pub(super) fn serialize<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!("{text:?} is not a decimal number")));
        }
        text.parse().map_err(serde::de::Error::custom)
    }
}
