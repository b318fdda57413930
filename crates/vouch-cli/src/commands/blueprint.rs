//! `vouch blueprint`: deploy a blueprint from a TOML manifest (checked locally first), show a blueprint.

use std::path::PathBuf;

use alloy::providers::Provider;
use alloy_primitives::U256;
use clap::Subcommand;
use eyre::{bail, eyre};
use serde_json::json;
use vouch_contracts::{Contract, VouchProtocol, vouch_protocol::IVouchProtocol::Blueprint};

use crate::{
    chain::{Chain, event},
    context::Ctx,
    duration::format_duration,
    manifest::{ChainRules, Manifest},
    rate::format_bps,
};

#[derive(Debug, Subcommand)]
pub(crate) enum BlueprintCommand {
    /// Register a blueprint from a manifest (jobs, prices, deadlines, policy, metadata, hooks, arbiter)
    ///
    /// The manifest is checked against every rule of VouchProtocol.createBlueprint before anything is sent; the
    /// format is documented in docs/quickstart.md.
    Deploy {
        /// The manifest (TOML)
        manifest: PathBuf,
        /// Check the manifest and print the blueprint without sending it
        #[arg(long)]
        dry_run: bool,
    },
    /// Show a blueprint: owner, jobs with prices and deadlines, policy, metadata, hooks, arbiter
    Show {
        /// Blueprint id
        id: u64,
    },
}

pub(crate) async fn run(cmd: BlueprintCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        BlueprintCommand::Deploy { manifest, dry_run } => deploy(ctx, &manifest, dry_run).await,
        BlueprintCommand::Show { id } => show(ctx, id).await,
    }
}

async fn deploy(ctx: &Ctx, path: &std::path::Path, dry_run: bool) -> eyre::Result<()> {
    let manifest = Manifest::read(path)?;
    let chain = if dry_run { ctx.connect().await? } else { ctx.connect_signing().await? };
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let rules = ChainRules {
        payment: chain.payment.clone(),
        protocol_fee_bps: chain.read(p, "VouchProtocol.PROTOCOL_FEE_BPS", protocol.PROTOCOL_FEE_BPS().call()).await?,
        unbonding_delay: chain
            .read(Contract::Staking, "VouchStaking.unbondingDelay", chain.staking().unbondingDelay().call())
            .await?,
        max_price: chain.read(p, "VouchProtocol.MAX_PRICE", protocol.MAX_PRICE().call()).await?,
    };
    let spec = manifest.check(&rules)?;
    if !spec.hooks.is_zero() {
        let code =
            chain.provider.get_code_at(spec.hooks).await.map_err(|e| chain.transport("reading the hooks' code", e))?;
        if code.is_empty() {
            bail!("hooks = \"{}\": no contract at that address on chain {}", spec.hooks, chain.chain_id());
        }
    }
    let jobs_json: Vec<_> = spec
        .jobs
        .iter()
        .zip(&spec.job_names)
        .enumerate()
        .map(|(i, (job, name))| {
            json!({"index": i, "name": name, "price": chain.payment.json(U256::from(job.price)), "deadline": job.deadline})
        })
        .collect();
    if dry_run {
        let blueprint = Blueprint {
            owner: alloy_primitives::Address::ZERO,
            arbiter: spec.arbiter,
            hooks: spec.hooks,
            metadataHash: spec.metadata_hash,
            metadataUri: spec.metadata_uri.clone(),
            policy: spec.policy.clone(),
            jobs: spec.jobs.clone(),
        };
        chain.out.emit(
            &json!({"valid": true, "metadataHash": spec.metadata_hash, "metadataDigest": spec.metadata_digest, "jobs": jobs_json}),
            &format!("manifest {} is valid; it would register:\n{}", path.display(), describe(&chain, &blueprint, &spec.job_names)),
        );
        return Ok(());
    }
    let receipt = chain
        .send(
            &format!("registering the blueprint of {}", path.display()),
            p,
            None,
            protocol.createBlueprint(
                spec.metadata_uri.clone(),
                spec.metadata_hash,
                spec.jobs.clone(),
                spec.policy.clone(),
                spec.arbiter,
                spec.hooks,
            ),
        )
        .await?;
    let id = event::<VouchProtocol::BlueprintCreated>(&receipt)
        .map(|e| e.blueprintId)
        .ok_or_else(|| eyre!("the transaction {} emitted no BlueprintCreated event", receipt.transaction_hash))?;
    chain.out.emit(
        &json!({
            "blueprintId": id, "metadataHash": spec.metadata_hash, "metadataDigest": spec.metadata_digest,
            "jobs": jobs_json, "transaction": receipt.transaction_hash,
        }),
        &format!(
            "blueprint {id} registered (metadata {} hash {})\nnext: `vouch service request {id} --operator <OPERATOR> …`",
            spec.metadata_digest, spec.metadata_hash
        ),
    );
    Ok(())
}

