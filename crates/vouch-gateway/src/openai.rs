//! OpenAI-compatible routes: `POST /v1/embeddings` and `POST /v1/chat/completions` are routed by the request's
//! `model` to a service job that speaks that dialect (configured in `[[openai]]` of gateway.toml), through the same
//! x402 flow as any job. The answer is the job's output — an OpenAI response object — with the certificate added
//! as the field `vouch_certificate` (and the call id as `vouch_call_id`); the `x-vouch-certificate` header carries
//! it too. With `Prefer: respond-async` the `202`'s result URL is `/v1/calls/{callId}?format=openai`, which answers
//! in this representation.

use std::sync::Arc;

use axum::{
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    api::{GatewayError, GatewayState, paid_job},
    calls::AnswerFormat,
};

/// Which OpenAI endpoint a model is served on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenAiEndpoint {
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/chat/completions`.
    ChatCompletions,
}

/// One model served through an OpenAI-compatible route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiModel {
    /// The `model` a client names.
    pub model: String,
    /// The route.
    pub endpoint: OpenAiEndpoint,
    /// The service that runs it.
    pub service: u64,
    /// Its job (takes the OpenAI request body as input and returns the OpenAI response object).
    pub job: u8,
}

/// Largest body this module reads back from a job answer (the answer itself was built by the gateway).
const MAX_ANSWER: usize = 64 << 20;

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    route(&state, OpenAiEndpoint::Embeddings, &headers, body).await
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    route(&state, OpenAiEndpoint::ChatCompletions, &headers, body).await
}

async fn route(
    state: &Arc<GatewayState>,
    endpoint: OpenAiEndpoint,
    headers: &HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    let model = match &body {
        Ok(bytes) => serde_json::from_slice::<Value>(bytes)
            .map_err(|e| {
                GatewayError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not JSON: {e}"))
            })?
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                GatewayError::new(StatusCode::BAD_REQUEST, "invalid_request", "the body has no \"model\"")
            })?,
        Err(_) => String::new(),
    };
    let target = state.openai.iter().find(|m| m.endpoint == endpoint && (m.model == model || body.is_err()));
    let Some(target) = target else {
        let served: Vec<&str> =
            state.openai.iter().filter(|m| m.endpoint == endpoint).map(|m| m.model.as_str()).collect();
        return Err(GatewayError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("model {model:?} is not served here (served: {served:?})"),
        ));
    };
    let response = paid_job(state, target.service, target.job, headers, body, AnswerFormat::OpenAi).await?;
    to_openai(response, target.service, target.job).await
}

/// The OpenAI representation of a paid call's answer (of `job` of `service`): a `200`'s output object with
/// `vouch_certificate` and `vouch_call_id` added, and the answer's headers but its length and type; any other answer
/// as it is. Used by the routes and by `GET /v1/calls/{callId}?format=openai`.
pub(crate) async fn to_openai(response: Response, service: u64, job: u8) -> Result<Response, GatewayError> {
    if response.status() != StatusCode::OK {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER)
        .await
        .map_err(|e| GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let mut output = answer.get("output").cloned().unwrap_or(Value::Null);
    let Some(object) = output.as_object_mut() else {
        return Err(GatewayError::new(
            StatusCode::BAD_GATEWAY,
            "incompatible_service",
            format!("service {service} job {job} did not return an OpenAI response object"),
        ));
    };
    object.insert("vouch_certificate".into(), answer.get("certificate").cloned().unwrap_or(Value::Null));
    object.insert("vouch_call_id".into(), answer.get("callId").cloned().unwrap_or(Value::Null));
    let mut response = axum::Json(output).into_response();
    for (name, value) in &parts.headers {
        if name != "content-length" && name != "content-type" {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(response)
}
