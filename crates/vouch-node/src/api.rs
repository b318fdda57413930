//! The node's HTTP API (`docs/node-api.md`), for gateways and peers:
//!
//! - `POST /v1/jobs` — run a paid call's job and answer the signed result ([`JobRequest`] → [`SignedResult`]). The
//!   request must be for an active service that names this operator and a job of its blueprint, and must prove the
//!   call is paid: either the call is open on chain with the same service, job and inputs hash, or an x402
//!   authorization for exactly this call (its id is `paid_call_id(service, job, payer, nonce)`) passes every EIP-3009
//!   check. No unpaid work is done.
//! - `POST /v1/commitments` — for a tolerant job: run the paid call's job and answer this node's signed commitment to
//!   its own output ([`JobRequest`] → [`SignedCommitment`]), recorded by the guard (one per call).
//! - `POST /v1/endorsements` — for a tolerant or checked job: sign another operator's output for the paid call as
//!   this node's result if it agrees with it ([`EndorseRequest`] → [`SignedResult`] without output), or
//!   `409 disagree` with the reason.
//! - `POST /v1/batches` — one batch signature over calls this node already signed ([`BatchSignRequest`] →
//!   [`BatchSignature`]), for `settlePaidBatch`: every entry must be in the signing guard with the same inputs and
//!   result hash, so the batch never says anything the node did not sign call by call.
//! - `POST /v1/results` — a peer's signed result of an on-chain call (verified against its registered key).
//! - `GET /v1/calls/{callId}/certificate` — the certificate this node assembled for an on-chain call.
//!
//! Every error is JSON `{"error":{"code","message"}}` with a precise 4xx for bad input.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy_primitives::{U256, keccak256};
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::sync::OnceCell;
use vouch_contracts::{PaymentExpectation, TokenDomain, check_payment};
use vouch_crypto::Signature;
use vouch_primitives::{
    CallId, Certificate, paid_call_id, result_digest,
    wire::{
        BatchSignRequest, BatchSignature, EndorseRequest, ErrorBody, ErrorDetail, JobRequest, PaymentProof,
        SignedCommitment, SignedResult, WIRE_VERSION,
    },
};
use vouch_sdk::{JobError, Verification};

use crate::{
    chain::{CALL_OPEN, ServiceInfo},
    engine::{Engine, ExecError},
    guard::GuardError,
    metrics::outcome,
    peers::Peers,
    quorum::{QuorumTracker, ShareOutcome},
};

/// An x402 authorization must stay valid at least this long (the reference facilitator's margin).
const MIN_VALIDITY: Duration = Duration::from_secs(6);

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with `status`, machine `code` and a message saying what to fix.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        let msg = e.to_string();
        match e {
            ExecError::UnknownService(_) => Self::new(StatusCode::NOT_FOUND, "unknown_service", msg),
            ExecError::ServiceNotActive(_) => Self::new(StatusCode::CONFLICT, "service_not_active", msg),
            ExecError::NotInService { .. } => Self::new(StatusCode::FORBIDDEN, "not_a_service_operator", msg),
            ExecError::BlueprintNotServed { .. } => Self::new(StatusCode::NOT_FOUND, "blueprint_not_served", msg),
            ExecError::UnknownJob { .. } => Self::new(StatusCode::NOT_FOUND, "unknown_job", msg),
            ExecError::Job(JobError::Overloaded) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", msg),
            ExecError::Job(JobError::Timeout) => Self::new(StatusCode::GATEWAY_TIMEOUT, "job_timeout", msg),
            ExecError::Job(j) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "job_failed", format!("{msg} ({})", j.code()))
            }
            ExecError::Guard(g) if matches!(*g, GuardError::Missing { .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "guard_unavailable", msg)
            }
            ExecError::Guard(g) if g.not_safe().is_some_and(|n| n.is_commitment()) => {
                Self::new(StatusCode::CONFLICT, "conflicting_commitment", msg)
            }
            ExecError::Guard(g) if g.not_safe().is_some() => Self::new(StatusCode::CONFLICT, "conflicting_result", msg),
            ExecError::Guard(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "guard_unavailable", msg),
            ExecError::Node(_) => Self::new(StatusCode::BAD_GATEWAY, "chain_unavailable", msg),
            ExecError::BatchSize { .. } => Self::new(StatusCode::BAD_REQUEST, "invalid_batch_size", msg),
            ExecError::DuplicateCall { .. } => Self::new(StatusCode::BAD_REQUEST, "duplicate_call", msg),
            ExecError::NotSigned { .. } => Self::new(StatusCode::CONFLICT, "not_signed", msg),
            ExecError::ConflictingEntry(_) => Self::new(StatusCode::CONFLICT, "conflicting_result", msg),
            ExecError::WrongVerification { .. } => Self::new(StatusCode::CONFLICT, "wrong_verification", msg),
            ExecError::Disagree { .. } => Self::new(StatusCode::CONFLICT, "disagree", msg),
            ExecError::OutputTooLarge { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "output_too_large", msg),
        }
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// Runs and signs.
    pub engine: Arc<Engine>,
    /// Shares of on-chain calls.
    pub tracker: Arc<QuorumTracker>,
    /// Certificates assembled by the submitter.
    pub certificates: Arc<Mutex<HashMap<CallId, Certificate>>>,
    /// The other operators.
    pub peers: Peers,
    /// The payment token's EIP-712 domain, read once.
    pub token: OnceCell<TokenDomain>,
}

