//! Benchmark of the textgen blueprint: SmolLM2-135M-Instruct in candle, and the cost of verifying it.
//!
//! `cargo run --release -p vouch-bench --bin textgen [-- --calibrate]`
//!
//! Measured in one run, each against a baseline measured in the same run:
//! - decode tokens/s of the pinned profile (Q4_1 re-quantized to Q8_0 at load) against the weights as shipped
//!   (Q4_1, candle's scalar kernel) and F32;
//! - prefill tokens/s (one forward pass over a long prompt) against decode;
//! - the cost of one verification (teacher-forced re-prefill, `check_completion`) against one generation of the
//!   same output (target ≤ 0.2), in wall time and in CPU time of all threads, for requests with the default system
//!   message (both sides resume after its cached prefix) and with one of their own;
//! - verified throughput per unit of total compute with 1 executor + 2 checkers against 1 unverified operator,
//!   `1 / (1 + 2·ratio)` (target ≥ 0.7).
//!
//! `--calibrate` adds the measurements behind the tolerance (δ, k): the margins of honest executors on other
//! kernel tiers, and the per-token escape rates of cheaters, over more prompts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vouch_textgen::{
    LoadOptions, ModelFiles, TOLERANCE, TextGen, Tolerance, WeightFormat, check_completion, check_completion_with,
    parse_request,
};

type Error = Box<dyn std::error::Error>;

const PROMPTS: &[&str] = &[
    "Tell me a short story about a robot.",
    "Explain how a rainbow forms.",
    "Write a poem about autumn leaves.",
    "Describe the water cycle step by step.",
    "Give me three tips for learning to code.",
    "Why is the sky blue?",
];

const MORE_PROMPTS: &[&str] = &[
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "List three prime numbers.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
    "How do I make a cup of tea?",
    "Summarize the plot of Romeo and Juliet.",
    "What are the benefits of exercise?",
    "Name five animals that live in the ocean.",
    "What is machine learning?",
    "Write a limerick about a cat.",
    "How does a bicycle work?",
    "What should I pack for a beach trip?",
    "Explain gravity to a child.",
    "What is the difference between weather and climate?",
    "Suggest a name for a coffee shop.",
    "How many legs does a spider have?",
    "Write a short email asking for a day off.",
    "What are the planets of the solar system?",
    "Give me a recipe for pancakes.",
    "Explain what a neural network is in simple terms.",
    "What is the tallest mountain in the world?",
    "Describe your ideal weekend.",
    "Why do leaves change color in the fall?",
    "Write two sentences about friendship.",
    "What is the boiling point of water?",
    "How do airplanes stay in the air?",
    "Tell me a joke about computers.",
    "What are good habits for sleeping well?",
    "Explain the rules of chess briefly.",
    "What is the meaning of the word 'ephemeral'?",
    "Write a motivational quote.",
    "How can I save money on groceries?",
];

fn request(prompt: &str, max_tokens: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    }))
    .unwrap_or_default()
}

/// A request with its own system message: its prompt does not start with the default system turn, so neither
/// the executor nor the checker can resume after the shared prefix.
fn request_with_system(prompt: &str, max_tokens: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": "smollm2-135m-instruct",
        "messages": [
            {"role": "system", "content": "You are a friendly assistant who answers in plain words."},
            {"role": "user", "content": prompt},
        ],
        "max_tokens": max_tokens,
    }))
    .unwrap_or_default()
}

/// CPU time used so far by every thread of this process (candle's quantized kernels run on the calling thread with
/// `CANDLE_NUM_THREADS=1`, but its f32 products and element-wise operations use rayon's pool, one thread per
/// core): the compute a call costs, which wall time on a shared machine does not show. `None` off Linux.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let value = f();
    let cpu = match (cpu, cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before).as_secs_f64(),
        _ => f64::NAN,
    };
    (value, wall.elapsed().as_secs_f64(), cpu)
}

