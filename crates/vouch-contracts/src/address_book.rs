//! The address book: where one deployment of the protocol lives. Every Vouch tool (node, gateway, CLI, devnet)
//! reads it instead of taking seven addresses on its command line.
//!
//! ```json
//! {
//!   "version": 1,
//!   "chainId": 31337,
//!   "deployedAtBlock": 1,
//!   "contracts": {
//!     "vouchUsd": "0x…", "stakeToken": "0x…", "keyRegistry": "0x…", "staking": "0x…",
//!     "protocolAdmin": "0x…", "protocol": "0x…", "slasher": "0x…"
//!   },
//!   "treasury": "0x…"
//! }
//! ```
//! Unknown fields are refused (a typo must not silently fall back to something); a file of another `version` is
//! refused before its fields are read.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use alloy::{primitives::Address, providers::Provider};
use serde::{Deserialize, Serialize};

use crate::{
    contracts::{Contract, vouch_protocol::VouchProtocol, vouch_slasher::VouchSlasher, vouch_staking::VouchStaking},
    error::CallError,
};

/// The address book format this build reads and writes.
pub const ADDRESS_BOOK_VERSION: u32 = 1;

/// One deployment of the protocol: chain, contracts, treasury.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressBook {
    /// Format version, [`ADDRESS_BOOK_VERSION`].
    pub version: u32,
    /// The chain the contracts are deployed on (`eth_chainId`).
    pub chain_id: u64,
    /// Block of the first deployment transaction: indexers start reading events here.
    pub deployed_at_block: u64,
    /// The contracts.
    pub contracts: ContractAddresses,
    /// Where the protocol's fees (and integer-division dust, swept surplus) go.
    pub treasury: Address,
}

/// The protocol's contract addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractAddresses {
    /// The payment token: `VouchUSD` on a devnet, the chain's USDC (or another EIP-3009 token) in production.
    pub vouch_usd: Address,
    /// The stake token: `StakeToken` on a devnet, an existing ERC-20 in production.
    pub stake_token: Address,
    /// `KeyRegistry`.
    pub key_registry: Address,
    /// `VouchStaking`.
    pub staking: Address,
    /// The `ProtocolAdmin` library linked into `VouchProtocol`.
    pub protocol_admin: Address,
    /// `VouchProtocol`.
    pub protocol: Address,
    /// `VouchSlasher`.
    pub slasher: Address,
}

impl ContractAddresses {
    /// The address of `contract` (for the tokens: the payment and stake token in use, whatever their code).
    pub const fn get(&self, contract: Contract) -> Address {
        match contract {
            Contract::VouchUsd => self.vouch_usd,
            Contract::StakeToken => self.stake_token,
            Contract::KeyRegistry => self.key_registry,
            Contract::Staking => self.staking,
            Contract::ProtocolAdmin => self.protocol_admin,
            Contract::Protocol => self.protocol,
            Contract::Slasher => self.slasher,
        }
    }

    /// Every contract with its address, in deployment order.
    pub fn iter(&self) -> impl Iterator<Item = (Contract, Address)> + '_ {
        Contract::ALL.into_iter().map(|c| (c, self.get(c)))
    }
}

