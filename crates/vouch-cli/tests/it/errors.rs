//! Errors a newcomer can act on, for the failures that need no chain: an unreachable RPC, a wrong keystore password,
//! malformed certificate and evidence files; and where settings come from.

use std::{fs, net::TcpListener};

use serde_json::json;

use crate::support::{Vouch, assert_contains};

/// A port nothing listens on: bound by the OS, then released.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("address").port()
}

#[test]
fn unreachable_rpc_says_how_to_start_the_devnet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vouch = Vouch::new(dir.path());
    let url = format!("http://127.0.0.1:{}", closed_port());
    for args in [
        vec!["--rpc", url.as_str(), "service", "show", "1"],
        vec!["--rpc", url.as_str(), "blueprint", "show", "1"],
        vec!["--rpc", url.as_str(), "operator", "status", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
    ] {
        let stderr = vouch.fails(&args);
        assert_contains(
            &stderr,
            &format!("error: cannot reach RPC at {url}: is the devnet running? `vouch devnet up`"),
        );
    }
    // Through the environment too, and the URL is echoed exactly as given.
    let stderr = Vouch::new(dir.path()).env("VOUCH_RPC", &url).fails(&["call", "show", "1"]);
    assert_contains(&stderr, &format!("cannot reach RPC at {url}"));
    let stderr = vouch.fails(&["--rpc", "not a url", "service", "show", "1"]);
    assert_contains(&stderr, "RPC URL `not a url` (flag --rpc) is not a URL");
}

#[test]
fn wrong_passwords_are_named_for_both_kinds_of_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vouch = Vouch::new(dir.path());
    let created = vouch.json(&["keys", "new", "--name", "op"]);
    assert_eq!(created["created"].as_array().map(Vec::len), Some(2));
    let wrong = dir.path().join("wrong.password");
    fs::write(&wrong, "not the password\n").expect("writes");
    let wrong = wrong.to_str().expect("utf-8");

    // The transaction key is unlocked before anything touches the network.
    let stderr = vouch.fails(&["--password-file", wrong, "operator", "stake", "1 VST"]);
    assert_contains(&stderr, "error: wrong password for transaction key ");
    assert_contains(&stderr, "op.eth.json (password file ");
    assert_contains(&stderr, "the keystore MAC does not match");

    let stderr = vouch.fails(&[
        "operator",
        "register",
        "--endpoint",
        "http://127.0.0.1:9000",
        "--stake",
        "1000 VST",
        "--bls-password-file",
        wrong,
    ]);
    assert_contains(&stderr, "error: wrong password for BLS key ");
    assert_contains(&stderr, "op.bls.json (password file ");

    // A missing key and a missing password file say what to do.
    let stderr = vouch.fails(&["--from", "nobody", "operator", "stake", "1 VST"]);
    assert_contains(&stderr, "no transaction key named `nobody`");
    assert_contains(&stderr, "`vouch keys new --name nobody`");
    fs::remove_file(dir.path().join("keys/op.eth.password")).expect("removes");
    let stderr = vouch.fails(&["operator", "stake", "1 VST"]);
    assert_contains(&stderr, "no password file for ");
    assert_contains(&stderr, "or pass --password-file <FILE>");
}

