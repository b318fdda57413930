//! `vouch keys`: BLS keystores (EIP-2335) with password files.

use super::{Output, hex0x};
use clap::Subcommand;
use eyre::{WrapErr, bail};
use serde_json::json;
use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};
use vouch_crypto::{
    Keystore, PublicKey, SecretKey,
    keystore::{read_password_file, write_private},
};
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a BLS signing key in `<datadir>/keys/<name>.bls.json`, encrypted under a password file.
    New {
        /// Name of the key (file stem).
        #[arg(long, default_value = "operator")]
        name: String,
        /// Password file to encrypt with; by default a random password is written to
        /// `<datadir>/keys/<name>.bls.password` (mode 0600).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Show the public key of a BLS keystore (no password needed).
    Show {
        /// The keystore file.
        keystore: PathBuf,
    },
}

pub(crate) fn run(cmd: KeysCommand, datadir: &Path, out: &Output) -> eyre::Result<()> {
    match cmd {
        KeysCommand::New { name, password_file } => {
            let created = new_key(datadir, &name, password_file.as_deref())?;
            let pk = created.public_key;
            out.emit(
                &json!({
                    "kind": "bls",
                    "use": "signs job results (never sends transactions)",
                    "publicKey": pk.to_string(),
                    "publicKeyEip2537": hex0x(pk.to_eip2537()),
                    "keystore": created.keystore,
                    "passwordFile": created.password_file,
                }),
                &format!(
                    "BLS signing key (signs job results; never sends transactions)\n  public key  {pk}\n  keystore    {}\n  password    {}",
                    created.keystore.display(),
                    created.password_file.display()
                ),
            );
            Ok(())
        }
        KeysCommand::Show { keystore } => {
            let ks = Keystore::read_file(&keystore)?;
            let bytes = alloy_primitives::hex::decode(&ks.pubkey).wrap_err("keystore pubkey is not hex")?;
            let pk = PublicKey::from_compressed(&bytes).wrap_err("keystore pubkey is not a valid BLS key")?;
            out.emit(
                &json!({"kind": "bls", "publicKey": pk.to_string(), "publicKeyEip2537": hex0x(pk.to_eip2537()), "uuid": ks.uuid}),
                &format!("BLS signing key {pk}\n  EIP-2537    {}", hex0x(pk.to_eip2537())),
            );
            Ok(())
        }
    }
}

/// A key written to disk.
pub(crate) struct CreatedKey {
    pub(crate) public_key: PublicKey,
    pub(crate) keystore: PathBuf,
    pub(crate) password_file: PathBuf,
}

/// Creates a BLS key and its keystore (and a random password file unless one is given).
pub(crate) fn new_key(datadir: &Path, name: &str, password_file: Option<&Path>) -> eyre::Result<CreatedKey> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("key name {name:?}: use 1-64 characters from [A-Za-z0-9_-]");
    }
    let dir = datadir.join("keys");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .wrap_err_with(|| format!("creating {}", dir.display()))?;
    let keystore_path = dir.join(format!("{name}.bls.json"));
    if keystore_path.exists() {
        bail!("{} already exists: choose another --name or remove it", keystore_path.display());
    }
    let password_path = match password_file {
        Some(p) => p.to_owned(),
        None => {
            let p = dir.join(format!("{name}.bls.password"));
            let mut raw = Zeroizing::new([0u8; 24]);
            getrandom::fill(raw.as_mut_slice()).map_err(|e| eyre::eyre!("system randomness unavailable: {e}"))?;
            let password = Zeroizing::new(alloy_primitives::hex::encode(raw.as_slice()));
            write_private(&p, password.as_bytes())?;
            p
        }
    };
    let password = read_password_file(&password_path)?;
    if password.is_empty() {
        bail!("{}: the password is empty; a keystore needs a password", password_path.display());
    }
    let secret = SecretKey::random()?;
    let keystore = Keystore::encrypt(&secret, &password, &format!("vouch BLS key {name}"))?;
    keystore.write_file(&keystore_path)?;
    Ok(CreatedKey { public_key: secret.public_key(), keystore: keystore_path, password_file: password_path })
}

/// Decrypts a keystore with its password file.
pub(crate) fn unlock(keystore: &Path, password_file: &Path) -> eyre::Result<SecretKey> {
    let ks = Keystore::read_file(keystore)?;
    let password = read_password_file(password_file)?;
    ks.decrypt(&password).wrap_err_with(|| format!("unlocking {}", keystore.display()))
}
