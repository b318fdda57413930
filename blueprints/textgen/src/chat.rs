//! The OpenAI-compatible request and response of job 0, and their bounds.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files::hex;

/// Largest request body accepted, in bytes (checked before parsing).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Most messages in one request.
pub const MAX_MESSAGES: usize = 64;
/// Most characters (Unicode scalar values) over all message contents.
pub const MAX_CONTENT_CHARS: usize = 16 * 1024;
/// Most prompt tokens once the chat template is applied (the model's context is 8192; this bounds
/// the cost of one call).
pub const MAX_PROMPT_TOKENS: usize = 1024;
/// Completion tokens when the request names none.
pub const DEFAULT_MAX_TOKENS: usize = 64;
/// Most completion tokens a request may ask for.
pub const MAX_TOKENS_LIMIT: usize = 256;
/// Longest `model` name accepted.
const MAX_MODEL_CHARS: usize = 128;
/// Longest `user` accepted.
const MAX_USER_CHARS: usize = 256;

/// The model names a request may give (compared ignoring ASCII case); the output repeats the
/// request's spelling.
pub const MODEL_NAMES: &[&str] = &["smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"];

/// Chat-control markers a message may not contain: the tokenizer would turn them into control tokens
/// and let one message forge others.
pub const RESERVED_MARKERS: &[&str] = &["<|im_start|>", "<|im_end|>", "<|endoftext|>"];

/// Why a request is refused. Every variant is the caller's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_REQUEST_BYTES`].
    #[error("the request is {bytes} bytes; at most {MAX_REQUEST_BYTES} are accepted")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// The body is not the expected JSON.
    #[error("{0}")]
    Json(String),
    /// `model` names another model.
    #[error("`model` is {0:?}; this blueprint serves only {MODEL_NAMES:?}")]
    UnknownModel(String),
    /// `messages` is empty.
    #[error("`messages` is empty; at least one message is needed")]
    NoMessages,
    /// Too many messages.
    #[error("`messages` has {count} messages; at most {MAX_MESSAGES} are accepted")]
    TooManyMessages {
        /// How many there are.
        count: usize,
    },
    /// The message contents are too long in total.
    #[error("the messages hold {chars} characters in total; at most {MAX_CONTENT_CHARS} are accepted")]
    ContentTooLong {
        /// Their total length.
        chars: usize,
    },
    /// A message contains a chat-control marker.
    #[error("`messages[{index}].content` contains the reserved marker `{marker}`")]
    ReservedMarker {
        /// The message.
        index: usize,
        /// The marker found.
        marker: &'static str,
    },
    /// A sampling parameter asks for something other than greedy decoding.
    #[error("`{field}` is {value}; only greedy decoding is supported ({expected})")]
    NotGreedy {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// An option this blueprint does not implement.
    #[error("`{field}` is not supported: {why}")]
    Unsupported {
        /// The field.
        field: &'static str,
        /// Why.
        why: &'static str,
    },
    /// `max_tokens` / `max_completion_tokens` out of range.
    #[error("`{field}` is {value}; it must be between 1 and {MAX_TOKENS_LIMIT}")]
    MaxTokens {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// Both token limits given, with different values.
    #[error("`max_tokens` ({0}) and `max_completion_tokens` ({1}) differ; give one")]
    MaxTokensConflict(u64, u64),
    /// A field is too long.
    #[error("`{field}` is {chars} characters; at most {max} are accepted")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The prompt is too long once the chat template is applied.
    #[error("the prompt is {tokens} tokens once templated; at most {MAX_PROMPT_TOKENS} are accepted")]
    PromptTooLong {
        /// Its length in tokens.
        tokens: usize,
    },
}

/// A message's author.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The user.
    User,
    /// The assistant (earlier turns).
    Assistant,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text (a plain string; content parts are not supported).
    pub content: String,
}

/// The JSON body as sent: the subset of OpenAI's `POST /v1/chat/completions` this blueprint accepts.
/// Unknown fields are refused rather than silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stop: Option<serde_json::Value>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    user: Option<String>,
}

/// A validated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRequest {
    /// The model name, as the request spelled it.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Most completion tokens to generate (end token included).
    pub max_tokens: usize,
}

