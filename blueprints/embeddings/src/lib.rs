//! The embeddings blueprint: OpenAI-compatible sentence embeddings with all-MiniLM-L6-v2 (384 dimensions), run in
//! candle on the CPU, and verified between operators with a tolerance ([`EmbeddingTolerance`]).
//!
//! One job, [`EMBED`] (index 0): its inputs are the body of an OpenAI `POST /v1/embeddings` request
//! (`{"model": "all-MiniLM-L6-v2", "input": string | [string], "encoding_format"?: "float"}`), its output the
//! OpenAI response object (`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[…]}],
//! "model":…,"usage":{…}}`), with nothing that varies between runs (no id, no timestamp). The embeddings follow
//! the sentence-transformers recipe (truncation to 256 tokens, mean pooling over the attention mask, L2
//! normalisation) and match sentence-transformers on PyTorch within 2.5e-7 per dimension (measured; `tests/golden.json`).
//!
//! The model files come from `scripts/fetch-models.sh` (`$VOUCH_MODELS/all-minilm-l6-v2`, default
//! `~/.cache/vouch/models`) and are checked against pinned sha256s when they load: the execution profile is the
//! weights, the tokenizer, this crate's forward pass, and the verifier's thresholds. `README.md` beside this crate
//! records the measurements behind the thresholds and the batching.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use vouch_embeddings::{EMBED, Embedder, router_with};
//! use vouch_sdk::{Address, CallId, JobCall, ServiceId};
//!
//! let embedder = Embedder::shared(); // loads the pinned model once, on its worker thread
//! embedder.ready().await?;
//! let router = router_with(embedder);
//! let body = r#"{"model":"all-MiniLM-L6-v2","input":["a sentence","another one"]}"#;
//! let output = router.call(JobCall::new(ServiceId(1), CallId::from(1), EMBED, Address::ZERO, body)).await?;
//! assert!(output.bytes.starts_with(br#"{"object":"list","data":[{"object":"embedding","index":0,"#));
//! # Ok(())
//! # }
//! ```

mod batcher;
mod kernels;
mod model;
mod openai;
mod verifier;

use std::time::Duration;

use vouch_sdk::{Blueprint, BoxFuture, Context, JobError, JobSpec, Json, Reject, Router, ServiceId, layers};

pub use batcher::{BatcherConfig, BatcherStats, Embedded, Embedder};
pub use model::{
    CONFIG_SHA256, DIMENSIONS, EmbedError, Implementation, LoadOptions, MAX_INPUT_CHARS, MAX_INPUTS, MAX_SEQ_LENGTH,
    MODEL_DIR, MODEL_SHA256, MiniLm, ModelFiles, TOKENIZER_SHA256, WeightPrecision, check_inputs,
};
pub use openai::{
    EmbeddingData, EmbeddingsRequest, EmbeddingsResponse, MAX_REQUEST_BYTES, MODEL_NAMES, RequestError, Usage,
};
pub use verifier::{Comparison, EmbeddingTolerance, MAX_ABS_DIFF, MIN_COSINE, compare};

/// Threads candle uses for matrix products: `RAYON_NUM_THREADS` if set, else the machine's physical cores. The
/// embeddings do not depend on it (measured bit-identical with 1, 2 and 3 threads).
pub fn compute_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// The instruction set the fused kernels run with on this CPU: `"avx512"`, `"avx2"` or `"baseline"` (picked at
/// run time; each gives the same embeddings within float rounding).
pub fn kernel_isa() -> &'static str {
    kernels::Isa::detect().name()
}

/// Job index of `embed`.
pub const EMBED: u8 = 0;

/// How long one call may run before it fails with `timeout` (queueing behind other calls included).
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// Most calls queued or running at once; beyond that a call is refused with `overloaded` at once.
pub const MAX_CONCURRENT_CALLS: usize = 256;

/// The jobs of the embeddings blueprint, by index.
pub const JOBS: &[JobSpec] = &[JobSpec {
    index: EMBED,
    name: "embed",
    description: "OpenAI-compatible embeddings (a POST /v1/embeddings body in, the response object out) with \
                  all-MiniLM-L6-v2, 384 dimensions.",
    suggested_price: 1_000, // 0.001 vUSD (6 decimals) per call of up to 256 inputs
    suggested_deadline_secs: 120,
}];

/// The router over the process-wide [`Embedder::shared`]: the pinned model from its default location, loaded once
/// on its worker thread (this returns at once). If the model cannot load, every call fails with a
/// `handler_error` that names `scripts/fetch-models.sh`; [`EmbeddingsBlueprint`] refuses to serve a service then.
pub fn router() -> Router {
    router_with(Embedder::shared())
}

/// The router over `embedder`: job [`EMBED`] with the [`EmbeddingTolerance`] verifier, a [`TIMEOUT`] and a limit of
/// [`MAX_CONCURRENT_CALLS`].
pub fn router_with(embedder: Embedder) -> Router {
    Router::<Embedder>::new()
        .route(EMBED, embed)
        .verifier(EMBED, EmbeddingTolerance::default())
        .layer(layers::timeout(TIMEOUT))
        .layer(layers::concurrency_limit(MAX_CONCURRENT_CALLS))
        .layer(layers::trace())
        .with_state(embedder)
}

/// Job 0: embeds the request's inputs (merged with concurrent calls' by the [`Embedder`]) and answers the OpenAI
/// response object. Bounds on the inputs are `bad_input`; a model that cannot run is `handler_error`.
pub async fn embed(
    request: EmbeddingsRequest,
    Context(embedder): Context<Embedder>,
) -> Result<Json<EmbeddingsResponse>, Reject> {
    let embedded = embedder.embed(request.input).await.map_err(|error| {
        let error = if error.is_caller_fault() {
            JobError::BadInput(error.to_string())
        } else {
            JobError::Handler(error.to_string())
        };
        Reject(error)
    })?;
    // serde_json would write a non-finite float as `null`: refuse rather than sign that.
    if embedded.embeddings.iter().flatten().any(|value| !value.is_finite()) {
        return Err(Reject(JobError::Handler("the model produced a non-finite embedding".to_owned())));
    }
    Ok(Json(EmbeddingsResponse::new(request.model, embedded.embeddings, &embedded.tokens)))
}

/// The embeddings blueprint, for the node.
#[derive(Clone, Debug)]
pub struct EmbeddingsBlueprint {
    embedder: Embedder,
}

impl EmbeddingsBlueprint {
    /// The blueprint over `embedder`.
    pub fn new(embedder: Embedder) -> Self {
        Self { embedder }
    }
}

impl Default for EmbeddingsBlueprint {
    /// The blueprint over [`Embedder::shared`].
    fn default() -> Self {
        Self::new(Embedder::shared())
    }
}

impl Blueprint for EmbeddingsBlueprint {
    fn name(&self) -> &str {
        "embeddings"
    }

    fn router(&self) -> Router {
        router_with(self.embedder.clone())
    }

    fn jobs(&self) -> Vec<JobSpec> {
        JOBS.to_vec()
    }

    /// Waits for the model to load; an operator without the pinned model does not serve the service.
    fn on_service_activated(&self, service_id: ServiceId) -> BoxFuture<'static, Result<(), JobError>> {
        let embedder = self.embedder.clone();
        Box::pin(async move {
            embedder.ready().await.map_err(|error| JobError::Handler(format!("service {}: {error}", service_id.0)))
        })
    }
}
