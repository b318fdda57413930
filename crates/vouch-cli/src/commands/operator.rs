//! `vouch operator`: registration (BLS key with its proof of possession, then the stake pool), self-stake,
//! unbonding, withdrawals, commission, deregistration and status.

use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, U256};
use clap::{Args, Subcommand};
use eyre::{bail, eyre};
use serde_json::json;
use vouch_contracts::{Contract, VouchStaking};
use vouch_crypto::PublicKey;
use vouch_primitives::ChainBinding;

use crate::{
    chain::{Chain, event},
    commands::delegate::{parse_unstake, queue_unstake},
    context::{Ctx, blocking},
    duration::format_timestamp_relative,
    keyring::{self, KeyKind},
    output::hex0x,
    rate::{format_bps, parse_bps},
};

#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Register this account as an operator: its BLS key (KeyRegistry, with a proof of possession), then its stake
    /// pool (VouchStaking: endpoint, commission, self-stake)
    Register(RegisterArgs),
    /// Add self-stake to this operator's pool
    Stake {
        /// Amount, e.g. "500 VST"
        amount: String,
    },
    /// Queue self-stake for withdrawal (an active operator keeps at least the minimum self-stake)
    Unstake {
        /// An amount ("250 VST"), a number of shares ("250000 shares") or "all"
        amount: String,
    },
    /// Withdraw queued stake whose unbonding delay has passed (operators and delegators)
    Withdraw {
        /// Withdrawal request ids [default: every request of this account that is ready]
        ids: Vec<U256>,
    },
    /// Propose a new commission (applicable after the commission delay), or apply the proposed one
    SetCommission {
        /// The new commission, e.g. "8%" or "800bps"
        #[arg(required_unless_present = "apply")]
        rate: Option<String>,
        /// Apply the pending proposal (once its delay has passed)
        #[arg(long, conflicts_with = "rate")]
        apply: bool,
    },
    /// Leave for good: no new services or delegations; the self-stake can then be unstaked entirely
    Deregister {
        /// Confirm: deregistration is final (this address can never register again)
        #[arg(long)]
        yes: bool,
    },
    /// Show an operator's status, stake, shares, pending withdrawals, commission, jail and BLS key
    Status {
        /// The operator: an address or a transaction key name [default: the --from key]
        operator: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// HTTP endpoint the operator's node serves, e.g. https://op.example.com
    #[arg(long)]
    endpoint: String,
    /// Initial self-stake, at least the staking contract's minimum, e.g. "1000 VST"
    #[arg(long)]
    stake: String,
    /// Commission on the fees this operator earns, e.g. "10%" or "1000bps"
    #[arg(long, default_value = "0%")]
    commission: String,
    /// BLS key: a key name in <datadir>/keys or an EIP-2335 keystore [default: the --from key's name]
    #[arg(long, value_name = "KEY")]
    bls_key: Option<String>,
    /// Password file of the BLS keystore [default: beside it]
    #[arg(long, value_name = "FILE")]
    bls_password_file: Option<PathBuf>,
}

pub(crate) async fn run(cmd: OperatorCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        OperatorCommand::Register(args) => register(args, ctx).await,
        OperatorCommand::Stake { amount } => stake(ctx, &amount).await,
        OperatorCommand::Unstake { amount } => {
            let chain = ctx.connect_signing().await?;
            let me = chain.sender()?;
            require_registered(&chain, me).await?;
            let what = parse_unstake(&chain, &amount)?;
            queue_unstake(&chain, me, what).await
        }
        OperatorCommand::Withdraw { ids } => withdraw(ctx, ids).await,
        OperatorCommand::SetCommission { rate, apply } => set_commission(ctx, rate.as_deref(), apply).await,
        OperatorCommand::Deregister { yes } => deregister(ctx, yes).await,
        OperatorCommand::Status { operator } => status(ctx, operator.as_deref()).await,
    }
}

/// Fails with "operator not registered: run `vouch operator register`" unless `operator` is an active operator.
async fn require_registered(chain: &Chain, operator: Address) -> eyre::Result<VouchStaking::Operator> {
    let staking = chain.staking();
    let info =
        chain.read(Contract::Staking, "VouchStaking.operatorInfo", staking.operatorInfo(operator).call()).await?;
    match info.status {
        1 => Ok(info),
        2 => bail!("operator {operator} deregistered: it can only unstake and withdraw"),
        _ => bail!("operator not registered: run `vouch operator register` ({operator} has no stake pool)"),
    }
}

