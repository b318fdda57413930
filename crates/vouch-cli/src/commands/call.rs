//! `vouch call`: open a call on-chain (`callJob`, escrowing exactly the job's price) or call through a gateway paying
//! with x402 (`--x402`, [`super::x402`]), show a call, settle one with a certificate, refund one whose deadline
//! passed.

use std::path::PathBuf;

use alloy_primitives::{Bytes, U256};
use clap::{Args, Subcommand};
use eyre::{bail, eyre};
use serde_json::json;
use vouch_contracts::{Contract, VouchProtocol};
use vouch_primitives::CallId;

use crate::{
    certificate::{self, bitmap_slots, join_slots},
    chain::event,
    commands::{
        service::{read_service, status_name},
        verify::print_verification,
        x402::{self, X402Call},
    },
    context::Ctx,
    duration::{format_timestamp, format_timestamp_relative},
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct CallArgs {
    #[command(subcommand)]
    command: Option<CallCommand>,
    /// Service id
    #[arg(required = true)]
    service: Option<u64>,
    /// Job index in the service's blueprint (0, 1, …)
    #[arg(required = true)]
    job: Option<u8>,
    /// The job's inputs: JSON text, or @FILE to send a file's bytes (which must be JSON)
    #[arg(long, required = true, value_name = "JSON|@FILE")]
    input: Option<String>,
    /// Call through this Vouch gateway instead of on chain, paying with x402: an EIP-3009 authorization of the
    /// job's price signed with the transaction key (no transaction, no gas), collected only together with the
    /// certificate
    #[arg(long, value_name = "GATEWAY_URL")]
    x402: Option<String>,
    /// With --x402: the least stake that must be at risk behind the result, e.g. `1000 VST`; the gateway refuses
    /// the call, uncharged, when the signers put less at risk
    #[arg(long, value_name = "AMOUNT", requires = "x402")]
    min_stake: Option<String>,
    /// With --x402: the most this call may cost, e.g. `0.5 vUSD`; a higher price is refused before anything is
    /// signed [default: 1 vUSD]
    #[arg(long, value_name = "AMOUNT", requires = "x402")]
    max_amount: Option<String>,
    /// With --x402: write the certificate (JSON, docs/design/certificate.md) to this file
    #[arg(long, value_name = "FILE", requires = "x402")]
    certificate: Option<PathBuf>,
    /// With --x402: ask the gateway to answer `202` with a result URL (`Prefer: respond-async`) and poll it until the
    /// answer, instead of holding one connection open for the whole call (slow jobs, proxies with short timeouts)
    #[arg(long = "async", requires = "x402")]
    respond_async: bool,
}

#[derive(Debug, Subcommand)]
enum CallCommand {
    /// Show a call: status, service, job, payer, payment, deadline, inputs, result and signers
    Show {
        /// Call id (decimal, or 0x hex for x402 calls)
        call: U256,
    },
    /// Settle an open call with a certificate (verified locally first); anyone may submit one
    Settle {
        /// The certificate file (JSON, docs/design/certificate.md)
        certificate: PathBuf,
    },
    /// Refund an open call whose deadline passed (the payment becomes claimable by its payer); anyone may
    Refund {
        /// Call id
        call: U256,
    },
}

pub(crate) async fn run(args: CallArgs, ctx: &Ctx) -> eyre::Result<()> {
    match args.command {
        Some(CallCommand::Show { call }) => show(ctx, call).await,
        Some(CallCommand::Settle { certificate }) => settle(ctx, &certificate).await,
        Some(CallCommand::Refund { call }) => refund(ctx, call).await,
        None => {
            let (Some(service), Some(job), Some(input)) = (args.service, args.job, args.input) else {
                bail!("usage: vouch call [--x402 <GATEWAY_URL>] <SERVICE> <JOB> --input <JSON|@FILE>");
            };
            match &args.x402 {
                Some(gateway) => {
                    let call = X402Call {
                        gateway,
                        service,
                        job,
                        inputs: read_input(&input)?,
                        min_stake: args.min_stake.as_deref(),
                        max_amount: args.max_amount.as_deref(),
                        certificate: args.certificate.as_deref(),
                        respond_async: args.respond_async,
                    };
                    x402::call(ctx, call).await
                }
                None => open(ctx, service, job, &input).await,
            }
        }
    }
}

/// The bytes of `--input`: the text itself, or a file's bytes for `@FILE`; either must be JSON.
fn read_input(input: &str) -> eyre::Result<Vec<u8>> {
    let (bytes, origin) = match input.strip_prefix('@') {
        Some(path) => (
            std::fs::read(path).map_err(|e| eyre!("--input @{path}: cannot read {path}: {e}"))?,
            format!("--input @{path}"),
        ),
        None => (input.as_bytes().to_vec(), "--input".to_owned()),
    };
    serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| eyre!("{origin} is not valid JSON: {e}"))?;
    Ok(bytes)
}

