//! `vouch slash report`: submit evidence of a provable fault to `VouchSlasher`, after checking it locally.

use std::path::PathBuf;

use alloy_primitives::{B256, U256};
use clap::Subcommand;
use eyre::bail;
use serde_json::json;
use vouch_contracts::{Contract, VouchSlasher, VouchStaking};
use vouch_crypto::PublicKey;
use vouch_primitives::CallId;

use crate::{
    chain::event,
    commands::service::read_service,
    context::{Ctx, blocking},
    evidence::Evidence,
};

#[derive(Debug, Subcommand)]
pub(crate) enum SlashCommand {
    /// Report a fault with its evidence (anyone may; the reporter earns the blueprint's reporter share)
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Two different statements signed by one operator for one call: slashed at once
    Equivocation {
        /// The evidence file (JSON, docs/design/certificate.md#evidence)
        #[arg(long)]
        evidence: PathBuf,
    },
}

pub(crate) async fn run(cmd: SlashCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        SlashCommand::Report(ReportCommand::Equivocation { evidence }) => equivocation(ctx, &evidence).await,
    }
}

async fn equivocation(ctx: &Ctx, path: &std::path::Path) -> eyre::Result<()> {
    let ev = Evidence::read(path)?;
    let name = CallId(ev.call_id).to_string();
    let (a, b) = ev.pair()?;
    if a.inputs_hash == b.inputs_hash && a.result_hash == b.result_hash {
        bail!(
            "evidence {}: both statements sign the same inputs and result hash: that is not an equivocation",
            path.display()
        );
    }
    let chain = ctx.connect_signing().await?;
    if ev.chain_id != chain.chain_id() || ev.protocol != chain.book.contracts.protocol {
        bail!(
            "evidence {} is bound to chain {} and protocol {}, this deployment is chain {} and protocol {}",
            path.display(),
            ev.chain_id,
            ev.protocol,
            chain.chain_id(),
            chain.book.contracts.protocol
        );
    }
    let service = read_service(&chain, ev.service_id).await?;
    let protocol = chain.protocol();
    let found = chain
        .read(
            Contract::Protocol,
            "VouchProtocol.operatorSlot",
            protocol.operatorSlot(ev.service_id, ev.operator).call(),
        )
        .await?;
    if !found.member {
        bail!(
            "{} is not an operator of service {} ({} operators)",
            ev.operator,
            ev.service_id,
            service.operators.len()
        );
    }
    if let Some(slot) = ev.slot
        && U256::from(slot) != found.slot
    {
        bail!(
            "evidence {} says slot {slot}, but {} is at slot {} of service {}",
            path.display(),
            ev.operator,
            found.slot,
            ev.service_id
        );
    }
    let key =
        chain.read(Contract::KeyRegistry, "KeyRegistry.keyOf", chain.registry().keyOf(ev.operator).call()).await?;
    if key.is_empty() {
        bail!("{} has no registered BLS key: its signatures cannot be checked", ev.operator);
    }
    let key = PublicKey::from_eip2537(&key)
        .map_err(|e| eyre::eyre!("{}'s registered key is unreadable: {e}", ev.operator))?;
    let evidence = ev.clone();
    let (sig_a, sig_b) = blocking(move || {
        let (a, b) = evidence.pair()?;
        let check = |i: usize, s: &crate::evidence::SignedStatement| {
            s.check(&evidence, &key).map_err(|e| eyre::eyre!("statement {i}: {e}"))
        };
        Ok((check(1, a)?, check(2, b)?))
    })
    .await
    .map_err(|e| e.wrap_err(format!("evidence {} does not hold", path.display())))?;

    let signed = |s: &crate::evidence::SignedStatement, signature| VouchSlasher::SignedResult {
        inputsHash: s.inputs_hash,
        resultHash: s.result_hash,
        signature,
        batchRoot: s.batch.as_ref().map_or(B256::ZERO, |b| b.root),
        batchCount: s.batch.as_ref().map_or(0, |b| b.count),
        proof: s.batch.as_ref().map(|b| b.proof.clone()).unwrap_or_default(),
    };
    let receipt = chain
        .send(
            &format!("reporting the equivocation of {} on {name}", ev.operator),
            Contract::Slasher,
            None,
            chain.slasher().reportEquivocation(
                ev.service_id,
                ev.call_id,
                ev.operator,
                found.slot,
                signed(a, sig_a),
                signed(b, sig_b),
            ),
        )
        .await?;
    let slashed = event::<VouchStaking::Slashed>(&receipt);
    let (amount, to_payer, to_reporter, burned) = slashed
        .as_ref()
        .map_or((U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO), |s| (s.amount, s.toPayer, s.toReporter, s.burned));
    let st = &chain.stake;
    chain.out.emit(
        &json!({
            "operator": ev.operator, "serviceId": ev.service_id, "callId": ev.call_id.to_string(),
            "slashed": st.json(amount), "toPayer": st.json(to_payer), "toReporter": st.json(to_reporter),
            "burned": st.json(burned), "transaction": receipt.transaction_hash,
        }),
        &format!(
            "{} slashed {} for equivocating on {name}: {} to the payer, {} to you (claim with `vouch claim`), {} burned",
            ev.operator,
            st.format(amount),
            st.format(to_payer),
            st.format(to_reporter),
            st.format(burned)
        ),
    );
    Ok(())
}
