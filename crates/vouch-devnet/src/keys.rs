//! Keys on disk, in the layout of the `vouch` CLI (`<datadir>/keys`, mode 0700):
//!
//! - `<name>.eth.json`: a transaction key (ECDSA secp256k1), an encrypted JSON keystore (Web3 Secret Storage v3, as
//!   geth, foundry and alloy write it, with geth's `address` field);
//! - `<name>.bls.json`: a result-signing key (BLS12-381), an EIP-2335 keystore;
//! - `<name>.<eth|bls>.password`: the password of each, 48 random hex characters, mode 0600.
//!
//! Both keystores use scrypt with n = 2^13, r = 8, p = 1 ([`KEYSTORE_SCRYPT_LOG_N`]): about 8 MiB and a few
//! milliseconds per key instead of the 256 MiB and about a second of the production default (n = 2^18), because a
//! devnet writes several keys on every start and its keys guard nothing of value. The transaction keystore's
//! parameters are eth-keystore's fixed ones (the library alloy writes them with); the BLS keystore uses the same.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use alloy::{
    primitives::{Address, B256, hex},
    signers::{k256::elliptic_curve::rand_core::OsRng, local::PrivateKeySigner},
};
use vouch_crypto::{
    Keystore, PublicKey, SecretKey,
    keystore::{Kdf, read_password_file, write_private},
};
use zeroize::Zeroizing;

use crate::DevnetError;

/// scrypt cost (log2 n) of the devnet's keystores; see the module docs.
pub const KEYSTORE_SCRYPT_LOG_N: u8 = 13;

/// A transaction account of the devnet with its keystore.
#[derive(Debug, Clone)]
pub struct Account {
    name: String,
    signer: PrivateKeySigner,
    keystore: PathBuf,
    password_file: PathBuf,
}

impl Account {
    /// The key name (`deployer`, `customer`, `operator-0`, …): the keystore is `keys/<name>.eth.json`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The account's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Its signer, for an alloy provider (`Devnet::provider`) or a wallet.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// The encrypted JSON keystore (absolute path).
    pub fn keystore(&self) -> &Path {
        &self.keystore
    }

    /// The password file of the keystore (absolute path).
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }
}

/// Creates `dir` (and its parents) with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), DevnetError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(DevnetError::io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(DevnetError::io(dir))
}

/// Writes a new password file with 48 random hex characters (mode 0600) and returns the password.
fn new_password(path: &Path) -> Result<Zeroizing<String>, DevnetError> {
    let mut raw = Zeroizing::new([0u8; 24]);
    getrandom::fill(raw.as_mut_slice()).map_err(|e| DevnetError::Randomness(e.to_string()))?;
    let password = Zeroizing::new(hex::encode(raw.as_slice()));
    write_private(path, password.as_bytes())?;
    Ok(password)
}

/// A fresh secp256k1 key from system randomness.
pub(crate) fn random_signer() -> Result<PrivateKeySigner, DevnetError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    loop {
        getrandom::fill(raw.as_mut_slice()).map_err(|e| DevnetError::Randomness(e.to_string()))?;
        // Fails only for 0 and values not below the group order (probability ~2^-128).
        if let Ok(signer) = PrivateKeySigner::from_slice(raw.as_slice()) {
            return Ok(signer);
        }
    }
}

