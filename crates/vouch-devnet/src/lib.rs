//! A one-process local Vouch network for tests, demos and development.
//!
//! [`Devnet::start`] starts anvil (the one `./scripts/setup.sh` installs, `--hardfork prague` for the EIP-2537 BLS
//! precompiles), deploys the protocol with [`vouch_contracts::deploy`], and then sets up, with real transactions:
//!
//! - the **deployer**: anvil's development account 0, owner (minter) of the dev tokens and the protocol's treasury;
//! - the **developer**: owns the demo blueprint (jobs `echo` and `hash` (keccak256), priced in Vouch USD) and earns its
//!   developer fee;
//! - the **customer**: holds Vouch USD, owns the service and pays for calls;
//! - **N operators** (default 3): each a fresh transaction key and BLS key, funded with ETH and stake tokens, the BLS
//!   key registered in `KeyRegistry` with its proof of possession, registered in `VouchStaking` (placeholder endpoint
//!   `http://127.0.0.1:<rpc port + 1 + i>`, 10% commission) with its self-stake;
//! - a **public service** of the blueprint run by every operator (requested by the customer, approved by each
//!   operator, hence active with its stake snapshot).
//!
//! It is a library for integration tests (port 0, temporary data directory, dropped = stopped) and for the CLI
//! ([`Devnet::run_until_ctrl_c`], [`status`]).
//!
//! # Data directory
//!
//! ```text
//! <data dir>/
//!   addresses.json          the deployment: vouch_contracts::AddressBook (chain id, contracts, treasury)
//!   devnet.json             DevnetManifest: RPC URL, chain id, anvil pid, accounts, operators, blueprint, service
//!   blueprint.json          the demo blueprint's metadata (its keccak256 is the on-chain metadataHash)
//!   anvil.log               anvil's output
//!   keys/                   mode 0700, the vouch CLI's layout (`vouch --datadir <data dir> --from customer …`)
//!     <name>.eth.json       transaction key: encrypted JSON keystore (Web3 Secret Storage v3, geth `address` field)
//!     <name>.eth.password   its password (48 random hex characters), mode 0600
//!     operator-<i>.bls.json      result-signing key: EIP-2335 keystore
//!     operator-<i>.bls.password  its password, mode 0600
//! ```
//! with `<name>` = `deployer`, `developer`, `customer`, `operator-0`, `operator-1`, …. `devnet.json` holds addresses,
//! public keys and paths (relative to the data directory), never a private key. Keystores use scrypt n = 2^10
//! ([`KEYSTORE_SCRYPT_LOG_N`]): light, because a devnet writes several keys on every start, their passwords lie beside
//! them, and they guard nothing.
//!
//! A data directory must be new or empty: a devnet never overwrites keys. It stays after [`Devnet::stop`] (with
//! `devnet.json` naming a stopped anvil) unless [`DevnetConfig::ephemeral`] is set or no directory was given (a
//! temporary one).
//!
//! # Determinism
//!
//! On a fresh anvil the deployer's nonces, hence every contract address, are the same on every start with the same
//! [`DevnetConfig::deploy`]; the blueprint is 1, the service 1, the first `callJob` call 1. Keys, passwords, the RPC
//! port (when 0) and timestamps are new every time.
//!
//! Design: `docs/design/devnet.md`.

mod anvil;
mod config;
mod devnet;
mod error;
mod keys;
mod manifest;
mod status;

pub use anvil::{find_anvil, repo_anvil};
pub use config::{BlueprintConfig, DevnetConfig, Funding, JobConfig, ONE_ETH, ONE_VST, ONE_VUSD};
pub use devnet::{Devnet, Operator};
pub use error::DevnetError;
pub use keys::{Account, KEYSTORE_SCRYPT_LOG_N, read_account, read_bls_key};
pub use manifest::{
    ADDRESS_BOOK_FILE, ANVIL_LOG_FILE, BLUEPRINT_FILE, DevnetManifest, KEYS_DIR, MANIFEST_FILE, MANIFEST_VERSION,
    ManifestAccount, ManifestAccounts, ManifestBlueprint, ManifestJob, ManifestOperator, ManifestService,
};
pub use status::{DevnetStatus, status};
