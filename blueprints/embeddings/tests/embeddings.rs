//! The embeddings blueprint on the real model (no stubs): the pinned all-MiniLM-L6-v2 from `scripts/fetch-models.sh`.
//!
//! - golden: candle matches sentence-transformers on PyTorch (`golden.json`, written by
//!   `bench/reference/embed_reference.py golden`);
//! - honest noise (batch composition, thread count, implementation) agrees under [`EmbeddingTolerance`];
//! - cheaters (a layer dropped, weights in f16/bf16/int8, perturbed vectors, a cached answer for another input,
//!   wrong structure) disagree, with a reason;
//! - the job through the router: OpenAI-shaped bytes, input errors, concurrent calls batched together.
//!
//! Run `cargo test -p vouch-embeddings -- --nocapture` to see the measured numbers the README records.

use std::{process::Command, sync::OnceLock, time::Instant};

use serde::Deserialize;
use vouch_embeddings::{
    BatcherConfig, DIMENSIONS, EMBED, Embedder, EmbeddingTolerance, EmbeddingsResponse, Implementation, LoadOptions,
    MAX_ABS_DIFF, MIN_COSINE, MiniLm, ModelFiles, WeightPrecision, compare, router_with,
};
use vouch_sdk::{Address, Agreement, CallId, JobCall, JobError, JobOutput, ServiceId, Verifier};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The pinned model, loaded once for the whole test binary.
fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| match MiniLm::load_default() {
        Ok(model) => model,
        Err(error) => panic!("{error}"),
    })
}

fn load(options: LoadOptions) -> Result<MiniLm, Box<dyn std::error::Error>> {
    Ok(MiniLm::load(&ModelFiles::locate()?, options)?)
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// Largest |Δ| over all dimensions of all vectors, and the smallest cosine.
fn distance(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0.0f64, 1.0f64);
    for (x, y) in a.iter().zip(b) {
        let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let comparison = compare(&x, &y);
        worst = (worst.0.max(comparison.max_abs_diff), worst.1.min(comparison.cosine));
    }
    worst
}

/// The OpenAI response bytes for `embeddings` of inputs with `tokens` tokens each.
fn response(embeddings: Vec<Vec<f32>>, tokens: &[usize]) -> Vec<u8> {
    let response = EmbeddingsResponse::new("all-MiniLM-L6-v2".to_owned(), embeddings, tokens);
    serde_json::to_vec(&response).unwrap_or_default()
}

fn reason(agreement: Agreement) -> String {
    match agreement {
        Agreement::Disagree { reason } => reason,
        Agreement::Agree => "agree".to_owned(),
    }
}

#[derive(Deserialize)]
struct Golden {
    model_sha256: String,
    max_seq_length: usize,
    sentences: Vec<GoldenSentence>,
}

#[derive(Deserialize)]
struct GoldenSentence {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f64>,
}

#[test]
fn golden_embeddings_match_sentence_transformers() -> TestResult {
    let golden: Golden = serde_json::from_str(include_str!("golden.json"))?;
    assert_eq!(golden.model_sha256, vouch_embeddings::MODEL_SHA256);
    assert_eq!(golden.max_seq_length, vouch_embeddings::MAX_SEQ_LENGTH);
    let inputs: Vec<String> = golden.sentences.iter().map(|sentence| sentence.text.clone()).collect();
    let tokens = model().tokenize(&inputs)?;
    let embeddings = model().embed(&inputs)?;
    let mut worst = 0.0f64;
    for ((sentence, ids), embedding) in golden.sentences.iter().zip(&tokens).zip(&embeddings) {
        assert_eq!(ids, &sentence.token_ids, "token ids of {:?}", sentence.text);
        assert_eq!(embedding.len(), DIMENSIONS);
        let ours: Vec<f64> = embedding.iter().map(|&value| f64::from(value)).collect();
        let comparison = compare(&ours, &sentence.embedding);
        assert!(comparison.max_abs_diff <= 1e-5, "{:?}: {comparison:?}", sentence.text);
        worst = worst.max(comparison.max_abs_diff);
    }
    // The last golden sentence is longer than 256 tokens: truncated like sentence-transformers does.
    assert_eq!(tokens.last().map(Vec::len), Some(256));
    eprintln!("golden: candle vs sentence-transformers (PyTorch), max |Δ| = {worst:.3e} over 4 sentences");
    Ok(())
}

