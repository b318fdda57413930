//! `vouch certify`: what a service's operators do for a call, done locally with their BLS keystores — each signer
//! signs the call's result digest, the signatures are aggregated, and the v1 certificate
//! (`docs/design/certificate.md`) is written. For devnets and tests, where every operator's key sits in
//! `<datadir>/keys`; in production the operators' nodes sign.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use serde_json::json;
use vouch_contracts::Contract;
use vouch_crypto::{Signature, aggregate_signatures};
use vouch_primitives::CallId;

use crate::{
    certificate::{self, CERTIFICATE_VERSION, Certificate, join_slots},
    commands::service::read_service,
    context::{Ctx, blocking},
    keyring::{self, KeyKind},
};

#[derive(Debug, Args)]
pub(crate) struct CertifyArgs {
    /// Call id (opened with `vouch call`)
    call: U256,
    /// The result the signers vouch for: its 32-byte hash (0x…), or @FILE to hash a file's bytes with keccak256
    #[arg(long, value_name = "HASH|@FILE")]
    result: String,
    /// Slots (0-based, in the service's operator order) of the operators that sign [default: every operator whose
    /// keys are in <datadir>/keys]
    #[arg(long, value_delimiter = ',', value_name = "SLOTS")]
    signers: Vec<usize>,
    /// Write the certificate to this file [default: print it on stdout]
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn result_hash(spec: &str) -> eyre::Result<B256> {
    match spec.strip_prefix('@') {
        Some(path) => {
            Ok(keccak256(std::fs::read(path).map_err(|e| eyre!("--result @{path}: cannot read {path}: {e}"))?))
        }
        None => spec
            .parse::<B256>()
            .map_err(|_| eyre!("--result {spec:?} is neither a 32-byte hash (0x and 64 hex digits) nor @FILE")),
    }
}

/// The BLS keystore of the operator whose transaction key in `keys` has `address`: `<name>.bls.json` beside
/// `<name>.eth.json`.
fn bls_keystore_of(keys: &std::path::Path, address: Address) -> eyre::Result<Option<PathBuf>> {
    for name in keyring::names(keys, KeyKind::Tx) {
        let tx = keyring::keystore_path(keys, &name, KeyKind::Tx);
        if keyring::tx_address(&tx)? == Some(address) {
            let bls = keyring::keystore_path(keys, &name, KeyKind::Bls);
            return Ok(bls.is_file().then_some(bls));
        }
    }
    Ok(None)
}

pub(crate) async fn run(args: CertifyArgs, ctx: &Ctx) -> eyre::Result<()> {
    let result_hash = result_hash(&args.result)?;
    let chain = ctx.connect().await?;
    let protocol = chain.protocol();
    let call = chain.read(Contract::Protocol, "VouchProtocol.getCall", protocol.getCall(args.call).call()).await?;
    let name = CallId(args.call).to_string();
    if call.status == 0 {
        bail!("unknown {name}: no such call on chain (open one with `vouch call`)");
    }
    let service = read_service(&chain, call.serviceId).await?;
    let keys = ctx.keys_dir();
    let mut found = Vec::new();
    for (slot, operator) in service.operators.iter().enumerate() {
        found.push((slot, *operator, bls_keystore_of(&keys, *operator)?));
    }
    let signers: Vec<usize> = if args.signers.is_empty() {
        found.iter().filter(|(_, _, k)| k.is_some()).map(|(s, _, _)| *s).collect()
    } else {
        args.signers.clone()
    };
    if signers.is_empty() {
        bail!(
            "no operator of service {} has its keys in {} (a transaction key with the operator's address and a BLS \
             key of the same name)",
            call.serviceId,
            keys.display()
        );
    }
    let mut sorted = signers.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != signers.len() {
        bail!("--signers lists a slot twice: a signer bitmap holds each operator once");
    }
    let mut keystores = Vec::new();
    for slot in &sorted {
        let Some((_, operator, keystore)) = found.get(*slot) else {
            bail!(
                "--signers {slot}: service {} has {} operators (slots 0..{})",
                call.serviceId,
                found.len(),
                found.len().saturating_sub(1)
            );
        };
        let Some(keystore) = keystore else {
            bail!(
                "--signers {slot}: no BLS key of operator {operator} in {} (its transaction key and a BLS key of the \
                 same name)",
                keys.display()
            );
        };
        keystores.push(keystore.clone());
    }
    let mut cert = Certificate {
        version: CERTIFICATE_VERSION,
        chain_id: chain.book.chain_id,
        protocol: chain.book.contracts.protocol,
        service_id: call.serviceId,
        call_id: args.call,
        inputs_hash: call.inputsHash,
        result_hash,
        signer_bitmap: sorted.iter().fold(U256::ZERO, |b, s| b | (U256::from(1) << *s)),
        signature: Bytes::new(),
        batch: None,
        key_set: None,
        stake_at_risk: None,
    };
    let digest = cert.digest();
    chain.out.progress(&format!("signing {name} with the BLS keys of slots {}…", join_slots(&sorted)));
    let aggregate = blocking(move || {
        let mut partials: Vec<Signature> = Vec::new();
        for keystore in &keystores {
            let password = keyring::password_file_for(keystore, None, "--password-file")?;
            let secret = keyring::decrypt_bls(keystore, &password)?;
            partials.push(secret.sign(&digest));
        }
        aggregate_signatures(&partials).wrap_err("aggregating the signatures")
    })
    .await?;
    cert.signature = Bytes::from(aggregate.to_eip2537().to_vec());
    let verification = certificate::verify(&chain, &cert).await?;
    if verification.is_valid() {
        cert.stake_at_risk = Some(verification.signer_stake);
    }
    let text = format!("{}\n", serde_json::to_string_pretty(&cert)?);
    let warning = verification.failure.as_ref().map(|f| format!("warning: this certificate does not verify: {f}"));
    match &args.output {
        None => {
            if let Some(w) = &warning {
                chain.out.progress(w);
            }
            print!("{text}");
        }
        Some(path) => {
            std::fs::write(path, &text).wrap_err_with(|| format!("writing {}", path.display()))?;
            chain.out.emit(
                &json!({
                    "certificate": path, "callId": args.call.to_string(), "serviceId": call.serviceId,
                    "resultHash": result_hash, "signers": sorted, "digest": digest, "valid": verification.is_valid(),
                    "reason": verification.failure,
                }),
                &format!(
                    "certificate for {name} written to {}: result {result_hash} signed by slots {} (digest {digest}){}",
                    path.display(),
                    join_slots(&sorted),
                    warning.map(|w| format!("\n{w}")).unwrap_or_default()
                ),
            );
        }
    }
    Ok(())
}
