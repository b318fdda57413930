//! `vouch keys`: transaction keys (ECDSA, encrypted JSON keystores) and result-signing keys (BLS, EIP-2335
//! keystores) in `<datadir>/keys`, with password files.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use eyre::bail;
use serde_json::{Value, json};
use vouch_crypto::{PublicKey, SecretKey};

use crate::{
    context::{Ctx, blocking},
    keyring::{self, KeyKind},
    output::hex0x,
};

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create keys: by default a transaction key <NAME>.eth.json and a BLS key <NAME>.bls.json
    ///
    /// Each keystore is encrypted under the password in --password-file, or under a random password written to
    /// <keystore>.password beside it (mode 0600).
    New {
        /// Name of the key (file stem in <datadir>/keys)
        #[arg(long, default_value = "operator")]
        name: String,
        /// Which keys to create
        #[arg(long, value_enum, default_value_t = NewKind::Both)]
        kind: NewKind,
    },
    /// List the keys in <datadir>/keys and what each is for (no password needed)
    List,
    /// Show a key: its address (transaction key) or public key (BLS key); no password needed
    Show {
        /// A key name in <datadir>/keys (shows both kinds) or a keystore file
        key: String,
    },
    /// Import a key: a keystore file, or a file holding a hex private key (encrypted here)
    ///
    /// A keystore is checked with --password-file and copied; a raw private key is encrypted under --password-file
    /// or under a new random password beside the keystore.
    Import {
        /// The keystore or private-key file
        file: PathBuf,
        /// What kind of key it is
        #[arg(long, value_enum)]
        kind: KeyKind,
        /// Name to store it under in <datadir>/keys
        #[arg(long)]
        name: String,
    },
}

/// `--kind` of `keys new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NewKind {
    /// A transaction key and a BLS key (what an operator needs)
    Both,
    /// A transaction key only (customers, delegators, developers)
    Tx,
    /// A BLS key only
    Bls,
}

pub(crate) async fn run(cmd: KeysCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        KeysCommand::New { name, kind } => new(ctx, &name, kind).await,
        KeysCommand::List => list(ctx),
        KeysCommand::Show { key } => show(ctx, &key),
        KeysCommand::Import { file, kind, name } => import(ctx, &file, kind, &name).await,
    }
}

/// One key as printed by `new`, `list`, `show`, `import`.
struct KeyView {
    name: Option<String>,
    kind: KeyKind,
    /// Address (transaction key) or compressed public key (BLS key).
    id: Option<String>,
    keystore: PathBuf,
    password_file: Option<PathBuf>,
    extra: Value,
}

impl KeyView {
    fn json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "kind": match self.kind { KeyKind::Tx => "tx", KeyKind::Bls => "bls" },
            "label": self.kind.label(),
            "use": self.kind.purpose(),
            "keystore": self.keystore,
        });
        match self.kind {
            KeyKind::Tx => v["address"] = json!(self.id),
            KeyKind::Bls => v["publicKey"] = json!(self.id),
        }
        if let Some(p) = &self.password_file {
            v["passwordFile"] = json!(p);
        }
        if let (Some(obj), Some(extra)) = (v.as_object_mut(), self.extra.as_object()) {
            obj.extend(extra.clone());
        }
        v
    }

    fn text(&self) -> String {
        let what = match self.kind {
            KeyKind::Tx => "address   ",
            KeyKind::Bls => "public key",
        };
        let mut lines = vec![
            format!(
                "{}{} ({})",
                self.name.as_deref().map(|n| format!("{n}: ")).unwrap_or_default(),
                self.kind.label(),
                self.kind.purpose()
            ),
            format!("  {what}  {}", self.id.as_deref().unwrap_or("unknown (the keystore does not record it)")),
            format!("  keystore    {}", self.keystore.display()),
        ];
        if let Some(p) = &self.password_file {
            lines.push(format!("  password    {}", p.display()));
        }
        lines.join("\n")
    }
}

fn emit(ctx: &Ctx, views: &[KeyView], json_key: &str) {
    let json = json!({ json_key: views.iter().map(KeyView::json).collect::<Vec<_>>() });
    let text = views.iter().map(KeyView::text).collect::<Vec<_>>().join("\n");
    ctx.out.emit(&json, &text);
}

/// A password file this command wrote: removed again unless the keystore it protects was written too.
struct WrittenPassword(Option<PathBuf>);

