//! One operator returns a wrong result: the call succeeds with the honest quorum, the liar's signed result is kept as
//! evidence, and once the call is settled the gateway's reporter proves the call to the slasher, proposes the
//! deviation and, after the blueprint's dispute window, executes it: the liar loses exactly `deviationSlashBps` of its
//! stake, shared between the payer, the reporter (the gateway's submitter) and the burn.

use std::time::Duration;

use alloy_primitives::{Address, U256};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vouch_contracts::{
    VouchSlasher, VouchStaking, alloy::providers::Provider as _, vouch_slasher::VouchSlasher::DeviationSlashed,
};
use vouch_gateway::store::{Evidence, EvidenceStatus, RequestStatus};
use vouch_primitives::{CallId, Certificate};
use vouch_sdk::{Json, Router};
use vouch_testing::TestNetwork;

use crate::common::{Setup, TestResult, pay, payment_required, wait_settled};

/// The liar's slot.
const LIAR: usize = 2;
const BPS: u64 = 10_000;

async fn honest(Json(v): Json<Value>) -> Json<Value> {
    Json(v)
}

/// A liar that answers after the honest quorum: its reply arrives after the answer was sent, and must still be kept.
async fn lie(Json(_): Json<Value>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    Json(json!({"message": "something else entirely"}))
}

fn mul_div(a: U256, b: U256, c: U256) -> U256 {
    a * b / c
}

