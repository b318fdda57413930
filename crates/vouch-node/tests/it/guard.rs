//! Signing guard tests: concurrent conflicting attempts, kill -9 in the middle of signing, failing closed, the
//! binding check and the interchange format.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use alloy_primitives::{Address, B256, address, hex, keccak256};
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
};
use vouch_crypto::{PublicKey, SecretKey};
use vouch_node::guard::{GuardError, ImportSummary, Interchange, NotSafe, OpenMode, SigningGuard};
use vouch_primitives::{CallId, ChainBinding, ResultRef, ServiceId, result_digest};

const BINDING: ChainBinding = ChainBinding::new(31337, address!("0x00000000000000000000000000000000000c0de5"));

/// Set (to the database path) when this test binary runs as the child of [`kill9_keeps_every_released_signature`].
const CHILD_ENV: &str = "VOUCH_GUARD_KILL9_CHILD_DB";
const CHILD_TEST: &str = "guard::kill9_child_signs_until_killed";

fn operator_key() -> SecretKey {
    SecretKey::from_ikm(&[42; 32]).unwrap()
}

fn public_key() -> PublicKey {
    operator_key().public_key()
}

/// The result the kill -9 child signs for `call`.
fn result_of(call: u64) -> ResultRef {
    ResultRef {
        service_id: ServiceId(5),
        call_id: CallId::from(call),
        inputs_hash: keccak256(b"inputs"),
        result_hash: keccak256(call.to_be_bytes()),
    }
}

