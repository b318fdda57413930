//! The node's HTTP API: precise 4xx answers, no unpaid work, and a panicking handler that does not stop the node.

use alloy_primitives::{Bytes, U256};
use serde_json::{Value, json};
use vouch_primitives::{
    CallId, ServiceId,
    wire::{JobRequest, PaymentProof, WIRE_VERSION},
};
use vouch_testing::TestNetwork;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn post(url: &str, body: Vec<u8>) -> Result<(u16, Value), reqwest::Error> {
    let r = reqwest::Client::new().post(url).header("content-type", "application/json").body(body).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

fn request(service: u64, call: u64, job: u8, inputs: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&JobRequest {
        version: WIRE_VERSION,
        service_id: ServiceId(service),
        call_id: CallId(U256::from(call)),
        job_index: job,
        inputs: Bytes::copy_from_slice(inputs),
        payment: PaymentProof::OnChain,
    })
    .expect("serializes")
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unpaid_requests_get_precise_4xx_and_a_panic_is_a_job_error() -> TestResult {
    // Confirmations high enough that the nodes' chain watchers never run these calls: only the HTTP path does.
    let net = TestNetwork::builder(vouch_echo::router()).confirmations(1_000).start().await?;
    let url = format!("{}/v1/jobs", net.node(0).ok_or("node")?.api_url());
    let service = net.service_id().0;
    let echo = br#"{"message":"hi"}"#;

    let (s, b) = post(&url, vec![b'x'; 2 << 20]).await?;
    assert_eq!((s, code(&b)), (413, "body_too_large"), "{b}");
    let (s, b) = post(&url, b"{not json".to_vec()).await?;
    assert_eq!((s, code(&b)), (400, "invalid_json"), "{b}");
    let mut unknown_field: Value = serde_json::from_slice(&request(service, 1, 0, echo))?;
    unknown_field["tip"] = json!(1);
    let (s, b) = post(&url, serde_json::to_vec(&unknown_field)?).await?;
    assert_eq!((s, code(&b)), (400, "invalid_json"), "{b}");
    assert!(b["error"]["message"].as_str().unwrap_or("").contains("tip"), "{b}");
    let (s, b) = post(&url, request(99, 1, 0, echo)).await?;
    assert_eq!((s, code(&b)), (404, "unknown_service"), "{b}");
    let (s, b) = post(&url, request(service, 1, 9, echo)).await?;
    assert_eq!((s, code(&b)), (404, "unknown_job"), "{b}");
    let (s, b) = post(&url, request(service, 12_345, 0, echo)).await?;
    assert_eq!((s, code(&b)), (402, "call_not_paid"), "{b}");

    let paid = net.open_call_raw(vouch_echo::ECHO, Bytes::from_static(echo)).await?;
    let (s, b) = post(&url, request(service, u64::try_from(paid.0)?, 0, br#"{"message":"other"}"#)).await?;
    assert_eq!((s, code(&b)), (400, "inputs_mismatch"), "{b}");
    let (s, b) = post(&url, request(service, u64::try_from(paid.0)?, 1, echo)).await?;
    assert_eq!((s, code(&b)), (400, "call_mismatch"), "{b}");
    let bad_input = net.open_call_raw(vouch_echo::ECHO, Bytes::from_static(br#"{"msg":1}"#)).await?;
    let (s, b) = post(&url, request(service, u64::try_from(bad_input.0)?, 0, br#"{"msg":1}"#)).await?;
    assert_eq!((s, code(&b)), (422, "job_failed"), "{b}");

    let boom = net.open_call_raw(vouch_echo::PANIC, Bytes::from_static(b"{}")).await?;
    let (s, b) = post(&url, request(service, u64::try_from(boom.0)?, vouch_echo::PANIC, b"{}")).await?;
    assert_eq!((s, code(&b)), (422, "job_failed"), "{b}");
    assert!(b["error"]["message"].as_str().unwrap_or("").contains("panicked"), "{b}");

    // Still serving: the paid echo call is answered and signed.
    let signed = net.request(0, paid, vouch_echo::ECHO, Bytes::from_static(echo)).await?;
    assert_eq!(signed.output.as_ref().map(|o| o.to_vec()), Some(echo.to_vec()));
    // The same request again: the same signature (the guard's record), not a new one.
    let again = net.request(0, paid, vouch_echo::ECHO, Bytes::from_static(echo)).await?;
    assert_eq!(again.signature, signed.signature);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x402_paid_request_is_signed_and_a_wrong_payment_is_refused_with_its_x402_code() -> TestResult {
    use vouch_contracts::{AuthorizationExt as _, TokenDomain};
    use vouch_primitives::{paid_call_id, wire::TransferAuthorization};

    let net = TestNetwork::builder(vouch_echo::router()).start().await?;
    let devnet = net.devnet();
    let url = format!("{}/v1/jobs", net.node(0).ok_or("node")?.api_url());
    let c = devnet.address_book().contracts;
    let domain = TokenDomain::read(&devnet.read_provider(), c.vouch_usd).await?;
    let customer = devnet.customer().signer();
    let price = U256::from(devnet.jobs()[0].price);
    let echo = br#"{"message":"paid per request"}"#;
    let body = |value: U256, nonce: u8, call: Option<CallId>| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let auth = TransferAuthorization {
            from: customer.address(),
            to: c.protocol,
            value,
            valid_after: U256::ZERO,
            valid_before: U256::from(4_000_000_000u64),
            nonce: alloy_primitives::B256::repeat_byte(nonce),
        };
        let signature = auth.sign(customer, &domain)?;
        let call_id = call.unwrap_or_else(|| paid_call_id(net.service_id(), 0, auth.from, auth.nonce));
        Ok(serde_json::to_vec(&JobRequest {
            version: WIRE_VERSION,
            service_id: net.service_id(),
            call_id,
            job_index: 0,
            inputs: Bytes::from_static(echo),
            payment: PaymentProof::X402 { authorization: auth, signature },
        })?)
    };
    let (s, b) = post(&url, body(price, 1, None)?).await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["output"].as_str(), Some(alloy_primitives::hex::encode_prefixed(echo).as_str()), "{b}");
    let (s, b) = post(&url, body(price - U256::from(1), 2, None)?).await?;
    assert_eq!((s, code(&b)), (402, "invalid_exact_evm_payload_authorization_value_mismatch"), "{b}");
    let (s, b) = post(&url, body(price, 3, Some(CallId(U256::from(77))))?).await?;
    assert_eq!((s, code(&b)), (400, "call_id_mismatch"), "{b}");
    Ok(())
}
