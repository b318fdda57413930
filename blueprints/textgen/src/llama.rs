//! A compact llama forward pass over a GGUF's quantized weights.
//!
//! Written here rather than taken from `candle_transformers::models::quantized_llama` because that
//! model's `forward` returns the logits of the last position only (and keeps its KV cache inside the
//! weights), while teacher-forced verification needs the logits of every completion position from
//! one forward pass. One implementation serves both uses, so the executor (prefill, then one token at
//! a time with a KV cache) and the verifier (one pass over prompt + claimed tokens) run the same
//! arithmetic on the same weights.

use std::borrow::Cow;
use std::io::Cursor;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{CpuStorage, D, DType, Device, Module, Storage, Tensor};

use crate::LoadError;
use crate::ops::{causal_softmax, swiglu};

/// How the matrix weights are held and multiplied. Only [`WeightFormat::Q8_0`] is the pinned
/// profile; the others exist to measure honest cross-kernel noise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// Q4_1 weights re-quantized to Q8_0 at load (candle has SIMD kernels for Q8_0, none for Q4_1):
    /// the pinned execution profile.
    #[default]
    Q8_0,
    /// The pinned Q8_0 weights as a CPU without VNNI multiplies them: no padding, so candle's generic Q8_0
    /// kernel (Q8_0-quantized activations) runs where a VNNI CPU runs the repacked kernel (Q8_K activations).
    /// An honest operator of the pinned profile on another CPU tier.
    Q8_0Unpadded,
    /// The weights as shipped in the GGUF (Q4_1 matrices, Q8_0 embeddings), candle's scalar Q4_1
    /// kernel.
    AsShipped,
    /// Every weight dequantized to F32 (the shipped values exactly), multiplied with F32 gemm.
    F32,
}

impl WeightFormat {
    /// A short name: `q8_0`, `as_shipped`, `f32`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q8_0 => "q8_0",
            Self::Q8_0Unpadded => "q8_0_unpadded",
            Self::AsShipped => "as_shipped",
            Self::F32 => "f32",
        }
    }
}

/// How to build the model from the GGUF. The default is the pinned profile; anything else is a
/// different model (a kernel tier to measure honest noise, or a cheater for the tests) and is never
/// what an operator should serve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// How the matrix weights are held.
    pub weights: WeightFormat,
    /// Transformer blocks to leave out (a smaller, cheaper, wrong model).
    pub skip_layers: Vec<usize>,
    /// Relative noise added to every matrix weight: `w + perturbation · rms(w) · u`, `u` uniform
    /// with unit variance, from a fixed seed (a wrong model of the same cost).
    pub perturbation: f32,
}

impl LoadOptions {
    /// True for the pinned profile.
    pub fn is_pinned(&self) -> bool {
        self.weights == WeightFormat::Q8_0 && self.skip_layers.is_empty() && self.perturbation == 0.0
    }
}

/// The model's shape, from the GGUF metadata.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Hidden size.
    pub dim: usize,
    /// Feed-forward size.
    pub ffn_dim: usize,
    /// Number of transformer blocks loaded.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub n_kv_heads: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Vocabulary size (rows of the output matrix).
    pub vocab: usize,
    /// Context length the model was trained for.
    pub context: usize,
    /// RMS norm epsilon.
    pub eps: f64,
    /// RoPE base frequency.
    pub rope_base: f64,
    /// Zeros appended to hidden-size activations (and weight rows) so that candle's repacked VNNI kernel,
    /// which needs a multiple of 256, multiplies them: 192 for Q8_0 on a VNNI CPU, 0 otherwise.
    pub input_padding: usize,
}

struct Layer {
    attn_norm: Tensor,
    ffn_norm: Tensor,
    /// q, k and v stacked: `(dim + 2·kv_dim, dim + padding)`.
    qkv: QMatMul,
    wo: QMatMul,
    /// gate and up stacked: `(2·ffn_dim, dim + padding)`.
    gate_up: QMatMul,
    down: QMatMul,
}

/// The weights. Immutable once loaded and shared between calls; the per-call state is a
/// [`KvCache`].
pub(crate) struct Llama {
    config: LlamaConfig,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
}

