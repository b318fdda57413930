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
    // Every node signed the call; exactly one submitted the certificate (its receipt may lag the chain a moment).
    let settled = r#"vouch_node_certificates_total{outcome="settled"} 1"#;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let texts: Vec<String> = (0..3).filter_map(|i| net.node(i)).map(|n| n.metrics().render()).collect();
        for text in &texts {
            assert!(text.contains(r#"vouch_node_jobs_total{source="chain",outcome="signed"} 1"#), "{text}");
        }
        let submitters = texts.iter().filter(|t| t.contains(settled)).count();
        assert!(submitters <= 1, "more than one node settled the call");
        if submitters == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no node reports the settlement");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
