//! Asynchronous answers (`docs/design/async-results.md`): a paid call whose client sent `Prefer: respond-async`
//! (RFC 7240, optionally with `wait=N`) is answered `202 Accepted` once it is recorded and its payment checked, with
//! `Location: /v1/calls/{callId}`; `GET /v1/calls/{callId}` then answers `202` while the operators work and, once
//! the call is answered, exactly what the synchronous call would have answered.
//!
//! - [`Preference`]: the client's `Prefer` header, parsed with bounds (unknown or malformed preferences are ignored,
//!   as RFC 7240 asks);
//! - [`CallTasks`]: the tasks that finish paid calls, detached from the client's connection (a client that hangs up
//!   does not cancel its call) and aborted together when the gateway is killed;
//! - [`poll`]: the `GET /v1/calls/{callId}` handler; [`accepted`]: the `202` both answer.
//!
//! A result URL is a capability: `?key=` is `keccak256(secret ‖ callId)` under a secret only this gateway holds
//! ([`ResultKey`], kept in its data directory), so knowing a call id — which settlement publishes, as it publishes
//! the authorization — does not give its output away. A poll without the right key is answered as an unknown call.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use alloy_primitives::{B256, U256, keccak256};
use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use tokio::task::{AbortHandle, JoinHandle};
use vouch_primitives::CallId;

use crate::{
    api::{GatewayError, GatewayState, stored_answer},
    store::RequestStatus,
};

/// The `Prefer` request header (RFC 7240).
pub const PREFER: &str = "prefer";
/// The `Preference-Applied` response header (RFC 7240) of a `202`.
pub const PREFERENCE_APPLIED: &str = "preference-applied";
/// Longest `wait=` honoured; a longer one is cut to this.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// Seconds a client is asked to wait before polling again (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;
/// Longest call id accepted in a URL: `0x` and 64 hex digits.
pub const MAX_CALL_ID_LEN: usize = 66;
/// Most preferences read from the `Prefer` headers of one request (the rest are ignored).
const MAX_PREFERENCES: usize = 16;

/// What the client prefers for a paid call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Preference {
    /// `respond-async`: a `202` with a result URL rather than holding the connection until the answer.
    pub respond_async: bool,
    /// `wait=N`: answer synchronously if the answer comes within this (cut to [`MAX_WAIT`]).
    pub wait: Option<Duration>,
}

impl Preference {
    /// Parses the `Prefer` headers: comma-separated preferences `token[=value][; params]`, tokens
    /// case-insensitive, values possibly quoted. Unknown, repeated (the first counts) or malformed preferences are
    /// ignored, and at most [`MAX_PREFERENCES`] are read.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut preference = Self::default();
        let mut wait_seen = false;
        let items = headers
            .get_all(PREFER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .take(MAX_PREFERENCES);
        for item in items {
            // Parameters (`; name=value`) of a preference mean nothing for the two understood here.
            let head = item.split(';').next().unwrap_or_default();
            let (name, value) = match head.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (head.trim(), None),
            };
            if name.eq_ignore_ascii_case("respond-async") {
                preference.respond_async = true;
            } else if name.eq_ignore_ascii_case("wait") && !wait_seen {
                wait_seen = true;
                preference.wait = value
                    .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_WAIT));
            }
        }
        preference
    }
}

/// The representation of an answer: the native `{callId, output, certificate, signers}` or, for a call made on an
/// OpenAI-compatible route, the OpenAI response object with the certificate added ([`crate::openai`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerFormat {
    /// `POST /v1/services/{id}/jobs/{job}`.
    #[default]
    Native,
    /// `POST /v1/embeddings`, `POST /v1/chat/completions`.
    OpenAi,
}

impl AnswerFormat {
    /// The value of the result URL's `format` query parameter, if any.
    fn query(self) -> Option<&'static str> {
        match self {
            Self::Native => None,
            Self::OpenAi => Some("openai"),
        }
    }
}

/// The secret behind result URLs: 32 random bytes, created with the gateway's data directory and kept there, so
/// that URLs handed out before a restart still work.
#[derive(Clone)]
pub struct ResultKey([u8; 32]);

impl std::fmt::Debug for ResultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResultKey(…)")
    }
}

