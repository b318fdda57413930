//! `vouch devnet up|down|status` as a user runs them: `up` as a child process on a free port, other commands against
//! it with nothing but `--datadir`, then `down`.

use std::{
    path::Path,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::vouch_command;

fn vouch(datadir: &Path, args: &[&str]) -> std::process::Output {
    vouch_command().arg("--datadir").arg(datadir).args(args).output().expect("vouch runs")
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn devnet_up_serves_the_other_commands_and_down_stops_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let datadir = tmp.path().join("devnet");
    let child = vouch_command()
        .arg("--datadir")
        .arg(&datadir)
        .args(["--json", "devnet", "up", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vouch devnet up starts");
    let mut up = Up(child);
    let started = Instant::now();
    while !datadir.join("devnet.pid").is_file() {
        if let Ok(Some(status)) = up.0.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = up.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            panic!("vouch devnet up exited ({status}): {stderr}");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the devnet did not start within 120 s");
        thread::sleep(Duration::from_millis(200));
    }
    let pid = up.0.id();
    assert_eq!(std::fs::read_to_string(datadir.join("devnet.pid")).expect("pid file").trim(), pid.to_string());
    let config = std::fs::read_to_string(datadir.join("config.toml")).expect("config.toml");
    assert!(config.contains("rpc = \"http://127.0.0.1:"), "{config}");

    let status = vouch(&datadir, &["--json", "devnet", "status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["running"], true);
    assert_eq!(status["chainId"], 31337);

    // A second `up` on the same directory says why it cannot.
    let again = vouch(&datadir, &["devnet", "up", "--port", "0"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("is not empty") && err.contains("devnet down"), "{err}");

    let show = vouch(&datadir, &["service", "show", "1"]);
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    assert!(String::from_utf8_lossy(&show.stdout).contains("Active"));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(datadir.join("devnet.json")).expect("devnet.json"))
            .expect("json");
    let operator = manifest["operators"][0]["account"]["address"].as_str().expect("operator 0").to_owned();
    let op = vouch(&datadir, &["operator", "status", &operator]);
    assert!(op.status.success(), "{}", String::from_utf8_lossy(&op.stderr));
    assert!(String::from_utf8_lossy(&op.stdout).contains("registered"));
    let anvil_pid = u32::try_from(manifest["anvilPid"].as_u64().expect("anvil pid")).expect("pid");
    assert!(alive(anvil_pid));

    let down = vouch(&datadir, &["devnet", "down"]);
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    let exited = up.0.try_wait().expect("wait").expect("vouch devnet up exited after `down`");
    assert!(exited.success(), "vouch devnet up exited with {exited}");
    assert!(!datadir.join("devnet.pid").exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(anvil_pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(anvil_pid), "anvil (pid {anvil_pid}) still runs after `vouch devnet down`");

    let down = vouch(&datadir, &["devnet", "down"]);
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("no devnet running"), "{err}");
    let status = vouch(&datadir, &["devnet", "status"]);
    assert!(!status.status.success());
}
