//! [`TextGen`]: the model, its tokenizer and chat template, greedy generation and teacher-forced
//! scoring.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::chat::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, FinishReason, MAX_PROMPT_TOKENS, Message, RequestError,
    Role, Usage, VouchExtension, completion_id, parse_request,
};
use crate::files::{GGUF_SHA256, ModelFiles, TOKENIZER_SHA256, read_pinned};
use crate::llama::{KvCache, Llama, LlamaConfig, LoadOptions, argmax, map_rows, rows};
use crate::{LoadError, PROFILE};

/// The end-of-turn token, `<|im_end|>` (also the GGUF's `eos_token_id`).
pub const IM_END: u32 = 2;
/// `<|endoftext|>`, which also ends generation.
pub const END_OF_TEXT: u32 = 0;
/// The tokens that end generation.
pub const END_TOKENS: [u32; 2] = [IM_END, END_OF_TEXT];
/// The system message the chat template inserts when the conversation has none.
pub const DEFAULT_SYSTEM_MESSAGE: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// A model failure (candle, tokenizer, template): not the caller's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

impl From<candle_core::Error> for ModelError {
    fn from(error: candle_core::Error) -> Self {
        Self(format!("model: {error}"))
    }
}

/// Why a completion failed: the caller's fault (the request), or the model's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompletionError {
    /// The request is invalid.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The call was cancelled (its caller went away) before it finished.
    #[error("cancelled")]
    Cancelled,
}

/// A greedy generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The completion tokens, end token included when `finish` is [`FinishReason::Stop`].
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Time spent on the prompt (one forward pass).
    pub prefill: Duration,
    /// Time spent producing the tokens after the first.
    pub decode: Duration,
}

/// How a claimed token fares against the recomputed logits at its position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenScore {
    /// The claimed token.
    pub token: u32,
    /// The recomputed greedy choice.
    pub argmax: u32,
    /// Largest logit minus the claimed token's logit (≥ 0; 0 when the claimed token is the argmax).
    pub margin: f32,
    /// How many tokens have a strictly larger logit (0 for the argmax).
    pub rank: usize,
}

/// SmolLM2-135M-Instruct: weights, tokenizer and chat template, loaded once and shared (`Send +
/// Sync`; every method takes `&self`).
pub struct TextGen {
    pub(crate) model: Llama,
    tokenizer: Tokenizer,
    template: minijinja::Environment<'static>,
    options: LoadOptions,
    pub(crate) prefix: Option<SharedPrefix>,
}

/// The tokens every prompt with the default system message starts with (the template's system turn and the
/// opening of the user turn), and their keys and values, computed once at load. A forward pass over tokens that
/// start with them (same ids) resumes after them, for the executor's prefill and the checker's pass alike: by
/// causality the keys and values of those positions do not depend on what follows. It is the same computation up
/// to rounding: the attention products of a shorter pass have other shapes, so their last bits can differ, which
/// the activation quantization of the next layers can amplify — the noise class of a KV-cached decode against one
/// pass, which the tolerance was calibrated on (with the prefix in use).
pub(crate) struct SharedPrefix {
    pub(crate) tokens: Vec<u32>,
    cache: KvCache,
}

impl std::fmt::Debug for TextGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextGen").field("config", self.model.config()).field("options", &self.options).finish()
    }
}

impl TextGen {
    /// Loads the pinned profile from the files `scripts/fetch-models.sh` installed (see
    /// [`ModelFiles::locate`]).
    pub fn load() -> Result<Self, LoadError> {
        Self::load_with(&ModelFiles::locate()?, &LoadOptions::default())
    }

