//! The job's inputs and output: OpenAI's `POST /v1/embeddings` request body and response object.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vouch_sdk::{FromJobCall, JobCall, JobError, Json};

use crate::model::{DIMENSIONS, MAX_INPUTS};

/// Model names a request may give (`model`), echoed in the response. Any other name is refused rather than
/// silently answered with this model.
pub const MODEL_NAMES: &[&str] = &["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"];

/// Largest request body accepted, in bytes: room for [`MAX_INPUTS`] inputs of
/// [`MAX_INPUT_CHARS`](crate::MAX_INPUT_CHARS) characters of plain text. Longer bodies are refused before parsing.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Why a request was refused. Every variant is the caller's fault, so it reaches the caller as `bad_input`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is longer than [`MAX_REQUEST_BYTES`].
    #[error("the request is {bytes} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its length.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// `model` is not one of [`MODEL_NAMES`].
    #[error("`model` is {0:?}; this service embeds with all-MiniLM-L6-v2: send \"all-MiniLM-L6-v2\"")]
    UnknownModel(String),
    /// `input` holds token ids.
    #[error(
        "`input` holds token ids; this service accepts text only: send a string or an array of strings (it \
         tokenizes with all-MiniLM-L6-v2's own tokenizer)"
    )]
    TokenArrays,
    /// `input` is neither a string nor an array.
    #[error("`input` must be a string or an array of strings, not {0}")]
    InputType(&'static str),
    /// An element of `input` is not a string.
    #[error("`input[{index}]` is {kind}; every element must be a string")]
    InputElement {
        /// Its position.
        index: usize,
        /// What it is.
        kind: &'static str,
    },
    /// `input` is an empty array.
    #[error("`input` is an empty array: send at least one string")]
    NoInputs,
    /// More than [`MAX_INPUTS`] inputs.
    #[error("`input` has {count} strings; at most {max} are accepted in one call")]
    TooManyInputs {
        /// Strings given.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// `encoding_format` is `"base64"`.
    #[error(
        "`encoding_format` \"base64\" is not supported: send \"float\" or omit it (the OpenAI Python client sends \
         base64 unless told `encoding_format=\"float\"`)"
    )]
    Base64,
    /// `encoding_format` is something else.
    #[error("`encoding_format` is {0:?}; the only supported value is \"float\"")]
    EncodingFormat(String),
    /// `dimensions` is not 384.
    #[error(
        "`dimensions` is {0}; all-MiniLM-L6-v2 embeddings have exactly {DIMENSIONS} (omit it or send {DIMENSIONS})"
    )]
    Dimensions(u64),
}

impl From<RequestError> for JobError {
    fn from(error: RequestError) -> Self {
        JobError::BadInput(error.to_string())
    }
}

/// The request body as sent; see [`EmbeddingsRequest`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u64>,
    /// OpenAI's end-user id: accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

/// A checked `POST /v1/embeddings` request: `{"model": string, "input": string | [string],
/// "encoding_format"?: "float", "dimensions"?: 384, "user"?: string}`.
///
/// Refused (as `bad_input`, with the reason): unknown fields, a `model` not in [`MODEL_NAMES`], token-id inputs,
/// `encoding_format` other than `"float"`, `dimensions` other than 384, no inputs or more than [`MAX_INPUTS`].
/// The length of each text is checked when it is embedded ([`check_inputs`](crate::check_inputs)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingsRequest {
    /// The model name, as given (echoed in the response).
    pub model: String,
    /// The texts, in order; a single string is one input.
    pub input: Vec<String>,
}

impl EmbeddingsRequest {
    /// Checks a parsed request body.
    fn from_raw(raw: RawRequest) -> Result<Self, RequestError> {
        if !MODEL_NAMES.contains(&raw.model.as_str()) {
            return Err(RequestError::UnknownModel(raw.model));
        }
        match raw.encoding_format.as_deref() {
            None | Some("float") => {}
            Some("base64") => return Err(RequestError::Base64),
            Some(other) => return Err(RequestError::EncodingFormat(other.to_owned())),
        }
        if let Some(dimensions) = raw.dimensions.filter(|&dimensions| dimensions != DIMENSIONS as u64) {
            return Err(RequestError::Dimensions(dimensions));
        }
        let input = match raw.input {
            Value::String(text) => vec![text],
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(RequestError::NoInputs);
                }
                if items.iter().all(|item| matches!(item, Value::Number(_) | Value::Array(_))) {
                    return Err(RequestError::TokenArrays);
                }
                if items.len() > MAX_INPUTS {
                    return Err(RequestError::TooManyInputs { count: items.len(), max: MAX_INPUTS });
                }
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| match item {
                        Value::String(text) => Ok(text),
                        other => Err(RequestError::InputElement { index, kind: kind(&other) }),
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(RequestError::InputType(kind(&other))),
        };
        Ok(Self { model: raw.model, input })
    }
}

/// What a JSON value is, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<S> FromJobCall<S> for EmbeddingsRequest {
    fn from_job_call(call: &JobCall, state: &S) -> Result<Self, JobError> {
        if call.inputs.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge { bytes: call.inputs.len(), max: MAX_REQUEST_BYTES }.into());
        }
        let Json(raw) = Json::<RawRequest>::from_job_call(call, state)?;
        Ok(Self::from_raw(raw)?)
    }
}