/// The BLS keystore for `register`: `--bls-key`, else the key with the transaction key's name, else the only one.
fn bls_keystore(ctx: &Ctx, given: Option<&str>) -> eyre::Result<PathBuf> {
    let keys = ctx.keys_dir();
    if let Some(spec) = given {
        return keyring::resolve(&keys, spec, KeyKind::Bls);
    }
    let tx = ctx.tx_keystore()?;
    if let Some(name) = tx.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".eth.json")) {
        let path = tx.with_file_name(format!("{name}.bls.json"));
        if path.is_file() {
            return Ok(path);
        }
    }
    match keyring::names(&keys, KeyKind::Bls).as_slice() {
        [only] => Ok(keyring::keystore_path(&keys, only, KeyKind::Bls)),
        [] => bail!(
            "no BLS key to register: create one with `vouch keys new --kind bls --name <NAME>` and pass --bls-key"
        ),
        many => bail!("several BLS keys in {} ({}): choose one with --bls-key <NAME>", keys.display(), many.join(", ")),
    }
}

async fn register(args: RegisterArgs, ctx: &Ctx) -> eyre::Result<()> {
    let commission = parse_bps(&args.commission).map_err(|e| eyre!("--commission: {e}"))?;
    let endpoint = args.endpoint.trim().to_owned();
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("--endpoint {endpoint:?}: the node's endpoint is an http:// or https:// URL");
    }
    if endpoint.len() > 256 {
        bail!("--endpoint is {} bytes long; at most 256", endpoint.len());
    }
    let bls_path = bls_keystore(ctx, args.bls_key.as_deref())?;
    let bls_password = keyring::password_file_for(&bls_path, args.bls_password_file.as_deref(), "--bls-password-file")?;
    let (ks, pw) = (bls_path.clone(), bls_password);
    let secret = blocking(move || keyring::decrypt_bls(&ks, &pw)).await?;
    let public_key = secret.public_key();

    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    let staking = chain.staking();
    let registry = chain.registry();
    let s = Contract::Staking;
    let stake = chain.stake.parse(&args.stake).map_err(|e| eyre!("--stake: {e}"))?;

    let info = chain.read(s, "VouchStaking.operatorInfo", staking.operatorInfo(me).call()).await?;
    match info.status {
        0 => {}
        1 => bail!("{me} is already a registered operator (see `vouch operator status`)"),
        _ => bail!("{me} deregistered and can never register again: register from a new address"),
    }
    let min = chain.read(s, "VouchStaking.minSelfStake", staking.minSelfStake().call()).await?;
    if stake < min {
        bail!("--stake {}: below the minimum self-stake of {}", chain.stake.format(stake), chain.stake.format(min));
    }
    chain.require_balance(&chain.stake, me, stake).await?;

    // 1. The BLS key, with a proof of possession bound to (chain, registry, this address).
    let registered = chain.read(Contract::KeyRegistry, "KeyRegistry.keyOf", registry.keyOf(me).call()).await?;
    let key_tx = if registered.is_empty() {
        let binding = ChainBinding::new(chain.chain_id(), chain.book.contracts.key_registry);
        let pop = blocking(move || Ok(secret.prove_possession(&binding, me))).await?;
        let receipt = chain
            .send(
                &format!("registering BLS key {public_key} in the KeyRegistry"),
                Contract::KeyRegistry,
                None,
                registry.registerKey(
                    Bytes::from(public_key.to_eip2537().to_vec()),
                    Bytes::from(pop.signature().to_eip2537().to_vec()),
                ),
            )
            .await?;
        Some(receipt.transaction_hash)
    } else if registered.as_ref() == public_key.to_eip2537().as_slice() {
        chain.out.progress(&format!("BLS key {public_key} is already registered for {me}"));
        None
    } else {
        let theirs = PublicKey::from_eip2537(&registered).map_or_else(|_| hex0x(&registered), |k| k.to_string());
        bail!(
            "{me} already registered BLS key {theirs} (one key per operator, no rotation), but {} holds {public_key}: \
             pass --bls-key with the registered key",
            bls_path.display()
        );
    };

    // 2. The stake pool.
    chain.approve(&chain.stake, chain.book.contracts.staking, stake, "the self-stake").await?;
    let receipt = chain
        .send(
            &format!("registering {me} as an operator with {} self-stake", chain.stake.format(stake)),
            s,
            Some(&chain.stake),
            staking.registerOperator(endpoint.clone(), commission, stake),
        )
        .await?;
    let shares = event::<VouchStaking::Delegated>(&receipt).map(|e| e.shares).unwrap_or_default();
    chain.out.emit(
        &json!({
            "operator": me, "blsPublicKey": public_key.to_string(), "blsKeystore": bls_path, "endpoint": endpoint,
            "commissionBps": commission, "selfStake": chain.stake.json(stake), "shares": shares.to_string(),
            "keyTransaction": key_tx, "transaction": receipt.transaction_hash,
        }),
        &format!(
            "operator {me} registered\n  BLS key     {public_key}\n  endpoint    {endpoint}\n  commission  {}\n  self-stake  {} \
             ({shares} shares)\nnext: services that list this operator need its approval: `vouch service approve <ID>`",
            format_bps(u64::from(commission)),
            chain.stake.format(stake)
        ),
    );
    Ok(())
}

