//! Verified text generation through the gateway against one unverified operator, measured in the same run (issue 7).
//!
//! `cargo run --release -p vouch-bench --bin textgen_service` (the binary runs itself again with
//! `CANDLE_NUM_THREADS=1` unless the variable is set: candle reads it once per process, before the first kernel).
//!
//! Set-up (not timed): a devnet with 3 staked operators and a service of the textgen blueprint (job 0 `chat`, a
//! *checked* job; quorum 6,667 bps of equal stakes, so every certificate needs all 3 signatures), 3 in-process
//! operators (`vouch_testing::TestNetwork`), each serving `vouch_textgen::router_with_state` over its own
//! SmolLM2-135M-Instruct instance (the pinned profile), and a gateway in this process (`vouch_gateway::Gateway`)
//! that never settles while it serves (settlement is the gateway benchmark's subject). One `402` is fetched, then
//! every request is paid beforehand with an EIP-3009 authorization (`x402::PaymentRequired::pay`, a fresh nonce per
//! request, payers in turn). Gateway calls get nonces whose paid call ids rotate the executor over the 3 operators
//! evenly (the gateway picks it by call id).
//!
//! Requests: OpenAI chat completions of 12 fixed prompts (`max_tokens` 64, greedy), the same bodies in both phases.
//!
//! Timed, with `BENCH_CONCURRENCY` calls in flight, in chunks of `BENCH_CHUNK` calls; the phases alternate chunk by
//! chunk (direct then gateway, gateway then direct, …) so that drifting machine load hits both alike:
//! - unverified: `POST /v1/jobs` with the x402 proof straight to operator 0, what an executor does (generate, sign);
//!   operator 0's `503 overloaded` (the blueprint sheds calls beyond its limit instead of queueing) is retried
//!   after 5 ms, as a client of one operator would;
//! - verified: `POST /v1/services/{id}/jobs/0` with `PAYMENT-SIGNATURE` through the gateway: one executor generates,
//!   the other two check its output with one teacher-forced forward pass and sign; the answer carries the
//!   certificate. A failed call is counted (not retried: its payment is the gateway's to refund).
//!
//! Both phases run on the same cores (everything but anvil is in this process): the ratio of their calls/s is the
//! ratio per unit of compute; the ratio of this process's CPU seconds per call is printed too. Before timing, each
//! phase makes max(in flight, 3) untimed warm-up calls (through the gateway, one executed by each operator).
//!
//! After timing, every answer is checked against a reference generation of its own request body by a fourth model
//! instance (byte-equal output), the completion tokens are counted from it, and: direct answers are operator 0's BLS
//! signature over the right call, inputs and output; gateway answers carry a certificate over the right call, inputs
//! and output, signed by all 3, whose aggregate verifies against the operators' registered keys.
//!
//! Environment: `BENCH_CONCURRENCY` (default 2 = `vouch_textgen::MAX_CONCURRENT_CALLS`, each operator's limit: with 2
//! in flight both cores are busy in both phases and no operator ever holds more than 2 tasks, since a call occupies
//! each operator at most once at a time; with more, a checker already running 2 tasks sheds the endorsement with
//! `503 overloaded`, and as all 3 must sign the gateway answers `502 no_quorum`: such calls are counted as failed and
//! the run ends with an error after the report), `BENCH_CALLS` (timed calls per phase, default 96, rounded up to
//! whole chunks), `BENCH_CHUNK` (calls per chunk, default 24).

use std::{
    error::Error,
    fs,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Bytes, U256, keccak256};
use futures_util::{StreamExt, stream};
use reqwest::{
    StatusCode,
    header::{CONTENT_TYPE, HeaderValue},
};
use serde_json::{Value, json};
use vouch_contracts::{alloy::signers::local::PrivateKeySigner, chain_now};
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_devnet::{Funding, ONE_ETH, ONE_VUSD};
use vouch_gateway::{
    Gateway, GatewayConfig,
    x402::{self, PaymentRequired},
};
use vouch_primitives::{
    CallId, Certificate, ResultRef,
    certificate::bitmap_slots,
    paid_call_id, result_digest,
    wire::{JobRequest, PaymentProof, SignedResult, WIRE_VERSION},
};
use vouch_testing::TestNetwork;
use vouch_textgen::{CHAT, LoadOptions, MAX_CONCURRENT_CALLS, ModelFiles, TextGen, TextGenState, router_with_state};

