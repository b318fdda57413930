//! The whole protocol deployed on anvil; the address book written, read back and checked against the chain.

use std::collections::BTreeSet;

use vouch_contracts::{
    ADDRESS_BOOK_VERSION, AddressBook, AddressBookError, Contract, DeployConfig, DeployError, KeyRegistry,
    VouchProtocol, VouchSlasher, VouchStaking, VouchUSD,
    alloy::{
        primitives::{Address, B256, U256},
        providers::{Provider, WalletProvider},
    },
    deploy,
    vouch_protocol::IVouchProtocol::{Job, Policy},
};

use crate::anvil::Anvil;

#[tokio::test]
async fn deploys_everything_and_the_address_book_round_trips() {
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let deployer = provider.default_signer_address();
    let config = DeployConfig::default();
    let book = deploy(&provider, &config).await.expect("deploys");

    assert_eq!(book.version, ADDRESS_BOOK_VERSION);
    assert_eq!(book.chain_id, 31337);
    assert_eq!(book.treasury, deployer);
    assert!(book.deployed_at_block >= 1);
    let addresses: BTreeSet<Address> = book.contracts.iter().map(|(_, a)| a).collect();
    assert_eq!(addresses.len(), 7, "seven distinct contracts");
    assert!(!addresses.contains(&Address::ZERO));

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("devnet/addresses.json");
    book.save(&path).expect("saves");
    let loaded = AddressBook::load(&path).expect("loads");
    assert_eq!(loaded, book);
    loaded.check(&provider).await.expect("the address book matches the chain");

    let c = &book.contracts;
    let protocol = VouchProtocol::new(c.protocol, &provider);
    assert_eq!(protocol.paymentToken().call().await.expect("call"), c.vouch_usd);
    assert_eq!(protocol.STAKING().call().await.expect("call"), c.staking);
    assert_eq!(protocol.KEY_REGISTRY().call().await.expect("call"), c.key_registry);
    assert_eq!(protocol.TREASURY().call().await.expect("call"), deployer);
    assert_eq!(protocol.PROTOCOL_FEE_BPS().call().await.expect("call"), config.protocol_fee_bps);

    let staking = VouchStaking::new(c.staking, &provider);
    assert_eq!(staking.protocol().call().await.expect("call"), c.protocol, "initialized");
    assert_eq!(staking.slasher().call().await.expect("call"), c.slasher, "initialized");
    assert_eq!(staking.stakeToken().call().await.expect("call"), c.stake_token);
    assert_eq!(staking.paymentToken().call().await.expect("call"), c.vouch_usd);
    assert_eq!(staking.unbondingDelay().call().await.expect("call"), config.unbonding_delay);
    assert_eq!(staking.commissionDelay().call().await.expect("call"), config.commission_delay);
    assert_eq!(staking.minSelfStake().call().await.expect("call"), config.min_self_stake);

    let slasher = VouchSlasher::new(c.slasher, &provider);
    assert_eq!(slasher.STAKING().call().await.expect("call"), c.staking);
    assert_eq!(slasher.REGISTRY().call().await.expect("call"), c.key_registry);

    // The dev tokens belong to the deployer, who can mint.
    let usd = VouchUSD::new(c.vouch_usd, &provider);
    assert_eq!(usd.owner().call().await.expect("call"), deployer);
    assert_eq!(usd.decimals().call().await.expect("call"), 6);
    let registry = KeyRegistry::new(c.key_registry, &provider);
    assert!(registry.keyOf(deployer).call().await.expect("call").is_empty());

    // The library is linked: createBlueprint runs in ProtocolAdmin (a bad link would revert without data). The
    // longest job deadline (7 days) plus a 1-day dispute window fits the default unbonding delay.
    assert!(!provider.get_code_at(c.protocol_admin).await.expect("code").is_empty());
    let policy = Policy {
        quorumBps: 6_667,
        minSigners: 1,
        developerFeeBps: 1_000,
        equivocationSlashBps: 1_000,
        deviationSlashBps: 500,
        missedDeadlineSlashBps: 100,
        payerShareBps: 2_500,
        reporterShareBps: 2_500,
        disputeWindow: 86_400,
        jailAfterMisses: 3,
    };
    let jobs = vec![Job { price: 10_000, deadline: 7 * 86_400, verification: 0 }];
    let receipt = protocol
        .createBlueprint("ipfs://echo".into(), B256::repeat_byte(1), jobs, policy, Address::ZERO, Address::ZERO)
        .send()
        .await
        .expect("sends")
        .get_receipt()
        .await
        .expect("mined");
    assert!(receipt.status());
    let blueprint = protocol.getBlueprint(1).call().await.expect("call");
    assert_eq!((blueprint.owner, blueprint.metadataUri.as_str()), (deployer, "ipfs://echo"));
}