/// The API router; bodies above `max_body_bytes` get `413 body_too_large`.
pub fn router(state: Arc<ApiState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/jobs", post(post_job))
        .route("/v1/commitments", post(post_commitment))
        .route("/v1/endorsements", post(post_endorsement))
        .route("/v1/batches", post(post_batch))
        .route("/v1/results", post(post_result))
        .route("/v1/calls/{call_id}/certificate", get(get_certificate))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint (see docs/node-api.md)")
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

fn body_error(e: &BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the request body is too large: {e}"))
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", format!("cannot read the request body: {e}"))
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("{what}: {e}")))
}

async fn post_job(
    State(state): State<Arc<ApiState>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<SignedResult>, ApiError> {
    let metrics = state.engine.metrics().clone();
    let result = handle_job(&state, body).await;
    metrics.jobs.get_or_create(&vec![("source", "http"), ("outcome", outcome_label(&result))]).inc();
    result.map(Json)
}

fn check_version(version: u32, what: &str) -> Result<(), ApiError> {
    if version == WIRE_VERSION {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "unsupported_version",
        format!("{what} version {version} is not supported (this node speaks {WIRE_VERSION})"),
    ))
}

/// The outcome label of an answer, for the `jobs`, `commitments` and `endorsements` metrics.
fn outcome_label<T>(result: &Result<T, ApiError>) -> &'static str {
    match result {
        Ok(_) => "signed",
        Err(e) if e.code == "job_failed" || e.code == "job_timeout" || e.code == "output_too_large" => "job_error",
        Err(e) if e.code == "disagree" => "disagree",
        Err(_) => "refused",
    }
}

/// Checks what every paid request needs: the version, the service and job ([`Engine::admit`]), that the job is
/// verified one of the `allowed` ways (cheap, before any chain read of the payment) and that the call is paid.
/// Returns the service and the payer.
async fn admit_paid(
    state: &ApiState,
    req: &JobRequest,
    allowed: &[Verification],
    endpoint: &'static str,
) -> Result<(Arc<ServiceInfo>, alloy_primitives::Address), ApiError> {
    check_version(req.version, "job request")?;
    let engine = &state.engine;
    let (service, _slot) = engine.admit(req.service_id, req.job_index).await?;
    engine.require_verification(&service, req.job_index, allowed, endpoint)?;
    let payer = check_paid(state, &service, req).await?;
    Ok((service, payer))
}

