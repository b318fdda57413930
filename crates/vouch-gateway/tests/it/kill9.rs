//! A real `kill -9` of a gateway process between payment and answer: after a restart the call is completed from
//! the durable request log, the client's retry gets the answer, and the payer is charged exactly once — for an exact
//! job, a tolerant one (killed while the operators commit) and a checked one (killed while the executor works).

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy_primitives::U256;
use reqwest::StatusCode;
use serde_json::Value;
use vouch_contracts::{AddressBook, alloy::signers::local::PrivateKeySigner};
use vouch_gateway::{Gateway, GatewayConfig, store::RequestStatus, store::RequestStore};
use vouch_primitives::{CallId, Certificate};
use vouch_sdk::{Agreement, Claimed, Json, JsonTolerance, Router};

use crate::common::{Setup, TestResult, pay, payment_required};

const CHILD_ENV: &str = "VOUCH_GATEWAY_KILL9_CHILD";
const CHILD_TEST: &str = "kill9::gateway_child_process";
/// The slow jobs: echo after 2 s, in each verification mode.
const SLOW: u8 = 4;
const SLOW_TOLERANT: u8 = 5;
const SLOW_CHECKED: u8 = 6;

/// The child role: runs a gateway from the JSON in [`CHILD_ENV`] until killed. Does nothing in a normal run.
#[test]
fn gateway_child_process() -> TestResult {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return Ok(()) };
    let spec: Value = serde_json::from_str(&spec)?;
    let config: GatewayConfig = serde_json::from_value(spec["config"].clone())?;
    let book = AddressBook::load(std::path::Path::new(spec["book"].as_str().ok_or("book")?))?;
    let key: PrivateKeySigner = spec["key"].as_str().ok_or("key")?.parse()?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        let gateway = Gateway::new(config, book, key).start().await?;
        println!("ready {}", gateway.addr());
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn spawn_gateway(setup: &Setup, config: &GatewayConfig) -> Result<(Child, String), Box<dyn std::error::Error>> {
    let book = setup.net.devnet().data_dir().join("addresses.json");
    let spec = serde_json::json!({
        "config": config,
        "book": book,
        "key": alloy_primitives::hex::encode_prefixed(setup.submitter.to_bytes()),
    });
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("stdout")?;
    for line in BufReader::new(stdout).lines() {
        // libtest prints "test <name> ... " before the test runs, so the marker may follow it on the same line.
        if let Some((_, addr)) = line?.split_once("ready ") {
            return Ok((child, format!("http://{}", addr.trim())));
        }
    }
    Err("the gateway child exited before it was ready".into())
}

async fn slow(Json(v): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    Json(v)
}

/// The checked job's checker: the claimed output is the input.
async fn echoes(Json(v): Json<Value>, claimed: Claimed) -> Agreement {
    match claimed.json::<Value>() {
        Ok(c) if c == v => Agreement::Agree,
        Ok(c) => Agreement::disagree(format!("claimed {c}, the input is {v}")),
        Err(disagreement) => disagreement,
    }
}

fn router() -> Router {
    vouch_echo::router()
        .route(SLOW, slow)
        .route(SLOW_TOLERANT, slow)
        .verifier(SLOW_TOLERANT, JsonTolerance { absolute: 1e-6, relative: 0.0 })
        .route(SLOW_CHECKED, slow)
        .checker(SLOW_CHECKED, echoes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_between_payment_and_answer_completes_and_charges_once() -> TestResult {
    if std::env::var(CHILD_ENV).is_ok() {
        return Ok(());
    }
    let mut setup = Setup::start_with(router(), 6_667).await?;
    // The in-process gateway of the setup is not used here: the gateway under test is a child process.
    if let Some(g) = setup.gateway.take() {
        g.kill();
    }
    let mut config = setup.config.clone();
    config.data_dir = setup._dir.path().join("gateway-process");
    for job in [SLOW, SLOW_TOLERANT, SLOW_CHECKED] {
        kill9_and_restart(&setup, &mut config, job).await.map_err(|e| format!("job {job}: {e}"))?;
    }
    Ok(())
}

/// Pays job `job`, SIGKILLs the gateway process once the request is in its log, restarts it, and checks that the
/// client's retry gets the answer with a certificate, the call settles, and the payer is charged the price once.
async fn kill9_and_restart(setup: &Setup, config: &mut GatewayConfig, job: u8) -> TestResult {
    let (mut child, url) = spawn_gateway(setup, config)?;
    config.listen = url.trim_start_matches("http://").parse()?;
    let job_url = format!("{url}/v1/services/{}/jobs/{job}", setup.net.service_id().0);
    let customer = setup.net.devnet().customer().address();
    let before = setup.usd(customer).await;

    let message = format!("kill -9 survivor of job {job}");
    let body = serde_json::to_vec(&serde_json::json!({ "message": message }))?;
    let client = reqwest::Client::new();
    let r = client.post(&job_url).body(body.clone()).send().await?;
    let required = payment_required(r.headers())?;
    let header = pay(setup, &required, setup.net.devnet().customer().signer(), |_| {}).await?;
    let (u, h, b) = (job_url.clone(), header.clone(), body.clone());
    let first =
        tokio::spawn(async move { reqwest::Client::new().post(u).header("PAYMENT-SIGNATURE", h).body(b).send().await });

    // Once the request is in the log (the operators then work for 2 s), SIGKILL the gateway process.
    let log = config.data_dir.join("gateway.sqlite");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if log.exists() && !RequestStore::open(&log)?.with_status(RequestStatus::Received, 10)?.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the request was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill()?;
    child.wait()?;
    assert!(first.await?.is_err(), "the first request dies with the gateway");

    let (mut child, _) = spawn_gateway(setup, config)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let r = client.post(&job_url).header("PAYMENT-SIGNATURE", &header).body(body.clone()).send().await?;
        if r.status() == StatusCode::OK {
            break r.json::<Value>().await?;
        }
        assert!(tokio::time::Instant::now() < deadline, "never answered after the restart: {}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer["output"]["message"], message.as_str());
    let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
    let store = RequestStore::open(&log)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.get(CallId(cert.call_id))?.map(|r| r.status) != Some(RequestStatus::Settled) {
        assert!(tokio::time::Instant::now() < deadline, "never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let price = U256::from(setup.net.devnet().jobs()[usize::from(job)].price);
    assert_eq!(setup.usd(customer).await, before - price, "charged exactly once");
    child.kill()?;
    child.wait()?;
    Ok(())
}
