//! What every command gets: the resolved settings, the output mode, and the ways to unlock the transaction key and
//! connect to the chain.

use std::path::PathBuf;

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::Address;
use eyre::{bail, eyre};

use crate::{
    chain::Chain,
    config::Settings,
    keyring::{self, KeyKind},
    output::Output,
};

/// One invocation's context.
pub(crate) struct Ctx {
    /// Resolved settings.
    pub(crate) settings: Settings,
    /// Output mode.
    pub(crate) out: Output,
}

impl Ctx {
    /// `<datadir>/keys`.
    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.settings.keys_dir()
    }

    /// The transaction key's keystore: `--from` (name or path), else the only transaction key in `<datadir>/keys`.
    pub(crate) fn tx_keystore(&self) -> eyre::Result<PathBuf> {
        let keys = self.keys_dir();
        if let Some(from) = &self.settings.from {
            return keyring::resolve(&keys, &from.value, KeyKind::Tx);
        }
        let names = keyring::names(&keys, KeyKind::Tx);
        match names.as_slice() {
            [only] => Ok(keyring::keystore_path(&keys, only, KeyKind::Tx)),
            [] => bail!(
                "no transaction key in {}: create one with `vouch keys new` or import one with `vouch keys import`",
                keys.display()
            ),
            many => bail!(
                "several transaction keys in {} ({}): choose one with --from <NAME>",
                keys.display(),
                many.join(", ")
            ),
        }
    }

    /// The transaction key's password file: `--password-file`, else the one beside the keystore.
    fn tx_password_file(&self, keystore: &std::path::Path) -> eyre::Result<PathBuf> {
        let given = self.settings.password_file.as_ref().map(|s| s.value.as_path());
        keyring::password_file_for(keystore, given, "--password-file")
    }

    /// Unlocks the transaction key (the KDF runs on a blocking thread).
    pub(crate) async fn signer(&self) -> eyre::Result<PrivateKeySigner> {
        let keystore = self.tx_keystore()?;
        let password_file = self.tx_password_file(&keystore)?;
        blocking(move || keyring::decrypt_tx(&keystore, &password_file)).await
    }

    /// A read-only connection.
    pub(crate) async fn connect(&self) -> eyre::Result<Chain> {
        Chain::connect(&self.settings, self.out, None).await
    }

    /// A connection that sends transactions with the transaction key.
    pub(crate) async fn connect_signing(&self) -> eyre::Result<Chain> {
        let signer = self.signer().await?;
        self.out.detail(&format!("transaction key {}", signer.address()));
        Chain::connect(&self.settings, self.out, Some(signer)).await
    }

    /// The transaction key's address as its keystore records it (no password needed).
    pub(crate) fn own_address(&self) -> eyre::Result<Address> {
        let keystore = self.tx_keystore()?;
        keyring::tx_address(&keystore)?.ok_or_else(|| {
            eyre!("{} does not record its address: name the account explicitly (an address)", keystore.display())
        })
    }

    /// An account argument: an address, or the name of a transaction key in `<datadir>/keys`.
    pub(crate) fn account(&self, spec: &str) -> eyre::Result<Address> {
        if let Ok(address) = spec.parse::<Address>() {
            return Ok(address);
        }
        let keys = self.keys_dir();
        if keyring::check_name(spec).is_ok() {
            let path = keyring::keystore_path(&keys, spec, KeyKind::Tx);
            if path.is_file() {
                return keyring::tx_address(&path)?
                    .ok_or_else(|| eyre!("{} does not record its address: give the address instead", path.display()));
            }
        }
        bail!("`{spec}` is neither an address (0x… with 40 hex digits) nor a transaction key in {}", keys.display())
    }
}

/// Runs blocking work (keystore KDFs, pairings) off the async thread.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> eyre::Result<T> + Send + 'static,
) -> eyre::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| eyre!("a background task failed: {e}"))?
}
