//! Certificates as JSON (`docs/design/certificate.md`, version 1) and their verification against chain state.
//!
//! Verification reads the service (status, operators, snapshot stakes, pinned key set), the blueprint's policy, the
//! call if it is on chain, each operator's slashable stake and each signer's registered BLS key, and then checks, in
//! order: the chain binding, the service, the call, the bitmap, `minSigners`, the quorum over current weights (and
//! `VouchProtocol.quorumReached` agrees), and the BLS aggregate over the digest rebuilt with `vouch-primitives`
//! (and `KeyRegistry.verifyAggregate` agrees). The first failure is the verdict; every check run is reported.

use std::path::Path;

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::Serialize;
use vouch_contracts::Contract;
use vouch_crypto::{PublicKey, Signature, fast_aggregate_verify};
pub(crate) use vouch_primitives::certificate::{BatchProof, CERTIFICATE_VERSION, Certificate, bitmap_slots};
use vouch_primitives::{CallId, batch_leaf, merkle::process_proof};

use crate::{
    chain::Chain,
    context::blocking,
    json_file,
    output::{count, hex0x},
    rate::{format_bps, format_share},
};

/// Reads a certificate file.
pub(crate) fn read(path: &Path) -> eyre::Result<Certificate> {
    json_file::read_versioned(path, "certificate", CERTIFICATE_VERSION)
}

/// Parses a signature given as EIP-2537 (256 bytes) or compressed (96 bytes).
pub(crate) fn parse_signature(bytes: &[u8]) -> Result<Signature, String> {
    let parsed = match bytes.len() {
        256 => Signature::from_eip2537(bytes),
        96 => Signature::from_compressed(bytes),
        n => return Err(format!("a signature is 256 bytes (EIP-2537) or 96 bytes (compressed), not {n}")),
    };
    parsed.map_err(|e| format!("the signature is not a valid G2 point: {e}"))
}

/// `0,2,5`.
pub(crate) fn join_slots(slots: &[usize]) -> String {
    slots.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// Passed.
    Pass,
    /// Failed: the certificate is invalid.
    Fail,
    /// Information that does not decide validity.
    Note,
}

/// One check and what it found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// Pass, fail or note.
    pub(crate) outcome: Outcome,
    /// What it found, in one sentence.
    pub(crate) text: String,
}

/// A certificate checked against the chain.
#[derive(Debug, Default)]
pub(crate) struct Verification {
    /// Every check run, in order.
    pub(crate) checks: Vec<Check>,
    /// The first failure, if any: why the certificate is invalid.
    pub(crate) failure: Option<String>,
    /// The digest the signers must have signed.
    pub(crate) digest: Option<B256>,
    /// The signers' slots.
    pub(crate) signers: Vec<usize>,
    /// Their operators.
    pub(crate) signer_addresses: Vec<Address>,
    /// The signers' current weight (stake at risk) and the whole set's.
    pub(crate) signer_stake: U256,
    /// The whole set's current weight.
    pub(crate) total_stake: U256,
}

impl Verification {
    fn pass(&mut self, text: String) {
        self.checks.push(Check { outcome: Outcome::Pass, text });
    }

    fn note(&mut self, text: String) {
        self.checks.push(Check { outcome: Outcome::Note, text });
    }

    fn fail(mut self, text: String) -> Self {
        self.checks.push(Check { outcome: Outcome::Fail, text: text.clone() });
        self.failure = Some(text);
        self
    }

    /// Whether every check passed.
    pub(crate) const fn is_valid(&self) -> bool {
        self.failure.is_none()
    }
}

