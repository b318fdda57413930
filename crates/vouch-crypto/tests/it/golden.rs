//! Golden vectors shared with the Solidity tests (`contracts/test/vectors/bls.json`).
//!
//! This test regenerates the file from fixed seeds and fails if the committed copy differs. After
//! an intentional format change run `VOUCH_UPDATE_VECTORS=1 cargo test -p vouch-crypto --test it golden`
//! and commit the result. Layout: `contracts/test/vectors/README.md`.

use crate::points;
use alloy_primitives::{Address, B256, U256, address, hex, keccak256};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use vouch_crypto::{
    CryptoError, DST_POP, DST_RESULT, PublicKey, SecretKey, Signature, aggregate_signatures, fast_aggregate_verify,
};
use vouch_primitives::{
    BatchEntry, CallId, ChainBinding, CommitmentRef, PaidRecord, ResultRef, ServiceId, batch_digest, batch_leaf,
    batch_root, commitment_digest, paid_call_id, paid_record_leaf, pop_digest, result_digest,
};

const CHAIN_ID: u64 = 31337;
const REGISTRY: Address = address!("0x000000000000000000000000000000000000c0de");
const PROTOCOL: Address = address!("0x000000000000000000000000000000000000cafe");
const SET_SIZE: usize = 128;

const ERR_INFINITY: &str = "InfinityKey()";
const ERR_DUPLICATE: &str = "DuplicateKey(bytes32,address)";
const ERR_POP: &str = "InvalidProofOfPossession(address)";
const ERR_LENGTH: &str = "InvalidLength(uint256,uint256)";

fn x(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(format!("0x{}", hex::encode(bytes)))
}

/// A call id as JSON: a number for counter ids (what forge's `parseJsonUint` reads either way), a
/// 0x-prefixed 32-byte word for derived x402 ids.
fn id_json(id: CallId) -> Value {
    match u64::try_from(id.0) {
        Ok(small) => Value::from(small),
        Err(_) => x(id.0.to_be_bytes::<32>()),
    }
}

fn bitmap_hex(slots: &[usize]) -> Value {
    let mut b = U256::ZERO;
    for s in slots {
        b |= U256::from(1) << *s;
    }
    Value::String(format!("0x{b:064x}"))
}

fn operator(i: u64) -> Address {
    Address::left_padding_from(&(0x1000 + i).to_be_bytes())
}

struct Key {
    secret: SecretKey,
    ikm: [u8; 32],
    operator: Address,
}

fn keys() -> Vec<Key> {
    (0..SET_SIZE as u64)
        .map(|i| {
            let ikm: [u8; 32] = Sha256::digest(format!("vouch golden vector key {i}")).into();
            Key { secret: SecretKey::from_ikm(&ikm).expect("32-byte ikm"), ikm, operator: operator(i) }
        })
        .collect()
}

fn aggregate(keys: &[Key], slots: &[usize], digest: &B256) -> Signature {
    let sigs: Vec<Signature> = slots.iter().map(|s| keys[*s].secret.sign(digest)).collect();
    aggregate_signatures(&sigs).expect("non-empty")
}

