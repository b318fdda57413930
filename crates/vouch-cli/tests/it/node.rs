//! `vouch node` as an operator runs it, against a devnet started with `vouch devnet up`: `node run` refuses to start
//! without a signing database and says to run `vouch node init`; `init` (idempotent) then `run` with the bundled echo
//! blueprint serves `/health` and stops cleanly on SIGTERM; `guard export` then `guard import` into a fresh data
//! directory carries the records over, and a conflicting import is refused naming the call. Three nodes (one per
//! devnet operator) run, sign and settle an on-chain call. Also the usage errors that need no chain and `vouch config
//! default --node`.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use vouch_contracts::{AddressBook, alloy::primitives::B256};
use vouch_crypto::{Keystore, SecretKey, keystore::read_password_file};
use vouch_node::{
    NodeConfig,
    guard::{OpenMode, SigningGuard},
};
use vouch_primitives::{CallId, ChainBinding, ResultRef, ServiceId};

use crate::support::{DevnetProcess, ServingProcess, Vouch, assert_contains, sigterm, vouch_command, wait_for_exit};

/// A node.toml for `operator-<index>` of the devnet, with its state in `data_dir` (relative to the file); `announce`
/// sets `[api] announce`, and `extra` is appended.
pub(crate) fn write_node_toml(
    path: &Path,
    devnet: &DevnetProcess,
    index: usize,
    data_dir: &str,
    announce: Option<&str>,
    extra: &str,
) {
    let keys = devnet.datadir.join("keys");
    let name = format!("operator-{index}");
    let text = format!(
        r#"data_dir = "{data_dir}"

[chain]
rpc_url = "{rpc}"
address_book = "{book}"

[operator]
tx_keystore = "{keys}/{name}.eth.json"
tx_password_file = "{keys}/{name}.eth.password"
bls_keystore = "{keys}/{name}.bls.json"
bls_password_file = "{keys}/{name}.bls.password"

[api]
listen = "127.0.0.1:0"
{announce}

[metrics]
listen = "127.0.0.1:0"

[watcher]
confirmations = 0
poll_interval_ms = 200
{extra}"#,
        rpc = devnet.rpc_url(),
        book = devnet.datadir.join("addresses.json").display(),
        keys = keys.display(),
        announce = announce.map(|a| format!("announce = \"{a}\"")).unwrap_or_default(),
    );
    fs::write(path, text).expect("writes node.toml");
}

fn unlock_bls(devnet: &Path, name: &str) -> SecretKey {
    let keystore = Keystore::read_file(&devnet.join(format!("keys/{name}.bls.json"))).expect("keystore");
    let password = read_password_file(&devnet.join(format!("keys/{name}.bls.password"))).expect("password");
    keystore.decrypt(&password).expect("decrypts")
}

/// `GET path` on `addr`: the status code and body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let code = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()))
}

/// `vouch --json node run …` as a child process, its stderr (the logs) in a file; killed on drop.
pub(crate) type RunningNode = ServingProcess;

impl RunningNode {
    pub(crate) fn start(config: &Path, log: &Path, blueprint: &str) -> Self {
        eprintln!("$ vouch --json node run --config {} --blueprint {blueprint} &", config.display());
        let mut command = vouch_command();
        command.args(["--json", "node", "run", "--config"]).arg(config).args(["--blueprint", blueprint]);
        Self::spawn(command, log, "vouch node run", Duration::from_secs(120))
    }
}