async fn stake(ctx: &Ctx, amount: &str) -> eyre::Result<()> {
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    require_registered(&chain, me).await?;
    let amount = chain.stake.parse(amount)?;
    if amount.is_zero() {
        bail!("stake a positive amount of {}", chain.stake.symbol);
    }
    let staking = chain.staking();
    let s = Contract::Staking;
    if !chain.read(s, "VouchStaking.acceptsDelegations", staking.acceptsDelegations(me).call()).await? {
        bail!("this pool was slashed almost to nothing and takes no new stake: register a new operator address");
    }
    chain.require_balance(&chain.stake, me, amount).await?;
    chain.approve(&chain.stake, chain.book.contracts.staking, amount, "staking").await?;
    let receipt = chain
        .send(&format!("staking {}", chain.stake.format(amount)), s, Some(&chain.stake), staking.delegate(me, amount))
        .await?;
    let shares = event::<VouchStaking::Delegated>(&receipt).map(|e| e.shares).unwrap_or_default();
    let self_stake = chain.read(s, "VouchStaking.selfStake", staking.selfStake(me).call()).await?;
    let active = chain.read(s, "VouchStaking.activeStake", staking.activeStake(me).call()).await?;
    chain.out.emit(
        &json!({
            "operator": me, "amount": chain.stake.json(amount), "shares": shares.to_string(),
            "selfStake": chain.stake.json(self_stake), "activeStake": chain.stake.json(active),
            "transaction": receipt.transaction_hash,
        }),
        &format!(
            "staked {} ({shares} shares)\nself-stake {}, active stake of the pool {}",
            chain.stake.format(amount),
            chain.stake.format(self_stake),
            chain.stake.format(active)
        ),
    );
    Ok(())
}

async fn withdraw(ctx: &Ctx, ids: Vec<U256>) -> eyre::Result<()> {
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    let staking = chain.staking();
    let s = Contract::Staking;
    let now = chain.now().await?;
    let explicit = !ids.is_empty();
    let ids = if explicit {
        ids
    } else {
        chain.read(s, "VouchStaking.withdrawalIds", staking.withdrawalIds(me).call()).await?
    };
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for id in ids {
        let w = chain.read(s, "VouchStaking.withdrawalRequest", staking.withdrawalRequest(id).call()).await?;
        if w.owner.is_zero() {
            if explicit {
                bail!("withdrawal request #{id} does not exist or was already withdrawn");
            }
            continue;
        }
        if w.owner != me {
            bail!("withdrawal request #{id} belongs to {}, not to {me}", w.owner);
        }
        if w.readyAt > now {
            if explicit {
                bail!(
                    "withdrawal request #{id} is not ready: it can be withdrawn from {}",
                    format_timestamp_relative(w.readyAt, now)
                );
            }
            waiting.push((id, w));
        } else {
            ready.push(id);
        }
    }
    let mut paid = Vec::new();
    for id in &ready {
        let receipt = chain.send(&format!("withdrawing request #{id}"), s, None, staking.withdraw(*id)).await?;
        let assets = event::<VouchStaking::Withdrawn>(&receipt).map(|e| e.assets).unwrap_or_default();
        paid.push((*id, assets, receipt.transaction_hash));
    }
    let mut lines: Vec<String> =
        paid.iter().map(|(id, assets, _)| format!("withdrew request #{id}: {}", chain.stake.format(*assets))).collect();
    for (id, w) in &waiting {
        let value = chain.read(s, "VouchStaking.previewWithdraw", staking.previewWithdraw(*id).call()).await?;
        lines.push(format!(
            "request #{id}: {} from {}'s pool, ready {}",
            chain.stake.format(value),
            w.operator,
            format_timestamp_relative(w.readyAt, now)
        ));
    }
    if lines.is_empty() {
        lines.push(format!("no pending withdrawals for {me}"));
    }
    chain.out.emit(
        &json!({
            "withdrawn": paid.iter().map(|(id, a, tx)| json!({"requestId": id.to_string(), "amount": chain.stake.json(*a), "transaction": tx})).collect::<Vec<_>>(),
            "pending": waiting.iter().map(|(id, w)| json!({"requestId": id.to_string(), "operator": w.operator, "shares": w.shares.to_string(), "readyAt": w.readyAt})).collect::<Vec<_>>(),
        }),
        &lines.join("\n"),
    );
    Ok(())
}

