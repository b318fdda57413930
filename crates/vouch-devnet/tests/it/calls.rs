//! Calls on the devnet's service: escrow, settlement with a certificate of the operators' BLS keys, claims.

use alloy::primitives::{Address, B256, U256};
use vouch_contracts::{ContractError, VouchProtocol, VouchProtocol::VouchProtocolErrors, VouchStaking, decode_revert};
use vouch_devnet::Devnet;

use crate::common::{BPS, OpenCall, certify, mul_div, open_call, result_ref, send, start, usd_balance};

/// `IVouchProtocol.CallStatus`.
const OPEN: u8 = 1;
const SETTLED: u8 = 2;

#[tokio::test]
async fn call_job_escrows_exactly_the_price() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let protocol = VouchProtocol::new(c.protocol, devnet.read_provider());
    let customer = devnet.customer().address();
    let customer_before = usd_balance(&devnet, customer).await;
    let protocol_before = usd_balance(&devnet, c.protocol).await;
    let accounted_before = protocol.accounted().call().await.expect("accounted");

    let call = open_call(&devnet, 0, b"hello, vouch").await;

    assert_eq!(call.id, U256::from(1), "the first call");
    assert_eq!(call.price, U256::from(10_000), "0.01 vUSD");
    assert_eq!(usd_balance(&devnet, customer).await, customer_before - call.price);
    assert_eq!(usd_balance(&devnet, c.protocol).await, protocol_before + call.price);
    assert_eq!(protocol.accounted().call().await.expect("accounted"), accounted_before + call.price);
    let opened = protocol.getCall(call.id).call().await.expect("getCall");
    assert_eq!(opened.status, OPEN);
    assert_eq!((opened.serviceId, opened.jobIndex), (devnet.service_id(), 0));
    assert_eq!(opened.payer, customer);
    assert_eq!(U256::from(opened.payment), call.price);
    assert_eq!(opened.inputsHash, call.inputs_hash);
    assert_eq!(opened.signerBitmap, U256::ZERO);
}

/// The expected split of one call's payment among the signers `slots` (docs/protocol.md, "Money flows").
struct Split {
    developer: U256,
    protocol: U256,
    commissions: Vec<U256>,
    rewards: Vec<U256>,
    dust: U256,
}

async fn expected_split(devnet: &Devnet, price: U256, slots: &[usize]) -> Split {
    let c = devnet.address_book().contracts;
    let provider = devnet.read_provider();
    let protocol = VouchProtocol::new(c.protocol, &provider);
    let staking = VouchStaking::new(c.staking, &provider);
    let service = protocol.getService(devnet.service_id()).call().await.expect("getService");
    let developer = mul_div(price, U256::from(devnet.policy().developerFeeBps), BPS);
    let fee_bps = protocol.PROTOCOL_FEE_BPS().call().await.expect("fee");
    let protocol_fee = mul_div(price, U256::from(fee_bps), BPS);
    let rest = price - developer - protocol_fee;
    // weight_i = min(snapshot stake_i, slashable stake_i now)
    let mut weights = Vec::new();
    for &slot in slots {
        let slashable = staking.slashableStake(service.operators[slot]).call().await.expect("slashable");
        weights.push(service.stakes[slot].min(slashable));
    }
    let signer_stake: U256 = weights.iter().copied().sum();
    let (mut commissions, mut rewards, mut shared) = (Vec::new(), Vec::new(), U256::ZERO);
    for (&slot, weight) in slots.iter().zip(weights) {
        let share = mul_div(rest, weight, signer_stake);
        let bps = staking.commissionBps(service.operators[slot]).call().await.expect("commission");
        let commission = mul_div(share, U256::from(bps), BPS);
        commissions.push(commission);
        rewards.push(share - commission);
        shared += share;
    }
    Split { developer, protocol: protocol_fee, commissions, rewards, dust: rest - shared }
}

/// Opens a call of job 0 and settles it with a certificate of all three operators.
async fn settled_call(devnet: &Devnet) -> (OpenCall, B256) {
    let call = open_call(devnet, 0, b"echo me").await;
    let result_hash = B256::repeat_byte(0xab);
    let (bitmap, signature) = certify(devnet, &[0, 1, 2], &result_ref(devnet, &call, result_hash));
    let protocol =
        VouchProtocol::new(devnet.address_book().contracts.protocol, devnet.provider(devnet.customer().signer()));
    send(protocol.settle(call.id, result_hash, bitmap, signature)).await;
    (call, result_hash)
}