type AnyError = Box<dyn Error + Send + Sync>;

const OPERATORS: usize = 3;
const PAYERS: usize = 4;
const MAX_TOKENS: u64 = 64;

/// A dozen fixed prompts (the first six are `bench/src/textgen.rs`'s).
const PROMPTS: [&str; 12] = [
    "Tell me a short story about a robot.",
    "Explain how a rainbow forms.",
    "Write a poem about autumn leaves.",
    "Describe the water cycle step by step.",
    "Give me three tips for learning to code.",
    "Why is the sky blue?",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "How do I make a cup of tea?",
    "What are the benefits of exercise?",
    "How does a bicycle work?",
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The chat completion request of prompt `i`.
fn request_body(i: usize) -> Result<Bytes, AnyError> {
    let body = json!({
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "messages": [{"role": "user", "content": PROMPTS[i % PROMPTS.len()]}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    });
    Ok(Bytes::from(serde_json::to_vec(&body)?))
}

// ----- CPU accounting -----------------------------------------------------------------------------------------------

/// User + system CPU ticks of process `pid` so far.
fn process_ticks(pid: &str) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // After the command name (ends with the last ')'): utime and stime are fields 14 and 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    [11, 12].iter().filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok())).sum()
}

/// Busy CPU ticks of the whole machine so far (all but idle and iowait).
fn machine_ticks() -> u64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else { return 0 };
    let Some(line) = stat.lines().next() else { return 0 };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum()
}

/// CPU ticks: this process (operators, gateway, client), anvil, the machine.
#[derive(Clone, Copy, Default)]
struct Ticks {
    own: u64,
    anvil: u64,
    machine: u64,
}

impl Ticks {
    fn now(anvil_pid: u32) -> Self {
        Self { own: process_ticks("self"), anvil: process_ticks(&anvil_pid.to_string()), machine: machine_ticks() }
    }

    fn add(&mut self, other: Self) {
        self.own += other.own;
        self.anvil += other.anvil;
        self.machine += other.machine;
    }

    fn since(self, before: Self) -> Self {
        Self {
            own: self.own.saturating_sub(before.own),
            anvil: self.anvil.saturating_sub(before.anvil),
            machine: self.machine.saturating_sub(before.machine),
        }
    }
}

// ----- the operators' work (node metrics) ---------------------------------------------------------------------------

/// Per operator: `POST /v1/jobs` signed (generations) and refused or failed; `POST /v1/endorsements` signed (checks)
/// and otherwise (disagreements, sheds).
#[derive(Clone, Copy, Default)]
struct Work {
    generations: [u64; OPERATORS],
    job_refusals: [u64; OPERATORS],
    checks: [u64; OPERATORS],
    check_refusals: [u64; OPERATORS],
}

impl Work {
    fn read(net: &TestNetwork) -> Self {
        let mut w = Self::default();
        for slot in 0..OPERATORS {
            let Some(node) = net.node(slot) else { continue };
            let m = node.metrics();
            let job =
                |outcome: &'static str| m.jobs.get_or_create(&vec![("source", "http"), ("outcome", outcome)]).get();
            let endorsed = |outcome: &'static str| m.endorsements.get_or_create(&vec![("outcome", outcome)]).get();
            w.generations[slot] = job("signed");
            w.job_refusals[slot] = job("refused") + job("job_error");
            w.checks[slot] = endorsed("signed");
            w.check_refusals[slot] = endorsed("refused") + endorsed("job_error") + endorsed("disagree");
        }
        w
    }

    fn add_since(&mut self, after: Self, before: Self) {
        for s in 0..OPERATORS {
            self.generations[s] += after.generations[s] - before.generations[s];
            self.job_refusals[s] += after.job_refusals[s] - before.job_refusals[s];
            self.checks[s] += after.checks[s] - before.checks[s];
            self.check_refusals[s] += after.check_refusals[s] - before.check_refusals[s];
        }
    }
}

