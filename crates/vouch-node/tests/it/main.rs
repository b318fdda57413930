//! Integration tests of the operator node, against a real anvil where the chain is involved.

mod guard;
mod watcher;
