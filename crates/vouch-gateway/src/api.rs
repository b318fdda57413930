//! The gateway's HTTP API (`docs/gateway.md`):
//!
//! - `GET /v1/services` — the catalogue: services, their jobs and prices, the stake behind them;
//! - `POST /v1/services/{id}/jobs/{job}` — a paid call: `402` with `PAYMENT-REQUIRED` without payment; with a valid
//!   `PAYMENT-SIGNATURE` the request is recorded, fanned out, and answered `200` with the output, the certificate and
//!   `PAYMENT-RESPONSE` as soon as a quorum agrees. Nothing is charged for a call that is refused or fails: the
//!   authorization is collected on chain only together with the certificate (`settlePaidBatch`). With `Prefer:
//!   respond-async` the call is answered `202` with a result URL once it is recorded and its payment checked
//!   ([`crate::calls`]);
//! - `GET /v1/calls/{callId}` — the answer of a call answered `202`: `202` again while pending, then the `200` (or
//!   the error) the synchronous call would have given.
//! - the x402 facilitator endpoints `/verify`, `/settle`, `/supported`.

use std::{sync::Arc, time::Duration};

use alloy_primitives::{U256, keccak256};
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use serde_json::{Value, json};
use vouch_contracts::{TokenDomain, view::ChainView};
use vouch_primitives::{
    ServiceId, paid_call_id,
    wire::{JobRequest, PaymentProof, WIRE_VERSION},
};

use crate::{
    calls::{AnswerFormat, CallTasks, Preference},
    catalogue::Catalogue,
    fanout::{FanOut, FanOutOutcome},
    store::{PaidRequest, Recorded, RequestStatus, RequestStore, StoreError},
    x402::{self, Offer, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, SettlementResponse},
};

/// Header a client sets to demand a minimum stake at risk behind the result (stake-token base units).
pub const MIN_STAKE_HEADER: &str = "x-vouch-min-stake";
/// Header carrying the certificate (standard base64 of its JSON) on a `200`.
pub const CERTIFICATE_HEADER: &str = "x-vouch-certificate";

/// What the handlers share.
#[derive(Debug)]
pub struct GatewayState {
    /// Chain reads.
    pub chain: ChainView,
    /// The token's EIP-712 domain.
    pub token: TokenDomain,
    /// Services and prices.
    pub catalogue: Catalogue,
    /// Durable request log.
    pub store: RequestStore,
    /// Operator fan-out.
    pub fanout: FanOut,
    /// Seconds added to a job's deadline for `maxTimeoutSeconds` (settlement happens after the answer).
    pub settlement_margin: Duration,
    /// Public base URL (for the x402 `resource`).
    pub public_url: String,
    /// Models served on the OpenAI-compatible routes.
    pub openai: Vec<crate::openai::OpenAiModel>,
    /// Chain time, read at most once a second.
    pub clock: ChainClock,
    /// The tasks finishing paid calls (they outlive the clients' connections).
    pub calls: Arc<CallTasks>,
    /// The secret behind result URLs (`crate::calls::ResultKey`).
    pub result_key: crate::calls::ResultKey,
}

/// The chain's time for payment checks: the latest block's timestamp, read at most once per [`ChainClock::REFRESH`]
/// and advanced by the local clock in between (x402 windows are checked against chain time, as the token checks
/// them; the 6-second validity margin covers the difference).
#[derive(Debug, Default)]
pub struct ChainClock(std::sync::Mutex<Option<(std::time::Instant, u64)>>);

impl ChainClock {
    /// How long one reading is used.
    pub const REFRESH: Duration = Duration::from_secs(1);

    /// Chain time now.
    pub async fn now(&self, chain: &ChainView) -> Result<u64, vouch_contracts::view::ViewError> {
        if let Ok(cache) = self.0.lock()
            && let Some((at, ts)) = *cache
            && at.elapsed() < Self::REFRESH
        {
            return Ok(ts + at.elapsed().as_secs());
        }
        let ts = chain.now().await?;
        if let Ok(mut cache) = self.0.lock() {
            *cache = Some((std::time::Instant::now(), ts));
        }
        Ok(ts)
    }
}

/// A JSON error answer: `{"error":{"code","message"}}`.
#[derive(Debug)]
pub struct GatewayError {
    status: StatusCode,
    code: String,
    message: String,
}

impl GatewayError {
    pub(crate) fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into() }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::PaymentIdConflict(_) => {
                Self::new(StatusCode::CONFLICT, "payment_identifier_conflict", e.to_string())
            }
            e => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_unavailable", e.to_string()),
        }
    }
}