/// Writes `keys/<name>.eth.json` and its password file for `signer` (refusing to overwrite either).
pub(crate) fn write_account(keys: &Path, name: &str, signer: PrivateKeySigner) -> Result<Account, DevnetError> {
    let keystore = keys.join(format!("{name}.eth.json"));
    let password_file = keys.join(format!("{name}.eth.password"));
    if keystore.exists() {
        return Err(vouch_crypto::KeystoreError::AlreadyExists(keystore).into());
    }
    let password = new_password(&password_file)?;
    // eth-keystore names the file itself and creates it with the umask's mode: write it into a private staging
    // directory, add geth's `address` field, then write the final file with mode 0600.
    let staging = keys.join(format!(".staging-{name}"));
    create_private_dir(&staging)?;
    let result = (|| -> Result<(), DevnetError> {
        let secret = Zeroizing::new(signer.to_bytes().0);
        PrivateKeySigner::encrypt_keystore(&staging, &mut OsRng, secret.as_slice(), password.as_bytes(), Some("key"))
            .map_err(|source| DevnetError::EthKeystore { path: keystore.clone(), source: Box::new(source) })?;
        let staged = staging.join("key");
        let text = fs::read_to_string(&staged).map_err(DevnetError::io(&staged))?;
        let mut json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DevnetError::EthKeystoreFormat { path: staged.clone(), reason: e.to_string() })?;
        if let Some(object) = json.as_object_mut() {
            object.insert("address".into(), hex::encode(signer.address()).into());
        }
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| DevnetError::EthKeystoreFormat { path: keystore.clone(), reason: e.to_string() })?;
        write_private(&keystore, text.as_bytes())?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&staging);
    result?;
    Ok(Account { name: name.to_owned(), signer, keystore, password_file })
}

/// Decrypts a transaction keystore with its password file and checks the address it records, if any.
pub fn read_account(keystore: &Path, password_file: &Path) -> Result<PrivateKeySigner, DevnetError> {
    let password = read_password_file(password_file)?;
    let signer = PrivateKeySigner::decrypt_keystore(keystore, password.as_bytes())
        .map_err(|source| DevnetError::EthKeystore { path: keystore.to_owned(), source: Box::new(source) })?;
    let text = fs::read_to_string(keystore).map_err(DevnetError::io(keystore))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DevnetError::EthKeystoreFormat { path: keystore.to_owned(), reason: e.to_string() })?;
    if let Some(recorded) = json.get("address").and_then(serde_json::Value::as_str) {
        let recorded: Address = format!("0x{}", recorded.trim_start_matches("0x")).parse().map_err(|_| {
            DevnetError::EthKeystoreFormat { path: keystore.to_owned(), reason: format!("address {recorded:?}") }
        })?;
        if recorded != signer.address() {
            return Err(DevnetError::EthKeystoreFormat {
                path: keystore.to_owned(),
                reason: format!("records address {recorded} but holds the key of {}", signer.address()),
            });
        }
    }
    Ok(signer)
}

/// A BLS key written as `keys/<name>.bls.json` with its password file.
pub(crate) struct BlsKey {
    pub(crate) secret: SecretKey,
    pub(crate) public: PublicKey,
    pub(crate) keystore: PathBuf,
    pub(crate) password_file: PathBuf,
}

/// Generates a BLS key and writes it as an EIP-2335 keystore (refusing to overwrite).
pub(crate) fn write_bls_key(keys: &Path, name: &str) -> Result<BlsKey, DevnetError> {
    let keystore = keys.join(format!("{name}.bls.json"));
    let password_file = keys.join(format!("{name}.bls.password"));
    if keystore.exists() {
        return Err(vouch_crypto::KeystoreError::AlreadyExists(keystore).into());
    }
    let secret = SecretKey::random()?;
    let password = new_password(&password_file)?;
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).map_err(|e| DevnetError::Randomness(e.to_string()))?;
    let kdf = Kdf::scrypt(KEYSTORE_SCRYPT_LOG_N)?;
    Keystore::encrypt_with(&secret, &password, kdf, iv, &format!("vouch devnet BLS key {name}"))?
        .write_file(&keystore)?;
    Ok(BlsKey { public: secret.public_key(), secret, keystore, password_file })
}

/// Decrypts an EIP-2335 keystore with its password file.
pub fn read_bls_key(keystore: &Path, password_file: &Path) -> Result<SecretKey, DevnetError> {
    let password = read_password_file(password_file)?;
    Ok(Keystore::read_file(keystore)?.decrypt(&password)?)
}

/// anvil's first development key (mnemonic `test test … junk`, index 0): public knowledge, for the devnet's deployer
/// only. Deploying from it on a fresh chain gives the same contract addresses on every start.
pub(crate) const ANVIL_DEV_KEY_0: B256 =
    alloy::primitives::b256!("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