/// The keys and values of the positions fed so far, one entry per layer. Cloning shares the tensors (a
/// forward pass replaces them, never writes into them), so a cache of a common prefix can seed many passes.
#[derive(Clone)]
pub(crate) struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

/// Reads a GGUF metadata value, naming the key when it is missing or of the wrong type.
fn metadata<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value, LoadError> {
    content.metadata.get(key).ok_or_else(|| LoadError::Gguf(format!("metadata key `{key}` is missing")))
}

fn metadata_u32(content: &gguf_file::Content, key: &str) -> Result<usize, LoadError> {
    let value = metadata(content, key)?;
    value.to_u32().map(|v| v as usize).map_err(|e| LoadError::Gguf(format!("metadata key `{key}`: {e}")))
}

/// Deterministic pseudo-random noise for the perturbation, computed with tensor ops (fast in any build): the
/// classic `fract(sin(i · 12.9898) · 43758.5453)` hash, rescaled to unit variance. Each matrix gets its own
/// offset.
struct Noise(u64);

impl Noise {
    fn like(&mut self, weights: &Tensor) -> candle_core::Result<Tensor> {
        let count = weights.elem_count();
        let offset = self.0 as f64 * 0.618_034;
        self.0 += 1;
        let index = Tensor::arange(0u32, count as u32, weights.device())?.to_dtype(DType::F32)?;
        let hashed = (((index + offset)? * 12.9898)?.sin()? * 43_758.545_3)?;
        let uniform = (hashed.clone() - hashed.floor()?)?; // in [0, 1)
        let unit = ((uniform - 0.5)? * (2.0 * 3f64.sqrt()))?;
        unit.reshape(weights.shape())
    }
}

