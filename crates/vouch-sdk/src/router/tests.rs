#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use alloy_primitives::{Address, address};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use vouch_primitives::{CallId, ServiceId};

use crate::{
    Agreement, Caller, Claimed, Context, Exact, Inputs, JobCall, JobError, JobIndex, JobOutput, Json, JsonTolerance,
    Reject, Router, Verification, Verifier, layers,
};

const PAYER: Address = address!("0x00000000000000000000000000000000000000aa");

fn call(job_index: u8, inputs: &'static str) -> JobCall {
    JobCall::new(ServiceId(3), CallId::from(9), job_index, PAYER, inputs)
}

fn text(output: &JobOutput) -> &str {
    std::str::from_utf8(&output.bytes).unwrap()
}

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
}

async fn greet(Json(input): Json<Greet>) -> Json<Greeting> {
    Json(Greeting { greeting: format!("hello {}", input.name) })
}

async fn describe(service: ServiceId, call: CallId, JobIndex(job): JobIndex, Caller(caller): Caller) -> String {
    format!("{service} {call} job {job} from {caller}")
}

async fn fail() -> Result<String, std::io::Error> {
    Err(std::io::Error::other("the disk is full"))
}

async fn panics() -> &'static str {
    panic!("boom in the future")
}

fn panics_before_the_future() -> std::future::Ready<&'static str> {
    panic!("boom when called")
}

async fn sleeps() -> &'static str {
    tokio::time::sleep(Duration::from_millis(200)).await;
    "slept"
}

fn router() -> Router {
    Router::new()
        .route(0, greet)
        .route(1, describe)
        .route(2, fail)
        .route(3, panics)
        .route(4, panics_before_the_future)
        .route(5, sleeps)
        .route(6, |Inputs(raw): Inputs| async move { raw })
}

