//! The settlement batcher against a real devnet: x402 calls signed by three nodes settle in one `settlePaidBatch`
//! with the fee split of docs/protocol.md "Money flows"; a resubmission moves no money; an expired or front-run
//! authorization is dropped as unpayable and the rest settles.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use vouch_contracts::{
    AuthorizationExt as _, TokenDomain, VouchProtocol, VouchUSD,
    alloy::providers::{DynProvider, Provider},
    vouch_protocol::VouchProtocol::{Settlement, SignerPaid},
};
use vouch_gateway::settlement::{
    BatcherConfig, MemoryStore, PendingSettlement, SettlementBatcher, SettlementState, wallet_provider,
};
use vouch_primitives::{
    CallId, paid_call_id,
    wire::{JobRequest, PaymentProof, SignedResult, TransferAuthorization, WIRE_VERSION},
};
use vouch_testing::{TestNetwork, devnet::Funding};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The customer pays job 0 with an EIP-3009 authorization (`nonce_seed` picks the nonce) valid until `valid_before`;
/// every node runs and signs the call through `POST /v1/jobs`. Returns what the gateway would store.
async fn paid_call(
    net: &TestNetwork,
    domain: &TokenDomain,
    nonce_seed: &str,
    valid_before: U256,
) -> Result<PendingSettlement, Box<dyn std::error::Error>> {
    let devnet = net.devnet();
    let customer = devnet.customer().signer();
    let service = net.service_id();
    let authorization = TransferAuthorization {
        from: customer.address(),
        to: devnet.address_book().contracts.protocol,
        value: U256::from(devnet.jobs()[0].price),
        valid_after: U256::ZERO,
        valid_before,
        nonce: keccak256(nonce_seed.as_bytes()),
    };
    let signature = authorization.sign(customer, domain)?;
    let call_id = paid_call_id(service, 0, authorization.from, authorization.nonce);
    let inputs = Bytes::from(format!(r#"{{"message":"{nonce_seed}"}}"#).into_bytes());
    let request = JobRequest {
        version: WIRE_VERSION,
        service_id: service,
        call_id,
        job_index: 0,
        inputs: inputs.clone(),
        payment: PaymentProof::X402 { authorization, signature: signature.clone() },
    };
    let http = reqwest::Client::new();
    let mut signers = Vec::new();
    let mut result_hash = B256::ZERO;
    for i in 0..devnet.operators().len() {
        let node = net.node(i).ok_or("node")?;
        let r = http.post(format!("{}/v1/jobs", node.api_url())).json(&request).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        assert!(status.is_success(), "node {i}: {status} {}", String::from_utf8_lossy(&body));
        let signed: SignedResult = serde_json::from_slice(&body)?;
        result_hash = signed.result.result_hash;
        signers.push(signed.operator);
    }
    Ok(PendingSettlement {
        call_id,
        service_id: service,
        job_index: 0,
        inputs_hash: keccak256(&inputs),
        result_hash,
        authorization,
        payment_signature: signature,
        signers,
    })
}

/// Every balance a settlement moves.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Balances {
    payer: U256,
    protocol: U256,
    staking: U256,
    accounted: U256,
    claimable: HashMap<Address, U256>,
    batches: U256,
}

async fn balances(net: &TestNetwork, read: &DynProvider) -> Result<Balances, Box<dyn std::error::Error>> {
    let devnet = net.devnet();
    let book = devnet.address_book();
    let c = book.contracts;
    let usd = VouchUSD::new(c.vouch_usd, read);
    let protocol = VouchProtocol::new(c.protocol, read);
    let mut claimable = HashMap::new();
    let accounts = devnet.operators().iter().map(|o| o.address()).chain([devnet.developer().address(), book.treasury]);
    for account in accounts {
        claimable.insert(account, protocol.claimable(account).call().await?);
    }
    Ok(Balances {
        payer: usd.balanceOf(devnet.customer().address()).call().await?,
        protocol: usd.balanceOf(c.protocol).call().await?,
        staking: usd.balanceOf(c.staking).call().await?,
        accounted: protocol.accounted().call().await?,
        claimable,
        batches: protocol.paidBatchCount().call().await?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_x402_calls_settle_in_one_batch_once_and_unusable_authorizations_are_dropped() -> TestResult {
    // The nodes' chain watchers stay out of the way: only the HTTP path signs.
    let net = TestNetwork::builder(vouch_echo::router()).operators(3).confirmations(1_000).start().await?;
    let devnet = net.devnet();
    let book = devnet.address_book().clone();
    let read = devnet.read_provider().erased();
    let domain = TokenDomain::read(&read, book.contracts.vouch_usd).await?;
    let price = U256::from(devnet.jobs()[0].price);
    let gas = devnet.new_account(&Funding { eth: U256::from(10u64).pow(U256::from(19)), ..Funding::default() }).await?;
    let wallet = wallet_provider(devnet.rpc_url(), gas)?;
    let store = Arc::new(MemoryStore::new());
    let config = BatcherConfig { max_batch: 100, max_delay: Duration::ZERO, poll: Duration::from_millis(100) };
    let batcher = SettlementBatcher::new(read.clone(), wallet, book.clone(), store.clone(), config);
    assert_eq!(batcher.settle_once().await?, None, "nothing to settle yet");

    let far = U256::from(4_000_000_000u64);
    let mut calls = Vec::new();
    for i in 0..5 {
        calls.push(paid_call(&net, &domain, &format!("call {i}"), far).await?);
    }
    for p in &calls {
        store.insert(p.clone());
    }
    let ids: Vec<CallId> = calls.iter().map(|p| p.call_id).collect();

    // One transaction settles all five.
    let before = balances(&net, &read).await?;
    let batch = batcher.settle_once().await?.ok_or("nothing settled")?;
    assert_eq!(batch.calls, ids);
    assert_eq!(batch.batch_id, before.batches + U256::from(1));
    let after = balances(&net, &read).await?;
    assert_eq!(after.batches, batch.batch_id);
    for id in &ids {
        assert_eq!(store.state(*id), Some(SettlementState::Settled { tx: batch.tx, batch_id: batch.batch_id }));
    }
    assert_eq!(batcher.settle_once().await?, None, "everything settled");

    // The payer paid exactly five prices; the fees are split as docs/protocol.md says.
    let n = U256::from(5u64);
    let payment = price * n;
    assert_eq!(before.payer - after.payer, payment);
    let receipt = read.get_transaction_receipt(batch.tx).await?.ok_or("no receipt")?;
    assert!(receipt.status());
    let logs = receipt.inner.logs();
    let paid: Vec<SignerPaid> =
        logs.iter().filter_map(|l| l.log_decode::<SignerPaid>().ok()).map(|l| l.inner.data).collect();
    let settlement =
        logs.iter().find_map(|l| l.log_decode::<Settlement>().ok()).ok_or("no Settlement event")?.inner.data;
    let protocol = VouchProtocol::new(book.contracts.protocol, &read);
    let service = protocol.getService(net.service_id().0).call().await?;
    let fee_bps = U256::from(protocol.PROTOCOL_FEE_BPS().call().await?);
    let developer_bps = U256::from(devnet.policy().developerFeeBps);
    let bps = U256::from(10_000u64);
    let developer_fee = price * developer_bps / bps;
    let protocol_fee = price * fee_bps / bps;
    let rest = price - developer_fee - protocol_fee;
    assert_eq!((settlement.count, settlement.payment), (5, payment));
    assert_eq!(settlement.signerBitmap, U256::from(0b111), "all three signed");
    assert_eq!(settlement.developer, devnet.developer().address());
    assert_eq!(settlement.developerFee, developer_fee * n);
    assert_eq!(settlement.protocolFee, protocol_fee * n);
    assert_eq!(paid.len(), 3);
    let mut shared = U256::ZERO;
    let mut rewards = U256::ZERO;
    for (slot, op) in devnet.operators().iter().enumerate() {
        let event = paid.iter().find(|e| e.operator == op.address()).ok_or("no SignerPaid for an operator")?;
        let share = rest * service.stakes[slot] / service.totalStake;
        let commission = share * U256::from(op.commission_bps()) / bps;
        assert_eq!(event.commission, commission * n, "commission of operator {slot}");
        assert_eq!(event.delegatorReward, (share - commission) * n, "delegators of operator {slot}");
        assert_eq!(after.claimable[&op.address()] - before.claimable[&op.address()], event.commission);
        shared += share * n;
        rewards += event.delegatorReward;
    }
    assert_eq!(settlement.dust, rest * n - shared);
    assert_eq!(settlement.delegatorRewards, rewards);
    assert_eq!(payment, settlement.developerFee + settlement.protocolFee + settlement.dust + shared);
    let developer = devnet.developer().address();
    assert_eq!(after.claimable[&developer] - before.claimable[&developer], settlement.developerFee);
    assert_eq!(
        after.claimable[&book.treasury] - before.claimable[&book.treasury],
        settlement.protocolFee + settlement.dust
    );
    assert_eq!(after.staking - before.staking, rewards, "delegators' part pushed to staking");
    assert_eq!(after.protocol - before.protocol, payment - rewards);
    assert_eq!(after.accounted - before.accounted, payment - rewards, "every unit kept is claimable by someone");

    // The same batch again: NothingToCollect counts as success, no money moves.
    for p in &calls {
        store.insert(p.clone());
    }
    let again = batcher.settle_once().await?.ok_or("resubmission not handled")?;
    assert_eq!((again.tx, again.batch_id, again.calls.clone()), (B256::ZERO, U256::ZERO, ids.clone()));
    assert_eq!(balances(&net, &read).await?, after, "a resubmission moves nothing");
    assert_eq!(store.unsettled_count(), 0);

    // An authorization that expires, one front-run straight to the token, and two good ones.
    let now = vouch_contracts::chain_now(&read).await?;
    let expiring = paid_call(&net, &domain, "expiring", U256::from(now + 10)).await?;
    let front_run = paid_call(&net, &domain, "front-run", far).await?;
    let good: Vec<PendingSettlement> =
        vec![paid_call(&net, &domain, "good 1", far).await?, paid_call(&net, &domain, "good 2", far).await?];
    let customer = devnet.provider(devnet.customer().signer());
    let a = front_run.authorization;
    let sent = VouchUSD::new(book.contracts.vouch_usd, &customer)
        .transferWithAuthorization_0(
            a.from,
            a.to,
            a.value,
            a.valid_after,
            a.valid_before,
            a.nonce,
            front_run.payment_signature.clone(),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(sent.status(), "front-run transfer");
    let _: serde_json::Value = read.raw_request("evm_increaseTime".into(), (U256::from(30u64),)).await?;
    let _: serde_json::Value = read.raw_request("anvil_mine".into(), (U256::from(1u64),)).await?;
    for p in [&expiring, &front_run, &good[0], &good[1]] {
        store.insert(p.clone());
    }
    let before = balances(&net, &read).await?;
    let batch = batcher.settle_once().await?.ok_or("the good calls did not settle")?;
    assert_eq!(batch.calls, vec![good[0].call_id, good[1].call_id]);
    assert_eq!(batch.batch_id, before.batches + U256::from(1));
    let after = balances(&net, &read).await?;
    assert_eq!(before.payer - after.payer, price * U256::from(2u64), "only the two good calls are charged");
    match store.state(expiring.call_id) {
        Some(SettlementState::Unpayable { reason }) => assert!(reason.contains("valid before"), "{reason}"),
        other => panic!("expiring call: {other:?}"),
    }
    match store.state(front_run.call_id) {
        Some(SettlementState::Unpayable { reason }) => assert!(reason.contains("outside the protocol"), "{reason}"),
        other => panic!("front-run call: {other:?}"),
    }
    assert_eq!(store.unsettled_count(), 0);

    // A backlog larger than a batch: the authorization that lapses first goes first, and a round checks only the
    // calls its batch takes (a call beyond them — here one that can never be collected — waits for its turn).
    let gas = devnet.new_account(&Funding { eth: U256::from(10u64).pow(U256::from(19)), ..Funding::default() }).await?;
    let small = BatcherConfig { max_batch: 2, ..config };
    let batcher =
        SettlementBatcher::new(read.clone(), wallet_provider(devnet.rpc_url(), gas)?, book, store.clone(), small);
    let now = vouch_contracts::chain_now(&read).await?;
    let mut backlog = Vec::new();
    for i in 0..3 {
        backlog.push(paid_call(&net, &domain, &format!("backlog {i}"), far).await?);
    }
    let sooner = paid_call(&net, &domain, "lapses first", U256::from(now + 3_600)).await?;
    let mut cancelled = paid_call(&net, &domain, "never collectable", far).await?;
    cancelled.payment_signature = Bytes::from(vec![0u8; 65]);
    for p in backlog.iter().chain([&sooner, &cancelled]) {
        store.insert(p.clone());
    }
    let first = batcher.settle_once().await?.ok_or("nothing settled from the backlog")?;
    assert_eq!(first.calls, vec![sooner.call_id, backlog[0].call_id], "earliest expiry first, then oldest");
    assert_eq!(store.state(cancelled.call_id), Some(SettlementState::Unsettled), "not checked before its turn");
    let second = batcher.settle_once().await?.ok_or("second batch")?;
    assert_eq!(second.calls, vec![backlog[1].call_id, backlog[2].call_id]);
    assert_eq!(batcher.settle_once().await?, None, "only the bad call is left, and it is dropped");
    assert!(matches!(store.state(cancelled.call_id), Some(SettlementState::Unpayable { .. })));
    assert_eq!(store.unsettled_count(), 0);
    Ok(())
}
