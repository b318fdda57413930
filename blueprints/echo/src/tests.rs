#![allow(clippy::unwrap_used)]

use alloy_primitives::{Address, keccak256};
use vouch_sdk::{Blueprint, CallId, JobCall, JobError, JobOutput, ServiceId};

use super::*;

fn call(job_index: u8, inputs: impl Into<vouch_sdk::Bytes>) -> JobCall {
    JobCall::new(ServiceId(1), CallId::from(1), job_index, Address::ZERO, inputs)
}

async fn run(job_index: u8, inputs: impl Into<vouch_sdk::Bytes>) -> Result<JobOutput, JobError> {
    router().call(call(job_index, inputs)).await
}

fn bad_input(result: Result<JobOutput, JobError>) -> String {
    match result {
        Err(JobError::BadInput(message)) => message,
        other => panic!("expected BadInput, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_returns_the_message() {
    let out = run(ECHO, r#"{"message":"héllo \"world\""}"#).await.unwrap();
    assert_eq!(&out.bytes[..], r#"{"message":"héllo \"world\""}"#.as_bytes());
    // Deterministic: same inputs, same bytes, whatever the input formatting.
    let again = run(ECHO, r#"{ "message" : "héllo \"world\"" }"#).await.unwrap();
    assert_eq!(out.result_hash(), again.result_hash());
}

#[tokio::test]
async fn echo_limits_the_message() {
    let longest = format!(r#"{{"message":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES));
    assert!(run(ECHO, longest).await.is_ok());
    let too_long = format!(r#"{{"message":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES + 1));
    let message = bad_input(run(ECHO, too_long).await);
    assert!(message.contains("4097 bytes") && message.contains("4096"), "{message}");
    let huge = format!(r#"{{"message":"{}"}}"#, "a".repeat(1 << 20));
    assert!(bad_input(run(ECHO, huge).await).contains("too long"));
}

#[tokio::test]
async fn echo_rejects_malformed_inputs() {
    assert!(bad_input(run(ECHO, r#"{"message": 5}"#).await).contains("`message`"));
    assert!(bad_input(run(ECHO, r#"{}"#).await).contains("missing field `message`"));
    assert!(bad_input(run(ECHO, r#"{"message":"a","extra":1}"#).await).contains("unknown field `extra`"));
    assert!(!bad_input(run(ECHO, "not json").await).is_empty());
}

#[tokio::test]
async fn hash_is_keccak256() {
    let out = run(HASH, r#"{"data":"0x616263"}"#).await.unwrap();
    let expected = format!(r#"{{"keccak256":"{}"}}"#, keccak256(b"abc"));
    assert_eq!(std::str::from_utf8(&out.bytes).unwrap(), expected);

    let empty = run(HASH, r#"{"data":"0x"}"#).await.unwrap();
    assert_eq!(
        &empty.bytes[..],
        br#"{"keccak256":"0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"}"#
    );
}

#[tokio::test]
async fn hash_validates_data() {
    assert!(bad_input(run(HASH, r#"{"data":"616263"}"#).await).contains("starting with `0x`"));
    assert!(bad_input(run(HASH, r#"{"data":"0xabc"}"#).await).contains("not valid hex"));
    assert!(bad_input(run(HASH, r#"{"data":"0xzz"}"#).await).contains("not valid hex"));
    let largest = format!(r#"{{"data":"0x{}"}}"#, "ab".repeat(MAX_DATA_BYTES));
    assert!(run(HASH, largest).await.is_ok());
    let too_large = format!(r#"{{"data":"0x{}"}}"#, "ab".repeat(MAX_DATA_BYTES + 1));
    assert!(bad_input(run(HASH, too_large).await).contains("at most"));
}

#[tokio::test]
async fn fail_and_panic_are_job_errors() {
    assert_eq!(run(FAIL, "").await, Err(JobError::Handler(FAIL_MESSAGE.to_owned())));
    assert_eq!(run(PANIC, "").await, Err(JobError::Panicked(PANIC_MESSAGE.to_owned())));
    // The router still serves after a panic.
    assert!(run(ECHO, r#"{"message":"ok"}"#).await.is_ok());
    assert_eq!(run(4, "").await, Err(JobError::UnknownJob { job_index: 4 }));
}

#[test]
fn job_list_matches_the_router() {
    let indexes: Vec<u8> = JOBS.iter().map(|job| job.index).collect();
    assert_eq!(indexes, router().jobs());
    let names: Vec<&str> = JOBS.iter().map(|job| job.name).collect();
    assert_eq!(names, ["echo", "hash", "fail", "panic"]);
    assert_eq!(Echo.name(), "echo");
    assert_eq!(Echo.jobs(), JOBS);
    assert_eq!(Echo.router().jobs(), vec![ECHO, HASH, FAIL, PANIC]);
    assert_eq!(Echo.router().verifier_for(ECHO).name(), "exact");
}
