//! Tolerant and checked jobs through the node API: commitments (`POST /v1/commitments`) and endorsements
//! (`POST /v1/endorsements`) on a real network whose nodes compute slightly different outputs.

use std::time::Duration;

use alloy_primitives::{Bytes, U256, keccak256};
use vouch_contracts::VouchProtocol;
use vouch_crypto::{PublicKey, Signature, aggregate_signatures, fast_aggregate_verify};
use vouch_primitives::{
    CallId, ResultRef, commitment_digest, result_digest,
    wire::{EndorseRequest, SignedResult},
};
use vouch_sdk::{Agreement, Claimed, Json, JsonTolerance, Router, Verification};
use vouch_testing::{HarnessError, TestNetwork};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Tolerant: `2x`, plus a per-node noise far below the tolerance.
const DOUBLE: u8 = 0;
/// Tolerant: `2x`, but node 2 is off by 1 (outside the tolerance).
const SKEWED: u8 = 1;
/// Checked: the sum of a list; the checker recomputes it.
const SUM: u8 = 2;
/// Exact: echoes its inputs.
const ECHO: u8 = 3;

const TOLERANCE: JsonTolerance = JsonTolerance { absolute: 1e-6, relative: 0.0 };

/// The blueprint as node `node` runs it: same jobs, node-specific floating-point noise.
fn router(node: usize) -> Router {
    let noise = node as f64 * 1e-9;
    let skew = if node == 2 { 1.0 } else { noise };
    Router::new()
        .route(DOUBLE, move |Json(x): Json<f64>| async move { Json(2.0 * x + noise) })
        .verifier(DOUBLE, TOLERANCE)
        .route(SKEWED, move |Json(x): Json<f64>| async move { Json(2.0 * x + skew) })
        .verifier(SKEWED, TOLERANCE)
        .route(SUM, |Json(v): Json<Vec<i64>>| async move { Json(v.iter().sum::<i64>()) })
        .checker(SUM, check_sum)
        .route(ECHO, |inputs: vouch_sdk::Inputs| async move { inputs.0 })
}

async fn check_sum(Json(v): Json<Vec<i64>>, claimed: Claimed) -> Agreement {
    let claim: i64 = match claimed.json() {
        Ok(claim) => claim,
        Err(disagreement) => return disagreement,
    };
    let sum: i64 = v.iter().sum();
    if claim == sum { Agreement::Agree } else { Agreement::disagree(format!("the sum is {sum}, not {claim}")) }
}

async fn network() -> Result<TestNetwork, HarnessError> {
    // Confirmations 0: the chain watchers see every call too, and must leave tolerant and checked ones unsigned.
    TestNetwork::builder(router(0)).router_for(1, router(1)).router_for(2, router(2)).operators(3).start().await
}

fn keys(net: &TestNetwork) -> Vec<PublicKey> {
    net.devnet().operators().iter().map(|o| o.bls_public()).collect()
}

/// Checks that `signed` (one per node, in slot order) are signatures over one result by every operator, and returns
/// their aggregate.
fn aggregate(net: &TestNetwork, signed: &[SignedResult]) -> Result<Signature, Box<dyn std::error::Error>> {
    let result = signed[0].result;
    assert!(signed.iter().all(|s| s.result == result && s.output.is_none()), "{signed:?}");
    let signatures: Vec<Signature> =
        signed.iter().map(|s| Signature::from_compressed(&s.signature)).collect::<Result<_, _>>()?;
    let aggregate = aggregate_signatures(&signatures)?;
    fast_aggregate_verify(&keys(net), &result_digest(&net.devnet().protocol_binding(), &result), &aggregate)?;
    Ok(aggregate)
}

fn refusal(result: Result<impl std::fmt::Debug, HarnessError>) -> (u16, String, String) {
    match result {
        Err(e @ HarnessError::Api { .. }) => {
            let (status, code) = e.api_status_code().unwrap_or_default();
            (status, code, e.to_string())
        }
        other => panic!("expected an error answer, got {other:?}"),
    }
}

