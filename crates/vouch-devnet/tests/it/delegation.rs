//! A delegator backs operator 1 (`operator-1`, slot 1): shares and pool assets to the unit.

use alloy::primitives::U256;
use vouch_contracts::{StakeToken, VouchStaking};
use vouch_devnet::{Funding, ONE_ETH, ONE_VST};

use crate::common::{mul_div, send, stake_balance, start};

#[tokio::test]
async fn a_delegator_stakes_to_operator_1() {
    let devnet = start().await;
    let c = devnet.address_book().contracts;
    let amount = U256::from(2_500) * ONE_VST + U256::from(7); // an odd amount: rounding shows
    let funding = Funding { eth: ONE_ETH, stake: amount, ..Funding::default() };
    let delegator = devnet.new_account(&funding).await.expect("funded");
    let operator = devnet.operators()[1].address();
    let provider = devnet.provider(&delegator);
    let staking = VouchStaking::new(c.staking, &provider);

    let before = staking.poolInfo(operator).call().await.expect("poolInfo");
    let staking_balance = stake_balance(&devnet, c.staking).await;
    // The contract's conversion: shares = assets × (totalShares + 10^3) / (assets_pool + 1), rounded down.
    let expected_shares = mul_div(amount, before.totalShares + U256::from(1_000), before.assets + U256::from(1));

    send(StakeToken::new(c.stake_token, &provider).approve(c.staking, amount)).await;
    send(staking.delegate(operator, amount)).await;

    let after = staking.poolInfo(operator).call().await.expect("poolInfo");
    let shares = staking.sharesOf(operator, delegator.address()).call().await.expect("sharesOf");
    assert_eq!(shares, expected_shares);
    assert_eq!(shares, amount * U256::from(1_000), "at the initial price a unit of stake buys 1,000 shares");
    assert_eq!(after.assets, before.assets + amount);
    assert_eq!(after.totalShares, before.totalShares + shares);
    assert_eq!(after.queuedShares, U256::ZERO);
    assert_eq!(staking.delegatedStake(operator, delegator.address()).call().await.expect("delegatedStake"), amount);
    assert_eq!(staking.activeStake(operator).call().await.expect("activeStake"), before.assets + amount);
    assert_eq!(staking.slashableStake(operator).call().await.expect("slashableStake"), before.assets + amount);
    // The tokens moved from the delegator to staking, exactly.
    assert_eq!(stake_balance(&devnet, delegator.address()).await, U256::ZERO);
    assert_eq!(stake_balance(&devnet, c.staking).await, staking_balance + amount);
    // The other pools are untouched.
    for op in [&devnet.operators()[0], &devnet.operators()[2]] {
        assert_eq!(staking.poolInfo(op.address()).call().await.expect("poolInfo").assets, op.self_stake());
    }
}
