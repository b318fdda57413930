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
use vouch_contracts::VouchSlasher;
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_gateway::{
    openai::{OpenAiEndpoint, OpenAiModel},
    store::EvidenceStatus,
};
use vouch_primitives::{CallId, Certificate, certificate::bitmap_slots};
use vouch_testing::{TestNetwork, devnet::Funding};

use crate::{
    common::{Setup, TestResult, wait_settled},
    interop::{repo_root, run_script},
    verification::{certificate, nonce_for_executor, paid_call},
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

/// Job 0's OpenAI-style body for the native job route.
fn body(value: &Value) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    Ok(serde_json::to_vec(value)?)
}

/// Waits until the reporter has taken the kept evidence of `call` to the slasher, then checks the proposal against
/// `operator` is pending on chain.
async fn proposed_on_chain(setup: &Setup, call: CallId, operator: Address, commitment: bool) -> TestResult {
    let store = setup.gateway().store();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let statuses: Vec<EvidenceStatus> = if commitment {
            store.commitment_evidence(call)?.into_iter().map(|e| e.status).collect()
        } else {
            store.evidence(call)?.into_iter().map(|e| e.status).collect()
        };
        if statuses.contains(&EvidenceStatus::Proposed) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never proposed: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let devnet = setup.net.devnet();
    let slasher = VouchSlasher::new(devnet.address_book().contracts.slasher, devnet.read_provider());
    let proposal = slasher.getProposal(slasher.proposalIdOf(operator, call.0).call().await?).call().await?;
    assert_eq!((proposal.status, proposal.operator), (1, operator), "a pending deviation proposal on chain");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_kernel_noise_agrees_and_a_cheaper_model_is_refused_and_reported() -> TestResult {
    use vouch_embeddings::{
        BatcherConfig, Embedder, Implementation, LoadOptions, MiniLm, ModelFiles, WeightPrecision, router_with,
    };
    const CHEATER: usize = 0;
    const OTHER_KERNELS: usize = 2;
    let files = ModelFiles::locate()?;
    let load = |options: LoadOptions| -> Result<Embedder, Box<dyn std::error::Error>> {
        Ok(Embedder::new(MiniLm::load(&files, options)?, BatcherConfig::default()))
    };
    // Slot 0 saves compute with bf16 weights (max |Δ| ≈ 8e-4); slot 2 is honest on another kernel path (candle's
    // own BertModel instead of the fused encoder: |Δ| ≈ 2e-7); slot 1 runs the pinned profile.
    let cheap = load(LoadOptions { precision: WeightPrecision::BF16, ..LoadOptions::default() })?;
    let candle_bert = load(LoadOptions { implementation: Implementation::CandleBert, ..LoadOptions::default() })?;
    let pinned = load(LoadOptions::default())?;
    let mut setup = Setup::start_custom(
        TestNetwork::builder(router_with(pinned.clone()))
            .router_for(CHEATER, router_with(cheap))
            .router_for(OTHER_KERNELS, router_with(candle_bert.clone()))
            .quorum_bps(6_000)
            .arbiter(ARBITER),
    )
    .await?;
    setup.restart_gateway().await?;

    let text = "Honest operators differ in the last bits; cheaters do not get away with it.";
    let request = serde_json::json!({"model": "all-MiniLM-L6-v2", "input": text});
    // The two honest outputs are different bytes: only the tolerance makes them one certified result.
    let a = pinned.embed(vec![text.to_owned()]).await?.embeddings;
    let b = candle_bert.embed(vec![text.to_owned()]).await?.embeddings;
    assert_ne!(a, b, "another kernel path gives other bits");

    let answer = paid_call(&setup, &body(&request)?, None).await?;
    let cert = certificate(&setup, &answer)?;
    assert_eq!(cert.signer_bitmap, U256::from(0b110), "the pinned and the other-kernel operator, not the cheater");
    let certified: Vec<f32> = serde_json::from_value(answer["output"]["data"][0]["embedding"].clone())?;
    assert!(certified == a[0] || certified == b[0], "the certified output is one honest operator's");

    let call = CallId(cert.call_id);
    // A commitment that arrived after the quorum is asked about the certified output after the answer: its
    // refusal (the evidence) may land a moment later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let kept = loop {
        let kept = setup.gateway().store().commitment_evidence(call)?;
        if !kept.is_empty() || tokio::time::Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let [kept] = kept.try_into().map_err(|v| format!("one kept: {v:?}"))?;
    let cheater = setup.net.devnet().operators()[CHEATER].address();
    assert_eq!((kept.operator, kept.slot), (cheater, CHEATER), "the cheater's signed commitment is the evidence");
    wait_settled(&setup, call).await?;
    proposed_on_chain(&setup, call, cheater, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_on_another_kernel_tier_is_accepted_and_a_smaller_model_is_refused_and_reported() -> TestResult {
    use vouch_textgen::{LoadOptions, ModelFiles, TextGen, TextGenState, WeightFormat, router_with_state};
    const LIAR: usize = 1;
    const AS_SHIPPED: usize = 2;
    let files = ModelFiles::locate()?;
    let load = |options: LoadOptions| -> Result<vouch_sdk::Router, Box<dyn std::error::Error>> {
        Ok(router_with_state(TextGenState::with_model(std::sync::Arc::new(TextGen::load_with(&files, &options)?))))
    };
    // Slot 1 runs a smaller model (ten of the thirty blocks left out) and executes first; slot 2 is honest on
    // another kernel tier (the Q4_1 weights as shipped); slot 0 runs the pinned Q8_0 profile.
    let smaller = load(LoadOptions { skip_layers: (10..20).collect(), ..LoadOptions::default() })?;
    let shipped = load(LoadOptions { weights: WeightFormat::AsShipped, ..LoadOptions::default() })?;
    let mut setup = Setup::start_custom(
        TestNetwork::builder(load(LoadOptions::default())?)
            .router_for(LIAR, smaller)
            .router_for(AS_SHIPPED, shipped)
            .quorum_bps(6_000)
            .arbiter(ARBITER),
    )
    .await?;
    setup.restart_gateway().await?;

    let request = serde_json::json!({
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "messages": [{"role": "user", "content": "Name three colours of the rainbow."}],
        "max_tokens": 16,
    });
    let payer = setup.net.devnet().customer().address();
    let nonce = nonce_for_executor(setup.net.service_id(), payer, 3, LIAR)?;
    let answer = paid_call(&setup, &body(&request)?, Some(nonce)).await?;
    let cert = certificate(&setup, &answer)?;
    // The checkers refused the smaller model's text; the next executor (slot 2, Q4_1 kernels) generated, and the
    // pinned checker (slot 0) accepted it across the kernel tiers.
    assert_eq!(cert.signer_bitmap, U256::from(0b101), "{answer}");
    assert!(!answer["output"]["choices"][0]["message"]["content"].as_str().unwrap_or_default().is_empty());

    let call = CallId(cert.call_id);
    let [kept] = setup.gateway().store().evidence(call)?.try_into().map_err(|v| format!("one kept: {v:?}"))?;
    let liar = setup.net.devnet().operators()[LIAR].address();
    assert_eq!((kept.operator, kept.slot), (liar, LIAR), "the smaller model's signed text is the evidence");
    wait_settled(&setup, call).await?;
    proposed_on_chain(&setup, call, liar, false).await
}
