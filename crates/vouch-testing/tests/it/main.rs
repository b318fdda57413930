//! End-to-end tests of the operator node through the harness: a real anvil, the real contracts, in-process nodes
//! running the echo blueprint.

mod api;
mod batches;
mod faults;
mod settle;
mod verification;

use alloy_primitives::U256;
use vouch_testing::TestNetwork;

/// `anvil_mine`.
pub(crate) async fn mine(net: &TestNetwork, blocks: u64) {
    use vouch_contracts::alloy::providers::Provider;
    let _: serde_json::Value =
        net.devnet().read_provider().raw_request("anvil_mine".into(), (U256::from(blocks),)).await.expect("anvil_mine");
}

/// Replaces the last `depth` blocks with as many empty ones.
pub(crate) async fn reorg(net: &TestNetwork, depth: u64) {
    use vouch_contracts::alloy::providers::Provider;
    let _: serde_json::Value = net
        .devnet()
        .read_provider()
        .raw_request("anvil_reorg".into(), (depth, Vec::<serde_json::Value>::new()))
        .await
        .expect("anvil_reorg");
}

/// `getCall(call).status`.
pub(crate) async fn call_status(net: &TestNetwork, call: vouch_primitives::CallId) -> u8 {
    let protocol = vouch_contracts::VouchProtocol::new(
        net.devnet().address_book().contracts.protocol,
        net.devnet().read_provider(),
    );
    protocol.getCall(call.0).call().await.expect("getCall").status
}