/// The gateway's router; bodies above `max_body_bytes` get `413 body_too_large`.
pub fn router(state: Arc<GatewayState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/services", get(services))
        .route("/v1/services/{service}/jobs/{job}", post(call_job))
        .route("/v1/embeddings", post(crate::openai::embeddings))
        .route("/v1/chat/completions", post(crate::openai::chat_completions))
        .route("/v1/calls/{call}", get(crate::calls::poll))
        .fallback(|| async {
            GatewayError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint (see docs/gateway.md)")
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(move |request, next| limit_body(max_body_bytes, request, next)))
        .with_state(state)
}

/// Most bytes of an oversized body read and dropped before its `413` is sent.
const DRAIN_MAX_BYTES: usize = 16 << 20;
/// Longest time spent dropping an oversized body before its `413` is sent.
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// Reads the request body, up to `limit` bytes, before the handler runs. A longer one gets `413 body_too_large`, but
/// only after the rest of it was read and dropped (at most [`DRAIN_MAX_BYTES`] within [`DRAIN_FOR`]): answering while
/// the client still writes would close the connection with unread data, and the reset loses the answer for a client
/// that sends its whole body before reading (most do) — the graceful close of RFC 9112 §9.6.
async fn limit_body(limit: usize, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use futures_util::StreamExt as _;
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut read = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                return GatewayError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.to_string()).into_response();
            }
        };
        if read.len() + chunk.len() > limit {
            let mut dropped = read.len() + chunk.len();
            let _ = tokio::time::timeout(DRAIN_FOR, async {
                while let Some(Ok(chunk)) = stream.next().await {
                    dropped += chunk.len();
                    if dropped > DRAIN_MAX_BYTES {
                        break;
                    }
                }
            })
            .await;
            let message = format!("the request body is too large: more than {limit} bytes");
            return GatewayError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message).into_response();
        }
        read.extend_from_slice(&chunk);
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(read.freeze()))).await
}

async fn services(State(state): State<Arc<GatewayState>>) -> Result<Json<Value>, GatewayError> {
    let list = state
        .catalogue
        .list()
        .await
        .map_err(|e| GatewayError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string()))?;
    Ok(Json(json!({ "version": 1, "services": list })))
}