    /// Loads `files` (both checked against their pinned sha256) and builds the model `options`
    /// describe. Only `LoadOptions::default()` is the pinned profile.
    pub fn load_with(files: &ModelFiles, options: &LoadOptions) -> Result<Self, LoadError> {
        let gguf = read_pinned(&files.gguf, GGUF_SHA256)?;
        let tokenizer = read_pinned(&files.tokenizer, TOKENIZER_SHA256)?;
        let tokenizer = Tokenizer::from_bytes(&tokenizer).map_err(|e| LoadError::Tokenizer(e.to_string()))?;
        let (model, content) = Llama::from_gguf(&gguf, options)?;
        let template = chat_template(&content)?;
        let config = model.config();
        let vocab = tokenizer.get_vocab_size(true);
        if vocab != config.vocab {
            return Err(LoadError::Tokenizer(format!("{vocab} tokens, the model has {}", config.vocab)));
        }
        for (id, text) in [(IM_END, "<|im_end|>"), (END_OF_TEXT, "<|endoftext|>")] {
            if tokenizer.token_to_id(text) != Some(id) {
                return Err(LoadError::Tokenizer(format!("`{text}` is not token {id}")));
            }
        }
        let mut textgen = Self { model, tokenizer, template, options: options.clone(), prefix: None };
        textgen.prefix = textgen.shared_prefix().map_err(|e| LoadError::Gguf(format!("shared prefix: {e}")))?;
        tracing::info!(
            weights = options.weights.name(),
            layers = textgen.config().n_layers,
            shared_prefix = textgen.prefix.as_ref().map_or(0, |p| p.tokens.len()),
            "textgen model loaded"
        );
        Ok(textgen)
    }

    /// The longest token prefix two conversations with the default system message and different user messages
    /// share, with its keys and values (`None` if it is shorter than two tokens).
    fn shared_prefix(&self) -> Result<Option<SharedPrefix>, ModelError> {
        let prompt =
            |content: &str| self.encode(&self.render_prompt(&[Message { role: Role::User, content: content.into() }])?);
        let (a, b) = (prompt("a")?, prompt("b")?);
        let len = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        if len < 2 {
            return Ok(None);
        }
        let tokens = a[..len].to_vec();
        let mut cache = self.model.new_cache();
        self.model.forward(&tokens, &mut cache, len - 1)?;
        Ok(Some(SharedPrefix { tokens, cache }))
    }

    /// A cache to feed `tokens` from, and how many of them it already holds: the shared prefix when `tokens`
    /// starts with it and no logits are needed before its end (`logits_from` ≥ its length), else nothing.
    pub(crate) fn resume(&self, tokens: &[u32], logits_from: usize) -> (KvCache, usize) {
        match &self.prefix {
            Some(prefix) if prefix.tokens.len() <= logits_from && tokens.starts_with(&prefix.tokens) => {
                (prefix.cache.clone(), prefix.tokens.len())
            }
            _ => (self.model.new_cache(), 0),
        }
    }

    /// The model's shape.
    pub fn config(&self) -> &LlamaConfig {
        self.model.config()
    }

