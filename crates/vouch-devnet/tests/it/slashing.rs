//! Equivocation: operator 2 (`operator-2`, slot 2) signs two results for one call, a third party reports it, the
//! stake is split to the unit.

use alloy::primitives::{B256, Bytes, U256};
use vouch_contracts::{
    ContractError, VouchSlasher, VouchSlasher::VouchSlasherErrors, VouchStaking, decode_revert,
    vouch_slasher::VouchSlasher::SignedResult,
};
use vouch_devnet::{Funding, ONE_ETH};

use crate::common::{BPS, mul_div, open_call, result_ref, send, sign, stake_balance, start};

/// `VouchSlasher.Fault.Equivocation`.
const EQUIVOCATION: u8 = 0;

#[tokio::test]
async fn a_reported_equivocation_slashes_exactly_the_policy_share() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let call = open_call(&devnet, 0, b"one input").await;
    let slot = 2;
    let cheat = &devnet.operators()[slot];

    // Two different results for the same call, each signed by operator 2 alone.
    let signed = |result_hash: B256| SignedResult {
        inputsHash: call.inputs_hash,
        resultHash: result_hash,
        signature: Bytes::copy_from_slice(&sign(&devnet, slot, &result_ref(&devnet, &call, result_hash)).to_eip2537()),
        batchRoot: B256::ZERO,
        batchCount: 0,
        proof: Vec::new(),
    };
    let a = signed(B256::repeat_byte(0xa1));
    let b = signed(B256::repeat_byte(0xb2));

    let reporter = devnet.new_account(&Funding { eth: ONE_ETH, ..Funding::default() }).await.expect("funded");
    let provider = devnet.provider(&reporter);
    let slasher = VouchSlasher::new(c.slasher, &provider);
    let staking = VouchStaking::new(c.staking, &provider);
    let payer = devnet.customer().address();

    // Expected, per VouchSlasher._slash and VouchStaking.slash: amount = slashable × bps; payer and reporter shares of
    // it, capped together at half of the operator's own loss; the rest burned.
    let policy = devnet.policy();
    let slashable = staking.slashableStake(cheat.address()).call().await.expect("slashable");
    let amount = mul_div(slashable, U256::from(policy.equivocationSlashBps), BPS);
    let mut to_payer = mul_div(amount, U256::from(policy.payerShareBps), BPS);
    let mut to_reporter = mul_div(amount, U256::from(policy.reporterShareBps), BPS);
    let own = staking.delegatedStake(cheat.address(), cheat.address()).call().await.expect("own stake");
    let cap = mul_div(amount, own, slashable) / U256::from(2);
    if to_payer + to_reporter > cap {
        let payout = to_payer + to_reporter;
        to_payer = mul_div(to_payer, cap, payout);
        to_reporter = mul_div(to_reporter, cap, payout);
    }
    let burned = amount - to_payer - to_reporter;
    // 10% of 10,000 VST = 1,000 VST: 250 to the payer, 250 to the reporter, 500 burned.
    let vst = U256::from(10).pow(U256::from(18));
    assert_eq!(
        (amount, to_payer, to_reporter),
        (U256::from(1_000) * vst, U256::from(250) * vst, U256::from(250) * vst)
    );

    let burn = staking.BURN_ADDRESS().call().await.expect("burn address");
    let burn_before = stake_balance(&devnet, burn).await;
    let staking_before = stake_balance(&devnet, c.staking).await;
    let others_before: Vec<U256> = {
        let mut v = Vec::new();
        for op in devnet.operators() {
            v.push(staking.slashableStake(op.address()).call().await.expect("slashable"));
        }
        v
    };

    send(slasher.reportEquivocation(
        devnet.service_id(),
        call.id,
        cheat.address(),
        U256::from(slot),
        a.clone(),
        b.clone(),
    ))
    .await;

    assert_eq!(staking.slashableStake(cheat.address()).call().await.expect("slashable"), slashable - amount);
    assert_eq!(staking.poolInfo(cheat.address()).call().await.expect("pool").assets, slashable - amount);
    assert_eq!(staking.slashedClaimable(payer).call().await.expect("payer share"), to_payer);
    assert_eq!(staking.slashedClaimable(reporter.address()).call().await.expect("reporter share"), to_reporter);
    assert_eq!(stake_balance(&devnet, burn).await, burn_before + burned);
    assert_eq!(stake_balance(&devnet, c.staking).await, staking_before - burned);
    assert!(slasher.isReported(cheat.address(), call.id, EQUIVOCATION).call().await.expect("isReported"));
    for (op, before) in devnet.operators().iter().zip(others_before) {
        if op.index() != slot {
            assert_eq!(staking.slashableStake(op.address()).call().await.expect("slashable"), before, "untouched");
        }
    }

    // Once per (operator, call, fault).
    let err = slasher
        .reportEquivocation(devnet.service_id(), call.id, cheat.address(), U256::from(slot), a, b)
        .send()
        .await
        .expect_err("reported already");
    assert!(
        matches!(decode_revert(err), Ok(ContractError::Slasher(VouchSlasherErrors::AlreadyReported(e))) if e.operator == cheat.address()),
        "a second report is refused"
    );

    // Payer and reporter withdraw exactly their shares.
    send(staking.claimSlashed()).await;
    assert_eq!(stake_balance(&devnet, reporter.address()).await, to_reporter);
    let customer = devnet.provider(devnet.customer().signer());
    send(VouchStaking::new(c.staking, &customer).claimSlashed()).await;
    assert_eq!(stake_balance(&devnet, payer).await, to_payer);
    assert_eq!(stake_balance(&devnet, c.staking).await, staking_before - amount);
}
