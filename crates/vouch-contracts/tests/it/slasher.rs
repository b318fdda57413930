//! `VouchSlasher`'s commitment deviations through the bindings, on a real deployment: the digest the contract checks is
//! `vouch_primitives::commitment_digest`, and the entry point a gateway reporter calls reverts with typed errors.

use vouch_contracts::{
    CallError, Contract, ContractError, DeployConfig, VouchSlasher,
    VouchSlasher::{SignedCommitment, VouchSlasherErrors},
    alloy::primitives::{Address, B256, Bytes, U256, keccak256},
    decode_revert_for, deploy,
};
use vouch_crypto::SecretKey;
use vouch_primitives::{CallId, ChainBinding, CommitmentRef, ResultRef, ServiceId, commitment_digest, result_digest};

use crate::anvil::Anvil;

#[tokio::test]
async fn commitment_digest_matches_the_contract_and_proposals_revert_typed() {
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let book = deploy(&provider, &DeployConfig::default()).await.expect("deploys");
    let slasher = VouchSlasher::new(book.contracts.slasher, &provider);

    let output = Bytes::from((0..384u16).flat_map(|i| (f32::from(i) / 384.0).to_le_bytes()).collect::<Vec<u8>>());
    let commitment = CommitmentRef {
        service_id: ServiceId(7),
        call_id: CallId(U256::MAX - U256::from(5)), // an x402-sized call id
        inputs_hash: keccak256("inputs"),
        output_hash: keccak256(&output),
    };
    let binding = ChainBinding::new(book.chain_id, book.contracts.protocol);
    let digest = commitment_digest(&binding, &commitment);
    let sk = SecretKey::from_ikm(&[7u8; 32]).expect("ikm");
    let signed = SignedCommitment {
        inputsHash: commitment.inputs_hash,
        outputHash: commitment.output_hash,
        signature: Bytes::from(sk.sign(&digest).to_eip2537().to_vec()),
    };

    let on_chain: B256 = slasher
        .commitmentEvidenceDigest(commitment.service_id.0, commitment.call_id.0, signed.clone())
        .call()
        .await
        .expect("call");
    assert_eq!(on_chain, digest, "Solidity and Rust commitment digests agree");
    let as_result = ResultRef {
        service_id: commitment.service_id,
        call_id: commitment.call_id,
        inputs_hash: commitment.inputs_hash,
        result_hash: commitment.output_hash,
    };
    assert_ne!(on_chain, result_digest(&binding, &as_result), "a commitment is not a result statement");

    // No such call: the typed revert a reporter matches on, as a call and as a transaction.
    let propose = slasher.proposeCommitmentDeviation(
        commitment.call_id.0,
        Address::repeat_byte(0x11),
        U256::ZERO,
        signed,
        output,
    );
    let err = CallError::for_contract(Contract::Slasher, propose.call().await.expect_err("unknown call"));
    match err.reverted() {
        Some(ContractError::Slasher(VouchSlasherErrors::CallNotSettled(e))) => {
            assert_eq!((e.callId, e.status), (commitment.call_id.0, 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("execution reverted: CallNotSettled(callId {}, status None)", commitment.call_id.0)
    );
    let err = decode_revert_for(Contract::Slasher, propose.send().await.expect_err("unknown call")).expect("decodes");
    assert!(matches!(err, ContractError::Slasher(VouchSlasherErrors::CallNotSettled(_))), "{err:?}");
}
