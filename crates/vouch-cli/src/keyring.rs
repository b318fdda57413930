//! The keys in `<datadir>/keys`, of two kinds that must never be confused:
//!
//! - a **transaction key** (ECDSA secp256k1, an EVM account): `<name>.eth.json`, an encrypted JSON keystore (Web3
//!   Secret Storage v3, as geth, foundry and alloy write it, with the `address` field geth adds). It signs and pays for
//!   transactions: registering, staking, calling, claiming.
//! - a **result-signing key** (BLS12-381): `<name>.bls.json`, an EIP-2335 keystore. It signs job results and the proof
//!   of possession that registers it; it never sends a transaction.
//!
//! Each keystore's password is read from a password file: by default `<name>.<kind>.password` beside it (mode 0600,
//! written with a random password when no `--password-file` is given at creation).

use std::{
    fs,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use alloy::signers::{
    k256::elliptic_curve::rand_core::{CryptoRng, RngCore},
    local::{LocalSignerError, PrivateKeySigner},
};
use alloy_primitives::{Address, hex};
use eyre::{WrapErr, bail, eyre};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vouch_crypto::{
    Keystore, KeystoreError, PublicKey, SecretKey,
    keystore::{read_password_file, write_private},
};
use zeroize::Zeroizing;

/// Which kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeyKind {
    /// Transaction key (ECDSA): signs and pays for transactions.
    Tx,
    /// Result-signing key (BLS12-381): signs job results, never transactions.
    Bls,
}

impl KeyKind {
    /// The file-name infix: `eth` or `bls`.
    pub(crate) const fn infix(self) -> &'static str {
        match self {
            Self::Tx => "eth",
            Self::Bls => "bls",
        }
    }

    /// `transaction key` or `result-signing key`.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Tx => "transaction key",
            Self::Bls => "result-signing key",
        }
    }

    /// What the key is for, in one line.
    pub(crate) const fn purpose(self) -> &'static str {
        match self {
            Self::Tx => "ECDSA secp256k1: signs and pays for transactions",
            Self::Bls => "BLS12-381: signs job results; never sends transactions",
        }
    }
}

/// `<keys>/<name>.<kind>.json`.
pub(crate) fn keystore_path(keys_dir: &Path, name: &str, kind: KeyKind) -> PathBuf {
    keys_dir.join(format!("{name}.{}.json", kind.infix()))
}

/// The password file beside a keystore: `x.eth.json` → `x.eth.password`.
pub(crate) fn default_password_path(keystore: &Path) -> PathBuf {
    keystore.with_extension("password")
}

/// Checks a key name: 1-64 characters from `[A-Za-z0-9_-]`.
pub(crate) fn check_name(name: &str) -> eyre::Result<()> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("key name {name:?}: use 1-64 characters from [A-Za-z0-9_-]");
    }
    Ok(())
}

/// Creates `<datadir>/keys` (mode 0700) if needed.
pub(crate) fn ensure_keys_dir(keys_dir: &Path) -> eyre::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(keys_dir)
        .wrap_err_with(|| format!("creating {}", keys_dir.display()))
}

/// Names of the keys of `kind` in `keys_dir`, sorted.
pub(crate) fn names(keys_dir: &Path, kind: KeyKind) -> Vec<String> {
    let suffix = format!(".{}.json", kind.infix());
    let mut names: Vec<String> = fs::read_dir(keys_dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(&suffix).map(str::to_owned))
        .filter(|name| check_name(name).is_ok())
        .collect();
    names.sort();
    names
}

/// A key argument: a keystore path if it names an existing file, else a key name in `keys_dir`.
pub(crate) fn resolve(keys_dir: &Path, spec: &str, kind: KeyKind) -> eyre::Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok(as_path.to_owned());
    }
    if check_name(spec).is_ok() {
        let path = keystore_path(keys_dir, spec, kind);
        if path.is_file() {
            return Ok(path);
        }
    }
    let known = names(keys_dir, kind);
    let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
    bail!(
        "no {} named `{spec}` in {} ({} names: {known}); create one with `vouch keys new --name {spec}`",
        kind.label(),
        keys_dir.display(),
        kind.label(),
    )
}

