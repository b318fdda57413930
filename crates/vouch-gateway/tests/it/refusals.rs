//! Bad input at the gateway: each refusal has its exact status and code, and no money moves.

use std::time::Duration;

use alloy_primitives::{Address, U256};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::Value;
use vouch_testing::devnet::Funding;

use crate::common::{Setup, TestResult, pay, payment_required};

/// A change to an otherwise valid authorization.
type Tweak = Box<dyn Fn(&mut vouch_primitives::wire::TransferAuthorization)>;

async fn post(url: &str, payment: Option<&str>, body: Vec<u8>) -> Result<(StatusCode, Value), reqwest::Error> {
    let mut r = reqwest::Client::new().post(url).body(body);
    if let Some(p) = payment {
        r = r.header("PAYMENT-SIGNATURE", p);
    }
    let r = r.send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// The x402 code of a 402 (PaymentRequired.error) or the gateway's error code.
fn code(body: &Value) -> String {
    body["error"]["code"].as_str().or_else(|| body["error"].as_str()).unwrap_or("<none>").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_is_refused_precisely_and_charges_nothing() -> TestResult {
    let setup = Setup::start(6_667).await?;
    let devnet = setup.net.devnet();
    let customer = devnet.customer().signer();
    let body = br#"{"message":"refuse me"}"#.to_vec();
    let url = setup.job_url(0);
    let r = reqwest::Client::new().post(&url).body(body.clone()).send().await?;
    let required = payment_required(r.headers())?;
    let before = setup.usd(customer.address()).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();

    // Missing or garbage PAYMENT-SIGNATURE.
    let (s, b) = post(&url, None, body.clone()).await?;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{b}");
    assert_eq!(b["x402Version"], 2, "the 402 body is the PaymentRequired too: {b}");
    let (s, b) = post(&url, Some("not base64 at all!"), body.clone()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::BAD_REQUEST, "invalid_payload"), "{b}");
    let (s, b) = post(&url, Some(&STANDARD.encode(b"{\"x402Version\":2}")), body.clone()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::BAD_REQUEST, "invalid_payload"), "{b}");

    // Payments wrong in one way each.
    let cases: Vec<(&str, Tweak)> = vec![
        ("invalid_exact_evm_payload_authorization_value_mismatch", Box::new(|a| a.value -= U256::from(1))),
        ("invalid_exact_evm_recipient_mismatch", Box::new(|a| a.to = Address::repeat_byte(7))),
        (
            "invalid_exact_evm_payload_authorization_valid_before",
            Box::new(move |a| a.valid_before = U256::from(now - 10)),
        ),
        (
            "invalid_exact_evm_payload_authorization_valid_after",
            Box::new(move |a| a.valid_after = U256::from(now + 3_600)),
        ),
    ];
    for (expected, tweak) in cases {
        let header = pay(&setup, &required, customer, |a| tweak(a)).await?;
        let (s, b) = post(&url, Some(&header), body.clone()).await?;
        assert_eq!((s, code(&b).as_str()), (StatusCode::PAYMENT_REQUIRED, expected), "{b}");
    }
    // A payer without funds.
    let poor =
        devnet.new_account(&Funding { eth: U256::from(10u64).pow(U256::from(18)), ..Funding::default() }).await?;
    let header = pay(&setup, &required, &poor, |_| {}).await?;
    let (s, b) = post(&url, Some(&header), body.clone()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::PAYMENT_REQUIRED, "invalid_exact_evm_insufficient_balance"), "{b}");
    // Signed for another token domain (the offer's name, but the signature over another): recovers someone else.
    let mut wrong = required.clone();
    wrong["accepts"][0]["extra"]["version"] = Value::from("999");
    let header = pay(&setup, &wrong, customer, |_| {}).await?;
    let (s, b) = post(&url, Some(&header), body.clone()).await?;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{b}");
    assert!(
        code(&b).starts_with("invalid_exact_evm_token_version") || code(&b) == "invalid_exact_evm_signature",
        "{b}"
    );

    // Body and path.
    let (s, b) = post(&url, None, vec![b'{'; 2 << 20]).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"), "{b}");
    let (s, b) = post(&url, None, b"{not json".to_vec()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::BAD_REQUEST, "invalid_json"), "{b}");
    let unknown_service = format!("{}/v1/services/99/jobs/0", setup.gateway().url());
    let (s, b) = post(&unknown_service, None, body.clone()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::NOT_FOUND, "unknown_service"), "{b}");
    let (s, b) = post(&setup.job_url(42), None, body.clone()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::NOT_FOUND, "unknown_job"), "{b}");

    // A good payment works once; its nonce replayed for other inputs is refused.
    let header = pay(&setup, &required, customer, |_| {}).await?;
    let (s, b) = post(&url, Some(&header), body.clone()).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = post(&url, Some(&header), br#"{"message":"something else"}"#.to_vec()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::PAYMENT_REQUIRED, "invalid_exact_evm_nonce_already_used"), "{b}");

    // Only the one good call was charged, exactly once.
    crate::common::wait_settled(&setup, vouch_primitives::CallId(b_call(&setup).await?)).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let price = U256::from(devnet.jobs()[0].price);
    assert_eq!(setup.usd(customer.address()).await, before - price);
    Ok(())
}

