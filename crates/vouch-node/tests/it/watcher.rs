//! Chain watcher tests, on a real anvil with the protocol deployed (vouch-devnet): calls found with their inputs,
//! catch-up from the durable checkpoint after downtime, reorganizations, confirmation depth, x402 calls.

use std::{path::Path, time::Duration};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionReceipt,
    signers::SignerSync,
    sol_types::SolValue,
};
use tokio::sync::{mpsc, oneshot};
use vouch_contracts::{VouchProtocol, VouchUSD};
use vouch_devnet::{Devnet, DevnetConfig};
use vouch_node::watcher::{CallStatus, ChainCall, PollOutcome, StateStore, Watcher, WatcherConfig, WatcherEvent};
use vouch_primitives::{CallId, ServiceId, paid_call_id};

async fn start() -> Devnet {
    Devnet::start(DevnetConfig::default()).await.expect("the devnet starts")
}

fn config(devnet: &Devnet, confirmations: u64) -> WatcherConfig {
    let book = devnet.address_book();
    WatcherConfig {
        protocol: book.contracts.protocol,
        confirmations,
        poll_interval: Duration::from_millis(100),
        max_block_range: 1_000,
        start_block: book.deployed_at_block,
    }
}

fn watcher(devnet: &Devnet, store: &StateStore, config: WatcherConfig) -> Watcher<impl Provider + Clone + use<>> {
    Watcher::new(devnet.read_provider(), store.clone(), config)
}

fn open_store(dir: &Path) -> StateStore {
    StateStore::open(&dir.join("node.sqlite")).expect("the state store opens")
}

async fn send<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> TransactionReceipt {
    let receipt = call.send().await.expect("sends").get_receipt().await.expect("mined");
    assert!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
    receipt
}

/// The customer opens calls of `jobs` with `inputs` (`callJob` for one, `callJobs` for more); returns the block.
async fn open_calls(devnet: &Devnet, calls: &[(u8, &[u8])]) -> u64 {
    let c = devnet.address_book().contracts;
    let customer = devnet.provider(devnet.customer().signer());
    let price: u128 = calls.iter().map(|&(job, _)| devnet.jobs()[usize::from(job)].price).sum();
    send(VouchUSD::new(c.vouch_usd, &customer).approve(c.protocol, U256::from(price))).await;
    let protocol = VouchProtocol::new(c.protocol, &customer);
    let receipt = match calls {
        [(job, inputs)] => send(protocol.callJob(devnet.service_id(), *job, Bytes::copy_from_slice(inputs))).await,
        _ => {
            let jobs = calls.iter().map(|&(job, _)| job).collect();
            let inputs = calls.iter().map(|&(_, inputs)| Bytes::copy_from_slice(inputs)).collect();
            send(protocol.callJobs(devnet.service_id(), jobs, inputs)).await
        }
    };
    receipt.block_number.expect("a mined receipt has a block")
}

async fn call_count(devnet: &Devnet) -> u64 {
    let protocol = VouchProtocol::new(devnet.address_book().contracts.protocol, devnet.read_provider());
    protocol.callCount().call().await.expect("callCount")
}

async fn head(devnet: &Devnet) -> u64 {
    devnet.read_provider().get_block_number().await.expect("eth_blockNumber")
}

async fn mine(devnet: &Devnet, blocks: u64) {
    let _: serde_json::Value =
        devnet.read_provider().raw_request("anvil_mine".into(), (U256::from(blocks),)).await.expect("anvil_mine");
}

/// Replaces the last `depth` blocks with as many empty ones (`anvil_reorg [depth, [[tx, blockIndex], …]]`).
async fn reorg(devnet: &Devnet, depth: u64) {
    let _: serde_json::Value = devnet
        .read_provider()
        .raw_request("anvil_reorg".into(), (depth, Vec::<serde_json::Value>::new()))
        .await
        .expect("anvil_reorg");
}

