//! The model: all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions) in candle, F32 on the CPU, with the
//! sentence-transformers recipe: truncation to 256 tokens, mean pooling over the attention mask, then L2
//! normalisation.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::kernels::{BiasGelu, BiasResidualNorm, MaskedSoftmax, SplitHeads};

/// The model's directory inside the models directory (`$VOUCH_MODELS`, default `~/.cache/vouch/models`).
pub const MODEL_DIR: &str = "all-minilm-l6-v2";
/// sha256 of `model.safetensors`. Part of the execution profile: operators with other weights disagree.
pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// sha256 of `tokenizer.json`. Part of the execution profile: another tokenizer gives other token ids.
pub const TOKENIZER_SHA256: &str = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037";
/// sha256 of `config.json` (the BERT hyper-parameters).
pub const CONFIG_SHA256: &str = "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41";
/// Dimensions of an embedding.
pub const DIMENSIONS: usize = 384;
/// Longest input the model reads, in tokens, `[CLS]` and `[SEP]` included; longer inputs are truncated, as
/// sentence-transformers does for this model (`max_seq_length` 256).
pub const MAX_SEQ_LENGTH: usize = 256;
/// Most inputs accepted in one call.
pub const MAX_INPUTS: usize = 256;
/// Longest input accepted, in characters (Unicode scalar values). The model reads only the first
/// [`MAX_SEQ_LENGTH`] tokens of it; the bound keeps tokenization cheap.
pub const MAX_INPUT_CHARS: usize = 8192;

/// Hidden size, heads and head size of the encoder.
const HIDDEN: usize = DIMENSIONS;
const HEADS: usize = 12;
const HEAD_SIZE: usize = HIDDEN / HEADS;
/// Layers of all-MiniLM-L6-v2.
const LAYERS: usize = 6;

/// Why embedding failed. Some variants are the caller's fault ([`EmbedError::is_caller_fault`]).
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Neither `VOUCH_MODELS` nor `HOME` is set.
    #[error(
        "cannot locate the models directory: set VOUCH_MODELS (or HOME, for ~/.cache/vouch/models) and run \
         scripts/fetch-models.sh"
    )]
    NoModelsDir,
    /// A model file is missing.
    #[error(
        "{} is missing: run scripts/fetch-models.sh (it downloads the pinned models into $VOUCH_MODELS, default \
         ~/.cache/vouch/models)",
        path.display()
    )]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A model file exists but could not be read.
    #[error("cannot read {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A model file is not the pinned one.
    #[error(
        "{} has sha256 {actual}, but the execution profile pins {expected}: run scripts/fetch-models.sh to fetch \
         the pinned file again",
        path.display()
    )]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned sha256.
        expected: &'static str,
        /// The file's sha256.
        actual: String,
    },
    /// `config.json` is not a BERT configuration this crate can run.
    #[error("unusable model configuration: {0}")]
    Config(String),
    /// The tokenizer failed to load or to encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The model failed (a candle error).
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    /// No inputs were given.
    #[error("no inputs: send at least one text")]
    NoInputs,
    /// More than [`MAX_INPUTS`] inputs.
    #[error("{count} inputs; at most {max} are allowed in one call")]
    TooManyInputs {
        /// Inputs given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// An input is the empty string.
    #[error("input {index} is empty; every input must contain text")]
    EmptyInput {
        /// Position of the input.
        index: usize,
    },
    /// An input is longer than [`MAX_INPUT_CHARS`].
    #[error(
        "input {index} is {chars} characters long; at most {max} are allowed (the model reads only the first \
         {MAX_SEQ_LENGTH} tokens)"
    )]
    InputTooLong {
        /// Position of the input.
        index: usize,
        /// Its length in characters.
        chars: usize,
        /// The bound.
        max: usize,
    },
    /// The model could not be loaded, or its worker stopped.
    #[error("the embedding model is unavailable: {0}")]
    Unavailable(String),
}

