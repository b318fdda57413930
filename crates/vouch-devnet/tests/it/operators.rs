//! Three operators with their BLS keys registered by proof of possession, staked and announced.

use alloy::primitives::{Bytes, U256};
use vouch_contracts::{ContractError, KeyRegistry, KeyRegistry::KeyRegistryErrors, VouchStaking, decode_revert};
use vouch_crypto::SecretKey;
use vouch_devnet::{Funding, ONE_ETH, ONE_VST};

use crate::common::{send, start};

#[tokio::test]
async fn operators_are_registered_with_their_bls_keys_and_staked() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let provider = devnet.read_provider();
    let registry = KeyRegistry::new(c.key_registry, &provider);
    let staking = VouchStaking::new(c.staking, &provider);
    let stake = U256::from(10_000) * ONE_VST;

    assert_eq!(devnet.operators().len(), 3);
    for (i, op) in devnet.operators().iter().enumerate() {
        assert_eq!(op.index(), i);
        let key = registry.keyOf(op.address()).call().await.expect("keyOf");
        assert_eq!(key.as_ref(), op.bls_public().to_eip2537().as_slice(), "operator {i}'s registered key");
        assert!(staking.isOperator(op.address()).call().await.expect("isOperator"));
        assert!(!staking.isJailed(op.address()).call().await.expect("isJailed"));
        assert_eq!(staking.selfStake(op.address()).call().await.expect("selfStake"), stake);
        assert_eq!(staking.activeStake(op.address()).call().await.expect("activeStake"), stake);
        assert_eq!(staking.commissionBps(op.address()).call().await.expect("commission"), 1_000);
        let info = staking.operatorInfo(op.address()).call().await.expect("operatorInfo");
        assert_eq!(info.endpoint, op.endpoint());
        assert_eq!(op.endpoint(), format!("http://127.0.0.1:{}", u32::from(devnet.port()) + 1 + i as u32));
        // First deposit into an empty pool: shares = assets × (0 + 10^3) / (0 + 1).
        let pool = staking.poolInfo(op.address()).call().await.expect("poolInfo");
        assert_eq!((pool.assets, pool.totalShares, pool.queuedShares), (stake, stake * U256::from(1_000), U256::ZERO));
        assert_eq!(staking.sharesOf(op.address(), op.address()).call().await.expect("shares"), pool.totalShares);
    }
}

#[tokio::test]
async fn a_proof_of_possession_for_another_operator_is_refused() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let newcomer = devnet.new_account(&Funding { eth: ONE_ETH, ..Funding::default() }).await.expect("funded");
    let provider = devnet.provider(&newcomer);
    let registry = KeyRegistry::new(c.key_registry, &provider);
    let bls = SecretKey::random().expect("key");
    let pubkey = Bytes::copy_from_slice(&bls.public_key().to_eip2537());

    // A valid proof, but bound to operator 0's address: the newcomer cannot register it.
    let victim = devnet.operators()[0].address();
    let pop = bls.prove_possession(&devnet.registry_binding(), victim);
    let pop = Bytes::copy_from_slice(&pop.signature().to_eip2537());
    let err = registry.registerKey(pubkey.clone(), pop).send().await.expect_err("refused");
    match decode_revert(err).expect("a KeyRegistry error") {
        ContractError::KeyRegistry(KeyRegistryErrors::InvalidProofOfPossession(e)) => {
            assert_eq!(e.operator, newcomer.address());
        }
        other => panic!("unexpected {other}"),
    }

    // Operator 0's registered key with a proof the newcomer cannot make for itself is a duplicate anyway.
    let existing = Bytes::copy_from_slice(&devnet.operators()[0].bls_public().to_eip2537());
    let own_pop = devnet.operators()[0].bls_secret().prove_possession(&devnet.registry_binding(), newcomer.address());
    let err = registry
        .registerKey(existing, Bytes::copy_from_slice(&own_pop.signature().to_eip2537()))
        .send()
        .await
        .expect_err("duplicate");
    assert!(
        matches!(decode_revert(err), Ok(ContractError::KeyRegistry(KeyRegistryErrors::DuplicateKey(e))) if e.registeredBy == victim),
        "a key registered by operator 0 is refused"
    );

    // The proof bound to the newcomer itself is accepted.
    let pop = bls.prove_possession(&devnet.registry_binding(), newcomer.address());
    send(registry.registerKey(pubkey.clone(), Bytes::copy_from_slice(&pop.signature().to_eip2537()))).await;
    assert_eq!(registry.keyOf(newcomer.address()).call().await.expect("keyOf"), pubkey);
}