async fn handle_job(
    state: &ApiState,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<SignedResult, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let req: JobRequest = parse(&body, "job request")?;
    let allowed = [Verification::Exact, Verification::Checked];
    let (service, payer) = admit_paid(state, &req, &allowed, "POST /v1/jobs").await?;
    Ok(state.engine.run_and_sign(&service, req.call_id, req.job_index, payer, req.inputs).await?)
}

async fn post_commitment(
    State(state): State<Arc<ApiState>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<SignedCommitment>, ApiError> {
    let result = handle_commitment(&state, body).await;
    state.engine.metrics().commitments.get_or_create(&outcome(outcome_label(&result))).inc();
    result.map(Json)
}

async fn handle_commitment(
    state: &ApiState,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<SignedCommitment, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let req: JobRequest = parse(&body, "job request")?;
    let (service, payer) = admit_paid(state, &req, &[Verification::Tolerant], "POST /v1/commitments").await?;
    Ok(state.engine.commit(&service, req.call_id, req.job_index, payer, req.inputs).await?)
}

async fn post_endorsement(
    State(state): State<Arc<ApiState>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<SignedResult>, ApiError> {
    let result = handle_endorsement(&state, body).await;
    state.engine.metrics().endorsements.get_or_create(&outcome(outcome_label(&result))).inc();
    result.map(Json)
}

async fn handle_endorsement(
    state: &ApiState,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<SignedResult, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let EndorseRequest { request, output } = parse(&body, "endorse request")?;
    let allowed = [Verification::Tolerant, Verification::Checked];
    let (service, payer) = admit_paid(state, &request, &allowed, "POST /v1/endorsements").await?;
    let JobRequest { call_id, job_index, inputs, .. } = request;
    Ok(state.engine.endorse(&service, call_id, job_index, payer, inputs, output).await?)
}

async fn post_batch(
    State(state): State<Arc<ApiState>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<BatchSignature>, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let req: BatchSignRequest = parse(&body, "batch sign request")?;
    check_version(req.version, "batch sign request")?;
    let signed = state.engine.sign_batch(req.service_id, &req.entries).await;
    if let Err(e) = &signed {
        tracing::debug!(service = %req.service_id, entries = req.entries.len(), error = %e, "batch not signed");
    }
    Ok(Json(signed?))
}

/// Checks that `req` is paid; returns the payer.
async fn check_paid(
    state: &ApiState,
    service: &ServiceInfo,
    req: &JobRequest,
) -> Result<alloy_primitives::Address, ApiError> {
    let chain = state.engine.chain();
    let inputs_hash = keccak256(&req.inputs);
    let unavailable = |e: crate::NodeError| ApiError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string());
    match &req.payment {
        PaymentProof::OnChain => {
            let call = chain.call(req.call_id).await.map_err(unavailable)?;
            if call.status == 0 {
                return Err(ApiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "call_not_paid",
                    format!("{} is not open on chain: open it with callJob, or pay with x402", req.call_id),
                ));
            }
            if call.status != CALL_OPEN {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "call_closed",
                    format!("{} is already settled or refunded", req.call_id),
                ));
            }
            if call.service_id != req.service_id || call.job_index != req.job_index {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "call_mismatch",
                    format!(
                        "{} is job {} of service {}, not job {} of service {}",
                        req.call_id, call.job_index, call.service_id, req.job_index, req.service_id
                    ),
                ));
            }
            if call.inputs_hash != inputs_hash {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "inputs_mismatch",
                    format!(
                        "the inputs hash to {inputs_hash}, but {} was opened with inputs hashing to {}",
                        req.call_id, call.inputs_hash
                    ),
                ));
            }
            Ok(call.payer)
        }
        PaymentProof::X402 { authorization, signature } => {
            let expected = paid_call_id(req.service_id, req.job_index, authorization.from, authorization.nonce);
            if expected != req.call_id {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "call_id_mismatch",
                    format!(
                        "an x402 payment by {} with this nonce pays for {expected}, not {}",
                        authorization.from, req.call_id
                    ),
                ));
            }
            let price = service.jobs.get(usize::from(req.job_index)).map(|j| j.price).unwrap_or_default();
            let domain = state
                .token
                .get_or_try_init(|| TokenDomain::read(chain.provider(), chain.book().contracts.vouch_usd))
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string()))?;
            let expect = PaymentExpectation {
                pay_to: chain.book().contracts.protocol,
                amount: U256::from(price),
                min_validity: MIN_VALIDITY,
            };
            let now = chain.now().await.map_err(unavailable)?;
            match check_payment(chain.provider(), domain, authorization, signature, &expect, now).await {
                Ok(()) => Ok(authorization.from),
                Err(e) if e.code() == "invalid_exact_evm_nonce_already_used" => {
                    // Already on chain (the gateway settled it): paid if the call it opened is this one.
                    let call = chain.call(req.call_id).await.map_err(unavailable)?;
                    if call.status != 0 && call.inputs_hash == inputs_hash {
                        Ok(authorization.from)
                    } else {
                        Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, e.code(), e.to_string()))
                    }
                }
                Err(e) if e.code() == "unexpected_verify_error" => {
                    Err(ApiError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string()))
                }
                Err(e) => Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, e.code(), e.to_string())),
            }
        }
    }
}

