//! Jobs whose operators do not all compute the same bytes, through the paid gateway flow (docs/design/gateway.md,
//! *Verification modes*):
//!
//! - a **tolerant** job (JSON numbers with per-operator noise, `JsonTolerance`): an operator far outside the tolerance
//!   commits first, its output is proposed first and refused, the next candidate certifies with the honest two, and
//!   the outlier's signed commitment is kept as evidence (and taken to the slasher once the call settles);
//! - a **checked** job (`Router::checker`): the rotation picks a lying executor first, the checkers refuse its output,
//!   the next executor's output certifies, and the liar's signed result is kept as an ordinary deviation.
//!
//! Both: the certificate is a normal one, the payer is charged exactly the price once, the signers get their shares,
//! and a gateway restarted in the middle of a call finishes it from its request log.

use std::time::Duration;

use alloy_primitives::{Address, B256, U256, keccak256};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vouch_contracts::{VouchProtocol, VouchSlasher};
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_gateway::store::{EvidenceStatus, RequestStatus};
use vouch_primitives::{CallId, Certificate, ServiceId, certificate::bitmap_slots, paid_call_id};
use vouch_sdk::{Agreement, Claimed, Json, JsonTolerance, Router};
use vouch_testing::{TestNetwork, money::expected_split};

use crate::common::{Setup, TestResult, logs, pay, payment_required, wait_settled};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Honest operators' outputs differ by 1e-5; the outlier's by 1.
const TOLERANCE: JsonTolerance = JsonTolerance { absolute: 1e-3, relative: 0.0 };
/// The blueprint's arbiter in the tolerant test (any address: the test only needs a proposal to be possible).
const ARBITER: Address = Address::repeat_byte(0xa7);

fn x(v: &Value) -> f64 {
    v["x"].as_f64().unwrap_or_default()
}

/// Honest operators work 300 ms (2.3 s when the input says `"slow": true`), so that the outlier commits first.
async fn pace(v: &Value) {
    let slow = if v["slow"] == true { 2_000 } else { 0 };
    tokio::time::sleep(Duration::from_millis(300 + slow)).await;
}

async fn honest_1(Json(v): Json<Value>) -> Json<Value> {
    pace(&v).await;
    Json(json!({"y": 2.0 * x(&v) + 1e-5}))
}

async fn honest_2(Json(v): Json<Value>) -> Json<Value> {
    pace(&v).await;
    Json(json!({"y": 2.0 * x(&v) + 2e-5}))
}

async fn outlier(Json(v): Json<Value>) -> Json<Value> {
    Json(json!({"y": 2.0 * x(&v) + 1.0}))
}

fn tolerant(router: Router) -> Router {
    router.verifier(0, TOLERANCE)
}

fn shout(v: &Value) -> String {
    v["text"].as_str().unwrap_or_default().to_uppercase()
}