    /// How this model was built (the default is the pinned profile).
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Renders the chat template of the GGUF over `messages`, with the generation prompt, as HF
    /// transformers' `apply_chat_template(..., add_generation_prompt=True)` does.
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String, ModelError> {
        #[derive(Serialize)]
        struct Context<'a> {
            messages: &'a [Message],
            add_generation_prompt: bool,
            bos_token: &'static str,
            eos_token: &'static str,
        }
        let template = self.template.get_template("chat").map_err(|e| ModelError(format!("chat template: {e}")))?;
        template
            .render(Context {
                messages,
                add_generation_prompt: true,
                bos_token: "<|im_start|>",
                eos_token: "<|im_end|>",
            })
            .map_err(|e| ModelError(format!("chat template: {e}")))
    }

    /// Tokenizes `text` as HF does (no special tokens added; control markers in the text become
    /// control tokens).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self.tokenizer.encode(text, false).map_err(|e| ModelError(format!("tokenizer: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes `tokens` to text, control tokens included verbatim.
    pub fn decode(&self, tokens: &[u32]) -> Result<String, ModelError> {
        self.tokenizer.decode(tokens, false).map_err(|e| ModelError(format!("tokenizer: {e}")))
    }

    /// The prompt tokens of a validated request, checked against [`MAX_PROMPT_TOKENS`].
    pub fn prompt_tokens(&self, request: &ChatRequest) -> Result<Vec<u32>, CompletionError> {
        let tokens = self.encode(&self.render_prompt(&request.messages)?)?;
        if tokens.len() > MAX_PROMPT_TOKENS {
            return Err(RequestError::PromptTooLong { tokens: tokens.len() }.into());
        }
        Ok(tokens)
    }

    /// Greedy generation after `prompt`: at most `max_tokens` tokens, ending early at an end token
    /// (which is kept, as the last token).
    pub fn generate(&self, prompt: &[u32], max_tokens: usize) -> Result<Generation, ModelError> {
        self.generate_cancellable(prompt, max_tokens, &AtomicBool::new(false)).map_err(|e| match e {
            CompletionError::Model(e) => e,
            other => ModelError(other.to_string()),
        })
    }

    /// [`TextGen::generate`], stopping with [`CompletionError::Cancelled`] between two tokens once
    /// `cancel` is set.
    pub fn generate_cancellable(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        cancel: &AtomicBool,
    ) -> Result<Generation, CompletionError> {
        if prompt.is_empty() || max_tokens == 0 {
            return Err(ModelError("generation needs a prompt and max_tokens ≥ 1".into()).into());
        }
        let started = Instant::now();
        let (mut cache, fed) = self.resume(prompt, prompt.len() - 1);
        let mut logits =
            self.model.forward(&prompt[fed..], &mut cache, prompt.len() - 1 - fed).map_err(ModelError::from)?;
        let prefill = started.elapsed();
        let mut tokens = Vec::with_capacity(max_tokens);
        loop {
            let row = logits.squeeze(0).and_then(|row| row.to_vec1::<f32>()).map_err(ModelError::from)?;
            let next = argmax(&row).ok_or_else(|| ModelError("logits hold a NaN".into()))? as u32;
            tokens.push(next);
            let finish = if END_TOKENS.contains(&next) {
                Some(FinishReason::Stop)
            } else if tokens.len() == max_tokens {
                Some(FinishReason::Length)
            } else {
                None
            };
            if let Some(finish) = finish {
                let decode = started.elapsed() - prefill;
                return Ok(Generation { tokens, finish, prefill, decode });
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(CompletionError::Cancelled);
            }
            logits = self.model.forward(&[next], &mut cache, 0).map_err(ModelError::from)?;
        }
    }

    /// The logits of positions `from..tokens.len()` after one forward pass over `tokens` (all of them: the shared
    /// prefix is not used, so this measures a full prefill).
    pub fn logits(&self, tokens: &[u32], from: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut cache = self.model.new_cache();
        Ok(rows(&self.model.forward(tokens, &mut cache, from)?)?)
    }

    /// Teacher-forced scoring: ONE forward pass over `prompt` + `completion` (its last token needs no
    /// prediction of its own, so it is not fed; a prompt that starts with the shared prefix resumes after it)
    /// and, for every completion token, how it fares against the logits recomputed at its position.
    pub fn score(&self, prompt: &[u32], completion: &[u32]) -> Result<Vec<TokenScore>, ModelError> {
        let vocab = self.config().vocab;
        if prompt.is_empty() || completion.is_empty() {
            return Err(ModelError("scoring needs a prompt and a completion".into()));
        }
        if let Some(&bad) = completion.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError(format!("token {bad} is outside the vocabulary of {vocab}")));
        }
        let mut fed = Vec::with_capacity(prompt.len() + completion.len() - 1);
        fed.extend_from_slice(prompt);
        fed.extend_from_slice(&completion[..completion.len() - 1]);
        let (mut cache, skipped) = self.resume(&fed, prompt.len() - 1);
        let logits = self.model.forward(&fed[skipped..], &mut cache, prompt.len() - 1 - skipped)?;
        let mut tokens = completion.iter();
        map_rows(&logits, |row| {
            let token = *tokens.next().ok_or_else(|| ModelError("more logit rows than tokens".into()))?;
            score_row(row, token).ok_or_else(|| ModelError("logits hold a NaN".into()))
        })?
        .into_iter()
        .collect()
    }

    /// Runs job 0 on a request body: validates it, generates greedily, and returns the output bytes.
    pub fn complete(&self, body: &[u8]) -> Result<Vec<u8>, CompletionError> {
        let request = parse_request(body)?;
        self.complete_request(body, &request, &AtomicBool::new(false))
    }

    /// [`TextGen::complete`] on an already validated `request` (parsed from `body`), cancellable.
    pub fn complete_request(
        &self,
        body: &[u8],
        request: &ChatRequest,
        cancel: &AtomicBool,
    ) -> Result<Vec<u8>, CompletionError> {
        let prompt = self.prompt_tokens(request)?;
        let generation = self.generate_cancellable(&prompt, request.max_tokens, cancel)?;
        Ok(self.render_output(body, request, prompt.len(), &generation.tokens, generation.finish)?)
    }

    /// The output bytes an honest executor produces for `tokens` (end token included when `finish`
    /// is `stop`): the single definition of the output, used by the executor and the checker.
    pub fn render_output(
        &self,
        body: &[u8],
        request: &ChatRequest,
        prompt_tokens: usize,
        tokens: &[u32],
        finish: FinishReason,
    ) -> Result<Vec<u8>, ModelError> {
        let text_tokens = match (finish, tokens.split_last()) {
            (FinishReason::Stop, Some((last, rest))) if END_TOKENS.contains(last) => rest,
            _ => tokens,
        };
        let completion = ChatCompletion {
            id: completion_id(body),
            object: "chat.completion".into(),
            created: 0,
            model: request.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage { role: Role::Assistant, content: self.decode(text_tokens)? },
                finish_reason: finish,
            }],
            usage: Usage { prompt_tokens, completion_tokens: tokens.len(), total_tokens: prompt_tokens + tokens.len() },
            vouch: VouchExtension { tokens: tokens.to_vec(), profile: PROFILE.into() },
        };
        serde_json::to_vec(&completion).map_err(|e| ModelError(format!("serializing the output: {e}")))
    }
}

