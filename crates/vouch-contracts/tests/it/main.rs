//! Integration tests of vouch-contracts against a real anvil (one binary, as every crate in the workspace).

mod anvil;
mod deploy;
mod eip3009;
mod errors;
mod slasher;
