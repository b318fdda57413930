//! Starting, stopping, dropping, running until a signal, and reading a devnet back from its data directory.

use std::{path::Path, process::Command, time::Duration};

use alloy::providers::Provider;
use vouch_devnet::{Devnet, DevnetConfig, DevnetError, MANIFEST_FILE, status};

/// Whether process `pid` exists (a reaped child no longer does).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn stop_kills_anvil_and_removes_a_temporary_data_dir() {
    let devnet = Devnet::start(DevnetConfig::default()).await.expect("starts");
    let (pid, dir) = (devnet.anvil_pid(), devnet.data_dir().to_owned());
    let provider = devnet.read_provider();
    assert!(alive(pid) && dir.join(MANIFEST_FILE).is_file());

    devnet.stop().expect("stops");
    assert!(!alive(pid), "anvil is killed and reaped");
    assert!(!dir.exists(), "the temporary data directory is removed");
    assert!(provider.get_chain_id().await.is_err(), "nothing answers any more");
}

#[tokio::test]
async fn a_persistent_data_dir_outlives_the_devnet() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("devnet");
    let config = DevnetConfig { data_dir: Some(dir.clone()), ..DevnetConfig::default() };
    let devnet = Devnet::start(config.clone()).await.expect("starts");
    let (pid, port) = (devnet.anvil_pid(), devnet.port());
    assert_eq!(devnet.data_dir(), dir.canonicalize().expect("exists"));
    status(&dir).await.expect("running");

    // Dropped = stopped; the data directory stays, and `status` says the devnet is gone.
    drop(devnet);
    assert!(!alive(pid));
    assert!(dir.join(MANIFEST_FILE).is_file() && dir.join("keys/operator-0.bls.json").is_file());
    let err = status(&dir).await.expect_err("stopped");
    assert!(matches!(&err, DevnetError::NotRunning { pid: p, .. } if *p == pid), "{err}");
    assert!(err.to_string().contains("does not answer"), "{err}");

    // A used data directory is refused before anvil starts: keys are never overwritten.
    let err = Devnet::start(config).await.expect_err("not empty");
    assert!(matches!(&err, DevnetError::DataDirNotEmpty(d) if d == &dir), "{err}");

    // Another devnet on the same port deploys to the same addresses, but `status` tells it apart by its keys.
    let other = DevnetConfig { port, ..DevnetConfig::default() };
    match Devnet::start(other).await {
        Ok(other) => {
            assert_eq!(other.port(), port);
            let err = status(&dir).await.expect_err("another devnet");
            assert!(matches!(err, DevnetError::OtherDevnet { .. }), "{err}");
        }
        // The port was taken in between by someone else: nothing to compare against.
        Err(DevnetError::AnvilExited { .. }) => {}
        Err(e) => panic!("unexpected {e}"),
    }
}

#[tokio::test]
async fn an_ephemeral_data_dir_is_removed_at_stop() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("ephemeral");
    let config = DevnetConfig { data_dir: Some(dir.clone()), ephemeral: true, ..DevnetConfig::default() };
    let devnet = Devnet::start(config).await.expect("starts");
    assert!(dir.join(MANIFEST_FILE).is_file());
    let pid = devnet.anvil_pid();

    // What the CLI runs, with the signal replaced by a channel.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(devnet.run_until(async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(pid) && !running.is_finished(), "runs until told to stop");
    tx.send(()).expect("running");
    running.await.expect("joins").expect("clean teardown");
    assert!(!alive(pid));
    assert!(!dir.exists(), "removed");
}

#[tokio::test]
async fn a_dead_anvil_ends_the_run_with_an_error() {
    let devnet = Devnet::start(DevnetConfig::default()).await.expect("starts");
    let pid = devnet.anvil_pid();
    let killed = Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let err = tokio::time::timeout(Duration::from_secs(10), devnet.run_until(std::future::pending()))
        .await
        .expect("notices within the liveness interval")
        .expect_err("anvil died");
    assert!(matches!(&err, DevnetError::AnvilDied { pid: p, .. } if *p == pid), "{err}");
}

#[tokio::test]
async fn bad_configs_fail_with_a_precise_error() {
    // Checked before anvil starts.
    let err = Devnet::start(DevnetConfig { operators: 0, ..DevnetConfig::default() }).await.expect_err("no operators");
    assert!(matches!(&err, DevnetError::Config(m) if m.contains("operators is 0")), "{err}");
    let err = Devnet::start(DevnetConfig { operators: 1, ..DevnetConfig::default() }).await.expect_err("too few");
    assert!(err.to_string().contains("minSigners 2"), "{err}");
    let missing = Path::new("/nonexistent/anvil").to_owned();
    let err = Devnet::start(DevnetConfig { anvil: Some(missing.clone()), ..DevnetConfig::default() })
        .await
        .expect_err("no such binary");
    assert!(matches!(&err, DevnetError::AnvilSpawn { path, .. } if path == &missing), "{err}");

    // What only the chain refuses stops the start with the decoded revert, and tears down what was started.
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("refused");
    let mut config = DevnetConfig { data_dir: Some(dir.clone()), ephemeral: true, ..DevnetConfig::default() };
    config.blueprint.policy.quorumBps = 0;
    let err = Devnet::start(config).await.expect_err("the protocol refuses the policy");
    assert!(!dir.exists(), "the ephemeral data directory is removed");
    assert!(
        matches!(&err, DevnetError::Step { step, .. } if step == "developer: VouchProtocol.createBlueprint"),
        "{err}"
    );
    assert!(err.to_string().ends_with("execution reverted: InvalidQuorum(quorumBps 0)"), "{err}");

    // Without anvil anywhere, the error says how to install it.
    let err = DevnetError::AnvilNotFound { repo_anvil: vouch_devnet::repo_anvil() };
    assert!(err.to_string().contains("run ./scripts/setup.sh"), "{err}");
}