/// Waits until every node's metrics count `refused` on-chain calls, i.e. its chain watcher saw them and did not sign.
async fn wait_chain_refusals(net: &TestNetwork, count: usize) {
    let line = format!(r#"vouch_node_jobs_total{{source="chain",outcome="refused"}} {count}"#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(0..3).filter_map(|i| net.node(i)).all(|n| n.metrics().render().contains(&line)) {
        assert!(tokio::time::Instant::now() < deadline, "the chain watchers did not report {count} refused calls");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tolerant_commitments_endorsed_within_tolerance_aggregate_and_settle() -> TestResult {
    let net = network().await?;
    let binding = net.devnet().protocol_binding();
    let service = net.service_id();
    assert_eq!(router(0).verification_for(DOUBLE), Verification::Tolerant);
    let inputs = Bytes::from_static(b"1.5");
    let call = net.open_call_raw(DOUBLE, inputs.clone()).await?;

    // Every node commits to its own output: each within 1e-6 of the others, none byte-equal.
    let mut commitments = Vec::new();
    for (i, operator) in net.devnet().operators().iter().enumerate() {
        let c = net.commit(i, call, DOUBLE, inputs.clone()).await?;
        assert_eq!(c.operator, operator.address());
        assert_eq!((c.commitment.service_id, c.commitment.call_id), (service, call));
        assert_eq!((c.commitment.inputs_hash, c.commitment.output_hash), (keccak256(&inputs), keccak256(&c.output)));
        Signature::from_compressed(&c.signature)?
            .verify(&operator.bls_public(), &commitment_digest(&binding, &c.commitment))?;
        commitments.push(c);
    }
    assert_eq!(commitments[0].output.as_ref(), b"3.0");
    assert_ne!(commitments[0].output, commitments[1].output);
    // The same commitment request again: the recorded commitment, same output and signature.
    let again = net.commit(0, call, DOUBLE, inputs.clone()).await?;
    assert_eq!(again, commitments[0]);

    // The aggregator proposes node 0's output; every node endorses it, node 0 included.
    let proposed = commitments[0].output.clone();
    let mut endorsements = Vec::new();
    for i in 0..3 {
        endorsements.push(net.endorse(i, call, DOUBLE, inputs.clone(), proposed.clone()).await?);
    }
    assert_eq!(endorsements[1].result.result_hash, keccak256(&proposed));
    let certificate = aggregate(&net, &endorsements)?;

    // The same endorsement again: the same signature. Another output for the call, even one node 1 agrees with
    // (its own), is a second result: the guard refuses it.
    let repeat = net.endorse(1, call, DOUBLE, inputs.clone(), proposed.clone()).await?;
    assert_eq!(repeat.signature, endorsements[1].signature);
    let (status, code, message) =
        refusal(net.endorse(1, call, DOUBLE, inputs.clone(), commitments[1].output.clone()).await);
    assert_eq!((status, code.as_str()), (409, "conflicting_result"), "{message}");
    // The aggregate is a certificate the contract settles.
    let customer = net.devnet().provider(net.devnet().customer().signer());
    let protocol = VouchProtocol::new(net.devnet().address_book().contracts.protocol, &customer);
    let receipt = protocol
        .settle(call.0, keccak256(&proposed), U256::from(0b111), Bytes::from(certificate.to_eip2537().to_vec()))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status(), "settle reverted");

    // A node whose own output is out of tolerance does not endorse, and says why. It had not committed yet: it
    // runs the job and commits first (a slow node can still endorse).
    let skewed = net.open_call_raw(SKEWED, inputs.clone()).await?;
    let proposed = net.commit(0, skewed, SKEWED, inputs.clone()).await?.output;
    assert!(net.node(2).ok_or("node 2")?.guard().get_commitment(service, skewed)?.is_none());
    let (status, code, message) = refusal(net.endorse(2, skewed, SKEWED, inputs.clone(), proposed.clone()).await);
    assert_eq!((status, code.as_str()), (409, "disagree"), "{message}");
    assert!(message.contains("differ by more than"), "{message}");
    let own = net.node(2).ok_or("node 2")?.guard().get_commitment(service, skewed)?.ok_or("node 2 committed")?;
    assert_eq!(own.output.as_ref(), b"4.0");
    assert!(net.node(2).ok_or("node 2")?.guard().get(service, skewed)?.is_none(), "no result signed");
    let metrics = net.node(2).ok_or("node 2")?.metrics().render();
    assert!(metrics.contains(r#"vouch_node_endorsements_total{outcome="disagree"} 1"#), "{metrics}");
    // Node 1 agrees with it.
    net.endorse(1, skewed, SKEWED, inputs.clone(), proposed).await?;

    // Each endpoint serves its verification modes only, and says which endpoint to use.
    let (status, code, message) = refusal(net.request(0, skewed, SKEWED, inputs.clone()).await);
    assert_eq!((status, code.as_str()), (409, "wrong_verification"), "{message}");
    assert!(message.contains("/v1/commitments"), "{message}");
    let echo = net.open_call_raw(ECHO, Bytes::from_static(b"hi")).await?;
    let (status, code, message) = refusal(net.commit(0, echo, ECHO, Bytes::from_static(b"hi")).await);
    assert_eq!((status, code.as_str()), (409, "wrong_verification"), "{message}");
    assert!(message.contains("/v1/jobs"), "{message}");
    let endorse_exact = net.endorse(0, echo, ECHO, Bytes::from_static(b"hi"), Bytes::from_static(b"hi")).await;
    assert_eq!(refusal(endorse_exact).1, "wrong_verification");
    // The same payment checks as /v1/jobs.
    let unpaid = CallId(U256::from(987_654));
    assert_eq!(refusal(net.commit(0, unpaid, DOUBLE, inputs.clone()).await).1, "call_not_paid");
    let unpaid_endorsement = net.endorse(0, unpaid, DOUBLE, inputs.clone(), Bytes::from_static(b"3.0")).await;
    assert_eq!(refusal(unpaid_endorsement).1, "call_not_paid");
    let other_inputs = net.endorse(0, skewed, SKEWED, Bytes::from_static(b"2"), Bytes::from_static(b"4.0")).await;
    assert_eq!(refusal(other_inputs).1, "inputs_mismatch");
    // Bounded bodies.
    let huge = EndorseRequest {
        request: net.job_request(skewed, SKEWED, inputs.clone()),
        output: Bytes::from(vec![b'1'; 1 << 20]),
    };
    let (status, code, _) = refusal(net.post::<_, SignedResult>(0, "/v1/endorsements", &huge).await);
    assert_eq!((status, code.as_str()), (413, "body_too_large"));

    // The chain watchers saw both tolerant calls and signed neither; they signed the exact one.
    wait_chain_refusals(&net, 2).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checked_executor_result_is_endorsed_by_the_checkers_and_a_wrong_claim_is_not() -> TestResult {
    let net = network().await?;
    let service = net.service_id();
    assert_eq!(router(1).verification_for(SUM), Verification::Checked);
    let inputs = Bytes::from_static(b"[1,2,3,4]");
    let call = net.open_call_raw(SUM, inputs.clone()).await?;

    // Node 0 executes; the others check its claimed output and sign the same result.
    let executed = net.request(0, call, SUM, inputs.clone()).await?;
    let output = executed.output.clone().ok_or("the executor answers its output")?;
    assert_eq!(output.as_ref(), b"10");
    let mut signed = vec![SignedResult { output: None, ..executed.clone() }];
    for i in 1..3 {
        signed.push(net.endorse(i, call, SUM, inputs.clone(), output.clone()).await?);
    }
    aggregate(&net, &signed)?;
    // The executor asked to endorse its own output answers the signature it gave.
    assert_eq!(net.endorse(0, call, SUM, inputs.clone(), output.clone()).await?.signature, executed.signature);
    // A second, different claim for the same call: refused by the guard before any check.
    let (status, code, message) = refusal(net.endorse(1, call, SUM, inputs.clone(), Bytes::from_static(b"11")).await);
    assert_eq!((status, code.as_str()), (409, "conflicting_result"), "{message}");

    // A wrong or malformed claim for a new call: the checker disagrees, nothing is signed.
    let other = net.open_call_raw(SUM, inputs.clone()).await?;
    let (status, code, message) = refusal(net.endorse(1, other, SUM, inputs.clone(), Bytes::from_static(b"11")).await);
    assert_eq!((status, code.as_str()), (409, "disagree"), "{message}");
    assert!(message.contains("the sum is 10, not 11"), "{message}");
    let (_, code, message) = refusal(net.endorse(2, other, SUM, inputs.clone(), Bytes::from_static(b"ten")).await);
    assert_eq!(code, "disagree", "{message}");
    assert!(net.node(1).ok_or("node 1")?.guard().get(service, other)?.is_none());
    // It can still endorse the right one.
    let right = net.endorse(1, other, SUM, inputs.clone(), Bytes::from_static(b"10")).await?;
    assert_eq!(right.result, ResultRef { call_id: other, ..signed[0].result });
    // Checked jobs have no commitments.
    let (status, code, message) = refusal(net.commit(1, other, SUM, inputs.clone()).await);
    assert_eq!((status, code.as_str()), (409, "wrong_verification"), "{message}");

    // The chain watchers left both checked calls unsigned.
    wait_chain_refusals(&net, 2).await;
    let metrics = net.node(0).ok_or("node 0")?.metrics().render();
    assert!(!metrics.contains(r#"source="chain",outcome="signed""#), "{metrics}");
    Ok(())
}
