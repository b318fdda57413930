//! Conversion between blst's serialization and the EIP-2537 encoding the precompiles read.
//!
//! | | blst `serialize` | EIP-2537 |
//! |---|---|---|
//! | field element | 48 B big-endian | 64 B: 16 zero bytes ‖ 48 B big-endian |
//! | G1 | `x ‖ y` (96 B) | `x ‖ y` (128 B) |
//! | G2 | **`x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0`** (192 B) | `x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1` (256 B) |
//! | infinity | flag `0x40` in the first byte, rest zero | all zeros |
//!
//! These functions only move bytes; curve and subgroup checks happen when the result is parsed
//! into a [`crate::PublicKey`] or [`crate::Signature`].

use crate::error::PointError;

/// Bytes of an EIP-2537 G1 point.
pub const G1_LEN: usize = 128;
/// Bytes of an EIP-2537 G2 point.
pub const G2_LEN: usize = 256;
/// Bytes of a blst uncompressed G1 point.
pub const G1_BLST_LEN: usize = 96;
/// Bytes of a blst uncompressed G2 point.
pub const G2_BLST_LEN: usize = 192;

const FP: usize = 48;
const FP_PADDED: usize = 64;
const PAD: usize = FP_PADDED - FP;
/// blst's infinity flag in the first byte of an uncompressed encoding.
const INFINITY_FLAG: u8 = 0x40;

/// Order of the 48-byte limbs: EIP-2537 slot `i` holds blst limb `G2_ORDER[i]`.
const G2_ORDER: [usize; 4] = [1, 0, 3, 2];

/// blst uncompressed G1 (96 B) → EIP-2537 (128 B).
pub fn g1_to_eip2537(blst: &[u8; G1_BLST_LEN]) -> [u8; G1_LEN] {
    let mut out = [0u8; G1_LEN];
    if blst[0] & INFINITY_FLAG != 0 {
        return out;
    }
    for i in 0..2 {
        out[i * FP_PADDED + PAD..(i + 1) * FP_PADDED].copy_from_slice(&blst[i * FP..(i + 1) * FP]);
    }
    out
}

/// EIP-2537 G1 (128 B) → blst uncompressed (96 B). All zeros maps to blst's infinity encoding.
pub fn g1_from_eip2537(eip: &[u8]) -> Result<[u8; G1_BLST_LEN], PointError> {
    let eip: &[u8; G1_LEN] = eip.try_into().map_err(|_| PointError::Length { expected: G1_LEN, actual: eip.len() })?;
    let mut out = [0u8; G1_BLST_LEN];
    if eip.iter().all(|b| *b == 0) {
        out[0] = INFINITY_FLAG;
        return Ok(out);
    }
    for i in 0..2 {
        let limb = unpad(eip, i)?;
        out[i * FP..(i + 1) * FP].copy_from_slice(limb);
    }
    reject_flags(out[0])?;
    Ok(out)
}

/// blst uncompressed G2 (192 B) → EIP-2537 (256 B).
pub fn g2_to_eip2537(blst: &[u8; G2_BLST_LEN]) -> [u8; G2_LEN] {
    let mut out = [0u8; G2_LEN];
    if blst[0] & INFINITY_FLAG != 0 {
        return out;
    }
    for (slot, limb) in G2_ORDER.iter().enumerate() {
        out[slot * FP_PADDED + PAD..(slot + 1) * FP_PADDED].copy_from_slice(&blst[limb * FP..(limb + 1) * FP]);
    }
    out
}

/// EIP-2537 G2 (256 B) → blst uncompressed (192 B). All zeros maps to blst's infinity encoding.
pub fn g2_from_eip2537(eip: &[u8]) -> Result<[u8; G2_BLST_LEN], PointError> {
    let eip: &[u8; G2_LEN] = eip.try_into().map_err(|_| PointError::Length { expected: G2_LEN, actual: eip.len() })?;
    let mut out = [0u8; G2_BLST_LEN];
    if eip.iter().all(|b| *b == 0) {
        out[0] = INFINITY_FLAG;
        return Ok(out);
    }
    for (slot, limb) in G2_ORDER.iter().enumerate() {
        let value = unpad(eip, slot)?;
        out[limb * FP..(limb + 1) * FP].copy_from_slice(value);
    }
    reject_flags(out[0])?;
    Ok(out)
}

/// The 48-byte value of 64-byte field element `index`, refusing non-zero padding.
fn unpad(eip: &[u8], index: usize) -> Result<&[u8], PointError> {
    let element = &eip[index * FP_PADDED..(index + 1) * FP_PADDED];
    if element[..PAD].iter().any(|b| *b != 0) {
        return Err(PointError::Padding { index });
    }
    Ok(&element[PAD..])
}

/// A field element below p has its top three bits clear; blst would read them as flags, so a
/// value with them set is not a canonical EIP-2537 element.
fn reject_flags(first: u8) -> Result<(), PointError> {
    if first & 0xe0 != 0 { Err(PointError::Encoding) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g2_limbs_are_swapped_per_coordinate() {
        let mut blst = [0u8; G2_BLST_LEN];
        for (i, b) in blst.iter_mut().enumerate() {
            *b = (i / FP) as u8 + 1; // limb k filled with k+1
        }
        let eip = g2_to_eip2537(&blst);
        // slot 0 = x.c0 = blst limb 1, slot 1 = x.c1 = blst limb 0, …
        assert_eq!(eip[PAD], 2);
        assert_eq!(eip[FP_PADDED + PAD], 1);
        assert_eq!(eip[2 * FP_PADDED + PAD], 4);
        assert_eq!(eip[3 * FP_PADDED + PAD], 3);
        assert!(eip[..PAD].iter().all(|b| *b == 0));
        assert_eq!(g2_from_eip2537(&eip), Ok(blst));
    }

    #[test]
    fn infinity_is_all_zeros() {
        let mut g1 = [0u8; G1_BLST_LEN];
        g1[0] = INFINITY_FLAG;
        assert_eq!(g1_to_eip2537(&g1), [0u8; G1_LEN]);
        assert_eq!(g1_from_eip2537(&[0u8; G1_LEN]), Ok(g1));
        let mut g2 = [0u8; G2_BLST_LEN];
        g2[0] = INFINITY_FLAG;
        assert_eq!(g2_to_eip2537(&g2), [0u8; G2_LEN]);
    }

    #[test]
    fn padding_and_length_are_checked() {
        let mut eip = [0u8; G1_LEN];
        eip[FP_PADDED + PAD] = 1;
        eip[FP_PADDED] = 1; // padding byte of element 1
        assert_eq!(g1_from_eip2537(&eip), Err(PointError::Padding { index: 1 }));
        assert_eq!(g1_from_eip2537(&eip[..127]), Err(PointError::Length { expected: 128, actual: 127 }));
        assert_eq!(g2_from_eip2537(&[1u8; 255]), Err(PointError::Length { expected: 256, actual: 255 }));
    }
}