/// Generation and verification costs over `requests`: (wall generate, wall check, cpu generate, cpu check).
fn verification_costs(model: &TextGen, requests: &[(String, Vec<u8>)], verbose: bool) -> Result<[f64; 4], Error> {
    let mut totals = [0.0; 4];
    for (label, body) in requests {
        let (output, generate, generate_cpu) = timed(|| model.complete(body));
        let output = output?;
        let (verdict, check, check_cpu) = timed(|| check_completion(model, body, &output));
        for (total, value) in totals.iter_mut().zip([generate, check, generate_cpu, check_cpu]) {
            *total += value;
        }
        if !verbose {
            verdict?;
            continue;
        }
        let verdict = match verdict {
            Ok(report) => format!(
                "prompt {:3} + {:3} tokens, accepted, worst margin {:.3} rank {}",
                report.prompt_tokens, report.completion_tokens, report.worst_margin, report.worst_rank
            ),
            Err(error) => format!("REJECTED: {error}"),
        };
        println!(
            "{label:53} generate {generate:6.3} s, check {check:6.3} s, ratio {:.3} (cpu {:.3}); {verdict}",
            check / generate,
            check_cpu / generate_cpu
        );
    }
    Ok(totals)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn load(files: &ModelFiles, weights: WeightFormat) -> Result<(TextGen, Duration), Error> {
    let started = Instant::now();
    let model = TextGen::load_with(files, &LoadOptions { weights, ..Default::default() })?;
    Ok((model, started.elapsed()))
}

/// Decode tokens/s (median of `rounds`) generating `tokens` tokens after a fixed prompt.
fn decode_speed(model: &TextGen, tokens: usize, rounds: usize) -> Result<f64, Error> {
    let body = request(PROMPTS[0], tokens);
    let prompt = model.prompt_tokens(&parse_request(&body)?)?;
    let mut speeds = Vec::new();
    for _ in 0..rounds {
        let generation = model.generate(&prompt, tokens)?;
        let decoded = generation.tokens.len().saturating_sub(1).max(1);
        speeds.push(decoded as f64 / generation.decode.as_secs_f64());
    }
    Ok(median(speeds))
}

fn main() -> Result<(), Error> {
    let calibrate = std::env::args().any(|a| a == "--calibrate");
    let calibrate_only = std::env::args().any(|a| a == "--calibrate-only");
    let files = ModelFiles::locate()?;
    println!("textgen benchmark: SmolLM2-135M-Instruct, candle 0.11.1, CPU");
    println!("model files: {}", files.gguf.display());
    println!(
        "CANDLE_NUM_THREADS={}",
        std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "(unset: one per core)".into())
    );

    let (pinned, pinned_load) = load(&files, WeightFormat::Q8_0)?;
    let (shipped, shipped_load) = load(&files, WeightFormat::AsShipped)?;
    let (dense, dense_load) = load(&files, WeightFormat::F32)?;
    println!(
        "\nload (read + sha256 + build): q8_0 {:.2} s (re-quantization included), as shipped {:.2} s, f32 {:.2} s",
        pinned_load.as_secs_f64(),
        shipped_load.as_secs_f64(),
        dense_load.as_secs_f64()
    );
    println!("pinned model: {:?}", pinned.config());

    if calibrate_only {
        return calibration(&pinned, Arc::new(shipped), Arc::new(dense), &files);
    }
    // Warm-up (page cache, thread pool, repacked weights).
    pinned.generate(&pinned.encode("Hello")?, 4)?;
    shipped.generate(&shipped.encode("Hello")?, 4)?;
    dense.generate(&dense.encode("Hello")?, 4)?;

    println!("\n== decode (greedy, KV cache, 64 tokens, median of 3) ==");
    let q8 = decode_speed(&pinned, 64, 3)?;
    let q41 = decode_speed(&shipped, 64, 3)?;
    let f32_speed = decode_speed(&dense, 64, 3)?;
    println!("as shipped (Q4_1)      {q41:7.1} tok/s   (baseline)");
    println!("F32 (dequantized)      {f32_speed:7.1} tok/s   {:.2}× baseline", f32_speed / q41);
    println!("Q8_0 (pinned profile)  {q8:7.1} tok/s   {:.2}× baseline", q8 / q41);

    println!("\n== prefill (one forward pass, logits of the last position) ==");
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(40);
    let all = pinned.encode(&long)?;
    for len in [64usize, 128, 256] {
        let tokens = &all[..len.min(all.len())];
        let times: Vec<f64> = (0..3)
            .map(|_| {
                let started = Instant::now();
                pinned.logits(tokens, tokens.len() - 1).map(|_| started.elapsed().as_secs_f64())
            })
            .collect::<Result<_, _>>()?;
        let speed = tokens.len() as f64 / median(times);
        println!("{:4} tokens: {speed:7.1} tok/s   {:.1}× decode (q8_0)", tokens.len(), speed / q8);
    }

    println!("\n== verification (one teacher-forced forward pass) vs generation, pinned profile ==");
    let requests: Vec<(String, Vec<u8>)> = [64usize, 128]
        .iter()
        .flat_map(|&max_tokens| {
            PROMPTS
                .iter()
                .map(move |prompt| (format!("max_tokens {max_tokens:3} {prompt}"), request(prompt, max_tokens)))
        })
        .collect();
    let [generate, check, generate_cpu, check_cpu] = verification_costs(&pinned, &requests, true)?;
    let ratio = check / generate;
    let cpu_ratio = check_cpu / generate_cpu;
    let throughput = |ratio: f64| 1.0 / (1.0 + 2.0 * ratio);
    println!(
        "\none verification costs {ratio:.3}× one generation in wall time, {cpu_ratio:.3}× in CPU time (all threads) \
         (baseline = 1 generation; target ≤ 0.2)"
    );
    println!(
        "verified throughput per unit of compute, 1 executor + 2 checkers: {:.3}× one unverified operator \
         ({:.3}× from CPU time; target ≥ 0.7; 3 full re-executions would be 0.333×)",
        throughput(ratio),
        throughput(cpu_ratio)
    );
    // The same calls with a system message of their own: no shared prefix to resume after.
    let own_system: Vec<(String, Vec<u8>)> = requests
        .iter()
        .zip([64usize, 128].iter().flat_map(|&max_tokens| PROMPTS.iter().map(move |prompt| (prompt, max_tokens))))
        .map(|((label, _), (prompt, max_tokens))| (label.clone(), request_with_system(prompt, max_tokens)))
        .collect();
    let [generate, check, generate_cpu, check_cpu] = verification_costs(&pinned, &own_system, false)?;
    println!(
        "with a system message of their own (no shared prefix, 12 calls): verification {:.3}× generation in wall \
         time, {:.3}× in CPU time; verified throughput {:.3}× ({:.3}× from CPU time)",
        check / generate,
        check_cpu / generate_cpu,
        throughput(check / generate),
        throughput(check_cpu / generate_cpu)
    );

    if calibrate {
        calibration(&pinned, Arc::new(shipped), Arc::new(dense), &files)?;
    }
    Ok(())
}

