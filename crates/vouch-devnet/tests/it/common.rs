//! Helpers shared by the tests: start a devnet, send transactions, read balances, open calls, build certificates.

use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionReceipt,
};
use vouch_contracts::{StakeToken, VouchProtocol, VouchUSD};
use vouch_crypto::{Signature, aggregate_signatures};
use vouch_devnet::{Devnet, DevnetConfig};
use vouch_primitives::{CallId, ResultRef, ServiceId, result_digest};

/// A devnet with the default config: 3 operators, temporary data directory, a free port.
pub(crate) async fn start() -> Devnet {
    Devnet::start(DevnetConfig::default()).await.expect("the devnet starts")
}

/// Sends a transaction, waits for its receipt and requires success.
pub(crate) async fn send<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> TransactionReceipt {
    let receipt = call.send().await.expect("sends").get_receipt().await.expect("mined");
    assert!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
    receipt
}

/// Vouch USD balance of `who`.
pub(crate) async fn usd_balance(devnet: &Devnet, who: Address) -> U256 {
    let usd = VouchUSD::new(devnet.address_book().contracts.vouch_usd, devnet.read_provider());
    usd.balanceOf(who).call().await.expect("balanceOf")
}

/// Stake-token balance of `who`.
pub(crate) async fn stake_balance(devnet: &Devnet, who: Address) -> U256 {
    let token = StakeToken::new(devnet.address_book().contracts.stake_token, devnet.read_provider());
    token.balanceOf(who).call().await.expect("balanceOf")
}

/// A call opened on-chain by the customer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenCall {
    pub(crate) id: U256,
    pub(crate) inputs_hash: B256,
    pub(crate) price: U256,
}

/// The customer approves exactly the price of `job` and opens a call of it with `inputs` (`callJob`).
pub(crate) async fn open_call(devnet: &Devnet, job: u8, inputs: &[u8]) -> OpenCall {
    let c = devnet.address_book().contracts;
    let customer = devnet.provider(devnet.customer().signer());
    let price = U256::from(devnet.jobs()[usize::from(job)].price);
    send(VouchUSD::new(c.vouch_usd, &customer).approve(c.protocol, price)).await;
    let protocol = VouchProtocol::new(c.protocol, &customer);
    send(protocol.callJob(devnet.service_id(), job, Bytes::copy_from_slice(inputs))).await;
    let id = U256::from(protocol.callCount().call().await.expect("callCount"));
    OpenCall { id, inputs_hash: keccak256(inputs), price }
}

/// What operators sign for `call` with `result_hash`.
pub(crate) fn result_ref(devnet: &Devnet, call: &OpenCall, result_hash: B256) -> ResultRef {
    ResultRef {
        service_id: ServiceId(devnet.service_id()),
        call_id: CallId(call.id),
        inputs_hash: call.inputs_hash,
        result_hash,
    }
}

/// Operator `slot`'s own signature over the result digest (chain id and protocol bound in).
pub(crate) fn sign(devnet: &Devnet, slot: usize, result: &ResultRef) -> Signature {
    devnet.operators()[slot].bls_secret().sign(&result_digest(&devnet.protocol_binding(), result))
}

/// A certificate by the operators at `slots`: their signer bitmap and the EIP-2537 aggregate signature.
pub(crate) fn certify(devnet: &Devnet, slots: &[usize], result: &ResultRef) -> (U256, Bytes) {
    let signatures: Vec<Signature> = slots.iter().map(|&slot| sign(devnet, slot, result)).collect();
    let aggregate = aggregate_signatures(&signatures).expect("aggregates");
    let bitmap = slots.iter().fold(U256::ZERO, |bitmap, &slot| bitmap | (U256::from(1) << slot));
    (bitmap, Bytes::copy_from_slice(&aggregate.to_eip2537()))
}

/// `a × b / d`, rounded down: Solidity's `Math.mulDiv` for the amounts of these tests (their product fits 256 bits).
pub(crate) fn mul_div(a: U256, b: U256, d: U256) -> U256 {
    a * b / d
}

/// Basis-point denominator.
pub(crate) const BPS: U256 = U256::from_limbs([10_000, 0, 0, 0]);