fn payment_required(offer: &Offer, error: Option<&str>) -> Response {
    let required = offer.payment_required(error);
    let mut response = (StatusCode::PAYMENT_REQUIRED, Json(&required)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&x402::encode_header(&required)) {
        headers.insert(PAYMENT_REQUIRED, v);
    }
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

async fn call_job(
    State(state): State<Arc<GatewayState>>,
    Path((service, job)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    let service_id: u64 = service.parse().map_err(|_| {
        GatewayError::new(StatusCode::BAD_REQUEST, "invalid_service_id", format!("{service:?} is not a service id"))
    })?;
    let job_index: u8 = job.parse().map_err(|_| {
        GatewayError::new(StatusCode::BAD_REQUEST, "invalid_job_index", format!("{job:?} is not a job index (0-255)"))
    })?;
    paid_job(&state, service_id, job_index, &headers, body, AnswerFormat::Native).await
}

/// The paid-call flow for job `job_index` of `service_id`: 402 without payment; with a valid payment, record, fan
/// out, answer `{callId, output, certificate, signers}` at quorum. Shared by the native and OpenAI-compatible routes
/// (`format`: the representation a `202`'s result URL asks for).
///
/// The work after recording runs in a task of its own ([`CallTasks`]): a client that hangs up does not cancel its
/// call (its retry, or a poll, gets the answer). With `Prefer: respond-async`, the answer is a `202` once the payment
/// is fully checked, unless the call is answered before (or within `wait=N` seconds).
pub(crate) async fn paid_job(
    state: &Arc<GatewayState>,
    service_id: u64,
    job_index: u8,
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
    format: AnswerFormat,
) -> Result<Response, GatewayError> {
    let preference = Preference::from_headers(headers);
    let wait_until = tokio::time::Instant::now() + preference.wait.unwrap_or_default();
    let unavailable =
        |e: &dyn std::fmt::Display| GatewayError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string());
    let info = state.chain.service(ServiceId(service_id)).await.map_err(|e| unavailable(&e))?.ok_or_else(|| {
        GatewayError::new(StatusCode::NOT_FOUND, "unknown_service", format!("unknown service {service_id}"))
    })?;
    if info.status != vouch_contracts::view::SERVICE_ACTIVE {
        return Err(GatewayError::new(
            StatusCode::CONFLICT,
            "service_not_active",
            format!("service {service_id} is not active"),
        ));
    }
    let terms = *info.jobs.get(usize::from(job_index)).ok_or_else(|| {
        GatewayError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            format!("service {service_id} has no job {job_index} (it has {})", info.jobs.len()),
        )
    })?;
    // How the operators come to sign one result (registered on chain with the job).
    let mode = Catalogue::verification(&info, job_index);
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            GatewayError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is too large: {e}"),
            )
        } else {
            GatewayError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.to_string())
        }
    })?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Err(GatewayError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not JSON: {e}")));
    }
    if let Some(min) = headers.get(MIN_STAKE_HEADER) {
        let min: U256 = min.to_str().ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
            GatewayError::new(
                StatusCode::BAD_REQUEST,
                "invalid_min_stake",
                format!("{MIN_STAKE_HEADER} must be a decimal integer"),
            )
        })?;
        let reachable = info.total_stake;
        if min > reachable {
            return Err(GatewayError::new(
                StatusCode::PRECONDITION_FAILED,
                "insufficient_stake",
                format!("service {service_id} has {reachable} stake in all; {min} cannot be at risk behind one result"),
            ));
        }
    }
    let offer = Offer {
        chain_id: state.chain.binding().chain_id,
        token: state.token.clone(),
        pay_to: state.chain.binding().contract,
        amount: U256::from(terms.price),
        max_timeout_seconds: u64::from(terms.deadline) + state.settlement_margin.as_secs(),
        resource_url: format!("{}/v1/services/{service_id}/jobs/{job_index}", state.public_url.trim_end_matches('/')),
        description: format!("job {job_index} of Vouch service {service_id}"),
    };
    let Some(signature_header) = headers.get(PAYMENT_SIGNATURE) else {
        return Ok(payment_required(&offer, None));
    };
    let header = signature_header.to_str().map_err(|_| {
        GatewayError::new(StatusCode::BAD_REQUEST, "invalid_payload", "PAYMENT-SIGNATURE is not ASCII base64")
    })?;
    let payload =
        x402::decode_payment_signature(header).map_err(|e| GatewayError::new(status(e.status), e.code, e.message))?;
    let payment_id =
        x402::payment_identifier(&payload).map_err(|e| GatewayError::new(status(e.status), e.code, e.message))?;
    let now = state.clock.now(&state.chain).await.map_err(|e| unavailable(&e))?;
    let auth = payload.payload.authorization;
    let call_id = paid_call_id(ServiceId(service_id), job_index, auth.from, auth.nonce);
    // A retry of a request already recorded (same authorization, same call, same inputs) is answered from the
    // record and never charged twice; the same authorization for anything else is a replayed nonce.
    if let Some(existing) = state.store.lookup_authorization(&auth)? {
        if existing.request.call_id == call_id && existing.request.inputs.as_ref() == body.as_ref() {
            return retried(state, existing, preference, format);
        }
        return Ok(payment_required(&offer, Some("invalid_exact_evm_nonce_already_used")));
    }
    // Offline checks before anything is recorded. An ERC-1271 wallet fails them (its signature needs the chain), so
    // a failure is decided by the full check.
    let offline = x402::verify_offline(&offer, &payload, now).is_ok();
    if !offline && let Err(e) = x402::verify(state.chain.provider(), &offer, &payload, now).await {
        if e.status == 402 {
            return Ok(payment_required(&offer, Some(e.code)));
        }
        return Err(GatewayError::new(status(e.status), e.code, e.message));
    }
    let paid = PaidRequest {
        call_id,
        service_id: ServiceId(service_id),
        job_index,
        inputs: alloy_primitives::Bytes::copy_from_slice(&body),
        authorization: auth,
        payment_signature: payload.payload.signature.clone(),
        payment_id,
        payload_hash: keccak256(header.as_bytes()),
    };
    if let Recorded::Existing(existing) = state.store.record(&paid)? {
        return retried(state, *existing, preference, format);
    }
    let request = JobRequest {
        version: WIRE_VERSION,
        service_id: ServiceId(service_id),
        call_id,
        job_index,
        inputs: paid.inputs.clone(),
        payment: PaymentProof::X402 { authorization: auth, signature: paid.payment_signature.clone() },
    };
    // The chain checks (nonce unused, balance) run while the operators work; the answer waits for both. A payment
    // that passed the offline checks (an EOA's: its signature recovered above) needs only those two reads; any other
    // gets the full check again. A refused payment stops the call at once (nothing is charged).
    let min_stake = min_stake(headers);
    let (checked_tx, checked_rx) = tokio::sync::oneshot::channel();
    let task = {
        let (state, offer) = (Arc::clone(state), offer.clone());
        async move {
            let chain_checks = async {
                let checked = if offline {
                    x402::verify_chain_state(state.chain.provider(), &offer, &payload).await
                } else {
                    x402::verify(state.chain.provider(), &offer, &payload, now).await
                };
                let _ = checked_tx.send(checked.as_ref().map(drop).map_err(Clone::clone));
                checked
            };
            let fan_out = async { Ok(state.fanout.run_as(&info, &request, mode).await) };
            match futures_util::future::try_join(chain_checks, fan_out).await {
                Ok((_, outcome)) => answer(&state, request.call_id, &offer, min_stake, outcome, payer_of(&request)),
                Err(e) => {
                    state.store.set_status(
                        call_id,
                        RequestStatus::Failed,
                        Some(&format!("{PAYMENT_REFUSED}{}", e.code)),
                    )?;
                    Ok(refused(&offer, &e))
                }
            }
        }
    };
    let mut task = state.calls.spawn(task);
    // No 202 before the payment is fully checked: a refusal is answered now, as without the preference.
    let finished = if preference.respond_async && matches!(checked_rx.await, Ok(Ok(()))) {
        match tokio::time::timeout_at(wait_until, &mut task).await {
            Ok(finished) => finished,
            Err(_) => return Ok(crate::calls::accepted(state, call_id, format)),
        }
    } else {
        task.await
    };
    finished.map_err(|e| GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
}