#[tokio::test]
async fn settle_splits_the_fee_to_the_unit() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let provider = devnet.read_provider();
    let protocol = VouchProtocol::new(c.protocol, &provider);
    let staking = VouchStaking::new(c.staking, &provider);
    let call = open_call(&devnet, 0, b"echo me").await;
    let result_hash = B256::repeat_byte(0xab);
    let result = result_ref(&devnet, &call, result_hash);
    let submitter = devnet.provider(devnet.customer().signer());
    let submit = VouchProtocol::new(c.protocol, &submitter);

    // Two of three equal stakes (6,666.7 bps) do not reach the 6,667 bps quorum: refused, typed.
    let (bitmap, signature) = certify(&devnet, &[0, 1], &result);
    let err = submit.settle(call.id, result_hash, bitmap, signature).send().await.expect_err("below quorum");
    match decode_revert(err).expect("a protocol error") {
        ContractError::Protocol(VouchProtocolErrors::QuorumNotReached(e)) => {
            assert_eq!(e.quorumBps, 6_667);
            assert_eq!(e.signerStake * U256::from(3), e.totalStake * U256::from(2));
        }
        other => panic!("unexpected {other}"),
    }

    // The certificate of all three: aggregate of the operators' signatures over the result digest.
    let expected = expected_split(&devnet, call.price, &[0, 1, 2]).await;
    let (bitmap, signature) = certify(&devnet, &[0, 1, 2], &result);
    send(submit.settle(call.id, result_hash, bitmap, signature)).await;

    let settled = protocol.getCall(call.id).call().await.expect("getCall");
    assert_eq!(settled.status, SETTLED);
    assert_eq!((settled.resultHash, settled.signerBitmap), (result_hash, U256::from(0b111)));

    // 10,000 units: developer 10% = 1,000; protocol 5% = 500; 8,500 shared by three equal weights = 2,833 each
    // (commission 10% = 283, delegators 2,550) and 1 unit of dust to the treasury.
    assert_eq!(
        (expected.developer, expected.protocol, expected.dust),
        (U256::from(1_000), U256::from(500), U256::from(1))
    );
    assert_eq!(expected.commissions, vec![U256::from(283); 3]);
    assert_eq!(expected.rewards, vec![U256::from(2_550); 3]);
    let rewards: U256 = expected.rewards.iter().copied().sum();
    let commissions: U256 = expected.commissions.iter().copied().sum();
    assert_eq!(expected.developer + expected.protocol + commissions + rewards + expected.dust, call.price);

    let claimable = |who: Address| {
        let protocol = protocol.clone();
        async move { protocol.claimable(who).call().await.expect("claimable") }
    };
    assert_eq!(claimable(devnet.developer().address()).await, expected.developer);
    assert_eq!(claimable(devnet.address_book().treasury).await, expected.protocol + expected.dust);
    for (op, commission) in devnet.operators().iter().zip(&expected.commissions) {
        assert_eq!(claimable(op.address()).await, *commission, "operator {}'s commission", op.index());
        // Each pool holds only its operator's self-stake, so the operator is its only delegator.
        let pending = staking.pendingRewards(op.address(), op.address()).call().await.expect("pendingRewards");
        assert_eq!(pending, expected.rewards[op.index()], "operator {}'s pool rewards", op.index());
    }
    // The delegators' part went to staking; the rest stays in the protocol, owed to the claimants.
    assert_eq!(staking.rewardReserve().call().await.expect("rewardReserve"), rewards);
    assert_eq!(usd_balance(&devnet, c.staking).await, rewards);
    assert_eq!(usd_balance(&devnet, c.protocol).await, call.price - rewards);
    assert_eq!(protocol.accounted().call().await.expect("accounted"), call.price - rewards);

    // Settled is final.
    let (bitmap, signature) = certify(&devnet, &[0, 1, 2], &result);
    let err = submit.settle(call.id, result_hash, bitmap, signature).send().await.expect_err("settled already");
    assert!(
        matches!(decode_revert(err), Ok(ContractError::Protocol(VouchProtocolErrors::CallNotOpen(_)))),
        "re-settling is refused"
    );
}

#[tokio::test]
async fn claims_pay_exactly_what_is_claimable() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let (call, _) = settled_call(&devnet).await;

    let mut claimants = vec![devnet.developer(), devnet.deployer()];
    claimants.extend(devnet.operators().iter().map(|op| op.account()));
    let mut claimed = U256::ZERO;
    for account in &claimants {
        let provider = devnet.provider(account.signer());
        let protocol = VouchProtocol::new(c.protocol, &provider);
        let owed = protocol.claimable(account.address()).call().await.expect("claimable");
        assert!(owed > U256::ZERO, "{} has something to claim", account.name());
        let before = usd_balance(&devnet, account.address()).await;
        send(protocol.claim()).await;
        assert_eq!(
            usd_balance(&devnet, account.address()).await,
            before + owed,
            "{} got its claimable",
            account.name()
        );
        assert_eq!(protocol.claimable(account.address()).call().await.expect("claimable"), U256::ZERO);
        claimed += owed;

        let err = protocol.claim().send().await.expect_err("nothing left");
        assert!(
            matches!(decode_revert(err), Ok(ContractError::Protocol(VouchProtocolErrors::NothingToClaim(e))) if e.account == account.address()),
            "a second claim is refused"
        );
    }
    // Every operator also collects its pool's delegator rewards from staking, to the unit.
    let mut rewards = U256::ZERO;
    for op in devnet.operators() {
        let provider = devnet.provider(op.signer());
        let staking = VouchStaking::new(c.staking, &provider);
        let pending = staking.pendingRewards(op.address(), op.address()).call().await.expect("pendingRewards");
        let before = usd_balance(&devnet, op.address()).await;
        send(staking.claimRewards(op.address())).await;
        assert_eq!(usd_balance(&devnet, op.address()).await, before + pending);
        assert_eq!(staking.pendingRewards(op.address(), op.address()).call().await.expect("pending"), U256::ZERO);
        rewards += pending;
    }

    // Everything the call paid is out: nothing is left owed or held.
    assert_eq!(claimed + rewards, call.price);
    let protocol = VouchProtocol::new(c.protocol, devnet.read_provider());
    assert_eq!(protocol.accounted().call().await.expect("accounted"), U256::ZERO);
    assert_eq!(usd_balance(&devnet, c.protocol).await, U256::ZERO);
    assert_eq!(usd_balance(&devnet, c.staking).await, U256::ZERO);
}