/// Sentences of mixed lengths (9 to ~110 tokens) for the noise and substitute measurements. (Truncation at 256
/// tokens is covered by the golden test.)
fn corpus() -> Vec<String> {
    let base = [
        "A cat sat on the mat.",
        "Operators stake collateral and sign every result they return.",
        "The verifier compares two embeddings with a tolerance instead of hashing rounded floats.",
        "In 1969 the first humans walked on the Moon, and the landing was broadcast to hundreds of millions of \
         people around the world.",
        "Sentence embeddings map text of any length to a fixed number of dimensions, so that texts with similar \
         meanings end up close together, which makes search, clustering and deduplication cheap.",
    ];
    let mut corpus: Vec<String> = base.iter().map(|text| (*text).to_owned()).collect();
    corpus.push(base.join(" "));
    corpus
}

#[test]
fn honest_noise_agrees() -> TestResult {
    let model = model();
    let verifier = EmbeddingTolerance::default();
    let corpus = corpus();
    let tokens = model.tokenize(&corpus)?;
    let counts: Vec<usize> = tokens.iter().map(Vec::len).collect();

    // Each sentence alone (no padding) …
    let alone: Vec<Vec<f32>> = tokens
        .iter()
        .map(|ids| model.embed_batch(&[ids.as_slice()]).map(|mut batch| batch.remove(0)))
        .collect::<Result<_, _>>()?;
    // … versus all of them in one batch padded to the longest (each short sentence behind padding) …
    let slices: Vec<&[u32]> = tokens.iter().map(Vec::as_slice).collect();
    let padded = model.embed_batch(&slices)?;
    // … versus length-sorted batches, with a long sentence first in the other order.
    let mut reversed = slices.clone();
    reversed.reverse();
    let mut reversed_out = model.embed_batch(&reversed)?;
    reversed_out.reverse();
    let bucketed = model.embed_tokens(&tokens)?;

    let (padding_diff, padding_cosine) = distance(&alone, &padded);
    let (order_diff, _) = distance(&padded, &reversed_out);
    let (bucket_diff, _) = distance(&alone, &bucketed);
    eprintln!(
        "honest noise, batch composition: alone vs padded batch max |Δ| = {padding_diff:.3e} (1 - cosine = \
         {:.1e}); batch order {order_diff:.3e}; alone vs bucketed {bucket_diff:.3e}",
        1.0 - padding_cosine
    );
    let own = response(alone, &counts);
    for other in [&padded, &reversed_out, &bucketed] {
        assert_eq!(verifier.agrees(&own, &response(other.clone(), &counts)), Agreement::Agree);
    }
    // The same batch twice: the same bytes.
    assert_eq!(model.embed_batch(&slices)?, padded);

    // The reference implementation (candle-transformers' BertModel), padded the same way.
    let reference = load(LoadOptions { implementation: Implementation::CandleBert, ..LoadOptions::default() })?;
    let reference_out = reference.embed_batch(&slices)?;
    let (implementation_diff, _) = distance(&padded, &reference_out);
    eprintln!(
        "honest noise, implementation: fused encoder vs candle-transformers BertModel max |Δ| = {implementation_diff:.3e}"
    );
    assert_eq!(verifier.agrees(&own, &response(reference_out, &counts)), Agreement::Agree);
    assert!(padding_diff.max(order_diff).max(bucket_diff).max(implementation_diff) < MAX_ABS_DIFF / 10.0);
    Ok(())
}