/// The blueprint in text, one field per line.
fn describe(chain: &Chain, b: &Blueprint, names: &[Option<String>]) -> String {
    let p = &b.policy;
    let bps = |v: u16| format_bps(u64::from(v));
    let none_if_zero = |a: alloy_primitives::Address| if a.is_zero() { "none".to_owned() } else { a.to_string() };
    let row = |label: &str, value: String| format!("  {label:<15}{value}");
    let mut lines = vec![
        row("metadata", format!("{} (hash {})", b.metadataUri, b.metadataHash)),
        row("arbiter", none_if_zero(b.arbiter)),
        row("hooks", none_if_zero(b.hooks)),
        row(
            "quorum",
            format!(
                "{} of stake, at least {} signer{}",
                bps(p.quorumBps),
                p.minSigners,
                if p.minSigners == 1 { "" } else { "s" }
            ),
        ),
        row("developer fee", bps(p.developerFeeBps)),
        row(
            "slashing",
            format!(
                "equivocation {}, deviation {}, missed deadline {}; to payer {}, to reporter {}, rest burned",
                bps(p.equivocationSlashBps),
                bps(p.deviationSlashBps),
                bps(p.missedDeadlineSlashBps),
                bps(p.payerShareBps),
                bps(p.reporterShareBps)
            ),
        ),
        row("dispute window", format_duration(u64::from(p.disputeWindow))),
        row(
            "jail after",
            if p.jailAfterMisses == 0 { "never".to_owned() } else { format!("{} missed deadlines", p.jailAfterMisses) },
        ),
    ];
    for (i, job) in b.jobs.iter().enumerate() {
        let name = names.get(i).cloned().flatten().map(|n| format!(" ({n})")).unwrap_or_default();
        lines.push(row(
            &format!("job {i}"),
            format!(
                "{} per call, deadline {}{name}",
                chain.payment.format(U256::from(job.price)),
                format_duration(u64::from(job.deadline))
            ),
        ));
    }
    lines.join("\n")
}

async fn show(ctx: &Ctx, id: u64) -> eyre::Result<()> {
    let chain = ctx.connect().await?;
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let b = chain.read(p, "VouchProtocol.getBlueprint", protocol.getBlueprint(id).call()).await?;
    if b.owner.is_zero() {
        let count = chain.read(p, "VouchProtocol.blueprintCount", protocol.blueprintCount().call()).await?;
        bail!("unknown blueprint {id}: the protocol has {}", crate::output::count(count, "blueprint"));
    }
    let policy = &b.policy;
    chain.out.emit(
        &json!({
            "blueprintId": id, "owner": b.owner, "arbiter": b.arbiter, "hooks": b.hooks,
            "metadataUri": b.metadataUri, "metadataHash": b.metadataHash,
            "policy": {
                "quorumBps": policy.quorumBps, "minSigners": policy.minSigners, "developerFeeBps": policy.developerFeeBps,
                "equivocationSlashBps": policy.equivocationSlashBps, "deviationSlashBps": policy.deviationSlashBps,
                "missedDeadlineSlashBps": policy.missedDeadlineSlashBps, "payerShareBps": policy.payerShareBps,
                "reporterShareBps": policy.reporterShareBps, "disputeWindow": policy.disputeWindow,
                "jailAfterMisses": policy.jailAfterMisses,
            },
            "jobs": b.jobs.iter().enumerate().map(|(i, j)| json!({
                "index": i, "price": chain.payment.json(U256::from(j.price)), "deadline": j.deadline,
            })).collect::<Vec<_>>(),
        }),
        &format!("blueprint {id}, owner {}\n{}", b.owner, describe(&chain, &b, &[])),
    );
    Ok(())
}