#[test]
fn node_init_run_and_guard_export_import_against_a_devnet() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let devnet = DevnetProcess::start(&tmp.path().join("devnet"));
    let blueprint = format!("echo={}", devnet.manifest["blueprint"]["id"].as_u64().expect("blueprint id"));
    let node_dir = tmp.path().join("node");
    fs::create_dir_all(&node_dir).expect("node dir");
    let config = node_dir.join("node.toml");
    write_node_toml(&config, &devnet, 0, "state", None, "");
    let config_arg = config.to_str().expect("utf-8 path");
    let state = node_dir.join("state");
    let guard_path = state.join("guard.sqlite");
    let vouch = Vouch::new(tmp.path());

    // --- run without a signing database: fails closed, and says what to do ---------------------------------------
    let stderr = vouch.fails(&["node", "run", "--config", config_arg, "--blueprint", &blueprint]);
    assert_contains(&stderr, "error: no signing database at ");
    assert_contains(&stderr, "`vouch node init`");
    assert!(!guard_path.exists(), "a failed start created {}", guard_path.display());

    // --- init, twice -----------------------------------------------------------------------------------------------
    let first = vouch.json(&["node", "init", "--config", config_arg]);
    assert_eq!(first["created"], true, "{first}");
    assert_eq!(first["guard"], guard_path.to_str().expect("utf-8"));
    assert_eq!(first["records"], 0);
    assert_eq!(first["chainId"], 31337);
    let operator = first["operator"].as_str().expect("operator").to_owned();
    assert_eq!(operator, devnet.manifest["operators"][0]["account"]["address"].as_str().expect("operator 0"));
    assert!(guard_path.is_file());
    let again = vouch.ok(&["node", "init", "--config", config_arg]);
    assert_contains(&again, &format!("signing database already initialised: {}", guard_path.display()));
    assert_contains(&again, "0 records");

    // --- run: serves /health and /metrics, stops on SIGTERM with exit 0 --------------------------------------------
    let mut node = RunningNode::start(&config, &node_dir.join("node.log"), &blueprint);
    let summary = node.wait_serving();
    assert_eq!(summary["operator"], operator.as_str());
    assert_eq!(summary["guard"], guard_path.to_str().expect("utf-8"));
    let metrics = summary["metrics"].as_str().expect("metrics url").trim_start_matches("http://").to_owned();
    let started = Instant::now();
    loop {
        match http_get(&metrics, "/health") {
            Some((200, body)) => {
                assert_eq!(body.trim(), "ok");
                break;
            }
            other => assert!(
                started.elapsed() < Duration::from_secs(30),
                "/health did not answer 200 within 30 s (last: {other:?}):\n{}",
                node.logs()
            ),
        }
        thread::sleep(Duration::from_millis(200));
    }
    let (code, body) = http_get(&metrics, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200);
    assert!(body.contains("# EOF"), "{body}");
    assert!(sigterm(node.child.id()));
    let status = wait_for_exit(&mut node.child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("vouch node run did not stop within 30 s of SIGTERM:\n{}", node.logs()));
    assert!(status.success(), "vouch node run exited with {status}:\n{}", node.logs());
    assert_contains(&node.logs(), "SIGTERM: shutting down");
    drop(node);

    // --- a signed record, as the node records one (the guard is the only way it signs) ----------------------------
    let book = AddressBook::load(devnet.datadir.join("addresses.json")).expect("address book");
    let binding = ChainBinding::new(book.chain_id, book.contracts.protocol);
    let secret = unlock_bls(&devnet.datadir, "operator-0");
    let record = ResultRef {
        service_id: ServiceId(1),
        call_id: CallId::from(99u64),
        inputs_hash: B256::repeat_byte(0x11),
        result_hash: B256::repeat_byte(0x22),
    };
    {
        let guard = SigningGuard::open(&guard_path, OpenMode::Existing, binding, &secret.public_key()).expect("opens");
        guard.sign(&secret, &[record]).expect("signs");
    }

    // --- export ----------------------------------------------------------------------------------------------------
    let export = node_dir.join("export.json");
    let export_arg = export.to_str().expect("utf-8");
    let exported = vouch.json(&["node", "guard", "export", "--config", config_arg, "--output", export_arg]);
    assert_eq!(exported["records"], 1, "{exported}");
    let file: Value = serde_json::from_str(&fs::read_to_string(&export).expect("export file")).expect("JSON");
    assert_eq!(file["version"], 1);
    assert_eq!(file["chainId"], 31337);
    assert_eq!(file["records"][0]["serviceId"], 1);
    assert_eq!(file["records"][0]["resultHash"], format!("{}", record.result_hash));
    assert_contains(
        &vouch.fails(&["node", "guard", "export", "--config", config_arg, "--output", export_arg]),
        "already exists: an export never overwrites a file",
    );

    // --- import into a fresh data directory (--data-dir for init, VOUCH_NODE_DATA_DIR for import) ------------------
    let moved = node_dir.join("moved");
    let moved_arg = moved.to_str().expect("utf-8");
    let stderr = vouch.fails(&["node", "guard", "import", "--config", config_arg, "--data-dir", moved_arg, export_arg]);
    assert_contains(&stderr, "no signing database at ");
    let init = vouch.json(&["node", "init", "--config", config_arg, "--data-dir", moved_arg]);
    assert_eq!(init["guard"], moved.join("guard.sqlite").to_str().expect("utf-8"));
    let moved_env = Vouch::new(tmp.path()).env("VOUCH_NODE_DATA_DIR", moved_arg);
    let imported = moved_env.ok(&["node", "guard", "import", "--config", config_arg, export_arg]);
    assert_contains(
        &imported,
        &format!("imported 1 record into {} (0 already there)", moved.join("guard.sqlite").display()),
    );
    let again = moved_env.json(&["node", "guard", "import", "--config", config_arg, export_arg]);
    assert_eq!((again["imported"].as_u64(), again["identical"].as_u64()), (Some(0), Some(1)), "{again}");
    let re_export = node_dir.join("re-export.json");
    moved_env.ok(&["node", "guard", "export", "--config", config_arg, "--output", re_export.to_str().expect("utf-8")]);
    let back: Value = serde_json::from_str(&fs::read_to_string(&re_export).expect("re-export")).expect("JSON");
    assert_eq!(back["records"], file["records"]);

    // --- a conflicting record: refused, nothing imported, the call named -------------------------------------------
    let mut conflicting = file.clone();
    conflicting["records"][0]["resultHash"] = Value::String(format!("{}", B256::repeat_byte(0x33)));
    conflicting["records"].as_array_mut().expect("records").push(serde_json::json!({
        "serviceId": 1, "callId": "0x64", "inputsHash": format!("{}", B256::repeat_byte(1)),
        "resultHash": format!("{}", B256::repeat_byte(2)), "signature": file["records"][0]["signature"],
        "signedAt": 1
    }));
    let conflict = node_dir.join("conflict.json");
    fs::write(&conflict, conflicting.to_string()).expect("writes");
    let stderr =
        moved_env.fails(&["node", "guard", "import", "--config", config_arg, conflict.to_str().expect("utf-8")]);
    assert_contains(&stderr, "import refused, nothing was imported: service 1 call 99: result ");
    let after = moved_env.json(&["node", "guard", "import", "--config", config_arg, export_arg]);
    assert_eq!(after["identical"], 1, "call 100 of the refused file was not imported: {after}");
    let guard = SigningGuard::open(&moved.join("guard.sqlite"), OpenMode::Existing, binding, &secret.public_key())
        .expect("opens");
    assert_eq!(guard.get(ServiceId(1), CallId::from(100u64)).expect("reads"), None);
    assert_eq!(guard.get(ServiceId(1), CallId::from(99u64)).expect("reads").map(|r| r.entry), Some(record));
}