/// Prints the embeddings of [`corpus`] as JSON when `VOUCH_EMBEDDINGS_CHILD` is set (run as a child process by
/// `thread_count_does_not_change_embeddings`); does nothing otherwise.
#[test]
fn child_prints_embeddings() -> TestResult {
    if std::env::var_os("VOUCH_EMBEDDINGS_CHILD").is_none() {
        return Ok(());
    }
    let embeddings = model().embed(&corpus())?;
    println!("EMBEDDINGS {}", serde_json::to_string(&embeddings)?);
    Ok(())
}

#[test]
fn thread_count_does_not_change_embeddings() -> TestResult {
    let here = model().embed(&corpus())?;
    let mut differences = Vec::new();
    for threads in ["1", "3"] {
        let child = Command::new(std::env::current_exe()?)
            .args(["--exact", "child_prints_embeddings", "--nocapture", "--test-threads", "1"])
            .env("VOUCH_EMBEDDINGS_CHILD", "1")
            .env("RAYON_NUM_THREADS", threads)
            .env("CANDLE_NUM_THREADS", threads)
            .output()?;
        let stdout = String::from_utf8(child.stdout)?;
        // libtest prints `test child_prints_embeddings ... ` before the test's own output, on the same line.
        let Some(line) = stdout.split_once("EMBEDDINGS ").and_then(|(_, rest)| rest.lines().next()) else {
            return Err(format!(
                "the child printed no embeddings: {stdout} {}",
                String::from_utf8_lossy(&child.stderr)
            )
            .into());
        };
        let there: Vec<Vec<f32>> = serde_json::from_str(line)?;
        let (difference, _) = distance(&here, &there);
        differences.push(format!("{threads} thread(s): max |Δ| = {difference:.3e}"));
        let counts: Vec<usize> = model().tokenize(&corpus())?.iter().map(Vec::len).collect();
        let verifier = EmbeddingTolerance::default();
        assert_eq!(verifier.agrees(&response(here.clone(), &counts), &response(there, &counts)), Agreement::Agree);
    }
    eprintln!("honest noise, thread count (vs the default of this machine): {}", differences.join("; "));
    Ok(())
}

/// Deterministic noise in [-amplitude, amplitude].
fn perturb(vector: &[f32], amplitude: f32, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    vector
        .iter()
        .map(|&value| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let unit = ((state >> 40) as f32) / ((1u64 << 24) as f32); // [0, 1)
            value + amplitude * (2.0 * unit - 1.0)
        })
        .collect()
}

