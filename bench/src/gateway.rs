//! Gateway benchmark: paid x402 calls of the echo blueprint through the gateway (payment check, record, fan-out to
//! 3 operators, certificate at quorum), against calling the operators directly in the same run; then the gas per
//! paid and verified call of the gateway's settlement batches, against plain EIP-3009 payments sent in the same run.
//!
//! Set-up (not timed): a devnet (anvil, the protocol, 3 staked operators, the demo blueprint and its service; quorum
//! 6,667 bps of equal stakes, so every call needs all 3 signatures), 3 operator processes (`vouch node run --config
//! node.toml --blueprint echo=<id>`, the `vouch` binary built beside this one, each with its own keystores, signing
//! database and endpoint announced on chain), `BENCH_PAYERS` funded payers, and every payment signed beforehand: one
//! EIP-3009 authorization per request (a fresh nonce, payers in turn), each request's `POST /v1/jobs` body and
//! `PAYMENT-SIGNATURE` header built before timing. The gateway runs in this process (`vouch_gateway::Gateway`), and
//! so does the client.
//!
//! Timed, at each concurrency of `BENCH_CONCURRENCY` (requests in flight over keep-alive connections; 1 = latency
//! without queueing, 32 = throughput), in chunks of the same size in every phase (each chunk drains before the next):
//! - direct, one operator: `POST /v1/jobs` (x402 proof) to operator 0;
//! - direct, all 3: the same request to the 3 operators at once; its latency is the slowest of the 3 answers, which
//!   is what a quorum of all 3 waits for. Run before and after the gateway phases; the faster run is the baseline;
//! - gateway, settlement not running: `POST /v1/services/{id}/jobs/0` with `PAYMENT-SIGNATURE`. The gateway settles
//!   in batches as soon as `max_batch` (at most 256) calls wait, so each chunk of fewer than 256 calls goes through
//!   a fresh gateway instance (own request log) that never reaches a batch: latency is measured with on-chain
//!   settlement off the request path and not competing for the cores. One warm-up request per slot in flight
//!   precedes each chunk (not timed);
//! - direct, all 3, interleaved: one chunk of the same size next to each gateway chunk (before it on even chunks,
//!   after it on odd ones). The machine is shared and its load drifts between phases; this baseline is measured in
//!   the same minutes as the gateway calls it is compared with, and the overhead is given against it as well as
//!   against the faster of the before/after runs;
//! - gateway, settlement running (highest concurrency only): one gateway with `max_batch` = `BENCH_BATCH` and
//!   `max_batch_delay_ms` = `BENCH_BATCH_DELAY_MS`, settling while the requests run (what a busy gateway does).
//!
//! For each phase, the CPU time each process used in the timed windows, per call: anvil, the 3 nodes, this process
//! (the client, plus the gateway in gateway phases) and the rest of the machine (anything else running).
//! The 402 round trip (a request without payment) is timed apart: a client makes it once per price, not per call.
//! Stages of the gateway's request path are timed alone: the request log (SQLite), the x402 check, and the BLS work
//! on the operators' replies (3 verifications per call, as the fan-out does, against one aggregate verification).
//! After timing, every answer is checked: direct answers (operator, call, inputs hash, output = inputs, BLS
//! signature against the operator's registered key) and gateway answers (call, output, certificate over the inputs
//! and result hashes signed by all 3, aggregate signature verified against the operators' keys).
//!
//! Gas: every call of the settling gateway is waited for until settled; the `settlePaidBatch` receipts (transactions
//! from the request log's `settle_tx`) give gas per call. Baseline: plain EIP-3009 `transferWithAuthorization`s
//! (fresh nonces) sent in this run, to a payee that already holds the token and to one that holds none.
//!
//! Profile mode, `BENCH_PROFILE=N` (after the same set-up; nothing else is timed): the gateway alone in a child
//! process (this binary again, run through `BENCH_GATEWAY_WRAP` if set, e.g. `valgrind --tool=callgrind
//! --callgrind-out-file=/tmp/gw.cg` or `perf record -g -o /tmp/gw.perf`), `BENCH_PROFILE_WARM` (50) paid calls to warm
//! it up, then N timed ones at `BENCH_PROFILE_CONCURRENCY` (1) in flight; prints the gateway process's CPU per call
//! (user, system) and the others'. Under callgrind the counters are zeroed before the N calls and dumped after them,
//! so the dump holds exactly their instructions (plus the background tasks that ran meanwhile). Warm-up + N must stay
//! below 256 (the gateway would settle a batch).
//!
//! A/B mode, `BENCH_AB=<another build of this benchmark>` (e.g. one built from an earlier gateway): this build's
//! gateway (A) and the other build's (B), each in its own child process, and the 3 operators called directly (all 3 at
//! once, slowest of 3), interleaved chunk by chunk at 1 in flight, so that drifting machine load hits all three
//! alike: `BENCH_AB_SESSIONS` (4) pairs of fresh gateways, each serving `BENCH_AB_ROUNDS` (10) rounds of one chunk of
//! `BENCH_AB_CHUNK` (22) calls to each of the three, the order rotating every round. Prints p50/p90/p99, the overhead
//! of A and B over the slowest of 3, and each gateway process's CPU per call; every answer is checked.
//!
//! Environment: `BENCH_CONCURRENCY` (comma-separated, default `1,32`), `BENCH_CALLS` (timed requests per phase at
//! concurrency above 1, default 2000), `BENCH_SERIAL_CALLS` (at concurrency 1, default 1000), `BENCH_CHUNK`
//! (requests per gateway instance, warm-up included, default 250, below 256), `BENCH_PAYERS` (100), `BENCH_BATCH`
//! (100), `BENCH_BATCH_DELAY_MS` (200), `VOUCH_BIN` (the `vouch` binary; default: beside this one).
//! Run with `cargo build --release -p vouch-cli && cargo run --release -p vouch-bench --bin gateway`; results go in
//! `bench/RESULTS.md`.