impl EmbedError {
    /// Whether the caller can fix it by changing the inputs (empty, too many, too long).
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            Self::NoInputs | Self::TooManyInputs { .. } | Self::EmptyInput { .. } | Self::InputTooLong { .. }
        )
    }
}

/// Checks the bounds on inputs: 1 to [`MAX_INPUTS`] texts, each non-empty and at most [`MAX_INPUT_CHARS`] long.
pub fn check_inputs(texts: &[String]) -> Result<(), EmbedError> {
    if texts.is_empty() {
        return Err(EmbedError::NoInputs);
    }
    if texts.len() > MAX_INPUTS {
        return Err(EmbedError::TooManyInputs { count: texts.len(), max: MAX_INPUTS });
    }
    for (index, text) in texts.iter().enumerate() {
        if text.is_empty() {
            return Err(EmbedError::EmptyInput { index });
        }
        // A UTF-8 string has at most as many characters as bytes: count only when it may be too long.
        if text.len() > MAX_INPUT_CHARS {
            let chars = text.chars().count();
            if chars > MAX_INPUT_CHARS {
                return Err(EmbedError::InputTooLong { index, chars, max: MAX_INPUT_CHARS });
            }
        }
    }
    Ok(())
}

/// Where the model's files are: `<models dir>/all-minilm-l6-v2/{model.safetensors,tokenizer.json,config.json}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// The model's directory.
    pub dir: PathBuf,
}

impl ModelFiles {
    /// The files where `scripts/fetch-models.sh` puts them: `$VOUCH_MODELS/all-minilm-l6-v2`, or
    /// `$HOME/.cache/vouch/models/all-minilm-l6-v2` when `VOUCH_MODELS` is unset or empty.
    pub fn locate() -> Result<Self, EmbedError> {
        let root = match env::var_os("VOUCH_MODELS").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match env::var_os("HOME").filter(|home| !home.is_empty()) {
                Some(home) => PathBuf::from(home).join(".cache").join("vouch").join("models"),
                None => return Err(EmbedError::NoModelsDir),
            },
        };
        Ok(Self::in_models_dir(root))
    }

    /// The files inside the models directory `models_dir` (the one holding `all-minilm-l6-v2/`).
    pub fn in_models_dir(models_dir: impl AsRef<Path>) -> Self {
        Self { dir: models_dir.as_ref().join(MODEL_DIR) }
    }

    /// `model.safetensors`.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// `tokenizer.json`.
    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
}

/// Reads `path` and checks its sha256 against `expected`.
fn read_pinned(path: &Path, expected: &'static str) -> Result<Vec<u8>, EmbedError> {
    let bytes = fs::read(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            EmbedError::MissingFile { path: path.to_owned() }
        } else {
            EmbedError::Read { path: path.to_owned(), message: error.to_string() }
        }
    })?;
    let actual: String = Sha256::digest(&bytes).iter().map(|byte| format!("{byte:02x}")).collect();
    if actual != expected {
        return Err(EmbedError::HashMismatch { path: path.to_owned(), expected, actual });
    }
    Ok(bytes)
}

/// Which implementation of the BERT forward pass runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Implementation {
    /// This crate's encoder on candle tensors: query, key and value projections fused into one matrix product,
    /// the softmax scale folded into the query weights, biases, GELU, residuals, layer norms and the attention mask
    /// fused into a few parallel kernels. The default.
    #[default]
    Fused,
    /// `candle_transformers::models::bert::BertModel`, unchanged: the reference the fused encoder is tested
    /// against.
    CandleBert,
}

/// Precision of the weights. Anything but [`WeightPrecision::F32`] simulates an operator that runs a cheaper
/// substitute of the pinned model; it exists to measure the verifier (tests, benchmark), never to serve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightPrecision {
    /// The pinned F32 weights. The only precision of the execution profile.
    #[default]
    F32,
    /// Weights rounded to f16 and back.
    F16,
    /// Weights rounded to bf16 and back.
    BF16,
    /// Matrix weights quantized to int8 (symmetric, one scale per output row) and back.
    Int8,
}

