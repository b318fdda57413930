//! The protocol deployed, the accounts funded, and the data directory written as documented.

use std::{fs, os::unix::fs::PermissionsExt as _};

use alloy::{
    primitives::{U256, address, hex},
    providers::Provider,
};
use vouch_contracts::{AddressBook, StakeToken, VouchStaking};
use vouch_devnet::{DevnetManifest, ONE_VST, ONE_VUSD, status};

use crate::common::{stake_balance, start, usd_balance};

#[tokio::test]
async fn deploys_funds_and_writes_the_data_directory() {
    let devnet = start().await;
    let book = devnet.address_book();
    let c = book.contracts;
    let provider = devnet.read_provider();

    // Every contract has code; staking is initialized with the protocol and the slasher.
    for (contract, address) in c.iter() {
        assert!(!provider.get_code_at(address).await.expect("code").is_empty(), "{contract} has no code");
    }
    let staking = VouchStaking::new(c.staking, &provider);
    assert_eq!(staking.protocol().call().await.expect("protocol"), c.protocol);
    assert_eq!(staking.slasher().call().await.expect("slasher"), c.slasher);
    book.check(&provider).await.expect("the address book matches the chain");

    // The deployer is anvil's development account 0, the treasury; deployments are deterministic (its first CREATE).
    let deployer = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    assert_eq!(devnet.deployer().address(), deployer);
    assert_eq!(book.treasury, deployer);
    assert_eq!(c.vouch_usd, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"));
    assert_eq!(book.chain_id, 31337);
    assert_eq!(devnet.chain_id(), 31337);

    // Balances to the unit: the customer holds exactly its Vouch USD; every operator staked all its stake tokens.
    assert_eq!(usd_balance(&devnet, devnet.customer().address()).await, U256::from(1_000) * ONE_VUSD);
    let stake = U256::from(10_000) * ONE_VST;
    for op in devnet.operators() {
        assert_eq!(stake_balance(&devnet, op.address()).await, U256::ZERO);
        assert!(provider.get_balance(op.address()).await.expect("balance") > U256::ZERO, "funded with ETH");
    }
    assert_eq!(stake_balance(&devnet, c.staking).await, stake * U256::from(3));
    let token = StakeToken::new(c.stake_token, &provider);
    assert_eq!(token.totalSupply().call().await.expect("supply"), stake * U256::from(3), "minted to operators only");

    // The data directory: addresses.json, devnet.json (equal to what the devnet reports), keys with private modes.
    let dir = devnet.data_dir();
    assert_eq!(&AddressBook::load(dir.join("addresses.json")).expect("address book"), book);
    let manifest = DevnetManifest::load(dir).expect("devnet.json");
    assert_eq!(&manifest, devnet.manifest());
    assert_eq!(manifest.rpc_url, devnet.rpc_url());
    assert_eq!(manifest.rpc_url, format!("http://127.0.0.1:{}", devnet.port()));
    assert_eq!(manifest.anvil_pid, devnet.anvil_pid());
    assert_eq!(manifest.operators.len(), 3);
    let mode = |path: &std::path::Path| fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("keys")), 0o700);
    for entry in fs::read_dir(dir.join("keys")).expect("keys") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let names: Vec<String> = fs::read_dir(dir.join("keys"))
        .expect("keys")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 6 * 2 + 3 * 2, "6 transaction keys and 3 BLS keys, each with a password file: {names:?}");
    for name in ["customer.eth.json", "customer.eth.password", "operator-2.bls.json", "operator-2.bls.password"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }

    // The keystores decrypt to the devnet's keys; no private key appears in the JSON files.
    let public_json = [
        fs::read_to_string(dir.join("devnet.json")).expect("read"),
        fs::read_to_string(dir.join("addresses.json")).expect("read"),
    ]
    .concat()
    .to_lowercase();
    let mut accounts = vec![devnet.deployer(), devnet.developer(), devnet.customer()];
    accounts.extend(devnet.operators().iter().map(|op| op.account()));
    let listed = [&manifest.accounts.deployer, &manifest.accounts.developer, &manifest.accounts.customer];
    for (account, entry) in accounts.iter().zip(listed.into_iter().chain(manifest.operators.iter().map(|o| &o.account)))
    {
        assert_eq!(entry.address, account.address());
        assert_eq!(entry.signer(dir).expect("decrypts").address(), account.address());
        assert!(!public_json.contains(&hex::encode(account.signer().to_bytes())), "{} leaked", account.name());
    }
    for (op, entry) in devnet.operators().iter().zip(&manifest.operators) {
        let secret = entry.bls_secret(dir).expect("decrypts");
        assert_eq!(secret.public_key(), op.bls_public());
        assert_eq!(entry.public_key().expect("valid"), op.bls_public());
        assert!(!public_json.contains(&hex::encode(secret.to_bytes().as_slice())), "operator {} leaked", op.index());
    }

    // `status` confirms the running devnet from its data directory alone.
    let found = status(dir).await.expect("running");
    assert_eq!(&found.manifest, devnet.manifest());
    assert_eq!(&found.address_book, book);
    assert!(found.block_number > 0);
}