#[test]
fn keys_say_what_they_are_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vouch = Vouch::new(dir.path());
    let text = vouch.ok(&["keys", "new", "--name", "alice"]);
    assert_contains(&text, "alice: transaction key (ECDSA secp256k1: signs and pays for transactions)");
    assert_contains(&text, "alice: result-signing key (BLS12-381: signs job results; never sends transactions)");
    vouch.ok(&["keys", "new", "--name", "bob", "--kind", "tx"]);
    let list = vouch.json(&["keys", "list"]);
    let keys = list["keys"].as_array().expect("keys");
    let summary: Vec<(String, String)> = keys
        .iter()
        .map(|k| (k["name"].as_str().unwrap_or_default().to_owned(), k["kind"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(summary, [("alice".into(), "tx".into()), ("alice".into(), "bls".into()), ("bob".into(), "tx".into())]);
    assert!(keys[0]["address"].as_str().is_some_and(|a| a.starts_with("0x") && a.len() == 42));
    assert!(keys[1]["publicKey"].as_str().is_some_and(|a| a.starts_with("0x") && a.len() == 98));

    // `keys show` takes a name (both kinds) or a keystore path (the original behaviour, no password needed).
    let shown = vouch.json(&["keys", "show", "alice"]);
    assert_eq!(shown["keys"].as_array().map(Vec::len), Some(2));
    let bls_path = dir.path().join("keys/alice.bls.json");
    let shown = vouch.json(&["keys", "show", bls_path.to_str().expect("utf-8")]);
    assert_eq!(shown["keys"][0]["publicKey"], keys[1]["publicKey"]);
    assert!(shown["keys"][0]["publicKeyEip2537"].as_str().is_some_and(|k| k.len() == 2 + 256));

    // Never overwritten; a second transaction key makes --from necessary.
    assert_contains(&vouch.fails(&["keys", "new", "--name", "alice"]), "alice.eth.json already exists");
    assert_contains(&vouch.fails(&["operator", "status"]), "several transaction keys in ");

    // A raw private key is imported and encrypted; a keystore needs its password.
    let raw = dir.path().join("raw.key");
    fs::write(&raw, "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d\n").expect("writes");
    let imported = vouch.json(&["keys", "import", raw.to_str().expect("utf-8"), "--kind", "tx", "--name", "dev"]);
    assert_eq!(imported["imported"][0]["address"], "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    let keystore = dir.path().join("keys/dev.eth.json");
    let stderr = vouch.fails(&["keys", "import", keystore.to_str().expect("utf-8"), "--kind", "tx", "--name", "dev2"]);
    assert_contains(&stderr, "importing a keystore needs its password: pass --password-file <FILE>");
    let password = dir.path().join("keys/dev.eth.password");
    let again = vouch.json(&[
        "--password-file",
        password.to_str().expect("utf-8"),
        "keys",
        "import",
        keystore.to_str().expect("utf-8"),
        "--kind",
        "tx",
        "--name",
        "dev2",
    ]);
    assert_eq!(again["imported"][0]["address"], "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    let stderr = vouch.fails(&["keys", "import", bls_path.to_str().expect("utf-8"), "--kind", "tx", "--name", "x"]);
    assert_contains(&stderr, "is a result-signing key keystore, not a transaction key: pass --kind bls");
}

#[test]
fn malformed_certificates_and_evidence_name_the_file_and_the_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vouch = Vouch::new(dir.path());
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        fs::write(&path, text).expect("writes");
        path.to_str().expect("utf-8").to_owned()
    };
    let good = json!({
        "version": 1, "chainId": 31337, "protocol": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "serviceId": 1, "callId": "1",
        "inputsHash": format!("0x{}", "11".repeat(32)), "resultHash": format!("0x{}", "22".repeat(32)),
        "signerBitmap": "0x7", "signature": format!("0x{}", "00".repeat(256)),
    });

    let path = write("syntax.json", "{\n  \"version\": 1,\n  \"chainId\": 31337\n  \"protocol\": 1\n}\n");
    let stderr = vouch.fails(&["verify", &path]);
    assert_contains(
        &stderr,
        &format!("error: certificate {path}: not valid JSON: expected `,` or `}}` at line 4 column 3"),
    );

    let mut unknown = good.clone();
    unknown["signers"] = json!([0, 1]);
    let path = write("unknown.json", &format!("{unknown:#}"));
    let stderr = vouch.fails(&["verify", &path]);
    assert_contains(&stderr, &format!("certificate {path}: is not a valid certificate: unknown field `signers`"));
    assert_contains(&stderr, "at line 10 column 11");

    let mut bad_hash = good.clone();
    bad_hash["resultHash"] = json!("0x1234");
    let path = write("hash.json", &format!("{bad_hash:#}"));
    assert_contains(&vouch.fails(&["verify", &path]), "is not a valid certificate: ");

    let mut v2 = good;
    v2["version"] = json!(2);
    let path = write("v2.json", &v2.to_string());
    assert_contains(&vouch.fails(&["verify", &path]), "has version 2, this vouch reads certificate version 1");

    let missing = dir.path().join("missing.json");
    assert_contains(&vouch.fails(&["verify", missing.to_str().expect("utf-8")]), "cannot read certificate ");

    // Evidence: versioned, strict, exactly two statements.
    let statement = json!({
        "inputsHash": format!("0x{}", "11".repeat(32)), "resultHash": format!("0x{}", "22".repeat(32)),
        "signature": format!("0x{}", "00".repeat(256)),
    });
    let evidence = json!({
        "version": 1, "fault": "equivocation", "chainId": 31337,
        "protocol": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "serviceId": 1, "callId": 1,
        "operator": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "statements": [statement.clone(), statement.clone(), statement],
    });
    let path = write("three.json", &format!("{evidence:#}"));
    let stderr = vouch.fails(&["slash", "report", "equivocation", "--evidence", &path]);
    assert_contains(
        &stderr,
        &format!("error: evidence {path}: `statements` must hold exactly 2 signed statements, it holds 3"),
    );
    let mut same = evidence;
    same["statements"] = same["statements"].as_array().map(|s| json!(s[..2])).unwrap_or_default();
    let path = write("same.json", &same.to_string());
    assert_contains(
        &vouch.fails(&["slash", "report", "equivocation", "--evidence", &path]),
        "both statements sign the same inputs and result hash: that is not an equivocation",
    );
    let mut fault = same.clone();
    fault["fault"] = json!("deviation");
    let path = write("fault.json", &fault.to_string());
    assert_contains(
        &vouch.fails(&["slash", "report", "equivocation", "--evidence", &path]),
        "unknown variant `deviation`",
    );
}

#[test]
fn settings_come_from_defaults_then_file_then_env_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let show = |vouch: &Vouch, extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["config", "show"]);
        vouch.json(&args)
    };
    let vouch = Vouch::new(dir.path());
    let s = show(&vouch, &[]);
    assert_eq!(s["rpc"], json!({"value": "http://127.0.0.1:8545", "source": "default"}));
    assert_eq!(s["datadir"]["source"], "env VOUCH_DATADIR");
    assert_eq!(s["addresses"]["value"], dir.path().join("addresses.json").to_str().expect("utf-8"));

    let config = dir.path().join("config.toml");
    fs::write(&config, "rpc = \"http://file:1\"\naddresses = \"book.json\"\ntimeout = \"30s\"\n").expect("writes");
    let s = show(&vouch, &[]);
    assert_eq!(s["rpc"]["value"], "http://file:1");
    assert_eq!(s["rpc"]["source"], format!("file {}", config.display()));
    assert_eq!(s["addresses"]["value"], dir.path().join("book.json").to_str().expect("utf-8"), "relative to the file");
    assert_eq!(s["timeout"]["value"], "30s");

    let with_env = Vouch::new(dir.path()).env("VOUCH_RPC", "http://env:2");
    let s = show(&with_env, &[]);
    assert_eq!(s["rpc"], json!({"value": "http://env:2", "source": "env VOUCH_RPC"}));
    let s = show(&with_env, &["--rpc", "http://flag:3"]);
    assert_eq!(s["rpc"], json!({"value": "http://flag:3", "source": "flag --rpc"}));

    // The file is strict, and `config default` prints one that parses.
    fs::write(&config, "rcp = \"http://typo\"\n").expect("writes");
    assert_contains(&vouch.fails(&["config", "show"]), "unknown field `rcp`");
    let default = vouch.ok(&["config", "default"]);
    fs::write(&config, &default).expect("writes");
    assert_eq!(show(&vouch, &[])["rpc"]["value"], "http://127.0.0.1:8545");
}
