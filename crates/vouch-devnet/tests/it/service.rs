//! The demo blueprint and its service: registered, active, with the operators' stakes snapshotted.

use std::fs;

use alloy::primitives::{Address, U256, keccak256};
use vouch_contracts::{VouchProtocol, VouchStaking};

use crate::common::start;

/// `IVouchProtocol.ServiceStatus.Active`.
const ACTIVE: u8 = 2;

#[tokio::test]
async fn the_blueprint_and_the_service_are_active() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let provider = devnet.read_provider();
    let protocol = VouchProtocol::new(c.protocol, &provider);
    let staking = VouchStaking::new(c.staking, &provider);

    // The blueprint, as configured, owned by the developer; its metadata hash is the file's.
    assert_eq!(devnet.blueprint_id(), 1);
    let blueprint = protocol.getBlueprint(devnet.blueprint_id()).call().await.expect("getBlueprint");
    assert_eq!(blueprint.owner, devnet.developer().address());
    assert_eq!((blueprint.arbiter, blueprint.hooks), (Address::ZERO, Address::ZERO));
    assert_eq!(&blueprint.policy, devnet.policy());
    let policy = devnet.policy();
    assert_eq!((policy.quorumBps, policy.minSigners), (6_667, 2));
    let unbonding = staking.unbondingDelay().call().await.expect("unbondingDelay");
    let longest = blueprint.jobs.iter().map(|j| u64::from(j.deadline)).max().expect("jobs");
    assert!(longest + u64::from(policy.disputeWindow) < unbonding / 2, "dispute window well below unbonding");
    let jobs: Vec<(u128, u32)> = blueprint.jobs.iter().map(|j| (j.price, j.deadline)).collect();
    let configured: Vec<(u128, u32)> = devnet.jobs().iter().map(|j| (j.price, j.deadline)).collect();
    assert_eq!(jobs, configured);
    assert_eq!(jobs, [(10_000, 600), (50_000, 3_600)], "0.01 and 0.05 vUSD");
    let metadata = fs::read(devnet.data_dir().join("blueprint.json")).expect("metadata");
    assert_eq!(blueprint.metadataHash, keccak256(&metadata));
    assert_eq!(blueprint.metadataUri, devnet.manifest().blueprint.metadata_uri);

    // The service: active, public, owned by the customer, every operator in slot order, stakes snapshotted.
    assert_eq!(devnet.service_id(), 1);
    let service = protocol.getService(devnet.service_id()).call().await.expect("getService");
    assert_eq!(service.status, ACTIVE);
    assert_eq!(service.blueprintId, devnet.blueprint_id());
    assert_eq!(service.owner, devnet.customer().address());
    assert!(service.publicAccess);
    assert_eq!(service.expiry, devnet.manifest().service.expiry);
    assert_ne!(service.keySet, Address::ZERO, "a key set is pinned at activation");
    let operators: Vec<Address> = devnet.operators().iter().map(|op| op.address()).collect();
    assert_eq!(service.operators, operators);
    let mut stakes = Vec::new();
    for op in devnet.operators() {
        stakes.push(staking.activeStake(op.address()).call().await.expect("activeStake"));
    }
    assert_eq!(service.stakes, stakes, "the snapshot is the operators' active stake");
    assert_eq!(service.stakes, vec![devnet.operators()[0].self_stake(); 3]);
    assert_eq!(service.totalStake, stakes.iter().copied().sum::<U256>());
    let all_approved = protocol.approvals(devnet.service_id()).call().await.expect("approvals");
    assert_eq!(all_approved, U256::from(0b111));

    // With three equal stakes, 6,667 bps needs all three signers.
    assert!(protocol.quorumReached(devnet.service_id(), U256::from(0b111)).call().await.expect("quorum"));
    assert!(!protocol.quorumReached(devnet.service_id(), U256::from(0b011)).call().await.expect("quorum"));
}
