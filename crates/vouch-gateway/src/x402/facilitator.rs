//! The x402 facilitator HTTP API for other x402 servers that sell on Vouch's token: `POST /verify`,
//! `POST /settle` and `GET /supported`, with the reference facilitator's bodies.
//!
//! Answers: `200` with the result for every request that could be decided (`isValid: false` / `success: false` with
//! the x402 code when the payment is refused, as old and new clients parse it), `400` when the request body is not
//! a facilitator request, `502` when the chain could not be read.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, WalletProvider},
    rpc::types::Filter,
    sol_types::SolEvent as _,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vouch_contracts::{
    Contract, ContractError, TokenDomain, VouchProtocol, VouchProtocol::VouchProtocolErrors, VouchUSD::VouchUSDErrors,
    chain_now, decode_revert_for,
};
use vouch_primitives::{ServiceId, paid_call_id};

use super::{
    SCHEME_EXACT, X402_VERSION, X402Error, codes,
    verify::verify_requirements,
    wire::{
        PaymentPayload, PaymentRequirements, SettlementResponse, check_version_field, network_of, payload_from_value,
    },
};

/// How long `/settle` waits for its `openPaidCall` transaction to be mined before answering `settlement_pending`.
pub const SETTLE_RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The account that submits `/settle` transactions.
#[derive(Debug, Clone)]
pub struct FacilitatorWallet {
    /// A provider that signs with the account (gas, nonce and chain id filled in).
    pub provider: DynProvider,
    /// The account's address (listed in `/supported`'s `signers`).
    pub address: Address,
}

/// What the facilitator serves: one chain, one token, one protocol contract, whatever the resource.
#[derive(Debug, Clone)]
pub struct FacilitatorState {
    /// Chain reads.
    pub provider: DynProvider,
    /// The chain (`eip155:<chain_id>`).
    pub chain_id: u64,
    /// The token's EIP-712 domain, read from the chain (`TokenDomain::read`).
    pub token: TokenDomain,
    /// The `VouchProtocol` contract: every payment pays it.
    pub protocol: Address,
    /// The account that submits settlements; without one `/settle` answers `unexpected_settle_error`.
    pub wallet: Option<FacilitatorWallet>,
}

impl FacilitatorState {
    /// A facilitator that verifies only (no wallet).
    pub fn new(provider: DynProvider, token: TokenDomain, protocol: Address) -> Self {
        Self { provider, chain_id: token.chain_id, token, protocol, wallet: None }
    }

    /// Submits settlements with `wallet`'s default signer.
    pub fn with_wallet<P: Provider + WalletProvider + 'static>(mut self, wallet: P) -> Self {
        let address = wallet.default_signer_address();
        self.wallet = Some(FacilitatorWallet { provider: wallet.erased(), address });
        self
    }

    fn network(&self) -> String {
        network_of(self.chain_id)
    }
}

/// The facilitator endpoints: `POST /verify`, `POST /settle`, `GET /supported`.
pub fn facilitator_router(state: FacilitatorState) -> Router {
    Router::new()
        .route("/verify", post(verify_handler))
        .route("/settle", post(settle_handler))
        .route("/supported", get(supported_handler))
        .with_state(Arc::new(state))
}

/// `POST /verify`'s answer: `{isValid, invalidReason?, invalidMessage?, payer?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment pays the requirements.
    pub is_valid: bool,
    /// The x402 code when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer (the authorization's `from`), when the payment could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Address>,
}

/// `POST /settle`'s answer: a [`SettlementResponse`] plus `errorMessage` when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// The settlement result.
    #[serde(flatten)]
    pub response: SettlementResponse,
    /// Why it failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// One payment kind of `/supported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// 2.
    pub x402_version: u32,
    /// `exact`.
    pub scheme: String,
    /// `eip155:<chainId>`.
    pub network: String,
}

/// `GET /supported`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// What the facilitator verifies and settles.
    pub kinds: Vec<SupportedKind>,
    /// Extensions the facilitator acts on (none: settlement is idempotent per authorization already).
    pub extensions: Vec<String>,
    /// The accounts that submit settlements, by CAIP-2 family (`eip155:*`).
    pub signers: BTreeMap<String, Vec<Address>>,
}

/// A parsed `{x402Version, paymentPayload, paymentRequirements}` body.
struct FacilitatorRequest {
    payload: PaymentPayload,
    requirements: PaymentRequirements,
}