async fn open(ctx: &Ctx, service_id: u64, job: u8, input: &str) -> eyre::Result<()> {
    let inputs = read_input(input)?;
    let chain = ctx.connect_signing().await?;
    let me = chain.sender()?;
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let service = read_service(&chain, service_id).await?;
    if service.status != 2 {
        bail!("service {service_id} is {}, not Active: it takes no calls", status_name(service.status));
    }
    let now = chain.now().await?;
    if now > service.expiry {
        bail!("service {service_id} expired {}", format_timestamp_relative(service.expiry, now));
    }
    if !service.publicAccess
        && !chain.read(p, "VouchProtocol.isPermittedCaller", protocol.isPermittedCaller(service_id, me).call()).await?
    {
        bail!("service {service_id} is private and {me} is not a permitted caller (ask its owner {})", service.owner);
    }
    let blueprint =
        chain.read(p, "VouchProtocol.getBlueprint", protocol.getBlueprint(service.blueprintId).call()).await?;
    let Some(spec) = blueprint.jobs.get(usize::from(job)) else {
        let n = blueprint.jobs.len();
        bail!(
            "service {service_id}'s blueprint {} has {n} job{} (indexes 0..{}); job {job} does not exist",
            service.blueprintId,
            if n == 1 { "" } else { "s" },
            n.saturating_sub(1)
        );
    };
    let price = U256::from(spec.price);
    let pay = &chain.payment;
    chain.require_balance(pay, me, price).await?;
    chain.approve(pay, chain.book.contracts.protocol, price, &format!("job {job} of service {service_id}")).await?;
    let receipt = chain
        .send(
            &format!("calling job {job} of service {service_id} for {}", pay.format(price)),
            p,
            Some(pay),
            protocol.callJob(service_id, job, Bytes::from(inputs)),
        )
        .await?;
    let opened = event::<VouchProtocol::CallOpened>(&receipt)
        .ok_or_else(|| eyre!("the transaction {} emitted no CallOpened event", receipt.transaction_hash))?;
    let deadline = u64::try_from(opened.deadline).unwrap_or(u64::MAX);
    chain.out.emit(
        &json!({
            "callId": opened.callId.to_string(), "serviceId": service_id, "jobIndex": job, "payer": me,
            "payment": pay.json(opened.payment), "deadline": deadline, "inputsHash": opened.inputsHash,
            "transaction": receipt.transaction_hash,
        }),
        &format!(
            "{} opened on service {service_id}, job {job}: {} escrowed\n  inputs hash  {}\n  deadline     {}\nthe service's \
             operators run it and sign the result; follow it with `vouch call show {}`",
            CallId(opened.callId),
            pay.format(opened.payment),
            opened.inputsHash,
            format_timestamp_relative(deadline, now),
            opened.callId
        ),
    );
    Ok(())
}

fn call_status(status: u8) -> &'static str {
    match status {
        0 => "None",
        1 => "Open",
        2 => "Settled",
        3 => "Refunded",
        _ => "unknown",
    }
}

async fn show(ctx: &Ctx, id: U256) -> eyre::Result<()> {
    let chain = ctx.connect().await?;
    let protocol = chain.protocol();
    let p = Contract::Protocol;
    let call = chain.read(p, "VouchProtocol.getCall", protocol.getCall(id).call()).await?;
    let name = CallId(id).to_string();
    if call.status == 0 {
        let count = chain.read(p, "VouchProtocol.callCount", protocol.callCount().call()).await?;
        bail!(
            "unknown {name}: no such call on chain (`vouch call` opened {count} calls so far; x402 calls of a paid batch are not stored per call)"
        );
    }
    let now = chain.now().await?;
    let service = chain.read(p, "VouchProtocol.getService", protocol.getService(call.serviceId).call()).await?;
    let slots = bitmap_slots(call.signerBitmap);
    let signers: Vec<_> = slots.iter().map(|s| (*s, service.operators.get(*s).copied())).collect();
    let pay = &chain.payment;
    let payment = U256::from(call.payment);
    let mut lines = vec![
        format!("{name}: {}", call_status(call.status)),
        format!("  service       {} (blueprint {}), job {}", call.serviceId, service.blueprintId, call.jobIndex),
        format!("  payer         {}", call.payer),
        format!("  payment       {}", pay.format(payment)),
        format!("  deadline      {}", format_timestamp_relative(call.deadline, now)),
        format!("  inputs hash   {}", call.inputsHash),
    ];
    if call.status == 2 {
        lines.push(format!("  result hash   {}", call.resultHash));
        lines.push(format!("  settled at    {}", format_timestamp(call.settledAt)));
        lines.push(format!("  signers       slots {} of {}", join_slots(&slots), service.operators.len()));
        for (slot, operator) in &signers {
            lines.push(format!(
                "    slot {slot}  {}",
                operator.map_or_else(|| "(outside the set)".to_owned(), |o| o.to_string())
            ));
        }
    } else if call.status == 1 && now > call.deadline {
        lines.push(format!("  the deadline passed: anyone may refund it with `vouch call refund {id}`"));
    }
    chain.out.emit(
        &json!({
            "callId": id.to_string(), "status": call_status(call.status), "serviceId": call.serviceId,
            "blueprintId": service.blueprintId, "jobIndex": call.jobIndex, "payer": call.payer,
            "payment": pay.json(payment), "deadline": call.deadline, "settledAt": call.settledAt,
            "inputsHash": call.inputsHash,
            "resultHash": (call.status == 2).then_some(call.resultHash),
            "signerBitmap": format!("{:#x}", call.signerBitmap),
            "signers": signers.iter().map(|(slot, op)| json!({"slot": slot, "operator": op})).collect::<Vec<_>>(),
        }),
        &lines.join("\n"),
    );
    Ok(())
}