/// Polls until the checkpoint reaches `head − confirmations`, merging the outcomes.
async fn sync<P: Provider + Clone>(devnet: &Devnet, watcher: &Watcher<P>) -> PollOutcome {
    let target = head(devnet).await - watcher.config().confirmations;
    let mut all = PollOutcome::default();
    for _ in 0..100 {
        let outcome = watcher.poll_once().await.expect("polls");
        all.new_calls.extend(outcome.new_calls);
        all.vanished.extend(outcome.vanished);
        all.checkpoint = outcome.checkpoint;
        if all.checkpoint >= target {
            return all;
        }
    }
    panic!("the watcher did not reach block {target}");
}

fn inputs(call: &ChainCall) -> Option<&[u8]> {
    call.inputs.as_ref().map(|inputs| &inputs[..])
}

fn ids(calls: &[ChainCall]) -> Vec<CallId> {
    calls.iter().map(|call| call.call_id).collect()
}

#[tokio::test]
async fn finds_calls_with_their_inputs() {
    let devnet = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    let watcher = watcher(&devnet, &store, config(&devnet, 0));
    assert!(sync(&devnet, &watcher).await.new_calls.is_empty(), "the devnet opens no call");

    let single = open_calls(&devnet, &[(0, b"hello, vouch")]).await;
    let batch = open_calls(&devnet, &[(1, b"first"), (0, b"second")]).await;
    let found = sync(&devnet, &watcher).await;

    assert_eq!(ids(&found.new_calls), [CallId::from(1), CallId::from(2), CallId::from(3)]);
    let first = &found.new_calls[0];
    assert_eq!((first.service_id, first.job_index), (ServiceId(devnet.service_id()), 0));
    assert_eq!(first.payer, devnet.customer().address());
    assert_eq!(first.payment, U256::from(devnet.jobs()[0].price));
    assert_eq!(inputs(first), Some(&b"hello, vouch"[..]));
    assert_eq!(first.inputs_hash, keccak256(b"hello, vouch"));
    assert_eq!(first.status, CallStatus::Pending);
    assert_eq!(first.block_number, single);
    let block = devnet.read_provider().get_block_by_number(single.into()).await.expect("block").expect("exists");
    assert_eq!(first.block_hash, block.header.hash);
    let on_chain = VouchProtocol::new(devnet.address_book().contracts.protocol, devnet.read_provider())
        .getCall(U256::from(1))
        .call()
        .await
        .expect("getCall");
    assert_eq!(first.deadline, on_chain.deadline);
    let (second, third) = (&found.new_calls[1], &found.new_calls[2]);
    assert_eq!((second.job_index, inputs(second), second.block_number), (1, Some(&b"first"[..]), batch));
    assert_eq!((third.job_index, inputs(third), third.block_number), (0, Some(&b"second"[..]), batch));

    assert_eq!(ids(&store.pending_calls().expect("pending")), ids(&found.new_calls));
    assert_eq!(store.call(CallId::from(2)).expect("reads").as_ref(), Some(second));
    assert_eq!(store.checkpoint().expect("reads").map(|(number, _)| number), Some(head(&devnet).await));
    mine(&devnet, 3).await;
    let again = sync(&devnet, &watcher).await;
    assert!(again.new_calls.is_empty() && again.vanished.is_empty(), "nothing is reported twice: {again:?}");
}

#[tokio::test]
async fn catches_up_from_the_checkpoint_after_downtime() {
    let devnet = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(&devnet, 1);
    config.max_block_range = 100;
    {
        let store = open_store(dir.path());
        let watcher = watcher(&devnet, &store, config.clone());
        open_calls(&devnet, &[(0, b"seen before the stop")]).await;
        mine(&devnet, 1).await;
        assert_eq!(ids(&sync(&devnet, &watcher).await.new_calls), [CallId::from(1)]);
        store.set_status(CallId::from(1), CallStatus::Done).expect("set_status");
    }

    // Downtime: calls are opened, and far more blocks pass than any "look N blocks back" window would cover.
    open_calls(&devnet, &[(0, b"during downtime")]).await;
    mine(&devnet, 1_500).await;
    open_calls(&devnet, &[(1, b"a"), (1, b"b")]).await;
    mine(&devnet, 1).await;

    let store = open_store(dir.path());
    let restarted = watcher(&devnet, &store, config);
    let found = sync(&devnet, &restarted).await;
    assert_eq!(ids(&found.new_calls), [CallId::from(2), CallId::from(3), CallId::from(4)], "each exactly once");
    assert_eq!(inputs(&found.new_calls[0]), Some(&b"during downtime"[..]));
    assert_eq!(ids(&store.pending_calls().expect("pending")), ids(&found.new_calls));
    assert_eq!(store.call(CallId::from(1)).expect("reads").map(|c| c.status), Some(CallStatus::Done));
    assert!(sync(&devnet, &restarted).await.new_calls.is_empty());
}

