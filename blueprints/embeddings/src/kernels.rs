//! Fused CPU kernels of the encoder, as candle custom ops: each replaces several candle operations (and their
//! passes over memory) with one pass, run in parallel over rows on rayon's pool (the one candle's matrix products
//! use).
//!
//! - [`BiasGelu`]: `gelu(x + bias)`, with PyTorch's erf approximation (Abramowitz & Stegun 7.1.26, as in ATen's
//!   vectorized `erf`) instead of candle's scalar libm `erf`;
//! - [`BiasResidualNorm`]: `layer_norm((x + bias) + residual)`, the mean and variance accumulated in f64;
//! - [`SplitHeads`]: adds the query/key/value bias and lays the fused projection out as (3, batch, heads, seq, head);
//! - [`MaskedSoftmax`]: the attention softmax over each sequence's real keys only (padded keys get 0, exactly what
//!   BERT's additive `f32::MIN` mask gives), no mask tensor.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, bail};
use rayon::prelude::*;

/// Rows handed to one rayon task: amortizes scheduling over short rows.
const ROWS_PER_TASK: usize = 16;
/// Independent accumulators of the reductions (sums, maxima), so that they vectorize.
const LANES: usize = 16;

/// The instruction set the kernels are compiled for, picked once at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 F and VL, AVX2, FMA.
    Avx512,
    /// AVX2 and FMA.
    Avx2,
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
}

impl Isa {
    /// The best instruction set this CPU supports (detected once).
    pub(crate) fn detect() -> Self {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("avx512vl") && has!("avx2") && has!("fma") {
                    return Self::Avx512;
                }
                if has!("avx2") && has!("fma") {
                    return Self::Avx2;
                }
            }
            Self::Baseline
        })
    }

    /// A name for reports: `"avx512"`, `"avx2"` or `"baseline"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Baseline => "baseline",
        }
    }
}

/// Defines `fn $name(isa: Isa, args…)` that runs its body compiled for `isa`: the body is inlined into copies
/// compiled with AVX-512 or AVX2 target features, so its loops vectorize with the widest registers the CPU has.
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        fn $name(isa: Isa, $($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                match isa {
                    // SAFETY: `Isa::detect` returns `Avx512` only when the CPU has AVX-512 F and VL, AVX2 and FMA.
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `Isa::detect` returns `Avx2` only when the CPU has AVX2 and FMA.
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = isa;
            body($($arg),*)
        }
    };
}

/// The contiguous f32 data of a tensor.
fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { bail!("{op}: expected an f32 tensor") };
    let Some((start, end)) = layout.contiguous_offsets() else { bail!("{op}: expected a contiguous tensor") };
    Ok(&data[start..end])
}

/// Checks that the last dimension of a tensor is `columns`.
fn check_columns(layout: &Layout, columns: usize, op: &str) -> Result<()> {
    let dims = layout.shape().dims();
    match dims.last() {
        Some(&last) if last == columns && columns > 0 => Ok(()),
        _ => bail!("{op}: expected a last dimension of {columns}, got shape {dims:?}"),
    }
}

/// Sum of `values`, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane += value;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Sum of `(value - mean)²`, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn squared_deviations(values: &[f32], mean: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f32 = chunks.remainder().iter().map(|&value| (value - mean) * (value - mean)).sum();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane += (value - mean) * (value - mean);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Largest of `values` (`-∞` for none), in [`LANES`] interleaved maxima.
#[inline(always)]
fn max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane = if value > *lane { value } else { *lane };
        }
    }
    lanes.iter().copied().fold(rest, f32::max)
}

/// `e^x` for f32, branch-free so that loops over it vectorize: Cody–Waite range reduction to
/// `[-ln 2 / 2, ln 2 / 2]` and Cephes' degree-6 polynomial, within 2 ulp of `f32::exp` on [-87.3, 88]. Outside,
/// it returns ~1e-38 (instead of a subnormal or 0) and e^88 (instead of up to f32::MAX or infinity); the
/// kernels only call it with `x ≤ 0`.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.336_55, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * (r * r) + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `erf(x)` as ATen computes it on the CPU: Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), evaluated in
/// f32 (≤ 6e-7 in all).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (0.327_591_1 * a + 1.0);
    let r = 1.061_405_4_f32;
    let r = r * t - 1.453_152_1;
    let r = r * t + 1.421_413_8;
    let r = r * t - 0.284_496_74;
    let r = r * t + 0.254_829_6;
    let y = 1.0 - r * t * exp(-(x * x));
    y.copysign(x)
}

/// GELU with erf, as BERT (and PyTorch's `gelu`) computes it: `x · ½ · (1 + erf(x / √2))`.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    x * 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

multiversion! {
    /// `dst = gelu(src + bias)`, row by row.
    fn bias_gelu_rows(dst: &mut [f32], src: &[f32], bias: &[f32]) {
        for (dst, src) in dst.chunks_exact_mut(bias.len()).zip(src.chunks_exact(bias.len())) {
            for ((out, &x), &bias) in dst.iter_mut().zip(src).zip(bias) {
                *out = gelu(x + bias);
            }
        }
    }
}