fn parse_request(body: &[u8]) -> Result<FacilitatorRequest, X402Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| X402Error::malformed(codes::INVALID_PAYLOAD, format!("the body is not JSON: {e}")))?;
    check_version_field(&value, "the request")?;
    let Value::Object(mut body) = value else {
        return Err(X402Error::malformed(codes::INVALID_PAYLOAD, "the request is not a JSON object"));
    };
    let payload = body
        .remove("paymentPayload")
        .ok_or_else(|| X402Error::malformed(codes::INVALID_PAYLOAD, "the request has no paymentPayload"))?;
    let requirements = body
        .remove("paymentRequirements")
        .ok_or_else(|| X402Error::malformed(codes::INVALID_PAYLOAD, "the request has no paymentRequirements"))?;
    let payload = payload_from_value(payload)
        .map_err(|e| X402Error { message: format!("paymentPayload: {}", e.message), ..e })?;
    let requirements = serde_path_to_error::deserialize(requirements).map_err(|e| {
        X402Error::malformed(codes::INVALID_PAYLOAD, format!("paymentRequirements.{}: {}", e.path(), e.inner()))
    })?;
    Ok(FacilitatorRequest { payload, requirements })
}

/// The requirements are for this facilitator's kind: `exact` on its chain, its token (with the token's EIP-712 name
/// and version in `extra`), paid to the protocol.
fn check_requirements(state: &FacilitatorState, requirements: &PaymentRequirements) -> Result<(), X402Error> {
    let refused = X402Error::refused;
    if requirements.scheme != SCHEME_EXACT {
        return Err(refused(codes::INVALID_SCHEME, format!("this facilitator settles scheme {SCHEME_EXACT:?} only")));
    }
    if requirements.network != state.network() {
        return Err(refused(
            codes::INVALID_NETWORK,
            format!("this facilitator serves {}, not {:?}", state.network(), requirements.network),
        ));
    }
    if requirements.asset != state.token.token {
        return Err(refused(
            codes::INVALID_PAYLOAD,
            format!("this facilitator serves token {}, not {}", state.token.token, requirements.asset),
        ));
    }
    if requirements.pay_to != state.protocol {
        return Err(refused(
            codes::RECIPIENT_MISMATCH,
            format!("Vouch payments pay the protocol contract {}, not {}", state.protocol, requirements.pay_to),
        ));
    }
    let named = requirements.token_domain().map_err(|e| X402Error { status: 402, ..e })?;
    state.token.check_domain(&named.name, &named.version).map_err(X402Error::from)
}

/// Verifies the request against the chain at its latest block.
async fn verify_request(state: &FacilitatorState, request: &FacilitatorRequest) -> Result<Address, X402Error> {
    check_requirements(state, &request.requirements)?;
    let now = chain_now(&state.provider).await.map_err(X402Error::from)?;
    verify_requirements(&state.provider, &state.token, &request.requirements, &request.payload, now).await
}

