//! BLS benchmark: sign, verify and fast-aggregate-verify for 3, 10 and 100 signers.
//!
//! Each aggregate row prints a ratio against a baseline measured in the same run: verifying the
//! same n signatures one by one, which is what a verifier without aggregation would do.
//! Run with `cargo run --release -p vouch-bench --bin bls`; results go in `bench/RESULTS.md`.

use std::time::{Duration, Instant};
use vouch_crypto::{PublicKey, SecretKey, Signature, aggregate_signatures, fast_aggregate_verify};
use vouch_primitives::B256;

/// Median wall time of `f` over `runs` runs (after one warm-up run).
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), vouch_crypto::CryptoError> {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(31);
    let digest = B256::repeat_byte(0x42);
    let keys: Vec<SecretKey> = (0..100u32)
        .map(|i| SecretKey::from_ikm(&[i.to_be_bytes().as_slice(), &[7u8; 28]].concat()))
        .collect::<Result<_, _>>()?;
    let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let sigs: Vec<Signature> = keys.iter().map(|k| k.sign(&digest)).collect();

    println!("vouch-crypto BLS benchmark (blst min-pk, release build, median of {runs} runs, one core)");
    let sign = median(runs, || {
        std::hint::black_box(keys[0].sign(std::hint::black_box(&digest)));
    });
    let verify = median(runs, || {
        sigs[0].verify(&pks[0], &digest).ok();
    });
    println!("{:<34} {:>10.3} ms", "sign (hash-to-G2 + scalar mult)", ms(sign));
    println!("{:<34} {:>10.3} ms", "verify one signature", ms(verify));
    println!();
    println!(
        "{:<8} {:>14} {:>18} {:>26} {:>10}",
        "signers", "aggregate ms", "fast_agg_verify ms", "baseline: n × verify ms", "speed-up"
    );
    for n in [3usize, 10, 100] {
        let agg_time = median(runs, || {
            std::hint::black_box(aggregate_signatures(&sigs[..n]).ok());
        });
        let agg = aggregate_signatures(&sigs[..n])?;
        fast_aggregate_verify(&pks[..n], &digest, &agg)?;
        let fav = median(runs, || {
            fast_aggregate_verify(&pks[..n], &digest, &agg).ok();
        });
        let baseline = median(runs.min(11), || {
            for i in 0..n {
                sigs[i].verify(&pks[i], &digest).ok();
            }
        });
        println!(
            "{:<8} {:>14.3} {:>18.3} {:>26.3} {:>9.1}x",
            n,
            ms(agg_time),
            ms(fav),
            ms(baseline),
            baseline.as_secs_f64() / fav.as_secs_f64()
        );
    }
    Ok(())
}