/// Checks `cert` against the deployment behind `chain`. RPC failures are errors; an invalid certificate is a
/// [`Verification`] with a failure.
pub(crate) async fn verify(chain: &Chain, cert: &Certificate) -> eyre::Result<Verification> {
    let mut v = Verification::default();
    let p = Contract::Protocol;

    // The deployment the signatures are bound to.
    if cert.chain_id != chain.chain_id() {
        return Ok(v.fail(format!(
            "the certificate is for chain {}, but the RPC at {} serves chain {}",
            cert.chain_id,
            chain.rpc,
            chain.chain_id()
        )));
    }
    if cert.protocol != chain.book.contracts.protocol {
        return Ok(v.fail(format!(
            "the certificate is bound to protocol {}, but this deployment's protocol is {} ({})",
            cert.protocol,
            chain.book.contracts.protocol,
            chain.book_path.display()
        )));
    }
    v.pass(format!("bound to chain {} and protocol {}", cert.chain_id, cert.protocol));

    // The service.
    let id = cert.service_id;
    let protocol = chain.protocol();
    let service = chain.read(p, "VouchProtocol.getService", protocol.getService(id).call()).await?;
    match service.status {
        0 => {
            let n_services = chain.read(p, "VouchProtocol.serviceCount", protocol.serviceCount().call()).await?;
            return Ok(v.fail(format!("unknown service {id}: the protocol has {}", count(n_services, "service"))));
        }
        1 => {
            return Ok(v.fail(format!(
                "service {id} is Requested, not Active: not every operator approved it, so it has no key set"
            )));
        }
        2 => v.pass(format!(
            "service {id} is Active (blueprint {}, {} operators)",
            service.blueprintId,
            service.operators.len()
        )),
        _ => v.note(format!(
            "service {id} is Terminated: no new calls open, but certificates of its calls still settle (blueprint {}, {} \
             operators)",
            service.blueprintId,
            service.operators.len()
        )),
    }
    if let Some(key_set) = cert.key_set
        && key_set != service.keySet
    {
        return Ok(v.fail(format!(
            "the certificate names key set {key_set}, but service {id} pinned key set {}",
            service.keySet
        )));
    }
    let blueprint =
        chain.read(p, "VouchProtocol.getBlueprint", protocol.getBlueprint(service.blueprintId).call()).await?;
    let policy = &blueprint.policy;

    // The call, when it is on chain.
    let call = chain.read(p, "VouchProtocol.getCall", protocol.getCall(cert.call_id).call()).await?;
    let call_name = CallId(cert.call_id).to_string();
    if call.status == 0 {
        v.note(format!(
            "{call_name} is not on chain (an x402 call not opened yet, or a call of a paid batch): its inputs cannot be \
             compared"
        ));
    } else {
        if call.serviceId != id {
            return Ok(v.fail(format!(
                "{call_name} belongs to service {}, the certificate names service {id}",
                call.serviceId
            )));
        }
        if call.inputsHash != cert.inputs_hash {
            return Ok(v.fail(format!(
                "the certificate's inputs hash {} differs from {call_name}'s on-chain inputs hash {}",
                cert.inputs_hash, call.inputsHash
            )));
        }
        match call.status {
            2 if call.resultHash != cert.result_hash => {
                return Ok(v.fail(format!(
                    "{call_name} was settled with result {}, but the certificate vouches for result {}",
                    call.resultHash, cert.result_hash
                )));
            }
            2 => v.pass(format!("{call_name} is settled with this result")),
            3 => v.note(format!("{call_name} was refunded: this certificate came too late to settle it")),
            _ => v.pass(format!("{call_name} is open, with these inputs")),
        }
    }

    // The bitmap.
    let n = service.operators.len();
    let bitmap = cert.signer_bitmap;
    if bitmap.is_zero() {
        return Ok(v.fail("the signer bitmap is empty".into()));
    }
    let highest = 255 - bitmap.leading_zeros();
    if highest >= n {
        return Ok(v.fail(format!("signer bitmap has bit {highest} but the service has {n} operators")));
    }
    let signers = bitmap_slots(bitmap);
    v.signers.clone_from(&signers);
    v.signer_addresses = signers.iter().map(|s| service.operators[*s]).collect();
    if signers.len() < usize::from(policy.minSigners) {
        return Ok(v.fail(format!(
            "{} ({} {}), but blueprint {} needs at least {}",
            count(signers.len() as u128, "signer"),
            if signers.len() == 1 { "slot" } else { "slots" },
            join_slots(&signers),
            service.blueprintId,
            policy.minSigners
        )));
    }
    v.pass(format!(
        "signers: slots {} ({} of {n} operators; the blueprint needs at least {})",
        join_slots(&signers),
        signers.len(),
        policy.minSigners
    ));

    // The quorum over current weights: snapshot stake capped by what is slashable now.
    let staking = chain.staking();
    let mut signer_stake = U256::ZERO;
    let mut total = U256::ZERO;
    for (slot, operator) in service.operators.iter().enumerate() {
        let at_risk = chain
            .read(Contract::Staking, "VouchStaking.slashableStake", staking.slashableStake(*operator).call())
            .await?;
        let snapshot = service.stakes.get(slot).copied().unwrap_or_default();
        let weight = at_risk.min(snapshot);
        total += weight;
        if bitmap.bit(slot) {
            signer_stake += weight;
        }
    }
    v.signer_stake = signer_stake;
    v.total_stake = total;
    let share = format_share(signer_stake, total).unwrap_or_else(|| "0%".into());
    let needs = format_bps(u64::from(policy.quorumBps));
    let reached =
        !signer_stake.is_zero() && signer_stake * U256::from(10_000u64) >= U256::from(policy.quorumBps) * total;
    let on_chain = chain.read(p, "VouchProtocol.quorumReached", protocol.quorumReached(id, bitmap).call()).await?;
    let stake = &chain.stake;
    if !reached {
        return Ok(v.fail(format!(
            "quorum: signers hold {share} of stake ({} of {}), blueprint needs {needs}",
            stake.format(signer_stake),
            stake.format(total)
        )));
    }
    if !on_chain {
        return Ok(
            v.fail("VouchProtocol.quorumReached disagrees with the stakes read: the quorum is not reached".into())
        );
    }
    v.pass(format!(
        "quorum: signers hold {share} of stake ({} of {}), blueprint needs {needs}",
        stake.format(signer_stake),
        stake.format(total)
    ));

    // The aggregate signature over the digest, against the signers' registered keys.
    if let Some(batch) = &cert.batch {
        let leaf = batch_leaf(&vouch_primitives::BatchEntry {
            call_id: CallId(cert.call_id),
            inputs_hash: cert.inputs_hash,
            result_hash: cert.result_hash,
        });
        if batch.count == 0 {
            return Ok(v.fail("the batch proof has count 0".into()));
        }
        if process_proof(leaf, &batch.proof) != batch.root {
            return Ok(
                v.fail(format!("the batch proof does not place {call_name}'s leaf {leaf} under root {}", batch.root))
            );
        }
        v.pass(format!("{call_name} is in the batch of {} calls with root {}", batch.count, batch.root));
    }
    let digest = cert.digest();
    v.digest = Some(digest);
    let signature = match parse_signature(&cert.signature) {
        Ok(s) => s,
        Err(e) => return Ok(v.fail(e)),
    };
    let registry = chain.registry();
    let mut keys = Vec::with_capacity(signers.len());
    let addresses = v.signer_addresses.clone();
    for (slot, operator) in signers.iter().zip(&addresses) {
        let key = chain.read(Contract::KeyRegistry, "KeyRegistry.keyOf", registry.keyOf(*operator).call()).await?;
        if key.is_empty() {
            return Ok(v.fail(format!("operator {operator} (slot {slot}) has no registered BLS key")));
        }
        match PublicKey::from_eip2537(&key) {
            Ok(pk) => keys.push(pk),
            Err(e) => return Ok(v.fail(format!("operator {operator} (slot {slot}) has an unreadable BLS key: {e}"))),
        }
    }
    let verified = blocking(move || Ok(fast_aggregate_verify(&keys, &digest, &signature).is_ok())).await?;
    if !verified {
        return Ok(v.fail(format!(
            "aggregate signature does not verify for signers {} over digest {digest}",
            join_slots(&signers)
        )));
    }
    if !service.keySet.is_zero() {
        let eip2537 = Bytes::from(signature.to_eip2537().to_vec());
        let agrees = chain
            .read(
                Contract::KeyRegistry,
                "KeyRegistry.verifyAggregate",
                registry.verifyAggregate(service.keySet, bitmap, digest, eip2537).call(),
            )
            .await?;
        if !agrees {
            return Ok(v.fail(format!(
                "KeyRegistry.verifyAggregate refuses the signature against the service's pinned key set {}",
                service.keySet
            )));
        }
    }
    v.pass(format!("aggregate signature of signers {} verifies over digest {digest}", join_slots(&signers)));

    v.note(format!("stake at risk: {}", stake.format(signer_stake)));
    if let Some(stated) = cert.stake_at_risk
        && stated > signer_stake
    {
        v.note(format!(
            "the certificate states {} at risk; the signers hold {} now (unstaked or slashed since)",
            stake.format(stated),
            stake.format(signer_stake)
        ));
    }
    Ok(v)
}

/// The signature in the form the contracts take (EIP-2537, 256 bytes).
pub(crate) fn eip2537_signature(cert: &Certificate) -> eyre::Result<Bytes> {
    let signature = parse_signature(&cert.signature).map_err(|e| eyre::eyre!(e))?;
    Ok(Bytes::from(signature.to_eip2537().to_vec()))
}

/// A short description of a certificate: `service 1, call 7, result 0x…`.
pub(crate) fn describe(cert: &Certificate) -> String {
    format!("service {}, {}, result {}", cert.service_id, CallId(cert.call_id), hex0x(cert.result_hash))
}