/// The HTTP status of a decided answer: 200, except 400 for a request that is not one and 502/500 when undecided.
fn http_status(err: &X402Error) -> StatusCode {
    match err.status {
        400 if err.code == codes::INVALID_PAYLOAD || err.code == codes::INVALID_X402_VERSION => StatusCode::OK,
        402 => StatusCode::OK,
        status => StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn verify_handler(State(state): State<Arc<FacilitatorState>>, body: Bytes) -> (StatusCode, Json<VerifyResponse>) {
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(err) => return (StatusCode::BAD_REQUEST, Json(invalid(&err, None))),
    };
    let payer = request.payload.payload.authorization.from;
    match verify_request(&state, &request).await {
        Ok(payer) => (
            StatusCode::OK,
            Json(VerifyResponse { is_valid: true, invalid_reason: None, invalid_message: None, payer: Some(payer) }),
        ),
        Err(err) => (http_status(&err), Json(invalid(&err, Some(payer)))),
    }
}

fn invalid(err: &X402Error, payer: Option<Address>) -> VerifyResponse {
    let reason = if err.is_payment_fault() { err.code } else { codes::UNEXPECTED_VERIFY_ERROR };
    VerifyResponse {
        is_valid: false,
        invalid_reason: Some(reason.to_owned()),
        invalid_message: Some(err.message.clone()),
        payer,
    }
}

async fn supported_handler(State(state): State<Arc<FacilitatorState>>) -> Json<SupportedResponse> {
    Json(SupportedResponse {
        kinds: vec![SupportedKind {
            x402_version: X402_VERSION,
            scheme: SCHEME_EXACT.to_owned(),
            network: state.network(),
        }],
        extensions: Vec::new(),
        signers: BTreeMap::from([("eip155:*".to_owned(), state.wallet.iter().map(|w| w.address).collect())]),
    })
}

/// The Vouch call a payment opens, from `paymentRequirements.extra`.
struct VouchCall {
    service_id: u64,
    job_index: u8,
    inputs_hash: B256,
}

fn vouch_call(requirements: &PaymentRequirements) -> Result<VouchCall, X402Error> {
    const HOW: &str = "Vouch payments settle with a certificate through the gateway (VouchProtocol.settlePaidBatch); \
                       /settle only opens a paid call (VouchProtocol.openPaidCall), which needs paymentRequirements.extra \
                       to carry serviceId, jobIndex and inputsHash: a bare transfer to the protocol would be \
                       unattributed surplus";
    let extra = requirements.extra.as_ref();
    let field = |key: &str| extra.and_then(|e| e.get(key)).filter(|v| !v.is_null());
    let (Some(service), Some(job), Some(inputs)) = (field("serviceId"), field("jobIndex"), field("inputsHash")) else {
        return Err(X402Error::refused(codes::INVALID_PAYLOAD, HOW));
    };
    let bad = |key: &str, want: &str| {
        X402Error::refused(codes::INVALID_PAYLOAD, format!("paymentRequirements.extra.{key} must be {want}"))
    };
    let integer = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let service_id = integer(service).ok_or_else(|| bad("serviceId", "a service id (an integer)"))?;
    let job_index = integer(job)
        .and_then(|j| u8::try_from(j).ok())
        .ok_or_else(|| bad("jobIndex", "a job index (an integer below 256)"))?;
    let inputs_hash = inputs
        .as_str()
        .filter(|s| s.len() == 66 && s.starts_with("0x"))
        .and_then(|s| s.parse::<B256>().ok())
        .ok_or_else(|| bad("inputsHash", "0x and 64 hex digits (keccak256 of the inputs)"))?;
    Ok(VouchCall { service_id, job_index, inputs_hash })
}

async fn settle_handler(State(state): State<Arc<FacilitatorState>>, body: Bytes) -> (StatusCode, Json<SettleResponse>) {
    let network = state.network();
    let failed = |err: &X402Error, payer: Option<Address>, transaction: String| {
        let reason = if err.is_payment_fault() || err.code == codes::SETTLEMENT_PENDING {
            err.code
        } else {
            codes::UNEXPECTED_SETTLE_ERROR
        };
        let mut response = SettlementResponse::failed(network.clone(), payer, reason);
        response.transaction = transaction;
        Json(SettleResponse { response, error_message: Some(err.message.clone()) })
    };
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(err) => return (StatusCode::BAD_REQUEST, failed(&err, None, String::new())),
    };
    let payer = request.payload.payload.authorization.from;
    match settle(&state, &request).await {
        Ok((transaction, amount)) => (
            StatusCode::OK,
            Json(SettleResponse {
                response: SettlementResponse::settled(network.clone(), transaction, payer, amount),
                error_message: None,
            }),
        ),
        Err((err, transaction)) => (http_status(&err), failed(&err, Some(payer), transaction)),
    }
}