async fn post_result(
    State(state): State<Arc<ApiState>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let metrics = state.engine.metrics().clone();
    let result = accept_share(&state, body).await;
    let label = match &result {
        Ok(ShareOutcome::Accepted) => "accepted",
        Ok(ShareOutcome::Duplicate) => "duplicate",
        Ok(ShareOutcome::Equivocation { .. }) => "equivocation",
        Err(_) => "invalid",
    };
    metrics.shares.get_or_create(&outcome(label)).inc();
    result.map(|_| StatusCode::ACCEPTED)
}

async fn accept_share(
    state: &ApiState,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<ShareOutcome, ApiError> {
    let body = body.map_err(|e| body_error(&e))?;
    let share: SignedResult = parse(&body, "signed result")?;
    if share.version != WIRE_VERSION {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "unsupported_version", "unsupported signed result version"));
    }
    let chain = state.engine.chain();
    let service = chain
        .service(share.result.service_id)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "chain_unavailable", e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_service", format!("unknown {}", share.result.service_id))
        })?;
    if service.slot_of(state.engine.operator()).is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_service_operator",
            format!("this node is not an operator of {}", service.id),
        ));
    }
    let slot = service.slot_of(share.operator).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_service_operator",
            format!("{} is not an operator of {}", share.operator, service.id),
        )
    })?;
    let key = service.keys.get(slot).copied().flatten().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "no_registered_key",
            format!("{} has no registered BLS key", share.operator),
        )
    })?;
    let signature = Signature::from_compressed(&share.signature).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_signature", format!("the signature is not a G2 point: {e}"))
    })?;
    let digest = result_digest(&chain.binding(), &share.result);
    let verified = tokio::task::spawn_blocking(move || signature.verify(&key, &digest))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    if let Err(e) = verified {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            format!("the signature does not verify against {}'s registered key: {e}", share.operator),
        ));
    }
    let outcome = state.tracker.add(slot, share.operator, share.result, signature);
    if let ShareOutcome::Equivocation { operator, first } = &outcome {
        tracing::warn!(%operator, call = %share.result.call_id, first = %first.result_hash,
            second = %share.result.result_hash, "equivocation: an operator signed two results for one call (evidence kept)");
    }
    Ok(outcome)
}

async fn get_certificate(
    State(state): State<Arc<ApiState>>,
    Path(call_id): Path<String>,
) -> Result<Json<Certificate>, ApiError> {
    let call: U256 = call_id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_call_id",
            format!("{call_id:?} is not a call id (decimal or 0x hex)"),
        )
    })?;
    state.certificates.lock().ok().and_then(|c| c.get(&CallId(call)).cloned()).map(Json).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_certificate", format!("no certificate for call {call} (yet)"))
    })
}