/// Parses and validates a request body. Cheap: no model needed (the prompt length is checked once
/// the prompt is tokenized).
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge { bytes: body.len() });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let raw: RawRequest = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            RequestError::Json(format!("the request is not the expected JSON: {}", error.into_inner()))
        } else {
            RequestError::Json(format!("at `{path}`: {}", error.into_inner()))
        }
    })?;
    deserializer.end().map_err(|e| RequestError::Json(format!("bytes after the JSON value: {e}")))?;

    if raw.model.chars().count() > MAX_MODEL_CHARS {
        return Err(RequestError::FieldTooLong {
            field: "model",
            chars: raw.model.chars().count(),
            max: MAX_MODEL_CHARS,
        });
    }
    if !MODEL_NAMES.iter().any(|name| name.eq_ignore_ascii_case(&raw.model)) {
        return Err(RequestError::UnknownModel(raw.model));
    }
    if let Some(user) = &raw.user {
        let chars = user.chars().count();
        if chars > MAX_USER_CHARS {
            return Err(RequestError::FieldTooLong { field: "user", chars, max: MAX_USER_CHARS });
        }
    }
    if raw.messages.is_empty() {
        return Err(RequestError::NoMessages);
    }
    if raw.messages.len() > MAX_MESSAGES {
        return Err(RequestError::TooManyMessages { count: raw.messages.len() });
    }
    let chars: usize = raw.messages.iter().map(|m| m.content.chars().count()).sum();
    if chars > MAX_CONTENT_CHARS {
        return Err(RequestError::ContentTooLong { chars });
    }
    for (index, message) in raw.messages.iter().enumerate() {
        if let Some(marker) = RESERVED_MARKERS.iter().find(|marker| message.content.contains(*marker)) {
            return Err(RequestError::ReservedMarker { index, marker });
        }
    }
    if let Some(t) = raw.temperature
        && t != 0.0
    {
        return Err(RequestError::NotGreedy { field: "temperature", value: t.to_string(), expected: "0 or absent" });
    }
    if let Some(n) = raw.n
        && n != 1
    {
        return Err(RequestError::NotGreedy { field: "n", value: n.to_string(), expected: "1 or absent" });
    }
    for (field, value) in [("presence_penalty", raw.presence_penalty), ("frequency_penalty", raw.frequency_penalty)] {
        if let Some(value) = value
            && value != 0.0
        {
            return Err(RequestError::NotGreedy { field, value: value.to_string(), expected: "0 or absent" });
        }
    }
    // `top_p` and `seed` change nothing under greedy decoding; they are accepted and ignored.
    let _ = (raw.top_p, raw.seed);
    if raw.stream == Some(true) {
        return Err(RequestError::Unsupported {
            field: "stream",
            why: "the result is signed whole; send false or omit it",
        });
    }
    match &raw.stop {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Array(items)) if items.is_empty() => {}
        Some(_) => {
            return Err(RequestError::Unsupported {
                field: "stop",
                why: "generation stops at the end-of-turn token or `max_tokens` only",
            });
        }
    }
    let max_tokens = match (raw.max_tokens, raw.max_completion_tokens) {
        (Some(a), Some(b)) if a != b => return Err(RequestError::MaxTokensConflict(a, b)),
        (Some(value), _) => check_max_tokens("max_tokens", value)?,
        (None, Some(value)) => check_max_tokens("max_completion_tokens", value)?,
        (None, None) => DEFAULT_MAX_TOKENS,
    };
    Ok(ChatRequest { model: raw.model, messages: raw.messages, max_tokens })
}

fn check_max_tokens(field: &'static str, value: u64) -> Result<usize, RequestError> {
    match usize::try_from(value) {
        Ok(v) if (1..=MAX_TOKENS_LIMIT).contains(&v) => Ok(v),
        _ => Err(RequestError::MaxTokens { field, value }),
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model produced an end token (the last completion token).
    Stop,
    /// `max_tokens` completion tokens were produced without an end token.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// The output of job 0: an OpenAI `chat.completion` object, plus the `vouch` extension. Fields are
/// serialized in this order, compactly: honest operators produce identical bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-` and the first 24 hex digits of sha256(request body bytes).
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Always 0: a timestamp would differ between operators.
    pub created: u64,
    /// The request's `model`, as spelled there.
    pub model: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
    /// What verifiers need.
    pub vouch: VouchExtension,
}

/// The one choice of a [`ChatCompletion`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The assistant's message.
    pub message: AssistantMessage,
    /// `stop` or `length`.
    pub finish_reason: FinishReason,
}

/// The generated message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: Role,
    /// The completion tokens decoded, end token excluded.
    pub content: String,
}

/// Token counts, as OpenAI reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the templated prompt.
    pub prompt_tokens: usize,
    /// Completion tokens, end token included.
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}

/// The `vouch` field of a [`ChatCompletion`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VouchExtension {
    /// The completion token ids, end token included: what verifiers check, without re-tokenizing.
    pub tokens: Vec<u32>,
    /// The execution profile ([`PROFILE`](crate::PROFILE)).
    pub profile: String,
}

/// The deterministic completion id of a request body.
pub fn completion_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("chatcmpl-{}", &hex(&digest)[..24])
}