async fn set_commission(ctx: &Ctx, rate: Option<&str>, apply: bool) -> eyre::Result<()> {
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    let info = require_registered(&chain, me).await?;
    let staking = chain.staking();
    let s = Contract::Staking;
    let now = chain.now().await?;
    if apply {
        if info.commissionReadyAt == 0 {
            bail!("no commission change is pending: propose one with `vouch operator set-commission <RATE>`");
        }
        if info.commissionReadyAt > now {
            bail!(
                "the change to {} can be applied from {}",
                format_bps(u64::from(info.pendingCommissionBps)),
                format_timestamp_relative(info.commissionReadyAt, now)
            );
        }
        let receipt = chain.send("applying the commission change", s, None, staking.applyCommission()).await?;
        chain.out.emit(
            &json!({"operator": me, "commissionBps": info.pendingCommissionBps, "transaction": receipt.transaction_hash}),
            &format!("commission is now {}", format_bps(u64::from(info.pendingCommissionBps))),
        );
        return Ok(());
    }
    let Some(rate) = rate else { bail!("give the new commission, e.g. `8%`, or --apply") };
    let bps = parse_bps(rate).map_err(|e| eyre!(e))?;
    let receipt = chain
        .send(
            &format!("proposing a commission of {}", format_bps(u64::from(bps))),
            s,
            None,
            staking.proposeCommission(bps),
        )
        .await?;
    let ready_at = event::<VouchStaking::CommissionProposed>(&receipt).map(|e| e.readyAt).unwrap_or_default();
    chain.out.emit(
        &json!({"operator": me, "currentBps": info.commissionBps, "proposedBps": bps, "readyAt": ready_at, "transaction": receipt.transaction_hash}),
        &format!(
            "commission change proposed: {} → {}, applicable from {}\nthen run `vouch operator set-commission --apply`",
            format_bps(u64::from(info.commissionBps)),
            format_bps(u64::from(bps)),
            format_timestamp_relative(ready_at, now)
        ),
    );
    Ok(())
}

async fn deregister(ctx: &Ctx, yes: bool) -> eyre::Result<()> {
    if !yes {
        bail!(
            "deregistration is final: the address can never register again. Its stake stays slashable until withdrawn. \
             Re-run with --yes to confirm"
        );
    }
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    require_registered(&chain, me).await?;
    let receipt = chain.send("deregistering", Contract::Staking, None, chain.staking().deregister()).await?;
    chain.out.emit(
        &json!({"operator": me, "transaction": receipt.transaction_hash}),
        &format!(
            "{me} deregistered: unstake with `vouch operator unstake all`, then withdraw after the unbonding delay"
        ),
    );
    Ok(())
}

