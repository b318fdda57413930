//! [`status`]: is the devnet of a data directory running, and is it the one `devnet.json` describes?

use std::path::Path;

use alloy::providers::{Provider, ProviderBuilder};
use vouch_contracts::{AddressBook, CallError, KeyRegistry};

use crate::{DevnetError, DevnetManifest, devnet::parse_url};

/// A running devnet, as [`status`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevnetStatus {
    /// `devnet.json`.
    pub manifest: DevnetManifest,
    /// `addresses.json`, confirmed against the chain.
    pub address_book: AddressBook,
    /// The chain's latest block.
    pub block_number: u64,
}

/// Reads `<data_dir>/devnet.json` and `addresses.json` and checks the devnet they describe is up: its RPC endpoint
/// answers with the manifest's chain id, the address book matches the chain (code at every address, contracts wired
/// to each other: [`AddressBook::check`]), and every operator's registered BLS key is the manifest's. The last check
/// tells this devnet from a later one on the same port: a fresh devnet deploys to the same addresses, but its
/// operators' keys are new.
pub async fn status(data_dir: &Path) -> Result<DevnetStatus, DevnetError> {
    let manifest = DevnetManifest::load(data_dir)?;
    let address_book = AddressBook::load(data_dir.join(&manifest.address_book))?;
    let rpc_url = manifest.rpc_url.clone();
    let provider = ProviderBuilder::new().connect_http(parse_url(&rpc_url)?);
    let not_running = |source: CallError| DevnetError::NotRunning {
        rpc_url: rpc_url.clone(),
        pid: manifest.anvil_pid,
        source: Box::new(source),
    };
    let chain_id = provider.get_chain_id().await.map_err(|e| not_running(e.into()))?;
    if chain_id != manifest.chain_id {
        return Err(DevnetError::ChainMismatch { rpc_url, expected: manifest.chain_id, actual: chain_id });
    }
    address_book.check(&provider).await?;
    let registry = KeyRegistry::new(address_book.contracts.key_registry, &provider);
    for operator in &manifest.operators {
        let registered = registry.keyOf(operator.account.address).call().await.map_err(|e| not_running(e.into()))?;
        let expected = operator.public_key()?.to_eip2537();
        if registered.as_ref() != expected.as_slice() {
            return Err(DevnetError::OtherDevnet {
                rpc_url,
                reason: format!(
                    "operator {} ({}) has another BLS key on chain than devnet.json says",
                    operator.index, operator.account.address
                ),
            });
        }
    }
    let block_number = provider.get_block_number().await.map_err(|e| not_running(e.into()))?;
    Ok(DevnetStatus { manifest, address_book, block_number })
}