impl ResultKey {
    /// Reads the key at `path`, or creates it (readable by its owner only) if there is none.
    pub fn load_or_create(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Write as _;
        match std::fs::read(path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map(Self).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: not 32 bytes", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| std::io::Error::other(format!("system randomness: {e}")))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path)?;
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(Self(key))
            }
            Err(e) => Err(e),
        }
    }

    /// A key from `bytes` (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The capability of `call`'s result URL.
    pub fn token(&self, call: CallId) -> B256 {
        keccak256([self.0.as_slice(), &call.0.to_be_bytes::<32>()].concat())
    }

    /// Whether `key` (hex, as in the URL) is `call`'s capability; compared in constant time.
    fn admits(&self, call: CallId, key: Option<&str>) -> bool {
        let Some(given) = key.and_then(|k| k.parse::<B256>().ok()) else { return false };
        let expected = self.token(call);
        given.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The result URL's path: `/v1/calls/{callId}?key=…` (and `&format=openai` for a call made on an OpenAI route).
pub fn result_path(call: CallId, format: AnswerFormat, key: &ResultKey) -> String {
    let base = format!("/v1/calls/{:#x}?key={}", call.0, key.token(call));
    match format.query() {
        Some(f) => format!("{base}&format={f}"),
        None => base,
    }
}

/// `202 Accepted` for `call`, still being answered: `Location` (the result path), `Retry-After`, and
/// `{callId, status: "pending", resultUrl}` with the absolute result URL (from the gateway's public URL).
pub fn accepted(state: &GatewayState, call: CallId, format: AnswerFormat) -> Response {
    let path = result_path(call, format, &state.result_key);
    let url = format!("{}{path}", state.public_url.trim_end_matches('/'));
    let body = json!({ "callId": call, "status": "pending", "resultUrl": url });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&path) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    headers.insert(PREFERENCE_APPLIED, HeaderValue::from_static("respond-async"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Parses a call id from a URL: `0x` and 1 to 64 hex digits.
pub fn parse_call_id(s: &str) -> Option<CallId> {
    let digits = s.strip_prefix("0x")?;
    if s.len() > MAX_CALL_ID_LEN || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    U256::from_str_radix(digits, 16).ok().map(CallId)
}

/// The query of `GET /v1/calls/{callId}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PollQuery {
    /// `openai` for the OpenAI representation; absent (or `native`) for the native one.
    format: Option<String>,
    /// The URL's capability ([`ResultKey::token`]).
    key: Option<String>,
}

/// `GET /v1/calls/{callId}`: `202` (with `Retry-After`) while the call is being answered; once answered, the answer
/// the synchronous call gave (body, `x-vouch-certificate`, `PAYMENT-RESPONSE`); once failed, the same error; `404
/// unknown_call` for an id the gateway never recorded or a missing or wrong `key`, `400 invalid_call_id` for one that
/// is not a call id.
pub(crate) async fn poll(
    State(state): State<Arc<GatewayState>>,
    Path(id): Path<String>,
    query: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Response, GatewayError> {
    let call = parse_call_id(&id).ok_or_else(|| {
        let shown: String = id.chars().take(MAX_CALL_ID_LEN).collect();
        GatewayError::new(
            StatusCode::BAD_REQUEST,
            "invalid_call_id",
            format!("{shown:?} is not a call id (0x and at most 64 hex digits)"),
        )
    })?;
    let Query(query) =
        query.map_err(|e| GatewayError::new(StatusCode::BAD_REQUEST, "invalid_query", format!("bad query: {e}")))?;
    let format = match query.format.as_deref() {
        None | Some("native") => AnswerFormat::Native,
        Some("openai") => AnswerFormat::OpenAi,
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            return Err(GatewayError::new(
                StatusCode::BAD_REQUEST,
                "invalid_format",
                format!("format {shown:?} is not one of \"native\", \"openai\""),
            ));
        }
    };
    let unknown =
        || GatewayError::new(StatusCode::NOT_FOUND, "unknown_call", format!("no paid call {:#x} here", call.0));
    if !state.result_key.admits(call, query.key.as_deref()) {
        return Err(unknown());
    }
    let stored = state.store.get(call)?.ok_or_else(unknown)?;
    if stored.status == RequestStatus::Received {
        return Ok(accepted(&state, call, format));
    }
    let (service, job) = (stored.request.service_id.0, stored.request.job_index);
    let mut response = stored_answer(&state, stored)?;
    if format == AnswerFormat::OpenAi {
        response = crate::openai::to_openai(response, service, job).await?;
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The tasks finishing paid calls (payment checks, fan-out, answer), spawned so that they outlive the client's
/// connection: a client that hangs up (or gets its `202`) does not cancel its call. [`Self::abort_all`] stops them
/// as a crash would (the calls stay `received` in the store, and a restart finishes them).
#[derive(Debug, Default)]
pub struct CallTasks {
    inner: Mutex<TasksInner>,
}

#[derive(Debug, Default)]
struct TasksInner {
    next: u64,
    running: HashMap<u64, AbortHandle>,
}

impl CallTasks {
    fn lock(&self) -> std::sync::MutexGuard<'_, TasksInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns `task`, tracked until it ends.
    pub fn spawn<T: Send + 'static>(self: &Arc<Self>, task: impl Future<Output = T> + Send + 'static) -> JoinHandle<T> {
        let tasks = Arc::clone(self);
        // Held while spawning: the task's own removal waits for its insertion.
        let mut inner = self.lock();
        let id = inner.next;
        inner.next = inner.next.wrapping_add(1);
        let handle = tokio::spawn(async move {
            let out = task.await;
            tasks.lock().running.remove(&id);
            out
        });
        inner.running.insert(id, handle.abort_handle());
        handle
    }

    /// How many are running.
    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// Aborts every task (a crash, in tests).
    pub fn abort_all(&self) {
        for (_, task) in self.lock().running.drain() {
            task.abort();
        }
    }

    /// Waits until none is running, at most `timeout`.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(values: &[&str]) -> Preference {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(PREFER, HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")));
        }
        Preference::from_headers(&headers)
    }

    #[test]
    fn prefer_headers_parse_as_rfc_7240_says() {
        assert_eq!(prefer(&[]), Preference::default());
        assert_eq!(prefer(&["respond-async"]), Preference { respond_async: true, wait: None });
        assert_eq!(
            prefer(&["Respond-Async, wait=10"]),
            Preference { respond_async: true, wait: Some(Duration::from_secs(10)) }
        );
        assert_eq!(
            prefer(&["wait=\"5\"", "respond-async; foo=bar"]),
            Preference { respond_async: true, wait: Some(Duration::from_secs(5)) }
        );
        assert_eq!(prefer(&["respond-async, wait=abc"]).wait, None, "malformed wait ignored");
        assert_eq!(prefer(&["respond-async, wait=-1"]).wait, None);
        assert_eq!(prefer(&["respond-async, wait=99999999999999"]).wait, None, "too long");
        assert_eq!(prefer(&["respond-async, wait=4000000000"]).wait, Some(MAX_WAIT), "cut to the maximum");
        assert_eq!(prefer(&["wait=1, wait=9, respond-async"]).wait, Some(Duration::from_secs(1)), "first counts");
        assert!(!prefer(&["return=minimal"]).respond_async);
        let many = "x, ".repeat(MAX_PREFERENCES) + "respond-async";
        assert!(!prefer(&[many.as_str()]).respond_async, "at most MAX_PREFERENCES are read");
    }

    #[test]
    fn call_ids_in_urls_are_bounded_hex() {
        assert_eq!(parse_call_id("0x1f"), Some(CallId(U256::from(31))));
        assert_eq!(parse_call_id(&format!("0x{}", "f".repeat(64))), Some(CallId(U256::MAX)));
        assert_eq!(parse_call_id(&format!("0x{}", "0".repeat(65))), None);
        for bad in ["", "0x", "1f", "0xzz", "0x-1", "0x 1", "0X1f"] {
            assert_eq!(parse_call_id(bad), None, "{bad:?}");
        }
        let id = CallId(U256::from_be_bytes([0xab; 32]));
        let key = ResultKey::from_bytes([7; 32]);
        let path = result_path(id, AnswerFormat::Native, &key);
        let (id_part, query) = path.trim_start_matches("/v1/calls/").split_once("?key=").unwrap_or_default();
        assert_eq!(parse_call_id(id_part), Some(id));
        assert!(key.admits(id, Some(query)), "{path}");
        assert!(!key.admits(id, None) && !key.admits(id, Some("0x00")) && !key.admits(CallId(U256::ZERO), Some(query)));
        assert!(!ResultKey::from_bytes([8; 32]).admits(id, Some(query)), "another gateway's key");
        assert!(result_path(id, AnswerFormat::OpenAi, &key).ends_with("&format=openai"));
        assert_eq!(serde_json::to_value(id).ok(), Some(json!(format!("{:#x}", id.0))), "the id as the body shows it");
    }
}