/// Why an address book could not be loaded, saved or confirmed against a chain.
#[derive(Debug, thiserror::Error)]
pub enum AddressBookError {
    /// There is no file at the path.
    #[error("address book {} does not exist (deploy the protocol first)", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("cannot read address book {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file could not be written (or renamed into place).
    #[error("cannot write address book {}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not JSON, or not an address book (missing or unknown field, malformed address, …).
    #[error("address book {} is invalid: {source}", path.display())]
    Json {
        /// The path.
        path: PathBuf,
        /// The parse error, with line and column.
        source: serde_json::Error,
    },
    /// The file is of another format version.
    #[error("address book {} has version {found}, this build reads version {ADDRESS_BOOK_VERSION}", path.display())]
    Version {
        /// The path.
        path: PathBuf,
        /// The `version` found (JSON text; `none` when missing).
        found: String,
    },
    /// The RPC endpoint is another chain than the address book's.
    #[error("the address book is for chain {book}, but the RPC endpoint serves chain {rpc}")]
    ChainId {
        /// Chain id in the address book.
        book: u64,
        /// Chain id the provider reports.
        rpc: u64,
    },
    /// There is no code at a contract's address.
    #[error("no code at {contract} address {address}: the address book belongs to another deployment or chain")]
    NoCode {
        /// The contract.
        contract: Contract,
        /// Its address in the book.
        address: Address,
    },
    /// A deployed contract points at another address than the book says (a book of another deployment whose
    /// addresses happen to hold code, e.g. on a restarted devnet).
    #[error("{getter} returns {actual}, but the address book says {expected}")]
    Mismatch {
        /// The getter called, e.g. `VouchProtocol.paymentToken()`.
        getter: &'static str,
        /// The address in the book.
        expected: Address,
        /// What the contract returned.
        actual: Address,
    },
    /// An RPC request failed while checking.
    #[error("checking the address book: {0}")]
    Rpc(#[source] CallError),
}

/// Distinguishes concurrent saves of this process in their temporary file names.
static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl AddressBook {
    /// Reads and validates the address book at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AddressBookError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => AddressBookError::NotFound { path: path.to_owned() },
            _ => AddressBookError::Read { path: path.to_owned(), source },
        })?;
        Self::from_json(&text).map_err(|e| e.at(path))
    }

    /// Parses an address book from JSON (errors carry an empty path; [`AddressBook::load`] fills it in).
    pub fn from_json(text: &str) -> Result<Self, AddressBookError> {
        let json = |source| AddressBookError::Json { path: PathBuf::new(), source };
        let value: serde_json::Value = serde_json::from_str(text).map_err(json)?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(ADDRESS_BOOK_VERSION)) => {}
            found => {
                let found = found.map_or_else(|| "none".to_owned(), ToString::to_string);
                return Err(AddressBookError::Version { path: PathBuf::new(), found });
            }
        }
        serde_json::from_str(text).map_err(json)
    }

    /// The address book as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of integers and addresses cannot fail.
        let mut json = serde_json::to_string_pretty(self).unwrap_or_default();
        json.push('\n');
        json
    }

    /// Writes the address book to `path` atomically: a temporary file in the same directory, flushed to disk, then
    /// renamed over `path`, so a reader never sees half a file. Creates the parent directory if needed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), AddressBookError> {
        let path = path.as_ref();
        let write_err = |source| AddressBookError::Write { path: path.to_owned(), source };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| write_err(io::Error::other("the path has no file name")))?;
        fs::create_dir_all(dir).map_err(write_err)?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            SAVE_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(self.to_json().as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }

    /// Confirms the address book describes the chain behind `provider`: same chain id, code at every contract,
    /// and the contracts wired to each other as the book says (protocol ↔ tokens, staking, registry, treasury;
    /// staking ↔ protocol, slasher, stake token; slasher → protocol).
    pub async fn check<P: Provider>(&self, provider: &P) -> Result<(), AddressBookError> {
        let rpc = |e| AddressBookError::Rpc(CallError::from(e));
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if chain_id != self.chain_id {
            return Err(AddressBookError::ChainId { book: self.chain_id, rpc: chain_id });
        }
        for (contract, address) in self.contracts.iter() {
            if provider.get_code_at(address).await.map_err(rpc)?.is_empty() {
                return Err(AddressBookError::NoCode { contract, address });
            }
        }

        let c = &self.contracts;
        let protocol = VouchProtocol::new(c.protocol, provider);
        let staking = VouchStaking::new(c.staking, provider);
        let slasher = VouchSlasher::new(c.slasher, provider);
        let expect = |getter: &'static str, contract: Contract, expected: Address| {
            move |result: Result<Address, alloy::contract::Error>| match result {
                Ok(actual) if actual == expected => Ok(()),
                Ok(actual) => Err(AddressBookError::Mismatch { getter, expected, actual }),
                Err(e) => Err(AddressBookError::Rpc(CallError::for_contract(contract, e))),
            }
        };
        let p = Contract::Protocol;
        let s = Contract::Staking;
        expect("VouchProtocol.paymentToken()", p, c.vouch_usd)(protocol.paymentToken().call().await)?;
        expect("VouchProtocol.STAKING()", p, c.staking)(protocol.STAKING().call().await)?;
        expect("VouchProtocol.KEY_REGISTRY()", p, c.key_registry)(protocol.KEY_REGISTRY().call().await)?;
        expect("VouchProtocol.TREASURY()", p, self.treasury)(protocol.TREASURY().call().await)?;
        expect("VouchStaking.protocol()", s, c.protocol)(staking.protocol().call().await)?;
        expect("VouchStaking.slasher()", s, c.slasher)(staking.slasher().call().await)?;
        expect("VouchStaking.stakeToken()", s, c.stake_token)(staking.stakeToken().call().await)?;
        expect("VouchSlasher.PROTOCOL()", Contract::Slasher, c.protocol)(slasher.PROTOCOL().call().await)?;
        Ok(())
    }
}

