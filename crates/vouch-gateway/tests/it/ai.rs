//! The AI blueprints end to end on the devnet, with the real models: three in-process operators run
//! `vouch-embeddings` (a tolerant job: commit, then endorse) or `vouch-textgen` (a checked job: one executor,
//! teacher-forced checkers), the gateway serves them on its OpenAI-compatible routes, and the official `openai` Node
//! package pays for each call through `@x402/fetch` (tests/interop/openai-client.mjs). Each answer carries a
//! certificate that verifies against the operators' registered keys; it settles on chain and the payer is charged
//! exactly the price, once.

use std::{process::Command, time::Duration};

use alloy_primitives::{Address, U256, hex};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::Value;
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_gateway::openai::{OpenAiEndpoint, OpenAiModel};
use vouch_primitives::{CallId, Certificate, certificate::bitmap_slots};
use vouch_testing::{TestNetwork, devnet::Funding};

use crate::{
    common::{Setup, TestResult, wait_settled},
    interop::{repo_root, run_script},
};

/// The blueprint's arbiter (commitment deviations are proposable only where someone can veto honest noise).
const ARBITER: Address = Address::repeat_byte(0xa7);
/// Model loading, three operators and the first call (the models load lazily) on two cores.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// A network of three operators running `router`, with the gateway serving job 0 as `model` on `endpoint`.
async fn serve(
    router: vouch_sdk::Router,
    model: &str,
    endpoint: OpenAiEndpoint,
) -> Result<Setup, Box<dyn std::error::Error>> {
    let mut setup =
        Setup::start_custom(TestNetwork::builder(router).operators(3).quorum_bps(6_667).arbiter(ARBITER)).await?;
    setup.config.openai =
        vec![OpenAiModel { model: model.into(), endpoint, service: setup.net.service_id().0, job: 0 }];
    setup.restart_gateway().await?;
    Ok(setup)
}

/// The job's verification mode as the gateway's catalogue shows it.
async fn catalogued_verification(setup: &Setup) -> Result<Value, Box<dyn std::error::Error>> {
    let list: Value = reqwest::get(format!("{}/v1/services", setup.gateway().url())).await?.json().await?;
    Ok(list["services"][0]["jobs"][0]["verification"].clone())
}

/// A fresh payer holding ten prices calls `model` with the official `openai` Node client paying through x402;
/// returns the client's answer object, the certificate header, the payer and its funds.
async fn openai_client(
    setup: &Setup,
    endpoint: &str,
    model: &str,
    input: &str,
) -> Result<(Value, Value, Address, U256), Box<dyn std::error::Error>> {
    let devnet = setup.net.devnet();
    let price = U256::from(devnet.jobs()[0].price);
    let funds = price * U256::from(10u64);
    let payer = devnet.new_account(&Funding { usd: funds, ..Funding::default() }).await?;
    let root = repo_root();
    let installed = root.join("node_modules/openai/package.json");
    if !installed.exists() {
        return Err(format!("{} is missing: run scripts/setup.sh", installed.display()).into());
    }
    let mut command = Command::new("node");
    command
        .arg(root.join("tests/interop/openai-client.mjs"))
        .current_dir(&root)
        .env("BASE_URL", format!("{}/v1", setup.gateway().url()))
        .env("PRIVATE_KEY", hex::encode_prefixed(payer.to_bytes()))
        .env("TOKEN", devnet.address_book().contracts.vouch_usd.to_checksum(None))
        .env("CHAIN_ID", devnet.chain_id().to_string())
        .env("MAX_AMOUNT", price.to_string())
        .env("MODEL", model)
        .env("ENDPOINT", endpoint)
        .env("INPUT", input);
    let (report, ok, stderr) = run_script(command, "openai client", CLIENT_TIMEOUT).await?;
    assert!(ok, "the openai client failed: {report}\nstderr: {stderr}");
    // The header is base64 of the certificate's JSON (docs/gateway.md).
    let header: Value = match report["certificateHeader"].as_str() {
        Some(text) => serde_json::from_slice(&STANDARD.decode(text)?)?,
        None => Value::Null,
    };
    Ok((report["answer"].clone(), header, payer.address(), funds))
}

/// The answer's certificate: the same in the body and the header, signed by all three operators, and the aggregate
/// verifies against their registered keys over the digest the contract rebuilds. Then it settles and the payer is
/// charged exactly the price.
async fn certified_and_settled(
    setup: &Setup,
    answer: &Value,
    header: &Value,
    payer: Address,
    funds: U256,
) -> TestResult {
    let cert: Certificate = serde_json::from_value(answer["vouch_certificate"].clone())?;
    assert_eq!(&serde_json::to_value(&cert)?, header, "the x-vouch-certificate header is the body's certificate");
    let devnet = setup.net.devnet();
    assert_eq!(cert.signer_bitmap.count_ones(), 3, "all three honest operators signed");
    let keys: Vec<PublicKey> =
        bitmap_slots(cert.signer_bitmap).iter().map(|s| devnet.operators()[*s].bls_public()).collect();
    fast_aggregate_verify(&keys, &cert.digest(), &Signature::from_eip2537(&cert.signature)?)?;

    wait_settled(setup, CallId(cert.call_id)).await?;
    let price = U256::from(devnet.jobs()[0].price);
    assert_eq!(setup.usd(payer).await, funds - price, "charged exactly the price, once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_embeddings_from_three_operators_are_certified_and_settled() -> TestResult {
    const MODEL: &str = "all-MiniLM-L6-v2";
    let setup = serve(vouch_embeddings::router(), MODEL, OpenAiEndpoint::Embeddings).await?;
    assert_eq!(catalogued_verification(&setup).await?, "tolerant");

    let (answer, header, payer, funds) =
        openai_client(&setup, "embeddings", MODEL, "Staked operators vouch for this embedding.").await?;
    assert_eq!(answer["object"], "list", "{answer}");
    assert_eq!(answer["model"], MODEL);
    let embedding: Vec<f64> = serde_json::from_value(answer["data"][0]["embedding"].clone())?;
    assert_eq!(embedding.len(), 384, "all-MiniLM-L6-v2 is 384-dimensional");
    let norm = embedding.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "L2-normalised (the sentence-transformers recipe): {norm}");
    certified_and_settled(&setup, &answer, &header, payer, funds).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_chat_completions_from_three_operators_are_certified_and_settled() -> TestResult {
    const MODEL: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";
    let setup = serve(vouch_textgen::router(), MODEL, OpenAiEndpoint::ChatCompletions).await?;
    assert_eq!(catalogued_verification(&setup).await?, "checked");

    let (answer, header, payer, funds) = openai_client(&setup, "chat", MODEL, "What is the capital of France?").await?;
    assert_eq!(answer["object"], "chat.completion", "{answer}");
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(!content.trim().is_empty(), "{answer}");
    assert!(content.contains("Paris"), "greedy SmolLM2 knows this one: {content:?}");
    certified_and_settled(&setup, &answer, &header, payer, funds).await
}