/// Prefix of the recorded error of a call whose payment the chain refused (then the x402 code).
const PAYMENT_REFUSED: &str = "payment refused: ";
/// The recorded error of a call whose certificate put less stake at risk than the client asked.
const STAKE_BELOW_MINIMUM: &str = "stake at risk below the client's minimum";

/// The client's [`MIN_STAKE_HEADER`] (checked well-formed before the call is recorded).
fn min_stake(headers: &HeaderMap) -> Option<U256> {
    headers.get(MIN_STAKE_HEADER).and_then(|v| v.to_str().ok()).and_then(|s| s.parse::<U256>().ok())
}

/// The answer to a payment the chain refused: `402` with `PAYMENT-REQUIRED`, or the check's error (not charged).
fn refused(offer: &Offer, e: &x402::X402Error) -> Response {
    if e.status == 402 {
        return payment_required(offer, Some(e.code));
    }
    GatewayError::new(status(e.status), e.code, format!("{} (not charged)", e.message)).into_response()
}

/// The answer to a retry of a call recorded before: its stored answer, or a `202` if it is still being answered and
/// the client prefers that to `409 request_in_progress`.
fn retried(
    state: &GatewayState,
    existing: crate::store::StoredRequest,
    preference: Preference,
    format: AnswerFormat,
) -> Result<Response, GatewayError> {
    if preference.respond_async && existing.status == RequestStatus::Received {
        return Ok(crate::calls::accepted(state, existing.request.call_id, format));
    }
    stored_answer(state, existing)
}

