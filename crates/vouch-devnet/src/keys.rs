//! Keys on disk, in the layout of the `vouch` CLI (`<datadir>/keys`, mode 0700):
//!
//! - `<name>.eth.json`: a transaction key (ECDSA secp256k1), an encrypted JSON keystore (Web3 Secret Storage v3, as
//!   geth, foundry and alloy read it, with geth's `address` field);
//! - `<name>.bls.json`: a result-signing key (BLS12-381), an EIP-2335 keystore;
//! - `<name>.<eth|bls>.password`: the password of each, 48 random hex characters, mode 0600.
//!
//! Both keystores use scrypt with n = 2^10, r = 8, p = 1 ([`KEYSTORE_SCRYPT_LOG_N`]): 1 MiB and ~5 ms per key, where
//! the production default (n = 2^18) takes 256 MiB and about a second and eth-keystore's fixed n = 2^13 ~40 ms. A
//! devnet writes 3 + 2N keystores on every start, its password files lie beside them (the KDF protects nothing),
//! and its keys guard nothing of value. Decryption is the standard one (eth-keystore through alloy; vouch-crypto).

use std::{
    fs,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use aes::cipher::{KeyIvInit as _, StreamCipher as _};
use alloy::{
    primitives::{Address, B256, hex, keccak256},
    signers::local::PrivateKeySigner,
};
use vouch_crypto::{
    Keystore, PublicKey, SecretKey,
    keystore::{Kdf, read_password_file, write_private},
};
use zeroize::Zeroizing;

use crate::DevnetError;

/// scrypt cost (log2 n) of the devnet's keystores; see the module docs.
pub const KEYSTORE_SCRYPT_LOG_N: u8 = 10;

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
    let secret = Zeroizing::new(signer.to_bytes().0);
    let json = encrypt_v3(&secret, signer.address(), password.as_bytes())?;
    let mut text = serde_json::to_string_pretty(&json)
        .map_err(|e| DevnetError::EthKeystoreFormat { path: keystore.clone(), reason: e.to_string() })?;
    text.push('\n');
    write_private(&keystore, text.as_bytes())?;
    Ok(Account { name: name.to_owned(), signer, keystore, password_file })
}

/// A Web3 Secret Storage v3 keystore of `secret`: scrypt (n = 2^[`KEYSTORE_SCRYPT_LOG_N`], r = 8, p = 1, 32-byte
/// random salt) → AES-128-CTR under the first half of the derived key (random IV) → MAC = keccak256(second half ‖
/// ciphertext); geth's `address` field (lowercase hex, no `0x`). The format eth-keystore (and so alloy, foundry and the
/// vouch CLI) decrypts; eth-keystore itself only writes n = 2^13.
fn encrypt_v3(secret: &[u8; 32], address: Address, password: &[u8]) -> Result<serde_json::Value, DevnetError> {
    let random = |buf: &mut [u8]| getrandom::fill(buf).map_err(|e| DevnetError::Randomness(e.to_string()));
    let (mut salt, mut iv, mut id) = ([0u8; 32], [0u8; 16], [0u8; 16]);
    random(&mut salt)?;
    random(&mut iv)?;
    random(&mut id)?;
    let params =
        scrypt::Params::new(KEYSTORE_SCRYPT_LOG_N, 8, 1, 32).map_err(|e| DevnetError::Config(e.to_string()))?;
    let mut derived = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &salt, &params, derived.as_mut_slice()).map_err(|e| DevnetError::Config(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&derived[..16]);
    let mut ciphertext = *secret;
    Aes128Ctr::new((&*key).into(), (&iv).into()).apply_keystream(&mut ciphertext);
    let mac = keccak256([&derived[16..], ciphertext.as_slice()].concat());
    Ok(serde_json::json!({
        "version": 3,
        "id": uuid::Builder::from_random_bytes(id).into_uuid().to_string(),
        "address": hex::encode(address),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": { "iv": hex::encode(iv) },
            "ciphertext": hex::encode(ciphertext),
            "kdf": "scrypt",
            "kdfparams": { "dklen": 32, "n": 1u32 << KEYSTORE_SCRYPT_LOG_N, "p": 1, "r": 8, "salt": hex::encode(salt) },
            "mac": hex::encode(mac),
        },
    }))
}

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_keystores_decrypt_with_eth_keystore_and_record_the_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = random_signer().expect("key");
        let account = write_account(dir.path(), "alice", signer.clone()).expect("writes");
        assert_eq!(account.keystore(), dir.path().join("alice.eth.json"));

        // alloy (eth-keystore) decrypts it; the light parameters are what the file says.
        let password = read_password_file(account.password_file()).expect("password");
        assert_eq!(password.len(), 48);
        let back = PrivateKeySigner::decrypt_keystore(account.keystore(), password.as_bytes()).expect("decrypts");
        assert_eq!(back.to_bytes(), signer.to_bytes());
        assert_eq!(
            read_account(account.keystore(), account.password_file()).expect("reads").address(),
            signer.address()
        );
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(account.keystore()).expect("read")).expect("json");
        assert_eq!(json["version"], 3);
        assert_eq!(json["address"], hex::encode(signer.address()));
        assert_eq!(json["crypto"]["kdfparams"]["n"], 1024);
        assert!(!json.to_string().contains(&hex::encode(signer.to_bytes())), "the key is encrypted");

        // A wrong password fails the MAC; nothing is overwritten.
        assert!(PrivateKeySigner::decrypt_keystore(account.keystore(), b"wrong").is_err());
        assert!(matches!(
            write_account(dir.path(), "alice", signer),
            Err(DevnetError::Keystore(vouch_crypto::KeystoreError::AlreadyExists(_)))
        ));
    }

    #[test]
    fn bls_keystores_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = write_bls_key(dir.path(), "operator-0").expect("writes");
        let back = read_bls_key(&key.keystore, &key.password_file).expect("decrypts");
        assert_eq!(back.public_key(), key.public);
        assert_eq!(key.secret.public_key(), key.public);
    }
}