/// How to load the model. [`LoadOptions::default`] is the execution profile; the other fields exist to measure
/// the verifier against substitutes and to compare implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// The forward-pass implementation.
    pub implementation: Implementation,
    /// Encoder layers to run, from the first: 6 is the model; fewer simulates a truncated substitute.
    pub layers: usize,
    /// Precision of the weights.
    pub precision: WeightPrecision,
    /// Largest batch [`MiniLm::embed`] runs in one forward pass, in inputs.
    pub max_batch_inputs: usize,
    /// Largest batch [`MiniLm::embed`] runs in one forward pass, in tokens including padding.
    pub max_batch_tokens: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            implementation: Implementation::default(),
            layers: LAYERS,
            precision: WeightPrecision::F32,
            // Measured on the 2-core development machine: batches of ~1,000 tokens beat 2,000–4,000 (the
            // activations stay in cache); see the README.
            max_batch_inputs: 16,
            max_batch_tokens: 1024,
        }
    }
}

/// all-MiniLM-L6-v2 with its tokenizer: texts in, sentence-transformers embeddings out.
pub struct MiniLm {
    tokenizer: Tokenizer,
    encoder: Encoder,
    options: LoadOptions,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").field("options", &self.options).finish_non_exhaustive()
    }
}

impl MiniLm {
    /// Loads the pinned model from its default location ([`ModelFiles::locate`]).
    pub fn load_default() -> Result<Self, EmbedError> {
        Self::load(&ModelFiles::locate()?, LoadOptions::default())
    }

    /// Loads the model from `files`, checking each file's sha256 against the pinned one.
    pub fn load(files: &ModelFiles, options: LoadOptions) -> Result<Self, EmbedError> {
        if options.layers == 0 || options.layers > LAYERS {
            return Err(EmbedError::Config(format!(
                "{} layers requested; the model has 1 to {LAYERS}",
                options.layers
            )));
        }
        if options.max_batch_inputs == 0 || options.max_batch_tokens < MAX_SEQ_LENGTH {
            return Err(EmbedError::Config(format!(
                "batch limits {} inputs, {} tokens: need at least 1 input and {MAX_SEQ_LENGTH} tokens",
                options.max_batch_inputs, options.max_batch_tokens
            )));
        }
        let config_bytes = read_pinned(&files.config(), CONFIG_SHA256)?;
        let mut config: BertConfig =
            serde_json::from_slice(&config_bytes).map_err(|error| EmbedError::Config(error.to_string()))?;
        if config.hidden_size != HIDDEN || config.num_attention_heads != HEADS || config.num_hidden_layers != LAYERS {
            return Err(EmbedError::Config(format!(
                "expected {LAYERS} layers of {HIDDEN} with {HEADS} heads, found {} of {} with {}",
                config.num_hidden_layers, config.hidden_size, config.num_attention_heads
            )));
        }
        config.num_hidden_layers = options.layers;

        let tokenizer_bytes = read_pinned(&files.tokenizer(), TOKENIZER_SHA256)?;
        let mut tokenizer =
            Tokenizer::from_bytes(&tokenizer_bytes).map_err(|error| EmbedError::Tokenizer(error.to_string()))?;
        // tokenizer.json says "truncate at 128, pad to 128"; sentence-transformers truncates this model at 256 and
        // pads to the longest input of a batch. We pad ourselves, per batch.
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: MAX_SEQ_LENGTH,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|error| EmbedError::Tokenizer(error.to_string()))?;
        tokenizer.with_padding(None);