/// The password file to unlock `keystore` with: the one given, else the one beside it.
pub(crate) fn password_file_for(keystore: &Path, given: Option<&Path>, flag: &str) -> eyre::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let beside = default_password_path(keystore);
    if beside.is_file() {
        return Ok(beside);
    }
    bail!("no password file for {}: expected {}, or pass {flag} <FILE>", keystore.display(), beside.display())
}

/// Reads a non-empty password from a password file.
pub(crate) fn read_password(path: &Path) -> eyre::Result<Zeroizing<String>> {
    let password = read_password_file(path).wrap_err_with(|| format!("reading password file {}", path.display()))?;
    if password.is_empty() {
        bail!("password file {} is empty: a keystore needs a password", path.display());
    }
    Ok(password)
}

/// Writes a random password (48 hex characters) to a new file, mode 0600.
pub(crate) fn write_random_password(path: &Path) -> eyre::Result<()> {
    let mut raw = Zeroizing::new([0u8; 24]);
    getrandom::fill(raw.as_mut_slice()).map_err(|e| eyre!("system randomness unavailable: {e}"))?;
    let password = Zeroizing::new(hex::encode(raw.as_slice()));
    write_private(path, password.as_bytes()).wrap_err("writing the password file")
}

// ---------------------------------------------------------------------------------------------------------------
// Transaction keys (Web3 Secret Storage v3)
// ---------------------------------------------------------------------------------------------------------------

/// The parts of a v3 keystore checked before decryption (the decryption library assumes them and would panic on a
/// malformed file).
#[derive(Deserialize)]
struct V3Keystore {
    version: u8,
    #[serde(alias = "Crypto")]
    crypto: V3Crypto,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct V3Crypto {
    cipher: String,
    cipherparams: V3CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: serde_json::Value,
    mac: String,
}

#[derive(Deserialize)]
struct V3CipherParams {
    iv: String,
}

/// Largest scrypt memory (`128 · n · r` bytes) and PBKDF2 rounds accepted from a transaction keystore.
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
const MAX_PBKDF2_ROUNDS: u64 = 1 << 22;

fn hex_len(field: &str, value: &str, len: usize) -> Result<(), String> {
    match hex::decode(value.trim_start_matches("0x")) {
        Ok(bytes) if bytes.len() == len => Ok(()),
        Ok(bytes) => Err(format!("{field} has {} bytes, expected {len}", bytes.len())),
        Err(_) => Err(format!("{field} is not hex")),
    }
}

/// Reads and validates a transaction keystore file; returns its recorded address, if any.
fn read_v3(path: &Path) -> eyre::Result<(String, Option<Address>)> {
    let text = fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
    let ks: V3Keystore = serde_json::from_str(&text)
        .map_err(|e| eyre!("{} is not an encrypted JSON keystore (Web3 Secret Storage v3): {e}", path.display()))?;
    let unsupported = |why: String| eyre!("{}: unsupported transaction keystore: {why}", path.display());
    if ks.version != 3 {
        return Err(unsupported(format!("version {} (only 3)", ks.version)));
    }
    let c = &ks.crypto;
    if c.cipher != "aes-128-ctr" {
        return Err(unsupported(format!("cipher {} (only aes-128-ctr)", c.cipher)));
    }
    hex_len("cipherparams.iv", &c.cipherparams.iv, 16).map_err(unsupported)?;
    hex_len("ciphertext", &c.ciphertext, 32).map_err(unsupported)?;
    hex_len("mac", &c.mac, 32).map_err(unsupported)?;
    let param = |name: &str| c.kdfparams.get(name).and_then(serde_json::Value::as_u64);
    if param("dklen") != Some(32) {
        return Err(unsupported("kdfparams.dklen must be 32".into()));
    }
    match c.kdf.as_str() {
        "scrypt" => {
            let (Some(n), Some(r), Some(p)) = (param("n"), param("r"), param("p")) else {
                return Err(unsupported("scrypt needs kdfparams n, r and p".into()));
            };
            if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 || p > 16 || 128 * n * r > MAX_SCRYPT_MEMORY {
                return Err(unsupported(format!("scrypt parameters n={n} r={r} p={p} out of range")));
            }
        }
        "pbkdf2" => {
            let rounds = param("c").unwrap_or(0);
            if rounds == 0 || rounds > MAX_PBKDF2_ROUNDS {
                return Err(unsupported(format!("pbkdf2 iteration count {rounds} out of range")));
            }
        }
        other => return Err(unsupported(format!("kdf {other} (only scrypt and pbkdf2)"))),
    }
    let address = match ks.address.as_deref() {
        Some(a) => Some(
            format!("0x{}", a.trim_start_matches("0x"))
                .parse::<Address>()
                .map_err(|_| unsupported(format!("address {a:?} is not an address")))?,
        ),
        None => None,
    };
    Ok((text, address))
}

/// The address a transaction keystore records (no password needed), if it records one.
pub(crate) fn tx_address(path: &Path) -> eyre::Result<Option<Address>> {
    read_v3(path).map(|(_, address)| address)
}

/// Decrypts a transaction keystore.
pub(crate) fn decrypt_tx(path: &Path, password_file: &Path) -> eyre::Result<PrivateKeySigner> {
    let (_, recorded) = read_v3(path)?;
    let password = read_password(password_file)?;
    let signer = PrivateKeySigner::decrypt_keystore(path, password.as_bytes()).map_err(|e| match e {
        // eth-keystore's error type is not re-exported by alloy; its wrong-password variant prints "Mac Mismatch".
        LocalSignerError::EthKeystoreError(e) if e.to_string() == "Mac Mismatch" => eyre!(
            "wrong password for transaction key {} (password file {}): the keystore MAC does not match",
            path.display(),
            password_file.display()
        ),
        other => eyre!("unlocking transaction key {}: {other}", path.display()),
    })?;
    if let Some(recorded) = recorded
        && recorded != signer.address()
    {
        bail!("{}: the keystore records address {recorded} but holds the key of {}", path.display(), signer.address());
    }
    Ok(signer)
}

/// A deterministic random bit generator seeded from the operating system (SHA-256 in counter mode), for the salt and
/// IV of a new transaction keystore: it can be created fallibly up front, so nothing panics if randomness is missing.
struct SeededRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
    buffer: Zeroizing<[u8; 32]>,
    used: usize,
}

