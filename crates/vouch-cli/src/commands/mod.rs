//! One module per subcommand.

pub(crate) mod blueprint;
pub(crate) mod call;
pub(crate) mod certify;
pub(crate) mod claim;
pub(crate) mod config;
pub(crate) mod delegate;
pub(crate) mod demo;
pub(crate) mod devnet;
pub(crate) mod gateway;
pub(crate) mod keys;
pub(crate) mod node;
pub(crate) mod operator;
pub(crate) mod service;
pub(crate) mod slash;
pub(crate) mod verify;
pub(crate) mod x402;