/// Whether candle 0.11.1 multiplies Q8_0 weights with its repacked x86 kernel (AVX512-VNNI or AVX-VNNI; see
/// `candle_core::quantized::repack_x86::select`), which needs the inner dimension to be a multiple of 256.
fn repacked_q8_0_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1") {
            return false;
        }
        let avx512 = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni");
        let avx_vnni = is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2");
        avx512 || avx_vnni
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Llama {
    /// Builds the model from the bytes of a GGUF file.
    pub(crate) fn from_gguf(gguf: &[u8], options: &LoadOptions) -> Result<(Self, gguf_file::Content), LoadError> {
        let device = Device::Cpu;
        let mut reader = Cursor::new(gguf);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| LoadError::Gguf(e.to_string()))?;
        let arch = metadata(&content, "general.architecture")?
            .to_string()
            .map_err(|e| LoadError::Gguf(format!("general.architecture: {e}")))?;
        if arch != "llama" {
            return Err(LoadError::Gguf(format!("architecture `{arch}`, expected `llama`")));
        }
        let n_heads = metadata_u32(&content, "llama.attention.head_count")?;
        let n_kv_heads = metadata_u32(&content, "llama.attention.head_count_kv")?;
        let block_count = metadata_u32(&content, "llama.block_count")?;
        let dim = metadata_u32(&content, "llama.embedding_length")?;
        let ffn_dim = metadata_u32(&content, "llama.feed_forward_length")?;
        let context = metadata_u32(&content, "llama.context_length")?;
        let rope_dim = metadata_u32(&content, "llama.rope.dimension_count")?;
        let eps = metadata(&content, "llama.attention.layer_norm_rms_epsilon")?
            .to_f32()
            .map_err(|e| LoadError::Gguf(format!("rms epsilon: {e}")))?;
        let rope_base = metadata(&content, "llama.rope.freq_base")
            .and_then(|v| v.to_f32().map_err(|e| LoadError::Gguf(format!("rope base: {e}"))))
            .unwrap_or(10_000.0);
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 || dim % n_heads != 0 {
            return Err(LoadError::Gguf(format!("unsupported head counts {n_heads}/{n_kv_heads} for dim {dim}")));
        }
        let head_dim = dim / n_heads;
        if rope_dim != head_dim {
            return Err(LoadError::Gguf(format!("partial RoPE ({rope_dim} of {head_dim}) is not supported")));
        }
        if let Some(&bad) = options.skip_layers.iter().find(|&&l| l >= block_count) {
            return Err(LoadError::Gguf(format!("cannot skip layer {bad}: the model has {block_count}")));
        }
        let input_padding = if options.weights == WeightFormat::Q8_0 && repacked_q8_0_kernel() {
            dim.next_multiple_of(256) - dim
        } else {
            0
        };

        let mut noise = Noise(0);
        let mut tensor = |name: &str| -> Result<QTensor, LoadError> {
            content.tensor(&mut reader, name, &device).map_err(|e| LoadError::Gguf(format!("tensor `{name}`: {e}")))
        };
        let token_embd = tensor("token_embd.weight")?;
        let embeddings = token_embd.dequantize(&device)?;
        let vocab = embeddings.dim(0)?;
        // SmolLM2 ties the output matrix to the embeddings (no `output.weight`); either is Q8_0 as shipped.
        let output = match tensor("output.weight") {
            Ok(output) => output,
            Err(_) => token_embd,
        };
        // The output matrix is never perturbed: a cheater changes the transformer, the vocabulary stays.
        let exact = LoadOptions { perturbation: 0.0, ..options.clone() };
        let output = fuse(vec![output], &exact, input_padding, &mut noise)
            .map_err(|e| LoadError::Gguf(format!("output matrix: {e}")))?;
        let norm = tensor("output_norm.weight")?.dequantize(&device)?;

        let mut layers = Vec::with_capacity(block_count);
        for index in 0..block_count {
            if options.skip_layers.contains(&index) {
                continue;
            }
            let mut weights = |suffixes: &[&str], padding: usize| -> Result<QMatMul, LoadError> {
                let names: Vec<String> = suffixes.iter().map(|s| format!("blk.{index}.{s}.weight")).collect();
                let parts = names.iter().map(|name| tensor(name)).collect::<Result<Vec<_>, _>>()?;
                fuse(parts, options, padding, &mut noise)
                    .map_err(|e| LoadError::Gguf(format!("tensors {names:?}: {e}")))
            };
            let qkv = weights(&["attn_q", "attn_k", "attn_v"], input_padding)?;
            let wo = weights(&["attn_output"], input_padding)?;
            let gate_up = weights(&["ffn_gate", "ffn_up"], input_padding)?;
            let down = weights(&["ffn_down"], 0)?;
            let attn_norm = tensor(&format!("blk.{index}.attn_norm.weight"))?.dequantize(&device)?;
            let ffn_norm = tensor(&format!("blk.{index}.ffn_norm.weight"))?.dequantize(&device)?;
            layers.push(Layer { attn_norm, ffn_norm, qkv, wo, gate_up, down });
        }

        // RoPE tables, (context, head_dim / 2); angles computed in f64 then rounded once.
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(context * half);
        let mut sin = Vec::with_capacity(context * half);
        let base = f64::from(rope_base);
        for position in 0..context {
            for i in 0..half {
                let frequency = 1.0 / base.powf((2 * i) as f64 / head_dim as f64);
                let angle = position as f64 * frequency;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let cos = Tensor::from_vec(cos, (context, half), &device)?;
        let sin = Tensor::from_vec(sin, (context, half), &device)?;

        let config = LlamaConfig {
            dim,
            ffn_dim,
            n_layers: layers.len(),
            n_heads,
            n_kv_heads,
            head_dim,
            vocab,
            context,
            eps: f64::from(eps),
            rope_base: base,
            input_padding,
        };
        Ok((Self { config, embeddings, layers, norm, output, cos, sin }, content))
    }

    pub(crate) fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub(crate) fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![None; self.layers.len()], len: 0 }
    }

    /// Appends the zero padding the weights expect to hidden-size activations.
    fn pad(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.pad_with_zeros(D::Minus1, 0, self.config.input_padding)
    }

    /// Feeds `tokens` after the positions already in `cache` and returns the logits of the positions
    /// `logits_from..tokens.len()` of this chunk, as a `(tokens.len() - logits_from, vocab)` tensor.
    pub(crate) fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits_from: usize,
    ) -> candle_core::Result<Tensor> {
        let seq = tokens.len();
        let start = cache.len;
        if seq == 0 || logits_from >= seq {
            candle_core::bail!("forward over {seq} tokens with logits from {logits_from}");
        }
        if start + seq > self.config.context {
            candle_core::bail!("{} positions exceed the context of {}", start + seq, self.config.context);
        }
        let device = Device::Cpu;
        let ids = Tensor::new(tokens, &device)?;
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        let cos = self.cos.narrow(0, start, seq)?;
        let sin = self.sin.narrow(0, start, seq)?;
        let eps = self.config.eps as f32;
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = self.pad(&candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?)?;
            let attention = self.attention(layer, &h, slot, &cos, &sin, start)?;
            x = (x + attention)?;
            let h = self.pad(&candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?)?;
            let mlp = layer.down.forward(&swiglu(&layer.gate_up.forward(&h)?)?)?;
            x = (x + mlp)?;
        }
        cache.len += seq;
        let x = x.narrow(1, logits_from, seq - logits_from)?.contiguous()?;
        let x = self.pad(&candle_nn::ops::rms_norm(&x, &self.norm, eps)?)?;
        self.output.forward(&x)?.squeeze(0)
    }

    fn attention(
        &self,
        layer: &Layer,
        h: &Tensor,
        slot: &mut Option<(Tensor, Tensor)>,
        cos: &Tensor,
        sin: &Tensor,
        start: usize,
    ) -> candle_core::Result<Tensor> {
        let LlamaConfig { n_heads, n_kv_heads, head_dim, dim, .. } = self.config;
        let (_, seq, _) = h.dims3()?;
        let qkv = layer.qkv.forward(h)?;
        let heads = |offset: usize, n: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(D::Minus1, offset, n * head_dim)?.reshape((1, seq, n, head_dim))?.transpose(1, 2)?.contiguous()
        };
        let kv_dim = n_kv_heads * head_dim;
        let q = candle_nn::rotary_emb::rope_i(&heads(0, n_heads)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope_i(&heads(dim, n_kv_heads)?, cos, sin)?;
        let v = heads(dim + kv_dim, n_kv_heads)?;
        let (k, v) = match slot.take() {
            None => (k, v),
            Some((k_cache, v_cache)) => (Tensor::cat(&[&k_cache, &k], 2)?, Tensor::cat(&[&v_cache, &v], 2)?),
        };
        *slot = Some((k.clone(), v.clone()));
        let kv_len = k.dim(2)?;
        // Grouped-query attention without copying keys: the `group` query heads that share a key
        // head are stacked along the rows of one matrix product.
        let group = n_heads / n_kv_heads;
        let q = (q * (1.0 / (head_dim as f64).sqrt()))?.reshape((n_kv_heads, group * seq, head_dim))?;
        let k = k.reshape((n_kv_heads, kv_len, head_dim))?;
        let v = v.reshape((n_kv_heads, kv_len, head_dim))?;
        let scores = q.matmul(&k.t()?)?;
        // One new position sees every key; a chunk of them is causal.
        let weights =
            if seq == 1 { candle_nn::ops::softmax_last_dim(&scores)? } else { causal_softmax(&scores, seq, start)? };
        let y = weights.matmul(&v)?;
        let y = y.reshape((1, n_heads, seq, head_dim))?.transpose(1, 2)?.contiguous()?.reshape((1, seq, dim))?;
        layer.wo.forward(&self.pad(&y)?)
    }
}

