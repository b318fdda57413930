//! `vouch gateway run` and `vouch call --x402` as an operator of a gateway and a customer run them, against a devnet
//! started with `vouch devnet up` and its three operators each running `vouch node run`: a call paid with x402 is
//! answered with a certificate that `vouch verify` accepts, and once the gateway has settled it the customer's vUSD
//! balance has dropped by exactly the price. The gateway's refusals (unknown service, too little stake at risk) are
//! printed exactly, a price above `--max-amount` is refused before anything is signed, and the gateway stops cleanly
//! on SIGTERM. Also the usage errors that need no chain and `vouch config default --gateway`.

use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use vouch_contracts::{
    AddressBook, VouchUSD,
    alloy::{
        primitives::{Address, U256},
        providers::ProviderBuilder,
    },
};
use vouch_gateway::GatewayConfig;

use crate::{
    node::{RunningNode, write_node_toml},
    support::{DevnetProcess, ServingProcess, Vouch, assert_contains, sigterm, vouch_command, wait_for_exit},
};

/// `vouch --json gateway run …` as a child process (with the devnet's data directory, so `--from` names its keys),
/// its stderr (the logs) in a file; killed on drop.
type RunningGateway = ServingProcess;

fn start_gateway(datadir: &Path, args: &[&str], log: &Path) -> RunningGateway {
    eprintln!("$ vouch --json gateway run {} &", args.join(" "));
    let mut command = vouch_command();
    command.env("VOUCH_DATADIR", datadir).args(["--json", "gateway", "run"]).args(args);
    ServingProcess::spawn(command, log, "vouch gateway run", Duration::from_secs(60))
}

/// `who`'s vUSD balance, read from the chain directly (the CLI has no balance command).
fn usd_balance(rpc: &str, book: &AddressBook, who: Address) -> U256 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let provider = ProviderBuilder::new().connect_http(rpc.parse().expect("rpc url"));
        VouchUSD::new(book.contracts.vouch_usd, &provider).balanceOf(who).call().await.expect("balanceOf")
    })
}

fn address(v: &Value) -> Address {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an address: {v}"))
}