#[test]
fn cheaters_disagree() -> TestResult {
    let verifier = EmbeddingTolerance::default();
    let corpus = corpus();
    let honest = model().embed(&corpus)?;
    let counts: Vec<usize> = model().tokenize(&corpus)?.iter().map(Vec::len).collect();
    let own = response(honest.clone(), &counts);

    // Substitute models: the same BERT with a layer dropped, or its weights at lower precision.
    let substitutes = [
        ("5 of 6 layers", LoadOptions { layers: 5, ..LoadOptions::default() }),
        ("weights rounded to f16", LoadOptions { precision: WeightPrecision::F16, ..LoadOptions::default() }),
        ("weights rounded to bf16", LoadOptions { precision: WeightPrecision::BF16, ..LoadOptions::default() }),
        ("weights quantized to int8", LoadOptions { precision: WeightPrecision::Int8, ..LoadOptions::default() }),
    ];
    for (name, options) in substitutes {
        let cheat = load(options)?.embed(&corpus)?;
        let (difference, cosine) = distance(&honest, &cheat);
        let why = reason(verifier.agrees(&own, &response(cheat, &counts)));
        eprintln!("substitute, {name}: max |Δ| = {difference:.3e}, 1 - cosine = {:.1e} → {why}", 1.0 - cosine);
        assert!(why.contains("differs beyond tolerance"), "{name}: {why}");
        assert!(difference > 5.0 * MAX_ABS_DIFF, "{name} is too close to the honest model for comfort");
    }

    // Perturbed vectors: +1e-3 noise fails; noise at 20% of the tolerance passes (it is honest-sized).
    let noisy: Vec<Vec<f32>> = honest.iter().enumerate().map(|(i, v)| perturb(v, 1e-3, i as u64)).collect();
    let why = reason(verifier.agrees(&own, &response(noisy, &counts)));
    assert!(why.contains("embedding 0 differs beyond tolerance"), "{why}");
    let quiet: Vec<Vec<f32>> =
        honest.iter().enumerate().map(|(i, v)| perturb(v, (MAX_ABS_DIFF / 5.0) as f32, i as u64)).collect();
    assert_eq!(verifier.agrees(&own, &response(quiet, &counts)), Agreement::Agree);

    // A cached answer for other inputs, with the right shape and token counts.
    let mut cached = honest.clone();
    cached.swap(0, 1);
    let mut swapped_counts = counts.clone();
    swapped_counts.swap(0, 1);
    let why = reason(verifier.agrees(&own, &response(cached, &swapped_counts)));
    assert!(why.contains("differs beyond tolerance"), "{why}");
    let other = model().embed(&texts(&["A dog slept on the rug."]))?;
    let single = response(honest[..1].to_vec(), &counts[..1]);
    let why = reason(verifier.agrees(&single, &response(other, &counts[..1])));
    eprintln!("cached answer for another sentence of {} tokens → {why}", counts[0]);
    assert!(why.contains("embedding 0 differs beyond tolerance"), "{why}");

    // Wrong structure: a truncated vector, a missing embedding, another model name.
    let mut truncated = honest.clone();
    truncated[2].truncate(256);
    assert!(
        reason(verifier.agrees(&own, &response(truncated, &counts)))
            .contains("has 384 dimensions in ours, 256 in theirs")
    );
    assert!(
        reason(verifier.agrees(&own, &response(honest[1..].to_vec(), &counts)))
            .contains("6 embeddings in ours, 5 in theirs")
    );
    let renamed =
        String::from_utf8(own.clone())?.replace("\"all-MiniLM-L6-v2\"", "\"sentence-transformers/all-MiniLM-L6-v2\"");
    assert!(reason(verifier.agrees(&own, renamed.as_bytes())).contains("`model` differs"));
    eprintln!("tolerance: cosine ≥ {MIN_COSINE}, max |Δ| ≤ {MAX_ABS_DIFF:e}");
    Ok(())
}

fn call(body: &str) -> JobCall {
    JobCall::new(ServiceId(1), CallId::from(1), EMBED, Address::ZERO, body.to_owned())
}