/// How `token` fares in one row of logits, in one pass over the row; `None` if the row holds a NaN (or is shorter
/// than `token`).
fn score_row(row: &[f32], token: u32) -> Option<TokenScore> {
    let claimed = *row.get(token as usize)?;
    let (mut best, mut top, mut rank) = (0, f32::NEG_INFINITY, 0);
    for (index, &value) in row.iter().enumerate() {
        if value.is_nan() {
            return None;
        }
        // The first largest value, as `argmax`.
        if value > top || index == 0 {
            (best, top) = (index, value);
        }
        rank += usize::from(value > claimed);
    }
    Some(TokenScore { token, argmax: best as u32, margin: top - claimed, rank })
}

/// The chat template from the GGUF metadata (`tokenizer.chat_template`), compiled with HF's Jinja
/// settings (`trim_blocks`, `lstrip_blocks`).
fn chat_template(content: &gguf_file::Content) -> Result<minijinja::Environment<'static>, LoadError> {
    let source = content
        .metadata
        .get("tokenizer.chat_template")
        .ok_or_else(|| LoadError::ChatTemplate("`tokenizer.chat_template` is missing from the GGUF".into()))?
        .to_string()
        .map_err(|e| LoadError::ChatTemplate(e.to_string()))?
        .clone();
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
    });
    env.add_template_owned("chat", source).map_err(|e| LoadError::ChatTemplate(e.to_string()))?;
    Ok(env)
}
