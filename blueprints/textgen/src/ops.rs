//! Two fused CPU operations of the forward pass, written as candle custom ops so that a multi-token pass (the
//! executor's prefill, the checker's one teacher-forced pass) does not materialize what it throws away.
//!
//! Both compute, element by element, exactly what the unfused candle operations they replace compute (same
//! formulas, same reduction order):
//! - [`swiglu`]: `silu(gate) · up` over the stacked gate/up projection, in one pass, instead of two strided
//!   element-wise operations and a product;
//! - [`causal_softmax`]: the softmax of each attention row over the positions it may attend to, instead of adding
//!   a materialized `-inf` mask and exponentiating the masked half of the matrix.
//!
//! Bit-identical results matter: the executor's prefill and the checker's pass are the pinned arithmetic the
//! tolerance was calibrated on, and `fused_operations_change_no_bit` in the tests compares them to the unfused
//! candle operations.

use candle_core::cpu::kernels::VecOps;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

/// The contiguous `f32` data of a CPU tensor, or an error naming `op`.
fn contiguous_f32<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { candle_core::bail!("{op}: expected f32") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the input is not contiguous"),
    }
}

/// `silu(x[.., ..half]) · x[.., half..]` along the last dimension.
struct SwiGlu;

impl CustomOp1 for SwiGlu {
    fn name(&self) -> &'static str {
        "vouch-swiglu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(self.name(), storage, layout)?;
        let mut dims = layout.shape().dims().to_vec();
        let Some(last) = dims.last_mut() else { candle_core::bail!("swiglu of a scalar") };
        if *last % 2 != 0 {
            candle_core::bail!("swiglu over an odd last dimension {last}");
        }
        let width = *last;
        *last /= 2;
        let half = width / 2;
        let mut dst = Vec::with_capacity(src.len() / 2);
        for row in src.chunks_exact(width) {
            let (gate, up) = row.split_at(half);
            // candle's `silu` (`v / (1 + exp(-v))`), then the product: the same two roundings.
            dst.extend(gate.iter().zip(up).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u));
        }
        Ok((CpuStorage::F32(dst), Shape::from(dims)))
    }
}

/// `silu(gate) · up` where `x` holds gate and up stacked along its (even) last dimension.
pub(crate) fn swiglu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&SwiGlu)
}

/// The causal softmax of attention scores laid out `(heads, group · seq, kv_len)`: row `r` is query `r mod seq`
/// of a chunk of `seq` positions after `start` cached ones, which attends to keys `0..=start + r mod seq`.
struct CausalSoftmax {
    seq: usize,
    start: usize,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "vouch-causal-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(self.name(), storage, layout)?;
        let shape = layout.shape().clone();
        let kv_len = shape.dims().last().copied().unwrap_or(0);
        if self.seq == 0 || kv_len != self.start + self.seq {
            candle_core::bail!("causal softmax of {} queries after {} over {kv_len} keys", self.seq, self.start);
        }
        let mut dst = vec![0f32; src.len()];
        for (index, (row, out)) in src.chunks_exact(kv_len).zip(dst.chunks_exact_mut(kv_len)).enumerate() {
            let visible = self.start + index % self.seq + 1;
            // As candle's `softmax_last_dim` after adding a `-inf` mask: sequential max (the masked keys never
            // win), exp(x − max) (exactly 0 for a masked key, left as is), the vectorized sum over the whole row
            // (the same additions in the same order: bit-identical), division.
            let max = row[..visible].iter().skip(1).fold(row[0], |max, &v| max.max(v));
            for (d, &s) in out[..visible].iter_mut().zip(row) {
                *d = (s - max).exp();
            }
            let mut sum = 0f32;
            // SAFETY: `out` holds `kv_len` (≥ 1) initialized f32 values and `sum` is a valid f32.
            unsafe { <f32 as VecOps>::vec_reduce_sum(out.as_ptr(), &mut sum, kv_len) };
            for d in out[..visible].iter_mut() {
                *d /= sum;
            }
        }
        Ok((CpuStorage::F32(dst), shape))
    }
}

/// The softmax along the last dimension of `scores` `(heads, group · seq, start + seq)`, each query row restricted
/// to the keys at or before its own position (the rest are exact zeros).
pub(crate) fn causal_softmax(scores: &Tensor, seq: usize, start: usize) -> candle_core::Result<Tensor> {
    scores.contiguous()?.apply_op1_no_bwd(&CausalSoftmax { seq, start })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use candle_core::{D, Device, Tensor};

    use super::*;

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn fused_operations_change_no_bit() {
        let device = Device::Cpu;
        // SwiGLU against candle's silu and product over the two halves.
        let x = (Tensor::randn(0f32, 3.0, (1, 7, 2 * 40), &device).unwrap() - 0.5).unwrap();
        let unfused = (candle_nn::ops::silu(&x.narrow(D::Minus1, 0, 40).unwrap()).unwrap()
            * x.narrow(D::Minus1, 40, 40).unwrap())
        .unwrap();
        assert_eq!(bits(&swiglu(&x).unwrap()), bits(&unfused));

        // The causal softmax against an added -inf mask and candle's softmax, with and without cached positions.
        for (seq, start) in [(5usize, 0usize), (6, 11), (1, 9), (33, 2)] {
            let (heads, group, kv_len) = (3, 2, start + seq);
            let scores = Tensor::randn(0f32, 4.0, (heads, group * seq, kv_len), &device).unwrap();
            let mask: Vec<f32> = (0..seq)
                .flat_map(|i| (0..kv_len).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            let mask = Tensor::from_vec(mask, (seq, kv_len), &device).unwrap();
            let masked = scores
                .reshape((heads, group, seq, kv_len))
                .unwrap()
                .broadcast_add(&mask)
                .unwrap()
                .reshape((heads, group * seq, kv_len))
                .unwrap();
            let expected = candle_nn::ops::softmax_last_dim(&masked).unwrap();
            assert_eq!(bits(&causal_softmax(&scores, seq, start).unwrap()), bits(&expected), "seq {seq} start {start}");
        }
        let scores = Tensor::zeros((1, 4, 5), candle_core::DType::F32, &device).unwrap();
        assert!(causal_softmax(&scores, 4, 0).is_err(), "4 queries after none see 4 keys, not 5");
    }
}
