//! Faults behind the gateway: operators down, and the gateway itself killed between payment and answer.

use std::time::Duration;

use alloy_primitives::U256;
use reqwest::StatusCode;
use serde_json::Value;
use vouch_primitives::{CallId, Certificate};
use vouch_sdk::{Json, Router, layers};

use crate::common::{Setup, TestResult, paid_call, pay, payment_required, wait_settled};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operator_down_two_of_three_still_certify_and_settle() -> TestResult {
    let mut setup = Setup::start(6_000).await?;
    setup.net.kill_node(2);
    let before = setup.usd(setup.net.devnet().customer().address()).await;
    let (s, b, _) = paid_call(&setup, 0, br#"{"message":"two will do"}"#).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    let cert: Certificate = serde_json::from_value(b["certificate"].clone())?;
    assert_eq!(cert.signer_bitmap, U256::from(0b011));
    wait_settled(&setup, CallId(cert.call_id)).await?;
    let price = U256::from(setup.net.devnet().jobs()[0].price);
    assert_eq!(setup.usd(setup.net.devnet().customer().address()).await, before - price);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_down_no_quorum_and_nothing_is_charged() -> TestResult {
    let mut setup = Setup::start(6_000).await?;
    setup.net.kill_node(1);
    setup.net.kill_node(2);
    let before = setup.usd(setup.net.devnet().customer().address()).await;
    let (s, b, _) = paid_call(&setup, 0, br#"{"message":"alone"}"#).await?;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("no_quorum")), "{b}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(setup.usd(setup.net.devnet().customer().address()).await, before, "the payer keeps its money");
    let failed = setup.gateway().store().with_status(vouch_gateway::store::RequestStatus::Failed, 10)?;
    assert_eq!(failed.len(), 1);
    Ok(())
}

async fn busy(Json(v): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    Json(v)
}

/// Each operator runs one call at a time and sheds the others (`503 overloaded`, as the textgen blueprint does past
/// its concurrency limit); every signature is needed. Three calls at once all certify: the gateway asks a shedding
/// operator again until it has room, within the call's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_operator_is_asked_again_until_it_has_room() -> TestResult {
    let router = Router::new().route(0, busy).layer(layers::concurrency_limit(1));
    let setup = Setup::start_with(router, 10_000).await?;
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for i in 0..3 {
        let body = format!(r#"{{"message":"busy {i}"}}"#).into_bytes();
        let r = client.post(setup.job_url(0)).body(body.clone()).send().await?;
        let header =
            pay(&setup, &payment_required(r.headers())?, setup.net.devnet().customer().signer(), |_| {}).await?;
        requests.push(client.post(setup.job_url(0)).header("PAYMENT-SIGNATURE", header).body(body).send());
    }
    for (i, answer) in futures_util::future::join_all(requests).await.into_iter().enumerate() {
        let r = answer?;
        let status = r.status();
        let body: Value = r.json().await?;
        assert_eq!(status, StatusCode::OK, "call {i}: {body}");
        assert_eq!(body["output"]["message"], format!("busy {i}"));
        let cert: Certificate = serde_json::from_value(body["certificate"].clone())?;
        assert_eq!(cert.signer_bitmap, U256::from(0b111), "call {i}: all three signed");
    }
    Ok(())
}

async fn slow(Json(v): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    Json(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_between_payment_and_answer_completes_the_call_and_charges_once() -> TestResult {
    const SLOW: u8 = 4;
    let mut setup = Setup::start_with(vouch_echo::router().route(SLOW, slow), 6_667).await?;
    let customer = setup.net.devnet().customer().address();
    let before = setup.usd(customer).await;
    let body = br#"{"message":"survive the crash"}"#.to_vec();
    let client = reqwest::Client::new();
    let r = client.post(setup.job_url(SLOW)).body(body.clone()).send().await?;
    let required = payment_required(r.headers())?;
    let header = pay(&setup, &required, setup.net.devnet().customer().signer(), |_| {}).await?;
    let url = setup.job_url(SLOW);
    let (h, b) = (header.clone(), body.clone());
    let first =
        tokio::spawn(
            async move { reqwest::Client::new().post(url).header("PAYMENT-SIGNATURE", h).body(b).send().await },
        );
    // The request is recorded, then the operators work for 2 s: kill the gateway in between.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while setup.gateway().store().with_status(vouch_gateway::store::RequestStatus::Received, 10)?.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the request was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup.restart_gateway().await?;
    // The first connection died with the gateway (or, rarely, got an answer just before): either way the retry below
    // must be answered from the record.
    let _ = first.await?;
    // The client retries with the same payment until the recovered answer is there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let r = client.post(setup.job_url(SLOW)).header("PAYMENT-SIGNATURE", &header).body(body.clone()).send().await?;
        if r.status() == StatusCode::OK {
            break r.json::<Value>().await?;
        }
        assert!(tokio::time::Instant::now() < deadline, "never answered: {}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer["output"]["message"], "survive the crash");
    let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
    wait_settled(&setup, CallId(cert.call_id)).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let price = U256::from(setup.net.devnet().jobs()[usize::from(SLOW)].price);
    assert_eq!(setup.usd(customer).await, before - price, "charged exactly once");
    Ok(())
}
