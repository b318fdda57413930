//! Integration tests of the `vouch` binary (one test binary, as every crate in the workspace): the command tree and
//! its `--help` snapshots, errors and settings without a chain, and the whole protocol against a real anvil.

mod devnet;
mod e2e;
mod errors;
mod gateway;
mod help;
mod node;
mod support;
