//! EIP-2335 keystores: encrypt/decrypt round trips with arbitrary passwords and keys.

use proptest::prelude::*;
use vouch_crypto::{
    Keystore, KeystoreError, SecretKey,
    keystore::{Kdf, ScryptParams},
};

fn cheap_scrypt(salt: [u8; 32]) -> Kdf {
    // n = 2^4 keeps the property test fast; the format and code path are those of n = 2^18.
    Kdf::Scrypt(ScryptParams { dklen: 32, n: 16, p: 1, r: 8, salt: salt.to_vec() })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn encrypt_then_decrypt_returns_the_key(
        ikm in any::<[u8; 32]>(), salt in any::<[u8; 32]>(), iv in any::<[u8; 16]>(), password in "\\PC{0,40}",
    ) {
        let sk = SecretKey::from_ikm(&ikm).expect("32 bytes");
        let ks = Keystore::encrypt_with(&sk, &password, cheap_scrypt(salt), iv, "prop").expect("encrypts");
        let json = ks.to_json().expect("serializes");
        prop_assert!(!json.contains(&alloy_primitives::hex::encode(sk.to_bytes().as_slice())), "secret in clear");
        let back = Keystore::from_json(&json).expect("parses").decrypt(&password).expect("decrypts");
        prop_assert_eq!(back.public_key(), sk.public_key());
        let wrong = format!("{password}x");
        prop_assert!(matches!(ks.decrypt(&wrong), Err(KeystoreError::WrongPassword)));
    }
}

#[test]
fn unknown_fields_and_versions_are_refused() {
    let sk = SecretKey::from_ikm(&[1; 32]).expect("ikm");
    let ks = Keystore::encrypt_with(&sk, "pw", cheap_scrypt([2; 32]), [3; 16], "").expect("encrypts");
    let mut value: serde_json::Value = serde_json::from_str(&ks.to_json().expect("json")).expect("value");
    value["extra"] = serde_json::json!(1);
    assert!(matches!(Keystore::from_json(&value.to_string()), Err(KeystoreError::Json(_))));
    let mut v3 = ks;
    v3.version = 3;
    assert!(matches!(v3.decrypt("pw"), Err(KeystoreError::Unsupported(_))));
}