impl SeededRng {
    fn from_os() -> eyre::Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| eyre!("system randomness unavailable: {e}"))?;
        Ok(Self { seed, counter: 0, buffer: Zeroizing::new([0u8; 32]), used: 32 })
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == 32 {
                let mut h = Sha256::new();
                h.update(self.seed.as_slice());
                h.update(self.counter.to_le_bytes());
                self.buffer.copy_from_slice(&h.finalize());
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.buffer[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), alloy::signers::k256::elliptic_curve::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for SeededRng {}

/// Writes a new transaction keystore at `path` (mode 0600, never overwriting) for `secret` (random if `None`),
/// encrypted under the password in `password_file`, with the `address` field geth writes.
pub(crate) fn create_tx(
    path: &Path,
    password_file: &Path,
    secret: Option<&[u8; 32]>,
) -> eyre::Result<PrivateKeySigner> {
    if path.exists() {
        bail!("{} already exists: choose another --name or remove it", path.display());
    }
    let password = read_password(password_file)?;
    let secret = match secret {
        Some(s) => Zeroizing::new(*s),
        None => {
            let mut raw = Zeroizing::new([0u8; 32]);
            loop {
                getrandom::fill(raw.as_mut_slice()).map_err(|e| eyre!("system randomness unavailable: {e}"))?;
                if PrivateKeySigner::from_slice(raw.as_slice()).is_ok() {
                    break raw;
                }
            }
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let staging = dir.join(format!(
        ".staging-{}-{}",
        std::process::id(),
        hex::encode(&Sha256::digest(path.as_os_str().as_encoded_bytes())[..4])
    ));
    fs::DirBuilder::new().mode(0o700).create(&staging).wrap_err_with(|| format!("creating {}", staging.display()))?;
    let result = (|| {
        let mut rng = SeededRng::from_os()?;
        let (signer, _uuid) =
            PrivateKeySigner::encrypt_keystore(&staging, &mut rng, secret.as_slice(), password.as_bytes(), Some("key"))
                .map_err(|e| eyre!("encrypting the transaction key: {e}"))?;
        let text = fs::read_to_string(staging.join("key")).wrap_err("reading the new keystore")?;
        let mut json: serde_json::Value = serde_json::from_str(&text).wrap_err("reading the new keystore")?;
        if let Some(object) = json.as_object_mut() {
            object.insert("address".into(), hex::encode(signer.address()).into());
        }
        let text = serde_json::to_string_pretty(&json).wrap_err("serialising the keystore")?;
        write_private(path, text.as_bytes()).wrap_err_with(|| format!("writing {}", path.display()))?;
        Ok(signer)
    })();
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Copies an existing transaction keystore to `path` after checking that `password_file` unlocks it (adding the
/// `address` field if it lacks one).
pub(crate) fn import_tx_keystore(source: &Path, path: &Path, password_file: &Path) -> eyre::Result<PrivateKeySigner> {
    if path.exists() {
        bail!("{} already exists: choose another --name or remove it", path.display());
    }
    let signer = decrypt_tx(source, password_file)?;
    let (text, _) = read_v3(source)?;
    let mut json: serde_json::Value = serde_json::from_str(&text).wrap_err("reading the keystore")?;
    if let Some(object) = json.as_object_mut() {
        object.insert("address".into(), hex::encode(signer.address()).into());
    }
    let text = serde_json::to_string_pretty(&json).wrap_err("serialising the keystore")?;
    write_private(path, text.as_bytes()).wrap_err_with(|| format!("writing {}", path.display()))?;
    Ok(signer)
}

// ---------------------------------------------------------------------------------------------------------------
// Result-signing keys (EIP-2335)
// ---------------------------------------------------------------------------------------------------------------

/// The public key an EIP-2335 keystore records (no password needed).
pub(crate) fn bls_public_key(path: &Path) -> eyre::Result<PublicKey> {
    let ks = Keystore::read_file(path).wrap_err_with(|| format!("reading BLS keystore {}", path.display()))?;
    bls_public_key_of(&ks, path)
}

fn bls_public_key_of(ks: &Keystore, path: &Path) -> eyre::Result<PublicKey> {
    let bytes = hex::decode(ks.pubkey.trim_start_matches("0x"))
        .map_err(|_| eyre!("{}: the keystore's pubkey is not hex", path.display()))?;
    PublicKey::from_compressed(&bytes)
        .map_err(|e| eyre!("{}: the keystore's pubkey is not a BLS key: {e}", path.display()))
}

/// Decrypts an EIP-2335 keystore.
pub(crate) fn decrypt_bls(path: &Path, password_file: &Path) -> eyre::Result<SecretKey> {
    let ks = Keystore::read_file(path).wrap_err_with(|| format!("reading BLS keystore {}", path.display()))?;
    let password = read_password(password_file)?;
    ks.decrypt(&password).map_err(|e| match e {
        KeystoreError::WrongPassword => eyre!(
            "wrong password for BLS key {} (password file {}): the keystore checksum does not match",
            path.display(),
            password_file.display()
        ),
        other => eyre!("unlocking BLS key {}: {other}", path.display()),
    })
}

/// Writes a new EIP-2335 keystore at `path` for `secret`, encrypted under the password in `password_file`.
pub(crate) fn create_bls(path: &Path, password_file: &Path, secret: &SecretKey, description: &str) -> eyre::Result<()> {
    if path.exists() {
        bail!("{} already exists: choose another --name or remove it", path.display());
    }
    let password = read_password(password_file)?;
    let keystore = Keystore::encrypt(secret, &password, description).wrap_err("encrypting the BLS key")?;
    keystore.write_file(path).wrap_err_with(|| format!("writing {}", path.display()))
}

/// What kind of keystore a JSON file is, from its shape.
pub(crate) fn sniff_kind(path: &Path) -> eyre::Result<Option<KeyKind>> {
    let text = fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return Ok(None) };
    if json.get("pubkey").is_some() && json.get("version").and_then(serde_json::Value::as_u64) == Some(4) {
        return Ok(Some(KeyKind::Bls));
    }
    if json.get("version").and_then(serde_json::Value::as_u64) == Some(3) {
        return Ok(Some(KeyKind::Tx));
    }
    Ok(None)
}

/// Parses a file holding a raw 32-byte secret as hex (`0x` optional, surrounding blanks ignored).
pub(crate) fn read_raw_secret(path: &Path) -> eyre::Result<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?);
    let trimmed = text.trim();
    let bytes = Zeroizing::new(
        hex::decode(trimmed.trim_start_matches("0x"))
            .map_err(|_| eyre!("{} is neither a keystore (JSON) nor a hex private key", path.display()))?,
    );
    if bytes.len() != 32 {
        bail!("{}: a private key is 32 bytes (64 hex characters), this one has {}", path.display(), bytes.len());
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes);
    Ok(secret)
}
