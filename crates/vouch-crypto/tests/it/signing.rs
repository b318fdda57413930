//! Sign/verify, aggregate/verify and proofs of possession, as unit and property tests.

use alloy_primitives::{Address, B256, address};
use proptest::prelude::*;
use vouch_crypto::{
    CryptoError, PublicKey, SecretKey, aggregate_public_keys, aggregate_signatures, fast_aggregate_verify,
};
use vouch_primitives::ChainBinding;

const REGISTRY: ChainBinding = ChainBinding::new(31337, address!("0x000000000000000000000000000000000000c0de"));

fn key(seed: u8) -> SecretKey {
    SecretKey::from_ikm(&[seed; 32]).expect("32-byte ikm")
}

#[test]
fn key_generation_is_deterministic_and_checks_input() {
    assert_eq!(key(1).public_key(), key(1).public_key());
    assert_ne!(key(1).public_key(), key(2).public_key());
    assert_eq!(SecretKey::from_ikm(&[0; 31]).err(), Some(CryptoError::ShortKeyMaterial(31)));
    assert_eq!(SecretKey::from_seed_eip2333(&[1; 8]).err(), Some(CryptoError::ShortKeyMaterial(8)));
    assert_eq!(SecretKey::from_bytes(&[0; 32]).err(), Some(CryptoError::InvalidSecretKey));
    assert_eq!(SecretKey::from_bytes(&[0xff; 32]).err(), Some(CryptoError::InvalidSecretKey), "above the group order");
    let random = SecretKey::random().expect("os randomness");
    assert_ne!(random.public_key(), key(1).public_key());
}

#[test]
fn eip2333_master_and_child_keys_match_the_spec_vector() {
    // EIP-2333 test case 0.
    let seed = alloy_primitives::hex::decode(
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
    )
    .expect("hex");
    let master = SecretKey::from_seed_eip2333(&seed).expect("seed");
    let expect_master = alloy_primitives::U256::from_str_radix(
        "6083874454709270928345386274498605044986640685124978867557563392430687146096",
        10,
    )
    .expect("decimal");
    assert_eq!(master.to_bytes().as_slice(), expect_master.to_be_bytes::<32>());
    let child = master.derive_child_eip2333(0);
    let expect_child = alloy_primitives::U256::from_str_radix(
        "20397789859736650942317412262472558107875392172444076792671091975210932703118",
        10,
    )
    .expect("decimal");
    assert_eq!(child.to_bytes().as_slice(), expect_child.to_be_bytes::<32>());
}

#[test]
fn proof_of_possession_is_bound_to_operator_chain_and_registry() {
    let sk = key(3);
    let pk = sk.public_key();
    let op = address!("0x0000000000000000000000000000000000001001");
    let other = address!("0x0000000000000000000000000000000000001002");
    let pop = sk.prove_possession(&REGISTRY, op);
    pop.verify(&pk, &REGISTRY, op).expect("own PoP verifies");
    assert_eq!(pop.verify(&pk, &REGISTRY, other), Err(CryptoError::InvalidProofOfPossession { operator: other }));
    let other_chain = ChainBinding::new(1, REGISTRY.contract);
    assert!(pop.verify(&pk, &other_chain, op).is_err());
    let other_registry = ChainBinding::new(REGISTRY.chain_id, Address::ZERO);
    assert!(pop.verify(&pk, &other_registry, op).is_err());
    assert!(pop.verify(&key(4).public_key(), &REGISTRY, op).is_err(), "PoP of one key is not a PoP of another");
}

#[test]
fn a_pop_is_not_a_result_signature() {
    // Domain separation: a PoP digest signed under the PoP DST never verifies as a result signature.
    let sk = key(9);
    let op = address!("0x0000000000000000000000000000000000001001");
    let pop = sk.prove_possession(&REGISTRY, op);
    let digest = vouch_primitives::pop_digest(&REGISTRY, op, &sk.public_key().to_eip2537());
    assert_eq!(pop.signature().verify(&sk.public_key(), &digest), Err(CryptoError::VerificationFailed));
}

#[test]
fn empty_aggregates_are_refused() {
    assert_eq!(aggregate_signatures(&[]).err(), Some(CryptoError::EmptyAggregate));
    assert_eq!(aggregate_public_keys(&[]).err(), Some(CryptoError::EmptyAggregate));
    let sig = key(1).sign(&B256::ZERO);
    assert_eq!(fast_aggregate_verify(&[], &B256::ZERO, &sig), Err(CryptoError::EmptyAggregate));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sign_verify_round_trip(seed in any::<[u8; 32]>(), digest in any::<[u8; 32]>(), flip in 0usize..32) {
        let sk = SecretKey::from_ikm(&seed).expect("32 bytes");
        let digest = B256::from(digest);
        let sig = sk.sign(&digest);
        prop_assert!(sig.verify(&sk.public_key(), &digest).is_ok());
        let mut wrong = digest;
        wrong.0[flip] ^= 1;
        prop_assert_eq!(sig.verify(&sk.public_key(), &wrong), Err(CryptoError::VerificationFailed));
    }

    #[test]
    fn aggregate_verifies_for_exactly_its_signers(n in 1usize..12, drop in any::<prop::sample::Index>(), digest in any::<[u8; 32]>()) {
        let digest = B256::from(digest);
        let keys: Vec<SecretKey> = (0..n as u8).map(|i| key(i.wrapping_add(100))).collect();
        let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let agg = aggregate_signatures(&keys.iter().map(|k| k.sign(&digest)).collect::<Vec<_>>()).expect("non-empty");
        prop_assert!(fast_aggregate_verify(&pks, &digest, &agg).is_ok());
        // Same as verifying against the summed key, as the contract does.
        prop_assert!(agg.verify(&aggregate_public_keys(&pks).expect("non-empty"), &digest).is_ok());
        // Missing one signer, or an extra one, fails.
        let mut fewer = pks.clone();
        fewer.remove(drop.index(n));
        if !fewer.is_empty() {
            prop_assert!(fast_aggregate_verify(&fewer, &digest, &agg).is_err());
        }
        let mut more = pks;
        more.push(key(1).public_key());
        prop_assert!(fast_aggregate_verify(&more, &digest, &agg).is_err());
    }
}
