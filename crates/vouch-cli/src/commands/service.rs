//! `vouch service`: request a service (a blueprint run by a fixed, ordered operator set), approve it as one of its
//! operators, show it.

use alloy_primitives::{Address, U256};
use clap::Subcommand;
use eyre::{bail, eyre};
use serde_json::json;
use vouch_contracts::{Contract, VouchProtocol, vouch_protocol::IVouchProtocol::Service};

use crate::{
    chain::{Chain, event},
    context::Ctx,
    duration::{format_timestamp_relative, parse_duration},
    rate::format_share,
};

/// `VouchProtocol.MAX_OPERATORS`.
const MAX_OPERATORS: usize = 191;

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// Request a service of a blueprint run by the given operators (slot i = bit i of a certificate's bitmap)
    Request {
        /// Blueprint id
        blueprint: u64,
        /// An operator (address or transaction key name), in slot order; repeat for each
        #[arg(long = "operator", value_name = "OPERATOR", required = true)]
        operators: Vec<String>,
        /// How long the service accepts calls, from now
        #[arg(long, default_value = "30d", value_name = "DURATION")]
        expiry: String,
        /// Only permitted callers (--caller) may call it; by default anyone who pays may
        #[arg(long)]
        private: bool,
        /// A caller permitted when the service is private; repeat for each
        #[arg(long = "caller", value_name = "ADDRESS", requires = "private")]
        callers: Vec<Address>,
    },
    /// Approve a requested service as one of its operators; the last approval activates it
    Approve {
        /// Service id
        id: u64,
    },
    /// Show a service: status, blueprint, owner, expiry, access, operators with approvals and stakes
    Show {
        /// Service id
        id: u64,
    },
}

pub(crate) async fn run(cmd: ServiceCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        ServiceCommand::Request { blueprint, operators, expiry, private, callers } => {
            request(ctx, blueprint, &operators, &expiry, private, callers).await
        }
        ServiceCommand::Approve { id } => approve(ctx, id).await,
        ServiceCommand::Show { id } => show(ctx, id).await,
    }
}

/// The status enum's variant name.
pub(crate) fn status_name(status: u8) -> &'static str {
    match status {
        0 => "None",
        1 => "Requested",
        2 => "Active",
        3 => "Terminated",
        _ => "unknown",
    }
}

/// Reads a service; "unknown service N" if it does not exist.
pub(crate) async fn read_service(chain: &Chain, id: u64) -> eyre::Result<Service> {
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let service = chain.read(p, "VouchProtocol.getService", protocol.getService(id).call()).await?;
    if service.status == 0 {
        let count = chain.read(p, "VouchProtocol.serviceCount", protocol.serviceCount().call()).await?;
        bail!(
            "unknown service {id}: the protocol has {} (see `vouch service request`)",
            crate::output::count(count, "service")
        );
    }
    Ok(service)
}

async fn request(
    ctx: &Ctx,
    blueprint: u64,
    operator_args: &[String],
    expiry: &str,
    private: bool,
    callers: Vec<Address>,
) -> eyre::Result<()> {
    let operators = operator_args.iter().map(|o| ctx.account(o)).collect::<eyre::Result<Vec<_>>>()?;
    let lifetime = parse_duration(expiry).map_err(|e| eyre!("--expiry: {e}"))?;
    if lifetime == 0 {
        bail!("--expiry must be in the future");
    }
    if operators.len() > MAX_OPERATORS {
        bail!("a service has at most {MAX_OPERATORS} operators, {} given", operators.len());
    }
    let mut seen = operators.clone();
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|w| w[0] == w[1]) {
        bail!("operator {} is listed twice: each operator holds one slot", pair[0]);
    }
    let chain = ctx.connect_signing().await?;
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let b = chain.read(p, "VouchProtocol.getBlueprint", protocol.getBlueprint(blueprint).call()).await?;
    if b.owner.is_zero() {
        let count = chain.read(p, "VouchProtocol.blueprintCount", protocol.blueprintCount().call()).await?;
        bail!("unknown blueprint {blueprint}: the protocol has {}", crate::output::count(count, "blueprint"));
    }
    if operators.len() < usize::from(b.policy.minSigners) {
        bail!(
            "blueprint {blueprint} needs at least {} signers per certificate, so at least {} operators; {} given",
            b.policy.minSigners,
            b.policy.minSigners,
            operators.len()
        );
    }
    let staking = chain.staking();
    for operator in &operators {
        let s = Contract::Staking;
        if !chain.read(s, "VouchStaking.isOperator", staking.isOperator(*operator).call()).await? {
            bail!("{operator} is not a registered operator: it must run `vouch operator register` first");
        }
        if chain.read(s, "VouchStaking.isJailed", staking.isJailed(*operator).call()).await? {
            bail!("operator {operator} is jailed and cannot join new services");
        }
    }
    let expiry_at = chain.now().await? + lifetime;
    let receipt = chain
        .send(
            &format!("requesting a service of blueprint {blueprint} with {} operators", operators.len()),
            p,
            None,
            protocol.requestService(blueprint, operators.clone(), expiry_at, !private, callers.clone()),
        )
        .await?;
    let id = event::<VouchProtocol::ServiceRequested>(&receipt)
        .map(|e| e.serviceId)
        .ok_or_else(|| eyre!("the transaction {} emitted no ServiceRequested event", receipt.transaction_hash))?;
    chain.out.emit(
        &json!({
            "serviceId": id, "blueprintId": blueprint, "operators": operators, "expiry": expiry_at,
            "publicAccess": !private, "permittedCallers": callers, "transaction": receipt.transaction_hash,
        }),
        &format!(
            "service {id} requested (blueprint {blueprint}, {} operators, expires {})\nnext: each operator runs `vouch \
             service approve {id}`; the last approval activates it",
            operators.len(),
            crate::duration::format_timestamp(expiry_at)
        ),
    );
    Ok(())
}