#[tokio::test]
async fn a_reorged_call_is_reported_vanished_and_its_id_can_return_with_other_inputs() {
    let devnet = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    let watcher = watcher(&devnet, &store, config(&devnet, 0));
    sync(&devnet, &watcher).await;

    let block = open_calls(&devnet, &[(0, b"doomed")]).await;
    mine(&devnet, 2).await;
    let found = sync(&devnet, &watcher).await;
    assert_eq!(ids(&found.new_calls), [CallId::from(1)]);
    assert_eq!(store.pending_calls().expect("pending").len(), 1);

    reorg(&devnet, head(&devnet).await - block + 1).await;
    assert_eq!(call_count(&devnet).await, 0, "the reorg removed the call");
    let after = sync(&devnet, &watcher).await;
    assert_eq!(after.vanished, [CallId::from(1)]);
    assert!(after.new_calls.is_empty());
    assert_eq!(store.call(CallId::from(1)).expect("reads").map(|c| c.status), Some(CallStatus::Vanished));
    assert!(store.pending_calls().expect("pending").is_empty());
    assert!(store.set_status(CallId::from(1), CallStatus::Done).is_err(), "a vanished call stays vanished");
    assert!(sync(&devnet, &watcher).await.vanished.is_empty(), "reported once");

    // The counter went back with the reorg: the next call reuses id 1, with its own inputs.
    open_calls(&devnet, &[(0, b"replacement")]).await;
    let revived = sync(&devnet, &watcher).await;
    assert_eq!(ids(&revived.new_calls), [CallId::from(1)]);
    assert_eq!(inputs(&revived.new_calls[0]), Some(&b"replacement"[..]));
    assert_eq!(store.call(CallId::from(1)).expect("reads").map(|c| c.status), Some(CallStatus::Pending));
}

#[tokio::test]
async fn waits_for_confirmations_and_never_reports_an_unconfirmed_call_that_vanished() {
    let devnet = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    let watcher = watcher(&devnet, &store, config(&devnet, 2));
    sync(&devnet, &watcher).await;

    let block = open_calls(&devnet, &[(0, b"confirm me")]).await;
    let outcome = watcher.poll_once().await.expect("polls");
    assert!(outcome.new_calls.is_empty());
    assert_eq!(outcome.checkpoint, block - 2);
    mine(&devnet, 1).await;
    assert!(watcher.poll_once().await.expect("polls").new_calls.is_empty(), "1 confirmation of 2");
    mine(&devnet, 1).await;
    assert_eq!(ids(&watcher.poll_once().await.expect("polls").new_calls), [CallId::from(1)]);

    // A call reorged away before it had its confirmations never surfaces.
    let block = open_calls(&devnet, &[(0, b"never confirmed")]).await;
    mine(&devnet, 1).await;
    assert!(watcher.poll_once().await.expect("polls").new_calls.is_empty());
    reorg(&devnet, head(&devnet).await - block + 1).await;
    mine(&devnet, 3).await;
    let outcome = sync(&devnet, &watcher).await;
    assert!(outcome.new_calls.is_empty() && outcome.vanished.is_empty(), "{outcome:?}");
    assert_eq!(ids(&store.pending_calls().expect("pending")), [CallId::from(1)]);
}