fn initialise(path: &Path) -> SigningGuard {
    SigningGuard::open(path, OpenMode::Initialise, BINDING, &public_key()).unwrap()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

#[test]
fn concurrent_conflicting_attempts_exactly_one_wins() {
    const N: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let guard = initialise(&dir.path().join("guard.sqlite"));
    let sk = Arc::new(operator_key());
    let call = CallId::from(1);

    let outcomes = multi_thread_runtime().block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let (guard, sk, barrier) = (guard.clone(), sk.clone(), barrier.clone());
                tokio::spawn(async move {
                    let entry = ResultRef {
                        service_id: ServiceId(1),
                        call_id: call,
                        inputs_hash: B256::ZERO,
                        result_hash: B256::with_last_byte(i as u8),
                    };
                    barrier.wait().await;
                    (entry, guard.sign_async(sk, vec![entry]).await)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    });

    let winners: Vec<_> = outcomes.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one of {N} conflicting attempts may win");
    let (won, signed) = winners[0];
    let signed = &signed.as_ref().unwrap()[0];
    assert!(signed.fresh);
    signed.signature.verify(&public_key(), &result_digest(&BINDING, won)).unwrap();
    for (entry, outcome) in &outcomes {
        match outcome {
            Ok(_) => assert_eq!(entry, won),
            Err(GuardError::Refused(NotSafe::ConflictingResult { recorded_result, attempted_result, .. })) => {
                assert_eq!(*recorded_result, won.result_hash);
                assert_eq!(*attempted_result, entry.result_hash);
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    let record = guard.get(ServiceId(1), call).unwrap().unwrap();
    assert_eq!((record.entry, record.signature), (*won, signed.signature));
}

#[test]
fn concurrent_blocking_and_async_attempts_agree_on_one_result() {
    // Two results race for each call, from blocking threads and async tasks at once: every attempt with the winning
    // result gets the one recorded signature, every other one is refused.
    let dir = tempfile::tempdir().unwrap();
    let guard = initialise(&dir.path().join("guard.sqlite"));
    let sk = Arc::new(operator_key());
    let calls = 0..16u64;
    let entry = |call: u64, variant: u8| ResultRef {
        service_id: ServiceId(2),
        call_id: CallId::from(call),
        inputs_hash: B256::ZERO,
        result_hash: B256::with_last_byte(variant),
    };

    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let (guard, sk, calls) = (guard.clone(), sk.clone(), calls.clone());
            std::thread::spawn(move || {
                calls.map(|c| (entry(c, t % 2), guard.sign(&sk, &[entry(c, t % 2)]))).collect::<Vec<_>>()
            })
        })
        .collect();
    let async_outcomes = multi_thread_runtime().block_on(async {
        let tasks: Vec<_> = (0..8u8)
            .flat_map(|t| calls.clone().map(move |c| (t, c)))
            .map(|(t, c)| {
                let (guard, sk) = (guard.clone(), sk.clone());
                tokio::spawn(async move { (entry(c, t % 2), guard.sign_async(sk, vec![entry(c, t % 2)]).await) })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    });
    let outcomes: Vec<_> =
        threads.into_iter().flat_map(|t| t.join().unwrap()).chain(async_outcomes).collect::<Vec<_>>();

    for call in calls {
        let record = guard.get(ServiceId(2), CallId::from(call)).unwrap().unwrap();
        let mut fresh = 0;
        for (attempt, outcome) in outcomes.iter().filter(|(e, _)| e.call_id == CallId::from(call)) {
            match outcome {
                Ok(signed) => {
                    assert_eq!(*attempt, record.entry);
                    assert_eq!(signed[0].signature, record.signature);
                    fresh += usize::from(signed[0].fresh);
                }
                Err(err) => {
                    assert_ne!(*attempt, record.entry);
                    assert!(err.not_safe().is_some(), "{err}");
                }
            }
        }
        assert_eq!(fresh, 1, "one attempt records the call, the others get the record back");
    }
}

/// The child role of [`kill9_keeps_every_released_signature`]; does nothing in a normal test run.
#[test]
fn kill9_child_signs_until_killed() {
    let Ok(db) = std::env::var(CHILD_ENV) else { return };
    let guard = SigningGuard::open(Path::new(&db), OpenMode::Existing, BINDING, &public_key()).unwrap();
    let sk = Arc::new(operator_key());
    // One blocking signer and three async ones, so that kills land inside group commits too.
    let blocking = {
        let (guard, sk) = (guard.clone(), sk.clone());
        std::thread::spawn(move || {
            for call in (0..).map(|i| 4 * i) {
                let signed = guard.sign(&sk, &[result_of(call)]).unwrap();
                println!("committed {call} {}", hex::encode_prefixed(signed[0].signature.to_compressed()));
            }
        })
    };
    multi_thread_runtime().block_on(async {
        let tasks: Vec<_> = (1..4u64)
            .map(|lane| {
                let (guard, sk) = (guard.clone(), sk.clone());
                tokio::spawn(async move {
                    for call in (0..).map(|i| 4 * i + lane) {
                        let signed = guard.sign_async(sk.clone(), vec![result_of(call)]).await.unwrap();
                        println!("committed {call} {}", hex::encode_prefixed(signed[0].signature.to_compressed()));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    blocking.join().unwrap();
}

#[test]
fn kill9_keeps_every_released_signature() {
    const KILL_AFTER: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.sqlite");
    drop(initialise(&path));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut released = Vec::new();
    while released.len() < KILL_AFTER {
        let line = lines.next().expect("the child stopped before it was killed").unwrap();
        if let Some(record) = line.strip_prefix("committed ") {
            released.push(record.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    #[cfg(unix)]
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{status}");
    // Lines still in the pipe were released before the kill too.
    released.extend(lines.map_while(Result::ok).filter_map(|l| l.strip_prefix("committed ").map(str::to_owned)));

    let guard = SigningGuard::open(&path, OpenMode::Existing, BINDING, &public_key()).unwrap();
    let sk = operator_key();
    for line in &released {
        let (call, signature) = line.split_once(' ').unwrap();
        let call: u64 = call.parse().unwrap();
        let entry = result_of(call);
        let record = guard.get(entry.service_id, entry.call_id).unwrap().unwrap_or_else(|| panic!("call {call} lost"));
        assert_eq!(record.entry, entry);
        assert_eq!(hex::encode_prefixed(record.signature.to_compressed()), signature, "call {call}");

        let again = guard.sign(&sk, &[entry]).unwrap();
        assert_eq!((again[0].signature, again[0].fresh), (record.signature, false), "call {call}");
        let other = ResultRef { result_hash: B256::repeat_byte(0xee), ..entry };
        assert!(matches!(guard.sign(&sk, &[other]), Err(GuardError::Refused(_))), "call {call}");
    }
    let exported = guard.export().unwrap().records.len();
    assert!(exported >= released.len(), "{exported} records < {} released", released.len());
    eprintln!("kill -9 after {} released signatures ({exported} recorded): all kept", released.len());
}

#[test]
fn missing_database_fails_closed_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node").join("guard.sqlite");
    let err = SigningGuard::open(&path, OpenMode::Existing, BINDING, &public_key()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, GuardError::Missing { .. }), "{message}");
    for hint in [path.display().to_string(), "fails closed".into(), "vouch node init".into(), "import".into()] {
        assert!(message.contains(&hint), "{message:?} should mention {hint:?}");
    }
    assert!(!path.exists());

    std::fs::create_dir(path.parent().unwrap()).unwrap();
    let guard = SigningGuard::open(&path, OpenMode::Initialise, BINDING, &public_key()).unwrap();
    assert!(guard.sign(&operator_key(), &[result_of(1)]).unwrap()[0].fresh);
}

#[test]
fn a_database_for_another_deployment_or_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.sqlite");
    drop(initialise(&path));
    let testnet = ChainBinding::new(11155111, BINDING.contract);
    let err = SigningGuard::open(&path, OpenMode::Existing, testnet, &public_key()).unwrap_err();
    assert!(
        matches!(err, GuardError::WrongBinding { recorded, expected, .. } if recorded == BINDING && expected == testnet),
        "{err}"
    );
    assert!(err.to_string().contains("chain 31337"), "{err}");
    let redeployed = ChainBinding::new(BINDING.chain_id, Address::repeat_byte(7));
    assert!(matches!(
        SigningGuard::open(&path, OpenMode::Initialise, redeployed, &public_key()),
        Err(GuardError::WrongBinding { .. })
    ));
    let other_key = SecretKey::from_ikm(&[43; 32]).unwrap().public_key();
    assert!(matches!(
        SigningGuard::open(&path, OpenMode::Existing, BINDING, &other_key),
        Err(GuardError::WrongKey { .. })
    ));
}

#[test]
fn export_import_round_trip_into_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let old = initialise(&dir.path().join("old.sqlite"));
    let sk = operator_key();
    let entries: Vec<ResultRef> = (0..20).map(result_of).collect();
    let signed = old.sign(&sk, &entries).unwrap();
    let file = dir.path().join("export.json");
    old.export().unwrap().write_new_file(&file).unwrap();
    assert!(matches!(old.export().unwrap().write_new_file(&file), Err(GuardError::Io { .. })), "never overwrites");

    let data = Interchange::read_file(&file).unwrap();
    assert_eq!(data, old.export().unwrap());
    let new = initialise(&dir.path().join("new.sqlite"));
    assert_eq!(new.import(&data).unwrap(), ImportSummary { imported: 20, identical: 0 });
    assert_eq!(new.import(&data).unwrap(), ImportSummary { imported: 0, identical: 20 });
    assert_eq!(new.export().unwrap(), data);

    for (entry, signed) in entries.iter().zip(&signed) {
        let again = new.sign(&sk, &[*entry]).unwrap();
        assert_eq!((again[0].signature, again[0].fresh), (signed.signature, false));
        let other = ResultRef { result_hash: B256::ZERO, ..*entry };
        assert!(matches!(new.sign(&sk, &[other]), Err(GuardError::Refused(_))));
    }

    let elsewhere = initialise(&dir.path().join("elsewhere.sqlite"));
    drop(elsewhere);
    let other_chain = SigningGuard::open(
        &dir.path().join("other-chain.sqlite"),
        OpenMode::Initialise,
        ChainBinding::new(1, BINDING.contract),
        &public_key(),
    )
    .unwrap();
    let err = other_chain.import(&data).unwrap_err();
    assert!(err.to_string().contains("chain 31337"), "{err}");
    assert!(other_chain.export().unwrap().records.is_empty());
}

#[test]
fn conflicting_import_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let guard = initialise(&dir.path().join("guard.sqlite"));
    let sk = operator_key();
    guard.sign(&sk, &[result_of(1)]).unwrap();

    // Another node's file: a new call, and a different result for call 1.
    let other = initialise(&dir.path().join("other.sqlite"));
    other.sign(&sk, &[result_of(2), ResultRef { result_hash: B256::repeat_byte(3), ..result_of(1) }]).unwrap();
    let data = other.export().unwrap();

    let err = guard.import(&data).unwrap_err();
    assert!(
        matches!(err, GuardError::ImportConflict(NotSafe::ConflictingResult { call_id, .. }) if call_id == CallId::from(1)),
        "{err}"
    );
    assert_eq!(guard.get(ServiceId(5), CallId::from(2)).unwrap(), None, "nothing imported");
    assert_eq!(guard.get(ServiceId(5), CallId::from(1)).unwrap().unwrap().entry, result_of(1));
}

/// Commitments (tolerant jobs) travel with the results: imported when new, skipped when identical, and a
/// different output committed elsewhere for the same call aborts the whole import.
#[test]
fn commitments_import_with_the_results_and_conflicts_abort_it() {
    let dir = tempfile::tempdir().unwrap();
    let sk = operator_key();
    let inputs = keccak256(b"inputs");
    let old = initialise(&dir.path().join("old.sqlite"));
    old.sign(&sk, &[result_of(1)]).unwrap();
    for call in [1u64, 2] {
        old.commit(&sk, ServiceId(5), CallId::from(call), inputs, format!("output {call}").into_bytes().into())
            .unwrap();
    }
    let data = old.export().unwrap();
    assert_eq!(data.commitments.len(), 2);

    let new = initialise(&dir.path().join("new.sqlite"));
    assert_eq!(new.import(&data).unwrap(), ImportSummary { imported: 3, identical: 0 });
    assert_eq!(new.import(&data).unwrap(), ImportSummary { imported: 0, identical: 3 });
    assert_eq!(new.export().unwrap(), data);
    let recorded = new.get_commitment(ServiceId(5), CallId::from(2)).unwrap().unwrap();
    assert_eq!(recorded.output.as_ref(), b"output 2");

    // Another node's file: a new call 3, and another output for call 2.
    let other = initialise(&dir.path().join("other.sqlite"));
    for (call, output) in [(3u64, "output 3"), (2, "another output")] {
        other.commit(&sk, ServiceId(5), CallId::from(call), inputs, output.as_bytes().to_vec().into()).unwrap();
    }
    let err = new.import(&other.export().unwrap()).unwrap_err();
    assert!(matches!(err, GuardError::ImportConflict(NotSafe::ConflictingCommitment { .. })), "{err}");
    assert_eq!(new.get_commitment(ServiceId(5), CallId::from(3)).unwrap(), None, "nothing imported");
    assert_eq!(new.export().unwrap(), data);
}

/// Many concurrent requests for distinct calls go through group commit: every one is recorded once and fresh.
/// (Throughput is measured by `bench/` — `node_pipeline` — never asserted here.)
#[test]
fn many_concurrent_distinct_calls_are_all_recorded() {
    const CALLS: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let guard = initialise(&dir.path().join("guard.sqlite"));
    let sk = Arc::new(operator_key());
    multi_thread_runtime().block_on(async {
        let tasks: Vec<_> = (0..CALLS)
            .map(|call| {
                let (guard, sk) = (guard.clone(), sk.clone());
                tokio::spawn(async move { guard.sign_async(sk, vec![result_of(call)]).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap()[0].fresh);
        }
    });
    assert_eq!(guard.export().unwrap().records.len(), usize::try_from(CALLS).unwrap());
}