#[test]
fn a_call_paid_with_x402_through_vouch_gateway_run_is_certified_and_settled_exactly() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let devnet = DevnetProcess::start(&tmp.path().join("devnet"));
    let blueprint = format!("echo={}", devnet.manifest["blueprint"]["id"].as_u64().expect("blueprint id"));
    let service = devnet.manifest["service"]["id"].as_u64().expect("service id").to_string();
    let job = &devnet.manifest["blueprint"]["jobs"][0];
    let price: U256 =
        job["price"].as_str().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("job 0 in devnet.json: {job}"));
    assert_eq!(job["name"], "echo");
    let customer = address(&devnet.manifest["accounts"]["customer"]["address"]);
    let book = AddressBook::load(devnet.datadir.join("addresses.json")).expect("address book");
    let vouch = Vouch::new(&devnet.datadir);

    let mut nodes = Vec::new();
    for i in 0..3 {
        let config = tmp.path().join(format!("node-{i}.toml"));
        // `announce = "auto"`: each node publishes its API address on chain, so the gateway reaches it.
        write_node_toml(&config, &devnet, i, &format!("state-{i}"), Some("auto"), "");
        vouch.ok(&["node", "init", "--config", config.to_str().expect("utf-8")]);
        nodes.push(RunningNode::start(&config, &tmp.path().join(format!("node-{i}.log")), &blueprint));
    }
    for node in &mut nodes {
        node.wait_serving();
    }
    let node_logs = |nodes: &[RunningNode]| nodes.iter().map(RunningNode::logs).collect::<Vec<_>>().join("\n");

    // The gateway: its own config file (relative data_dir), the developer's key pays the settlement gas.
    let gateway_dir = tmp.path().join("gateway");
    fs::create_dir_all(&gateway_dir).expect("gateway dir");
    let config = gateway_dir.join("gateway.toml");
    fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nrpc_url = \"{}\"\ndata_dir = \"state\"\nmax_batch_delay_ms = 300\n",
            devnet.rpc_url()
        ),
    )
    .expect("writes gateway.toml");
    let mut gateway = start_gateway(
        &devnet.datadir,
        &["--config", config.to_str().expect("utf-8"), "--from", "developer"],
        &gateway_dir.join("gateway.log"),
    );
    let summary = gateway.wait_serving();
    let url = summary["url"].as_str().expect("url").to_owned();
    assert_eq!(summary["publicUrl"], url.as_str());
    assert_eq!(summary["submitter"], devnet.manifest["accounts"]["developer"]["address"]);
    assert_eq!(summary["requestLog"], gateway_dir.join("state/gateway.sqlite").to_str().expect("utf-8"));
    assert!(gateway_dir.join("state/gateway.sqlite").is_file());

    let before = usd_balance(devnet.rpc_url(), &book, customer);
    let input = r#"{"message":"paid with x402"}"#;

    // --- a price above --max-amount: refused before anything is signed or paid ------------------------------------
    let stderr = vouch.fails(&[
        "--from",
        "customer",
        "call",
        "--x402",
        &url,
        &service,
        "0",
        "--input",
        input,
        "--max-amount",
        "0.001",
    ]);
    assert_contains(&stderr, "the gateway asks 0.01 vUSD for job 0 of service 1, more than --max-amount 0.001 vUSD");
    assert_contains(&stderr, "nothing was signed or paid; pass --max-amount 0.01 vUSD to pay it");

    // --- the gateway's refusals, quoted exactly ----------------------------------------------------------------------
    let stderr = vouch.fails(&["--from", "customer", "call", "--x402", &url, "99", "0", "--input", input]);
    assert_contains(&stderr, "error: the gateway answered 404 unknown_service: unknown service 99");
    let stderr = vouch.fails(&[
        "--from",
        "customer",
        "call",
        "--x402",
        &url,
        &service,
        "0",
        "--input",
        input,
        "--min-stake",
        "1000000000 VST",
    ]);
    assert_contains(&stderr, "error: the gateway answered 412 insufficient_stake: service 1 has ");

    // --- a paid call (--json: the whole answer) ------------------------------------------------------------------------
    let cert_path = tmp.path().join("cert.json");
    let cert_arg = cert_path.to_str().expect("utf-8");
    let answer = vouch.json(&[
        "--from",
        "customer",
        "call",
        "--x402",
        &url,
        &service,
        "0",
        "--input",
        input,
        "--certificate",
        cert_arg,
        "--min-stake",
        "1 VST",
    ]);
    assert_eq!(answer["output"], serde_json::json!({"message": "paid with x402"}), "{answer}");
    let call_id = answer["callId"].as_str().expect("callId").to_owned();
    assert_eq!(answer["certificate"]["callId"].as_str(), Some(call_id.as_str()));
    assert_eq!(answer["payment"]["amount"]["units"], price.to_string());
    assert_eq!(answer["payment"]["payer"], devnet.manifest["accounts"]["customer"]["address"]);
    assert_eq!(answer["payment"]["settlement"]["success"], true, "{answer}");
    assert_eq!(answer["certificateFile"], cert_arg);
    let signers = answer["signers"].as_array().expect("signers").len();
    assert!(signers >= 2, "{answer}");
    let written: Value =
        serde_json::from_str(&fs::read_to_string(&cert_path).expect("certificate file")).expect("JSON");
    assert_eq!(written, answer["certificate"]);

    // `vouch verify` accepts the certificate (the call is not on chain per call: noted, not failed).
    let verified = vouch.json(&["verify", cert_arg]);
    assert_eq!(verified["valid"], true, "{verified}");
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<U256>().ok()).unwrap_or_else(|| panic!("{v}"));
    assert_eq!(number(&verified["callId"]), number(&answer["callId"]));
    assert_eq!(verified["signers"].as_array().map(Vec::len), Some(signers));
    assert_contains(&vouch.ok(&["verify", cert_arg]), "valid: ");

    // --- a second paid call in human form, asking for a 202 and polling (--async): the summary -----------------------
    let text = vouch.ok(&[
        "--from",
        "customer",
        "call",
        "--x402",
        &url,
        &service,
        "0",
        "--input",
        r#"{"message":"again"}"#,
        "--async",
    ]);
    assert_contains(&text, ": job 0 of service 1 answered");
    assert_contains(&text, r#"  output         {"message":"again"}"#);
    assert_contains(&text, "  signers        slots ");
    assert_contains(&text, " VST behind result 0x");
    assert_contains(&text, &format!("  price          0.01 vUSD from {customer}, collected with the certificate"));
    assert_contains(&text, "  certificate    not saved (pass --certificate FILE to keep it)");

    // --- settlement: the customer paid exactly two prices, no more ---------------------------------------------------
    let expected = before - price * U256::from(2u64);
    let started = Instant::now();
    loop {
        let now = usd_balance(devnet.rpc_url(), &book, customer);
        if now == expected {
            break;
        }
        assert!(now >= expected, "the customer paid more than two prices: {before} → {now}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the gateway did not settle both calls within 60 s (balance {before} → {now}, expected {expected}):\n{}\n{}",
            gateway.logs(),
            node_logs(&nodes)
        );
        thread::sleep(Duration::from_millis(300));
    }
    // Nothing more is collected later (the refused calls were never charged, a settled one is never charged twice).
    thread::sleep(Duration::from_secs(2));
    assert_eq!(usd_balance(devnet.rpc_url(), &book, customer), expected);

    // --- SIGTERM: a clean stop ----------------------------------------------------------------------------------------
    assert!(sigterm(gateway.child.id()));
    let status = wait_for_exit(&mut gateway.child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("vouch gateway run did not stop within 30 s of SIGTERM:\n{}", gateway.logs()));
    assert!(status.success(), "vouch gateway run exited with {status}:\n{}", gateway.logs());
    assert_contains(&gateway.logs(), "SIGTERM: shutting down");
    assert_contains(&gateway.logs(), "gateway stopped");
}