#[tokio::test]
async fn an_x402_call_is_recorded_with_its_inputs_off_chain() {
    let devnet = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    let watcher = watcher(&devnet, &store, config(&devnet, 0));
    let c = devnet.address_book().contracts;

    // The customer signs an EIP-3009 TransferWithAuthorization to the protocol; anyone submits openPaidCall.
    let usd = VouchUSD::new(c.vouch_usd, devnet.read_provider());
    let domain = usd.DOMAIN_SEPARATOR().call().await.expect("DOMAIN_SEPARATOR");
    let typehash = usd.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call().await.expect("typehash");
    let from = devnet.customer().address();
    let value = U256::from(devnet.jobs()[0].price);
    let (valid_after, valid_before, nonce) = (U256::ZERO, U256::from(u64::MAX), B256::repeat_byte(0x5a));
    let message = keccak256((typehash, from, c.protocol, value, valid_after, valid_before, nonce).abi_encode());
    let digest = keccak256([&[0x19, 0x01][..], domain.as_slice(), message.as_slice()].concat());
    let signature = devnet.customer().signer().sign_hash_sync(&digest).expect("signs").as_bytes();
    let inputs_hash = keccak256(b"delivered over HTTP");
    let paid = VouchProtocol::PaidCall {
        serviceId: devnet.service_id(),
        jobIndex: 0,
        inputsHash: inputs_hash,
        from,
        value,
        validAfter: valid_after,
        validBefore: valid_before,
        nonce,
        signature: Bytes::copy_from_slice(&signature),
    };
    let submitter = devnet.provider(devnet.developer().signer());
    send(VouchProtocol::new(c.protocol, &submitter).openPaidCall(paid)).await;
    open_calls(&devnet, &[(0, b"on-chain inputs")]).await;

    let found = sync(&devnet, &watcher).await;
    let paid_id = paid_call_id(ServiceId(devnet.service_id()), 0, from, nonce);
    assert_eq!(ids(&found.new_calls), [paid_id, CallId::from(1)]);
    let paid = &found.new_calls[0];
    assert_eq!((paid.status, paid.inputs.as_ref(), paid.inputs_hash), (CallStatus::InputsOffChain, None, inputs_hash));
    assert_eq!((paid.payer, paid.payment), (from, value));
    assert_eq!(
        ids(&store.pending_calls().expect("pending")),
        [CallId::from(1)],
        "x402 calls are not executed from the chain"
    );
    assert_eq!(ids(&store.calls_with_status(CallStatus::InputsOffChain).expect("reads")), [paid_id]);
}

#[tokio::test]
async fn run_reports_new_and_vanished_calls_and_stops_on_shutdown() {
    let devnet = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    let (events, mut received) = mpsc::channel(16);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(watcher(&devnet, &store, config(&devnet, 0)).run(events, async {
        let _ = stopped.await;
    }));

    let next = async |received: &mut mpsc::Receiver<WatcherEvent>| {
        tokio::time::timeout(Duration::from_secs(20), received.recv()).await.expect("an event in time").expect("open")
    };
    let block = open_calls(&devnet, &[(0, b"run")]).await;
    match next(&mut received).await {
        WatcherEvent::NewCalls(calls) => assert_eq!(ids(&calls), [CallId::from(1)]),
        other => panic!("unexpected {other:?}"),
    }
    reorg(&devnet, head(&devnet).await - block + 1).await;
    assert_eq!(next(&mut received).await, WatcherEvent::Vanished(vec![CallId::from(1)]));

    stop.send(()).expect("the watcher listens");
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops in time").expect("joins").expect("ok");
}

#[tokio::test]
async fn run_keeps_retrying_while_the_rpc_endpoint_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    // Nothing listens on port 9 (discard): every request fails.
    let provider = alloy::providers::ProviderBuilder::new().connect_http("http://127.0.0.1:9".parse().expect("a URL"));
    let config = WatcherConfig {
        poll_interval: Duration::from_millis(20),
        ..WatcherConfig::new(alloy::primitives::Address::repeat_byte(1), 0)
    };
    let (events, _received) = mpsc::channel(1);
    let run = Watcher::new(provider, store, config).run(events, tokio::time::sleep(Duration::from_millis(500)));
    tokio::time::timeout(Duration::from_secs(10), run).await.expect("stops at shutdown").expect("not on RPC errors");
}