#[tokio::test]
async fn routes_by_job_index() {
    let router = router();
    assert_eq!(router.jobs(), vec![0, 1, 2, 3, 4, 5, 6]);
    assert!(router.has_job(6) && !router.has_job(7));

    let out = router.call(call(0, r#"{"name":"ada"}"#)).await.unwrap();
    assert_eq!(text(&out), r#"{"greeting":"hello ada"}"#);

    let out = router.call(call(1, "")).await.unwrap();
    assert_eq!(text(&out), format!("service 3 call 9 job 1 from {PAYER}"));

    let out = router.call(call(6, "raw bytes")).await.unwrap();
    assert_eq!(text(&out), "raw bytes");
}

#[tokio::test]
async fn unknown_job_is_an_error() {
    assert_eq!(router().call(call(42, "")).await, Err(JobError::UnknownJob { job_index: 42 }));
}

#[tokio::test]
async fn bad_json_says_what_is_wrong() {
    let error = router().call(call(0, r#"{"name": 7}"#)).await.unwrap_err();
    let JobError::BadInput(message) = &error else { panic!("expected BadInput, got {error:?}") };
    assert!(message.contains("`name`") && message.contains("expected a string"), "{message}");
    assert_eq!(error.code(), "bad_input");
}

#[tokio::test]
async fn handler_error_carries_its_message() {
    assert_eq!(router().call(call(2, "")).await, Err(JobError::Handler("the disk is full".into())));
}

#[tokio::test]
async fn reject_keeps_the_variant() {
    let router: Router =
        Router::new().route(0, || async { Err::<String, _>(Reject(JobError::BadInput("prompt too long".into()))) });
    assert_eq!(router.call(call(0, "")).await, Err(JobError::BadInput("prompt too long".into())));
}

#[tokio::test]
async fn panics_are_job_errors_and_the_router_keeps_serving() {
    let router = router();
    assert_eq!(router.call(call(3, "")).await, Err(JobError::Panicked("boom in the future".into())));
    assert_eq!(router.call(call(4, "")).await, Err(JobError::Panicked("boom when called".into())));
    let out = router.call(call(0, r#"{"name":"still here"}"#)).await.unwrap();
    assert_eq!(text(&out), r#"{"greeting":"hello still here"}"#);
}

#[tokio::test]
async fn timeout_layer_gives_timeout() {
    let router = router().layer(layers::timeout(Duration::from_millis(20)));
    assert_eq!(router.call(call(5, "")).await, Err(JobError::Timeout));
    // Fast jobs pass through the same layer, and errors keep their variant.
    assert!(router.call(call(0, r#"{"name":"x"}"#)).await.is_ok());
    assert_eq!(router.call(call(2, "")).await, Err(JobError::Handler("the disk is full".into())));
}

#[tokio::test]
async fn concurrency_limit_refuses_beyond_the_limit_across_routes_and_clones() {
    let router = router().layer(layers::concurrency_limit(1)).layer(layers::trace());
    let busy = tokio::spawn(router.clone().oneshot(call(5, "")));
    tokio::time::sleep(Duration::from_millis(20)).await; // let the slow call take the permit
    assert_eq!(router.call(call(5, "")).await, Err(JobError::Overloaded));
    assert_eq!(router.call(call(0, r#"{"name":"x"}"#)).await, Err(JobError::Overloaded));
    assert_eq!(text(&busy.await.unwrap().unwrap()), "slept");
    // The permit is back.
    assert!(router.call(call(0, r#"{"name":"x"}"#)).await.is_ok());
}

#[tokio::test]
async fn layers_wrap_only_earlier_routes() {
    let router: Router =
        Router::new().route(0, sleeps).layer(layers::timeout(Duration::from_millis(20))).route(1, sleeps);
    assert_eq!(router.call(call(0, "")).await, Err(JobError::Timeout));
    assert!(router.call(call(1, "")).await.is_ok());
}

#[derive(Clone)]
struct Counter {
    calls: Arc<AtomicU32>,
}

async fn count(Context(counter): Context<Counter>) -> String {
    (counter.calls.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

async fn slow_count(Context(counter): Context<Counter>) -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    count(Context(counter)).await
}

#[tokio::test]
async fn state_is_shared_with_handlers_and_layers_apply_before_state() {
    let calls = Arc::new(AtomicU32::new(0));
    let router: Router = Router::<Counter>::new()
        .route(0, count)
        .route(1, slow_count)
        .layer(layers::timeout(Duration::from_millis(20)))
        .with_state(Counter { calls: Arc::clone(&calls) });
    assert_eq!(text(&router.call(call(0, "")).await.unwrap()), "1");
    assert_eq!(text(&router.call(call(0, "")).await.unwrap()), "2");
    assert_eq!(router.call(call(1, "")).await, Err(JobError::Timeout));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn handlers_take_up_to_eight_extractors() {
    #[allow(clippy::too_many_arguments)]
    async fn eight(
        _: ServiceId,
        _: CallId,
        _: JobIndex,
        _: Caller,
        _: Inputs,
        _: JobCall,
        _: Option<Json<u8>>,
        Context(state): Context<u8>,
    ) -> String {
        state.to_string()
    }
    let router: Router = Router::new().route(0, eight).with_state(8u8);
    assert_eq!(text(&router.call(call(0, "")).await.unwrap()), "8");
}

struct CaseInsensitive;

impl Verifier for CaseInsensitive {
    fn agrees(&self, own: &[u8], other: &[u8]) -> Agreement {
        if own.eq_ignore_ascii_case(other) { Agreement::Agree } else { Agreement::disagree("different text") }
    }
    fn name(&self) -> &'static str {
        "case_insensitive"
    }
}

#[test]
fn verifiers_are_per_job_with_exact_by_default() {
    let router = router().verifier(0, CaseInsensitive);
    assert_eq!(router.verifier_for(0).name(), "case_insensitive");
    assert_eq!(router.verifier_for(0).agrees(b"ABC", b"abc"), Agreement::Agree);
    assert_eq!(router.verifier_for(1).name(), Exact.name());
    assert!(matches!(router.verifier_for(1).agrees(b"ABC", b"abc"), Agreement::Disagree { .. }));
    // Verifiers survive `with_state` and `layer`.
    let router: Router =
        Router::<u8>::new().route(0, count_u8).verifier(0, CaseInsensitive).layer(layers::trace()).with_state(1);
    assert_eq!(router.verifier_for(0).name(), "case_insensitive");
}

async fn count_u8(Context(n): Context<u8>) -> String {
    n.to_string()
}

#[test]
#[should_panic(expected = "job 0 is routed twice")]
fn duplicate_routes_panic() {
    let _ = Router::<()>::new().route(0, greet).route(0, fail);
}

#[test]
fn router_is_a_clone_send_sync_service_with_a_send_future() {
    fn assert_service<T>(_: &T)
    where
        T: tower::Service<JobCall, Response = JobOutput, Error = JobError> + Clone + Send + Sync + 'static,
        T::Future: Send + 'static,
    {
    }
    assert_service(&router());
    let debug = format!("{:?}", router().verifier(2, CaseInsensitive).checker(0, check_greeting));
    assert!(debug.contains("case_insensitive") && debug.contains("checkers: [0]"), "{debug}");
}

/// Checks a claimed greeting: what `greet` would answer, without calling it.
async fn check_greeting(Json(input): Json<Greet>, claimed: Claimed) -> Agreement {
    #[derive(Deserialize)]
    struct Claim {
        greeting: String,
    }
    let claim: Claim = match claimed.json() {
        Ok(claim) => claim,
        Err(disagreement) => return disagreement,
    };
    if claim.greeting == format!("hello {}", input.name) {
        Agreement::Agree
    } else {
        Agreement::disagree(format!("{:?} does not greet {}", claim.greeting, input.name))
    }
}

fn check(job_index: u8, inputs: &'static str, claimed: &'static str) -> JobCall {
    call(job_index, inputs).with_claimed(claimed)
}

#[tokio::test]
async fn checkers_accept_or_reject_the_claimed_output() {
    let router = router().checker(0, check_greeting);
    assert!(router.has_checker(0) && !router.has_checker(1));
    let ada = r#"{"name":"ada"}"#;
    assert_eq!(router.check(check(0, ada, r#"{"greeting":"hello ada"}"#)).await, Ok(Agreement::Agree));
    let Ok(Agreement::Disagree { reason }) = router.check(check(0, ada, r#"{"greeting":"hello bob"}"#)).await else {
        panic!("expected a disagreement")
    };
    assert!(reason.contains("does not greet ada"), "{reason}");
    let Ok(Agreement::Disagree { reason }) = router.check(check(0, ada, "not json")).await else {
        panic!("expected a disagreement")
    };
    assert!(reason.contains("not the expected JSON"), "{reason}");
    // The checker's other extractors reject as a handler's do: a job error, not a disagreement.
    assert!(matches!(router.check(check(0, "{}", "{}")).await, Err(JobError::BadInput(_))));
    // No checker for this job; no claimed output for a checker.
    assert_eq!(router.check(check(1, "", "")).await, Err(JobError::UnknownJob { job_index: 1 }));
    assert!(matches!(router.check(call(0, ada)).await, Err(JobError::BadInput(m)) if m.contains("claimed")));
    // The job itself still runs (the executor), and ignores a claimed output.
    assert_eq!(text(&router.call(check(0, ada, "x")).await.unwrap()), r#"{"greeting":"hello ada"}"#);
}

async fn panicking_check(_: Claimed) -> Agreement {
    panic!("boom in the checker")
}

#[tokio::test]
async fn checker_errors_and_panics_are_job_errors() {
    let router: Router = Router::new()
        .checker(0, |_: Claimed| async { Err::<Agreement, _>("model not loaded") })
        .checker(1, |_: Claimed| async { Err::<Agreement, _>(Reject(JobError::BadInput("prompt too long".into()))) })
        .checker(2, panicking_check);
    assert_eq!(router.check(check(0, "", "")).await, Err(JobError::Handler("model not loaded".into())));
    assert_eq!(router.check(check(1, "", "")).await, Err(JobError::BadInput("prompt too long".into())));
    assert_eq!(router.check(check(2, "", "")).await, Err(JobError::Panicked("boom in the checker".into())));
    assert_eq!(router.check(check(0, "", "")).await, Err(JobError::Handler("model not loaded".into())));
}

async fn slow_check(Context(counter): Context<Counter>, _: Claimed) -> Agreement {
    tokio::time::sleep(Duration::from_millis(200)).await;
    counter.calls.fetch_add(1, Ordering::SeqCst);
    Agreement::Agree
}

async fn counting_check(Context(counter): Context<Counter>, _: Claimed) -> Agreement {
    counter.calls.fetch_add(1, Ordering::SeqCst);
    Agreement::Agree
}

#[tokio::test]
async fn state_and_layers_reach_checkers_like_routes() {
    let calls = Arc::new(AtomicU32::new(0));
    let router: Router = Router::<Counter>::new()
        .route(0, count)
        .checker(0, counting_check)
        .checker(1, slow_check)
        .layer(layers::timeout(Duration::from_millis(20)))
        .layer(layers::trace())
        .with_state(Counter { calls: Arc::clone(&calls) });
    assert_eq!(router.check(check(0, "", "")).await, Ok(Agreement::Agree));
    assert_eq!(router.check(check(1, "", "")).await, Err(JobError::Timeout));
    assert_eq!(text(&router.call(call(0, "")).await.unwrap()), "2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(router.verification_for(0), Verification::Checked);
}

#[tokio::test]
async fn one_concurrency_limit_covers_routes_and_checkers() {
    let router: Router = Router::new()
        .route(5, sleeps)
        .checker(0, |_: Claimed| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Agreement::Agree
        })
        .layer(layers::concurrency_limit(1));
    let busy = tokio::spawn(router.check(check(0, "", "")));
    tokio::time::sleep(Duration::from_millis(20)).await; // let the slow check take the permit
    assert_eq!(router.call(call(5, "")).await, Err(JobError::Overloaded));
    assert_eq!(router.check(check(0, "", "")).await, Err(JobError::Overloaded));
    assert_eq!(busy.await.unwrap(), Ok(Agreement::Agree));
    assert_eq!(text(&router.call(call(5, "")).await.unwrap()), "slept");
}

#[test]
fn verification_follows_checkers_and_non_exact_verifiers() {
    let router = router()
        .verifier(0, JsonTolerance { absolute: 1e-6, relative: 0.0 })
        .verifier(1, Exact)
        .checker(2, check_greeting)
        .verifier(2, Exact);
    assert_eq!(router.verification_for(0), Verification::Tolerant);
    assert_eq!(router.verification_for(1), Verification::Exact, "Exact spelled out stays exact");
    assert_eq!(router.verification_for(2), Verification::Checked);
    assert_eq!(router.verification_for(3), Verification::Exact);
    assert_eq!(router.verification_for(200), Verification::Exact);
    assert!(Exact.is_exact() && !CaseInsensitive.is_exact());
}

#[test]
#[should_panic(expected = "cannot also have a checker")]
fn a_tolerant_job_cannot_have_a_checker() {
    let _ = router().verifier(0, CaseInsensitive).checker(0, check_greeting);
}

#[test]
#[should_panic(expected = "cannot also have a tolerant verifier")]
fn a_checked_job_cannot_have_a_tolerant_verifier() {
    let _ = router().checker(0, check_greeting).verifier(0, CaseInsensitive);
}

#[test]
#[should_panic(expected = "job 0 has two checkers")]
fn duplicate_checkers_panic() {
    let _ = router().checker(0, check_greeting).checker(0, check_greeting);
}
