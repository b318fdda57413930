//! A paid call through the gateway: 402, payment, fan-out to 3 nodes, certificate, batched settlement, exact money.

use alloy_primitives::U256;
use reqwest::StatusCode;
use serde_json::Value;
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_primitives::{CallId, Certificate, certificate::bitmap_slots};
use vouch_testing::money::expected_split;

use crate::common::{Setup, TestResult, pay, payment_required, wait_settled};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_call_returns_a_verifiable_certificate_and_settles_with_exact_shares() -> TestResult {
    let setup = Setup::start(6_667).await?;
    let devnet = setup.net.devnet();
    let client = reqwest::Client::new();
    let body = br#"{"message":"paid per request"}"#.to_vec();

    let r = client.post(setup.job_url(0)).body(body.clone()).send().await?;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let required = payment_required(r.headers())?;
    let offer = &required["accepts"][0];
    assert_eq!(offer["scheme"], "exact");
    assert_eq!(offer["network"], format!("eip155:{}", devnet.chain_id()));
    assert_eq!(
        offer["payTo"].as_str().map(str::to_lowercase),
        Some(devnet.address_book().contracts.protocol.to_string().to_lowercase())
    );
    assert_eq!(offer["amount"], devnet.jobs()[0].price.to_string());
    assert_eq!(offer["extra"]["name"], "Vouch USD");
    assert!(offer["maxTimeoutSeconds"].as_u64().unwrap_or(0) >= u64::from(devnet.jobs()[0].deadline));

    let customer = devnet.customer().signer();
    let payer_before = setup.usd(customer.address()).await;
    let operators: Vec<_> = devnet.operators().iter().map(|o| o.address()).collect();
    let mut claimable_before = Vec::new();
    for op in &operators {
        claimable_before.push(setup.claimable(*op).await);
    }

    let header = pay(&setup, &required, customer, |_| {}).await?;
    let r = client.post(setup.job_url(0)).header("PAYMENT-SIGNATURE", header.clone()).body(body.clone()).send().await?;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    assert!(r.headers().contains_key("payment-response"));
    let answer: Value = r.json().await?;
    assert_eq!(answer["output"]["message"], "paid per request");
    let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
    assert_eq!(cert.signer_bitmap.count_ones(), 3);
    // The aggregate verifies against the registered keys of the signers over the digest the contract rebuilds.
    let keys: Vec<PublicKey> =
        bitmap_slots(cert.signer_bitmap).iter().map(|s| devnet.operators()[*s].bls_public()).collect();
    fast_aggregate_verify(&keys, &cert.digest(), &Signature::from_eip2537(&cert.signature)?)?;

    // Retrying the same payment is answered from the record and never charged twice.
    let again = client.post(setup.job_url(0)).header("PAYMENT-SIGNATURE", header).body(body).send().await?;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await?;
    assert_eq!(again["certificate"], answer["certificate"]);

    let call = CallId(cert.call_id);
    wait_settled(&setup, call).await?;
    let price = U256::from(devnet.jobs()[0].price);
    assert_eq!(setup.usd(customer.address()).await, payer_before - price, "charged exactly the price, once");
    let split = expected_split(devnet, setup.net.service_id().0, price, &[0, 1, 2]).await?;
    for (i, op) in operators.iter().enumerate() {
        assert_eq!(setup.claimable(*op).await, claimable_before[i] + split.commissions[i], "operator {i}'s commission");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_lists_services_with_prices_stake_and_verified_metadata() -> TestResult {
    let setup = Setup::start(6_667).await?;
    let devnet = setup.net.devnet();
    let list: Value = reqwest::get(format!("{}/v1/services", setup.gateway().url())).await?.json().await?;
    let service = &list["services"][0];
    assert_eq!(service["serviceId"], setup.net.service_id().0);
    assert_eq!(service["metadata"]["verified"], true, "{service}");
    assert_eq!(service["operators"].as_array().map(Vec::len), Some(3));
    let total: U256 = service["totalStake"].as_str().ok_or("totalStake")?.parse()?;
    assert_eq!(total, devnet.operators().iter().map(|o| o.self_stake()).sum::<U256>());
    for (i, job) in devnet.jobs().iter().enumerate() {
        assert_eq!(service["jobs"][i]["name"], job.name.as_str());
        assert_eq!(service["jobs"][i]["price"], job.price.to_string());
        assert_eq!(service["jobs"][i]["deadline"], job.deadline);
        assert_eq!(service["jobs"][i]["verification"], "exact", "the echo blueprint's jobs are exact");
    }
    Ok(())
}