        let weights = read_pinned(&files.weights(), MODEL_SHA256)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
        let weights = Weights { vb, precision: options.precision };
        let encoder = match options.implementation {
            Implementation::Fused => Encoder::Fused(FusedBert::load(&weights, &config)?),
            Implementation::CandleBert => {
                Encoder::CandleBert(Box::new(BertModel::load(weights.varbuilder()?, &config)?))
            }
        };
        Ok(Self { tokenizer, encoder, options })
    }

    /// The options the model was loaded with.
    pub fn options(&self) -> LoadOptions {
        self.options
    }

    /// Token ids of each text (`[CLS]` … `[SEP]`, truncated to [`MAX_SEQ_LENGTH`]), after checking the bounds.
    pub fn tokenize(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, EmbedError> {
        check_inputs(texts)?;
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings =
            self.tokenizer.encode_batch_fast(inputs, true).map_err(|error| EmbedError::Tokenizer(error.to_string()))?;
        Ok(encodings.into_iter().map(|encoding| encoding.get_ids().to_vec()).collect())
    }

    /// Embeddings of `texts`, in order: each 384 floats of unit length.
    ///
    /// Inputs are sorted by token length and run in batches of similar lengths (at most
    /// [`LoadOptions::max_batch_inputs`] inputs and [`LoadOptions::max_batch_tokens`] padded tokens), so padding
    /// is minimal. An input's embedding depends on its batch only through float rounding (≤ 2e-7 per dimension,
    /// measured; see the crate's README).
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let tokens = self.tokenize(texts)?;
        self.embed_tokens(&tokens)
    }

    /// Embeddings of already tokenized inputs, in order, batched by length as in [`MiniLm::embed`].
    pub fn embed_tokens(&self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut embeddings = vec![Vec::new(); tokens.len()];
        for batch in plan_batches(tokens, self.options.max_batch_inputs, self.options.max_batch_tokens) {
            let sequences: Vec<&[u32]> = batch.iter().map(|&index| tokens[index].as_slice()).collect();
            for (index, embedding) in batch.iter().zip(self.embed_batch(&sequences)?) {
                embeddings[*index] = embedding;
            }
        }
        Ok(embeddings)
    }

    /// Embeddings of `sequences` (token ids) computed in exactly one forward pass, padded to the longest.
    pub fn embed_batch(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let Some(longest) = sequences.iter().map(|sequence| sequence.len()).max() else { return Ok(Vec::new()) };
        if longest == 0 || longest > MAX_SEQ_LENGTH {
            return Err(EmbedError::Config(format!("sequences must have 1 to {MAX_SEQ_LENGTH} tokens, got {longest}")));
        }
        let batch = sequences.len();
        let mut ids = vec![0u32; batch * longest];
        for (row, sequence) in ids.chunks_exact_mut(longest).zip(sequences) {
            row[..sequence.len()].copy_from_slice(sequence);
        }
        let ids = Tensor::from_vec(ids, (batch, longest), &Device::Cpu)?;
        let lengths: Vec<usize> = sequences.iter().map(|sequence| sequence.len()).collect();
        let hidden = match &self.encoder {
            Encoder::Fused(bert) => bert.forward(&ids, &lengths)?,
            Encoder::CandleBert(bert) => {
                let mask: Vec<u32> = lengths
                    .iter()
                    .flat_map(|&length| (0..longest).map(move |position| u32::from(position < length)))
                    .collect();
                let mask = Tensor::from_vec(mask, (batch, longest), &Device::Cpu)?;
                bert.forward(&ids, &ids.zeros_like()?, Some(&mask))?
            }
        };
        Ok(mean_pool_normalize(&hidden, &lengths)?)
    }
}

