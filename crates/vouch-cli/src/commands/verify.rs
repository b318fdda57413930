//! `vouch verify`: checks a certificate against chain state read over RPC, and says exactly why one fails.

use std::path::{Path, PathBuf};

use clap::Args;
use eyre::bail;
use serde_json::json;

use crate::{
    certificate::{self, Certificate, Outcome, Verification},
    chain::Chain,
    context::Ctx,
};

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The certificate (JSON, docs/design/certificate.md)
    certificate: PathBuf,
}

pub(crate) async fn run(args: VerifyArgs, ctx: &Ctx) -> eyre::Result<()> {
    let cert = certificate::read(&args.certificate)?;
    let chain = ctx.connect().await?;
    let verification = certificate::verify(&chain, &cert).await?;
    print_verification(&chain, &args.certificate, &cert, &verification);
    if let Some(failure) = &verification.failure {
        bail!("certificate {} is invalid: {failure}", args.certificate.display());
    }
    Ok(())
}

/// Prints every check (text) or the verdict with its checks (JSON).
pub(crate) fn print_verification(chain: &Chain, path: &Path, cert: &Certificate, v: &Verification) {
    let mark = |o: Outcome| match o {
        Outcome::Pass => "✓",
        Outcome::Fail => "✗",
        Outcome::Note => "·",
    };
    let mut lines = vec![format!("certificate {}: {}", path.display(), certificate::describe(cert))];
    lines.extend(v.checks.iter().map(|c| format!("  {} {}", mark(c.outcome), c.text)));
    if v.is_valid() {
        lines.push(format!("valid: {} at risk behind result {}", chain.stake.format(v.signer_stake), cert.result_hash));
    }
    chain.out.emit(
        &json!({
            "certificate": path, "valid": v.is_valid(), "reason": v.failure,
            "serviceId": cert.service_id, "callId": cert.call_id.to_string(), "resultHash": cert.result_hash,
            "digest": v.digest, "signers": v.signers, "signerOperators": v.signer_addresses,
            "stakeAtRisk": chain.stake.json(v.signer_stake), "totalStake": chain.stake.json(v.total_stake),
            "checks": v.checks,
        }),
        &lines.join("\n"),
    );
}