/// The response object: `{"object":"list","data":[…],"model":…,"usage":{…}}`, serialized compactly in this field
/// order, floats in their shortest round-trip form: identical embeddings give identical bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsResponse {
    /// Always `"list"`.
    pub object: String,
    /// One embedding per input, in input order.
    pub data: Vec<EmbeddingData>,
    /// The request's `model`.
    pub model: String,
    /// Tokens read.
    pub usage: Usage,
}

/// One embedding of [`EmbeddingsResponse::data`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingData {
    /// Always `"embedding"`.
    pub object: String,
    /// Position of the input.
    pub index: usize,
    /// The unit vector of [`DIMENSIONS`] floats.
    pub embedding: Vec<f32>,
}

/// Token counts of [`EmbeddingsResponse::usage`]: the tokens the model read, `[CLS]` and `[SEP]` included, after
/// truncation to [`MAX_SEQ_LENGTH`](crate::MAX_SEQ_LENGTH) per input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Tokens of all inputs.
    pub prompt_tokens: u64,
    /// Equal to `prompt_tokens` (embeddings generate nothing).
    pub total_tokens: u64,
}

impl EmbeddingsResponse {
    /// The response for `model` with `embeddings` (in input order) and the `tokens` read per input.
    pub fn new(model: String, embeddings: Vec<Vec<f32>>, tokens: &[usize]) -> Self {
        let prompt_tokens = tokens.iter().map(|&count| count as u64).sum();
        let data = embeddings
            .into_iter()
            .enumerate()
            .map(|(index, embedding)| EmbeddingData { object: "embedding".to_owned(), index, embedding })
            .collect();
        Self { object: "list".to_owned(), data, model, usage: Usage { prompt_tokens, total_tokens: prompt_tokens } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_sdk::{Address, CallId, ServiceId};

    fn parse(body: &str) -> Result<EmbeddingsRequest, JobError> {
        let call = JobCall::new(ServiceId(1), CallId::from(1), 0, Address::ZERO, body.to_owned());
        EmbeddingsRequest::from_job_call(&call, &())
    }

    fn bad(body: &str) -> String {
        match parse(body) {
            Err(JobError::BadInput(message)) => message,
            other => panic!("expected bad_input for {body}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_string_or_an_array_of_strings() -> Result<(), JobError> {
        let one = parse(r#"{"model":"all-MiniLM-L6-v2","input":"hello"}"#)?;
        assert_eq!(one.input, vec!["hello".to_owned()]);
        let two = parse(
            r#"{"model":"sentence-transformers/all-MiniLM-L6-v2","input":["a","b"],"encoding_format":"float",
                "dimensions":384,"user":"u-1"}"#,
        )?;
        assert_eq!(two.input, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(two.model, "sentence-transformers/all-MiniLM-L6-v2");
        Ok(())
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let model = r#""model":"all-MiniLM-L6-v2""#;
        assert!(bad(&format!(r#"{{{model},"input":[1,2,3]}}"#)).contains("token ids"));
        assert!(bad(&format!(r#"{{{model},"input":[[1,2],[3]]}}"#)).contains("token ids"));
        assert!(bad(&format!(r#"{{{model},"input":["a",2]}}"#)).contains("`input[1]` is a number"));
        assert!(bad(&format!(r#"{{{model},"input":{{"a":1}}}}"#)).contains("not an object"));
        assert!(bad(&format!(r#"{{{model},"input":[]}}"#)).contains("empty array"));
        assert!(bad(&format!(r#"{{{model},"input":"a","encoding_format":"base64"}}"#)).contains("\"base64\" is not"));
        assert!(bad(&format!(r#"{{{model},"input":"a","encoding_format":"int8"}}"#)).contains("\"float\""));
        assert!(bad(&format!(r#"{{{model},"input":"a","dimensions":256}}"#)).contains("exactly 384"));
        assert!(bad(r#"{"model":"text-embedding-3-small","input":"a"}"#).contains("text-embedding-3-small"));
        assert!(bad(&format!(r#"{{{model},"input":"a","temperature":1}}"#)).contains("unknown field `temperature`"));
        assert!(bad(r#"{"input":"a"}"#).contains("missing field `model`"));
        let many = format!(r#"{{{model},"input":[{}]}}"#, vec!["\"x\""; MAX_INPUTS + 1].join(","));
        assert!(bad(&many).contains("257 strings; at most 256"));
        let huge = format!(r#"{{{model},"input":"{}"}}"#, "x".repeat(MAX_REQUEST_BYTES));
        assert!(bad(&huge).contains("at most 4194304 are accepted"));
    }

    #[test]
    fn response_bytes_are_openai_shaped_and_deterministic() -> Result<(), serde_json::Error> {
        let response = EmbeddingsResponse::new("all-MiniLM-L6-v2".to_owned(), vec![vec![0.1, -2.5e-8]], &[7]);
        let bytes = serde_json::to_string(&response)?;
        assert_eq!(
            bytes,
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2.5e-8]}],"model":"all-MiniLM-L6-v2","usage":{"prompt_tokens":7,"total_tokens":7}}"#
        );
        assert_eq!(serde_json::from_str::<EmbeddingsResponse>(&bytes)?, response);
        Ok(())
    }
}
