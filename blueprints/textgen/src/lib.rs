//! The text-generation blueprint: SmolLM2-135M-Instruct in candle, greedy decoding, verified by
//! teacher-forced re-prefill.
//!
//! | job | name | inputs | output |
//! |---|---|---|---|
//! | 0 | `chat` | an OpenAI `POST /v1/chat/completions` body (greedy, not streamed) | an OpenAI `chat.completion` object with a `vouch` field: the completion token ids and the profile |
//!
//! **Executor.** [`TextGen::complete`] renders the GGUF's chat template, tokenizes with the pinned
//! `tokenizer.json`, and generates greedily under the pinned profile ([`PROFILE`]: the shipped Q4_1
//! weights re-quantized to Q8_0 at load) until `<|im_end|>`/`<|endoftext|>` or `max_tokens`. The
//! output is fully deterministic (`created` is 0, the id is a hash of the request).
//!
//! **Verifier.** [`check_completion`] (or [`check`], on a blocking thread) recomputes the prompt from
//! the request, runs ONE forward pass over prompt + claimed tokens, and accepts iff every claimed
//! token is within [`TOLERANCE`] of the recomputed greedy choice at its position, the stop rule holds,
//! and every other field (content = decoded tokens, usage, id, …) is what the request and the tokens
//! determine. Honest operators on other kernels pass; a different model, a truncated or tampered
//! generation, or an answer to another prompt is rejected with the position and the reason.
//!
//! The model files come from `scripts/fetch-models.sh` (see [`ModelFiles::locate`]); both are
//! checked against their pinned sha256 at load. See `README.md` for the measurements behind δ and k.

mod chat;
mod check;
mod files;
mod llama;
mod model;
mod ops;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use chat::{
    AssistantMessage, ChatCompletion, ChatRequest, Choice, DEFAULT_MAX_TOKENS, FinishReason, MAX_CONTENT_CHARS,
    MAX_MESSAGES, MAX_PROMPT_TOKENS, MAX_REQUEST_BYTES, MAX_TOKENS_LIMIT, MODEL_NAMES, Message, RESERVED_MARKERS,
    RequestError, Role, Usage, VouchExtension, completion_id, parse_request,
};
pub use check::{
    CheckError, CheckReport, MAX_OUTPUT_BYTES, RejectReason, Rejection, TOLERANCE, Tolerance, check, check_completion,
    check_completion_with,
};
pub use files::{GGUF_FILE, GGUF_SHA256, MODELS_ENV, ModelFiles, TOKENIZER_FILE, TOKENIZER_SHA256};
pub use llama::{LlamaConfig, LoadOptions, WeightFormat};
pub use model::{
    CompletionError, DEFAULT_SYSTEM_MESSAGE, END_OF_TEXT, END_TOKENS, Generation, IM_END, ModelError, TextGen,
    TokenScore,
};

use vouch_sdk::{
    Agreement, Blueprint, BoxFuture, Bytes, Claimed, Context, FromJobCall, Inputs, JobCall, JobError, JobSpec, Reject,
    Router, ServiceId, layers,
};

/// Job index of `chat`.
pub const CHAT: u8 = 0;

/// The execution profile every output names and every checker requires: model and tokenizer (by
/// sha256 prefix), weight format, decoding, version of the arithmetic and output format.
///
/// `v2`: prefills and the checker's pass resume after the cached keys and values of the default system turn
/// (`TextGen`'s shared prefix), which changes the last bits of the attention products and so, through the
/// activation quantization, can change an output at a near tie; the matrix kernels are those of `v1` (Q8_0 on
/// candle's repacked kernel, padded to 768; decode unchanged).
pub const PROFILE: &str =
    "smollm2-135m-instruct;gguf=b179c9523d0e6a0f;tokenizer=bf346d64f6f0fbce;weights=q8_0;greedy;v2";

/// Longest a call may run before the node gives up on it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Calls one operator runs at once (generation already uses every core).
pub const MAX_CONCURRENT_CALLS: usize = 2;

/// The jobs of the textgen blueprint, by index.
pub const JOBS: &[JobSpec] = &[JobSpec {
    index: CHAT,
    name: "chat",
    description: "OpenAI-compatible chat completion with SmolLM2-135M-Instruct, greedy, verified by teacher-forced re-prefill.",
    suggested_price: 10_000, // 0.01 vUSD (6 decimals)
    suggested_deadline_secs: 300,
}];