impl WrittenPassword {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for WrittenPassword {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The password file for a new key at `keystore`: the one given, else a new random one beside it.
fn new_password_file(ctx: &Ctx, keystore: &Path) -> eyre::Result<(PathBuf, WrittenPassword)> {
    match &ctx.settings.password_file {
        Some(given) => Ok((given.value.clone(), WrittenPassword(None))),
        None => {
            let path = keyring::default_password_path(keystore);
            keyring::write_random_password(&path)?;
            Ok((path.clone(), WrittenPassword(Some(path))))
        }
    }
}

async fn new(ctx: &Ctx, name: &str, kind: NewKind) -> eyre::Result<()> {
    keyring::check_name(name)?;
    let keys = ctx.keys_dir();
    let kinds: &[KeyKind] = match kind {
        NewKind::Both => &[KeyKind::Tx, KeyKind::Bls],
        NewKind::Tx => &[KeyKind::Tx],
        NewKind::Bls => &[KeyKind::Bls],
    };
    for k in kinds {
        let path = keyring::keystore_path(&keys, name, *k);
        if path.exists() {
            bail!("{} already exists: choose another --name or remove it", path.display());
        }
        if ctx.settings.password_file.is_none() && keyring::default_password_path(&path).exists() {
            bail!(
                "{} already exists: remove it or pass --password-file",
                keyring::default_password_path(&path).display()
            );
        }
    }
    keyring::ensure_keys_dir(&keys)?;
    let mut views = Vec::new();
    for k in kinds {
        let keystore = keyring::keystore_path(&keys, name, *k);
        let (password_file, written) = new_password_file(ctx, &keystore)?;
        let view = match k {
            KeyKind::Tx => {
                let (ks, pw) = (keystore.clone(), password_file.clone());
                let signer = blocking(move || keyring::create_tx(&ks, &pw, None)).await?;
                written.keep();
                KeyView {
                    name: Some(name.to_owned()),
                    kind: *k,
                    id: Some(signer.address().to_string()),
                    keystore,
                    password_file: Some(password_file),
                    extra: json!({}),
                }
            }
            KeyKind::Bls => {
                let (ks, pw, label) = (keystore.clone(), password_file.clone(), format!("vouch BLS key {name}"));
                let public_key = blocking(move || {
                    let secret = SecretKey::random()?;
                    keyring::create_bls(&ks, &pw, &secret, &label)?;
                    Ok(secret.public_key())
                })
                .await?;
                written.keep();
                bls_view(Some(name.to_owned()), keystore, Some(password_file), &public_key)
            }
        };
        views.push(view);
    }
    emit(ctx, &views, "created");
    Ok(())
}

fn bls_view(name: Option<String>, keystore: PathBuf, password_file: Option<PathBuf>, pk: &PublicKey) -> KeyView {
    KeyView {
        name,
        kind: KeyKind::Bls,
        id: Some(pk.to_string()),
        keystore,
        password_file,
        extra: json!({ "publicKeyEip2537": hex0x(pk.to_eip2537()) }),
    }
}

fn view_of(name: Option<String>, kind: KeyKind, keystore: PathBuf) -> eyre::Result<KeyView> {
    let password = keyring::default_password_path(&keystore);
    let password_file = password.is_file().then_some(password);
    match kind {
        KeyKind::Tx => {
            let id = keyring::tx_address(&keystore)?.map(|a| a.to_string());
            Ok(KeyView { name, kind, id, keystore, password_file, extra: json!({}) })
        }
        KeyKind::Bls => {
            let pk = keyring::bls_public_key(&keystore)?;
            Ok(bls_view(name, keystore, password_file, &pk))
        }
    }
}

fn list(ctx: &Ctx) -> eyre::Result<()> {
    let keys = ctx.keys_dir();
    let mut views = Vec::new();
    let mut names: Vec<String> = [KeyKind::Tx, KeyKind::Bls].iter().flat_map(|k| keyring::names(&keys, *k)).collect();
    names.sort();
    names.dedup();
    for name in names {
        for kind in [KeyKind::Tx, KeyKind::Bls] {
            let path = keyring::keystore_path(&keys, &name, kind);
            if path.is_file() {
                views.push(view_of(Some(name.clone()), kind, path)?);
            }
        }
    }
    if views.is_empty() && !ctx.out.json {
        println!("no keys in {}: create them with `vouch keys new --name <NAME>`", keys.display());
        return Ok(());
    }
    emit(ctx, &views, "keys");
    Ok(())
}

fn show(ctx: &Ctx, key: &str) -> eyre::Result<()> {
    let path = Path::new(key);
    let views = if path.is_file() {
        let Some(kind) = keyring::sniff_kind(path)? else {
            bail!(
                "{} is neither an EIP-2335 keystore (BLS) nor an encrypted JSON keystore (transaction key)",
                path.display()
            );
        };
        vec![view_of(None, kind, path.to_owned())?]
    } else {
        keyring::check_name(key)?;
        let keys = ctx.keys_dir();
        let views = [KeyKind::Tx, KeyKind::Bls]
            .into_iter()
            .map(|kind| (kind, keyring::keystore_path(&keys, key, kind)))
            .filter(|(_, p)| p.is_file())
            .map(|(kind, p)| view_of(Some(key.to_owned()), kind, p))
            .collect::<eyre::Result<Vec<_>>>()?;
        if views.is_empty() {
            bail!("no key named `{key}` in {} (see `vouch keys list`)", keys.display());
        }
        views
    };
    emit(ctx, &views, "keys");
    Ok(())
}

async fn import(ctx: &Ctx, file: &Path, kind: KeyKind, name: &str) -> eyre::Result<()> {
    keyring::check_name(name)?;
    if !file.is_file() {
        bail!("{} does not exist or is not a file", file.display());
    }
    let keys = ctx.keys_dir();
    let keystore = keyring::keystore_path(&keys, name, kind);
    if keystore.exists() {
        bail!("{} already exists: choose another --name or remove it", keystore.display());
    }
    let sniffed = keyring::sniff_kind(file)?;
    let given_password = ctx.settings.password_file.as_ref().map(|s| s.value.clone());
    keyring::ensure_keys_dir(&keys)?;
    let view = match (kind, sniffed) {
        (KeyKind::Tx, Some(KeyKind::Bls)) | (KeyKind::Bls, Some(KeyKind::Tx)) => bail!(
            "{} is a {} keystore, not a {}: pass --kind {}",
            file.display(),
            sniffed.map_or("", |k| k.label()),
            kind.label(),
            if kind == KeyKind::Tx { "bls" } else { "tx" }
        ),
        (_, Some(_)) => {
            let Some(password_file) = given_password else {
                bail!("importing a keystore needs its password: pass --password-file <FILE>");
            };
            let (src, dst, pw) = (file.to_owned(), keystore.clone(), password_file.clone());
            match kind {
                KeyKind::Tx => {
                    let signer = blocking(move || keyring::import_tx_keystore(&src, &dst, &pw)).await?;
                    KeyView {
                        name: Some(name.to_owned()),
                        kind,
                        id: Some(signer.address().to_string()),
                        keystore,
                        password_file: Some(password_file),
                        extra: json!({}),
                    }
                }
                KeyKind::Bls => {
                    let pk = blocking(move || {
                        let secret = keyring::decrypt_bls(&src, &pw)?;
                        let text = std::fs::read(&src)?;
                        vouch_crypto::keystore::write_private(&dst, &text)?;
                        Ok(secret.public_key())
                    })
                    .await?;
                    bls_view(Some(name.to_owned()), keystore, Some(password_file), &pk)
                }
            }
        }
        (_, None) => {
            let secret = keyring::read_raw_secret(file)?;
            let (password_file, written) = new_password_file(ctx, &keystore)?;
            let (dst, pw) = (keystore.clone(), password_file.clone());
            match kind {
                KeyKind::Tx => {
                    let signer = blocking(move || keyring::create_tx(&dst, &pw, Some(&secret))).await?;
                    written.keep();
                    KeyView {
                        name: Some(name.to_owned()),
                        kind,
                        id: Some(signer.address().to_string()),
                        keystore,
                        password_file: Some(password_file),
                        extra: json!({}),
                    }
                }
                KeyKind::Bls => {
                    let label = format!("vouch BLS key {name}");
                    let pk = blocking(move || {
                        let secret = SecretKey::from_bytes(secret.as_slice())
                            .map_err(|e| eyre::eyre!("the file does not hold a BLS secret key: {e}"))?;
                        keyring::create_bls(&dst, &pw, &secret, &label)?;
                        Ok(secret.public_key())
                    })
                    .await?;
                    written.keep();
                    bls_view(Some(name.to_owned()), keystore, Some(password_file), &pk)
                }
            }
        }
    };
    emit(ctx, &[view], "imported");
    Ok(())
}

/// A key written to disk by the demo.
pub(crate) struct CreatedKey {
    pub(crate) public_key: PublicKey,
    pub(crate) keystore: PathBuf,
    pub(crate) password_file: PathBuf,
}

/// Creates a BLS key `<dir>/keys/<name>.bls.json` with a random password file beside it (used by `vouch demo`).
pub(crate) fn new_bls_key(dir: &Path, name: &str) -> eyre::Result<CreatedKey> {
    keyring::check_name(name)?;
    let keys = dir.join("keys");
    keyring::ensure_keys_dir(&keys)?;
    let keystore = keyring::keystore_path(&keys, name, KeyKind::Bls);
    let password_file = keyring::default_password_path(&keystore);
    keyring::write_random_password(&password_file)?;
    let secret = SecretKey::random()?;
    keyring::create_bls(&keystore, &password_file, &secret, &format!("vouch BLS key {name}"))?;
    Ok(CreatedKey { public_key: secret.public_key(), keystore, password_file })
}
