//! On-chain calls answered and settled by the nodes.

use alloy_primitives::keccak256;
use serde_json::json;
use vouch_testing::TestNetwork;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_answer_an_on_chain_call_and_the_certificate_settles() -> Result<(), Box<dyn std::error::Error>> {
    let net = TestNetwork::builder(vouch_echo::router()).operators(3).start().await?;
    let outcome = net.call(vouch_echo::ECHO, &json!({"message": "hello, vouch"})).await?;
    assert_eq!(outcome.certificate.signer_bitmap.count_ones(), 3, "quorum 6,667 bps of 3 equal stakes: all sign");
    let expected = br#"{"message":"hello, vouch"}"#;
    assert_eq!(outcome.output.as_ref(), expected);
    assert_eq!(outcome.certificate.result_hash, keccak256(expected));
    assert_eq!(outcome.certificate.inputs_hash, keccak256(br#"{"message":"hello, vouch"}"#));
    // Each node's metrics saw one signed on-chain job and one settled (or already settled) certificate.
    let mut settled = 0;
    for i in 0..3 {
        let text = net.node(i).ok_or("node")?.metrics().render();
        assert!(text.contains(r#"vouch_node_jobs_total{source="chain",outcome="signed"} 1"#), "{text}");
        if text.contains(r#"vouch_node_certificates_total{outcome="settled"} 1"#) {
            settled += 1;
        }
    }
    assert_eq!(settled, 1, "exactly one node submitted the certificate");
    Ok(())
}