/// Splits inputs into forward passes: sorted by token length (ties by position), then cut greedily so that a
/// batch has at most `max_inputs` inputs and `max_tokens` tokens once padded to its longest.
pub(crate) fn plan_batches(tokens: &[Vec<u32>], max_inputs: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&index| (tokens[index].len(), index));
    let mut batches = Vec::new();
    let mut batch: Vec<usize> = Vec::new();
    for index in order {
        // Sorted ascending: this input is the longest of the batch so far.
        let padded = (batch.len() + 1) * tokens[index].len();
        if !batch.is_empty() && (batch.len() == max_inputs || padded > max_tokens) {
            batches.push(std::mem::take(&mut batch));
        }
        batch.push(index);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Mean of the hidden states over each sequence's real tokens, then divided by its L2 norm, as
/// sentence-transformers' `Pooling(mean)` and `Normalize` do.
fn mean_pool_normalize(hidden: &Tensor, lengths: &[usize]) -> candle_core::Result<Vec<Vec<f32>>> {
    let (batch, longest, hidden_size) = hidden.dims3()?;
    let values = hidden.flatten_all()?.to_vec1::<f32>()?;
    let mut embeddings = Vec::with_capacity(batch);
    for (sequence, &length) in values.chunks_exact(longest * hidden_size).zip(lengths) {
        let mut sum = vec![0f32; hidden_size];
        for token in sequence.chunks_exact(hidden_size).take(length) {
            for (total, value) in sum.iter_mut().zip(token) {
                *total += value;
            }
        }
        let count = length.max(1) as f32;
        let mean: Vec<f32> = sum.iter().map(|total| total / count).collect();
        let norm = mean.iter().map(|&value| f64::from(value) * f64::from(value)).sum::<f64>().sqrt();
        let norm = (norm as f32).max(1e-12);
        embeddings.push(mean.iter().map(|value| value / norm).collect());
    }
    Ok(embeddings)
}

enum Encoder {
    Fused(FusedBert),
    CandleBert(Box<BertModel>),
}

/// The safetensors weights, read at [`WeightPrecision`].
struct Weights {
    vb: VarBuilder<'static>,
    precision: WeightPrecision,
}

impl Weights {
    /// A tensor, at the requested precision (matrices only: vectors stay F32, as a substitute would keep them).
    fn get(&self, name: &str) -> candle_core::Result<Tensor> {
        let tensor = self.vb.get_unchecked_dtype(name, DType::F32)?;
        self.degrade(tensor)
    }

    fn degrade(&self, tensor: Tensor) -> candle_core::Result<Tensor> {
        if tensor.rank() != 2 {
            return Ok(tensor);
        }
        match self.precision {
            WeightPrecision::F32 => Ok(tensor),
            WeightPrecision::F16 => tensor.to_dtype(DType::F16)?.to_dtype(DType::F32),
            WeightPrecision::BF16 => tensor.to_dtype(DType::BF16)?.to_dtype(DType::F32),
            WeightPrecision::Int8 => {
                let scale = (tensor.abs()?.max_keepdim(D::Minus1)? / 127.0)?.clamp(f32::MIN_POSITIVE, f32::MAX)?;
                tensor.broadcast_div(&scale)?.round()?.clamp(-127f32, 127f32)?.broadcast_mul(&scale)
            }
        }
    }

    /// A `VarBuilder` over the degraded tensors, for `BertModel`.
    fn varbuilder(&self) -> candle_core::Result<VarBuilder<'static>> {
        if self.precision == WeightPrecision::F32 {
            return Ok(self.vb.clone());
        }
        let mut tensors = std::collections::HashMap::new();
        for name in tensor_names(LAYERS) {
            tensors.insert(name.clone(), self.get(&name)?);
        }
        Ok(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
    }
}

/// Names of the tensors a BERT of `layers` layers reads.
fn tensor_names(layers: usize) -> Vec<String> {
    let mut names: Vec<String> = [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    ]
    .iter()
    .map(|name| (*name).to_owned())
    .collect();
    for layer in 0..layers {
        for part in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        ] {
            for parameter in ["weight", "bias"] {
                names.push(format!("encoder.layer.{layer}.{part}.{parameter}"));
            }
        }
    }
    names
}

/// A dense layer: `weight` stored as (in, out) for `x @ weight`; the bias is added by the fused kernel that follows.
struct Dense {
    weight: Tensor,
    bias: Vec<f32>,
}

impl Dense {
    /// Loads PyTorch's (out, in) weight `{prefix}.weight`, transposed once here, and its bias.
    fn load(weights: &Weights, prefix: &str) -> candle_core::Result<Self> {
        let weight = weights.get(&format!("{prefix}.weight"))?.t()?.contiguous()?;
        let bias = weights.get(&format!("{prefix}.bias"))?.to_vec1()?;
        Ok(Self { weight, bias })
    }
}

