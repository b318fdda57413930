//! The word-count blueprint on a real local network: anvil, the Vouch contracts, three staked operators, each
//! running the blueprint in an in-process node. The call is opened on chain and settled by their certificate.

use serde_json::json;
use vouch_testing::{JobConfig, TestNetwork};
use word_count::{COUNT, Config, Counts, JOBS, TOP, Top};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_operators_count_words_and_certify_the_result() -> Result<(), Box<dyn std::error::Error>> {
    // On chain, the jobs cost what the blueprint suggests (the harness's default is 0.01 vUSD each).
    let jobs = JOBS.iter().map(|job| JobConfig::new(job.name, job.suggested_price, job.suggested_deadline_secs as u32));
    let net =
        TestNetwork::builder(word_count::router(Config::default())).jobs(jobs.collect()).operators(3).start().await?;

    let outcome = net.call(COUNT, &json!({ "text": "to be or not to be\nthat is the question" })).await?;
    assert_eq!(outcome.output_json::<Counts>()?, Counts { words: 10, lines: 2, bytes: 39 });
    assert_eq!(outcome.certificate.signer_bitmap.count_ones(), 3);

    let outcome = net.call(TOP, &json!({ "text": "to be or not to be", "k": 1 })).await?;
    assert_eq!(outcome.output_json::<Top>()?.top[0].word, "be");
    assert_eq!(outcome.certificate.signer_bitmap.count_ones(), 3);
    Ok(())
}
