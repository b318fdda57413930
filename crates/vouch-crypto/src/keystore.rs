//! EIP-2335 keystores: a BLS secret key encrypted under a password, as JSON.
//!
//! The format is the one Ethereum consensus clients use (scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR,
//! SHA-256 checksum), so keys move between Vouch and existing tooling. Files are written with mode
//! `0600` and never overwritten; passwords come from password files, never from the command line.
//!
//! Decryption runs the KDF (scrypt with n = 2^18 takes about a second): async callers should run it
//! on a blocking thread.

use crate::{error::KeystoreError, keys::SecretKey};
use aes::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    fs,
    io::{Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// The only keystore version (EIP-2335).
pub const VERSION: u32 = 4;
/// Derived key length; the first half keys AES-128, the second half feeds the checksum.
const DKLEN: u32 = 32;
/// Largest scrypt cost accepted from a file (2^20).
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// Largest scrypt memory (`128 · n · r` bytes) accepted from a file: 256 MiB (the default uses 256 MiB).
pub const MAX_SCRYPT_MEMORY: u64 = 256 << 20;
/// Largest scrypt work (`n · r · p`) accepted from a file: 4× the default (2^18 · 8 · 1).
pub const MAX_SCRYPT_WORK: u64 = 1 << 23;
/// Largest PBKDF2 iteration count accepted from a file.
pub const MAX_PBKDF2_ROUNDS: u32 = 1 << 22;
/// Default scrypt cost, as EIP-2335's example and consensus clients use (n = 2^18).
pub const DEFAULT_SCRYPT_LOG_N: u8 = 18;

/// An EIP-2335 keystore (version 4). `Debug` shows only the uuid and public key: the ciphertext, salt and
/// checksum are what an offline password search needs, so they stay out of logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keystore {
    crypto: CryptoModules,
    /// Free-form description.
    #[serde(default)]
    pub description: String,
    /// Hex of the 48-byte compressed public key (no `0x`), as EIP-2335 writes it.
    pub pubkey: String,
    /// EIP-2334 derivation path, or empty.
    pub path: String,
    /// Unique id of the keystore.
    pub uuid: uuid::Uuid,
    /// Always 4.
    pub version: u32,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore").field("uuid", &self.uuid).field("pubkey", &self.pubkey).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CryptoModules {
    kdf: KdfModule,
    checksum: ChecksumModule,
    cipher: CipherModule,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct KdfModule {
    #[serde(flatten)]
    kdf: Kdf,
    message: String,
}

/// Key-derivation function and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "function", content = "params", rename_all = "lowercase")]
pub enum Kdf {
    /// scrypt (the default).
    Scrypt(ScryptParams),
    /// PBKDF2 with HMAC-SHA256.
    Pbkdf2(Pbkdf2Params),
}

/// scrypt parameters as EIP-2335 writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScryptParams {
    /// Always 32.
    pub dklen: u32,
    /// Cost (a power of two).
    pub n: u32,
    /// Parallelism.
    pub p: u32,
    /// Block size.
    pub r: u32,
    /// Salt.
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
}

/// PBKDF2 parameters as EIP-2335 writes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pbkdf2Params {
    /// Always 32.
    pub dklen: u32,
    /// Iterations.
    pub c: u32,
    /// Always `hmac-sha256`.
    pub prf: String,
    /// Salt.
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
}

impl Kdf {
    /// scrypt with cost `2^log_n`, r = 8, p = 1 and a 32-byte random salt.
    pub fn scrypt(log_n: u8) -> Result<Self, KeystoreError> {
        Ok(Self::Scrypt(ScryptParams {
            dklen: DKLEN,
            n: 1u32 << log_n.min(31),
            p: 1,
            r: 8,
            salt: random_bytes::<32>()?.to_vec(),
        }))
    }