use std::{
    collections::BTreeMap,
    error::Error,
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use futures_util::{StreamExt, future::join_all, stream};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use vouch_contracts::{
    AuthorizationExt as _, TokenDomain, VouchUSD,
    alloy::{
        providers::{Provider as _, ProviderBuilder},
        signers::local::PrivateKeySigner,
    },
    chain_now,
    view::ChainView,
};
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
use vouch_devnet::{Devnet, DevnetConfig, Funding, ONE_ETH, ONE_VUSD};
use vouch_gateway::{
    Gateway, GatewayConfig, RunningGateway,
    store::{PaidRequest, RequestStatus, RequestStore},
    x402,
};
use vouch_primitives::{
    CallId, Certificate, ChainBinding, ResultRef, ServiceId, paid_call_id, result_digest,
    wire::{JobRequest, PaymentProof, SignedResult, TransferAuthorization, WIRE_VERSION},
};

type AnyError = Box<dyn Error + Send + Sync>;

const OPERATORS: usize = 3;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ----- the operator processes ---------------------------------------------------------------------------------------

/// The `vouch` binary: `VOUCH_BIN`, else the one cargo built beside this benchmark.
fn vouch_bin() -> Result<PathBuf, AnyError> {
    if let Some(bin) = std::env::var_os("VOUCH_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.parent().ok_or("no directory for this binary")?.join("vouch");
    if !bin.is_file() {
        return Err(format!(
            "{} not found: build it first (`cargo build --release -p vouch-cli`) or set VOUCH_BIN",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn vouch_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("VOUCH_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// `node.toml` for operator `index` of the devnet: its keystores, its own state, an API on a free loopback port
/// announced on chain at start, metrics on a free port, everything else at its default.
fn write_node_toml(path: &Path, devnet: &Devnet, index: usize, data_dir: &Path) -> Result<(), AnyError> {
    let op = &devnet.operators()[index];
    let text = format!(
        r#"data_dir = "{data_dir}"

[chain]
rpc_url = "{rpc}"
address_book = "{book}"

[operator]
tx_keystore = "{tx_keystore}"
tx_password_file = "{tx_password}"
bls_keystore = "{bls_keystore}"
bls_password_file = "{bls_password}"

[api]
listen = "127.0.0.1:0"
announce = "auto"

[metrics]
listen = "127.0.0.1:0"
"#,
        data_dir = data_dir.display(),
        rpc = devnet.rpc_url(),
        book = devnet.data_dir().join("addresses.json").display(),
        tx_keystore = op.account().keystore().display(),
        tx_password = op.account().password_file().display(),
        bls_keystore = op.bls_keystore().display(),
        bls_password = op.bls_password_file().display(),
    );
    fs::write(path, text)?;
    Ok(())
}

/// `vouch --json node run …`, a child process (its logs in a file); stopped with SIGTERM on drop.
struct NodeProcess {
    child: Child,
    log: PathBuf,
    api: String,
}

impl NodeProcess {
    fn start(bin: &Path, config: &Path, log: &Path, blueprint: &str) -> Result<Self, AnyError> {
        let mut child = vouch_command(bin)
            .args(["--json", "node", "run", "--config"])
            .arg(config)
            .args(["--blueprint", blueprint])
            .stdout(Stdio::piped())
            .stderr(fs::File::create(log)?)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        // The one pretty-printed JSON summary (it ends with a line "}"), then keep draining.
        thread::spawn(move || {
            let mut doc = String::new();
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                doc.push_str(&line);
                doc.push('\n');
                if line == "}"
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(std::mem::take(&mut doc));
                }
            }
        });
        let mut node = Self { child, log: log.to_owned(), api: String::new() };
        let started = Instant::now();
        let summary: Value = loop {
            if let Ok(doc) = rx.recv_timeout(Duration::from_millis(200)) {
                break serde_json::from_str(&doc)?;
            }
            if let Some(status) = node.child.try_wait()? {
                return Err(format!("vouch node run exited ({status}):\n{}", node.logs()).into());
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("vouch node run did not start in 120 s:\n{}", node.logs()).into());
            }
        };
        node.api = summary["api"].as_str().ok_or("no api in the node's summary")?.trim_end_matches('/').to_owned();
        if summary["endpoint"] != summary["api"] {
            return Err(format!("the node did not announce its API address: {summary}").into());
        }
        Ok(node)
    }

    fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- CPU accounting -----------------------------------------------------------------------------------------------

/// CPU time used so far (clock ticks, user + system): anvil, the nodes, this process, and the whole machine.
#[derive(Clone, Copy, Default)]
struct Cpu {
    anvil: u64,
    nodes: u64,
    own: u64,
    machine: u64,
}

/// The processes to account.
struct Processes {
    anvil: u32,
    nodes: Vec<u32>,
}

fn process_ticks(pid: &str) -> u64 {
    let (user, system) = process_user_system(pid);
    user + system
}

/// User and system CPU ticks of process `pid` so far.
fn process_user_system(pid: &str) -> (u64, u64) {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return (0, 0) };
    // Fields after the command name, which ends with the last ')': state is field 3, utime 14, stime 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (field(11), field(12))
}

fn machine_ticks() -> u64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else { return 0 };
    let Some(line) = stat.lines().next() else { return 0 };
    // cpu user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum()
}

impl Processes {
    fn read(&self) -> Cpu {
        Cpu {
            anvil: process_ticks(&self.anvil.to_string()),
            nodes: self.nodes.iter().map(|p| process_ticks(&p.to_string())).sum(),
            own: process_ticks("self"),
            machine: machine_ticks(),
        }
    }
}

// ----- requests -------------------------------------------------------------------------------------------------------

/// One paid call, everything built before timing.
struct Paid {
    call_id: CallId,
    inputs: Bytes,
    /// `POST /v1/jobs` body (x402 proof), for the direct calls.
    job_body: bytes::Bytes,
    /// `PAYMENT-SIGNATURE`, for the gateway.
    header: String,
}

/// Latencies, the sum of the timed windows, and the CPU used in them.
#[derive(Default)]
struct Timing {
    wall: Duration,
    latencies: Vec<Duration>,
    cpu: Cpu,
}

impl Timing {
    fn add(&mut self, wall: Duration, latencies: Vec<Duration>, before: Cpu, after: Cpu) {
        self.wall += wall;
        self.latencies.extend(latencies);
        self.cpu.anvil += after.anvil.saturating_sub(before.anvil);
        self.cpu.nodes += after.nodes.saturating_sub(before.nodes);
        self.cpu.own += after.own.saturating_sub(before.own);
        self.cpu.machine += after.machine.saturating_sub(before.machine);
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn p(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
    }

    /// CPU milliseconds per call: anvil, nodes, this process, everything else on the machine.
    fn cpu_per_call(&self, ticks_per_sec: f64) -> [f64; 4] {
        let per = |ticks: u64| ticks as f64 / ticks_per_sec * 1e3 / self.latencies.len().max(1) as f64;
        let c = self.cpu;
        let others = c.machine.saturating_sub(c.anvil + c.nodes + c.own);
        [per(c.anvil), per(c.nodes), per(c.own), per(others)]
    }
}

/// Runs `requests` with `concurrency` in flight, adding the latencies, the window and its CPU to `t`; the answers in
/// request order.
async fn timed<'a, F, Fut>(
    t: &mut Timing,
    procs: &Processes,
    requests: &'a [Paid],
    concurrency: usize,
    f: F,
) -> Result<Vec<Vec<bytes::Bytes>>, AnyError>
where
    F: Fn(&'a Paid) -> Fut,
    Fut: Future<Output = Result<Vec<bytes::Bytes>, AnyError>>,
{
    let before = procs.read();
    let (wall, latencies, answers) = run_all(requests, concurrency, f).await?;
    t.add(wall, latencies, before, procs.read());
    Ok(answers)
}

/// One request's latency and answers.
type Outcome = Result<(Duration, Vec<bytes::Bytes>), AnyError>;

/// Wall time and per-request latencies of `requests` run with `concurrency` in flight; the answers in request order.
async fn run_all<'a, F, Fut>(
    requests: &'a [Paid],
    concurrency: usize,
    f: F,
) -> Result<(Duration, Vec<Duration>, Vec<Vec<bytes::Bytes>>), AnyError>
where
    F: Fn(&'a Paid) -> Fut,
    Fut: Future<Output = Result<Vec<bytes::Bytes>, AnyError>>,
{
    let f = &f;
    let start = Instant::now();
    let mut outcomes: Vec<(usize, Outcome)> = stream::iter(requests)
        .enumerate()
        .map(|(i, r)| async move {
            let t = Instant::now();
            let answer = f(r).await;
            (i, answer.map(|a| (t.elapsed(), a)))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = start.elapsed();
    outcomes.sort_by_key(|(i, _)| *i);
    let mut latencies = Vec::with_capacity(outcomes.len());
    let mut answers = Vec::with_capacity(outcomes.len());
    for (_, o) in outcomes {
        let (l, a) = o?;
        latencies.push(l);
        answers.push(a);
    }
    Ok((wall, latencies, answers))
}

async fn post_job(http: &reqwest::Client, url: &str, body: bytes::Bytes) -> Result<bytes::Bytes, AnyError> {
    let r = http.post(url).header(CONTENT_TYPE, "application/json").body(body).send().await?;
    let status = r.status();
    let answer = r.bytes().await?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {}", String::from_utf8_lossy(&answer)).into());
    }
    Ok(answer)
}

/// The gateway's paid call: `PAYMENT-SIGNATURE` and the job's inputs as the body.
async fn post_gateway(
    http: &reqwest::Client,
    url: &str,
    header: String,
    inputs: Bytes,
) -> Result<Vec<bytes::Bytes>, AnyError> {
    let r = http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header("PAYMENT-SIGNATURE", header)
        .body(bytes::Bytes::from(inputs))
        .send()
        .await?;
    let status = r.status();
    let answer = r.bytes().await?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("the gateway answered {status}: {}", String::from_utf8_lossy(&answer)).into());
    }
    Ok(vec![answer])
}

async fn unpaid_402(http: &reqwest::Client, url: &str, inputs: Bytes) -> Result<Vec<bytes::Bytes>, AnyError> {
    let r = http.post(url).header(CONTENT_TYPE, "application/json").body(bytes::Bytes::from(inputs)).send().await?;
    let status = r.status();
    let has_header = r.headers().contains_key("payment-required");
    let body = r.bytes().await?;
    if status != reqwest::StatusCode::PAYMENT_REQUIRED || !has_header {
        return Err(
            format!("expected 402 with PAYMENT-REQUIRED, got {status}: {}", String::from_utf8_lossy(&body)).into()
        );
    }
    Ok(Vec::new())
}

// ----- checks (after timing) ----------------------------------------------------------------------------------------

struct Checker {
    binding: ChainBinding,
    service_id: ServiceId,
    keys: Vec<PublicKey>,
    operators: Vec<Address>,
}

impl Checker {
    fn direct(&self, slot: usize, p: &Paid, raw: &[u8]) -> Result<(), AnyError> {
        let signed: SignedResult = serde_json::from_slice(raw)?;
        let expected = ResultRef {
            service_id: self.service_id,
            call_id: p.call_id,
            inputs_hash: keccak256(&p.inputs),
            result_hash: keccak256(&p.inputs),
        };
        if signed.operator != self.operators[slot]
            || signed.result != expected
            || signed.output.as_ref() != Some(&p.inputs)
        {
            return Err(format!("wrong answer from operator {slot} for {}: {signed:?}", p.call_id).into());
        }
        Signature::from_compressed(&signed.signature)?
            .verify(&self.keys[slot], &result_digest(&self.binding, &signed.result))?;
        Ok(())
    }

    fn gateway(&self, p: &Paid, raw: &[u8]) -> Result<(), AnyError> {
        let answer: Value = serde_json::from_slice(raw)?;
        let output: Value = serde_json::from_slice(&p.inputs)?;
        if answer["output"] != output {
            return Err(format!("wrong output for {}: {answer}", p.call_id).into());
        }
        let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
        let hash = keccak256(&p.inputs);
        if cert.call_id != p.call_id.0
            || cert.service_id != self.service_id.0
            || cert.inputs_hash != hash
            || cert.result_hash != hash
            || cert.signer_bitmap != U256::from(0b111)
        {
            return Err(format!("wrong certificate for {}: {cert:?}", p.call_id).into());
        }
        fast_aggregate_verify(&self.keys, &cert.digest(), &Signature::from_eip2537(&cert.signature)?)?;
        Ok(())
    }
}

/// Runs `check` over `items` on every core.
fn check_all<T: Sync>(items: &[T], check: impl Fn(&T) -> Result<(), AnyError> + Sync) -> Result<(), AnyError> {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(cores).max(1);
    let first_error = Mutex::new(None);
    thread::scope(|s| {
        for part in items.chunks(per) {
            let (check, first_error) = (&check, &first_error);
            s.spawn(move || {
                for item in part {
                    if let Err(e) = check(item) {
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e.to_string());
                        }
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().map_err(|_| "poisoned")? {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

// ----- the run ------------------------------------------------------------------------------------------------------

/// What one concurrency level measured.
struct Level {
    concurrency: usize,
    calls: usize,
    one: Timing,
    all_before: Timing,
    all_after: Timing,
    /// All 3 at once, one chunk before or after each gateway chunk (alternating): the same machine conditions.
    paired: Timing,
    quiet: Timing,
    settling: Option<Timing>,
    unpaid: Timing,
}

impl Level {
    /// The slowest-of-3 baseline: the faster of the two runs (the overhead is never flattered).
    fn baseline(&self) -> &Timing {
        if self.all_before.p(0.5) <= self.all_after.p(0.5) { &self.all_before } else { &self.all_after }
    }

    /// The interleaved slowest-of-3 baseline: measured in the same minutes as the gateway chunks it alternates with
    /// (the machine is shared, its load drifts between phases).
    fn paired_baseline(&self) -> &Timing {
        &self.paired
    }
}

/// Set in the gateway child process of a profile run ([`profile`]).
const CHILD_ENV: &str = "BENCH_GATEWAY_CHILD";

fn main() -> Result<(), AnyError> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return gateway_child();
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench())
}

async fn bench() -> Result<(), AnyError> {
    let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,32".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .filter(|c| *c > 0)
        .collect();
    let top = *levels.iter().max().ok_or("BENCH_CONCURRENCY names no concurrency")?;
    let calls_n = env_or("BENCH_CALLS", 2_000).max(1);
    let serial_n = env_or("BENCH_SERIAL_CALLS", 1_000).max(1);
    let chunk = env_or("BENCH_CHUNK", 250).clamp(top + 1, 255);
    let payers_n = env_or("BENCH_PAYERS", 100).max(2);
    let max_batch = env_or("BENCH_BATCH", 100).clamp(1, 256);
    let batch_delay_ms = env_or("BENCH_BATCH_DELAY_MS", 200) as u64;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let bin = vouch_bin()?;
    let ticks_per_sec = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);

    println!("vouch gateway benchmark (echo blueprint, 3 operator processes, loopback, release build)");
    println!("machine: {cores} cores available; anvil, 3 nodes, the gateway and the client share them");

    // --- set-up, not timed ----------------------------------------------------------------------------------------
    let set_up = Instant::now();
    let tmp = tempfile::tempdir()?;
    let devnet =
        Devnet::start(DevnetConfig { data_dir: Some(tmp.path().join("devnet")), ..DevnetConfig::default() }).await?;
    let service_id = ServiceId(devnet.service_id());
    let blueprint = format!("echo={}", devnet.blueprint_id());
    for i in 0..OPERATORS {
        let dir = tmp.path().join(format!("node-{i}"));
        fs::create_dir_all(&dir)?;
        let config = dir.join("node.toml");
        write_node_toml(&config, &devnet, i, &dir.join("state"))?;
        let init = vouch_command(&bin).args(["node", "init", "--config"]).arg(&config).output()?;
        if !init.status.success() {
            return Err(format!("vouch node init: {}", String::from_utf8_lossy(&init.stderr)).into());
        }
    }
    let mut nodes = Vec::new();
    for i in 0..OPERATORS {
        let dir = tmp.path().join(format!("node-{i}"));
        nodes.push(NodeProcess::start(&bin, &dir.join("node.toml"), &dir.join("node.log"), &blueprint)?);
    }
    let job_urls: Vec<String> = nodes.iter().map(|n| format!("{}/v1/jobs", n.api)).collect();
    let procs = Processes { anvil: devnet.anvil_pid(), nodes: nodes.iter().map(|n| n.child.id()).collect() };

    let contracts = devnet.address_book().contracts;
    let read = devnet.read_provider();
    let price = devnet.jobs().get(usize::from(vouch_echo::ECHO)).ok_or("no echo job")?.price;
    let submitter = devnet.new_account(&Funding { eth: U256::from(100u64) * ONE_ETH, ..Funding::default() }).await?;
    let mut payers: Vec<PrivateKeySigner> = Vec::new();
    for _ in 0..payers_n {
        payers.push(devnet.new_account(&Funding { usd: U256::from(1_000u64) * ONE_VUSD, ..Funding::default() }).await?);
    }
    let gateway_config = |name: &str, max_batch: usize, delay_ms: u64| GatewayConfig {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        rpc_url: devnet.rpc_url().to_owned(),
        data_dir: tmp.path().join(name),
        max_batch,
        max_batch_delay_ms: delay_ms,
        ..GatewayConfig::default()
    };
    // A gateway that never settles while it serves fewer than 256 calls: a batch needs 256 waiting (the most
    // `max_batch` allows) or the oldest to wait 5 minutes.
    let quiet_config = |name: &str| gateway_config(name, 256, 300_000);
    let start_gateway = async |config: GatewayConfig| -> Result<RunningGateway, AnyError> {
        Ok(Gateway::new(config, devnet.address_book().clone(), submitter.clone()).start().await?)
    };
    let job_path = format!("/v1/services/{}/jobs/{}", service_id.0, vouch_echo::ECHO);

    // What the gateway offers (the 402), once: every payment below accepts it.
    let probe = start_gateway(quiet_config("gateway-probe")).await?;
    let probe_url = format!("{}{job_path}", probe.url());
    let http = reqwest::Client::builder().pool_max_idle_per_host(top * OPERATORS).build()?;
    let r = http.post(&probe_url).body(r#"{"message":"price?"}"#).send().await?;
    if r.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
        return Err(format!("expected 402 without payment, got {}", r.status()).into());
    }
    let required: Value =
        serde_json::from_slice(&STANDARD.decode(r.headers().get("payment-required").ok_or("no PAYMENT-REQUIRED")?)?)?;
    let accepted = required["accepts"][0].clone();
    let max_timeout = accepted["maxTimeoutSeconds"].as_u64().ok_or("maxTimeoutSeconds")?;
    let domain = TokenDomain::read(&read, contracts.vouch_usd).await?;
    let now = chain_now(&read).await?;

    // Every payment, signed now.
    let mut serial = 0usize;
    let mut sign = |n: usize| -> Result<Vec<Paid>, AnyError> {
        (0..n)
            .map(|_| {
                let i = serial;
                serial += 1;
                let payer = &payers[i % payers.len()];
                let auth = TransferAuthorization {
                    from: payer.address(),
                    to: contracts.protocol,
                    value: U256::from(price),
                    valid_after: U256::ZERO,
                    valid_before: U256::from(now + max_timeout),
                    nonce: keccak256(format!("vouch gateway bench payment {i}")),
                };
                let signature = auth.sign(payer, &domain)?;
                let inputs = Bytes::from(format!(r#"{{"message":"vouch bench call {i:06}"}}"#).into_bytes());
                let call_id = paid_call_id(service_id, vouch_echo::ECHO, auth.from, auth.nonce);
                let req = JobRequest {
                    version: WIRE_VERSION,
                    service_id,
                    call_id,
                    job_index: vouch_echo::ECHO,
                    inputs: inputs.clone(),
                    payment: PaymentProof::X402 { authorization: auth, signature: signature.clone() },
                };
                let payload = json!({
                    "x402Version": 2,
                    "accepted": accepted,
                    "payload": { "authorization": auth, "signature": signature },
                });
                Ok(Paid {
                    call_id,
                    inputs,
                    job_body: serde_json::to_vec(&req)?.into(),
                    header: STANDARD.encode(serde_json::to_vec(&payload)?),
                })
            })
            .collect()
    };
    if let Some(other) = std::env::var_os("BENCH_AB") {
        let sessions = env_or("BENCH_AB_SESSIONS", 4).max(1);
        let rounds = env_or("BENCH_AB_ROUNDS", 10).max(1);
        let per_chunk = env_or("BENCH_AB_CHUNK", 22).max(1);
        let warm = 10;
        if warm + rounds * per_chunk > 255 {
            return Err("BENCH_AB_ROUNDS × BENCH_AB_CHUNK must stay below 245 (a gateway settles at 256 calls)".into());
        }
        let mut paid = sign(sessions * (2 * warm + 3 * rounds * per_chunk))?.into_iter();
        probe.kill();
        let checker = Checker {
            binding: devnet.protocol_binding(),
            service_id,
            keys: devnet.operators().iter().map(|o| o.bls_public()).collect(),
            operators: devnet.operators().iter().map(|o| o.address()).collect(),
        };
        let result = ab(
            Path::new(&other),
            &devnet,
            &submitter,
            tmp.path(),
            &job_path,
            &job_urls,
            &mut paid,
            (sessions, rounds, per_chunk, warm),
            &checker,
            ticks_per_sec,
        )
        .await;
        drop(nodes);
        return result;
    }
    if let Some(n) = std::env::var("BENCH_PROFILE").ok().and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0) {
        let c = env_or("BENCH_PROFILE_CONCURRENCY", 1).max(1);
        let warm = env_or("BENCH_PROFILE_WARM", 50).max(c);
        let paid = sign(warm + n)?;
        probe.kill();
        let checker = Checker {
            binding: devnet.protocol_binding(),
            service_id,
            keys: devnet.operators().iter().map(|o| o.bls_public()).collect(),
            operators: devnet.operators().iter().map(|o| o.address()).collect(),
        };
        let (dir, path) = (tmp.path(), job_path.as_str());
        let result = profile(&devnet, &submitter, dir, path, &paid, warm, c, &checker, &procs, ticks_per_sec).await;
        drop(nodes);
        return result;
    }
    struct Prepared {
        concurrency: usize,
        per_chunk: usize,
        one: Vec<Paid>,
        all_before: Vec<Paid>,
        quiet: Vec<Paid>,
        settling: Vec<Paid>,
        all_after: Vec<Paid>,
        paired: Vec<Paid>,
    }
    let mut prepared = Vec::new();
    for &c in &levels {
        let per_chunk = chunk - c;
        let chunks = (if c == 1 { serial_n } else { calls_n }).div_ceil(per_chunk);
        let phase = c + chunks * per_chunk;
        prepared.push(Prepared {
            concurrency: c,
            per_chunk,
            one: sign(phase)?,
            all_before: sign(phase)?,
            quiet: sign(chunks * chunk)?,
            settling: if c == top { sign(phase)? } else { Vec::new() },
            all_after: sign(phase)?,
            paired: sign(chunks * per_chunk)?,
        });
    }
    println!(
        "set-up: devnet + 3 `vouch node run` processes + {payers_n} payers; {serial} payments signed; {:.1} s",
        set_up.elapsed().as_secs_f64()
    );

    let checker = Checker {
        binding: devnet.protocol_binding(),
        service_id,
        keys: devnet.operators().iter().map(|o| o.bls_public()).collect(),
        operators: devnet.operators().iter().map(|o| o.address()).collect(),
    };
    let one = |p: &Paid| {
        let (http, url, body) = (&http, &job_urls[0], p.job_body.clone());
        async move { Ok(vec![post_job(http, url, body).await?]) }
    };
    let all = |p: &Paid| {
        let (http, urls, body) = (&http, &job_urls, p.job_body.clone());
        async move {
            let answers = join_all(urls.iter().map(|u| post_job(http, u, body.clone()))).await;
            answers.into_iter().collect::<Result<Vec<_>, _>>()
        }
    };

    // --- timed phases, per concurrency ------------------------------------------------------------------------------
    let mut results = Vec::new();
    let mut checked = 0usize;
    let mut quiet_by_level: Vec<Vec<(&Paid, Vec<bytes::Bytes>)>> = Vec::new();
    let mut gas_gateway = None;
    let mut settled_while_timed = 0;
    for prep in &prepared {
        let (c, per_chunk) = (prep.concurrency, prep.per_chunk);
        // Direct: one operator, or all 3 (slowest of 3); one warm-up per slot, then the chunks.
        let direct = async |paid: &[Paid], all3: bool| -> Result<(Timing, Vec<Vec<bytes::Bytes>>), AnyError> {
            let (warm, rest) = paid.split_at(c);
            let mut t = Timing::default();
            let mut answers = Vec::new();
            if all3 {
                run_all(warm, c, all).await?;
            } else {
                run_all(warm, c, one).await?;
            }
            for part in rest.chunks(per_chunk) {
                answers.extend(if all3 {
                    timed(&mut t, &procs, part, c, all).await?
                } else {
                    timed(&mut t, &procs, part, c, one).await?
                });
            }
            Ok((t, answers))
        };
        let (t_one, a_one) = direct(&prep.one, false).await?;
        let (t_all_before, a_all_before) = direct(&prep.all_before, true).await?;

        // The 402 round trip, on the probe gateway.
        let mut t_unpaid = Timing::default();
        let unpaid_of = |p: &Paid| unpaid_402(&http, &probe_url, p.inputs.clone());
        run_all(&prep.one[..c], c, unpaid_of).await?;
        timed(&mut t_unpaid, &procs, &prep.one[c..c + per_chunk], c, unpaid_of).await?;

        // Gateway, settlement not running: a fresh gateway (own request log) per chunk of fewer than 256 calls.
        let mut t_quiet = Timing::default();
        let mut quiet_answers = Vec::new();
        let mut t_paired = Timing::default();
        let mut paired_answers = Vec::new();
        let mut paired_chunks = prep.paired.chunks(per_chunk);
        for (k, part) in prep.quiet.chunks(chunk).enumerate() {
            // The interleaved baseline: one chunk of direct calls to all 3 next to each gateway chunk, before it on
            // even chunks and after it on odd ones.
            let paired_part = paired_chunks.next().ok_or("no paired chunk")?;
            if k % 2 == 0 {
                paired_answers.extend(rest_zip(paired_part, timed(&mut t_paired, &procs, paired_part, c, all).await?));
            }
            let g = start_gateway(quiet_config(&format!("gateway-quiet-{c}-{k}"))).await?;
            let client = reqwest::Client::builder().pool_max_idle_per_host(c * 2).build()?;
            let url = format!("{}{job_path}", g.url());
            let call = |p: &Paid| post_gateway(&client, &url, p.header.clone(), p.inputs.clone());
            let (warm, rest) = part.split_at(c);
            run_all(warm, c, call).await?;
            let answers = timed(&mut t_quiet, &procs, rest, c, call).await?;
            let settled = g.store().with_status(RequestStatus::Settled, 1_000)?.len();
            if settled != 0 {
                return Err(format!("gateway {c}-{k} settled {settled} calls during a quiet chunk").into());
            }
            quiet_answers.extend(rest.iter().zip(answers));
            drop(client);
            g.kill();
            if k % 2 == 1 {
                paired_answers.extend(rest_zip(paired_part, timed(&mut t_paired, &procs, paired_part, c, all).await?));
            }
        }
        check_all(&paired_answers, |(p, a)| (0..OPERATORS).try_for_each(|slot| checker.direct(slot, p, &a[slot])))?;
        checked += OPERATORS * paired_answers.len();

        quiet_by_level.push(quiet_answers);

        // Gateway, settlement running (highest concurrency; its batches give the gas).
        let mut t_settling = None;
        if !prep.settling.is_empty() {
            let g = start_gateway(gateway_config("gateway-settling", max_batch, batch_delay_ms)).await?;
            let url = format!("{}{job_path}", g.url());
            let call = |p: &Paid| post_gateway(&http, &url, p.header.clone(), p.inputs.clone());
            let (warm, rest) = prep.settling.split_at(c);
            run_all(warm, c, call).await?;
            let mut t = Timing::default();
            let mut answers = Vec::new();
            for part in rest.chunks(per_chunk) {
                answers.extend(rest_zip(part, timed(&mut t, &procs, part, c, call).await?));
            }
            settled_while_timed = g.store().with_status(RequestStatus::Settled, 1_000_000)?.len();
            let timed_done = Instant::now();
            // Every call settled before the last baseline runs, so that settlement does not slow it.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !g.store().with_status(RequestStatus::Answered, 1_000_000)?.is_empty() {
                if Instant::now() > deadline {
                    return Err("calls still unsettled after 600 s".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            check_all(&answers, |(p, a)| checker.gateway(p, &a[0]))?;
            checked += answers.len();
            t_settling = Some(t);
            gas_gateway = Some((g, timed_done.elapsed()));
        }

        let (t_all_after, a_all_after) = direct(&prep.all_after, true).await?;

        // Every answer, checked after timing.
        let pairs: Vec<_> = prep.one[c..].iter().zip(&a_one).collect();
        check_all(&pairs, |(p, a)| checker.direct(0, p, &a[0]))?;
        checked += pairs.len();
        for (paid, answers) in [(&prep.all_before, &a_all_before), (&prep.all_after, &a_all_after)] {
            let pairs: Vec<_> = paid[c..].iter().zip(answers).collect();
            check_all(&pairs, |(p, a)| (0..OPERATORS).try_for_each(|slot| checker.direct(slot, p, &a[slot])))?;
            checked += OPERATORS * pairs.len();
        }
        results.push(Level {
            concurrency: c,
            calls: t_quiet.latencies.len(),
            one: t_one,
            all_before: t_all_before,
            all_after: t_all_after,
            paired: t_paired,
            quiet: t_quiet,
            settling: t_settling,
            unpaid: t_unpaid,
        });
    }
    probe.kill();
    for quiet in &quiet_by_level {
        check_all(quiet, |(p, a)| checker.gateway(p, &a[0]))?;
        checked += quiet.len();
    }

    // --- stages of the gateway's request path alone, at each concurrency --------------------------------------------
    // The request log as the handler uses it (lookup, record, answered, on the request's task), on the quiet calls
    // again in a fresh store; the chain reads the handler makes besides the x402 check (the latest block, then the 3
    // operators' endpoints at once, as the fan-out reads them); the x402 check (signature, then chain reads at chain
    // time) on payments never collected (the direct calls'), so that every check runs to the end.
    let offer = x402::Offer {
        chain_id: devnet.chain_id(),
        token: domain.clone(),
        pay_to: contracts.protocol,
        amount: U256::from(price),
        max_timeout_seconds: max_timeout,
        resource_url: String::new(),
        description: String::new(),
    };
    let view = ChainView::new(
        ProviderBuilder::new().connect_http(devnet.rpc_url().parse()?).erased(),
        devnet.address_book().clone(),
    );
    let operators = checker.operators.clone();
    let verify_now = chain_now(&read).await?;
    let mut stages = Vec::new();
    for (prep, quiet) in prepared.iter().zip(&quiet_by_level) {
        let c = prep.concurrency;
        let store = RequestStore::open(&tmp.path().join(format!("stage-store-{c}")).join("gateway.sqlite"))?;
        let calls: Vec<(PaidRequest, String, Certificate, Vec<Address>)> = quiet
            .iter()
            .map(|(p, a)| {
                let payload = x402::decode_payment_signature(&p.header).map_err(|e| e.message)?;
                let answer: Value = serde_json::from_slice(&a[0])?;
                let certificate: Certificate = serde_json::from_value(answer["certificate"].clone())?;
                let signers = serde_json::from_value(answer["signers"].clone())?;
                let paid = PaidRequest {
                    call_id: p.call_id,
                    service_id,
                    job_index: vouch_echo::ECHO,
                    inputs: p.inputs.clone(),
                    authorization: payload.payload.authorization,
                    payment_signature: payload.payload.signature.clone(),
                    payment_id: x402::payment_identifier(&payload).map_err(|e| e.message)?,
                    payload_hash: keccak256(p.header.as_bytes()),
                };
                Ok((paid, answer.to_string(), certificate, signers))
            })
            .collect::<Result<_, AnyError>>()?;
        let t_store = stage(&calls, c, prep.per_chunk, &procs, |(paid, text, cert, signers)| {
            let store = &store;
            async move {
                if store.by_authorization(&paid.authorization)?.is_some() {
                    return Err(AnyError::from("recorded twice"));
                }
                store.record(paid)?;
                store.answered(paid.call_id, text, cert, signers)?;
                Ok(())
            }
        })
        .await?;
        let t_reads = stage(&prep.all_after[c..], c, prep.per_chunk, &procs, |_| {
            let (view, operators) = (&view, &operators);
            async move {
                view.now().await?;
                for e in join_all(operators.iter().map(|op| view.endpoint_of(*op))).await {
                    e?;
                }
                Ok(())
            }
        })
        .await?;
        let payloads: Vec<x402::PaymentPayload> = prep.all_after[c..]
            .iter()
            .map(|p| x402::decode_payment_signature(&p.header).map_err(|e| AnyError::from(e.message)))
            .collect::<Result<_, _>>()?;
        let t_verify = stage(&payloads, c, prep.per_chunk, &procs, |payload| {
            let (read, offer) = (&read, &offer);
            async move {
                x402::verify(read, offer, payload, verify_now)
                    .await
                    .map_err(|e| AnyError::from(format!("verify: {} {}", e.code, e.message)))?;
                Ok(())
            }
        })
        .await?;
        stages.push((t_store, t_reads, t_verify));
    }
    let top_prep = prepared.iter().find(|p| p.concurrency == top).ok_or("no top level")?;
    // BLS on the replies, one thread: the fan-out verifies each of the 3 signatures, then aggregates; one aggregate
    // verification (the 3 keys added, one pairing check) is the alternative.
    let replies: Vec<(Vec<Signature>, B256)> = top_prep.all_after[top..]
        .iter()
        .take(500)
        .map(|p| {
            let result = ResultRef {
                service_id,
                call_id: p.call_id,
                inputs_hash: keccak256(&p.inputs),
                result_hash: keccak256(&p.inputs),
            };
            let digest = result_digest(&checker.binding, &result);
            let secrets: Vec<_> = devnet.operators().iter().map(|o| o.bls_secret().sign(&digest)).collect();
            (secrets, digest)
        })
        .collect();
    let keys = checker.keys.clone();
    let (bls_each, bls_aggregate) = tokio::task::spawn_blocking(move || -> Result<(f64, f64), AnyError> {
        let start = Instant::now();
        for (sigs, digest) in &replies {
            for (sig, key) in sigs.iter().zip(&keys) {
                sig.verify(key, digest)?;
            }
            std::hint::black_box(vouch_crypto::aggregate_signatures(sigs)?);
        }
        let each = start.elapsed().as_secs_f64() * 1e3 / replies.len() as f64;
        let start = Instant::now();
        for (sigs, digest) in &replies {
            fast_aggregate_verify(&keys, digest, &vouch_crypto::aggregate_signatures(sigs)?)?;
        }
        Ok((each, start.elapsed().as_secs_f64() * 1e3 / replies.len() as f64))
    })
    .await??;

    // --- gas --------------------------------------------------------------------------------------------------------
    let (g, settle_wait) = gas_gateway.ok_or("no settling phase")?;
    let settled = g.store().with_status(RequestStatus::Settled, 1_000_000)?;
    let unpayable = g.store().with_status(RequestStatus::Unpayable, 1_000_000)?.len();
    let failed = g.store().with_status(RequestStatus::Failed, 1_000_000)?.len();
    let mut batches: BTreeMap<B256, usize> = BTreeMap::new();
    for s in &settled {
        *batches.entry(s.settle_tx.ok_or("a settled call without its transaction")?).or_default() += 1;
    }
    let mut rows = Vec::new();
    for (tx, calls) in &batches {
        if tx.is_zero() {
            return Err("a batch was found already settled (NothingToCollect): no receipt to measure".into());
        }
        let receipt = read.get_transaction_receipt(*tx).await?.ok_or("no receipt")?;
        if !receipt.status() {
            return Err(format!("settlement {tx} reverted").into());
        }
        rows.push((receipt.block_number.unwrap_or_default(), *calls, receipt.gas_used));
    }
    rows.sort();
    g.kill();
    // Baseline: plain EIP-3009 payments (what an x402 `exact` payment settles on chain) with fresh nonces, sent by the
    // submitter: to a payee that already holds the token (steady state), and to one that holds none yet.
    let wallet = devnet.provider(&submitter);
    let usd = VouchUSD::new(contracts.vouch_usd, &wallet);
    let fresh_payee = Address::from_slice(&keccak256("vouch gateway bench: a payee without tokens")[12..]);
    let mut plain = Vec::new();
    for (k, to) in [payers[1].address(), fresh_payee].into_iter().enumerate() {
        let payer = &payers[0];
        let a = TransferAuthorization {
            from: payer.address(),
            to,
            value: U256::from(price),
            valid_after: U256::ZERO,
            valid_before: U256::from(now + max_timeout),
            nonce: keccak256(format!("vouch gateway bench: plain EIP-3009 transfer {k}")),
        };
        let signature = a.sign(payer, &domain)?;
        let receipt = usd
            .transferWithAuthorization_0(a.from, a.to, a.value, a.valid_after, a.valid_before, a.nonce, signature)
            .send()
            .await?
            .get_receipt()
            .await?;
        if !receipt.status() {
            return Err("a plain transferWithAuthorization reverted".into());
        }
        plain.push(receipt.gas_used as f64);
    }

    // --- report -------------------------------------------------------------------------------------------------------
    println!(
        "timed: chunks of {} calls per gateway instance (one warm-up per slot in flight, not timed), the same chunks \
         in every phase; {checked} answers checked after timing (outputs, signatures, certificates)",
        chunk
    );
    println!(
        "CPU ms per call in the timed windows: anvil / 3 nodes / this process (client, + gateway) / rest of machine"
    );
    for level in &results {
        let c = level.concurrency;
        println!();
        println!(
            "{c} in flight ({} calls per phase{})",
            level.calls,
            if c == 1 { "; no queueing: the latency is the path's own" } else { "" }
        );
        println!("{:<62} {:>7} {:>8} {:>8}   CPU ms/call", "", "calls/s", "p50 ms", "p99 ms");
        let row = |name: &str, t: &Timing| {
            let [a, n, o, r] = t.cpu_per_call(ticks_per_sec);
            println!(
                "{name:<62} {:>7.0} {:>8.2} {:>8.2}   {a:.2} / {n:.2} / {o:.2} / {r:.2}",
                t.rate(),
                t.p(0.5),
                t.p(0.99)
            );
        };
        row("direct: one operator (POST /v1/jobs, x402 proof)", &level.one);
        row("direct: all 3 at once, slowest of 3 (before the gateway)", &level.all_before);
        row("direct: all 3 at once, slowest of 3 (after the gateway)", &level.all_after);
        row("direct: all 3 at once, slowest of 3 (interleaved, chunk by chunk)", &level.paired);
        row("gateway: paid call → certificate, settlement not running", &level.quiet);
        if let Some(t) = &level.settling {
            row(&format!("gateway: same, settling meanwhile (batch {max_batch}, {batch_delay_ms} ms)"), t);
        }
        row("gateway: 402 round trip (no payment; once per price)", &level.unpaid);
        let b = level.baseline();
        let mut gateways = vec![("settlement not running", &level.quiet)];
        if let Some(t) = &level.settling {
            gateways.push(("settling meanwhile", t));
        }
        let baselines = [("the faster of before/after", b), ("interleaved", level.paired_baseline())];
        for (name, t) in gateways {
            for (which, b) in baselines {
                println!(
                    "  overhead, {name}: p50 {:+.2} ms ({:.2}x), p99 {:+.2} ms over the slowest of 3, {which} (p50 \
                     {:.2}, p99 {:.2}); calls/s {:.2}x",
                    t.p(0.5) - b.p(0.5),
                    t.p(0.5) / b.p(0.5),
                    t.p(0.99) - b.p(0.99),
                    b.p(0.5),
                    b.p(0.99),
                    t.rate() / b.rate()
                );
            }
        }
    }
    println!("goal: p50 overhead ≤ 2 ms above the slowest operator in the quorum");
    println!();
    println!("gateway stages alone, at each concurrency (per second, p50, p99):");
    for (level, (t_store, t_reads, t_verify)) in results.iter().zip(&stages) {
        let c = level.concurrency;
        let stage = |name: &str, t: &Timing| {
            println!("  {name:<70} {:>7.0}/s  p50 {:.2} ms, p99 {:.2} ms", t.rate(), t.p(0.5), t.p(0.99));
        };
        stage(&format!("{c} in flight: request log: lookup + record + answered (SQLite, FULL)"), t_store);
        stage(&format!("{c} in flight: chain reads: latest block, then 3 endpoints at once"), t_reads);
        stage(&format!("{c} in flight: x402 check: signature + chain reads at chain time"), t_verify);
    }
    println!(
        "  {:<70} {:>7.0}/s  {bls_each:.2} ms per call",
        "BLS, one thread: verify the 3 replies + aggregate (what the fan-out does)",
        1e3 / bls_each
    );
    println!(
        "  {:<70} {:>7.0}/s  {bls_aggregate:.2} ms per call",
        "BLS, one thread: aggregate, then one fast_aggregate_verify",
        1e3 / bls_aggregate
    );
    println!();
    let full: Vec<_> = rows.iter().filter(|(_, calls, _)| *calls == max_batch).collect();
    let total_gas: u64 = rows.iter().map(|(_, _, gas)| *gas).sum();
    println!(
        "settlement: {} calls settled in {} settlePaidBatch transactions (max_batch {max_batch}, delay {batch_delay_ms} \
         ms): {settled_while_timed} while the timed requests ran, all {:.1} s after the last; {unpayable} unpayable, \
         {failed} failed",
        settled.len(),
        rows.len(),
        settle_wait.as_secs_f64()
    );
    let sizes: Vec<String> = rows.iter().map(|(_, calls, gas)| format!("{calls}:{gas}")).collect();
    println!("  batches in block order (calls:gasUsed): {}", sizes.join(" "));
    println!(
        "baseline: a plain EIP-3009 transferWithAuthorization sent in this run: {:.0} gas (payee already holds the \
         token), {:.0} gas (payee holds none)",
        plain[0], plain[1]
    );
    let mut per_call = Vec::new();
    if !full.is_empty() {
        let gas: u64 = full.iter().map(|(_, _, gas)| *gas).sum();
        let calls: usize = full.iter().map(|(_, calls, _)| *calls).sum();
        per_call.push((format!("batches of {max_batch} ({} batches)", full.len()), gas as f64 / calls as f64));
    }
    per_call.push(("all batches".to_owned(), total_gas as f64 / settled.len().max(1) as f64));
    for (name, per) in per_call {
        println!(
            "gas per paid, verified call, {name}: {per:.0} = {:.2}x / {:.2}x the plain payment",
            per / plain[0],
            per / plain[1]
        );
    }
    drop(nodes);
    Ok(())
}

/// Times `f` over `items` with `concurrency` in flight, in chunks of `per_chunk` (as the phases are run).
async fn stage<'a, T, F, Fut>(
    items: &'a [T],
    concurrency: usize,
    per_chunk: usize,
    procs: &Processes,
    f: F,
) -> Result<Timing, AnyError>
where
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = Result<(), AnyError>>,
{
    let f = &f;
    let mut t = Timing::default();
    for part in items.chunks(per_chunk) {
        let before = procs.read();
        let start = Instant::now();
        let lat: Vec<Result<Duration, AnyError>> = stream::iter(part)
            .map(|item| async move {
                let t = Instant::now();
                f(item).await?;
                Ok(t.elapsed())
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        t.add(start.elapsed(), lat.into_iter().collect::<Result<_, _>>()?, before, procs.read());
    }
    Ok(t)
}

/// The calls of `part` with their answers.
fn rest_zip(part: &[Paid], answers: Vec<Vec<bytes::Bytes>>) -> Vec<(&Paid, Vec<bytes::Bytes>)> {
    part.iter().zip(answers).collect()
}

// ----- profile mode -------------------------------------------------------------------------------------------------

/// `BENCH_PROFILE=N`: the gateway alone in a child process (this binary again, with [`CHILD_ENV`] set, run through
/// `BENCH_GATEWAY_WRAP` if given, e.g. `valgrind --tool=callgrind --callgrind-out-file=/tmp/gw.cg`), `warm` paid
/// calls to warm it up, then `N` timed ones at `concurrency` in flight; prints the child's CPU per call. Under
/// callgrind, the counters are zeroed before the timed calls and dumped after them (`callgrind_control`), so the
/// dump holds exactly the N calls' instructions.
#[allow(clippy::too_many_arguments)]
async fn profile(
    devnet: &Devnet,
    submitter: &PrivateKeySigner,
    dir: &Path,
    job_path: &str,
    paid: &[Paid],
    warm: usize,
    concurrency: usize,
    checker: &Checker,
    procs: &Processes,
    ticks_per_sec: f64,
) -> Result<(), AnyError> {
    let wrap: Vec<String> =
        std::env::var("BENCH_GATEWAY_WRAP").unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let exe = std::env::current_exe()?;
    let (mut child, base) = spawn_gateway_child(&exe, &wrap, devnet, submitter, &dir.join("gateway-profile"))?;
    let pid = child.id().to_string();
    let url = format!("{base}{job_path}");
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build()?;
    let call = |p: &Paid| post_gateway(&http, &url, p.header.clone(), p.inputs.clone());
    let (warm_part, rest) = paid.split_at(warm);
    run_all(warm_part, concurrency, call).await?;
    let callgrind = wrap.iter().any(|w| w.contains("callgrind"));
    if callgrind {
        Command::new("callgrind_control").args(["-z", &pid]).status()?;
    }
    let before = process_user_system(&pid);
    let others = procs.read();
    let (wall, latencies, answers) = run_all(rest, concurrency, call).await?;
    let after = process_user_system(&pid);
    let others_after = procs.read();
    let (user, system) = (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1));
    if callgrind {
        Command::new("callgrind_control").args(["-d", &pid]).status()?;
    }
    let mut t = Timing::default();
    t.add(wall, latencies, others, others_after);
    let [anvil, nodes, client, _] = t.cpu_per_call(ticks_per_sec);
    let machine =
        (others_after.machine.saturating_sub(others.machine)) as f64 / ticks_per_sec * 1e3 / rest.len() as f64;
    println!(
        "profile: {} paid calls at {concurrency} in flight through a gateway process{}: {:.0} calls/s, p50 {:.2} ms, \
         p99 {:.2} ms; gateway process CPU {:.3} ms per call (user {:.3}, system {:.3})",
        rest.len(),
        if wrap.is_empty() { String::new() } else { format!(" (run through `{}`)", wrap.join(" ")) },
        t.rate(),
        t.p(0.5),
        t.p(0.99),
        (user + system) as f64 / ticks_per_sec * 1e3 / rest.len() as f64,
        user as f64 / ticks_per_sec * 1e3 / rest.len() as f64,
        system as f64 / ticks_per_sec * 1e3 / rest.len() as f64,
    );
    let pairs: Vec<_> = rest.iter().zip(&answers).collect();
    check_all(&pairs, |(p, a)| checker.gateway(p, &a[0]))?;
    println!(
        "profile: CPU ms per call: anvil {anvil:.3}, 3 nodes {nodes:.3}, client {client:.3}, whole machine {machine:.3}"
    );
    println!("profile: {} answers checked (outputs, certificates)", pairs.len());
    drop(child.stdin.take());
    child.wait()?;
    Ok(())
}

/// Starts `exe` (this binary, or another build of it) as a gateway child process ([`gateway_child`]), through
/// `wrap` if not empty, with its request log in `dir`; returns it and its URL.
fn spawn_gateway_child(
    exe: &Path,
    wrap: &[String],
    devnet: &Devnet,
    submitter: &PrivateKeySigner,
    dir: &Path,
) -> Result<(Child, String), AnyError> {
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    fs::create_dir_all(dir)?;
    let log = dir.join("gateway.log");
    cmd.env(CHILD_ENV, "1")
        .env("BENCH_GW_RPC", devnet.rpc_url())
        .env("BENCH_GW_BOOK", devnet.data_dir().join("addresses.json"))
        .env("BENCH_GW_KEY", B256::from(submitter.to_bytes()).to_string())
        .env("BENCH_GW_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log)?);
    let mut child = cmd.spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    if line.trim().is_empty() {
        let _ = child.kill();
        return Err(format!("the gateway child did not start: {}", fs::read_to_string(&log).unwrap_or_default()).into());
    }
    Ok((child, line.trim().to_owned()))
}

/// `BENCH_AB=<another build of this benchmark>`: the gateway of this build (A) against the other build's (B), both in
/// their own processes, and the operators called directly (all 3 at once, slowest of 3), interleaved: `sessions`
/// fresh pairs of gateways, each serving `rounds` rounds of one chunk of `per_chunk` calls to each of the three (the
/// order rotating every round), at 1 in flight. Machine load that drifts hits all three alike.
#[allow(clippy::too_many_arguments)]
async fn ab(
    other: &Path,
    devnet: &Devnet,
    submitter: &PrivateKeySigner,
    dir: &Path,
    job_path: &str,
    job_urls: &[String],
    paid: &mut dyn Iterator<Item = Paid>,
    (sessions, rounds, per_chunk, warm): (usize, usize, usize, usize),
    checker: &Checker,
    ticks_per_sec: f64,
) -> Result<(), AnyError> {
    let this = std::env::current_exe()?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(2 * OPERATORS).build()?;
    let mut t = [Timing::default(), Timing::default(), Timing::default()];
    let mut cpu = [(0u64, 0u64), (0, 0)];
    let mut checked = 0;
    let mut take = |n: usize| -> Result<Vec<Paid>, AnyError> {
        let v: Vec<Paid> = paid.take(n).collect();
        if v.len() < n { Err("not enough payments signed".into()) } else { Ok(v) }
    };
    for session in 0..sessions {
        let mut gateways = Vec::new();
        for (name, exe) in [("a", this.as_path()), ("b", other)] {
            let (child, base) =
                spawn_gateway_child(exe, &[], devnet, submitter, &dir.join(format!("ab-{session}-{name}")))?;
            gateways.push((child, format!("{base}{job_path}")));
        }
        for (_, url) in &gateways {
            for p in take(warm)? {
                post_gateway(&http, url, p.header.clone(), p.inputs.clone()).await?;
            }
        }
        for round in 0..rounds {
            for k in 0..3 {
                let which = (round + k) % 3;
                let part = take(per_chunk)?;
                let start = Instant::now();
                let mut latencies = Vec::with_capacity(part.len());
                let before = gateways.get(which.wrapping_sub(1)).map(|(c, _)| process_user_system(&c.id().to_string()));
                for p in &part {
                    let t0 = Instant::now();
                    if which == 0 {
                        let answers = join_all(job_urls.iter().map(|u| post_job(&http, u, p.job_body.clone()))).await;
                        let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
                        latencies.push(t0.elapsed());
                        (0..OPERATORS).try_for_each(|slot| checker.direct(slot, p, &answers[slot]))?;
                    } else {
                        let url = &gateways[which - 1].1;
                        let answer = post_gateway(&http, url, p.header.clone(), p.inputs.clone()).await?;
                        latencies.push(t0.elapsed());
                        checker.gateway(p, &answer[0])?;
                    }
                    checked += 1;
                }
                t[which].wall += start.elapsed();
                t[which].latencies.extend(latencies);
                if let (Some(before), Some((child, _))) = (before, gateways.get(which.wrapping_sub(1))) {
                    let after = process_user_system(&child.id().to_string());
                    cpu[which - 1].0 += after.0.saturating_sub(before.0);
                    cpu[which - 1].1 += after.1.saturating_sub(before.1);
                }
            }
        }
        for (mut child, _) in gateways {
            drop(child.stdin.take());
            child.wait()?;
        }
    }
    println!(
        "A/B: this build's gateway (A) against {} (B), each in its own process, and the 3 operators called directly, \
         interleaved chunk by chunk ({sessions} sessions × {rounds} rounds × {per_chunk} calls each, 1 in flight); \
         {checked} answers checked",
        other.display()
    );
    let names = ["direct: all 3 at once, slowest of 3", "gateway A (this build)", "gateway B (the other build)"];
    for (i, name) in names.iter().enumerate() {
        let ms = |ticks: u64| ticks as f64 / ticks_per_sec * 1e3 / t[i].latencies.len().max(1) as f64;
        let cpu_text = if i == 0 {
            String::new()
        } else {
            let (user, system) = cpu[i - 1];
            format!(
                "; gateway process CPU {:.3} ms per call (user {:.3}, system {:.3})",
                ms(user + system),
                ms(user),
                ms(system)
            )
        };
        println!(
            "  {name:<40} p50 {:6.2} ms  p90 {:6.2} ms  p99 {:6.2} ms{cpu_text}",
            t[i].p(0.5),
            t[i].p(0.9),
            t[i].p(0.99)
        );
    }
    for (i, name) in [(1, "A"), (2, "B")] {
        println!(
            "  overhead of {name} over the slowest of 3: p50 {:+.2} ms, p90 {:+.2} ms",
            t[i].p(0.5) - t[0].p(0.5),
            t[i].p(0.9) - t[0].p(0.9)
        );
    }
    Ok(())
}

/// The gateway child of [`profile`]: a gateway that never settles while profiled (as the quiet phases), in its own
/// process with the runtime `vouch gateway run` builds; prints its URL, serves until its standard input closes.
fn gateway_child() -> Result<(), AnyError> {
    use std::io::{Read as _, Write as _};
    let var = |k: &str| std::env::var(k).map_err(|_| AnyError::from(format!("{k} is not set")));
    let book = vouch_contracts::AddressBook::load(var("BENCH_GW_BOOK")?)?;
    let key: B256 = var("BENCH_GW_KEY")?.parse()?;
    let submitter = PrivateKeySigner::from_bytes(&key)?;
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse()?,
        rpc_url: var("BENCH_GW_RPC")?,
        data_dir: PathBuf::from(var("BENCH_GW_DIR")?),
        max_batch: 256,
        max_batch_delay_ms: 300_000,
        ..GatewayConfig::default()
    };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        let gateway = Gateway::new(config, book, submitter).start().await?;
        let mut out = std::io::stdout();
        writeln!(out, "{}", gateway.url())?;
        out.flush()?;
        tokio::task::spawn_blocking(|| {
            let mut rest = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut rest);
        })
        .await?;
        gateway.kill();
        Ok(())
    })
}
