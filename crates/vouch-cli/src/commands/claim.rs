//! `vouch claim`: everything the account is owed, in one go: the protocol's claimable balance (fees, commissions,
//! refunds), delegator rewards from every pool it has stake in (found from its `Delegated` events), and slashed
//! stake credited to it as a payer or reporter.

use alloy_primitives::{Address, U256};
use clap::Args;
use serde_json::json;
use vouch_contracts::{Contract, VouchStaking};

use crate::{chain::Chain, context::Ctx};

#[derive(Debug, Args)]
pub(crate) struct ClaimArgs {
    /// Show what is claimable without sending anything
    #[arg(long)]
    dry_run: bool,
}

/// One claimable balance.
struct Claimable {
    what: String,
    kind: &'static str,
    pool: Option<Address>,
    amount: U256,
    stake_token: bool,
}

async fn claimables(chain: &Chain, me: Address) -> eyre::Result<Vec<Claimable>> {
    let mut found = Vec::new();
    let protocol = chain.protocol();
    let staking = chain.staking();
    let s = Contract::Staking;
    let fees = chain.read(Contract::Protocol, "VouchProtocol.claimable", protocol.claimable(me).call()).await?;
    if !fees.is_zero() {
        found.push(Claimable {
            what: "fees, commissions and refunds (VouchProtocol.claim)".into(),
            kind: "protocol",
            pool: None,
            amount: fees,
            stake_token: false,
        });
    }
    let mut pools: Vec<Address> = chain
        .logs::<VouchStaking::Delegated>(chain.book.contracts.staking, None, Some(me.into_word()))
        .await?
        .into_iter()
        .map(|e| e.operator)
        .collect();
    pools.sort_unstable();
    pools.dedup();
    for pool in pools {
        let rewards = chain.read(s, "VouchStaking.pendingRewards", staking.pendingRewards(pool, me).call()).await?;
        if !rewards.is_zero() {
            found.push(Claimable {
                what: format!("rewards from {pool}'s pool (VouchStaking.claimRewards)"),
                kind: "rewards",
                pool: Some(pool),
                amount: rewards,
                stake_token: false,
            });
        }
    }
    let slashed = chain.read(s, "VouchStaking.slashedClaimable", staking.slashedClaimable(me).call()).await?;
    if !slashed.is_zero() {
        found.push(Claimable {
            what: "slashed stake credited as payer or reporter (VouchStaking.claimSlashed)".into(),
            kind: "slashed",
            pool: None,
            amount: slashed,
            stake_token: true,
        });
    }
    Ok(found)
}

pub(crate) async fn run(args: ClaimArgs, ctx: &Ctx) -> eyre::Result<()> {
    let chain = if args.dry_run { ctx.connect().await? } else { ctx.connect_signing().await? };
    let me = if args.dry_run { ctx.own_address()? } else { chain.sender()? };
    let found = claimables(&chain, me).await?;
    let token = |c: &Claimable| if c.stake_token { &chain.stake } else { &chain.payment };
    let mut claimed = Vec::new();
    if !args.dry_run {
        for c in &found {
            let action = format!("claiming {} of {}", token(c).format(c.amount), c.what);
            let receipt = match (c.kind, c.pool) {
                ("protocol", _) => chain.send(&action, Contract::Protocol, None, chain.protocol().claim()).await?,
                ("rewards", Some(pool)) => {
                    chain.send(&action, Contract::Staking, None, chain.staking().claimRewards(pool)).await?
                }
                _ => chain.send(&action, Contract::Staking, None, chain.staking().claimSlashed()).await?,
            };
            claimed.push(receipt.transaction_hash);
        }
    }
    let verb = if args.dry_run { "claimable" } else { "claimed" };
    let text = if found.is_empty() {
        format!("nothing to claim for {me}")
    } else {
        found
            .iter()
            .map(|c| format!("{verb} {} — {}", token(c).format(c.amount), c.what))
            .collect::<Vec<_>>()
            .join("\n")
    };
    chain.out.emit(
        &json!({
            "account": me,
            "dryRun": args.dry_run,
            "claims": found.iter().enumerate().map(|(i, c)| json!({
                "kind": c.kind, "pool": c.pool, "amount": token(c).json(c.amount), "transaction": claimed.get(i),
            })).collect::<Vec<_>>(),
        }),
        &text,
    );
    Ok(())
}
