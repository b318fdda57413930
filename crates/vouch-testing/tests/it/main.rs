//! End-to-end tests of the operator node through the harness: a real anvil, the real contracts, in-process nodes
//! running the echo blueprint.

mod settle;
