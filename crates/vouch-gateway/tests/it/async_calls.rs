//! Asynchronous answers (`Prefer: respond-async`, `docs/design/async-results.md`): a slow paid call is answered `202`
//! with a result URL once recorded and checked; polling it gives `202` while the operators work, then exactly the
//! answer the synchronous call gives; failures poll to the same error, uncharged; a restart in between loses
//! nothing; a client that hangs up does not cancel its call.

use std::time::Duration;

use alloy_primitives::U256;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_gateway::openai::{OpenAiEndpoint, OpenAiModel};
use vouch_primitives::{CallId, Certificate, ServiceId, certificate::bitmap_slots, paid_call_id};
use vouch_sdk::Json;
use vouch_testing::{TestNetwork, devnet::Funding};

use crate::common::{Setup, TestResult, pay, payment_required, wait_settled};

/// The slow job: a stand-in for text generation on CPU.
const SLOW: u8 = 4;
/// How long it takes.
const SLOW_FOR: Duration = Duration::from_secs(3);

/// Answers a chat completion (the last user message, echoed) after [`SLOW_FOR`].
async fn slow_chat(Json(req): Json<Value>) -> Json<Value> {
    tokio::time::sleep(SLOW_FOR).await;
    let last = req["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
    Json(json!({
        "object": "chat.completion",
        "model": req["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": last}}],
    }))
}

fn chat(content: &str) -> Vec<u8> {
    json!({"model": "slow-1", "messages": [{"role": "user", "content": content}]}).to_string().into_bytes()
}

/// A `PAYMENT-SIGNATURE` for `url` (from its 402), paid by the customer.
async fn payment(setup: &Setup, url: &str, body: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let r = reqwest::Client::new().post(url).body(body.to_vec()).send().await?;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    pay(setup, &payment_required(r.headers())?, setup.net.devnet().customer().signer(), |_| {}).await
}

/// The call id a payment header pays for (what the client can compute itself).
fn call_of(setup: &Setup, job: u8, header: &str) -> Result<CallId, Box<dyn std::error::Error>> {
    let payload: Value = serde_json::from_slice(&STANDARD.decode(header)?)?;
    let auth = &payload["payload"]["authorization"];
    let from = auth["from"].as_str().ok_or("from")?.parse()?;
    let nonce = auth["nonce"].as_str().ok_or("nonce")?.parse()?;
    Ok(paid_call_id(ServiceId(setup.net.service_id().0), job, from, nonce))
}

/// `POST url` with the payment and `prefer` (if any).
async fn post(url: &str, header: &str, body: &[u8], prefer: Option<&str>) -> Result<reqwest::Response, reqwest::Error> {
    let mut r = reqwest::Client::new().post(url).header("PAYMENT-SIGNATURE", header).body(body.to_vec());
    if let Some(p) = prefer {
        r = r.header("Prefer", p);
    }
    r.send().await
}

/// A `202`'s result path (`Location`), checked against its body and headers.
async fn accepted(gateway: &str, r: reqwest::Response) -> Result<String, Box<dyn std::error::Error>> {
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers().get("location").ok_or("no Location")?.to_str()?.to_owned();
    assert!(location.starts_with("/v1/calls/0x"), "{location}");
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(r.headers().get("preference-applied").and_then(|v| v.to_str().ok()), Some("respond-async"));
    let body: Value = r.json().await?;
    assert_eq!(body["status"], "pending");
    assert_eq!(body["resultUrl"], format!("{gateway}{location}"), "absolute, from the public URL");
    assert!(location.starts_with(&format!("/v1/calls/{}", body["callId"].as_str().ok_or("callId")?)));
    Ok(location)
}