async fn settle(ctx: &Ctx, path: &std::path::Path) -> eyre::Result<()> {
    let cert = certificate::read(path)?;
    if cert.batch.is_some() {
        bail!(
            "certificate {}: a batch certificate settles all its calls at once with settleBatch; `vouch call settle` \
             takes single-call certificates",
            path.display()
        );
    }
    let chain = ctx.connect_signing().await?;
    let verification = certificate::verify(&chain, &cert).await?;
    if let Some(failure) = &verification.failure {
        print_verification(&chain, path, &cert, &verification);
        bail!("certificate {} is invalid: {failure}", path.display());
    }
    let protocol = chain.protocol();
    let call = chain.read(Contract::Protocol, "VouchProtocol.getCall", protocol.getCall(cert.call_id).call()).await?;
    let name = CallId(cert.call_id).to_string();
    match call.status {
        1 => {}
        2 => bail!("{name} is already settled (with result {})", call.resultHash),
        3 => bail!("{name} was refunded: it can no longer be settled"),
        _ => bail!("{name} is not on chain: `vouch call settle` settles calls opened with `vouch call`"),
    }
    let now = chain.now().await?;
    if now > call.deadline {
        bail!(
            "{name} passed its deadline ({}): it can only be refunded now",
            format_timestamp_relative(call.deadline, now)
        );
    }
    let signature = certificate::eip2537_signature(&cert)?;
    let receipt = chain
        .send(
            &format!("settling {name} with the certificate of signers {}", join_slots(&verification.signers)),
            Contract::Protocol,
            None,
            protocol.settle(cert.call_id, cert.result_hash, cert.signer_bitmap, signature),
        )
        .await?;
    chain.out.emit(
        &json!({
            "callId": cert.call_id.to_string(), "resultHash": cert.result_hash, "signers": verification.signers,
            "stakeAtRisk": chain.stake.json(verification.signer_stake), "transaction": receipt.transaction_hash,
        }),
        &format!(
            "{name} settled: result {} vouched for by slots {} ({} at risk)",
            cert.result_hash,
            join_slots(&verification.signers),
            chain.stake.format(verification.signer_stake)
        ),
    );
    Ok(())
}

async fn refund(ctx: &Ctx, id: U256) -> eyre::Result<()> {
    let chain = ctx.connect_signing().await?;
    let protocol = chain.protocol();
    let call = chain.read(Contract::Protocol, "VouchProtocol.getCall", protocol.getCall(id).call()).await?;
    let name = CallId(id).to_string();
    match call.status {
        1 => {}
        0 => bail!("unknown {name}: no such call on chain"),
        s => bail!("{name} is {}: only an open call can be refunded", call_status(s)),
    }
    let now = chain.now().await?;
    if now <= call.deadline {
        bail!("{name} can be refunded only after its deadline, {}", format_timestamp_relative(call.deadline, now));
    }
    let receipt = chain.send(&format!("refunding {name}"), Contract::Protocol, None, protocol.refund(id)).await?;
    let payment = U256::from(call.payment);
    chain.out.emit(
        &json!({"callId": id.to_string(), "payer": call.payer, "payment": chain.payment.json(payment), "transaction": receipt.transaction_hash}),
        &format!(
            "{name} refunded: {} claimable by {} (`vouch claim`)",
            chain.payment.format(payment),
            call.payer
        ),
    );
    Ok(())
}