    fn derive(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let mut dk = Zeroizing::new([0u8; 32]);
        match self {
            Self::Scrypt(p) => {
                if p.dklen != DKLEN || !p.n.is_power_of_two() || p.n < 2 {
                    return Err(unsupported(format!(
                        "scrypt dklen {} n {}: need dklen 32 and n a power of two",
                        p.dklen, p.n
                    )));
                }
                let log_n = p.n.trailing_zeros() as u8;
                let memory = 128 * u64::from(p.n) * u64::from(p.r);
                let work = u64::from(p.n) * u64::from(p.r) * u64::from(p.p);
                if log_n > MAX_SCRYPT_LOG_N
                    || !(1..=32).contains(&p.r)
                    || !(1..=16).contains(&p.p)
                    || memory > MAX_SCRYPT_MEMORY
                    || work > MAX_SCRYPT_WORK
                    || !(16..=128).contains(&p.salt.len())
                {
                    return Err(unsupported(format!(
                        "scrypt n 2^{log_n} r {} p {} salt {} B outside n ≤ 2^{MAX_SCRYPT_LOG_N}, r ≤ 32, p ≤ 16, 128·n·r ≤ 256 MiB, n·r·p ≤ 2^23, salt 16..=128 B",
                        p.r,
                        p.p,
                        p.salt.len()
                    )));
                }
                let params = scrypt::Params::new(log_n, p.r, p.p, 32).map_err(|e| unsupported(e.to_string()))?;
                scrypt::scrypt(password, &p.salt, &params, dk.as_mut_slice())
                    .map_err(|e| unsupported(e.to_string()))?;
            }
            Self::Pbkdf2(p) => {
                if p.dklen != DKLEN
                    || p.prf != "hmac-sha256"
                    || !(1..=MAX_PBKDF2_ROUNDS).contains(&p.c)
                    || !(16..=128).contains(&p.salt.len())
                {
                    return Err(unsupported(format!(
                        "pbkdf2 dklen {} prf {} c {} salt {} B: need dklen 32, hmac-sha256, c ≤ 2^22, salt 16..=128 B",
                        p.dklen,
                        p.prf,
                        p.c,
                        p.salt.len()
                    )));
                }
                pbkdf2::pbkdf2_hmac::<Sha256>(password, &p.salt, p.c, dk.as_mut_slice());
            }
        }
        Ok(dk)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksumModule {
    function: String,
    params: EmptyParams,
    #[serde(with = "hex_bytes")]
    message: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyParams {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherModule {
    function: String,
    params: CipherParams,
    #[serde(with = "hex_bytes")]
    message: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherParams {
    #[serde(with = "hex_bytes")]
    iv: Vec<u8>,
}

fn unsupported(msg: String) -> KeystoreError {
    KeystoreError::Unsupported(msg)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| unsupported(format!("system randomness unavailable: {e}")))?;
    Ok(out)
}

/// EIP-2335 password processing: NFKD, then drop C0, C1 and DEL control codes.
pub fn normalize_password(password: &str) -> Zeroizing<String> {
    Zeroizing::new(password.nfkd().filter(|c| !matches!(*c as u32, 0x00..=0x1f | 0x7f | 0x80..=0x9f)).collect())
}

fn checksum(dk: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(&dk[16..]);
    h.update(ciphertext);
    h.finalize().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Keystore {
    /// Encrypts `secret` under `password` with scrypt (n = 2^18) and a random salt and IV.
    pub fn encrypt(secret: &SecretKey, password: &str, description: &str) -> Result<Self, KeystoreError> {
        Self::encrypt_with(secret, password, Kdf::scrypt(DEFAULT_SCRYPT_LOG_N)?, random_bytes::<16>()?, description)
    }

    /// Encrypts with an explicit KDF and IV (for tests, vectors and cheaper development keys).
    pub fn encrypt_with(
        secret: &SecretKey,
        password: &str,
        kdf: Kdf,
        iv: [u8; 16],
        description: &str,
    ) -> Result<Self, KeystoreError> {
        let password = normalize_password(password);
        let dk = kdf.derive(password.as_bytes())?;
        let mut ciphertext = secret.to_bytes().to_vec();
        let key: &[u8; 16] = dk[..16].try_into().map_err(|_| unsupported("derived key too short".into()))?;
        Aes128Ctr::new(key.into(), (&iv).into()).apply_keystream(&mut ciphertext);
        let checksum = checksum(&dk, &ciphertext).to_vec();
        Ok(Self {
            crypto: CryptoModules {
                kdf: KdfModule { kdf, message: String::new() },
                checksum: ChecksumModule { function: "sha256".into(), params: EmptyParams {}, message: checksum },
                cipher: CipherModule {
                    function: "aes-128-ctr".into(),
                    params: CipherParams { iv: iv.to_vec() },
                    message: ciphertext,
                },
            },
            description: description.to_owned(),
            pubkey: alloy_primitives::hex::encode(secret.public_key().to_compressed()),
            path: String::new(),
            uuid: uuid::Builder::from_random_bytes(random_bytes::<16>()?).into_uuid(),
            version: VERSION,
        })
    }

    /// Decrypts the secret key, checking the password (checksum) and that the secret matches the
    /// recorded public key.
    pub fn decrypt(&self, password: &str) -> Result<SecretKey, KeystoreError> {
        if self.version != VERSION {
            return Err(unsupported(format!("version {} (only 4)", self.version)));
        }
        let c = &self.crypto;
        if c.checksum.function != "sha256" || c.checksum.message.len() != 32 {
            return Err(unsupported(format!(
                "checksum function {} with {} B",
                c.checksum.function,
                c.checksum.message.len()
            )));
        }
        if c.cipher.function != "aes-128-ctr" || c.cipher.params.iv.len() != 16 || c.cipher.message.len() != 32 {
            return Err(unsupported(format!(
                "cipher {} with {} B IV and {} B message (need aes-128-ctr, 16, 32)",
                c.cipher.function,
                c.cipher.params.iv.len(),
                c.cipher.message.len()
            )));
        }
        let password = normalize_password(password);
        let dk = c.kdf.kdf.derive(password.as_bytes())?;
        if !ct_eq(&checksum(&dk, &c.cipher.message), &c.checksum.message) {
            return Err(KeystoreError::WrongPassword);
        }
        let mut plain = Zeroizing::new(c.cipher.message.clone());
        let key: &[u8; 16] = dk[..16].try_into().map_err(|_| unsupported("derived key too short".into()))?;
        let iv: &[u8; 16] =
            c.cipher.params.iv.as_slice().try_into().map_err(|_| unsupported("IV must be 16 bytes".into()))?;
        Aes128Ctr::new(key.into(), iv.into()).apply_keystream(plain.as_mut_slice());
        let secret = SecretKey::from_bytes(&plain)?;
        let recorded = alloy_primitives::hex::decode(self.pubkey.trim_start_matches("0x"))
            .map_err(|_| unsupported("pubkey is not hex".into()))?;
        if recorded.as_slice() != secret.public_key().to_compressed() {
            return Err(KeystoreError::PublicKeyMismatch);
        }
        Ok(secret)
    }

    /// Parses keystore JSON.
    pub fn from_json(json: &str) -> Result<Self, KeystoreError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Serializes to pretty JSON.
    pub fn to_json(&self) -> Result<String, KeystoreError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a keystore file (at most 64 KiB).
    pub fn read_file(path: &Path) -> Result<Self, KeystoreError> {
        Self::from_json(&read_bounded(path)?).map_err(|e| match e {
            KeystoreError::Json(source) => KeystoreError::JsonFile { path: path.to_owned(), source },
            other => other,
        })
    }

    /// Writes the keystore to a new file with mode 0600; refuses to overwrite.
    pub fn write_file(&self, path: &Path) -> Result<(), KeystoreError> {
        write_private(path, self.to_json()?.as_bytes())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io { path: path.to_owned(), source }
}

/// Reads a small text file once, through a size cap (no check-then-read race; FIFOs and devices refused).
fn read_bounded(path: &Path) -> Result<Zeroizing<String>, KeystoreError> {
    const MAX: u64 = 64 * 1024;
    let file = fs::File::open(path).map_err(io_err(path))?;
    if !file.metadata().map_err(io_err(path))?.is_file() {
        return Err(KeystoreError::NotAFile(path.to_owned()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
    file.take(MAX + 1).read_to_end(&mut bytes).map_err(io_err(path))?;
    if bytes.len() as u64 > MAX {
        return Err(KeystoreError::TooLarge { path: path.to_owned(), max: MAX });
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| KeystoreError::NotUtf8(path.to_owned()))?;
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    out.push_str(text);
    Ok(out)
}

/// Creates `path` with mode 0600 and writes `contents`; refuses to overwrite an existing file.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeystoreError> {
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeystoreError::AlreadyExists(path.to_owned())
        } else {
            io_err(path)(e)
        }
    })?;
    // The mode above is filtered by the umask; make sure it is exactly 0600.
    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    file.write_all(contents).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// Reads a password file: the whole file minus one trailing newline (`\n` or `\r\n`).
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>, KeystoreError> {
    let mut text = read_bounded(path)?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&alloy_primitives::hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > 1024 {
            return Err(D::Error::custom("hex field longer than 1024 characters"));
        }
        alloy_primitives::hex::decode(s.trim_start_matches("0x")).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scrypt test vector from EIP-2335.
    const EIP2335_SCRYPT: &str = r#"{
        "crypto": {
            "kdf": {"function": "scrypt", "params": {"dklen": 32, "n": 262144, "p": 1, "r": 8,
                "salt": "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"}, "message": ""},
            "checksum": {"function": "sha256", "params": {},
                "message": "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484"},
            "cipher": {"function": "aes-128-ctr", "params": {"iv": "264daa3f303d7259501c93d997d84fe6"},
                "message": "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f"}
        },
        "description": "This is a test keystore that uses scrypt to secure the secret.",
        "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
        "path": "m/12381/60/3141592653/589793238",
        "uuid": "1d85ae20-35c5-4611-98e8-aa14a633906f",
        "version": 4
    }"#;
    const EIP2335_PASSWORD: &str = "\u{1d531}\u{1d522}\u{1d530}\u{1d531}\u{1d52d}\u{1d51e}\u{1d530}\u{1d530}\u{1d534}\u{1d52c}\u{1d52f}\u{1d521}\u{1f511}";
    const EIP2335_SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

    fn cheap_kdf() -> Kdf {
        Kdf::Scrypt(ScryptParams { dklen: 32, n: 1 << 4, p: 1, r: 8, salt: vec![7; 32] })
    }

    #[test]
    fn decrypts_the_eip2335_scrypt_vector() {
        let ks = Keystore::from_json(EIP2335_SCRYPT).expect("vector parses");
        let sk = ks.decrypt(EIP2335_PASSWORD).expect("vector decrypts");
        assert_eq!(alloy_primitives::hex::encode(sk.to_bytes().as_slice()), EIP2335_SECRET);
        assert!(matches!(ks.decrypt("testpassword"), Err(KeystoreError::WrongPassword)), "the key emoji is part of it");
        assert_eq!(normalize_password(EIP2335_PASSWORD).as_str(), "testpassword\u{1f511}");
    }

    #[test]
    fn json_round_trip_matches_the_vector_shape() {
        let ks = Keystore::from_json(EIP2335_SCRYPT).expect("vector parses");
        let again = Keystore::from_json(&ks.to_json().expect("serializes")).expect("reparses");
        assert_eq!(ks, again);
    }

    #[test]
    fn normalisation_drops_control_codes() {
        assert_eq!(normalize_password("test\u{7f}te\u{85}st\n").as_str(), "testtest");
    }

    #[test]
    fn encrypt_decrypt_round_trip_with_pbkdf2_and_scrypt() {
        let sk = SecretKey::from_ikm(&[42; 32]).expect("ikm");
        for kdf in
            [cheap_kdf(), Kdf::Pbkdf2(Pbkdf2Params { dklen: 32, c: 16, prf: "hmac-sha256".into(), salt: vec![1; 32] })]
        {
            let ks = Keystore::encrypt_with(&sk, "hunter2", kdf, [9; 16], "test").expect("encrypts");
            let back = ks.decrypt("hunter2").expect("decrypts");
            assert_eq!(back.to_bytes().as_slice(), sk.to_bytes().as_slice());
            assert!(matches!(ks.decrypt("hunter3"), Err(KeystoreError::WrongPassword)));
        }
    }

    #[test]
    fn refuses_oversized_kdf_parameters_from_a_file() {
        let sk = SecretKey::from_ikm(&[42; 32]).expect("ikm");
        let huge = Kdf::Scrypt(ScryptParams { dklen: 32, n: 1 << 24, p: 1, r: 8, salt: vec![7; 32] });
        assert!(matches!(Keystore::encrypt_with(&sk, "x", huge, [0; 16], ""), Err(KeystoreError::Unsupported(_))));
    }

    #[test]
    fn refuses_costly_scrypt_parameters_read_from_json() {
        let sk = SecretKey::from_ikm(&[42; 32]).expect("ikm");
        let ks = Keystore::encrypt_with(&sk, "x", cheap_kdf(), [0; 16], "").expect("encrypts");
        let mut value: serde_json::Value = serde_json::from_str(&ks.to_json().expect("json")).expect("value");
        // n = 2^20 with r = 32 and p = 16 would allocate 4 GiB and do 256x the default work.
        value["crypto"]["kdf"]["params"]["n"] = serde_json::json!(1 << 20);
        value["crypto"]["kdf"]["params"]["r"] = serde_json::json!(32);
        value["crypto"]["kdf"]["params"]["p"] = serde_json::json!(16);
        let costly = Keystore::from_json(&value.to_string()).expect("well-formed");
        assert!(matches!(costly.decrypt("x"), Err(KeystoreError::Unsupported(_))));
    }

    #[test]
    fn oversized_and_non_regular_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.json");
        fs::write(&big, vec![b' '; 64 * 1024 + 1]).expect("write");
        assert!(matches!(Keystore::read_file(&big), Err(KeystoreError::TooLarge { .. })));
        assert!(matches!(read_password_file(dir.path()), Err(KeystoreError::NotAFile(_))));
    }

    #[test]
    fn debug_never_prints_key_material() {
        let ks = Keystore::from_json(EIP2335_SCRYPT).expect("vector parses");
        let shown = format!("{ks:?}");
        assert!(!shown.contains("06ae90d5") && !shown.contains("d4e56740") && !shown.contains("d2217fe5"), "{shown}");
    }

    #[test]
    fn files_are_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.json");
        let sk = SecretKey::from_ikm(&[5; 32]).expect("ikm");
        let ks = Keystore::encrypt_with(&sk, "pw", cheap_kdf(), [3; 16], "").expect("encrypts");
        ks.write_file(&path).expect("writes");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(ks.write_file(&path), Err(KeystoreError::AlreadyExists(_))));
        let pw = dir.path().join("pw.txt");
        fs::write(&pw, "pw\r\n").expect("write password");
        let read = Keystore::read_file(&path).expect("reads");
        let back = read.decrypt(&read_password_file(&pw).expect("password")).expect("decrypts");
        assert_eq!(back.public_key(), sk.public_key());
    }

    #[test]
    fn tampered_pubkey_is_detected() {
        let sk = SecretKey::from_ikm(&[5; 32]).expect("ikm");
        let mut ks = Keystore::encrypt_with(&sk, "pw", cheap_kdf(), [3; 16], "").expect("encrypts");
        ks.pubkey =
            alloy_primitives::hex::encode(SecretKey::from_ikm(&[6; 32]).expect("ikm").public_key().to_compressed());
        assert!(matches!(ks.decrypt("pw"), Err(KeystoreError::PublicKeyMismatch)));
    }
}
