//! Tests on the real model (run `scripts/fetch-models.sh` first). Generations are short (≤ 24 tokens) to keep
//! the suite fast in the dev profile.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use vouch_sdk::{Address, CallId, JobCall, JobError, ServiceId};

use super::*;

fn files() -> ModelFiles {
    ModelFiles::locate().expect("model files (run scripts/fetch-models.sh)")
}

/// Serializes the tests that run the model: candle's CPU kernels synchronize their threads with a spin barrier,
/// which stalls badly when several computations compete for the same two cores.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pinned model, loaded once per test binary.
fn pinned() -> Arc<TextGen> {
    static MODEL: OnceLock<Arc<TextGen>> = OnceLock::new();
    MODEL.get_or_init(|| Arc::new(TextGen::load_with(&files(), &LoadOptions::default()).unwrap())).clone()
}

fn variant(options: &LoadOptions) -> TextGen {
    TextGen::load_with(&files(), options).unwrap()
}

fn request(prompt: &str, max_tokens: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }))
    .unwrap()
}

/// An internally consistent output for `tokens` (what a careful cheater would send).
fn forge(body: &[u8], tokens: &[u32], finish: FinishReason) -> Vec<u8> {
    let model = pinned();
    let parsed = parse_request(body).unwrap();
    let prompt = model.prompt_tokens(&parsed).unwrap();
    model.render_output(body, &parsed, prompt.len(), tokens, finish).unwrap()
}

fn completion(output: &[u8]) -> ChatCompletion {
    serde_json::from_slice(output).unwrap()
}

