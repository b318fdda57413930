use vouch_sdk::{Address, CallId, JobOutput};

use super::*;

/// A call of `job` with raw `inputs`, as the node would build it.
fn call(job: u8, inputs: impl Into<vouch_sdk::Bytes>) -> JobCall {
    JobCall::new(ServiceId(1), CallId::from(1), job, Address::ZERO, inputs)
}

async fn run(job: u8, inputs: impl Into<vouch_sdk::Bytes>) -> Result<JobOutput, JobError> {
    router(Config::default()).call(call(job, inputs)).await
}

fn text(output: &JobOutput) -> &str {
    std::str::from_utf8(&output.bytes).expect("outputs are UTF-8 JSON")
}

fn bad_input(result: Result<JobOutput, JobError>) -> String {
    match result {
        Err(JobError::BadInput(message)) => message,
        other => panic!("expected BadInput, got {other:?}"),
    }
}

fn top_input(text: &str, k: usize) -> TopInput {
    TopInput { text: text.to_owned(), k }
}

#[tokio::test]
async fn count_counts_words_lines_and_bytes() {
    let Json(counts) = count(CountInput { text: "the quick brown fox\njumps over\tthe lazy dog\n".into() }).await;
    assert_eq!(counts, Counts { words: 9, lines: 2, bytes: 44 });
    let Json(empty) = count(CountInput { text: String::new() }).await;
    assert_eq!(empty, Counts { words: 0, lines: 0, bytes: 0 });
    // Bytes, not characters; only ASCII whitespace separates words.
    let Json(unicode) = count(CountInput { text: "héllo\u{a0}wörld".into() }).await;
    assert_eq!(unicode, Counts { words: 1, lines: 1, bytes: 14 });
}

#[tokio::test]
async fn count_through_the_router_is_compact_json() {
    let out = run(COUNT, r#"{"text":"a b\nc"}"#).await.unwrap();
    assert_eq!(text(&out), r#"{"words":3,"lines":2,"bytes":5}"#);
    // Honest operators agree byte for byte, whatever the formatting of the inputs.
    let again = run(COUNT, "{ \"text\" : \"a b\\nc\" }").await.unwrap();
    assert_eq!(out.result_hash(), again.result_hash());
}

#[tokio::test]
async fn top_orders_by_count_then_word() {
    let Json(top) =
        top(top_input("b a c b a d. B! a -- 'c'", 3), Context(Config::default()), Caller(Address::ZERO)).await.unwrap();
    let words: Vec<(&str, u64)> = top.top.iter().map(|w| (w.word.as_str(), w.count)).collect();
    // a ×3, b ×3 (B! folds into b), c ×2, d ×1; "--" is no word; ties in byte order.
    assert_eq!(words, [("a", 3), ("b", 3), ("c", 2)]);
}

#[tokio::test]
async fn top_through_the_router() {
    let out = run(TOP, r#"{"text":"to be or not to be","k":2}"#).await.unwrap();
    assert_eq!(text(&out), r#"{"top":[{"word":"be","count":2},{"word":"to","count":2}]}"#);
    // `k` defaults to 10; fewer distinct words give a shorter list.
    let out = run(TOP, r#"{"text":"to be or not to be"}"#).await.unwrap();
    assert_eq!(out.bytes.iter().filter(|&&b| b == b'{').count(), 5, "{}", text(&out));
}

#[tokio::test]
async fn top_checks_k_against_the_config() {
    let config = Config { max_k: 2, ..Config::default() };
    let small = router(config);
    let message = bad_input(small.call(call(TOP, r#"{"text":"a b c","k":3}"#)).await);
    assert_eq!(message, "`k` is 3; it must be between 1 and 2");
    assert!(small.call(call(TOP, r#"{"text":"a b c","k":2}"#)).await.is_ok());
    let message = bad_input(run(TOP, r#"{"text":"a","k":0}"#).await);
    assert_eq!(message, "`k` is 0; it must be between 1 and 100");
    // Called directly, the handler's typed error keeps its class: `bad_input`, not `handler_error`.
    let error = top(top_input("a", 101), Context(Config::default()), Caller(Address::ZERO)).await.err();
    assert_eq!(error, Some(Reject(JobError::BadInput("`k` is 101; it must be between 1 and 100".into()))));
}

#[tokio::test]
async fn texts_are_limited_to_16_kib() {
    let longest = format!(r#"{{"text":"{}"}}"#, "a".repeat(MAX_TEXT_BYTES));
    assert!(run(COUNT, longest).await.is_ok());
    let too_long = format!(r#"{{"text":"{}","k":1}}"#, "a".repeat(MAX_TEXT_BYTES + 1));
    assert_eq!(bad_input(run(TOP, too_long).await), "`text` is 16385 bytes; at most 16384 are allowed");
    // Inputs that cannot hold a valid text are refused before they are parsed.
    let huge = format!(r#"{{"text":"{}"}}"#, "a".repeat(1 << 20));
    let expected =
        format!("inputs are {} bytes; a text of at most 16384 bytes never needs more than 98368", huge.len());
    assert_eq!(bad_input(run(COUNT, huge).await), expected);
}

#[tokio::test]
async fn malformed_inputs_are_bad_input() {
    assert!(bad_input(run(COUNT, "{}").await).contains("missing field `text`"));
    assert!(bad_input(run(COUNT, r#"{"text":"a","k":1}"#).await).contains("unknown field `k`"));
    assert!(bad_input(run(TOP, r#"{"text":"a","k":-1}"#).await).contains("`k`"));
    assert!(bad_input(run(COUNT, "not json").await).contains("not the expected JSON"));
    assert_eq!(run(7, "{}").await.err(), Some(JobError::UnknownJob { job_index: 7 }));
}

#[tokio::test]
async fn the_blueprint_describes_its_router() {
    let blueprint = WordCount::default();
    assert_eq!(blueprint.name(), "word-count");
    let router = blueprint.router();
    let indexes: Vec<u8> = blueprint.jobs().iter().map(|job| job.index).collect();
    assert_eq!(router.jobs(), indexes);
    for job in indexes {
        assert_eq!(router.verifier_for(job).name(), "exact");
    }
    assert_eq!(blueprint.on_service_activated(ServiceId(1)).await, Ok(()));
    let broken = WordCount { config: Config { max_k: 0, ..Config::default() } };
    assert!(matches!(broken.on_service_activated(ServiceId(1)).await, Err(JobError::Handler(_))));
}

/// `blueprint.toml` puts on chain what [`JOBS`] says: same jobs, names, prices and deadlines.
#[test]
fn the_manifest_matches_the_jobs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/blueprint.toml");
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), JOBS.len());
    for (job, spec) in jobs.iter().zip(JOBS) {
        assert_eq!(job["name"].as_str(), Some(spec.name));
        let price = job["price"].as_str().unwrap().strip_suffix(" vUSD").unwrap();
        let (units, decimals) = price.split_once('.').unwrap_or((price, ""));
        let base_units = format!("{units}{decimals:0<6}").parse::<u128>().unwrap();
        assert_eq!(base_units, spec.suggested_price, "{} price", spec.name);
        let deadline = job["deadline"].as_str().unwrap().strip_suffix('m').unwrap().parse::<u64>().unwrap();
        assert_eq!(deadline * 60, spec.suggested_deadline_secs, "{} deadline", spec.name);
    }
}
