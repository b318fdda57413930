//! Rust bindings of the Vouch contracts, and what every tool needs to use them:
//!
//! - one module per deployable contract ([`vouch_protocol`], [`vouch_staking`], …) with alloy `sol!` bindings
//!   generated from the committed ABIs in `artifacts/` (`#[sol(rpc)]`: `VouchProtocol::new(address, provider)`
//!   gives typed calls and transactions). This is the only crate of the workspace that contains `sol!`;
//! - [`ContractError`]: revert data decoded into the contracts' custom errors, printed readably
//!   (`ServiceNotActive(serviceId 7, status Requested)`), and [`CallError`] to decode reverts with `?`;
//! - [`deploy`]: the whole protocol in the documented order, returning its [`AddressBook`];
//! - [`AddressBook`]: the JSON file naming one deployment, which every other tool reads.
//!
//! The artifacts are exported from `contracts/` by `scripts/export-artifacts.sh`, and `scripts/test.sh` fails when
//! they no longer match the Solidity sources. Design: `docs/design/bindings.md`.

mod address_book;
mod contracts;
mod deploy;
mod eip3009;
mod error;
mod link;
pub mod view;

pub use address_book::{ADDRESS_BOOK_VERSION, AddressBook, AddressBookError, ContractAddresses};
pub use contracts::{
    Contract, PROTOCOL_ADMIN_LIBRARY, key_registry, protocol_admin, stake_token, vouch_protocol, vouch_slasher,
    vouch_staking, vouch_usd,
};
pub use deploy::{DeployConfig, DeployError, deploy};
pub use eip3009::{
    AuthorizationExt, PaymentError, PaymentExpectation, SignatureFault, TRANSFER_WITH_AUTHORIZATION_TYPE, TokenDomain,
    TransferAuthorization, X402_MIN_VALIDITY, chain_now, check_payment, check_payment_offline,
};
pub use error::{CallError, ContractError, RevertData, decode_revert, decode_revert_for};
pub use link::{Library, LinkError, link, placeholder};

pub use key_registry::KeyRegistry;
pub use protocol_admin::ProtocolAdmin;
pub use stake_token::StakeToken;
pub use vouch_protocol::VouchProtocol;
pub use vouch_slasher::VouchSlasher;
pub use vouch_staking::VouchStaking;
pub use vouch_usd::VouchUSD;

/// The alloy crate these bindings are built with, so users name the same types (`alloy::providers::Provider`, …).
pub use alloy;
