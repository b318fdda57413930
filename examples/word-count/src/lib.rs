//! The word-count blueprint: the worked example of `docs/blueprint-guide.md`.
//!
//! | job | name | inputs | output |
//! |---|---|---|---|
//! | 0 | `count` | `{"text": string}` (at most 16 KiB) | `{"words": n, "lines": n, "bytes": n}` |
//! | 1 | `top` | `{"text": string, "k": n}` (`k` optional, default 10, at most [`Config::max_k`]) | `{"top": [{"word": w, "count": n}, …]}` |
//!
//! Words are runs of characters between ASCII whitespace. `top` compares them with ASCII punctuation trimmed
//! from both ends and ASCII letters lowercased, and orders them by count, most frequent first, ties in byte
//! order of the word: every operator computes the same bytes.
//!
//! Depends on `vouch-sdk` only (never on the node), like every blueprint.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use vouch_sdk::{
    Blueprint, BoxFuture, Caller, Context, Exact, FromJobCall, JobCall, JobError, JobSpec, Json, Reject, Router,
    ServiceId, layers,
};

/// Job index of `count`.
pub const COUNT: u8 = 0;
/// Job index of `top`.
pub const TOP: u8 = 1;

/// Longest `text` either job accepts, in UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Longest raw inputs worth parsing: a JSON string escape takes at most 6 bytes per byte of text.
const MAX_INPUT_BYTES: usize = 6 * MAX_TEXT_BYTES + 64;

/// The jobs, by index. `blueprint.toml` declares the same names, prices and deadlines on chain.
pub const JOBS: &[JobSpec] = &[
    JobSpec {
        index: COUNT,
        name: "count",
        description: "Counts the words, lines and bytes of a text.",
        suggested_price: 1_000, // 0.001 vUSD (6 decimals)
        suggested_deadline_secs: 120,
    },
    JobSpec {
        index: TOP,
        name: "top",
        description: "Returns the k most frequent words of a text.",
        suggested_price: 2_000, // 0.002 vUSD
        suggested_deadline_secs: 120,
    },
];

/// The blueprint's settings: the router's state, which handlers read with [`Context<Config>`].
///
/// `max_k` decides which calls succeed, so every operator of a service must use the same value (one with a smaller
/// value refuses calls the others sign, and misses their deadlines); `timeout` and `max_concurrent_calls` only size
/// one operator's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest `k` that `top` accepts.
    pub max_k: usize,
    /// How long one call may run before it fails with `JobError::Timeout`.
    pub timeout: Duration,
    /// How many calls may run at once; more are refused with `JobError::Overloaded`.
    pub max_concurrent_calls: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_k: 100, timeout: Duration::from_secs(10), max_concurrent_calls: 64 }
    }
}

/// Why a call was refused. Every variant is the caller's fault, so it reaches the caller as `bad_input`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordCountError {
    /// The inputs are too long to hold a valid `text`.
    #[error(
        "inputs are {bytes} bytes; a text of at most {MAX_TEXT_BYTES} bytes never needs more than {MAX_INPUT_BYTES}"
    )]
    InputsTooLong {
        /// Length of the raw inputs.
        bytes: usize,
    },
    /// `text` is longer than [`MAX_TEXT_BYTES`].
    #[error("`text` is {bytes} bytes; at most {MAX_TEXT_BYTES} are allowed")]
    TextTooLong {
        /// Length of the text.
        bytes: usize,
    },
    /// `k` is 0 or above [`Config::max_k`].
    #[error("`k` is {k}; it must be between 1 and {max_k}")]
    KOutOfRange {
        /// The `k` asked for.
        k: usize,
        /// The largest `k` allowed.
        max_k: usize,
    },
}

impl From<WordCountError> for JobError {
    fn from(error: WordCountError) -> Self {
        JobError::BadInput(error.to_string())
    }
}

impl From<WordCountError> for Reject {
    fn from(error: WordCountError) -> Self {
        Reject(error.into())
    }
}

/// Inputs of `count`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountInput {
    /// The text, at most [`MAX_TEXT_BYTES`].
    pub text: String,
}

/// Inputs of `top`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopInput {
    /// The text, at most [`MAX_TEXT_BYTES`].
    pub text: String,
    /// How many words to return.
    #[serde(default = "default_k")]
    pub k: usize,
}

fn default_k() -> usize {
    10
}

