//! Raw curve points the public API refuses to build (non-subgroup points, rogue keys, signatures
//! under the wrong DST), made with blst's low-level functions for negative tests and vectors.

use blst::*;
use vouch_crypto::eip2537;

fn fp(v: u64) -> blst_fp {
    let mut out = blst_fp::default();
    let limbs = [v, 0, 0, 0, 0, 0];
    unsafe { blst_fp_from_uint64(&mut out, limbs.as_ptr()) };
    out
}

/// A point on G1's curve (y² = x³ + 4) that is not in the prime-order subgroup, EIP-2537 encoded.
pub(crate) fn g1_not_in_subgroup() -> [u8; 128] {
    for x in 1u64.. {
        let x_fp = fp(x);
        let (mut x2, mut rhs, mut y) = (blst_fp::default(), blst_fp::default(), blst_fp::default());
        unsafe {
            blst_fp_sqr(&mut x2, &x_fp);
            blst_fp_mul(&mut rhs, &x2, &x_fp);
            let four = fp(4);
            let t = rhs;
            blst_fp_add(&mut rhs, &t, &four);
            if !blst_fp_sqrt(&mut y, &rhs) {
                continue;
            }
            let p = blst_p1_affine { x: x_fp, y };
            if blst_p1_affine_on_curve(&p) && !blst_p1_affine_in_g1(&p) {
                let mut ser = [0u8; 96];
                blst_p1_affine_serialize(ser.as_mut_ptr(), &p);
                return eip2537::g1_to_eip2537(&ser);
            }
        }
    }
    unreachable!("half of all x give a point, and almost none of them are in the subgroup")
}

/// A point on G2's curve (y² = x³ + 4(1 + i)) that is not in the prime-order subgroup, EIP-2537 encoded.
pub(crate) fn g2_not_in_subgroup() -> [u8; 256] {
    for x in 1u64.. {
        let x_fp2 = blst_fp2 { fp: [fp(x), fp(1)] };
        let b = blst_fp2 { fp: [fp(4), fp(4)] };
        let (mut x2, mut rhs, mut y) = (blst_fp2::default(), blst_fp2::default(), blst_fp2::default());
        unsafe {
            blst_fp2_sqr(&mut x2, &x_fp2);
            blst_fp2_mul(&mut rhs, &x2, &x_fp2);
            let t = rhs;
            blst_fp2_add(&mut rhs, &t, &b);
            if !blst_fp2_sqrt(&mut y, &rhs) {
                continue;
            }
            let p = blst_p2_affine { x: x_fp2, y };
            if blst_p2_affine_on_curve(&p) && !blst_p2_affine_in_g2(&p) {
                let mut ser = [0u8; 192];
                blst_p2_affine_serialize(ser.as_mut_ptr(), &p);
                return eip2537::g2_to_eip2537(&ser);
            }
        }
    }
    unreachable!("half of all x give a point, and almost none of them are in the subgroup")
}

/// `a − b` for two G1 points given in EIP-2537 form (the rogue key `pk_attacker − pk_victim`).
pub(crate) fn g1_sub(a: &[u8; 128], b: &[u8; 128]) -> [u8; 128] {
    let parse = |e: &[u8; 128]| {
        let ser = eip2537::g1_from_eip2537(e).expect("valid encoding");
        let mut aff = blst_p1_affine::default();
        let mut p = blst_p1::default();
        unsafe {
            assert_eq!(blst_p1_deserialize(&mut aff, ser.as_ptr()), BLST_ERROR::BLST_SUCCESS);
            blst_p1_from_affine(&mut p, &aff);
        }
        p
    };
    let (pa, mut pb) = (parse(a), parse(b));
    let mut sum = blst_p1::default();
    let mut aff = blst_p1_affine::default();
    let mut ser = [0u8; 96];
    unsafe {
        blst_p1_cneg(&mut pb, true);
        blst_p1_add_or_double(&mut sum, &pa, &pb);
        blst_p1_to_affine(&mut aff, &sum);
        blst_p1_affine_serialize(ser.as_mut_ptr(), &aff);
    }
    eip2537::g1_to_eip2537(&ser)
}

/// RFC 9380 hash_to_curve(msg) in G2 under `dst`, EIP-2537 encoded.
pub(crate) fn hash_to_g2(msg: &[u8], dst: &[u8]) -> [u8; 256] {
    let mut p = blst_p2::default();
    let mut aff = blst_p2_affine::default();
    let mut ser = [0u8; 192];
    unsafe {
        blst_hash_to_g2(&mut p, msg.as_ptr(), msg.len(), dst.as_ptr(), dst.len(), std::ptr::null(), 0);
        blst_p2_to_affine(&mut aff, &p);
        blst_p2_affine_serialize(ser.as_mut_ptr(), &aff);
    }
    eip2537::g2_to_eip2537(&ser)
}

/// Signs `msg` with the raw scalar under an arbitrary DST (only tests may do this).
pub(crate) fn sign_with_dst(secret: &[u8; 32], msg: &[u8], dst: &[u8]) -> [u8; 256] {
    let sk = min_pk::SecretKey::from_bytes(secret).expect("valid scalar");
    eip2537::g2_to_eip2537(&sk.sign(msg, dst, &[]).serialize())
}