fn rejection(result: Result<CheckReport, CheckError>) -> Rejection {
    match result {
        Err(CheckError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn request_error(body: &str) -> String {
    parse_request(body.as_bytes()).unwrap_err().to_string()
}

#[test]
fn requests_are_validated_before_any_model_work() {
    let ok =
        parse_request(br#"{"model":"SmolLM2-135M-Instruct","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
    assert_eq!(ok.max_tokens, DEFAULT_MAX_TOKENS);
    let ok = parse_request(
        br#"{"model":"smollm2-135m-instruct","messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}],
            "max_completion_tokens":7,"temperature":0.0,"stream":false,"n":1,"top_p":1,"seed":3,"stop":null,"user":"x"}"#,
    )
    .unwrap();
    assert_eq!(ok.max_tokens, 7);
    assert_eq!(ok.messages[0].role, Role::System);

    let user = r#"[{"role":"user","content":"hi"}]"#;
    let cases = [
        (format!(r#"{{"model":"gpt-4o","messages":{user}}}"#), "`model` is \"gpt-4o\""),
        (format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"temperature":0.7}}"#), "`temperature` is 0.7"),
        (
            format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"stream":true}}"#),
            "`stream` is not supported",
        ),
        (format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"n":2}}"#), "`n` is 2"),
        (format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"stop":["\n"]}}"#), "`stop` is not supported"),
        (format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"max_tokens":0}}"#), "`max_tokens` is 0"),
        (format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"max_tokens":257}}"#), "between 1 and 256"),
        (
            format!(
                r#"{{"model":"smollm2-135m-instruct","messages":{user},"max_tokens":5,"max_completion_tokens":6}}"#
            ),
            "differ",
        ),
        (
            format!(r#"{{"model":"smollm2-135m-instruct","messages":{user},"logprobs":true}}"#),
            "unknown field `logprobs`",
        ),
        (r#"{"model":"smollm2-135m-instruct","messages":[]}"#.into(), "`messages` is empty"),
        (
            r#"{"model":"smollm2-135m-instruct","messages":[{"role":"tool","content":"x"}]}"#.into(),
            "at `messages[0].role`: unknown variant `tool`",
        ),
        (
            r#"{"model":"smollm2-135m-instruct","messages":[{"role":"user","content":[{"type":"text"}]}]}"#.into(),
            "at `messages[0].content`",
        ),
        (
            r#"{"model":"smollm2-135m-instruct","messages":[{"role":"user","content":"a<|im_end|>b"}]}"#.into(),
            "`messages[0].content` contains the reserved marker `<|im_end|>`",
        ),
        (format!(r#"{{"model":"smollm2-135m-instruct","messages":{user}}} x"#), "bytes after the JSON value"),
    ];
    for (body, expected) in cases {
        let message = request_error(&body);
        assert!(message.contains(expected), "{body}: {message}");
    }
    let many = vec![r#"{"role":"user","content":"a"}"#; MAX_MESSAGES + 1].join(",");
    assert!(
        request_error(&format!(r#"{{"model":"smollm2-135m-instruct","messages":[{many}]}}"#)).contains("65 messages")
    );
    let long = "a".repeat(MAX_CONTENT_CHARS + 1);
    let message = request_error(&format!(
        r#"{{"model":"smollm2-135m-instruct","messages":[{{"role":"user","content":"{long}"}}]}}"#
    ));
    assert!(message.contains("16385 characters"), "{message}");
    assert!(request_error(&" ".repeat(MAX_REQUEST_BYTES + 1)).contains("bytes; at most 65536"));
}

#[test]
fn chat_template_and_tokenizer_match_hugging_face() {
    let _heavy = heavy();
    let model = pinned();
    // Rendered and tokenized with HF transformers (apply_chat_template, add_generation_prompt=True) on the same
    // GGUF template and tokenizer.json.
    let messages = vec![Message { role: Role::User, content: "What is the capital of France?".into() }];
    let rendered = model.render_prompt(&messages).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert!(rendered.contains(DEFAULT_SYSTEM_MESSAGE));
    let request = parse_request(&request("What is the capital of France?", 8)).unwrap();
    assert_eq!(
        model.prompt_tokens(&request).unwrap(),
        [
            1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182,
            2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198
        ]
    );
    // A given system message replaces the default; earlier assistant turns; non-ASCII text.
    let messages = vec![
        Message { role: Role::System, content: "Be terse.".into() },
        Message { role: Role::User, content: "Hi".into() },
        Message { role: Role::Assistant, content: "Hello!".into() },
        Message { role: Role::User, content: "Name a colour. <b>é</b> 日本".into() },
    ];
    let rendered = model.render_prompt(&messages).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n\
         <|im_start|>user\nName a colour. <b>é</b> 日本<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        model.encode(&rendered).unwrap(),
        [
            1, 9690, 198, 6077, 1733, 313, 30, 2, 198, 1, 4093, 198, 26843, 2, 198, 1, 520, 9531, 198, 19556, 17, 2,
            198, 1, 4093, 198, 5820, 253, 7302, 30, 2067, 82, 46, 2756, 9617, 82, 46, 17097, 241, 115, 40993, 2, 198,
            1, 520, 9531, 198
        ]
    );
    // The tokenizer trap of shared/notes/models.md: no prefix space.
    assert_eq!(model.encode("Once upon a time").unwrap(), [6403, 1980, 253, 655]);
}

#[test]
fn greedy_generation_is_deterministic_and_checks_itself() {
    let _heavy = heavy();
    let model = pinned();
    let body = request("What is the capital of France?", 24);
    let first = model.complete(&body).unwrap();
    let second = model.complete(&body).unwrap();
    assert_eq!(first, second, "greedy generation must give identical bytes");
    let output = completion(&first);
    println!("{}", String::from_utf8_lossy(&first));
    let choice = &output.choices[0];
    assert!(choice.message.content.contains("Paris"), "{}", choice.message.content);
    assert_eq!(choice.finish_reason, FinishReason::Stop);
    assert_eq!(output.vouch.tokens.last(), Some(&IM_END));
    assert_eq!(output.vouch.profile, PROFILE);
    assert_eq!(output.id, completion_id(&body));
    assert_eq!(output.created, 0);
    assert_eq!(output.model, "smollm2-135m-instruct");
    assert_eq!(output.usage.prompt_tokens, 37);
    assert_eq!(output.usage.completion_tokens, output.vouch.tokens.len());
    assert_eq!(output.usage.total_tokens, 37 + output.vouch.tokens.len());
    assert_eq!(model.decode(&output.vouch.tokens[..output.vouch.tokens.len() - 1]).unwrap(), choice.message.content);

    let report = check_completion(&model, &body, &first).unwrap();
    println!("self-check: {report:?}");
    assert_eq!(report.completion_tokens, output.vouch.tokens.len());
    assert!(report.canonical_tokens);

    // A length-limited generation: exactly max_tokens tokens, no end token.
    let body = request("Tell me a short story about a robot.", 16);
    let output = model.complete(&body).unwrap();
    let parsed = completion(&output);
    assert_eq!(parsed.choices[0].finish_reason, FinishReason::Length);
    assert_eq!(parsed.vouch.tokens.len(), 16);
    check_completion(&model, &body, &output).unwrap();
}

#[test]
fn forward_pass_agrees_with_candle_transformers() {
    let _heavy = heavy();
    // Our forward on the shipped weights against candle-transformers' quantized llama (last position only, the
    // one it returns). Not bit-identical: the operations are ordered differently, and the activation
    // quantization of the Q4_1 kernel amplifies rounding differences (README).
    let ours = variant(&LoadOptions { weights: WeightFormat::AsShipped, ..Default::default() });
    let bytes = std::fs::read(files().gguf).unwrap();
    let mut cursor = std::io::Cursor::new(&bytes);
    let content = candle_core::quantized::gguf_file::Content::read(&mut cursor).unwrap();
    let device = candle_core::Device::Cpu;
    let mut theirs =
        candle_transformers::models::quantized_llama::ModelWeights::from_gguf(content, &mut cursor, &device).unwrap();
    let request = parse_request(&request("Why is the sky blue?", 8)).unwrap();
    let tokens = ours.prompt_tokens(&request).unwrap();
    let ids = candle_core::Tensor::new(tokens.as_slice(), &device).unwrap().unsqueeze(0).unwrap();
    let expected = theirs.forward(&ids, 0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let got = ours.logits(&tokens, tokens.len() - 1).unwrap().remove(0);
    let max_diff = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // Their greedy choice passes our verification rule, and no logit is far off.
    let their_choice = llama::argmax(&expected).unwrap();
    let margin = got[llama::argmax(&got).unwrap()] - got[their_choice];
    println!("ours vs candle-transformers: max |Δlogit| {max_diff}, margin of their argmax in ours {margin}");
    assert!(margin <= TOLERANCE.max_margin, "{margin}");
    assert!(max_diff < 3.0, "{max_diff}");
}

#[test]
fn prompts_with_the_default_system_message_resume_after_the_shared_prefix() {
    let _heavy = heavy();
    let model = pinned();
    let prefix = model.prefix.as_ref().expect("the template has a shared prefix").tokens.clone();
    let text = model.decode(&prefix).unwrap();
    assert_eq!(text, format!("<|im_start|>system\n{DEFAULT_SYSTEM_MESSAGE}<|im_end|>\n<|im_start|>user\n"));

    let prompt = model.prompt_tokens(&parse_request(&request("Why is the sky blue?", 8)).unwrap()).unwrap();
    assert_eq!(model.resume(&prompt, prompt.len() - 1).1, prefix.len());
    // Never when logits are needed inside the prefix, nor for another system message.
    assert_eq!(model.resume(&prompt, prefix.len() - 1).1, 0);
    let own = serde_json::json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}],
    });
    let own = model.prompt_tokens(&parse_request(&serde_json::to_vec(&own).unwrap()).unwrap()).unwrap();
    assert_eq!(model.resume(&own, own.len() - 1).1, 0);

    // Resuming is the one-pass computation up to rounding (the attention products have other shapes): the greedy
    // choice of a pass from the first token passes the check of a resumed pass, with a small margin.
    let full = model.logits(&prompt, prompt.len() - 1).unwrap().remove(0);
    let choice = llama::argmax(&full).unwrap() as u32;
    let score = model.score(&prompt, &[choice]).unwrap()[0];
    println!(
        "shared prefix of {} tokens; one-pass greedy choice {choice} in the resumed pass: {score:?}",
        prefix.len()
    );
    assert!(score.margin <= 1.0 && score.rank < 3, "{score:?}");
}

#[test]
fn honest_executors_on_other_kernels_pass() {
    let _heavy = heavy();
    let checker = pinned();
    for weights in [WeightFormat::Q8_0Unpadded, WeightFormat::AsShipped, WeightFormat::F32] {
        let executor = variant(&LoadOptions { weights, ..Default::default() });
        for prompt in ["Why is the sky blue?", "Write a haiku about the sea."] {
            let body = request(prompt, 16);
            let output = executor.complete(&body).unwrap();
            let report = check_completion(&checker, &body, &output)
                .unwrap_or_else(|e| panic!("{} executor on {prompt:?}: {e}", weights.name()));
            println!(
                "{:13} {prompt:30} {} tokens, worst margin {:.3} (position {}), worst rank {}, argmax matches {}/{}",
                weights.name(),
                report.completion_tokens,
                report.worst_margin,
                report.worst_position,
                report.worst_rank,
                report.argmax_matches,
                report.completion_tokens
            );
        }
    }
}

#[test]
fn a_different_model_is_rejected() {
    let _heavy = heavy();
    let checker = pinned();
    let cheaters = [
        ("half the layers", LoadOptions { skip_layers: (1..30).step_by(2).collect(), ..Default::default() }),
        ("weights perturbed by 50%", LoadOptions { perturbation: 0.5, ..Default::default() }),
    ];
    for (name, options) in cheaters {
        let cheater = variant(&options);
        for prompt in ["Why is the sky blue?", "Write a haiku about the sea."] {
            let body = request(prompt, 8);
            let output = cheater.complete(&body).unwrap();
            let rejection = rejection(check_completion(&checker, &body, &output));
            println!("{name:26} {prompt:30} rejected: {rejection}");
            assert!(matches!(rejection.reason, RejectReason::TokenRejected { .. }), "{rejection}");
            assert!(rejection.position.is_some());
        }
    }
}

#[test]
fn truncated_tampered_and_foreign_outputs_are_rejected() {
    let _heavy = heavy();
    let model = pinned();
    let body = request("Tell me a short story about a robot.", 24);
    let honest = model.complete(&body).unwrap();
    let tokens = completion(&honest).vouch.tokens;
    assert_eq!(tokens.len(), 24);
    check_completion(&model, &body, &honest).unwrap();

    // Truncated, with an end token appended: the end token fails at its position.
    let mut cut = tokens[..10].to_vec();
    cut.push(IM_END);
    let r = rejection(check_completion(&model, &body, &forge(&body, &cut, FinishReason::Stop)));
    println!("truncated + <|im_end|>: {r}");
    assert_eq!(r.position, Some(10));
    assert!(matches!(r.reason, RejectReason::TokenRejected { token: IM_END, .. }), "{r}");
    // Truncated, claiming "stop" without an end token.
    let r = rejection(check_completion(&model, &body, &forge(&body, &tokens[..10], FinishReason::Stop)));
    assert_eq!((r.position, &r.reason), (Some(9), &RejectReason::MissingEnd { token: tokens[9] }));
    // Truncated, claiming "length".
    let r = rejection(check_completion(&model, &body, &forge(&body, &tokens[..10], FinishReason::Length)));
    assert_eq!(r.reason, RejectReason::LengthNotReached { claimed: 10, max_tokens: 24 });

    // One token replaced in the middle, the rest re-rendered consistently: rejected exactly there.
    let parsed = parse_request(&body).unwrap();
    let prompt = model.prompt_tokens(&parsed).unwrap();
    let mut fed = prompt;
    fed.extend_from_slice(&tokens[..12]);
    let row = model.logits(&fed, fed.len() - 1).unwrap().remove(0);
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    let mut tampered = tokens.clone();
    tampered[12] = order[50] as u32; // a plausible-looking but wrong token: the 51st most likely
    let r = rejection(check_completion(&model, &body, &forge(&body, &tampered, FinishReason::Length)));
    println!("tampered token: {r}");
    assert_eq!(r.position, Some(12));
    // About 50: this pass and the checker's have other shapes (and the checker resumes after the shared prefix),
    // so their logits differ by rounding noise, which can swap neighbours in the ranking.
    assert!(matches!(r.reason, RejectReason::TokenRejected { rank: 45..=55, .. }), "{r}");

    // A cached answer to another prompt, re-rendered for this one.
    let other = request("Why is the sky blue?", 24);
    let other_output = model.complete(&other).unwrap();
    let foreign = completion(&other_output).vouch.tokens;
    let finish = if foreign.last() == Some(&IM_END) { FinishReason::Stop } else { FinishReason::Length };
    let r = rejection(check_completion(&model, &body, &forge(&body, &foreign, finish)));
    println!("cached answer to another prompt: {r}");
    assert!(matches!(r.reason, RejectReason::TokenRejected { .. }), "{r}");
    // … or sent as it was: its id (and usage) belong to the other request.
    let r = rejection(check_completion(&model, &body, &other_output));
    assert!(matches!(&r.reason, RejectReason::FieldMismatch { field, .. } if field == "id"), "{r}");

    // Content that does not decode from the tokens.
    let mut edited = completion(&honest);
    let content = &mut edited.choices[0].message.content;
    let at_byte = (0..=content.len() / 2).rev().find(|&i| content.is_char_boundary(i)).unwrap();
    content.insert(at_byte, '!');
    let r = rejection(check_completion(&model, &body, &serde_json::to_vec(&edited).unwrap()));
    assert_eq!(r.reason, RejectReason::ContentMismatch { at_byte });

    // Other fields, the profile, the token rules, the canonical form.
    let mut edited = completion(&honest);
    edited.usage.completion_tokens += 1;
    let r = rejection(check_completion(&model, &body, &serde_json::to_vec(&edited).unwrap()));
    assert!(
        matches!(&r.reason, RejectReason::FieldMismatch { field, .. } if field == "usage.completion_tokens"),
        "{r}"
    );
    let mut edited = completion(&honest);
    edited.vouch.profile = "llama-70b".into();
    let r = rejection(check_completion(&model, &body, &serde_json::to_vec(&edited).unwrap()));
    assert!(matches!(r.reason, RejectReason::ProfileMismatch { .. }), "{r}");
    let mut early = tokens.clone();
    early[5] = IM_END;
    let r = rejection(check_completion(&model, &body, &forge(&body, &early, FinishReason::Length)));
    assert_eq!((r.position, r.reason), (Some(5), RejectReason::EarlyEnd { token: IM_END }));
    let mut unknown = tokens.clone();
    unknown[3] = 49_152;
    let mut edited = completion(&honest);
    edited.vouch.tokens = unknown;
    let r = rejection(check_completion(&model, &body, &serde_json::to_vec(&edited).unwrap()));
    assert_eq!((r.position, r.reason), (Some(3), RejectReason::UnknownToken { token: 49_152, vocab: 49_152 }));
    let r = rejection(check_completion(
        &model,
        &body,
        &forge(&body, &[tokens.as_slice(), &tokens[..1]].concat(), FinishReason::Length),
    ));
    assert_eq!(r.reason, RejectReason::TooManyTokens { claimed: 25, max_tokens: 24 });
    let pretty = serde_json::to_vec_pretty(&completion(&honest)).unwrap();
    let r = rejection(check_completion(&model, &body, &pretty));
    assert!(matches!(r.reason, RejectReason::NotCanonical { .. }), "{r}");
    let r = rejection(check_completion(&model, b"{}", &honest));
    assert!(matches!(r.reason, RejectReason::InvalidRequest(_)), "{r}");
    let r = rejection(check_completion(&model, &body, b"not json"));
    assert!(matches!(r.reason, RejectReason::Malformed(_)), "{r}");
    let r = rejection(check_completion(&model, &body, &vec![b' '; MAX_OUTPUT_BYTES + 1]));
    assert!(r.to_string().contains("at most 65536"), "{r}");
}

#[test]
fn verification_costs_a_fraction_of_generation() {
    let _heavy = heavy();
    let model = pinned();
    let body = request("Tell me a short story about a robot.", 24);
    let started = Instant::now();
    let output = model.complete(&body).unwrap();
    let generate = started.elapsed();
    let started = Instant::now();
    let report = check_completion(&model, &body, &output).unwrap();
    let check = started.elapsed();
    // Printed, never asserted: timings depend on the machine and its load.
    println!(
        "{} prompt + {} completion tokens: generation {generate:?}, check {check:?}, ratio {:.3}",
        report.prompt_tokens,
        report.completion_tokens,
        check.as_secs_f64() / generate.as_secs_f64()
    );
}

fn call(inputs: impl Into<vouch_sdk::Bytes>) -> JobCall {
    JobCall::new(ServiceId(1), CallId::from(1), CHAT, Address::ZERO, inputs)
}

#[test]
fn the_router_runs_the_job_and_the_state_checks_it() {
    let _heavy = heavy();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let state = TextGenState::with_model(pinned());
        let router = router_with_state(state.clone());
        assert_eq!(router.jobs(), vec![CHAT]);
        let body = request("What is 12 times 7?", 12);
        let output = router.call(call(body.clone())).await.unwrap();
        assert_eq!(&output.bytes[..], &pinned().complete(&body).unwrap()[..]);
        let report = state.check(body.clone().into(), output.bytes.clone()).await.unwrap();
        assert!(report.completion_tokens <= 12);

        match router.call(call(r#"{"model":"smollm2-135m-instruct","messages":[],"max_tokens":4}"#)).await {
            Err(JobError::BadInput(message)) => assert!(message.contains("`messages` is empty"), "{message}"),
            other => panic!("expected bad input, got {other:?}"),
        }
        // Too long once templated: refused as the caller's fault, after tokenization.
        let words = "word ".repeat(MAX_PROMPT_TOKENS);
        match router.call(call(request(&words, 4))).await {
            Err(JobError::BadInput(message)) => assert!(message.contains("tokens once templated"), "{message}"),
            other => panic!("expected bad input, got {other:?}"),
        }
        assert_eq!(TextGenBlueprint::new(state).jobs(), JOBS.to_vec());
    });
}

#[test]
fn model_files_are_located_and_pinned() {
    let _heavy = heavy();
    let missing =
        TextGen::load_with(&ModelFiles::in_dir(std::path::Path::new("/nonexistent")), &LoadOptions::default());
    let message = missing.unwrap_err().to_string();
    assert!(
        message.contains("/nonexistent/smollm2-135m-instruct/") && message.contains("scripts/fetch-models.sh"),
        "{message}"
    );
    // A file that is not the pinned one (the tokenizer where the GGUF should be).
    let real = files();
    let swapped = ModelFiles { gguf: real.tokenizer.clone(), tokenizer: real.tokenizer };
    let message = TextGen::load_with(&swapped, &LoadOptions::default()).unwrap_err().to_string();
    assert!(message.contains("sha256") && message.contains(GGUF_SHA256), "{message}");
}