/// Stacks shipped matrices (same inner size) along their rows, in the requested format, with the
/// requested perturbation, and `padding` zero columns appended (Q8_0 only). Stacking changes no
/// arithmetic: every output column is its own dot product. The `QMatMul` variants are built
/// directly, not with `QMatMul::from_qtensor`, so that candle's `CANDLE_DEQUANTIZE_ALL*` environment
/// variables cannot silently change the kernels.
fn fuse(parts: Vec<QTensor>, options: &LoadOptions, padding: usize, noise: &mut Noise) -> candle_core::Result<QMatMul> {
    let device = Device::Cpu;
    let Some(first) = parts.first() else { candle_core::bail!("nothing to stack") };
    let dtype = first.dtype();
    let (_, k) = first.shape().dims2()?;
    let exact = options.perturbation == 0.0;
    // Raw stacking of the shipped blocks: rows are whole blocks, so bytes concatenate.
    let raw = |parts: &[QTensor]| -> candle_core::Result<QTensor> {
        let mut bytes = Vec::new();
        let mut rows = 0;
        for part in parts {
            let (n, part_k) = part.shape().dims2()?;
            if part.dtype() != dtype || part_k != k {
                candle_core::bail!("cannot stack {:?} {:?} with {dtype:?} (_, {k})", part.dtype(), part.shape());
            }
            bytes.extend_from_slice(&part.data()?);
            rows += n;
        }
        QTensor::new(QStorage::from_data(Cow::Owned(bytes), &device, dtype)?, (rows, k))
    };
    let dense = |parts: &[QTensor], noise: &mut Noise| -> candle_core::Result<Tensor> {
        let mut stacked = Vec::with_capacity(parts.len());
        for part in parts {
            let weights = part.dequantize(&device)?;
            let weights = if exact {
                weights
            } else {
                let rms = weights.sqr()?.mean_all()?.to_scalar::<f32>()?.sqrt();
                let amplitude = f64::from(options.perturbation * rms);
                (noise.like(&weights)? * amplitude + &weights)?
            };
            stacked.push(weights);
        }
        Tensor::cat(&stacked, 0)
    };
    // One shipped matrix used as is needs no copy.
    let shipped = |mut parts: Vec<QTensor>| -> candle_core::Result<QTensor> {
        match parts.pop() {
            Some(part) if parts.is_empty() => Ok(part),
            Some(part) => {
                parts.push(part);
                raw(&parts)
            }
            None => candle_core::bail!("nothing to stack"),
        }
    };
    Ok(match options.weights {
        WeightFormat::F32 => QMatMul::Tensor(dense(&parts, noise)?),
        WeightFormat::AsShipped if exact => QMatMul::QTensor(Arc::new(shipped(parts)?)),
        WeightFormat::AsShipped => QMatMul::QTensor(Arc::new(QTensor::quantize(&dense(&parts, noise)?, dtype)?)),
        WeightFormat::Q8_0 | WeightFormat::Q8_0Unpadded
            if exact && padding == 0 && parts.iter().all(|p| p.dtype() == GgmlDType::Q8_0) =>
        {
            QMatMul::QTensor(Arc::new(shipped(parts)?))
        }
        WeightFormat::Q8_0 | WeightFormat::Q8_0Unpadded => {
            let weights = dense(&parts, noise)?.pad_with_zeros(D::Minus1, 0, padding)?;
            QMatMul::QTensor(Arc::new(QTensor::quantize(&weights, GgmlDType::Q8_0)?))
        }
    })
}

