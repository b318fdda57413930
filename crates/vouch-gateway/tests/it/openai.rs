//! OpenAI-compatible routes: the request's `model` picks the service job, payment is the same x402 flow, and the
//! answer is the job's OpenAI object with the certificate attached.

use reqwest::StatusCode;
use serde_json::{Value, json};
use vouch_gateway::openai::{OpenAiEndpoint, OpenAiModel};
use vouch_primitives::Certificate;
use vouch_sdk::Json;

use crate::common::{Setup, TestResult, pay, payment_required};

/// A deterministic stand-in for a chat model: answers with the last user message reversed.
async fn reverse_chat(Json(req): Json<Value>) -> Json<Value> {
    let last = req["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
    Json(json!({
        "id": "chatcmpl-vouch",
        "object": "chat.completion",
        "model": req["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": last.chars().rev().collect::<String>()}}],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_are_routed_by_model_paid_with_x402_and_certified() -> TestResult {
    const CHAT: u8 = 4;
    let mut setup = Setup::start_with(vouch_echo::router().route(CHAT, reverse_chat), 6_667).await?;
    setup.config.openai = vec![OpenAiModel {
        model: "reverse-1".into(),
        endpoint: OpenAiEndpoint::ChatCompletions,
        service: setup.net.service_id().0,
        job: CHAT,
    }];
    setup.restart_gateway().await?;
    let url = format!("{}/v1/chat/completions", setup.gateway().url());
    let body = serde_json::to_vec(&json!({"model": "reverse-1", "messages": [{"role": "user", "content": "vouch"}]}))?;
    let client = reqwest::Client::new();

    let r = client.post(&url).body(body.clone()).send().await?;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let required = payment_required(r.headers())?;
    assert_eq!(required["accepts"][0]["amount"], setup.net.devnet().jobs()[usize::from(CHAT)].price.to_string());
    let header = pay(&setup, &required, setup.net.devnet().customer().signer(), |_| {}).await?;
    let r = client.post(&url).header("PAYMENT-SIGNATURE", header).body(body).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-vouch-certificate"));
    assert!(r.headers().contains_key("payment-response"));
    let answer: Value = r.json().await?;
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"], "hcuov");
    let cert: Certificate = serde_json::from_value(answer["vouch_certificate"].clone())?;
    assert_eq!(cert.signer_bitmap.count_ones(), 3);

    let unknown = json!({"model": "gpt-5", "messages": []});
    let r = client.post(&url).json(&unknown).send().await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let b: Value = r.json().await?;
    assert_eq!(b["error"]["code"], "model_not_found");
    let r = client
        .post(format!("{}/v1/embeddings", setup.gateway().url()))
        .json(&json!({"model": "reverse-1", "input": "x"}))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a chat model is not served as embeddings");
    Ok(())
}