// ----- requests -----------------------------------------------------------------------------------------------------

/// One paid call, built before timing.
struct Paid {
    prompt: usize,
    call_id: CallId,
    inputs: Bytes,
    /// The `POST /v1/jobs` body (direct) or the `PAYMENT-SIGNATURE` header (gateway).
    wire: bytes::Bytes,
}

/// What one phase measured.
#[derive(Default)]
struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
    ticks: Ticks,
    work: Work,
    /// Answers of the calls that succeeded.
    answers: Vec<(usize, bytes::Bytes)>,
    failures: Vec<String>,
    /// Direct calls sent again after a `503 overloaded`.
    retries: usize,
}

impl Phase {
    fn calls_per_sec(&self) -> f64 {
        self.answers.len() as f64 / self.wall.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let Some(last) = sorted.len().checked_sub(1) else { return f64::NAN };
        sorted[((last as f64 * p).round() as usize).min(last)].as_secs_f64()
    }
}

/// What one request brought back: the answer body or why it failed, and how many `503 overloaded` it retried.
type Outcome = (Result<bytes::Bytes, String>, usize);

/// Sends operator 0 the job request; on `503 overloaded` tries again after 5 ms. The answer body.
async fn post_direct(http: &reqwest::Client, url: &str, body: bytes::Bytes) -> Outcome {
    let mut retries = 0;
    loop {
        let answer = async {
            let r = http.post(url).header(CONTENT_TYPE, "application/json").body(body.clone()).send().await?;
            let status = r.status();
            Ok::<_, reqwest::Error>((status, r.bytes().await?))
        }
        .await;
        match answer {
            Ok((StatusCode::OK, bytes)) => return (Ok(bytes), retries),
            Ok((StatusCode::SERVICE_UNAVAILABLE, bytes)) if String::from_utf8_lossy(&bytes).contains("overloaded") => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok((status, bytes)) => {
                return (Err(format!("operator 0 answered {status}: {}", String::from_utf8_lossy(&bytes))), retries);
            }
            Err(e) => return (Err(format!("operator 0: {e}")), retries),
        }
    }
}

/// The gateway's paid call. The answer body.
async fn post_gateway(http: &reqwest::Client, url: &str, header: bytes::Bytes, inputs: Bytes) -> Outcome {
    let header = match HeaderValue::from_maybe_shared(header) {
        Ok(h) => h,
        Err(e) => return (Err(format!("the payment header: {e}")), 0),
    };
    let answer = async {
        let r = http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(x402::PAYMENT_SIGNATURE, header)
            .body(bytes::Bytes::from(inputs))
            .send()
            .await?;
        let status = r.status();
        Ok::<_, reqwest::Error>((status, r.bytes().await?))
    }
    .await;
    match answer {
        Ok((StatusCode::OK, bytes)) => (Ok(bytes), 0),
        Ok((status, bytes)) => (Err(format!("the gateway answered {status}: {}", String::from_utf8_lossy(&bytes))), 0),
        Err(e) => (Err(format!("the gateway: {e}")), 0),
    }
}

