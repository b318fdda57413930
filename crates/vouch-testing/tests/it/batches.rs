//! `POST /v1/batches`: a node signs a batch certificate only over calls its signing guard recorded with the same
//! inputs and result; the aggregate of the nodes' batch signatures settles the calls with `settleBatch`.

use alloy_primitives::{B256, Bytes, U256, keccak256};
use serde_json::Value;
use vouch_contracts::VouchProtocol;
use vouch_crypto::{Signature, aggregate_signatures};
use vouch_primitives::{
    BatchEntry, CallId, ServiceId, batch_digest, batch_leaf, batch_root,
    wire::{BatchSignRequest, BatchSignature, MAX_BATCH_SIGN_ENTRIES, WIRE_VERSION},
};
use vouch_testing::TestNetwork;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn post(url: &str, body: &impl serde::Serialize) -> Result<(u16, Value), reqwest::Error> {
    let r = reqwest::Client::new().post(url).json(body).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

fn request(service: ServiceId, entries: Vec<BatchEntry>) -> BatchSignRequest {
    BatchSignRequest { version: WIRE_VERSION, service_id: service, entries }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_signed_calls_is_signed_and_its_aggregate_settles_anything_else_is_refused() -> TestResult {
    // Confirmations high enough that the chain watchers never run these calls: only the HTTP path signs them.
    let net = TestNetwork::builder(vouch_echo::router()).confirmations(1_000).start().await?;
    let service = net.service_id();
    let urls: Vec<String> = (0..3)
        .map(|i| net.node(i).map(|n| format!("{}/v1/batches", n.api_url())))
        .collect::<Option<_>>()
        .ok_or("node")?;

    // Three calls, each signed individually by every node.
    let mut entries = Vec::new();
    for i in 0..3 {
        let inputs = Bytes::from(format!(r#"{{"message":"batch {i}"}}"#).into_bytes());
        let call = net.open_call_raw(vouch_echo::ECHO, inputs.clone()).await?;
        for node in 0..3 {
            let signed = net.request(node, call, vouch_echo::ECHO, inputs.clone()).await?;
            assert_eq!(signed.result.inputs_hash, keccak256(&inputs));
            if node == 0 {
                entries.push(BatchEntry {
                    call_id: call,
                    inputs_hash: signed.result.inputs_hash,
                    result_hash: signed.result.result_hash,
                });
            }
        }
    }

    // Each node signs the batch digest with its registered key.
    let digest = batch_digest(&net.devnet().protocol_binding(), service, &entries)?;
    let leaves: Vec<B256> = entries.iter().map(batch_leaf).collect();
    let mut signatures = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let (s, b) = post(url, &request(service, entries.clone())).await?;
        assert_eq!(s, 200, "{b}");
        let batch: BatchSignature = serde_json::from_value(b)?;
        let operator = &net.devnet().operators()[i];
        assert_eq!(batch.operator, operator.address());
        assert_eq!((batch.service_id, batch.count), (service, 3));
        assert_eq!(Some(batch.root), batch_root(&leaves));
        let signature = Signature::from_compressed(&batch.signature)?;
        signature.verify(&operator.bls_public(), &digest)?;
        signatures.push(signature);
    }
    // The same request again: the same (deterministic) signature.
    let (s, b) = post(&urls[0], &request(service, entries.clone())).await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(serde_json::from_value::<BatchSignature>(b)?.signature.as_ref(), signatures[0].to_compressed());

    // The aggregate is a certificate the contract accepts for the whole batch.
    let aggregate = aggregate_signatures(&signatures)?;
    let customer = net.devnet().provider(net.devnet().customer().signer());
    let protocol = VouchProtocol::new(net.devnet().address_book().contracts.protocol, &customer);
    let receipt = protocol
        .settleBatch(
            service.0,
            entries.iter().map(|e| e.call_id.0).collect(),
            entries.iter().map(|e| e.result_hash).collect(),
            U256::from(0b111),
            Bytes::from(aggregate.to_eip2537().to_vec()),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status(), "settleBatch reverted");
    for e in &entries {
        assert_eq!(protocol.getCall(e.call_id.0).call().await?.status, 2, "{} settled", e.call_id);
    }

    // A call the node never signed: refused, naming the call.
    let unsigned = net.open_call_raw(vouch_echo::ECHO, Bytes::from_static(br#"{"message":"unsigned"}"#)).await?;
    let mut with_unsigned = entries.clone();
    with_unsigned.push(BatchEntry {
        call_id: unsigned,
        inputs_hash: keccak256(br#"{"message":"unsigned"}"#),
        result_hash: keccak256(br#"{"message":"unsigned"}"#),
    });
    let (s, b) = post(&urls[0], &request(service, with_unsigned)).await?;
    assert_eq!((s, code(&b)), (409, "not_signed"), "{b}");
    assert!(message(&b).contains(&unsigned.to_string()), "{b}");
    // A call signed by node 0 only: node 1 refuses it.
    let inputs = Bytes::from_static(br#"{"message":"node 0 only"}"#);
    let only0 = net.open_call_raw(vouch_echo::ECHO, inputs.clone()).await?;
    let signed = net.request(0, only0, vouch_echo::ECHO, inputs).await?;
    let only0_entry =
        BatchEntry { call_id: only0, inputs_hash: signed.result.inputs_hash, result_hash: signed.result.result_hash };
    let (s, b) = post(&urls[0], &request(service, vec![only0_entry])).await?;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(&urls[1], &request(service, vec![only0_entry])).await?;
    assert_eq!((s, code(&b)), (409, "not_signed"), "{b}");

    // A result (or inputs) hash other than the signed one: refused as a conflict.
    let mut wrong_result = entries.clone();
    wrong_result[1].result_hash = keccak256(b"another result");
    let (s, b) = post(&urls[0], &request(service, wrong_result)).await?;
    assert_eq!((s, code(&b)), (409, "conflicting_result"), "{b}");
    assert!(message(&b).contains(&entries[1].call_id.to_string()), "{b}");
    let mut wrong_inputs = entries.clone();
    wrong_inputs[0].inputs_hash = keccak256(b"other inputs");
    let (s, b) = post(&urls[0], &request(service, wrong_inputs)).await?;
    assert_eq!((s, code(&b)), (409, "conflicting_result"), "{b}");

    // Malformed batches.
    let (s, b) = post(&urls[0], &request(service, Vec::new())).await?;
    assert_eq!((s, code(&b)), (400, "invalid_batch_size"), "{b}");
    let too_many: Vec<BatchEntry> = (0..=MAX_BATCH_SIGN_ENTRIES)
        .map(|i| BatchEntry {
            call_id: CallId(U256::from(1_000_000 + i)),
            inputs_hash: B256::ZERO,
            result_hash: B256::ZERO,
        })
        .collect();
    let (s, b) = post(&urls[0], &request(service, too_many)).await?;
    assert_eq!((s, code(&b)), (400, "invalid_batch_size"), "{b}");
    let (s, b) = post(&urls[0], &request(service, vec![entries[0], entries[1], entries[0]])).await?;
    assert_eq!((s, code(&b)), (400, "duplicate_call"), "{b}");
    let (s, b) = post(&urls[0], &request(ServiceId(99), entries.clone())).await?;
    assert_eq!((s, code(&b)), (404, "unknown_service"), "{b}");
    let mut old = request(service, entries.clone());
    old.version = 2;
    let (s, b) = post(&urls[0], &old).await?;
    assert_eq!((s, code(&b)), (400, "unsupported_version"), "{b}");
    let mut extra = serde_json::to_value(request(service, entries.clone()))?;
    extra["tip"] = Value::from(1);
    let (s, b) = post(&urls[0], &extra).await?;
    assert_eq!((s, code(&b)), (400, "invalid_json"), "{b}");
    // Nothing above changed the chain's view of the refused calls.
    assert_eq!(protocol.getCall(unsigned.0).call().await?.status, 1);
    Ok(())
}