/// Builds the whole vector file, checking every case against the Rust implementation on the way.
fn generate() -> Value {
    let registry = ChainBinding::new(CHAIN_ID, REGISTRY);
    let protocol = ChainBinding::new(CHAIN_ID, PROTOCOL);
    let keys = keys();
    let pubkeys: Vec<PublicKey> = keys.iter().map(|k| k.secret.public_key()).collect();

    let key_json: Vec<Value> = keys
        .iter()
        .map(|k| {
            let pk = k.secret.public_key();
            let pop = k.secret.prove_possession(&registry, k.operator);
            pop.verify(&pk, &registry, k.operator).expect("fresh PoP verifies");
            json!({
                "ikm": x(k.ikm),
                "secretKey": x(k.secret.to_bytes().as_slice()),
                "operator": k.operator.to_string(),
                "pubkey": x(pk.to_eip2537()),
                "pubkeyCompressed": x(pk.to_compressed()),
                "pop": x(pop.signature().to_eip2537()),
            })
        })
        .collect();

    let result = ResultRef {
        service_id: ServiceId(7),
        call_id: CallId::from(42),
        inputs_hash: keccak256("vouch golden inputs"),
        result_hash: keccak256("vouch golden result"),
    };
    let digest = result_digest(&protocol, &result);

    let entries: Vec<BatchEntry> = (0..5u64)
        .map(|i| BatchEntry {
            call_id: CallId::from(100 + i),
            inputs_hash: keccak256(format!("batch inputs {i}")),
            result_hash: keccak256(format!("batch result {i}")),
        })
        .collect();
    let leaves: Vec<B256> = entries.iter().map(batch_leaf).collect();
    let batch = json!({
        "serviceId": 7,
        "count": entries.len(),
        "leaves": entries.iter().zip(&leaves).map(|(e, l)| json!({
            "callId": id_json(e.call_id), "inputsHash": x(e.inputs_hash), "resultHash": x(e.result_hash), "leaf": x(l),
        })).collect::<Vec<_>>(),
        "root": x(batch_root(&leaves).expect("non-empty")),
        "digest": x(batch_digest(&protocol, ServiceId(7), &entries).expect("non-empty")),
    });

    let record = PaidRecord {
        from: address!("0x00000000000000000000000000000000000a11ce"),
        nonce: keccak256("vouch golden nonce"),
        job_index: 3,
        payment: U256::from(1_250_000u64),
        inputs_hash: keccak256("paid inputs"),
        result_hash: keccak256("paid result"),
    };
    let paid_call = json!({
        "serviceId": 7, "from": record.from.to_string(), "nonce": x(record.nonce),
        "callId": id_json(paid_call_id(ServiceId(7), record.job_index, record.from, record.nonce)),
        "jobIndex": record.job_index, "payment": record.payment.to::<u64>(),
        "inputsHash": x(record.inputs_hash), "resultHash": x(record.result_hash), "recordLeaf": x(paid_record_leaf(&record)),
    });

    // An output commitment (tolerant jobs) on the golden result's call, signed by key 7 as the slasher takes it
    // (`proposeCommitmentDeviation`): 16 f32 little-endian values, as an embedding is committed.
    let output: Vec<u8> = (0..16u16).flat_map(|i| (f32::from(i) * 0.25 - 1.0).to_le_bytes()).collect();
    let commitment_ref = CommitmentRef {
        service_id: result.service_id,
        call_id: result.call_id,
        inputs_hash: result.inputs_hash,
        output_hash: keccak256(&output),
    };
    let c_digest = commitment_digest(&protocol, &commitment_ref);
    let same_words_as_result = ResultRef { result_hash: commitment_ref.output_hash, ..result };
    assert_ne!(c_digest, result_digest(&protocol, &same_words_as_result), "the tag keeps a commitment apart");
    let c_signer = 7usize;
    let c_signature = keys[c_signer].secret.sign(&c_digest);
    c_signature.verify(&pubkeys[c_signer], &c_digest).expect("commitment signature verifies");
    let commitment = json!({
        "serviceId": commitment_ref.service_id.0, "callId": id_json(commitment_ref.call_id),
        "inputsHash": x(commitment_ref.inputs_hash), "output": x(&output), "outputHash": x(commitment_ref.output_hash),
        "digest": x(c_digest), "signer": c_signer, "signature": x(c_signature.to_eip2537()),
    });

    let hash_msgs = [B256::ZERO, digest, keccak256("vouch")];
    let hash_to_g2: Vec<Value> = [DST_RESULT, DST_POP]
        .iter()
        .flat_map(|dst| {
            hash_msgs.iter().map(move |m| {
                json!({"dst": String::from_utf8_lossy(dst), "msg": x(m), "point": x(points::hash_to_g2(m.as_slice(), dst))})
            })
        })
        .collect();

    // Valid certificates over `digest` for several signer sets.
    let sets: Vec<(&str, Vec<usize>)> = vec![
        ("1 signer", vec![7]),
        ("3 signers", vec![0, 64, 127]),
        ("10 signers", (0..10).collect()),
        ("50 signers", (0..100).step_by(2).collect()),
        ("100 signers", (0..100).collect()),
        ("128 signers", (0..128).collect()),
    ];
    let mut aggregates = Vec::new();
    for (name, slots) in &sets {
        let sig = aggregate(&keys, slots, &digest);
        let signers: Vec<PublicKey> = slots.iter().map(|s| pubkeys[*s]).collect();
        fast_aggregate_verify(&signers, &digest, &sig).expect("valid aggregate verifies");
        aggregates.push(json!({
            "name": name, "signers": slots.len(), "bitmap": bitmap_hex(slots),
            "signature": x(sig.to_eip2537()), "signatureCompressed": x(sig.to_compressed()),
        }));
    }

    // Invalid certificates: each must be refused on-chain against the same 128-key set.
    let three = [0usize, 64, 127];
    let sig3 = aggregate(&keys, &three, &digest);
    let sig3_eip = sig3.to_eip2537();
    let mut other = result;
    other.result_hash = keccak256("a different result");
    let other_digest = result_digest(&protocol, &other);
    let mut tampered = sig3_eip;
    tampered[255] ^= 0x01;
    let mut blst_order = [0u8; 256];
    let blst_ser = {
        // The valid signature's 192-byte blst serialization (x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0), each limb
        // padded to 64 bytes in blst's order, as a careless encoder would produce it.
        let mut out = [0u8; 192];
        for (slot, limb) in [1usize, 0, 3, 2].iter().enumerate() {
            out[limb * 48..(limb + 1) * 48].copy_from_slice(&sig3_eip[slot * 64 + 16..(slot + 1) * 64]);
        }
        out
    };
    for i in 0..4 {
        blst_order[i * 64 + 16..(i + 1) * 64].copy_from_slice(&blst_ser[i * 48..(i + 1) * 48]);
    }
    let mut padded = sig3_eip;
    padded[0] = 0x01;
    let unreduced = add_p_to_first_element(&sig3_eip);
    let pop_dst_sig = {
        let parts: Vec<Signature> = three
            .iter()
            .map(|s| {
                let raw = points::sign_with_dst(&keys[*s].secret.to_bytes(), digest.as_slice(), DST_POP);
                Signature::from_eip2537(&raw).expect("valid point")
            })
            .collect();
        aggregate_signatures(&parts).expect("non-empty").to_eip2537()
    };
    let not_in_subgroup = points::g2_not_in_subgroup();
    let invalid_sigs: Vec<(&str, Value, B256, Vec<u8>)> = vec![
        ("wrong message", bitmap_hex(&three), other_digest, sig3_eip.to_vec()),
        ("missing signer bit", bitmap_hex(&three[..2]), digest, sig3_eip.to_vec()),
        ("extra signer bit", bitmap_hex(&[0, 1, 64, 127]), digest, sig3_eip.to_vec()),
        ("empty bitmap", bitmap_hex(&[]), digest, sig3_eip.to_vec()),
        ("bit for unregistered slot 128", bitmap_hex(&[0, 64, 127, 128]), digest, sig3_eip.to_vec()),
        ("bit for unregistered slot 255", bitmap_hex(&[0, 64, 127, 255]), digest, sig3_eip.to_vec()),
        ("tampered signature", bitmap_hex(&three), digest, tampered.to_vec()),
        ("signature in blst byte order", bitmap_hex(&three), digest, blst_order.to_vec()),
        ("infinity signature", bitmap_hex(&three), digest, vec![0u8; 256]),
        ("signature not in the G2 subgroup", bitmap_hex(&three), digest, not_in_subgroup.to_vec()),
        ("non-zero padding in a field element", bitmap_hex(&three), digest, padded.to_vec()),
        ("field element not reduced (x.c0 + p)", bitmap_hex(&three), digest, unreduced.to_vec()),
        ("signed under the PoP DST", bitmap_hex(&three), digest, pop_dst_sig.to_vec()),
        ("signature truncated to 255 bytes", bitmap_hex(&three), digest, sig3_eip[..255].to_vec()),
        ("signature in compressed form", bitmap_hex(&three), digest, sig3.to_compressed().to_vec()),
        (
            "valid signature of another signer set",
            bitmap_hex(&three),
            digest,
            aggregate(&keys, &[0, 64, 126], &digest).to_eip2537().to_vec(),
        ),
    ];
    let signers3: Vec<PublicKey> = three.iter().map(|s| pubkeys[*s]).collect();
    let mut invalid_json = Vec::new();
    for (name, bitmap, d, sig) in &invalid_sigs {
        // Rust agrees wherever the case is expressible off-chain (bitmap cases are contract-only).
        if matches!(*name, "wrong message" | "signed under the PoP DST" | "valid signature of another signer set") {
            let parsed = Signature::from_eip2537(sig).expect("a valid point that fails only as a signature");
            assert_eq!(fast_aggregate_verify(&signers3, d, &parsed), Err(CryptoError::VerificationFailed), "{name}");
        }
        invalid_json.push(json!({"name": name, "bitmap": bitmap, "digest": x(d), "signature": x(sig)}));
    }
    for rejected in [
        "tampered signature",
        "signature in blst byte order",
        "infinity signature",
        "signature not in the G2 subgroup",
        "non-zero padding in a field element",
        "field element not reduced (x.c0 + p)",
        "signature truncated to 255 bytes",
    ] {
        let (_, _, _, sig) = invalid_sigs.iter().find(|c| c.0 == rejected).expect("case exists");
        assert!(Signature::from_eip2537(sig).is_err(), "Rust must refuse to parse: {rejected}");
    }

    // Key registrations the registry must refuse. keys[0] is registered first.
    let outsider = operator(0xdead);
    let k0 = &keys[0];
    let k1 = &keys[1];
    let pk0 = pubkeys[0].to_eip2537();
    let pk1 = pubkeys[1].to_eip2537();
    let pop_for = |k: &Key, op: Address| k.secret.prove_possession(&registry, op).signature().to_eip2537();
    let pop_under_result_dst =
        points::sign_with_dst(&k1.secret.to_bytes(), pop_digest(&registry, outsider, &pk1).as_slice(), DST_RESULT);
    let pop_other_chain = pop_for_binding(k1, &ChainBinding::new(1, REGISTRY), outsider);
    let pop_other_registry = pop_for_binding(k1, &ChainBinding::new(CHAIN_ID, PROTOCOL), outsider);
    let g1_bad = points::g1_not_in_subgroup();
    let mut off_curve = pk1;
    off_curve[127] ^= 0x01;
    assert!(PublicKey::from_eip2537(&g1_bad).is_err() && PublicKey::from_eip2537(&off_curve).is_err());
    let invalid_keys = vec![
        json!({"name": "infinity key", "operator": outsider.to_string(), "pubkey": x([0u8; 128]), "pop": x([0u8; 256]), "error": ERR_INFINITY}),
        json!({"name": "duplicate key (valid PoP for the new operator)", "operator": outsider.to_string(), "pubkey": x(pk0), "pop": x(pop_for(k0, outsider)), "error": ERR_DUPLICATE}),
        json!({"name": "PoP replayed from another address", "operator": outsider.to_string(), "pubkey": x(pk1), "pop": x(pop_for(k1, k1.operator)), "error": ERR_POP}),
        json!({"name": "PoP signed under the result DST", "operator": outsider.to_string(), "pubkey": x(pk1), "pop": x(pop_under_result_dst), "error": ERR_POP}),
        json!({"name": "PoP for another chain id", "operator": outsider.to_string(), "pubkey": x(pk1), "pop": x(pop_other_chain), "error": ERR_POP}),
        json!({"name": "PoP for another registry", "operator": outsider.to_string(), "pubkey": x(pk1), "pop": x(pop_other_registry), "error": ERR_POP}),
        json!({"name": "key not in the G1 subgroup", "operator": outsider.to_string(), "pubkey": x(g1_bad), "pop": x(pop_for(k1, outsider)), "error": ERR_POP}),
        json!({"name": "key not on the curve", "operator": outsider.to_string(), "pubkey": x(off_curve), "pop": x(pop_for(k1, outsider)), "error": ERR_POP}),
        json!({"name": "key of 127 bytes", "operator": outsider.to_string(), "pubkey": x(&pk1[..127]), "pop": x(pop_for(k1, outsider)), "error": ERR_LENGTH}),
        json!({"name": "PoP of 255 bytes", "operator": outsider.to_string(), "pubkey": x(pk1), "pop": x(&pop_for(k1, outsider)[..255]), "error": ERR_LENGTH}),
    ];
    // The correct PoP for the outsider does verify, so the cases above fail for the stated reason.
    k1.secret.prove_possession(&registry, outsider).verify(&pubkeys[1], &registry, outsider).expect("control PoP");

    // Rogue key: pk_rogue = pk_attacker − pk_victim, so pk_victim + pk_rogue = pk_attacker and the
    // attacker alone can sign "for" the victim. Only the PoP check at registration stops it.
    let attacker = SecretKey::from_ikm(&Sha256::digest("vouch golden vector attacker").into_iter().collect::<Vec<_>>())
        .expect("ikm");
    let victim = 5usize;
    let rogue = points::g1_sub(&attacker.public_key().to_eip2537(), &pubkeys[victim].to_eip2537());
    let forged = attacker.sign(&digest);
    let rogue_operator = operator(0xbad);
    let rogue_pk = PublicKey::from_eip2537(&rogue).expect("a rogue key is a valid subgroup point");
    let forged_apk = vouch_crypto::aggregate_public_keys(&[pubkeys[victim], rogue_pk]).expect("non-empty");
    forged.verify(&forged_apk, &digest).expect("without PoPs the forgery verifies: the attack is real");
    let rogue_pop_raw =
        points::sign_with_dst(&attacker.to_bytes(), pop_digest(&registry, rogue_operator, &rogue).as_slice(), DST_POP);
    let rogue_pop =
        vouch_crypto::ProofOfPossession::from_signature(Signature::from_eip2537(&rogue_pop_raw).expect("point"));
    assert!(rogue_pop.verify(&rogue_pk, &registry, rogue_operator).is_err(), "the attacker cannot prove possession");
    let rogue_key = json!({
        "victim": victim,
        "operator": rogue_operator.to_string(),
        "pubkey": x(rogue),
        "pop": x(rogue_pop_raw),
        "bitmap": bitmap_hex(&[victim, SET_SIZE]),
        "digest": x(digest),
        "signature": x(forged.to_eip2537()),
    });

    json!({
        "version": 1,
        "dstResult": String::from_utf8_lossy(DST_RESULT),
        "dstPop": String::from_utf8_lossy(DST_POP),
        "chainId": CHAIN_ID,
        "registry": REGISTRY.to_string(),
        "protocol": PROTOCOL.to_string(),
        "keys": key_json,
        "hashToG2": hash_to_g2,
        "result": {
            "serviceId": result.service_id.0, "callId": id_json(result.call_id),
            "inputsHash": x(result.inputs_hash), "resultHash": x(result.result_hash), "digest": x(digest),
        },
        "batch": batch,
        "commitment": commitment,
        "paidCall": paid_call,
        "aggregates": aggregates,
        "invalidSignatures": invalid_json,
        "invalidKeys": invalid_keys,
        "rogueKey": rogue_key,
    })
}

