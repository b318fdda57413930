//! Running the real `vouch` binary, and a real anvil with the protocol deployed.

use std::{
    env,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use vouch_contracts::alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder, WalletProvider},
    signers::local::PrivateKeySigner,
};

/// anvil's well-known development key 0 (mnemonic "test test … junk"): the deployer. Never use it elsewhere.
pub(crate) const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The `vouch` binary with a clean environment: no `VOUCH_*` variable leaks in from the developer's shell, and the
/// data directory is always the test's.
pub(crate) struct Vouch {
    pub(crate) datadir: PathBuf,
    envs: Vec<(String, String)>,
}

/// What one run printed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from(output: &Output) -> Self {
        Self {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub(crate) fn vouch_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("VOUCH_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

impl Vouch {
    pub(crate) fn new(datadir: &Path) -> Self {
        Self { datadir: datadir.to_owned(), envs: Vec::new() }
    }

    /// Sets an environment variable for every run.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs `vouch <args>` with `VOUCH_DATADIR` set to the test's data directory.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let mut cmd = vouch_command();
        cmd.env("VOUCH_DATADIR", &self.datadir).args(args);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("the vouch binary runs");
        let run = Run::from(&output);
        eprintln!("$ vouch {} ({:.1?}, exit {:?})", args.join(" "), started.elapsed(), run.code);
        // `VOUCH_TEST_ECHO=1 cargo test … -- --nocapture` shows every output, to read what users see.
        if env::var_os("VOUCH_TEST_ECHO").is_some() {
            eprintln!("{}{}", run.stdout, run.stderr);
        }
        run
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(run.success, "vouch {} failed:\nstdout:\n{}\nstderr:\n{}", args.join(" "), run.stdout, run.stderr);
        run.stdout
    }

    /// Runs with `--json` and expects success; returns the document.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("vouch {} printed no JSON ({e}):\n{stdout}", all.join(" ")))
    }

    /// Runs and expects failure with exit code 1 (not a panic, not a usage error); returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code,
            Some(1),
            "vouch {} should fail with exit 1:\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        assert!(run.stderr.lines().any(|l| l.starts_with("error: ")), "stderr: {}", run.stderr);
        assert!(!run.stderr.contains("panicked") && !run.stderr.contains("internal error"), "{}", run.stderr);
        run.stderr
    }
}

/// Asserts `haystack` contains `needle`, printing both otherwise.
#[track_caller]
pub(crate) fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "expected {needle:?} in:\n{haystack}");
}

/// A real anvil (Prague: EIP-2537 BLS precompiles) on a port the OS picks, killed on drop.
pub(crate) struct Anvil {
    child: Child,
    pub(crate) url: String,
}

/// The anvil binary: on `PATH`, else the one `scripts/setup.sh` installs under `<repo>/node_modules/.bin`.
fn find_anvil() -> Option<PathBuf> {
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("anvil"));
    let in_repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/.bin/anvil");
    on_path.chain([in_repo]).find(|p| p.is_file())
}

impl Anvil {
    pub(crate) fn start() -> Self {
        let bin = find_anvil().expect("anvil not found on PATH or in node_modules/.bin: run ./scripts/setup.sh");
        let mut child = Command::new(&bin)
            .args(["--hardfork", "prague", "--host", "127.0.0.1", "--port", "0"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the port from "Listening on 127.0.0.1:<port>", then keeps draining stdout so anvil never blocks.
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("Listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("anvil did not report its address within 60 s");
        };
        Self { child, url: format!("http://{addr}") }
    }

    /// A provider signing with `key`.
    pub(crate) fn provider(&self, key: &str) -> impl Provider + WalletProvider + Clone + use<> {
        let signer: PrivateKeySigner = key.parse().expect("valid key");
        ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(self.url.parse().expect("valid url"))
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vouch devnet up --port 0` in a data directory, as a child process; stopped with SIGTERM (so its anvil stops too)
/// when dropped.
pub(crate) struct DevnetProcess {
    child: Child,
    pub(crate) datadir: PathBuf,
    /// `devnet.json`.
    pub(crate) manifest: Value,
}

impl DevnetProcess {
    /// Starts a devnet in `datadir` (new or empty) and waits until it is ready.
    pub(crate) fn start(datadir: &Path) -> Self {
        let child = vouch_command()
            .arg("--datadir")
            .arg(datadir)
            .args(["--quiet", "devnet", "up", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vouch devnet up starts");
        let mut devnet = Self { child, datadir: datadir.to_owned(), manifest: Value::Null };
        let started = Instant::now();
        while !datadir.join("devnet.pid").is_file() {
            if let Ok(Some(status)) = devnet.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = devnet.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("vouch devnet up exited ({status}): {stderr}");
            }
            assert!(started.elapsed() < Duration::from_secs(180), "the devnet did not start within 180 s");
            thread::sleep(Duration::from_millis(200));
        }
        let manifest = std::fs::read_to_string(datadir.join("devnet.json")).expect("devnet.json");
        devnet.manifest = serde_json::from_str(&manifest).expect("devnet.json is JSON");
        devnet
    }

    /// The RPC URL.
    pub(crate) fn rpc_url(&self) -> &str {
        self.manifest["rpcUrl"].as_str().expect("rpcUrl")
    }
}

/// Sends SIGTERM to `pid` with kill(1); true if it was delivered.
pub(crate) fn sigterm(pid: u32) -> bool {
    Command::new("kill").args(["-TERM", &pid.to_string()]).status().is_ok_and(|s| s.success())
}

/// Waits up to `limit` for `child` to exit.
pub(crate) fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if started.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for DevnetProcess {
    fn drop(&mut self) {
        sigterm(self.child.id());
        if wait_for_exit(&mut self.child, Duration::from_secs(15)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A long-running `vouch --json …` child process (`node run`, `gateway run`): its stderr (the logs) in a file, the one
/// JSON summary it prints once serving collected from stdout; killed on drop.
pub(crate) struct ServingProcess {
    pub(crate) child: Child,
    log: PathBuf,
    summary: mpsc::Receiver<String>,
    what: &'static str,
    startup: Duration,
}

impl ServingProcess {
    /// Spawns `command` (stdout piped, stderr to `log`); `what` names it in failures.
    pub(crate) fn spawn(mut command: Command, log: &Path, what: &'static str, startup: Duration) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, summary) = mpsc::channel();
        // Collects the one pretty-printed JSON document (it ends with a line "}"), then keeps draining.
        thread::spawn(move || {
            let mut doc = String::new();
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                doc.push_str(&line);
                doc.push('\n');
                if line == "}"
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(std::mem::take(&mut doc));
                }
            }
        });
        Self { child, log: log.to_owned(), summary, what, startup }
    }

    /// Its logs so far.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The summary it prints once serving.
    pub(crate) fn wait_serving(&mut self) -> Value {
        let started = Instant::now();
        loop {
            if let Ok(doc) = self.summary.recv_timeout(Duration::from_millis(200)) {
                return serde_json::from_str(&doc).unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{doc}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.what, self.logs());
            }
            assert!(started.elapsed() < self.startup, "{} did not start:\n{}", self.what, self.logs());
        }
    }
}

impl Drop for ServingProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