#[tokio::test]
async fn check_refuses_a_book_of_another_chain_or_deployment() {
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let book = deploy(&provider, &DeployConfig::default()).await.expect("deploys");

    let mut other_chain = book.clone();
    other_chain.chain_id = 1;
    let err = other_chain.check(&provider).await.expect_err("wrong chain");
    assert!(matches!(err, AddressBookError::ChainId { book: 1, rpc: 31337 }), "{err}");

    let mut no_code = book.clone();
    no_code.contracts.slasher = Address::repeat_byte(0x42);
    let err = no_code.check(&provider).await.expect_err("no code");
    assert!(
        matches!(err, AddressBookError::NoCode { contract: Contract::Slasher, address } if address == Address::repeat_byte(0x42)),
        "{err}"
    );

    // Code everywhere, but not this deployment's wiring.
    let mut swapped = book.clone();
    std::mem::swap(&mut swapped.contracts.vouch_usd, &mut swapped.contracts.stake_token);
    let err = swapped.check(&provider).await.expect_err("mismatch");
    assert!(
        matches!(err, AddressBookError::Mismatch { getter: "VouchProtocol.paymentToken()", actual, .. } if actual == book.contracts.vouch_usd),
        "{err}"
    );
    assert!(err.to_string().contains("but the address book says"), "{err}");
}

#[tokio::test]
async fn deploy_reuses_existing_tokens_and_validates_its_config() {
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let first = deploy(&provider, &DeployConfig::default()).await.expect("deploys");
    let treasury = Address::repeat_byte(0x7e);

    let config = DeployConfig {
        payment_token: Some(first.contracts.vouch_usd),
        stake_token: Some(first.contracts.stake_token),
        treasury: Some(treasury),
        protocol_fee_bps: 0,
        min_self_stake: U256::from(1),
        ..DeployConfig::default()
    };
    let second = deploy(&provider, &config).await.expect("deploys with existing tokens");
    assert_eq!(second.contracts.vouch_usd, first.contracts.vouch_usd);
    assert_eq!(second.contracts.stake_token, first.contracts.stake_token);
    assert_ne!(second.contracts.protocol, first.contracts.protocol);
    assert_eq!(second.treasury, treasury);
    assert!(second.deployed_at_block > first.deployed_at_block);
    second.check(&provider).await.expect("checks");

    let same = DeployConfig { stake_token: Some(first.contracts.vouch_usd), ..config.clone() };
    assert!(matches!(deploy(&provider, &same).await, Err(DeployError::SameToken(_))));
    let nowhere = DeployConfig { payment_token: Some(Address::repeat_byte(0x99)), ..config.clone() };
    let err = deploy(&provider, &nowhere).await.expect_err("no code");
    assert!(matches!(err, DeployError::NoCode { role: "payment token", .. }), "{err}");
    let zero = DeployConfig { min_self_stake: U256::ZERO, ..config.clone() };
    assert!(matches!(deploy(&provider, &zero).await, Err(DeployError::ZeroMinSelfStake)));
    let fee = DeployConfig { protocol_fee_bps: 10_001, ..config };
    assert!(matches!(deploy(&provider, &fee).await, Err(DeployError::FeeTooHigh(10_001))));
}