fn pop_for_binding(k: &Key, binding: &ChainBinding, op: Address) -> [u8; 256] {
    k.secret.prove_possession(binding, op).signature().to_eip2537()
}

/// Adds the field modulus p to the first field element (x.c0) of an EIP-2537 G2 point: the same
/// number mod p, but not a canonical encoding (the value is ≥ p). It still fits in 64 bytes.
fn add_p_to_first_element(point: &[u8; 256]) -> [u8; 256] {
    const P: &str = "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";
    let p = U256::from_be_slice(&hex::decode(&P[..32]).expect("hex")); // high 16 bytes of p
    let p_lo = U256::from_be_slice(&hex::decode(&P[32..]).expect("hex")); // low 32 bytes of p
    let mut out = *point;
    let hi = U256::from_be_slice(&point[0..32]);
    let lo = U256::from_be_slice(&point[32..64]);
    let (lo_sum, carry) = lo.overflowing_add(p_lo);
    let hi_sum = hi + p + U256::from(carry as u8);
    out[0..32].copy_from_slice(&hi_sum.to_be_bytes::<32>());
    out[32..64].copy_from_slice(&lo_sum.to_be_bytes::<32>());
    out
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/test/vectors/bls.json")
}

#[test]
fn golden_vectors_are_up_to_date() {
    let generated = serde_json::to_string_pretty(&generate()).expect("serializes") + "\n";
    let path = vectors_path();
    if std::env::var_os("VOUCH_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &generated).expect("write vectors");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale or missing: run `VOUCH_UPDATE_VECTORS=1 cargo test -p vouch-crypto --test it golden` and commit it",
        path.display()
    );
}
