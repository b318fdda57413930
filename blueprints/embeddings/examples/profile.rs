//! Profiling driver (temporary).
use std::time::Instant;
use vouch_embeddings::{Implementation, LoadOptions, MiniLm, ModelFiles};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("batched");
    let imp = if args.get(2).map(String::as_str) == Some("bert") {
        Implementation::CandleBert
    } else {
        Implementation::Fused
    };
    let max_batch_inputs: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let max_batch_tokens: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let model = MiniLm::load(
        &ModelFiles::locate()?,
        LoadOptions { implementation: imp, max_batch_inputs, max_batch_tokens, ..LoadOptions::default() },
    )?;
    let base = [
        "The meeting was moved to Thursday afternoon.",
        "Our quarterly revenue grew by twelve percent, driven mostly by new subscriptions in Europe and Asia.",
        "The museum's new wing displays sculptures from the late Bronze Age, many of them recovered from shipwrecks off the coast of Turkey.",
        "Bees communicate.",
    ];
    let mut corpus = Vec::new();
    for i in 0..256usize {
        let k = 1 + (i * 7919) % 4;
        corpus.push((0..k).map(|j| base[(i + j) % base.len()]).collect::<Vec<_>>().join(" "));
    }
    let tokens: usize = model.tokenize(&corpus)?.iter().map(|t| t.len()).sum();
    for round in 0..3 {
        let start = Instant::now();
        if mode == "one" {
            for t in &corpus {
                model.embed(std::slice::from_ref(t))?;
            }
        } else {
            model.embed(&corpus)?;
        }
        let s = start.elapsed().as_secs_f64();
        println!("round {round}: {:.1} texts/s, {:.0} tokens/s", corpus.len() as f64 / s, tokens as f64 / s);
    }
    Ok(())
}