/// Honest margins on other kernel tiers, and cheaters' per-token escape rates, under a grid of tolerances.
fn calibration(pinned: &TextGen, shipped: Arc<TextGen>, dense: Arc<TextGen>, files: &ModelFiles) -> Result<(), Error> {
    let max_tokens = 96;
    let prompts: Vec<&str> = PROMPTS.iter().chain(MORE_PROMPTS).copied().collect();
    let loose = Tolerance { max_margin: f32::INFINITY, top_k: usize::MAX };
    println!(
        "\n== calibration: honest executors checked by the pinned profile ({} prompts, ≤ {max_tokens} tokens) ==",
        prompts.len()
    );
    // The pinned executor itself (KV-cached decode vs one-pass check), then other kernel tiers.
    let pinned_again = Arc::new(TextGen::load_with(files, &LoadOptions::default())?);
    let unpadded = Arc::new(TextGen::load_with(
        files,
        &LoadOptions { weights: WeightFormat::Q8_0Unpadded, ..Default::default() },
    )?);
    for (name, executor) in [
        ("q8_0 (same profile)", pinned_again),
        ("q8_0, no-VNNI kernel", unpadded),
        ("as shipped (q4_1)", shipped),
        ("f32", dense),
    ] {
        let mut margins = Vec::new();
        let mut ranks = Vec::new();
        let mut rejected = 0;
        for prompt in &prompts {
            let body = request(prompt, max_tokens);
            let output = executor.complete(&body)?;
            let parsed = parse_request(&body)?;
            let claimed: serde_json::Value = serde_json::from_slice(&output)?;
            let tokens: Vec<u32> = serde_json::from_value(claimed["vouch"]["tokens"].clone())?;
            let scores = pinned.score(&pinned.prompt_tokens(&parsed)?, &tokens)?;
            margins.extend(scores.iter().map(|s| s.margin));
            ranks.extend(scores.iter().map(|s| s.rank));
            check_completion_with(pinned, &body, &output, &loose)?;
            rejected += usize::from(check_completion(pinned, &body, &output).is_err());
        }
        margins.sort_by(f32::total_cmp);
        let q = |p: f64| margins[((margins.len() - 1) as f64 * p) as usize];
        let nonzero = margins.iter().filter(|&&m| m > 0.0).count();
        let ranks_at_least = |r: usize| ranks.iter().filter(|&&x| x >= r).count();
        println!(
            "{name:22} {} tokens: {nonzero} not the argmax; margin p99 {:.3}, p99.9 {:.3}, max {:.3}; \
             rank ≥ 2: {}, ≥ 3: {}, ≥ 5: {}, max {}; outputs rejected with TOLERANCE: {rejected}/{}",
            margins.len(),
            q(0.99),
            q(0.999),
            q(1.0),
            ranks_at_least(2),
            ranks_at_least(3),
            ranks_at_least(5),
            ranks.iter().max().copied().unwrap_or(0),
            prompts.len()
        );
    }

    println!("\n== calibration: cheaters (per-token escape rate = share of their tokens the rule accepts) ==");
    let grid = [(1.5f32, 3usize), (2.0, 10), (2.5, 16), (3.0, 16), (4.0, usize::MAX)];
    print!("{:22}", "cheater");
    for (d, k) in grid {
        let k = if k == usize::MAX { "∞".to_string() } else { k.to_string() };
        print!("  δ={d:<3} k={k:<2}");
    }
    println!("  outputs caught (TOLERANCE), first failing position");
    let cheaters = [
        ("skip layer 15", LoadOptions { skip_layers: vec![15], ..Default::default() }),
        ("skip layer 29", LoadOptions { skip_layers: vec![29], ..Default::default() }),
        ("skip layers 26..30", LoadOptions { skip_layers: (26..30).collect(), ..Default::default() }),
        ("skip odd layers", LoadOptions { skip_layers: (1..30).step_by(2).collect(), ..Default::default() }),
        ("perturb 5%", LoadOptions { perturbation: 0.05, ..Default::default() }),
        ("perturb 10%", LoadOptions { perturbation: 0.1, ..Default::default() }),
        ("perturb 20%", LoadOptions { perturbation: 0.2, ..Default::default() }),
    ];
    for (name, options) in cheaters {
        let cheater = TextGen::load_with(files, &options)?;
        let mut scores = Vec::new();
        let mut caught = 0;
        let mut firsts = Vec::new();
        for prompt in &prompts {
            let body = request(prompt, max_tokens);
            let output = cheater.complete(&body)?;
            let claimed: serde_json::Value = serde_json::from_slice(&output)?;
            let tokens: Vec<u32> = serde_json::from_value(claimed["vouch"]["tokens"].clone())?;
            scores.extend(pinned.score(&pinned.prompt_tokens(&parse_request(&body)?)?, &tokens)?);
            match check_completion(pinned, &body, &output) {
                Ok(_) => firsts.push("-".to_string()),
                Err(vouch_textgen::CheckError::Rejected(r)) => {
                    caught += 1;
                    firsts.push(r.position.map_or("?".into(), |p| p.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        print!("{name:22}");
        for (d, k) in grid {
            let escaped = scores.iter().filter(|s| s.margin <= d && s.rank < k).count();
            print!("  {:>11.3}", escaped as f64 / scores.len() as f64);
        }
        println!("  {caught}/{} [{}]", prompts.len(), firsts.join(" "));
    }

    println!("\n== calibration: cached answers (the answer to prompt i claimed for prompt i+1) ==");
    let answers: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| -> Result<Vec<u32>, Error> {
            let body = request(p, max_tokens);
            let parsed = parse_request(&body)?;
            Ok(pinned.generate(&pinned.prompt_tokens(&parsed)?, max_tokens)?.tokens)
        })
        .collect::<Result<_, _>>()?;
    let mut scores = Vec::new();
    let mut firsts = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        let parsed = parse_request(&request(prompt, max_tokens))?;
        let other = &answers[(i + 1) % answers.len()];
        let s = pinned.score(&pinned.prompt_tokens(&parsed)?, other)?;
        firsts.push(
            s.iter()
                .position(|s| s.margin > TOLERANCE.max_margin || s.rank >= TOLERANCE.top_k)
                .map_or("-".into(), |p| p.to_string()),
        );
        scores.extend(s);
    }
    let escaped = scores.iter().filter(|s| s.margin <= TOLERANCE.max_margin && s.rank < TOLERANCE.top_k).count();
    println!(
        "per-token escape {:.3} ({escaped}/{}); first failing position per answer [{}]",
        escaped as f64 / scores.len() as f64,
        scores.len(),
        firsts.join(" ")
    );
    Ok(())
}
