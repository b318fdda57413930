//! The operator's keys, read from keystores with password files (never from the command line or the config file).

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use vouch_crypto::{Keystore, SecretKey, keystore::read_password_file};

use crate::{NodeError, config::OperatorConfig};

/// The keys a node signs with. `Debug` shows the address and the public key only.
pub struct NodeKeys {
    /// Transaction key (ECDSA): sends certificates and endpoint updates; its address is the operator.
    pub tx: PrivateKeySigner,
    /// Result-signing key (BLS12-381).
    pub bls: SecretKey,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKeys")
            .field("operator", &self.tx.address())
            .field("bls_public", &alloy_primitives::hex::encode_prefixed(self.bls.public_key().to_compressed()))
            .finish_non_exhaustive()
    }
}

impl NodeKeys {
    /// Decrypts both keystores named in `config`.
    pub fn load(config: &OperatorConfig) -> Result<Self, NodeError> {
        let tx = read_tx_key(&config.tx_keystore, &config.tx_password_file)?;
        let bls = read_bls_key(&config.bls_keystore, &config.bls_password_file)?;
        Ok(Self { tx, bls })
    }
}

fn key_error(what: &'static str, path: &Path, reason: impl std::fmt::Display) -> NodeError {
    NodeError::Key { what, path: path.to_owned(), reason: reason.to_string() }
}

/// A Web3 Secret Storage (v3) transaction keystore.
pub fn read_tx_key(keystore: &Path, password_file: &Path) -> Result<PrivateKeySigner, NodeError> {
    if keystore.as_os_str().is_empty() {
        return Err(key_error("transaction keystore", keystore, "not configured ([operator] tx_keystore)"));
    }
    let password =
        read_password_file(password_file).map_err(|e| key_error("transaction key password file", password_file, e))?;
    PrivateKeySigner::decrypt_keystore(keystore, password.as_bytes())
        .map_err(|e| key_error("transaction keystore", keystore, e))
}

/// An EIP-2335 BLS keystore.
pub fn read_bls_key(keystore: &Path, password_file: &Path) -> Result<SecretKey, NodeError> {
    if keystore.as_os_str().is_empty() {
        return Err(key_error("BLS keystore", keystore, "not configured ([operator] bls_keystore)"));
    }
    let password =
        read_password_file(password_file).map_err(|e| key_error("BLS key password file", password_file, e))?;
    let ks = Keystore::read_file(keystore).map_err(|e| key_error("BLS keystore", keystore, e))?;
    ks.decrypt(&password).map_err(|e| key_error("BLS keystore", keystore, e))
}