/// Polls `url` while it answers `202` (at most 30 s); the first other answer. Returns how many `202`s came first.
async fn poll(url: &str) -> Result<(reqwest::Response, usize), Box<dyn std::error::Error>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut pending = 0;
    loop {
        let r = reqwest::get(url).await?;
        if r.status() != StatusCode::ACCEPTED {
            return Ok((r, pending));
        }
        assert!(r.headers().contains_key("retry-after"));
        pending += 1;
        assert!(tokio::time::Instant::now() < deadline, "still pending after 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The certificate of a `200`, checked: the header carries the body's, and the aggregate signature verifies.
fn certificate(setup: &Setup, headers: &HeaderMap, body: &Value) -> Result<Certificate, Box<dyn std::error::Error>> {
    let in_body = body.get("certificate").or_else(|| body.get("vouch_certificate")).ok_or("no certificate")?;
    let header = headers.get("x-vouch-certificate").ok_or("no certificate header")?;
    assert_eq!(&serde_json::from_slice::<Value>(&STANDARD.decode(header.as_bytes())?)?, in_body);
    assert!(headers.contains_key("payment-response"));
    let cert: Certificate = serde_json::from_value(in_body.clone())?;
    let devnet = setup.net.devnet();
    let keys: Vec<PublicKey> =
        bitmap_slots(cert.signer_bitmap).iter().map(|s| devnet.operators()[*s].bls_public()).collect();
    fast_aggregate_verify(&keys, &cert.digest(), &Signature::from_eip2537(&cert.signature)?)?;
    Ok(cert)
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_answers_202_and_its_result_url_the_certified_answer_charged_once() -> TestResult {
    let setup = Setup::start_with(vouch_echo::router().route(SLOW, slow_chat), 6_667).await?;
    let gateway = setup.gateway().url();
    let url = setup.job_url(SLOW);
    let customer = setup.net.devnet().customer().address();
    let price = U256::from(setup.net.devnet().jobs()[usize::from(SLOW)].price);
    let before = setup.usd(customer).await;

    // 202 at once (the job takes 3 s), then 202 while pending, then the answer.
    let body = chat("answer me later");
    let paid = payment(&setup, &url, &body).await?;
    let started = std::time::Instant::now();
    let location = accepted(&gateway, post(&url, &paid, &body, Some("respond-async")).await?).await?;
    assert!(started.elapsed() < SLOW_FOR, "the 202 does not wait for the operators");
    let call = call_of(&setup, SLOW, &paid)?;
    assert!(location.starts_with(&format!("/v1/calls/{:#x}?key=0x", call.0)), "{location}");
    // The call id alone (which settlement will publish) is not the result URL: answered as unknown.
    let r = reqwest::get(format!("{gateway}/v1/calls/{:#x}", call.0)).await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let wrong_key = location.replace("?key=0x", "?key=0x00").chars().take(location.len()).collect::<String>();
    assert_eq!(reqwest::get(format!("{gateway}{wrong_key}")).await?.status(), StatusCode::NOT_FOUND, "{wrong_key}");
    let (r, pending) = poll(&format!("{gateway}{location}")).await?;
    assert!(pending > 0, "the call was pending for a while");
    assert_eq!(r.status(), StatusCode::OK);
    let (cert_header, payment_response) = (header(&r, "x-vouch-certificate"), header(&r, "payment-response"));
    let headers = r.headers().clone();
    let polled = r.bytes().await?;
    let answer: Value = serde_json::from_slice(&polled)?;
    assert_eq!(answer["output"]["choices"][0]["message"]["content"], "answer me later");
    let cert = certificate(&setup, &headers, &answer)?;
    assert_eq!(cert.signer_bitmap.count_ones(), 3);

    // The poll answers exactly what the synchronous path answers a retry of the same payment.
    let again = post(&url, &paid, &body, None).await?;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        (header(&again, "x-vouch-certificate"), header(&again, "payment-response")),
        (cert_header, payment_response)
    );
    assert_eq!(again.bytes().await?, polled);

    // Long enough a `wait=`: the answer comes synchronously.
    let body = chat("answer me now");
    let paid_now = payment(&setup, &url, &body).await?;
    let r = post(&url, &paid_now, &body, Some("respond-async, wait=20")).await?;
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    let answer: Value = r.json().await?;
    assert_eq!(answer["output"]["choices"][0]["message"]["content"], "answer me now");
    let cert_now = certificate(&setup, &headers, &answer)?;

    // A client that hangs up does not cancel its call: the answer is there when it sends the same payment again.
    let body = chat("hung up");
    let paid_gone = payment(&setup, &url, &body).await?;
    let short = reqwest::Client::builder().timeout(Duration::from_millis(1_500)).build()?;
    let gone = short.post(&url).header("PAYMENT-SIGNATURE", &paid_gone).body(body.clone()).send().await;
    assert!(gone.is_err(), "the client gave up before the answer");
    let call_gone = call_of(&setup, SLOW, &paid_gone)?;
    let r = match post(&url, &paid_gone, &body, Some("respond-async")).await? {
        r if r.status() == StatusCode::ACCEPTED => poll(&format!("{gateway}{}", accepted(&gateway, r).await?)).await?.0,
        answered => answered,
    };
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    let answer: Value = r.json().await?;
    assert_eq!(answer["output"]["choices"][0]["message"]["content"], "hung up");
    certificate(&setup, &headers, &answer)?;

    // Unknown and malformed ids.
    let r = reqwest::get(format!("{gateway}/v1/calls/0x{}", "ab".repeat(32))).await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await?["error"]["code"], "unknown_call");
    for bad in ["12345", "0x", "0xnothex", &format!("0x{}", "1".repeat(65)), &"9".repeat(5_000)] {
        let r = reqwest::get(format!("{gateway}/v1/calls/{bad}")).await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json::<Value>().await?["error"]["code"], "invalid_call_id", "{bad}");
    }
    let r = reqwest::get(format!("{gateway}{location}&format=xml")).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Each call charged exactly once, after settlement.
    for call in [CallId(cert.call_id), CallId(cert_now.call_id), call_gone] {
        wait_settled(&setup, call).await?;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(setup.usd(customer).await, before - price * U256::from(3), "three calls, each charged once");
    let (r, _) = poll(&format!("{gateway}{location}")).await?;
    assert_eq!(r.status(), StatusCode::OK, "a settled call still answers its result URL");
    assert_eq!(r.bytes().await?, polled);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_async_call_polls_to_its_refusal_and_is_not_charged() -> TestResult {
    let mut setup =
        Setup::start_custom(TestNetwork::builder(vouch_echo::router().route(SLOW, slow_chat)).quorum_bps(6_000))
            .await?;
    let gateway = setup.gateway().url();
    let url = setup.job_url(SLOW);
    let customer = setup.net.devnet().customer().address();
    let before = setup.usd(customer).await;

    // A payment the chain refuses (no funds) is refused synchronously, never with a 202.
    let body = chat("poor");
    let r = reqwest::Client::new().post(&url).body(body.clone()).send().await?;
    let required = payment_required(r.headers())?;
    let poor = setup
        .net
        .devnet()
        .new_account(&Funding { eth: U256::from(10u64).pow(U256::from(18)), ..Funding::default() })
        .await?;
    let paid_poor = pay(&setup, &required, &poor, |_| {}).await?;
    let r = post(&url, &paid_poor, &body, Some("respond-async")).await?;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(r.json::<Value>().await?["error"], "invalid_exact_evm_insufficient_balance");

    // Two of three operators down: no quorum, found by polling, the same error the synchronous path gives.
    setup.net.kill_node(1);
    setup.net.kill_node(2);
    let body = chat("alone");
    let paid = payment(&setup, &url, &body).await?;
    let location = accepted(&gateway, post(&url, &paid, &body, Some("respond-async")).await?).await?;
    let (r, _) = poll(&format!("{gateway}{location}")).await?;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let error: Value = r.json().await?;
    assert_eq!(error["error"]["code"], "no_quorum", "{error}");
    let retry = post(&url, &paid, &body, None).await?;
    assert_eq!(retry.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(retry.json::<Value>().await?["error"]["code"], "no_quorum");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(setup.usd(customer).await, before, "the payer keeps its money");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_native_and_openai_survive_a_gateway_restart() -> TestResult {
    crate::common::logs();
    let mut setup = Setup::start_with(vouch_echo::router().route(SLOW, slow_chat), 6_667).await?;
    setup.config.openai = vec![OpenAiModel {
        model: "slow-1".into(),
        endpoint: OpenAiEndpoint::ChatCompletions,
        service: setup.net.service_id().0,
        job: SLOW,
    }];
    setup.restart_gateway().await?;
    let gateway = setup.gateway().url();
    let url = setup.job_url(SLOW);
    let chat_url = format!("{gateway}/v1/chat/completions");
    let customer = setup.net.devnet().customer().address();
    let before = setup.usd(customer).await;

    let native = chat("native, across a restart");
    let paid_native = payment(&setup, &url, &native).await?;
    let native_at = accepted(&gateway, post(&url, &paid_native, &native, Some("respond-async")).await?).await?;
    let openai = chat("openai, across a restart");
    let paid_openai = payment(&setup, &chat_url, &openai).await?;
    let openai_at = accepted(&gateway, post(&chat_url, &paid_openai, &openai, Some("respond-async")).await?).await?;
    assert!(openai_at.ends_with("&format=openai"), "{openai_at}");

    // The gateway dies while the operators work (its call tasks with it); the restarted one finishes both calls
    // from the request log, and their result URLs answer.
    setup.restart_gateway().await?;
    let (r, _) = poll(&format!("{gateway}{native_at}")).await?;
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    let answer: Value = r.json().await?;
    assert_eq!(answer["output"]["choices"][0]["message"]["content"], "native, across a restart");
    let cert_native = certificate(&setup, &headers, &answer)?;

    let (r, _) = poll(&format!("{gateway}{openai_at}")).await?;
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    let answer: Value = r.json().await?;
    assert_eq!(answer["object"], "chat.completion", "the OpenAI representation");
    assert_eq!(answer["choices"][0]["message"]["content"], "openai, across a restart");
    let cert_openai = certificate(&setup, &headers, &answer)?;
    assert_eq!(answer["vouch_call_id"], json!(CallId(cert_openai.call_id)));

    for call in [CallId(cert_native.call_id), CallId(cert_openai.call_id)] {
        wait_settled(&setup, call).await?;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let price = U256::from(setup.net.devnet().jobs()[usize::from(SLOW)].price);
    assert_eq!(setup.usd(customer).await, before - price * U256::from(2), "each call charged once");
    Ok(())
}