async fn wait_evidence(
    setup: &Setup,
    call: CallId,
    status: EvidenceStatus,
    within: Duration,
) -> Result<Evidence, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let kept = setup.gateway().store().evidence(call).map_err(|e| e.to_string())?;
        if let [e] = kept.as_slice()
            && e.status == status
        {
            return Ok(e.clone());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("evidence never reached {status:?}: {kept:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_operator_is_reported_and_slashed_after_the_dispute_window() -> TestResult {
    let setup = Setup::start_custom(
        TestNetwork::builder(Router::new().route(0, honest))
            .router_for(LIAR, Router::new().route(0, lie))
            .quorum_bps(6_000),
    )
    .await?;
    let devnet = setup.net.devnet();
    let c = devnet.address_book().contracts;
    let read = devnet.read_provider();
    let slasher = VouchSlasher::new(c.slasher, &read);
    let staking = VouchStaking::new(c.staking, &read);
    let liar = devnet.operators()[LIAR].address();
    let payer = devnet.customer().address();
    let reporter: Address = setup.submitter.address();

    // The paid call succeeds with the two honest signers.
    let client = reqwest::Client::new();
    let body = br#"{"message":"the truth"}"#.to_vec();
    let r = client.post(setup.job_url(0)).body(body.clone()).send().await?;
    let header = pay(&setup, &payment_required(r.headers())?, devnet.customer().signer(), |_| {}).await?;
    let r = client.post(setup.job_url(0)).header("PAYMENT-SIGNATURE", &header).body(body).send().await?;
    let status = r.status();
    let answer: Value = r.json().await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["output"]["message"], "the truth");
    let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
    assert_eq!(cert.signer_bitmap, U256::from(0b011), "the honest two certify");
    let call = CallId(cert.call_id);

    // The liar's signed result, arriving after the answer, is kept as evidence.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept = setup.gateway().store().evidence(call)?;
        if !kept.is_empty() || tokio::time::Instant::now() > deadline {
            break kept;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let [evidence] = kept.as_slice() else { return Err(format!("one piece of evidence expected: {kept:?}").into()) };
    assert_eq!((evidence.operator, evidence.slot), (liar, LIAR));
    assert_eq!(evidence.inputs_hash, cert.inputs_hash);
    assert_ne!(evidence.result_hash, cert.result_hash);
    assert_eq!(evidence.signature.len(), 96);

    // Settled, then proven to the slasher and proposed by the gateway's submitter.
    wait_settled(&setup, call).await?;
    assert_eq!(setup.gateway().store().get(call)?.ok_or("recorded")?.status, RequestStatus::Settled);
    let proposed = wait_evidence(&setup, call, EvidenceStatus::Proposed, Duration::from_secs(60)).await?;
    let proven = slasher.getCall(call.0).call().await?;
    assert_eq!((proven.status, proven.payer, proven.resultHash), (2, payer, cert.result_hash), "call proven");
    let proposal_id = slasher.proposalIdOf(liar, call.0).call().await?;
    assert_eq!(proposal_id, vouch_gateway::reporter::proposal_id(liar, call));
    let proposal = slasher.getProposal(proposal_id).call().await?;
    assert_eq!((proposal.status, proposal.operator, proposal.proposer), (1, liar, reporter), "pending, ours");
    let window = u64::from(devnet.policy().disputeWindow);
    assert_eq!(window, 86_400);
    assert_eq!(proposed.executable_at, Some(proposal.executableAt));
    assert!(proposed.tx.is_some());

    // Not executed before the window ends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = setup.gateway().store().evidence(call)?;
    assert_eq!(still[0].status, EvidenceStatus::Proposed, "{still:?}");

    // What the slash must be (VouchSlasher._slash, VouchStaking.slash): amount = slashable × bps, payer and reporter
    // shares of it, together capped at half of the operator's own loss.
    let policy = devnet.policy();
    let bps = U256::from(BPS);
    let slashable = staking.slashableStake(liar).call().await?;
    let amount = mul_div(slashable, U256::from(policy.deviationSlashBps), bps);
    let mut to_payer = mul_div(amount, U256::from(policy.payerShareBps), bps);
    let mut to_reporter = mul_div(amount, U256::from(policy.reporterShareBps), bps);
    let own = staking.delegatedStake(liar, liar).call().await?;
    let cap = mul_div(amount, own, slashable) / U256::from(2);
    if to_payer + to_reporter > cap {
        let payout = to_payer + to_reporter;
        to_payer = mul_div(to_payer, cap, payout);
        to_reporter = mul_div(to_reporter, cap, payout);
    }
    assert_eq!(policy.deviationSlashBps, 500);
    assert!(!amount.is_zero());
    let payer_before = staking.slashedClaimable(payer).call().await?;
    let reporter_before = staking.slashedClaimable(reporter).call().await?;
    let honest_before: Vec<U256> = {
        let mut v = Vec::new();
        for op in &devnet.operators()[..LIAR] {
            v.push(staking.slashableStake(op.address()).call().await?);
        }
        v
    };

    // Past the dispute window: the reporter executes.
    let _: Value = read.raw_request("evm_increaseTime".into(), (U256::from(window + 1),)).await?;
    let _: Value = read.raw_request("evm_mine".into(), ()).await?;
    let executed = wait_evidence(&setup, call, EvidenceStatus::Executed, Duration::from_secs(60)).await?;
    assert_eq!(slasher.getProposal(proposal_id).call().await?.status, 3, "executed on chain");

    let tx = executed.tx.ok_or("execution tx recorded")?;
    let receipt = read.get_transaction_receipt(tx).await?.ok_or("execution receipt")?;
    let event = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<DeviationSlashed>().ok())
        .ok_or("DeviationSlashed in the execution")?
        .inner
        .data;
    assert_eq!((event.operator, event.callId, event.proposalId), (liar, call.0, proposal_id));
    assert_eq!((event.amount, event.slashed), (amount, amount), "exactly deviationSlashBps of its stake");
    assert_eq!(staking.slashableStake(liar).call().await?, slashable - amount);
    assert_eq!(staking.slashedClaimable(payer).call().await? - payer_before, to_payer, "payer share");
    assert_eq!(staking.slashedClaimable(reporter).call().await? - reporter_before, to_reporter, "reporter share");
    for (op, before) in devnet.operators()[..LIAR].iter().zip(honest_before) {
        assert_eq!(staking.slashableStake(op.address()).call().await?, before, "honest operators untouched");
    }
    Ok(())
}