impl AddressBookError {
    /// Fills in the path of an error from [`AddressBook::from_json`].
    fn at(self, at: &Path) -> Self {
        match self {
            Self::Json { source, .. } => Self::Json { path: at.to_owned(), source },
            Self::Version { found, .. } => Self::Version { path: at.to_owned(), found },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> AddressBook {
        AddressBook {
            version: ADDRESS_BOOK_VERSION,
            chain_id: 31337,
            deployed_at_block: 1,
            contracts: ContractAddresses {
                vouch_usd: Address::repeat_byte(1),
                stake_token: Address::repeat_byte(2),
                key_registry: Address::repeat_byte(3),
                staking: Address::repeat_byte(4),
                protocol_admin: Address::repeat_byte(5),
                protocol: Address::repeat_byte(6),
                slasher: Address::repeat_byte(7),
            },
            treasury: Address::repeat_byte(8),
        }
    }

    #[test]
    fn json_is_camel_case_and_round_trips() {
        let json = book().to_json();
        for key in ["\"version\": 1", "\"chainId\": 31337", "\"deployedAtBlock\"", "\"vouchUsd\"", "\"protocolAdmin\""]
        {
            assert!(json.contains(key), "{key} missing from {json}");
        }
        assert_eq!(AddressBook::from_json(&json).expect("parses"), book());
    }

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/addresses.json");
        book().save(&path).expect("saves");
        assert_eq!(AddressBook::load(&path).expect("loads"), book());
        // Overwrite in place; no temporary file is left behind.
        let mut other = book();
        other.deployed_at_block = 9;
        other.save(&path).expect("saves again");
        assert_eq!(AddressBook::load(&path).expect("loads").deployed_at_block, 9);
        let names: Vec<_> = fs::read_dir(path.parent().expect("parent"))
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["addresses.json"]);
    }

    #[test]
    fn precise_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("addresses.json");
        assert!(matches!(AddressBook::load(&path), Err(AddressBookError::NotFound { .. })));

        fs::write(&path, "{ not json").expect("writes");
        let err = AddressBook::load(&path).expect_err("bad json");
        assert!(matches!(&err, AddressBookError::Json { path: p, .. } if p == &path), "{err:?}");
        assert!(err.to_string().contains("line 1"), "{err}");

        fs::write(&path, book().to_json().replace("\"version\": 1", "\"version\": 2")).expect("writes");
        let err = AddressBook::load(&path).expect_err("wrong version");
        assert!(matches!(&err, AddressBookError::Version { found, .. } if found == "2"), "{err:?}");

        fs::write(&path, book().to_json().replace("\"version\": 1,", "")).expect("writes");
        let err = AddressBook::load(&path).expect_err("no version");
        assert!(matches!(&err, AddressBookError::Version { found, .. } if found == "none"), "{err:?}");

        fs::write(&path, book().to_json().replace("\"treasury\"", "\"tresury\"")).expect("writes");
        let err = AddressBook::load(&path).expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `tresury`"), "{err}");

        fs::write(&path, book().to_json().replace("\"protocol\": ", "\"protocol\": 1, \"x\": ")).expect("writes");
        assert!(matches!(AddressBook::load(&path), Err(AddressBookError::Json { .. })));
    }
}