/// Opens the paid call the payment pays for (idempotently: a call this authorization already opened is success).
/// Returns the transaction hash and the amount, or the error and the transaction hash if one was sent.
async fn settle(state: &FacilitatorState, request: &FacilitatorRequest) -> Result<(String, U256), (X402Error, String)> {
    let none = |err: X402Error| (err, String::new());
    let Some(wallet) = &state.wallet else {
        return Err(none(X402Error::refused(
            codes::UNEXPECTED_SETTLE_ERROR,
            "this gateway does not submit facilitator settlements",
        )));
    };
    let call = vouch_call(&request.requirements).map_err(none)?;
    let auth = request.payload.payload.authorization;
    let protocol = VouchProtocol::new(state.protocol, &state.provider);

    // Idempotent: the call this authorization pays for may already be open (a retry, or another submitter).
    let call_id = paid_call_id(ServiceId(call.service_id), call.job_index, auth.from, auth.nonce);
    if let Some(transaction) = opened_by(state, &protocol, call_id.0).await.map_err(none)? {
        return Ok((transaction, auth.value));
    }
    verify_request(state, request).await.map_err(none)?;

    let paid = VouchProtocol::PaidCall {
        serviceId: call.service_id,
        jobIndex: call.job_index,
        inputsHash: call.inputs_hash,
        from: auth.from,
        value: auth.value,
        validAfter: auth.valid_after,
        validBefore: auth.valid_before,
        nonce: auth.nonce,
        signature: request.payload.payload.signature.clone(),
    };
    let submit = VouchProtocol::new(state.protocol, &wallet.provider);
    let pending = match submit.openPaidCall(paid).send().await {
        Ok(pending) => pending,
        Err(err) => {
            return match decode_revert_for(Contract::Protocol, err) {
                Ok(ContractError::Protocol(VouchProtocolErrors::PaidCallAlreadyOpened(_))) => {
                    // Opened between our read and our transaction.
                    let transaction = opened_by(state, &protocol, call_id.0).await.map_err(none)?.unwrap_or_default();
                    Ok((transaction, auth.value))
                }
                Ok(revert) => Err(none(settle_revert(&revert))),
                Err(err) => Err(none(X402Error::unavailable(
                    codes::UNEXPECTED_SETTLE_ERROR,
                    format!("openPaidCall could not be sent: {err}"),
                ))),
            };
        }
    };
    let transaction = pending.tx_hash().to_string();
    match tokio::time::timeout(SETTLE_RECEIPT_TIMEOUT, pending.get_receipt()).await {
        Ok(Ok(receipt)) if receipt.status() => Ok((transaction, auth.value)),
        Ok(Ok(_)) => Err((
            X402Error::unavailable(codes::UNEXPECTED_SETTLE_ERROR, "the openPaidCall transaction reverted"),
            transaction,
        )),
        Ok(Err(err)) => Err((
            X402Error::unavailable(codes::SETTLEMENT_PENDING, format!("the openPaidCall receipt is unknown: {err}")),
            transaction,
        )),
        Err(_) => Err((
            X402Error::unavailable(
                codes::SETTLEMENT_PENDING,
                format!("the openPaidCall transaction was not mined within {SETTLE_RECEIPT_TIMEOUT:?}"),
            ),
            transaction,
        )),
    }
}

/// The x402 code of an `openPaidCall` revert.
fn settle_revert(revert: &ContractError) -> X402Error {
    let message = format!("openPaidCall reverted: {revert}");
    match revert {
        ContractError::Protocol(VouchProtocolErrors::AuthorizationAlreadyUsed(_))
        | ContractError::VouchUsd(VouchUSDErrors::AuthorizationAlreadyUsed(_)) => {
            X402Error::refused(codes::NONCE_ALREADY_USED, message)
        }
        ContractError::Protocol(VouchProtocolErrors::WrongPaymentValue(_)) => {
            X402Error::refused(codes::VALUE_MISMATCH, message)
        }
        ContractError::Protocol(_) => X402Error::refused(codes::INVALID_PAYLOAD, message),
        _ => X402Error::refused(codes::UNEXPECTED_SETTLE_ERROR, message),
    }
}

/// If the paid call `call_id` is open (or was settled or refunded), the hash of the transaction that opened it
/// (`""` if its `PaidCallOpened` log cannot be found).
async fn opened_by<P: Provider>(
    state: &FacilitatorState,
    protocol: &VouchProtocol::VouchProtocolInstance<P>,
    call_id: U256,
) -> Result<Option<String>, X402Error> {
    let unavailable = |e: &dyn std::fmt::Display| X402Error::unavailable(codes::UNEXPECTED_SETTLE_ERROR, e.to_string());
    let recorded =
        protocol.getCall(call_id).call().await.map_err(|e| unavailable(&format_args!("getCall({call_id}): {e}")))?;
    if recorded.status == 0 {
        return Ok(None);
    }
    let filter = Filter::new()
        .address(state.protocol)
        .event_signature(VouchProtocol::PaidCallOpened::SIGNATURE_HASH)
        .topic1(B256::from(call_id))
        .from_block(0);
    let transaction = match state.provider.get_logs(&filter).await {
        Ok(logs) => logs.first().and_then(|log| log.transaction_hash).map(|h| h.to_string()).unwrap_or_default(),
        Err(err) => {
            tracing::warn!(%err, %call_id, "the PaidCallOpened log of an open paid call could not be read");
            String::new()
        }
    };
    Ok(Some(transaction))
}
