//! The whole protocol through the `vouch` binary against a real anvil: keys → three operators register → stake →
//! delegate → blueprint from a manifest → service request and approvals → a paid call → certificates built from the
//! operators' BLS keys, verified (valid and each kind of invalid) → settlement → `call show` and `operator status`
//! checked to the unit → claims → an equivocation report → undelegation.
//!
//! Money, with a 10 vUSD call, a 10 % developer fee and the deployment's 5 % protocol fee: 8.5 vUSD go to the
//! signers pro rata to stake (op0 2000 VST of 4000 → 4.25 vUSD; op1 and op2 2.125 vUSD each). op0 keeps a 10 %
//! commission (0.425 vUSD) and its pool's 3.825 vUSD are shared by 1.5e24 own and 5e23 delegated shares (2.86875 and
//! 0.95625 vUSD); op1 keeps 5 % (0.10625 vUSD, 2.01875 vUSD to its pool); op2 0 %.

use std::{fs, path::Path};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vouch_contracts::{
    DeployConfig, StakeToken, VouchUSD,
    alloy::{
        primitives::{Address, B256, U256, keccak256},
        providers::Provider,
    },
    deploy,
};
use vouch_crypto::{Keystore, SecretKey, Signature, aggregate_signatures, keystore::read_password_file};
use vouch_primitives::{CallId, ChainBinding, ResultRef, ServiceId, result_digest};

use crate::support::{Anvil, DEPLOYER_KEY, Vouch, assert_contains};

fn address(v: &Value) -> Address {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an address: {v}"))
}

fn units(v: &Value) -> U256 {
    v["units"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an amount: {v}"))
}

fn vst(whole: u64) -> U256 {
    U256::from(whole) * U256::from(10u64).pow(U256::from(18u64))
}

fn unlock_bls(datadir: &Path, name: &str) -> SecretKey {
    let keystore = Keystore::read_file(&datadir.join(format!("keys/{name}.bls.json"))).expect("keystore");
    let password = read_password_file(&datadir.join(format!("keys/{name}.bls.password"))).expect("password");
    keystore.decrypt(&password).expect("decrypts")
}

struct CertificateParts<'a> {
    chain_id: u64,
    protocol: Address,
    call_id: U256,
    inputs_hash: B256,
    result_hash: B256,
    keys: &'a [SecretKey],
}

impl CertificateParts<'_> {
    fn digest(&self) -> B256 {
        result_digest(
            &ChainBinding::new(self.chain_id, self.protocol),
            &ResultRef {
                service_id: ServiceId(1),
                call_id: CallId(self.call_id),
                inputs_hash: self.inputs_hash,
                result_hash: self.result_hash,
            },
        )
    }

    /// A certificate signed by `signing` slots, claiming `bitmap`.
    fn certificate(&self, signing: &[usize], bitmap: u64) -> Value {
        let digest = self.digest();
        let partials: Vec<Signature> = signing.iter().map(|s| self.keys[*s].sign(&digest)).collect();
        let aggregate = aggregate_signatures(&partials).expect("aggregates");
        json!({
            "version": 1,
            "chainId": self.chain_id,
            "protocol": self.protocol,
            "serviceId": 1,
            "callId": self.call_id.to_string(),
            "inputsHash": self.inputs_hash,
            "resultHash": self.result_hash,
            "signerBitmap": format!("{bitmap:#x}"),
            "signature": format!("0x{}", vouch_contracts::alloy::hex::encode(aggregate.to_eip2537())),
        })
    }
}