/// One embedder for the router tests of this binary.
fn embedder() -> Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::spawn(MiniLm::load_default, BatcherConfig::default())).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_answers_openai_responses() -> TestResult {
    let router = router_with(embedder());
    let body = r#"{"model":"all-MiniLM-L6-v2","input":["The quick brown fox jumps over the lazy dog.","Hello"],"encoding_format":"float"}"#;
    let JobOutput { bytes } = router.call(call(body)).await?;
    let response: EmbeddingsResponse = serde_json::from_slice(&bytes)?;
    assert_eq!(response.object, "list");
    assert_eq!(response.model, "all-MiniLM-L6-v2");
    assert_eq!(response.data.len(), 2);
    assert_eq!((response.data[1].object.as_str(), response.data[1].index), ("embedding", 1));
    assert_eq!(response.usage.prompt_tokens, 12 + 3);
    assert_eq!(response.usage.total_tokens, 15);
    assert!(bytes.starts_with(br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":["#));
    assert!(bytes.ends_with(br#"],"model":"all-MiniLM-L6-v2","usage":{"prompt_tokens":15,"total_tokens":15}}"#));
    // The first golden sentence, through the job, as sentence-transformers computed it.
    let golden: Golden = serde_json::from_str(include_str!("golden.json"))?;
    let first: Vec<f64> = response.data[0].embedding.iter().map(|&value| f64::from(value)).collect();
    assert!(compare(&first, &golden.sentences[0].embedding).max_abs_diff <= 1e-5);
    // The same call again: the same batch shape, the same bytes.
    assert_eq!(router.call(call(body)).await?.bytes, bytes);
    // A single string is one input.
    let JobOutput { bytes } = router.call(call(r#"{"model":"all-MiniLM-L6-v2","input":"Hello"}"#)).await?;
    let single: EmbeddingsResponse = serde_json::from_slice(&bytes)?;
    assert_eq!(single.data.len(), 1);
    assert_eq!(single.usage.prompt_tokens, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_errors_are_bad_input_with_the_reason() -> TestResult {
    let router = router_with(embedder());
    let cases = [
        (r#"{"model":"all-MiniLM-L6-v2","input":[101,2023,102]}"#.to_owned(), "token ids"),
        (
            r#"{"model":"all-MiniLM-L6-v2","input":"a","encoding_format":"base64"}"#.to_owned(),
            "\"base64\" is not supported",
        ),
        (r#"{"model":"all-MiniLM-L6-v2","input":["a",""]}"#.to_owned(), "input 1 is empty"),
        (
            format!(r#"{{"model":"all-MiniLM-L6-v2","input":["{}"]}}"#, "z".repeat(8193)),
            "input 0 is 8193 characters long",
        ),
        (r#"{"model":"gpt-4","input":"a"}"#.to_owned(), "`model` is \"gpt-4\""),
        ("not json".to_owned(), "inputs are not the expected JSON"),
    ];
    for (body, expected) in cases {
        match router.call(call(&body)).await {
            Err(JobError::BadInput(message)) => assert!(message.contains(expected), "{message} ∌ {expected}"),
            other => return Err(format!("expected bad_input ∋ {expected:?}, got {other:?}").into()),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_forward_passes() -> TestResult {
    let embedder = Embedder::new(load(LoadOptions::default())?, BatcherConfig::default());
    embedder.ready().await?;
    let router = router_with(embedder.clone());
    let corpus = corpus();
    let solo = model().embed(&corpus[..3])?;
    let started = Instant::now();
    // Short texts: the point is how calls are merged, not long sequences (slow in the unoptimized test build).
    let short = &corpus[..3];
    let calls = short.iter().cycle().take(48).map(|text| {
        let router = router.clone();
        let body = serde_json::json!({"model": "all-MiniLM-L6-v2", "input": text}).to_string();
        tokio::spawn(async move { router.call(call(&body)).await })
    });
    let outputs = futures_join(calls.collect()).await?;
    let elapsed = started.elapsed();
    let stats = embedder.stats();
    eprintln!(
        "48 concurrent one-sentence calls: {} rounds, {:.0} calls/s (dev profile)",
        stats.rounds,
        48.0 / elapsed.as_secs_f64()
    );
    assert_eq!(stats.calls, 48);
    assert!(stats.rounds < 48, "concurrent calls were not batched: {stats:?}");
    let verifier = EmbeddingTolerance::default();
    for (index, output) in outputs.into_iter().enumerate() {
        let expected = response(vec![solo[index % solo.len()].clone()], &[0]);
        let got: EmbeddingsResponse = serde_json::from_slice(&output.bytes)?;
        let regenerated = response(got.data.into_iter().map(|data| data.embedding).collect(), &[0]);
        assert_eq!(verifier.agrees(&expected, &regenerated), Agreement::Agree, "call {index}");
    }
    Ok(())
}

/// Awaits every task, in order.
async fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<Result<JobOutput, JobError>>>,
) -> Result<Vec<JobOutput>, Box<dyn std::error::Error>> {
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await??);
    }
    Ok(outputs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_fails_calls_with_the_fix() -> TestResult {
    let missing = ModelFiles::in_models_dir("/nonexistent-vouch-models");
    let embedder = Embedder::spawn(move || MiniLm::load(&missing, LoadOptions::default()), BatcherConfig::default());
    let error = embedder.ready().await.err().map(|error| error.to_string()).unwrap_or_default();
    assert!(error.contains("scripts/fetch-models.sh"), "{error}");
    match router_with(embedder).call(call(r#"{"model":"all-MiniLM-L6-v2","input":"a"}"#)).await {
        Err(JobError::Handler(message)) => assert!(message.contains("scripts/fetch-models.sh"), "{message}"),
        other => return Err(format!("expected handler_error, got {other:?}").into()),
    }
    Ok(())
}