#[test]
fn gateway_usage_errors_and_the_default_gateway_config_need_no_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vouch = Vouch::new(dir.path());

    let text = vouch.ok(&["config", "default", "--gateway"]);
    let parsed: GatewayConfig = toml::from_str(&text).expect("the default gateway config parses");
    assert_eq!(parsed, GatewayConfig::default());
    assert!(parsed.listen.ip().is_loopback());
    let run = vouch.run(&["config", "default", "--gateway", "--node"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);

    assert_contains(
        &vouch.fails(&["gateway", "run", "--config", "missing.toml"]),
        "gateway config file missing.toml does not exist (--config)",
    );
    let config = dir.path().join("gateway.toml");
    let config_arg = config.to_str().expect("utf-8");
    fs::write(&config, "listen_on = \"127.0.0.1:1\"\n").expect("writes");
    assert_contains(&vouch.fails(&["gateway", "run", "--config", config_arg]), "unknown field `listen_on`");
    // The CLI's own config file is not a gateway config, and the error says so when VOUCH_CONFIG named it.
    let cli_config = dir.path().join("config.toml");
    fs::write(&cli_config, "rpc = \"http://127.0.0.1:8545\"\n").expect("writes");
    let stderr =
        Vouch::new(dir.path()).env("VOUCH_CONFIG", cli_config.to_str().expect("utf-8")).fails(&["gateway", "run"]);
    assert_contains(&stderr, "unknown field `rpc`");
    assert_contains(&stderr, "named by VOUCH_CONFIG");
    fs::write(&config, "").expect("writes");
    let stderr = vouch.fails(&["gateway", "run", "--config", config_arg, "--public-url", "gateway.example.com"]);
    assert_contains(&stderr, "public URL `gateway.example.com` must be an http:// or https:// URL");
    // No key, no gateway: nothing else is started.
    let stderr = vouch.fails(&["gateway", "run", "--config", config_arg]);
    assert_contains(&stderr, "no transaction key in ");
    assert!(!dir.path().join("vouch-gateway").exists());

    // `vouch call --x402`: its options need --x402, and the URL is checked before any key or chain.
    let run = vouch.run(&["call", "1", "0", "--input", "{}", "--max-amount", "1"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_contains(&run.stderr, "--x402 <GATEWAY_URL>");
    assert_contains(
        &vouch.fails(&["call", "--x402", "https://gateway.example.com", "1", "0", "--input", "{}"]),
        "this vouch speaks plain HTTP only",
    );
    assert_contains(
        &vouch.fails(&["call", "--x402", "gateway.example.com", "1", "0", "--input", "{}"]),
        "expected the gateway's base URL, e.g. http://127.0.0.1:8402",
    );
    assert_contains(
        &vouch.fails(&["call", "--x402", "http://127.0.0.1:9", "1", "0", "--input", "{not json"]),
        "--input is not valid JSON",
    );
}
