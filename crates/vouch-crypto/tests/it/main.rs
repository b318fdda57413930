//! Integration tests of vouch-crypto (one binary, as every crate in the workspace).

mod encoding;
mod golden;
mod keystore;
mod points;
mod signing;
