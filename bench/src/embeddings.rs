//! Benchmark of the embeddings blueprint: all-MiniLM-L6-v2 in candle (this crate's encoder, batch 1, the batched
//! path, and concurrent one-sentence job calls merged by the batcher) against sentence-transformers on PyTorch, run
//! as a subprocess in the same run on the same sentences with the same number of threads. Also prints how far the
//! two runtimes' embeddings are apart, and what one verifier call costs.
//!
//! ```sh
//! bench/reference/setup.sh                                   # once: the reference venv (~2.5 GB download)
//! cargo run --release -p vouch-bench --bin embeddings
//! ```
//!
//! Environment: `BENCH_THREADS` (default 2) threads for both stacks (candle reads `RAYON_NUM_THREADS`, which this
//! binary sets for itself by re-executing with it when needed), `BENCH_SENTENCES` (default 512), `BENCH_ROUNDS`
//! (default 3, after a warm-up round; the stacks alternate round by round and the best round of each is compared,
//! medians shown beside), `BENCH_CONCURRENCY` (default 64 calls in flight).

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::{Duration, Instant},
};

use serde_json::Value;
use vouch_embeddings::{
    BatcherConfig, EMBED, Embedder, EmbeddingTolerance, EmbeddingsResponse, Implementation, LoadOptions, MAX_INPUTS,
    MiniLm, ModelFiles, compare, compute_threads, kernel_isa, router_with,
};
use vouch_sdk::{Address, Agreement, CallId, JobCall, ServiceId, Verifier};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Sentences the corpus is assembled from: everyday English of varied length and topic.
const BASE: &[&str] = &[
    "The meeting was moved to Thursday afternoon.",
    "Can you send me the report by tomorrow morning?",
    "The train to Lyon leaves from platform nine at 7:42.",
    "Our quarterly revenue grew by twelve percent, driven mostly by new subscriptions in Europe and Asia.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She finally finished the marathon after months of training through the winter.",
    "Please restart the router if the connection drops again.",
    "The museum's new wing displays sculptures from the late Bronze Age, many of them recovered from shipwrecks \
     off the coast of Turkey.",
    "Rust's ownership model prevents data races at compile time.",
    "A gentle rain fell over the hills as the shepherds brought the flock home.",
    "The committee rejected the proposal because the budget did not account for maintenance costs over the next \
     ten years.",
    "How many tablespoons are in a quarter cup?",
    "Symptoms include fever, a dry cough and fatigue that can last for several weeks.",
    "The startup raised a seed round to build tools for verifying machine-learning inference.",
    "He apologised for the delay and promised to ship the replacement part on Monday.",
    "In the final minutes of the match, the goalkeeper saved a penalty and the crowd erupted.",
    "The library will be closed for renovations until the end of March.",
    "Large language models predict the next token given everything that came before it.",
    "The recipe calls for two eggs, a cup of flour, a pinch of salt and half a cup of milk.",
    "Climate scientists warn that sea levels could rise by more than a metre by the end of the century if \
     emissions are not reduced.",
    "Is there a pharmacy open near the station on Sundays?",
    "The contract may be terminated by either party with thirty days' written notice.",
    "Bees communicate the direction of food sources through a waggle dance.",
    "My flight was cancelled, so I spent the night at the airport hotel.",
    "The new firmware fixes a bug that caused the battery to drain overnight.",
    "Historians still debate the causes of the collapse of the Western Roman Empire.",
    "Add the onions and cook until they are soft and golden, about ten minutes.",
    "The court ruled that the company had violated consumer protection law.",
    "Quantum computers use qubits, which can represent zero and one at the same time.",
    "Thanks for your help yesterday, it made a real difference.",
    "The hiking trail climbs steeply through pine forest before reaching an alpine lake.",
    "Interest rates were left unchanged, as analysts had expected.",
];