fn payer_of(request: &JobRequest) -> alloy_primitives::Address {
    match &request.payment {
        PaymentProof::X402 { authorization, .. } => authorization.from,
        PaymentProof::OnChain => alloy_primitives::Address::ZERO,
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The stored answer of a request seen before (a retry with the same payment, a poll of its result URL): the `200`
/// the call was answered with (the recorded body, the certificate header, `PAYMENT-RESPONSE`), or the error it
/// failed with (never charged), or `409 request_in_progress` while it is being answered.
pub(crate) fn stored_answer(
    state: &GatewayState,
    existing: crate::store::StoredRequest,
) -> Result<Response, GatewayError> {
    match (existing.status, existing.response) {
        (RequestStatus::Answered | RequestStatus::Settled, Some(body)) => {
            let auth = existing.request.authorization;
            let settlement = paid_response(state.chain.binding().chain_id, auth.from, auth.value);
            Ok(answered_response(body, existing.certificate.as_ref(), Some(&settlement)))
        }
        // Answered, but the authorization turned out uncollectable: the answer stands, no payment is announced.
        (RequestStatus::Unpayable, Some(body)) => Ok(answered_response(body, existing.certificate.as_ref(), None)),
        (RequestStatus::Failed, _) => Err(failure(existing.error.as_deref().unwrap_or_default())),
        _ => Err(GatewayError::new(
            StatusCode::CONFLICT,
            "request_in_progress",
            format!("call {} is being answered; retry shortly", existing.request.call_id),
        )),
    }
}

/// The error a failed call is answered with again, from the reason recorded: the same status and code as when it
/// failed.
fn failure(reason: &str) -> GatewayError {
    if let Some(code) = reason.strip_prefix(PAYMENT_REFUSED) {
        let status = if code == x402::codes::UNEXPECTED_VERIFY_ERROR {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::PAYMENT_REQUIRED
        };
        return GatewayError::new(status, code, format!("this payment was refused earlier ({code}); not charged"));
    }
    if reason == STAKE_BELOW_MINIMUM {
        return GatewayError::new(
            StatusCode::PRECONDITION_FAILED,
            "insufficient_stake",
            format!("this call failed earlier: {reason}; not charged"),
        );
    }
    GatewayError::new(
        StatusCode::BAD_GATEWAY,
        "no_quorum",
        format!("this payment's call failed earlier and was not charged: {reason}"),
    )
}

/// `PAYMENT-RESPONSE` of a certified call: the payment will be collected with the certificate (no transaction yet).
fn paid_response(chain_id: u64, payer: alloy_primitives::Address, amount: U256) -> SettlementResponse {
    SettlementResponse {
        success: true,
        transaction: String::new(),
        network: format!("eip155:{chain_id}"),
        payer: Some(payer),
        error_reason: None,
        amount: Some(amount.to_string()),
    }
}

/// The `200` of a certified call: the JSON `body` as recorded, the certificate header and `PAYMENT-RESPONSE`.
fn answered_response(
    body: String,
    certificate: Option<&vouch_primitives::Certificate>,
    settlement: Option<&SettlementResponse>,
) -> Response {
    let json = [(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    let mut response = with_certificate_header((json, body).into_response(), certificate);
    if let Some(settlement) = settlement
        && let Ok(v) = HeaderValue::from_str(&x402::encode_header(settlement))
    {
        response.headers_mut().insert(PAYMENT_RESPONSE, v);
    }
    response
}

fn with_certificate_header(mut response: Response, certificate: Option<&vouch_primitives::Certificate>) -> Response {
    if let Some(cert) = certificate
        && let Ok(json) = serde_json::to_vec(cert)
        && let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
    {
        response.headers_mut().insert(CERTIFICATE_HEADER, v);
    }
    response
}

fn answer(
    state: &GatewayState,
    call_id: vouch_primitives::CallId,
    offer: &Offer,
    min_stake: Option<U256>,
    outcome: FanOutOutcome,
    payer: alloy_primitives::Address,
) -> Result<Response, GatewayError> {
    match outcome {
        FanOutOutcome::Quorum { output, certificate, signers, dissent, suspects, late } => {
            // Evidence for a deviation report once the call settles (crate::reporter); the answer does not wait on it.
            let certified = certificate.result_hash;
            keep_evidence(&state.store, call_id, &dissent);
            keep_commitment_evidence(&state.store, call_id, certified, &suspects);
            if late.is_pending() {
                let store = state.store.clone();
                tokio::spawn(async move {
                    let late = late.wait().await;
                    keep_evidence(&store, call_id, &late.dissent);
                    keep_commitment_evidence(&store, call_id, certified, &late.suspects);
                });
            }
            if let Some(min) = min_stake
                && certificate.stake_at_risk.unwrap_or_default() < min
            {
                state.store.set_status(call_id, RequestStatus::Failed, Some(STAKE_BELOW_MINIMUM))?;
                return Err(GatewayError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "insufficient_stake",
                    format!(
                        "the quorum put {} at risk, below the {min} asked; not charged",
                        certificate.stake_at_risk.unwrap_or_default()
                    ),
                ));
            }
            let output_json: Value = serde_json::from_slice(&output)
                .unwrap_or_else(|_| Value::String(alloy_primitives::hex::encode_prefixed(&output)));
            let body = json!({
                "callId": call_id,
                "output": output_json,
                "certificate": certificate,
                "signers": signers,
            });
            // Serialized once: the answer sent is the answer recorded.
            let text = body.to_string();
            let sent = text.clone();
            // Recorded while the answer goes out: if the gateway dies first, the request is still `received` and a
            // restart answers (and settles) it again from the operators' recorded signatures.
            // A retry arriving before that write commits gets this answer too.
            state.store.answering(call_id, &text, &certificate, &signers);
            let (store, cert_copy) = (state.store.clone(), certificate.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.answered(call_id, &text, &cert_copy, &signers) {
                    tracing::error!(call = %call_id, error = %e, "cannot record the answer; a restart will redo it");
                }
            });
            let settlement = paid_response(offer.chain_id, payer, offer.amount);
            Ok(answered_response(sent, Some(&certificate), Some(&settlement)))
        }
        FanOutOutcome::NoQuorum { replies, errors } => {
            let reason = format!(
                "no quorum: {} operator(s) agreed on no result reaching the quorum; failures: {}",
                replies.len(),
                errors.iter().map(|(op, e)| format!("{op}: {e}")).collect::<Vec<_>>().join("; ")
            );
            state.store.set_status(call_id, RequestStatus::Failed, Some(&reason))?;
            Err(GatewayError::new(StatusCode::BAD_GATEWAY, "no_quorum", format!("{reason} (not charged)")))
        }
    }
}

/// Stores operators' signed results that contradict the certificate, for the reporter.
fn keep_evidence(store: &RequestStore, call_id: vouch_primitives::CallId, dissent: &[crate::fanout::Reply]) {
    for reply in dissent {
        let operator = reply.signed.operator;
        tracing::warn!(call = %call_id, %operator, "operator signed another result (kept as evidence)");
        if let Err(e) = store.add_evidence(reply.slot, &reply.signed) {
            tracing::error!(call = %call_id, %operator, error = %e, "cannot keep the evidence");
        }
    }
}

/// Stores the commitments of a tolerant job that contradict the certified result `certified`, for the reporter.
fn keep_commitment_evidence(
    store: &RequestStore,
    call_id: vouch_primitives::CallId,
    certified: alloy_primitives::B256,
    suspects: &[crate::rounds::CommitmentSuspect],
) {
    for suspect in suspects {
        let operator = suspect.signed.operator;
        let reason = &suspect.reason;
        tracing::warn!(call = %call_id, %operator, %reason, "operator's commitment contradicts the certificate (kept)");
        if let Err(e) = store.add_commitment_evidence(suspect.slot, &suspect.signed, certified, &suspect.reason) {
            tracing::error!(call = %call_id, %operator, error = %e, "cannot keep the commitment evidence");
        }
    }
}

/// Finishes requests recorded but not answered (a gateway killed between payment and answer), of every verification
/// mode: orchestrates each again (the operators' guards return the signatures they gave before) and stores the
/// answer, so a client's retry gets it; a request with no quorum is marked failed and never charged.
pub async fn finish_received(state: &GatewayState) -> Result<usize, GatewayError> {
    let pending = state.store.with_status(RequestStatus::Received, 10_000)?;
    let mut finished = 0;
    for stored in pending {
        let r = stored.request;
        let Some(info) = state
            .chain
            .service(r.service_id)
            .await
            .map_err(|e| GatewayError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string()))?
        else {
            state.store.set_status(r.call_id, RequestStatus::Failed, Some("unknown service"))?;
            continue;
        };
        let request = JobRequest {
            version: WIRE_VERSION,
            service_id: r.service_id,
            call_id: r.call_id,
            job_index: r.job_index,
            inputs: r.inputs.clone(),
            payment: PaymentProof::X402 { authorization: r.authorization, signature: r.payment_signature.clone() },
        };
        let price = info.jobs.get(usize::from(r.job_index)).map(|j| j.price).unwrap_or_default();
        let offer = Offer {
            chain_id: state.chain.binding().chain_id,
            token: state.token.clone(),
            pay_to: state.chain.binding().contract,
            amount: U256::from(price),
            max_timeout_seconds: 0,
            resource_url: String::new(),
            description: String::new(),
        };
        // The answer goes to the store; the client collects it by retrying with the same payment. Every mode is
        // orchestrated again from the start: the operators' guards give back what they signed before (the same
        // commitment, the same endorsement), and the candidate and executor orders are deterministic.
        let mode = Catalogue::verification(&info, r.job_index);
        let outcome = state.fanout.run_as(&info, &request, mode).await;
        let _ = answer(state, r.call_id, &offer, None, outcome, r.authorization.from);
        finished += 1;
    }
    Ok(finished)
}
