//! The official x402 clients pay the gateway: `@x402/fetch` + `@x402/evm` (npm) and `x402` (PyPI), each run as a
//! child process exactly as an agent would use it (tests/interop/). Their only configuration beyond the signer is
//! the spend-control line that admits the devnet's token. scripts/setup.sh installs both (node_modules/, .venv/).

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use alloy_primitives::{U256, hex};
use serde_json::{Value, json};
use vouch_primitives::{CallId, Certificate};
use vouch_testing::devnet::Funding;

use crate::common::{Setup, TestResult, wait_settled};

/// The request body both scripts send.
const MESSAGE: &str = "hello from the official x402 client";
/// How long one script may take (402, signing, the paid call with its fan-out).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// One of the official x402 clients, as a script under tests/interop/.
#[derive(Debug, Clone, Copy)]
enum Official {
    /// `@x402/fetch` + `@x402/evm` on Node (tests/interop/x402-fetch.mjs).
    TypeScript,
    /// PyPI `x402` with httpx (tests/interop/x402_client.py).
    Python,
}

impl Official {
    /// The command that runs the script, checked to be installed.
    fn command(self) -> Result<Command, Box<dyn std::error::Error>> {
        let root = repo_root();
        let (program, script, installed) = match self {
            Self::TypeScript => (
                PathBuf::from("node"),
                root.join("tests/interop/x402-fetch.mjs"),
                root.join("node_modules/@x402/fetch/package.json"),
            ),
            Self::Python => {
                let python = root.join(".venv/bin/python");
                (python.clone(), root.join("tests/interop/x402_client.py"), python)
            }
        };
        if !installed.exists() {
            return Err(format!(
                "{} is missing: run scripts/setup.sh to install the official x402 clients",
                installed.display()
            )
            .into());
        }
        let mut command = Command::new(program);
        command.arg(script).current_dir(root);
        Ok(command)
    }
}

/// Runs the `which` client against job 0 as a fresh payer holding `funds`, and returns its JSON report
/// (`{status, answer, paymentResponse}`), its exit success, and the payer's address.
async fn run_client(
    setup: &Setup,
    which: Official,
    funds: U256,
    max_amount: U256,
) -> Result<(Value, bool, alloy_primitives::Address, String), Box<dyn std::error::Error>> {
    let devnet = setup.net.devnet();
    let payer = devnet.new_account(&Funding { usd: funds, ..Funding::default() }).await?;
    let mut command = which.command()?;
    command
        .env("URL", setup.job_url(vouch_echo::ECHO))
        .env("PRIVATE_KEY", hex::encode_prefixed(payer.to_bytes()))
        .env("TOKEN", devnet.address_book().contracts.vouch_usd.to_checksum(None))
        .env("CHAIN_ID", devnet.chain_id().to_string())
        .env("MAX_AMOUNT", max_amount.to_string());
    let (report, ok, stderr) = run_script(command, &format!("{which:?} client"), SCRIPT_TIMEOUT).await?;
    Ok((report, ok, payer.address(), stderr))
}

/// Runs a client script (`name` in messages) to its end, at most `timeout`, and returns the one JSON line it
/// printed, whether it exited successfully, and its stderr.
pub(crate) async fn run_script(
    mut command: Command,
    name: &str,
    timeout: Duration,
) -> Result<(Value, bool, String), Box<dyn std::error::Error>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the {name}: {e} (run scripts/setup.sh)"))?;
    // Drain both pipes while the script runs, so a chatty script cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = tokio::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if tokio::time::Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            return Err(format!("the {name} did not finish in {timeout:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stdout = stdout.join().map_err(|_| "stdout reader panicked")?;
    let stderr = stderr.join().map_err(|_| "stderr reader panicked")?;
    let report: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("the {name} printed no JSON ({e}); exit {status}\nstdout: {stdout}\nstderr: {stderr}"))?;
    Ok((report, status.success(), stderr))
}

/// Reads `pipe` to the end on a thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// One official client pays for an echo call: 200 with the echoed output and a 3-signer certificate, a successful
/// `PAYMENT-RESPONSE`, and after settlement the payer is charged exactly the price, once.
async fn official_client_pays(which: Official) -> TestResult {
    let setup = Setup::start(6_667).await?;
    let devnet = setup.net.devnet();
    let price = U256::from(devnet.jobs()[usize::from(vouch_echo::ECHO)].price);
    let funds = price * U256::from(10u64);

    let (report, ok, payer, stderr) = run_client(&setup, which, funds, price).await?;
    assert!(ok && report["status"] == 200, "{which:?} client failed: {report}\nstderr: {stderr}");
    let answer = &report["answer"];
    assert_eq!(answer["output"], json!({ "message": MESSAGE }), "{which:?}: the echo job's output");
    let cert: Certificate = serde_json::from_value(answer["certificate"].clone())?;
    assert_eq!(cert.signer_bitmap.count_ones(), 3, "{which:?}: all 3 operators signed");

    let settlement = &report["paymentResponse"];
    assert_eq!(settlement["success"], true, "{which:?}: PAYMENT-RESPONSE {settlement}");
    assert_eq!(settlement["network"], format!("eip155:{}", devnet.chain_id()));
    if let Some(p) = settlement["payer"].as_str() {
        assert_eq!(p.to_lowercase(), payer.to_string().to_lowercase(), "{which:?}: PAYMENT-RESPONSE payer");
    }

    wait_settled(&setup, CallId(cert.call_id)).await?;
    assert_eq!(setup.usd(payer).await, funds - price, "{which:?}: charged exactly the price, once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_typescript_client_pays_and_gets_a_certified_answer() -> TestResult {
    official_client_pays(Official::TypeScript).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_pays_and_gets_a_certified_answer() -> TestResult {
    official_client_pays(Official::Python).await
}