/// The call id of the one answered request.
async fn b_call(setup: &Setup) -> Result<U256, Box<dyn std::error::Error>> {
    for status in [vouch_gateway::store::RequestStatus::Answered, vouch_gateway::store::RequestStatus::Settled] {
        if let Some(r) = setup.gateway().store().with_status(status, 10)?.first() {
            return Ok(r.request.call_id.0);
        }
    }
    Err("no answered request".into())
}

/// Adds the `payment-identifier` extension with `id` to an encoded payment.
fn with_payment_id(header: &str, id: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut payload: Value = serde_json::from_slice(&STANDARD.decode(header)?)?;
    payload["extensions"] = serde_json::json!({ "payment-identifier": { "info": { "required": false, "id": id } } });
    Ok(STANDARD.encode(serde_json::to_vec(&payload)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_identifier_replays_the_answer_and_refuses_another_payment() -> TestResult {
    let setup = Setup::start(6_667).await?;
    let customer = setup.net.devnet().customer().signer();
    let url = setup.job_url(0);
    let body = br#"{"message":"idempotent"}"#.to_vec();
    let r = reqwest::Client::new().post(&url).body(body.clone()).send().await?;
    let required = payment_required(r.headers())?;
    assert!(required["extensions"]["payment-identifier"].is_object(), "advertised: {required}");
    let before = setup.usd(customer.address()).await;
    let id = "agent-7-request-0001";
    let first = with_payment_id(&pay(&setup, &required, customer, |_| {}).await?, id)?;
    let (s, a) = post(&url, Some(&first), body.clone()).await?;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (s, b) = post(&url, Some(&first), body.clone()).await?;
    assert_eq!((s, &b["certificate"]), (StatusCode::OK, &a["certificate"]), "same id, same payment: the same answer");
    let second = with_payment_id(&pay(&setup, &required, customer, |_| {}).await?, id)?;
    let (s, b) = post(&url, Some(&second), body.clone()).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::CONFLICT, "payment_identifier_conflict"), "{b}");
    let (s, b) = post(&url, Some(&with_payment_id(&first, "short")?), body).await?;
    assert_eq!((s, code(&b).as_str()), (StatusCode::BAD_REQUEST, "invalid_payload"), "{b}");
    crate::common::wait_settled(&setup, vouch_primitives::CallId(b_call(&setup).await?)).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let price = U256::from(setup.net.devnet().jobs()[0].price);
    assert_eq!(setup.usd(customer.address()).await, before - price, "charged once");
    Ok(())
}
