//! Integration tests of vouch-devnet against a real anvil (one binary, as every crate in the workspace). Each test
//! starts its own devnet (port 0, temporary data directory), so they run in parallel without sharing state.

mod calls;
mod common;
mod delegation;
mod deploy;
mod lifecycle;
mod operators;
mod service;
mod slashing;
