//! The echo blueprint: deterministic, trivial jobs for tests and benchmarks.
//!
//! | job | name | inputs | output |
//! |---|---|---|---|
//! | 0 | `echo` | `{"message": string}` (at most 4096 bytes) | `{"message": same}` |
//! | 1 | `hash` | `{"data": "0x…"}` (at most 64 KiB once decoded) | `{"keccak256": "0x…"}` |
//! | 2 | `fail` | anything | always a handler error |
//! | 3 | `panic` | anything | always panics (a job error, not a crash) |
//!
//! Outputs are compact JSON, so honest operators produce identical bytes. Inputs are validated by
//! custom extractors ([`EchoInput`], [`HashInput`]): oversized or malformed inputs are
//! [`JobError::BadInput`] and the handler never runs.
//!
//! Depends on `vouch-sdk` only (never on the node), like every blueprint.
//!
//! ```
//! # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! # runtime.block_on(async {
//! use vouch_sdk::{CallId, JobCall, ServiceId};
//!
//! let call = JobCall::new(ServiceId(1), CallId::from(1), vouch_echo::ECHO, Default::default(), r#"{"message":"hi"}"#);
//! let output = vouch_echo::router().call(call).await?;
//! assert_eq!(&output.bytes[..], br#"{"message":"hi"}"#);
//! # Ok::<(), vouch_sdk::JobError>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloy_primitives::{B256, hex, keccak256};
use serde::{Deserialize, Serialize};
use vouch_sdk::{Blueprint, FromJobCall, JobCall, JobError, JobSpec, Json, Router};

/// Job index of `echo`.
pub const ECHO: u8 = 0;
/// Job index of `hash`.
pub const HASH: u8 = 1;
/// Job index of `fail`.
pub const FAIL: u8 = 2;
/// Job index of `panic`.
pub const PANIC: u8 = 3;

/// Longest `message` accepted by `echo`, in UTF-8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest `data` accepted by `hash`, in bytes (after hex decoding).
pub const MAX_DATA_BYTES: usize = 64 * 1024;

/// What the `fail` job always answers (as [`JobError::Handler`]).
pub const FAIL_MESSAGE: &str = "the fail job always fails (it exists to test error paths)";
/// What the `panic` job panics with (seen as [`JobError::Panicked`]).
pub const PANIC_MESSAGE: &str = "the panic job always panics (it exists to test that a panic is a job error)";

/// Suggested price of every echo job: 1000 smallest units (0.001 of a 6-decimals stablecoin).
const PRICE: u128 = 1000;
/// Suggested deadline of every echo job, in seconds.
const DEADLINE_SECS: u64 = 60;

/// The jobs of the echo blueprint, by index.
pub const JOBS: &[JobSpec] = &[
    JobSpec {
        index: ECHO,
        name: "echo",
        description: "Returns the message it is given.",
        suggested_price: PRICE,
        suggested_deadline_secs: DEADLINE_SECS,
    },
    JobSpec {
        index: HASH,
        name: "hash",
        description: "Returns the keccak256 hash of the given bytes.",
        suggested_price: PRICE,
        suggested_deadline_secs: DEADLINE_SECS,
    },
    JobSpec {
        index: FAIL,
        name: "fail",
        description: "Always fails with a handler error (for tests of error paths).",
        suggested_price: PRICE,
        suggested_deadline_secs: DEADLINE_SECS,
    },
    JobSpec {
        index: PANIC,
        name: "panic",
        description: "Always panics (for tests that a panic is a job error).",
        suggested_price: PRICE,
        suggested_deadline_secs: DEADLINE_SECS,
    },
];

/// The echo blueprint's jobs, routed.
pub fn router() -> Router {
    Router::new().route(ECHO, echo).route(HASH, hash).route(FAIL, fail).route(PANIC, panic_job)
}

/// The echo blueprint, for the node.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Blueprint for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn router(&self) -> Router {
        router()
    }

    fn jobs(&self) -> Vec<JobSpec> {
        JOBS.to_vec()
    }
}

/// Inputs of `echo`: `{"message": string}`, the message at most [`MAX_MESSAGE_BYTES`] long.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoInput {
    /// The message to echo.
    pub message: String,
}

impl<S> FromJobCall<S> for EchoInput {
    fn from_job_call(call: &JobCall, state: &S) -> Result<Self, JobError> {
        // JSON escapes take at most 6 bytes per byte (`\u0000`); anything longer cannot be valid.
        reject_longer_than(call, 6 * MAX_MESSAGE_BYTES + 64)?;
        let Json(input) = Json::<Self>::from_job_call(call, state)?;
        if input.message.len() > MAX_MESSAGE_BYTES {
            return Err(JobError::BadInput(format!(
                "`message` is {} bytes; at most {MAX_MESSAGE_BYTES} are allowed",
                input.message.len()
            )));
        }
        Ok(input)
    }
}

/// Output of `echo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoOutput {
    /// The message, unchanged.
    pub message: String,
}

/// Inputs of `hash`: `{"data": "0x…"}`, decoded; at most [`MAX_DATA_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashInput {
    /// The bytes to hash.
    pub data: Vec<u8>,
}

/// The JSON form of [`HashInput`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashInputJson {
    data: String,
}

impl<S> FromJobCall<S> for HashInput {
    fn from_job_call(call: &JobCall, state: &S) -> Result<Self, JobError> {
        reject_longer_than(call, 2 * MAX_DATA_BYTES + 64)?;
        let Json(HashInputJson { data }) = Json::from_job_call(call, state)?;
        let digits = data
            .strip_prefix("0x")
            .ok_or_else(|| JobError::BadInput("`data` must be hex starting with `0x`".to_owned()))?;
        let data =
            hex::decode(digits).map_err(|error| JobError::BadInput(format!("`data` is not valid hex: {error}")))?;
        if data.len() > MAX_DATA_BYTES {
            return Err(JobError::BadInput(format!(
                "`data` is {} bytes; at most {MAX_DATA_BYTES} are allowed",
                data.len()
            )));
        }
        Ok(Self { data })
    }
}

/// Output of `hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashOutput {
    /// `keccak256(data)`, `0x`-prefixed lowercase hex.
    pub keccak256: B256,
}

/// Refuses to parse inputs that cannot be valid, before spending time on them.
fn reject_longer_than(call: &JobCall, max: usize) -> Result<(), JobError> {
    if call.inputs.len() > max {
        return Err(JobError::BadInput(format!(
            "inputs are {} bytes, too long for job {} (at most {max})",
            call.inputs.len(),
            call.job_index
        )));
    }
    Ok(())
}

/// Job 0: returns the message.
pub async fn echo(input: EchoInput) -> Json<EchoOutput> {
    Json(EchoOutput { message: input.message })
}

/// Job 1: hashes the data with keccak256.
pub async fn hash(input: HashInput) -> Json<HashOutput> {
    Json(HashOutput { keccak256: keccak256(&input.data) })
}

/// Job 2: always fails with [`FAIL_MESSAGE`].
pub async fn fail() -> Result<Json<EchoOutput>, &'static str> {
    Err(FAIL_MESSAGE)
}

/// Job 3: always panics with [`PANIC_MESSAGE`].
pub async fn panic_job() -> Json<EchoOutput> {
    panic!("{PANIC_MESSAGE}")
}

#[cfg(test)]
mod tests;