/// Runs `calls` with `concurrency` in flight through `send`, adding the window, latencies, CPU, the operators' work
/// and the answers to `phase`.
async fn run_chunk<'a, F, Fut>(
    phase: &mut Phase,
    calls: &'a [Paid],
    concurrency: usize,
    (net, anvil): (&TestNetwork, u32),
    send: F,
) where
    F: Fn(&'a Paid) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let send = &send;
    let (work, ticks) = (Work::read(net), Ticks::now(anvil));
    let start = Instant::now();
    let outcomes: Vec<(usize, Duration, Outcome)> = stream::iter(calls.iter().enumerate())
        .map(|(i, call)| async move {
            let t = Instant::now();
            let outcome = send(call).await;
            (i, t.elapsed(), outcome)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    phase.wall += start.elapsed();
    phase.ticks.add(Ticks::now(anvil).since(ticks));
    phase.work.add_since(Work::read(net), work);
    // The phase's calls are numbered in the order their chunks ran.
    let offset = phase.answers.len() + phase.failures.len();
    for (i, latency, (result, retries)) in outcomes {
        phase.retries += retries;
        match result {
            Ok(answer) => {
                phase.latencies.push(latency);
                phase.answers.push((offset + i, answer));
            }
            Err(e) => phase.failures.push(e),
        }
    }
}

// ----- checks (after timing) ----------------------------------------------------------------------------------------

/// The reference output of each prompt and its completion tokens.
struct Reference {
    outputs: Vec<Bytes>,
    tokens: Vec<u64>,
}

impl Reference {
    /// Generates every prompt's completion with a fresh model instance (the pinned profile).
    fn generate(files: &ModelFiles) -> Result<Self, AnyError> {
        let model = TextGen::load_with(files, &LoadOptions::default())?;
        let mut outputs = Vec::new();
        let mut tokens = Vec::new();
        for (i, prompt) in PROMPTS.iter().enumerate() {
            let output = model.complete(&request_body(i)?)?;
            let parsed: Value = serde_json::from_slice(&output)?;
            let content = parsed["choices"][0]["message"]["content"].as_str().unwrap_or_default();
            if content.trim().is_empty() {
                return Err(format!("the reference completion of {prompt:?} is empty: {parsed}").into());
            }
            if prompt.contains("France") && !content.contains("Paris") {
                return Err(format!("greedy SmolLM2 answers Paris, not {content:?}").into());
            }
            tokens.push(parsed["usage"]["completion_tokens"].as_u64().ok_or("no usage.completion_tokens")?);
            outputs.push(Bytes::from(output));
        }
        Ok(Self { outputs, tokens })
    }
}

/// What the answers are checked against.
struct Checker<'a> {
    net: &'a TestNetwork,
    keys: Vec<PublicKey>,
    reference: Reference,
}

impl Checker<'_> {
    /// Operator 0's signed result of `call`: its output is the reference of the call's prompt, its signature verifies
    /// against the operator's registered key.
    fn direct(&self, call: &Paid, raw: &[u8]) -> Result<(), AnyError> {
        let signed: SignedResult = serde_json::from_slice(raw)?;
        let output = &self.reference.outputs[call.prompt];
        let expected = ResultRef {
            service_id: self.net.service_id(),
            call_id: call.call_id,
            inputs_hash: keccak256(&call.inputs),
            result_hash: keccak256(output),
        };
        let devnet = self.net.devnet();
        if signed.operator != devnet.operators()[0].address()
            || signed.result != expected
            || signed.output.as_ref() != Some(output)
        {
            return Err(format!(
                "wrong answer from operator 0 to {:?} ({}): {signed:?}",
                PROMPTS[call.prompt], call.call_id
            )
            .into());
        }
        Signature::from_compressed(&signed.signature)?
            .verify(&self.keys[0], &result_digest(&devnet.protocol_binding(), &signed.result))?;
        Ok(())
    }

    /// The gateway's answer to `call`: the reference output of its prompt and a certificate over the call, its inputs
    /// and that output, signed by all 3, whose aggregate verifies against the signers' registered keys.
    fn gateway(&self, call: &Paid, raw: &[u8]) -> Result<(), AnyError> {
        let answer: Value = serde_json::from_slice(raw)?;
        let output = &self.reference.outputs[call.prompt];
        if answer["output"] != serde_json::from_slice::<Value>(output)? {
            return Err(format!(
                "wrong output for {:?} ({}): {}",
                PROMPTS[call.prompt], call.call_id, answer["output"]
            )
            .into());
        }
        let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
        let binding = self.net.devnet().protocol_binding();
        if cert.chain_id != binding.chain_id
            || cert.protocol != binding.contract
            || cert.service_id != self.net.service_id().0
            || cert.call_id != call.call_id.0
            || cert.inputs_hash != keccak256(&call.inputs)
            || cert.result_hash != keccak256(output)
            || cert.signer_bitmap != U256::from(0b111)
        {
            return Err(format!("wrong certificate for {}: {cert:?}", call.call_id).into());
        }
        let keys: Vec<PublicKey> = bitmap_slots(cert.signer_bitmap).iter().map(|s| self.keys[*s]).collect();
        fast_aggregate_verify(&keys, &cert.digest(), &Signature::from_eip2537(&cert.signature)?)?;
        Ok(())
    }
}