/// A layer norm's parameters.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(weights: &Weights, prefix: &str, eps: f64) -> candle_core::Result<Self> {
        Ok(Self {
            gamma: weights.get(&format!("{prefix}.weight"))?.to_vec1()?,
            beta: weights.get(&format!("{prefix}.bias"))?.to_vec1()?,
            eps: eps as f32,
        })
    }

    /// `layer_norm((x + dense.bias) + residual)`.
    fn bias_residual(&self, x: &Tensor, dense: &Dense, residual: &Tensor) -> candle_core::Result<Tensor> {
        let op = BiasResidualNorm { bias: &dense.bias, gamma: &self.gamma, beta: &self.beta, eps: self.eps };
        x.apply_op2_no_bwd(residual, &op)
    }
}

struct FusedLayer {
    /// Query, key and value projections side by side: (384, 1152); the query part pre-scaled by 1/√32.
    qkv: Dense,
    attention_output: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// BERT's encoder on candle tensors, with fewer and larger operations than `BertModel`: one matrix product for
/// query, key and value, the biases, GELU, residuals and layer norms fused into the kernels of [`crate::kernels`],
/// and the attention mask applied inside the softmax.
struct FusedBert {
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    /// Row 0 of the token-type embeddings: every input is a single sequence (type 0).
    token_type: Tensor,
    embeddings_norm: candle_nn::LayerNorm,
    layers: Vec<FusedLayer>,
}

impl FusedBert {
    fn load(weights: &Weights, config: &BertConfig) -> candle_core::Result<Self> {
        let eps = config.layer_norm_eps;
        let scale = 1.0 / (HEAD_SIZE as f64).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for layer in 0..config.num_hidden_layers {
            let prefix = format!("encoder.layer.{layer}");
            let part = |name: &str| weights.get(&format!("{prefix}.attention.self.{name}"));
            let weight =
                Tensor::cat(&[(part("query.weight")? * scale)?, part("key.weight")?, part("value.weight")?], 0)?;
            let bias = Tensor::cat(&[(part("query.bias")? * scale)?, part("key.bias")?, part("value.bias")?], 0)?;
            layers.push(FusedLayer {
                qkv: Dense { weight: weight.t()?.contiguous()?, bias: bias.to_vec1()? },
                attention_output: Dense::load(weights, &format!("{prefix}.attention.output.dense"))?,
                attention_norm: Norm::load(weights, &format!("{prefix}.attention.output.LayerNorm"), eps)?,
                intermediate: Dense::load(weights, &format!("{prefix}.intermediate.dense"))?,
                output: Dense::load(weights, &format!("{prefix}.output.dense"))?,
                output_norm: Norm::load(weights, &format!("{prefix}.output.LayerNorm"), eps)?,
            });
        }
        Ok(Self {
            word_embeddings: weights.get("embeddings.word_embeddings.weight")?,
            position_embeddings: weights.get("embeddings.position_embeddings.weight")?,
            token_type: weights.get("embeddings.token_type_embeddings.weight")?.get(0)?,
            embeddings_norm: candle_nn::LayerNorm::new(
                weights.get("embeddings.LayerNorm.weight")?,
                weights.get("embeddings.LayerNorm.bias")?,
                eps,
            ),
            layers,
        })
    }