/// Why the model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Neither `$VOUCH_MODELS` nor `$HOME` is set.
    #[error("neither $VOUCH_MODELS nor $HOME is set: cannot find the models; run scripts/fetch-models.sh")]
    NoModelsDir,
    /// A model file is missing.
    #[error("{} is missing; run scripts/fetch-models.sh (it honours $VOUCH_MODELS)", path.display())]
    Missing {
        /// The file.
        path: std::path::PathBuf,
    },
    /// A model file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model file is not the pinned one.
    #[error("{} has sha256 {actual}, pinned {expected}; run scripts/fetch-models.sh again", path.display())]
    Sha256Mismatch {
        /// The file.
        path: std::path::PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The GGUF file is not the expected model.
    #[error("GGUF: {0}")]
    Gguf(String),
    /// The tokenizer is unusable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template is missing or does not compile.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// candle failed while building the model.
    #[error("building the model: {0}")]
    Candle(#[from] candle_core::Error),
    /// The loading task was lost.
    #[error("loading the model was interrupted: {0}")]
    Interrupted(String),
}

/// The router's state: the model, loaded once on first use (or given), shared by every call.
#[derive(Clone, Debug)]
pub struct TextGenState {
    cell: Arc<tokio::sync::OnceCell<Arc<TextGen>>>,
    files: Option<ModelFiles>,
}

impl TextGenState {
    /// Loads the pinned profile from [`ModelFiles::locate`] on first use. A failed load is retried
    /// by the next call.
    pub fn lazy() -> Self {
        Self { cell: Arc::new(tokio::sync::OnceCell::new()), files: None }
    }

    /// Loads the pinned profile from `files` on first use.
    pub fn lazy_from(files: ModelFiles) -> Self {
        Self { cell: Arc::new(tokio::sync::OnceCell::new()), files: Some(files) }
    }

    /// Serves `model` (already loaded).
    pub fn with_model(model: Arc<TextGen>) -> Self {
        Self { cell: Arc::new(tokio::sync::OnceCell::new_with(Some(model))), files: None }
    }

    /// The model, loading it on a blocking thread the first time.
    pub async fn model(&self) -> Result<Arc<TextGen>, LoadError> {
        let files = self.files.clone();
        self.cell
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    let files = match files {
                        Some(files) => files,
                        None => ModelFiles::locate()?,
                    };
                    TextGen::load_with(&files, &LoadOptions::default()).map(Arc::new)
                })
                .await
                .map_err(|e| LoadError::Interrupted(e.to_string()))?
            })
            .await
            .cloned()
    }

    /// Checks a claimed output of job [`CHAT`] for the request `inputs` (see [`check_completion`]),
    /// on a blocking thread, loading the model first if needed. For `Router::checker` and the node.
    pub async fn check(&self, inputs: Bytes, claimed: Bytes) -> Result<CheckReport, CheckError> {
        let model = self.model().await.map_err(|e| CheckError::Internal(e.to_string()))?;
        check(model, inputs, claimed).await
    }
}

/// The inputs of job [`CHAT`], validated before the handler runs (the prompt's token count is
/// checked once it is tokenized).
#[derive(Clone, Debug)]
pub struct ChatInput {
    /// The raw body (its hash is the completion id).
    pub body: Bytes,
    /// The validated request.
    pub request: ChatRequest,
}

impl<S> FromJobCall<S> for ChatInput {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        let request = parse_request(&call.inputs).map_err(|e| JobError::BadInput(e.to_string()))?;
        Ok(Self { body: call.inputs.clone(), request })
    }
}

/// Sets a flag when dropped: the blocking generation stops at its next token once the call's
/// future is gone (timeout, node shutdown).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Job 0: an OpenAI chat completion, greedy, under the pinned profile. Runs on a blocking thread.
pub async fn chat(Context(state): Context<TextGenState>, input: ChatInput) -> Result<Vec<u8>, Reject> {
    let model = state.model().await.map_err(|e| Reject(JobError::Handler(e.to_string())))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let result =
        tokio::task::spawn_blocking(move || model.complete_request(&input.body, &input.request, &cancel)).await;
    match result {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(CompletionError::Request(e))) => Err(Reject(JobError::BadInput(e.to_string()))),
        Ok(Err(e)) => Err(Reject(JobError::Handler(e.to_string()))),
        Err(e) => Err(Reject(JobError::Handler(format!("generation task lost: {e}")))),
    }
}

/// The checker of job [`CHAT`] (a [`Verification::Checked`](vouch_sdk::Verification::Checked) job): one
/// teacher-forced forward pass over prompt + claimed completion under the pinned profile ([`check_completion`],
/// [`TOLERANCE`]). A wrong output is a disagreement with its position and reason; a check that cannot run (model
/// failure) is a job error, never an agreement.
pub async fn check_chat(
    Context(state): Context<TextGenState>,
    Inputs(inputs): Inputs,
    Claimed(claimed): Claimed,
) -> Result<Agreement, JobError> {
    match state.check(inputs, claimed).await {
        Ok(_) => Ok(Agreement::Agree),
        Err(CheckError::Rejected(rejection)) => Ok(Agreement::disagree(rejection.to_string())),
        Err(CheckError::Internal(error)) => Err(JobError::Handler(error)),
    }
}

/// The textgen jobs, routed, with the model loaded on first use from [`ModelFiles::locate`].
pub fn router() -> Router {
    router_with_state(TextGenState::lazy())
}

/// The textgen jobs, routed, serving `state`'s model.
pub fn router_with_state(state: TextGenState) -> Router {
    Router::<TextGenState>::new()
        .route(CHAT, chat)
        .checker(CHAT, check_chat)
        .layer(layers::timeout(CALL_TIMEOUT))
        .layer(layers::concurrency_limit(MAX_CONCURRENT_CALLS))
        .layer(layers::trace())
        .with_state(state)
}

/// The textgen blueprint, for the node: loads (and checks) the model when a service is activated.
#[derive(Clone, Debug)]
pub struct TextGenBlueprint {
    state: TextGenState,
}

impl Default for TextGenBlueprint {
    fn default() -> Self {
        Self { state: TextGenState::lazy() }
    }
}

impl TextGenBlueprint {
    /// The blueprint serving `state`'s model.
    pub fn new(state: TextGenState) -> Self {
        Self { state }
    }

    /// Its state (the shared model), for a checker.
    pub fn state(&self) -> &TextGenState {
        &self.state
    }
}

impl Blueprint for TextGenBlueprint {
    fn name(&self) -> &str {
        "textgen"
    }

    fn router(&self) -> Router {
        router_with_state(self.state.clone())
    }

    fn jobs(&self) -> Vec<JobSpec> {
        JOBS.to_vec()
    }

    fn on_service_activated(&self, service_id: ServiceId) -> BoxFuture<'static, Result<(), JobError>> {
        let state = self.state.clone();
        Box::pin(async move {
            state
                .model()
                .await
                .map(|_| ())
                .map_err(|e| JobError::Handler(format!("service {}: cannot serve textgen: {e}", service_id.0)))
        })
    }
}

#[cfg(test)]
mod tests;