/// A fixed corpus of `count` texts of mixed lengths: mostly one or two sentences, sometimes a paragraph, rarely a
/// text longer than the model's 256 tokens. Deterministic (a fixed linear congruential generator).
fn corpus(count: usize) -> Vec<String> {
    let mut state: u64 = 0x5eed_cafe_f00d;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..count)
        .map(|_| {
            let sentences = match next() % 100 {
                0..=44 => 1,
                45..=74 => 2,
                75..=89 => 3 + next() % 3,
                90..=97 => 6 + next() % 5,
                _ => 14 + next() % 6,
            };
            (0..sentences).map(|_| BASE[next() % BASE.len()]).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match env::var(name) {
        Ok(value) => Ok(value.parse().map_err(|error| format!("{name}={value}: {error}"))?),
        Err(_) => Ok(default),
    }
}

/// The 1-minute load average (`/proc/loadavg`), to tell how busy the machine was.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The reference's result for one batch size.
struct Reference {
    batch_size: usize,
    per_second: f64,
}

fn reference_python(root: &Path) -> PathBuf {
    root.join("bench/reference/.venv/bin/python")
}

/// Runs `embed_reference.py bench` on the corpus; its results and its embeddings (of the first batch size). With
/// `announce`, prints the reference's library versions.
fn run_reference(
    root: &Path,
    corpus: &[String],
    threads: usize,
    rounds: usize,
    announce: bool,
) -> Result<(Vec<Reference>, Vec<Vec<f32>>)> {
    let dir = tempfile::tempdir()?;
    let sentences = dir.path().join("sentences.jsonl");
    let lines: Vec<String> = corpus.iter().map(serde_json::to_string).collect::<std::result::Result<_, _>>()?;
    fs::write(&sentences, lines.join("\n") + "\n")?;
    let embeddings_path = dir.path().join("embeddings.f32");
    let output = Command::new(reference_python(root))
        .arg(root.join("bench/reference/embed_reference.py"))
        .args(["--threads", &threads.to_string(), "bench", "--batch-size", "32", "--batch-size", "1"])
        .args(["--rounds", &rounds.to_string()])
        .arg("--sentences")
        .arg(&sentences)
        .arg("--embeddings-out")
        .arg(&embeddings_path)
        .output()?;
    if !output.status.success() {
        return Err(format!("the reference failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let mut results = Vec::new();
    for line in String::from_utf8(output.stdout)?.lines().filter(|line| line.starts_with('{')) {
        let value: Value = serde_json::from_str(line)?;
        let field = |name: &str| value.get(name).ok_or_else(|| format!("no `{name}` in {line}"));
        results.push(Reference {
            batch_size: field("batch_size")?.as_u64().unwrap_or(0) as usize,
            per_second: field("per_second")?.as_f64().unwrap_or(0.0),
        });
        if let Some(versions) = value.get("versions").filter(|_| announce && results.len() == 1) {
            println!("reference stack: {versions}, {} thread(s)", field("threads")?);
        }
    }
    let bytes = fs::read(&embeddings_path)?;
    let floats: Vec<f32> =
        bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect();
    let embeddings = floats.chunks_exact(vouch_embeddings::DIMENSIONS).map(<[f32]>::to_vec).collect();
    Ok((results, embeddings))
}

fn call(call_id: u64, body: String) -> JobCall {
    JobCall::new(ServiceId(1), CallId::from(call_id), EMBED, Address::ZERO, body)
}

/// One job call per text through the router, `in_flight` at a time; the elapsed time.
async fn concurrent_calls(embedder: &Embedder, corpus: &[String], in_flight: usize) -> Result<Duration> {
    let router = router_with(embedder.clone());
    let start = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for (index, text) in corpus.iter().enumerate() {
        if pending.len() == in_flight {
            let task: tokio::task::JoinHandle<_> = pending.pop_front().ok_or("no task")?;
            task.await??;
        }
        let body = serde_json::json!({ "model": "all-MiniLM-L6-v2", "input": text }).to_string();
        let router = router.clone();
        pending.push_back(tokio::spawn(async move { router.call(call(index as u64, body)).await }));
    }
    for task in pending {
        task.await??;
    }
    Ok(start.elapsed())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("embeddings benchmark: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let threads = env_usize("BENCH_THREADS", 2)?;
    // candle sizes its matrix-product parallelism from RAYON_NUM_THREADS (read on every product) and otherwise
    // from the physical cores; set it for this process by re-executing, as setting it in-process is unsound.
    if env::var("RAYON_NUM_THREADS").ok().as_deref() != Some(threads.to_string().as_str()) {
        let status = Command::new(env::current_exe()?)
            .args(env::args_os().skip(1))
            .env("RAYON_NUM_THREADS", threads.to_string())
            .env("CANDLE_NUM_THREADS", threads.to_string())
            .status()?;
        return if status.success() { Ok(()) } else { Err(format!("the benchmark exited with {status}").into()) };
    }
    let count = env_usize("BENCH_SENTENCES", 512)?;
    let rounds = env_usize("BENCH_ROUNDS", 3)?;
    let in_flight = env_usize("BENCH_CONCURRENCY", 64)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    if !reference_python(&root).is_file() {
        return Err(format!(
            "the reference environment is missing ({}). Create it once with `bench/reference/setup.sh` (~2.5 GB of \
             PyPI wheels: torch, its CUDA runtime libraries, sentence-transformers; ~70 s with a warm pip cache)",
            reference_python(&root).display()
        )
        .into());
    }

    let corpus = corpus(count);
    let files = ModelFiles::locate()?;
    let model = MiniLm::load(&files, LoadOptions::default())?;
    let reference_model =
        MiniLm::load(&files, LoadOptions { implementation: Implementation::CandleBert, ..LoadOptions::default() })?;
    let tokens: Vec<usize> = corpus
        .chunks(MAX_INPUTS)
        .map(|chunk| model.tokenize(chunk))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .map(|ids| ids.len())
        .collect();
    let mut sorted = tokens.clone();
    sorted.sort_unstable();
    println!("vouch embeddings benchmark (all-MiniLM-L6-v2, F32, CPU, release build)");
    println!(
        "corpus: {count} texts, {} tokens in all; tokens per text: min {}, median {}, p90 {}, max {} (truncated at 256)",
        tokens.iter().sum::<usize>(),
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 9 / 10],
        sorted[sorted.len() - 1]
    );
    println!(
        "threads: {threads} for both stacks (candle matrix products: {}, fused kernels: {}); {rounds} rounds, the \
         stacks interleaved round by round; each row: best round (median round)\n",
        compute_threads(),
        kernel_isa()
    );

    println!("machine load (1-minute load average) at start: {}", load_average());
    // Every round measures every path once, the reference last, so that background load (other processes on the
    // machine) hits both stacks alike; the best round of each path is the figure compared.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    let embedder = Embedder::new(MiniLm::load(&files, LoadOptions::default())?, BatcherConfig::default());
    runtime.block_on(embedder.ready())?;
    let router = router_with(embedder.clone());
    let paths = [
        "sentence-transformers (PyTorch), batch 1",
        "sentence-transformers (PyTorch), batch 32, length-sorted",
        "candle-transformers BertModel, batch 1",
        "candle-transformers BertModel, length-bucketed batches",
        "vouch-embeddings fused encoder, batch 1",
        "vouch-embeddings fused encoder, length-bucketed batches",
        "job: 2 calls x 256 texts (JSON in and out)",
        "job: one-text calls, concurrent (batcher)",
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut embeddings = Vec::new();
    let mut reference_embeddings = Vec::new();
    let mut batcher = (0, 0);
    let per_second = |seconds: f64| count as f64 / seconds;
    let once = |work: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let start = Instant::now();
        work()?;
        Ok(per_second(start.elapsed().as_secs_f64()))
    };
    for round in 0..=rounds {
        let warm_up = round == 0;
        let mut row = Vec::new();
        row.push(once(&mut || {
            for text in &corpus {
                reference_model.embed(std::slice::from_ref(text))?;
            }
            Ok(())
        })?);
        row.push(once(&mut || {
            for chunk in corpus.chunks(MAX_INPUTS) {
                reference_model.embed(chunk)?;
            }
            Ok(())
        })?);
        row.push(once(&mut || {
            for text in &corpus {
                model.embed(std::slice::from_ref(text))?;
            }
            Ok(())
        })?);
        row.push(once(&mut || {
            embeddings.clear();
            for chunk in corpus.chunks(MAX_INPUTS) {
                embeddings.extend(model.embed(chunk)?);
            }
            Ok(())
        })?);
        row.push(once(&mut || {
            runtime.block_on(async {
                for (index, chunk) in corpus.chunks(MAX_INPUTS).enumerate() {
                    let body = serde_json::json!({ "model": "all-MiniLM-L6-v2", "input": chunk }).to_string();
                    router.call(call(index as u64, body)).await?;
                }
                Ok::<_, Box<dyn std::error::Error>>(())
            })
        })?);
        let before = embedder.stats();
        row.push(per_second(runtime.block_on(concurrent_calls(&embedder, &corpus, in_flight))?.as_secs_f64()));
        let after = embedder.stats();
        batcher = (after.calls - before.calls, after.rounds - before.rounds);
        if warm_up {
            continue;
        }
        // The reference: one timed pass per batch size after its own warm-up, in a fresh process.
        let (references, reference_out) = run_reference(&root, &corpus, threads, 1, round == 1)?;
        let reference_at = |batch_size: usize| {
            references.iter().find(|reference| reference.batch_size == batch_size).map_or(f64::NAN, |r| r.per_second)
        };
        rates[0].push(reference_at(1));
        rates[1].push(reference_at(32));
        for (index, rate) in row.into_iter().enumerate() {
            rates[index + 2].push(rate);
        }
        if reference_embeddings.is_empty() {
            reference_embeddings = reference_out;
        }
        eprintln!("round {round}/{rounds} done");
    }
    drop(reference_model);

    println!("machine load (1-minute load average) at end: {}\n", load_average());
    let best = |index: usize| rates[index].iter().copied().fold(f64::NAN, f64::max);
    let (st_one, st_batched) = (best(0), best(1));
    println!("{:<64} {:>22} {:>12}", "", "texts/s", "vs reference");
    for (index, name) in paths.iter().enumerate() {
        let reference = if name.contains("batch 1") { st_one } else { st_batched };
        let label = if index == 7 {
            format!("job: {count} one-text calls, {in_flight} in flight (batcher)")
        } else {
            (*name).to_owned()
        };
        println!(
            "{label:<64} {:>10.1} ({:>8.1}) {:>11.2}x",
            best(index),
            median(rates[index].clone()),
            best(index) / reference
        );
    }
    println!(
        "  batcher, last round: {} calls answered in {} rounds ({:.1} calls per round)",
        batcher.0,
        batcher.1,
        batcher.0 as f64 / batcher.1.max(1) as f64
    );
    println!(
        "\ncandle (fused) / sentence-transformers, best rounds: batch 1 {:.2}x, batched {:.2}x; best candle path / \
         best reference path {:.2}x",
        best(4) / st_one,
        best(5) / st_batched,
        best(5).max(best(4)) / st_batched.max(st_one)
    );

    // How far apart the two runtimes are, and what the verifier says.
    let verifier = EmbeddingTolerance::default();
    let (mut worst_diff, mut worst_cosine) = (0.0f64, 1.0f64);
    for (ours, theirs) in embeddings.iter().zip(&reference_embeddings) {
        let ours: Vec<f64> = ours.iter().map(|&v| f64::from(v)).collect();
        let theirs: Vec<f64> = theirs.iter().map(|&v| f64::from(v)).collect();
        let comparison = compare(&ours, &theirs);
        worst_diff = worst_diff.max(comparison.max_abs_diff);
        worst_cosine = worst_cosine.min(comparison.cosine);
    }
    let respond = |vectors: Vec<Vec<f32>>, counts: &[usize]| {
        serde_json::to_vec(&EmbeddingsResponse::new("all-MiniLM-L6-v2".to_owned(), vectors, counts))
    };
    let agreement = verifier.agrees(
        &respond(embeddings[..MAX_INPUTS].to_vec(), &tokens[..MAX_INPUTS])?,
        &respond(reference_embeddings[..MAX_INPUTS].to_vec(), &tokens[..MAX_INPUTS])?,
    );
    println!(
        "\ncandle vs PyTorch on all {count} texts: max |Δ| {worst_diff:.2e}, min cosine 1 - {:.1e}; verifier (cosine ≥ {}, max |Δ| ≤ {:e}): {}",
        1.0 - worst_cosine,
        verifier.min_cosine,
        verifier.max_abs_diff,
        match agreement {
            Agreement::Agree => "agree".to_owned(),
            Agreement::Disagree { reason } => format!("DISAGREE: {reason}"),
        }
    );

    // What one verifier call costs: both outputs parsed, structure checked, every vector compared.
    for inputs in [1, 32, MAX_INPUTS] {
        let own = respond(embeddings[..inputs].to_vec(), &tokens[..inputs])?;
        let other = respond(reference_embeddings[..inputs].to_vec(), &tokens[..inputs])?;
        let repeats = (2048 / inputs).max(8);
        let start = Instant::now();
        for _ in 0..repeats {
            std::hint::black_box(verifier.agrees(std::hint::black_box(&own), std::hint::black_box(&other)));
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / repeats as f64;
        println!(
            "verifier cost, {inputs:>3} input(s) ({} KiB per output): {micros:>9.1} µs per call ({:.2} µs per embedding)",
            own.len() / 1024,
            micros / inputs as f64
        );
    }
    Ok(())
}