multiversion! {
    /// `dst = layer_norm((x + bias) + residual) · gamma + beta`, row by row.
    #[allow(clippy::too_many_arguments)]
    fn bias_residual_norm_rows(
        dst: &mut [f32],
        x: &[f32],
        residual: &[f32],
        bias: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let columns = bias.len();
        for ((dst, x), residual) in dst.chunks_exact_mut(columns).zip(x.chunks_exact(columns)).zip(residual.chunks_exact(columns)) {
            for (((out, &x), &bias), &residual) in dst.iter_mut().zip(x).zip(bias).zip(residual) {
                *out = (x + bias) + residual;
            }
            let mean = sum(dst) / columns as f32;
            let variance = squared_deviations(dst, mean) / columns as f32;
            let inverse = 1.0 / (variance + eps).sqrt();
            for ((out, &gamma), &beta) in dst.iter_mut().zip(gamma).zip(beta) {
                *out = (*out - mean) * inverse * gamma + beta;
            }
        }
    }
}

multiversion! {
    /// `dst = src + bias`.
    fn add_bias(dst: &mut [f32], src: &[f32], bias: &[f32]) {
        for ((out, &x), &bias) in dst.iter_mut().zip(src).zip(bias) {
            *out = x + bias;
        }
    }
}

multiversion! {
    /// Softmax of each row of `src` over its first `valid` entries into `dst` (the rest of `dst` stays 0).
    fn softmax_rows(dst: &mut [f32], src: &[f32], columns: usize, valid: usize) {
        for (dst, src) in dst.chunks_exact_mut(columns).zip(src.chunks_exact(columns)) {
            let (dst, src) = (&mut dst[..valid], &src[..valid]);
            let max = max(src);
            for (out, &x) in dst.iter_mut().zip(src) {
                *out = exp(x - max);
            }
            let inverse = 1.0 / sum(dst);
            for out in dst.iter_mut() {
                *out *= inverse;
            }
        }
    }
}

/// `gelu(x + bias)` over rows of `bias.len()` columns.
pub(crate) struct BiasGelu<'a> {
    pub(crate) bias: &'a [f32],
}

impl CustomOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let columns = self.bias.len();
        check_columns(layout, columns, self.name())?;
        let src = contiguous(storage, layout, self.name())?;
        let mut dst = vec![0f32; src.len()];
        let isa = Isa::detect();
        let block = columns * ROWS_PER_TASK;
        dst.par_chunks_mut(block)
            .zip(src.par_chunks(block))
            .for_each(|(dst, src)| bias_gelu_rows(isa, dst, src, self.bias));
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// `layer_norm((x + bias) + residual) · gamma + beta` over rows of `bias.len()` columns.
pub(crate) struct BiasResidualNorm<'a> {
    pub(crate) bias: &'a [f32],
    pub(crate) gamma: &'a [f32],
    pub(crate) beta: &'a [f32],
    pub(crate) eps: f32,
}

impl CustomOp2 for BiasResidualNorm<'_> {
    fn name(&self) -> &'static str {
        "bias-residual-layer-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let columns = self.bias.len();
        if l1.shape() != l2.shape() || self.gamma.len() != columns || self.beta.len() != columns {
            bail!("{}: shapes {:?} and {:?} differ", self.name(), l1.shape(), l2.shape());
        }
        check_columns(l1, columns, self.name())?;
        let (x, residual) = (contiguous(s1, l1, self.name())?, contiguous(s2, l2, self.name())?);
        let mut dst = vec![0f32; x.len()];
        let isa = Isa::detect();
        let block = columns * ROWS_PER_TASK;
        dst.par_chunks_mut(block).zip(x.par_chunks(block).zip(residual.par_chunks(block))).for_each(
            |(dst, (x, residual))| {
                bias_residual_norm_rows(isa, dst, x, residual, self.bias, self.gamma, self.beta, self.eps)
            },
        );
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }
}

/// The fused query/key/value projection (rows `batch · seq`, columns `3 · heads · head`) plus its bias, laid out as
/// (3, batch, heads, seq, head): query, key and value, each ready for batched matrix products.
pub(crate) struct SplitHeads<'a> {
    pub(crate) bias: &'a [f32],
    pub(crate) batch: usize,
    pub(crate) seq: usize,
    pub(crate) heads: usize,
    pub(crate) head: usize,
}

impl CustomOp1 for SplitHeads<'_> {
    fn name(&self) -> &'static str {
        "split-heads"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Self { batch, seq, heads, head, .. } = *self;
        let hidden = heads * head;
        check_columns(layout, 3 * hidden, self.name())?;
        if self.bias.len() != 3 * hidden || layout.shape().elem_count() != batch * seq * 3 * hidden {
            bail!("{}: shape {:?} does not match batch {batch}, seq {seq}", self.name(), layout.shape());
        }
        let src = contiguous(storage, layout, self.name())?;
        let mut dst = vec![0f32; src.len()];
        let isa = Isa::detect();
        // One block per (part, sequence, head): `seq` rows of `head` floats.
        dst.par_chunks_mut(seq * head).enumerate().for_each(|(block, dst)| {
            let (part, sequence, which) = (block / (batch * heads), (block / heads) % batch, block % heads);
            let column = part * hidden + which * head;
            let bias = &self.bias[column..column + head];
            for (position, out) in dst.chunks_exact_mut(head).enumerate() {
                let row = (sequence * seq + position) * 3 * hidden + column;
                add_bias(isa, out, &src[row..row + head], bias);
            }
        });
        Ok((CpuStorage::F32(dst), Shape::from_dims(&[3, batch, heads, seq, head])))
    }
}