/// Index of the largest value (the first one on ties); `None` if a value is NaN or `row` is empty.
pub(crate) fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (index, &value) in row.iter().enumerate() {
        if value.is_nan() {
            return None;
        }
        match best {
            Some((_, top)) if value <= top => {}
            _ => best = Some((index, value)),
        }
    }
    best.map(|(index, _)| index)
}

/// Rows of a `(n, vocab)` logits tensor.
pub(crate) fn rows(logits: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    logits.to_dtype(DType::F32)?.to_vec2::<f32>()
}

/// `f` applied to each row of a `(n, vocab)` f32 logits tensor, in order, reading the rows in place (the checker's
/// logits are `completion × vocabulary`, tens of megabytes: no copy).
pub(crate) fn map_rows<T>(logits: &Tensor, mut f: impl FnMut(&[f32]) -> T) -> candle_core::Result<Vec<T>> {
    let (n, vocab) = logits.dims2()?;
    let (storage, layout) = logits.storage_and_layout();
    let data = match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(data)), Some((start, end))) if end - start == n * vocab => &data[start..end],
        _ => {
            drop(storage);
            return Ok(rows(logits)?.iter().map(|row| f(row)).collect());
        }
    };
    Ok(data.chunks_exact(vocab.max(1)).map(f).collect())
}