// A custom extractor validates the inputs once, before the handler runs; a rejection is `bad_input`.
impl<S> FromJobCall<S> for CountInput {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        let input: Self = parse_bounded(call)?;
        check_text(&input.text)?;
        Ok(input)
    }
}

impl<S> FromJobCall<S> for TopInput {
    fn from_job_call(call: &JobCall, _state: &S) -> Result<Self, JobError> {
        let input: Self = parse_bounded(call)?;
        check_text(&input.text)?;
        Ok(input)
    }
}

/// Parses the inputs with the SDK's [`Json`] extractor, after refusing inputs too long to be valid.
fn parse_bounded<T: DeserializeOwned>(call: &JobCall) -> Result<T, JobError> {
    if call.inputs.len() > MAX_INPUT_BYTES {
        return Err(WordCountError::InputsTooLong { bytes: call.inputs.len() }.into());
    }
    let Json(input) = Json::<T>::from_job_call(call, &())?;
    Ok(input)
}

fn check_text(text: &str) -> Result<(), WordCountError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(WordCountError::TextTooLong { bytes: text.len() });
    }
    Ok(())
}

/// Output of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Runs of characters between ASCII whitespace.
    pub words: u64,
    /// Lines, as [`str::lines`] counts them (a final line break starts no new line).
    pub lines: u64,
    /// UTF-8 bytes.
    pub bytes: u64,
}

/// Output of `top`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Top {
    /// At most `k` words, most frequent first, ties in byte order of the word.
    pub top: Vec<TopWord>,
}

/// One word of [`Top`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopWord {
    /// The word, ASCII punctuation trimmed, ASCII letters lowercased.
    pub word: String,
    /// How many times it occurs.
    pub count: u64,
}

/// Job 0: counts words, lines and bytes. It cannot fail once its input is extracted.
pub async fn count(input: CountInput) -> Json<Counts> {
    let text = input.text;
    Json(Counts {
        words: text.split_ascii_whitespace().count() as u64,
        lines: text.lines().count() as u64,
        bytes: text.len() as u64,
    })
}

/// Job 1: the `k` most frequent words. `k` is checked against [`Config::max_k`].
pub async fn top(
    input: TopInput,
    Context(config): Context<Config>,
    Caller(payer): Caller,
) -> Result<Json<Top>, Reject> {
    if input.k == 0 || input.k > config.max_k {
        return Err(WordCountError::KOutOfRange { k: input.k, max_k: config.max_k }.into());
    }
    // A BTreeMap, not a HashMap: iteration order must not depend on a random seed.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for word in input.text.split_ascii_whitespace() {
        let word = word.trim_matches(|c: char| c.is_ascii_punctuation());
        if !word.is_empty() {
            *counts.entry(word.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut top: Vec<TopWord> = counts.into_iter().map(|(word, count)| TopWord { word, count }).collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    top.truncate(input.k);
    tracing::debug!(%payer, k = input.k, words = top.len(), "top words");
    Ok(Json(Top { top }))
}

/// The word-count jobs, routed, with their verifiers and layers, given the `config`.
pub fn router(config: Config) -> Router {
    Router::<Config>::new()
        .route(COUNT, count)
        .route(TOP, top)
        .verifier(COUNT, Exact) // `Exact` is the default; spelled out because both jobs are deterministic
        .verifier(TOP, Exact)
        .layer(layers::timeout(config.timeout))
        .layer(layers::concurrency_limit(config.max_concurrent_calls))
        .layer(layers::trace())
        .with_state(config)
}

/// The word-count blueprint, for the node.
#[derive(Clone, Copy, Debug, Default)]
pub struct WordCount {
    /// The settings its router runs with.
    pub config: Config,
}

impl Blueprint for WordCount {
    fn name(&self) -> &str {
        "word-count"
    }

    fn router(&self) -> Router {
        router(self.config)
    }

    fn jobs(&self) -> Vec<JobSpec> {
        JOBS.to_vec()
    }

    fn on_service_activated(&self, service_id: ServiceId) -> BoxFuture<'static, Result<(), JobError>> {
        let config = self.config;
        Box::pin(async move {
            // Nothing to load; refuse to serve with settings that would reject every call.
            if config.max_k == 0 || config.max_concurrent_calls == 0 || config.timeout.is_zero() {
                return Err(JobError::Handler(format!(
                    "service {}: unusable word-count config {config:?}",
                    service_id.0
                )));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