async fn generate(Json(v): Json<Value>) -> Json<Value> {
    if v["slow"] == true {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Json(json!({"text": shout(&v)}))
}

async fn cheaper(Json(_): Json<Value>) -> Json<Value> {
    Json(json!({"text": "SOMETHING CHEAPER"}))
}

async fn check(Json(v): Json<Value>, claimed: Claimed) -> Agreement {
    let claimed: Value = match claimed.json() {
        Ok(c) => c,
        Err(disagreement) => return disagreement,
    };
    let expected = shout(&v);
    if claimed["text"] == expected.as_str() {
        Agreement::Agree
    } else {
        Agreement::disagree(format!("expected {expected:?}, claimed {}", claimed["text"]))
    }
}

fn checked(router: Router) -> Router {
    router.checker(0, check)
}

async fn scatter_0(Json(_): Json<Value>) -> Json<Value> {
    Json(json!({"y": 0}))
}

async fn scatter_1(Json(_): Json<Value>) -> Json<Value> {
    Json(json!({"y": 10}))
}

async fn scatter_2(Json(_): Json<Value>) -> Json<Value> {
    Json(json!({"y": 20}))
}

/// Node `i` of the three-mode network: job 0 tolerant (honest), job 1 checked (honest), job 2 tolerant with outputs
/// that no two nodes agree on.
fn three_modes(i: usize) -> Router {
    let scatter = match i {
        0 => Router::new().route(2, scatter_0),
        1 => Router::new().route(2, scatter_1),
        _ => Router::new().route(2, scatter_2),
    };
    scatter.verifier(2, TOLERANCE).route(0, honest_1).verifier(0, TOLERANCE).route(1, generate).checker(1, check)
}

/// A nonce whose paid call id makes `slot` (of `n`) the first executor of a checked job 0.
pub(crate) fn nonce_for_executor(service: ServiceId, payer: Address, n: usize, slot: usize) -> AnyResult<B256> {
    nonce_for_executor_of(service, 0, payer, n, slot)
}

fn nonce_for_executor_of(service: ServiceId, job: u8, payer: Address, n: usize, slot: usize) -> AnyResult<B256> {
    loop {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
        let nonce = B256::from(nonce);
        if paid_call_id(service, job, payer, nonce).0 % U256::from(n) == U256::from(slot) {
            return Ok(nonce);
        }
    }
}

/// The `PAYMENT-SIGNATURE` of the customer for job 0 with `body`, with `nonce` if given.
async fn payment(setup: &Setup, body: &[u8], nonce: Option<B256>) -> AnyResult<String> {
    payment_for(setup, 0, body, nonce).await
}

async fn payment_for(setup: &Setup, job: u8, body: &[u8], nonce: Option<B256>) -> AnyResult<String> {
    let r = reqwest::Client::new().post(setup.job_url(job)).body(body.to_vec()).send().await?;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let required = payment_required(r.headers())?;
    pay(setup, &required, setup.net.devnet().customer().signer(), |a| {
        if let Some(n) = nonce {
            a.nonce = n;
        }
    })
    .await
}

pub(crate) async fn paid_call(setup: &Setup, body: &[u8], nonce: Option<B256>) -> AnyResult<Value> {
    let (status, answer) = paid_call_of(setup, 0, body, nonce).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    Ok(answer)
}

async fn paid_call_of(setup: &Setup, job: u8, body: &[u8], nonce: Option<B256>) -> AnyResult<(StatusCode, Value)> {
    let header = payment_for(setup, job, body, nonce).await?;
    let r = reqwest::Client::new()
        .post(setup.job_url(job))
        .header("PAYMENT-SIGNATURE", header)
        .body(body.to_vec())
        .send()
        .await?;
    Ok((r.status(), r.json().await?))
}

/// The certificate of `answer`, checked against the registered keys of its signers (what the contract does).
pub(crate) fn certificate(setup: &Setup, answer: &Value) -> AnyResult<Certificate> {
    let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
    let keys: Vec<PublicKey> =
        bitmap_slots(cert.signer_bitmap).iter().map(|s| setup.net.devnet().operators()[*s].bls_public()).collect();
    fast_aggregate_verify(&keys, &cert.digest(), &Signature::from_eip2537(&cert.signature)?)?;
    Ok(cert)
}

/// Every operator's claimable balance.
async fn claimables(setup: &Setup) -> Vec<U256> {
    let mut v = Vec::new();
    for op in setup.net.devnet().operators() {
        v.push(setup.claimable(op.address()).await);
    }
    v
}

/// After settlement: the payer paid exactly `calls` prices, the signers at `slots` got their commission of one call
/// each, the others nothing.
async fn assert_money(
    setup: &Setup,
    payer_before: U256,
    claimable_before: &[U256],
    calls: u64,
    slots: &[usize],
) -> TestResult {
    let devnet = setup.net.devnet();
    let price = U256::from(devnet.jobs()[0].price);
    assert_eq!(
        setup.usd(devnet.customer().address()).await,
        payer_before - price * U256::from(calls),
        "charged exactly the price, once per call"
    );
    let split = expected_split(devnet, setup.net.service_id().0, price, slots).await?;
    let now = claimables(setup).await;
    for (i, before) in claimable_before.iter().enumerate() {
        let expected = slots.iter().position(|s| *s == i).map_or(U256::ZERO, |p| split.commissions[p]);
        assert_eq!(now[i], *before + expected, "operator {i}'s commission");
    }
    Ok(())
}

/// Starts a paid call of job 0, kills the gateway once the request is in its log, restarts it, and retries with the
/// same payment until the answer is there.
async fn call_across_a_restart(setup: &mut Setup, body: &[u8], nonce: Option<B256>) -> AnyResult<Value> {
    let header = payment(setup, body, nonce).await?;
    let (url, h, b) = (setup.job_url(0), header.clone(), body.to_vec());
    let first =
        tokio::spawn(
            async move { reqwest::Client::new().post(url).header("PAYMENT-SIGNATURE", h).body(b).send().await },
        );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while setup.gateway().store().with_status(RequestStatus::Received, 10)?.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the request was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup.restart_gateway().await?;
    let _ = first.await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = reqwest::Client::new()
            .post(setup.job_url(0))
            .header("PAYMENT-SIGNATURE", &header)
            .body(body.to_vec())
            .send()
            .await?;
        if r.status() == StatusCode::OK {
            return Ok(r.json().await?);
        }
        let status = r.status();
        assert!(tokio::time::Instant::now() < deadline, "never answered: {status} {}", r.text().await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tolerant_job_certifies_the_honest_outputs_and_keeps_the_outliers_commitment() -> TestResult {
    const OUTLIER: usize = 0;
    logs();
    let mut setup = Setup::start_custom(
        TestNetwork::builder(tolerant(Router::new().route(0, honest_1)))
            .router_for(OUTLIER, tolerant(Router::new().route(0, outlier)))
            .router_for(1, tolerant(Router::new().route(0, honest_1)))
            .router_for(2, tolerant(Router::new().route(0, honest_2)))
            .quorum_bps(6_000)
            // Commitment deviations are proposable only where someone can veto honest noise.
            .arbiter(ARBITER),
    )
    .await?;
    let devnet = setup.net.devnet();
    let list: Value = reqwest::get(format!("{}/v1/services", setup.gateway().url())).await?.json().await?;
    assert_eq!(list["services"][0]["jobs"][0]["verification"], "tolerant", "{list}");
    let payer_before = setup.usd(devnet.customer().address()).await;
    let claimable_before = claimables(&setup).await;

    // The outlier commits first and its output is proposed first: the honest two refuse it, then certify theirs.
    let answer = paid_call(&setup, br#"{"x":1.5}"#, None).await?;
    let y = answer["output"]["y"].as_f64().ok_or("output y")?;
    assert!((y - 3.0).abs() < 1e-3, "an honest output is certified: {answer}");
    let cert = certificate(&setup, &answer)?;
    assert_eq!(cert.signer_bitmap, U256::from(0b110), "the honest two certify");
    let call = CallId(cert.call_id);

    // The outlier's commitment is the evidence: a commitment deviation, not an ordinary one.
    let store = setup.gateway().store();
    let [kept] = store.commitment_evidence(call)?.try_into().map_err(|v| format!("one commitment kept: {v:?}"))?;
    assert_eq!((kept.operator, kept.slot), (devnet.operators()[OUTLIER].address(), OUTLIER));
    assert_eq!((kept.certified_hash, kept.inputs_hash), (cert.result_hash, cert.inputs_hash));
    assert_eq!(kept.output_hash, keccak256(&kept.output));
    let committed: Value = serde_json::from_slice(&kept.output)?;
    assert!((committed["y"].as_f64().unwrap_or_default() - 4.0).abs() < 1e-9, "{committed}");
    assert!(kept.reason.contains("refused"), "{}", kept.reason);
    assert_eq!(kept.signature.len(), 96);
    assert!(store.evidence(call)?.is_empty(), "no ordinary deviation in a tolerant job");

    wait_settled(&setup, call).await?;
    assert_money(&setup, payer_before, &claimable_before, 1, &[1, 2]).await?;

    // Once settled, the reporter takes it to the slasher with `proposeCommitmentDeviation` (the committed bytes are
    // judged by the arbiter during the dispute window).
    let protocol = VouchProtocol::new(devnet.address_book().contracts.protocol, devnet.read_provider());
    assert_eq!(protocol.getBlueprint(devnet.blueprint_id()).call().await?.arbiter, ARBITER);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let reported = loop {
        let [e] = setup.gateway().store().commitment_evidence(call)?.try_into().map_err(|v| format!("{v:?}"))?;
        if e.status != EvidenceStatus::Pending {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reported: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reported.status, EvidenceStatus::Proposed, "{reported:?}");
    let slasher = VouchSlasher::new(devnet.address_book().contracts.slasher, devnet.read_provider());
    let outlier = devnet.operators()[OUTLIER].address();
    let proposal = slasher.getProposal(slasher.proposalIdOf(outlier, call.0).call().await?).call().await?;
    assert_eq!((proposal.status, proposal.operator), (1, outlier), "a pending deviation proposal on chain");

    // A gateway restarted in the middle of a tolerant call finishes it; the payer is charged once more, once.
    let answer = call_across_a_restart(&mut setup, br#"{"x":2.5,"slow":true}"#, None).await?;
    let y = answer["output"]["y"].as_f64().ok_or("output y")?;
    assert!((y - 5.0).abs() < 1e-3, "{answer}");
    let cert = certificate(&setup, &answer)?;
    assert_eq!(cert.signer_bitmap, U256::from(0b110));
    wait_settled(&setup, CallId(cert.call_id)).await?;
    let price = U256::from(setup.net.devnet().jobs()[0].price);
    assert_eq!(setup.usd(setup.net.devnet().customer().address()).await, payer_before - price * U256::from(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checked_job_skips_a_lying_executor_and_keeps_its_signed_result() -> TestResult {
    const LIAR: usize = 1;
    logs();
    let mut setup = Setup::start_custom(
        TestNetwork::builder(checked(Router::new().route(0, generate)))
            .router_for(LIAR, checked(Router::new().route(0, cheaper)))
            .quorum_bps(6_000),
    )
    .await?;
    let devnet = setup.net.devnet();
    let list: Value = reqwest::get(format!("{}/v1/services", setup.gateway().url())).await?.json().await?;
    assert_eq!(list["services"][0]["jobs"][0]["verification"], "checked", "{list}");
    let payer = devnet.customer().address();
    let payer_before = setup.usd(payer).await;
    let claimable_before = claimables(&setup).await;

    // The call id makes the liar the first executor; the checkers refuse its output, the next executor's certifies.
    let nonce = nonce_for_executor(setup.net.service_id(), payer, 3, LIAR)?;
    let answer = paid_call(&setup, br#"{"text":"say it loud"}"#, Some(nonce)).await?;
    assert_eq!(answer["output"]["text"], "SAY IT LOUD", "{answer}");
    let cert = certificate(&setup, &answer)?;
    assert_eq!(cert.signer_bitmap, U256::from(0b101), "the next executor (slot 2) and its checker (slot 0)");
    let call = CallId(cert.call_id);

    // The liar's signed result is an ordinary deviation: kept, and proposed once the call settles.
    let [kept] = setup.gateway().store().evidence(call)?.try_into().map_err(|v| format!("one kept: {v:?}"))?;
    assert_eq!((kept.operator, kept.slot), (devnet.operators()[LIAR].address(), LIAR));
    assert_eq!(kept.result_hash, keccak256(serde_json::to_vec(&json!({"text": "SOMETHING CHEAPER"}))?));
    assert_eq!(kept.inputs_hash, cert.inputs_hash);
    assert!(setup.gateway().store().commitment_evidence(call)?.is_empty());
    wait_settled(&setup, call).await?;
    assert_money(&setup, payer_before, &claimable_before, 1, &[0, 2]).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let [e] = setup.gateway().store().evidence(call)?.try_into().map_err(|v| format!("{v:?}"))?;
        if e.status == EvidenceStatus::Proposed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never proposed: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A gateway restarted while the (honest) executor works finishes the call; charged once more, once.
    let nonce = nonce_for_executor(setup.net.service_id(), payer, 3, 0)?;
    let answer = call_across_a_restart(&mut setup, br#"{"text":"again","slow":true}"#, Some(nonce)).await?;
    assert_eq!(answer["output"]["text"], "AGAIN", "{answer}");
    let cert = certificate(&setup, &answer)?;
    // The executor and whichever checker answered first (the liar's node checks honestly).
    assert!(cert.signer_bitmap.bit(0) && cert.signer_bitmap.count_ones() >= 2, "{}", cert.signer_bitmap);
    wait_settled(&setup, CallId(cert.call_id)).await?;
    let price = U256::from(setup.net.devnet().jobs()[0].price);
    assert_eq!(setup.usd(payer).await, payer_before - price * U256::from(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_operator_is_skipped_and_outputs_nobody_agrees_on_are_not_charged() -> TestResult {
    const DOWN: usize = 2;
    logs();
    let mut setup = Setup::start_custom(
        TestNetwork::builder(three_modes(0))
            .router_for(1, three_modes(1))
            .router_for(2, three_modes(2))
            .quorum_bps(6_000),
    )
    .await?;
    let list: Value = reqwest::get(format!("{}/v1/services", setup.gateway().url())).await?.json().await?;
    let modes: Vec<&Value> = (0..3).map(|j| &list["services"][0]["jobs"][j]["verification"]).collect();
    assert_eq!(modes, ["tolerant", "checked", "tolerant"], "{list}");
    let payer = setup.net.devnet().customer().address();
    let service = setup.net.service_id();
    let before = setup.usd(payer).await;

    // Three outputs no two operators agree on: none certifies, nothing is charged. The first candidate is refused by
    // the two others, the second by the one left (its proposer endorsed it; the first's had signed the first); a
    // third is not proposed, since only its own operator could still sign it.
    let (status, answer) = paid_call_of(&setup, 2, br#"{"x":1}"#, None).await?;
    assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("no_quorum")), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message.matches("disagrees with").count(), 3, "{message}");

    // One operator down: the tolerant job certifies with the other two; the checked job whose rotation starts at the
    // down operator goes to the next executor.
    setup.net.kill_node(DOWN);
    let (status, answer) = paid_call_of(&setup, 0, br#"{"x":4}"#, None).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!((answer["output"]["y"].as_f64().unwrap_or_default() - 8.0).abs() < 1e-3, "{answer}");
    let tolerant = certificate(&setup, &answer)?;
    assert_eq!(tolerant.signer_bitmap, U256::from(0b011));
    let nonce = nonce_for_executor_of(service, 1, payer, 3, DOWN)?;
    let (status, answer) = paid_call_of(&setup, 1, br#"{"text":"anyone home"}"#, Some(nonce)).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["output"]["text"], "ANYONE HOME");
    let checked = certificate(&setup, &answer)?;
    assert_eq!(checked.signer_bitmap, U256::from(0b011));
    assert!(setup.gateway().store().evidence(CallId(checked.call_id))?.is_empty(), "nobody lied");
    assert!(setup.gateway().store().commitment_evidence(CallId(tolerant.call_id))?.is_empty(), "nobody lied");
    wait_settled(&setup, CallId(tolerant.call_id)).await?;
    wait_settled(&setup, CallId(checked.call_id)).await?;
    let prices: U256 = [0, 1].iter().map(|j| U256::from(setup.net.devnet().jobs()[*j].price)).sum();
    assert_eq!(setup.usd(payer).await, before - prices, "the two certified calls, each once; the failed one not");
    Ok(())
}
