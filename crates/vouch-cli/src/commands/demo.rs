//! `vouch demo`: the BLS round trip an operator set performs for one call, end to end, on keys
//! stored in real keystores. With `--registry` it also prints what `scripts/demo.sh` sends to the
//! contracts on anvil, where the same certificate is verified on-chain.

use super::keys;
use crate::{context::Ctx, keyring, output::hex0x};
use alloy_primitives::{Address, B256, U256, keccak256};
use clap::Args;
use eyre::{WrapErr, bail, ensure};
use serde_json::json;
use vouch_crypto::{PublicKey, Signature, aggregate_signatures, fast_aggregate_verify};
use vouch_primitives::{CallId, ChainBinding, ResultRef, ServiceId, result_digest};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Chain id the signatures are bound to.
    #[arg(long, default_value_t = 31337)]
    chain_id: u64,
    /// Key registry the proofs of possession are bound to.
    #[arg(long, default_value_t = Address::ZERO)]
    registry: Address,
    /// Protocol contract the result digest is bound to.
    #[arg(long, default_value_t = Address::ZERO)]
    protocol: Address,
    /// Operator addresses, in set order (default: three placeholder addresses).
    #[arg(long = "operator")]
    operators: Vec<Address>,
    /// Slots (0-based) of the operators that sign; default: all.
    #[arg(long, value_delimiter = ',')]
    signers: Vec<usize>,
}

pub(crate) fn run(args: &DemoArgs, ctx: &Ctx) -> eyre::Result<()> {
    let datadir = &ctx.settings.datadir.value;
    let out = &ctx.out;
    let operators: Vec<Address> = if args.operators.is_empty() {
        (1..=3u64).map(|i| Address::left_padding_from(&(0x1000 + i).to_be_bytes())).collect()
    } else {
        args.operators.clone()
    };
    ensure!(operators.len() <= 256, "at most 256 operators (the signer bitmap width)");
    let signers: Vec<usize> =
        if args.signers.is_empty() { (0..operators.len()).collect() } else { args.signers.clone() };
    if let Some(bad) = signers.iter().find(|s| **s >= operators.len()) {
        bail!("--signers {bad}: there are only {} operators (slots 0..{})", operators.len(), operators.len() - 1);
    }
    let mut sorted = signers.clone();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
        bail!("--signers lists slot {} twice: a signer bitmap holds each operator once", pair[0]);
    }
    let registry = ChainBinding::new(args.chain_id, args.registry);
    let protocol = ChainBinding::new(args.chain_id, args.protocol);

    // 1. One BLS key per operator, in an EIP-2335 keystore with a password file.
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).map_err(|e| eyre::eyre!("system randomness unavailable: {e}"))?;
    let run_dir = datadir.join(format!("demo-{}", alloy_primitives::hex::encode(suffix)));
    let mut public_keys = Vec::new();
    let mut secrets = Vec::new();
    let mut operator_json = Vec::new();
    for (slot, operator) in operators.iter().enumerate() {
        let created = keys::new_bls_key(&run_dir, &format!("op{slot}"))?;
        // 2. Unlock it again from disk, as a node does at start.
        let secret = keyring::decrypt_bls(&created.keystore, &created.password_file)?;
        ensure!(secret.public_key() == created.public_key, "keystore round trip changed the key");
        // 3. Proof of possession bound to (chain, registry, operator).
        let pop = secret.prove_possession(&registry, *operator);
        pop.verify(&created.public_key, &registry, *operator).wrap_err("fresh proof of possession")?;
        operator_json.push(json!({
            "slot": slot, "operator": operator.to_string(), "keystore": created.keystore,
            "pubkey": hex0x(created.public_key.to_eip2537()), "pop": hex0x(pop.signature().to_eip2537()),
        }));
        public_keys.push(created.public_key);
        secrets.push(secret);
    }

    // 4. Each signer signs the result digest of one call; the aggregate is one G2 point.
    let result = ResultRef {
        service_id: ServiceId(1),
        call_id: CallId::from(1),
        inputs_hash: keccak256(br#"{"text":"hello, vouch"}"#),
        result_hash: keccak256(br#"{"echo":"hello, vouch"}"#),
    };
    let digest: B256 = result_digest(&protocol, &result);
    let partials: Vec<Signature> = signers.iter().map(|s| secrets[*s].sign(&digest)).collect();
    let aggregate = aggregate_signatures(&partials)?;
    let signer_keys: Vec<PublicKey> = signers.iter().map(|s| public_keys[*s]).collect();
    fast_aggregate_verify(&signer_keys, &digest, &aggregate).wrap_err("aggregate must verify")?;
    let bitmap = signers.iter().fold(U256::ZERO, |b, s| b | (U256::from(1) << *s));

    // 5. A tampered certificate (one signer dropped from the bitmap) must not verify.
    let tamper_checked = signer_keys.len() > 1;
    if tamper_checked {
        ensure!(
            fast_aggregate_verify(&signer_keys[1..], &digest, &aggregate).is_err(),
            "an aggregate verified without one of its signers"
        );
    }

    let report = json!({
        "chainId": args.chain_id, "registry": args.registry.to_string(), "protocol": args.protocol.to_string(),
        "operators": operator_json,
        "result": {"serviceId": 1, "callId": 1, "inputsHash": result.inputs_hash.to_string(), "resultHash": result.result_hash.to_string()},
        "digest": digest.to_string(),
        "bitmap": format!("{bitmap:#x}"),
        "signature": hex0x(aggregate.to_eip2537()),
        "signatureCompressed": hex0x(aggregate.to_compressed()),
    });
    let report_path = run_dir.join("certificate.json");
    std::fs::write(&report_path, format!("{report:#}\n"))
        .wrap_err_with(|| format!("writing {}", report_path.display()))?;
    out.emit(
        &report,
        &format!(
            "{} operators, keys in {}\n{} signed service 1 / call 1 (digest {digest})\naggregate verifies off-chain{}\ncertificate: {}",
            operators.len(),
            run_dir.join("keys").display(),
            signers.len(),
            if tamper_checked { "; dropping a signer makes it fail" } else { "" },
            report_path.display()
        ),
    );
    Ok(())
}
