//! Faults: a dead submitter, a node that was down while calls were made, a reorganised call, a missing guard.

use std::time::Duration;

use alloy_primitives::U256;
use serde_json::json;
use vouch_node::{Node, NodeError, NodeKeys, guard::GuardError};
use vouch_primitives::{CallId, ServiceId};
use vouch_testing::TestNetwork;

use crate::{call_status, mine, reorg};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The slot that submits first for `call` on a service of `n` operators.
fn designated(call: U256, n: usize) -> usize {
    usize::try_from(call % U256::from(n)).expect("small")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_designated_submitter_killed_another_node_settles() -> TestResult {
    // Quorum 6,000 bps of 3 equal stakes: any 2 operators certify.
    let mut net = TestNetwork::builder(vouch_echo::router()).quorum_bps(6_000).start().await?;
    let next = U256::from(1); // the first call of a fresh devnet
    let dead = designated(next, 3);
    net.kill_node(dead);
    let outcome = net.call(vouch_echo::ECHO, &json!({"message": "takeover"})).await?;
    assert_eq!(outcome.call_id, CallId(next));
    assert!(!outcome.certificate.signer_bitmap.bit(dead), "the dead node did not sign");
    assert_eq!(outcome.certificate.signer_bitmap.count_ones(), 2);
    let takeover = (dead + 1) % 3;
    // The receipt reaches the submitter a moment after the chain shows the call settled.
    let node = net.node(takeover).ok_or("node")?;
    let settled = r#"vouch_node_certificates_total{outcome="settled"} 1"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !node.metrics().render().contains(settled) {
        assert!(tokio::time::Instant::now() < deadline, "slot {takeover} did not settle:\n{}", node.metrics().render());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_while_calls_are_made_catches_up_and_signs_them() -> TestResult {
    // Default quorum (6,667 bps of 3): nothing settles without the stopped node.
    let mut net = TestNetwork::builder(vouch_echo::router()).start().await?;
    net.kill_node(2);
    let a = net.open_call(vouch_echo::ECHO, &json!({"message": "while you were out"})).await?;
    let b = net.open_call(vouch_echo::HASH, &json!({"data": "0xc0ffee"})).await?;
    mine(&net, 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(call_status(&net, a).await, 1, "still open: no quorum without node 2");
    net.restart_node(2).await?;
    for call in [a, b] {
        let cert = net.wait_certificate(call).await?;
        assert!(cert.signer_bitmap.bit(2), "the restarted node signed {call}");
        let record = net.node(2).ok_or("node")?.guard().get(net.service_id(), call)?;
        assert_eq!(record.map(|r| r.entry.result_hash), Some(cert.result_hash));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_call_removed_by_a_reorg_is_never_signed_or_settled() -> TestResult {
    let net = TestNetwork::builder(vouch_echo::router()).confirmations(2).start().await?;
    let call = net.open_call(vouch_echo::ECHO, &json!({"message": "about to vanish"})).await?;
    reorg(&net, 1).await;
    assert_eq!(call_status(&net, call).await, 0, "the reorg removed the call");
    mine(&net, 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        let node = net.node(i).ok_or("node")?;
        assert!(node.guard().get(net.service_id(), call)?.is_none(), "node {i} signed a vanished call");
        assert!(!node.metrics().render().contains("vouch_node_certificates_total{"), "node {i} submitted");
    }
    assert_eq!(call_status(&net, call).await, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_call_removed_by_a_reorg_is_not_submitted() -> TestResult {
    // Confirmations 0: nodes sign at once. With node 2 down no quorum forms, so the call is still pending when the
    // reorg removes it; the nodes that signed must drop it, not submit it.
    let mut net = TestNetwork::builder(vouch_echo::router()).start().await?;
    net.kill_node(2);
    let call = net.open_call(vouch_echo::ECHO, &json!({"message": "signed, then gone"})).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while net.node(0).ok_or("node")?.guard().get(net.service_id(), call)?.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "node 0 never signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reorg(&net, 1).await;
    net.restart_node(2).await?;
    mine(&net, 3).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(call_status(&net, call).await, 0, "nobody re-opened or settled the vanished call");
    for i in 0..2 {
        let text = net.node(i).ok_or("node")?.metrics().render();
        assert!(text.contains("vouch_node_vanished_calls_total 1"), "node {i} saw the call vanish:\n{text}");
        assert!(!text.contains(r#"outcome="settled""#), "node {i} submitted a vanished call");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_signing_database_refuses_to_start_unless_told_to_create_one() -> TestResult {
    let net = TestNetwork::builder(vouch_echo::router()).operators(1).min_signers(1).start().await?;
    let dir = tempfile::tempdir()?;
    let devnet = net.devnet();
    let op = &devnet.operators()[0];
    let keys = || NodeKeys {
        tx: op.signer().clone(),
        bls: vouch_crypto::SecretKey::from_bytes(op.bls_secret().to_bytes().as_slice()).expect("key"),
    };
    let mut config = vouch_node::NodeConfig { data_dir: dir.path().join("fresh"), ..Default::default() };
    config.chain.rpc_url = devnet.rpc_url().to_owned();
    config.api.listen = "127.0.0.1:0".parse()?;
    config.metrics.listen = "127.0.0.1:0".parse()?;
    let err = Node::new(config.clone(), keys())
        .address_book(devnet.address_book().clone())
        .start()
        .await
        .expect_err("no guard database");
    let NodeError::Guard(guard) = &err else { panic!("unexpected error: {err}") };
    assert!(matches!(**guard, GuardError::Missing { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("fails closed") && text.contains("vouch node init"), "{text}");
    let node = Node::new(config, keys()).address_book(devnet.address_book().clone()).init_guard(true).start().await?;
    assert!(node.guard().get(ServiceId(devnet.service_id()), CallId(U256::from(1)))?.is_none());
    node.shutdown().await;
    Ok(())
}