async fn status(ctx: &Ctx, operator: Option<&str>) -> eyre::Result<()> {
    let (operator, is_self) = match operator {
        Some(spec) => (ctx.account(spec)?, false),
        None => (ctx.own_address()?, true),
    };
    let chain = ctx.connect().await?;
    let staking = chain.staking();
    let s = Contract::Staking;
    let info = chain.read(s, "VouchStaking.operatorInfo", staking.operatorInfo(operator).call()).await?;
    if info.status == 0 {
        if is_self {
            bail!("operator not registered: run `vouch operator register` ({operator} has no stake pool)");
        }
        bail!("{operator} is not a registered operator (it never ran `vouch operator register`)");
    }
    let now = chain.now().await?;
    let pool = chain.read(s, "VouchStaking.poolInfo", staking.poolInfo(operator).call()).await?;
    let active = chain.read(s, "VouchStaking.activeStake", staking.activeStake(operator).call()).await?;
    let self_stake = chain.read(s, "VouchStaking.selfStake", staking.selfStake(operator).call()).await?;
    let own_shares = chain.read(s, "VouchStaking.sharesOf", staking.sharesOf(operator, operator).call()).await?;
    let jailed = chain.read(s, "VouchStaking.isJailed", staking.isJailed(operator).call()).await?;
    let rewards =
        chain.read(s, "VouchStaking.pendingRewards", staking.pendingRewards(operator, operator).call()).await?;
    let key = chain.read(Contract::KeyRegistry, "KeyRegistry.keyOf", chain.registry().keyOf(operator).call()).await?;
    let key = if key.is_empty() {
        None
    } else {
        Some(PublicKey::from_eip2537(&key).map_or_else(|_| hex0x(&key), |k| k.to_string()))
    };
    let fees =
        chain.read(Contract::Protocol, "VouchProtocol.claimable", chain.protocol().claimable(operator).call()).await?;
    let ids = chain.read(s, "VouchStaking.withdrawalIds", staking.withdrawalIds(operator).call()).await?;
    let mut withdrawals = Vec::new();
    for id in ids {
        let w = chain.read(s, "VouchStaking.withdrawalRequest", staking.withdrawalRequest(id).call()).await?;
        if !w.owner.is_zero() {
            let value = chain.read(s, "VouchStaking.previewWithdraw", staking.previewWithdraw(id).call()).await?;
            withdrawals.push((id, w, value));
        }
    }

    let status = if info.status == 1 { "registered" } else { "deregistered" };
    let pending = (info.commissionReadyAt != 0).then(|| {
        (
            info.pendingCommissionBps,
            info.commissionReadyAt,
            format!(
                " (change to {} pending, applicable from {})",
                format_bps(u64::from(info.pendingCommissionBps)),
                format_timestamp_relative(info.commissionReadyAt, now)
            ),
        )
    });
    let jail = if jailed {
        format!("yes, until {}", format_timestamp_relative(info.jailedUntil, now))
    } else {
        "no".to_owned()
    };
    let st = &chain.stake;
    let mut text = vec![
        format!("operator {operator}"),
        format!("  status        {status}, endpoint {}", info.endpoint),
        format!("  BLS key       {}", key.as_deref().unwrap_or("none registered")),
        format!(
            "  stake         {} active, {} slashable, {} self-stake",
            st.format(active),
            st.format(pool.assets),
            st.format(self_stake)
        ),
        format!(
            "  shares        {} total, {own_shares} own, {} queued for withdrawal",
            pool.totalShares, pool.queuedShares
        ),
        format!(
            "  commission    {}{}",
            format_bps(u64::from(info.commissionBps)),
            pending.as_ref().map(|p| p.2.as_str()).unwrap_or_default()
        ),
        format!("  jailed        {jail}"),
        format!("  fees          {} claimable (`vouch claim`)", chain.payment.format(fees)),
        format!("  rewards       {} pending on its own stake", chain.payment.format(rewards)),
    ];
    if withdrawals.is_empty() {
        text.push("  withdrawals   none pending".into());
    }
    for (id, w, value) in &withdrawals {
        text.push(format!(
            "  withdrawal    #{id}: {} from {}'s pool, ready {}",
            st.format(*value),
            w.operator,
            format_timestamp_relative(w.readyAt, now)
        ));
    }
    chain.out.emit(
        &json!({
            "operator": operator,
            "status": status,
            "endpoint": info.endpoint,
            "blsPublicKey": key,
            "activeStake": st.json(active),
            "slashableStake": st.json(pool.assets),
            "selfStake": st.json(self_stake),
            "shares": {"total": pool.totalShares.to_string(), "own": own_shares.to_string(), "queued": pool.queuedShares.to_string()},
            "commissionBps": info.commissionBps,
            "pendingCommission": pending.map(|(bps, at, _)| json!({"bps": bps, "readyAt": at})),
            "jailed": jailed,
            "jailedUntil": info.jailedUntil,
            "claimableFees": chain.payment.json(fees),
            "pendingRewards": chain.payment.json(rewards),
            "withdrawals": withdrawals.iter().map(|(id, w, v)| json!({
                "requestId": id.to_string(), "operator": w.operator, "shares": w.shares.to_string(),
                "value": st.json(*v), "readyAt": w.readyAt,
            })).collect::<Vec<_>>(),
        }),
        &text.join("\n"),
    );
    Ok(())
}