/// Softmax over the last dimension of attention scores (batch, heads, seq, seq), counting only the first
/// `lengths[b]` keys of sequence `b`; the padded keys get probability 0.
pub(crate) struct MaskedSoftmax<'a> {
    pub(crate) lengths: &'a [usize],
    pub(crate) heads: usize,
}

impl CustomOp1 for MaskedSoftmax<'_> {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims();
        let &[batch, heads, seq, keys] = dims else { bail!("{}: expected 4 dimensions, got {dims:?}", self.name()) };
        if batch != self.lengths.len() || heads != self.heads || seq != keys || self.lengths.iter().any(|&l| l > seq) {
            bail!("{}: shape {dims:?} does not match the lengths {:?}", self.name(), self.lengths);
        }
        let src = contiguous(storage, layout, self.name())?;
        let mut dst = vec![0f32; src.len()];
        let isa = Isa::detect();
        // One block per (sequence, head): `seq` rows of `keys` scores.
        dst.par_chunks_mut(seq * keys).zip(src.par_chunks(seq * keys)).enumerate().for_each(|(block, (dst, src))| {
            softmax_rows(isa, dst, src, keys, self.lengths[block / heads]);
        });
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 from its Taylor series (accurate to ~1e-12 on [-4, 4]).
    fn erf_reference(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, std) = (exp(x), x.exp());
            let ulp = (std.to_bits() as i64 - ours.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {ours}, std {std}: {ulp} ulp");
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e4) < 1e-37 && exp(-1e4) >= 0.0);
    }

    #[test]
    fn erf_and_gelu_match_their_definitions() {
        let mut worst = 0f64;
        let mut x = -4.0f32;
        while x <= 4.0 {
            worst = worst.max((f64::from(erf(x)) - erf_reference(f64::from(x))).abs());
            x += 0.001;
        }
        // A&S 7.1.26 is within 1.5e-7; evaluated in f32 (as ATen does), the rounding adds up to ~4e-7.
        assert!(worst <= 6e-7, "erf error {worst}");
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6, "{}", gelu(1.0));
        assert!(gelu(-10.0).abs() < 1e-6);
    }

    #[test]
    fn every_instruction_set_computes_the_same_kernels() {
        let columns = 37; // not a multiple of the lanes
        let src: Vec<f32> = (0..columns * 3).map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0).collect();
        let residual: Vec<f32> = src.iter().map(|x| x * 0.5 + 1.0).collect();
        let bias: Vec<f32> = (0..columns).map(|i| i as f32 / 100.0).collect();
        let gamma = vec![1.5f32; columns];
        let beta = vec![0.25f32; columns];
        let mut isas = vec![Isa::Baseline];
        isas.extend(
            [Isa::Avx2, Isa::Avx512]
                .into_iter()
                .filter(|&isa| isa == Isa::detect() || (isa == Isa::Avx2 && Isa::detect() == Isa::Avx512)),
        );
        let run = |isa: Isa| {
            let mut gelu_out = vec![0f32; src.len()];
            bias_gelu_rows(isa, &mut gelu_out, &src, &bias);
            let mut norm_out = vec![0f32; src.len()];
            bias_residual_norm_rows(isa, &mut norm_out, &src, &residual, &bias, &gamma, &beta, 1e-12);
            let mut soft_out = vec![0f32; src.len()];
            softmax_rows(isa, &mut soft_out, &src, columns, 30);
            (gelu_out, norm_out, soft_out)
        };
        let (gelu_ref, norm_ref, soft_ref) = run(Isa::Baseline);
        for (i, &x) in src.iter().enumerate() {
            let expected = gelu(x + bias[i % columns]);
            assert!((gelu_ref[i] - expected).abs() <= 1e-6 * expected.abs().max(1.0));
        }
        for row in norm_ref.chunks(columns) {
            let mean: f32 = row.iter().sum::<f32>() / columns as f32;
            assert!((mean - 0.25).abs() < 1e-5, "{mean}");
        }
        for row in soft_ref.chunks(columns) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(row[30..].iter().all(|&p| p == 0.0));
        }
        for isa in isas {
            let (g, n, s) = run(isa);
            for (a, b) in g.iter().chain(&n).chain(&s).zip(gelu_ref.iter().chain(&norm_ref).chain(&soft_ref)) {
                assert!((a - b).abs() <= 2e-6 * b.abs().max(1.0), "{isa:?}: {a} vs {b}");
            }
        }
    }
}