/// DESIGN.md §4.2 through the CLI: every operator runs `vouch node run`, a customer opens a call with `vouch call`,
/// each node finds it on chain, runs the echo job, signs it through its guard and shares the signature; the rotating
/// submitter settles the certificate.
#[test]
fn three_nodes_run_sign_and_settle_an_on_chain_call() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let devnet = DevnetProcess::start(&tmp.path().join("devnet"));
    let blueprint = format!("echo={}", devnet.manifest["blueprint"]["id"].as_u64().expect("blueprint id"));
    let vouch = Vouch::new(&devnet.datadir);
    let mut nodes = Vec::new();
    let mut configs = Vec::new();
    for i in 0..3 {
        let config = tmp.path().join(format!("node-{i}.toml"));
        // `announce = "auto"`: each node publishes its API address on chain at start, so the peers reach it.
        let state = format!("state-{i}");
        write_node_toml(
            &config,
            &devnet,
            i,
            &state,
            Some("auto"),
            "
[submitter]
turn_secs = 2
",
        );
        vouch.ok(&["node", "init", "--config", config.to_str().expect("utf-8")]);
        nodes.push(RunningNode::start(&config, &tmp.path().join(format!("node-{i}.log")), &blueprint));
        configs.push(config);
    }
    for node in &mut nodes {
        let summary = node.wait_serving();
        assert_eq!(summary["endpoint"], summary["api"], "the node announced its API address: {summary}");
    }

    let call = vouch.json(&["--from", "customer", "call", "1", "0", "--input", r#"{"message":"hi"}"#]);
    let call_id = call["callId"].as_str().expect("call id").to_owned();
    let started = Instant::now();
    let shown = loop {
        let shown = vouch.json(&["call", "show", &call_id]);
        if shown["status"] == "Settled" {
            break shown;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "call {call_id} not settled within 60 s: {shown}\n{}",
            nodes.iter().map(RunningNode::logs).collect::<Vec<_>>().join("\n")
        );
        thread::sleep(Duration::from_millis(300));
    };
    // The echo job returns its inputs, so the result hash is the inputs hash; all three signed.
    assert_eq!(shown["resultHash"], call["inputsHash"]);
    assert_eq!(shown["signerBitmap"], "0x7");

    for node in &mut nodes {
        assert!(sigterm(node.child.id()));
        let status = wait_for_exit(&mut node.child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("a node did not stop within 30 s of SIGTERM:\n{}", node.logs()));
        assert!(status.success(), "a node exited with {status}:\n{}", node.logs());
    }
    // What each node signed is in its guard: export it.
    let export = tmp.path().join("node-0-export.json");
    vouch.ok(&[
        "node",
        "guard",
        "export",
        "--config",
        configs[0].to_str().expect("utf-8"),
        "--output",
        export.to_str().expect("utf-8"),
    ]);
    let file: Value = serde_json::from_str(&fs::read_to_string(&export).expect("export")).expect("JSON");
    assert_eq!(file["records"].as_array().map(Vec::len), Some(1), "{file}");
    assert_eq!(file["records"][0]["resultHash"], call["inputsHash"]);
}

#[test]
fn node_usage_errors_and_the_default_node_config_need_no_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vouch = Vouch::new(dir.path());

    let text = vouch.ok(&["config", "default", "--node"]);
    let parsed: NodeConfig = toml::from_str(&text).expect("the default node config parses");
    assert_eq!(parsed, NodeConfig::default());
    assert!(parsed.metrics.listen.ip().is_loopback() && parsed.api.listen.ip().is_loopback());
    assert_contains(&vouch.ok(&["config", "default"]), "rpc = ");

    // An unknown blueprint name is a usage error that lists the bundled ones.
    let run = vouch.run(&["node", "run", "--config", "node.toml", "--blueprint", "llama=1"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_contains(&run.stderr, "`llama` is not a blueprint bundled in this binary (bundled blueprints: echo)");
    let run = vouch.run(&["node", "run", "--config", "node.toml", "--blueprint", "echo"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_contains(&run.stderr, "expected NAME=ID, e.g. echo=1");

    assert_contains(&vouch.fails(&["node", "run", "--blueprint", "echo=1"]), "pass --config <node.toml>");
    assert_contains(
        &vouch.fails(&["node", "init", "--config", "missing.toml"]),
        "node config file missing.toml does not exist",
    );

    let config = dir.path().join("node.toml");
    let config_arg = config.to_str().expect("utf-8");
    fs::write(&config, "[api]\nlisten_on = \"127.0.0.1:1\"\n").expect("writes");
    assert_contains(&vouch.fails(&["node", "init", "--config", config_arg]), "unknown field `listen_on`");
    // The CLI's own config file is not a node config, and the error says so when VOUCH_CONFIG named it.
    let cli_config = dir.path().join("config.toml");
    fs::write(&cli_config, "rpc = \"http://127.0.0.1:8545\"\n").expect("writes");
    let stderr = Vouch::new(dir.path())
        .env("VOUCH_CONFIG", cli_config.to_str().expect("utf-8"))
        .fails(&["node", "guard", "export", "--output", "x.json"]);
    assert_contains(&stderr, "unknown field `rpc`");
    assert_contains(&stderr, "named by VOUCH_CONFIG");

    fs::write(&config, "data_dir = \"state\"\n").expect("writes");
    for (flag, value, says) in [
        ("--datadir", "elsewhere", "--datadir does not apply to `vouch node`: the node's data directory is `data_dir`"),
        ("--from", "operator", "--from does not apply to `vouch node`: the node's transaction key is"),
    ] {
        let stderr = vouch.fails(&[flag, value, "node", "run", "--config", config_arg, "--blueprint", "echo=1"]);
        assert_contains(&stderr, says);
    }
    let stderr =
        vouch.fails(&["node", "run", "--config", config_arg, "--blueprint", "echo=1", "--blueprint", "echo=1"]);
    assert_contains(&stderr, "blueprint 1 is given twice");
    // Nothing is created when the address book is missing.
    let stderr = vouch.fails(&["node", "guard", "export", "--config", config_arg, "--output", "out.json"]);
    assert_contains(&stderr, "address book ");
    assert!(!dir.path().join("state").exists());
}
