//! `vouch delegate` and `vouch undelegate`: backing an operator's pool with stake, and queueing it for withdrawal.
//! Also the unstaking logic `vouch operator unstake` shares (an operator's self-stake is its own delegation).

use alloy_primitives::{Address, U256};
use clap::Args;
use eyre::bail;
use serde_json::json;
use vouch_contracts::{Contract, VouchStaking};

use crate::{
    chain::{Chain, event},
    context::Ctx,
    duration::format_timestamp_relative,
};

#[derive(Debug, Args)]
pub(crate) struct DelegateArgs {
    /// The operator: an address, or the name of a transaction key in <datadir>/keys
    operator: String,
    /// Stake to delegate, e.g. "500 VST"
    amount: String,
}

#[derive(Debug, Args)]
pub(crate) struct UndelegateArgs {
    /// The operator: an address, or the name of a transaction key in <datadir>/keys
    operator: String,
    /// What to queue: an amount ("250 VST"), a number of shares ("250000 shares") or "all"
    amount: String,
}

/// What to unstake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unstake {
    /// Every active share.
    All,
    /// This many shares.
    Shares(U256),
    /// Shares worth (at most) this many stake-token units now.
    Amount(U256),
}

/// Parses `all`, `<N> shares` or an amount of the stake token.
pub(crate) fn parse_unstake(chain: &Chain, text: &str) -> eyre::Result<Unstake> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(Unstake::All);
    }
    if let Some(n) = t.strip_suffix("shares").or_else(|| t.strip_suffix("share")) {
        let n = n.trim();
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            bail!("`{t}`: a number of shares is a whole number, e.g. `250000 shares`");
        }
        return Ok(Unstake::Shares(n.parse().map_err(|_| eyre::eyre!("`{t}`: too many shares"))?));
    }
    Ok(Unstake::Amount(chain.stake.parse(t)?))
}

pub(crate) async fn delegate(args: DelegateArgs, ctx: &Ctx) -> eyre::Result<()> {
    let operator = ctx.account(&args.operator)?;
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    let amount = chain.stake.parse(&args.amount)?;
    if amount.is_zero() {
        bail!("delegate a positive amount of {}", chain.stake.symbol);
    }
    let staking = chain.staking();
    let s = Contract::Staking;
    let info = chain.read(s, "VouchStaking.operatorInfo", staking.operatorInfo(operator).call()).await?;
    match info.status {
        1 => {}
        2 => bail!("operator {operator} deregistered: it takes no new delegations"),
        _ => bail!("operator {operator} is not registered: it must run `vouch operator register` first"),
    }
    if !chain.read(s, "VouchStaking.acceptsDelegations", staking.acceptsDelegations(operator).call()).await? {
        bail!("operator {operator}'s pool was slashed almost to nothing and takes no new delegations");
    }
    chain.require_balance(&chain.stake, me, amount).await?;
    chain.approve(&chain.stake, chain.book.contracts.staking, amount, "staking").await?;
    let receipt = chain
        .send(
            &format!("delegating {} to {operator}", chain.stake.format(amount)),
            s,
            Some(&chain.stake),
            staking.delegate(operator, amount),
        )
        .await?;
    let shares = event::<VouchStaking::Delegated>(&receipt).map(|e| e.shares).unwrap_or_default();
    let total = chain.read(s, "VouchStaking.delegatedStake", staking.delegatedStake(operator, me).call()).await?;
    chain.out.emit(
        &json!({
            "operator": operator, "delegator": me, "amount": chain.stake.json(amount), "shares": shares.to_string(),
            "delegated": chain.stake.json(total), "transaction": receipt.transaction_hash,
        }),
        &format!(
            "delegated {} to {operator}: {shares} shares\nyour stake in this pool: {}",
            chain.stake.format(amount),
            chain.stake.format(total)
        ),
    );
    Ok(())
}

pub(crate) async fn undelegate(args: UndelegateArgs, ctx: &Ctx) -> eyre::Result<()> {
    let operator = ctx.account(&args.operator)?;
    let chain = ctx.connect_signing().await?;
    let what = parse_unstake(&chain, &args.amount)?;
    queue_unstake(&chain, operator, what).await
}

/// Queues `what` of the sender's active shares in `operator`'s pool for withdrawal and prints the request.
pub(crate) async fn queue_unstake(chain: &Chain, operator: Address, what: Unstake) -> eyre::Result<()> {
    let me = chain.sender()?;
    let staking = chain.staking();
    let s = Contract::Staking;
    let available = chain.read(s, "VouchStaking.sharesOf", staking.sharesOf(operator, me).call()).await?;
    if available.is_zero() {
        bail!("{me} has no active stake in {operator}'s pool");
    }
    let shares = match what {
        Unstake::All => available,
        Unstake::Shares(n) => n,
        Unstake::Amount(units) => {
            chain.read(s, "VouchStaking.convertToShares", staking.convertToShares(operator, units).call()).await?
        }
    };
    if shares.is_zero() {
        bail!("that is less than one share of {operator}'s pool: nothing to unstake");
    }
    if shares > available {
        let worth =
            chain.read(s, "VouchStaking.convertToAssets", staking.convertToAssets(operator, available).call()).await?;
        bail!(
            "{me} holds {available} active shares ({}) in {operator}'s pool, fewer than the {shares} requested",
            chain.stake.format(worth)
        );
    }
    let info = chain.read(s, "VouchStaking.operatorInfo", staking.operatorInfo(operator).call()).await?;
    if me == operator && info.status == 1 {
        let min = chain.read(s, "VouchStaking.minSelfStake", staking.minSelfStake().call()).await?;
        let remaining = chain
            .read(s, "VouchStaking.convertToAssets", staking.convertToAssets(operator, available - shares).call())
            .await?;
        if remaining < min {
            bail!(
                "unstaking that would leave a self-stake of {}, below the minimum of {}: an active operator keeps the \
                 minimum (to leave entirely, run `vouch operator deregister` first)",
                chain.stake.format(remaining),
                chain.stake.format(min)
            );
        }
    }
    let value = chain.read(s, "VouchStaking.convertToAssets", staking.convertToAssets(operator, shares).call()).await?;
    let receipt = chain
        .send(
            &format!("queueing {shares} shares ({}) of {operator}'s pool for withdrawal", chain.stake.format(value)),
            s,
            None,
            staking.requestUnstake(operator, shares),
        )
        .await?;
    let Some(request) = event::<VouchStaking::UnstakeRequested>(&receipt) else {
        bail!("the unstake transaction {} emitted no UnstakeRequested event", receipt.transaction_hash);
    };
    let now = chain.now().await?;
    chain.out.emit(
        &json!({
            "requestId": request.requestId.to_string(), "operator": operator, "owner": me,
            "shares": request.shares.to_string(), "value": chain.stake.json(request.assets), "readyAt": request.readyAt,
            "transaction": receipt.transaction_hash,
        }),
        &format!(
            "withdrawal request #{}: {} shares ({} now; paid at the pool's price when withdrawn)\nready {}: then run \
             `vouch operator withdraw {}`\nthe queued stake stays slashable until then and earns no rewards",
            request.requestId,
            request.shares,
            chain.stake.format(request.assets),
            format_timestamp_relative(request.readyAt, now),
            request.requestId
        ),
    );
    Ok(())
}