    /// Hidden states (batch, longest, 384) of `ids` (batch, longest), each row padded after `lengths[row]`.
    fn forward(&self, ids: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let (batch, longest) = ids.dims2()?;
        let tokens = batch * longest;
        // As BERT: (word + token type) + position, then layer norm.
        let words = self.word_embeddings.index_select(&ids.flatten_all()?, 0)?;
        let embeddings = words
            .broadcast_add(&self.token_type)?
            .reshape((batch, longest, HIDDEN))?
            .broadcast_add(&self.position_embeddings.narrow(0, 0, longest)?)?
            .reshape((tokens, HIDDEN))?;
        let mut hidden = candle_nn::Module::forward(&self.embeddings_norm, &embeddings)?;
        let softmax = MaskedSoftmax { lengths, heads: HEADS };
        for layer in &self.layers {
            let split = SplitHeads { bias: &layer.qkv.bias, batch, seq: longest, heads: HEADS, head: HEAD_SIZE };
            let qkv = hidden.matmul(&layer.qkv.weight)?.apply_op1_no_bwd(&split)?;
            let (query, key, value) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            let probabilities = query.matmul(&key.t()?)?.apply_op1_no_bwd(&softmax)?;
            let context = probabilities.matmul(&value)?.transpose(1, 2)?.contiguous()?.reshape((tokens, HIDDEN))?;
            let attention = context.matmul(&layer.attention_output.weight)?;
            hidden = layer.attention_norm.bias_residual(&attention, &layer.attention_output, &hidden)?;
            let intermediate = hidden
                .matmul(&layer.intermediate.weight)?
                .apply_op1_no_bwd(&BiasGelu { bias: &layer.intermediate.bias })?;
            let output = intermediate.matmul(&layer.output.weight)?;
            hidden = layer.output_norm.bias_residual(&output, &layer.output, &hidden)?;
        }
        hidden.reshape((batch, longest, HIDDEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_sorted_by_length_and_bounded() {
        let tokens: Vec<Vec<u32>> = [5, 1, 3, 3, 8, 2].iter().map(|&length| vec![1; length]).collect();
        let batches = plan_batches(&tokens, 2, 100);
        assert_eq!(batches, vec![vec![1, 5], vec![2, 3], vec![0, 4]]);
        // 3 inputs of length 3 would be 9 padded tokens > 8.
        let batches = plan_batches(&tokens, 10, 8);
        assert_eq!(batches, vec![vec![1, 5], vec![2, 3], vec![0], vec![4]]);
        assert!(plan_batches(&[], 4, 100).is_empty());
    }

    #[test]
    fn input_bounds_are_precise() {
        assert!(matches!(check_inputs(&[]), Err(EmbedError::NoInputs)));
        let many = vec!["a".to_owned(); MAX_INPUTS + 1];
        assert!(matches!(check_inputs(&many), Err(EmbedError::TooManyInputs { count: 257, max: 256 })));
        let empty = vec!["a".to_owned(), String::new()];
        assert!(matches!(check_inputs(&empty), Err(EmbedError::EmptyInput { index: 1 })));
        // Multi-byte characters count once: 8192 'é' (16384 bytes) are allowed, 8193 are not.
        assert!(check_inputs(&["é".repeat(MAX_INPUT_CHARS)]).is_ok());
        let error = check_inputs(&["x".to_owned(), "é".repeat(MAX_INPUT_CHARS + 1)]).err();
        assert!(matches!(error, Some(EmbedError::InputTooLong { index: 1, chars: 8193, max: 8192 })), "{error:?}");
        assert!(error.is_some_and(|error| error.is_caller_fault()));
    }

    #[test]
    fn models_dir_comes_from_the_environment() {
        let files = ModelFiles::in_models_dir("/models");
        assert_eq!(files.weights(), PathBuf::from("/models/all-minilm-l6-v2/model.safetensors"));
        assert_eq!(files.tokenizer(), PathBuf::from("/models/all-minilm-l6-v2/tokenizer.json"));
    }

    #[test]
    fn a_missing_model_names_the_fetch_script() {
        let files = ModelFiles::in_models_dir("/nonexistent-vouch-models");
        let error = MiniLm::load(&files, LoadOptions::default()).err().map(|error| error.to_string());
        let message = error.unwrap_or_default();
        assert!(message.contains("/nonexistent-vouch-models/all-minilm-l6-v2/config.json is missing"), "{message}");
        assert!(message.contains("scripts/fetch-models.sh"), "{message}");
    }
}
