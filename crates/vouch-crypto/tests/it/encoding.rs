//! Encoding round trips: compressed ↔ point ↔ EIP-2537, and refusal of malformed encodings.

use alloy_primitives::B256;
use proptest::prelude::*;
use vouch_crypto::{CryptoError, PointError, PublicKey, SecretKey, Signature, eip2537};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn public_key_round_trips(seed in any::<[u8; 32]>()) {
        let pk = SecretKey::from_ikm(&seed).expect("32 bytes").public_key();
        prop_assert_eq!(PublicKey::from_compressed(&pk.to_compressed()).expect("compressed"), pk);
        let eip = pk.to_eip2537();
        prop_assert_eq!(PublicKey::from_eip2537(&eip).expect("eip2537"), pk);
        // Every field element is 16 zero bytes then a value whose top bits are clear (< p < 2^381).
        for i in 0..2 {
            prop_assert!(eip[i * 64..i * 64 + 16].iter().all(|b| *b == 0));
            prop_assert!(eip[i * 64 + 16] < 0x20);
        }
    }

    #[test]
    fn signature_round_trips(seed in any::<[u8; 32]>(), digest in any::<[u8; 32]>()) {
        let sig = SecretKey::from_ikm(&seed).expect("32 bytes").sign(&B256::from(digest));
        prop_assert_eq!(Signature::from_compressed(&sig.to_compressed()).expect("compressed"), sig);
        let eip = sig.to_eip2537();
        prop_assert_eq!(Signature::from_eip2537(&eip).expect("eip2537"), sig);
        let blst = eip2537::g2_from_eip2537(&eip).expect("canonical");
        prop_assert_eq!(eip2537::g2_to_eip2537(&blst), eip);
    }

    #[test]
    fn arbitrary_bytes_never_parse_as_a_valid_point_unless_canonical(bytes in prop::collection::vec(any::<u8>(), 256)) {
        // Random 256 bytes essentially never encode a subgroup point; parsing must fail cleanly.
        prop_assert!(Signature::from_eip2537(&bytes).is_err());
        prop_assert!(PublicKey::from_eip2537(&bytes[..128]).is_err());
    }
}

#[test]
fn infinity_is_refused_as_key_and_signature() {
    assert_eq!(PublicKey::from_eip2537(&[0u8; 128]), Err(CryptoError::InvalidPublicKey(PointError::Infinity)));
    assert_eq!(Signature::from_eip2537(&[0u8; 256]), Err(CryptoError::InvalidSignature(PointError::Infinity)));
}

#[test]
fn non_subgroup_points_are_refused() {
    assert_eq!(
        PublicKey::from_eip2537(&crate::points::g1_not_in_subgroup()),
        Err(CryptoError::InvalidPublicKey(PointError::NotInSubgroup))
    );
    assert_eq!(
        Signature::from_eip2537(&crate::points::g2_not_in_subgroup()),
        Err(CryptoError::InvalidSignature(PointError::NotInSubgroup))
    );
}

#[test]
fn blst_byte_order_is_not_eip2537() {
    let sig = SecretKey::from_ikm(&[8; 32]).expect("ikm").sign(&B256::ZERO);
    let eip = sig.to_eip2537();
    // Put each 48-byte limb back in blst's c1‖c0 order inside the 64-byte slots.
    let mut swapped = [0u8; 256];
    for (slot, from) in [1usize, 0, 3, 2].iter().enumerate() {
        swapped[slot * 64..(slot + 1) * 64].copy_from_slice(&eip[from * 64..(from + 1) * 64]);
    }
    assert!(Signature::from_eip2537(&swapped).is_err());
}