async fn approve(ctx: &Ctx, id: u64) -> eyre::Result<()> {
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let service = read_service(&chain, id).await?;
    if service.status != 1 {
        bail!("service {id} is {}, not Requested: there is nothing to approve", status_name(service.status));
    }
    let slot = protocol.operatorSlot(id, me);
    let slot = chain.read(p, "VouchProtocol.operatorSlot", slot.call()).await?;
    if !slot.member {
        let list = service.operators.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        bail!("{me} is not an operator of service {id} (its operators: {list})");
    }
    let staking = chain.staking();
    if !chain.read(Contract::Staking, "VouchStaking.isOperator", staking.isOperator(me).call()).await? {
        bail!("operator not registered: run `vouch operator register` ({me} is not an active operator)");
    }
    let approvals = chain.read(p, "VouchProtocol.approvals", protocol.approvals(id).call()).await?;
    if approvals.bit(usize::try_from(slot.slot).unwrap_or(usize::MAX)) {
        bail!("{me} already approved service {id}");
    }
    let receipt = chain
        .send(
            &format!("approving service {id} as operator {me} (slot {})", slot.slot),
            p,
            None,
            protocol.approveService(id),
        )
        .await?;
    let activated = event::<VouchProtocol::ServiceActivated>(&receipt);
    let approved = (approvals | (U256::from(1) << usize::try_from(slot.slot).unwrap_or(0))).count_ones();
    let n = service.operators.len();
    let text = match &activated {
        Some(a) => format!(
            "service {id} approved by all {n} operators: now Active (key set {}, total stake {})",
            a.keySet,
            chain.stake.format(a.totalStake)
        ),
        None => format!("approved service {id} ({approved} of {n} approvals)"),
    };
    chain.out.emit(
        &json!({
            "serviceId": id, "operator": me, "slot": slot.slot.to_string(), "approvals": approved, "operators": n,
            "active": activated.is_some(), "transaction": receipt.transaction_hash,
        }),
        &text,
    );
    Ok(())
}

async fn show(ctx: &Ctx, id: u64) -> eyre::Result<()> {
    let chain = ctx.connect().await?;
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let service = read_service(&chain, id).await?;
    let approvals = chain.read(p, "VouchProtocol.approvals", protocol.approvals(id).call()).await?;
    let now = chain.now().await?;
    let staking = chain.staking();
    let mut rows = Vec::new();
    let mut operators = Vec::new();
    for (slot, operator) in service.operators.iter().enumerate() {
        let snapshot = service.stakes.get(slot).copied();
        let at_risk = chain
            .read(Contract::Staking, "VouchStaking.slashableStake", staking.slashableStake(*operator).call())
            .await?;
        let weight = snapshot.map(|s| s.min(at_risk));
        let approved = service.status != 1 || approvals.bit(slot);
        rows.push((slot, *operator, approved, snapshot, weight));
    }
    let total: U256 = rows.iter().filter_map(|r| r.4).sum();
    let mut lines = vec![
        format!("service {id}: {}", status_name(service.status)),
        format!("  blueprint     {}", service.blueprintId),
        format!("  owner         {}", service.owner),
        format!("  expiry        {}", format_timestamp_relative(service.expiry, now)),
        format!(
            "  access        {}",
            if service.publicAccess { "public (anyone who pays)" } else { "permitted callers only" }
        ),
    ];
    if !service.keySet.is_zero() {
        lines.push(format!("  key set       {}", service.keySet));
        lines.push(format!("  total stake   {} at activation", chain.stake.format(service.totalStake)));
    }
    lines.push("  operators".into());
    for (slot, operator, approved, snapshot, weight) in &rows {
        let stake = match (snapshot, weight) {
            (Some(s), Some(w)) => format!(
                ", stake {} (weight now {}, {})",
                chain.stake.format(*s),
                chain.stake.format(*w),
                format_share(*w, total).unwrap_or_else(|| "0%".into())
            ),
            _ => String::new(),
        };
        lines.push(format!(
            "    slot {slot}  {operator}  {}{stake}",
            if *approved { "approved" } else { "not approved yet" }
        ));
        operators.push(json!({
            "slot": slot, "operator": operator, "approved": approved,
            "snapshotStake": snapshot.map(|s| chain.stake.json(s)), "weight": weight.map(|w| chain.stake.json(w)),
        }));
    }
    chain.out.emit(
        &json!({
            "serviceId": id, "status": status_name(service.status), "blueprintId": service.blueprintId,
            "owner": service.owner, "expiry": service.expiry, "publicAccess": service.publicAccess,
            "keySet": service.keySet, "totalStake": chain.stake.json(service.totalStake), "operators": operators,
        }),
        &lines.join("\n"),
    );
    Ok(())
}