#[tokio::test]
async fn the_whole_protocol_through_the_cli() {
    let anvil = Anvil::start();
    let deployer = anvil.provider(DEPLOYER_KEY);
    let book = deploy(&deployer, &DeployConfig::default()).await.expect("deploys");
    let c = book.contracts;
    let dir = tempfile::tempdir().expect("tempdir");
    let datadir = dir.path().join("vouch");
    book.save(datadir.join("addresses.json")).expect("saves the address book");
    fs::write(datadir.join("config.toml"), format!("rpc = \"{}\"\n", anvil.url)).expect("writes config.toml");
    let vouch = Vouch::new(&datadir);
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();

    // --- keys ---------------------------------------------------------------------------------------------------
    let mut ops = Vec::new();
    for name in ["op0", "op1", "op2"] {
        let created = vouch.json(&["keys", "new", "--name", name]);
        assert_eq!(created["created"][0]["kind"], "tx");
        assert_eq!(created["created"][1]["kind"], "bls");
        ops.push(address(&created["created"][0]["address"]));
    }
    let customer =
        address(&vouch.json(&["keys", "new", "--name", "customer", "--kind", "tx"])["created"][0]["address"]);
    let delegator =
        address(&vouch.json(&["keys", "new", "--name", "delegator", "--kind", "tx"])["created"][0]["address"]);
    let raw = dir.path().join("deployer.key");
    fs::write(&raw, DEPLOYER_KEY).expect("writes");
    let dev = address(
        &vouch.json(&["keys", "import", &path(&raw), "--kind", "tx", "--name", "dev"])["imported"][0]["address"],
    );
    assert_eq!(dev, book.treasury, "the imported key is the deployer");
    assert_eq!(vouch.json(&["keys", "list"])["keys"].as_array().map(Vec::len), Some(9));
    let text = vouch.ok(&["keys", "list"]);
    assert_contains(
        &text,
        &format!("op0: transaction key (ECDSA secp256k1: signs and pays for transactions)\n  address     {}", ops[0]),
    );

    // Gas money and tokens (the devnet will do this; here the deployer, who owns the dev tokens, mints).
    let vst_token = StakeToken::new(c.stake_token, &deployer);
    let usd = VouchUSD::new(c.vouch_usd, &deployer);
    for account in ops.iter().chain([&customer, &delegator]) {
        let _: () = deployer
            .raw_request("anvil_setBalance".into(), (account, U256::from(10u64).pow(U256::from(19u64))))
            .await
            .expect("funds with ETH");
    }
    for (account, amount) in ops.iter().map(|o| (*o, vst(2000))).chain([(delegator, vst(500))]) {
        vst_token.mint(account, amount).send().await.expect("mints").get_receipt().await.expect("mined");
    }
    usd.mint(customer, U256::from(100_000_000u64)).send().await.expect("mints").get_receipt().await.expect("mined");

    // --- operators ------------------------------------------------------------------------------------------------
    let stderr = vouch.fails(&["--from", "customer", "operator", "stake", "1 VST"]);
    assert_contains(&stderr, "operator not registered: run `vouch operator register`");
    for (i, commission) in ["10%", "5%", "0%"].iter().enumerate() {
        let name = format!("op{i}");
        let endpoint = format!("http://127.0.0.1:{}", 9000 + i);
        let registered = vouch.json(&[
            "--from",
            &name,
            "operator",
            "register",
            "--endpoint",
            &endpoint,
            "--stake",
            "1000 VST",
            "--commission",
            commission,
        ]);
        assert_eq!(address(&registered["operator"]), ops[i]);
        assert_eq!(registered["shares"], "1000000000000000000000000");
    }
    let staked = vouch.json(&["--from", "op0", "operator", "stake", "500 VST"]);
    assert_eq!(staked["shares"], "500000000000000000000000");
    assert_eq!(units(&staked["selfStake"]), vst(1500));

    // --- delegation -------------------------------------------------------------------------------------------------
    assert_contains(
        &vouch.fails(&["--from", "delegator", "delegate", &customer.to_string(), "1 VST"]),
        "is not registered: it must run `vouch operator register` first",
    );
    assert_contains(
        &vouch.fails(&["--from", "delegator", "delegate", "op0", "0.0000000000000000001 VST"]),
        "has 19 decimal places, but VST has 18",
    );
    assert_contains(
        &vouch.fails(&["--from", "delegator", "delegate", "op0", "600 VST"]),
        &format!("insufficient VST balance: {delegator} holds 500 VST, needs 600 VST"),
    );
    let delegated = vouch.json(&["--from", "delegator", "delegate", "op0", "500 VST"]);
    assert_eq!(delegated["shares"], "500000000000000000000000");

    // --- blueprint ------------------------------------------------------------------------------------------------
    let metadata = dir.path().join("echo.metadata.json");
    fs::write(&metadata, r#"{"name":"echo","version":"1.0.0"}"#).expect("writes");
    let manifest = dir.path().join("echo.toml");
    let manifest_text = r#"
version = 1

[metadata]
uri = "https://example.com/echo.metadata.json"
file = "echo.metadata.json"
digest = "sha256"

[policy]
quorum = "66.67%"
min_signers = 2
developer_fee = "10%"
dispute_window = "1d"
jail_after_misses = 3

[policy.slashing]
equivocation = "10%"
deviation = "5%"
missed_deadline = "1%"
payer_share = "25%"
reporter_share = "25%"

[[jobs]]
name = "echo"
price = "10 vUSD"
deadline = "1h"
"#;
    fs::write(&manifest, manifest_text.replace("\"1h\"", "\"10s\"")).expect("writes");
    assert_contains(
        &vouch.fails(&["--from", "dev", "blueprint", "deploy", &path(&manifest)]),
        "jobs[0].deadline = \"10s\": a job deadline is between 1m and 7d",
    );
    fs::write(&manifest, manifest_text).expect("writes");
    let dry = vouch.json(&["blueprint", "deploy", "--dry-run", &path(&manifest)]);
    assert_eq!(dry["valid"], true);
    let deployed = vouch.json(&["--from", "dev", "blueprint", "deploy", &path(&manifest)]);
    assert_eq!(deployed["blueprintId"], 1);
    let sha = B256::from_slice(&Sha256::digest(fs::read(&metadata).expect("reads")));
    let shown = vouch.json(&["blueprint", "show", "1"]);
    assert_eq!(shown["metadataHash"], json!(sha));
    assert_eq!(shown["policy"]["quorumBps"], 6667);
    assert_eq!(units(&shown["jobs"][0]["price"]), U256::from(10_000_000u64));
    let text = vouch.ok(&["blueprint", "show", "1"]);
    assert_contains(&text, &format!("blueprint 1, owner {dev}"));
    assert_contains(&text, "  quorum         66.67% of stake, at least 2 signers\n");
    assert_contains(&text, "  dispute window 1d\n");
    assert_contains(&text, "  job 0          10 vUSD per call, deadline 1h");
    assert_contains(&vouch.fails(&["blueprint", "show", "7"]), "unknown blueprint 7: the protocol has 1 blueprint");

    // --- service ----------------------------------------------------------------------------------------------------
    let requested = vouch.json(&[
        "--from",
        "customer",
        "service",
        "request",
        "1",
        "--operator",
        "op0",
        "--operator",
        "op1",
        "--operator",
        "op2",
    ]);
    assert_eq!(requested["serviceId"], 1);
    assert_contains(
        &vouch.fails(&["--from", "customer", "call", "1", "0", "--input", "{}"]),
        "service 1 is Requested, not Active",
    );
    for (i, name) in ["op0", "op1", "op2"].iter().enumerate() {
        let approved = vouch.json(&["--from", name, "service", "approve", "1"]);
        assert_eq!(approved["approvals"], i + 1);
        assert_eq!(approved["active"], i == 2);
    }
    let service = vouch.json(&["service", "show", "1"]);
    assert_eq!(service["status"], "Active");
    assert_eq!(units(&service["totalStake"]), vst(4000));
    let text = vouch.ok(&["service", "show", "1"]);
    assert_contains(&text, "service 1: Active");
    assert_contains(&text, &format!("slot 0  {}  approved, stake 2000 VST (weight now 2000 VST, 50%)", ops[0]));
    assert_contains(&vouch.fails(&["service", "show", "99"]), "unknown service 99: the protocol has 1 service");

    // --- call -------------------------------------------------------------------------------------------------------
    assert_contains(
        &vouch.fails(&["--from", "delegator", "call", "1", "0", "--input", r#"{"text":"hello"}"#]),
        &format!("insufficient vUSD balance: {delegator} holds 0 vUSD, needs 10 vUSD"),
    );
    assert_contains(
        &vouch.fails(&["--from", "customer", "call", "1", "0", "--input", r#"{"text":"#]),
        "--input is not valid JSON: EOF while parsing",
    );
    assert_contains(&vouch.fails(&["--from", "customer", "call", "1", "4", "--input", "{}"]), "job 4 does not exist");
    let input = r#"{"text":"hello"}"#;
    let call = vouch.json(&["--from", "customer", "call", "1", "0", "--input", input]);
    assert_eq!(call["callId"], "1");
    assert_eq!(units(&call["payment"]), U256::from(10_000_000u64));
    let inputs_hash = keccak256(input.as_bytes());
    assert_eq!(call["inputsHash"], json!(inputs_hash));

    // --- certificates ---------------------------------------------------------------------------------------------
    let keys: Vec<SecretKey> = ["op0", "op1", "op2"].iter().map(|n| unlock_bls(&datadir, n)).collect();
    let parts = CertificateParts {
        chain_id: book.chain_id,
        protocol: c.protocol,
        call_id: U256::from(1),
        inputs_hash,
        result_hash: keccak256(br#"{"echo":"hello"}"#),
        keys: &keys,
    };
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        fs::write(&p, format!("{v:#}")).expect("writes");
        path(&p)
    };
    let digest = parts.digest();
    let quorum = write("quorum.json", &parts.certificate(&[1, 2], 0b110));
    assert_contains(
        &vouch.fails(&["verify", &quorum]),
        "quorum: signers hold 50% of stake (2000 VST of 4000 VST), blueprint needs 66.67%",
    );
    let bit = write("bit.json", &parts.certificate(&[0, 1], 0b1011));
    assert_contains(&vouch.fails(&["verify", &bit]), "signer bitmap has bit 3 but the service has 3 operators");
    let forged = write("forged.json", &parts.certificate(&[0, 1], 0b101));
    assert_contains(
        &vouch.fails(&["verify", &forged]),
        &format!("aggregate signature does not verify for signers 0,2 over digest {digest}"),
    );
    let few = write("few.json", &parts.certificate(&[0], 0b1));
    assert_contains(&vouch.fails(&["verify", &few]), "1 signer (slot 0), but blueprint 1 needs at least 2");
    let mut other_inputs = parts.certificate(&[0, 1, 2], 0b111);
    other_inputs["inputsHash"] = json!(B256::repeat_byte(7));
    let other_inputs = write("inputs.json", &other_inputs);
    assert_contains(&vouch.fails(&["verify", &other_inputs]), "differs from call 1's on-chain inputs hash");

    let cert = write("cert.json", &parts.certificate(&[0, 1, 2], 0b111));
    let verified = vouch.json(&["verify", &cert]);
    assert_eq!(verified["valid"], true, "{verified:#}");
    assert_eq!(verified["signers"], json!([0, 1, 2]));
    assert_eq!(units(&verified["stakeAtRisk"]), vst(4000));
    assert_eq!(verified["digest"], json!(digest));
    let text = vouch.ok(&["verify", &cert]);
    assert_contains(&text, "✓ quorum: signers hold 100% of stake (4000 VST of 4000 VST), blueprint needs 66.67%");
    assert_contains(&text, &format!("✓ aggregate signature of signers 0,1,2 verifies over digest {digest}"));

    assert_contains(&vouch.fails(&["--from", "customer", "call", "settle", &quorum]), "is invalid: quorum");
    let settled = vouch.json(&["--from", "customer", "call", "settle", &cert]);
    assert_eq!(settled["signers"], json!([0, 1, 2]));
    assert_contains(&vouch.fails(&["--from", "customer", "call", "settle", &cert]), "call 1 is already settled");

    // --- call show, operator status: to the unit --------------------------------------------------------------------
    let shown = vouch.json(&["call", "show", "1"]);
    assert_eq!(shown["status"], "Settled");
    assert_eq!(address(&shown["payer"]), customer);
    assert_eq!(shown["payment"], json!({"units": "10000000", "display": "10 vUSD"}));
    assert_eq!(shown["resultHash"], json!(parts.result_hash));
    assert_eq!(shown["signerBitmap"], "0x7");
    let signers: Vec<Address> =
        shown["signers"].as_array().expect("signers").iter().map(|s| address(&s["operator"])).collect();
    assert_eq!(signers, ops);
    let text = vouch.ok(&["call", "show", "1"]);
    assert_contains(&text, "call 1: Settled");
    assert_contains(&text, "payment       10 vUSD");
    assert_contains(&text, "signers       slots 0,1,2 of 3");

    let status = vouch.json(&["operator", "status", "op0"]);
    assert_eq!(status["status"], "registered");
    assert_eq!(status["endpoint"], "http://127.0.0.1:9000");
    assert_eq!(status["activeStake"], json!({"units": vst(2000).to_string(), "display": "2000 VST"}));
    assert_eq!(units(&status["slashableStake"]), vst(2000));
    assert_eq!(units(&status["selfStake"]), vst(1500));
    assert_eq!(
        status["shares"],
        json!({"total": "2000000000000000000000000", "own": "1500000000000000000000000", "queued": "0"})
    );
    assert_eq!(status["commissionBps"], 1000);
    assert_eq!(status["claimableFees"], json!({"units": "425000", "display": "0.425 vUSD"}));
    assert_eq!(status["pendingRewards"], json!({"units": "2868750", "display": "2.86875 vUSD"}));
    assert_eq!(status["jailed"], false);
    assert!(status["blsPublicKey"].as_str().is_some_and(|k| k.len() == 98));
    let op1 = vouch.json(&["operator", "status", &ops[1].to_string()]);
    assert_eq!(units(&op1["claimableFees"]), U256::from(106_250u64));
    assert_eq!(units(&op1["pendingRewards"]), U256::from(2_018_750u64));
    let text = vouch.ok(&["operator", "status", "op0"]);
    assert_contains(&text, "stake         2000 VST active, 2000 VST slashable, 1500 VST self-stake");
    assert_contains(&text, "fees          0.425 vUSD claimable");

    let proposed = vouch.json(&["--from", "op0", "operator", "set-commission", "8%"]);
    assert_eq!(proposed["proposedBps"], 800);
    let status = vouch.json(&["--from", "op0", "operator", "status"]);
    assert_eq!(status["pendingCommission"]["bps"], 800);
    assert_contains(
        &vouch.fails(&["--from", "op0", "operator", "set-commission", "--apply"]),
        "the change to 8% can be applied from",
    );

    // --- claims -----------------------------------------------------------------------------------------------------
    let preview = vouch.json(&["--from", "op0", "claim", "--dry-run"]);
    assert_eq!(preview["claims"].as_array().map(Vec::len), Some(2));
    let claimed = vouch.json(&["--from", "op0", "claim"]);
    let amounts: Vec<(String, U256)> = claimed["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .map(|c| (c["kind"].as_str().unwrap_or_default().to_owned(), units(&c["amount"])))
        .collect();
    assert_eq!(amounts, [("protocol".into(), U256::from(425_000u64)), ("rewards".into(), U256::from(2_868_750u64))]);
    assert_eq!(usd.balanceOf(ops[0]).call().await.expect("balance"), U256::from(3_293_750u64));
    assert_contains(&vouch.ok(&["--from", "op0", "claim"]), &format!("nothing to claim for {}", ops[0]));
    let claimed = vouch.json(&["--from", "delegator", "claim"]);
    assert_eq!(units(&claimed["claims"][0]["amount"]), U256::from(956_250u64));
    let claimed = vouch.json(&["--from", "dev", "claim"]);
    assert_eq!(units(&claimed["claims"][0]["amount"]), U256::from(1_000_000u64 + 500_000), "developer fee + treasury");

    // --- equivocation -----------------------------------------------------------------------------------------------
    let other = keccak256(br#"{"echo":"goodbye"}"#);
    let statement = |result_hash: B256| {
        let digest = result_digest(
            &ChainBinding::new(book.chain_id, c.protocol),
            &ResultRef { service_id: ServiceId(1), call_id: CallId::from(1), inputs_hash, result_hash },
        );
        json!({
            "inputsHash": inputs_hash, "resultHash": result_hash,
            "signature": format!("0x{}", vouch_contracts::alloy::hex::encode(keys[2].sign(&digest).to_compressed())),
        })
    };
    let evidence = write(
        "evidence.json",
        &json!({
            "version": 1, "fault": "equivocation", "chainId": book.chain_id, "protocol": c.protocol,
            "serviceId": 1, "callId": 1, "operator": ops[2], "slot": 2,
            "statements": [statement(parts.result_hash), statement(other)],
        }),
    );
    let mut wrong_slot: Value = serde_json::from_str(&fs::read_to_string(&evidence).expect("reads")).expect("json");
    wrong_slot["slot"] = json!(1);
    let wrong_slot = write("wrong-slot.json", &wrong_slot);
    assert_contains(
        &vouch.fails(&["--from", "customer", "slash", "report", "equivocation", "--evidence", &wrong_slot]),
        &format!("says slot 1, but {} is at slot 2 of service 1", ops[2]),
    );
    let slashed = vouch.json(&["--from", "customer", "slash", "report", "equivocation", "--evidence", &evidence]);
    assert_eq!(units(&slashed["slashed"]), vst(100), "10% of op2's 1000 VST");
    assert_eq!(units(&slashed["toPayer"]), vst(25));
    assert_eq!(units(&slashed["toReporter"]), vst(25));
    assert_eq!(units(&slashed["burned"]), vst(50));
    assert_contains(
        &vouch.fails(&["--from", "customer", "slash", "report", "equivocation", "--evidence", &evidence]),
        "was already reported",
    );
    let claimed = vouch.json(&["--from", "customer", "claim"]);
    assert_eq!(claimed["claims"][0]["kind"], "slashed");
    assert_eq!(claimed["claims"][0]["amount"], json!({"units": vst(50).to_string(), "display": "50 VST"}));

    // --- undelegate, withdraw -----------------------------------------------------------------------------------
    let queued = vouch.json(&["--from", "delegator", "undelegate", "op0", "all"]);
    assert_eq!(queued["shares"], "500000000000000000000000");
    assert_eq!(units(&queued["value"]), vst(500));
    let pending = vouch.json(&["--from", "delegator", "operator", "withdraw"]);
    assert_eq!(pending["withdrawn"], json!([]));
    assert_eq!(pending["pending"][0]["requestId"], "1");
    assert_contains(
        &vouch.fails(&["--from", "delegator", "operator", "withdraw", "1"]),
        "withdrawal request #1 is not ready",
    );
    assert_contains(&vouch.fails(&["--from", "op1", "operator", "unstake", "1 VST"]), "below the minimum of 1000 VST");

    // --- time passes: refunds, withdrawals, the commission change -----------------------------------------------
    let second = vouch.json(&["--from", "customer", "call", "1", "0", "--input", r#"{"text":"late"}"#]);
    assert_eq!(second["callId"], "2");
    assert_contains(
        &vouch.fails(&["--from", "customer", "call", "refund", "2"]),
        "can be refunded only after its deadline",
    );
    let _: i64 = deployer.raw_request("evm_increaseTime".into(), (14 * 86_400 + 1,)).await.expect("time travel");
    let _: String = deployer.raw_request("evm_mine".into(), ()).await.expect("mines");
    let refunded = vouch.json(&["--from", "delegator", "call", "refund", "2"]);
    assert_eq!(address(&refunded["payer"]), customer, "anyone refunds; the payer gets the money");
    assert_eq!(vouch.json(&["call", "show", "2"])["status"], "Refunded");
    let claimed = vouch.json(&["--from", "customer", "claim"]);
    assert_eq!(claimed["claims"][0]["amount"], json!({"units": "10000000", "display": "10 vUSD"}));
    let withdrawn = vouch.json(&["--from", "delegator", "operator", "withdraw"]);
    assert_eq!(units(&withdrawn["withdrawn"][0]["amount"]), vst(500));
    assert_eq!(vst_token.balanceOf(delegator).call().await.expect("balance"), vst(500));
    assert_eq!(vouch.json(&["--from", "op0", "operator", "set-commission", "--apply"])["commissionBps"], 800);
    assert_eq!(vouch.json(&["operator", "status", "op0"])["commissionBps"], 800);
}