// ----- the run ------------------------------------------------------------------------------------------------------

fn main() -> Result<(), AnyError> {
    // candle sizes its kernel thread pool once per process from CANDLE_NUM_THREADS: set it before anything runs.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        let status = Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env("CANDLE_NUM_THREADS", "1")
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let files = ModelFiles::locate()?;
    // One model instance per operator, loaded before the runtime starts (the routers would load them lazily).
    let started = Instant::now();
    let models = (0..OPERATORS)
        .map(|_| TextGen::load_with(&files, &LoadOptions::default()).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let load = started.elapsed();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(files, models, load))
}

async fn bench(files: ModelFiles, models: Vec<Arc<TextGen>>, load: Duration) -> Result<(), AnyError> {
    let concurrency = env_or("BENCH_CONCURRENCY", MAX_CONCURRENT_CALLS).max(1);
    let calls = env_or("BENCH_CALLS", 96).max(1);
    let chunk = env_or("BENCH_CHUNK", 24).clamp(1, calls);
    let chunks = calls.div_ceil(chunk);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ticks_per_sec = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    println!(
        "verified text generation through the gateway (3 operators, checked job) against one unverified operator; \
         SmolLM2-135M-Instruct, max_tokens {MAX_TOKENS}, greedy, {} prompts",
        PROMPTS.len()
    );
    println!(
        "machine: {cores} cores; CANDLE_NUM_THREADS={}; {concurrency} calls in flight; {chunks} chunks of {chunk} calls \
         per phase, interleaved",
        std::env::var("CANDLE_NUM_THREADS").unwrap_or_default()
    );

    // --- set-up, not timed ------------------------------------------------------------------------------------------
    let set_up = Instant::now();
    let mut routers = models.into_iter().map(|m| router_with_state(TextGenState::with_model(m)));
    let first = routers.next().ok_or("no model")?;
    let mut builder = TestNetwork::builder(first).operators(OPERATORS).quorum_bps(6_667).confirmations(1_000);
    for (slot, router) in routers.enumerate() {
        builder = builder.router_for(slot + 1, router);
    }
    let net = builder.start().await?;
    let devnet = net.devnet();
    let service_id = net.service_id();
    let anvil = devnet.anvil_pid();
    let submitter = devnet.new_account(&Funding { eth: U256::from(100u64) * ONE_ETH, ..Funding::default() }).await?;
    let mut payers: Vec<PrivateKeySigner> = Vec::new();
    for _ in 0..PAYERS {
        payers.push(devnet.new_account(&Funding { usd: U256::from(1_000u64) * ONE_VUSD, ..Funding::default() }).await?);
    }
    let tmp = tempfile::tempdir()?;
    // A gateway that never settles while it serves: a batch needs 256 waiting calls or the oldest to wait an hour.
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse()?,
        rpc_url: devnet.rpc_url().to_owned(),
        data_dir: tmp.path().join("gateway"),
        operator_timeout_secs: 300,
        max_batch: 256,
        max_batch_delay_ms: 3_600_000,
        ..GatewayConfig::default()
    };
    let warm = concurrency.max(OPERATORS);
    if warm + chunks * chunk > 255 {
        return Err("BENCH_CALLS plus the warm-up must stay below 256 (the gateway would settle a batch)".into());
    }
    let gateway = Gateway::new(config, devnet.address_book().clone(), submitter).start().await?;
    let job_url = format!("{}/v1/services/{}/jobs/{CHAT}", gateway.url(), service_id.0);
    let direct_url = format!("{}/v1/jobs", net.node(0).ok_or("no node 0")?.api_url());
    let http = reqwest::Client::builder().pool_max_idle_per_host(4 * concurrency).build()?;

    // The price, once; every request is paid now.
    let r = http.post(&job_url).header(CONTENT_TYPE, "application/json").body(request_body(0)?.to_vec()).send().await?;
    let required: PaymentRequired =
        x402::decode_header(r.headers().get(x402::PAYMENT_REQUIRED).ok_or("no PAYMENT-REQUIRED header")?.to_str()?)
            .map_err(|e| e.message)?;
    let now = chain_now(&devnet.read_provider()).await?;
    let mut serial = 0usize;
    // `n` paid calls of prompts 0, 1, …; through the gateway, the executor rotates over the operators.
    let mut sign = |n: usize, gateway: bool| -> Result<Vec<Paid>, AnyError> {
        (0..n)
            .map(|i| {
                let k = serial;
                serial += 1;
                let payer = &payers[k % PAYERS];
                let (nonce, call_id) = (0u64..)
                    .map(|attempt| {
                        let nonce = keccak256(format!("textgen service bench {k} {attempt}"));
                        (nonce, paid_call_id(service_id, CHAT, payer.address(), nonce))
                    })
                    .find(|(_, id)| !gateway || id.0 % U256::from(OPERATORS) == U256::from(k % OPERATORS))
                    .ok_or("no nonce")?;
                let payment = required.pay(payer, now, nonce).map_err(|e| e.message)?;
                let inputs = request_body(i)?;
                let wire = if gateway {
                    bytes::Bytes::from(x402::encode_header(&payment))
                } else {
                    let request = JobRequest {
                        version: WIRE_VERSION,
                        service_id,
                        call_id,
                        job_index: CHAT,
                        inputs: inputs.clone(),
                        payment: PaymentProof::X402 {
                            authorization: payment.payload.authorization,
                            signature: payment.payload.signature,
                        },
                    };
                    bytes::Bytes::from(serde_json::to_vec(&request)?)
                };
                Ok(Paid { prompt: i % PROMPTS.len(), call_id, inputs, wire })
            })
            .collect()
    };
    let warm_direct = sign(warm, false)?;
    let warm_gateway = sign(warm, true)?;
    let direct_calls: Vec<Vec<Paid>> = (0..chunks).map(|_| sign(chunk, false)).collect::<Result<_, _>>()?;
    let gateway_calls: Vec<Vec<Paid>> = (0..chunks).map(|_| sign(chunk, true)).collect::<Result<_, _>>()?;
    println!(
        "set-up: 3 model instances loaded in {:.1} s; devnet, 3 in-process operators, gateway, {serial} payments \
         signed in {:.1} s",
        load.as_secs_f64(),
        set_up.elapsed().as_secs_f64()
    );

    let direct = |p: &Paid| post_direct(&http, &direct_url, p.wire.clone());
    let through_gateway = |p: &Paid| post_gateway(&http, &job_url, p.wire.clone(), p.inputs.clone());

    // --- warm-up, not timed -----------------------------------------------------------------------------------------
    let mut warm_up = Phase::default();
    run_chunk(&mut warm_up, &warm_direct, concurrency, (&net, anvil), direct).await;
    run_chunk(&mut warm_up, &warm_gateway, concurrency, (&net, anvil), through_gateway).await;
    if let Some(e) = warm_up.failures.first() {
        println!("warm-up: {} of {} calls failed; first: {e}", warm_up.failures.len(), 2 * warm);
    }

    // --- timed: direct and gateway chunks alternate ----------------------------------------------------------------
    let mut unverified = Phase::default();
    let mut verified = Phase::default();
    for (k, (d, g)) in direct_calls.iter().zip(&gateway_calls).enumerate() {
        if k % 2 == 0 {
            run_chunk(&mut unverified, d, concurrency, (&net, anvil), direct).await;
            run_chunk(&mut verified, g, concurrency, (&net, anvil), through_gateway).await;
        } else {
            run_chunk(&mut verified, g, concurrency, (&net, anvil), through_gateway).await;
            run_chunk(&mut unverified, d, concurrency, (&net, anvil), direct).await;
        }
        println!(
            "  chunk {}/{chunks}: unverified {:.2} calls/s, verified {:.2} calls/s so far",
            k + 1,
            unverified.calls_per_sec(),
            verified.calls_per_sec()
        );
    }
    gateway.kill();

    // --- every answer, checked --------------------------------------------------------------------------------------
    let reference = tokio::task::spawn_blocking(move || Reference::generate(&files)).await??;
    let checker =
        Checker { net: &net, keys: net.devnet().operators().iter().map(|o| o.bls_public()).collect(), reference };
    let all_direct: Vec<&Paid> = direct_calls.iter().flatten().collect();
    let all_gateway: Vec<&Paid> = gateway_calls.iter().flatten().collect();
    let mut tokens = [0u64; 2];
    for (n, (phase, calls)) in [(&unverified, &all_direct), (&verified, &all_gateway)].into_iter().enumerate() {
        for (i, answer) in &phase.answers {
            let call = calls[*i];
            if n == 0 {
                checker.direct(call, answer)?
            } else {
                checker.gateway(call, answer)?
            }
            tokens[n] += checker.reference.tokens[call.prompt];
        }
    }

    // --- report -----------------------------------------------------------------------------------------------------
    println!();
    println!(
        "{:<48} {:>5} {:>7} {:>7} {:>6} {:>6}   CPU s/call: this process / anvil",
        "", "calls", "calls/s", "tok/s", "p50 s", "p99 s"
    );
    let per_call = |t: u64, phase: &Phase| t as f64 / ticks_per_sec / phase.answers.len().max(1) as f64;
    for ((name, phase), tokens) in [
        ("unverified: one operator, POST /v1/jobs", &unverified),
        ("verified: gateway, 3 operators, certificate", &verified),
    ]
    .into_iter()
    .zip(tokens)
    {
        println!(
            "{name:<48} {:>5} {:>7.3} {:>7.1} {:>6.2} {:>6.2}   {:.3} / {:.3}",
            phase.answers.len(),
            phase.calls_per_sec(),
            tokens as f64 / phase.wall.as_secs_f64(),
            phase.percentile(0.5),
            phase.percentile(0.99),
            per_call(phase.ticks.own, phase),
            per_call(phase.ticks.anvil, phase),
        );
    }
    for (name, phase) in [("unverified", &unverified), ("verified", &verified)] {
        let w = &phase.work;
        let busy = phase.ticks.machine as f64 / ticks_per_sec / phase.wall.as_secs_f64();
        let others = phase.ticks.machine.saturating_sub(phase.ticks.own + phase.ticks.anvil) as f64
            / ticks_per_sec
            / phase.wall.as_secs_f64();
        println!(
            "  {name}: operators' generations {:?} (refused {:?}), checks {:?} (refused {:?}); {} failed calls, {} \
             retries after 503 overloaded; machine busy {busy:.2} of {cores} cores, {others:.2} outside this process \
             and anvil",
            w.generations,
            w.job_refusals,
            w.checks,
            w.check_refusals,
            phase.failures.len(),
            phase.retries
        );
        if let Some(e) = phase.failures.first() {
            println!("    first failure: {e}");
        }
    }
    let rate = verified.calls_per_sec() / unverified.calls_per_sec();
    let token_rate =
        (tokens[1] as f64 / verified.wall.as_secs_f64()) / (tokens[0] as f64 / unverified.wall.as_secs_f64());
    let cpu = per_call(unverified.ticks.own, &unverified) / per_call(verified.ticks.own, &verified);
    println!(
        "verified ÷ unverified: calls/s {rate:.3}, completion tokens/s {token_rate:.3}, CPU per call (inverse) {cpu:.3}; \
         target ≥ 0.7 ({}; 3 full generations would be 0.333)",
        if rate >= 0.7 { "met" } else { "NOT met" }
    );
    let (generation, checked) = (per_call(unverified.ticks.own, &unverified), per_call(verified.ticks.own, &verified));
    println!(
        "implied cost of one check (the verified call's extra CPU over 2 checkers, gateway included): {:.3} s = {:.3}× \
         one generation",
        (checked - generation) / 2.0,
        (checked - generation) / 2.0 / generation
    );
    println!(
        "checked after timing: {} direct answers (operator 0's BLS signature; output = a fresh instance's generation \
         of the same request) and {} gateway answers (certificate signed by all 3, aggregate verified against the \
         registered keys; same output check)",
        unverified.answers.len(),
        verified.answers.len()
    );
    if !unverified.failures.is_empty() || !verified.failures.is_empty() {
        return Err(format!(
            "{} unverified and {} verified calls failed",
            unverified.failures.len(),
            verified.failures.len()
        )
        .into());
    }
    Ok(())
}
